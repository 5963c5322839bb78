//! The EndpointSlice controller (upstream `pkg/controller/endpointslice` with the
//! `k8s.io/endpointslice` reconciler): every Service with a selector gets EndpointSlices listing
//! the pods it selects, at most `max_endpoints_per_slice` endpoints each, grouped by the ports
//! each pod resolves the service's ports to.
//!
//! Syncs change as little as possible, as upstream: only slices whose endpoints or labels changed
//! are written, new endpoints go into slices being written anyway (or the one they fit best)
//! before a new slice is created, and a tracker of the generations this controller wrote keeps
//! it from acting on a cache older than its own writes. Slices of deleted services, and of
//! services that lost their selector, are deleted here (not left to the garbage collector).

use super::endpointutil::{
    self, Backoff, LAST_CHANGE_TRIGGER_TIME, Queue, Task, TriggerTimes, enqueue,
};
use super::{Context, ControllerError, Events, util};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

/// The `endpointslice.kubernetes.io/managed-by` value of slices this controller owns.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Upstream's `--concurrent-service-endpoint-syncs` default.
const WORKERS: u16 = 5;

/// Runs the controller until `stop`.
pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run_controller(ctx, stop))
}

// ---------------------------------------------------------------------------------------------
// Desired state: pure functions from a service, its pods and its existing slices to the writes.

/// Identity of an endpoint within a service's slices (upstream hashes the same fields).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct EndpointKey {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addresses = ep.addresses.clone();
    addresses.sort();
    let target = ep.target_ref.as_ref();
    EndpointKey {
        addresses,
        hostname: ep.hostname.clone().unwrap_or_default(),
        namespace: target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
        name: target.and_then(|t| t.name.clone()).unwrap_or_default(),
    }
}

type EndpointSet = BTreeMap<EndpointKey, Endpoint>;

/// Identity of a set of ports: slices hold endpoints that share their ports exactly.
type PortKey = Vec<(String, String, i32, String)>;

fn port_tuple(p: &EndpointPort) -> (String, String, i32, String) {
    (
        p.name.clone().unwrap_or_default(),
        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        p.port.unwrap_or(0),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

fn port_key(ports: &[EndpointPort]) -> PortKey {
    let mut k: PortKey = ports.iter().map(port_tuple).collect();
    k.sort();
    k
}

/// Same endpoint (by key) with nothing published changed: node, zone, conditions, target.
fn equal_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let cond = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut t| {
            t.resource_version = None;
            t
        })
    };
    a.node_name == b.node_name && a.zone == b.zone && cond(a) == cond(b) && target(a) == target(b)
}

/// The address types a service's slices carry, from its IP families.
fn address_types(svc: &Service) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for f in svc
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
    {
        match f.as_str() {
            "IPv4" => out.insert("IPv4"),
            "IPv6" => out.insert("IPv6"),
            _ => false,
        };
    }
    if !out.is_empty() {
        return out;
    }
    // Services from before dual-stack: the cluster IP says, and headless ones get both.
    if endpointutil::is_service_ip_set(svc) {
        let ip = svc
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref())
            .unwrap_or("");
        out.insert(if endpointutil::is_ipv6(ip) {
            "IPv6"
        } else {
            "IPv4"
        });
    } else {
        out.extend(["IPv4", "IPv6"]);
    }
    out
}

/// The slice ports of a pod: each service port the pod resolves, in the service's order.
fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = endpointutil::service_ports(svc);
    if ports.is_empty() && endpointutil::is_headless(svc) {
        return Vec::new();
    }
    ports
        .iter()
        .filter_map(|sp| {
            let port = endpointutil::find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, svc: &Service, address_type: &str) -> Endpoint {
    let serving = util::pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    // A terminating pod is never "ready" unless the service publishes everything.
    let ready = endpointutil::publish_not_ready(svc) || (serving && !terminating);
    let addresses = endpointutil::pod_ips(pod)
        .into_iter()
        .filter(|ip| endpointutil::is_ipv6(ip) == (address_type == "IPv6"))
        .map(str::to_string)
        .collect();
    Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        zone: node
            .and_then(|n| n.metadata.labels.as_ref())
            .and_then(|l| l.get(endpointutil::ZONE_LABEL))
            .filter(|z| !z.is_empty())
            .cloned(),
        hostname: endpointutil::should_set_hostname(pod, svc),
        ..Default::default()
    }
}

fn is_reserved_label(k: &str) -> bool {
    k == LABEL_SERVICE_NAME || k == LABEL_MANAGED_BY || k == endpointutil::HEADLESS_LABEL
}

