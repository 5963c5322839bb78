//! The garbage collector (upstream `pkg/controller/garbagecollector`).
//!
//! Metadata-only watches on every deletable resource the API serves feed a graph of
//! `ownerReferences` (one task owns the changes, workers read it). Workers then:
//! - delete objects all of whose owners are gone (background deletion), with the policy their
//!   own finalizers ask for;
//! - for an owner deleted in the foreground (`foregroundDeletion` finalizer), delete its
//!   dependents and remove the finalizer once no dependent with `blockOwnerDeletion` is left;
//! - for an owner deleted with `orphan`, remove the owner reference from its dependents, then
//!   the finalizer.
//!
//! Owners the graph has not seen are "virtual" nodes, verified against the API before anything
//! is decided about them.

use super::discovery::{self, Discovered, Served};
use super::{Context, ControllerError};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "garbagecollector";
const IDENTITY: &str = "generic-garbage-collector";
const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";
const DELETE_WORKERS: usize = 10;
const ORPHAN_WORKERS: usize = 2;
const ABSENT_CACHE_SIZE: usize = 500;
/// How often discovery is checked for new or removed resources.
const RESYNC: Duration = Duration::from_secs(30);
/// Workers start once every monitor has listed, or after this long regardless.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run_collector(ctx, stop))
}

/// Resources the collector leaves alone (upstream `DefaultIgnoredResources`).
fn ignored(r: &Served) -> bool {
    r.plural == "events" && (r.group.is_empty() || r.group == "events.k8s.io")
}

fn monitorable(d: &Discovered) -> BTreeSet<Served> {
    d.resources
        .iter()
        .filter(|r| r.supports(&["delete", "list", "watch"]) && !ignored(r))
        .cloned()
        .collect()
}

async fn run_collector(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for(IDENTITY)?;
    let found = discovery::discover(&client).await?;
    let monitored = monitorable(&found);
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        client: client.clone(),
        graph: Mutex::new(Graph::default()),
        resources: found,
        events: tx.clone(),
        delete_queue: Arc::new(WorkQueue::default()),
        orphan_queue: Arc::new(WorkQueue::default()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for r in &monitored {
        tasks.spawn(monitor(client.clone(), r.clone(), tx.clone()));
    }
    drop(tx);
    let (synced_tx, synced_rx) = watch::channel(false);
    tasks.spawn(graph_builder(
        shared.clone(),
        rx,
        monitored.len(),
        synced_tx,
    ));
    for _ in 0..DELETE_WORKERS {
        tasks.spawn(delete_worker(shared.clone(), synced_rx.clone()));
    }
    for _ in 0..ORPHAN_WORKERS {
        tasks.spawn(orphan_worker(shared.clone(), synced_rx.clone()));
    }
    tracing::info!(resources = monitored.len(), "garbage collector started");
    let result = loop {
        tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            _ = tokio::time::sleep(RESYNC) => {
                // New or removed resources need new monitors: start over.
                if let Ok(now) = discovery::discover(&client).await
                    && monitorable(&now) != monitored
                {
                    break Err(ControllerError::Invalid(
                        "the served resources changed; restarting the garbage collector".into(),
                    ));
                }
            }
        }
    };
    tasks.abort_all();
    result
}

/// An object's coordinates: an owner reference's plus the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Identity {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    namespace: String,
}

