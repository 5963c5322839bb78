//! The kube-proxy replacement: follows Services and EndpointSlices and keeps the node's eBPF
//! Service maps equal to what they describe, writing only what changed.
//!
//! Each watch event names the Service it concerns (an EndpointSlice by its
//! `kubernetes.io/service-name` label); the loop recomputes and rewrites only those Services
//! ([`programmed`]), so one endpoint change costs the same with 10 or 10,000 Services. A
//! (re)list recomputes everything.
//!
//! On start the maps pinned by an earlier agent are read back and reconciled without a flush:
//! frontends that no longer exist are deleted, every current one is written once (unchanged
//! backends keep their ids), so connections open across an agent restart keep working.

pub mod desired;
mod programmed;

use crate::dataplane::{CtTimeouts, Dataplane, Frontend, monotonic_now_ns};
use crate::metrics::ProxyMetrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service as KubeService;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use programmed::{Programmed, group_slices, slice_service};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
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

/// A Service's `(namespace, name)`.
type ServiceKey = (String, String);

/// How a frontend is written in the names file (`10.96.0.20:80/TCP`).
pub fn frontend_label(f: &Frontend) -> String {
    format!("{}:{}/{:?}", f.addr, f.port, f.proto).to_uppercase()
}

/// The Services whose objects changed since the loop last looked, or "all" after a (re)list.
struct Dirty {
    state: Mutex<(bool, HashSet<ServiceKey>)>,
    wake: Notify,
}

impl Dirty {
    fn new() -> Self {
        Dirty {
            // The first pass is a full one.
            state: Mutex::new((true, HashSet::new())),
            wake: Notify::new(),
        }
    }

    fn mark(&self, t: Touched) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match t {
            Touched::Nothing => return,
            Touched::One(k) => {
                s.1.insert(k);
            }
            Touched::All => s.0 = true,
        }
        drop(s);
        self.wake.notify_one();
    }

    fn take(&self) -> (bool, HashSet<ServiceKey>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *s)
    }
}

/// Which EndpointSlice versions were already programmed, to time the new ones once
/// (`network_programming_duration_seconds`, as kube-proxy measures it).
struct TriggerTimes {
    /// Changes from before the agent started are not its latency.
    started: jiff::Timestamp,
    /// Slice name → resourceVersion, by Service.
    seen: HashMap<ServiceKey, HashMap<String, String>>,
}

impl TriggerTimes {
    fn new() -> Self {
        TriggerTimes {
            started: jiff::Timestamp::now(),
            seen: HashMap::new(),
        }
    }

    /// The trigger times of the slices (of the Services in `grouped`, or of every Service if
    /// `all`) that changed since they were last looked at; a slice seen for the first time
    /// counts when its trigger time is after the agent started.
    fn programmed(
        &mut self,
        grouped: &HashMap<ServiceKey, Vec<Arc<EndpointSlice>>>,
        scope: &HashSet<ServiceKey>,
        all: bool,
    ) -> Vec<jiff::Timestamp> {
        let mut out = Vec::new();
        let mut before = if all {
            std::mem::take(&mut self.seen)
        } else {
            scope
                .iter()
                .filter_map(|k| self.seen.remove_entry(k))
                .collect()
        };
        for (key, slices) in grouped {
            let old = before.remove(key).unwrap_or_default();
            let mut now = HashMap::with_capacity(slices.len());
            for s in slices {
                let name = s.metadata.name.clone().unwrap_or_default();
                let rv = s.metadata.resource_version.clone().unwrap_or_default();
                if old.get(&name) != Some(&rv)
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
                now.insert(name, rv);
            }
            self.seen.insert(key.clone(), now);
        }
        out
    }
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

/// What a reflector can follow: a namespaced or cluster kind with a static type.
pub(crate) trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// Keeps `writer`'s store following `api` and calls `changed` with every event (after the
/// store applied it).
fn follow_events<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    mut changed: impl FnMut(&watcher::Event<K>) + Send + 'static,
) -> impl std::future::Future<Output = ()>
where
    K: Watched,
{
    reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .for_each(move |ev| {
            match ev {
                Ok(ev) => changed(&ev),
                Err(e) => tracing::warn!(error = %e, "watch failed; retrying"),
            }
            futures::future::ready(())
        })
}

/// Keeps `writer`'s store following `api` and wakes `changed` on every event (what the DNS
/// server needs: it rebuilds its zone whole).
pub(crate) fn follow<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    changed: Arc<Notify>,
) -> impl std::future::Future<Output = ()>
where
    K: Watched,
{
    follow_events(api, writer, move |_| changed.notify_one())
}

/// What a watch event concerns.
enum Touched {
    Nothing,
    One(ServiceKey),
    /// A (re)list finished: anything may have changed.
    All,
}

