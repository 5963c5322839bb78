//! The ServiceAccount admission plugin on pod creation: the pod's service account must exist,
//! and unless automounting is off, every container mounts a projected `kube-api-access-<x>`
//! volume (a bound token, the cluster CA from `kube-root-ca.crt`, the namespace) at
//! `/var/run/secrets/kubernetes.io/serviceaccount`.

use crate::api::status::{ApiError, ApiResult};
use crate::registry::meta;
use crate::registry::resources;
use crate::registry::store::Store;
use rand::Rng;
use serde_json::{Value, json};
use std::time::Duration;

pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const VOLUME_PREFIX: &str = "kube-api-access-";
/// What kubelets ask for; the API server extends such tokens (see `serviceaccount` in auth).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// The alphabet of generated name suffixes (`utilrand.String`): no vowels, no look-alikes.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Looks up the pod's service account and mounts its token. The `default` account is created
/// by a controller right after its namespace, so it is waited for a little, as upstream does.
pub async fn admit_pod(store: &Store, pod: &mut Value) -> ApiResult<()> {
    // Mirror pods (static pods of a kubelet) run without a service account.
    if pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        return Ok(());
    }
    let ns = meta::namespace(pod).to_string();
    let sa_name = meta::str_at(pod, "/spec/serviceAccountName")
        .unwrap_or("default")
        .to_string();
    let sa = service_account(store, &ns, &sa_name).await.map_err(|why| {
        ApiError::forbidden_message(format!(
            "pods \"{}\" is forbidden: error looking up service account {ns}/{sa_name}: {why}",
            meta::name(pod)
        ))
    })?;
    if should_automount(&sa, pod) {
        mount_token(pod, &random_suffix());
    }
    Ok(())
}

async fn service_account(store: &Store, ns: &str, name: &str) -> Result<Value, String> {
    let Some(r) = resources::find("", "v1", "serviceaccounts") else {
        return Err("serviceaccounts are not served".into());
    };
    // Upstream tries 10 times 100-200 ms apart for `default`; a busy machine may need longer
    // for the controller manager to come up, so this waits up to about 5 s.
    let attempts = if name == "default" { 30 } else { 1 };
    let pause = Duration::from_millis(rand::rng().random_range(100..200));
    for i in 0..attempts {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        match store.get(r, ns, name).await {
            Ok(Some(sa)) => return Ok(sa),
            Ok(None) => {}
            Err(e) => return Err(e.message),
        }
    }
    Err(format!("serviceaccount \"{name}\" not found"))
}

/// The pod's own setting wins, then the service account's; the default is to mount.
fn should_automount(sa: &Value, pod: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char)
        .collect()
}

/// Mounts the token volume in every (init) container that has nothing at the mount path yet,
/// adding the volume if some container needs it.
fn mount_token(pod: &mut Value, suffix: &str) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|n| n.starts_with(VOLUME_PREFIX))
                .map(String::from)
        });
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{suffix}"));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for c in containers.iter_mut() {
            let Some(c) = c.as_object_mut() else { continue };
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Value::Array(mounts) = mounts else {
                continue;
            };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH));
            if !taken {
                mounts.push(mount.clone());
                needed = true;
            }
        }
    }
    if needed && existing.is_none() {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Value::Array(vs) = volumes {
            vs.push(token_volume(&volume_name));
        }
    }
}

fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ],
            "defaultMode": 420
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "a", "image": "nginx"},
                {"name": "b", "image": "nginx", "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]}
            ]
        }})
    }

    #[test]
    fn every_container_mounts_the_projected_token() {
        let mut p = pod();
        mount_token(&mut p, "x2b4z");
        let vols = p["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(vols.len(), 1);
        assert_eq!(vols[0]["name"], "kube-api-access-x2b4z");
        let sources = vols[0]["projected"]["sources"].as_array().expect("sources");
        assert_eq!(
            sources[0]["serviceAccountToken"],
            json!({"expirationSeconds": 3607, "path": "token"})
        );
        assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
        assert_eq!(
            sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
        assert_eq!(vols[0]["projected"]["defaultMode"], 420);
        let want =
            json!({"name": "kube-api-access-x2b4z", "readOnly": true, "mountPath": MOUNT_PATH});
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"],
            json!([want])
        );
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"], json!([want]));
        // A container with its own mount at the path keeps it.
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"],
            json!([{"name": "mine", "mountPath": MOUNT_PATH}])
        );
        // Admitting again (same volume present) adds nothing.
        let before = p.clone();
        mount_token(&mut p, "other");
        assert_eq!(p, before);
    }

    #[test]
    fn automount_follows_pod_then_service_account() {
        let sa_off = json!({"automountServiceAccountToken": false});
        let mut p = pod();
        assert!(should_automount(&json!({}), &p));
        assert!(!should_automount(&sa_off, &p));
        p["spec"]["automountServiceAccountToken"] = json!(true);
        assert!(should_automount(&sa_off, &p));
        p["spec"]["automountServiceAccountToken"] = json!(false);
        assert!(!should_automount(&json!({}), &p));
    }

    #[test]
    fn suffixes_use_the_upstream_alphabet() {
        for _ in 0..20 {
            let s = random_suffix();
            assert_eq!(s.len(), 5);
            assert!(s.bytes().all(|b| ALPHANUMS.contains(&b)));
        }
    }
}
