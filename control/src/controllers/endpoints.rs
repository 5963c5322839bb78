//! The Endpoints controller (upstream `pkg/controller/endpoint`): one legacy `v1` Endpoints
//! object per Service with a selector, named like it, listing the selected pods' addresses
//! (ready ones, and the others under `notReadyAddresses`) grouped into subsets by the ports they
//! serve. At most 1000 addresses are kept, marked `endpoints.kubernetes.io/over-capacity`.
//!
//! Endpoints of services without a selector belong to whoever wrote them (the API server for
//! `default/kubernetes`) and are left alone; Endpoints whose service is gone are deleted.

use super::endpointutil::{
    self, Backoff, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME, Queue, Task, TriggerTimes, enqueue,
};
use super::{Context, ControllerError, Events, util};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

/// Marks the Endpoints this controller writes (upstream since the Endpoints deprecation).
pub const LABEL_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpoint-controller";
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Most addresses one Endpoints object keeps.
pub const MAX_CAPACITY: usize = 1000;
/// Endpoints used as leader-election locks have no service and must not be cleaned up.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Upstream's `--concurrent-endpoint-syncs` default.
const WORKERS: u16 = 5;

/// Runs the controller until `stop`.
pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run_controller(ctx, stop))
}

// ---------------------------------------------------------------------------------------------
// Desired state.

/// The address of a pod in the service's (first) IP family.
fn pod_address(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let spec = svc.spec.as_ref();
    let family_v6 = match spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        Some(f) => f == "IPv6",
        None if endpointutil::is_service_ip_set(svc) => {
            endpointutil::is_ipv6(spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or(""))
        }
        None => endpointutil::is_ipv6(
            pod.status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .unwrap_or(""),
        ),
    };
    let ip = endpointutil::pod_ips(pod)
        .into_iter()
        .find(|ip| endpointutil::is_ipv6(ip) == family_v6)?;
    Some(EndpointAddress {
        ip: ip.to_string(),
        hostname: endpointutil::should_set_hostname(pod, svc),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// The service's subsets for these pods, in canonical (repacked) form.
pub fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let publish = endpointutil::publish_not_ready(svc);
    let ports = endpointutil::service_ports(svc);
    let mut subsets = Vec::new();
    for pod in pods {
        if !endpointutil::should_pod_be_in_endpoints(pod, publish) {
            continue;
        }
        let Some(addr) = pod_address(svc, pod) else {
            continue;
        };
        let ready = publish || util::pod_ready(pod);
        let subset = |ports: Option<Vec<EndpointPort>>| {
            let (addresses, not_ready) = if ready {
                (Some(vec![addr.clone()]), None)
            } else {
                (None, Some(vec![addr.clone()]))
            };
            EndpointSubset {
                addresses,
                not_ready_addresses: not_ready,
                ports,
            }
        };
        if ports.is_empty() {
            // Headless services may do without ports.
            if endpointutil::is_headless(svc) {
                subsets.push(subset(None));
            }
            continue;
        }
        for sp in ports {
            let Some(port) = endpointutil::find_port(pod, sp) else {
                continue;
            };
            subsets.push(subset(Some(vec![EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            }])));
        }
    }
    repack(subsets)
}

type AddressKey = (String, String);
type PortSortKey = Option<(String, i32, String, String)>;

fn address_key(a: &EndpointAddress) -> AddressKey {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|t| t.uid.clone())
            .unwrap_or_default(),
    )
}

