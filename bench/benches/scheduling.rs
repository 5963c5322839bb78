//! The scheduling cycle alone (no API server): one pod through Candidate::new, the filters over
//! a kube-scheduler-sized sample of nodes, and scoring, on 5,000 nodes holding 10,000 pods.

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::{Node, Pod};
use ketch_control::scheduler::plugins::Candidate;
use ketch_control::scheduler::state::State;
use std::hint::black_box;
use std::sync::Arc;

fn node(i: usize) -> Node {
    serde_json::from_value(serde_json::json!({"metadata": {"name": format!("node-{i:05}"),
        "labels": {"kubernetes.io/hostname": format!("node-{i:05}"), "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
        "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"}}}))
    .expect("node")
}

fn pod(i: usize, affinity: bool) -> Pod {
    let group = format!("g{}", i % 100);
    let mut spec = serde_json::json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]});
    if affinity {
        spec["topologySpreadConstraints"] = serde_json::json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"group": group}}}]);
        spec["affinity"] = serde_json::json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["zone-8", "zone-9"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"group": group}}}}]}});
    }
    serde_json::from_value(serde_json::json!({"metadata": {"name": format!("p{i}"), "namespace": "default", "uid": format!("u{i}"),
        "labels": {"group": group}}, "spec": spec}))
    .expect("pod")
}

fn cycle(state: &State, p: &Pod) -> usize {
    let c = Candidate::new(p, state);
    let mut feasible = Vec::new();
    for name in state.order.iter() {
        if let Some(n) = state.nodes.get(name)
            && c.filter(n).is_ok()
        {
            feasible.push(n);
            if feasible.len() >= 500 {
                break;
            }
        }
    }
    let scores = c.score(&feasible);
    scores
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| **s)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    for affinity in [false, true] {
        let mut state = State::default();
        for i in 0..5000 {
            state.upsert_node(Arc::new(node(i)));
        }
        for i in 0..10000 {
            state.add_pod(Arc::new(pod(i, affinity)), &format!("node-{:05}", i % 5000));
        }
        let incoming = pod(10001, affinity);
        let name = if affinity {
            "schedule one pod, 5000 nodes, spread+affinity"
        } else {
            "schedule one pod, 5000 nodes, basic"
        };
        c.bench_function(name, |b| {
            b.iter(|| black_box(cycle(&state, black_box(&incoming))))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
