//! The ReplicaSet controller, as kube-controller-manager's `pkg/controller/replicaset`: keeps
//! `spec.replicas` active pods matching the selector, adopts matching orphans and releases pods
//! that stopped matching (controller owner references), and reports what it sees in `status`.
//!
//! Built on kube-runtime's `applier` over reflector stores of ReplicaSets and Pods (the informers
//! and listers of client-go). Expectations record the pods this controller created or deleted
//! until the pod watch shows them, so it never acts twice on its own writes in flight.

use super::{Context, ControllerError, util};
use crate::api::selectors::LabelSelector;
use futures::future::{BoxFuture, join_all};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, ReconcileReason, ReconcileRequest};
use kube::runtime::reflector::{self, ObjectRef, Store, store::WriterDropped};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Creations or deletions in one sync at most (upstream `BurstReplicas`).
const BURST_REPLICAS: usize = 500;
/// Unobserved expectations are given up after this long (upstream `ExpectationsTimeout`).
const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);
/// ReplicaSets synced at once (`--concurrent-replicaset-syncs`).
const CONCURRENT_SYNCS: u16 = 5;
/// Annotation ranking pods for scale-down (lower goes first).
const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The controller's runner for [`super::all`].
pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run_controller(ctx, stop))
}

/// Why a sync failed; the ReplicaSet is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{}", api_message(.0))]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
    #[error("cache: {0}")]
    Store(#[from] WriterDropped),
}

/// The message of an API error as the server worded it (what client-go's errors print).
pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

fn is_invalid(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 422)
}

/// The namespace is being deleted: creating anything in it fails until it is gone.
pub(crate) fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| d
        .causes
        .iter()
        .any(|c| c.reason == "NamespaceTerminating")))
}