fn port_sort_key(p: &EndpointPort) -> (String, i32, String, String) {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

/// Upstream's `RepackSubsets`: each distinct set of addresses becomes one subset with all the
/// ports it serves; an address not ready for some port counts as not ready for it.
pub fn repack(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    let mut addresses: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    let mut by_port: BTreeMap<PortSortKey, (Option<EndpointPort>, BTreeMap<AddressKey, bool>)> =
        BTreeMap::new();
    for s in subsets {
        let ports: Vec<Option<EndpointPort>> = match s.ports {
            Some(p) if !p.is_empty() => p.into_iter().map(Some).collect(),
            // A sentinel keeps addresses of port-less subsets.
            _ => vec![None],
        };
        let ready = s.addresses.into_iter().flatten().map(|a| (a, true));
        let not_ready = s
            .not_ready_addresses
            .into_iter()
            .flatten()
            .map(|a| (a, false));
        let all: Vec<(EndpointAddress, bool)> = ready.chain(not_ready).collect();
        for port in ports {
            let entry = by_port
                .entry(port.as_ref().map(port_sort_key))
                .or_insert_with(|| (port.clone(), BTreeMap::new()));
            for (addr, is_ready) in &all {
                let key = address_key(addr);
                addresses.entry(key.clone()).or_insert_with(|| addr.clone());
                match entry.1.get(&key) {
                    Some(false) => {}
                    _ => {
                        entry.1.insert(key, *is_ready);
                    }
                }
            }
        }
    }
    let mut groups: BTreeMap<BTreeMap<AddressKey, bool>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, set)) in by_port {
        let ports = groups.entry(set).or_default();
        ports.extend(port);
    }
    groups
        .into_iter()
        .map(|(set, mut ports)| {
            ports.sort_by_key(port_sort_key);
            let pick = |want: bool| {
                non_empty(
                    set.iter()
                        .filter(|(_, r)| **r == want)
                        .filter_map(|(k, _)| addresses.get(k).cloned())
                        .collect(),
                )
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: non_empty(ports),
            }
        })
        .collect()
}

/// Keeps at most [`MAX_CAPACITY`] addresses, ready ones first, each subset keeping its share;
/// true if anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = ready > MAX_CAPACITY;
    let (max, total) = if cut_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut room = max;
    for s in subsets.iter_mut() {
        let list = if cut_ready {
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let n = count(list);
        // Shares are rounded up, so the last subsets may get less than theirs.
        let share = (n * max).div_ceil(total).min(room);
        if let Some(l) = list.as_mut() {
            l.truncate(share);
        }
        room -= count(list);
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
        if cut_ready {
            s.not_ready_addresses = None;
        }
    }
    true
}

/// Subsets as stored, for comparison: empty lists as none, pod resource versions ignored.
fn normalized(subsets: Option<&[EndpointSubset]>) -> Vec<EndpointSubset> {
    let addrs = |v: &Option<Vec<EndpointAddress>>| {
        non_empty(
            v.iter()
                .flatten()
                .map(|a| {
                    let mut a = a.clone();
                    if let Some(t) = a.target_ref.as_mut() {
                        t.resource_version = None;
                    }
                    a
                })
                .collect(),
        )
    };
    subsets
        .unwrap_or(&[])
        .iter()
        .map(|s| EndpointSubset {
            addresses: addrs(&s.addresses),
            not_ready_addresses: addrs(&s.not_ready_addresses),
            ports: s.ports.clone().and_then(non_empty),
        })
        .collect()
}

/// The Endpoints object to write, or `None` when `current` is already right.
pub fn desired_endpoints(
    svc: &Service,
    pods: &[Arc<Pod>],
    current: Option<&Endpoints>,
    trigger: Option<jiff::Timestamp>,
) -> Option<Endpoints> {
    let mut subsets = desired_subsets(svc, pods);
    let over = truncate(&mut subsets);
    let mut want_labels = svc.metadata.labels.clone().unwrap_or_default();
    want_labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    if let Some(cur) = current {
        let mut cur_labels = cur.metadata.labels.clone().unwrap_or_default();
        // The headless marker is ours, not the service's.
        cur_labels.remove(HEADLESS_LABEL);
        let cur_over = cur
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(OVER_CAPACITY));
        if normalized(cur.subsets.as_deref()) == normalized(Some(&subsets))
            && cur_labels == want_labels
            && cur_over == over
        {
            return None;
        }
    }
    let mut new = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: kube::api::ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            ..Default::default()
        },
        subsets: None,
    });
    new.subsets = non_empty(subsets);
    if endpointutil::is_service_ip_set(svc) {
        want_labels.remove(HEADLESS_LABEL);
    } else {
        want_labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    new.metadata.labels = Some(want_labels);
    let annotations = new.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(t) => annotations.insert(
            LAST_CHANGE_TRIGGER_TIME.into(),
            endpointutil::format_time(t),
        ),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    if over {
        annotations.insert(OVER_CAPACITY.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    Some(new)
}

// ---------------------------------------------------------------------------------------------
// The controller.

/// The resource versions our writes replaced: a cache still showing one is behind our writes.
#[derive(Default)]
struct StaleTracker(Mutex<HashMap<(String, String), String>>);

impl StaleTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn replaced(&self, ns: &str, name: &str, rv: &str) {
        self.lock()
            .insert((ns.to_string(), name.to_string()), rv.to_string());
    }

    fn is_stale(&self, ns: &str, name: &str, rv: &str) -> bool {
        self.lock()
            .get(&(ns.to_string(), name.to_string()))
            .is_some_and(|old| old == rv)
    }

    fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.lock().retain(|(ns, name), _| keep(ns, name));
    }

    fn forget(&self, ns: &str, name: &str) {
        self.lock().remove(&(ns.to_string(), name.to_string()));
    }
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("endpoints informer cache is out of date")]
    Stale,
    #[error("{0}")]
    Api(#[from] kube::Error),
}

