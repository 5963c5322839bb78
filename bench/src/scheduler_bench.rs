//! Scheduler throughput: N pods onto M simulated nodes (Node objects; nothing runs), measured
//! as kube-scheduler's scheduler_perf does: pods per second bound.
//!
//! The nodes and pods are created first with only the API server running; then a separate
//! `ketch-control --components scheduler` process starts, and every binding is observed through
//! a watch. Throughput is bound pods over the time from the first binding to the last.

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use ketch_bench::harness::{Proc, client, control_binary, start_control, start_etcd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// basic, affinity (spread + anti-affinity + node affinity), or both.
    #[arg(long, default_value = "basic,affinity", value_delimiter = ',')]
    variants: Vec<String>,
}

/// kube-scheduler's scheduler_perf CI minimums on 5000 nodes: 680 pods/s for 10k pods and
/// 810 pods/s for 50k pods; a run is compared with the one for the nearer size.
fn anchor_pods_per_sec(pods: usize) -> f64 {
    if pods >= 30_000 { 810.0 } else { 680.0 }
}

fn node(i: usize) -> serde_json::Value {
    let name = format!("node-{i:05}");
    serde_json::json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
        "status": {"capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn pod(i: usize, affinity: bool) -> serde_json::Value {
    let group = format!("g{}", i % 100);
    let mut spec = serde_json::json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]});
    if affinity {
        spec["topologySpreadConstraints"] = serde_json::json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"group": group}}}]);
        spec["affinity"] = serde_json::json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["zone-8", "zone-9"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"group": group}}}}]}});
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("pod-{i:05}"), "labels": {"group": group}}, "spec": spec})
}

async fn create_all(
    clients: &[kube::Client],
    path: &str,
    objs: Vec<serde_json::Value>,
) -> Result<()> {
    let chunks: Vec<Vec<serde_json::Value>> = objs
        .chunks(objs.len().div_ceil(clients.len()).max(1))
        .map(|c| c.to_vec())
        .collect();
    let mut tasks = Vec::new();
    for (c, chunk) in clients.iter().zip(chunks) {
        let c = c.clone();
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            for o in chunk {
                let req = http::Request::post(&path)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&o)?)?;
                c.request_text(req).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn run_variant(args: &Args, variant: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_etcd, etcd_url) = start_etcd(dir.path())?;
    let (_control, admin, port) =
        start_control(dir.path(), &etcd_url, &["--components", "apiserver"]).await?;
    let mut clients = Vec::new();
    for _ in 0..32 {
        clients.push(client(dir.path(), port).await?);
    }
    let t = Instant::now();
    create_all(
        &clients,
        "/api/v1/nodes",
        (0..args.nodes).map(node).collect(),
    )
    .await?;
    // Only the API server runs, so no controller makes the namespace's `default`
    // ServiceAccount that pod admission waits for: make it here, without token automounting,
    // so that the pods stay as small as kube-scheduler's scheduler_perf pods.
    create_all(
        &clients[..1],
        "/api/v1/namespaces/default/serviceaccounts",
        vec![
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default"}, "automountServiceAccountToken": false}),
        ],
    )
    .await?;
    let affinity = variant == "affinity";
    create_all(
        &clients,
        "/api/v1/namespaces/default/pods",
        (0..args.pods).map(|i| pod(i, affinity)).collect(),
    )
    .await?;
    eprintln!(
        "created {} nodes and {} pods in {:.1}s",
        args.nodes,
        args.pods,
        t.elapsed().as_secs_f64()
    );

    // Watch bindings from now on.
    let list: serde_json::Value = admin
        .request(http::Request::get("/api/v1/namespaces/default/pods?limit=1").body(Vec::new())?)
        .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("resourceVersion")?
        .to_string();
    let req = http::Request::get(format!(
        "/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
    ))
    .body(Vec::new())?;
    let stream = admin.request_events::<serde_json::Value>(req).await?;

    let start = Instant::now();
    let sched = Command::new(control_binary()?)
        .args(["--components", "scheduler", "--kubeconfig"])
        .arg(dir.path().join("control/admin.kubeconfig"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start the scheduler")?;
    let _sched = Proc(sched);
    let mut stream = std::pin::pin!(stream);
    let mut bound = std::collections::HashSet::new();
    let mut times = Vec::with_capacity(args.pods);
    let deadline = Instant::now() + Duration::from_secs(600);
    while bound.len() < args.pods {
        let ev = match tokio::time::timeout_at(deadline.into(), stream.next()).await {
            Ok(Some(Ok(ev))) => ev,
            Ok(Some(Err(e))) => bail!("watch: {e}"),
            _ => bail!("only {} of {} pods bound in time", bound.len(), args.pods),
        };
        if let kube::api::WatchEvent::Modified(p) = ev
            && p.pointer("/spec/nodeName")
                .and_then(|n| n.as_str())
                .is_some_and(|n| !n.is_empty())
            && bound.insert(
                p.pointer("/metadata/name")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
            )
        {
            times.push(start.elapsed());
        }
    }
    let first = times.first().copied().unwrap_or_default();
    let last = times.last().copied().unwrap_or_default();
    let span = (last - first).as_secs_f64().max(1e-3);
    let rate = (times.len() as f64 - 1.0).max(1.0) / span;
    // Per-second samples, as scheduler_perf's throughput collector takes them.
    let mut per_sec = vec![0usize; (last.as_secs() + 1) as usize];
    for t in &times {
        per_sec[t.as_secs() as usize] += 1;
    }
    let mut samples: Vec<usize> = per_sec
        .into_iter()
        .skip(first.as_secs() as usize)
        .filter(|n| *n > 0)
        .collect();
    samples.sort_unstable();
    let median = samples.get(samples.len() / 2).copied().unwrap_or(0);
    println!(
        "| {variant} | {} | {} | {:.0} | {median} | {:.1} | {:.1} | {:.2} |",
        args.nodes,
        args.pods,
        rate,
        first.as_secs_f64(),
        last.as_secs_f64(),
        rate / anchor_pods_per_sec(args.pods)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "| variant | nodes | pods | pods/s (first→last bind) | median pods/s per second | first bind s | last bind s | ratio to {:.0} pods/s |",
        anchor_pods_per_sec(args.pods)
    );
    println!("|---|---|---|---|---|---|---|---|");
    for v in &args.variants {
        run_variant(&args, v).await?;
    }
    Ok(())
}
