//! Node IPAM and node lifecycle: podCIDRs per node, and a node whose lease stops is marked
//! unknown, tainted, and its pods evicted after their toleration.

mod common;

use common::kubelet::FakeNodes;
use common::{ApiClient, Cluster, wait_for_async};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::collections::HashSet;

async fn pod_cidr(nodes: &Api<Node>, name: &str) -> String {
    wait_for_async(&format!("a podCIDR on {name}"), || async {
        nodes.get(name).await.ok()?.spec?.pod_cidr
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_gets_its_own_pod_cidr() {
    let c = Cluster::start_with(&[
        "--cluster-cidr",
        "10.250.0.0/16",
        "--node-cidr-mask-size",
        "24",
    ]);
    let client = ApiClient::new(&c).await.client;
    let fake = FakeNodes::start(
        client.clone(),
        &[
            ("a", &[], "2", "4Gi"),
            ("b", &[], "2", "4Gi"),
            ("c", &[], "2", "4Gi"),
        ],
        None,
    )
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut cidrs = HashSet::new();
    for n in &fake.names {
        let cidr = pod_cidr(&nodes, n).await;
        assert!(
            cidr.starts_with("10.250.") && cidr.ends_with(".0/24"),
            "{cidr}"
        );
        assert!(cidrs.insert(cidr), "no two nodes share a range");
    }
    let b = pod_cidr(&nodes, "b").await;
    nodes
        .delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    let _more = FakeNodes::start(client.clone(), &[("d", &[], "2", "4Gi")], None).await;
    let d = pod_cidr(&nodes, "d").await;
    assert_eq!(d, b, "the range of the deleted node is handed out again");
    let out = c.ok(&[
        "get",
        "nodes",
        "-o",
        "custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR",
        "--no-headers",
    ]);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_stops_renewing_is_tainted_and_its_pods_evicted() {
    let c = Cluster::start_with(&[
        "--node-monitor-grace-period",
        "10",
        "--default-unreachable-toleration-seconds",
        "3",
    ]);
    let client = ApiClient::new(&c).await.client;
    let fake = FakeNodes::start(
        client.clone(),
        &[("live", &[], "2", "4Gi"), ("doomed", &[], "2", "4Gi")],
        None,
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, node) in [
        ("on-live", "live"),
        ("on-doomed", "doomed"),
        ("patient", "doomed"),
    ] {
        let mut spec = json!({"nodeName": node, "containers": [{"name": "c", "image": "i"}]});
        if name == "patient" {
            spec["tolerations"] = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]);
        }
        let p: Pod =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod");
        pods.create(&PostParams::default(), &p)
            .await
            .expect("create");
    }
    wait_for_async("pods running", || async {
        let p = pods.get("on-doomed").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    fake.kill("doomed");
    let nodes: Api<Node> = Api::all(client.clone());
    let taints = wait_for_async("the unreachable taint", || async {
        let n = nodes.get("doomed").await.ok()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .status
            .clone();
        let t = n.spec?.taints?;
        (ready == "Unknown"
            && t.iter()
                .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute"))
        .then_some(t)
    })
    .await;
    assert!(
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule")
    );
    // After the 3 s default toleration the pod is evicted; one tolerating forever stays.
    wait_for_async("the eviction of on-doomed", || async {
        let p = pods.get("on-doomed").await.ok()?;
        p.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    let patient = pods.get("patient").await.expect("patient");
    assert!(patient.metadata.deletion_timestamp.is_none());
    let live = pods.get("on-live").await.expect("on-live");
    assert!(
        live.metadata.deletion_timestamp.is_none(),
        "pods on healthy nodes stay"
    );
    let healthy = nodes.get("live").await.expect("live");
    assert!(
        healthy
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .is_empty()
    );
    let events = c.ok(&["get", "events", "-A", "-o", "jsonpath={.items[*].reason}"]);
    assert!(
        events.contains("NodeNotReady") && events.contains("TaintManagerEviction"),
        "{events}"
    );
}
