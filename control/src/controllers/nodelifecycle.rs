//! Node lifecycle (upstream's node lifecycle controller and taint manager): a node whose kubelet
//! stops renewing its Lease goes `Ready=Unknown` after the grace period and gets the
//! `node.kubernetes.io/unreachable` taints; pods on nodes with NoExecute taints they do not
//! tolerate (or tolerate only for `tolerationSeconds`) are evicted so their controllers recreate
//! them elsewhere. Conditions also drive the NoSchedule taints the scheduler reads.

use super::{Context, ControllerError, Events};
use crate::placement::tolerates;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "nodelifecycle";

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

const MONITOR_PERIOD: Duration = Duration::from_secs(1);
/// New nodes get this long to post their first status.
const STARTUP_GRACE: Duration = Duration::from_secs(60);

/// The taints a node's conditions call for (TaintNodesByCondition and the NoExecute taints).
pub fn condition_taints(node: &Node) -> Vec<(String, String)> {
    let conds = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let status = |t: &str| {
        conds
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
            .map(|c| c.status.as_str())
    };
    let mut out = Vec::new();
    match status("Ready") {
        Some("False") => {
            out.push((NOT_READY.to_string(), "NoExecute".to_string()));
            out.push((NOT_READY.to_string(), "NoSchedule".to_string()));
        }
        Some("Unknown") => {
            out.push((UNREACHABLE.to_string(), "NoExecute".to_string()));
            out.push((UNREACHABLE.to_string(), "NoSchedule".to_string()));
        }
        _ => {}
    }
    for (cond, key) in [
        ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "node.kubernetes.io/disk-pressure"),
        ("PIDPressure", "node.kubernetes.io/pid-pressure"),
        (
            "NetworkUnavailable",
            "node.kubernetes.io/network-unavailable",
        ),
    ] {
        if status(cond) == Some("True") {
            out.push((key.to_string(), "NoSchedule".to_string()));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push((
            "node.kubernetes.io/unschedulable".to_string(),
            "NoSchedule".to_string(),
        ));
    }
    out
}

const MANAGED_KEYS: &[&str] = &[
    NOT_READY,
    UNREACHABLE,
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/unschedulable",
];

/// The node's taints with the condition taints brought in line; None if nothing changes.
pub fn reconcile_taints(node: &Node, now: jiff::Timestamp) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let want = condition_taints(node);
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| {
            !MANAGED_KEYS.contains(&t.key.as_str())
                || want.iter().any(|(k, e)| *k == t.key && *e == t.effect)
        })
        .cloned()
        .collect();
    for (k, e) in &want {
        if !out.iter().any(|t| t.key == *k && t.effect == *e) {
            out.push(Taint {
                key: k.clone(),
                effect: e.clone(),
                time_added: (e == "NoExecute").then_some(Time(now)),
                value: None,
            });
        }
    }
    (out != current).then_some(out)
}

/// When a pod on a node with these taints must go: None = never, Some(t) = at t.
pub fn eviction_time(pod: &Pod, taints: &[Taint]) -> Option<jiff::Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut at: Option<jiff::Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = taint
            .time_added
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(jiff::Timestamp::now);
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let deadline = if matching.is_empty() {
            Some(added)
        } else if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            None
        } else {
            let secs = matching
                .iter()
                .filter_map(|t| t.toleration_seconds)
                .min()
                .unwrap_or(0)
                .max(0);
            Some(added + jiff::SignedDuration::from_secs(secs))
        };
        if let Some(d) = deadline {
            at = Some(at.map_or(d, |a: jiff::Timestamp| a.min(d)));
        }
    }
    at
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The kubelet's last sign of life: its lease renewal or its Ready heartbeat.
fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Option<jiff::Timestamp> {
    let from_lease = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let from_status = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    match (from_lease, from_status) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn store<K>(api: Api<K>, stop: &CancellationToken) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                item = stream.next() => if item.is_none() { return },
                _ = stop.cancelled() => return,
            }
        }
    });
    reader
}

