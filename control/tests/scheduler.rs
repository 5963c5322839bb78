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
    // Preemption found nothing of lower priority: kube appends that (with its double period).
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.."
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

fn priority_class(name: &str, value: i64, policy: &str, default: bool) -> serde_json::Value {
    json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
        "value": value, "preemptionPolicy": policy, "globalDefault": default})
}

fn cpu_pod(name: &str, class: &str, cpu: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"priorityClassName": class,
            "containers": [{"name": "c", "image": "localhost/busybox:latest", "resources": {"requests": {"cpu": cpu}}}]}})
}

/// The scheduler's message once it has refused `name` (PodScheduled=False).
async fn refusal(api: &Api<Pod>, name: &str) -> String {
    wait_for_async(&format!("{name} to be refused"), || async {
        api.get(name)
            .await
            .ok()?
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
            .message
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn priority_classes_resolve_and_higher_priority_pods_preempt() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let client = api.client.clone();
    let _nodes = FakeNodes::start(client.clone(), &[("n1", &[], "2", "4Gi")], None).await;
    for pc in [
        priority_class("low", 10, "PreemptLowerPriority", false),
        priority_class("high", 1000, "PreemptLowerPriority", false),
        priority_class("high-never", 1000, "Never", false),
    ] {
        let (code, body) = api
            .post("/apis/scheduling.k8s.io/v1/priorityclasses", pc)
            .await;
        assert_eq!(code, 201, "{body}");
    }
    // The built-in classes exist, as on any cluster.
    let (code, body) = api
        .get("/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical")
        .await;
    assert_eq!((code, body["value"].clone()), (200, json!(2_000_001_000)));

    // Admission: an unknown class is refused; a known one fills priority and policy.
    let path = "/api/v1/namespaces/default/pods";
    let (code, body) = api.post(path, cpu_pod("ghost", "nope", "1")).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "pods \"ghost\" is forbidden: no PriorityClass with name nope was found"
    );
    let mut wrong = cpu_pod("wrong", "low", "1");
    wrong["spec"]["priority"] = json!(5);
    let (code, body) = api.post(path, wrong).await;
    assert_eq!(code, 403, "{body}");

    // n1 (2 CPUs) full of low-priority pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["low-a", "low-b"] {
        let (code, body) = api.post(path, cpu_pod(name, "low", "1")).await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["spec"]["priority"], 10);
        assert_eq!(body["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    }
    for name in ["low-a", "low-b"] {
        assert_eq!(node_of(&pods, name).await, "n1");
    }

    // Equal priority does not preempt; neither does a pod whose policy is Never.
    let (code, body) = api.post(path, cpu_pod("peer", "low", "1")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = api.post(path, cpu_pod("polite", "high-never", "1")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["preemptionPolicy"], "Never");
    let msg = refusal(&pods, "peer").await;
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
    );
    let msg = refusal(&pods, "polite").await;
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.."
    );
    for name in ["low-a", "low-b"] {
        let p = pods.get(name).await.expect("still there");
        assert!(
            p.metadata.deletion_timestamp.is_none(),
            "{name} was not preempted"
        );
    }

    // A higher-priority pod that may preempt: one victim is enough, it goes, and the pod binds
    // in its place (the equal-priority `polite` pod must not take the room meanwhile).
    let (code, body) = api.post(path, cpu_pod("urgent", "high", "1")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(node_of(&pods, "urgent").await, "n1");
    let left: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .filter(|n| n.starts_with("low-"))
        .collect();
    assert_eq!(left.len(), 1, "exactly one low pod was preempted: {left:?}");
    let victim = if left[0] == "low-a" { "low-b" } else { "low-a" };
    let out = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=Preempted",
        "-o",
        "jsonpath={.items[*].involvedObject.name} {.items[*].message}",
    ]);
    assert!(
        out.starts_with(victim) && out.contains("Preempted by pod") && out.contains("on node n1"),
        "{out}"
    );
    for name in ["peer", "polite"] {
        let p = pods.get(name).await.expect("pending");
        assert!(
            p.spec.and_then(|s| s.node_name).is_none(),
            "{name} must not take the freed room"
        );
    }

    // A global default class applies to pods that name none; only one may exist.
    let (code, body) = api
        .post(
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            priority_class("usual", 100, "PreemptLowerPriority", true),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = api
        .post(
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            priority_class("usual2", 200, "PreemptLowerPriority", true),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "priorityclasses.scheduling.k8s.io \"usual2\" is forbidden: PriorityClass usual is already marked as default. Only one default can exist"
    );
    let (code, body) = api.post(path, cpu_pod("plain", "", "10m")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["priorityClassName"], "usual");
    assert_eq!(body["spec"]["priority"], 100);
}