/// `namespace/name`, the key of the work queue.
pub(crate) fn key_of(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// Per-object retry delays after failed syncs, doubling from 5 ms like client-go's item
/// limiter (capped lower: a minute instead of 1000 s).
#[derive(Default)]
pub(crate) struct Backoff(Mutex<HashMap<String, u32>>);

impl Backoff {
    pub(crate) fn next(&self, key: &str) -> Duration {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.to_string()).or_insert(0);
        let d = Duration::from_millis(5).saturating_mul(1u32 << (*n).min(20));
        *n += 1;
        d.min(Duration::from_secs(60))
    }

    pub(crate) fn reset(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// A sync future as the applier wants it (boxed, hence `Unpin`).
pub(crate) type SyncFuture = Pin<Box<dyn Future<Output = Result<Action, SyncError>> + Send>>;

/// Polls an applier until `stop`, logging failed syncs (the error policy retries them).
/// Conflicts from a cache a step behind, and objects gone before their turn, are routine.
pub(crate) async fn drive<T>(
    name: &'static str,
    applier: impl Stream<Item = Result<T, controller::Error<SyncError, watcher::Error>>>,
    stop: CancellationToken,
) {
    let run = applier.for_each(|res| async move {
        match res {
            Ok(_) => {}
            Err(controller::Error::ObjectNotFound(_)) => {}
            Err(controller::Error::ReconcilerFailed(SyncError::Api(kube::Error::Api(s)), obj))
                if s.is_conflict() =>
            {
                tracing::debug!(controller = name, object = %obj, error = %s.message, "sync conflicted");
            }
            Err(e) => tracing::warn!(controller = name, error = %e, "sync failed"),
        }
    });
    tokio::select! {
        _ = run => tracing::warn!(controller = name, "applier stopped"),
        _ = stop.cancelled() => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Own writes (upstream's consistency store)

/// A write waited for this long is given up on (the object may have gone for good).
const WRITTEN_TTL: Duration = Duration::from_secs(30);

/// The resource versions a sync wrote, per object it synced, so the next sync of that object
/// waits until the watch caches show them (upstream's consistency store: `WroteAt` after a
/// write, `EnsureReady` before a sync). Acting on a cache that lacks one's own writes only ends
/// in conflicts, or in deciding the same thing twice.
#[derive(Default)]
pub(crate) struct Written(Mutex<HashMap<String, Vec<WrittenObject>>>);

struct WrittenObject {
    key: String,
    resource_version: u64,
    /// Created by the write: not being cached yet means not seen yet, rather than deleted.
    created: bool,
    at: Instant,
}

pub(crate) fn resource_version(meta: &ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

impl Written {
    /// Records that syncing `owner` wrote the object cached under `key`.
    pub(crate) fn wrote(&self, owner: &str, key: String, meta: &ObjectMeta, created: bool) {
        let Some(rv) = resource_version(meta) else {
            return;
        };
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let list = m.entry(owner.to_string()).or_default();
        list.retain(|w| w.key != key);
        list.push(WrittenObject {
            key,
            resource_version: rv,
            created,
            at: Instant::now(),
        });
    }

    /// Whether the caches show everything syncing `owner` wrote; `cached` gives the resource
    /// version a cache holds for a key.
    pub(crate) fn ready(&self, owner: &str, cached: impl Fn(&str) -> Option<u64>) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = m.get_mut(owner) else {
            return true;
        };
        list.retain(|w| {
            w.at.elapsed() < WRITTEN_TTL
                && match cached(&w.key) {
                    Some(rv) => rv < w.resource_version,
                    None => w.created,
                }
        });
        if list.is_empty() {
            m.remove(owner);
            return true;
        }
        false
    }

    pub(crate) fn forget(&self, owner: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(owner);
    }
}

// ---------------------------------------------------------------------------------------------
// Events

pub(crate) use super::reconcile_loop::Recorder;

// ---------------------------------------------------------------------------------------------
// Controller references (upstream ControllerRefManager)

/// What a controller does with an object its selector may or may not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Already ours and matching.
    Ours,
    /// An orphan that matches: take it.
    Adopt,
    /// Ours but no longer matching: let it go.
    Release,
    /// Someone else's, or not for us.
    Ignore,
}

/// Upstream `ClaimObject`'s decision for one object.
pub(crate) fn claim(meta: &ObjectMeta, owner: &ObjectMeta, selector: &LabelSelector) -> Claim {
    let matches = util::matches(selector, meta.labels.as_ref());
    let owner_deleting = owner.deletion_timestamp.is_some();
    if let Some(c) = util::controller_of(meta) {
        if Some(&c.uid) != owner.uid.as_ref() {
            return Claim::Ignore;
        }
        if matches {
            return Claim::Ours;
        }
        return if owner_deleting {
            Claim::Ignore
        } else {
            Claim::Release
        };
    }
    if owner_deleting
        || !matches
        || meta.deletion_timestamp.is_some()
        || meta.namespace != owner.namespace
    {
        return Claim::Ignore;
    }
    Claim::Adopt
}

/// The strategic merge patch making `owner` an object's controller (upstream
/// `ownerRefControllerPatch`); the uid guards against a recreated object of the same name.
pub(crate) fn adopt_patch(owner: &OwnerReference, uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [owner], "uid": uid}})
}

/// The strategic merge patch removing `owner_uid` from an object's owners.
pub(crate) fn release_patch(owner_uid: &str, uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": uid}})
}

/// Adopts or releases one object through `api`; a vanished object is no error. Returns whether
/// the object is ours afterwards.
pub(crate) async fn apply_claim<K>(
    api: &Api<K>,
    obj: &K,
    decision: Claim,
    owner_ref: &OwnerReference,
) -> Result<bool, kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or("");
    let uid = meta.uid.as_deref().unwrap_or("");
    let patch = match decision {
        Claim::Ours => return Ok(true),
        Claim::Ignore => return Ok(false),
        Claim::Adopt => adopt_patch(owner_ref, uid),
        Claim::Release => release_patch(&owner_ref.uid, uid),
    };
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(decision == Claim::Adopt),
        Err(e) if is_not_found(&e) => Ok(false),
        // Releasing an object that lost the owner or was recreated under the same name.
        Err(e) if decision == Claim::Release && is_invalid(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Expectations (upstream UIDTrackingControllerExpectations)

#[derive(Debug)]
struct Expected {
    /// Pods created but not yet seen by the watch (by name).
    adds: HashSet<String>,
    /// Pods deleted but not yet seen gone or terminating (by `namespace/name`).
    dels: HashSet<String>,
    at: Instant,
}

/// What each ReplicaSet waits to observe before it counts pods again.
#[derive(Default)]
struct Expectations(Mutex<HashMap<String, Expected>>);

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expected>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records pods just created. Ones the store already holds were observed already: the pod
    /// stream observes after the store is written, and this checks the store under the lock.
    fn expect_creations(&self, key: &str, ns: &str, names: Vec<String>, pods: &Store<Pod>) {
        let mut m = self.lock();
        let e = m.entry(key.to_string()).or_insert_with(|| Expected {
            adds: HashSet::new(),
            dels: HashSet::new(),
            at: Instant::now(),
        });
        e.at = Instant::now();
        for n in names {
            if pods.get(&ObjectRef::new(&n).within(ns)).is_none() {
                e.adds.insert(n);
            }
        }
    }

    fn expect_deletions(&self, key: &str, pod_keys: impl IntoIterator<Item = String>) {
        let mut m = self.lock();
        let e = m.entry(key.to_string()).or_insert_with(|| Expected {
            adds: HashSet::new(),
            dels: HashSet::new(),
            at: Instant::now(),
        });
        e.at = Instant::now();
        e.dels.extend(pod_keys);
    }

    fn deletion_observed(&self, key: &str, pod_key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.dels.remove(pod_key);
        }
    }

    /// A pod event: creations show up as the pod, deletions as a deletion timestamp or the end.
    fn observe(&self, pod: &Pod, gone: bool) {
        let Some(owner) = util::controller_of(&pod.metadata).filter(|o| o.kind == "ReplicaSet")
        else {
            return;
        };
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let mut m = self.lock();
        if let Some(e) = m.get_mut(&format!("{ns}/{}", owner.name)) {
            e.adds.remove(name);
            if gone || pod.metadata.deletion_timestamp.is_some() {
                e.dels.remove(&format!("{ns}/{name}"));
            }
        }
    }

    fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Whether the ReplicaSet may count its pods again; if not, when to look again. The store
    /// settles what a relisting watch never reported one by one.
    fn satisfied(&self, key: &str, ns: &str, pods: &Store<Pod>) -> Result<(), Duration> {
        let mut m = self.lock();
        let Some(e) = m.get_mut(key) else {
            return Ok(());
        };
        e.adds
            .retain(|n| pods.get(&ObjectRef::new(n).within(ns)).is_none());
        e.dels.retain(|k| {
            let name = k.rsplit('/').next().unwrap_or("");
            pods.get(&ObjectRef::new(name).within(ns))
                .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        });
        let age = e.at.elapsed();
        if (e.adds.is_empty() && e.dels.is_empty()) || age >= EXPECTATIONS_TTL {
            m.remove(key);
            return Ok(());
        }
        Err(EXPECTATIONS_TTL - age)
    }
}

