//! The Deployment controller, as kube-controller-manager's `pkg/controller/deployment`: rolls a
//! Deployment's pod template out through ReplicaSets named `<deployment>-<pod-template-hash>`,
//! RollingUpdate within maxSurge/maxUnavailable or Recreate, keeps the revision history
//! (`deployment.kubernetes.io/revision` annotations, `revisionHistoryLimit`), scales
//! proportionally, and reports progress in `status` (Available and Progressing conditions, the
//! progress deadline) as `kubectl rollout` expects.
//!
//! The arithmetic of a rollout is pure ([`resolve_fenceposts`], [`new_rs_new_replicas`],
//! [`old_scale_down_plan`], [`scale_plan`]); the controller applies its answers.

use super::replicaset::{
    Backoff, Claim, Recorder, SyncError, SyncFuture, Written, api_message, apply_claim, claim,
    drive, is_not_found, key_of, namespace_terminating, resource_version,
};
use super::{Context, ControllerError, util};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{self, Action, ReconcileReason, ReconcileRequest};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label that tells a Deployment's ReplicaSets (and their pods) apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Length bound of the revision-history annotation.
const MAX_REV_HISTORY_CHARS: usize = 2000;
/// Deployments synced at once (`--concurrent-deployment-syncs`).
const CONCURRENT_SYNCS: u16 = 5;

// Condition reasons, as upstream's deploymentutil names them.
const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
const RS_UPDATED: &str = "ReplicaSetUpdated";
const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";
const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
const PAUSED: &str = "DeploymentPaused";
const RESUMED: &str = "DeploymentResumed";
const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// The controller's runner for [`super::all`].
pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run_controller(ctx, stop))
}

// ---------------------------------------------------------------------------------------------
// Rollout arithmetic

/// `spec.replicas` (defaulted by the API server, 1 if somehow absent).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32, Option<i32>) {
    let s = rs.status.as_ref();
    (
        s.map_or(0, |s| s.replicas),
        s.and_then(|s| s.ready_replicas).unwrap_or(0),
        s.and_then(|s| s.available_replicas).unwrap_or(0),
        s.and_then(|s| s.terminating_replicas),
    )
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs_status(rs).2
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// An int, or a percentage of `total` rounded up or down (upstream
/// `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(num) = s.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .to_string(),
                );
            };
            let pct: i64 = num
                .parse()
                .map_err(|e| format!("invalid value for IntOrString: invalid value {s:?}: {e}"))?;
            let exact = pct as f64 * total as f64 / 100.0;
            Ok(if round_up {
                exact.ceil()
            } else {
                exact.floor()
            } as i32)
        }
    }
}

/// maxSurge rounded up and maxUnavailable rounded down; both zero means one unavailable
/// (upstream `ResolveFenceposts`).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> Result<(i32, i32), String> {
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        replicas(d),
    )
}

/// How many pods may be unavailable during a rolling update.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    let (_, u) = fenceposts(d).unwrap_or((0, 0));
    u.min(replicas(d))
}

/// How many pods may exist above `spec.replicas` during a rolling update.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).map_or(0, |(s, _)| s)
}

fn replica_count(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| rs_replicas(rs)).sum()
}

/// How far the new ReplicaSet may grow now (upstream `NewRSNewReplicas`).
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, String> {
    if !is_rolling(d) {
        return Ok(replicas(d));
    }
    let surge = scaled_value(
        d.spec
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.max_surge.as_ref())
            .unwrap_or(&IntOrString::Int(0)),
        replicas(d),
        true,
    )?;
    let current = replica_count(all);
    let max_total = replicas(d) + surge;
    if current >= max_total {
        return Ok(rs_replicas(new_rs));
    }
    let up = (max_total - current).min(replicas(d) - rs_replicas(new_rs));
    Ok(rs_replicas(new_rs) + up)
}

/// Creation order, ties by name (upstream `ReplicaSetsByCreationTimestamp`).
fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Available pods an old ReplicaSet can count on. Its status may still count pods a scale-down
/// is deleting (the ReplicaSet controller has not seen the new size yet); the size bounds them.
fn available_for_scale_down(rs: &ReplicaSet) -> i32 {
    rs_available(rs).min(rs_replicas(rs))
}

/// The sizes old ReplicaSets go to in one rolling-update step (upstream
/// `reconcileOldReplicaSets`): unhealthy replicas are cleaned up first, then available ones
/// scaled down as far as maxUnavailable allows. `old` are the active old ReplicaSets.
pub fn old_scale_down_plan(
    d: &Deployment,
    new_rs: &ReplicaSet,
    old: &[ReplicaSet],
) -> Vec<(String, i32)> {
    let mut old: Vec<ReplicaSet> = old.to_vec();
    let old_pods: i32 = old.iter().map(rs_replicas).sum();
    if old_pods == 0 {
        return vec![];
    }
    let all_pods = old_pods + rs_replicas(new_rs);
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return vec![];
    }
    let mut plan: Vec<(String, i32)> = Vec::new();
    let set = |plan: &mut Vec<(String, i32)>, rs: &mut ReplicaSet, size: i32| {
        rs.spec.replicas = Some(size);
        let name = rs.metadata.name.clone().unwrap_or_default();
        match plan.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 = size,
            None => plan.push((name, size)),
        }
    };
    // Clean up unhealthy replicas, oldest first (upstream cleanupUnhealthyReplicas).
    old.sort_by(by_creation);
    let mut cleaned = 0;
    for rs in old.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        let (size, avail) = (rs_replicas(rs), rs_available(rs));
        if size == 0 || size == avail {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(size - avail);
        if down <= 0 {
            continue;
        }
        set(&mut plan, rs, size - down);
        cleaned += down;
    }
    // Scale down available replicas within maxUnavailable
    // (upstream scaleDownOldReplicaSetsForRollingUpdate).
    let available: i32 =
        old.iter().map(available_for_scale_down).sum::<i32>() + available_for_scale_down(new_rs);
    if available > min_available {
        let total = available - min_available;
        let mut done = 0;
        for rs in old.iter_mut() {
            if done >= total {
                break;
            }
            let size = rs_replicas(rs);
            if size == 0 {
                continue;
            }
            let down = size.min(total - done);
            set(&mut plan, rs, size - down);
            done += down;
        }
    }
    plan
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(&rs.metadata, key)?.parse().ok()
}

/// The single active ReplicaSet, or the newest one when none is active; None when several are
/// active (upstream `FindActiveOrLatest`).
fn find_active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    old: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let mut olds: Vec<&ReplicaSet> = old.iter().collect();
    olds.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = olds
        .iter()
        .copied()
        .chain(new_rs)
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    match active.len() {
        0 => new_rs.or(olds.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else {
        return false;
    };
    int_annotation(rs, DESIRED_REPLICAS).is_some_and(|desired| {
        rs_replicas(rs) == replicas(d) && desired == replicas(d) && rs_available(rs) == replicas(d)
    })
}

/// How much of a scaling of the Deployment one ReplicaSet takes (upstream
/// `GetReplicaSetProportion`).
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let max = replicas(d) + max_surge(d);
    let before = match int_annotation(rs, MAX_REPLICAS) {
        Some(v) if v != 0 => v,
        // Someone removed the annotation: the current size stands in.
        _ => d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0),
    };
    if before == 0 {
        return 0;
    }
    let size = rs_replicas(rs) as f64 * max as f64 / before as f64;
    // Go's math.Round: half away from zero.
    size.round() as i32 - rs_replicas(rs)
}

