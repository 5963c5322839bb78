//! What the EndpointSlice and Endpoints controllers share (upstream's `k8s.io/endpointslice/util`):
//! which pods a service publishes and how, the pod → service membership that decides which
//! services a pod event concerns, the last-change-trigger-time tracker, and the little runtime
//! both run on: reflectors feeding a queue of services into kube-runtime's `applier`.

use super::util;
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::runtime::controller::{Action, Config as ApplierConfig};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// Annotation: when the change that led to this endpoints object's state happened.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Label on endpoints of services without a cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Node label naming the node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The selector a service picks its pods with; `None` when controllers must leave its
/// endpoints alone. An empty map counts as none: upstream stores services as protobuf, where
/// an empty selector and a missing one are the same thing.
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

pub fn is_external_name(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName")
}

fn cluster_ip(svc: &Service) -> &str {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("")
}

pub fn is_headless(svc: &Service) -> bool {
    cluster_ip(svc) == "None"
}

/// The service has a virtual IP (neither headless nor unallocated).
pub fn is_service_ip_set(svc: &Service) -> bool {
    let ip = cluster_ip(svc);
    ip != "None" && !ip.is_empty()
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn service_ports(svc: &Service) -> &[ServicePort] {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[])
}

pub fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

pub fn is_ipv6(ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_ipv6())
}

fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// `status.podIPs` as strings.
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|i| i.ip.as_str()).collect())
        .unwrap_or_default()
}

/// Whether the pod belongs in a service's endpoints at all: not finished, has an IP, and
/// (unless `include_terminating`) is not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if matches!(pod_phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    let has_ip = pod.status.as_ref().is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
            || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
    });
    if !has_ip {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// Pods with `hostname` and a `subdomain` naming the service get their hostname published.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()
        && pod.metadata.namespace == svc.metadata.namespace)
        .then(|| hostname.to_string())
}

/// The pod's port for a service port: a number is taken as is, a name is looked up among the
/// pod's container ports (and sidecars') of the same protocol.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

fn ready_transition(pod: &Pod) -> Option<jiff::Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Go's RFC3339Nano in UTC: fractional seconds without trailing zeros, or none.
pub fn format_time(t: jiff::Timestamp) -> String {
    t.to_string()
}

#[derive(Default)]
struct TriggerState {
    service: Option<jiff::Timestamp>,
    pods: HashMap<String, jiff::Timestamp>,
}

/// Computes `endpoints.kubernetes.io/last-change-trigger-time`: the earliest change (a pod's
/// Ready transition, the service's creation) seen since the previous sync of the service.
#[derive(Default)]
pub struct TriggerTimes(Mutex<HashMap<(String, String), TriggerState>>);

