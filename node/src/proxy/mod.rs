//! The kube-proxy replacement: follows Services and EndpointSlices and keeps the node's eBPF
//! Service maps equal to what they describe, writing only what changed.
//!
//! On start the maps pinned by an earlier agent are read back and reconciled without a flush:
//! frontends that no longer exist are deleted, every current one is written once (unchanged
//! backends keep their ids), so connections open across an agent restart keep working.

pub mod desired;

use crate::dataplane::{CtTimeouts, Dataplane, Frontend, Service, monotonic_now_ns};
use crate::metrics::ProxyMetrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service as KubeService;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// How often idle connection-tracking entries are looked for (shorter than the shortest
/// timeout, so a closed connection's entries go within about twice its 10 s).
const CT_EXPIRY_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);
/// Set by the endpointslice controller: the earliest change (pod readiness, service creation)
/// this version of the slice reflects.
const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Which EndpointSlice versions were already programmed, to time the new ones once
/// (`network_programming_duration_seconds`, as kube-proxy measures it).
struct TriggerTimes {
    /// Changes from before the agent started are not its latency.
    started: jiff::Timestamp,
    seen: HashMap<(String, String), String>,
}

impl TriggerTimes {
    fn new() -> Self {
        TriggerTimes {
            started: jiff::Timestamp::now(),
            seen: HashMap::new(),
        }
    }

    /// The trigger times of the slices that changed since the last call (a slice seen for the
    /// first time counts as changed when its trigger time is after the agent started).
    fn programmed(&mut self, slices: &Store<EndpointSlice>) -> Vec<jiff::Timestamp> {
        let mut out = Vec::new();
        let mut seen = HashMap::with_capacity(self.seen.len());
        for s in slices.state() {
            let key = (
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
            );
            let rv = s.metadata.resource_version.clone().unwrap_or_default();
            if self.seen.get(&key) != Some(&rv)
                && let Some(t) = s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(LAST_CHANGE_TRIGGER_TIME))
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                && t >= self.started
            {
                out.push(t);
            }
            seen.insert(key, rv);
        }
        self.seen = seen;
        out
    }
}

/// How a frontend is written in the names file (`10.96.0.20:80/TCP`).
pub fn frontend_label(f: &Frontend) -> String {
    format!("{}:{}/{:?}", f.addr, f.port, f.proto).to_uppercase()
}

/// Every frontend the cluster's Services describe for this node, and whose it is
/// (`namespace/name`, by [`frontend_label`]).
fn desired_all(
    services: &Store<KubeService>,
    slices: &Store<EndpointSlice>,
    node: &str,
) -> (HashMap<Frontend, Service>, BTreeMap<String, String>) {
    let mut by_service: BTreeMap<(String, String), Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in slices.state() {
        let Some(name) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        by_service.entry((ns, name.clone())).or_default().push(s);
    }
    let mut out = HashMap::new();
    let mut names = BTreeMap::new();
    for svc in services.state() {
        let key = (
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let slices: Vec<&EndpointSlice> = by_service
            .get(&key)
            .map(|v| v.iter().map(|s| s.as_ref()).collect())
            .unwrap_or_default();
        for f in desired::frontends(&svc, &slices, node) {
            names.insert(
                frontend_label(&f.stored_frontend()),
                format!("{}/{}", key.0, key.1),
            );
            out.insert(f.stored_frontend(), f);
        }
    }
    (out, names)
}

/// Writes the names file for `ketch bpf` (the kernel maps hold numbers only).
fn write_names(path: &std::path::Path, names: &BTreeMap<String, String>) {
    let tmp = path.with_extension("tmp");
    let ok = serde_json::to_vec_pretty(names)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = ok {
        tracing::warn!(path = %path.display(), error = %e, "writing the service names failed");
    }
}

/// Keeps `writer`'s store following `api` and wakes `changed` on every event (shared with
/// the DNS server, which follows the same kinds).
pub(crate) fn follow<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    changed: Arc<Notify>,
) -> impl std::future::Future<Output = ()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .for_each(move |ev| {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "watch failed; retrying");
            }
            changed.notify_one();
            futures::future::ready(())
        })
}

