//! PodSpec validation (`pkg/apis/core/validation/validation.go`): volumes,
//! containers, probes, security contexts, scheduling constraints, and the Pod
//! and PodTemplateSpec wrappers. Feature gates are taken at their 1.37
//! defaults (relaxed env-var names and DNS searches, zero-second sleep,
//! pod-level resources, sidecar resize policy).

use super::Errs;
use super::meta::{
    nonnegative, validate_annotations, validate_label_name, validate_label_selector,
    validate_labels,
};
use super::net::is_valid_ip;
use super::resources::validate_resource_requirements;
use crate::admission::field::{self, Bad, Path};
use crate::admission::json::{arr, b, entries, has, i, obj, opt_b, opt_i, opt_s, s, strings};
use crate::admission::names::{
    inclusive_range_error, is_config_map_key, is_dns1123_label, is_dns1123_subdomain,
    is_dns1123_subdomain_with_underscore, is_http_header_name, is_qualified_name,
    is_relaxed_env_var_name, is_valid_group_id, is_valid_label_value, is_valid_port_name,
    is_valid_port_num, is_valid_user_id, name_is_dns_subdomain,
};
use serde_json::Value;

const FILE_MODE_ERR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Options that differ between a Pod and an embedded pod template.
#[derive(Clone, Copy)]
pub(crate) struct PodOpts {
    pub(crate) resource_is_pod: bool,
}

// ---------------------------------------------------------------- volumes

/// Volume sources in the order `validateVolumeSource` checks them, with the
/// path element used when validating the source's members.
const SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "persistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephfs"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwardAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

/// Required string members of the legacy in-tree sources.
fn legacy_required(key: &str) -> &'static [&'static str] {
    match key {
        "gcePersistentDisk" => &["pdName"],
        "awsElasticBlockStore" => &["volumeID"],
        "glusterfs" => &["endpoints", "path"],
        "rbd" => &["image"],
        "cinder" => &["volumeID"],
        "quobyte" => &["volume"],
        "flexVolume" => &["driver"],
        "azureFile" => &["secretName", "shareName"],
        "vsphereVolume" => &["volumePath"],
        "photonPersistentDisk" => &["pdID"],
        "portworxVolume" => &["volumeID"],
        "azureDisk" => &["diskName", "diskURI"],
        "scaleIO" => &["gateway", "system", "volumeName"],
        "iscsi" => &["targetPortal", "iqn"],
        _ => &[],
    }
}