impl TriggerTimes {
    /// `None` means no annotation. Call once per sync, also for syncs that change nothing.
    pub fn compute(&self, svc: &Service, pods: &[std::sync::Arc<Pod>]) -> Option<jiff::Timestamp> {
        let key = (
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let mut states = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let known = states.contains_key(&key);
        let state = states.entry(key).or_default();
        let mut earliest: Option<jiff::Timestamp> = None;
        let mut pod_times = HashMap::new();
        for pod in pods {
            let (Some(t), Some(name)) = (ready_transition(pod), pod.metadata.name.as_ref()) else {
                continue;
            };
            if state.pods.get(name).is_none_or(|prev| t > *prev) {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
            pod_times.insert(name.clone(), t);
        }
        let created = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(c) = created
            && state.service.is_none_or(|prev| c > prev)
        {
            earliest = Some(earliest.map_or(c, |e| e.min(c)));
        }
        state.pods = pod_times;
        state.service = created;
        if !known {
            // A service seen for the first time: its creation started it all.
            return created;
        }
        earliest
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        let mut states = self.0.lock().unwrap_or_else(|p| p.into_inner());
        states.remove(&(namespace.to_string(), name.to_string()));
    }
}

/// What about a pod can change a service's endpoints or which services select it.
#[derive(Clone, PartialEq, Eq, Debug)]
struct PodFacts {
    labels: BTreeMap<String, String>,
    hostname: Option<String>,
    subdomain: Option<String>,
    deleting: bool,
    ready: bool,
    ips: Vec<String>,
    phase: String,
    node: Option<String>,
}

impl PodFacts {
    fn of(pod: &Pod) -> PodFacts {
        let spec = pod.spec.as_ref();
        PodFacts {
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            hostname: spec.and_then(|s| s.hostname.clone()),
            subdomain: spec.and_then(|s| s.subdomain.clone()),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            ready: util::pod_ready(pod),
            ips: pod_ips(pod).into_iter().map(str::to_string).collect(),
            phase: pod_phase(pod).to_string(),
            node: spec.and_then(|s| s.node_name.clone()),
        }
    }

    /// Changes that matter to the endpoints of the services the pod is in.
    fn endpoint_change(&self, other: &PodFacts) -> bool {
        self.deleting != other.deleting
            || self.ready != other.ready
            || self.ips != other.ips
            || self.phase != other.phase
            || self.node != other.node
    }

    /// Changes that may move the pod between services.
    fn membership_change(&self, other: &PodFacts) -> bool {
        self.labels != other.labels
            || self.hostname != other.hostname
            || self.subdomain != other.subdomain
    }
}

/// Which services a pod event concerns (upstream's `GetServicesToUpdateOnPodChange`): the
/// pod's last-seen facts are remembered, so a relabelled pod also requeues the services it left.
#[derive(Default)]
pub struct PodMembership {
    seen: HashMap<(String, String), PodFacts>,
}

fn services_selecting(
    services: &Store<Service>,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> HashSet<ObjectRef<Service>> {
    services
        .state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && service_selector(s)
                    .is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .iter()
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn pod_key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

impl PodMembership {
    /// A pod was added or changed: the services to sync.
    pub fn applied(&mut self, pod: &Pod, services: &Store<Service>) -> HashSet<ObjectRef<Service>> {
        let key = pod_key(pod);
        let facts = PodFacts::of(pod);
        let now = services_selecting(services, &key.0, &facts.labels);
        let out = match self.seen.get(&key) {
            None => now,
            Some(old) => {
                let changed = old.endpoint_change(&facts);
                if old.membership_change(&facts) {
                    let before = services_selecting(services, &key.0, &old.labels);
                    if changed {
                        now.union(&before).cloned().collect()
                    } else {
                        // Only the services the pod joined or left.
                        now.symmetric_difference(&before).cloned().collect()
                    }
                } else if changed {
                    now
                } else {
                    HashSet::new()
                }
            }
        };
        self.seen.insert(key, facts);
        out
    }

    /// A pod was deleted: the services it was in.
    pub fn deleted(&mut self, pod: &Pod, services: &Store<Service>) -> HashSet<ObjectRef<Service>> {
        let key = pod_key(pod);
        let mut out = services_selecting(
            services,
            &key.0,
            &pod.metadata.labels.clone().unwrap_or_default(),
        );
        if let Some(old) = self.seen.remove(&key) {
            out.extend(services_selecting(services, &key.0, &old.labels));
        }
        out
    }

    /// After a relist: pods that vanished without a delete event, and their services.
    pub fn resynced(
        &mut self,
        pods: &Store<Pod>,
        services: &Store<Service>,
    ) -> HashSet<ObjectRef<Service>> {
        let mut out = HashSet::new();
        let gone: Vec<(String, String)> = self
            .seen
            .keys()
            .filter(|(ns, name)| pods.get(&ObjectRef::new(name).within(ns)).is_none())
            .cloned()
            .collect();
        for key in gone {
            if let Some(old) = self.seen.remove(&key) {
                out.extend(services_selecting(services, &key.0, &old.labels));
            }
        }
        out
    }
}

/// Queue of services to sync, read by the applier.
pub type Queue = UnboundedSender<ObjectRef<Service>>;

pub fn enqueue(queue: &Queue, refs: impl IntoIterator<Item = ObjectRef<Service>>) {
    for r in refs {
        // A closed queue means the controller is stopping.
        let _ = queue.send(r);
    }
}

/// Reflects `api` into `writer`'s store on a task of its own, calling `on_event` after each
/// event has been applied to the store.
pub fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    what: &'static str,
    mut on_event: impl FnMut(&watcher::Event<K>) + Send + 'static,
) -> Task
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    let handle = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => on_event(&ev),
                Err(e) => tracing::warn!(resource = what, error = %e, "watch failed; retrying"),
            }
        }
    });
    Task(handle)
}