/// Runs until `stop`, the one writer of `dp`'s Service maps (metrics kept but not exported).
pub async fn run(
    client: kube::Client,
    dp: Dataplane,
    node: String,
    names_file: std::path::PathBuf,
    stop: CancellationToken,
) {
    let metrics = Arc::new(ProxyMetrics::default());
    run_with_metrics(client, dp, node, names_file, metrics, stop).await
}

/// [`run`], recording into `metrics`.
pub async fn run_with_metrics(
    client: kube::Client,
    mut dp: Dataplane,
    node: String,
    names_file: std::path::PathBuf,
    metrics: Arc<ProxyMetrics>,
    stop: CancellationToken,
) {
    let changed = Arc::new(Notify::new());
    let (services, svc_writer) = reflector::store::<KubeService>();
    let (slices, eps_writer) = reflector::store::<EndpointSlice>();
    let svc_task = tokio::spawn(follow(
        Api::<KubeService>::all(client.clone()),
        svc_writer,
        changed.clone(),
    ));
    let eps_task = tokio::spawn(follow(
        Api::<EndpointSlice>::all(client),
        eps_writer,
        changed.clone(),
    ));
    let ready = async {
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
    };
    tokio::select! {
        _ = ready => {}
        _ = stop.cancelled() => {
            svc_task.abort();
            eps_task.abort();
            return;
        }
    }
    // What an earlier agent left in the pinned maps is the starting point, not an empty table.
    let mut applied: HashMap<Frontend, Service> = HashMap::new();
    let mut triggers = TriggerTimes::new();
    let timeouts = CtTimeouts::default();
    let mut expiry = tokio::time::interval(CT_EXPIRY_PERIOD);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        let started = Instant::now();
        let (want, names) = desired_all(&services, &slices, &node);
        let mut writes = 0usize;
        if first {
            match dp.list_services() {
                Ok(existing) => {
                    for e in existing {
                        if !want.contains_key(&e.frontend) {
                            if let Err(err) = dp.delete_service(&e.frontend) {
                                tracing::warn!(frontend = ?e.frontend, error = %err, "deleting a stale frontend failed");
                            }
                            writes += 1;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the pinned service map failed"),
            }
        } else {
            let gone: Vec<Frontend> = applied
                .keys()
                .filter(|f| !want.contains_key(f))
                .copied()
                .collect();
            for f in gone {
                if let Err(e) = dp.delete_service(&f) {
                    tracing::warn!(frontend = ?f, error = %e, "deleting a frontend failed");
                }
                applied.remove(&f);
                writes += 1;
            }
        }
        for (f, s) in &want {
            if !first && applied.get(f) == Some(s) {
                continue;
            }
            match dp.upsert_service(s) {
                Ok(_) => {
                    applied.insert(*f, s.clone());
                }
                Err(e) => tracing::warn!(frontend = ?f, error = %e, "writing a frontend failed"),
            }
            writes += 1;
        }
        if writes > 0 || first {
            write_names(&names_file, &names);
        }
        metrics.observe_sync(started.elapsed());
        let now = jiff::Timestamp::now();
        for t in triggers.programmed(&slices) {
            let took = now.duration_since(t).as_secs_f64().max(0.0);
            metrics.network_programming.observe(took);
        }
        if writes > 0 {
            tracing::info!(
                frontends = want.len(),
                writes,
                micros = started.elapsed().as_micros() as u64,
                "service maps programmed"
            );
        }
        first = false;
        // Between changes, expire idle connection-tracking entries (this loop is the one
        // writer of the maps).
        let stopped = loop {
            tokio::select! {
                _ = changed.notified() => break false,
                _ = expiry.tick() => {
                    match dp.expire_conntrack(monotonic_now_ns(), &timeouts) {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(entries = n, "expired idle connection-tracking entries"),
                        Err(e) => tracing::warn!(error = %e, "expiring connection-tracking entries failed"),
                    }
                }
                _ = stop.cancelled() => break true,
            }
        };
        if stopped {
            break;
        }
    }
    svc_task.abort();
    eps_task.abort();
}