/// The sizes a scaling event gives the ReplicaSets (upstream `scale`): the single active one
/// takes it all, a saturated new one leaves nothing to the old, otherwise the change is shared
/// in proportion to the ReplicaSets' sizes. The string is the scaling direction for events.
pub fn scale_plan(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
) -> (Vec<(String, i32)>, &'static str) {
    let name = |rs: &ReplicaSet| rs.metadata.name.clone().unwrap_or_default();
    if let Some(rs) = find_active_or_latest(new_rs, old) {
        if rs_replicas(rs) == replicas(d) {
            return (vec![], "");
        }
        let op = if rs_replicas(rs) < replicas(d) {
            "up"
        } else {
            "down"
        };
        return (vec![(name(rs), replicas(d))], op);
    }
    if is_saturated(d, new_rs) {
        return (
            old.iter()
                .filter(|rs| rs_replicas(rs) > 0)
                .map(|rs| (name(rs), 0))
                .collect(),
            "down",
        );
    }
    if !is_rolling(d) {
        return (vec![], "");
    }
    let mut active: Vec<&ReplicaSet> = old
        .iter()
        .chain(new_rs)
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    let current = replica_count(&active);
    let allowed = if replicas(d) > 0 {
        replicas(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - current;
    let op = match to_add.cmp(&0) {
        Ordering::Greater => {
            // Larger first; among equals, scale up the newer ones first.
            active.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| by_creation(b, a))
            });
            "up"
        }
        Ordering::Less => {
            // Larger first; among equals, scale down the older ones first.
            active.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| by_creation(a, b))
            });
            "down"
        }
        Ordering::Equal => "",
    };
    let mut sizes: Vec<(String, i32)> = Vec::new();
    let mut added = 0;
    for rs in &active {
        if to_add != 0 {
            let p = proportion(rs, d, to_add, added);
            sizes.push((name(rs), rs_replicas(rs) + p));
            added += p;
        } else {
            sizes.push((name(rs), rs_replicas(rs)));
        }
    }
    // Leftovers go to the largest.
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    (sizes, op)
}

// ---------------------------------------------------------------------------------------------
// Templates, hashes and revisions

/// A template as Go's semantic equality sees it: no pod-template-hash label, and absent, null,
/// zero and empty values all alike.
fn normalized_template(t: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    prune(&mut v);
    v
}

/// Drops empty values from objects, recursively; keys end up sorted.
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !*b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => {
            for x in a.iter_mut() {
                prune(x);
            }
            a.is_empty()
        }
        Value::Object(o) => {
            let mut sorted: Vec<(String, Value)> = std::mem::take(o).into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut x) in sorted {
                if !prune(&mut x) {
                    o.insert(k, x);
                }
            }
            o.is_empty()
        }
    }
}

/// Templates equal but for the pod-template-hash label (upstream `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalized_template(a) == normalized_template(b)
}

/// The pod-template-hash of a template: FNV-32a over the template (here its canonical JSON;
/// upstream hashes Go's dump of the struct) and the collision count, printed in decimal and
/// spelled with the consonants and digits of `rand.SafeEncodeString`.
pub fn compute_hash(t: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let canonical = normalized_template(t).to_string();
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(canonical.as_bytes());
    if let Some(c) = collision_count {
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&(c as u32).to_le_bytes());
        feed(&buf);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// The revision recorded on an object; 0 without one, None when unparsable.
fn revision(meta: &ObjectMeta) -> Option<i64> {
    match annotation(meta, REVISION) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter()
        .filter_map(|rs| revision(&rs.metadata))
        .max()
        .unwrap_or(0)
        .max(0)
}

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// Sets desired-replicas and max-replicas; true if they changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Copies the Deployment's annotations to its new ReplicaSet and raises the ReplicaSet's
/// revision, keeping the revisions it served before (a rollback) in revision-history (upstream
/// `SetNewReplicaSetAnnotations`). True if anything changed.
fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    history_limit: usize,
) -> bool {
    let mut changed = false;
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || a.get(k) == Some(v) {
            continue;
        }
        a.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = a.get(REVISION).cloned();
    let old_rev = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_rev < new_revision {
        a.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut revs: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > history_limit && start < revs.len() {
                    total -= revs[start].len() + 1;
                    start += 1;
                }
                if total <= history_limit {
                    revs = revs.split_off(start);
                    revs.push(&old);
                    let joined = revs.join(",");
                    a.insert(REVISION_HISTORY.into(), joined);
                }
            }
        }
    }
    if !exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// The ReplicaSet running the Deployment's current template, the oldest if several do.
fn find_new_rs<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted.into_iter().find(|rs| {
        rs.spec
            .template
            .as_ref()
            .is_some_and(|t| equal_ignore_hash(t, &d.spec.template))
    })
}

fn selector_with_hash(sel: &LabelSelector, hash: &str) -> LabelSelector {
    let mut s = sel.clone();
    s.match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    s
}

fn selects_everything(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

// ---------------------------------------------------------------------------------------------
// Conditions and status

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn new_condition(type_: &str, status: &str, reason: &str, message: String) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now()),
        last_transition_time: Some(now()),
    }
}

fn get_condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))
}

/// Upstream `SetDeploymentCondition`: same status and reason is no change; same status keeps
/// the transition time.
fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let ty = c.type_.clone().unwrap_or_default();
    if let Some(cur) = get_condition(s, &ty) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, &ty);
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_.as_deref() != Some(type_));
    }
}

fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .progress_deadline_seconds
        .is_some_and(|s| s != i32::MAX)
}

fn has_revision_history_limit(d: &Deployment) -> bool {
    d.spec.revision_history_limit.is_some_and(|l| l != i32::MAX)
}

fn status_of(d: &Deployment) -> DeploymentStatus {
    d.status.clone().unwrap_or_default()
}

/// Zero counts and empty lists as the API prints them (omitted), for comparisons.
fn normalized(s: &DeploymentStatus) -> DeploymentStatus {
    let nz = |v: Option<i32>| v.filter(|n| *n != 0);
    DeploymentStatus {
        available_replicas: nz(s.available_replicas),
        ready_replicas: nz(s.ready_replicas),
        replicas: nz(s.replicas),
        unavailable_replicas: nz(s.unavailable_replicas),
        updated_replicas: nz(s.updated_replicas),
        observed_generation: s.observed_generation.filter(|g| *g != 0),
        conditions: s.conditions.clone().filter(|c| !c.is_empty()),
        ..s.clone()
    }
}

/// Upstream `calculateStatus`.
fn calculate_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| rs_available(rs)).sum();
    let total = replica_count(all);
    let prev = status_of(d);
    // Terminating pods are known once every ReplicaSet that was synced reports them.
    let mut terminating = Some(0);
    for rs in all {
        let (_, _, _, t) = rs_status(rs);
        let synced = rs
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0)
            != 0;
        match t {
            Some(n) => terminating = terminating.map(|sum| sum + n),
            None if !synced => {}
            None => terminating = None,
        }
    }
    let mut s = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|rs| rs_status(rs).0).sum()),
        updated_replicas: Some(new_rs.map_or(0, |rs| rs_status(rs).0)),
        ready_replicas: Some(all.iter().map(|rs| rs_status(rs).1).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        terminating_replicas: terminating,
        collision_count: prev.collision_count,
        conditions: prev.conditions.clone(),
    };
    if available >= replicas(d) - max_unavailable(d) {
        set_condition(
            &mut s,
            new_condition(
                "Available",
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
            ),
        );
    } else {
        set_condition(
            &mut s,
            new_condition(
                "Available",
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
            ),
        );
    }
    s
}

fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

fn deployment_progressing(d: &Deployment, s: &DeploymentStatus) -> bool {
    let old = status_of(d);
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_olds = n(old.replicas) - n(old.updated_replicas);
    let new_olds = n(s.replicas) - n(s.updated_replicas);
    n(s.updated_replicas) > n(old.updated_replicas)
        || new_olds < old_olds
        || n(s.ready_replicas) > n(old.ready_replicas)
        || n(s.available_replicas) > n(old.available_replicas)
}

fn deployment_timed_out(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get_condition(s, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c.last_update_time.as_ref().is_some_and(|t| {
            let deadline = d.spec.progress_deadline_seconds.unwrap_or(0) as i64;
            t.0 + jiff::SignedDuration::from_secs(deadline) < now
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// The controller

struct Dc {
    client: kube::Client,
    events: Recorder,
    rss: Store<ReplicaSet>,
    pods: Store<Pod>,
    written: Written,
    backoff: Backoff,
}

async fn run_controller(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("deployment-controller")?;
    let events = Recorder::new(&ctx, client.clone(), "deployment-controller");
    let (deployments, d_writer) = reflector::store::<Deployment>();
    let (rss, rs_writer) = reflector::store::<ReplicaSet>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let dc = Arc::new(Dc {
        client: client.clone(),
        events,
        rss: rss.clone(),
        pods: pods.clone(),
        written: Written::default(),
        backoff: Backoff::default(),
    });
    let d_stream = reflector::reflector(
        d_writer,
        watcher(
            Api::<Deployment>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    let me = dc.clone();
    let d_triggers =
        controller::trigger_with(d_stream, move |ev: watcher::Event<Deployment>| match ev {
            watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                vec![request(ObjectRef::from_obj(&d))]
            }
            watcher::Event::Delete(d) => {
                me.written.forget(&key_of(&d.metadata));
                vec![]
            }
            watcher::Event::Init | watcher::Event::InitDone => vec![],
        });

    let store = deployments.clone();
    let rs_stream = reflector::reflector(
        rs_writer,
        watcher(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .touched_objects();
    let rs_triggers = controller::trigger_with(rs_stream, move |rs: ReplicaSet| {
        deployments_for_rs(&store, &rs)
    });

    let (store, rs_store) = (deployments.clone(), rss.clone());
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    // Recreate waits for old pods to be gone: their deletions wake it.
    let pod_triggers = controller::trigger_with(pod_stream, move |ev: watcher::Event<Pod>| {
        let watcher::Event::Delete(pod) = ev else {
            return vec![];
        };
        recreate_deployment_for_pod(&store, &rs_store, &pod)
    });

    let applier = controller::applier(
        |d, c: Arc<Dc>| -> SyncFuture { Box::pin(async move { c.sync(d).await }) },
        |d, _err, c: Arc<Dc>| Action::requeue(c.backoff.next(&key_of(&d.metadata))),
        dc,
        deployments,
        futures::stream::select(
            d_triggers,
            futures::stream::select(rs_triggers, pod_triggers),
        ),
        controller::Config::default().concurrency(CONCURRENT_SYNCS),
    );
    drive("deployment", applier, stop).await;
    Ok(())
}

fn request(obj_ref: ObjectRef<Deployment>) -> ReconcileRequest<Deployment> {
    ReconcileRequest {
        obj_ref,
        reason: ReconcileReason::ObjectUpdated,
    }
}

/// The Deployments a ReplicaSet event wakes: its controller, or those that could adopt it.
fn deployments_for_rs(
    store: &Store<Deployment>,
    rs: &ReplicaSet,
) -> Vec<ReconcileRequest<Deployment>> {
    let ns = rs.metadata.namespace.as_deref().unwrap_or("");
    if let Some(owner) = util::controller_of(&rs.metadata) {
        if owner.kind != "Deployment" {
            return vec![];
        }
        return vec![request(ObjectRef::new(&owner.name).within(ns))];
    }
    if rs.metadata.deletion_timestamp.is_some() {
        return vec![];
    }
    store
        .state()
        .iter()
        .filter(|d| d.metadata.namespace.as_deref() == Some(ns))
        .filter(|d| {
            util::selector(&d.spec.selector)
                .is_some_and(|s| util::matches(&s, rs.metadata.labels.as_ref()))
        })
        .map(|d| request(ObjectRef::from_obj(d.as_ref())))
        .collect()
}

fn recreate_deployment_for_pod(
    store: &Store<Deployment>,
    rss: &Store<ReplicaSet>,
    pod: &Pod,
) -> Vec<ReconcileRequest<Deployment>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let Some(rs_ref) = util::controller_of(&pod.metadata).filter(|o| o.kind == "ReplicaSet") else {
        return vec![];
    };
    let Some(rs) = rss.get(&ObjectRef::new(&rs_ref.name).within(ns)) else {
        return vec![];
    };
    let Some(d_ref) = util::controller_of(&rs.metadata).filter(|o| o.kind == "Deployment") else {
        return vec![];
    };
    let obj_ref = ObjectRef::new(&d_ref.name).within(ns);
    match store.get(&obj_ref) {
        Some(d) if !is_rolling(&d) => vec![request(obj_ref)],
        _ => vec![],
    }
}

/// The Deployment being synced, with what changed in it that is not status.
struct Work {
    d: Deployment,
    /// Annotations changed (the revision): written before the status.
    meta_changed: bool,
}

impl Dc {
    async fn sync(self: Arc<Self>, d: Arc<Deployment>) -> Result<Action, SyncError> {
        self.rss.wait_until_ready().await?;
        self.pods.wait_until_ready().await?;
        let key = key_of(&d.metadata);
        // Our last writes not cached yet: their events bring us back.
        let ready = self.written.ready(&key, |k| match k.split_once(':') {
            Some(("deployment", _)) => resource_version(&d.metadata),
            Some((_, rs)) => {
                let (ns, name) = rs.split_once('/')?;
                let cached = self.rss.get(&ObjectRef::new(name).within(ns))?;
                resource_version(&cached.metadata)
            }
            None => None,
        });
        if !ready {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let result = self
            .sync_deployment(Work {
                d: (*d).clone(),
                meta_changed: false,
            })
            .await;
        if result.is_ok() {
            self.backoff.reset(&key);
        }
        result
    }

    fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Records a ReplicaSet written while syncing `d`.
    fn wrote_rs(&self, d: &Deployment, rs: &ReplicaSet, created: bool) {
        self.written.wrote(
            &key_of(&d.metadata),
            format!("replicaset:{}", key_of(&rs.metadata)),
            &rs.metadata,
            created,
        );
    }

    fn ns(w: &Work) -> String {
        w.d.metadata.namespace.clone().unwrap_or_default()
    }

    /// Upstream `syncDeployment`.
    async fn sync_deployment(&self, mut w: Work) -> Result<Action, SyncError> {
        if selects_everything(&w.d.spec.selector) {
            self.events
                .warning(
                    &w.d.object_ref(&()),
                    "SelectingAll",
                    "Sync",
                    "This deployment is selecting all pods. A non-empty selector is required."
                        .into(),
                )
                .await;
            let mut s = status_of(&w.d);
            if s.observed_generation.unwrap_or(0) < w.d.metadata.generation.unwrap_or(0) {
                s.observed_generation = w.d.metadata.generation;
                w.d.status = Some(s);
                self.write(&mut w).await?;
            }
            return Ok(Action::await_change());
        }
        let mut rs_list = self.claim_replica_sets(&w.d).await?;
        let pod_map = self.pod_map(&w.d, &rs_list);
        if w.d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old) = self
                .all_rss_and_sync_revision(&mut w, &mut rs_list, false)
                .await?;
            self.sync_deployment_status(&mut w, new_rs.as_ref(), &old)
                .await?;
            return Ok(Action::await_change());
        }
        self.check_paused_conditions(&mut w).await?;
        if w.d.spec.paused == Some(true) {
            return self.sync_scaling(&mut w, &mut rs_list).await;
        }
        if self.is_scaling_event(&mut w, &mut rs_list).await? {
            return self.sync_scaling(&mut w, &mut rs_list).await;
        }
        if is_rolling(&w.d) {
            self.rollout_rolling(&mut w, &mut rs_list).await
        } else {
            self.rollout_recreate(&mut w, &mut rs_list, &pod_map).await
        }
    }

    /// Writes what changed of the Deployment: annotations through an update (this server keeps
    /// metadata out of status writes, which upstream's Deployment status strategy lets
    /// through), then the status.
    async fn write(&self, w: &mut Work) -> Result<(), SyncError> {
        let ns = Self::ns(w);
        let name = w.d.metadata.name.clone().unwrap_or_default();
        let api: Api<Deployment> = self.api(&ns);
        let pp = PostParams::default();
        if w.meta_changed {
            let status = w.d.status.clone();
            let mut updated = api.replace(&name, &pp, &w.d).await?;
            updated.status = status;
            w.d = updated;
            w.meta_changed = false;
        }
        w.d = api.replace_status(&name, &pp, &w.d).await?;
        let key = key_of(&w.d.metadata);
        self.written
            .wrote(&key, format!("deployment:{key}"), &w.d.metadata, false);
        Ok(())
    }

    /// Upstream `getReplicaSetsForDeployment`: ReplicaSets the Deployment controls, adopting
    /// matching orphans and releasing those that stopped matching.
    async fn claim_replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, SyncError> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let Some(sel) = util::selector(&d.spec.selector) else {
            return Ok(vec![]);
        };
        let Some(owner_ref) = util::controller_ref(d) else {
            return Ok(vec![]);
        };
        let api: Api<ReplicaSet> = self.api(&ns);
        let candidates = self
            .rss
            .state_filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()));
        let mut claimed = Vec::new();
        let mut can_adopt: Option<Result<(), String>> = None;
        let mut first_err = None;
        for rs in candidates {
            let decision = claim(&rs.metadata, &d.metadata, &sel);
            if decision == Claim::Ignore {
                continue;
            }
            if decision == Claim::Adopt {
                if can_adopt.is_none() {
                    can_adopt = Some(self.recheck_deletion(d).await);
                }
                if let Some(Err(msg)) = &can_adopt {
                    first_err.get_or_insert_with(|| {
                        SyncError::Other(format!(
                            "can't adopt ReplicaSet {ns}/{}: {msg}",
                            rs.metadata.name.as_deref().unwrap_or("")
                        ))
                    });
                    continue;
                }
            }
            match apply_claim(&api, rs.as_ref(), decision, &owner_ref).await {
                Ok(true) => claimed.push((*rs).clone()),
                Ok(false) => {}
                Err(e) => {
                    first_err.get_or_insert(SyncError::Api(e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(claimed),
        }
    }

    async fn recheck_deletion(&self, d: &Deployment) -> Result<(), String> {
        let ns = d.metadata.namespace.as_deref().unwrap_or("");
        let name = d.metadata.name.as_deref().unwrap_or("");
        match self.api::<Deployment>(ns).get(name).await {
            Ok(fresh) if fresh.metadata.uid != d.metadata.uid => Err(format!(
                "original Deployment {ns}/{name} is gone: got uid {}, wanted {}",
                fresh.metadata.uid.as_deref().unwrap_or(""),
                d.metadata.uid.as_deref().unwrap_or("")
            )),
            Ok(fresh) if fresh.metadata.deletion_timestamp.is_some() => {
                Err(format!("Deployment {ns}/{name} has just been deleted"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(api_message(&e)),
        }
    }

    /// Pods of the Deployment grouped by the ReplicaSet controlling them (upstream
    /// `getPodMapForDeployment`); inactive pods too: Recreate waits for them.
    fn pod_map(&self, d: &Deployment, rss: &[ReplicaSet]) -> HashMap<String, Vec<Arc<Pod>>> {
        let mut map: HashMap<String, Vec<Arc<Pod>>> = rss
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .map(|u| (u, Vec::new()))
            .collect();
        let Some(sel) = util::selector(&d.spec.selector) else {
            return map;
        };
        let ns = d.metadata.namespace.as_deref();
        for p in self.pods.state_filter(|p| {
            p.metadata.namespace.as_deref() == ns && util::matches(&sel, p.metadata.labels.as_ref())
        }) {
            if let Some(owner) = util::controller_of(&p.metadata)
                && let Some(list) = map.get_mut(&owner.uid)
            {
                list.push(p);
            }
        }
        map
    }

    /// Upstream `checkPausedConditions`: Progressing goes Unknown while paused, so the time
    /// paused does not count against the progress deadline.
    async fn check_paused_conditions(&self, w: &mut Work) -> Result<(), SyncError> {
        if !has_progress_deadline(&w.d) {
            return Ok(());
        }
        let mut s = status_of(&w.d);
        let cond = get_condition(&s, "Progressing");
        if cond.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
        let paused = w.d.spec.paused == Some(true);
        let c = if paused && !paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                PAUSED,
                "Deployment is paused".into(),
            )
        } else if !paused && paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                RESUMED,
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        set_condition(&mut s, c);
        w.d.status = Some(s);
        self.write(w).await
    }

    /// Upstream `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created if asked) with
    /// its revision brought up to date, and all the old ones.
    async fn all_rss_and_sync_revision(
        &self,
        w: &mut Work,
        rs_list: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), SyncError> {
        let new_uid = find_new_rs(&w.d, rs_list).and_then(|rs| rs.metadata.uid.clone());
        let old: Vec<ReplicaSet> = rs_list
            .iter()
            .filter(|rs| new_uid.is_none() || rs.metadata.uid != new_uid)
            .cloned()
            .collect();
        let new_rs = self.new_replica_set(w, rs_list, &old, create).await?;
        Ok((new_rs, old))
    }

    /// Upstream `getNewReplicaSet`.
    async fn new_replica_set(
        &self,
        w: &mut Work,
        rs_list: &mut Vec<ReplicaSet>,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>, SyncError> {
        let ns = Self::ns(w);
        let api: Api<ReplicaSet> = self.api(&ns);
        let new_revision = max_revision(old) + 1;
        if let Some(existing) = find_new_rs(&w.d, rs_list) {
            let mut copy = existing.clone();
            let annotations =
                set_new_rs_annotations(&w.d, &mut copy, new_revision, true, MAX_REV_HISTORY_CHARS);
            let min_ready =
                copy.spec.min_ready_seconds.unwrap_or(0) != w.d.spec.min_ready_seconds.unwrap_or(0);
            if annotations || min_ready {
                copy.spec.min_ready_seconds = w.d.spec.min_ready_seconds;
                let name = copy.metadata.name.clone().unwrap_or_default();
                let updated = api.replace(&name, &PostParams::default(), &copy).await?;
                self.wrote_rs(&w.d, &updated, false);
                replace_in(rs_list, &updated);
                return Ok(Some(updated));
            }
            let rev = annotation(&copy.metadata, REVISION)
                .unwrap_or("")
                .to_string();
            let mut needs_update = set_deployment_revision(w, &rev);
            let mut s = status_of(&w.d);
            if has_progress_deadline(&w.d) && get_condition(&s, "Progressing").is_none() {
                let msg = format!(
                    "Found new replica set {:?}",
                    copy.metadata.name.as_deref().unwrap_or("")
                );
                set_condition(
                    &mut s,
                    new_condition("Progressing", "True", FOUND_NEW_RS, msg),
                );
                w.d.status = Some(s);
                needs_update = true;
            }
            if needs_update {
                self.write(w).await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }

        // None yet: create it.
        let d = &w.d;
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&d.spec.template, collision_count);
        let mut template = d.spec.template.clone();
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = meta.labels.clone();
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or(""));
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                owner_references: util::controller_ref(d).map(|r| vec![r]),
                labels,
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.min_ready_seconds,
                selector: selector_with_hash(&d.spec.selector, &hash),
                template: Some(template),
            },
            status: None,
        };
        let count = {
            let all: Vec<&ReplicaSet> = old.iter().chain([&new_rs]).collect();
            new_rs_new_replicas(d, &all, &new_rs).map_err(SyncError::Other)?
        };
        new_rs.spec.replicas = Some(count);
        set_new_rs_annotations(d, &mut new_rs, new_revision, false, MAX_REV_HISTORY_CHARS);
        let d_ref = d.object_ref(&());
        let mut already_exists = false;
        let created = match api.create(&PostParams::default(), &new_rs).await {
            Ok(rs) => {
                self.wrote_rs(&w.d, &rs, true);
                rs
            }
            Err(kube::Error::Api(conflict)) if conflict.is_already_exists() => {
                // A slow cache, or a hash collision with someone else's ReplicaSet.
                already_exists = true;
                let existing = match self.rss.get(&ObjectRef::new(&name).within(&ns)) {
                    Some(rs) => (*rs).clone(),
                    None => api.get(&name).await?,
                };
                let ours = util::controlled_by(
                    &existing.metadata,
                    w.d.metadata.uid.as_deref().unwrap_or(""),
                ) && existing
                    .spec
                    .template
                    .as_ref()
                    .is_some_and(|t| equal_ignore_hash(t, &w.d.spec.template));
                if !ours {
                    let mut s = status_of(&w.d);
                    s.collision_count = Some(s.collision_count.unwrap_or(0) + 1);
                    w.d.status = Some(s);
                    if self.write(w).await.is_ok() {
                        tracing::info!(deployment = %key_of(&w.d.metadata), "hash collision: bumped collisionCount");
                    }
                    return Err(SyncError::Api(kube::Error::Api(conflict)));
                }
                existing
            }
            Err(e) if namespace_terminating(&e) => return Err(e.into()),
            Err(e) => {
                let msg = format!(
                    "Failed to create new replica set {name:?}: {}",
                    api_message(&e)
                );
                if has_progress_deadline(&w.d) {
                    let mut s = status_of(&w.d);
                    set_condition(
                        &mut s,
                        new_condition("Progressing", "False", FAILED_RS_CREATE, msg.clone()),
                    );
                    w.d.status = Some(s);
                    let _ = self.write(w).await;
                }
                self.events
                    .warning(&d_ref, FAILED_RS_CREATE, "Create", msg)
                    .await;
                return Err(e.into());
            }
        };
        if !already_exists && count > 0 {
            self.events
                .normal(
                    &d_ref,
                    "ScalingReplicaSet",
                    "Scale",
                    format!("Scaled up replica set {name} from 0 to {count}"),
                )
                .await;
        }
        replace_in(rs_list, &created);
        let mut needs_update = set_deployment_revision(w, &new_revision.to_string());
        if !already_exists && has_progress_deadline(&w.d) {
            let mut s = status_of(&w.d);
            set_condition(
                &mut s,
                new_condition(
                    "Progressing",
                    "True",
                    NEW_RS_CREATED,
                    format!("Created new replica set {name:?}"),
                ),
            );
            w.d.status = Some(s);
            needs_update = true;
        }
        if needs_update {
            self.write(w).await?;
        }
        Ok(Some(created))
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was sized for another replica count.
    async fn is_scaling_event(
        &self,
        w: &mut Work,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<bool, SyncError> {
        let (new_rs, old) = self.all_rss_and_sync_revision(w, rs_list, false).await?;
        let want = replicas(&w.d);
        Ok(old
            .iter()
            .chain(new_rs.as_ref())
            .filter(|rs| rs_replicas(rs) > 0)
            .filter_map(|rs| int_annotation(rs, DESIRED_REPLICAS))
            .any(|desired| desired != want))
    }

    /// Upstream `sync`: scaling events and paused Deployments (no rollout).
    async fn sync_scaling(
        &self,
        w: &mut Work,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Action, SyncError> {
        let (new_rs, old) = self.all_rss_and_sync_revision(w, rs_list, false).await?;
        let (plan, op) = scale_plan(&w.d, new_rs.as_ref(), &old);
        let mut rss: Vec<ReplicaSet> = old.iter().cloned().chain(new_rs.clone()).collect();
        for (name, size) in plan {
            if let Some(rs) = rss
                .iter_mut()
                .find(|r| r.metadata.name.as_deref() == Some(&name))
            {
                let (_, updated) = self.scale_replica_set(rs, size, &w.d, op).await?;
                *rs = updated;
            }
        }
        let new_uid = new_rs.as_ref().and_then(|r| r.metadata.uid.clone());
        let (new_rs, old): (Vec<ReplicaSet>, Vec<ReplicaSet>) = rss
            .into_iter()
            .partition(|r| new_uid.is_some() && r.metadata.uid == new_uid);
        if w.d.spec.paused == Some(true) {
            self.cleanup(&w.d, &old).await?;
        }
        self.sync_deployment_status(w, new_rs.first(), &old).await?;
        Ok(Action::await_change())
    }

    /// Upstream `rolloutRolling`.
    async fn rollout_rolling(
        &self,
        w: &mut Work,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Action, SyncError> {
        let (new_rs, mut old) = self.all_rss_and_sync_revision(w, rs_list, true).await?;
        let Some(mut new_rs) = new_rs else {
            return Err(SyncError::Other("no new replica set".into()));
        };
        // Scale up the new ReplicaSet (upstream reconcileNewReplicaSet).
        let want = replicas(&w.d);
        let target = match rs_replicas(&new_rs).cmp(&want) {
            Ordering::Equal => None,
            Ordering::Greater => Some(want),
            Ordering::Less => {
                let all: Vec<&ReplicaSet> = old.iter().chain([&new_rs]).collect();
                Some(new_rs_new_replicas(&w.d, &all, &new_rs).map_err(SyncError::Other)?)
            }
        };
        if let Some(size) = target {
            let (scaled, updated) = self.scale_and_record(&new_rs, size, &w.d).await?;
            new_rs = updated;
            if scaled {
                return self.sync_rollout_status(w, Some(&new_rs), &old).await;
            }
        }
        // Scale down the old ones.
        let active: Vec<ReplicaSet> = old
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .cloned()
            .collect();
        let mut scaled_down = false;
        for (name, size) in old_scale_down_plan(&w.d, &new_rs, &active) {
            if let Some(rs) = old
                .iter_mut()
                .find(|r| r.metadata.name.as_deref() == Some(&name))
            {
                let (scaled, updated) = self.scale_and_record(rs, size, &w.d).await?;
                scaled_down |= scaled;
                *rs = updated;
            }
        }
        if scaled_down {
            return self.sync_rollout_status(w, Some(&new_rs), &old).await;
        }
        if deployment_complete(&w.d, &status_of(&w.d)) {
            self.cleanup(&w.d, &old).await?;
        }
        self.sync_rollout_status(w, Some(&new_rs), &old).await
    }

    /// Upstream `rolloutRecreate`: every old pod gone before the new ReplicaSet scales up.
    async fn rollout_recreate(
        &self,
        w: &mut Work,
        rs_list: &mut Vec<ReplicaSet>,
        pod_map: &HashMap<String, Vec<Arc<Pod>>>,
    ) -> Result<Action, SyncError> {
        // No new ReplicaSet yet: it is created only once the old pods are gone.
        let (mut new_rs, mut old) = self.all_rss_and_sync_revision(w, rs_list, false).await?;
        let mut scaled_down = false;
        for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
            let (scaled, updated) = self.scale_and_record(rs, 0, &w.d).await?;
            scaled_down |= scaled;
            *rs = updated;
        }
        if scaled_down || old_pods_running(new_rs.as_ref(), &old, pod_map) {
            return self.sync_rollout_status(w, new_rs.as_ref(), &old).await;
        }
        if new_rs.is_none() {
            (new_rs, old) = self.all_rss_and_sync_revision(w, rs_list, true).await?;
        }
        if let Some(rs) = new_rs.as_mut() {
            let (_, updated) = self.scale_and_record(rs, replicas(&w.d), &w.d).await?;
            *rs = updated;
        }
        if deployment_complete(&w.d, &status_of(&w.d)) {
            self.cleanup(&w.d, &old).await?;
        }
        self.sync_rollout_status(w, new_rs.as_ref(), &old).await
    }

    /// Upstream `scaleReplicaSetAndRecordEvent`.
    async fn scale_and_record(
        &self,
        rs: &ReplicaSet,
        size: i32,
        d: &Deployment,
    ) -> Result<(bool, ReplicaSet), SyncError> {
        if rs_replicas(rs) == size {
            return Ok((false, rs.clone()));
        }
        let op = if rs_replicas(rs) < size { "up" } else { "down" };
        self.scale_replica_set(rs, size, d, op).await
    }

    /// Upstream `scaleReplicaSet`: the size, and the replica annotations that let later
    /// scaling events be told apart from rollouts.
    async fn scale_replica_set(
        &self,
        rs: &ReplicaSet,
        size: i32,
        d: &Deployment,
        op: &str,
    ) -> Result<(bool, ReplicaSet), SyncError> {
        let (desired, max) = (replicas(d), replicas(d) + max_surge(d));
        let resize = rs_replicas(rs) != size;
        if !resize && !replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let old_size = rs_replicas(rs);
        let mut copy = rs.clone();
        copy.spec.replicas = Some(size);
        set_replicas_annotations(&mut copy, desired, max);
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let name = rs.metadata.name.clone().unwrap_or_default();
        let updated = self
            .api::<ReplicaSet>(&ns)
            .replace(&name, &PostParams::default(), &copy)
            .await?;
        self.wrote_rs(d, &updated, false);
        if resize {
            self.events
                .normal(
                    &d.object_ref(&()),
                    "ScalingReplicaSet",
                    "Scale",
                    format!("Scaled {op} replica set {name} from {old_size} to {size}"),
                )
                .await;
        }
        Ok((resize, updated))
    }

    /// Upstream `cleanupDeployment`: deletes the oldest revisions beyond
    /// `revisionHistoryLimit`, never one that still has pods.
    async fn cleanup(&self, d: &Deployment, old: &[ReplicaSet]) -> Result<(), SyncError> {
        if !has_revision_history_limit(d) {
            return Ok(());
        }
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let limit = d.spec.revision_history_limit.unwrap_or(0).max(0) as usize;
        if cleanable.len() <= limit {
            return Ok(());
        }
        let diff = cleanable.len() - limit;
        cleanable.sort_by(
            |a, b| match (revision(&a.metadata), revision(&b.metadata)) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                _ => by_creation(a, b),
            },
        );
        for rs in cleanable.into_iter().take(diff) {
            let (status_replicas, _, _, _) = rs_status(rs);
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if status_replicas != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            let ns = rs.metadata.namespace.clone().unwrap_or_default();
            let name = rs.metadata.name.clone().unwrap_or_default();
            tracing::debug!(replicaset = %name, "cleaning up an old revision");
            match self
                .api::<ReplicaSet>(&ns)
                .delete(&name, &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Upstream `syncDeploymentStatus`.
    async fn sync_deployment_status(
        &self,
        w: &mut Work,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<(), SyncError> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let s = calculate_status(&all, new_rs, &w.d);
        if normalized(&s) == normalized(&status_of(&w.d)) {
            return Ok(());
        }
        w.d.status = Some(s);
        self.write(w).await
    }

    /// Upstream `syncRolloutStatus`: counts and the Progressing condition, with a requeue at
    /// the progress deadline when nothing moves.
    async fn sync_rollout_status(
        &self,
        w: &mut Work,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<Action, SyncError> {
        let d = &w.d;
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let mut s = calculate_status(&all, new_rs, d);
        if !has_progress_deadline(d) {
            remove_condition(&mut s, "Progressing");
        }
        let cur = get_condition(&status_of(d), "Progressing").cloned();
        let complete = s.replicas == s.updated_replicas
            && cur.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
        let now = jiff::Timestamp::now();
        let rs_name = new_rs.and_then(|rs| rs.metadata.name.clone());
        let d_name = d.metadata.name.clone().unwrap_or_default();
        if has_progress_deadline(d) && !complete {
            if deployment_complete(d, &s) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} has successfully progressed."),
                    None => format!("Deployment {d_name:?} has successfully progressed."),
                };
                set_condition(
                    &mut s,
                    new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg),
                );
            } else if deployment_progressing(d, &s) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} is progressing."),
                    None => format!("Deployment {d_name:?} is progressing."),
                };
                let mut c = new_condition("Progressing", "True", RS_UPDATED, msg);
                // Progress moves lastUpdateTime even with the same reason; a true condition
                // keeps its transition time.
                if let Some(cur) = &cur {
                    if cur.status.as_deref() == Some("True") {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut s, "Progressing");
                }
                set_condition(&mut s, c);
            } else if deployment_timed_out(d, &s, now) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} has timed out progressing."),
                    None => format!("Deployment {d_name:?} has timed out progressing."),
                };
                set_condition(
                    &mut s,
                    new_condition("Progressing", "False", TIMED_OUT, msg),
                );
            }
        }
        // A failure of a ReplicaSet becomes the Deployment's (the new one's first).
        let failure = new_rs
            .into_iter()
            .chain(all.iter().copied())
            .filter_map(|rs| rs.status.as_ref()?.conditions.as_ref())
            .flatten()
            .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
            .cloned();
        match failure {
            Some(c) => set_condition(
                &mut s,
                DeploymentCondition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_update_time: c.last_transition_time.clone(),
                    last_transition_time: c.last_transition_time,
                },
            ),
            None => remove_condition(&mut s, "ReplicaFailure"),
        }
        if normalized(&s) == normalized(&status_of(d)) {
            return Ok(requeue_stuck(d, &s, now));
        }
        w.d.status = Some(s);
        self.write(w).await?;
        Ok(Action::await_change())
    }
}

