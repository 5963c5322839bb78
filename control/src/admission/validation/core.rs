//! Core (`v1`) kinds other than the pod spec internals: Pod create/update,
//! PodTemplate, ReplicationController, Service, Namespace, ConfigMap, Secret,
//! ServiceAccount, PersistentVolume(Claim), Endpoints, Node, LimitRange,
//! ResourceQuota and Event.

use super::meta::{
    FIELD_IMMUTABLE, Finalizers, labels_of, nonnegative, validate_label_selector, validate_labels,
    validate_object_meta, validate_object_meta_update,
};
use super::net::{is_valid_cidr, is_valid_ip, validate_non_special_ip};
use super::pod::{
    validate_csi_driver_name, validate_node_selector, validate_pod_body,
    validate_pod_template_spec, validate_port_num_or_name, validate_protocol,
    validate_taint_effect, validate_tolerations,
};
use super::resources::{
    is_overcommit_allowed, is_standard_quota_resource, quantity_at,
    validate_container_resource_name, validate_quantity_value, validate_quota_resource_name,
    validate_resource_name,
};
use super::{Errs, semantic_eq, spec_diff};
use crate::admission::field::{self, Bad, Path};
use crate::admission::json::{arr, entries, has, i, map_len, obj, opt_i, opt_s, s, strings};
use crate::admission::names::{
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, is_valid_port_num, name_is_dns_label, name_is_dns_subdomain,
    name_is_dns1035_label,
};
use crate::admission::quantity::Quantity;
use serde_json::Value;
use std::cmp::Ordering;

fn meta_path() -> Path {
    Path::new("metadata")
}

fn spec_path() -> Path {
    Path::new("spec")
}

// ---------------------------------------------------------------- pods