/// A slice's labels: the service's (but the reserved ones) plus service name, manager and the
/// headless marker; and whether the service's own labels changed from the slice's.
fn slice_labels(
    current: Option<&BTreeMap<String, String>>,
    svc: &Service,
) -> (BTreeMap<String, String>, bool) {
    let own = |l: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        l.into_iter()
            .flatten()
            .filter(|(k, _)| !is_reserved_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut labels = own(svc.metadata.labels.as_ref());
    let changed = own(current) != labels;
    if !endpointutil::is_service_ip_set(svc) {
        labels.insert(endpointutil::HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    (labels, changed)
}

fn new_slice(svc: &Service, ports: &[EndpointPort], address_type: &str) -> EndpointSlice {
    let name = svc.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: svc.metadata.namespace.clone(),
            owner_references: util::controller_ref(svc).map(|o| vec![o]),
            labels: Some(slice_labels(None, svc).0),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Some(Vec::new()),
        ports: Some(ports.to_vec()),
    }
}

fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let Some(uid) = svc.metadata.uid.as_deref() else {
        return false;
    };
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

fn owned_by_a_service(slice: &EndpointSlice) -> bool {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Service" && o.api_version == "v1")
}

fn endpoints_of(slice: &EndpointSlice) -> &[Endpoint] {
    slice.endpoints.as_deref().unwrap_or(&[])
}

/// The placeholder an endpoint-less service keeps, so that consumers see it was processed.
fn is_same_placeholder(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    let labels = |s: &EndpointSlice| s.metadata.labels.clone().unwrap_or_default();
    a.metadata.namespace == b.metadata.namespace
        && labels(a) == labels(b)
        && a.address_type == b.address_type
        && endpoints_of(a).is_empty()
        && endpoints_of(b).is_empty()
        && a.ports.as_deref().unwrap_or(&[]).is_empty()
        && b.ports.as_deref().unwrap_or(&[]).is_empty()
}

/// What a sync writes.
#[derive(Default, Debug)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<Arc<EndpointSlice>>,
    /// Pods left out for now (their node is unknown): the sync is retried.
    pub errors: Vec<String>,
}

/// Plans the writes that make `existing` (this controller's slices for the service) reflect
/// `pods` (those the service selects).
pub fn plan(
    svc: &Service,
    pods: &[Arc<Pod>],
    node: &dyn Fn(&str) -> Option<Arc<Node>>,
    existing: &[Arc<EndpointSlice>],
    max_per_slice: usize,
) -> Plan {
    let max = max_per_slice.max(1);
    let types = address_types(svc);
    let mut plan = Plan::default();
    let mut by_type: BTreeMap<&str, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    let mut unsupported = Vec::new();
    for s in existing {
        match types.get(s.address_type.as_str()) {
            Some(t) => by_type.entry(t).or_default().push(s.clone()),
            None => unsupported.push(s.clone()),
        }
    }
    for t in &types {
        let slices = by_type.remove(t).unwrap_or_default();
        plan_address_type(svc, pods, node, &slices, t, max, &mut plan);
    }
    plan.delete.extend(unsupported);
    plan
}

fn plan_address_type(
    svc: &Service,
    pods: &[Arc<Pod>],
    node: &dyn Fn(&str) -> Option<Arc<Node>>,
    existing: &[Arc<EndpointSlice>],
    address_type: &str,
    max: usize,
    plan: &mut Plan,
) {
    let mut create = Vec::new();
    let mut update = Vec::new();
    let mut delete = Vec::new();
    let mut existing_by_ports: BTreeMap<PortKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) {
            let key = port_key(s.ports.as_deref().unwrap_or(&[]));
            existing_by_ports.entry(key).or_default().push(s.clone());
        } else {
            // Left by an earlier service of the same name.
            delete.push(s.clone());
        }
    }

    let mut desired: BTreeMap<PortKey, (Vec<EndpointPort>, EndpointSet)> = BTreeMap::new();
    for pod in pods {
        if !endpointutil::should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let mut ports = endpoint_ports(svc, pod);
        ports.sort_by_key(port_tuple);
        let entry = desired
            .entry(port_key(&ports))
            .or_insert_with(|| (ports, EndpointSet::new()));
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        let node_obj = node(node_name);
        if node_obj.is_none() && !endpointutil::publish_not_ready(svc) {
            // Retried later rather than published without its node; the pod GC removes pods
            // of nodes that are gone for good.
            plan.errors.push(format!(
                "skipping Pod {} for Service {}/{}: Node {node_name} Not Found",
                pod.name_any(),
                svc.namespace().unwrap_or_default(),
                svc.name_any()
            ));
            continue;
        }
        let ep = pod_to_endpoint(pod, node_obj.as_deref(), svc, address_type);
        if !ep.addresses.is_empty() {
            entry.1.insert(endpoint_key(&ep), ep);
        }
    }

    let empty = Vec::new();
    for (key, (ports, set)) in desired.iter() {
        let slices = existing_by_ports.get(key).unwrap_or(&empty);
        let (c, u, d) = plan_ports(svc, slices, set.clone(), ports, address_type, max);
        create.extend(c);
        update.extend(u);
        delete.extend(d);
    }
    for (key, slices) in &existing_by_ports {
        if !desired.contains_key(key) {
            delete.extend(slices.iter().cloned());
        }
    }

    // A service without endpoints keeps one empty slice.
    if existing.len() == delete.len() && create.is_empty() {
        let placeholder = new_slice(svc, &[], address_type);
        if delete.len() == 1 && is_same_placeholder(&delete[0], &placeholder) {
            delete.clear();
        } else {
            create.push(placeholder);
        }
    }

    // Rather than delete one slice and create another, rewrite the one being deleted.
    let mut i = 0;
    while i < delete.len() && !create.is_empty() {
        let old = &delete[i];
        if old.address_type == address_type && owned_by(old, svc) {
            let mut slice = create
                .pop()
                .unwrap_or_else(|| new_slice(svc, &[], address_type));
            slice.metadata.name = old.metadata.name.clone();
            slice.metadata.generate_name = None;
            slice.metadata.resource_version = old.metadata.resource_version.clone();
            update.push(slice);
            delete.remove(i);
        } else {
            i += 1;
        }
    }
    plan.create.extend(create);
    plan.update.extend(update);
    plan.delete.extend(delete);
}