impl Identity {
    fn of_owner(r: &OwnerReference, namespace: &str) -> Identity {
        Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            namespace: namespace.to_string(),
        }
    }

    fn coordinates_match(&self, r: &OwnerReference) -> bool {
        self.uid == r.uid
            && self.name == r.name
            && self.kind == r.kind
            && self.api_version == r.api_version
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// What the graph keeps of an object's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
struct Meta {
    owners: Vec<OwnerReference>,
    being_deleted: bool,
    finalizers: Vec<String>,
}

impl Meta {
    fn of(m: &ObjectMeta) -> Meta {
        Meta {
            owners: m.owner_references.clone().unwrap_or_default(),
            being_deleted: m.deletion_timestamp.is_some(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
        }
    }

    fn has(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    fn deleting_with(&self, finalizer: &str) -> bool {
        self.being_deleted && self.has(finalizer)
    }
}

#[derive(Debug, Clone)]
struct Node {
    identity: Identity,
    owners: Vec<OwnerReference>,
    /// uids of the objects that name this one as an owner.
    dependents: BTreeSet<String>,
    being_deleted: bool,
    /// Deleted in the foreground: waits for its blocking dependents.
    deleting_dependents: bool,
    /// Known only from a dependent's owner reference, not (yet) seen by a watch.
    virtual_: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Update,
    Delete,
}

#[derive(Debug)]
enum GraphEvent {
    Observed {
        change: Change,
        identity: Identity,
        meta: Meta,
        old: Option<Meta>,
    },
    /// The API says this owner does not exist (or has another uid).
    VirtualDelete(Identity),
    /// A monitor finished its first list.
    Synced,
}

/// What a graph change asks the workers to look at.
#[derive(Debug, Default, PartialEq)]
struct Work {
    delete: Vec<String>,
    delete_later: Vec<String>,
    orphan: Vec<String>,
}

/// Owners verified absent, so their other dependents need no API lookup (an LRU upstream).
#[derive(Default)]
struct Absent {
    set: HashSet<Identity>,
    order: VecDeque<Identity>,
}

impl Absent {
    fn add(&mut self, id: Identity) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > ABSENT_CACHE_SIZE {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn has(&self, id: &Identity) -> bool {
        self.set.contains(id)
    }
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    absent: Absent,
}

impl Graph {
    fn process(&mut self, ev: GraphEvent, work: &mut Work) {
        match ev {
            GraphEvent::Observed {
                change,
                identity,
                meta,
                old,
            } => self.observed(change, identity, meta, old, work),
            GraphEvent::VirtualDelete(identity) => self.virtual_delete(identity, work),
            GraphEvent::Synced => {}
        }
    }

    fn observed(
        &mut self,
        change: Change,
        identity: Identity,
        meta: Meta,
        old: Option<Meta>,
        work: &mut Work,
    ) {
        let uid = identity.uid.clone();
        // A virtual node is seen for real: its coordinates are now known for sure.
        if let Some(existing) = self.nodes.get(&uid)
            && existing.virtual_
        {
            if existing.identity != identity {
                let (_, suspicious) = self.partition_dependents(&existing.dependents, &identity);
                for dep in suspicious {
                    if let Some(d) = self.nodes.get(&dep)
                        && !identity.namespace.is_empty()
                        && d.identity.namespace != identity.namespace
                    {
                        tracing::info!(item = %d.identity, owner = %identity, "item references an owner but does not match namespaces");
                    }
                    work.delete.push(dep);
                }
            }
            if let Some(n) = self.nodes.get_mut(&uid) {
                n.identity = identity.clone();
                n.virtual_ = false;
            }
        }
        match change {
            Change::Add | Change::Update => {
                if !self.nodes.contains_key(&uid) {
                    let node = Node {
                        identity: identity.clone(),
                        owners: meta.owners.clone(),
                        dependents: BTreeSet::new(),
                        being_deleted: meta.being_deleted,
                        deleting_dependents: meta.deleting_with(FOREGROUND),
                        virtual_: false,
                    };
                    self.nodes.insert(uid.clone(), node);
                    self.add_dependent_to_owners(&uid, &identity.namespace, &meta.owners, work);
                } else {
                    let current = self
                        .nodes
                        .get(&uid)
                        .map(|n| n.owners.clone())
                        .unwrap_or_default();
                    let (added, removed, changed) = owner_diff(&current, &meta.owners);
                    if !added.is_empty() || !removed.is_empty() || !changed.is_empty() {
                        self.unblocked_owners(&removed, &changed, work);
                        if let Some(n) = self.nodes.get_mut(&uid) {
                            n.owners = meta.owners.clone();
                        }
                        self.add_dependent_to_owners(&uid, &identity.namespace, &added, work);
                        self.remove_dependent_from_owners(&uid, &removed);
                    }
                    if meta.being_deleted
                        && let Some(n) = self.nodes.get_mut(&uid)
                    {
                        n.being_deleted = true;
                    }
                }
                self.transitions(&uid, old.as_ref(), &meta, work);
            }
            Change::Delete => self.remove_and_notify(&uid, &identity, work),
        }
    }

    fn virtual_delete(&mut self, deleted: Identity, work: &mut Work) {
        let uid = deleted.uid.clone();
        let Some(existing) = self.nodes.get(&uid).cloned() else {
            return;
        };
        let mut remove = true;
        if existing.virtual_ {
            let (matching, nonmatching) = self.partition_dependents(&existing.dependents, &deleted);
            if !nonmatching.is_empty() {
                // Some dependents name this uid with other coordinates: keep the node.
                remove = false;
                if !matching.is_empty() {
                    self.absent.add(deleted.clone());
                    work.delete.extend(matching);
                }
                if existing.identity == deleted
                    && let Some(alt) = self.alternate_identity(&nonmatching, &deleted)
                    && let Some(n) = self.nodes.get_mut(&uid)
                {
                    n.identity = alt;
                    work.delete_later.push(uid.clone());
                }
            }
        } else if existing.identity != deleted {
            // Never remove an observed node on the word of a lookup by other coordinates.
            remove = false;
            let (matching, _) = self.partition_dependents(&existing.dependents, &deleted);
            if !matching.is_empty() {
                self.absent.add(deleted.clone());
                work.delete.extend(matching);
            }
        }
        if remove {
            self.remove_and_notify(&uid, &deleted, work);
        }
    }

    /// Removes a node; its dependents may now be garbage, and owners waiting in the foreground
    /// may now be done.
    fn remove_and_notify(&mut self, uid: &str, identity: &Identity, work: &mut Work) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        self.remove_dependent_from_owners(uid, &node.owners);
        if !node.dependents.is_empty() {
            self.absent.add(identity.clone());
        }
        work.delete.extend(node.dependents.iter().cloned());
        for owner in &node.owners {
            if self
                .nodes
                .get(&owner.uid)
                .is_some_and(|o| o.deleting_dependents)
            {
                work.delete.push(owner.uid.clone());
            }
        }
    }

    /// Starting to delete with `orphan` or `foregroundDeletion` is the collector's cue.
    fn transitions(&mut self, uid: &str, old: Option<&Meta>, new: &Meta, work: &mut Work) {
        if new.deleting_with(ORPHAN) && !old.is_some_and(|o| o.deleting_with(ORPHAN)) {
            work.orphan.push(uid.to_string());
            return;
        }
        if new.deleting_with(FOREGROUND) && !old.is_some_and(|o| o.deleting_with(FOREGROUND)) {
            if let Some(n) = self.nodes.get_mut(uid) {
                n.deleting_dependents = true;
                work.delete.extend(n.dependents.iter().cloned());
            }
            work.delete.push(uid.to_string());
        }
    }

    fn add_dependent_to_owners(
        &mut self,
        dep: &str,
        namespace: &str,
        owners: &[OwnerReference],
        work: &mut Work,
    ) {
        for o in owners {
            match self.nodes.get_mut(&o.uid) {
                Some(n) => {
                    n.dependents.insert(dep.to_string());
                }
                None => {
                    // An owner not seen yet: a virtual node, to be verified by a worker.
                    self.nodes.insert(
                        o.uid.clone(),
                        Node {
                            identity: Identity::of_owner(o, namespace),
                            owners: Vec::new(),
                            dependents: BTreeSet::from([dep.to_string()]),
                            being_deleted: false,
                            deleting_dependents: false,
                            virtual_: true,
                        },
                    );
                    work.delete.push(o.uid.clone());
                }
            }
        }
    }

    fn remove_dependent_from_owners(&mut self, dep: &str, owners: &[OwnerReference]) {
        for o in owners {
            if let Some(n) = self.nodes.get_mut(&o.uid) {
                n.dependents.remove(dep);
            }
        }
    }

    /// Owners that a dependent stopped blocking may be able to finish a foreground deletion.
    fn unblocked_owners(
        &self,
        removed: &[OwnerReference],
        changed: &[(OwnerReference, OwnerReference)],
        work: &mut Work,
    ) {
        for r in removed {
            if r.block_owner_deletion == Some(true) && self.nodes.contains_key(&r.uid) {
                work.delete.push(r.uid.clone());
            }
        }
        for (old, new) in changed {
            if old.block_owner_deletion == Some(true)
                && new.block_owner_deletion != Some(true)
                && self.nodes.contains_key(&new.uid)
            {
                work.delete.push(new.uid.clone());
            }
        }
    }

    /// Dependents whose reference to `owner` matches its coordinates, and those whose does not.
    fn partition_dependents(
        &self,
        deps: &BTreeSet<String>,
        owner: &Identity,
    ) -> (Vec<String>, Vec<String>) {
        let (mut matching, mut nonmatching) = (Vec::new(), Vec::new());
        for uid in deps {
            let Some(dep) = self.nodes.get(uid) else {
                continue;
            };
            let (mut found, mut mismatch) = (false, false);
            if !owner.namespace.is_empty() && owner.namespace != dep.identity.namespace {
                mismatch = true;
            } else {
                for r in dep.owners.iter().filter(|r| r.uid == owner.uid) {
                    if owner.coordinates_match(r) {
                        found = true;
                    } else {
                        mismatch = true;
                    }
                }
            }
            if found {
                matching.push(uid.clone());
            }
            if mismatch {
                nonmatching.push(uid.clone());
            }
        }
        (matching, nonmatching)
    }

    /// Another identity dependents give a uid verified absent under `absent` (the first in
    /// sort order, so every collector picks the same).
    fn alternate_identity(&self, deps: &[String], absent: &Identity) -> Option<Identity> {
        let cluster_scoped = absent.namespace.is_empty();
        let mut best: Option<Identity> = None;
        for uid in deps {
            let Some(dep) = self.nodes.get(uid) else {
                continue;
            };
            for r in dep.owners.iter().filter(|r| r.uid == absent.uid) {
                if absent.coordinates_match(r)
                    && (cluster_scoped || absent.namespace == dep.identity.namespace)
                {
                    continue;
                }
                let mut id = Identity::of_owner(r, &dep.identity.namespace);
                if cluster_scoped && id.api_version == absent.api_version && id.kind == absent.kind
                {
                    id.namespace.clear();
                }
                if &id == absent {
                    continue;
                }
                if best.as_ref().is_none_or(|b| id.to_string() < b.to_string()) {
                    best = Some(id);
                }
            }
        }
        best
    }

    /// Dependents that block the deletion of `uid` (`blockOwnerDeletion: true`).
    fn blocking_dependents(&self, uid: &str) -> Vec<Node> {
        let Some(n) = self.nodes.get(uid) else {
            return Vec::new();
        };
        n.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d))
            .filter(|d| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            })
            .cloned()
            .collect()
    }
}

