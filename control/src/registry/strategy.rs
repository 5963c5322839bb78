//! What differs per kind in the generic write path: server-owned fields on create, what an
//! update of the main resource or of a subresource may change, and `metadata.generation`.

use super::meta;
use super::resources::{Resource, Sub};
use serde_json::{Map, Value, json};

/// Fills server-owned metadata and resets status as Kubernetes does on create.
pub fn prepare_create(r: &Resource, obj: &mut Value) {
    let m = meta::metadata_mut(obj);
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "generation",
    ] {
        m.remove(k);
    }
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    if r.tracks_generation() {
        m.insert("generation".into(), json!(1));
    }
    if !r.has(Sub::Status) {
        return;
    }
    let status = match (r.group, r.kind) {
        // Nodes and their agents create nodes with status.
        ("", "Node") => return,
        ("", "Pod") => json!({"phase": "Pending", "qosClass": qos_class(obj)}),
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
        ("", "Service") => json!({"loadBalancer": {}}),
        _ => json!({}),
    };
    if let Value::Object(o) = obj {
        o.insert("status".into(), status);
    }
}

/// Makes `new` a legal update of `old`: server-owned metadata is kept, status changes only
/// through the status subresource (and only status through it), generation counts spec changes.
pub fn prepare_update(r: &Resource, new: &mut Value, old: &Value, sub: Option<Sub>) {
    match sub {
        Some(Sub::Status) => {
            let mut merged = old.clone();
            if let Value::Object(o) = &mut merged {
                match new.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            let managed = new.pointer("/metadata/managedFields").cloned();
            *new = merged;
            if let Some(mf) = managed {
                meta::metadata_mut(new).insert("managedFields".into(), mf);
            }
            return;
        }
        Some(Sub::Finalize) => {
            let finalizers = new.pointer("/spec/finalizers").cloned();
            let mut merged = old.clone();
            if let Some(spec) = merged.get_mut("spec").and_then(Value::as_object_mut) {
                match finalizers {
                    Some(f) => spec.insert("finalizers".into(), f),
                    None => spec.remove("finalizers"),
                };
            }
            *new = merged;
            return;
        }
        _ => {}
    }
    let old_meta = old
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let m = meta::metadata_mut(new);
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "name",
        "namespace",
    ] {
        match old_meta.get(k) {
            Some(v) => m.insert(k.into(), v.clone()),
            None => m.remove(k),
        };
    }
    if r.has(Sub::Status)
        && let Value::Object(o) = new
    {
        match old.get("status") {
            Some(s) => o.insert("status".into(), s.clone()),
            None => o.remove("status"),
        };
    }
    if r.kind == "Namespace" && r.group.is_empty() {
        let f = old.pointer("/spec/finalizers").cloned();
        if let Value::Object(o) = new {
            let spec = o.entry("spec").or_insert_with(|| Value::Object(Map::new()));
            if let (Value::Object(spec), Some(f)) = (spec, f) {
                spec.insert("finalizers".into(), f);
            }
        }
    }
    // EndpointSlices also count label changes (upstream's endpointSliceStrategy), so that the
    // EndpointSlice controller can tell its own writes from others' by generation.
    let labels = |v: &Value| {
        v.pointer("/metadata/labels")
            .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
            .cloned()
    };
    let labels_changed = r.kind == "EndpointSlice" && labels(new) != labels(old);
    if r.tracks_generation() && (spec_changed(new, old) || labels_changed) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta::metadata_mut(new).insert("generation".into(), json!(g + 1));
    }
}

/// Everything but metadata and status is "spec" for generation purposes.
fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m
    };
    strip(new) != strip(old)
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        let has = |m: Option<&Map<String, Value>>, k: &str| m.is_some_and(|m| m.contains_key(k));
        if ["cpu", "memory"].iter().any(|k| has(req, k) || has(lim, k)) {
            any = true;
        }
        for k in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(k));
            // Requests default to limits, so a missing request equals the limit.
            let rq = req.and_then(|m| m.get(k)).or(l);
            if l.is_none() || rq != l {
                guaranteed = false;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::resources::find;

    #[test]
    fn create_sets_server_fields_and_resets_status() {
        let deploy = find("apps", "v1", "deployments").expect("deployments");
        let mut d = json!({"metadata": {"name": "web", "resourceVersion": "5", "uid": "mine"}, "spec": {}, "status": {"replicas": 9}});
        prepare_create(deploy, &mut d);
        assert_ne!(d["metadata"]["uid"], "mine");
        assert_eq!(d["metadata"]["generation"], 1);
        assert!(d["metadata"].get("resourceVersion").is_none());
        assert_eq!(d["status"], json!({}));
        let pods = find("", "v1", "pods").expect("pods");
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        prepare_create(pods, &mut p);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn endpoint_slice_generation_counts_endpoints_and_labels() {
        let eps = find("discovery.k8s.io", "v1", "endpointslices").expect("endpointslices");
        let mut created =
            json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": []});
        prepare_create(eps, &mut created);
        assert_eq!(created["metadata"]["generation"], 1);
        let old = json!({"metadata": {"name": "s", "generation": 1, "labels": {"a": "b"}, "annotations": {"x": "1"}},
            "addressType": "IPv4", "endpoints": []});
        let mut annotated = old.clone();
        annotated["metadata"]["annotations"]["x"] = json!("2");
        prepare_update(eps, &mut annotated, &old, None);
        assert_eq!(annotated["metadata"]["generation"], 1);
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"]["a"] = json!("c");
        prepare_update(eps, &mut relabelled, &old, None);
        assert_eq!(relabelled["metadata"]["generation"], 2);
        let mut filled = old.clone();
        filled["endpoints"] = json!([{"addresses": ["10.0.0.1"]}]);
        prepare_update(eps, &mut filled, &old, None);
        assert_eq!(filled["metadata"]["generation"], 2);
    }

    #[test]
    fn generation_counts_spec_changes_only() {
        let deploy = find("apps", "v1", "deployments").expect("deployments");
        let old = json!({"metadata": {"name": "web", "generation": 3, "uid": "u"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let mut label_only = json!({"metadata": {"name": "web", "labels": {"a": "b"}}, "spec": {"replicas": 1}, "status": {"replicas": 7}});
        prepare_update(deploy, &mut label_only, &old, None);
        assert_eq!(label_only["metadata"]["generation"], 3);
        assert_eq!(
            label_only["status"]["replicas"], 1,
            "status kept from the stored object"
        );
        assert_eq!(label_only["metadata"]["uid"], "u");
        let mut scaled = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2}});
        prepare_update(deploy, &mut scaled, &old, None);
        assert_eq!(scaled["metadata"]["generation"], 4);
        let mut status = json!({"metadata": {"name": "web"}, "spec": {"replicas": 9}, "status": {"replicas": 2}});
        prepare_update(deploy, &mut status, &old, Some(Sub::Status));
        assert_eq!(
            status["spec"]["replicas"], 1,
            "spec kept through the status subresource"
        );
        assert_eq!(status["status"]["replicas"], 2);
    }

    #[test]
    fn qos_classes() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "c", "resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }
}
