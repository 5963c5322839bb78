//! Update-time fix-ups that kube-apiserver applies before validating an
//! update: the generic `rest.BeforeUpdate` metadata carry-over, and for
//! Services the registry's `normalizeClusterIPs`, `patchAllocatedValues` and
//! `dropTypeDependentFields`. Run them on the new object before `validate` so
//! clients that omit server-set values see the same outcome as upstream.

use crate::admission::json::{arr, ensure_val, i, opt_b, opt_s, s, strings};
use serde_json::{Value, json};

/// `rest.BeforeUpdate`'s metadata handling: generation, uid, creation and
/// deletion timestamps and deletion grace period come from the stored object
/// (strategies that bump `generation` on spec changes do so afterwards).
pub fn before_update(new: &mut Value, old: &Value) {
    let empty = json!({});
    let old_meta = old
        .get("metadata")
        .filter(|m| m.is_object())
        .unwrap_or(&empty);
    let Some(meta) = crate::admission::json::ensure_obj(new, "metadata") else {
        return;
    };
    let uid_empty = meta
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty();
    let dgps_missing = meta
        .get("deletionGracePeriodSeconds")
        .is_none_or(Value::is_null);
    let old_dgps = old_meta
        .get("deletionGracePeriodSeconds")
        .is_some_and(|v| !v.is_null());
    let carries = [
        ("generation", true),
        ("uid", uid_empty),
        (
            "creationTimestamp",
            !s(old_meta, "creationTimestamp").is_empty(),
        ),
        (
            "deletionTimestamp",
            !s(old_meta, "deletionTimestamp").is_empty(),
        ),
        ("deletionGracePeriodSeconds", dgps_missing && old_dgps),
    ];
    for (key, when) in carries {
        if !when {
            continue;
        }
        match old_meta.get(key) {
            Some(v) => meta.insert(key.to_string(), v.clone()),
            None => meta.remove(key),
        };
    }
}

fn needs_cluster_ip(spec: &Value) -> bool {
    s(spec, "type") != "ExternalName"
}

fn needs_node_port(spec: &Value) -> bool {
    matches!(s(spec, "type"), "NodePort" | "LoadBalancer")
}

fn needs_hc_node_port(spec: &Value) -> bool {
    s(spec, "type") == "LoadBalancer" && s(spec, "externalTrafficPolicy") == "Local"
}

fn externally_accessible(spec: &Value) -> bool {
    let ty = s(spec, "type");
    ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

fn set(spec: &mut Value, key: &str, v: Option<Value>) {
    if let Some(m) = spec.as_object_mut() {
        match v {
            Some(v) => m.insert(key.to_string(), v),
            None => m.remove(key),
        };
    }
}

/// Applies the service strategy's update-time fix-ups to `new` given the
/// stored `old` object.
pub fn prepare_service_update(new: &mut Value, old: &Value) {
    let empty = json!({});
    let old_spec = old
        .get("spec")
        .filter(|v| !v.is_null())
        .unwrap_or(&empty)
        .clone();
    let Some(spec) = ensure_val(new, "spec") else {
        return;
    };
    normalize_cluster_ips(spec, &old_spec);
    patch_allocated_values(spec, &old_spec);
    drop_type_dependent_fields(spec, &old_spec);
}

fn normalize_cluster_ips(spec: &mut Value, old: &Value) {
    let same_ips = |spec: &Value| strings(spec, "clusterIPs") == strings(old, "clusterIPs");
    if !arr(old, "clusterIPs").is_empty()
        && arr(spec, "clusterIPs").is_empty()
        && s(old, "clusterIP") == s(spec, "clusterIP")
    {
        set(spec, "clusterIPs", old.get("clusterIPs").cloned());
    }
    let (oc, nc) = (
        s(old, "clusterIP").to_string(),
        s(spec, "clusterIP").to_string(),
    );
    if oc != nc {
        if !oc.is_empty() && nc.is_empty() && same_ips(spec) {
            set(spec, "clusterIPs", None);
        }
        if !nc.is_empty() && same_ips(spec) {
            set(spec, "clusterIPs", Some(json!([nc])));
        }
    }
}

fn patch_allocated_values(spec: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        if s(spec, "clusterIP").is_empty() {
            set(spec, "clusterIP", old.get("clusterIP").cloned());
        }
        if arr(spec, "clusterIPs").is_empty() && !arr(old, "clusterIPs").is_empty() {
            set(spec, "clusterIPs", old.get("clusterIPs").cloned());
        }
    }
    if needs_node_port(old) && needs_node_port(spec) {
        let used_old: Vec<i64> = arr(old, "ports").iter().map(|p| i(p, "nodePort")).collect();
        let used_new: Vec<i64> = arr(spec, "ports")
            .iter()
            .map(|p| i(p, "nodePort"))
            .collect();
        let used: Vec<i64> = used_old
            .into_iter()
            .filter(|p| used_new.contains(p))
            .collect();
        let by_name: Vec<(String, i64)> = arr(old, "ports")
            .iter()
            .map(|p| (s(p, "name").to_string(), i(p, "nodePort")))
            .collect();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                if i(p, "nodePort") != 0 {
                    continue;
                }
                let name = s(p, "name").to_string();
                let old_val = by_name
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v)
                    .unwrap_or(0);
                if !used.contains(&old_val) {
                    set(p, "nodePort", Some(json!(old_val)));
                }
            }
        }
    }
    if needs_hc_node_port(old) && needs_hc_node_port(spec) && i(spec, "healthCheckNodePort") == 0 {
        set(
            spec,
            "healthCheckNodePort",
            old.get("healthCheckNodePort").cloned(),
        );
    }
}