/// Upstream's `reconcileByPortMapping` for the slices of one set of ports.
fn plan_ports(
    svc: &Service,
    existing: &[Arc<EndpointSlice>],
    mut desired: EndpointSet,
    ports: &[EndpointPort],
    address_type: &str,
    max: usize,
) -> (
    Vec<EndpointSlice>,
    Vec<EndpointSlice>,
    Vec<Arc<EndpointSlice>>,
) {
    let mut changed: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeMap<String, Arc<EndpointSlice>> = BTreeMap::new();
    let mut to_delete = Vec::new();

    // 1. Drop endpoints no longer wanted, refresh those that changed.
    for s in existing {
        let name = s.name_any();
        let mut kept = Vec::new();
        let mut refreshed = false;
        for ep in endpoints_of(s) {
            if let Some(want) = desired.remove(&endpoint_key(ep)) {
                refreshed |= !equal_beyond_key(&want, ep);
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(s.metadata.labels.as_ref(), svc);
        if refreshed || kept.len() != endpoints_of(s).len() {
            if kept.is_empty() {
                to_delete.push(s.clone());
            } else {
                let mut copy = (**s).clone();
                copy.endpoints = Some(kept);
                copy.metadata.labels = Some(labels);
                changed.insert(name, copy);
            }
        } else if labels_changed {
            let mut copy = (**s).clone();
            copy.metadata.labels = Some(labels);
            changed.insert(name, copy);
        } else {
            unchanged.insert(name, s.clone());
        }
    }

    // 2. New endpoints go first into slices written anyway, fullest first.
    if !desired.is_empty() && !changed.is_empty() {
        let mut order: Vec<(usize, String)> = changed
            .iter()
            .map(|(n, s)| (endpoints_of(s).len(), n.clone()))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, name) in order {
            if let Some(s) = changed.get_mut(&name) {
                fill(s, &mut desired, max);
            }
        }
    }

    // 3. Then into the unchanged slice they fit best, or into new slices.
    let mut create = Vec::new();
    while !desired.is_empty() {
        let mut target: Option<EndpointSlice> = None;
        if desired.len() < max && !unchanged.is_empty() {
            let mut closest = max;
            let mut best: Option<&String> = None;
            for (name, s) in &unchanged {
                let used = desired.len() + endpoints_of(s).len();
                if used <= max && max - used < closest {
                    closest = max - used;
                    best = Some(name);
                }
            }
            if let Some(name) = best.cloned() {
                target = unchanged.remove(&name).map(|s| (*s).clone());
            }
        }
        let mut slice = target.unwrap_or_else(|| new_slice(svc, ports, address_type));
        fill(&mut slice, &mut desired, max);
        match slice.metadata.name.clone() {
            Some(name) => {
                changed.insert(name, slice);
            }
            None => create.push(slice),
        }
    }
    (create, changed.into_values().collect(), to_delete)
}

fn fill(slice: &mut EndpointSlice, desired: &mut EndpointSet, max: usize) {
    let eps = slice.endpoints.get_or_insert_with(Vec::new);
    while eps.len() < max {
        match desired.pop_first() {
            Some((_, ep)) => eps.push(ep),
            None => break,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tracking our own writes.

const DELETION_EXPECTED: i64 = -1;

/// Generations of the slices this controller wrote, per service: a cache that shows an older
/// generation (or misses a slice) is behind our own writes, and a sync on it would churn.
#[derive(Default)]
pub struct SliceTracker(Mutex<HashMap<(String, String), HashMap<String, i64>>>);

fn slice_service(slice: &EndpointSlice) -> (String, String) {
    (
        slice.metadata.namespace.clone().unwrap_or_default(),
        slice
            .labels()
            .get(LABEL_SERVICE_NAME)
            .cloned()
            .unwrap_or_default(),
    )
}

fn uid(slice: &EndpointSlice) -> String {
    slice.metadata.uid.clone().unwrap_or_default()
}

fn generation(slice: &EndpointSlice) -> i64 {
    slice.metadata.generation.unwrap_or(0)
}

impl SliceTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), HashMap<String, i64>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn has(&self, slice: &EndpointSlice) -> bool {
        self.lock()
            .get(&slice_service(slice))
            .is_some_and(|g| g.contains_key(&uid(slice)))
    }

    /// A change we did not write (or newer than ours).
    pub fn should_sync(&self, slice: &EndpointSlice) -> bool {
        match self
            .lock()
            .get(&slice_service(slice))
            .and_then(|g| g.get(&uid(slice)))
        {
            None => true,
            Some(g) => generation(slice) > *g,
        }
    }

    /// The cache is behind what we wrote for this service.
    pub fn stale(&self, namespace: &str, name: &str, slices: &[Arc<EndpointSlice>]) -> bool {
        let map = self.lock();
        let Some(gens) = map.get(&(namespace.to_string(), name.to_string())) else {
            return false;
        };
        let mut seen = BTreeSet::new();
        for s in slices {
            let u = uid(s);
            if let Some(g) = gens.get(&u)
                && (*g == DELETION_EXPECTED || *g > generation(s))
            {
                return true;
            }
            seen.insert(u);
        }
        gens.iter()
            .any(|(u, g)| *g != DELETION_EXPECTED && !seen.contains(u))
    }

    pub fn update(&self, slice: &EndpointSlice) {
        self.lock()
            .entry(slice_service(slice))
            .or_default()
            .insert(uid(slice), generation(slice));
    }

    pub fn expect_deletion(&self, slice: &EndpointSlice) {
        self.lock()
            .entry(slice_service(slice))
            .or_default()
            .insert(uid(slice), DELETION_EXPECTED);
    }

    /// Forgets a deleted slice; false if we did not expect its deletion.
    pub fn handle_deletion(&self, slice: &EndpointSlice) -> bool {
        let mut map = self.lock();
        match map
            .get_mut(&slice_service(slice))
            .and_then(|g| g.remove(&uid(slice)))
        {
            Some(g) => g == DELETION_EXPECTED,
            None => true,
        }
    }

    /// After a relist, which reports no deletions: keeps only the slices that were listed.
    pub fn retain_listed(&self, slices: &Store<EndpointSlice>) {
        let listed: BTreeSet<String> = slices.state().iter().map(|s| uid(s)).collect();
        let mut map = self.lock();
        for gens in map.values_mut() {
            gens.retain(|u, _| listed.contains(u));
        }
        map.retain(|_, gens| !gens.is_empty());
    }

    pub fn forget_service(&self, namespace: &str, name: &str) {
        self.lock()
            .remove(&(namespace.to_string(), name.to_string()));
    }
}

// ---------------------------------------------------------------------------------------------
// The controller.

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("EndpointSlice informer cache is out of date")]
    Stale,
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Incomplete(String),
}

