//! Defaulting of built-in kinds, as kube-apiserver applies it when decoding a
//! request (`pkg/apis/*/v1/defaults.go` plus the `+default` markers compiled
//! into `zz_generated.defaults.go`), together with the few create-time fills
//! from registry strategies/admission that clients observe on every object
//! (namespace finalizer and phase, service IP families, pod phase
//! and QoS class, service `clusterIPs` sync).
//!
//! Resource quantities are rewritten into canonical form, as they are when the
//! apiserver round-trips a `Quantity` (`0.5` -> `500m`).

use crate::admission::json::{
    arr, arr_mut, default_ptr, default_zero, ensure_obj, ensure_val, get_mut, has,
    is_zero_or_unset, obj, s,
};
use crate::admission::quantity::{Quantity, canonicalize};
use serde_json::{Map, Value, json};

/// Fills in defaults for an object of `(group, kind)` in place. Unknown kinds
/// are left untouched. The object is expected in wire form (camelCase).
pub fn apply_defaults(group: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (group, kind) {
        ("", "Pod") => default_pod(obj),
        ("", "PodTemplate") => {
            if let Some(t) = get_mut(obj, "template") {
                default_pod_template(t);
            }
        }
        ("", "ReplicationController") => default_replication_controller(obj),
        ("", "Service") => default_service(obj),
        ("", "Namespace") => default_namespace(obj),
        ("", "Secret") => {
            fold_string_data(obj);
            default_zero(obj, "type", json!("Opaque"));
        }
        ("", "PersistentVolume") => default_persistent_volume(obj),
        ("", "PersistentVolumeClaim") => default_pvc(obj),
        ("", "Endpoints") => {
            for subset in arr_mut(obj, "subsets") {
                for port in arr_mut(subset, "ports") {
                    default_zero(port, "protocol", json!("TCP"));
                }
            }
        }
        ("", "Node") => default_node(obj),
        ("", "LimitRange") => default_limit_range(obj),
        ("", "ResourceQuota") => {
            if let Some(spec) = get_mut(obj, "spec") {
                canonicalize_list(spec, "hard", false);
            }
            if let Some(status) = get_mut(obj, "status") {
                canonicalize_list(status, "hard", false);
                canonicalize_list(status, "used", false);
            }
        }
        ("apps", "Deployment") => default_deployment(obj),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = get_mut(obj, "spec") {
                default_ptr(spec, "replicas", json!(1));
                if let Some(t) = get_mut(spec, "template") {
                    default_pod_template(t);
                }
            }
        }
        ("apps", "StatefulSet") => default_stateful_set(obj),
        ("apps", "DaemonSet") => default_daemon_set(obj),
        ("batch", "Job") => default_job(obj),
        ("batch", "CronJob") => default_cron_job(obj),
        ("networking.k8s.io", "NetworkPolicy") => default_network_policy(obj),
        ("networking.k8s.io", "IngressClass") => {
            if let Some(p) = obj.get_mut("spec").and_then(|sp| get_mut(sp, "parameters")) {
                default_ptr(p, "scope", json!("Cluster"));
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => default_hpa(obj),
        ("discovery.k8s.io", "EndpointSlice") => {
            for port in arr_mut(obj, "ports") {
                default_ptr(port, "name", json!(""));
                default_ptr(port, "protocol", json!("TCP"));
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            for subject in arr_mut(obj, "subjects") {
                default_subject(subject);
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            default_ptr(obj, "reclaimPolicy", json!("Delete"));
            default_ptr(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("storage.k8s.io", "CSIDriver") => {
            if let Some(spec) = ensure_val(obj, "spec") {
                default_ptr(spec, "attachRequired", json!(true));
                default_ptr(spec, "podInfoOnMount", json!(false));
                default_ptr(spec, "storageCapacity", json!(false));
                default_ptr(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
                if arr(spec, "volumeLifecycleModes").is_empty()
                    && let Some(m) = spec.as_object_mut()
                {
                    m.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
                }
                default_ptr(spec, "requiresRepublish", json!(false));
                default_ptr(spec, "seLinuxMount", json!(false));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            default_ptr(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- pods

fn default_pod(pod: &mut Value) {
    let mut host_network = false;
    if let Some(spec) = get_mut(pod, "spec") {
        // SetDefaults_Pod: requests default to limits (pods only, not templates).
        for list in ["initContainers", "containers"] {
            for c in arr_mut(spec, list) {
                requests_from_limits(c);
            }
        }
        default_ptr(spec, "enableServiceLinks", json!(true));
        host_network = crate::admission::json::b(spec, "hostNetwork");
        if host_network {
            for list in ["initContainers", "containers"] {
                for c in arr_mut(spec, list) {
                    for p in arr_mut(c, "ports") {
                        if is_zero_or_unset(p, "hostPort") {
                            let cp = p.get("containerPort").cloned().unwrap_or(json!(0));
                            if let Some(m) = p.as_object_mut() {
                                m.insert("hostPort".into(), cp);
                            }
                        }
                    }
                }
            }
        }
        default_pod_spec(spec);
    } else if let Some(m) = pod.as_object_mut() {
        // A pod without spec is invalid anyway; still default an empty spec so
        // validation reports the same errors upstream would.
        let mut spec = Value::Object(Map::new());
        default_ptr(&mut spec, "enableServiceLinks", json!(true));
        default_pod_spec(&mut spec);
        m.insert("spec".into(), spec);
    }
    let _ = host_network;
    default_pod_status(pod);
}

/// The pod strategy's PrepareForCreate: phase Pending and the QoS class.
fn default_pod_status(pod: &mut Value) {
    let qos = pod.get("spec").map(qos_class);
    if let Some(status) = ensure_obj(pod, "status") {
        if status
            .get("phase")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            status.insert("phase".into(), json!("Pending"));
        }
        if let Some(q) = qos
            && status
                .get("qosClass")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            status.insert("qosClass".into(), json!(q));
        }
    }
}

/// `qos.GetPodQOS` over cpu and memory of init and regular containers (and the
/// pod-level resources when set).
fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let mut check = |res: &Value| {
        let req = res.get("requests");
        let lim = res.get("limits");
        let mut cpu_mem_limits = 0;
        for name in ["cpu", "memory"] {
            let r = req.and_then(|m| m.get(name)).and_then(Value::as_str);
            let l = lim.and_then(|m| m.get(name)).and_then(Value::as_str);
            let r = r.and_then(Quantity::parse).filter(|q| !q.is_zero());
            let l = l.and_then(Quantity::parse).filter(|q| !q.is_zero());
            if r.is_some() || l.is_some() {
                any = true;
            }
            if let Some(lq) = l {
                cpu_mem_limits += 1;
                if let Some(rq) = r
                    && rq.cmp_value(&lq) != std::cmp::Ordering::Equal
                {
                    guaranteed = false;
                }
            }
        }
        if cpu_mem_limits != 2 {
            guaranteed = false;
        }
    };
    if let Some(res) = obj(spec, "resources")
        && (has(res, "limits") || has(res, "requests"))
    {
        check(res);
        return if !any {
            "BestEffort"
        } else if guaranteed {
            "Guaranteed"
        } else {
            "Burstable"
        };
    }
    for list in ["initContainers", "containers"] {
        for c in arr(spec, list) {
            match obj(c, "resources") {
                Some(res) => check(res),
                None => check(&Value::Null),
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn requests_from_limits(container: &mut Value) {
    let Some(res) = get_mut(container, "resources") else {
        return;
    };
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if let Some(requests) = ensure_obj(res, "requests") {
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    }
}

fn default_pod_template(template: &mut Value) {
    if let Some(spec) = ensure_val(template, "spec") {
        default_pod_spec(spec);
    }
}

/// SetDefaults_PodSpec plus everything generated for a PodSpec's members.
fn default_pod_spec(spec: &mut Value) {
    default_zero(spec, "dnsPolicy", json!("ClusterFirst"));
    default_zero(spec, "restartPolicy", json!("Always"));
    default_ptr(spec, "securityContext", json!({}));
    default_ptr(spec, "terminationGracePeriodSeconds", json!(30));
    default_zero(spec, "schedulerName", json!("default-scheduler"));
    for v in arr_mut(spec, "volumes") {
        default_volume(v);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in arr_mut(spec, list) {
            default_container(c);
        }
    }
    canonicalize_list(spec, "overhead", true);
    if let Some(res) = get_mut(spec, "resources") {
        canonicalize_list(res, "limits", true);
        canonicalize_list(res, "requests", true);
    }
}

fn default_container(c: &mut Value) {
    if is_zero_or_unset(c, "imagePullPolicy") {
        let policy = pull_policy_for(s(c, "image"));
        default_zero(c, "imagePullPolicy", json!(policy));
    }
    default_zero(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_zero(c, "terminationMessagePolicy", json!("File"));
    for p in arr_mut(c, "ports") {
        default_zero(p, "protocol", json!("TCP"));
    }
    for e in arr_mut(c, "env") {
        if let Some(fr) = get_mut(e, "valueFrom").and_then(|vf| get_mut(vf, "fieldRef")) {
            default_zero(fr, "apiVersion", json!("v1"));
        }
    }
    if let Some(res) = get_mut(c, "resources") {
        canonicalize_list(res, "limits", true);
        canonicalize_list(res, "requests", true);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = get_mut(c, probe) {
            default_zero(p, "timeoutSeconds", json!(1));
            default_zero(p, "periodSeconds", json!(10));
            default_zero(p, "successThreshold", json!(1));
            default_zero(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(lc) = get_mut(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = get_mut(lc, hook) {
                default_handler(h);
            }
        }
    }
}

fn default_handler(h: &mut Value) {
    if let Some(http) = get_mut(h, "httpGet") {
        default_zero(http, "path", json!("/"));
        default_zero(http, "scheme", json!("HTTP"));
    }
    if let Some(grpc) = get_mut(h, "grpc") {
        default_ptr(grpc, "service", json!(""));
    }
}

/// `PullAlways` for `:latest` (or no tag/digest), `IfNotPresent` otherwise;
/// unparsable references get `IfNotPresent` like upstream's ignored error.
fn pull_policy_for(image: &str) -> &'static str {
    match image_tag(image) {
        Some(tag) if tag == "latest" => "Always",
        _ => "IfNotPresent",
    }
}

/// The tag `parsers.ParseImageName` would report ("latest" when neither tag nor
/// digest is given); `None` when the reference does not parse.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let (algo, hex) = d.split_once(':')?;
        if algo.is_empty() || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(i) if last_slash.is_none_or(|sl| i > sl) => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        let b = t.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if b.is_empty()
            || b.len() > 128
            || !word(b[0])
            || !b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
        {
            return None;
        }
    }
    let comps: Vec<&str> = name.split('/').collect();
    let first_is_domain = comps.len() > 1
        && (comps[0].contains('.')
            || comps[0].contains(':')
            || comps[0] == "localhost"
            || comps[0].bytes().any(|c| c.is_ascii_uppercase()));
    let path_comps = if first_is_domain {
        &comps[1..]
    } else {
        &comps[..]
    };
    if first_is_domain {
        let host = comps[0].split(':').next().unwrap_or("");
        if host.is_empty()
            || !host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        {
            return None;
        }
    }
    for p in path_comps {
        if !path_component_ok(p) {
            return None;
        }
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => Some(String::new()),
        (None, None) => Some("latest".to_string()),
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn path_component_ok(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

const VOLUME_SOURCES: [&str; 30] = [
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Value) {
    if !VOLUME_SOURCES.iter().any(|k| has(v, k))
        && let Some(m) = v.as_object_mut()
    {
        m.insert("emptyDir".into(), json!({}));
    }
    if let Some(hp) = get_mut(v, "hostPath") {
        default_ptr(hp, "type", json!(""));
    }
    if let Some(ed) = get_mut(v, "emptyDir")
        && let Some(limit) = ed.get("sizeLimit").and_then(Value::as_str)
        && let Some(c) = canonicalize(limit, false)
        && let Some(m) = ed.as_object_mut()
    {
        m.insert("sizeLimit".into(), json!(c));
    }
    for key in ["secret", "configMap"] {
        if let Some(src) = get_mut(v, key) {
            default_ptr(src, "defaultMode", json!(420));
        }
    }
    if let Some(d) = get_mut(v, "downwardAPI") {
        default_ptr(d, "defaultMode", json!(420));
        default_downward_items(d);
    }
    if let Some(p) = get_mut(v, "projected") {
        default_ptr(p, "defaultMode", json!(420));
        for src in arr_mut(p, "sources") {
            if let Some(d) = get_mut(src, "downwardAPI") {
                default_downward_items(d);
            }
            if let Some(t) = get_mut(src, "serviceAccountToken") {
                default_ptr(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(i) = get_mut(v, "iscsi") {
        default_zero(i, "iscsiInterface", json!("default"));
    }
    if let Some(r) = get_mut(v, "rbd") {
        default_zero(r, "pool", json!("rbd"));
        default_zero(r, "user", json!("admin"));
        default_zero(r, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(a) = get_mut(v, "azureDisk") {
        default_ptr(a, "cachingMode", json!("ReadWrite"));
        default_ptr(a, "fsType", json!("ext4"));
        default_ptr(a, "readOnly", json!(false));
        default_ptr(a, "kind", json!("Shared"));
    }
    if let Some(sc) = get_mut(v, "scaleIO") {
        default_zero(sc, "storageMode", json!("ThinProvisioned"));
        default_zero(sc, "fsType", json!("xfs"));
    }
    if let Some(tpl) = get_mut(v, "ephemeral").and_then(|e| get_mut(e, "volumeClaimTemplate"))
        && let Some(spec) = get_mut(tpl, "spec")
    {
        default_pvc_spec(spec);
    }
    if let Some(img) = get_mut(v, "image")
        && is_zero_or_unset(img, "pullPolicy")
    {
        let p = pull_policy_for(s(img, "reference"));
        default_zero(img, "pullPolicy", json!(p));
    }
}

fn default_downward_items(d: &mut Value) {
    for item in arr_mut(d, "items") {
        if let Some(fr) = get_mut(item, "fieldRef") {
            default_zero(fr, "apiVersion", json!("v1"));
        }
    }
}

/// Rewrites every quantity of the map `v[key]` into canonical form
/// (`SetDefaults_ResourceList` also rounds up to milli precision). JSON
/// numbers (YAML `cpu: 1`) are accepted like the Quantity decoder does and
/// written back as strings.
fn canonicalize_list(v: &mut Value, key: &str, round_milli: bool) {
    if let Some(m) = v.get_mut(key).and_then(Value::as_object_mut) {
        for val in m.values_mut() {
            let raw = match val {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            if let Some(c) = canonicalize(&raw, round_milli) {
                *val = json!(c);
            }
        }
    }
}

// ---------------------------------------------------------------- workloads

fn default_replication_controller(rc: &mut Value) {
    let template_labels = rc
        .get("spec")
        .and_then(|sp| sp.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = get_mut(rc, "spec") {
            let empty = spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            if empty && let Some(m) = spec.as_object_mut() {
                m.insert("selector".into(), labels.clone());
            }
        }
        if let Some(meta) = ensure_obj(rc, "metadata") {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            if empty {
                meta.insert("labels".into(), labels);
            }
        }
    }
    if let Some(spec) = get_mut(rc, "spec") {
        default_ptr(spec, "replicas", json!(1));
        if let Some(t) = get_mut(spec, "template") {
            default_pod_template(t);
        }
    }
}

fn default_deployment(d: &mut Value) {
    let Some(spec) = ensure_val(d, "spec") else {
        return;
    };
    default_ptr(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_val(spec, "strategy") {
        default_zero(strategy, "type", json!("RollingUpdate"));
        if s(strategy, "type") == "RollingUpdate"
            && let Some(ru) = ensure_obj(strategy, "rollingUpdate")
        {
            if ru.get("maxUnavailable").is_none_or(Value::is_null) {
                ru.insert("maxUnavailable".into(), json!("25%"));
            }
            if ru.get("maxSurge").is_none_or(Value::is_null) {
                ru.insert("maxSurge".into(), json!("25%"));
            }
        }
    }
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    default_ptr(spec, "progressDeadlineSeconds", json!(600));
    if let Some(t) = get_mut(spec, "template") {
        default_pod_template(t);
    }
}

fn default_daemon_set(ds: &mut Value) {
    let Some(spec) = ensure_val(ds, "spec") else {
        return;
    };
    if let Some(us) = ensure_val(spec, "updateStrategy") {
        default_zero(us, "type", json!("RollingUpdate"));
        if s(us, "type") == "RollingUpdate"
            && let Some(ru) = ensure_obj(us, "rollingUpdate")
        {
            if ru.get("maxUnavailable").is_none_or(Value::is_null) {
                ru.insert("maxUnavailable".into(), json!(1));
            }
            if ru.get("maxSurge").is_none_or(Value::is_null) {
                ru.insert("maxSurge".into(), json!(0));
            }
        }
    }
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    if let Some(t) = get_mut(spec, "template") {
        default_pod_template(t);
    }
}

fn default_stateful_set(ss: &mut Value) {
    let Some(spec) = ensure_val(ss, "spec") else {
        return;
    };
    default_zero(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(us) = ensure_val(spec, "updateStrategy") {
        if is_zero_or_unset(us, "type") {
            default_zero(us, "type", json!("RollingUpdate"));
            default_ptr(us, "rollingUpdate", json!({}));
        }
        if s(us, "type") == "RollingUpdate"
            && let Some(ru) = get_mut(us, "rollingUpdate")
        {
            default_ptr(ru, "partition", json!(0));
            // MaxUnavailableStatefulSet is beta and on by default since 1.35.
            default_ptr(ru, "maxUnavailable", json!(1));
        }
    }
    if let Some(p) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
        for k in ["whenDeleted", "whenScaled"] {
            let unset = p.get(k).and_then(Value::as_str).is_none_or(str::is_empty);
            if unset {
                p.insert(k.into(), json!("Retain"));
            }
        }
    }
    default_ptr(spec, "replicas", json!(1));
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    if let Some(t) = get_mut(spec, "template") {
        default_pod_template(t);
    }
    for pvc in arr_mut(spec, "volumeClaimTemplates") {
        default_pvc(pvc);
    }
}

fn default_job(job: &mut Value) {
    let template_labels = job
        .get("spec")
        .and_then(|sp| sp.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels
        && let Some(meta) = ensure_obj(job, "metadata")
    {
        let empty = meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if empty {
            meta.insert("labels".into(), labels);
        }
    }
    let Some(spec) = ensure_val(job, "spec") else {
        return;
    };
    default_job_spec(spec);
}

fn default_job_spec(spec: &mut Value) {
    let unset = |v: &Value, k: &str| v.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        default_ptr(spec, "completions", json!(1));
        default_ptr(spec, "parallelism", json!(1));
    }
    default_ptr(spec, "parallelism", json!(1));
    if unset(spec, "backoffLimit") {
        let v = if unset(spec, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        default_ptr(spec, "backoffLimit", json!(v));
    }
    default_ptr(spec, "completionMode", json!("NonIndexed"));
    default_ptr(spec, "suspend", json!(false));
    let has_pfp = has(spec, "podFailurePolicy");
    if let Some(pfp) = get_mut(spec, "podFailurePolicy") {
        for rule in arr_mut(pfp, "rules") {
            for pattern in arr_mut(rule, "onPodConditions") {
                default_zero(pattern, "status", json!("True"));
            }
        }
    }
    let policy = if has_pfp {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_ptr(spec, "podReplacementPolicy", json!(policy));
    if let Some(t) = get_mut(spec, "template") {
        default_pod_template(t);
    }
}

fn default_cron_job(cj: &mut Value) {
    let Some(spec) = ensure_val(cj, "spec") else {
        return;
    };
    default_zero(spec, "concurrencyPolicy", json!("Allow"));
    default_ptr(spec, "suspend", json!(false));
    default_ptr(spec, "successfulJobsHistoryLimit", json!(3));
    default_ptr(spec, "failedJobsHistoryLimit", json!(1));
    // Only the embedded pod template is defaulted; JobSpec defaults are not
    // applied to a JobTemplateSpec (they happen when the Job is created).
    if let Some(t) = get_mut(spec, "jobTemplate")
        .and_then(|jt| get_mut(jt, "spec"))
        .and_then(|js| get_mut(js, "template"))
    {
        default_pod_template(t);
    }
}

// ---------------------------------------------------------------- core misc

fn default_service(svc: &mut Value) {
    let Some(spec) = ensure_val(svc, "spec") else {
        return;
    };
    default_zero(spec, "sessionAffinity", json!("None"));
    match s(spec, "sessionAffinity") {
        "None" => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        "ClientIP" => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout && let Some(m) = spec.as_object_mut() {
                m.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    default_zero(spec, "type", json!("ClusterIP"));
    for p in arr_mut(spec, "ports") {
        default_zero(p, "protocol", json!("TCP"));
        let tp_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if tp_unset {
            let port = p.get("port").cloned().unwrap_or(json!(0));
            if let Some(m) = p.as_object_mut() {
                m.insert("targetPort".into(), port);
            }
        }
    }
    let ty = s(spec, "type").to_string();
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    if externally_accessible {
        default_zero(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        default_ptr(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_ptr(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        // Strategy normalizeClusterIPs (create): an old client that sets only
        // the singular clusterIP gets the plural filled in.
        let cip = s(spec, "clusterIP").to_string();
        if !cip.is_empty()
            && arr(spec, "clusterIPs").is_empty()
            && let Some(m) = spec.as_object_mut()
        {
            m.insert("clusterIPs".into(), json!([cip]));
        }
        // IP family defaults from the service allocator (single-stack IPv4
        // cluster): headless without selector requires dual stack.
        let headless = s(spec, "clusterIP") == "None";
        let selectorless = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        let policy = if headless && selectorless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        default_ptr(spec, "ipFamilyPolicy", json!(policy));
        if arr(spec, "ipFamilies").is_empty() {
            let family = if s(spec, "clusterIP").parse::<std::net::Ipv6Addr>().is_ok() {
                "IPv6"
            } else {
                "IPv4"
            };
            if let Some(m) = spec.as_object_mut() {
                m.insert("ipFamilies".into(), json!([family]));
            }
        }
    }
    if ty == "LoadBalancer"
        && let Some(lb) = get_mut(svc, "status").and_then(|st| get_mut(st, "loadBalancer"))
    {
        for ing in arr_mut(lb, "ingress") {
            if !s(ing, "ip").is_empty() {
                default_ptr(ing, "ipMode", json!("VIP"));
            }
        }
    }
}

fn default_namespace(ns: &mut Value) {
    let name = ns
        .get("metadata")
        .map(|m| s(m, "name").to_string())
        .unwrap_or_default();
    if !name.is_empty()
        && let Some(labels) = ensure_val(ns, "metadata").and_then(|m| ensure_obj(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    // The strategy adds the "kubernetes" finalizer on create; only fill it when
    // the list is absent so updates that clear it (finalize) are respected.
    if let Some(spec) = ensure_obj(ns, "spec")
        && spec.get("finalizers").is_none_or(Value::is_null)
    {
        spec.insert("finalizers".into(), json!(["kubernetes"]));
    }
    if let Some(status) = ensure_obj(ns, "status") {
        let unset = status
            .get("phase")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if unset {
            status.insert("phase".into(), json!("Active"));
        }
    }
}

fn default_persistent_volume(pv: &mut Value) {
    if let Some(status) = ensure_obj(pv, "status") {
        let unset = status
            .get("phase")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if unset {
            status.insert("phase".into(), json!("Pending"));
        }
    }
    if let Some(spec) = ensure_val(pv, "spec") {
        default_zero(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        default_ptr(spec, "volumeMode", json!("Filesystem"));
        canonicalize_list(spec, "capacity", false);
        if let Some(rbd) = get_mut(spec, "rbd") {
            default_zero(rbd, "pool", json!("rbd"));
            default_zero(rbd, "user", json!("admin"));
            default_zero(rbd, "keyring", json!("/etc/ceph/keyring"));
        }
        if let Some(i) = get_mut(spec, "iscsi") {
            default_zero(i, "iscsiInterface", json!("default"));
        }
        if let Some(hp) = get_mut(spec, "hostPath") {
            default_ptr(hp, "type", json!(""));
        }
        if let Some(a) = get_mut(spec, "azureDisk") {
            default_ptr(a, "cachingMode", json!("ReadWrite"));
            default_ptr(a, "fsType", json!("ext4"));
            default_ptr(a, "readOnly", json!(false));
            default_ptr(a, "kind", json!("Shared"));
        }
        if let Some(sc) = get_mut(spec, "scaleIO") {
            default_zero(sc, "storageMode", json!("ThinProvisioned"));
            default_zero(sc, "fsType", json!("xfs"));
        }
    }
}

fn default_pvc(pvc: &mut Value) {
    if let Some(status) = ensure_obj(pvc, "status") {
        let unset = status
            .get("phase")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if unset {
            status.insert("phase".into(), json!("Pending"));
        }
    }
    if let Some(spec) = ensure_val(pvc, "spec") {
        default_pvc_spec(spec);
    }
}

fn default_pvc_spec(spec: &mut Value) {
    default_ptr(spec, "volumeMode", json!("Filesystem"));
    if let Some(res) = get_mut(spec, "resources") {
        canonicalize_list(res, "limits", true);
        canonicalize_list(res, "requests", true);
    }
}

fn default_node(node: &mut Value) {
    if let Some(status) = get_mut(node, "status") {
        canonicalize_list(status, "capacity", true);
        canonicalize_list(status, "allocatable", true);
        let no_alloc = status.get("allocatable").is_none_or(Value::is_null);
        if no_alloc
            && let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned()
            && let Some(m) = status.as_object_mut()
        {
            m.insert("allocatable".into(), cap);
        }
    }
}

fn default_limit_range(lr: &mut Value) {
    let Some(spec) = get_mut(lr, "spec") else {
        return;
    };
    for item in arr_mut(spec, "limits") {
        for k in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            canonicalize_list(item, k, true);
        }
        if s(item, "type") != "Container" {
            continue;
        }
        let max = item.get("max").and_then(Value::as_object).cloned();
        let min = item.get("min").and_then(Value::as_object).cloned();
        if let Some(def) = ensure_obj(item, "default") {
            for (k, v) in max.iter().flatten() {
                def.entry(k.clone()).or_insert(v.clone());
            }
        }
        let def = item.get("default").and_then(Value::as_object).cloned();
        if let Some(req) = ensure_obj(item, "defaultRequest") {
            for (k, v) in def.iter().flatten() {
                req.entry(k.clone()).or_insert(v.clone());
            }
            for (k, v) in min.iter().flatten() {
                req.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
}

/// v1 -> internal conversion of a Secret folds `stringData` into `data`
/// (base64-encoded, overriding same-named keys) and drops `stringData`.
fn fold_string_data(secret: &mut Value) {
    let Some(sd) = secret
        .as_object_mut()
        .and_then(|m| m.remove("stringData"))
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
    else {
        return;
    };
    if let Some(data) = ensure_obj(secret, "data") {
        for (k, v) in sd {
            let encoded = base64_encode(v.as_str().unwrap_or("").as_bytes());
            data.insert(k, json!(encoded));
        }
    }
}

/// Standard base64 with padding (Secret `data` encoding).
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (idx, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if idx <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------- other groups

fn default_network_policy(np: &mut Value) {
    let Some(spec) = get_mut(np, "spec") else {
        return;
    };
    for dir in ["ingress", "egress"] {
        for rule in arr_mut(spec, dir) {
            for port in arr_mut(rule, "ports") {
                default_ptr(port, "protocol", json!("TCP"));
            }
        }
    }
    if arr(spec, "policyTypes").is_empty() {
        let mut types = vec![json!("Ingress")];
        if !arr(spec, "egress").is_empty() {
            types.push(json!("Egress"));
        }
        if let Some(m) = spec.as_object_mut() {
            m.insert("policyTypes".into(), Value::Array(types));
        }
    }
}

fn default_hpa(hpa: &mut Value) {
    let v1 = s(hpa, "apiVersion") == "autoscaling/v1";
    let Some(spec) = get_mut(hpa, "spec") else {
        return;
    };
    default_ptr(spec, "minReplicas", json!(1));
    if v1 {
        return;
    }
    if arr(spec, "metrics").is_empty()
        && let Some(m) = spec.as_object_mut()
    {
        m.insert(
                "metrics".into(),
                json!([{
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
                }]),
            );
    }
    if let Some(behavior) = get_mut(spec, "behavior") {
        let up_default = json!({
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}
            ]
        });
        let down_default = json!({
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]
        });
        for (key, def) in [("scaleUp", up_default), ("scaleDown", down_default)] {
            let merged = merge_scaling_rules(behavior.get(key), def);
            if let Some(m) = behavior.as_object_mut() {
                m.insert(key.into(), merged);
            }
        }
    }
}

/// `copyHPAScalingRules`: user-set members override the defaults.
fn merge_scaling_rules(from: Option<&Value>, mut to: Value) -> Value {
    let Some(from) = from.filter(|f| f.is_object()) else {
        return to;
    };
    for k in [
        "selectPolicy",
        "stabilizationWindowSeconds",
        "policies",
        "tolerance",
    ] {
        if let Some(v) = from.get(k).filter(|v| !v.is_null())
            && let Some(m) = to.as_object_mut()
        {
            m.insert(k.into(), v.clone());
        }
    }
    to
}

fn default_subject(subject: &mut Value) {
    if is_zero_or_unset(subject, "apiGroup") {
        let group = match s(subject, "kind") {
            "ServiceAccount" => Some(""),
            "User" | "Group" => Some("rbac.authorization.k8s.io"),
            _ => None,
        };
        if let Some(g) = group
            && let Some(m) = subject.as_object_mut()
        {
            m.insert("apiGroup".into(), json!(g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(group: &str, kind: &str, mut v: Value) -> Value {
        apply_defaults(group, kind, &mut v);
        v
    }

    #[test]
    fn pod_defaults_match_upstream() {
        let pod = defaulted(
            "",
            "Pod",
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "default"},
                "spec": {"containers": [{
                    "name": "c", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
                    "livenessProbe": {"httpGet": {"port": 80}},
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
                }], "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}
            }),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        // Priority comes from the Priority admission plugin, not from defaulting.
        assert!(spec.get("priority").is_none());
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            c["resources"]["limits"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    }

    #[test]
    fn numeric_quantities_become_canonical_strings() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": 0.25, "memory": 134217728}}}],
                "overhead": {"cpu": "250m"}}}),
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "250m", "memory": "134217728"})
        );
        assert_eq!(pod["status"]["qosClass"], "Burstable");
        let pvc = defaulted(
            "",
            "PersistentVolumeClaim",
            json!({"spec": {"resources": {"requests": {"storage": "2e9"}}}}),
        );
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "2e9");
    }

    #[test]
    fn image_pull_policy_by_tag() {
        assert_eq!(pull_policy_for("nginx"), "Always");
        assert_eq!(pull_policy_for("nginx:latest"), "Always");
        assert_eq!(pull_policy_for("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy_for("localhost:5000/app"), "Always");
        assert_eq!(pull_policy_for("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(
            pull_policy_for(
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            ),
            "IfNotPresent"
        );
        assert_eq!(pull_policy_for("registry.k8s.io/pause:3.9"), "IfNotPresent");
        assert_eq!(pull_policy_for("Nginx"), "IfNotPresent");
        assert_eq!(pull_policy_for(""), "IfNotPresent");
    }

    #[test]
    fn qos_classes() {
        let best = json!({"containers": [{"name": "a"}]});
        assert_eq!(qos_class(&best), "BestEffort");
        let burst = json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&burst), "Burstable");
        let guar = json!({"containers": [{"name": "a", "resources": {
            "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&guar), "Guaranteed");
    }

    #[test]
    fn pod_keeps_explicit_values_and_host_network_ports() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {
                "restartPolicy": "Never", "hostNetwork": true, "priorityClassName": "custom",
                "containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "Never",
                                "ports": [{"containerPort": 8080, "protocol": "UDP"}]}]}}),
        );
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Never");
        assert_eq!(
            c["ports"][0],
            json!({"containerPort": 8080, "protocol": "UDP", "hostPort": 8080})
        );
        assert!(pod["spec"].get("priority").is_none());
    }

    #[test]
    fn deployment_defaults() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({"metadata": {"name": "d"}, "spec": {
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx:1.0"}]}}}}),
        );
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let tspec = &spec["template"]["spec"];
        assert_eq!(tspec["restartPolicy"], "Always");
        assert_eq!(tspec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        // Pod-only defaults do not apply to templates.
        assert!(tspec.get("enableServiceLinks").is_none());
        assert!(tspec.get("priority").is_none());
        let recreate = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn statefulset_daemonset_replicaset_defaults() {
        let ss = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}),
        );
        let spec = &ss["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"]["phase"],
            "Pending"
        );
        let ondelete = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        );
        assert_eq!(
            ondelete["spec"]["updateStrategy"],
            json!({"type": "OnDelete"})
        );
        let ds = defaulted("apps", "DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        let rs = defaulted("apps", "ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
    }

    #[test]
    fn job_and_cronjob_defaults() {
        let job = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "j"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        );
        let spec = &job["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(spec.get("selector").is_none());
        assert_eq!(job["metadata"]["labels"], json!({"a": "b"}));
        let par = defaulted(
            "batch",
            "Job",
            json!({"spec": {"parallelism": 3, "backoffLimitPerIndex": 1,
            "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}}),
        );
        assert!(par["spec"].get("completions").is_none());
        assert_eq!(par["spec"]["backoffLimit"], 2147483647);
        assert_eq!(par["spec"]["podReplacementPolicy"], "Failed");
        assert_eq!(
            par["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );
        let cj = defaulted(
            "batch",
            "CronJob",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        );
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
        assert_eq!(
            spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
    }

    #[test]
    fn service_defaults() {
        let svc = defaulted(
            "",
            "Service",
            json!({"spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}}),
        );
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert!(spec.get("externalTrafficPolicy").is_none());
        let lb = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
            "ports": [{"port": 443, "targetPort": "https"}]}}),
        );
        let spec = &lb["spec"];
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            spec["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        assert_eq!(spec["ports"][0]["targetPort"], "https");
        let headless = defaulted("", "Service", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        let ext = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "x.com"}}),
        );
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
        let v6 = defaulted("", "Service", json!({"spec": {"clusterIP": "fd00::10"}}));
        assert_eq!(v6["spec"]["ipFamilies"], json!(["IPv6"]));
    }

    #[test]
    fn namespace_secret_storage_defaults() {
        let ns = defaulted("", "Namespace", json!({"metadata": {"name": "team-a"}}));
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        let cleared = defaulted(
            "",
            "Namespace",
            json!({"metadata": {"name": "x"}, "spec": {"finalizers": []}}),
        );
        assert_eq!(cleared["spec"]["finalizers"], json!([]));
        let sec = defaulted("", "Secret", json!({"data": {}}));
        assert_eq!(sec["type"], "Opaque");
        let sec = defaulted(
            "",
            "Secret",
            json!({"data": {"a": "eA=="}, "stringData": {"a": "hello", "b": "hi!"}}),
        );
        assert_eq!(sec["data"], json!({"a": "aGVsbG8=", "b": "aGkh"}));
        assert!(sec.get("stringData").is_none());
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        let pvc = defaulted(
            "",
            "PersistentVolumeClaim",
            json!({"spec": {"resources": {"requests": {"storage": "1.5Gi"}}}}),
        );
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1536Mi");
        assert_eq!(pvc["status"]["phase"], "Pending");
        let pv = defaulted(
            "",
            "PersistentVolume",
            json!({"spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}}}),
        );
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["spec"]["hostPath"]["type"], "");
        assert_eq!(pv["status"]["phase"], "Pending");
    }

    #[test]
    fn networking_autoscaling_rbac_defaults() {
        let np = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {},
            "egress": [{"ports": [{"port": 53}]}]}}),
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let np2 = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}}}),
        );
        assert_eq!(np2["spec"]["policyTypes"], json!(["Ingress"]));
        let hpa = defaulted(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"apiVersion": "autoscaling/v2",
            "spec": {"maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        );
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(
            hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            60
        );
        assert_eq!(
            hpa["spec"]["behavior"]["scaleDown"]["policies"][0]["type"],
            "Percent"
        );
        assert_eq!(
            hpa["spec"]["behavior"]["scaleUp"]["policies"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let hpa1 = defaulted(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 2}}),
        );
        assert!(hpa1["spec"].get("metrics").is_none());
        assert_eq!(hpa1["spec"]["minReplicas"], 1);
        let rb = defaulted(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"subjects": [
            {"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]}),
        );
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][1]["apiGroup"], "");
        let role = defaulted("rbac.authorization.k8s.io", "Role", json!({"rules": []}));
        assert_eq!(role, json!({"rules": []}));
        let eps = defaulted(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"ports": [{"port": 80}]}),
        );
        assert_eq!(
            eps["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );
        let ep = defaulted(
            "",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn limit_range_node_rc_defaults() {
        let lr = defaulted(
            "",
            "LimitRange",
            json!({"spec": {"limits": [{"type": "Container",
            "max": {"cpu": "2"}, "min": {"memory": "100Mi"}}]}}),
        );
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "2"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "2", "memory": "100Mi"})
        );
        let node = defaulted(
            "",
            "Node",
            json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}),
        );
        assert_eq!(
            node["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
        let rc = defaulted(
            "",
            "ReplicationController",
            json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        let sc = defaulted(
            "storage.k8s.io",
            "StorageClass",
            json!({"provisioner": "x"}),
        );
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        let pc = defaulted("scheduling.k8s.io", "PriorityClass", json!({"value": 5}));
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    }

    #[test]
    fn defaulted_objects_still_deserialize() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "readinessProbe": {"grpc": {"port": 9}}}],
                     "volumes": [{"name": "v"}, {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}}),
        );
        let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
        let spec = typed.spec.unwrap();
        assert_eq!(
            spec.containers[0]
                .readiness_probe
                .as_ref()
                .unwrap()
                .grpc
                .as_ref()
                .unwrap()
                .service
                .as_deref(),
            Some("")
        );
        let d = defaulted(
            "apps",
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        let typed: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(d).unwrap();
        assert_eq!(typed.spec.replicas, Some(1));
        let s = defaulted(
            "",
            "Service",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]}}),
        );
        let typed: k8s_openapi::api::core::v1::Service = serde_json::from_value(s).unwrap();
        assert_eq!(
            typed.spec.unwrap().ip_families,
            Some(vec!["IPv4".to_string()])
        );
    }
}
