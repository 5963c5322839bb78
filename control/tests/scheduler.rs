//! The scheduler against a real API server: filters, scores, events, and leader election.

mod common;

use common::kubelet::FakeNodes;
use common::{ApiClient, Cluster, wait_for_async};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::collections::HashMap;

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut s = json!({"containers": [{"name": "c", "image": "localhost/busybox:latest"}]});
    if let (Some(base), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name.split('-').next().unwrap_or(name)}}, "spec": s}))
        .expect("pod")
}

async fn node_of(api: &Api<Pod>, name: &str) -> String {
    wait_for_async(&format!("{name} to be scheduled"), || async {
        api.get(name)
            .await
            .ok()
            .and_then(|p| p.spec.and_then(|s| s.node_name))
            .filter(|n| !n.is_empty())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_land_where_constraints_allow_and_nowhere_else() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let _nodes = FakeNodes::start(
        client.clone(),
        &[
            ("n1", &[("zone", "a"), ("disk", "ssd")], "2", "4Gi"),
            ("n2", &[("zone", "b")], "2", "4Gi"),
            ("n3", &[("zone", "c")], "1", "1Gi"),
        ],
        None,
    )
    .await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes
        .patch("n2", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}})))
        .await
        .expect("taint n2");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    // nodeSelector
    pods.create(&pp, &pod("ssd", json!({"nodeSelector": {"disk": "ssd"}})))
        .await
        .expect("create");
    assert_eq!(node_of(&pods, "ssd").await, "n1");
    // a toleration opens n2; required node affinity picks it
    pods.create(&pp, &pod("db", json!({
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}
    }))).await.expect("create");
    assert_eq!(node_of(&pods, "db").await, "n2");
    // anti-affinity by hostname: three replicas, three different nodes... but n2 is tainted
    for i in 0..3 {
        pods.create(&pp, &pod(&format!("spread-{i}"), json!({
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}]}}
        }))).await.expect("create");
    }
    let mut placed = Vec::new();
    for i in 0..2 {
        placed.push(node_of(&pods, &format!("spread-{i}")).await);
    }
    placed.sort();
    assert_eq!(placed, vec!["n1", "n3"]);
    // the third cannot fit anywhere: it stays pending with kube-scheduler's explanation
    let msg = wait_for_async("a FailedScheduling condition", || async {
        pods.get("spread-2").await.ok().and_then(|p| {
            p.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
                .message
        })
    })
    .await;
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 node(s) didn't match pod anti-affinity rules."
    );
    let out = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=FailedScheduling",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        out.contains("didn't match pod anti-affinity rules"),
        "{out}"
    );
    // resources: too big for every node
    pods.create(&pp, &pod("huge", json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "3"}}}]}))).await.expect("create");
    let msg = wait_for_async("huge to be refused", || async {
        pods.get("huge").await.ok().and_then(|p| {
            p.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?
                .message
        })
    })
    .await;
    assert!(
        msg.contains("2 Insufficient cpu") && msg.contains("untolerated taint"),
        "{msg}"
    );
    // topology spread: 6 replicas over zones a and c (b is tainted) with maxSkew 1
    for i in 0..4 {
        pods.create(&pp, &pod(&format!("zoned-{i}"), json!({
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "10m"}}}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "nodeTaintsPolicy": "Honor",
                "labelSelector": {"matchLabels": {"app": "zoned"}}}]
        }))).await.expect("create");
    }
    let mut per_zone: HashMap<String, i32> = HashMap::new();
    for i in 0..4 {
        let n = node_of(&pods, &format!("zoned-{i}")).await;
        *per_zone.entry(n).or_default() += 1;
    }
    assert_eq!(per_zone.get("n1"), Some(&2), "{per_zone:?}");
    assert_eq!(per_zone.get("n3"), Some(&2), "{per_zone:?}");
    let scheduled = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
        .count();
    assert_eq!(scheduled, 8);
}
