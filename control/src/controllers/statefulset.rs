//! The StatefulSet controller (upstream's `pkg/controller/statefulset`): pods with stable
//! names `<set>-<ordinal>`, each with its own PersistentVolumeClaims, created in order (each
//! only once its predecessors are Running and Ready) unless the set allows Parallel
//! management, removed from the highest ordinal down, and rolled to a new template from the
//! highest ordinal down to the partition. Template versions live in ControllerRevisions.

use super::history;
use super::workload::{
    self, Backoff, RefManager, event_objects, is_already_exists, is_conflict, is_not_found, key_of,
    owner_ref_of, reflect,
};
use super::{Context, ControllerError, util};
use crate::api::selectors::LabelSelector;
use futures::future::{BoxFuture, join_all};
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CONTROLLER: &str = "statefulset-controller";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Most pod operations in flight at once in Parallel mode.
const MAX_BATCH: usize = 500;
/// `--concurrent-statefulset-syncs` default.
const WORKERS: u16 = 5;

pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(async move {
        let client = ctx.client_for(CONTROLLER)?;
        let (sets, set_events) = reflect(Api::<StatefulSet>::all(client.clone()));
        let (pods, pod_events) = reflect(Api::<Pod>::all(client.clone()));
        let (claims, claim_events) = reflect(Api::<PersistentVolumeClaim>::all(client.clone()));
        let (revisions, rev_events) = reflect(Api::<ControllerRevision>::all(client.clone()));
        let ctl = Arc::new(Ctl {
            events: workload::Recorder::new(client.clone(), CONTROLLER, &ctx.config.instance),
            client,
            sets: sets.clone(),
            pods,
            claims,
            revisions,
            backoff: Backoff::default(),
        });
        let (for_sets, for_pods, for_claims) = (sets.clone(), sets.clone(), sets.clone());
        let queue = stream::select_all([
            set_events
                .flat_map(move |ev| stream::iter(set_triggers(&for_sets, &ev)))
                .boxed(),
            pod_events
                .flat_map(move |ev| stream::iter(pod_triggers(&for_pods, &ev)))
                .boxed(),
            rev_events
                .flat_map(|ev| {
                    let refs: Vec<ObjectRef<StatefulSet>> = event_objects(&ev)
                        .into_iter()
                        .filter_map(|(r, _)| owner_ref_of(&r.metadata))
                        .collect();
                    stream::iter(refs)
                })
                .boxed(),
            claim_events
                .flat_map(move |ev| stream::iter(claim_triggers(&for_claims, &ev)))
                .boxed(),
        ]);
        tracing::info!("starting statefulset controller");
        workload::run(sets, queue, reconcile, error_policy, ctl, WORKERS, stop).await;
        Ok(())
    })
}

fn set_triggers(
    sets: &Store<StatefulSet>,
    ev: &watcher::Event<StatefulSet>,
) -> Vec<ObjectRef<StatefulSet>> {
    if matches!(ev, watcher::Event::InitDone) {
        // After a relist the cache holds every set (triggers for those listed came while it
        // was still being filled, and may have found nothing).
        return sets
            .state()
            .iter()
            .map(|s| ObjectRef::from_obj(&**s))
            .collect();
    }
    event_objects(ev)
        .into_iter()
        .filter(|(_, deleted)| !deleted)
        .map(|(s, _)| ObjectRef::from_obj(s))
        .collect()
}

/// The set owning a claim, directly or through one of its pods. Upstream does not watch
/// claims; we do so that a pod held back by a stale claim (one an earlier pod of its ordinal
/// owns) is created as soon as the garbage collector has removed it.
fn claim_triggers(
    sets: &Store<StatefulSet>,
    ev: &watcher::Event<PersistentVolumeClaim>,
) -> Vec<ObjectRef<StatefulSet>> {
    let mut out = Vec::new();
    for (claim, _) in event_objects(ev) {
        let ns = claim.metadata.namespace.as_deref().unwrap_or("");
        for r in claim.metadata.owner_references.iter().flatten() {
            let set = match r.kind.as_str() {
                "StatefulSet" => r.name.clone(),
                "Pod" => parent_and_ordinal(&r.name).0,
                _ => continue,
            };
            let set_ref = ObjectRef::new(&set).within(ns);
            if sets.get(&set_ref).is_some() && !out.contains(&set_ref) {
                out.push(set_ref);
            }
        }
    }
    out
}

/// The sets a pod event concerns: its controller, or for an orphan every set that selects it.
fn pod_triggers(
    sets: &Store<StatefulSet>,
    ev: &watcher::Event<Pod>,
) -> Vec<ObjectRef<StatefulSet>> {
    let mut out = Vec::new();
    for (pod, deleted) in event_objects(ev) {
        if let Some(r) = owner_ref_of::<StatefulSet>(&pod.metadata) {
            let uid = util::controller_of(&pod.metadata).map(|c| c.uid.clone());
            if sets.get(&r).is_some_and(|s| s.metadata.uid == uid) {
                out.push(r);
            }
            continue;
        }
        if deleted {
            continue;
        }
        for s in sets.state() {
            if s.metadata.namespace == pod.metadata.namespace
                && util::selector(&s.spec.selector)
                    .is_some_and(|sel| util::matches(&sel, pod.metadata.labels.as_ref()))
            {
                out.push(ObjectRef::from_obj(&*s));
            }
        }
    }
    out
}

struct Ctl {
    client: kube::Client,
    events: workload::Recorder,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    revisions: Store<ControllerRevision>,
    backoff: Backoff,
}

async fn reconcile(set: Arc<StatefulSet>, c: Arc<Ctl>) -> Result<Action, ControllerError> {
    c.wait_ready().await?;
    let action = c.sync(&set).await?;
    c.backoff.reset(&key_of(&*set));
    Ok(action)
}

fn error_policy(set: Arc<StatefulSet>, err: &ControllerError, c: Arc<Ctl>) -> Action {
    let key = key_of(&*set);
    tracing::info!(statefulset = %key, error = %err, "sync failed; requeuing");
    Action::requeue(c.backoff.next(&key))
}

/// The text of an error as upstream puts it in events (the API's message).
fn err_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

// ---- pod identity -------------------------------------------------------------------------

/// The parent name and ordinal in a pod name `<parent>-<ordinal>`; ordinal -1 if none.
pub fn parent_and_ordinal(name: &str) -> (String, i64) {
    match name.rfind('-') {
        Some(i) if i + 1 < name.len() && name[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            let ord = name[i + 1..].parse::<i32>().map_or(-1, i64::from);
            (name[..i].to_string(), ord)
        }
        _ => (String::new(), -1),
    }
}

fn ordinal(pod: &Pod) -> i64 {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or("")).1
}

