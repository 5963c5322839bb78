//! Container environment: Service variables, `envFrom`, and `env` with `valueFrom`
//! (ConfigMap and Secret keys, the downward API's fields and resources) and `$(VAR)` expansion.

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// Shown as the container's `CreateContainerConfigError` message.
    #[error("{0}")]
    Config(String),
    #[error("API: {0}")]
    Api(#[from] kube::Error),
}

/// Node facts the downward API can expose.
pub struct NodeFacts {
    pub host_ip: String,
    pub allocatable_cpu_milli: i64,
    pub allocatable_memory: i64,
}

async fn get_opt<K>(api: &Api<K>, name: &str) -> Result<Option<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await
}

/// `{SVC}_SERVICE_HOST` and friends for every Service in the namespace (Docker link style).
fn service_vars(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in services {
        let spec = s.spec.clone().unwrap_or_default();
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = s
            .metadata
            .name
            .clone()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        let ports = spec.ports.unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{name}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pn) = p.name.as_ref().filter(|n| !n.is_empty()) {
                out.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let proto = first.protocol.clone().unwrap_or_else(|| "TCP".into());
        out.push((
            format!("{name}_PORT"),
            format!("{}://{ip}:{}", proto.to_lowercase(), first.port),
        ));
        for p in &ports {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let prefix = format!("{name}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((
                prefix.clone(),
                format!("{}://{ip}:{}", proto.to_lowercase(), p.port),
            ));
            out.push((format!("{prefix}_PROTO"), proto.to_lowercase()));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.clone()));
        }
    }
    out
}