impl endpointutil::SyncFailure for SyncError {
    fn is_stale(&self) -> bool {
        matches!(self, SyncError::Stale)
    }
}

struct Shared {
    client: kube::Client,
    events: Events,
    pods: Store<Pod>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    services: Store<Service>,
    tracker: Arc<SliceTracker>,
    triggers: TriggerTimes,
    backoff: Backoff,
    queue: Queue,
    cleanup: UnboundedSender<Cleanup>,
    max_per_slice: usize,
}

/// Work for the cleanup task: slices whose service may be gone.
enum Cleanup {
    Service {
        namespace: String,
        name: String,
    },
    /// After a (re)list of services: check every slice.
    Sweep,
}

fn service_ref(namespace: &str, name: &str) -> ObjectRef<Service> {
    ObjectRef::new(name).within(namespace)
}

async fn run_controller(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("endpointslice-controller")?;
    let events = ctx.recorder(client.clone(), "endpointslice-controller");
    let (queue, queue_rx) = unbounded_channel::<ObjectRef<Service>>();
    let (cleanup, cleanup_rx) = unbounded_channel::<Cleanup>();
    let tracker = Arc::new(SliceTracker::default());
    let services_listed = Arc::new(AtomicBool::new(false));

    let (services, services_w) = reflector::store::<Service>();
    let (pods, pods_w) = reflector::store::<Pod>();
    let (slices, slices_w) = reflector::store::<EndpointSlice>();
    let (nodes, nodes_w) = reflector::store::<Node>();

    let _services_task = endpointutil::reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        services_w,
        "services",
        {
            let (queue, cleanup, listed) =
                (queue.clone(), cleanup.clone(), services_listed.clone());
            move |ev| match ev {
                Event::Apply(s) | Event::InitApply(s) => enqueue(&queue, [ObjectRef::from_obj(s)]),
                Event::Delete(s) => {
                    let _ = cleanup.send(Cleanup::Service {
                        namespace: s.namespace().unwrap_or_default(),
                        name: s.name_any(),
                    });
                }
                Event::InitDone => {
                    listed.store(true, Ordering::SeqCst);
                    let _ = cleanup.send(Cleanup::Sweep);
                }
                Event::Init => {}
            }
        },
    );
    let _pods_task = endpointutil::reflect_pods(
        client.clone(),
        pods_w,
        queue.clone(),
        services.clone(),
        pods.clone(),
    );
    let _slices_task = endpointutil::reflect(
        Api::all(client.clone()),
        watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={CONTROLLER_NAME}")),
        slices_w,
        "endpointslices",
        {
            let (queue, cleanup, services, tracker, listed, slices) = (
                queue.clone(),
                cleanup.clone(),
                services.clone(),
                tracker.clone(),
                services_listed.clone(),
                slices.clone(),
            );
            move |ev| match ev {
                Event::Apply(s) | Event::InitApply(s) => {
                    let (ns, name) = slice_service(s);
                    if name.is_empty() {
                        return;
                    }
                    let key = service_ref(&ns, &name);
                    if listed.load(Ordering::SeqCst) && services.get(&key).is_none() {
                        let _ = cleanup.send(Cleanup::Service {
                            namespace: ns,
                            name,
                        });
                    } else if tracker.should_sync(s) {
                        enqueue(&queue, [key]);
                    }
                }
                Event::Delete(s) => {
                    let (ns, name) = slice_service(s);
                    // Recreate what someone else deleted.
                    let ours = tracker.has(s) && tracker.handle_deletion(s);
                    if !name.is_empty() && !ours {
                        enqueue(&queue, [service_ref(&ns, &name)]);
                    }
                }
                // A relist reports no deletions: forget slices that are gone and look at every
                // service again.
                Event::InitDone => {
                    tracker.retain_listed(&slices);
                    let all = services.state();
                    enqueue(&queue, all.iter().map(|s| ObjectRef::from_obj(s.as_ref())));
                }
                Event::Init => {}
            }
        },
    );
    let _nodes_task = endpointutil::reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        nodes_w,
        "nodes",
        |_| {},
    );

    let ready = async {
        services.wait_until_ready().await?;
        pods.wait_until_ready().await?;
        slices.wait_until_ready().await?;
        nodes.wait_until_ready().await
    };
    tokio::select! {
        r = ready => r.map_err(|e| ControllerError::Client(e.to_string()))?,
        _ = stop.cancelled() => return Ok(()),
    }
    tracing::info!(
        controller = CONTROLLER_NAME,
        "caches synced; syncing services"
    );

    let shared = Arc::new(Shared {
        client,
        events,
        pods,
        slices,
        nodes,
        services: services.clone(),
        tracker,
        triggers: TriggerTimes::default(),
        backoff: Backoff::default(),
        queue,
        cleanup,
        max_per_slice: ctx.config.max_endpoints_per_slice,
    });
    let _cleanup_task = Task::spawn(cleanup_loop(shared.clone(), cleanup_rx));

    endpointutil::run_services(
        CONTROLLER_NAME,
        "EndpointSlice",
        shared,
        |sh| &sh.backoff,
        |svc, sh| Box::pin(sync_service(svc, sh)),
        services,
        queue_rx,
        WORKERS,
        stop,
    )
    .await;
    Ok(())
}