fn is_member_of(set: &StatefulSet, pod: &Pod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or("")).0
        == set.metadata.name.as_deref().unwrap_or("")
}

fn replicas_of(set: &StatefulSet) -> i64 {
    i64::from(set.spec.replicas.unwrap_or(1).max(0))
}

fn start_ordinal(set: &StatefulSet) -> i64 {
    set.spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .map_or(0, i64::from)
}

fn in_ordinal_range(pod: &Pod, set: &StatefulSet) -> bool {
    let o = ordinal(pod);
    let start = start_ordinal(set);
    o >= start && o < start + replicas_of(set)
}

fn pod_name(set: &StatefulSet, ordinal: i64) -> String {
    format!("{}-{ordinal}", set.metadata.name.as_deref().unwrap_or(""))
}

fn claim_name(template: &str, set: &StatefulSet, ordinal: i64) -> String {
    format!(
        "{template}-{}-{ordinal}",
        set.metadata.name.as_deref().unwrap_or("")
    )
}

fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let (parent, ord) = parent_and_ordinal(name);
    ord >= 0
        && set.metadata.name.as_deref() == Some(parent.as_str())
        && name == pod_name(set, ord)
        && pod.metadata.namespace == set.metadata.namespace
        && pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_NAME_LABEL))
            .map(String::as_str)
            == Some(name)
}

fn volume_claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .volume_claim_templates
        .as_deref()
        .unwrap_or_default()
}

fn template_name(t: &PersistentVolumeClaim) -> &str {
    t.metadata.name.as_deref().unwrap_or("")
}

fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let ord = ordinal(pod);
    if ord < 0 {
        return false;
    }
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    volume_claim_templates(set).iter().all(|t| {
        volumes
            .iter()
            .find(|v| v.name == template_name(t))
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .is_some_and(|c| c.claim_name == claim_name(template_name(t), set, ord))
    })
}

/// The claims a pod of `set` with this ordinal uses, by template name.
fn claims_for(set: &StatefulSet, ordinal: i64) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set.spec.selector.match_labels.clone().unwrap_or_default();
    volume_claim_templates(set)
        .iter()
        .map(|t| {
            let mut claim = t.clone();
            claim.metadata.name = Some(claim_name(template_name(t), set, ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(match_labels.clone());
            claim.metadata.labels = Some(labels);
            claim.status = None;
            (template_name(t).to_string(), claim)
        })
        .collect()
}

fn update_storage(set: &StatefulSet, pod: &mut Pod) {
    let claims = claims_for(set, ordinal(pod));
    let spec = pod.spec.get_or_insert_with(Default::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(name, claim)| Volume {
            name: name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.metadata.name.clone().unwrap_or_default(),
                read_only: Some(false),
            }),
            ..Default::default()
        })
        .collect();
    volumes.extend(
        current
            .into_iter()
            .filter(|v| !claims.iter().any(|(n, _)| *n == v.name)),
    );
    spec.volumes = Some(volumes);
}

fn update_identity(set: &StatefulSet, pod: &mut Pod) {
    let ord = ordinal(pod);
    let name = pod_name(set, ord);
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = set.metadata.namespace.clone();
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name);
    labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
}

/// A new pod of `set` at `ordinal` (upstream's `newStatefulSetPod`).
fn new_pod(set: &StatefulSet, ordinal: i64) -> Pod {
    let template = set.spec.template.clone();
    let cref = util::controller_ref(set).unwrap_or_default();
    let mut pod =
        workload::pod_from_template(&template, set.metadata.name.as_deref().unwrap_or(""), cref);
    pod.metadata.name = Some(pod_name(set, ordinal));
    update_identity(set, &mut pod);
    // Hostname and subdomain are immutable: set on creation only.
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = pod.metadata.name.clone();
    spec.subdomain = set.spec.service_name.clone();
    update_storage(set, &mut pod);
    pod
}

fn set_revision(pod: &mut Pod, revision: &str) {
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.into(), revision.to_string());
}

fn revision_of(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map_or("", String::as_str)
}

fn partition_of(set: &StatefulSet) -> Option<i64> {
    let ru = set.spec.update_strategy.as_ref()?.rolling_update.as_ref()?;
    Some(ru.partition.map_or(0, i64::from))
}

fn strategy_type(set: &StatefulSet) -> &str {
    set.spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// A new pod at the revision its ordinal belongs to: below the partition the current one,
/// otherwise the update one (upstream's `newVersionedStatefulSetPod`, operator precedence and
/// all).
fn new_versioned_pod(
    current_set: &StatefulSet,
    update_set: &StatefulSet,
    current_revision: &str,
    update_revision: &str,
    ordinal: i64,
) -> Pod {
    let start = start_ordinal(current_set);
    let current_replicas = current_set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .map_or(0, i64::from);
    let partition = partition_of(current_set);
    let at_current = (strategy_type(current_set) == "RollingUpdate"
        && partition.is_none()
        && ordinal < start + current_replicas)
        || partition.is_some_and(|p| ordinal < start + p);
    let (set, revision) = if at_current {
        (current_set, current_revision)
    } else {
        (update_set, update_revision)
    };
    let mut pod = new_pod(set, ordinal);
    set_revision(&mut pod, revision);
    pod
}

// ---- pod state ----------------------------------------------------------------------------

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Created and kept by the API server (pods we have only built have no phase).
fn is_created(pod: &Pod) -> bool {
    !phase(pod).is_empty()
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && util::pod_ready(pod)
}

fn is_available(pod: &Pod, min_ready_seconds: i32) -> bool {
    util::pod_available(pod, min_ready_seconds, jiff::Timestamp::now())
}

fn is_unavailable(pod: &Pod, min_ready_seconds: i32) -> bool {
    !is_available(pod, min_ready_seconds) || is_terminating(pod)
}

// ---- claims and the retention policy ------------------------------------------------------

const RETAIN: &str = "Retain";
const DELETE: &str = "Delete";

/// (whenScaled, whenDeleted), Retain unless set.
fn retention(set: &StatefulSet) -> (String, String) {
    let p = set.spec.persistent_volume_claim_retention_policy.as_ref();
    let get = |v: Option<&String>| {
        v.filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| RETAIN.to_string())
    };
    (
        get(p.and_then(|p| p.when_scaled.as_ref())),
        get(p.and_then(|p| p.when_deleted.as_ref())),
    )
}

/// An owner as the claim rules see it: apiVersion, kind, name, uid.
struct Owner<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
    uid: &'a str,
}