pub async fn run(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let informers = ctx.clients.client("system:kube-controller-manager")?;
    let client = ctx.client_for("node-controller")?;
    let events = ctx.recorder(client.clone(), "node-controller");
    let nodes = store(Api::<Node>::all(informers.clone()), &stop);
    let leases = store(
        Api::<Lease>::namespaced(informers.clone(), "kube-node-lease"),
        &stop,
    );
    let pods = store(Api::<Pod>::all(informers), &stop);
    tokio::select! {
        r = async { tokio::try_join!(nodes.wait_until_ready(), leases.wait_until_ready(), pods.wait_until_ready()) } => {
            r.map_err(|e| ControllerError::Invalid(format!("informers: {e}")))?;
        }
        _ = stop.cancelled() => return Ok(()),
    }
    let node_api: Api<Node> = Api::all(client.clone());
    let grace = ctx.config.node_monitor_grace_period;
    // Pods already asked to go (uid), so each is evicted once.
    let mut evicted: HashMap<String, ()> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MONITOR_PERIOD) => {}
            _ = stop.cancelled() => return Ok(()),
        }
        let now = jiff::Timestamp::now();
        let lease_by_node: HashMap<String, Arc<Lease>> = leases
            .state()
            .into_iter()
            .map(|l| (l.metadata.name.clone().unwrap_or_default(), l))
            .collect();
        let mut taints_by_node: HashMap<String, Vec<Taint>> = HashMap::new();
        for node in nodes.state() {
            let name = node.metadata.name.clone().unwrap_or_default();
            let mut node = (*node).clone();
            // Health: no heartbeat within the grace period → Unknown.
            let created = node
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(now);
            let last = last_heartbeat(&node, lease_by_node.get(&name).map(|l| l.as_ref()));
            let stale = match last {
                Some(t) => now.duration_since(t).as_secs_f64() > grace.as_secs_f64(),
                None => now.duration_since(created).as_secs_f64() > STARTUP_GRACE.as_secs_f64(),
            };
            let ready = ready_condition(&node).map(|c| c.status.clone());
            if stale && ready.as_deref() != Some("Unknown") {
                if let Err(e) = mark_unknown(&node_api, &mut node, &events, now).await {
                    tracing::warn!(node = %name, error = %e, "marking the node unknown failed");
                    continue;
                }
                mark_pods_not_ready(&client, &pods, &name).await;
            }
            if let Some(taints) = reconcile_taints(&node, now) {
                let patch = serde_json::json!({"spec": {"taints": taints}});
                match node_api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(n) => node = n,
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "updating taints failed");
                        continue;
                    }
                }
            }
            let t = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            if t.iter().any(|t| t.effect == "NoExecute") {
                taints_by_node.insert(name, t);
            }
        }
        // Taint manager: evict what does not (or no longer) tolerate NoExecute taints.
        for pod in pods.state() {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let Some(taints) = taints_by_node.get(&node) else {
                continue;
            };
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() || evicted.contains_key(&uid) {
                continue;
            }
            let Some(at) = eviction_time(&pod, taints) else {
                continue;
            };
            if at > now {
                continue;
            }
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let pname = pod.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            match api.delete(&pname, &DeleteParams::default()).await {
                Ok(_) => {
                    evicted.insert(uid, ());
                    let r = kube::Resource::object_ref(pod.as_ref(), &());
                    events
                        .normal(
                            &r,
                            "TaintManagerEviction",
                            "Evicting",
                            format!("Marking for deletion Pod {ns}/{pname}"),
                        )
                        .await;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    evicted.insert(uid, ());
                }
                Err(e) => tracing::warn!(pod = %pname, error = %e, "eviction failed"),
            }
        }
        // Forget pods that are gone.
        let live: std::collections::HashSet<String> = pods
            .state()
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        evicted.retain(|u, _| live.contains(u));
    }
}

async fn mark_unknown(
    api: &Api<Node>,
    node: &mut Node,
    events: &Events,
    now: jiff::Timestamp,
) -> Result<(), kube::Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for ty in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = match conditions.iter_mut().find(|c| c.type_ == ty) {
            Some(c) => c,
            None => {
                conditions.push(NodeCondition {
                    type_: ty.into(),
                    ..Default::default()
                });
                let last = conditions.len() - 1;
                &mut conditions[last]
            }
        };
        if c.status != "Unknown" {
            c.status = "Unknown".into();
            c.reason = Some("NodeStatusUnknown".into());
            c.message = Some("Kubelet stopped posting node status.".into());
            c.last_transition_time = Some(Time(now));
        }
    }
    let patch = serde_json::json!({"status": {"conditions": conditions}});
    *node = api
        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    let r = kube::Resource::object_ref(node, &());
    events
        .normal(
            &r,
            "NodeNotReady",
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        )
        .await;
    tracing::info!(node = %name, "node stopped reporting; marked Unknown");
    Ok(())
}

/// Pods on an unreachable node are not ready (so Services stop sending them traffic).
async fn mark_pods_not_ready(client: &kube::Client, pods: &Store<Pod>, node: &str) {
    for pod in pods.state() {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let patch = serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False",
            "reason": "NodeNotReady", "lastTransitionTime": crate::registry::meta::now(), "lastProbeTime": null}]}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "marking the pod not ready failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec};

    fn node(ready: &str, taints: Vec<Taint>) -> Node {
        Node {
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn conditions_map_to_taints_and_user_taints_stay() {
        let user = Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let now = jiff::Timestamp::now();
        let t = reconcile_taints(&node("Unknown", vec![user.clone()]), now).expect("changes");
        let keys: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("dedicated", "NoSchedule"),
                (UNREACHABLE, "NoExecute"),
                (UNREACHABLE, "NoSchedule")
            ]
        );
        assert!(t[1].time_added.is_some());
        // Recovered: the unreachable taints go, the user's stays.
        let back = reconcile_taints(&node("True", t), now).expect("changes");
        assert_eq!(back, vec![user]);
        assert!(reconcile_taints(&node("True", back), now).is_none());
    }

    #[test]
    fn eviction_follows_toleration_seconds() {
        let added = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(100);
        let taint = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(added)),
            value: None,
        };
        let pod = |tols: Vec<Toleration>| Pod {
            spec: Some(PodSpec {
                tolerations: Some(tols),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            eviction_time(&pod(vec![]), std::slice::from_ref(&taint)),
            Some(added)
        );
        let t300 = Toleration {
            key: Some(UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(300),
            ..Default::default()
        };
        assert_eq!(
            eviction_time(&pod(vec![t300]), std::slice::from_ref(&taint)),
            Some(added + jiff::SignedDuration::from_secs(300))
        );
        let forever = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert_eq!(eviction_time(&pod(vec![forever]), &[taint]), None);
    }
}