/// Slices this controller manages for a service, but those being deleted.
fn managed_slices(sh: &Shared, namespace: &str, name: &str) -> Vec<Arc<EndpointSlice>> {
    sh.slices.state_filter(|s| {
        s.metadata.namespace.as_deref() == Some(namespace)
            && s.metadata.deletion_timestamp.is_none()
            && s.labels().get(LABEL_SERVICE_NAME).map(String::as_str) == Some(name)
            && s.labels().get(LABEL_MANAGED_BY).map(String::as_str) == Some(CONTROLLER_NAME)
    })
}

async fn sync_service(svc: Arc<Service>, sh: Arc<Shared>) -> Result<Action, SyncError> {
    let namespace = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let key = ObjectRef::from_obj(svc.as_ref());
    let slices = managed_slices(&sh, &namespace, &name);
    if sh.tracker.stale(&namespace, &name, &slices) {
        return Err(SyncError::Stale);
    }
    let api: Api<EndpointSlice> = Api::namespaced(sh.client.clone(), &namespace);

    let selector = endpointutil::service_selector(&svc);
    let Some(selector) = selector.filter(|_| !endpointutil::is_external_name(&svc)) else {
        // No selector (any more), or an ExternalName service: our slices have nothing to say.
        for s in slices.iter().filter(|s| owned_by(s, &svc)) {
            delete_slice(&api, &sh.tracker, s).await?;
        }
        sh.backoff.succeeded(&key);
        return Ok(Action::await_change());
    };

    let pods = sh.pods.state_filter(|p| {
        p.metadata.namespace.as_deref() == Some(namespace.as_str())
            && endpointutil::selects(selector, p)
    });
    let trigger = sh.triggers.compute(&svc, &pods);
    let nodes = sh.nodes.clone();
    let node = move |n: &str| nodes.get(&ObjectRef::new(n));
    let plan = plan(&svc, &pods, &node, &slices, sh.max_per_slice);
    tracing::debug!(
        service = %key, pods = pods.len(), create = plan.create.len(),
        update = plan.update.len(), delete = plan.delete.len(), "syncing endpoint slices"
    );
    let result = apply(
        &api,
        &sh.tracker,
        &svc,
        plan.create,
        plan.update,
        &plan.delete,
        trigger,
    )
    .await;
    let err = match (result, plan.errors.is_empty()) {
        (Ok(()), true) => {
            sh.backoff.succeeded(&key);
            return Ok(Action::await_change());
        }
        (Ok(()), false) => SyncError::Incomplete(plan.errors.join("; ")),
        (Err(e), _) => SyncError::Api(e),
    };
    let regarding = svc.object_ref(&());
    sh.events
        .warning(
            &regarding,
            "FailedToUpdateEndpointSlices",
            "Update",
            format!("Error updating Endpoint Slices for Service {namespace}/{name}: {err}"),
        )
        .await;
    Err(err)
}

fn annotate(slice: &mut EndpointSlice, trigger: Option<jiff::Timestamp>) {
    let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(t) => {
            annotations.insert(
                LAST_CHANGE_TRIGGER_TIME.into(),
                endpointutil::format_time(t),
            );
        }
        None => {
            annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        }
    }
}