/// `ValidateVolumes`; returns the valid volumes by name.
pub(crate) fn validate_volumes<'a>(
    volumes: &'a [Value],
    pod_meta: Option<&Value>,
    path: &Path,
    opts: PodOpts,
    errs: &mut Errs,
) -> Vec<(String, &'a Value)> {
    let mut names: Vec<(String, &Value)> = Vec::new();
    let pod_name = pod_meta.map(|m| s(m, "name")).unwrap_or("");
    let created_pvcs: Vec<String> = if pod_name.is_empty() {
        Vec::new()
    } else {
        volumes
            .iter()
            .filter(|v| has(v, "ephemeral"))
            .map(|v| format!("{pod_name}-{}", s(v, "name")))
            .collect()
    };
    for (idx, vol) in volumes.iter().enumerate() {
        let p = path.index(idx);
        let name = s(vol, "name");
        let mut el = Vec::new();
        validate_volume_source(vol, &p, name, pod_name, opts, &mut el);
        if name.is_empty() {
            el.push(field::required(&p.child("name"), ""));
        } else {
            for m in is_dns1123_label(name) {
                el.push(field::invalid(&p.child("name"), name, &m));
            }
        }
        if names.iter().any(|(n, _)| n == name) {
            el.push(field::duplicate(&p.child("name"), name));
        }
        if el.is_empty() {
            names.push((name.to_string(), vol));
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = obj(vol, "persistentVolumeClaim") {
            let claim = s(pvc, "claimName");
            if created_pvcs.iter().any(|c| c == claim) {
                errs.push(field::invalid(
                    &p.child("persistentVolumeClaim").child("claimName"),
                    claim,
                    "must not reference a PVC that gets created for an ephemeral volume",
                ));
            }
        }
    }
    names
}

fn validate_volume_source(
    vol: &Value,
    path: &Path,
    vol_name: &str,
    pod_name: &str,
    opts: PodOpts,
    errs: &mut Errs,
) {
    let mut num = 0;
    for (key, child) in SOURCES {
        let Some(src) = obj(vol, key) else {
            continue;
        };
        if num > 0 {
            // Upstream misspells this one path element.
            let shown = if key == "downwardAPI" {
                "downwarAPI"
            } else {
                key
            };
            let shown = if key == "cephfs" { "cephFS" } else { shown };
            errs.push(field::forbidden(
                &path.child(shown),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        num += 1;
        let sp = path.child(child);
        match key {
            "emptyDir" => {
                if let Some(limit) = src.get("sizeLimit").and_then(Value::as_str)
                    && crate::admission::quantity::Quantity::parse(limit)
                        .is_some_and(|q| q.sign().is_lt())
                {
                    errs.push(field::forbidden(
                        &path.child("emptyDir").child("sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    ));
                }
            }
            "hostPath" => validate_host_path(src, &sp, errs),
            "gitRepo" => {
                if s(src, "repository").is_empty() {
                    errs.push(field::required(&sp.child("repository"), ""));
                }
                validate_local_descending_path(s(src, "directory"), &sp.child("directory"), errs);
            }
            "secret" => {
                if s(src, "secretName").is_empty() {
                    errs.push(field::required(&sp.child("secretName"), ""));
                }
                validate_mode(src, "defaultMode", &sp, errs);
                for (ii, kp) in arr(src, "items").iter().enumerate() {
                    validate_key_to_path(kp, &sp.child("items").index(ii), errs);
                }
            }
            "configMap" => {
                if s(src, "name").is_empty() {
                    errs.push(field::required(&sp.child("name"), ""));
                }
                validate_mode(src, "defaultMode", &sp, errs);
                for (ii, kp) in arr(src, "items").iter().enumerate() {
                    validate_key_to_path(kp, &sp.child("items").index(ii), errs);
                }
            }
            "nfs" => {
                if s(src, "server").is_empty() {
                    errs.push(field::required(&sp.child("server"), ""));
                }
                let p = s(src, "path");
                if p.is_empty() {
                    errs.push(field::required(&sp.child("path"), ""));
                }
                if !p.starts_with('/') {
                    errs.push(field::invalid(
                        &sp.child("path"),
                        p,
                        "must be an absolute path",
                    ));
                }
            }
            "persistentVolumeClaim" => {
                if s(src, "claimName").is_empty() {
                    errs.push(field::required(&sp.child("claimName"), ""));
                }
            }
            "downwardAPI" => {
                validate_mode(src, "defaultMode", &sp, errs);
                for item in arr(src, "items") {
                    validate_downward_api_file(item, &sp, errs);
                }
            }
            "projected" => validate_projected(src, &sp, errs),
            "csi" => {
                validate_csi_driver_name(s(src, "driver"), &sp.child("driver"), errs);
                if let Some(r) = obj(src, "nodePublishSecretRef") {
                    let n = s(r, "name");
                    if n.is_empty() {
                        errs.push(field::required(
                            &sp.child("nodePublishSecretRef").child("name"),
                            "",
                        ));
                    } else {
                        for m in name_is_dns_subdomain(n, false) {
                            errs.push(field::invalid(&sp.child("name"), n, &m));
                        }
                    }
                }
            }
            "ephemeral" => match obj(src, "volumeClaimTemplate") {
                None => errs.push(field::required(&sp.child("volumeClaimTemplate"), "")),
                Some(tpl) => {
                    let tp = sp.child("volumeClaimTemplate");
                    validate_template_object_meta(tpl.get("metadata"), &tp.child("metadata"), errs);
                    let empty = Value::Null;
                    super::core::validate_pvc_spec(
                        tpl.get("spec").unwrap_or(&empty),
                        &tp.child("spec"),
                        errs,
                    );
                    if !pod_name.is_empty() && !vol_name.is_empty() {
                        let pvc = format!("{pod_name}-{vol_name}");
                        for m in name_is_dns_subdomain(&pvc, false) {
                            errs.push(field::invalid(
                                &sp.child("name"),
                                vol_name,
                                &format!("PVC name {}: {m}", field::go_quote(&pvc)),
                            ));
                        }
                    }
                }
            },
            "image" => {
                if opts.resource_is_pod && s(src, "reference").is_empty() {
                    errs.push(field::required(&sp.child("reference"), ""));
                }
                validate_pull_policy(s(src, "pullPolicy"), &sp.child("pullPolicy"), errs);
            }
            "cephfs" => {
                if arr(src, "monitors").is_empty() {
                    errs.push(field::required(&sp.child("monitors"), ""));
                }
            }
            "rbd" => {
                if arr(src, "monitors").is_empty() {
                    errs.push(field::required(&sp.child("monitors"), ""));
                }
                if s(src, "image").is_empty() {
                    errs.push(field::required(&sp.child("image"), ""));
                }
            }
            "fc" => {
                let wwns = arr(src, "targetWWNs");
                let wwids = arr(src, "wwids");
                if wwns.is_empty() && wwids.is_empty() {
                    errs.push(field::required(
                        &sp.child("targetWWNs"),
                        "must specify either targetWWNs or wwids, but not both",
                    ));
                }
                if !wwns.is_empty() && !wwids.is_empty() {
                    errs.push(field::invalid(
                        &sp.child("targetWWNs"),
                        Bad::Json(Value::Array(wwns.to_vec())),
                        "targetWWNs and wwids can not be specified simultaneously",
                    ));
                }
                if !wwns.is_empty() {
                    match opt_i(src, "lun") {
                        None => errs.push(field::required(
                            &sp.child("lun"),
                            "lun is required if targetWWNs is specified",
                        )),
                        Some(l) if !(0..=255).contains(&l) => errs.push(field::invalid(
                            &sp.child("lun"),
                            l,
                            &inclusive_range_error(0, 255),
                        )),
                        _ => {}
                    }
                }
            }
            "flocker" => {
                let n = s(src, "datasetName");
                let u = s(src, "datasetUUID");
                if n.is_empty() && u.is_empty() {
                    errs.push(field::required(
                        &sp,
                        "one of datasetName and datasetUUID is required",
                    ));
                }
                if !n.is_empty() && !u.is_empty() {
                    errs.push(field::invalid(
                        &sp,
                        "resource",
                        "datasetName and datasetUUID can not be specified simultaneously",
                    ));
                }
                if n.contains('/') {
                    errs.push(field::invalid(
                        &sp.child("datasetName"),
                        n,
                        "must not contain '/'",
                    ));
                }
            }
            "storageos" => {
                let n = s(src, "volumeName");
                if n.is_empty() {
                    errs.push(field::required(&sp.child("volumeName"), ""));
                } else {
                    for m in is_dns1123_label(n) {
                        errs.push(field::invalid(&sp.child("volumeName"), n, &m));
                    }
                }
            }
            other => {
                for req in legacy_required(other) {
                    if s(src, req).is_empty() {
                        errs.push(field::required(&sp.child(req), ""));
                    }
                }
                if matches!(other, "gcePersistentDisk" | "awsElasticBlockStore") {
                    let part = i(src, "partition");
                    if !(0..=255).contains(&part) {
                        errs.push(field::invalid(
                            &sp.child("partition"),
                            part,
                            &inclusive_range_error(1, 255),
                        ));
                    }
                }
                if other == "iscsi" {
                    let lun = i(src, "lun");
                    if !(0..=255).contains(&lun) {
                        errs.push(field::invalid(
                            &sp.child("lun"),
                            lun,
                            &inclusive_range_error(0, 255),
                        ));
                    }
                }
            }
        }
    }
    if num == 0 {
        errs.push(field::required(path, "must specify a volume type"));
    }
}

fn validate_host_path(src: &Value, path: &Path, errs: &mut Errs) {
    let p = s(src, "path");
    if p.is_empty() {
        errs.push(field::required(&path.child("path"), ""));
        return;
    }
    validate_path_no_backsteps(p, &path.child("path"), errs);
    if let Some(t) = opt_s(src, "type") {
        const TYPES: [&str; 8] = [
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if !TYPES.contains(&t) {
            errs.push(field::not_supported(&path.child("type"), t, &TYPES));
        }
    }
}

pub(crate) fn validate_csi_driver_name(driver: &str, path: &Path, errs: &mut Errs) {
    if driver.is_empty() {
        errs.push(field::required(path, ""));
    }
    if driver.len() > 63 {
        errs.push(field::too_long(path, 63));
    }
    for m in is_dns1123_subdomain(&driver.to_lowercase()) {
        errs.push(field::invalid(path, driver, &m));
    }
}

fn validate_mode(src: &Value, key: &str, path: &Path, errs: &mut Errs) {
    if let Some(mode) = opt_i(src, key)
        && !(0..=0o777).contains(&mode)
    {
        errs.push(field::invalid(&path.child(key), mode, FILE_MODE_ERR));
    }
}

fn validate_key_to_path(kp: &Value, path: &Path, errs: &mut Errs) {
    if s(kp, "key").is_empty() {
        errs.push(field::required(&path.child("key"), ""));
    }
    let p = s(kp, "path");
    if p.is_empty() {
        errs.push(field::required(&path.child("path"), ""));
    }
    validate_local_non_reserved_path(p, &path.child("path"), errs);
    validate_mode(kp, "mode", path, errs);
}

fn validate_path_no_backsteps(target: &str, path: &Path, errs: &mut Errs) {
    if target.replace('\\', "/").split('/').any(|p| p == "..") {
        errs.push(field::invalid(path, target, "must not contain '..'"));
    }
}

fn validate_local_descending_path(target: &str, path: &Path, errs: &mut Errs) {
    if target.starts_with('/') {
        errs.push(field::invalid(path, target, "must be a relative path"));
    }
    validate_path_no_backsteps(target, path, errs);
}

fn validate_local_non_reserved_path(target: &str, path: &Path, errs: &mut Errs) {
    validate_local_descending_path(target, path, errs);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(field::invalid(path, target, "must not start with '..'"));
    }
}

const VOLUME_FIELD_PATHS: [&str; 5] = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn validate_downward_api_file(file: &Value, path: &Path, errs: &mut Errs) {
    let p = s(file, "path");
    if p.is_empty() {
        errs.push(field::required(&path.child("path"), ""));
    }
    validate_local_non_reserved_path(p, &path.child("path"), errs);
    if let Some(fr) = obj(file, "fieldRef") {
        validate_object_field_selector(fr, &VOLUME_FIELD_PATHS, &path.child("fieldRef"), errs);
        if has(file, "resourceFieldRef") {
            errs.push(field::invalid(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(rf) = obj(file, "resourceFieldRef") {
        validate_resource_field_selector(rf, &path.child("resourceFieldRef"), true, errs);
    } else {
        errs.push(field::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    validate_mode(file, "mode", path, errs);
}

fn validate_projected(src: &Value, path: &Path, errs: &mut Errs) {
    validate_mode(src, "defaultMode", path, errs);
    let mut all_paths: Vec<String> = Vec::new();
    let mut note_path = |p: &str, errs: &mut Errs, bad: &str| {
        if all_paths.iter().any(|x| x == p) {
            errs.push(field::invalid(path, bad, "conflicting duplicate paths"));
        } else {
            all_paths.push(p.to_string());
        }
    };
    for (idx, source) in arr(src, "sources").iter().enumerate() {
        let sp = path.child("sources").index(idx);
        let mut num = 0;
        for key in ["secret", "configMap"] {
            if let Some(x) = obj(source, key) {
                num += 1;
                let pp = sp.child(key);
                if s(x, "name").is_empty() {
                    errs.push(field::required(&pp.child("name"), ""));
                }
                for (ii, kp) in arr(x, "items").iter().enumerate() {
                    validate_key_to_path(kp, &pp.child("items").index(ii), errs);
                    let kpath = s(kp, "path");
                    if !kpath.is_empty() {
                        note_path(kpath, errs, s(x, "name"));
                    }
                }
            }
        }
        if let Some(d) = obj(source, "downwardAPI") {
            num += 1;
            let pp = sp.child("downwardAPI");
            for item in arr(d, "items") {
                validate_downward_api_file(item, &pp, errs);
                let ipath = s(item, "path");
                if !ipath.is_empty() {
                    note_path(ipath, errs, ipath);
                }
            }
        }
        if let Some(t) = obj(source, "serviceAccountToken") {
            num += 1;
            let pp = sp.child("serviceAccountToken");
            let exp = opt_i(t, "expirationSeconds").unwrap_or(3600);
            if exp < 600 {
                errs.push(field::invalid(
                    &pp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(field::invalid(
                    &pp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            let tp = s(t, "path");
            if tp.is_empty() {
                errs.push(field::required(&path.child("path"), ""));
            } else {
                validate_local_non_reserved_path(tp, &path.child("path"), errs);
            }
        }
        if let Some(ctb) = obj(source, "clusterTrustBundle") {
            num += 1;
            let pp = sp.child("clusterTrustBundle");
            let name = opt_s(ctb, "name");
            let signer = opt_s(ctb, "signerName");
            match (name, signer) {
                (Some(_), Some(_)) => errs.push(field::invalid(
                    &pp,
                    Bad::Json(ctb.clone()),
                    "only one of name and signerName may be used",
                )),
                (Some(n), None) => {
                    if n.is_empty() {
                        errs.push(field::required(
                            &pp.child("name"),
                            "must be a valid object name",
                        ));
                    }
                    if has(ctb, "labelSelector") {
                        errs.push(field::invalid(
                            &pp.child("labelSelector"),
                            Bad::Json(ctb.get("labelSelector").cloned().unwrap_or(Value::Null)),
                            "labelSelector must be unset if name is specified",
                        ));
                    }
                }
                (None, Some(sn)) => {
                    if sn.is_empty() {
                        errs.push(field::required(
                            &pp.child("signerName"),
                            "must be a valid signer name",
                        ));
                    }
                    validate_label_selector(
                        ctb.get("labelSelector"),
                        false,
                        &pp.child("labelSelector"),
                        errs,
                    );
                }
                (None, None) => errs.push(field::required(
                    &pp,
                    "either name or signerName must be specified",
                )),
            }
            let cp = s(ctb, "path");
            if cp.is_empty() {
                errs.push(field::required(&pp.child("path"), ""));
            }
            validate_local_non_reserved_path(cp, &pp.child("path"), errs);
            note_path(cp, errs, cp);
        }
        if num > 1 {
            errs.push(field::forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
}

/// `ValidateTemplateObjectMeta`: only labels and annotations may be set.
pub(crate) fn validate_template_object_meta(meta: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(meta) = meta else {
        return;
    };
    validate_annotations(meta.get("annotations"), &path.child("annotations"), errs);
    validate_labels(meta.get("labels"), &path.child("labels"), errs);
    if let Some(m) = meta.as_object() {
        for (k, v) in m {
            let set = match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Bool(b) => *b,
            };
            if set && k != "labels" && k != "annotations" {
                errs.push(field::forbidden(&path.child(k), "cannot be set"));
            }
        }
    }
}

// ---------------------------------------------------------------- env

fn split_subscripted(p: &str) -> Option<(&str, &str)> {
    let open = p.find("['")?;
    let inner = p[open + 2..].strip_suffix("']")?;
    Some((&p[..open], inner))
}

fn validate_object_field_selector(fs: &Value, expressions: &[&str], path: &Path, errs: &mut Errs) {
    let api_version = s(fs, "apiVersion");
    if api_version.is_empty() {
        errs.push(field::required(&path.child("apiVersion"), ""));
        return;
    }
    let fp = s(fs, "fieldPath");
    if fp.is_empty() {
        errs.push(field::required(&path.child("fieldPath"), ""));
        return;
    }
    let converted = if api_version != "v1" {
        Err(format!("unsupported pod version: {api_version}"))
    } else if let Some((base, _)) = split_subscripted(fp) {
        if matches!(base, "metadata.annotations" | "metadata.labels") {
            Ok(fp.to_string())
        } else {
            Err(format!("field label does not support subscript: {fp}"))
        }
    } else {
        match fp {
            "metadata.annotations"
            | "metadata.labels"
            | "metadata.name"
            | "metadata.namespace"
            | "metadata.uid"
            | "spec.nodeName"
            | "spec.restartPolicy"
            | "spec.serviceAccountName"
            | "spec.schedulerName"
            | "status.phase"
            | "status.hostIP"
            | "status.hostIPs"
            | "status.podIP"
            | "status.podIPs" => Ok(fp.to_string()),
            "spec.host" => Ok("spec.nodeName".to_string()),
            _ => Err(format!("field label not supported: {fp}")),
        }
    };
    let internal = match converted {
        Ok(p) => p,
        Err(e) => {
            errs.push(field::invalid(
                &path.child("fieldPath"),
                fp,
                &format!("error converting fieldPath: {e}"),
            ));
            return;
        }
    };
    if let Some((base, sub)) = split_subscripted(&internal) {
        match base {
            "metadata.annotations" => {
                for m in is_qualified_name(&sub.to_lowercase()) {
                    errs.push(field::invalid(path, sub.to_lowercase(), &m));
                }
            }
            "metadata.labels" => {
                for m in is_qualified_name(sub) {
                    errs.push(field::invalid(path, sub, &m));
                }
            }
            _ => errs.push(field::invalid(path, base, "does not support subscript")),
        }
    } else if !expressions.contains(&internal.as_str()) {
        errs.push(field::not_supported(
            &path.child("fieldPath"),
            internal.as_str(),
            expressions,
        ));
    }
}

fn validate_resource_field_selector(fs: &Value, path: &Path, volume: bool, errs: &mut Errs) {
    let res = s(fs, "resource");
    if volume && s(fs, "containerName").is_empty() {
        errs.push(field::required(&path.child("containerName"), ""));
    } else if res.is_empty() {
        errs.push(field::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&res)
        && !res.starts_with("requests.hugepages-")
        && !res.starts_with("limits.hugepages-")
    {
        errs.push(field::not_supported(
            &path.child("resource"),
            res,
            &RESOURCE_FIELD_PATHS,
        ));
    }
    if let Some(d) = fs.get("divisor").and_then(|d| {
        d.as_str()
            .map(str::to_string)
            .or_else(|| d.as_i64().map(|n| n.to_string()))
    }) {
        let Some(q) = crate::admission::quantity::Quantity::parse(&d) else {
            return;
        };
        if q.is_zero() {
            return;
        }
        let c = q.canonical();
        const MEM: [&str; 13] = [
            "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
        ];
        let list = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei";
        match res {
            "limits.cpu" | "requests.cpu" if !matches!(c.as_str(), "1m" | "1") => errs.push(field::invalid(
                &path.child("divisor"),
                res,
                "only divisor's values 1m and 1 are supported with the cpu resource",
            )),
            "limits.memory" | "requests.memory" if !MEM.contains(&c.as_str()) => errs.push(field::invalid(
                &path.child("divisor"),
                res,
                &format!("only divisor's values {list} are supported with the memory resource"),
            )),
            "limits.ephemeral-storage" | "requests.ephemeral-storage" if !MEM.contains(&c.as_str()) => {
                errs.push(field::invalid(
                    &path.child("divisor"),
                    res,
                    &format!("only divisor's values {list} are supported with the local ephemeral storage resource"),
                ))
            }
            _ => {}
        }
        if (res.starts_with("requests.hugepages-") || res.starts_with("limits.hugepages-"))
            && !MEM.contains(&c.as_str())
        {
            errs.push(field::invalid(
                &path.child("divisor"),
                res,
                &format!("only divisor's values {list} are supported with the hugepages resource"),
            ));
        }
    }
}

fn validate_key_selector(sel: &Value, path: &Path, errs: &mut Errs) {
    let name = s(sel, "name");
    for m in name_is_dns_subdomain(name, false) {
        errs.push(field::invalid(&path.child("name"), name, &m));
    }
    let key = s(sel, "key");
    if key.is_empty() {
        errs.push(field::required(&path.child("key"), ""));
    } else {
        for m in is_config_map_key(key) {
            errs.push(field::invalid(&path.child("key"), key, &m));
        }
    }
}

fn validate_env(vars: &[Value], path: &Path, errs: &mut Errs) {
    for (idx, ev) in vars.iter().enumerate() {
        let p = path.index(idx);
        let name = s(ev, "name");
        if name.is_empty() {
            errs.push(field::required(&p.child("name"), ""));
        } else {
            for m in is_relaxed_env_var_name(name) {
                errs.push(field::invalid(&p.child("name"), name, &m));
            }
        }
        let Some(vf) = obj(ev, "valueFrom") else {
            continue;
        };
        let vp = p.child("valueFrom");
        let mut num = 0;
        if let Some(fr) = obj(vf, "fieldRef") {
            num += 1;
            validate_object_field_selector(fr, &ENV_FIELD_PATHS, &vp.child("fieldRef"), errs);
        }
        if let Some(rf) = obj(vf, "resourceFieldRef") {
            num += 1;
            validate_resource_field_selector(rf, &vp.child("resourceFieldRef"), false, errs);
        }
        if let Some(c) = obj(vf, "configMapKeyRef") {
            num += 1;
            validate_key_selector(c, &vp.child("configMapKeyRef"), errs);
        }
        if let Some(c) = obj(vf, "secretKeyRef") {
            num += 1;
            validate_key_selector(c, &vp.child("secretKeyRef"), errs);
        }
        if let Some(fk) = obj(vf, "fileKeyRef") {
            num += 1;
            for k in ["volumeName", "path", "key"] {
                if s(fk, k).is_empty() {
                    errs.push(field::required(&vp.child("fileKeyRef").child(k), ""));
                }
            }
        }
        if num == 0 {
            errs.push(field::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(ev, "value").is_empty() {
            errs.push(field::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if num > 1 {
            errs.push(field::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_env_from(vars: &[Value], path: &Path, errs: &mut Errs) {
    for (idx, ev) in vars.iter().enumerate() {
        let p = path.index(idx);
        let prefix = s(ev, "prefix");
        if !prefix.is_empty() {
            for m in is_relaxed_env_var_name(prefix) {
                errs.push(field::invalid(&p.child("prefix"), prefix, &m));
            }
        }
        let mut num = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = obj(ev, key) {
                num += 1;
                let name = s(r, "name");
                if name.is_empty() {
                    errs.push(field::required(&p.child(key).child("name"), ""));
                } else {
                    for m in name_is_dns_subdomain(name, true) {
                        errs.push(field::invalid(&p.child(key).child("name"), name, &m));
                    }
                }
            }
        }
        if num == 0 {
            errs.push(field::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if num > 1 {
            errs.push(field::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

// ---------------------------------------------------------------- containers

fn validate_container_ports(ports: &[Value], path: &Path, errs: &mut Errs) {
    let mut names: Vec<&str> = Vec::new();
    for (idx, port) in ports.iter().enumerate() {
        let p = path.index(idx);
        let name = s(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(field::invalid(&p.child("name"), name, &m));
                }
            } else if names.contains(&name) {
                errs.push(field::duplicate(&p.child("name"), name));
            } else {
                names.push(name);
            }
        }
        let cp = i(port, "containerPort");
        if cp == 0 {
            errs.push(field::required(&p.child("containerPort"), ""));
        } else {
            for m in is_valid_port_num(cp) {
                errs.push(field::invalid(&p.child("containerPort"), cp, &m));
            }
        }
        let hp = i(port, "hostPort");
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                errs.push(field::invalid(&p.child("hostPort"), hp, &m));
            }
        }
        validate_protocol(s(port, "protocol"), &p.child("protocol"), errs);
    }
}

pub(crate) fn validate_protocol(proto: &str, path: &Path, errs: &mut Errs) {
    if proto.is_empty() {
        errs.push(field::required(path, ""));
    } else if !matches!(proto, "TCP" | "UDP" | "SCTP") {
        errs.push(field::not_supported(path, proto, &["SCTP", "TCP", "UDP"]));
    }
}

fn validate_pull_policy(policy: &str, path: &Path, errs: &mut Errs) {
    match policy {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(field::required(path, "")),
        other => errs.push(field::not_supported(
            path,
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
}

fn validate_volume_mounts(c: &Value, volumes: &[(String, &Value)], path: &Path, errs: &mut Errs) {
    let devices: Vec<(&str, &str)> = arr(c, "volumeDevices")
        .iter()
        .map(|d| (s(d, "name"), s(d, "devicePath")))
        .collect();
    let privileged = c
        .get("securityContext")
        .and_then(|sc| opt_b(sc, "privileged"))
        .unwrap_or(false);
    let mut mountpoints: Vec<&str> = Vec::new();
    for (idx, mnt) in arr(c, "volumeMounts").iter().enumerate() {
        let p = path.index(idx);
        let name = s(mnt, "name");
        let mount_path = s(mnt, "mountPath");
        if name.is_empty() {
            errs.push(field::required(&p.child("name"), ""));
        }
        let vol = volumes.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        if vol.is_none() {
            errs.push(field::not_found(&p.child("name"), name));
        }
        if mount_path.is_empty() {
            errs.push(field::required(&p.child("mountPath"), ""));
        }
        if mountpoints.contains(&mount_path) {
            errs.push(field::invalid(
                &p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        mountpoints.push(mount_path);
        if devices.iter().any(|(n, _)| *n == name) {
            errs.push(field::invalid(
                &p.child("name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.iter().any(|(_, dp)| *dp == mount_path) {
            errs.push(field::invalid(
                &p.child("mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = s(mnt, "subPath");
        let sub_expr = s(mnt, "subPathExpr");
        if vol.is_some_and(|v| has(v, "image")) {
            if !sub_path.is_empty() {
                errs.push(field::invalid(
                    &p.child("subPath"),
                    sub_path,
                    "not allowed in image volume sources",
                ));
            }
            if !sub_expr.is_empty() {
                errs.push(field::invalid(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        // Upstream reports these at the list path (no index).
        if !sub_path.is_empty() {
            validate_local_descending_path(sub_path, &path.child("subPath"), errs);
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(field::invalid(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            validate_local_descending_path(sub_expr, &path.child("subPathExpr"), errs);
        }
        if let Some(prop) = opt_s(mnt, "mountPropagation") {
            let pp = path.child("mountPropagation");
            const PROPS: [&str; 3] = ["Bidirectional", "HostToContainer", "None"];
            if !PROPS.contains(&prop) {
                errs.push(field::not_supported(&pp, prop, &PROPS));
            }
            if prop == "Bidirectional" && !privileged {
                errs.push(field::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = opt_s(mnt, "recursiveReadOnly") {
            let rp = path.child("recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if !b(mnt, "readOnly") {
                        errs.push(field::forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if opt_s(mnt, "mountPropagation").is_some_and(|m| m != "None") {
                        errs.push(field::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(field::not_supported(
                    &rp,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
}

fn validate_volume_devices(c: &Value, volumes: &[(String, &Value)], path: &Path, errs: &mut Errs) {
    let mounts: Vec<(&str, &str)> = arr(c, "volumeMounts")
        .iter()
        .map(|m| (s(m, "name"), s(m, "mountPath")))
        .collect();
    let mut names: Vec<&str> = Vec::new();
    let mut paths: Vec<&str> = Vec::new();
    for (idx, dev) in arr(c, "volumeDevices").iter().enumerate() {
        let p = path.index(idx);
        let name = s(dev, "name");
        let dpath = s(dev, "devicePath");
        let vol = volumes.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let is_pvc = vol.is_some_and(|v| has(v, "persistentVolumeClaim") || has(v, "ephemeral"));
        if name.is_empty() {
            errs.push(field::required(&p.child("name"), ""));
        }
        if names.contains(&name) {
            errs.push(field::invalid(&p.child("name"), name, "must be unique"));
        }
        if vol.is_some() && !is_pvc {
            errs.push(field::invalid(
                &p.child("name"),
                name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            ));
        }
        if vol.is_none() {
            errs.push(field::not_found(&p.child("name"), name));
        }
        if dpath.is_empty() {
            errs.push(field::required(&p.child("devicePath"), ""));
        }
        if paths.contains(&dpath) {
            errs.push(field::invalid(
                &p.child("devicePath"),
                dpath,
                "must be unique",
            ));
        }
        if !dpath.is_empty() && dpath.replace('\\', "/").split('/').any(|x| x == "..") {
            errs.push(field::invalid(
                &p.child("devicePath"),
                dpath,
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.push(dpath);
        }
        if mounts.iter().any(|(n, _)| *n == name) {
            errs.push(field::invalid(
                &p.child("name"),
                name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.iter().any(|(_, mp)| *mp == dpath) {
            errs.push(field::invalid(
                &p.child("devicePath"),
                dpath,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            names.push(name);
        }
    }
}

fn validate_resize_policy(policies: &[Value], path: &Path, pod_restart: &str, errs: &mut Errs) {
    let mut seen: Vec<&str> = Vec::new();
    for (idx, p) in policies.iter().enumerate() {
        let rn = s(p, "resourceName");
        if seen.contains(&rn) {
            errs.push(field::duplicate(&path.index(idx), rn));
        }
        seen.push(rn);
        match rn {
            "cpu" | "memory" => {}
            "" => errs.push(field::required(path, "")),
            other => errs.push(field::not_supported(path, other, &["cpu", "memory"])),
        }
        let rp = s(p, "restartPolicy");
        match rp {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(field::required(path, "")),
            other => errs.push(field::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if pod_restart == "Never" && rp != "NotRequired" {
            errs.push(field::invalid(
                path,
                rp,
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
}

fn validate_security_context(sc: Option<&Value>, path: &Path, host_users: bool, errs: &mut Errs) {
    let Some(sc) = sc else {
        return;
    };
    if let Some(u) = opt_i(sc, "runAsUser") {
        for m in is_valid_user_id(u) {
            errs.push(field::invalid(&path.child("runAsUser"), u, &m));
        }
    }
    if let Some(g) = opt_i(sc, "runAsGroup") {
        for m in is_valid_group_id(g) {
            errs.push(field::invalid(&path.child("runAsGroup"), g, &m));
        }
    }
    if let Some(pm) = opt_s(sc, "procMount") {
        if !matches!(pm, "Default" | "Unmasked") {
            errs.push(field::not_supported(
                &path.child("procMount"),
                pm,
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(field::invalid(
                &path.child("procMount"),
                pm,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    validate_seccomp_profile(
        sc.get("seccompProfile"),
        &path.child("seccompProfile"),
        errs,
    );
    if opt_b(sc, "allowPrivilegeEscalation") == Some(false) {
        if opt_b(sc, "privileged") == Some(true) {
            errs.push(field::invalid(
                path,
                Bad::Json(sc.clone()),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if let Some(caps) = obj(sc, "capabilities") {
            for cap in strings(caps, "add") {
                if cap == "CAP_SYS_ADMIN" {
                    errs.push(field::invalid(
                        path,
                        Bad::Json(sc.clone()),
                        "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                    ));
                }
            }
        }
    }
    validate_app_armor(
        sc.get("appArmorProfile"),
        &path.child("appArmorProfile"),
        errs,
    );
}

fn validate_seccomp_profile(sp: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(sp) = sp.filter(|v| !v.is_null()) else {
        return;
    };
    let t = s(sp, "type");
    match t {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(field::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(field::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if t == "Localhost" {
        match opt_s(sp, "localhostProfile") {
            None => errs.push(field::required(
                &path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(lp) => validate_local_descending_path(lp, &path.child("localhostProfile"), errs),
        }
    } else if has(sp, "localhostProfile") {
        errs.push(field::invalid(
            &path.child("localhostProfile"),
            Bad::Json(sp.clone()),
            "can only be set when seccomp type is Localhost",
        ));
    }
}

fn validate_app_armor(ap: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(ap) = ap.filter(|v| !v.is_null()) else {
        return;
    };
    match s(ap, "type") {
        "Localhost" => match opt_s(ap, "localhostProfile") {
            None => errs.push(field::required(
                &path.child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(lp) => {
                if lp.trim() != lp {
                    errs.push(field::invalid(
                        &path.child("localhostProfile"),
                        lp,
                        "must not be padded with whitespace",
                    ));
                } else if lp.is_empty() {
                    errs.push(field::required(
                        &path.child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if lp.len() > 4095 {
                    errs.push(field::too_long(&path.child("localhostProfile"), 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(lp) = opt_s(ap, "localhostProfile") {
                errs.push(field::invalid(
                    &path.child("localhostProfile"),
                    Bad::Json(Value::String(lp.to_string())),
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(field::required(
            &path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(field::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
}

struct SpecCtx<'a> {
    volumes: Vec<(String, &'a Value)>,
    claim_names: Vec<String>,
    grace: Option<i64>,
    restart_policy: &'a str,
    host_users: bool,
}

/// `validateContainerCommon`.
fn validate_container_common(c: &Value, ctx: &SpecCtx, path: &Path, errs: &mut Errs) {
    let name = s(c, "name");
    if name.is_empty() {
        errs.push(field::required(&path.child("name"), ""));
    } else {
        for m in is_dns1123_label(name) {
            errs.push(field::invalid(&path.child("name"), name, &m));
        }
    }
    if s(c, "image").is_empty() {
        errs.push(field::required(&path.child("image"), ""));
    }
    match s(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(field::required(&path.child("terminationMessagePolicy"), "")),
        other => errs.push(field::not_supported(
            &path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    validate_container_ports(arr(c, "ports"), &path.child("ports"), errs);
    validate_env(arr(c, "env"), &path.child("env"), errs);
    validate_env_from(arr(c, "envFrom"), &path.child("envFrom"), errs);
    validate_volume_mounts(c, &ctx.volumes, &path.child("volumeMounts"), errs);
    validate_volume_devices(c, &ctx.volumes, &path.child("volumeDevices"), errs);
    validate_pull_policy(
        s(c, "imagePullPolicy"),
        &path.child("imagePullPolicy"),
        errs,
    );
    validate_resource_requirements(
        c.get("resources"),
        &ctx.claim_names,
        &path.child("resources"),
        false,
        errs,
    );
    validate_resize_policy(
        arr(c, "resizePolicy"),
        &path.child("resizePolicy"),
        ctx.restart_policy,
        errs,
    );
    validate_security_context(
        c.get("securityContext"),
        &path.child("securityContext"),
        ctx.host_users,
        errs,
    );
}

fn validate_handler(h: &Value, grace: Option<i64>, path: &Path, lifecycle: bool, errs: &mut Errs) {
    let mut num = 0;
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for kind in kinds {
        let Some(x) = obj(h, kind) else {
            continue;
        };
        if num > 0 {
            errs.push(field::forbidden(
                &path.child(kind),
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        num += 1;
        let p = path.child(kind);
        match *kind {
            "exec" if arr(x, "command").is_empty() => {
                errs.push(field::required(&p.child("command"), ""));
            }
            "httpGet" => {
                if s(x, "path").is_empty() {
                    errs.push(field::required(&p.child("path"), ""));
                }
                validate_port_num_or_name(x.get("port"), &p.child("port"), errs);
                let scheme = s(x, "scheme");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(field::not_supported(
                        &p.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for hdr in arr(x, "httpHeaders") {
                    let n = s(hdr, "name");
                    for m in is_http_header_name(n) {
                        errs.push(field::invalid(&p.child("httpHeaders"), n, &m));
                    }
                }
            }
            "tcpSocket" => validate_port_num_or_name(x.get("port"), &p.child("port"), errs),
            "grpc" => {
                let port = i(x, "port");
                for m in is_valid_port_num(port) {
                    errs.push(field::invalid(&p.child("port"), port, &m));
                }
            }
            "sleep" => {
                let secs = i(x, "seconds");
                if let Some(g) = grace
                    && (secs < 0 || secs > g)
                {
                    errs.push(field::invalid(
                        &p,
                        secs,
                        &format!(
                            "must be non-negative and less than terminationGracePeriodSeconds ({g})"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if num == 0 {
        errs.push(field::required(path, "must specify a handler type"));
    }
}

/// `ValidatePortNumOrName` over an int-or-string.
pub(crate) fn validate_port_num_or_name(port: Option<&Value>, path: &Path, errs: &mut Errs) {
    match port {
        Some(Value::String(name)) => {
            for m in is_valid_port_name(name) {
                errs.push(field::invalid(path, name.as_str(), &m));
            }
        }
        Some(Value::Number(n)) => {
            let v = n.as_i64().unwrap_or(0);
            for m in is_valid_port_num(v) {
                errs.push(field::invalid(path, v, &m));
            }
        }
        _ => {
            for m in is_valid_port_num(0) {
                errs.push(field::invalid(path, 0i64, &m));
            }
        }
    }
}

fn validate_probe(probe: &Value, grace: Option<i64>, path: &Path, errs: &mut Errs) {
    validate_handler(probe, grace, path, false, errs);
    for k in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(i(probe, k), &path.child(k), errs);
    }
    if let Some(t) = opt_i(probe, "terminationGracePeriodSeconds")
        && t <= 0
    {
        errs.push(field::invalid(
            &path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
}

fn validate_probes(c: &Value, grace: Option<i64>, path: &Path, errs: &mut Errs) {
    for (key, must_be_one) in [
        ("livenessProbe", true),
        ("readinessProbe", false),
        ("startupProbe", true),
    ] {
        let Some(probe) = obj(c, key) else {
            continue;
        };
        let p = path.child(key);
        validate_probe(probe, grace, &p, errs);
        if must_be_one {
            let st = i(probe, "successThreshold");
            if st != 1 {
                errs.push(field::invalid(
                    &p.child("successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        } else if let Some(t) = obj(probe, "terminationGracePeriodSeconds") {
            errs.push(field::invalid(
                &p.child("terminationGracePeriodSeconds"),
                Bad::Json(t.clone()),
                "must not be set for readinessProbes",
            ));
        }
    }
}

fn validate_lifecycle(c: &Value, grace: Option<i64>, path: &Path, errs: &mut Errs) {
    if let Some(lc) = obj(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = obj(lc, hook) {
                validate_handler(h, grace, &path.child("lifecycle").child(hook), true, errs);
            }
        }
    }
}

fn host_port_conflicts(containers: &[&Value], path: &Path, offsets: &[usize], errs: &mut Errs) {
    let mut seen: Vec<String> = Vec::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in arr(c, "ports").iter().enumerate() {
            let hp = i(port, "hostPort");
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{}", s(port, "protocol"), s(port, "hostIP"), hp);
            if seen.contains(&key) {
                let idx = offsets.get(ci).copied().unwrap_or(ci);
                errs.push(field::duplicate(
                    &path.index(idx).child("ports").index(pi).child("hostPort"),
                    key.as_str(),
                ));
            } else {
                seen.push(key);
            }
        }
    }
}

fn validate_containers(spec: &Value, ctx: &SpecCtx, path: &Path, errs: &mut Errs) {
    let containers = arr(spec, "containers");
    if containers.is_empty() {
        errs.push(field::required(path, ""));
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for (idx, c) in containers.iter().enumerate() {
        let p = path.index(idx);
        validate_container_common(c, ctx, &p, errs);
        let name = s(c, "name");
        if names.contains(&name) {
            errs.push(field::duplicate(&p.child("name"), name));
        } else {
            names.push(name);
        }
        validate_lifecycle(c, ctx.grace, &p, errs);
        validate_probes(c, ctx.grace, &p, errs);
        if has(c, "restartPolicy") {
            errs.push(field::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let all: Vec<&Value> = containers.iter().collect();
    let offsets: Vec<usize> = (0..all.len()).collect();
    host_port_conflicts(&all, path, &offsets, errs);
}

fn validate_init_containers(spec: &Value, ctx: &SpecCtx, path: &Path, errs: &mut Errs) {
    let mut names: Vec<&str> = arr(spec, "containers")
        .iter()
        .map(|c| s(c, "name"))
        .collect();
    for (idx, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = path.index(idx);
        validate_container_common(c, ctx, &p, errs);
        let mut restart_always = false;
        if let Some(rp) = opt_s(c, "restartPolicy") {
            if rp != "Always" {
                errs.push(field::not_supported(
                    &p.child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            restart_always = rp == "Always";
        }
        let name = s(c, "name");
        if names.contains(&name) {
            errs.push(field::duplicate(&p.child("name"), name));
        } else if !name.is_empty() {
            names.push(name);
        }
        host_port_conflicts(&[c], path, &[idx], errs);
        if restart_always {
            validate_lifecycle(c, ctx.grace, &p, errs);
            validate_probes(c, ctx.grace, &p, errs);
        } else {
            for k in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if has(c, k) {
                    errs.push(field::forbidden(
                        &p.child(k),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
}

fn validate_ephemeral_containers(spec: &Value, ctx: &SpecCtx, path: &Path, errs: &mut Errs) {
    let ecs = arr(spec, "ephemeralContainers");
    if ecs.is_empty() {
        return;
    }
    let mut other: Vec<&str> = arr(spec, "containers")
        .iter()
        .map(|c| s(c, "name"))
        .collect();
    other.extend(arr(spec, "initContainers").iter().map(|c| s(c, "name")));
    let mut all = other.clone();
    for (idx, ec) in ecs.iter().enumerate() {
        let p = path.index(idx);
        validate_container_common(ec, ctx, &p, errs);
        validate_image_whitespace(ec, &p, errs);
        let name = s(ec, "name");
        if all.contains(&name) {
            errs.push(field::duplicate(&p.child("name"), name));
        } else {
            all.push(name);
        }
        let target = s(ec, "targetContainerName");
        if !target.is_empty() && !other.contains(&target) {
            errs.push(field::not_found(&p.child("targetContainerName"), target));
        }
        for k in [
            "ports",
            "resources",
            "lifecycle",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "resizePolicy",
            "restartPolicy",
        ] {
            let set = match ec.get(k) {
                None | Some(Value::Null) => false,
                Some(Value::Array(a)) => !a.is_empty(),
                Some(Value::Object(o)) => !o.is_empty(),
                Some(Value::String(s)) => !s.is_empty(),
                Some(_) => true,
            };
            if set {
                errs.push(field::forbidden(
                    &p.child(k),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (mi, vm) in arr(ec, "volumeMounts").iter().enumerate() {
            for k in ["subPath", "subPathExpr"] {
                if !s(vm, k).is_empty() {
                    errs.push(field::forbidden(
                        &p.child("volumeMounts").index(mi).child(k),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
    }
}

fn validate_image_whitespace(c: &Value, path: &Path, errs: &mut Errs) {
    let image = s(c, "image");
    if image.trim() != image {
        errs.push(field::invalid(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
}

// ---------------------------------------------------------------- scheduling

pub(crate) fn validate_tolerations(tols: &[Value], path: &Path, errs: &mut Errs) {
    for (idx, t) in tols.iter().enumerate() {
        let p = path.index(idx);
        let key = s(t, "key");
        let op = s(t, "operator");
        let effect = s(t, "effect");
        let value = s(t, "value");
        if !key.is_empty() {
            validate_label_name(key, &p.child("key"), errs);
        }
        if key.is_empty() && op != "Exists" {
            errs.push(field::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if has(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(field::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(field::invalid(&p.child("operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(field::invalid(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(field::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            validate_taint_effect(effect, true, &p.child("effect"), errs);
        }
    }
}

pub(crate) fn validate_taint_effect(effect: &str, allow_empty: bool, path: &Path, errs: &mut Errs) {
    if !allow_empty && effect.is_empty() {
        errs.push(field::required(path, ""));
        return;
    }
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(field::not_supported(
            path,
            effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
}

pub(crate) fn validate_node_selector_requirement(
    rq: &Value,
    allow_invalid_values: bool,
    path: &Path,
    errs: &mut Errs,
) {
    let values = strings(rq, "values");
    match s(rq, "operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(field::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(field::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(field::required(
                    &path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        other => errs.push(field::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    validate_label_name(s(rq, "key"), &path.child("key"), errs);
    if !allow_invalid_values {
        for (vi, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(field::invalid(&path.child("values").index(vi), *v, &m));
            }
        }
    }
}

fn validate_node_field_selector_requirement(rq: &Value, path: &Path, errs: &mut Errs) {
    let values = strings(rq, "values");
    match s(rq, "operator") {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(field::required(
                    &path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        other => errs.push(field::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    let key = s(rq, "key");
    if key != "metadata.name" {
        errs.push(field::invalid(
            &path.child("key"),
            key,
            "not a valid field selector key",
        ));
    } else {
        for (vi, v) in values.iter().enumerate() {
            for m in name_is_dns_subdomain(v, false) {
                errs.push(field::invalid(&path.child("values").index(vi), *v, &m));
            }
        }
    }
}

pub(crate) fn validate_node_selector_term(
    term: &Value,
    allow_invalid_values: bool,
    path: &Path,
    errs: &mut Errs,
) {
    for (j, rq) in arr(term, "matchExpressions").iter().enumerate() {
        validate_node_selector_requirement(
            rq,
            allow_invalid_values,
            &path.child("matchExpressions").index(j),
            errs,
        );
    }
    for (j, rq) in arr(term, "matchFields").iter().enumerate() {
        validate_node_field_selector_requirement(rq, &path.child("matchFields").index(j), errs);
    }
}

pub(crate) fn validate_node_selector(ns: &Value, path: &Path, errs: &mut Errs) {
    let tp = path.child("nodeSelectorTerms");
    let terms = arr(ns, "nodeSelectorTerms");
    if terms.is_empty() {
        errs.push(field::required(
            &tp,
            "must have at least one node selector term",
        ));
        return;
    }
    for (idx, t) in terms.iter().enumerate() {
        validate_node_selector_term(t, false, &tp.index(idx), errs);
    }
}

fn validate_pod_affinity_term(term: &Value, path: &Path, errs: &mut Errs) {
    validate_label_selector(
        term.get("labelSelector").filter(|v| !v.is_null()),
        false,
        &path.child("labelSelector"),
        errs,
    );
    validate_label_selector(
        term.get("namespaceSelector").filter(|v| !v.is_null()),
        false,
        &path.child("namespaceSelector"),
        errs,
    );
    for ns in strings(term, "namespaces") {
        for m in is_dns1123_label(ns) {
            errs.push(field::invalid(&path.child("namespace"), ns, &m));
        }
    }
    let selector = obj(term, "labelSelector");
    let match_keys = strings(term, "matchLabelKeys");
    let mismatch_keys = strings(term, "mismatchLabelKeys");
    for (key, keys) in [
        ("matchLabelKeys", &match_keys),
        ("mismatchLabelKeys", &mismatch_keys),
    ] {
        if keys.is_empty() {
            continue;
        }
        if selector.is_none() {
            errs.push(field::forbidden(
                &path.child(key),
                "must not be specified when labelSelector is not set",
            ));
            continue;
        }
        for (ki, k) in keys.iter().enumerate() {
            validate_label_name(k, &path.child(key).index(ki), errs);
        }
    }
    if let Some(sel) = selector {
        let mut sel_keys: Vec<String> = crate::admission::json::string_map(sel.get("matchLabels"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for e in arr(sel, "matchExpressions") {
            let key = s(e, "key");
            if let Some(ki) = match_keys.iter().position(|k| *k == key)
                && sel_keys.iter().any(|k| k == key)
            {
                errs.push(field::invalid(
                    &path.index(ki),
                    key,
                    "exists in both matchLabelKeys and labelSelector",
                ));
            }
            sel_keys.push(key.to_string());
        }
    }
    for (ki, k) in match_keys.iter().enumerate() {
        if mismatch_keys.contains(k) {
            errs.push(field::invalid(
                &path.child("matchLabelKeys").index(ki),
                *k,
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    let tk = s(term, "topologyKey");
    if tk.is_empty() {
        errs.push(field::required(
            &path.child("topologyKey"),
            "can not be empty",
        ));
    }
    validate_label_name(tk, &path.child("topologyKey"), errs);
}

fn validate_affinity(aff: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(aff) = aff.filter(|v| !v.is_null()) else {
        return;
    };
    if let Some(na) = obj(aff, "nodeAffinity") {
        let p = path.child("nodeAffinity");
        if let Some(req) = obj(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            validate_node_selector(
                req,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution"),
                errs,
            );
        }
        for (idx, t) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let tp = p
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(idx);
            let w = i(t, "weight");
            if !(1..=100).contains(&w) {
                errs.push(field::invalid(
                    &tp.child("weight"),
                    w,
                    "must be in the range 1-100",
                ));
            }
            if let Some(pref) = obj(t, "preference") {
                validate_node_selector_term(pref, true, &tp.child("preference"), errs);
            }
        }
    }
    for key in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = obj(aff, key) else {
            continue;
        };
        let p = path.child(key);
        for (idx, t) in arr(pa, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            validate_pod_affinity_term(
                t,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution")
                    .index(idx),
                errs,
            );
        }
        for (idx, t) in arr(pa, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let tp = p
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(idx);
            let w = i(t, "weight");
            if !(1..=100).contains(&w) {
                errs.push(field::invalid(
                    &tp.child("weight"),
                    w,
                    "must be in the range 1-100",
                ));
            }
            let empty = Value::Object(serde_json::Map::new());
            validate_pod_affinity_term(
                t.get("podAffinityTerm").unwrap_or(&empty),
                &tp.child("podAffinityTerm"),
                errs,
            );
        }
    }
}

fn validate_topology_spread(constraints: &[Value], path: &Path, errs: &mut Errs) {
    for (idx, c) in constraints.iter().enumerate() {
        let p = path.index(idx);
        let skew = i(c, "maxSkew");
        if skew <= 0 {
            errs.push(field::invalid(
                &p.child("maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        let tk = s(c, "topologyKey");
        if tk.is_empty() {
            errs.push(field::required(&p.child("topologyKey"), "can not be empty"));
        }
        let wu = s(c, "whenUnsatisfiable");
        if !matches!(wu, "DoNotSchedule" | "ScheduleAnyway") {
            errs.push(field::not_supported(
                &p.child("whenUnsatisfiable"),
                wu,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if constraints[idx + 1..]
            .iter()
            .any(|o| s(o, "topologyKey") == tk && s(o, "whenUnsatisfiable") == wu)
        {
            errs.push(field::duplicate(
                &p.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{tk}, {wu}}}"),
            ));
        }
        if let Some(md) = opt_i(c, "minDomains") {
            if md <= 0 {
                errs.push(field::invalid(
                    &p.child("minDomains"),
                    md,
                    "must be greater than zero",
                ));
            }
            if wu != "DoNotSchedule" {
                errs.push(field::invalid(
                    &p.child("minDomains"),
                    md,
                    &format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}"
                    ),
                ));
            }
        }
        for k in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = opt_s(c, k)
                && !matches!(v, "Honor" | "Ignore")
            {
                errs.push(field::not_supported(&p.child(k), v, &["Honor", "Ignore"]));
            }
        }
        let mlk = strings(c, "matchLabelKeys");
        if !mlk.is_empty() {
            let sel = obj(c, "labelSelector");
            let mut keys: Vec<String> = Vec::new();
            match sel {
                Some(sel) => {
                    keys.extend(
                        crate::admission::json::string_map(sel.get("matchLabels"))
                            .into_iter()
                            .map(|(k, _)| k),
                    );
                    keys.extend(
                        arr(sel, "matchExpressions")
                            .iter()
                            .map(|e| s(e, "key").to_string()),
                    );
                }
                None => errs.push(field::forbidden(
                    &p.child("matchLabelKeys"),
                    "must not be specified when labelSelector is not set",
                )),
            }
            for (ki, k) in mlk.iter().enumerate() {
                validate_label_name(k, &p.child("matchLabelKeys").index(ki), errs);
                if keys.iter().any(|x| x == k) {
                    errs.push(field::invalid(
                        &p.child("matchLabelKeys").index(ki),
                        *k,
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
        }
        validate_label_selector(
            c.get("labelSelector").filter(|v| !v.is_null()),
            false,
            &p.child("labelSelector"),
            errs,
        );
    }
}

fn validate_dns_config(spec: &Value, path: &Path, errs: &mut Errs) {
    let policy = s(spec, "dnsPolicy");
    let cfg = obj(spec, "dnsConfig");
    if policy == "None" {
        match cfg {
            None => {
                errs.push(field::required(
                    path,
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                ));
                return;
            }
            Some(c) if arr(c, "nameservers").is_empty() => {
                errs.push(field::required(
                    &path.child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                ));
                return;
            }
            _ => {}
        }
    }
    let Some(cfg) = cfg else {
        return;
    };
    let ns = arr(cfg, "nameservers");
    if ns.len() > 3 {
        errs.push(field::invalid(
            &path.child("nameservers"),
            Bad::Json(Value::Array(ns.to_vec())),
            "must not have more than 3 nameservers",
        ));
    }
    for (idx, n) in strings(cfg, "nameservers").iter().enumerate() {
        errs.extend(is_valid_ip(&path.child("nameservers").index(idx), n));
    }
    let searches = strings(cfg, "searches");
    if searches.len() > 32 {
        errs.push(field::invalid(
            &path.child("searches"),
            Bad::Json(Value::Array(arr(cfg, "searches").to_vec())),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(field::invalid(
            &path.child("searches"),
            Bad::Json(Value::Array(arr(cfg, "searches").to_vec())),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (idx, sname) in searches.iter().enumerate() {
        if *sname != "." {
            let trimmed = sname.strip_suffix('.').unwrap_or(sname);
            for m in is_dns1123_subdomain_with_underscore(trimmed) {
                errs.push(field::invalid(
                    &path.child("searches").index(idx),
                    trimmed,
                    &m,
                ));
            }
        }
    }
    for (idx, o) in arr(cfg, "options").iter().enumerate() {
        if s(o, "name").is_empty() {
            errs.push(field::required(
                &path.child("options").index(idx),
                "must not be empty",
            ));
        }
    }
}

fn validate_pod_security_context(spec: &Value, path: &Path, errs: &mut Errs) {
    let sp = path.child("securityContext");
    let Some(sc) = obj(spec, "securityContext") else {
        return;
    };
    if let Some(g) = opt_i(sc, "fsGroup") {
        for m in is_valid_group_id(g) {
            errs.push(field::invalid(&sp.child("fsGroup"), g, &m));
        }
    }
    if let Some(u) = opt_i(sc, "runAsUser") {
        for m in is_valid_user_id(u) {
            errs.push(field::invalid(&sp.child("runAsUser"), u, &m));
        }
    }
    if let Some(g) = opt_i(sc, "runAsGroup") {
        for m in is_valid_group_id(g) {
            errs.push(field::invalid(&sp.child("runAsGroup"), g, &m));
        }
    }
    for (idx, g) in arr(sc, "supplementalGroups").iter().enumerate() {
        let g = g.as_i64().unwrap_or(0);
        for m in is_valid_group_id(g) {
            errs.push(field::invalid(
                &sp.child("supplementalGroups").index(idx),
                g,
                &m,
            ));
        }
    }
    if opt_b(spec, "shareProcessNamespace") == Some(true) && b(spec, "hostPID") {
        errs.push(field::invalid(
            &sp.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let sysctls = arr(sc, "sysctls");
    let mut seen: Vec<&str> = Vec::new();
    for (idx, sy) in sysctls.iter().enumerate() {
        let p = sp.child("sysctls").index(idx).child("name");
        let name = s(sy, "name");
        if name.is_empty() {
            errs.push(field::required(&p, ""));
        } else if !valid_sysctl_name(name) {
            errs.push(field::invalid(
                &p,
                name,
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if seen.contains(&name) {
            errs.push(field::duplicate(&p, name));
        }
        if b(spec, "hostNetwork") && (name.starts_with("net.") || name.starts_with("net/")) {
            errs.push(field::invalid(
                &p,
                name,
                "may not be specified when 'hostNetwork' is true",
            ));
        }
        if b(spec, "hostIPC")
            && (name.starts_with("kernel.shm")
                || name.starts_with("kernel.msg")
                || name.starts_with("kernel.sem")
                || name.starts_with("fs.mqueue."))
        {
            errs.push(field::invalid(
                &p,
                name,
                "may not be specified when 'hostIPC' is true",
            ));
        }
        seen.push(name);
    }
    if let Some(p) = opt_s(sc, "fsGroupChangePolicy")
        && !matches!(p, "Always" | "OnRootMismatch")
    {
        errs.push(field::not_supported(
            &sp.child("fsGroupChangePolicy"),
            p,
            &["Always", "OnRootMismatch"],
        ));
    }
    validate_seccomp_profile(sc.get("seccompProfile"), &sp.child("seccompProfile"), errs);
    validate_app_armor(
        sc.get("appArmorProfile"),
        &sp.child("appArmorProfile"),
        errs,
    );
    if let Some(p) = opt_s(sc, "supplementalGroupsPolicy")
        && !matches!(p, "Merge" | "Strict")
    {
        errs.push(field::not_supported(
            &sp.child("supplementalGroupsPolicy"),
            p,
            &["Merge", "Strict"],
        ));
    }
    if let Some(p) = opt_s(sc, "seLinuxChangePolicy")
        && !matches!(p, "MountOption" | "Recursive")
    {
        errs.push(field::not_supported(
            &sp.child("seLinuxChangePolicy"),
            p,
            &["MountOption", "Recursive"],
        ));
    }
}

fn valid_sysctl_name(name: &str) -> bool {
    if name.len() > 253 {
        return false;
    }
    let seg_ok = |seg: &str| {
        let b = seg.as_bytes();
        let inner = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_';
        let end = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty() && end(b[0]) && end(b[b.len() - 1]) && b.iter().all(|c| inner(*c))
    };
    name.split(['.', '/']).all(seg_ok)
}

fn validate_os(spec: &Value, path: &Path, errs: &mut Errs) {
    let Some(os) = obj(spec, "os") else {
        return;
    };
    let op = path.child("os");
    let name = s(os, "name");
    if name.is_empty() {
        errs.push(field::required(&op.child("name"), "cannot be empty"));
        return;
    }
    if !matches!(name, "linux" | "windows") {
        errs.push(field::not_supported(&op, name, &["linux", "windows"]));
        return;
    }
    let sc = obj(spec, "securityContext");
    let containers = [
        ("initContainers", arr(spec, "initContainers")),
        ("containers", arr(spec, "containers")),
        ("ephemeralContainers", arr(spec, "ephemeralContainers")),
    ];
    if name == "linux" {
        if sc.is_some_and(|sc| has(sc, "windowsOptions")) {
            errs.push(field::forbidden(
                &path.child("securityContext").child("windowsOptions"),
                "windows options cannot be set for a linux pod",
            ));
        }
        for (list, cs) in containers {
            for (idx, c) in cs.iter().enumerate() {
                if obj(c, "securityContext").is_some_and(|sc| has(sc, "windowsOptions")) {
                    errs.push(field::forbidden(
                        &path
                            .child(list)
                            .index(idx)
                            .child("securityContext")
                            .child("windowsOptions"),
                        "windows options cannot be set for a linux pod",
                    ));
                }
            }
        }
        return;
    }
    if let Some(sc) = sc {
        for k in ["appArmorProfile", "seLinuxOptions"] {
            if has(sc, k) {
                errs.push(field::forbidden(
                    &path.child("securityContext").child(k),
                    "cannot be set for a windows pod",
                ));
            }
        }
        for k in [
            "seccompProfile",
            "fsGroup",
            "fsGroupChangePolicy",
            "runAsUser",
            "runAsGroup",
            "supplementalGroups",
            "supplementalGroupsPolicy",
            "seLinuxChangePolicy",
        ] {
            if has(sc, k) {
                errs.push(field::forbidden(
                    &path.child("securityContext").child(k),
                    "cannot be set for a windows pod",
                ));
            }
        }
        if !arr(sc, "sysctls").is_empty() {
            errs.push(field::forbidden(
                &path.child("securityContext").child("sysctls"),
                "cannot be set for a windows pod",
            ));
        }
    }
    if has(spec, "hostUsers") {
        errs.push(field::forbidden(
            &path.child("hostUsers"),
            "cannot be set for a windows pod",
        ));
    }
    for k in ["hostPID", "hostIPC"] {
        if b(spec, k) {
            errs.push(field::forbidden(
                &path.child(k),
                "cannot be set for a windows pod",
            ));
        }
    }
    if has(spec, "shareProcessNamespace") {
        errs.push(field::forbidden(
            &path.child("shareProcessNamespace"),
            "cannot be set for a windows pod",
        ));
    }
    for (list, cs) in containers {
        for (idx, c) in cs.iter().enumerate() {
            let Some(csc) = obj(c, "securityContext") else {
                continue;
            };
            let p = path.child(list).index(idx).child("securityContext");
            for k in [
                "appArmorProfile",
                "seLinuxOptions",
                "seccompProfile",
                "capabilities",
                "readOnlyRootFilesystem",
                "privileged",
                "allowPrivilegeEscalation",
                "procMount",
                "runAsUser",
                "runAsGroup",
            ] {
                if has(csc, k) {
                    errs.push(field::forbidden(
                        &p.child(k),
                        "cannot be set for a windows pod",
                    ));
                }
            }
        }
    }
}

fn validate_pod_resources(spec: &Value, ctx: &SpecCtx, path: &Path, errs: &mut Errs) {
    let Some(res) = obj(spec, "resources") else {
        return;
    };
    if has(res, "claims") {
        errs.push(field::forbidden(
            &path.child("claims"),
            "claims cannot be set for Resources at pod-level",
        ));
    }
    validate_resource_requirements(Some(res), &ctx.claim_names, path, true, errs);
    // Every container limit must fit inside the pod-level limit.
    for (ci, c) in arr(spec, "containers").iter().enumerate() {
        let Some(cres) = obj(c, "resources") else {
            continue;
        };
        for (name, v) in entries(cres, "limits") {
            let Some(pl) = res
                .get("limits")
                .and_then(|l| l.get(name))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let (Some(cq), Some(pq)) = (
                v.as_str()
                    .and_then(crate::admission::quantity::Quantity::parse),
                crate::admission::quantity::Quantity::parse(pl),
            ) else {
                continue;
            };
            if cq.cmp_value(&pq) == std::cmp::Ordering::Greater {
                errs.push(field::invalid(
                    &path.child("containers").index(ci).key(name).child("limits"),
                    cq.canonical(),
                    &format!(
                        "must be less than or equal to pod limits of {}",
                        pq.canonical()
                    ),
                ));
            }
        }
    }
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(
    spec: &Value,
    pod_meta: Option<&Value>,
    path: &Path,
    opts: PodOpts,
    errs: &mut Errs,
) {
    if !has(spec, "terminationGracePeriodSeconds") {
        errs.push(field::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let grace = opt_i(spec, "terminationGracePeriodSeconds");
    let host_users = obj(spec, "hostUsers")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let volumes = validate_volumes(
        arr(spec, "volumes"),
        pod_meta,
        &path.child("volumes"),
        opts,
        errs,
    );
    let claim_names: Vec<String> = arr(spec, "resourceClaims")
        .iter()
        .map(|c| s(c, "name").to_string())
        .filter(|n| !n.is_empty())
        .collect();
    validate_pod_resource_claims(
        arr(spec, "resourceClaims"),
        &path.child("resourceClaims"),
        errs,
    );
    let ctx = SpecCtx {
        volumes,
        claim_names,
        grace,
        restart_policy: s(spec, "restartPolicy"),
        host_users,
    };
    validate_containers(spec, &ctx, &path.child("containers"), errs);
    validate_init_containers(spec, &ctx, &path.child("initContainers"), errs);
    validate_ephemeral_containers(spec, &ctx, &path.child("ephemeralContainers"), errs);
    validate_pod_resources(spec, &ctx, &path.child("resources"), errs);

    if b(spec, "hostNetwork") {
        for (ci, c) in arr(spec, "containers").iter().enumerate() {
            for (pi, port) in arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (i(port, "hostPort"), i(port, "containerPort"));
                if (opts.resource_is_pod || hp != 0) && hp != cp {
                    errs.push(field::invalid(
                        &path
                            .child("containers")
                            .index(ci)
                            .child("ports")
                            .index(pi)
                            .child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    match s(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(field::required(&path.child("restartPolicy"), "")),
        other => errs.push(field::not_supported(
            &path.child("restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    match s(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(field::required(&path.child("dnsPolicy"), "")),
        other => errs.push(field::not_supported(
            &path.child("dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    validate_labels(spec.get("nodeSelector"), &path.child("nodeSelector"), errs);
    validate_pod_security_context(spec, path, errs);
    validate_affinity(spec.get("affinity"), &path.child("affinity"), errs);
    validate_dns_config(spec, &path.child("dnsConfig"), errs);
    for (idx, g) in arr(spec, "readinessGates").iter().enumerate() {
        let ct = s(g, "conditionType");
        for m in is_qualified_name(ct) {
            errs.push(field::invalid(
                &path
                    .child("readinessGates")
                    .index(idx)
                    .child("conditionType"),
                ct,
                &m,
            ));
        }
    }
    let mut gates: Vec<&str> = Vec::new();
    for (idx, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let n = s(g, "name");
        let p = path.child("schedulingGates").index(idx);
        for m in is_qualified_name(n) {
            errs.push(field::invalid(&p, n, &m));
        }
        if gates.contains(&n) {
            errs.push(field::duplicate(&p, n));
        }
        gates.push(n);
    }
    validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &path.child("topologySpreadConstraints"),
        errs,
    );
    if !host_users {
        for (k, shown) in [
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ] {
            if b(spec, k) {
                errs.push(field::forbidden(
                    &path.child(shown),
                    "when `pod.Spec.HostUsers` is false",
                ));
            }
        }
    }
    let sa = s(spec, "serviceAccountName");
    if !sa.is_empty() {
        for m in name_is_dns_subdomain(sa, false) {
            errs.push(field::invalid(&path.child("serviceAccountName"), sa, &m));
        }
    }
    let node = s(spec, "nodeName");
    if !node.is_empty() {
        for m in name_is_dns_subdomain(node, false) {
            errs.push(field::invalid(&path.child("nodeName"), node, &m));
        }
    }
    if let Some(ads) = opt_i(spec, "activeDeadlineSeconds")
        && (ads < 1 || ads > i64::from(i32::MAX))
    {
        errs.push(field::invalid(
            &path.child("activeDeadlineSeconds"),
            ads,
            &inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for k in ["hostname", "subdomain"] {
        let v = s(spec, k);
        if !v.is_empty() {
            for m in is_dns1123_label(v) {
                errs.push(field::invalid(&path.child(k), v, &m));
            }
        }
    }
    validate_tolerations(arr(spec, "tolerations"), &path.child("tolerations"), errs);
    for (idx, ha) in arr(spec, "hostAliases").iter().enumerate() {
        let p = path.child("hostAliases").index(idx);
        errs.extend(is_valid_ip(&p.child("ip"), s(ha, "ip")));
        for (hi, h) in strings(ha, "hostnames").iter().enumerate() {
            for m in is_dns1123_subdomain(h) {
                errs.push(field::invalid(&p.child("hostnames").index(hi), *h, &m));
            }
        }
    }
    let pcn = s(spec, "priorityClassName");
    if !pcn.is_empty() {
        for m in name_is_dns_subdomain(pcn, false) {
            errs.push(field::invalid(&path.child("priorityClassName"), pcn, &m));
        }
    }
    if let Some(rc) = opt_s(spec, "runtimeClassName") {
        for m in name_is_dns_subdomain(rc, false) {
            errs.push(field::invalid(&path.child("runtimeClassName"), rc, &m));
        }
    }
    if let Some(pp) = opt_s(spec, "preemptionPolicy") {
        match pp {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(field::required(&path.child("preemptionPolicy"), "")),
            other => errs.push(field::not_supported(
                &path.child("preemptionPolicy"),
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(oh) = obj(spec, "overhead") {
        let wrapped = serde_json::json!({"limits": oh});
        validate_resource_requirements(
            Some(&wrapped),
            &ctx.claim_names,
            &path.child("overhead"),
            false,
            errs,
        );
    }
    validate_os(spec, path, errs);
}

fn validate_pod_resource_claims(claims: &[Value], path: &Path, errs: &mut Errs) {
    let mut names: Vec<&str> = Vec::new();
    for (idx, c) in claims.iter().enumerate() {
        let p = path.index(idx);
        let name = s(c, "name");
        if name.is_empty() {
            errs.push(field::required(&p.child("name"), ""));
        } else if names.contains(&name) {
            errs.push(field::duplicate(&p.child("name"), name));
        } else {
            for m in is_dns1123_label(name) {
                errs.push(field::invalid(&p.child("name"), name, &m));
            }
            names.push(name);
        }
        let rcn = opt_s(c, "resourceClaimName");
        let rctn = opt_s(c, "resourceClaimTemplateName");
        if rcn.is_some() && rctn.is_some() {
            errs.push(field::invalid(
                &p,
                Bad::Json(c.clone()),
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            ));
        }
        if rcn.is_none() && rctn.is_none() {
            errs.push(field::invalid(
                &p,
                Bad::Json(c.clone()),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            ));
        }
        for (k, v) in [
            ("resourceClaimName", rcn),
            ("resourceClaimTemplateName", rctn),
        ] {
            if let Some(v) = v {
                for m in name_is_dns_subdomain(v, false) {
                    errs.push(field::invalid(&p.child(k), v, &m));
                }
            }
        }
    }
}

/// `ValidatePodSpecificAnnotations` (mirror pods, deletion cost, seccomp and
/// AppArmor annotations).
pub(crate) fn validate_pod_specific_annotations(
    meta: Option<&Value>,
    spec: &Value,
    path: &Path,
    errs: &mut Errs,
) {
    let Some(ann) = meta.and_then(|m| obj(m, "annotations")) else {
        return;
    };
    if let Some(v) = opt_s(ann, "kubernetes.io/config.mirror")
        && s(spec, "nodeName").is_empty()
    {
        errs.push(field::invalid(
            &path.key("kubernetes.io/config.mirror"),
            v,
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = opt_s(ann, "controller.kubernetes.io/pod-deletion-cost")
        && v.parse::<i32>().is_err()
    {
        errs.push(field::invalid(
            &path.key("controller.kubernetes.io/pod-deletion-cost"),
            v,
            "must be a 32bit integer",
        ));
    }
    if let Some(m) = ann.as_object() {
        for (k, v) in m {
            let v = v.as_str().unwrap_or("");
            if k == "seccomp.security.alpha.kubernetes.io/pod"
                || k.starts_with("container.seccomp.security.alpha.kubernetes.io/")
            {
                let ok = v == "runtime/default"
                    || v == "docker/default"
                    || v == "unconfined"
                    || v.strip_prefix("localhost/")
                        .is_some_and(|p| !p.starts_with('/') && !p.split('/').any(|x| x == ".."));
                if !ok {
                    errs.push(field::invalid(
                        &path.child(k),
                        v,
                        "must be a valid seccomp profile",
                    ));
                }
            }
            if let Some(container) =
                k.strip_prefix("container.apparmor.security.beta.kubernetes.io/")
            {
                let exists = ["initContainers", "containers", "ephemeralContainers"]
                    .iter()
                    .any(|l| arr(spec, l).iter().any(|c| s(c, "name") == container));
                if !exists {
                    errs.push(field::invalid(
                        &path.key(k),
                        container,
                        "container not found",
                    ));
                }
                let ok = v.is_empty()
                    || v == "runtime/default"
                    || v == "unconfined"
                    || v.starts_with("localhost/");
                if !ok {
                    errs.push(field::invalid(
                        &path.key(k),
                        v,
                        &format!("invalid AppArmor profile name: {}", field::go_quote(v)),
                    ));
                }
            }
        }
    }
}

/// `ValidatePodTemplateSpec`.
pub(crate) fn validate_pod_template_spec(template: &Value, path: &Path, errs: &mut Errs) {
    let meta = template.get("metadata");
    validate_labels(
        meta.and_then(|m| m.get("labels")),
        &path.child("labels"),
        errs,
    );
    validate_annotations(
        meta.and_then(|m| m.get("annotations")),
        &path.child("annotations"),
        errs,
    );
    let empty = Value::Object(serde_json::Map::new());
    let spec = template
        .get("spec")
        .filter(|v| !v.is_null())
        .unwrap_or(&empty);
    validate_pod_specific_annotations(meta, spec, &path.child("annotations"), errs);
    validate_pod_spec(
        spec,
        None,
        &path.child("spec"),
        PodOpts {
            resource_is_pod: false,
        },
        errs,
    );
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(field::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// `validatePodMetadataAndSpec` minus the ObjectMeta part.
pub(crate) fn validate_pod_body(pod: &Value, errs: &mut Errs) {
    let spec_path = Path::new("spec");
    let empty = Value::Object(serde_json::Map::new());
    let spec = pod.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    let meta = pod.get("metadata");
    validate_pod_specific_annotations(
        meta,
        spec,
        &Path::new("metadata").child("annotations"),
        errs,
    );
    validate_pod_spec(
        spec,
        meta,
        &spec_path,
        PodOpts {
            resource_is_pod: true,
        },
        errs,
    );
    if s(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr(spec, "volumes").iter().enumerate() {
            if let Some(pr) = obj(vol, "projected") {
                for (si, src) in arr(pr, "sources").iter().enumerate() {
                    if has(src, "serviceAccountToken") {
                        errs.push(field::forbidden(
                            &spec_path
                                .child("volumes")
                                .index(vi)
                                .child("projected")
                                .child("sources")
                                .index(si)
                                .child("serviceAccountToken"),
                            "must not be specified when serviceAccountName is not set",
                        ));
                    }
                }
            }
        }
    }
    for list in ["containers", "initContainers"] {
        for (idx, c) in arr(spec, list).iter().enumerate() {
            validate_image_whitespace(c, &spec_path.child(list).index(idx), errs);
        }
    }
}
