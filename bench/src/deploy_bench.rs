//! Controller convergence: one Deployment of N replicas (default 1,000) onto M simulated nodes
//! (Node objects with Leases; nothing runs), timed from its create request.
//!
//! A private etcd and a release `ketch-control` with every component (API server, scheduler,
//! controllers) start fresh for each run. No kubelet runs, so the bench plays the kubelets: it
//! watches the pods and, as soon as one is bound, patches its status (`pods/status`, merge
//! patch) to Running with Ready/ContainersReady true, a pod IP and a start time; a pod that gets
//! a deletionTimestamp is deleted with grace 0 (preconditioned on its uid), as a kubelet does
//! once the containers stopped. It also renews every node's Lease every 10 s, so the node
//! lifecycle controller keeps the nodes Ready. These writes go through `--clients` concurrent
//! clients.
//!
//! Phases, each from the Deployment's create request, every observation through a watch:
//! (a) all N pods exist, (b) all are bound, (c) the Deployment's status says replicas ==
//! updatedReplicas == readyReplicas == availableReplicas == N at its generation; then (d) a
//! rolling update (an annotation in the pod template), from the patch request until the new
//! ReplicaSet has N available and the old one is scaled to 0 (spec and status), and (d′) until
//! the Deployment's status says N everywhere again at the new generation.
//!
//! Baseline in the same run: once the Deployment is done, the same N pods (same template,
//! `nodeName` preset so the scheduler stays out) are POSTed directly into another namespace by
//! the same clients: the floor the ReplicaSet controller's creates stand on.

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{Stream, StreamExt};
use k8s_openapi::jiff;
use ketch_bench::harness::{client, start_control, start_etcd};
use kube::api::WatchEvent;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Parser)]
struct Args {
    /// Simulated nodes.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 1000)]
    replicas: usize,
    /// Runs, each in a fresh etcd and ketch-control; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent clients of the fake kubelets (status patches, deletions) and the baseline.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Give up on the rolling update after this many seconds (reported as not converged).
    #[arg(long, default_value_t = 120)]
    rollout_timeout: u64,
}

const NS: &str = "default";
const DIRECT_NS: &str = "bench-direct";
const DEPLOYMENT: &str = "bench";

fn now_secs() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

fn node(i: usize) -> Value {
    let name = node_name(i);
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "addresses": [{"type": "InternalIP", "address": format!("172.30.{}.{}", i / 250, i % 250 + 1)}],
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "lastHeartbeatTime": now_secs(), "lastTransitionTime": now_secs()}]}})
}

fn lease(i: usize) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node_name(i)},
        "spec": {"holderIdentity": node_name(i), "leaseDurationSeconds": 40, "renewTime": now_micro()}})
}

fn pod_spec() -> Value {
    json!({"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
        "terminationGracePeriodSeconds": 30})
}

fn deployment(replicas: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": DEPLOYMENT}},
                 "template": {"metadata": {"labels": {"app": DEPLOYMENT}}, "spec": pod_spec()}}})
}

fn direct_pod(i: usize, nodes: usize) -> Value {
    let mut spec = pod_spec();
    spec["nodeName"] = json!(node_name(i % nodes));
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("direct-{i:05}"), "labels": {"app": "direct"}},
        "spec": spec})
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn int_at(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

async fn post(c: &kube::Client, path: &str, obj: &Value) -> Result<()> {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(obj)?)?;
    c.request_text(req)
        .await
        .with_context(|| format!("POST {path}"))?;
    Ok(())
}

async fn merge_patch(c: &kube::Client, path: &str, patch: &Value) -> Result<(), kube::Error> {
    let req = http::Request::patch(path)
        .header("content-type", "application/merge-patch+json")
        .body(serde_json::to_vec(patch).map_err(kube::Error::SerdeError)?)
        .map_err(kube::Error::HttpError)?;
    c.request_text(req).await.map(|_| ())
}

fn gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