/// (added, removed, changed) owner references, by uid.
fn owner_diff(
    old: &[OwnerReference],
    new: &[OwnerReference],
) -> (
    Vec<OwnerReference>,
    Vec<OwnerReference>,
    Vec<(OwnerReference, OwnerReference)>,
) {
    let added = new
        .iter()
        .filter(|n| !old.iter().any(|o| o.uid == n.uid))
        .cloned()
        .collect();
    let removed = old
        .iter()
        .filter(|o| !new.iter().any(|n| n.uid == o.uid))
        .cloned()
        .collect();
    let changed = old
        .iter()
        .filter_map(|o| {
            new.iter()
                .find(|n| n.uid == o.uid && *n != o)
                .map(|n| (o.clone(), n.clone()))
        })
        .collect();
    (added, removed, changed)
}

/// A work queue as client-go's: a key is queued at most once, never handed to two workers at
/// a time, and failures are retried with exponential backoff.
#[derive(Default)]
struct WorkQueue {
    state: Mutex<QueueState>,
    notify: Notify,
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
}

impl WorkQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, key: &str) {
        let mut s = self.lock();
        if !s.dirty.insert(key.to_string()) {
            return;
        }
        if !s.processing.contains(key) {
            s.queue.push_back(key.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    fn add_rate_limited(self: &Arc<Self>, key: &str) {
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        // 5 ms doubling, up to a minute.
        let delay = Duration::from_millis(5u64.saturating_mul(1 << n.min(14)).min(60_000));
        let q = self.clone();
        let key = key.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(&key);
        });
    }

    fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    async fn get(&self) -> String {
        loop {
            {
                let mut s = self.lock();
                if let Some(k) = s.queue.pop_front() {
                    s.dirty.remove(&k);
                    s.processing.insert(k.clone());
                    return k;
                }
            }
            self.notify.notified().await;
        }
    }

    fn done(&self, key: &str) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().queue.len()
    }
}

struct Shared {
    client: kube::Client,
    graph: Mutex<Graph>,
    resources: Discovered,
    events: mpsc::UnboundedSender<GraphEvent>,
    delete_queue: Arc<WorkQueue>,
    orphan_queue: Arc<WorkQueue>,
}

#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("unable to map {0}/{1} to a served resource")]
    Mapping(String, String),
    #[error("cluster-scoped {0} refers to a namespaced owner")]
    NamespacedOwnerOfClusterScoped(String),
    #[error("a virtual delete event was queued")]
    VirtualDeleteQueued,
    #[error("{0}")]
    Other(String),
}

enum Outcome {
    Forget,
    Requeue,
}

impl Shared {
    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue(&self, work: Work) {
        for uid in work.delete {
            self.delete_queue.add(&uid);
        }
        for uid in work.delete_later {
            self.delete_queue.add_rate_limited(&uid);
        }
        for uid in work.orphan {
            self.orphan_queue.add(&uid);
        }
    }

    fn resource(&self, api_version: &str, kind: &str) -> Result<&Served, GcError> {
        self.resources
            .by_kind(api_version, kind)
            .ok_or_else(|| GcError::Mapping(api_version.to_string(), kind.to_string()))
    }

    fn apis(
        &self,
        id: &Identity,
    ) -> Result<(Api<PartialObjectMeta<DynamicObject>>, Api<DynamicObject>), GcError> {
        let r = self.resource(&id.api_version, &id.kind)?;
        let ar = r.api_resource();
        if r.namespaced {
            if id.namespace.is_empty() {
                return Err(GcError::NamespacedOwnerOfClusterScoped(id.to_string()));
            }
            Ok((
                Api::namespaced_with(self.client.clone(), &id.namespace, &ar),
                Api::namespaced_with(self.client.clone(), &id.namespace, &ar),
            ))
        } else {
            Ok((
                Api::all_with(self.client.clone(), &ar),
                Api::all_with(self.client.clone(), &ar),
            ))
        }
    }

    async fn get_object(&self, id: &Identity) -> Result<Option<ObjectMeta>, GcError> {
        let (meta, _) = self.apis(id)?;
        Ok(meta.get_opt(&id.name).await?.map(|p| p.metadata))
    }

