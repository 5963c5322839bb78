//! Validation of built-in kinds on create and update, returning field errors
//! worded like kube-apiserver's. Dispatches on `(group, kind)`; kinds without
//! specific rules get ObjectMeta validation with the DNS-subdomain name rule
//! (what custom resources get).

mod apps;
mod batch;
mod core;
mod groups;
mod meta;
mod net;
mod pod;
mod resources;

use crate::admission::field::FieldError;
use crate::admission::names::name_is_dns_subdomain;
use meta::Finalizers;
use serde_json::Value;

pub(crate) type Errs = Vec<FieldError>;

/// Validates `obj` of `(group, kind)`: a create when `old` is `None`, else an
/// update from `old`. `namespaced` says whether the kind is namespace-scoped
/// (used for kinds without specific rules; built-ins know their own scope).
/// Returns the field errors in upstream order (empty when valid).
pub fn validate(
    group: &str,
    kind: &str,
    namespaced: bool,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (group, kind) {
        ("", "Pod") => core::validate_pod(obj, old, &mut errs),
        ("", "PodTemplate") => core::validate_pod_template(obj, old, &mut errs),
        ("", "ReplicationController") => core::validate_replication_controller(obj, old, &mut errs),
        ("", "Service") => core::validate_service(obj, old, &mut errs),
        ("", "Namespace") => core::validate_namespace(obj, old, &mut errs),
        ("", "ConfigMap") => core::validate_config_map(obj, old, &mut errs),
        ("", "Secret") => core::validate_secret(obj, old, &mut errs),
        ("", "ServiceAccount") => core::validate_service_account(obj, old, &mut errs),
        ("", "PersistentVolume") => core::validate_pv(obj, old, &mut errs),
        ("", "PersistentVolumeClaim") => core::validate_pvc(obj, old, &mut errs),
        ("", "Endpoints") => core::validate_endpoints(obj, old, &mut errs),
        ("", "Node") => core::validate_node(obj, old, &mut errs),
        ("", "LimitRange") => core::validate_limit_range(obj, old, &mut errs),
        ("", "ResourceQuota") => core::validate_resource_quota(obj, old, &mut errs),
        ("", "Event") => core::validate_event(obj, old, &mut errs),
        ("apps", "Deployment") => apps::validate_deployment(obj, old, &mut errs),
        ("apps", "ReplicaSet") => apps::validate_replica_set(obj, old, &mut errs),
        ("apps", "StatefulSet") => apps::validate_stateful_set(obj, old, &mut errs),
        ("apps", "DaemonSet") => apps::validate_daemon_set(obj, old, &mut errs),
        ("apps", "ControllerRevision") => apps::validate_controller_revision(obj, old, &mut errs),
        ("batch", "Job") => batch::validate_job(obj, old, &mut errs),
        ("batch", "CronJob") => batch::validate_cron_job(obj, old, &mut errs),
        ("networking.k8s.io", "NetworkPolicy") => {
            groups::validate_network_policy(obj, old, &mut errs)
        }
        ("networking.k8s.io", "Ingress") => groups::validate_ingress(obj, old, &mut errs),
        ("networking.k8s.io", "IngressClass") => {
            groups::validate_ingress_class(obj, old, &mut errs)
        }
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            groups::validate_role(obj, old, kind == "Role", &mut errs)
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            groups::validate_role_binding(obj, old, kind == "RoleBinding", &mut errs)
        }
        ("policy", "PodDisruptionBudget") => groups::validate_pdb(obj, old, &mut errs),
        ("autoscaling", "HorizontalPodAutoscaler") => groups::validate_hpa(obj, old, &mut errs),
        ("discovery.k8s.io", "EndpointSlice") => {
            groups::validate_endpoint_slice(obj, old, &mut errs)
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            groups::validate_priority_class(obj, old, &mut errs)
        }
        ("storage.k8s.io", "StorageClass") => groups::validate_storage_class(obj, old, &mut errs),
        _ => {
            let fin = if is_builtin_group(group) {
                Finalizers::Kube
            } else {
                Finalizers::Generic
            };
            let mp = crate::admission::field::Path::new("metadata");
            match old {
                None => meta::validate_object_meta(
                    obj.get("metadata"),
                    namespaced,
                    name_is_dns_subdomain,
                    fin,
                    &mp,
                    &mut errs,
                ),
                Some(o) => meta::validate_object_meta_update(
                    obj.get("metadata"),
                    o.get("metadata"),
                    fin,
                    &mp,
                    &mut errs,
                ),
            }
        }
    }
    errs
}

fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

/// Go `apiequality.Semantic.DeepEqual` over wire JSON: unset, null and zero
/// values (`""`, `0`, `false`, `[]`, `{}`) compare equal, as nil and empty
/// do for the Go structs.
pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                let n = normalize(x);
                if !is_zero(&n) {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// A short, `cmp.Diff`-like listing of the top-level fields that differ.
pub(crate) fn spec_diff(type_name: &str, old: &Value, new: &Value) -> String {
    let (o, n) = (normalize(old), normalize(new));
    let empty = serde_json::Map::new();
    let om = o.as_object().unwrap_or(&empty);
    let nm = n.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = om.keys().chain(nm.keys()).collect();
    keys.dedup();
    let mut seen: Vec<&String> = Vec::new();
    let mut out = format!("  {type_name}{{\n");
    for k in keys {
        if seen.contains(&k) {
            continue;
        }
        seen.push(k);
        let (a, b) = (om.get(k), nm.get(k));
        if a == b {
            continue;
        }
        let name = upper_first(k);
        if let Some(a) = a {
            out.push_str(&format!(
                "- \t{name}: {},\n",
                crate::admission::field::go_json(a, false)
            ));
        }
        if let Some(b) = b {
            out.push_str(&format!(
                "+ \t{name}: {},\n",
                crate::admission::field::go_json(b, false)
            ));
        }
    }
    out.push_str("  }\n");
    out
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