impl endpointutil::SyncFailure for SyncError {
    fn is_stale(&self) -> bool {
        matches!(self, SyncError::Stale)
    }
}

struct Shared {
    client: kube::Client,
    events: Events,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    stale: Arc<StaleTracker>,
    triggers: TriggerTimes,
    backoff: Backoff,
    queue: Queue,
    cleanup: UnboundedSender<Cleanup>,
}

enum Cleanup {
    /// The service may be gone: so must its Endpoints.
    Service { namespace: String, name: String },
    /// At startup: check every Endpoints object.
    Sweep,
}

fn key(namespace: &str, name: &str) -> ObjectRef<Service> {
    ObjectRef::new(name).within(namespace)
}

async fn run_controller(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("endpoint-controller")?;
    let events = ctx.recorder(client.clone(), "endpoint-controller");
    let (queue, queue_rx) = unbounded_channel::<ObjectRef<Service>>();
    let (cleanup, cleanup_rx) = unbounded_channel::<Cleanup>();
    let stale = Arc::new(StaleTracker::default());

    let (services, services_w) = reflector::store::<Service>();
    let (pods, pods_w) = reflector::store::<Pod>();
    let (endpoints, endpoints_w) = reflector::store::<Endpoints>();

    let _services_task = endpointutil::reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        services_w,
        "services",
        {
            let (queue, cleanup) = (queue.clone(), cleanup.clone());
            let mut swept = false;
            move |ev| match ev {
                Event::Apply(s) | Event::InitApply(s) => enqueue(&queue, [ObjectRef::from_obj(s)]),
                Event::Delete(s) => {
                    let _ = cleanup.send(Cleanup::Service {
                        namespace: s.namespace().unwrap_or_default(),
                        name: s.name_any(),
                    });
                }
                // Once, at startup (upstream's checkLeftoverEndpoints): Endpoints whose service
                // went while no controller was running.
                Event::InitDone if !swept => {
                    swept = true;
                    let _ = cleanup.send(Cleanup::Sweep);
                }
                _ => {}
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
    let _endpoints_task = endpointutil::reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        endpoints_w,
        "endpoints",
        {
            let (queue, services, stale, endpoints) = (
                queue.clone(),
                services.clone(),
                stale.clone(),
                endpoints.clone(),
            );
            move |ev| match ev {
                // Someone deleted Endpoints: recreate them if their service wants them.
                Event::Delete(e) => {
                    let ns = e.namespace().unwrap_or_default();
                    stale.forget(&ns, &e.name_any());
                    enqueue(&queue, [key(&ns, &e.name_any())]);
                }
                // A relist reports no deletions: forget what is gone, look at everything.
                Event::InitDone => {
                    stale.retain(|ns, name| {
                        endpoints.get(&ObjectRef::new(name).within(ns)).is_some()
                    });
                    let all = services.state();
                    enqueue(&queue, all.iter().map(|s| ObjectRef::from_obj(s.as_ref())));
                }
                _ => {}
            }
        },
    );

    let ready = async {
        services.wait_until_ready().await?;
        pods.wait_until_ready().await?;
        endpoints.wait_until_ready().await
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
        services: services.clone(),
        pods,
        endpoints,
        stale,
        triggers: TriggerTimes::default(),
        backoff: Backoff::default(),
        queue,
        cleanup,
    });
    let _cleanup_task = Task::spawn(cleanup_loop(shared.clone(), cleanup_rx));

    endpointutil::run_services(
        CONTROLLER_NAME,
        "endpoints",
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

async fn sync_service(svc: Arc<Service>, sh: Arc<Shared>) -> Result<Action, SyncError> {
    let namespace = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let svc_key = ObjectRef::from_obj(svc.as_ref());
    // ExternalName services get no endpoints, and those without a selector get theirs from
    // someone else.
    let selector = endpointutil::service_selector(&svc);
    let Some(selector) = selector.filter(|_| !endpointutil::is_external_name(&svc)) else {
        sh.backoff.succeeded(&svc_key);
        return Ok(Action::await_change());
    };
    let current = sh.endpoints.get(&ObjectRef::new(&name).within(&namespace));
    let current_rv = current
        .as_ref()
        .and_then(|e| e.metadata.resource_version.clone())
        .unwrap_or_default();
    if sh.stale.is_stale(&namespace, &name, &current_rv) {
        return Err(SyncError::Stale);
    }
    let pods = sh.pods.state_filter(|p| {
        p.metadata.namespace.as_deref() == Some(namespace.as_str())
            && endpointutil::selects(selector, p)
    });
    let trigger = sh.triggers.compute(&svc, &pods);
    let Some(new) = desired_endpoints(&svc, &pods, current.as_deref(), trigger) else {
        sh.backoff.succeeded(&svc_key);
        return Ok(Action::await_change());
    };
    let api: Api<Endpoints> = Api::namespaced(sh.client.clone(), &namespace);
    let create = current.is_none();
    let result = if create {
        api.create(&PostParams::default(), &new).await
    } else {
        api.replace(&name, &PostParams::default(), &new).await
    };
    match result {
        Ok(_) => {
            sh.stale.replaced(&namespace, &name, &current_rv);
            sh.backoff.succeeded(&svc_key);
            Ok(Action::await_change())
        }
        Err(e) if create && endpointutil::namespace_terminating(&e) => Ok(Action::await_change()),
        Err(e) => {
            let (reason, note) = if create {
                (
                    "FailedToCreateEndpoint",
                    format!("Failed to create endpoint for service {namespace}/{name}: {e}"),
                )
            } else {
                (
                    "FailedToUpdateEndpoint",
                    format!("Failed to update endpoint {namespace}/{name}: {e}"),
                )
            };
            sh.events
                .warning(&new.object_ref(&()), reason, "Update", note)
                .await;
            Err(SyncError::Api(e))
        }
    }
}

async fn cleanup_loop(sh: Arc<Shared>, mut rx: UnboundedReceiver<Cleanup>) {
    while let Some(work) = rx.recv().await {
        match work {
            Cleanup::Service { namespace, name } => remove_leftover(&sh, namespace, name).await,
            Cleanup::Sweep => {
                let leftovers: BTreeSet<(String, String)> = sh
                    .endpoints
                    .state()
                    .iter()
                    .filter(|e| {
                        !e.annotations().contains_key(LEADER_ANNOTATION)
                            && sh
                                .services
                                .get(&key(&e.namespace().unwrap_or_default(), &e.name_any()))
                                .is_none()
                    })
                    .map(|e| (e.namespace().unwrap_or_default(), e.name_any()))
                    .collect();
                for (namespace, name) in leftovers {
                    remove_leftover(&sh, namespace, name).await;
                }
            }
        }
    }
}

/// Deletes the Endpoints of a service that is gone (checked against the API, not the cache).
async fn remove_leftover(sh: &Arc<Shared>, namespace: String, name: String) {
    let services: Api<Service> = Api::namespaced(sh.client.clone(), &namespace);
    let result = match services.get_opt(&name).await {
        Ok(Some(_)) => {
            enqueue(&sh.queue, [key(&namespace, &name)]);
            return;
        }
        Ok(None) => {
            let api: Api<Endpoints> = Api::namespaced(sh.client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(e) if endpointutil::not_found(&e) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            sh.stale.forget(&namespace, &name);
            sh.triggers.forget(&namespace, &name);
        }
        Err(e) => {
            tracing::info!(namespace, service = name, error = %e, "deleting leftover endpoints failed; retrying");
            let tx = sh.cleanup.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = tx.send(Cleanup::Service { namespace, name });
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid",
            "labels": {"app": "web"}, "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": spec}),
        )
        .expect("service")
    }

    fn web() -> Service {
        svc(
            json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                      {"name": "admin", "port": 81, "protocol": "TCP", "targetPort": 9000}]}),
        )
    }

    fn pod(name: &str, ip: &str, ready: bool, http: Option<i32>) -> Arc<Pod> {
        let ports: Vec<serde_json::Value> = http
            .into_iter()
            .map(|p| json!({"name": "http", "containerPort": p}))
            .collect();
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .expect("pod"),
        )
    }

    fn ips(v: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        v.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    fn ports(s: &EndpointSubset) -> Vec<(Option<&str>, i32)> {
        s.ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.port))
            .collect()
    }

    #[test]
    fn ready_and_not_ready_pods_group_by_ports() {
        let pods = vec![
            pod("a", "10.0.0.2", true, Some(8080)),
            pod("b", "10.0.0.10", true, Some(8080)),
            pod("c", "10.0.0.3", false, Some(8080)),
            pod("d", "10.0.0.4", true, None),
        ];
        let subsets = desired_subsets(&web(), &pods);
        // d serves only the numeric port: two different sets of addresses, two subsets
        assert_eq!(subsets.len(), 2, "{subsets:?}");
        let full = subsets
            .iter()
            .find(|s| ports(s) == vec![(Some("http"), 8080)])
            .expect("http");
        // IPs sort as strings, as upstream compares their bytes
        assert_eq!(ips(&full.addresses), vec!["10.0.0.10", "10.0.0.2"]);
        assert_eq!(ips(&full.not_ready_addresses), vec!["10.0.0.3"]);
        let admin = subsets
            .iter()
            .find(|s| ports(s) == vec![(Some("admin"), 9000)])
            .expect("admin");
        assert_eq!(
            ips(&admin.addresses),
            vec!["10.0.0.10", "10.0.0.2", "10.0.0.4"]
        );
        assert_eq!(ips(&admin.not_ready_addresses), vec!["10.0.0.3"]);
        // pods with the same ports share a subset listing all of them
        let same = desired_subsets(&web(), &pods[..3]);
        assert_eq!(same.len(), 1);
        assert_eq!(
            ports(&same[0]),
            vec![(Some("admin"), 9000), (Some("http"), 8080)]
        );
        let a = &full.addresses.as_ref().expect("addresses")[1];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let t = a.target_ref.as_ref().expect("targetRef");
        assert_eq!(
            (t.kind.as_deref(), t.name.as_deref(), t.uid.as_deref()),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
    }

    #[test]
    fn publish_not_ready_and_terminating_pods() {
        let mut gone = (*pod("t", "10.0.0.9", true, Some(8080))).clone();
        gone.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        let pods = vec![pod("u", "10.0.0.8", false, Some(8080)), Arc::new(gone)];
        let subsets = desired_subsets(&web(), &pods);
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.0.0.8"]);
        assert!(
            subsets[0].addresses.is_none(),
            "terminating pods are left out"
        );
        let mut publish = web();
        if let Some(s) = publish.spec.as_mut() {
            s.publish_not_ready_addresses = Some(true);
        }
        let subsets = desired_subsets(&publish, &pods);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.8", "10.0.0.9"]);
    }

    #[test]
    fn repack_merges_and_not_ready_wins() {
        let addr = |ip: &str| EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        };
        let port = |n: i32| EndpointPort {
            port: n,
            ..Default::default()
        };
        let packed = repack(vec![
            EndpointSubset {
                addresses: Some(vec![addr("1.1.1.1")]),
                ports: Some(vec![port(1)]),
                ..Default::default()
            },
            EndpointSubset {
                not_ready_addresses: Some(vec![addr("1.1.1.1")]),
                ports: Some(vec![port(1)]),
                ..Default::default()
            },
            EndpointSubset {
                addresses: Some(vec![addr("2.2.2.2")]),
                ports: Some(vec![port(1)]),
                ..Default::default()
            },
            EndpointSubset {
                addresses: Some(vec![addr("3.3.3.3")]),
                ..Default::default()
            },
        ]);
        assert_eq!(packed.len(), 2);
        let with_port = packed.iter().find(|s| s.ports.is_some()).expect("ported");
        assert_eq!(ips(&with_port.addresses), vec!["2.2.2.2"]);
        assert_eq!(ips(&with_port.not_ready_addresses), vec!["1.1.1.1"]);
        let bare = packed
            .iter()
            .find(|s| s.ports.is_none())
            .expect("port-less");
        assert_eq!(ips(&bare.addresses), vec!["3.3.3.3"]);
    }

    #[test]
    fn over_capacity_keeps_ready_addresses_first() {
        let pods: Vec<_> = (0..1100)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.{}.{}.1", i / 250, i % 250),
                    i % 10 != 0,
                    Some(8080),
                )
            })
            .collect();
        let e = desired_endpoints(&web(), &pods, None, None).expect("created");
        let s = e.subsets.as_ref().expect("subsets");
        let ready: usize = s
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum();
        let not_ready: usize = s
            .iter()
            .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
            .sum();
        assert_eq!((ready, not_ready), (990, 10));
        assert_eq!(
            e.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(OVER_CAPACITY))
                .map(String::as_str),
            Some("truncated")
        );
        // the truncated object is stable: no rewrite next time
        assert!(desired_endpoints(&web(), &pods, Some(&e), None).is_none());
        let all_ready: Vec<_> = (0..1200)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.{}.{}.2", i / 250, i % 250),
                    true,
                    Some(8080),
                )
            })
            .collect();
        let e = desired_endpoints(&web(), &all_ready, None, None).expect("created");
        let s = e.subsets.as_ref().expect("subsets");
        assert_eq!(
            s.iter()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum::<usize>(),
            1000
        );
        assert!(s.iter().all(|s| s.not_ready_addresses.is_none()));
    }

    #[test]
    fn labels_annotations_and_no_churn() {
        let pods = vec![pod("a", "10.0.0.2", true, Some(8080))];
        let t = jiff::Timestamp::from_second(1_700_000_000).expect("time");
        let e = desired_endpoints(&web(), &pods, None, Some(t)).expect("created");
        assert_eq!(e.metadata.name.as_deref(), Some("web"));
        let labels = e.metadata.labels.clone().expect("labels");
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(
            labels.get(LABEL_MANAGED_BY).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert!(!labels.contains_key(HEADLESS_LABEL));
        assert_eq!(
            e.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LAST_CHANGE_TRIGGER_TIME))
                .map(String::as_str),
            Some("2023-11-14T22:13:20Z")
        );
        // same pods, a resource-version-only difference in the stored targetRef: nothing to do
        let mut stored = e.clone();
        if let Some(t) = stored
            .subsets
            .as_mut()
            .and_then(|s| s[0].addresses.as_mut())
            .and_then(|a| a[0].target_ref.as_mut())
        {
            t.resource_version = Some("7".into());
        }
        assert!(desired_endpoints(&web(), &pods, Some(&stored), None).is_none());
        // readiness changes: rewritten, the trigger annotation dropped when unknown
        let now_not_ready = vec![pod("a", "10.0.0.2", false, Some(8080))];
        let e2 = desired_endpoints(&web(), &now_not_ready, Some(&stored), None).expect("update");
        assert_eq!(
            ips(&e2.subsets.as_ref().expect("subsets")[0].not_ready_addresses),
            vec!["10.0.0.2"]
        );
        assert!(
            e2.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| !a.contains_key(LAST_CHANGE_TRIGGER_TIME))
        );
        // headless services get the marker, which does not count as a difference
        let headless =
            svc(json!({"selector": {"app": "web"}, "clusterIP": "None", "ipFamilies": ["IPv4"]}));
        let h = desired_endpoints(&headless, &pods, None, None).expect("created");
        assert_eq!(
            h.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(HEADLESS_LABEL))
                .map(String::as_str),
            Some("")
        );
        assert!(h.subsets.as_ref().expect("subsets")[0].ports.is_none());
        assert!(desired_endpoints(&headless, &pods, Some(&h), None).is_none());
    }
}