    async fn delete_object(&self, id: &Identity, policy: PropagationPolicy) -> Result<(), GcError> {
        let (_, full) = self.apis(id)?;
        tracing::info!(item = %id, ?policy, "garbage collector deleting");
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(id.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match full.delete(&id.name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the references to `owner_uids` from the object (a strategic merge patch with the
    /// object's uid as precondition, as upstream; a JSON merge patch where SMP is not served).
    async fn remove_owner_refs(&self, id: &Identity, owner_uids: &[String]) -> Result<(), GcError> {
        let (meta, full) = self.apis(id)?;
        let deletes: Vec<serde_json::Value> = owner_uids
            .iter()
            .map(|u| json!({"$patch": "delete", "uid": u}))
            .collect();
        let smp = json!({"metadata": {"ownerReferences": deletes, "uid": id.uid}});
        match full
            .patch(&id.name, &PatchParams::default(), &Patch::Strategic(&smp))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 415 => {}
            Err(e) => return Err(e.into()),
        }
        for _ in 0..5 {
            let Some(current) = meta.get_opt(&id.name).await? else {
                return Ok(());
            };
            let kept: Vec<&OwnerReference> = current
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|o| !owner_uids.contains(&o.uid))
                .collect();
            let refs = if kept.is_empty() {
                serde_json::Value::Null
            } else {
                json!(kept)
            };
            let patch = json!({"metadata": {"ownerReferences": refs,
                "resourceVersion": current.metadata.resource_version}});
            match full
                .patch(&id.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GcError::Other(format!(
            "{id}: too many conflicts removing owner references"
        )))
    }

    async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> Result<(), GcError> {
        let (meta, full) = self.apis(id)?;
        for _ in 0..5 {
            let Some(current) = meta.get_opt(&id.name).await? else {
                return Ok(());
            };
            if current.metadata.uid.as_deref() != Some(id.uid.as_str()) {
                return Ok(());
            }
            let finalizers = current.metadata.finalizers.unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                return Ok(());
            }
            let rest: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            let value = if rest.is_empty() {
                serde_json::Value::Null
            } else {
                json!(rest)
            };
            let patch = json!({"metadata": {"finalizers": value,
                "resourceVersion": current.metadata.resource_version}});
            match full
                .patch(&id.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(item = %id, finalizer, "removed finalizer");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GcError::Other(format!(
            "too many conflicts removing finalizer {finalizer} from {id}; will retry"
        )))
    }

    async fn attempt_to_delete(&self, uid: &str) -> Outcome {
        let Some(node) = self.graph().nodes.get(uid).cloned() else {
            return Outcome::Forget;
        };
        match self.attempt_to_delete_item(&node).await {
            Err(GcError::VirtualDeleteQueued) => Outcome::Forget,
            Err(e @ GcError::NamespacedOwnerOfClusterScoped(_)) => {
                tracing::info!(item = %node.identity, error = %e, "not collecting");
                Outcome::Forget
            }
            Err(e) => {
                tracing::debug!(item = %node.identity, error = %e, "error syncing item");
                Outcome::Requeue
            }
            // A virtual node that exists: look again until a watch has seen it.
            Ok(()) if self.graph().nodes.get(uid).is_some_and(|n| n.virtual_) => Outcome::Requeue,
            Ok(()) => Outcome::Forget,
        }
    }

    async fn attempt_to_delete_item(&self, item: &Node) -> Result<(), GcError> {
        // Being deleted is a one-way trip; its dependents are handled when it is gone.
        if item.being_deleted && !item.deleting_dependents {
            return Ok(());
        }
        let latest = match self.get_object(&item.identity).await? {
            Some(m) if m.uid.as_deref() == Some(item.identity.uid.as_str()) => m,
            _ => {
                let _ = self
                    .events
                    .send(GraphEvent::VirtualDelete(item.identity.clone()));
                return Err(GcError::VirtualDeleteQueued);
            }
        };
        if item.deleting_dependents {
            return self.process_deleting_dependents(item).await;
        }
        let owners = latest.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(());
        }
        let (solid, dangling, waiting) = self.classify(item, &owners).await?;
        let latest = Meta::of(&latest);
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // References to gone owners, and to owners waiting for this one to go, are dropped
            // (or those owners would wait forever).
            let uids: Vec<String> = dangling
                .iter()
                .chain(waiting.iter())
                .map(|o| o.uid.clone())
                .collect();
            return self.remove_owner_refs(&item.identity, &uids).await;
        }
        let has_dependents = self
            .graph()
            .nodes
            .get(&item.identity.uid)
            .is_some_and(|n| !n.dependents.is_empty());
        if !waiting.is_empty() && has_dependents {
            let cycle = {
                let g = self.graph();
                g.nodes.get(&item.identity.uid).is_some_and(|n| {
                    n.dependents
                        .iter()
                        .any(|d| g.nodes.get(d).is_some_and(|d| d.deleting_dependents))
                })
            };
            if cycle {
                // An owner and a dependent of this item both wait in the foreground: stop
                // blocking the owners so that a cycle cannot deadlock.
                self.unblock_owner_refs(&item.identity, &waiting).await?;
            }
            return self
                .delete_object(&item.identity, PropagationPolicy::Foreground)
                .await;
        }
        let policy = if latest.has(ORPHAN) {
            PropagationPolicy::Orphan
        } else if latest.has(FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        self.delete_object(&item.identity, policy).await
    }

    async fn unblock_owner_refs(
        &self,
        id: &Identity,
        waiting: &[OwnerReference],
    ) -> Result<(), GcError> {
        let refs: Vec<serde_json::Value> = waiting
            .iter()
            .map(|o| json!({"uid": o.uid, "blockOwnerDeletion": false}))
            .collect();
        let smp = json!({"metadata": {"ownerReferences": refs, "uid": id.uid}});
        let (_, full) = self.apis(id)?;
        match full
            .patch(&id.name, &PatchParams::default(), &Patch::Strategic(&smp))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn process_deleting_dependents(&self, item: &Node) -> Result<(), GcError> {
        let blocking = self.graph().blocking_dependents(&item.identity.uid);
        if blocking.is_empty() {
            return self.remove_finalizer(&item.identity, FOREGROUND).await;
        }
        for dep in blocking {
            if !dep.deleting_dependents {
                self.delete_queue.add(&dep.identity.uid);
            }
        }
        Ok(())
    }

    /// (solid, dangling, waiting for dependents' deletion) owner references.
    async fn classify(
        &self,
        item: &Node,
        owners: &[OwnerReference],
    ) -> Result<
        (
            Vec<OwnerReference>,
            Vec<OwnerReference>,
            Vec<OwnerReference>,
        ),
        GcError,
    > {
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for r in owners {
            match self.owner_of(r, item).await? {
                None => dangling.push(r.clone()),
                Some(owner) if Meta::of(&owner).deleting_with(FOREGROUND) => {
                    waiting.push(r.clone())
                }
                Some(_) => solid.push(r.clone()),
            }
        }
        Ok((solid, dangling, waiting))
    }

    /// The owner a reference names, or `None` if it is gone (dangling).
    async fn owner_of(
        &self,
        r: &OwnerReference,
        item: &Node,
    ) -> Result<Option<ObjectMeta>, GcError> {
        let mut key = Identity::of_owner(r, "");
        if self.graph().absent.has(&key) {
            return Ok(None);
        }
        key.namespace = item.identity.namespace.clone();
        if self.graph().absent.has(&key) {
            return Ok(None);
        }
        let res = self.resource(&r.api_version, &r.kind)?;
        if !res.namespaced {
            key.namespace.clear();
        } else if item.identity.namespace.is_empty() {
            return Err(GcError::NamespacedOwnerOfClusterScoped(
                item.identity.to_string(),
            ));
        }
        match self.get_object(&key).await? {
            Some(m) if m.uid.as_deref() == Some(r.uid.as_str()) => Ok(Some(m)),
            _ => {
                self.graph().absent.add(key);
                Ok(None)
            }
        }
    }

    async fn attempt_to_orphan(&self, uid: &str) -> Outcome {
        let Some((owner, dependents)) = ({
            let g = self.graph();
            g.nodes.get(uid).map(|n| {
                let deps: Vec<Identity> = n
                    .dependents
                    .iter()
                    .filter_map(|d| g.nodes.get(d).map(|d| d.identity.clone()))
                    .collect();
                (n.identity.clone(), deps)
            })
        }) else {
            return Outcome::Forget;
        };
        let uids = [owner.uid.clone()];
        let uids = &uids;
        let results = futures::future::join_all(
            dependents
                .iter()
                .map(|d| async move { (d, self.remove_owner_refs(d, uids).await) }),
        )
        .await;
        let mut failed = false;
        for (d, r) in results {
            if let Err(e) = r {
                tracing::info!(dependent = %d, owner = %owner, error = %e, "orphaning failed");
                failed = true;
            }
        }
        if failed {
            return Outcome::Requeue;
        }
        match self.remove_finalizer(&owner, ORPHAN).await {
            Ok(()) => Outcome::Forget,
            Err(e) => {
                tracing::info!(owner = %owner, error = %e, "removing the orphan finalizer failed");
                Outcome::Requeue
            }
        }
    }
}

/// Watches one resource's metadata and turns its changes into graph events; a relist that
/// misses objects known before reports them deleted.
async fn monitor(client: kube::Client, r: Served, tx: mpsc::UnboundedSender<GraphEvent>) {
    let ar = r.api_resource();
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &ar);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut known: HashMap<String, (Identity, Meta)> = HashMap::new();
    let mut listing: Option<HashMap<String, (Identity, Meta)>> = None;
    let mut synced = false;
    let identity = |m: &ObjectMeta| -> Option<Identity> {
        Some(Identity {
            api_version: r.api_version(),
            kind: r.kind.clone(),
            name: m.name.clone()?,
            uid: m.uid.clone()?,
            namespace: m.namespace.clone().unwrap_or_default(),
        })
    };
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::debug!(resource = %r.group_resource(), error = %e, "garbage collector watch");
                continue;
            }
        };
        let sent = match ev {
            Event::Init => {
                listing = Some(HashMap::new());
                Ok(())
            }
            Event::InitApply(obj) | Event::Apply(obj) => {
                let Some(id) = identity(&obj.metadata) else {
                    continue;
                };
                let meta = Meta::of(&obj.metadata);
                let old = known.get(&id.uid).map(|(_, m)| m.clone());
                if let Some(l) = listing.as_mut() {
                    l.insert(id.uid.clone(), (id.clone(), meta.clone()));
                }
                known.insert(id.uid.clone(), (id.clone(), meta.clone()));
                if old.as_ref() == Some(&meta) {
                    Ok(())
                } else {
                    tx.send(GraphEvent::Observed {
                        change: if old.is_some() {
                            Change::Update
                        } else {
                            Change::Add
                        },
                        identity: id,
                        meta,
                        old,
                    })
                }
            }
            Event::Delete(obj) => {
                let Some(id) = identity(&obj.metadata) else {
                    continue;
                };
                known.remove(&id.uid);
                tx.send(GraphEvent::Observed {
                    change: Change::Delete,
                    identity: id,
                    meta: Meta::of(&obj.metadata),
                    old: None,
                })
            }
            Event::InitDone => {
                let listed = listing.take().unwrap_or_default();
                let mut result = Ok(());
                for (uid, (id, meta)) in &known {
                    if !listed.contains_key(uid) {
                        result = result.and(tx.send(GraphEvent::Observed {
                            change: Change::Delete,
                            identity: id.clone(),
                            meta: meta.clone(),
                            old: None,
                        }));
                    }
                }
                known = listed;
                if !synced {
                    synced = true;
                    result = result.and(tx.send(GraphEvent::Synced));
                }
                result
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

async fn graph_builder(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<GraphEvent>,
    monitors: usize,
    synced: watch::Sender<bool>,
) {
    let mut synced_monitors = 0;
    if monitors == 0 {
        synced.send_replace(true);
    }
    let deadline = tokio::time::sleep(SYNC_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return };
                if matches!(ev, GraphEvent::Synced) {
                    synced_monitors += 1;
                    if synced_monitors >= monitors && !*synced.borrow() {
                        tracing::info!("garbage collector graph synced");
                        synced.send_replace(true);
                    }
                    continue;
                }
                let mut work = Work::default();
                shared.graph().process(ev, &mut work);
                shared.enqueue(work);
            }
            _ = &mut deadline, if !*synced.borrow() => {
                tracing::warn!(synced = synced_monitors, monitors, "not every resource could be listed; collecting anyway");
                synced.send_replace(true);
            }
        }
    }
}