/// POSTs `objs` to `path`, split evenly over the clients, each sending its share one by one.
async fn create_all(clients: &[kube::Client], path: &str, objs: Vec<Value>) -> Result<()> {
    let per = objs.len().div_ceil(clients.len()).max(1);
    let mut tasks = Vec::new();
    for (c, chunk) in clients.iter().zip(objs.chunks(per)) {
        let (c, chunk, path) = (c.clone(), chunk.to_vec(), path.to_string());
        tasks.push(tokio::spawn(async move {
            for o in &chunk {
                post(&c, &path, o).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn wait_for(c: &kube::Client, path: &str, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let req = http::Request::get(path).body(Vec::new())?;
        if c.request_text(req).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not appear");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Events = Pin<Box<dyn Stream<Item = (Kind, kube::Result<WatchEvent<Value>>)> + Send>>;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Pod,
    Deployment,
    ReplicaSet,
}

/// A watch on `path` (a namespaced collection) from its current resourceVersion.
async fn watch(c: &kube::Client, path: &str, kind: Kind) -> Result<Events> {
    let list: Value = c
        .request(http::Request::get(format!("{path}?limit=1")).body(Vec::new())?)
        .await?;
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .context("list without resourceVersion")?;
    let req = http::Request::get(format!(
        "{path}?watch=true&resourceVersion={rv}&timeoutSeconds=3600"
    ))
    .body(Vec::new())?;
    let stream = c.request_events::<Value>(req).await?;
    Ok(Box::pin(stream.map(move |e| (kind, e))))
}

/// The fake kubelets' writes: at most `clients` at once, spread over the clients.
struct Kubelets {
    clients: Vec<kube::Client>,
    slots: Arc<Semaphore>,
    next: AtomicUsize,
    errors: Arc<AtomicUsize>,
    ips: AtomicUsize,
}

impl Kubelets {
    fn client(&self) -> kube::Client {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.clients[i % self.clients.len()].clone()
    }

    /// Running and ready, as a kubelet reports a started pod.
    fn start(&self, name: &str) {
        let n = self.ips.fetch_add(1, Ordering::Relaxed);
        let ip = format!("10.244.{}.{}", n / 250, n % 250 + 2);
        let now = now_secs();
        let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
        let patch = json!({"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
            "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("ContainersReady"), cond("Ready"), cond("PodScheduled")],
            "containerStatuses": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "imageID": "",
                "containerID": format!("containerd://{n:064x}"), "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": now}}}]}});
        let path = format!("/api/v1/namespaces/{NS}/pods/{name}/status");
        let (c, slots, errors) = (self.client(), self.slots.clone(), self.errors.clone());
        tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            if let Err(e) = merge_patch(&c, &path, &patch).await
                && !gone(&e)
            {
                errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("status patch {path}: {e}");
            }
        });
    }

    /// The containers stopped: delete with grace 0, as a kubelet finishes a deletion.
    fn finish_deletion(&self, name: &str, uid: &str) {
        let path = format!("/api/v1/namespaces/{NS}/pods/{name}");
        let body = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid}});
        let (c, slots, errors) = (self.client(), self.slots.clone(), self.errors.clone());
        tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let res = async {
                let req = http::Request::delete(&path)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).map_err(kube::Error::SerdeError)?)
                    .map_err(kube::Error::HttpError)?;
                c.request_text(req).await
            }
            .await;
            if let Err(e) = res
                && !gone(&e)
            {
                errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("delete {path}: {e}");
            }
        });
    }
}

#[derive(Default)]
struct PodSeen {
    started: bool,
    deleting: bool,
}

#[derive(Default, Clone, Copy)]
struct RsSeen {
    spec: i64,
    replicas: i64,
    available: i64,
}

