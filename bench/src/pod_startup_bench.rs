//! Pod startup latency on a real `ketch up` cluster: N pods created at once, each timed from its
//! create request to the watch event that shows it `Running`, as the Kubernetes pod startup SLO
//! measures it (images are local, so no pull time is in it). Reports p50/p99 per round and the
//! resident memory of every `ketch-node` with the pods running.
//!
//! The cluster gets its own name, subnets, ports and state directory, and `ketch down` runs when
//! the bench ends, also on error.

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher::Event;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Pods created at once in each round.
    #[arg(long, default_value_t = 30)]
    pods: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Milliseconds between creates in the paced rounds (the burst rounds create all at once).
    #[arg(long, default_value_t = 200)]
    pace_ms: u64,
}

/// Kubernetes pod startup SLO: p99 ≤ 5 s for stateless pods without image pulls.
const SLO: Duration = Duration::from_secs(5);
/// Ceiling for anything the cluster does; far above what it needs.
const PATIENCE: Duration = Duration::from_secs(300);

fn ketch_binary() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let p = me
        .parent()
        .map(|d| d.join("ketch"))
        .context("no directory")?;
    if !p.exists() {
        bail!(
            "{} missing: build the workspace binaries first",
            p.display()
        );
    }
    Ok(p)
}

/// The cluster; `ketch down` when dropped.
struct Cluster {
    ketch: PathBuf,
    state: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.ketch)
            .arg("down")
            .arg("--state-dir")
            .arg(self.state.path())
            .output();
    }
}

/// A cluster name and subnets nothing on this machine uses yet.
fn free_network() -> Result<(String, String, String)> {
    let routes = Command::new("ip").arg("route").output()?;
    let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
    (40..80)
        .map(|i| {
            (
                format!("kb{i}"),
                format!("10.{}.0.0/24", 200 + i - 40),
                format!("10.{}.0.0/16", 110 + i - 40),
            )
        })
        .find(|(name, subnet, pods)| {
            let free = |p: String| !Path::new(&p).exists();
            free(format!("/run/netns/{name}-n1"))
                && free(format!("/sys/class/net/{name}0"))
                && !routes.contains(&subnet[..subnet.len() - 4])
                && !routes.contains(&pods[..pods.len() - 5])
        })
        .context("no free cluster name and subnet")
}

fn up(args: &Args) -> Result<Cluster> {
    let ketch = ketch_binary()?;
    let state = tempfile::Builder::new().prefix("ketch-bench").tempdir()?;
    let (name, subnet, pods) = free_network()?;
    let port = |_| ketch_bench::harness::free_port().map(|p| p.to_string());
    let (api, etcd) = (port(())?, port(())?);
    let cluster = Cluster { ketch, state };
    eprintln!("==> ketch up --nodes {} (cluster {name})", args.nodes);
    let out = Command::new(&cluster.ketch)
        .arg("up")
        .arg("--state-dir")
        .arg(cluster.state.path())
        .args(["--api-port", &api, "--etcd-port", &etcd])
        .args(["--nodes", &args.nodes.to_string(), "--cluster-name", &name])
        .args(["--node-subnet", &subnet, "--cluster-cidr", &pods])
        .output()?;
    if !out.status.success() {
        bail!(
            "ketch up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(cluster)
}

async fn client(state: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(state.join("kubeconfig"))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

fn pod(i: usize) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{i:03}"), "labels": {"app": "startup"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
            "name": "c", "image": "localhost/busybox:latest", "command": ["sleep", "3600"]}]}
    }))?)
}