// ---------------------------------------------------------------------------------------------
// The controller

struct Rsc {
    client: kube::Client,
    events: Recorder,
    rss: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: Expectations,
    written: Written,
    backoff: Backoff,
}

async fn run_controller(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("replicaset-controller")?;
    let events = Recorder::new(&ctx, client.clone(), "replicaset-controller");
    let (rss, rs_writer) = reflector::store::<ReplicaSet>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let rsc = Arc::new(Rsc {
        client: client.clone(),
        events,
        rss: rss.clone(),
        pods: pods.clone(),
        expectations: Expectations::default(),
        written: Written::default(),
        backoff: Backoff::default(),
    });

    let rs_stream = reflector::reflector(
        rs_writer,
        watcher(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    let me = rsc.clone();
    let rs_triggers = controller::trigger_with(rs_stream, move |ev: watcher::Event<ReplicaSet>| {
        match ev {
            watcher::Event::Apply(rs) | watcher::Event::InitApply(rs) => {
                vec![request(ObjectRef::from_obj(&rs))]
            }
            watcher::Event::Delete(rs) => {
                // A new ReplicaSet of the same name starts clean.
                me.expectations.forget(&key_of(&rs.metadata));
                me.written.forget(&key_of(&rs.metadata));
                vec![]
            }
            watcher::Event::Init | watcher::Event::InitDone => vec![],
        }
    });
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    let me = rsc.clone();
    let pod_triggers = controller::trigger_with(pod_stream, move |ev: watcher::Event<Pod>| {
        let (pod, gone) = match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, false),
            watcher::Event::Delete(p) => (p, true),
            watcher::Event::Init | watcher::Event::InitDone => return vec![],
        };
        me.expectations.observe(&pod, gone);
        replica_sets_for_pod(&me.rss, &pod)
    });

    let applier = controller::applier(
        |rs, c: Arc<Rsc>| -> SyncFuture { Box::pin(async move { c.sync(rs).await }) },
        |rs, _err, c: Arc<Rsc>| Action::requeue(c.backoff.next(&key_of(&rs.metadata))),
        rsc,
        rss,
        futures::stream::select(rs_triggers, pod_triggers),
        controller::Config::default().concurrency(CONCURRENT_SYNCS),
    );
    drive("replicaset", applier, stop).await;
    Ok(())
}

fn request(obj_ref: ObjectRef<ReplicaSet>) -> ReconcileRequest<ReplicaSet> {
    ReconcileRequest {
        obj_ref,
        reason: ReconcileReason::ObjectUpdated,
    }
}

/// The ReplicaSets a pod event wakes: its controller, or every ReplicaSet that could adopt it.
fn replica_sets_for_pod(rss: &Store<ReplicaSet>, pod: &Pod) -> Vec<ReconcileRequest<ReplicaSet>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    if let Some(owner) = util::controller_of(&pod.metadata) {
        if owner.kind != "ReplicaSet" {
            return vec![];
        }
        return vec![request(ObjectRef::new(&owner.name).within(ns))];
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return vec![];
    }
    rss.state()
        .iter()
        .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns))
        .filter(|rs| {
            util::selector(&rs.spec.selector)
                .is_some_and(|sel| util::matches(&sel, pod.metadata.labels.as_ref()))
        })
        .map(|rs| request(ObjectRef::from_obj(rs.as_ref())))
        .collect()
}