/// The ReplicaSets as a timeout message shows them.
fn replica_sets(rss: &HashMap<String, RsSeen>) -> String {
    rss.iter()
        .map(|(k, r)| {
            format!(
                "{k}: spec {} replicas {} available {}",
                r.spec, r.replicas, r.available
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct RunResult {
    created: Duration,
    bound: Duration,
    ready: Duration,
    rollout: Option<Duration>,
    rollout_status: Option<Duration>,
    direct: Duration,
}

fn deployment_done(d: &Value, n: i64) -> bool {
    let gen_ok = int_at(d, "/status/observedGeneration") >= int_at(d, "/metadata/generation");
    gen_ok
        && [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ]
        .iter()
        .all(|f| int_at(d, &format!("/status/{f}")) == n)
}

async fn run(args: &Args) -> Result<RunResult> {
    let dir = tempfile::tempdir()?;
    let (_etcd, etcd_url) = start_etcd(dir.path())?;
    let (_control, admin, port) = start_control(dir.path(), &etcd_url, &[]).await?;
    let mut clients = Vec::new();
    for _ in 0..args.clients.max(1) {
        clients.push(client(dir.path(), port).await?);
    }
    let n = args.replicas;

    // Simulated nodes, each with a Lease renewed every 10 s from here on.
    create_all(
        &clients,
        "/api/v1/nodes",
        (0..args.nodes).map(node).collect(),
    )
    .await?;
    create_all(
        &clients,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        (0..args.nodes).map(lease).collect(),
    )
    .await?;
    let renew = {
        let (clients, nodes) = (clients.clone(), args.nodes);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let patches = (0..nodes).map(|i| {
                    let c = clients[i % clients.len()].clone();
                    async move {
                        let path = format!(
                            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
                            node_name(i)
                        );
                        let patch = json!({"spec": {"renewTime": now_micro()}});
                        if let Err(e) = merge_patch(&c, &path, &patch).await {
                            eprintln!("lease renewal {path}: {e}");
                        }
                    }
                });
                futures::stream::iter(patches)
                    .buffer_unordered(clients.len())
                    .collect::<Vec<()>>()
                    .await;
            }
        })
    };
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _renew = AbortOnDrop(renew);

    post(
        &admin,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DIRECT_NS}}),
    )
    .await?;
    // Pods are refused until their namespace's default ServiceAccount exists.
    for ns in [NS, DIRECT_NS] {
        wait_for(
            &admin,
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/default"),
            "the default ServiceAccount",
        )
        .await?;
    }

    let kubelets = Kubelets {
        clients: clients.clone(),
        slots: Arc::new(Semaphore::new(clients.len())),
        next: AtomicUsize::new(0),
        errors: Arc::new(AtomicUsize::new(0)),
        ips: AtomicUsize::new(0),
    };
    let watcher = client(dir.path(), port).await?;
    let mut events = futures::stream::select_all([
        watch(
            &watcher,
            &format!("/api/v1/namespaces/{NS}/pods"),
            Kind::Pod,
        )
        .await?,
        watch(
            &watcher,
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            Kind::Deployment,
        )
        .await?,
        watch(
            &watcher,
            &format!("/apis/apps/v1/namespaces/{NS}/replicasets"),
            Kind::ReplicaSet,
        )
        .await?,
    ]);

    let start = Instant::now();
    post(
        &admin,
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        &deployment(n),
    )
    .await?;

    let mut pods: HashMap<String, PodSeen> = HashMap::new();
    let mut first_uids: HashSet<String> = HashSet::new();
    let mut bound: HashSet<String> = HashSet::new();
    let mut rss: HashMap<String, RsSeen> = HashMap::new();
    let (mut created, mut bound_at, mut ready_at) = (None, None, None);
    let mut rollout_start: Option<Instant> = None;
    let mut old_rs = String::new();
    let (mut rollout_at, mut rollout_status_at) = (None, None);
    let mut last_deployment = Value::Null;
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let ni = n as i64;

    while rollout_at.is_none() || rollout_status_at.is_none() {
        let (kind, ev) = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some((k, Ok(ev)))) => (k, ev),
            Ok(Some((k, Err(e)))) => bail!("{k:?} watch: {e}"),
            Ok(None) => bail!("a watch ended"),
            Err(_) if rollout_start.is_some() => {
                eprintln!(
                    "rolling update not done after {}s: deployment status {}, replicasets {}",
                    args.rollout_timeout,
                    last_deployment.get("status").unwrap_or(&Value::Null),
                    replica_sets(&rss)
                );
                break;
            }
            Err(_) => bail!(
                "timed out after {}s: {} pods seen, {} bound, deployment status {}, replicasets {}",
                args.timeout,
                first_uids.len(),
                bound.len(),
                last_deployment.get("status").unwrap_or(&Value::Null),
                replica_sets(&rss)
            ),
        };
        let (obj, deleted) = match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => (o, false),
            WatchEvent::Deleted(o) => (o, true),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => bail!("{kind:?} watch error: {e}"),
        };
        match kind {
            Kind::Pod => {
                let uid = str_at(&obj, "/metadata/uid").to_string();
                let name = str_at(&obj, "/metadata/name").to_string();
                if deleted {
                    pods.remove(&uid);
                    continue;
                }
                if rollout_start.is_none()
                    && first_uids.insert(uid.clone())
                    && first_uids.len() == n
                {
                    created = Some(start.elapsed());
                }
                let seen = pods.entry(uid.clone()).or_default();
                let on_node = !str_at(&obj, "/spec/nodeName").is_empty();
                if obj.pointer("/metadata/deletionTimestamp").is_some() {
                    if on_node && !seen.deleting {
                        seen.deleting = true;
                        kubelets.finish_deletion(&name, &uid);
                    }
                    continue;
                }
                if on_node && !seen.started {
                    seen.started = true;
                    kubelets.start(&name);
                }
                if on_node && rollout_start.is_none() && bound.insert(uid) && bound.len() == n {
                    bound_at = Some(start.elapsed());
                }
            }
            Kind::ReplicaSet => {
                let name = str_at(&obj, "/metadata/name").to_string();
                if deleted {
                    rss.remove(&name);
                    continue;
                }
                rss.insert(
                    name,
                    RsSeen {
                        spec: int_at(&obj, "/spec/replicas"),
                        replicas: int_at(&obj, "/status/replicas"),
                        available: int_at(&obj, "/status/availableReplicas"),
                    },
                );
                if let Some(t) = rollout_start
                    && rollout_at.is_none()
                    && rss
                        .get(&old_rs)
                        .is_none_or(|r| r.spec == 0 && r.replicas == 0)
                    && rss
                        .iter()
                        .any(|(k, r)| *k != old_rs && r.spec == ni && r.available == ni)
                {
                    rollout_at = Some(t.elapsed());
                }
            }
            Kind::Deployment => {
                let done = deployment_done(&obj, ni);
                let generation = int_at(&obj, "/metadata/generation");
                last_deployment = obj;
                if ready_at.is_none() && done {
                    ready_at = Some(start.elapsed());
                    if rss.len() != 1 {
                        bail!("{} ReplicaSets after the first rollout", rss.len());
                    }
                    old_rs = rss.keys().next().cloned().unwrap_or_default();
                    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"bench/rollout": "1"}}}}});
                    rollout_start = Some(Instant::now());
                    deadline =
                        tokio::time::Instant::now() + Duration::from_secs(args.rollout_timeout);
                    merge_patch(
                        &admin,
                        &format!("/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOYMENT}"),
                        &patch,
                    )
                    .await
                    .context("start the rolling update")?;
                } else if let Some(t) = rollout_start
                    && rollout_status_at.is_none()
                    && generation >= 2
                    && done
                {
                    rollout_status_at = Some(t.elapsed());
                }
            }
        }
    }

    // Baseline: the same number of pods created directly by the bench's clients.
    let t = Instant::now();
    create_all(
        &clients,
        &format!("/api/v1/namespaces/{DIRECT_NS}/pods"),
        (0..n).map(|i| direct_pod(i, args.nodes)).collect(),
    )
    .await?;
    let direct = t.elapsed();

    let errors = kubelets.errors.load(Ordering::Relaxed);
    if errors > 0 {
        eprintln!("{errors} fake kubelet writes failed");
    }
    let missing = |what: &str| anyhow::anyhow!("{what} was never observed");
    Ok(RunResult {
        created: created.ok_or_else(|| missing("all pods created"))?,
        bound: bound_at.ok_or_else(|| missing("all pods bound"))?,
        ready: ready_at.ok_or_else(|| missing("the Deployment available"))?,
        rollout: rollout_at,
        rollout_status: rollout_status_at,
        direct,
    })
}