fn touched<K>(ev: &watcher::Event<K>, key: impl Fn(&K) -> Option<ServiceKey>) -> Touched {
    match ev {
        watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
            key(o).map_or(Touched::Nothing, Touched::One)
        }
        // The list's objects reach the store at InitDone, which marks everything once.
        watcher::Event::Init | watcher::Event::InitApply(_) => Touched::Nothing,
        watcher::Event::InitDone => Touched::All,
    }
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
    let dirty = Arc::new(Dirty::new());
    let (services, svc_writer) = reflector::store::<KubeService>();
    let (slices, eps_writer) = reflector::store::<EndpointSlice>();
    let d = dirty.clone();
    let svc_task = tokio::spawn(follow_events(
        Api::<KubeService>::all(client.clone()),
        svc_writer,
        move |ev| {
            d.mark(touched(ev, |s: &KubeService| {
                Some((
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                ))
            }))
        },
    ));
    let d = dirty.clone();
    let eps_task = tokio::spawn(follow_events(
        Api::<EndpointSlice>::all(client),
        eps_writer,
        // A slice without the label belongs to no Service: nothing to do.
        move |ev| d.mark(touched(ev, slice_service)),
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
    let mut programmed = Programmed::default();
    let mut triggers = TriggerTimes::new();
    let timeouts = CtTimeouts::default();
    let mut expiry = tokio::time::interval(CT_EXPIRY_PERIOD);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        let started = Instant::now();
        let (all, keys) = dirty.take();
        let (writes, grouped) = if all || first {
            let grouped = group_slices(&slices, |_| true);
            // What an earlier agent left in the pinned maps is the starting point, not an
            // empty table.
            let w = programmed.sync_all(&mut dp, &services, &grouped, &node, first);
            (w, grouped)
        } else {
            let grouped = group_slices(&slices, |k| keys.contains(k));
            let w = programmed.sync_some(&mut dp, &keys, &services, &grouped, &node);
            (w, grouped)
        };
        if let Some(names) = programmed.take_names() {
            write_names(&names_file, names);
        } else if first {
            write_names(&names_file, &BTreeMap::new());
        }
        metrics.observe_sync(started.elapsed());
        let now = jiff::Timestamp::now();
        for t in triggers.programmed(&grouped, &keys, all || first) {
            let took = now.duration_since(t).as_secs_f64().max(0.0);
            metrics.network_programming.observe(took);
        }
        if writes > 0 {
            tracing::info!(
                frontends = programmed.frontends(),
                services = if all || first { None } else { Some(keys.len()) },
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
                _ = dirty.wake.notified() => break false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap as Map;

    fn slice(
        ns: &str,
        name: &str,
        svc: Option<&str>,
        rv: &str,
        trigger: Option<&str>,
    ) -> EndpointSlice {
        let mut s = EndpointSlice::default();
        s.metadata.namespace = Some(ns.into());
        s.metadata.name = Some(name.into());
        s.metadata.resource_version = Some(rv.into());
        s.metadata.labels =
            svc.map(|v| Map::from([(SERVICE_NAME_LABEL.to_string(), v.to_string())]));
        s.metadata.annotations =
            trigger.map(|t| Map::from([(LAST_CHANGE_TRIGGER_TIME.to_string(), t.to_string())]));
        s
    }

    fn key(ns: &str, name: &str) -> ServiceKey {
        (ns.into(), name.into())
    }

    #[test]
    fn events_name_their_service_and_a_relist_names_all() {
        let web = slice("default", "web-abc", Some("web"), "1", None);
        let orphan = slice("default", "x", None, "1", None);
        let t = touched(&watcher::Event::Apply(web.clone()), slice_service);
        assert!(matches!(t, Touched::One(k) if k == key("default", "web")));
        let t = touched(&watcher::Event::Delete(web.clone()), slice_service);
        assert!(matches!(t, Touched::One(k) if k == key("default", "web")));
        assert!(matches!(
            touched(&watcher::Event::Apply(orphan), slice_service),
            Touched::Nothing
        ));
        assert!(matches!(
            touched(&watcher::Event::InitApply(web), slice_service),
            Touched::Nothing
        ));
        assert!(matches!(
            touched(&watcher::Event::<EndpointSlice>::InitDone, slice_service),
            Touched::All
        ));

        let dirty = Dirty::new();
        assert_eq!(
            dirty.take(),
            (true, HashSet::new()),
            "the first pass is full"
        );
        dirty.mark(Touched::One(key("a", "b")));
        dirty.mark(Touched::Nothing);
        assert_eq!(dirty.take(), (false, HashSet::from([key("a", "b")])));
        assert_eq!(dirty.take(), (false, HashSet::new()));
    }

    #[test]
    fn programming_latency_counts_each_new_slice_version_once() {
        let mut t = TriggerTimes::new();
        t.started = "2026-01-01T00:00:00Z".parse().expect("time");
        let old = "2025-12-31T23:00:00Z";
        let new = "2026-01-01T00:00:05Z";
        let group = |slices: Vec<EndpointSlice>| {
            let mut g: HashMap<ServiceKey, Vec<Arc<EndpointSlice>>> = HashMap::new();
            for s in slices {
                g.entry(slice_service(&s).expect("labelled"))
                    .or_default()
                    .push(Arc::new(s));
            }
            g
        };
        let web = key("default", "web");
        let db = key("default", "db");
        // First, full pass: only the change made after the agent started counts.
        let g = group(vec![
            slice("default", "web-1", Some("web"), "10", Some(new)),
            slice("default", "db-1", Some("db"), "11", Some(old)),
        ]);
        assert_eq!(t.programmed(&g, &HashSet::new(), true).len(), 1);
        // Nothing changed: nothing counted again.
        assert!(t.programmed(&g, &HashSet::new(), true).is_empty());
        // A pass for `web` only: its new version counts; `db` is neither counted nor forgotten.
        let g = group(vec![slice(
            "default",
            "web-1",
            Some("web"),
            "12",
            Some(new),
        )]);
        assert_eq!(
            t.programmed(&g, &HashSet::from([web.clone()]), false).len(),
            1
        );
        assert!(t.seen.contains_key(&db));
        // `web`'s slices are gone: it is forgotten.
        assert!(
            t.programmed(&HashMap::new(), &HashSet::from([web.clone()]), false)
                .is_empty()
        );
        assert!(!t.seen.contains_key(&web));
    }
}