async fn delete_worker(shared: Arc<Shared>, mut synced: watch::Receiver<bool>) {
    if synced.wait_for(|s| *s).await.is_err() {
        return;
    }
    loop {
        let uid = shared.delete_queue.get().await;
        match shared.attempt_to_delete(&uid).await {
            Outcome::Forget => shared.delete_queue.forget(&uid),
            Outcome::Requeue => shared.delete_queue.add_rate_limited(&uid),
        }
        shared.delete_queue.done(&uid);
    }
}

async fn orphan_worker(shared: Arc<Shared>, mut synced: watch::Receiver<bool>) {
    if synced.wait_for(|s| *s).await.is_err() {
        return;
    }
    loop {
        let uid = shared.orphan_queue.get().await;
        match shared.attempt_to_orphan(&uid).await {
            Outcome::Forget => shared.orphan_queue.forget(&uid),
            Outcome::Requeue => shared.orphan_queue.add_rate_limited(&uid),
        }
        shared.orphan_queue.done(&uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, ns: &str, name: &str) -> Identity {
        Identity {
            api_version: if kind == "ReplicaSet" || kind == "Deployment" {
                "apps/v1".into()
            } else {
                "v1".into()
            },
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: ns.into(),
        }
    }

    fn owner_ref(of: &Identity, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: of.api_version.clone(),
            kind: of.kind.clone(),
            name: of.name.clone(),
            uid: of.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn add(g: &mut Graph, who: &Identity, owners: Vec<OwnerReference>) -> Work {
        let mut w = Work::default();
        g.process(
            GraphEvent::Observed {
                change: Change::Add,
                identity: who.clone(),
                meta: Meta {
                    owners,
                    ..Meta::default()
                },
                old: None,
            },
            &mut w,
        );
        w
    }

    #[test]
    fn unseen_owners_become_virtual_nodes_to_verify() {
        let mut g = Graph::default();
        let rs = id("ReplicaSet", "shop", "web");
        let pod = id("Pod", "shop", "web-1");
        let w = add(&mut g, &pod, vec![owner_ref(&rs, true)]);
        assert_eq!(w.delete, vec![rs.uid.clone()]);
        let n = g.nodes.get(&rs.uid).expect("virtual owner");
        assert!(n.virtual_);
        assert_eq!(n.identity, rs);
        assert!(n.dependents.contains(&pod.uid));
        // Seeing the owner makes it real; nothing to do.
        let w = add(&mut g, &rs, vec![]);
        assert_eq!(w, Work::default());
        assert!(!g.nodes[&rs.uid].virtual_);
        assert!(g.nodes[&rs.uid].dependents.contains(&pod.uid));
    }

    #[test]
    fn an_owner_deleted_makes_its_dependents_candidates() {
        let mut g = Graph::default();
        let rs = id("ReplicaSet", "shop", "web");
        let pod = id("Pod", "shop", "web-1");
        add(&mut g, &rs, vec![]);
        add(&mut g, &pod, vec![owner_ref(&rs, true)]);
        let mut w = Work::default();
        g.process(
            GraphEvent::Observed {
                change: Change::Delete,
                identity: rs.clone(),
                meta: Meta::default(),
                old: None,
            },
            &mut w,
        );
        assert_eq!(w.delete, vec![pod.uid.clone()]);
        assert!(!g.nodes.contains_key(&rs.uid));
        assert!(g.absent.has(&rs));
    }

    #[test]
    fn foreground_and_orphan_deletions_start_work() {
        let mut g = Graph::default();
        let d = id("Deployment", "shop", "web");
        let rs = id("ReplicaSet", "shop", "web-abc");
        add(&mut g, &d, vec![]);
        add(&mut g, &rs, vec![owner_ref(&d, true)]);
        let foreground = Meta {
            being_deleted: true,
            finalizers: vec![FOREGROUND.into()],
            ..Meta::default()
        };
        let mut w = Work::default();
        g.process(
            GraphEvent::Observed {
                change: Change::Update,
                identity: d.clone(),
                meta: foreground.clone(),
                old: Some(Meta::default()),
            },
            &mut w,
        );
        assert_eq!(w.delete, vec![rs.uid.clone(), d.uid.clone()]);
        assert!(g.nodes[&d.uid].deleting_dependents);
        assert_eq!(g.blocking_dependents(&d.uid).len(), 1);
        // The same state again is no new transition.
        let mut w = Work::default();
        g.process(
            GraphEvent::Observed {
                change: Change::Update,
                identity: d.clone(),
                meta: foreground.clone(),
                old: Some(foreground),
            },
            &mut w,
        );
        assert_eq!(w, Work::default());
        // The dependent is gone: the waiting owner is looked at again.
        let mut w = Work::default();
        g.process(
            GraphEvent::Observed {
                change: Change::Delete,
                identity: rs.clone(),
                meta: Meta::default(),
                old: None,
            },
            &mut w,
        );
        assert_eq!(w.delete, vec![d.uid.clone()]);
        assert!(g.blocking_dependents(&d.uid).is_empty());

        let cm = id("ConfigMap", "shop", "owner");
        add(&mut g, &cm, vec![]);
        let mut w = Work::default();
        g.process(
            GraphEvent::Observed {
                change: Change::Update,
                identity: cm.clone(),
                meta: Meta {
                    being_deleted: true,
                    finalizers: vec![ORPHAN.into()],
                    ..Meta::default()
                },
                old: Some(Meta::default()),
            },
            &mut w,
        );
        assert_eq!(w.orphan, vec![cm.uid.clone()]);
    }

    #[test]
    fn dropping_a_blocking_reference_wakes_the_owner() {
        let mut g = Graph::default();
        let owner = id("ConfigMap", "shop", "owner");
        let dep = id("ConfigMap", "shop", "dep");
        add(&mut g, &owner, vec![]);
        add(&mut g, &dep, vec![owner_ref(&owner, true)]);
        let mut w = Work::default();
        g.process(
            GraphEvent::Observed {
                change: Change::Update,
                identity: dep.clone(),
                meta: Meta::default(),
                old: None,
            },
            &mut w,
        );
        assert_eq!(w.delete, vec![owner.uid.clone()]);
        assert!(g.nodes[&owner.uid].dependents.is_empty());
    }

    #[test]
    fn virtual_deletes_respect_disagreeing_coordinates() {
        let mut g = Graph::default();
        let owner = id("ConfigMap", "shop", "owner");
        let a = id("Secret", "shop", "a");
        let b = id("Secret", "shop", "b");
        add(&mut g, &a, vec![owner_ref(&owner, false)]);
        // b names the same uid with another kind.
        let mut wrong = owner_ref(&owner, false);
        wrong.kind = "Secret".into();
        add(&mut g, &b, vec![wrong]);
        let mut w = Work::default();
        g.process(GraphEvent::VirtualDelete(owner.clone()), &mut w);
        // a's reference is verified absent; the node stays for b, under b's coordinates.
        assert_eq!(w.delete, vec![a.uid.clone()]);
        assert_eq!(w.delete_later, vec![owner.uid.clone()]);
        assert_eq!(g.nodes[&owner.uid].identity.kind, "Secret");
        assert!(g.absent.has(&owner));
        // Verified absent under those coordinates too: b is a candidate as well.
        let alt = g.nodes[&owner.uid].identity.clone();
        let mut w = Work::default();
        g.process(GraphEvent::VirtualDelete(alt.clone()), &mut w);
        assert_eq!(w.delete, vec![b.uid.clone()]);
        assert!(g.absent.has(&alt));
        // Once the dependents are gone, the virtual owner goes with the next verification.
        for dep in [&a, &b] {
            g.process(
                GraphEvent::Observed {
                    change: Change::Delete,
                    identity: dep.clone(),
                    meta: Meta::default(),
                    old: None,
                },
                &mut Work::default(),
            );
        }
        let current = g.nodes[&owner.uid].identity.clone();
        g.process(GraphEvent::VirtualDelete(current), &mut Work::default());
        assert!(!g.nodes.contains_key(&owner.uid));
    }

    #[test]
    fn owner_reference_diffs() {
        let a = id("ConfigMap", "shop", "a");
        let b = id("ConfigMap", "shop", "b");
        let c = id("ConfigMap", "shop", "c");
        let old = vec![owner_ref(&a, true), owner_ref(&b, true)];
        let new = vec![owner_ref(&b, false), owner_ref(&c, true)];
        let (added, removed, changed) = owner_diff(&old, &new);
        assert_eq!(added, vec![owner_ref(&c, true)]);
        assert_eq!(removed, vec![owner_ref(&a, true)]);
        assert_eq!(changed, vec![(owner_ref(&b, true), owner_ref(&b, false))]);
    }

    #[tokio::test]
    async fn work_queue_dedups_and_holds_keys_in_processing() {
        let q = Arc::new(WorkQueue::default());
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.get().await;
        assert_eq!(k, "a");
        // Added again while processing: queued only once done.
        q.add("a");
        assert_eq!(q.len(), 1);
        q.done("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, "b");
        assert_eq!(q.get().await, "a");
    }

    #[test]
    fn absent_cache_is_bounded() {
        let mut a = Absent::default();
        for i in 0..(ABSENT_CACHE_SIZE + 10) {
            a.add(id("ConfigMap", "ns", &format!("o{i}")));
        }
        assert_eq!(a.set.len(), ABSENT_CACHE_SIZE);
        assert!(!a.has(&id("ConfigMap", "ns", "o0")));
        assert!(a.has(&id(
            "ConfigMap",
            "ns",
            &format!("o{}", ABSENT_CACHE_SIZE + 9)
        )));
    }
}