impl Rsc {
    async fn sync(self: Arc<Self>, rs: Arc<ReplicaSet>) -> Result<Action, SyncError> {
        // Counting pods from a store that has not listed them yet would create them all again.
        self.pods.wait_until_ready().await?;
        let key = key_of(&rs.metadata);
        // Our last status write not cached yet: its event brings us back.
        if !self.written.ready(&key, |_| resource_version(&rs.metadata)) {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let result = self.sync_replica_set(&rs, &key).await;
        if result.is_ok() {
            self.backoff.reset(&key);
        }
        result
    }

    /// Upstream `syncReplicaSet`.
    async fn sync_replica_set(&self, rs: &ReplicaSet, key: &str) -> Result<Action, SyncError> {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let expectations = self.expectations.satisfied(key, &ns, &self.pods);
        let spec = &rs.spec;
        let Some(selector) = util::selector(&spec.selector) else {
            tracing::warn!(replicaset = key, "invalid selector");
            return Ok(Action::await_change());
        };
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        // Pods this ReplicaSet controls or could adopt (upstream FilterPodsByOwner).
        let all: Vec<Arc<Pod>> = self.pods.state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && util::controller_of(&p.metadata).is_none_or(|o| o.uid == uid)
        });
        let active: Vec<Arc<Pod>> = all
            .iter()
            .filter(|p| util::pod_active(p))
            .cloned()
            .collect();
        let active = self.claim_pods(rs, &selector, active).await?;
        let terminating: Vec<Arc<Pod>> = all
            .iter()
            .filter(|p| pod_terminating(p))
            .filter(|p| {
                util::controlled_by(&p.metadata, &uid)
                    && util::matches(&selector, p.metadata.labels.as_ref())
            })
            .cloned()
            .collect();

        let mut manage_err = None;
        if expectations.is_ok() && rs.metadata.deletion_timestamp.is_none() {
            manage_err = self.manage_replicas(rs, key, &active).await.err();
        }
        let now = jiff::Timestamp::now();
        let status = calculate_status(rs, &active, &terminating, manage_err.as_ref(), now);
        let updated = self.update_status(rs, status).await?;
        if let Some(e) = manage_err {
            return Err(e);
        }
        let mut next = expectations.err();
        // Pods ready but not yet available for minReadySeconds become available by themselves.
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let st = updated.status.as_ref();
        if min_ready > 0
            && st.and_then(|s| s.ready_replicas) != st.and_then(|s| s.available_replicas)
            && let Some(d) = next_availability_check(&active, min_ready, now)
        {
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        Ok(next.map_or_else(Action::await_change, Action::requeue))
    }

