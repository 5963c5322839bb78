//! Test kubelets: Node objects and pod status written by the test in the place of real kubelets
//! (the node agent comes with its own issue). Each simulated node renews its Lease, and runs the
//! pods bound to it by writing their status: Running and Ready at once, or as the test says.

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// How a simulated kubelet treats a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFate {
    /// Running and Ready.
    Ready,
    /// Running but never Ready.
    NotReady,
    /// Runs, then exits 0 (Succeeded).
    Succeed,
    /// Runs, then exits 1 (Failed).
    Fail,
}

/// Decides a pod's fate from the pod (default: Ready).
pub type FateFn = Arc<dyn Fn(&Pod) -> PodFate + Send + Sync>;

/// A node to register: (name, labels, cpu, memory).
pub type NodeSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

pub struct FakeNodes {
    pub names: Vec<String>,
    stop: CancellationToken,
    /// Nodes that stopped renewing (simulating a dead kubelet).
    stopped: Arc<Mutex<HashSet<String>>>,
}

impl Drop for FakeNodes {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A Node object as a kubelet registers it.
pub fn node_object(
    name: &str,
    labels: &[(&str, &str)],
    cpu: &str,
    memory: &str,
) -> serde_json::Value {
    let mut l: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    l.insert("kubernetes.io/hostname".into(), json!(name));
    l.insert("kubernetes.io/os".into(), json!("linux"));
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": l},
        "spec": {},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.37.0", "kernelVersion": "6.18", "osImage": "test", "containerRuntimeVersion": "fake://1",
                "architecture": "amd64", "operatingSystem": "linux", "machineID": "", "systemUUID": "", "bootID": "",
                "kubeProxyVersion": "", "swap": {}}
        }
    })
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl FakeNodes {
    /// Registers `nodes` (name, labels, cpu, memory) and starts their kubelets.
    pub async fn start(
        client: kube::Client,
        nodes: &[NodeSpec<'_>],
        fate: Option<FateFn>,
    ) -> FakeNodes {
        let api: Api<Node> = Api::all(client.clone());
        for (name, labels, cpu, mem) in nodes {
            let obj: Node =
                serde_json::from_value(node_object(name, labels, cpu, mem)).expect("node");
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("register node {name}: {e}"),
            }
        }
        let names: Vec<String> = nodes.iter().map(|n| n.0.to_string()).collect();
        let stop = CancellationToken::new();
        let stopped = Arc::new(Mutex::new(HashSet::new()));
        tokio::spawn(lease_loop(
            client.clone(),
            names.clone(),
            stopped.clone(),
            stop.clone(),
        ));
        tokio::spawn(pod_loop(
            client,
            names.clone(),
            stopped.clone(),
            fate,
            stop.clone(),
        ));
        FakeNodes {
            names,
            stop,
            stopped,
        }
    }

    /// The node's kubelet dies: no more lease renewals or pod updates.
    pub fn kill(&self, node: &str) {
        self.stopped.lock().expect("lock").insert(node.to_string());
    }
}

async fn lease_loop(
    client: kube::Client,
    nodes: Vec<String>,
    stopped: Arc<Mutex<HashSet<String>>>,
    stop: CancellationToken,
) {
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    loop {
        for n in &nodes {
            if stopped.lock().expect("lock").contains(n) {
                continue;
            }
            let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": n, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": n, "leaseDurationSeconds": 40, "renewTime": now_micro()}});
            let _ = leases
                .patch(
                    n,
                    &PatchParams::apply("fake-kubelet").force(),
                    &Patch::Apply(&lease),
                )
                .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn pod_loop(
    client: kube::Client,
    nodes: Vec<String>,
    stopped: Arc<Mutex<HashSet<String>>>,
    fate: Option<FateFn>,
    stop: CancellationToken,
) {
    let all: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher(all, watcher::Config::default()).boxed();
    let mut done: HashMap<String, String> = HashMap::new();
    let mut ip = 10u32;
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = stop.cancelled() => return,
        };
        let pod = match ev {
            Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => p,
            Some(Ok(_)) => continue,
            Some(Err(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
            None => return,
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if !nodes.contains(&node) || stopped.lock().expect("lock").contains(&node) {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            // The kubelet stopped the containers: finish the graceful deletion.
            let _ = api
                .delete(
                    &name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .await;
            continue;
        }
        let f = fate.as_ref().map(|f| f(&pod)).unwrap_or(PodFate::Ready);
        let state = format!("{f:?}");
        if done.get(&uid) == Some(&state) {
            continue;
        }
        done.insert(uid, state);
        ip += 1;
        let ready = f == PodFate::Ready;
        let containers: Vec<serde_json::Value> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                let st = match f {
                    PodFate::Succeed => json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now(), "finishedAt": now()}}),
                    PodFate::Fail => json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now(), "finishedAt": now()}}),
                    _ => json!({"running": {"startedAt": now()}}),
                };
                json!({"name": c.name, "image": c.image, "imageID": "", "ready": ready, "restartCount": 0, "started": true, "state": st})
            })
            .collect();
        let phase = match f {
            PodFate::Succeed => "Succeeded",
            PodFate::Fail => "Failed",
            _ => "Running",
        };
        let cond = |t: &str, s: bool| json!({"type": t, "status": if s { "True" } else { "False" }, "lastTransitionTime": now(), "lastProbeTime": null});
        let status = json!({"status": {
            "phase": phase,
            "hostIP": "10.0.0.1",
            "podIP": format!("10.244.{}.{}", ip / 250, ip % 250 + 1),
            "podIPs": [{"ip": format!("10.244.{}.{}", ip / 250, ip % 250 + 1)}],
            "startTime": now(),
            "conditions": [cond("PodScheduled", true), cond("Initialized", true), cond("ContainersReady", ready), cond("Ready", ready)],
            "containerStatuses": containers,
        }});
        let _ = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await;
    }
}