/// Upstream `requeueStuckDeployment`: look again when the progress deadline passes.
fn requeue_stuck(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> Action {
    let prev = status_of(d);
    let Some(cur) = get_condition(&prev, "Progressing") else {
        return Action::await_change();
    };
    if !has_progress_deadline(d)
        || deployment_complete(d, s)
        || cur.reason.as_deref() == Some(TIMED_OUT)
    {
        return Action::await_change();
    }
    let Some(updated) = cur.last_update_time.as_ref() else {
        return Action::await_change();
    };
    let deadline = updated.0
        + jiff::SignedDuration::from_secs(d.spec.progress_deadline_seconds.unwrap_or(0) as i64);
    let after = Duration::try_from(deadline.duration_since(now)).unwrap_or_default();
    if after < Duration::from_secs(1) {
        return Action::requeue(Duration::from_secs(1));
    }
    Action::requeue(after + Duration::from_secs(1))
}

/// Upstream `oldPodsRunning`: pods of old ReplicaSets not yet finished (Recreate waits).
fn old_pods_running(
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    pod_map: &HashMap<String, Vec<Arc<Pod>>>,
) -> bool {
    if old.iter().map(|rs| rs_status(rs).0).sum::<i32>() > 0 {
        return true;
    }
    let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
    pod_map.iter().any(|(uid, pods)| {
        Some(uid.as_str()) != new_uid
            && pods.iter().any(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
    })
}

/// Records the revision on the Deployment; true if it changed.
fn set_deployment_revision(w: &mut Work, rev: &str) -> bool {
    let a = w.d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if a.get(REVISION).map(String::as_str) == Some(rev) {
        return false;
    }
    a.insert(REVISION.into(), rev.into());
    w.meta_changed = true;
    true
}

fn replace_in(list: &mut Vec<ReplicaSet>, rs: &ReplicaSet) {
    match list.iter_mut().find(|r| r.metadata.uid == rs.metadata.uid) {
        Some(slot) => *slot = rs.clone(),
        None => list.push(rs.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetStatus, RollingUpdateDeployment,
    };
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn ios(s: &str) -> IntOrString {
        match s.parse::<i32>() {
            Ok(i) => IntOrString::Int(i),
            Err(_) => IntOrString::String(s.into()),
        }
    }

    fn deployment(replicas: i32, surge: &str, unavailable: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(ios(surge)),
                        max_unavailable: Some(ios(unavailable)),
                    }),
                }),
                ..Default::default()
            },
            status: None,
        }
    }

    fn rs(name: &str, age: i64, replicas: i32, available: i32) -> ReplicaSet {
        let created =
            jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(1_000_000 - age);
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                creation_timestamp: Some(Time(created)),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            },
            status: Some(ReplicaSetStatus {
                replicas,
                available_replicas: Some(available),
                ready_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            i32,
            Result<(i32, i32), ()>,
        );
        let cases: &[Case] = &[
            (Some("0%"), Some("0%"), 0, Ok((0, 1))),
            (Some("39%"), Some("39%"), 10, Ok((4, 3))),
            (Some("oops"), Some("39%"), 10, Err(())),
            (Some("55%"), Some("urg"), 10, Err(())),
            (None, Some("39%"), 10, Ok((0, 3))),
            (Some("39%"), None, 10, Ok((4, 0))),
            (None, None, 10, Ok((0, 1))),
            (Some("25%"), Some("25%"), 6, Ok((2, 1))),
            (Some("25%"), Some("25%"), 1, Ok((1, 0))),
            (Some("2"), Some("0"), 5, Ok((2, 0))),
        ];
        for (surge, unavailable, desired, want) in cases {
            let (s, u) = (surge.map(ios), unavailable.map(ios));
            let got = resolve_fenceposts(s.as_ref(), u.as_ref(), *desired).map_err(|_| ());
            assert_eq!(got, *want, "{surge:?} {unavailable:?} of {desired}");
        }
        assert_eq!(max_unavailable(&deployment(6, "25%", "25%")), 1);
        assert_eq!(max_surge(&deployment(6, "25%", "25%")), 2);
        assert_eq!(
            max_unavailable(&deployment(2, "0", "5")),
            2,
            "capped at replicas"
        );
        assert_eq!(max_unavailable(&deployment(0, "1", "1")), 0);
        let mut recreate = deployment(6, "25%", "25%");
        recreate.spec.strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        let d = deployment(10, "3", "0");
        let old = rs("old", 100, 10, 10);
        let new = rs("new", 1, 0, 0);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(3));
        let new = rs("new", 1, 3, 0);
        assert_eq!(
            new_rs_new_replicas(&d, &[&old, &new], &new),
            Ok(3),
            "at the surge limit"
        );
        let old = rs("old", 100, 8, 8);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(5));
        let old = rs("old", 100, 0, 0);
        let new = rs("new", 1, 9, 9);
        assert_eq!(
            new_rs_new_replicas(&d, &[&old, &new], &new),
            Ok(10),
            "never past replicas"
        );
    }

    #[test]
    fn old_replica_sets_shrink_within_max_unavailable() {
        let d = deployment(10, "3", "2");
        // New pods not available yet: the old ones may only go down to 8 available.
        let new = rs("new", 1, 3, 0);
        let plan = old_scale_down_plan(&d, &new, &[rs("old", 100, 10, 10)]);
        assert_eq!(plan, vec![("old".to_string(), 8)]);
        // Unhealthy old replicas go first (a: 5 -> 2), then available ones down to 8 available,
        // oldest ReplicaSet first (a: 2 -> 0).
        let new = rs("new", 1, 3, 3);
        let plan = old_scale_down_plan(&d, &new, &[rs("b", 50, 5, 5), rs("a", 100, 5, 2)]);
        assert_eq!(plan, vec![("a".to_string(), 0)]);
        let plan = old_scale_down_plan(&d, &new, &[rs("b", 50, 5, 5), rs("a", 100, 5, 5)]);
        assert_eq!(plan, vec![("a".to_string(), 0)], "13 - 8 = 5 may go");
        // An old ReplicaSet being scaled down counts only what its size keeps.
        let mut shrinking = rs("old", 100, 4, 10);
        if let Some(s) = shrinking.status.as_mut() {
            s.replicas = 10;
        }
        let plan = old_scale_down_plan(&d, &rs("new", 1, 7, 7), &[shrinking]);
        assert_eq!(
            plan,
            vec![("old".to_string(), 1)],
            "7 + 1 = min available 8"
        );
    }

    /// Steps a rolling update to the end with pods that become available one step after they
    /// are asked for, checking upstream's guarantees at every step.
    fn simulate(replicas: i32, surge: &str, unavailable: &str) -> usize {
        let d = deployment(replicas, surge, unavailable);
        let (max_s, max_u) = (max_surge(&d), max_unavailable(&d));
        let mut old = rs("old", 100, replicas, replicas);
        let mut new = rs("new", 1, 0, 0);
        for step in 0..1000 {
            // Pods: the old ReplicaSet's extra pods go at once; new ones come up a step late.
            let live_old = rs_available(&old).min(rs_replicas(&old));
            let live_new = rs_available(&new);
            let total = rs_replicas(&old) + rs_replicas(&new);
            assert!(
                total <= replicas + max_s,
                "step {step}: {total} pods exceeds surge"
            );
            assert!(
                live_old + live_new >= replicas - max_u,
                "step {step}: only {} available",
                live_old + live_new
            );
            if rs_replicas(&new) == replicas && live_new == replicas && rs_replicas(&old) == 0 {
                return step;
            }
            let old_size = rs_replicas(&old);
            if let Some(s) = old.status.as_mut() {
                s.available_replicas = Some(live_old);
                s.replicas = old_size;
            }
            let grown = new_rs_new_replicas(&d, &[&old, &new], &new).expect("valid");
            if grown != rs_replicas(&new) {
                new.spec.replicas = Some(grown);
            } else {
                for (name, size) in old_scale_down_plan(&d, &new, &[old.clone()]) {
                    assert_eq!(name, "old");
                    old.spec.replicas = Some(size);
                }
            }
            let new_size = rs_replicas(&new);
            if let Some(s) = new.status.as_mut() {
                s.available_replicas = Some(new_size.min(live_new + 1).max(live_new));
            }
        }
        panic!("rollout of {replicas} ({surge}, {unavailable}) did not finish");
    }

    #[test]
    fn rolling_updates_keep_their_bounds_and_finish() {
        for (r, s, u) in [
            (6, "25%", "25%"),
            (10, "3", "0"),
            (10, "0", "3"),
            (1, "25%", "25%"),
            (5, "100%", "0"),
            (3, "0%", "0%"),
            (7, "1", "1"),
        ] {
            simulate(r, s, u);
        }
    }

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        let mut d = deployment(15, "3", "0");
        let mut old = rs("old", 100, 6, 6);
        let mut new = rs("new", 1, 7, 7);
        for r in [&mut old, &mut new] {
            set_replicas_annotations(r, 10, 13);
        }
        let (plan, op) = scale_plan(&d, Some(&new), std::slice::from_ref(&old));
        assert_eq!(op, "up");
        // 18 allowed, 13 there: 7 * 18/13 = 9.7 -> +3, 6 * 18/13 = 8.3 -> +2.
        assert_eq!(plan, vec![("new".to_string(), 10), ("old".to_string(), 8)]);
        d.spec.replicas = Some(5);
        let (plan, op) = scale_plan(&d, Some(&new), std::slice::from_ref(&old));
        assert_eq!(op, "down");
        // 8 allowed: 7 * 8/13 = 4.3 -> -3, 6 * 8/13 = 3.7 -> -2 (leftover 0).
        assert_eq!(plan, vec![("new".to_string(), 4), ("old".to_string(), 4)]);
        // A single active ReplicaSet takes the whole change.
        let idle = rs("old", 100, 0, 0);
        let (plan, _) = scale_plan(&d, Some(&new), std::slice::from_ref(&idle));
        assert_eq!(plan, vec![("new".to_string(), 5)]);
    }

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn hashes_name_templates_and_ignore_the_hash_label() {
        let a = template("nginx:1");
        let h = compute_hash(&a, None);
        assert_eq!(h, compute_hash(&template("nginx:1"), None), "stable");
        assert!(
            h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{h}"
        );
        assert_ne!(h, compute_hash(&template("nginx:2"), None));
        assert_ne!(h, compute_hash(&a, Some(1)), "collisions change the hash");
        let mut labelled = a.clone();
        if let Some(m) = labelled.metadata.as_mut() {
            m.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(POD_TEMPLATE_HASH.into(), h.clone());
            m.annotations = Some(BTreeMap::new());
        }
        assert!(equal_ignore_hash(&a, &labelled));
        assert_eq!(compute_hash(&labelled, None), h);
        assert!(!equal_ignore_hash(&a, &template("nginx:2")));
    }

    #[test]
    fn revisions_move_to_the_new_replica_set_and_remember_rollbacks() {
        let mut d = deployment(3, "1", "0");
        d.metadata.annotations = Some(BTreeMap::from([
            ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
            (REVISION.to_string(), "2".to_string()),
        ]));
        let mut fresh = rs("web-new", 1, 0, 0);
        assert!(set_new_rs_annotations(&d, &mut fresh, 3, false, 2000));
        let a = fresh.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(
            a.get("kubernetes.io/change-cause").map(String::as_str),
            Some("v2")
        );
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("4"));
        assert!(!a.contains_key(REVISION_HISTORY));
        // Rolling back to revision 1 makes it revision 4 and remembers 1.
        let mut back = rs("web-old", 100, 0, 0);
        back.metadata.annotations = Some(BTreeMap::from([(REVISION.to_string(), "1".to_string())]));
        assert!(set_new_rs_annotations(&d, &mut back, 4, true, 2000));
        let a = back.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("4"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert!(
            !set_new_rs_annotations(&d, &mut back, 4, true, 2000),
            "nothing new"
        );
        assert!(set_new_rs_annotations(&d, &mut back, 6, true, 2000));
        let a = back.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,4"));
        assert_eq!(max_revision(&[back, fresh]), 6);
    }

    #[test]
    fn status_conditions_follow_availability_and_progress() {
        let mut d = deployment(4, "1", "1");
        let new = rs("new", 1, 4, 3);
        let s = calculate_status(&[&new], Some(&new), &d);
        assert_eq!(
            (
                s.replicas,
                s.updated_replicas,
                s.available_replicas,
                s.unavailable_replicas
            ),
            (Some(4), Some(4), Some(3), Some(1))
        );
        let avail = get_condition(&s, "Available").expect("Available");
        assert_eq!(avail.reason.as_deref(), Some(MIN_AVAILABLE));
        assert!(!deployment_complete(&d, &s));
        assert!(deployment_progressing(&d, &s));
        let mut s2 = s.clone();
        set_condition(
            &mut s2,
            DeploymentCondition {
                last_update_time: Some(Time(
                    jiff::Timestamp::now() - jiff::SignedDuration::from_secs(30),
                )),
                ..new_condition("Progressing", "True", RS_UPDATED, "x".into())
            },
        );
        d.spec.progress_deadline_seconds = Some(10);
        assert!(deployment_timed_out(&d, &s2, jiff::Timestamp::now()));
        d.spec.progress_deadline_seconds = Some(60);
        assert!(!deployment_timed_out(&d, &s2, jiff::Timestamp::now()));
        let down = rs("new", 1, 4, 2);
        let s = calculate_status(&[&down], Some(&down), &d);
        let avail = get_condition(&s, "Available").expect("Available");
        assert_eq!(
            (avail.status.as_deref(), avail.reason.as_deref()),
            (Some("False"), Some(MIN_UNAVAILABLE))
        );
        assert_eq!(
            normalized(&DeploymentStatus {
                replicas: Some(0),
                ..Default::default()
            }),
            DeploymentStatus::default()
        );
    }
}