/// One phase's time in a run, if it converged.
type Phase = fn(&RunResult) -> Option<Duration>;

fn secs(d: Option<Duration>) -> String {
    d.map_or("—".to_string(), |d| format!("{:.2}", d.as_secs_f64()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut results = Vec::new();
    for i in 0..args.runs.max(1) {
        let r = run(&args).await.with_context(|| format!("run {}", i + 1))?;
        eprintln!(
            "run {}: created {:.2}s, bound {:.2}s, available {:.2}s, rollout {} (status {}), direct creates {:.2}s",
            i + 1,
            r.created.as_secs_f64(),
            r.bound.as_secs_f64(),
            r.ready.as_secs_f64(),
            secs(r.rollout),
            secs(r.rollout_status),
            r.direct.as_secs_f64()
        );
        results.push(r);
    }
    let n = args.replicas;
    let rows: [(String, Phase); 6] = [
        (format!("(a) all {n} pods exist"), |r| Some(r.created)),
        (format!("(b) all {n} pods bound"), |r| Some(r.bound)),
        (
            format!("(c) Deployment replicas = updated = ready = available = {n}"),
            |r| Some(r.ready),
        ),
        (
            format!("(d) rolling update: new ReplicaSet {n} available, old one at 0"),
            |r| r.rollout,
        ),
        (
            format!("(d′) rolling update: Deployment status {n} everywhere again"),
            |r| r.rollout_status,
        ),
        (
            format!(
                "baseline: {n} pods POSTed directly ({} clients)",
                args.clients
            ),
            |r| Some(r.direct),
        ),
    ];
    println!("| phase | median s | pods/s | runs s |");
    println!("|---|---|---|---|");
    for (label, f) in &rows {
        let all: Vec<Option<Duration>> = results.iter().map(f).collect();
        let done: Vec<Duration> = all.iter().flatten().copied().collect();
        let (med, rate) = if done.len() == all.len() {
            let m = median(done).as_secs_f64();
            (format!("{m:.2}"), format!("{:.0}", n as f64 / m.max(1e-3)))
        } else {
            (
                format!(
                    "not converged in {} of {} runs",
                    all.len() - done.len(),
                    all.len()
                ),
                "—".to_string(),
            )
        };
        println!(
            "| {label} | {med} | {rate} | {} |",
            all.iter().map(|d| secs(*d)).collect::<Vec<_>>().join(" / ")
        );
    }
    let created = median(results.iter().map(|r| r.created).collect());
    let direct = median(results.iter().map(|r| r.direct).collect());
    println!(
        "\nRatio (a) / baseline (medians): {:.2}×",
        created.as_secs_f64() / direct.as_secs_f64().max(1e-3)
    );
    Ok(())
}