    /// Upstream `claimPods`: adopts matching orphans and releases ours that stopped matching.
    async fn claim_pods(
        &self,
        rs: &ReplicaSet,
        selector: &LabelSelector,
        pods: Vec<Arc<Pod>>,
    ) -> Result<Vec<Arc<Pod>>, SyncError> {
        let Some(owner_ref) = util::controller_ref(rs) else {
            return Ok(vec![]);
        };
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut claimed = Vec::with_capacity(pods.len());
        let mut can_adopt: Option<Result<(), String>> = None;
        let mut first_err: Option<SyncError> = None;
        for pod in pods {
            let decision = claim(&pod.metadata, &rs.metadata, selector);
            match decision {
                Claim::Ours => claimed.push(pod),
                Claim::Ignore => {}
                Claim::Adopt | Claim::Release => {
                    if decision == Claim::Adopt {
                        // Recheck with a quorum read that we are not being deleted (#42639).
                        if can_adopt.is_none() {
                            can_adopt = Some(self.recheck_deletion(rs).await);
                        }
                        if let Some(Err(msg)) = &can_adopt {
                            first_err.get_or_insert_with(|| {
                                SyncError::Other(format!(
                                    "can't adopt Pod {ns}/{}: {msg}",
                                    pod.metadata.name.as_deref().unwrap_or("")
                                ))
                            });
                            continue;
                        }
                    }
                    match apply_claim(&api, pod.as_ref(), decision, &owner_ref).await {
                        Ok(true) => claimed.push(pod),
                        Ok(false) => {}
                        Err(e) => {
                            first_err.get_or_insert(SyncError::Api(e));
                        }
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(claimed),
        }
    }

    async fn recheck_deletion(&self, rs: &ReplicaSet) -> Result<(), String> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let name = rs.metadata.name.as_deref().unwrap_or("");
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        match api.get(name).await {
            Ok(fresh) if fresh.metadata.uid != rs.metadata.uid => Err(format!(
                "original ReplicaSet {ns}/{name} is gone: got uid {}, wanted {}",
                fresh.metadata.uid.as_deref().unwrap_or(""),
                rs.metadata.uid.as_deref().unwrap_or("")
            )),
            Ok(fresh) if fresh.metadata.deletion_timestamp.is_some() => {
                Err(format!("ReplicaSet {ns}/{name} has just been deleted"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(api_message(&e)),
        }
    }

    /// Upstream `manageReplicas`: creates or deletes pods towards `spec.replicas`.
    async fn manage_replicas(
        &self,
        rs: &ReplicaSet,
        key: &str,
        pods: &[Arc<Pod>],
    ) -> Result<(), SyncError> {
        let want = rs.spec.replicas.unwrap_or(1).max(0) as usize;
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let r = rs.object_ref(&());
        if pods.len() < want {
            let diff = (want - pods.len()).min(BURST_REPLICAS);
            tracing::debug!(
                replicaset = key,
                need = want,
                creating = diff,
                "too few replicas"
            );
            let (created, err) = self.create_pods(rs, &ns, diff).await;
            self.expectations
                .expect_creations(key, &ns, created, &self.pods);
            return err.map_or(Ok(()), Err);
        }
        if pods.len() > want {
            let diff = (pods.len() - want).min(BURST_REPLICAS);
            tracing::debug!(
                replicaset = key,
                need = want,
                deleting = diff,
                "too many replicas"
            );
            let related = self.indirectly_related_pods(rs);
            let doomed = pods_to_delete(pods, &related, diff, jiff::Timestamp::now());
            let keys: Vec<String> = doomed.iter().map(|p| key_of(&p.metadata)).collect();
            // Expected before deleting: the watch may report a deletion before the call returns.
            self.expectations.expect_deletions(key, keys);
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let results = join_all(doomed.iter().map(|p| {
                let api = api.clone();
                let name = p.metadata.name.clone().unwrap_or_default();
                async move {
                    (
                        name.clone(),
                        api.delete(&name, &DeleteParams::default()).await,
                    )
                }
            }))
            .await;
            let mut first_err = None;
            for (name, res) in results {
                match res {
                    Ok(_) => {
                        self.events
                            .normal(
                                &r,
                                "SuccessfulDelete",
                                "Delete",
                                format!("Deleted pod: {name}"),
                            )
                            .await;
                    }
                    Err(e) => {
                        // The watch will not report a deletion that did not happen.
                        self.expectations
                            .deletion_observed(key, &format!("{ns}/{name}"));
                        if !is_not_found(&e) {
                            self.events
                                .warning(
                                    &r,
                                    "FailedDelete",
                                    "Delete",
                                    format!("Error deleting: {}", api_message(&e)),
                                )
                                .await;
                            first_err.get_or_insert(SyncError::Api(e));
                        }
                    }
                }
            }
            return first_err.map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// Creates `count` pods in batches that start at one and double while all succeed
    /// (upstream `slowStartBatch`), so a failing create is not repeated hundreds of times.
    /// Returns the names created and the first failure.
    async fn create_pods(
        &self,
        rs: &ReplicaSet,
        ns: &str,
        count: usize,
    ) -> (Vec<String>, Option<SyncError>) {
        let mut created = Vec::new();
        let Some(pod) = pod_from_template(rs) else {
            return (
                created,
                Some(SyncError::Other("unable to create pods, no labels".into())),
            );
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let r = rs.object_ref(&());
        let mut remaining = count;
        let mut batch = remaining.min(1);
        while batch > 0 {
            let pp = PostParams::default();
            let results = join_all((0..batch).map(|_| api.create(&pp, &pod))).await;
            let mut first_err = None;
            for res in results {
                match res {
                    Ok(p) => {
                        let name = p.metadata.name.unwrap_or_default();
                        self.events
                            .normal(
                                &r,
                                "SuccessfulCreate",
                                "Create",
                                format!("Created pod: {name}"),
                            )
                            .await;
                        created.push(name);
                    }
                    // Every create fails until the namespace is gone: nothing to report.
                    Err(e) if namespace_terminating(&e) => {}
                    Err(e) => {
                        self.events
                            .warning(
                                &r,
                                "FailedCreate",
                                "Create",
                                format!("Error creating: {}", api_message(&e)),
                            )
                            .await;
                        first_err.get_or_insert(SyncError::Api(e));
                    }
                }
            }
            if first_err.is_some() {
                return (created, first_err);
            }
            remaining -= batch;
            batch = (2 * batch).min(remaining);
        }
        (created, None)
    }

    /// Pods of every ReplicaSet with the same controller as `rs` (its Deployment's), so that
    /// scale-down prefers nodes where the Deployment doubled up.
    fn indirectly_related_pods(&self, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
        let Some(owner) = util::controller_of(&rs.metadata) else {
            return vec![];
        };
        let ns = rs.metadata.namespace.as_deref();
        let mut seen = HashSet::new();
        let mut related = Vec::new();
        for other in self.rss.state() {
            if other.metadata.namespace.as_deref() != ns
                || !util::controlled_by(&other.metadata, &owner.uid)
            {
                continue;
            }
            let Some(sel) = util::selector(&other.spec.selector) else {
                continue;
            };
            for p in self.pods.state_filter(|p| {
                p.metadata.namespace.as_deref() == ns
                    && util::matches(&sel, p.metadata.labels.as_ref())
            }) {
                if seen.insert(p.metadata.uid.clone()) {
                    related.push(p);
                }
            }
        }
        related
    }

    /// Upstream `updateReplicaSetStatus`: writes the status unless nothing changed, retrying once
    /// on a fresh copy.
    async fn update_status(
        &self,
        rs: &ReplicaSet,
        mut status: ReplicaSetStatus,
    ) -> Result<ReplicaSet, SyncError> {
        let generation = rs.metadata.generation.unwrap_or(0);
        let cur = rs.status.clone().unwrap_or_default();
        if same_counts(&cur, &status) && cur.observed_generation == Some(generation) {
            return Ok(rs.clone());
        }
        status.observed_generation = Some(generation);
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let name = rs.metadata.name.as_deref().unwrap_or("");
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let mut obj = rs.clone();
        let mut retried = false;
        loop {
            obj.status = Some(status.clone());
            match api.replace_status(name, &PostParams::default(), &obj).await {
                Ok(updated) => {
                    let key = key_of(&updated.metadata);
                    self.written
                        .wrote(&key, key.clone(), &updated.metadata, false);
                    return Ok(updated);
                }
                Err(e) if retried => return Err(e.into()),
                Err(_) => {
                    retried = true;
                    obj = api.get(name).await?;
                }
            }
        }
    }
}

fn same_counts(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    let conditions = |s: &ReplicaSetStatus| s.conditions.clone().filter(|c| !c.is_empty());
    a.replicas == b.replicas
        && a.fully_labeled_replicas.unwrap_or(0) == b.fully_labeled_replicas.unwrap_or(0)
        && a.ready_replicas.unwrap_or(0) == b.ready_replicas.unwrap_or(0)
        && a.available_replicas.unwrap_or(0) == b.available_replicas.unwrap_or(0)
        && a.terminating_replicas == b.terminating_replicas
        && conditions(a) == conditions(b)
}

/// Deleted (has a deletion timestamp) but still running.
fn pod_terminating(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    p.metadata.deletion_timestamp.is_some() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// The pod a ReplicaSet creates (upstream `GetPodFromTemplate`); None without labels, which
/// would leave the pod unselectable.
fn pod_from_template(rs: &ReplicaSet) -> Option<Pod> {
    let template = rs.spec.template.as_ref()?;
    let tmeta = template.metadata.clone().unwrap_or_default();
    if tmeta.labels.as_ref().is_none_or(BTreeMap::is_empty) {
        return None;
    }
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.metadata.name.as_deref().unwrap_or(""))),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![util::controller_ref(rs)?]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Status

fn now_time(now: jiff::Timestamp) -> Time {
    Time(now)
}

/// Upstream `calculateStatus`.
fn calculate_status(
    rs: &ReplicaSet,
    active: &[Arc<Pod>],
    terminating: &[Arc<Pod>],
    manage_err: Option<&SyncError>,
    now: jiff::Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let spec = &rs.spec;
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let (mut fully, mut ready, mut available) = (0, 0, 0);
    for p in active {
        let labels = p.metadata.labels.as_ref();
        if template_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            fully += 1;
        }
        if util::pod_ready(p) {
            ready += 1;
            if util::pod_available(p, min_ready, now) {
                available += 1;
            }
        }
    }
    let has_failure = status.conditions.as_ref().is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_.as_deref() == Some("ReplicaFailure"))
    });
    match manage_err {
        Some(e) if !has_failure => {
            let want = spec.replicas.unwrap_or(1) as usize;
            let reason = match active.len().cmp(&want) {
                Ordering::Less => "FailedCreate",
                Ordering::Greater => "FailedDelete",
                Ordering::Equal => "",
            };
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(ReplicaSetCondition {
                    type_: Some("ReplicaFailure".into()),
                    status: Some("True".into()),
                    reason: Some(reason.into()),
                    message: Some(e.to_string()),
                    last_transition_time: Some(now_time(now)),
                });
        }
        None if has_failure => {
            if let Some(cs) = status.conditions.as_mut() {
                cs.retain(|c| c.type_.as_deref() != Some("ReplicaFailure"));
            }
        }
        _ => {}
    }
    status.replicas = active.len() as i32;
    status.fully_labeled_replicas = Some(fully);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.terminating_replicas = Some(terminating.len() as i32);
    status
}

/// How long until the first ready pod becomes available (upstream
/// `FindMinNextPodAvailabilityCheck`), with a little slack past the instant.
fn next_availability_check(
    pods: &[Arc<Pod>],
    min_ready_seconds: i32,
    now: jiff::Timestamp,
) -> Option<Duration> {
    pods.iter()
        .filter(|p| util::pod_ready(p) && !util::pod_available(p, min_ready_seconds, now))
        .filter_map(|p| util::ready_since(p))
        .map(|t| {
            let at = t + jiff::SignedDuration::from_secs(min_ready_seconds as i64);
            let left = at.duration_since(now);
            Duration::try_from(left).unwrap_or_default() + Duration::from_millis(100)
        })
        .min()
}

// ---------------------------------------------------------------------------------------------
// Which pods go first (upstream ActivePodsWithRanks)

/// The `n` pods to delete: `pods` ranked as upstream ranks them, each ranked by how many of the
/// `related` pods share its node.
fn pods_to_delete(
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
    n: usize,
    now: jiff::Timestamp,
) -> Vec<Arc<Pod>> {
    if n >= pods.len() {
        return pods.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| util::pod_active(p)) {
        *on_node.entry(node_name(p)).or_default() += 1;
    }
    let mut ranked: Vec<(usize, Arc<Pod>)> = pods
        .iter()
        .map(|p| (on_node.get(node_name(p)).copied().unwrap_or(0), p.clone()))
        .collect();
    // A key per pod, not a pairwise comparator: upstream's `Less` is not transitive (log-scale
    // ties broken by uid only when the times differ), which Rust's sort rejects with a panic.
    ranked.sort_by_cached_key(|(rank, p)| deletion_key(p, *rank, now));
    ranked.into_iter().take(n).map(|(_, p)| p).collect()
}

fn node_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn phase_ordinal(p: &Pod) -> u8 {
    match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
}

/// An age on a log2 scale, so pods of about the same age count as equal (younger: smaller).
fn log_age(t: jiff::Timestamp, now: jiff::Timestamp) -> i64 {
    let d = now.duration_since(t).as_nanos();
    if d > 0 { (d as f64).log2() as i64 } else { -1 }
}

/// Upstream `ActivePodsWithRanks.Less` as a sort key (smaller: deleted first): unassigned
/// before assigned; Pending before Unknown before Running; not ready before ready; lower
/// deletion cost; more related pods on the node; ready for less time (log scale); more
/// restarts; newer (log scale); then uid. Equal log-scale buckets fall through to the next
/// criterion, so the order is total.
fn deletion_key(
    p: &Pod,
    rank: usize,
    now: jiff::Timestamp,
) -> (
    bool,
    i32,
    bool,
    i32,
    Reverse<usize>,
    i64,
    Reverse<i32>,
    i64,
    String,
) {
    // Unknown times count as the earliest, so their pods go first.
    let bucket = |t: Option<jiff::Timestamp>| match t {
        Some(t) => log_age(t, now),
        None => -2,
    };
    let ready = util::pod_ready(p);
    let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (
        !node_name(p).is_empty(),
        phase_ordinal(p) as i32,
        ready,
        deletion_cost(p),
        Reverse(rank),
        if ready {
            bucket(util::ready_since(p))
        } else {
            0
        },
        Reverse(max_restarts(p)),
        bucket(created),
        p.metadata.uid.clone().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};

    fn ts(secs_ago: i64, now: jiff::Timestamp) -> Time {
        Time(now - jiff::SignedDuration::from_secs(secs_ago))
    }

    /// One instant for every test pod, so equal ages are equal.
    fn now() -> jiff::Timestamp {
        static NOW: std::sync::OnceLock<jiff::Timestamp> = std::sync::OnceLock::new();
        *NOW.get_or_init(jiff::Timestamp::now)
    }

    fn pod(
        name: &str,
        node: &str,
        phase: &str,
        ready_ago: Option<i64>,
        created_ago: i64,
    ) -> Arc<Pod> {
        let now = now();
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(ts(created_ago, now)),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready_ago.is_some() { "True" } else { "False" }.into(),
                    last_transition_time: ready_ago.map(|s| ts(s, now)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn scale_down_prefers_unscheduled_pending_unready_then_doubled_up_and_young() {
        let now = now();
        let pods = vec![
            pod("running-old", "n1", "Running", Some(3600), 7200),
            pod("unscheduled", "", "Pending", None, 10),
            pod("pending", "n2", "Pending", None, 10),
            pod("unready", "n3", "Running", None, 10),
            pod("running-young", "n2", "Running", Some(5), 10),
        ];
        let order = pods_to_delete(&pods, &pods, 4, now);
        assert_eq!(
            names(&order),
            vec!["unscheduled", "pending", "unready", "running-young"]
        );
        // Doubled up on a node goes before a lone pod of the same age.
        let mut lone = (*pod("lone", "n1", "Running", Some(60), 60)).clone();
        lone.metadata.uid = Some("a".into());
        let mut twin = (*pod("twin", "n2", "Running", Some(60), 60)).clone();
        twin.metadata.uid = Some("z".into());
        let twin2 = pod("twin2", "n2", "Running", Some(600), 6000);
        let pods = vec![Arc::new(lone), Arc::new(twin), twin2];
        assert_eq!(names(&pods_to_delete(&pods, &pods, 1, now)), vec!["twin"]);
        // Deletion cost beats everything after readiness.
        let mut cheap = (*pod("cheap", "n1", "Running", Some(7200), 7200)).clone();
        cheap
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_DELETION_COST.into(), "-10".into());
        let pods = vec![pod("young", "n2", "Running", Some(1), 1), Arc::new(cheap)];
        assert_eq!(names(&pods_to_delete(&pods, &pods, 1, now)), vec!["cheap"]);
        // Restarts count before age.
        let mut crashy = (*pod("crashy", "n1", "Running", Some(7200), 7200)).clone();
        if let Some(s) = crashy.status.as_mut() {
            s.container_statuses = Some(vec![ContainerStatus {
                restart_count: 4,
                ..Default::default()
            }]);
        }
        let pods = vec![
            pod("calm", "n2", "Running", Some(7200), 7200),
            Arc::new(crashy),
        ];
        assert_eq!(names(&pods_to_delete(&pods, &pods, 1, now)), vec!["crashy"]);
    }

    #[test]
    fn scale_down_of_many_pods_ready_within_seconds_orders_them_totally() {
        // 1,000 pods made ready and created within a few seconds of each other, many in the
        // same second: a non-transitive comparator made the sort panic here.
        let now = now();
        let pods: Vec<Arc<Pod>> = (0..1000)
            .map(|i| {
                pod(
                    &format!("p{i:04}"),
                    &format!("n{}", i % 7),
                    "Running",
                    Some(100 + (i * 7919 % 13) as i64),
                    200 + (i * 104729 % 11) as i64,
                )
            })
            .collect();
        let order = pods_to_delete(&pods, &pods, 500, now);
        assert_eq!(order.len(), 500);
        // Deterministic: the same input gives the same choice.
        assert_eq!(
            names(&order),
            names(&pods_to_delete(&pods, &pods, 500, now))
        );
    }

    #[test]
    fn claims_follow_the_controller_ref_manager() {
        let owner = ObjectMeta {
            name: Some("rs".into()),
            namespace: Some("ns".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let sel = LabelSelector::parse("app=web").expect("selector");
        let labels = |v: &str| Some(BTreeMap::from([("app".to_string(), v.to_string())]));
        let owned_by = |uid: &str| {
            Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "x".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: None,
            }])
        };
        let obj = |l: &str, owners| ObjectMeta {
            namespace: Some("ns".into()),
            labels: labels(l),
            owner_references: owners,
            ..Default::default()
        };
        assert_eq!(claim(&obj("web", None), &owner, &sel), Claim::Adopt);
        assert_eq!(claim(&obj("db", None), &owner, &sel), Claim::Ignore);
        assert_eq!(
            claim(&obj("web", owned_by("u1")), &owner, &sel),
            Claim::Ours
        );
        assert_eq!(
            claim(&obj("db", owned_by("u1")), &owner, &sel),
            Claim::Release
        );
        assert_eq!(
            claim(&obj("web", owned_by("u2")), &owner, &sel),
            Claim::Ignore
        );
        let mut elsewhere = obj("web", None);
        elsewhere.namespace = Some("other".into());
        assert_eq!(claim(&elsewhere, &owner, &sel), Claim::Ignore);
        let mut deleting = owner.clone();
        deleting.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        assert_eq!(claim(&obj("web", None), &deleting, &sel), Claim::Ignore);
        assert_eq!(
            claim(&obj("db", owned_by("u1")), &deleting, &sel),
            Claim::Ignore
        );
    }

    #[test]
    fn status_counts_labels_readiness_and_availability() {
        let now = now();
        let mut rs = ReplicaSet {
            spec: k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(3),
                min_ready_seconds: Some(30),
                template: Some(k8s_openapi::api::core::v1::PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([
                            ("app".to_string(), "web".to_string()),
                            ("tier".to_string(), "fe".to_string()),
                        ])),
                        ..Default::default()
                    }),
                    spec: None,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut full = (*pod("a", "n1", "Running", Some(60), 60)).clone();
        full.metadata.labels = Some(BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
            ("extra".to_string(), "x".to_string()),
        ]));
        let fresh = pod("b", "n1", "Running", Some(5), 60);
        let unready = pod("c", "n1", "Running", None, 60);
        let pods = vec![Arc::new(full), fresh, unready];
        let err = SyncError::Other("quota exceeded".into());
        let s = calculate_status(&rs, &pods[..2], &pods[2..], Some(&err), now);
        assert_eq!(
            (
                s.replicas,
                s.fully_labeled_replicas,
                s.ready_replicas,
                s.available_replicas,
                s.terminating_replicas
            ),
            (2, Some(1), Some(2), Some(1), Some(1))
        );
        let cond = &s.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (
                cond.type_.as_deref(),
                cond.reason.as_deref(),
                cond.message.as_deref()
            ),
            (
                Some("ReplicaFailure"),
                Some("FailedCreate"),
                Some("quota exceeded")
            )
        );
        rs.status = Some(s);
        let s = calculate_status(&rs, &pods, &[], None, now);
        assert!(s.conditions.as_ref().is_none_or(Vec::is_empty));
        let next = next_availability_check(&pods, 30, now).expect("a pod becomes available");
        assert!(
            next > Duration::from_secs(24) && next <= Duration::from_secs(26),
            "{next:?}"
        );
    }

    #[test]
    fn patches_adopt_and_release_by_uid() {
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "u1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        assert_eq!(
            adopt_patch(&owner, "p1"),
            json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1", "controller": true, "blockOwnerDeletion": true}], "uid": "p1"}})
        );
        assert_eq!(
            release_patch("u1", "p1"),
            json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u1"}], "uid": "p1"}})
        );
    }
}