pub(crate) fn validate_pod(pod: &Value, old: Option<&Value>, errs: &mut Errs) {
    let meta = pod.get("metadata");
    if let Some(old) = old {
        validate_object_meta_update(
            meta,
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
    }
    validate_object_meta(
        meta,
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    validate_pod_body(pod, errs);
    let empty = Value::Object(serde_json::Map::new());
    let spec = pod.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    match old {
        None => {
            if !arr(spec, "ephemeralContainers").is_empty() {
                errs.push(field::forbidden(
                    &spec_path().child("ephemeralContainers"),
                    "cannot be set on create",
                ));
            }
            if !s(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
                errs.push(field::forbidden(
                    &spec_path().child("nodeName"),
                    "cannot be set until all schedulingGates have been cleared",
                ));
            }
        }
        Some(old) => validate_pod_update(pod, old, spec, errs),
    }
}

const UPDATABLE_POD_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn validate_pod_update(pod: &Value, old: &Value, spec: &Value, errs: &mut Errs) {
    let empty = Value::Object(serde_json::Map::new());
    let old_spec = old.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    let ann_path = meta_path().child("annotations");
    let new_ann =
        crate::admission::json::string_map(pod.get("metadata").and_then(|m| m.get("annotations")));
    let old_ann =
        crate::admission::json::string_map(old.get("metadata").and_then(|m| m.get("annotations")));
    for (k, ov) in &old_ann {
        if new_ann.iter().any(|(nk, nv)| nk == k && nv == ov) {
            continue;
        }
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            errs.push(field::forbidden(
                &ann_path.key(k),
                "may not remove or update AppArmor annotations",
            ));
        }
        if k == "kubernetes.io/config.mirror" {
            errs.push(field::forbidden(
                &ann_path.key(k),
                "may not remove or update mirror pod annotation",
            ));
        }
    }
    for (k, _) in &new_ann {
        if old_ann.iter().any(|(ok, _)| ok == k) {
            continue;
        }
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            errs.push(field::forbidden(
                &ann_path.key(k),
                "may not add AppArmor annotations",
            ));
        }
        if k == "kubernetes.io/config.mirror" {
            errs.push(field::forbidden(
                &ann_path.key(k),
                "may not add mirror pod annotation",
            ));
        }
    }
    for list in ["containers", "initContainers"] {
        let (new_c, old_c) = (arr(spec, list), arr(old_spec, list));
        let p = spec_path().child(list);
        if new_c.len() != old_c.len() {
            errs.push(field::forbidden(
                &p,
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (idx, c) in new_c.iter().enumerate() {
            let image = s(c, "image");
            if image.is_empty() {
                errs.push(field::required(&p.index(idx).child("image"), ""));
            }
            if image.trim() != image {
                errs.push(field::invalid(
                    &p.index(idx).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let ads_path = spec_path().child("activeDeadlineSeconds");
    match (
        opt_i(spec, "activeDeadlineSeconds"),
        opt_i(old_spec, "activeDeadlineSeconds"),
    ) {
        (Some(n), old_ads) => {
            if n < 0 || n > i64::from(i32::MAX) {
                errs.push(field::invalid(
                    &ads_path,
                    n,
                    &crate::admission::names::inclusive_range_error(0, i64::from(i32::MAX)),
                ));
                return;
            }
            if let Some(o) = old_ads
                && o < n
            {
                errs.push(field::invalid(
                    &ads_path,
                    n,
                    "must be less than or equal to previous value",
                ));
                return;
            }
        }
        (None, Some(_)) => errs.push(field::invalid(
            &ads_path,
            Bad::Json(Value::Null),
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    // Tolerations: existing ones may only change tolerationSeconds.
    let new_tols = arr(spec, "tolerations");
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    let tol_path = spec_path().child("tolerations");
    let mut tol_ok = true;
    for ot in arr(old_spec, "tolerations") {
        if !new_tols
            .iter()
            .any(|nt| semantic_eq(&strip(nt), &strip(ot)))
        {
            errs.push(field::forbidden(
                &tol_path,
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            tol_ok = false;
            break;
        }
    }
    if tol_ok {
        validate_tolerations(new_tols, &tol_path, errs);
    }
    // Scheduling gates: only deletions.
    let new_gates = arr(spec, "schedulingGates");
    let old_gate_names: Vec<&str> = arr(old_spec, "schedulingGates")
        .iter()
        .map(|g| s(g, "name"))
        .collect();
    for (idx, g) in new_gates.iter().enumerate() {
        let n = s(g, "name");
        if !old_gate_names.contains(&n) {
            errs.push(field::forbidden(
                &spec_path()
                    .child("schedulingGates")
                    .index(idx)
                    .child("name"),
                &format!("only deletion is allowed, but found new scheduling gate '{n}'"),
            ));
        }
    }
    if semantic_eq(spec, old_spec) {
        return;
    }
    let mut munged = spec.clone();
    for list in ["containers", "initContainers"] {
        if let Some(a) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (idx, c) in a.iter_mut().enumerate() {
                let old_image = arr(old_spec, list)
                    .get(idx)
                    .map(|o| s(o, "image").to_string())
                    .unwrap_or_default();
                if let Some(m) = c.as_object_mut() {
                    m.insert("image".into(), Value::String(old_image));
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for k in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old_spec.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        let old_grace = opt_i(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && opt_i(&Value::Object(m.clone()), "terminationGracePeriodSeconds") == Some(1)
            && let Some(g) = old_spec.get("terminationGracePeriodSeconds")
        {
            m.insert("terminationGracePeriodSeconds".into(), g.clone());
        }
        if !old_gate_names.is_empty() {
            // Gated pods may add node selectors (no deletions or mutations).
            let new_sel = crate::admission::json::string_map(m.get("nodeSelector"));
            let old_sel = crate::admission::json::string_map(old_spec.get("nodeSelector"));
            if new_sel != old_sel {
                let all_kept = old_sel.iter().all(|kv| new_sel.contains(kv));
                if !all_kept {
                    errs.push(field::invalid(
                        &spec_path().child("nodeSelector"),
                        Bad::Map(m.get("nodeSelector").cloned().unwrap_or(Value::Null)),
                        "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                    ));
                }
                match old_spec.get("nodeSelector") {
                    Some(v) => m.insert("nodeSelector".into(), v.clone()),
                    None => m.remove("nodeSelector"),
                };
            }
            let old_na = old_spec
                .get("affinity")
                .and_then(|a| a.get("nodeAffinity"))
                .cloned();
            if let Some(aff) = m.get_mut("affinity").and_then(Value::as_object_mut) {
                match old_na {
                    Some(na) => aff.insert("nodeAffinity".into(), na),
                    None => aff.remove("nodeAffinity"),
                };
            }
        }
    }
    if !semantic_eq(&munged, old_spec) {
        errs.push(field::forbidden(
            &spec_path(),
            &format!(
                "pod updates may not change fields other than {UPDATABLE_POD_FIELDS}\n{}",
                spec_diff("core.PodSpec", old_spec, &munged)
            ),
        ));
    }
}

pub(crate) fn validate_pod_template(pt: &Value, old: Option<&Value>, errs: &mut Errs) {
    let meta = pt.get("metadata");
    match old {
        Some(o) => validate_object_meta_update(
            meta,
            o.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
        None => validate_object_meta(
            meta,
            true,
            name_is_dns_subdomain,
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
    }
    let empty = Value::Object(serde_json::Map::new());
    validate_pod_template_spec(
        pt.get("template").unwrap_or(&empty),
        &Path::new("template"),
        errs,
    );
}

pub(crate) fn validate_replication_controller(rc: &Value, old: Option<&Value>, errs: &mut Errs) {
    let meta = rc.get("metadata");
    match old {
        Some(o) => validate_object_meta_update(
            meta,
            o.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
        None => validate_object_meta(
            meta,
            true,
            name_is_dns_subdomain,
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
    }
    let empty = Value::Object(serde_json::Map::new());
    let spec = rc.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    let sp = spec_path();
    nonnegative(
        i(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
        errs,
    );
    let selector = crate::admission::json::string_map(spec.get("selector"));
    if selector.is_empty() {
        errs.push(field::required(&sp.child("selector"), ""));
    }
    nonnegative(
        opt_i(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
        errs,
    );
    let tp = sp.child("template");
    match obj(spec, "template") {
        None => errs.push(field::required(&tp, "")),
        Some(t) => {
            let labels = labels_of(t.get("metadata"));
            if !selector.is_empty() && !selector.iter().all(|kv| labels.contains(kv)) {
                errs.push(field::invalid(
                    &tp.child("metadata").child("labels"),
                    Bad::Map(
                        t.get("metadata")
                            .and_then(|m| m.get("labels"))
                            .cloned()
                            .unwrap_or(Value::Null),
                    ),
                    "`selector` does not match template `labels`",
                ));
            }
            validate_pod_template_spec(t, &tp, errs);
            let tspec = t.get("spec").unwrap_or(&empty);
            let rp = s(tspec, "restartPolicy");
            if rp != "Always" {
                errs.push(field::not_supported(
                    &tp.child("spec").child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            if has(tspec, "activeDeadlineSeconds") {
                errs.push(field::forbidden(
                    &tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
}

// ---------------------------------------------------------------- services

fn is_headless(spec: &Value) -> bool {
    let ips = strings(spec, "clusterIPs");
    ips.len() == 1 && ips[0] == "None"
}

pub(crate) fn validate_service(svc: &Value, old: Option<&Value>, errs: &mut Errs) {
    let empty = Value::Object(serde_json::Map::new());
    let spec = svc.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    if let Some(old) = old {
        let old_spec = old.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
        validate_object_meta_update(
            svc.get("metadata"),
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
        validate_cluster_ips_update(old_spec, spec, errs);
        validate_ip_families_update(old_spec, spec, errs);
        validate_lb_class(Some(old_spec), spec, errs);
        let needs_hc = |sp: &Value| {
            s(sp, "type") == "LoadBalancer" && s(sp, "externalTrafficPolicy") == "Local"
        };
        if needs_hc(old_spec)
            && needs_hc(spec)
            && i(spec, "healthCheckNodePort") != i(old_spec, "healthCheckNodePort")
        {
            errs.push(field::forbidden(
                &spec_path().child("healthCheckNodePort"),
                FIELD_IMMUTABLE,
            ));
        }
    }
    let meta = svc.get("metadata");
    validate_object_meta(
        meta,
        true,
        name_is_dns1035_label,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let ann = meta.and_then(|m| obj(m, "annotations"));
    let hints = ann.and_then(|a| opt_s(a, "service.kubernetes.io/topology-aware-hints"));
    let mode = ann.and_then(|a| opt_s(a, "service.kubernetes.io/topology-mode"));
    if let (Some(h), Some(m)) = (hints, mode)
        && h != m
    {
        errs.push(field::invalid(
                &meta_path().child("annotations").key("service.kubernetes.io/topology-mode"),
                m,
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
    }
    let sp = spec_path();
    let ty = s(spec, "type");
    let headless = is_headless(spec);
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(field::required(&sp.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(field::invalid(
            &sp.child("clusterIPs").index(0),
            "None",
            &format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !arr(spec, "clusterIPs").is_empty() {
                errs.push(field::forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(field::forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if has(spec, "ipFamilyPolicy") {
                errs.push(field::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = s(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(field::required(&sp.child("externalName"), ""));
            } else {
                for m in is_dns1123_subdomain(cname) {
                    errs.push(field::invalid(&sp.child("externalName"), cname, &m));
                }
            }
        }
        _ => {}
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (idx, port) in ports.iter().enumerate() {
        let p = sp.child("ports").index(idx);
        let name = s(port, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(field::required(&p.child("name"), ""));
        } else if !name.is_empty() {
            for m in is_dns1123_label(name) {
                errs.push(field::invalid(&p.child("name"), name, &m));
            }
            if port_names.contains(&name) {
                errs.push(field::duplicate(&p.child("name"), name));
            } else {
                port_names.push(name);
            }
        }
        let pn = i(port, "port");
        for m in is_valid_port_num(pn) {
            errs.push(field::invalid(&p.child("port"), pn, &m));
        }
        validate_protocol(s(port, "protocol"), &p.child("protocol"), errs);
        validate_port_num_or_name(port.get("targetPort"), &p.child("targetPort"), errs);
        if let Some(ap) = opt_s(port, "appProtocol") {
            for m in is_qualified_name(ap) {
                errs.push(field::invalid(&p.child("appProtocol"), ap, &m));
            }
        }
    }
    if has(spec, "selector") {
        validate_labels(spec.get("selector"), &sp.child("selector"), errs);
    }
    match s(spec, "sessionAffinity") {
        "" => errs.push(field::required(&sp.child("sessionAffinity"), "")),
        "ClientIP" => {
            let cp = sp.child("sessionAffinityConfig");
            match obj(spec, "sessionAffinityConfig") {
                None => errs.push(field::required(
                    &cp,
                    "when session affinity type is ClientIP",
                )),
                Some(cfg) => match obj(cfg, "clientIP") {
                    None => errs.push(field::required(
                        &cp.child("clientIP"),
                        "when session affinity type is ClientIP",
                    )),
                    Some(c) => match opt_i(c, "timeoutSeconds") {
                        None => errs.push(field::required(
                            &cp.child("clientIP").child("timeoutSeconds"),
                            "when session affinity type is ClientIP",
                        )),
                        Some(t) if t <= 0 || t > 86400 => errs.push(field::invalid(
                            &cp.child("clientIP").child("timeoutSeconds"),
                            t,
                            "must be greater than 0 and less than 86400",
                        )),
                        _ => {}
                    },
                },
            }
        }
        "None" => {
            if has(spec, "sessionAffinityConfig") {
                errs.push(field::forbidden(
                    &sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(field::not_supported(
            &sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    validate_cluster_ips(spec, errs);
    for (idx, ip) in strings(spec, "externalIPs").iter().enumerate() {
        let p = sp.child("externalIPs").index(idx);
        let ipe = is_valid_ip(&p, ip);
        if ipe.is_empty() {
            validate_non_special_ip(ip, &p, errs);
        } else {
            errs.extend(ipe);
        }
    }
    match ty {
        "" => errs.push(field::required(&sp.child("type"), "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(field::not_supported(
            &sp.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if ty == "ClusterIP" {
        for (idx, port) in ports.iter().enumerate() {
            if i(port, "nodePort") != 0 {
                errs.push(field::forbidden(
                    &sp.child("ports").index(idx).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports: Vec<(String, i64)> = Vec::new();
    for (idx, port) in ports.iter().enumerate() {
        let np = i(port, "nodePort");
        if np == 0 {
            continue;
        }
        let key = (s(port, "protocol").to_string(), np);
        if node_ports.contains(&key) {
            errs.push(field::duplicate(
                &sp.child("ports").index(idx).child("nodePort"),
                np,
            ));
        }
        node_ports.push(key);
    }
    let mut seen: Vec<(String, i64)> = Vec::new();
    for (idx, port) in ports.iter().enumerate() {
        let key = (s(port, "protocol").to_string(), i(port, "port"));
        if seen.contains(&key) {
            // The duplicate key is an internal ServicePort, printed with Go field names.
            let bad = serde_json::json!({
                "Name": "", "Protocol": key.0, "AppProtocol": null, "Port": key.1,
                "TargetPort": 0, "NodePort": 0
            });
            errs.push(field::duplicate(
                &sp.child("ports").index(idx),
                Bad::Json(bad),
            ));
        }
        seen.push(key);
    }
    let ranges = strings(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let fp = sp.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(field::forbidden(
                &fp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (idx, r) in ranges.iter().enumerate() {
            errs.extend(is_valid_cidr(&fp.index(idx), r.trim()));
        }
    } else if let Some(val) =
        ann.and_then(|a| opt_s(a, "service.beta.kubernetes.io/load-balancer-source-ranges"))
    {
        let fp = meta_path()
            .child("annotations")
            .key("service.beta.kubernetes.io/load-balancer-source-ranges");
        if ty != "LoadBalancer" {
            errs.push(field::forbidden(
                &fp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                errs.extend(is_valid_cidr(&fp, r.trim()));
            }
        }
    }
    if has(spec, "allocateLoadBalancerNodePorts") && ty != "LoadBalancer" {
        errs.push(field::forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && !has(spec, "allocateLoadBalancerNodePorts") {
        errs.push(field::required(
            &Path::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    validate_lb_class(None, spec, errs);
    let externally = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = s(spec, "externalTrafficPolicy");
    if !externally {
        if !etp.is_empty() {
            errs.push(field::invalid(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(field::required(&sp.child("externalTrafficPolicy"), ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(field::not_supported(
            &sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = i(spec, "healthCheckNodePort");
    if ty == "LoadBalancer" && etp == "Local" {
        if hc == 0 {
            errs.push(field::required(&sp.child("healthCheckNodePort"), ""));
        } else {
            for m in is_valid_port_num(hc) {
                errs.push(field::invalid(&sp.child("healthCheckNodePort"), hc, &m));
            }
        }
    } else if hc != 0 {
        errs.push(field::invalid(
            &sp.child("healthCheckNodePort"),
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    }
    match opt_s(spec, "internalTrafficPolicy") {
        None => {
            if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(field::required(&sp.child("internalTrafficPolicy"), ""));
            }
        }
        Some("Cluster" | "Local") => {}
        Some(other) => errs.push(field::not_supported(
            &sp.child("internalTrafficPolicy"),
            other,
            &["Cluster", "Local"],
        )),
    }
    if let Some(td) = opt_s(spec, "trafficDistribution") {
        const TD: [&str; 3] = ["PreferClose", "PreferSameZone", "PreferSameNode"];
        if !TD.contains(&td) {
            errs.push(field::not_supported(
                &sp.child("trafficDistribution"),
                td,
                &TD,
            ));
        }
    }
}

fn validate_lb_class(old: Option<&Value>, spec: &Value, errs: &mut Errs) {
    let p = spec_path().child("loadBalancerClass");
    let class = opt_s(spec, "loadBalancerClass");
    if let Some(old) = old {
        if s(old, "type") == "LoadBalancer"
            && s(spec, "type") == "LoadBalancer"
            && opt_s(old, "loadBalancerClass") != class
        {
            let bad = class
                .map(|c| Value::String(c.to_string()))
                .unwrap_or(Value::Null);
            errs.push(field::invalid(
                &p,
                Bad::Json(bad),
                "may not change once set",
            ));
        }
        return;
    }
    if s(spec, "type") == "LoadBalancer" {
        if let Some(c) = class {
            for m in is_qualified_name(c) {
                errs.push(field::invalid(&p, c, &m));
            }
        }
    } else if class.is_some() {
        errs.push(field::forbidden(
            &p,
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
}

fn str_list_bad(v: &[&str]) -> Bad {
    Bad::Json(Value::Array(
        v.iter().map(|s| Value::String(s.to_string())).collect(),
    ))
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips(spec: &Value, errs: &mut Errs) {
    if s(spec, "type") == "ExternalName" {
        return;
    }
    let sp = spec_path();
    let cips_path = sp.child("clusterIPs");
    let cip = s(spec, "clusterIP");
    let cips = strings(spec, "clusterIPs");
    if !cip.is_empty() {
        if cips.is_empty() {
            errs.push(field::required(&cips_path, ""));
        } else if cips[0] != cip {
            errs.push(field::invalid(
                &cips_path,
                str_list_bad(&cips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !cips.is_empty() {
        errs.push(field::invalid(
            &cips_path,
            str_list_bad(&cips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let fams = strings(spec, "ipFamilies");
    let mut seen: Vec<&str> = Vec::new();
    for (idx, f) in fams.iter().enumerate() {
        if !matches!(*f, "IPv4" | "IPv6") {
            errs.push(field::not_supported(
                &sp.child("ipFamilies").index(idx),
                *f,
                &["IPv4", "IPv6"],
            ));
        }
        if seen.contains(f) {
            errs.push(field::duplicate(&sp.child("ipFamilies").index(idx), *f));
        }
        seen.push(f);
    }
    if let Some(p) = opt_s(spec, "ipFamilyPolicy") {
        const POL: [&str; 3] = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !POL.contains(&p) {
            errs.push(field::not_supported(&sp.child("ipFamilyPolicy"), p, &POL));
        }
    }
    let mut invalid_ips = false;
    for (idx, ip) in cips.iter().enumerate() {
        if idx == 0 && *ip == "None" {
            if cips.len() > 1 {
                invalid_ips = true;
                errs.push(field::invalid(
                    &cips_path,
                    str_list_bad(&cips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = is_valid_ip(&cips_path.index(idx), ip);
        invalid_ips |= !e.is_empty();
        errs.extend(e);
    }
    if cips.len() > 2 {
        errs.push(field::invalid(
            &cips_path,
            str_list_bad(&cips),
            "may only hold up to 2 values",
        ));
    }
    if invalid_ips {
        return;
    }
    if cips.len() > 1 {
        let v6: Vec<bool> = cips.iter().map(|ip| ip.contains(':')).collect();
        let dual = v6.iter().any(|x| *x) && v6.iter().any(|x| !*x);
        if !dual {
            errs.push(field::invalid(
                &cips_path,
                str_list_bad(&cips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(spec) {
        for (idx, ip) in cips.iter().enumerate() {
            let Some(f) = fams.get(idx) else {
                break;
            };
            let is6 = ip.parse::<std::net::Ipv6Addr>().is_ok();
            if *f == "IPv4" && is6 {
                errs.push(field::invalid(
                    &cips_path.index(idx),
                    *ip,
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{idx}]`"),
                ));
            }
            if *f == "IPv6" && !is6 {
                errs.push(field::invalid(
                    &cips_path.index(idx),
                    *ip,
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{idx}]`"),
                ));
            }
        }
    }
}

fn validate_cluster_ips_update(old: &Value, new: &Value, errs: &mut Errs) {
    if s(new, "type") == "ExternalName" || s(old, "type") == "ExternalName" {
        return;
    }
    if is_headless(old) && is_headless(new) {
        return;
    }
    let (o, n) = (strings(old, "clusterIPs"), strings(new, "clusterIPs"));
    let p = spec_path().child("clusterIPs");
    if o.len() == n.len() {
        for (idx, ip) in o.iter().enumerate() {
            if *ip != n[idx] {
                errs.push(field::invalid(
                    &p.index(idx),
                    str_list_bad(&n),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(field::invalid(
                &p.index(0),
                str_list_bad(&n),
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(field::invalid(
                &p.index(0),
                str_list_bad(&n),
                "may not change once set",
            ));
        }
        if n.len() == 1 && opt_s(new, "ipFamilyPolicy") != Some("SingleStack") {
            let bad = new.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null);
            errs.push(field::invalid(
                &spec_path().child("ipFamilyPolicy"),
                Bad::Json(bad),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(field::invalid(
            &p.index(0),
            str_list_bad(&n),
            "may not change once set",
        ));
    }
}

fn validate_ip_families_update(old: &Value, new: &Value, errs: &mut Errs) {
    if s(new, "type") == "ExternalName" || s(old, "type") == "ExternalName" {
        return;
    }
    if is_headless(old) || is_headless(new) {
        return;
    }
    let (o, n) = (strings(old, "ipFamilies"), strings(new, "ipFamilies"));
    let p = spec_path().child("ipFamilies").index(0);
    let cips = strings(new, "clusterIPs");
    if o.len() == n.len() {
        for (idx, f) in o.iter().enumerate() {
            if *f != n[idx] {
                errs.push(field::invalid(
                    &p,
                    str_list_bad(&n),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if cips.is_empty() {
            errs.push(field::invalid(
                &p,
                str_list_bad(&n),
                "primary ipFamily can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            errs.push(field::invalid(
                &p,
                str_list_bad(&cips),
                "may not change once set",
            ));
        }
        if n.len() == 1 && opt_s(new, "ipFamilyPolicy") != Some("SingleStack") {
            let bad = new.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null);
            errs.push(field::invalid(
                &spec_path().child("ipFamilyPolicy"),
                Bad::Json(bad),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        errs.push(field::invalid(
            &p,
            str_list_bad(&cips),
            "may not change once set",
        ));
    }
}

// ---------------------------------------------------------------- config

pub(crate) fn validate_namespace(ns: &Value, old: Option<&Value>, errs: &mut Errs) {
    let meta = ns.get("metadata");
    validate_object_meta(
        meta,
        false,
        name_is_dns_label,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let fp = spec_path().child("finalizers");
    let empty = Value::Null;
    for f in strings(ns.get("spec").unwrap_or(&empty), "finalizers") {
        for m in is_qualified_name(f) {
            errs.push(field::invalid(&fp, f, &m));
        }
        if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(field::invalid(
                &fp,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    if let Some(old) = old {
        validate_object_meta_update(
            meta,
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
    }
}

pub(crate) fn validate_config_map(cm: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        validate_object_meta_update(
            cm.get("metadata"),
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
        if crate::admission::json::opt_b(old, "immutable") == Some(true) {
            if crate::admission::json::opt_b(cm, "immutable") != Some(true) {
                errs.push(field::forbidden(
                    &Path::new("immutable"),
                    "field is immutable when `immutable` is set",
                ));
            }
            for k in ["data", "binaryData"] {
                if !map_eq(cm.get(k), old.get(k)) {
                    errs.push(field::forbidden(
                        &Path::new(k),
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
    }
    validate_object_meta(
        cm.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let mut total = 0usize;
    for (k, v) in entries(cm, "data") {
        for m in is_config_map_key(k) {
            errs.push(field::invalid(&Path::new("data").key(k), k.as_str(), &m));
        }
        if cm.get("binaryData").and_then(|b| b.get(k)).is_some() {
            errs.push(field::invalid(
                &Path::new("data").key(k),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map(str::len).unwrap_or(0);
    }
    for (k, v) in entries(cm, "binaryData") {
        for m in is_config_map_key(k) {
            errs.push(field::invalid(
                &Path::new("binaryData").key(k),
                k.as_str(),
                &m,
            ));
        }
        total += base64_decoded_len(v.as_str().unwrap_or(""));
    }
    if total > MAX_SECRET_SIZE {
        errs.push(field::too_long(&Path::new(""), MAX_SECRET_SIZE as i64));
    }
}

/// Maps compare equal when both are empty/absent or hold the same entries.
fn map_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let norm = |v: Option<&Value>| {
        v.and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .cloned()
    };
    norm(a) == norm(b)
}

const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Length of base64-decoded data without materialising it.
pub(crate) fn base64_decoded_len(s: &str) -> usize {
    let trimmed = s.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

pub(crate) fn validate_secret(sec: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        validate_object_meta_update(
            sec.get("metadata"),
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
        let (nt, ot) = (s(sec, "type"), s(old, "type"));
        if nt != ot {
            errs.push(field::invalid(&Path::new("type"), nt, FIELD_IMMUTABLE));
        }
        if crate::admission::json::opt_b(old, "immutable") == Some(true) {
            if crate::admission::json::opt_b(sec, "immutable") != Some(true) {
                errs.push(field::forbidden(
                    &Path::new("immutable"),
                    "field is immutable when `immutable` is set",
                ));
            }
            if !map_eq(sec.get("data"), old.get("data")) {
                errs.push(field::forbidden(
                    &Path::new("data"),
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    validate_object_meta(
        sec.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let dp = Path::new("data");
    let mut total = 0usize;
    let mut keys: Vec<(String, String)> = Vec::new();
    for (k, v) in entries(sec, "data") {
        keys.push((k.clone(), v.as_str().unwrap_or("").to_string()));
    }
    for (k, v) in entries(sec, "stringData") {
        // stringData is folded into data by the apiserver before validation.
        let encoded =
            crate::admission::defaults::base64_encode(v.as_str().unwrap_or("").as_bytes());
        match keys.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = encoded,
            None => keys.push((k.clone(), encoded)),
        }
    }
    for (k, v) in &keys {
        for m in is_config_map_key(k) {
            errs.push(field::invalid(&dp.key(k), k.as_str(), &m));
        }
        total += base64_decoded_len(v);
    }
    if total > MAX_SECRET_SIZE {
        errs.push(field::too_long(&dp, MAX_SECRET_SIZE as i64));
    }
    let has_key = |k: &str| keys.iter().any(|(ek, _)| ek == k);
    let get = |k: &str| keys.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone());
    match s(sec, "type") {
        "kubernetes.io/service-account-token" => {
            let name = sec
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .map(|a| s(a, "kubernetes.io/service-account.name"))
                .unwrap_or("");
            if name.is_empty() {
                errs.push(field::required(
                    &meta_path()
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if s(sec, "type") == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match get(key) {
                None => errs.push(field::required(&dp.key(key), "")),
                Some(b64) => {
                    let bytes = base64_decode(&b64).unwrap_or_default();
                    if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes)
                    {
                        let msg = if bytes.is_empty() || e.is_eof() {
                            "unexpected end of JSON input".to_string()
                        } else {
                            e.to_string()
                        };
                        errs.push(field::invalid(
                            &dp.key(key),
                            "<secret contents redacted>",
                            &msg,
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has_key("username") && !has_key("password") => {
            errs.push(field::required(&dp.key("username"), ""));
            errs.push(field::required(&dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if get("ssh-privatekey").is_none_or(|v| v.is_empty()) => {
            errs.push(field::required(&dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            if !has_key("tls.crt") {
                errs.push(field::required(&dp.key("tls.crt"), ""));
            }
            if !has_key("tls.key") {
                errs.push(field::required(&dp.key("tls.key"), ""));
            }
        }
        _ => {}
    }
}

pub(crate) fn validate_service_account(sa: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        validate_object_meta_update(
            sa.get("metadata"),
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
    }
    validate_object_meta(
        sa.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
}

// ---------------------------------------------------------------- storage

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn validate_access_modes(spec: &Value, path: &Path, required_detail: &str, errs: &mut Errs) {
    let modes = strings(spec, "accessModes");
    if modes.is_empty() {
        errs.push(field::required(&path.child("accessModes"), required_detail));
    }
    let (mut rwop, mut other) = (false, false);
    for m in &modes {
        if !ACCESS_MODES.contains(m) {
            errs.push(field::not_supported(
                &path.child("accessModes"),
                *m,
                &ACCESS_MODES,
            ));
        }
        if *m == "ReadWriteOncePod" {
            rwop = true;
        } else if ACCESS_MODES.contains(m) {
            other = true;
        }
    }
    if rwop && other {
        errs.push(field::forbidden(
            &path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn validate_data_source(ds: &Value, path: &Path, with_namespace: bool, errs: &mut Errs) {
    if s(ds, "name").is_empty() {
        errs.push(field::required(&path.child("name"), ""));
    }
    let kind = s(ds, "kind");
    if kind.is_empty() {
        errs.push(field::required(&path.child("kind"), ""));
    }
    let group = s(ds, "apiGroup");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(field::invalid(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() {
        for m in is_dns1123_subdomain(group) {
            errs.push(field::invalid(&path.child("apiGroup"), group, &m));
        }
    }
    if with_namespace && let Some(ns) = opt_s(ds, "namespace").filter(|n| !n.is_empty()) {
        for m in name_is_dns_label(ns, false) {
            errs.push(field::invalid(&path.child("namespace"), ns, &m));
        }
    }
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_pvc_spec(spec: &Value, path: &Path, errs: &mut Errs) {
    validate_access_modes(spec, path, "at least 1 access mode is required", errs);
    if has(spec, "selector") {
        validate_label_selector(spec.get("selector"), false, &path.child("selector"), errs);
    }
    let rp = path.child("resources").key("storage");
    match spec
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(field::required(&rp, "")),
        Some(v) => {
            if let Some(q) = quantity_at(v, &rp, errs) {
                if q.sign() != Ordering::Greater {
                    errs.push(field::invalid(
                        &rp,
                        q.canonical(),
                        "must be greater than zero",
                    ));
                } else {
                    validate_quantity_value("storage", &q, "", &rp, errs);
                }
            }
        }
    }
    if let Some(sc) = opt_s(spec, "storageClassName").filter(|s| !s.is_empty()) {
        for m in name_is_dns_subdomain(sc, false) {
            errs.push(field::invalid(&path.child("storageClassName"), sc, &m));
        }
    }
    if let Some(vm) = opt_s(spec, "volumeMode")
        && !matches!(vm, "Block" | "Filesystem")
    {
        errs.push(field::not_supported(
            &path.child("volumeMode"),
            vm,
            &["Block", "Filesystem"],
        ));
    }
    if let Some(ds) = obj(spec, "dataSource") {
        validate_data_source(ds, &path.child("dataSource"), false, errs);
    }
    if let Some(dsr) = obj(spec, "dataSourceRef") {
        validate_data_source(dsr, &path.child("dataSourceRef"), true, errs);
    }
    let dsr_ns = obj(spec, "dataSourceRef")
        .and_then(|d| opt_s(d, "namespace"))
        .filter(|n| !n.is_empty());
    if dsr_ns.is_some() {
        if has(spec, "dataSource") {
            errs.push(field::invalid(
                path,
                path.child("dataSource").as_str(),
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
    } else if let (Some(ds), Some(dsr)) = (obj(spec, "dataSource"), obj(spec, "dataSourceRef")) {
        let same = opt_s(ds, "apiGroup") == opt_s(dsr, "apiGroup")
            && s(ds, "kind") == s(dsr, "kind")
            && s(ds, "name") == s(dsr, "name");
        if !same {
            errs.push(field::invalid(
                path,
                path.child("dataSource").as_str(),
                "must match dataSourceRef",
            ));
        }
    }
    if let Some(vac) = opt_s(spec, "volumeAttributesClassName").filter(|s| !s.is_empty()) {
        for m in name_is_dns_subdomain(vac, false) {
            errs.push(field::invalid(
                &path.child("volumeAttributesClassName"),
                vac,
                &m,
            ));
        }
    }
}

pub(crate) fn validate_pvc(pvc: &Value, old: Option<&Value>, errs: &mut Errs) {
    let empty = Value::Object(serde_json::Map::new());
    let spec = pvc.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    if let Some(old) = old {
        validate_object_meta_update(
            pvc.get("metadata"),
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
    }
    validate_object_meta(
        pvc.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    validate_pvc_spec(spec, &spec_path(), errs);
    let Some(old) = old else {
        return;
    };
    let old_spec = old.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    let mut new_clone = spec.clone();
    let mut old_clone = old_spec.clone();
    if s(old_spec, "volumeName").is_empty() {
        set_or_remove(&mut old_clone, "volumeName", spec.get("volumeName"));
    }
    // Setting a storage class on a claim that had none is allowed once.
    if !has(old_spec, "storageClassName") && has(spec, "storageClassName") {
        set_or_remove(&mut new_clone, "storageClassName", None);
    }
    let bound = pvc.get("status").map(|st| s(st, "phase")) == Some("Bound");
    if bound {
        let old_storage = old_spec
            .get("resources")
            .and_then(|r| r.get("requests"))
            .and_then(|r| r.get("storage"))
            .cloned();
        if let Some(req) = new_clone
            .get_mut("resources")
            .and_then(|r| r.get_mut("requests"))
            .and_then(Value::as_object_mut)
        {
            match old_storage {
                Some(v) => req.insert("storage".into(), v),
                None => req.remove("storage"),
            };
        }
        if has(&new_clone, "volumeAttributesClassName") {
            set_or_remove(
                &mut new_clone,
                "volumeAttributesClassName",
                old_spec.get("volumeAttributesClassName"),
            );
        }
    }
    if !semantic_eq(&new_clone, &old_clone) {
        errs.push(field::forbidden(
            &spec_path(),
            &format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                spec_diff("core.PersistentVolumeClaimSpec", &old_clone, &new_clone)
            ),
        ));
    }
    let qty = |sp: &Value| {
        sp.get("resources")
            .and_then(|r| r.get("requests"))
            .and_then(|r| r.get("storage"))
            .and_then(Value::as_str)
            .and_then(Quantity::parse)
            .unwrap_or(Quantity::from_int(0))
    };
    let (new_size, old_size) = (qty(spec), qty(old_spec));
    let status_size = old
        .get("status")
        .and_then(|st| st.get("capacity"))
        .and_then(|c| c.get("storage"))
        .and_then(Value::as_str)
        .and_then(Quantity::parse)
        .unwrap_or(Quantity::from_int(0));
    if new_size.cmp_value(&old_size) == Ordering::Less
        && new_size.cmp_value(&status_size) != Ordering::Greater
    {
        errs.push(field::forbidden(
            &spec_path()
                .child("resources")
                .child("requests")
                .child("storage"),
            "field can not be less than status.capacity",
        ));
    }
    if opt_s(spec, "volumeMode") != opt_s(old_spec, "volumeMode") {
        let bad = spec.get("volumeMode").cloned().unwrap_or(Value::Null);
        errs.push(field::invalid(
            &Path::new("volumeMode"),
            Bad::Json(bad),
            FIELD_IMMUTABLE,
        ));
    }
    if let (Some(_), None) = (
        opt_s(old_spec, "volumeAttributesClassName"),
        opt_s(spec, "volumeAttributesClassName"),
    ) {
        errs.push(field::forbidden(
            &spec_path().child("volumeAttributesClassName"),
            "update from non-nil value to nil is forbidden",
        ));
    }
}

fn set_or_remove(v: &mut Value, key: &str, val: Option<&Value>) {
    if let Some(m) = v.as_object_mut() {
        match val {
            Some(x) => m.insert(key.into(), x.clone()),
            None => m.remove(key),
        };
    }
}

const PV_SOURCES: [&str; 22] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

pub(crate) fn validate_pv(pv: &Value, old: Option<&Value>, errs: &mut Errs) {
    let empty = Value::Object(serde_json::Map::new());
    let spec = pv.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    validate_object_meta(
        pv.get("metadata"),
        false,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let sp = spec_path();
    validate_access_modes(spec, &sp, "", errs);
    let cap = entries(spec, "capacity");
    if cap.is_empty() {
        errs.push(field::required(&sp.child("capacity"), ""));
    }
    if !cap.iter().any(|(k, _)| *k == "storage") || cap.len() > 1 {
        errs.push(field::not_supported(
            &sp.child("capacity"),
            Bad::Map(spec.get("capacity").cloned().unwrap_or(Value::Null)),
            &["storage"],
        ));
    }
    for (k, v) in &cap {
        let p = sp.child("capacity").key(k);
        if let Some(q) = quantity_at(v, &p, errs) {
            if q.value() < 0 {
                errs.push(field::invalid(
                    &p,
                    q.value(),
                    "must be a valid resource quantity",
                ));
            }
            if q.sign() != Ordering::Greater {
                errs.push(field::invalid(
                    &p,
                    q.canonical(),
                    "must be greater than zero",
                ));
            }
        }
    }
    let rp = s(spec, "persistentVolumeReclaimPolicy");
    if !rp.is_empty() && !matches!(rp, "Delete" | "Recycle" | "Retain") {
        errs.push(field::not_supported(
            &sp.child("persistentVolumeReclaimPolicy"),
            rp,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let mut affinity_set = false;
    if let Some(na) = obj(spec, "nodeAffinity") {
        affinity_set = true;
        match obj(na, "required") {
            Some(req) => {
                validate_node_selector(req, &sp.child("nodeAffinity").child("required"), errs)
            }
            None => errs.push(field::required(
                &sp.child("nodeAffinity").child("required"),
                "must specify required node constraints",
            )),
        }
    }
    let mut num = 0;
    for key in PV_SOURCES {
        let Some(src) = obj(spec, key) else {
            continue;
        };
        if num > 0 && key != "flexVolume" {
            errs.push(field::forbidden(
                &sp.child(key),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        num += 1;
        let p = sp.child(key);
        match key {
            "hostPath" | "local" => {
                let hp = s(src, "path");
                if hp.is_empty() {
                    errs.push(field::required(&p.child("path"), ""));
                } else if hp.split('/').any(|x| x == "..") {
                    errs.push(field::invalid(
                        &p.child("path"),
                        hp,
                        "must not contain '..'",
                    ));
                }
                if key == "local" && !affinity_set {
                    errs.push(field::required(
                        &sp.child("nodeAffinity"),
                        "Local volume requires node affinity",
                    ));
                }
            }
            "nfs" => {
                if s(src, "server").is_empty() {
                    errs.push(field::required(&p.child("server"), ""));
                }
                let np = s(src, "path");
                if np.is_empty() {
                    errs.push(field::required(&p.child("path"), ""));
                }
                if !np.starts_with('/') {
                    errs.push(field::invalid(
                        &p.child("path"),
                        np,
                        "must be an absolute path",
                    ));
                }
            }
            "csi" => {
                validate_csi_driver_name(s(src, "driver"), &p.child("driver"), errs);
                if s(src, "volumeHandle").is_empty() {
                    errs.push(field::required(&p.child("volumeHandle"), ""));
                }
            }
            _ => {}
        }
    }
    if num == 0 {
        errs.push(field::required(&sp, "must specify a volume type"));
    }
    if let Some(hp) = obj(spec, "hostPath") {
        let clean = s(hp, "path").trim_end_matches('/');
        if clean.is_empty() && rp == "Recycle" {
            errs.push(field::forbidden(
                &sp.child("persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    if let Some(sc) = opt_s(spec, "storageClassName").filter(|s| !s.is_empty()) {
        for m in name_is_dns_subdomain(sc, false) {
            errs.push(field::invalid(&sp.child("storageClassName"), sc, &m));
        }
    }
    if let Some(vm) = opt_s(spec, "volumeMode")
        && !matches!(vm, "Block" | "Filesystem")
    {
        errs.push(field::not_supported(
            &sp.child("volumeMode"),
            vm,
            &["Block", "Filesystem"],
        ));
    }
    let Some(old) = old else {
        return;
    };
    validate_object_meta_update(
        pv.get("metadata"),
        old.get("metadata"),
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let old_spec = old.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    let source = |sp: &Value, allow_expand: bool| -> Value {
        let mut m = serde_json::Map::new();
        for k in PV_SOURCES {
            if let Some(v) = obj(sp, k) {
                let mut v = v.clone();
                if allow_expand
                    && k == "csi"
                    && let Some(o) = v.as_object_mut()
                {
                    o.remove("controllerExpandSecretRef");
                }
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    };
    let allow_expand = obj(old_spec, "csi").is_some_and(|c| !has(c, "controllerExpandSecretRef"));
    let (ns, os) = (source(spec, allow_expand), source(old_spec, false));
    if !semantic_eq(&ns, &os) {
        errs.push(field::forbidden(
            &Path::new("spec").child("persistentvolumesource"),
            &format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                spec_diff("core.PersistentVolumeSource", &os, &ns)
            ),
        ));
    }
    if opt_s(spec, "volumeMode") != opt_s(old_spec, "volumeMode") {
        let bad = spec.get("volumeMode").cloned().unwrap_or(Value::Null);
        errs.push(field::invalid(
            &Path::new("volumeMode"),
            Bad::Json(bad),
            FIELD_IMMUTABLE,
        ));
    }
    if has(old_spec, "nodeAffinity")
        && !semantic_eq(
            spec.get("nodeAffinity").unwrap_or(&Value::Null),
            old_spec.get("nodeAffinity").unwrap_or(&Value::Null),
        )
    {
        errs.push(field::invalid(
            &Path::new("nodeAffinity"),
            Bad::Json(spec.get("nodeAffinity").cloned().unwrap_or(Value::Null)),
            "field is immutable, except for updating from beta label to GA",
        ));
    }
}

// ---------------------------------------------------------------- endpoints, nodes

pub(crate) fn validate_endpoints(ep: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        validate_object_meta_update(
            ep.get("metadata"),
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
    }
    validate_object_meta(
        ep.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let sp = Path::new("subsets");
    for (idx, ss) in arr(ep, "subsets").iter().enumerate() {
        let p = sp.index(idx);
        if arr(ss, "addresses").is_empty() && arr(ss, "notReadyAddresses").is_empty() {
            errs.push(field::required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for key in ["addresses", "notReadyAddresses"] {
            for (ai, addr) in arr(ss, key).iter().enumerate() {
                let ap = p.child(key).index(ai);
                let ip = s(addr, "ip");
                errs.extend(is_valid_ip(&ap.child("ip"), ip));
                let hn = s(addr, "hostname");
                if !hn.is_empty() {
                    for m in is_dns1123_label(hn) {
                        errs.push(field::invalid(&ap.child("hostname"), hn, &m));
                    }
                }
                if let Some(nn) = opt_s(addr, "nodeName") {
                    for m in name_is_dns_subdomain(nn, false) {
                        errs.push(field::invalid(&ap.child("nodeName"), nn, &m));
                    }
                }
                validate_non_special_ip(ip, &ap.child("ip"), errs);
            }
        }
        let ports = arr(ss, "ports");
        for (pi, port) in ports.iter().enumerate() {
            let pp = p.child("ports").index(pi);
            let name = s(port, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(field::required(&pp.child("name"), ""));
            } else if !name.is_empty() {
                for m in is_dns1123_label(name) {
                    errs.push(field::invalid(&pp.child("name"), name, &m));
                }
            }
            let pn = i(port, "port");
            for m in is_valid_port_num(pn) {
                errs.push(field::invalid(&pp.child("port"), pn, &m));
            }
            validate_protocol(s(port, "protocol"), &pp.child("protocol"), errs);
            if let Some(ap) = opt_s(port, "appProtocol") {
                for m in is_qualified_name(ap) {
                    errs.push(field::invalid(&pp.child("appProtocol"), ap, &m));
                }
            }
        }
    }
}

fn validate_taints(taints: &[Value], path: &Path, errs: &mut Errs) {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (idx, t) in taints.iter().enumerate() {
        let p = path.index(idx);
        let key = s(t, "key");
        super::meta::validate_label_name(key, &p.child("key"), errs);
        let value = s(t, "value");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(field::invalid(&p.child("value"), value, &msgs.join(";")));
        }
        let effect = s(t, "effect");
        validate_taint_effect(effect, false, &p.child("effect"), errs);
        let k = (effect.to_string(), key.to_string());
        if seen.contains(&k) {
            // Internal core.Taint has no JSON tags: Go field names are printed.
            let bad = serde_json::json!({"Key": key, "Value": value, "Effect": effect,
                                         "TimeAdded": t.get("timeAdded").cloned().unwrap_or(Value::Null)});
            let mut e = field::duplicate(&p, Bad::Json(bad));
            e.message
                .push_str(": taints must be unique by key and effect pair");
            errs.push(e);
            continue;
        }
        seen.push(k);
    }
}

fn validate_node_resources(node: &Value, errs: &mut Errs) {
    let Some(status) = obj(node, "status") else {
        return;
    };
    for key in ["capacity", "allocatable"] {
        for (k, v) in entries(status, key) {
            let p = Path::new("status").child(key).child(k);
            if let Some(q) = quantity_at(v, &p, errs) {
                validate_quantity_value(k, &q, "", &p, errs);
            }
        }
    }
}

pub(crate) fn validate_node(node: &Value, old: Option<&Value>, errs: &mut Errs) {
    // The node strategy runs the create-time checks on updates too.
    let meta = node.get("metadata");
    let empty = Value::Object(serde_json::Map::new());
    let spec = node.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    validate_object_meta(
        meta,
        false,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    validate_taints(arr(spec, "taints"), &meta_path().child("taints"), errs);
    validate_node_resources(node, errs);
    let cidrs = strings(spec, "podCIDRs");
    if !cidrs.is_empty() {
        let cp = spec_path().child("podCIDRs");
        for (idx, c) in cidrs.iter().enumerate() {
            errs.extend(is_valid_cidr(&cp.index(idx), c));
        }
        if cidrs.len() > 1 {
            let v6: Vec<bool> = cidrs.iter().map(|c| c.contains(':')).collect();
            let dual = v6.iter().any(|x| *x) && v6.iter().any(|x| !*x);
            if !dual || cidrs.len() > 2 {
                errs.push(field::invalid(
                    &cp,
                    str_list_bad(&cidrs),
                    "may specify no more than one CIDR for each IP family",
                ));
            }
            let mut seen: Vec<&str> = Vec::new();
            for (idx, c) in cidrs.iter().enumerate() {
                if seen.contains(c) {
                    errs.push(field::duplicate(&cp.index(idx), *c));
                }
                seen.push(c);
            }
        }
    }
    let Some(old) = old else {
        return;
    };
    validate_object_meta_update(
        meta,
        old.get("metadata"),
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let old_spec = old.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    let mut addrs: Vec<&Value> = Vec::new();
    if let Some(st) = obj(node, "status") {
        for (idx, a) in arr(st, "addresses").iter().enumerate() {
            if addrs.contains(&a) {
                // Internal core.NodeAddress has no JSON tags: Go field names.
                let bad = serde_json::json!({"Type": s(a, "type"), "Address": s(a, "address")});
                errs.push(field::duplicate(
                    &Path::new("status").child("addresses").index(idx),
                    Bad::Json(bad),
                ));
            }
            addrs.push(a);
        }
    }
    let old_cidrs = strings(old_spec, "podCIDRs");
    if !old_cidrs.is_empty() && old_cidrs != cidrs {
        errs.push(field::forbidden(
            &spec_path().child("podCIDRs"),
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_pid = s(old_spec, "providerID");
    if !old_pid.is_empty() && old_pid != s(spec, "providerID") {
        errs.push(field::forbidden(
            &spec_path().child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if s(spec, "externalID") != s(old_spec, "externalID") {
        errs.push(field::forbidden(
            &spec_path().child("externalID"),
            "may not be updated",
        ));
    }
}

// ---------------------------------------------------------------- policy objects

pub(crate) fn validate_limit_range(lr: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        validate_object_meta_update(
            lr.get("metadata"),
            old.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        );
    }
    validate_object_meta(
        lr.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &meta_path(),
        errs,
    );
    let empty = Value::Object(serde_json::Map::new());
    let spec = lr.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    let fp = spec_path().child("limits");
    let mut types: Vec<&str> = Vec::new();
    for (idx, item) in arr(spec, "limits").iter().enumerate() {
        let p = fp.index(idx);
        let ty = s(item, "type");
        let before = errs.len();
        for m in is_qualified_name(ty) {
            errs.push(field::invalid(&p.child("type"), ty, &m));
        }
        if errs.len() == before
            && !ty.contains('/')
            && !matches!(ty, "Pod" | "Container" | "PersistentVolumeClaim")
        {
            errs.push(field::invalid(
                &p.child("type"),
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        if types.contains(&ty) {
            errs.push(field::duplicate(&p.child("type"), ty));
        }
        types.push(ty);
        let name_check = |k: &str, path: &Path, errs: &mut Errs| {
            if matches!(ty, "Pod" | "Container") {
                validate_container_resource_name(k, path, errs);
            } else {
                validate_resource_name(k, path, errs);
            }
        };
        let mut keys: Vec<String> = Vec::new();
        let mut collect = |field_name: &str, errs: &mut Errs| -> Vec<(String, Quantity)> {
            let mut out = Vec::new();
            for (k, v) in entries(item, field_name) {
                let pp = p.child(field_name).key(k);
                name_check(k, &pp, errs);
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
                if let Some(q) = quantity_at(v, &pp, errs) {
                    out.push((k.clone(), q));
                }
            }
            out
        };
        let max = collect("max", errs);
        let min = collect("min", errs);
        let (mut defaults, mut default_reqs) = (Vec::new(), Vec::new());
        if ty == "Pod" {
            if map_len(item, "default") > 0 {
                errs.push(field::forbidden(
                    &p.child("default"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            if map_len(item, "defaultRequest") > 0 {
                errs.push(field::forbidden(
                    &p.child("defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        } else {
            defaults = collect("default", errs);
            default_reqs = collect("defaultRequest", errs);
        }
        if ty == "PersistentVolumeClaim"
            && !min.iter().any(|(k, _)| k == "storage")
            && !max.iter().any(|(k, _)| k == "storage")
        {
            errs.push(field::required(
                &p.child("limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        let ratios = collect("maxLimitRequestRatio", errs);
        let find =
            |v: &[(String, Quantity)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, q)| *q);
        for k in &keys {
            let (mn, mx, df, dr, ra) = (
                find(&min, k),
                find(&max, k),
                find(&defaults, k),
                find(&default_reqs, k),
                find(&ratios, k),
            );
            let gt = |a: &Quantity, b: &Quantity| a.cmp_value(b) == Ordering::Greater;
            if let (Some(a), Some(b)) = (mn, mx)
                && gt(&a, &b)
            {
                errs.push(field::invalid(
                    &p.child("min").key(k),
                    a.canonical(),
                    &format!(
                        "min value {} is greater than max value {}",
                        a.canonical(),
                        b.canonical()
                    ),
                ));
            }
            if let (Some(d), Some(a)) = (dr, mn)
                && gt(&a, &d)
            {
                errs.push(field::invalid(
                    &p.child("defaultRequest").key(k),
                    d.canonical(),
                    &format!(
                        "min value {} is greater than default request value {}",
                        a.canonical(),
                        d.canonical()
                    ),
                ));
            }
            if let (Some(d), Some(b)) = (dr, mx)
                && gt(&d, &b)
            {
                errs.push(field::invalid(
                    &p.child("defaultRequest").key(k),
                    d.canonical(),
                    &format!(
                        "default request value {} is greater than max value {}",
                        d.canonical(),
                        b.canonical()
                    ),
                ));
            }
            if let (Some(d), Some(f)) = (dr, df)
                && gt(&d, &f)
            {
                errs.push(field::invalid(
                    &p.child("defaultRequest").key(k),
                    d.canonical(),
                    &format!(
                        "default request value {} is greater than default limit value {}",
                        d.canonical(),
                        f.canonical()
                    ),
                ));
            }
            if let (Some(f), Some(a)) = (df, mn)
                && gt(&a, &f)
            {
                errs.push(field::invalid(
                    &p.child("default").key(k),
                    a.canonical(),
                    &format!(
                        "min value {} is greater than default value {}",
                        a.canonical(),
                        f.canonical()
                    ),
                ));
            }
            if let (Some(f), Some(b)) = (df, mx)
                && gt(&f, &b)
            {
                errs.push(field::invalid(
                    &p.child("default").key(k),
                    b.canonical(),
                    &format!(
                        "default value {} is greater than max value {}",
                        f.canonical(),
                        b.canonical()
                    ),
                ));
            }
            if let Some(r) = ra
                && r.cmp_value(&Quantity::from_int(1)) == Ordering::Less
            {
                errs.push(field::invalid(
                    &p.child("maxLimitRequestRatio").key(k),
                    r.canonical(),
                    &format!("ratio {} is less than 1", r.canonical()),
                ));
            }
            if !is_overcommit_allowed(k)
                && let (Some(f), Some(d)) = (df, dr)
                && f.cmp_value(&d) != Ordering::Equal
            {
                errs.push(field::invalid(
                    &p.child("defaultRequest").key(k),
                    d.canonical(),
                    &format!(
                        "default value {} must equal to defaultRequest value {} in {k}",
                        f.canonical(),
                        d.canonical()
                    ),
                ));
            }
        }
    }
}

const QUOTA_SCOPES: [&str; 6] = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

pub(crate) fn validate_resource_quota(rq: &Value, old: Option<&Value>, errs: &mut Errs) {
    let empty = Value::Object(serde_json::Map::new());
    let spec = rq.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
    match old {
        None => validate_object_meta(
            rq.get("metadata"),
            true,
            name_is_dns_subdomain,
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
        Some(o) => validate_object_meta_update(
            rq.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
    }
    let sp = spec_path();
    for (k, v) in entries(spec, "hard") {
        let p = sp.child("hard").key(k);
        validate_quota_resource_name(k, &p, errs);
        if let Some(q) = quantity_at(v, &p, errs) {
            validate_quantity_value(k, &q, "", &p, errs);
        }
    }
    let scopes = strings(spec, "scopes");
    let scope_bad = || Bad::Json(Value::Array(arr(spec, "scopes").to_vec()));
    for sc in &scopes {
        if !QUOTA_SCOPES.contains(sc) {
            errs.push(field::invalid(
                &sp.child("scopes"),
                scope_bad(),
                "unsupported scope",
            ));
        }
        let mut hard: Vec<&String> = entries(spec, "hard").into_iter().map(|(k, _)| k).collect();
        hard.sort();
        for k in hard {
            if is_standard_quota_resource(k) && !scope_valid_for_resource(sc, k) {
                errs.push(field::invalid(
                    &sp.child("scopes"),
                    scope_bad(),
                    "unsupported scope applied to resource",
                ));
            }
        }
    }
    for (a, bb) in [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ] {
        if scopes.contains(&a) && scopes.contains(&bb) {
            errs.push(field::invalid(
                &sp.child("scopes"),
                scope_bad(),
                "conflicting scopes",
            ));
        }
    }
    if let Some(ss) = obj(spec, "scopeSelector") {
        let mp = sp.child("scopeSelector").child("matchExpressions");
        for req in arr(ss, "matchExpressions") {
            let name = s(req, "scopeName");
            if !QUOTA_SCOPES.contains(&name) {
                errs.push(field::invalid(
                    &mp.child("scopeName"),
                    name,
                    "unsupported scope",
                ));
            }
            let op = s(req, "operator");
            if matches!(
                name,
                "BestEffort"
                    | "NotBestEffort"
                    | "Terminating"
                    | "NotTerminating"
                    | "CrossNamespacePodAffinity"
            ) && op != "Exists"
            {
                errs.push(field::invalid(
                    &mp.child("operator"),
                    op,
                    "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                ));
            }
            let values = arr(req, "values");
            match op {
                "In" | "NotIn" => {
                    if values.is_empty() {
                        errs.push(field::required(
                            &mp.child("values"),
                            "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                        ));
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        errs.push(field::invalid(
                            &mp.child("values"),
                            Bad::Json(Value::Array(values.to_vec())),
                            "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                        ));
                    }
                }
                other => errs.push(field::invalid(
                    &mp.child("operator"),
                    other,
                    "not a valid selector operator",
                )),
            }
        }
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").filter(|v| !v.is_null()).unwrap_or(&empty);
        let mut a = strings(old_spec, "scopes");
        let mut bb = scopes.clone();
        a.sort();
        a.dedup();
        bb.sort();
        bb.dedup();
        if a != bb {
            errs.push(field::invalid(
                &sp.child("scopes"),
                scope_bad(),
                FIELD_IMMUTABLE,
            ));
        }
    } else if let Some(st) = obj(rq, "status") {
        for key in ["hard", "used"] {
            for (k, v) in entries(st, key) {
                let p = Path::new("status").child(key).key(k);
                validate_quota_resource_name(k, &p, errs);
                if let Some(q) = quantity_at(v, &p, errs) {
                    validate_quantity_value(k, &q, "", &p, errs);
                }
            }
        }
    }
}

/// `IsResourceQuotaScopeValidForResource`.
fn scope_valid_for_resource(scope: &str, resource: &str) -> bool {
    let pod_object_count = ["pods", "count/pods"];
    let pod_compute = [
        "cpu",
        "memory",
        "limits.cpu",
        "limits.memory",
        "requests.cpu",
        "requests.memory",
    ];
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => {
            pod_object_count.contains(&resource) || pod_compute.contains(&resource)
        }
        "BestEffort" => pod_object_count.contains(&resource),
        _ => true,
    }
}

pub(crate) fn validate_event(ev: &Value, old: Option<&Value>, errs: &mut Errs) {
    let meta = ev.get("metadata");
    match old {
        None => validate_object_meta(
            meta,
            true,
            name_is_dns_subdomain,
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
        Some(o) => validate_object_meta_update(
            meta,
            o.get("metadata"),
            Finalizers::Kube,
            &meta_path(),
            errs,
        ),
    }
    let ns = meta.map(|m| s(m, "namespace")).unwrap_or("");
    let io = ev.get("involvedObject");
    let io_ns = io.map(|o| s(o, "namespace")).unwrap_or("");
    let io_path = Path::new("involvedObject").child("namespace");
    if s(ev, "eventTime").is_empty() {
        if io_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(field::invalid(
                    &io_path,
                    io_ns,
                    "does not match event.namespace",
                ));
            }
        } else if ns != io_ns {
            errs.push(field::invalid(
                &io_path,
                io_ns,
                "does not match event.namespace",
            ));
        }
    } else {
        if io_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(field::invalid(
                &io_path,
                io_ns,
                "does not match event.namespace",
            ));
        }
        let rc = s(ev, "reportingComponent");
        if rc.is_empty() {
            errs.push(field::required(&Path::new("reportingComponent"), ""));
        }
        for m in is_qualified_name(rc) {
            errs.push(field::invalid(&Path::new("reportingComponent"), rc, &m));
        }
        for (k, limit) in [
            ("reportingInstance", 128usize),
            ("action", 128),
            ("reason", 128),
        ] {
            let v = s(ev, k);
            if v.is_empty() {
                errs.push(field::required(&Path::new(k), ""));
            }
            if v.len() > limit {
                errs.push(field::invalid(
                    &Path::new(k),
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if s(ev, "message").len() > 1024 {
            errs.push(field::invalid(
                &Path::new("message"),
                "",
                "can have at most 1024 characters",
            ));
        }
    }
    for m in is_dns1123_subdomain(ns) {
        errs.push(field::invalid(&Path::new("namespace"), ns, &m));
    }
}