impl<'a> Owner<'a> {
    fn set(set: &'a StatefulSet) -> Self {
        Owner {
            api_version: "apps/v1",
            kind: "StatefulSet",
            name: set.metadata.name.as_deref().unwrap_or(""),
            uid: set.metadata.uid.as_deref().unwrap_or(""),
        }
    }

    fn pod(pod: &'a Pod) -> Self {
        Owner {
            api_version: "v1",
            kind: "Pod",
            name: pod.metadata.name.as_deref().unwrap_or(""),
            uid: pod.metadata.uid.as_deref().unwrap_or(""),
        }
    }

    fn matches(&self, r: &OwnerReference) -> bool {
        r.api_version == self.api_version && r.kind == self.kind && r.name == self.name
    }

    fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.into(),
            kind: self.kind.into(),
            name: self.name.into(),
            uid: self.uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
}

fn has_owner_ref(claim: &PersistentVolumeClaim, owner: &Owner) -> bool {
    refs(claim).iter().any(|r| r.uid == owner.uid)
}

/// A reference naming `owner` with another uid: left by an earlier object of that name.
fn has_stale_owner_ref(claim: &PersistentVolumeClaim, owner: &Owner) -> bool {
    refs(claim)
        .iter()
        .find(|r| owner.matches(r))
        .is_some_and(|r| r.uid != owner.uid)
}

/// Another controller manages the claim (only matters when something is to be deleted).
fn has_unexpected_controller(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (scaled, deleted) = retention(set);
    if scaled == RETAIN && deleted == RETAIN {
        return false;
    }
    let (s, p) = (Owner::set(set), Owner::pod(pod));
    for r in refs(claim) {
        if s.matches(r) {
            if r.uid != s.uid {
                return true;
            }
            continue;
        }
        if p.matches(r) {
            if r.uid != p.uid {
                return true;
            }
            continue;
        }
        if r.controller == Some(true) {
            return true;
        }
    }
    false
}

fn has_non_controller_owner(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (s, p) = (Owner::set(set), Owner::pod(pod));
    refs(claim)
        .iter()
        .any(|r| (r.uid == s.uid || r.uid == p.uid) && r.controller != Some(true))
}

/// Whether the claim's owners agree with the retention policy: no owner to retain it, the set
/// to delete it with the set, the pod to delete it on scale-down.
fn claim_owner_up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (s, p) = (Owner::set(set), Owner::pod(pod));
    if has_stale_owner_ref(claim, &s) || has_stale_owner_ref(claim, &p) {
        // Left by an earlier set or pod: not ours to touch.
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(has_owner_ref(claim, &s) || has_owner_ref(claim, &p));
    }
    if has_non_controller_owner(claim, set, pod) {
        return false;
    }
    let scaled_down = !in_ordinal_range(pod, set);
    match retention(set) {
        (sc, de) if sc == RETAIN && de == DELETE => {
            has_owner_ref(claim, &s) && !has_owner_ref(claim, &p)
        }
        (sc, de) if sc == DELETE && de == RETAIN => {
            !has_owner_ref(claim, &s) && scaled_down == has_owner_ref(claim, &p)
        }
        (sc, de) if sc == DELETE && de == DELETE => {
            scaled_down != has_owner_ref(claim, &s) && scaled_down == has_owner_ref(claim, &p)
        }
        // Retain/Retain, and anything unknown treated as it.
        _ => !has_owner_ref(claim, &s) && !has_owner_ref(claim, &p),
    }
}

/// Rewrites the claim's references to the set and pod to follow the retention policy.
fn update_claim_owner_refs(claim: &mut PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) {
    let (s, p) = (Owner::set(set), Owner::pod(pod));
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut new_refs: Vec<OwnerReference> = refs(claim)
        .iter()
        .filter(|r| !s.matches(r) && !p.matches(r))
        .cloned()
        .collect();
    if !unexpected {
        let scaled_down = !in_ordinal_range(pod, set);
        let (sc, de) = retention(set);
        let add_set =
            (sc == RETAIN && de == DELETE) || (sc == DELETE && de == DELETE && !scaled_down);
        let add_pod = sc == DELETE && scaled_down;
        if add_set {
            new_refs.push(s.controller_ref());
        }
        if add_pod {
            new_refs.push(p.controller_ref());
        }
    }
    claim.metadata.owner_references = if new_refs.is_empty() {
        None
    } else {
        Some(new_refs)
    };
}

// ---- status -------------------------------------------------------------------------------

fn count_status<'a>(
    status: &mut StatefulSetStatus,
    min_ready_seconds: i32,
    current: &str,
    update: &str,
    pods: impl Iterator<Item = &'a Pod>,
) {
    let (mut replicas, mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0, 0);
    for pod in pods {
        if is_created(pod) {
            replicas += 1;
        }
        if is_running_and_ready(pod) {
            ready += 1;
            if is_available(pod, min_ready_seconds) {
                available += 1;
            }
        }
        if is_created(pod) && !is_terminating(pod) {
            let r = revision_of(pod);
            if r == current {
                cur += 1;
            }
            if r == update {
                upd += 1;
            }
        }
    }
    status.replicas = replicas;
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(cur);
    status.updated_replicas = Some(upd);
}

/// A finished rolling update makes the update revision current.
fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let want = set.spec.replicas.unwrap_or(1);
    if strategy_type(set) == "RollingUpdate"
        && status.updated_replicas.unwrap_or(0) == want
        && status.ready_replicas.unwrap_or(0) == want
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

fn inconsistent_status(set: &StatefulSet, status: &StatefulSetStatus) -> bool {
    let old = set.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    status.observed_generation.unwrap_or(0) > old.observed_generation.unwrap_or(0)
        || status.replicas != old.replicas
        || n(status.current_replicas) != n(old.current_replicas)
        || n(status.ready_replicas) != n(old.ready_replicas)
        || n(status.updated_replicas) != n(old.updated_replicas)
        || n(status.available_replicas) != n(old.available_replicas)
        || status.current_revision != old.current_revision
        || status.update_revision != old.update_revision
        || n(status.collision_count) != n(old.collision_count)
}

/// maxUnavailable of a rolling update: a count or a share of the replicas rounded down, at
/// least 1.
fn max_unavailable(set: &StatefulSet, replicas: i64) -> i64 {
    let v = set
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(1));
    let n = match v {
        IntOrString::Int(i) => i64::from(i),
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(1, |p| p * replicas / 100),
    };
    n.max(1)
}