/// Resident set size of every `ketch-node`, from the pids `ketch up` recorded.
fn node_rss_kib(state: &Path) -> Result<Vec<(String, u64)>> {
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(state.join("state.json"))?)?;
    let mut out = Vec::new();
    for p in st["processes"].as_array().context("processes")? {
        let name = p["name"].as_str().unwrap_or_default();
        if !name.starts_with("ketch-node-") {
            continue;
        }
        let pid = p["pid"].as_i64().context("pid")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("VmRSS")?;
        out.push((name.trim_start_matches("ketch-node-").to_string(), kib));
    }
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn wait_for<F, Fut>(what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        if start.elapsed() > PATIENCE {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// One round: creates the pods (all at once, or one every `pace`) and returns each one's
/// create-to-Running latency.
async fn round(pods: &Api<Pod>, n: usize, pace: Option<Duration>) -> Result<Vec<Duration>> {
    // A watcher (re-lists and resumes by itself) started before the first create.
    let mut events = kube::runtime::watcher(pods.clone(), Default::default()).boxed();
    match events.try_next().await? {
        Some(kube::runtime::watcher::Event::Init) => {}
        other => bail!("the pod watch did not start with Init: {other:?}"),
    }
    let mut created: HashMap<String, Instant> = HashMap::new();
    let creates = futures::stream::iter((0..n).map(|i| {
        let pods = pods.clone();
        async move {
            if let Some(pace) = pace {
                tokio::time::sleep(pace * i as u32).await;
            }
            let p = pod(i)?;
            let sent = Instant::now();
            pods.create(&PostParams::default(), &p).await?;
            anyhow::Ok((format!("p{i:03}"), sent))
        }
    }))
    .buffer_unordered(n)
    .try_collect::<Vec<_>>();
    let mut running: HashMap<String, Instant> = HashMap::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut creates = Box::pin(creates);
    let mut creates_done = false;
    while running.len() < n {
        tokio::select! {
            r = &mut creates, if !creates_done => {
                created.extend(r?);
                creates_done = true;
            }
            ev = events.try_next() => match ev? {
                Some(Event::InitApply(p) | Event::Apply(p)) => {
                    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                    if phase == Some("Running")
                        && let Some(name) = p.metadata.name
                    {
                        running.entry(name).or_insert_with(Instant::now);
                    }
                }
                Some(_) => {}
                None => bail!("the watch ended"),
            },
            _ = tokio::time::sleep_until(deadline) => bail!("{} of {n} pods Running after {PATIENCE:?}", running.len()),
        }
    }
    if !creates_done {
        created.extend(creates.await?);
    }
    let mut lat: Vec<Duration> = running
        .iter()
        .map(|(name, t)| {
            let sent = created.get(name).context("a pod we did not create")?;
            Ok(t.saturating_duration_since(*sent))
        })
        .collect::<Result<_>>()?;
    lat.sort();
    Ok(lat)
}

async fn clear(pods: &Api<Pod>) -> Result<()> {
    pods.delete_collection(
        &DeleteParams::default().grace_period(0),
        &ListParams::default(),
    )
    .await?;
    wait_for("the pods to be gone", || async {
        pods.list(&ListParams::default())
            .await
            .is_ok_and(|l| l.items.is_empty())
    })
    .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cluster = up(&args)?;
    let client = client(cluster.state.path()).await?;
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "bench"}}))?,
    )
    .await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "bench");
    wait_for("the default ServiceAccount", || async {
        sas.get_opt("default").await.is_ok_and(|s| s.is_some())
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(client, "bench");
    let idle = node_rss_kib(cluster.state.path())?;

    println!(
        "| round | creates | pods | p50 ms | p99 ms | max ms | p99 / SLO (5 s) | ketch-node RSS with pods (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    let paced = Duration::from_millis(args.pace_ms);
    let modes = [
        (None, "all at once".to_string()),
        (Some(paced), format!("one per {} ms", args.pace_ms)),
    ];
    for (r, (pace, how)) in (1..=args.rounds).flat_map(|r| modes.iter().map(move |m| (r, m))) {
        eprintln!("==> round {r}: {} pods, {how}", args.pods);
        let lat = round(&pods, args.pods, *pace).await?;
        let rss = node_rss_kib(cluster.state.path())?;
        let p99 = percentile(&lat, 0.99);
        println!(
            "| {r} | {how} | {} | {:.0} | {:.0} | {:.0} | {:.3} | {} |",
            lat.len(),
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            p99.as_secs_f64() / SLO.as_secs_f64(),
            rss.iter()
                .map(|(n, k)| format!("{n} {:.1}", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if pace.is_some() {
            all.extend(lat);
        }
        clear(&pods).await?;
    }
    all.sort();
    println!(
        "\npaced rounds together: {} pods, p50 {:.0} ms, p99 {:.0} ms; ketch-node RSS idle: {}",
        all.len(),
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        idle.iter()
            .map(|(n, k)| format!("{n} {:.1} MiB", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", "),
    );
    drop(cluster);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<Duration> = (1..=30).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(15));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(30));
        assert_eq!(percentile(&v[..1], 0.99), Duration::from_millis(1));
    }
}