async fn apply(
    api: &Api<EndpointSlice>,
    tracker: &SliceTracker,
    svc: &Service,
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: &[Arc<EndpointSlice>],
    trigger: Option<jiff::Timestamp>,
) -> Result<(), kube::Error> {
    // No new slices for a service on its way out: they would race its garbage collection.
    if svc.metadata.deletion_timestamp.is_none() {
        for mut s in create {
            annotate(&mut s, trigger);
            match api.create(&PostParams::default(), &s).await {
                Ok(created) => tracker.update(&created),
                Err(e) if endpointutil::namespace_terminating(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
    for mut s in update {
        annotate(&mut s, trigger);
        let name = s.name_any();
        let updated = api.replace(&name, &PostParams::default(), &s).await?;
        tracker.update(&updated);
    }
    for s in delete {
        delete_slice(api, tracker, s).await?;
    }
    Ok(())
}

async fn delete_slice(
    api: &Api<EndpointSlice>,
    tracker: &SliceTracker,
    s: &EndpointSlice,
) -> Result<(), kube::Error> {
    match api.delete(&s.name_any(), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(e) if endpointutil::not_found(&e) => {}
        Err(e) => return Err(e),
    }
    tracker.expect_deletion(s);
    Ok(())
}

async fn cleanup_loop(sh: Arc<Shared>, mut rx: UnboundedReceiver<Cleanup>) {
    while let Some(work) = rx.recv().await {
        match work {
            Cleanup::Service { namespace, name } => remove_orphans(&sh, namespace, name).await,
            Cleanup::Sweep => {
                let orphans: BTreeSet<(String, String)> = sh
                    .slices
                    .state()
                    .iter()
                    .map(|s| slice_service(s))
                    .filter(|(ns, name)| {
                        !name.is_empty() && sh.services.get(&service_ref(ns, name)).is_none()
                    })
                    .collect();
                for (namespace, name) in orphans {
                    remove_orphans(&sh, namespace, name).await;
                }
            }
        }
    }
}

/// Deletes the slices of a service that is gone (checked against the API, not the cache).
async fn remove_orphans(sh: &Arc<Shared>, namespace: String, name: String) {
    let services: Api<Service> = Api::namespaced(sh.client.clone(), &namespace);
    match services.get_opt(&name).await {
        // Still (or again) there: a sync sorts out slices it does not own.
        Ok(Some(_)) => enqueue(&sh.queue, [service_ref(&namespace, &name)]),
        Ok(None) => {
            let api: Api<EndpointSlice> = Api::namespaced(sh.client.clone(), &namespace);
            let lp = ListParams::default().labels(&format!(
                "{LABEL_SERVICE_NAME}={name},{LABEL_MANAGED_BY}={CONTROLLER_NAME}"
            ));
            let result = async {
                // Only slices a Service owned, as the garbage collector would; others were
                // made by hand and are left alone, as upstream does.
                for s in api
                    .list(&lp)
                    .await?
                    .items
                    .iter()
                    .filter(|s| owned_by_a_service(s))
                {
                    delete_slice(&api, &sh.tracker, s).await?;
                }
                Ok::<_, kube::Error>(())
            }
            .await;
            match result {
                Ok(()) => {
                    tracing::debug!(
                        namespace,
                        service = name,
                        "deleted the slices of a deleted service"
                    );
                    sh.tracker.forget_service(&namespace, &name);
                    sh.triggers.forget(&namespace, &name);
                }
                Err(e) => retry_cleanup(sh, namespace, name, e),
            }
        }
        Err(e) => retry_cleanup(sh, namespace, name, e),
    }
}

fn retry_cleanup(sh: &Arc<Shared>, namespace: String, name: String, e: kube::Error) {
    tracing::info!(namespace, service = name, error = %e, "cleaning up endpoint slices failed; retrying");
    let tx = sh.cleanup.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = tx.send(Cleanup::Service { namespace, name });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid",
            "labels": {"app": "web"}}, "spec": spec}),
        )
        .expect("service")
    }

    fn pod(name: &str, ip: &str, ready: bool, port: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .expect("pod"),
        )
    }

    fn node(name: &str) -> Option<Arc<Node>> {
        (name == "n1").then(|| {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "n1",
                    "labels": {"topology.kubernetes.io/zone": "zone-a"}}}))
                .expect("node"),
            )
        })
    }

    fn web() -> Service {
        svc(
            json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}),
        )
    }

    /// The plan's writes as the API server would store them.
    fn stored(plan: &Plan, existing: &[Arc<EndpointSlice>]) -> Vec<Arc<EndpointSlice>> {
        let mut out: Vec<Arc<EndpointSlice>> = existing
            .iter()
            .filter(|e| {
                !plan.delete.iter().any(|d| d.name_any() == e.name_any())
                    && !plan.update.iter().any(|u| u.name_any() == e.name_any())
            })
            .cloned()
            .collect();
        for u in &plan.update {
            let mut u = u.clone();
            u.metadata.generation = Some(u.metadata.generation.unwrap_or(1) + 1);
            out.push(Arc::new(u));
        }
        for (i, c) in plan.create.iter().enumerate() {
            let mut c = c.clone();
            c.metadata.name = Some(format!("web-new{}-{i}", out.len()));
            c.metadata.uid = Some(format!("slice-{}-{i}", out.len()));
            c.metadata.generation = Some(1);
            out.push(Arc::new(c));
        }
        out
    }

    fn addresses(s: &EndpointSlice) -> Vec<String> {
        endpoints_of(s)
            .iter()
            .flat_map(|e| e.addresses.clone())
            .collect()
    }

    #[test]
    fn ready_pods_fill_one_slice_with_resolved_ports_and_topology() {
        let pods: Vec<_> = (1..=3)
            .map(|i| pod(&format!("p{i}"), &format!("10.0.0.{i}"), true, 8080))
            .collect();
        let p = plan(&web(), &pods, &node, &[], 100);
        assert!(p.update.is_empty() && p.delete.is_empty() && p.errors.is_empty());
        assert_eq!(p.create.len(), 1);
        let s = &p.create[0];
        assert_eq!(s.address_type, "IPv4");
        assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
        let labels = s.metadata.labels.clone().expect("labels");
        assert_eq!(
            labels.get(LABEL_SERVICE_NAME).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            labels.get(LABEL_MANAGED_BY).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert!(!labels.contains_key(endpointutil::HEADLESS_LABEL));
        let owner = &s.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
        let ports = s.ports.as_ref().expect("ports");
        assert_eq!(ports.len(), 1);
        assert_eq!(
            (
                ports[0].name.as_deref(),
                ports[0].port,
                ports[0].protocol.as_deref()
            ),
            (Some("http"), Some(8080), Some("TCP"))
        );
        assert_eq!(addresses(s), vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        let ep = &endpoints_of(s)[0];
        assert_eq!(ep.node_name.as_deref(), Some("n1"));
        assert_eq!(ep.zone.as_deref(), Some("zone-a"));
        let c = ep.conditions.clone().expect("conditions");
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(true), Some(true), Some(false))
        );
        let t = ep.target_ref.as_ref().expect("targetRef");
        assert_eq!(
            (t.kind.as_deref(), t.name.as_deref(), t.uid.as_deref()),
            (Some("Pod"), Some("p1"), Some("uid-p1"))
        );
    }

    #[test]
    fn conditions_follow_readiness_termination_and_publish_not_ready() {
        let mut terminating = (*pod("t", "10.0.0.9", true, 8080)).clone();
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        let pods = vec![pod("u", "10.0.0.8", false, 8080), Arc::new(terminating)];
        let p = plan(&web(), &pods, &node, &[], 100);
        type Conditions = (Option<bool>, Option<bool>, Option<bool>);
        let conds: BTreeMap<String, Conditions> = endpoints_of(&p.create[0])
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap_or_default();
                (e.addresses[0].clone(), (c.ready, c.serving, c.terminating))
            })
            .collect();
        assert_eq!(conds["10.0.0.8"], (Some(false), Some(false), Some(false)));
        assert_eq!(conds["10.0.0.9"], (Some(false), Some(true), Some(true)));
        let mut publish = web();
        if let Some(s) = publish.spec.as_mut() {
            s.publish_not_ready_addresses = Some(true);
        }
        let p = plan(&publish, &pods, &node, &[], 100);
        assert!(
            endpoints_of(&p.create[0])
                .iter()
                .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        );
    }

    #[test]
    fn pods_resolving_a_named_port_differently_get_different_slices() {
        let pods = vec![
            pod("a", "10.0.0.1", true, 8080),
            pod("b", "10.0.0.2", true, 9090),
            pod("c", "10.0.0.3", true, 8080),
        ];
        let p = plan(&web(), &pods, &node, &[], 100);
        assert_eq!(p.create.len(), 2);
        let mut by_port: Vec<(i32, Vec<String>)> = p
            .create
            .iter()
            .map(|s| {
                (
                    s.ports.as_ref().and_then(|ps| ps[0].port).unwrap_or(0),
                    addresses(s),
                )
            })
            .collect();
        by_port.sort();
        assert_eq!(
            by_port,
            vec![
                (8080, vec!["10.0.0.1".to_string(), "10.0.0.3".into()]),
                (9090, vec!["10.0.0.2".into()])
            ]
        );
    }

    #[test]
    fn many_pods_split_at_the_limit_and_one_change_rewrites_one_slice() {
        let pods: Vec<_> = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                    true,
                    8080,
                )
            })
            .collect();
        let p = plan(&web(), &pods, &node, &[], 100);
        let sizes: Vec<usize> = p.create.iter().map(|s| endpoints_of(s).len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let existing = stored(&p, &[]);
        // nothing changed: nothing to write
        let again = plan(&web(), &pods, &node, &existing, 100);
        assert!(
            again.create.is_empty() && again.update.is_empty() && again.delete.is_empty(),
            "{again:?}"
        );
        // one pod turns not ready: only its slice is rewritten
        let mut changed = pods.clone();
        changed[120] = pod("p120", "10.0.0.121", false, 8080);
        let once = plan(&web(), &changed, &node, &existing, 100);
        assert!(once.create.is_empty() && once.delete.is_empty());
        assert_eq!(once.update.len(), 1);
        assert!(addresses(&once.update[0]).contains(&"10.0.0.121".to_string()));
        // one pod goes, another comes: the new one takes the freed place in the same slice
        let mut swapped: Vec<_> = pods
            .iter()
            .filter(|p| p.name_any() != "p7")
            .cloned()
            .collect();
        swapped.push(pod("late", "10.0.9.9", true, 8080));
        let swap = plan(&web(), &swapped, &node, &existing, 100);
        assert!(swap.create.is_empty() && swap.delete.is_empty());
        assert_eq!(swap.update.len(), 1);
        let a = addresses(&swap.update[0]);
        assert!(a.contains(&"10.0.9.9".to_string()) && !a.contains(&"10.0.0.8".to_string()));
    }

    #[test]
    fn new_endpoints_fill_the_best_fitting_slice_before_a_new_one() {
        let pods: Vec<_> = (0..150)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.1.{}.{}", i / 200, i % 200 + 1),
                    true,
                    8080,
                )
            })
            .collect();
        let existing = stored(&plan(&web(), &pods, &node, &[], 100), &[]);
        let mut more = pods.clone();
        for i in 0..30 {
            more.push(pod(
                &format!("q{i}"),
                &format!("10.2.0.{}", i + 1),
                true,
                8080,
            ));
        }
        let p = plan(&web(), &more, &node, &existing, 100);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(endpoints_of(&p.update[0]).len(), 80);
    }

    #[test]
    fn empty_service_keeps_one_placeholder() {
        let p = plan(&web(), &[], &node, &[], 100);
        assert_eq!(p.create.len(), 1);
        assert!(endpoints_of(&p.create[0]).is_empty());
        assert_eq!(p.create[0].ports.as_deref(), Some(&[][..]));
        let existing = stored(&p, &[]);
        let again = plan(&web(), &[], &node, &existing, 100);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
        // pods arrive: the placeholder is rewritten rather than replaced
        let filled = plan(
            &web(),
            &[pod("a", "10.0.0.1", true, 8080)],
            &node,
            &existing,
            100,
        );
        assert!(filled.create.is_empty() && filled.delete.is_empty());
        assert_eq!(filled.update.len(), 1);
        assert_eq!(filled.update[0].metadata.name, existing[0].metadata.name);
        assert_eq!(addresses(&filled.update[0]), vec!["10.0.0.1"]);
        // and they go: back to the placeholder by a rewrite, not a delete
        let emptied = plan(&web(), &[], &node, &stored(&filled, &existing), 100);
        assert!(emptied.create.is_empty() && emptied.delete.is_empty());
        assert_eq!(emptied.update.len(), 1);
        assert!(endpoints_of(&emptied.update[0]).is_empty());
    }

    #[test]
    fn slices_of_an_earlier_service_or_address_type_go() {
        let mut foreign = new_slice(&web(), &[], "IPv4");
        foreign.metadata.name = Some("web-old".into());
        foreign.metadata.owner_references.as_mut().expect("owner")[0].uid = "old-uid".into();
        let mut v6 = new_slice(&web(), &[], "IPv6");
        v6.metadata.name = Some("web-v6".into());
        let p = plan(
            &web(),
            &[pod("a", "10.0.0.1", true, 8080)],
            &node,
            &[Arc::new(foreign), Arc::new(v6)],
            100,
        );
        let deleted: BTreeSet<String> = p.delete.iter().map(|s| s.name_any()).collect();
        assert_eq!(
            deleted,
            BTreeSet::from(["web-old".to_string(), "web-v6".to_string()])
        );
        assert_eq!(p.create.len(), 1);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_and_the_sync_retries() {
        let mut lost = (*pod("lost", "10.0.0.5", true, 8080)).clone();
        if let Some(s) = lost.spec.as_mut() {
            s.node_name = Some("gone".into());
        }
        let p = plan(
            &web(),
            &[pod("a", "10.0.0.1", true, 8080), Arc::new(lost)],
            &node,
            &[],
            100,
        );
        assert_eq!(addresses(&p.create[0]), vec!["10.0.0.1"]);
        assert_eq!(p.errors.len(), 1);
        assert!(
            p.errors[0].contains("Node gone Not Found"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn headless_services_publish_hostnames_and_label_slices() {
        let s =
            svc(json!({"selector": {"app": "web"}, "clusterIP": "None", "ipFamilies": ["IPv4"]}));
        let mut p0 = (*pod("web-0", "10.0.0.1", true, 8080)).clone();
        if let Some(spec) = p0.spec.as_mut() {
            spec.hostname = Some("web-0".into());
            spec.subdomain = Some("web".into());
        }
        let p = plan(&s, &[Arc::new(p0)], &node, &[], 100);
        let slice = &p.create[0];
        assert_eq!(slice.ports.as_deref(), Some(&[][..]));
        assert_eq!(endpoints_of(slice)[0].hostname.as_deref(), Some("web-0"));
        assert_eq!(
            slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(endpointutil::HEADLESS_LABEL))
                .map(String::as_str),
            Some("")
        );
    }

    #[test]
    fn service_label_changes_rewrite_slices() {
        let pods = vec![pod("a", "10.0.0.1", true, 8080)];
        let existing = stored(&plan(&web(), &pods, &node, &[], 100), &[]);
        let mut relabelled = web();
        relabelled.metadata.labels = Some(BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "front".to_string()),
        ]));
        let p = plan(&relabelled, &pods, &node, &existing, 100);
        assert_eq!(p.update.len(), 1);
        assert_eq!(
            p.update[0]
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("tier"))
                .map(String::as_str),
            Some("front")
        );
    }

    #[test]
    fn tracker_tells_own_writes_from_others_and_spots_a_stale_cache() {
        let t = SliceTracker::default();
        let mut s = new_slice(&web(), &[], "IPv4");
        s.metadata.uid = Some("u1".into());
        s.metadata.generation = Some(2);
        assert!(t.should_sync(&s));
        t.update(&s);
        assert!(!t.should_sync(&s));
        let behind = {
            let mut b = s.clone();
            b.metadata.generation = Some(1);
            Arc::new(b)
        };
        assert!(t.stale("ns", "web", std::slice::from_ref(&behind)));
        assert!(t.stale("ns", "web", &[]), "a slice we wrote is missing");
        assert!(!t.stale("ns", "web", &[Arc::new(s.clone())]));
        let mut newer = s.clone();
        newer.metadata.generation = Some(3);
        assert!(t.should_sync(&newer));
        t.expect_deletion(&s);
        assert!(t.stale("ns", "web", &[Arc::new(s.clone())]));
        assert!(!t.stale("ns", "web", &[]));
        assert!(t.handle_deletion(&s), "expected");
        t.update(&s);
        assert!(!t.handle_deletion(&s), "someone else deleted it");
        // a relist that no longer shows a slice we wrote: forgotten, not waited for forever
        t.update(&s);
        let (listed, mut writer) = reflector::store::<EndpointSlice>();
        writer.apply_watcher_event(&Event::InitDone);
        assert!(t.stale("ns", "web", &[]));
        t.retain_listed(&listed);
        assert!(!t.stale("ns", "web", &[]));
    }
}