/// Watches pods into `writer` and queues the Services whose endpoints a change moves (a pod
/// joining, leaving or changing under a selector; everything after a relist).
pub fn reflect_pods(
    client: kube::Client,
    writer: Writer<Pod>,
    queue: Queue,
    services: Store<Service>,
    pods: Store<Pod>,
) -> Task {
    let mut membership = PodMembership::default();
    reflect(
        Api::all(client),
        watcher::Config::default(),
        writer,
        "pods",
        move |ev| match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                enqueue(&queue, membership.applied(p, &services));
            }
            watcher::Event::Delete(p) => enqueue(&queue, membership.deleted(p, &services)),
            watcher::Event::InitDone => enqueue(&queue, membership.resynced(&pods, &services)),
            watcher::Event::Init => {}
        },
    )
}

/// A background task stopped when dropped.
pub struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Task {
    pub fn spawn(f: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
        Task(tokio::spawn(f))
    }
}

/// Per-service retry delays: doubling from 50ms up to a minute, reset by a successful sync.
#[derive(Default)]
pub struct Backoff(Mutex<HashMap<ObjectRef<Service>, u32>>);

impl Backoff {
    pub fn failed(&self, key: &ObjectRef<Service>) -> Duration {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.clone()).or_insert(0);
        let delay = Duration::from_millis(50).saturating_mul(1u32 << (*n).min(11));
        *n += 1;
        delay.min(Duration::from_secs(60))
    }

    pub fn succeeded(&self, key: &ObjectRef<Service>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// What a Service sync can fail with, as the retry policy sees it.
pub trait SyncFailure: std::error::Error + Send + Sync + 'static {
    /// The informer cache is behind this controller's own writes: an expected, quiet retry.
    fn is_stale(&self) -> bool;
}

/// One Service's sync, given the controller's shared state.
pub type SyncService<S, E> = fn(Arc<Service>, Arc<S>) -> BoxFuture<'static, Result<Action, E>>;

/// Syncs each Service the queue names, `workers` at a time, retrying a failed one with its
/// backoff, until `stop` (the endpoints and EndpointSlice controllers' common loop).
#[allow(clippy::too_many_arguments)]
pub async fn run_services<S, E>(
    controller: &'static str,
    what: &'static str,
    shared: Arc<S>,
    backoff: fn(&S) -> &Backoff,
    sync: SyncService<S, E>,
    services: Store<Service>,
    queue: UnboundedReceiver<ObjectRef<Service>>,
    workers: u16,
    stop: CancellationToken,
) where
    S: Send + Sync + 'static,
    E: SyncFailure,
{
    let requests = tokio_stream::wrappers::UnboundedReceiverStream::new(queue)
        .map(Ok::<_, std::convert::Infallible>);
    let applier = kube::runtime::applier(
        sync,
        move |svc, err: &E, sh: Arc<S>| {
            let key = ObjectRef::from_obj(svc.as_ref());
            let delay = backoff(&sh).failed(&key);
            if err.is_stale() {
                tracing::debug!(service = %key, "{what} cache behind our writes; retrying")
            } else {
                tracing::info!(service = %key, error = %err, ?delay, "syncing {what} failed; retrying")
            }
            Action::requeue(delay)
        },
        shared,
        services,
        requests,
        ApplierConfig::default().concurrency(workers),
    );
    let mut applier = std::pin::pin!(applier);
    loop {
        tokio::select! {
            next = applier.next() => match next {
                None => return,
                Some(Err(kube::runtime::controller::Error::ObjectNotFound(_))) => {}
                Some(Err(kube::runtime::controller::Error::ReconcilerFailed(..))) => {}
                Some(Err(e)) => tracing::warn!(controller, error = %e, "applier"),
                Some(Ok(_)) => {}
            },
            _ = stop.cancelled() => return,
        }
    }
}

/// A create refused because the namespace is being deleted (kept trying would be pointless).
pub fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"))
}