/// `$(VAR)` references to earlier variables are expanded; `$$(VAR)` escapes one.
pub fn expand(value: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_value(pod: &Pod, path: &str, pod_ip: &str, node: &NodeFacts) -> Option<String> {
    let label = |m: Option<&BTreeMap<String, String>>, key: &str| {
        m.and_then(|m| m.get(key)).cloned().unwrap_or_default()
    };
    let bracket = |p: &str, prefix: &str| {
        p.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .map(String::from)
    };
    Some(match path {
        "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
        "metadata.namespace" => pod.metadata.namespace.clone().unwrap_or_default(),
        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => node.host_ip.clone(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        p => {
            if let Some(k) = bracket(p, "metadata.labels") {
                label(pod.metadata.labels.as_ref(), &k)
            } else if let Some(k) = bracket(p, "metadata.annotations") {
                label(pod.metadata.annotations.as_ref(), &k)
            } else {
                return None;
            }
        }
    })
}

/// `requests.cpu`, `limits.memory`, … of a container, in units of the divisor; unset limits are
/// the node's allocatable.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    node: &NodeFacts,
) -> Option<String> {
    let (kind, name) = resource.split_once('.')?;
    let res = c.resources.clone().unwrap_or_default();
    let list = if kind == "limits" {
        res.limits
    } else {
        res.requests
    };
    let milli = name == "cpu";
    let raw = list
        .and_then(|l| l.get(name).cloned())
        .and_then(|q| super::spec::quantity(&q.0, milli))
        .or(match (kind, name) {
            ("limits", "cpu") => Some(node.allocatable_cpu_milli),
            ("limits", "memory") => Some(node.allocatable_memory),
            _ => Some(0),
        })?;
    let div = divisor
        .and_then(|d| super::spec::quantity(d, milli))
        .filter(|d| *d > 0)
        .unwrap_or(if milli { 1000 } else { 1 });
    // Rounded up, as the downward API does.
    Some(((raw + div - 1) / div).to_string())
}

/// The environment of container `c` in `pod`, in the order Kubernetes builds it.
pub async fn container_env(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
    pod_ip: &str,
    node: &NodeFacts,
) -> Result<Vec<(String, String)>, EnvError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut map: HashMap<String, String> = HashMap::new();
    let set = |vars: &mut Vec<(String, String)>,
               map: &mut HashMap<String, String>,
               k: String,
               v: String| {
        if let Some(pos) = vars.iter().position(|(x, _)| *x == k) {
            vars.remove(pos);
        }
        map.insert(k.clone(), v.clone());
        vars.push((k, v));
    };
    if pod.spec.as_ref().and_then(|s| s.enable_service_links) != Some(false) {
        let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
        let mut list = svcs.list(&ListParams::default()).await?.items;
        if ns != "default"
            && let Some(k) = Api::<Service>::namespaced(client.clone(), "default")
                .get_opt("kubernetes")
                .await?
        {
            list.push(k);
        }
        for (k, v) in service_vars(&list) {
            set(&mut vars, &mut map, k, v);
        }
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match get_opt(&cms, &r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(&mut vars, &mut map, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(EnvError::Config(format!(
                        "configmap \"{}\" not found",
                        r.name
                    )));
                }
            }
        }
        if let Some(r) = &from.secret_ref {
            match get_opt(&secrets, &r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        set(
                            &mut vars,
                            &mut map,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::Config(format!("secret \"{}\" not found", r.name))),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => expand(e.value.as_deref().unwrap_or(""), &map),
            Some(from) => {
                if let Some(r) = &from.config_map_key_ref {
                    let cm = get_opt(&cms, &r.name).await?;
                    match cm.and_then(|cm| cm.data.and_then(|d| d.get(&r.key).cloned())) {
                        Some(v) => v,
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(EnvError::Config(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let s = get_opt(&secrets, &r.name).await?;
                    match s.and_then(|s| s.data.and_then(|d| d.get(&r.key).cloned())) {
                        Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(EnvError::Config(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    }
                } else if let Some(f) = &from.field_ref {
                    field_value(pod, &f.field_path, pod_ip, node).ok_or_else(|| {
                        EnvError::Config(format!("unsupported fieldPath {:?}", f.field_path))
                    })?
                } else if let Some(r) = &from.resource_field_ref {
                    let target = match r.container_name.as_deref() {
                        Some(name) if !name.is_empty() => pod
                            .spec
                            .iter()
                            .flat_map(|s| s.containers.iter())
                            .find(|x| x.name == name)
                            .ok_or_else(|| {
                                EnvError::Config(format!("container {name} not found"))
                            })?,
                        _ => c,
                    };
                    resource_value(
                        target,
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                        node,
                    )
                    .ok_or_else(|| {
                        EnvError::Config(format!("unsupported resource {:?}", r.resource))
                    })?
                } else {
                    continue;
                }
            }
        };
        set(&mut vars, &mut map, e.name.clone(), value);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let vars = HashMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
    }

    #[test]
    fn resource_fields_round_up_in_divisor_units() {
        let c: Container = serde_json::from_value(serde_json::json!({"name": "c",
            "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}))
        .expect("container");
        let node = NodeFacts {
            host_ip: "10.0.0.1".into(),
            allocatable_cpu_milli: 2000,
            allocatable_memory: 1 << 30,
        };
        assert_eq!(
            resource_value(&c, "requests.cpu", None, &node).as_deref(),
            Some("1")
        );
        assert_eq!(
            resource_value(&c, "requests.cpu", Some("1m"), &node).as_deref(),
            Some("250")
        );
        assert_eq!(
            resource_value(&c, "requests.memory", Some("1Mi"), &node).as_deref(),
            Some("64")
        );
        assert_eq!(
            resource_value(&c, "limits.cpu", None, &node).as_deref(),
            Some("2")
        );
    }

    #[test]
    fn service_links() {
        let s: Service = serde_json::from_value(serde_json::json!({"metadata": {"name": "my-db"},
            "spec": {"clusterIP": "10.96.0.9", "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}})).expect("svc");
        let vars = service_vars(&[s]);
        assert!(vars.contains(&("MY_DB_SERVICE_HOST".into(), "10.96.0.9".into())));
        assert!(vars.contains(&("MY_DB_SERVICE_PORT_SQL".into(), "5432".into())));
        assert!(vars.contains(&("MY_DB_PORT_5432_TCP_ADDR".into(), "10.96.0.9".into())));
    }
}