fn drop_type_dependent_fields(spec: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && !needs_cluster_ip(spec) {
        if strings(spec, "clusterIPs") == strings(old, "clusterIPs")
            && s(spec, "clusterIP") == s(old, "clusterIP")
        {
            set(spec, "clusterIP", None);
            set(spec, "clusterIPs", None);
        }
        if strings(spec, "ipFamilies") == strings(old, "ipFamilies") {
            set(spec, "ipFamilies", None);
        }
        if opt_s(spec, "ipFamilyPolicy") == opt_s(old, "ipFamilyPolicy") {
            set(spec, "ipFamilyPolicy", None);
        }
    }
    let node_ports =
        |sp: &Value| -> Vec<i64> { arr(sp, "ports").iter().map(|p| i(p, "nodePort")).collect() };
    if needs_node_port(old)
        && !needs_node_port(spec)
        && node_ports(spec) == node_ports(old)
        && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
    {
        for p in ports {
            set(p, "nodePort", None);
        }
    }
    if needs_hc_node_port(old)
        && !needs_hc_node_port(spec)
        && i(spec, "healthCheckNodePort") == i(old, "healthCheckNodePort")
    {
        set(spec, "healthCheckNodePort", None);
    }
    if s(old, "type") == "LoadBalancer"
        && s(spec, "type") != "LoadBalancer"
        && let (Some(n), Some(o)) = (
            opt_b(spec, "allocateLoadBalancerNodePorts"),
            opt_b(old, "allocateLoadBalancerNodePorts"),
        )
        && n == o
    {
        set(spec, "allocateLoadBalancerNodePorts", None);
    }
    if s(old, "type") == "LoadBalancer"
        && s(spec, "type") != "LoadBalancer"
        && opt_s(spec, "loadBalancerClass") == opt_s(old, "loadBalancerClass")
    {
        set(spec, "loadBalancerClass", None);
    }
    if externally_accessible(old)
        && !externally_accessible(spec)
        && s(spec, "externalTrafficPolicy") == s(old, "externalTrafficPolicy")
    {
        set(spec, "externalTrafficPolicy", None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_update_carries_system_fields() {
        let old = json!({"metadata": {"name": "a", "uid": "u1", "generation": 4,
            "creationTimestamp": "2024-01-01T00:00:00Z", "deletionTimestamp": "2024-02-01T00:00:00Z",
            "deletionGracePeriodSeconds": 30}});
        let mut new =
            json!({"metadata": {"name": "a", "creationTimestamp": null, "generation": 9}});
        before_update(&mut new, &old);
        assert_eq!(
            new["metadata"],
            json!({"name": "a", "creationTimestamp": "2024-01-01T00:00:00Z",
            "generation": 4, "uid": "u1", "deletionTimestamp": "2024-02-01T00:00:00Z", "deletionGracePeriodSeconds": 30})
        );
        let mut other = json!({"metadata": {"name": "a", "uid": "u2"}});
        before_update(&mut other, &old);
        assert_eq!(other["metadata"]["uid"], "u2");
    }

    #[test]
    fn omitted_allocations_are_patched_from_old() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}});
        let mut new =
            json!({"spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}});
        prepare_service_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.0.0.5");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.0.0.5"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }

    #[test]
    fn switching_type_drops_dependent_fields() {
        let old = json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": true, "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("example.com");
        prepare_service_update(&mut new, &old);
        let spec = &new["spec"];
        for k in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "externalTrafficPolicy",
            "allocateLoadBalancerNodePorts",
        ] {
            assert!(spec.get(k).is_none(), "{k} should be dropped: {spec}");
        }
        assert!(spec["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn changed_cluster_ip_updates_plural() {
        let old = json!({"spec": {"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"]}});
        let mut new = json!({"spec": {"clusterIP": "10.0.0.6", "clusterIPs": ["10.0.0.5"]}});
        prepare_service_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.0.0.6"]));
    }
}