pub fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    #[test]
    fn named_ports_resolve_per_pod_and_protocol() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {
            "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "ports": [{"name": "metrics", "containerPort": 9090}]},
                {"name": "init", "ports": [{"name": "setup", "containerPort": 7070}]}]}}));
        let port =
            |v: serde_json::Value| -> ServicePort { serde_json::from_value(v).expect("port") };
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": "http"}))),
            Some(8080)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": 81}))),
            Some(81)
        );
        assert_eq!(find_port(&p, &port(json!({"port": 80}))), Some(80));
        assert_eq!(
            find_port(
                &p,
                &port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}))
            ),
            Some(53)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 53, "targetPort": "dns"}))),
            None
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 1, "targetPort": "metrics"}))),
            Some(9090)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 1, "targetPort": "setup"}))),
            None
        );
    }

    #[test]
    fn which_pods_are_published() {
        let running = pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}}),
        );
        assert!(should_pod_be_in_endpoints(&running, false));
        let no_ip = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Pending"}}));
        assert!(!should_pod_be_in_endpoints(&no_ip, true));
        let done = pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded", "podIP": "10.0.0.1"}}),
        );
        assert!(!should_pod_be_in_endpoints(&done, true));
        let deleting = pod(
            json!({"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}}),
        );
        assert!(should_pod_be_in_endpoints(&deleting, true));
        assert!(!should_pod_be_in_endpoints(&deleting, false));
    }

    #[test]
    fn hostname_needs_a_matching_subdomain() {
        let s = svc(json!({"metadata": {"name": "db", "namespace": "ns"}}));
        let p = pod(
            json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"hostname": "db-0", "subdomain": "db", "containers": []}}),
        );
        assert_eq!(should_set_hostname(&p, &s), Some("db-0".to_string()));
        let other = pod(
            json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"hostname": "db-0", "subdomain": "x", "containers": []}}),
        );
        assert_eq!(should_set_hostname(&other, &s), None);
        let elsewhere = pod(
            json!({"metadata": {"name": "a", "namespace": "other"}, "spec": {"hostname": "db-0", "subdomain": "db", "containers": []}}),
        );
        assert_eq!(should_set_hostname(&elsewhere, &s), None);
    }

    #[test]
    fn empty_selectors_select_nothing() {
        assert!(
            service_selector(&svc(
                json!({"metadata": {"name": "s"}, "spec": {"selector": {}}})
            ))
            .is_none()
        );
        assert!(service_selector(&svc(json!({"metadata": {"name": "s"}, "spec": {}}))).is_none());
        let s = svc(json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}}}));
        let sel = service_selector(&s).expect("selector");
        assert!(selects(
            sel,
            &pod(json!({"metadata": {"name": "a", "labels": {"app": "web", "x": "y"}}}))
        ));
        assert!(!selects(
            sel,
            &pod(json!({"metadata": {"name": "a", "labels": {"app": "db"}}}))
        ));
    }

    #[test]
    fn trigger_time_is_the_earliest_change_since_the_last_sync() {
        let t = TriggerTimes::default();
        let s = svc(
            json!({"metadata": {"name": "s", "namespace": "ns", "creationTimestamp": "2024-01-01T00:00:00Z"}}),
        );
        let ready = |name: &str, at: &str| {
            Arc::new(pod(
                json!({"metadata": {"name": name}, "status": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": at}]}}),
            ))
        };
        let first = t.compute(&s, &[ready("a", "2024-01-01T00:01:00Z")]);
        assert_eq!(
            first.map(format_time).as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        // nothing changed: no annotation
        assert_eq!(t.compute(&s, &[ready("a", "2024-01-01T00:01:00Z")]), None);
        // two pods changed: the earlier one
        let next = t.compute(
            &s,
            &[
                ready("a", "2024-01-01T00:03:00.5Z"),
                ready("b", "2024-01-01T00:02:00Z"),
            ],
        );
        assert_eq!(
            next.map(format_time).as_deref(),
            Some("2024-01-01T00:02:00Z")
        );
        let frac = t.compute(&s, &[ready("a", "2024-01-01T00:04:00.250Z")]);
        assert_eq!(
            frac.map(format_time).as_deref(),
            Some("2024-01-01T00:04:00.25Z")
        );
        t.forget("ns", "s");
        assert_eq!(
            t.compute(&s, &[]).map(format_time).as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let b = Backoff::default();
        let k = ObjectRef::<Service>::new("s").within("ns");
        assert_eq!(b.failed(&k), Duration::from_millis(50));
        assert_eq!(b.failed(&k), Duration::from_millis(100));
        for _ in 0..20 {
            b.failed(&k);
        }
        assert_eq!(b.failed(&k), Duration::from_secs(60));
        b.succeeded(&k);
        assert_eq!(b.failed(&k), Duration::from_millis(50));
    }
}