/// Runs `f` over `0..n`: in order, stopping at the first that blocks or fails (OrderedReady),
/// or all at once in slow-start batches (Parallel). Returns whether to stop here.
async fn run_for_all<F, Fut>(n: usize, f: F, monotonic: bool) -> Result<bool, ControllerError>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<bool, ControllerError>>,
{
    if monotonic {
        for i in 0..n {
            if f(i).await? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    let (mut next, mut batch) = (0, n.min(1));
    while batch > 0 {
        let results = join_all((next..next + batch).map(&f)).await;
        next += batch;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
        batch = (2 * batch).min(n - next).min(MAX_BATCH);
    }
    Ok(false)
}

fn apply_revision(
    set: &StatefulSet,
    rev: &ControllerRevision,
) -> Result<StatefulSet, ControllerError> {
    let template = history::template_of(rev).ok_or_else(|| {
        ControllerError::Invalid(format!(
            "revision {} holds no pod template",
            rev.metadata.name.as_deref().unwrap_or("")
        ))
    })?;
    let mut s = set.clone();
    s.spec.template = template;
    Ok(s)
}

// ---- the controller -----------------------------------------------------------------------

impl Ctl {
    async fn wait_ready(&self) -> Result<(), ControllerError> {
        let err = |e: kube::runtime::reflector::store::WriterDropped| {
            ControllerError::Invalid(e.to_string())
        };
        self.sets.wait_until_ready().await.map_err(err)?;
        self.pods.wait_until_ready().await.map_err(err)?;
        self.claims.wait_until_ready().await.map_err(err)?;
        self.revisions.wait_until_ready().await.map_err(err)
    }

    fn record(
        &self,
        set: &StatefulSet,
        related: Option<ObjectReference>,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.events
            .emit(set.object_ref(&()), related, warning, reason, action, note);
    }

    /// Upstream's `recordPodEvent`: `SuccessfulCreate` "create Pod web-0 in StatefulSet web
    /// successful", or `FailedCreate` with the error.
    fn record_pod(&self, verb: &str, set: &StatefulSet, pod: &str, err: Option<&str>) {
        let title = format!("{}{}", &verb[..1].to_uppercase(), &verb[1..]);
        let set_name = set.metadata.name.as_deref().unwrap_or("");
        let ns = set.metadata.namespace.as_deref().unwrap_or("");
        let related = Some(workload::reference::<Pod>(ns, pod));
        match err {
            None => self.record(
                set,
                related,
                false,
                &format!("Successful{title}"),
                &title,
                format!("{verb} Pod {pod} in StatefulSet {set_name} successful"),
            ),
            Some(e) => self.record(
                set,
                related,
                true,
                &format!("Failed{title}"),
                &title,
                format!("{verb} Pod {pod} in StatefulSet {set_name} failed error: {e}"),
            ),
        }
    }

    fn record_claim(&self, set: &StatefulSet, claim: &str, pod: &str, err: Option<&str>) {
        let set_name = set.metadata.name.as_deref().unwrap_or("");
        let ns = set.metadata.namespace.as_deref().unwrap_or("");
        let related = Some(workload::reference::<PersistentVolumeClaim>(ns, claim));
        match err {
            None => self.record(
                set,
                related,
                false,
                "SuccessfulCreate",
                "Create",
                format!("create Claim {claim} Pod {pod} in StatefulSet {set_name} success"),
            ),
            Some(e) => self.record(
                set,
                related,
                true,
                "FailedCreate",
                "Create",
                format!(
                    "create Claim {claim} for Pod {pod} in StatefulSet {set_name} failed error: {e}"
                ),
            ),
        }
    }

    fn pod_api(&self, set: &StatefulSet) -> Api<Pod> {
        Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    fn claim_api(&self, set: &StatefulSet) -> Api<PersistentVolumeClaim> {
        Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    fn rev_api(&self, set: &StatefulSet) -> Api<ControllerRevision> {
        Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    fn cached_claim(&self, set: &StatefulSet, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims
            .get(&ObjectRef::new(name).within(set.metadata.namespace.as_deref().unwrap_or("")))
    }

    async fn sync(&self, set: &StatefulSet) -> Result<Action, ControllerError> {
        let Some(selector) = util::selector(&set.spec.selector) else {
            // A malformed selector is not going to fix itself by retrying.
            return Ok(Action::await_change());
        };
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let set_api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &ns);
        let mut refs = RefManager::new(set, set_api, &selector);

        let revisions = self.list_revisions(set, &selector);
        let orphans: Vec<_> = revisions
            .iter()
            .filter(|r| util::controller_of(&r.metadata).is_none())
            .cloned()
            .collect();
        if !orphans.is_empty() {
            refs.claim(&self.rev_api(set), orphans, |_| true).await?;
        }

        let in_ns: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .collect();
        let pods = refs
            .claim(&self.pod_api(set), in_ns, |p| is_member_of(set, p))
            .await?;

        let status = self.update_stateful_set(set, &pods, revisions).await?;
        let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
        let want = set.spec.replicas.unwrap_or(1);
        if min_ready > 0 && status.is_some_and(|s| s.available_replicas.unwrap_or(0) != want) {
            // Availability comes with time, not with an event.
            return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::await_change())
    }

    /// Revisions selected by the set that it owns or nobody does.
    fn list_revisions(
        &self,
        set: &StatefulSet,
        selector: &LabelSelector,
    ) -> Vec<Arc<ControllerRevision>> {
        let uid = set.metadata.uid.as_deref().unwrap_or("");
        self.revisions
            .state()
            .into_iter()
            .filter(|r| {
                r.metadata.namespace == set.metadata.namespace
                    && util::matches(selector, r.metadata.labels.as_ref())
                    && util::controller_of(&r.metadata).is_none_or(|c| c.uid == uid)
            })
            .collect()
    }

    async fn update_stateful_set(
        &self,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        mut revisions: Vec<Arc<ControllerRevision>>,
    ) -> Result<Option<StatefulSetStatus>, ControllerError> {
        history::sort_revisions(&mut revisions);
        let (current, update, collisions) = match self.set_revisions(set, &revisions).await {
            Ok(v) => v,
            Err(e) => {
                // Keep the history within bounds even so; the first error is what counts.
                let _ = self
                    .truncate_history(set, pods, &revisions, None, None)
                    .await;
                return Err(e);
            }
        };
        let result = self
            .perform_update(set, pods, &current, &update, collisions)
            .await;
        let truncated = self
            .truncate_history(set, pods, &revisions, Some(&current), Some(&update))
            .await;
        let status = result?;
        truncated?;
        Ok(Some(status))
    }

    /// The current and update revisions, creating or renumbering the update one as needed.
    async fn set_revisions(
        &self,
        set: &StatefulSet,
        revisions: &[Arc<ControllerRevision>],
    ) -> Result<(ControllerRevision, ControllerRevision, i32), ControllerError> {
        let status = set.status.clone().unwrap_or_default();
        let mut collisions = status.collision_count.unwrap_or(0);
        let name = set.metadata.name.clone().unwrap_or_default();
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let template = set.spec.template.clone();
        let mut update = history::new_revision(
            &name,
            &ns,
            util::controller_ref(set).unwrap_or_default(),
            template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            history::template_patch(&template),
            history::next_revision(revisions),
            collisions,
        );
        if let Some(a) = set.metadata.annotations.as_ref() {
            update.metadata.annotations = Some(a.clone());
        }
        let equal: Vec<&Arc<ControllerRevision>> = revisions
            .iter()
            .filter(|r| history::equal_revision(r, &update))
            .collect();
        let api = self.rev_api(set);
        let update = match (equal.last(), revisions.last()) {
            (Some(eq), Some(last)) if history::equal_revision(last, eq) => (**last).clone(),
            (Some(eq), _) => {
                history::renumber_revision(&api, eq, update.revision.unwrap_or(0)).await?
            }
            (None, _) => history::create_revision(&api, &name, &update, &mut collisions).await?,
        };
        let current = revisions
            .iter()
            .find(|r| r.metadata.name.is_some() && r.metadata.name == status.current_revision)
            .map(|r| (**r).clone())
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collisions))
    }

    /// Brings the pods in line with the set and records the status.
    async fn perform_update(
        &self,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        current: &ControllerRevision,
        update: &ControllerRevision,
        collisions: i32,
    ) -> Result<StatefulSetStatus, ControllerError> {
        let (status, result) = self
            .update_pods(set, pods, current, update, collisions)
            .await;
        let Some(status) = status else {
            return result.map(|_| StatefulSetStatus::default());
        };
        let written = self.write_status(set, status.clone()).await;
        result?;
        written?;
        Ok(status)
    }

    /// Creates, deletes and updates pods toward the set's target state (upstream's
    /// `updateStatefulSet`); returns the status to record even when a step failed.
    async fn update_pods(
        &self,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        current: &ControllerRevision,
        update: &ControllerRevision,
        collisions: i32,
    ) -> (Option<StatefulSetStatus>, Result<(), ControllerError>) {
        let (current_set, update_set) =
            match (apply_revision(set, current), apply_revision(set, update)) {
                (Ok(c), Ok(u)) => (c, u),
                (Err(e), _) | (_, Err(e)) => return (None, Err(e)),
            };
        let current_name = current.metadata.name.clone().unwrap_or_default();
        let update_name = update.metadata.name.clone().unwrap_or_default();
        let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
        let mut status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            current_revision: Some(current_name.clone()),
            update_revision: Some(update_name.clone()),
            collision_count: Some(collisions),
            ..Default::default()
        };
        count_status(
            &mut status,
            min_ready,
            &current_name,
            &update_name,
            pods.iter().map(|p| &**p),
        );

        let count = replicas_of(set);
        let start = start_ordinal(set);
        let mut slots: Vec<Option<Pod>> = vec![None; count as usize];
        let mut condemned: Vec<Pod> = Vec::new();
        for pod in pods {
            if in_ordinal_range(pod, set) {
                slots[(ordinal(pod) - start) as usize] = Some((**pod).clone());
            } else if ordinal(pod) >= 0 {
                condemned.push((**pod).clone());
            }
        }
        let replicas: Vec<Pod> = slots
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.unwrap_or_else(|| {
                    new_versioned_pod(
                        &current_set,
                        &update_set,
                        &current_name,
                        &update_name,
                        start + i as i64,
                    )
                })
            })
            .collect();
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        let first_unavailable = replicas
            .iter()
            .chain(condemned.iter().rev())
            .find(|p| is_unavailable(p, min_ready))
            .and_then(|p| p.metadata.name.clone());
        let recount = |status: &mut StatefulSetStatus| {
            count_status(
                status,
                min_ready,
                &current_name,
                &update_name,
                replicas.iter().chain(condemned.iter()),
            )
        };

        if set.metadata.deletion_timestamp.is_some() {
            return (Some(status), Ok(()));
        }
        let monotonic = set.spec.pod_management_policy.as_deref() != Some("Parallel");

        // Every replica in order; in OrderedReady mode stop at the first not Running and Ready.
        let stop = run_for_all(
            replicas.len(),
            |i| self.process_replica(set, &update_set, monotonic, &replicas[i]),
            monotonic,
        )
        .await;
        if !matches!(stop, Ok(false)) {
            recount(&mut status);
            return (Some(status), stop.map(|_| ()));
        }

        // Claims of pods about to go get the owners the retention policy asks for.
        let fixed = run_for_all(
            condemned.len(),
            |i| {
                let (update_set, pod) = (&update_set, &condemned[i]);
                async move {
                    if !self.claims_match_retention(update_set, pod) {
                        self.update_claims_for_retention(update_set, pod).await?;
                    }
                    Ok(false)
                }
            },
            monotonic,
        )
        .await;
        if !matches!(fixed, Ok(false)) {
            recount(&mut status);
            return (Some(status), fixed.map(|_| ()));
        }

        // Scale down from the highest ordinal, one at a time in OrderedReady mode.
        let removed = run_for_all(
            condemned.len(),
            |i| self.process_condemned(set, first_unavailable.as_deref(), monotonic, &condemned[i]),
            monotonic,
        )
        .await;
        if !matches!(removed, Ok(false)) {
            recount(&mut status);
            return (Some(status), removed.map(|_| ()));
        }
        recount(&mut status);

        if strategy_type(set) == "OnDelete" {
            return (Some(status), Ok(()));
        }

        // Rolling update: replace out-of-date pods from the highest ordinal down to the
        // partition, at most maxUnavailable unavailable at once.
        let update_min = partition_of(set).unwrap_or(0);
        let max_unavailable = max_unavailable(set, count);
        let unavailable = replicas
            .iter()
            .filter(|p| is_unavailable(p, min_ready))
            .count() as i64;
        if unavailable >= max_unavailable {
            tracing::debug!(statefulset = %key_of(set), unavailable, max_unavailable, "waiting for pods to become available");
            return (Some(status), Ok(()));
        }
        let mut to_delete = max_unavailable - unavailable;
        let mut target = replicas.len() as i64 - 1;
        while target >= update_min && to_delete > 0 {
            let pod = &replicas[target as usize];
            if revision_of(pod) != update_name && !is_terminating(pod) {
                tracing::info!(statefulset = %key_of(set), pod = pod.metadata.name.as_deref().unwrap_or(""), "terminating pod for update");
                match self.delete_pod(set, pod).await {
                    Ok(()) => {}
                    Err(ControllerError::Kube(e)) if is_not_found(&e) => {}
                    Err(e) => return (Some(status), Err(e)),
                }
                to_delete -= 1;
                status.current_replicas = status.current_replicas.map(|c| c - 1);
            }
            target -= 1;
        }
        (Some(status), Ok(()))
    }

    /// One replica: recreate it if it finished, create it if missing, and (OrderedReady)
    /// report whether later ordinals must wait for it. Returns whether to stop.
    async fn process_replica(
        &self,
        set: &StatefulSet,
        update_set: &StatefulSet,
        monotonic: bool,
        pod: &Pod,
    ) -> Result<bool, ControllerError> {
        let name = pod.metadata.name.as_deref().unwrap_or("");
        // A finished pod (Failed, or Succeeded after an eviction) is deleted; the next sync
        // creates it anew once it is gone.
        if matches!(phase(pod), "Failed" | "Succeeded") {
            if !is_terminating(pod) {
                self.delete_pod(set, pod).await?;
            }
            return Ok(true);
        }
        if !is_created(pod) {
            if self.pod_claim_is_stale(set, pod) {
                // An old claim of this ordinal awaits garbage collection.
                return Ok(true);
            }
            let created = self.create_pod(set, pod).await?;
            return Ok(monotonic || !created);
        }
        if phase(pod) == "Pending" {
            self.create_missing_claims(set, pod).await?;
        }
        let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
        if monotonic {
            if is_terminating(pod) {
                tracing::debug!(statefulset = %key_of(set), pod = name, "waiting for pod to terminate");
                return Ok(true);
            }
            if !is_running_and_ready(pod) {
                tracing::debug!(statefulset = %key_of(set), pod = name, "waiting for pod to be Running and Ready");
                return Ok(true);
            }
            if !is_available(pod, min_ready) {
                tracing::debug!(statefulset = %key_of(set), pod = name, "waiting for pod to be available");
                return Ok(true);
            }
        }
        let retention_ok = self.claims_match_retention(update_set, pod);
        if identity_matches(set, pod) && storage_matches(set, pod) && retention_ok {
            return Ok(false);
        }
        self.update_pod(update_set, pod.clone()).await?;
        Ok(false)
    }

    async fn process_condemned(
        &self,
        set: &StatefulSet,
        first_unavailable: Option<&str>,
        monotonic: bool,
        pod: &Pod,
    ) -> Result<bool, ControllerError> {
        if is_terminating(pod) {
            return Ok(monotonic);
        }
        let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
        let is_first = pod.metadata.name.as_deref() == first_unavailable;
        if monotonic && !is_first && (!is_running_and_ready(pod) || !is_available(pod, min_ready)) {
            tracing::debug!(statefulset = %key_of(set), pod = ?first_unavailable, "waiting for pod before scaling down");
            return Ok(true);
        }
        tracing::info!(statefulset = %key_of(set), pod = pod.metadata.name.as_deref().unwrap_or(""), "terminating pod for scale down");
        self.delete_pod(set, pod).await?;
        Ok(true)
    }

    /// Creates the pod's claims, then the pod. Returns false if the pod existed already (the
    /// cache is behind; its event brings another sync).
    async fn create_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<bool, ControllerError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Err(e) = self.create_claims(set, pod).await {
            self.record_pod("create", set, &name, Some(&e.to_string()));
            return Err(e);
        }
        match self.pod_api(set).create(&PostParams::default(), pod).await {
            Ok(_) => {}
            Err(e) if is_already_exists(&e) => return Ok(false),
            Err(e) => {
                self.record_pod("create", set, &name, Some(&err_text(&e)));
                return Err(e.into());
            }
        }
        // Claims that existed before the pod get the owners the policy asks for.
        if let Err(e) = self.update_claims_for_retention(set, pod).await {
            self.record_pod("update", set, &name, Some(&e.to_string()));
            return Err(e);
        }
        self.record_pod("create", set, &name, None);
        Ok(true)
    }

    async fn create_missing_claims(
        &self,
        set: &StatefulSet,
        pod: &Pod,
    ) -> Result<(), ControllerError> {
        self.create_claims(set, pod).await?;
        if let Err(e) = self.update_claims_for_retention(set, pod).await {
            let name = pod.metadata.name.as_deref().unwrap_or("");
            self.record_pod("update", set, name, Some(&e.to_string()));
            return Err(e);
        }
        Ok(())
    }

    /// Creates the claims of `pod` that do not exist (with the owners the retention policy
    /// asks for); a claim being deleted is an error until it is gone.
    async fn create_claims(&self, set: &StatefulSet, pod: &Pod) -> Result<(), ControllerError> {
        let pod_name = pod.metadata.name.as_deref().unwrap_or("");
        let mut errs = Vec::new();
        for (_, mut claim) in claims_for(set, ordinal(pod)) {
            let claim_name = claim.metadata.name.clone().unwrap_or_default();
            match self.cached_claim(set, &claim_name) {
                Some(existing) => {
                    if existing.metadata.deletion_timestamp.is_some() {
                        errs.push(format!("pvc {claim_name} is being deleted"));
                    }
                }
                None => {
                    update_claim_owner_refs(&mut claim, set, pod);
                    match self
                        .claim_api(set)
                        .create(&PostParams::default(), &claim)
                        .await
                    {
                        Ok(_) => self.record_claim(set, &claim_name, pod_name, None),
                        // Created by an earlier sync the cache has not caught up with.
                        Err(e) if is_already_exists(&e) => {}
                        Err(e) => {
                            self.record_claim(set, &claim_name, pod_name, Some(&err_text(&e)));
                            errs.push(format!(
                                "failed to create PVC {claim_name}: {}",
                                err_text(&e)
                            ));
                        }
                    }
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ControllerError::Invalid(errs.join(", ")))
        }
    }

    /// A claim of a pod yet to be created still names an earlier pod of that ordinal as owner
    /// (with a Delete-on-scale-down policy): it is about to be garbage collected.
    fn pod_claim_is_stale(&self, set: &StatefulSet, pod: &Pod) -> bool {
        if retention(set).0 == RETAIN {
            return false;
        }
        claims_for(set, ordinal(pod)).iter().any(|(_, c)| {
            self.cached_claim(set, c.metadata.name.as_deref().unwrap_or(""))
                .is_some_and(|existing| has_stale_owner_ref(&existing, &Owner::pod(pod)))
        })
    }

    fn claims_match_retention(&self, set: &StatefulSet, pod: &Pod) -> bool {
        volume_claim_templates(set).iter().all(|t| {
            let name = claim_name(template_name(t), set, ordinal(pod));
            self.cached_claim(set, &name)
                .is_none_or(|c| claim_owner_up_to_date(&c, set, pod))
        })
    }

    async fn update_claims_for_retention(
        &self,
        set: &StatefulSet,
        pod: &Pod,
    ) -> Result<(), ControllerError> {
        for t in volume_claim_templates(set) {
            let name = claim_name(template_name(t), set, ordinal(pod));
            // Missing from the cache: picked up by a later sync.
            let Some(claim) = self.cached_claim(set, &name) else {
                continue;
            };
            if has_unexpected_controller(&claim, set, pod) {
                let ns = set.metadata.namespace.as_deref().unwrap_or("");
                self.record(
                    set,
                    Some(workload::reference::<PersistentVolumeClaim>(ns, &name)),
                    true,
                    "ConflictingController",
                    "Update",
                    format!("PersistentVolumeClaim {name} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"),
                );
            }
            if !claim_owner_up_to_date(&claim, set, pod) {
                let mut updated = (*claim).clone();
                update_claim_owner_refs(&mut updated, set, pod);
                self.claim_api(set)
                    .replace(&name, &PostParams::default(), &updated)
                    .await
                    .map_err(|e| {
                        ControllerError::Invalid(format!(
                            "could not update claim {name} for delete policy ownerRefs: {}",
                            err_text(&e)
                        ))
                    })?;
            }
        }
        Ok(())
    }

    /// Restores the pod's identity, storage and claim owners (upstream's `UpdateStatefulPod`).
    async fn update_pod(&self, set: &StatefulSet, mut pod: Pod) -> Result<(), ControllerError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api = self.pod_api(set);
        let mut attempted = false;
        let mut result = Ok(());
        for attempt in 0..5 {
            let mut consistent = true;
            if !identity_matches(set, &pod) {
                update_identity(set, &mut pod);
                consistent = false;
            }
            if !storage_matches(set, &pod) {
                update_storage(set, &mut pod);
                consistent = false;
                if let Err(e) = self.create_claims(set, &pod).await {
                    self.record_pod("update", set, &name, Some(&e.to_string()));
                    return Err(e);
                }
            }
            if !self.claims_match_retention(set, &pod) {
                if let Err(e) = self.update_claims_for_retention(set, &pod).await {
                    self.record_pod("update", set, &name, Some(&e.to_string()));
                    return Err(e);
                }
                consistent = false;
            }
            if consistent {
                break;
            }
            attempted = true;
            match api.replace(&name, &PostParams::default(), &pod).await {
                Ok(_) => {
                    result = Ok(());
                    break;
                }
                Err(e) if is_conflict(&e) && attempt < 4 => pod = api.get(&name).await?,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if attempted {
            let text = result.as_ref().err().map(err_text);
            self.record_pod("update", set, &name, text.as_deref());
        }
        result.map_err(Into::into)
    }

    async fn delete_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<(), ControllerError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        match self
            .pod_api(set)
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.record_pod("delete", set, &name, None);
                Ok(())
            }
            Err(e) => {
                self.record_pod("delete", set, &name, Some(&err_text(&e)));
                Err(e.into())
            }
        }
    }

    async fn write_status(
        &self,
        set: &StatefulSet,
        mut status: StatefulSetStatus,
    ) -> Result<(), ControllerError> {
        complete_rolling_update(set, &mut status);
        if !inconsistent_status(set, &status) {
            return Ok(());
        }
        let name = set.metadata.name.clone().unwrap_or_default();
        let api: Api<StatefulSet> = Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or(""),
        );
        let mut obj = set.clone();
        for attempt in 0..5 {
            obj.status = Some(status.clone());
            match api
                .replace_status(&name, &PostParams::default(), &obj)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) && attempt < 4 => obj = api.get(&name).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Deletes the oldest revisions beyond `revisionHistoryLimit` that no pod uses and that
    /// are neither current nor the update.
    async fn truncate_history(
        &self,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        revisions: &[Arc<ControllerRevision>],
        current: Option<&ControllerRevision>,
        update: Option<&ControllerRevision>,
    ) -> Result<(), ControllerError> {
        let mut live: HashSet<&str> = pods.iter().map(|p| revision_of(p)).collect();
        for r in [current, update].into_iter().flatten() {
            live.insert(r.metadata.name.as_deref().unwrap_or(""));
        }
        let old: Vec<&Arc<ControllerRevision>> = revisions
            .iter()
            .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or("")))
            .collect();
        let limit = set.spec.revision_history_limit.unwrap_or(10);
        if limit < 0 || old.len() <= limit as usize {
            return Ok(());
        }
        let api = self.rev_api(set);
        for r in &old[..old.len() - limit as usize] {
            let name = r.metadata.name.as_deref().unwrap_or("");
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(extra: serde_json::Value) -> StatefulSet {
        let mut v = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "set-uid"},
            "spec": {
                "serviceName": "nginx",
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}],
                        "volumes": [{"name": "www", "emptyDir": {}}, {"name": "cfg", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "data"}},
                    "spec": {"accessModes": ["ReadWriteOnce"]}}],
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            }
        });
        if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
            for (k, val) in extra {
                spec.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(v).expect("set")
    }

    #[test]
    fn names_parse_into_parent_and_ordinal() {
        assert_eq!(parent_and_ordinal("web-0"), ("web".into(), 0));
        assert_eq!(parent_and_ordinal("web-1-12"), ("web-1".into(), 12));
        assert_eq!(parent_and_ordinal("web").1, -1);
        assert_eq!(parent_and_ordinal("web-").1, -1);
        assert_eq!(parent_and_ordinal("web-x1").1, -1);
        assert_eq!(parent_and_ordinal("web-99999999999"), ("web".into(), -1));
    }

    #[test]
    fn new_pods_carry_identity_and_claims() {
        let s = set(json!({}));
        let pod = new_pod(&s, 2);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(POD_NAME_LABEL).map(String::as_str),
            Some("web-2")
        );
        assert_eq!(labels.get(POD_INDEX_LABEL).map(String::as_str), Some("2"));
        assert_eq!(labels.get("app").map(String::as_str), Some("nginx"));
        let spec = pod.spec.clone().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        // The claim replaces the template's volume of the same name; others stay.
        let vols: Vec<_> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(vols, vec!["www", "cfg"]);
        assert!(identity_matches(&s, &pod) && storage_matches(&s, &pod));
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("StatefulSet", "set-uid")
        );
        let claims = claims_for(&s, 2);
        let claim = &claims[0].1;
        assert_eq!(claim.metadata.name.as_deref(), Some("www-web-2"));
        let cl = claim.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            (
                cl.get("tier").map(String::as_str),
                cl.get("app").map(String::as_str)
            ),
            (Some("data"), Some("nginx"))
        );
        let mut other = pod.clone();
        other
            .metadata
            .labels
            .as_mut()
            .map(|l| l.remove(POD_NAME_LABEL));
        assert!(!identity_matches(&s, &other));
        update_identity(&s, &mut other);
        assert!(identity_matches(&s, &other));
    }

    #[test]
    fn the_partition_splits_new_pods_between_revisions() {
        let current = set(
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
        );
        let mut update = current.clone();
        update.spec.template.spec.as_mut().expect("spec").containers[0].image =
            Some("nginx:2".into());
        let image = |p: &Pod| p.spec.as_ref().and_then(|s| s.containers[0].image.clone());
        let low = new_versioned_pod(&current, &update, "web-a", "web-b", 1);
        let high = new_versioned_pod(&current, &update, "web-a", "web-b", 2);
        assert_eq!(
            (revision_of(&low), image(&low).as_deref()),
            ("web-a", Some("nginx:1"))
        );
        assert_eq!(
            (revision_of(&high), image(&high).as_deref()),
            ("web-b", Some("nginx:2"))
        );
        let ondelete = set(json!({"updateStrategy": {"type": "OnDelete"}}));
        assert_eq!(
            revision_of(&new_versioned_pod(&ondelete, &ondelete, "a", "b", 0)),
            "b"
        );
    }

    fn claim(refs: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "www-web-2", "ownerReferences": refs}}))
            .expect("claim")
    }

    #[test]
    fn claim_owners_follow_the_retention_policy() {
        let policy = |scaled: &str, deleted: &str, replicas: i32| {
            set(
                json!({"replicas": replicas, "persistentVolumeClaimRetentionPolicy": {"whenScaled": scaled, "whenDeleted": deleted}}),
            )
        };
        let mut pod = new_pod(&policy("Retain", "Retain", 3), 2);
        pod.metadata.uid = Some("pod-uid".into());
        let kinds =
            |c: &PersistentVolumeClaim| refs(c).iter().map(|r| r.kind.clone()).collect::<Vec<_>>();
        for (scaled, deleted, replicas, want) in [
            ("Retain", "Retain", 3, vec![]),
            ("Retain", "Delete", 3, vec!["StatefulSet"]),
            ("Delete", "Retain", 3, vec![]),
            ("Delete", "Retain", 2, vec!["Pod"]),
            ("Delete", "Delete", 3, vec!["StatefulSet"]),
            ("Delete", "Delete", 2, vec!["Pod"]),
        ] {
            let s = policy(scaled, deleted, replicas);
            let mut c = claim(json!([]));
            let fresh = claim_owner_up_to_date(&c, &s, &pod);
            assert_eq!(fresh, want.is_empty(), "{scaled}/{deleted}/{replicas}");
            update_claim_owner_refs(&mut c, &s, &pod);
            assert_eq!(kinds(&c), want, "{scaled}/{deleted}/{replicas}");
            assert!(
                claim_owner_up_to_date(&c, &s, &pod),
                "{scaled}/{deleted}/{replicas}"
            );
        }
        // Back to Retain: our references go, others stay.
        let s = policy("Retain", "Retain", 3);
        let mut c = claim(json!([
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid", "controller": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": "cm"}
        ]));
        assert!(!claim_owner_up_to_date(&c, &s, &pod));
        update_claim_owner_refs(&mut c, &s, &pod);
        assert_eq!(kinds(&c), vec!["ConfigMap"]);
        // A reference to an earlier pod of that name is stale: the claim awaits collection.
        let stale = claim(
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "web-2", "uid": "old", "controller": true}]),
        );
        assert!(has_stale_owner_ref(&stale, &Owner::pod(&pod)));
        assert!(claim_owner_up_to_date(
            &stale,
            &policy("Delete", "Delete", 3),
            &pod
        ));
        // Another controller: the policy is not applied over it.
        let foreign = claim(
            json!([{"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "t", "controller": true}]),
        );
        assert!(has_unexpected_controller(
            &foreign,
            &policy("Delete", "Delete", 3),
            &pod
        ));
        assert!(claim_owner_up_to_date(
            &foreign,
            &policy("Delete", "Delete", 3),
            &pod
        ));
    }

    fn running(name: &str, revision: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {REVISION_LABEL: revision}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
        }))
        .expect("pod")
    }

    #[test]
    fn status_counts_and_completes_rolling_updates() {
        let s = set(json!({}));
        let pods = [
            running("web-0", "a", true),
            running("web-1", "b", true),
            running("web-2", "b", false),
        ];
        let mut st = StatefulSetStatus {
            current_revision: Some("a".into()),
            update_revision: Some("b".into()),
            ..Default::default()
        };
        count_status(&mut st, 0, "a", "b", pods.iter());
        assert_eq!(
            (
                st.replicas,
                st.ready_replicas,
                st.available_replicas,
                st.current_replicas,
                st.updated_replicas
            ),
            (3, Some(2), Some(2), Some(1), Some(2))
        );
        complete_rolling_update(&s, &mut st);
        assert_eq!(st.current_revision.as_deref(), Some("a"));
        let pods = [
            running("web-0", "b", true),
            running("web-1", "b", true),
            running("web-2", "b", true),
        ];
        count_status(&mut st, 0, "a", "b", pods.iter());
        complete_rolling_update(&s, &mut st);
        assert_eq!(
            (st.current_revision.as_deref(), st.current_replicas),
            (Some("b"), Some(3))
        );
        // An unbuilt pod (no phase) counts for nothing.
        count_status(&mut st, 0, "a", "b", [new_pod(&s, 0)].iter());
        assert_eq!(st.replicas, 0);
    }

    #[test]
    fn max_unavailable_scales_down_to_at_least_one() {
        let s = |v: serde_json::Value| {
            set(
                json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": v}}}),
            )
        };
        assert_eq!(max_unavailable(&set(json!({})), 5), 1);
        assert_eq!(max_unavailable(&s(json!(3)), 5), 3);
        assert_eq!(max_unavailable(&s(json!("50%")), 5), 2);
        assert_eq!(max_unavailable(&s(json!("10%")), 3), 1);
    }

    #[tokio::test]
    async fn ordered_processing_stops_at_the_first_blocker() {
        let seen = std::sync::Mutex::new(Vec::new());
        let stop = run_for_all(
            5,
            |i| {
                seen.lock().expect("lock").push(i);
                async move { Ok(i == 1) }
            },
            true,
        )
        .await
        .expect("ok");
        assert!(stop);
        assert_eq!(*seen.lock().expect("lock"), vec![0, 1]);
        seen.lock().expect("lock").clear();
        let stop = run_for_all(
            5,
            |i| {
                seen.lock().expect("lock").push(i);
                async move { Ok(i == 1) }
            },
            false,
        )
        .await
        .expect("ok");
        assert!(!stop);
        assert_eq!(seen.lock().expect("lock").len(), 5);
    }
}
