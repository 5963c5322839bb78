//! The Job controller (upstream `pkg/controller/job`): runs a Job's pods to `completions`
//! successes, `parallelism` at a time, in NonIndexed or Indexed mode; counts finished pods
//! through the `batch.kubernetes.io/job-tracking` finalizer and `status.uncountedTerminatedPods`
//! so nothing is counted twice or lost; fails the Job past `backoffLimit` (re-creating failed
//! pods with exponential backoff) or `activeDeadlineSeconds`, or on a podFailurePolicy `FailJob`
//! rule; honours `suspend`. Terminal conditions come in two steps as upstream (the interim
//! `SuccessCriteriaMet`/`FailureTarget`, then `Complete`/`Failed` once no pod is left running).

use super::reconcile_loop::Recorder;
use super::reconcile_loop::{self, Queue, informer};
use super::util::{controller_of, pod_ready};
use super::{Context, ControllerError};
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobStatus, PodFailurePolicy, UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
const CONTROLLER_NAME: &str = "kubernetes.io/job-controller";

/// First delay before re-creating a failed pod; doubles per consecutive failure.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
/// Most pods created or deleted in one sync, and most finished pods tracked at once.
const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
const MAX_UNCOUNTED_PODS: usize = 500;
/// Unobserved expectations are given up after this long (client-go's ExpectationsTimeout).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

pub fn runner(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run(ctx, stop))
}

struct Ctrl {
    client: kube::Client,
    events: Recorder,
    pods: Store<Pod>,
    jobs: Store<Job>,
    expectations: Mutex<HashMap<String, Expectations>>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
    /// The Job as our last status write returned it, newer than the informer's for a while.
    written: Mutex<HashMap<String, Arc<Job>>>,
}

async fn run(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("job-controller")?;
    // Informers list and watch as the controller manager itself, as upstream's shared ones do.
    let informer_client = ctx.clients.client("system:kube-controller-manager")?;
    let jobs = informer(Api::<Job>::all(informer_client.clone()));
    let pods = informer(Api::<Pod>::all(informer_client));
    let c = Arc::new(Ctrl {
        client: client.clone(),
        events: Recorder::new(&ctx, client.clone(), "job-controller"),
        pods: pods.store.clone(),
        jobs: jobs.store.clone(),
        expectations: Mutex::new(HashMap::new()),
        backoff: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
    });
    let (orphan_tx, orphan_rx) = mpsc::unbounded_channel::<ObjectRef<Pod>>();
    let mut queue = Queue::<Job>::default();
    {
        let (job_store, pod_store, tx) =
            (jobs.store.clone(), pods.store.clone(), orphan_tx.clone());
        queue.add_mapped(jobs.events, move |job: Job| {
            // A finished or deleted Job leaves its pods' finalizers to the orphan worker.
            let gone = job_store.get(&ObjectRef::from_obj(&job)).is_none();
            if gone || is_finished(&job) {
                let uid = job.metadata.uid.clone().unwrap_or_default();
                for p in pod_store.state() {
                    if has_finalizer(&p) && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
                    {
                        let _ = tx.send(ObjectRef::from_obj(p.as_ref()));
                    }
                }
            }
            [ObjectRef::from_obj(&job)]
        });
    }
    {
        let (job_store, tx) = (jobs.store.clone(), orphan_tx);
        queue.add_mapped(pods.events, move |pod: Pod| {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let owner = controller_of(&pod.metadata)
                .filter(|o| o.kind == "Job")
                .map(|o| (ObjectRef::<Job>::new(&o.name).within(&ns), o.uid.clone()));
            let job = owner.as_ref().and_then(|(r, uid)| {
                job_store
                    .get(r)
                    .filter(|j| j.metadata.uid.as_ref() == Some(uid))
            });
            if has_finalizer(&pod) && job.as_ref().is_none_or(|j| is_finished(j)) {
                let _ = tx.send(ObjectRef::from_obj(&pod));
            }
            job.map(|j| ObjectRef::from_obj(j.as_ref()))
        });
    }
    let ready = vec![
        reconcile_loop::ready(&jobs.store),
        reconcile_loop::ready(&pods.store),
    ];
    let orphans = tokio::spawn(orphan_worker(c.clone(), orphan_rx, stop.clone()));
    let res = reconcile_loop::run(
        "job",
        jobs.store,
        queue,
        ready,
        c,
        |job, c| async move { sync_job(&c, job).await },
        (Duration::from_secs(1), Duration::from_secs(60)),
        stop,
    )
    .await;
    orphans.abort();
    res
}

// ---------------------------------------------------------------------------------------------
// Helpers on pods and jobs

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn uid_of(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn is_active(p: &Pod) -> bool {
    !matches!(phase(p), "Succeeded" | "Failed") && p.metadata.deletion_timestamp.is_none()
}

fn is_terminating(p: &Pod) -> bool {
    !matches!(phase(p), "Succeeded" | "Failed") && p.metadata.deletion_timestamp.is_some()
}

fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

fn find_condition<'a>(list: &'a [JobCondition], ty: &str) -> Option<&'a JobCondition> {
    list.iter().find(|c| c.type_ == ty)
}

/// Complete or Failed is true.
pub fn finished_condition(job: &Job) -> Option<&'static str> {
    conditions(job).iter().find_map(|c| {
        if c.status != "True" {
            return None;
        }
        match c.type_.as_str() {
            "Complete" => Some("Complete"),
            "Failed" => Some("Failed"),
            _ => None,
        }
    })
}

pub fn is_finished(job: &Job) -> bool {
    finished_condition(job).is_some()
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

fn pod_failure_policy(job: &Job) -> Option<&PodFailurePolicy> {
    job.spec.as_ref()?.pod_failure_policy.as_ref()
}

/// Only failed (not terminating) pods are replaced (`podReplacementPolicy: Failed`, implied
/// by a podFailurePolicy).
fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.and_then(|s| s.pod_failure_policy.as_ref()).is_some()
}

/// Failed, or (unless only failed pods are replaced) deleted before finishing.
fn is_pod_failed(p: &Pod, job: &Job) -> bool {
    if phase(p) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    p.metadata.deletion_timestamp.is_some() && phase(p) != "Succeeded"
}

/// The completion index a pod carries, if valid.
pub fn completion_index(meta: &ObjectMeta) -> Option<i32> {
    let v = meta.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    v.parse::<i32>().ok().filter(|i| *i >= 0)
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn new_condition(ty: &str, status: &str, reason: &str, message: &str) -> JobCondition {
    let t = Time(now());
    JobCondition {
        type_: ty.into(),
        status: status.into(),
        last_probe_time: Some(t.clone()),
        last_transition_time: Some(t),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
    }
}

/// Sets a condition's status (appending it unless that would add a False one); true if changed.
fn ensure_condition(
    list: &mut Vec<JobCondition>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    if let Some(c) = list.iter_mut().find(|c| c.type_ == ty) {
        if c.status != status
            || c.reason.as_deref().unwrap_or("") != reason
            || c.message.as_deref().unwrap_or("") != message
        {
            *c = new_condition(ty, status, reason, message);
            return true;
        }
        return false;
    }
    if status != "False" {
        list.push(new_condition(ty, status, reason, message));
        return true;
    }
    false
}

/// When a pod finished: its containers' last finish, else Ready=False, else deletion.
fn finished_time(p: &Pod) -> jiff::Timestamp {
    let st = p.status.as_ref();
    let mut latest: Option<jiff::Timestamp> = None;
    let mut all = true;
    for cs in st
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or(&[])
    {
        match cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())
        {
            Some(t) => latest = Some(latest.map_or(t.0, |l| l.max(t.0))),
            None => all = false,
        }
    }
    if all && let Some(t) = latest {
        return t;
    }
    if let Some(t) = st
        .and_then(|s| s.conditions.as_deref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "Ready" && c.status == "False")
        })
        .and_then(|c| c.last_transition_time.as_ref())
    {
        return t.0;
    }
    if let Some(d) = &p.metadata.deletion_timestamp {
        let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return d.0 - jiff::SignedDuration::from_secs(grace);
    }
    p.metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(now, |t| t.0)
}

// ---------------------------------------------------------------------------------------------
// Pod failure policy

/// (FailJob message, whether the failure counts against backoffLimit, matched action).
pub fn match_pod_failure_policy(
    policy: Option<&PodFailurePolicy>,
    pod: &Pod,
) -> (Option<String>, bool, Option<String>) {
    let Some(policy) = policy else {
        return (None, true, None);
    };
    let st = pod.status.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched: Option<String> = if let Some(req) = &rule.on_exit_codes {
            let statuses = st
                .container_statuses
                .iter()
                .flatten()
                .chain(st.init_container_statuses.iter().flatten());
            statuses
                .filter_map(|cs| {
                    let t = cs.state.as_ref()?.terminated.as_ref()?;
                    let name_ok = req.container_name.as_ref().is_none_or(|n| *n == cs.name);
                    let hit = match req.operator.as_str() {
                        "In" => req.values.contains(&t.exit_code),
                        "NotIn" => !req.values.contains(&t.exit_code),
                        _ => false,
                    };
                    (name_ok && t.exit_code != 0 && hit).then(|| {
                        format!(
                            "Container {} for pod {ns}/{name} failed with exit code {} matching {} rule at index {i}",
                            cs.name, t.exit_code, rule.action
                        )
                    })
                })
                .next()
        } else if let Some(patterns) = &rule.on_pod_conditions {
            st.conditions.iter().flatten().find_map(|c| {
                patterns
                    .iter()
                    .any(|p| {
                        p.type_ == c.type_ && p.status.as_deref().unwrap_or("True") == c.status
                    })
                    .then(|| {
                        format!(
                            "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(msg) = matched else { continue };
        match rule.action.as_str() {
            "Ignore" => return (None, false, Some("Ignore".into())),
            "Count" => return (None, true, Some("Count".into())),
            "FailJob" => return (Some(msg), true, Some("FailJob".into())),
            "FailIndex" => return (None, true, Some("FailIndex".into())),
            _ => {}
        }
    }
    (None, true, None)
}

// ---------------------------------------------------------------------------------------------
// Indexes: ordered, merged intervals as in `status.completedIndexes` ("0-2,4,6,7").

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(pub Vec<(i32, i32)>);

impl Intervals {
    pub fn parse(s: &str, completions: i32) -> Intervals {
        let mut out: Vec<(i32, i32)> = Vec::new();
        if s.is_empty() {
            return Intervals(out);
        }
        for part in s.split(',') {
            let mut lims = part.split('-');
            let Some(Ok(first)) = lims.next().map(str::parse::<i32>) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match lims.next() {
                Some(l) => match l.parse::<i32>() {
                    Ok(l) => l.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            match out.last_mut() {
                Some(prev) if prev.1 == first - 1 => prev.1 = last,
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    /// With `new` (sorted) merged in.
    pub fn with(&self, new: &[i32]) -> Intervals {
        let add = Intervals(new.iter().map(|i| (*i, *i)).collect());
        self.merge(&add)
    }

    pub fn merge(&self, other: &Intervals) -> Intervals {
        let mut all: Vec<(i32, i32)> = self.0.iter().chain(other.0.iter()).copied().collect();
        all.sort();
        let mut out: Vec<(i32, i32)> = Vec::new();
        for iv in all {
            match out.last_mut() {
                Some(last) if iv.0 <= last.1 + 1 => last.1 = last.1.max(iv.1),
                _ => out.push(iv),
            }
        }
        Intervals(out)
    }

    pub fn total(&self) -> i32 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    pub fn has(&self, ix: i32) -> bool {
        self.0.iter().any(|(a, b)| *a <= ix && ix <= *b)
    }
}

impl std::fmt::Display for Intervals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, (a, b)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
            if b > a {
                f.write_str(if *b == a + 1 { "," } else { "-" })?;
                write!(f, "{b}")?;
            }
        }
        Ok(())
    }
}

/// The first `count` indexes below `completions` not yet succeeded nor running.
pub fn first_pending_indexes(non_pending: &Intervals, count: usize, completions: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut candidate = 0;
    for (first, last) in &non_pending.0 {
        while candidate < completions && out.len() < count && candidate < *first {
            out.push(candidate);
            candidate += 1;
        }
        if candidate < last + 1 {
            candidate = last + 1;
        }
    }
    while candidate < completions && out.len() < count {
        out.push(candidate);
        candidate += 1;
    }
    out
}

/// `<job>-<index>-`, the job name shortened so the whole stays a valid generateName.
pub fn generate_name_with_index(job: &str, index: i32) -> String {
    const MAX_GENERATED_NAME_LENGTH: usize = 58;
    let suffix = format!("-{index}-");
    let prefix = format!("{job}{suffix}");
    if prefix.len() > MAX_GENERATED_NAME_LENGTH {
        let keep = MAX_GENERATED_NAME_LENGTH - suffix.len();
        return format!("{}{suffix}", &job[..keep.min(job.len())]);
    }
    prefix
}

// ---------------------------------------------------------------------------------------------
// Backoff of pod re-creation after failures

#[derive(Debug, Clone, Default)]
pub struct BackoffRecord {
    pub failures_after_last_success: i32,
    pub last_failure_time: Option<jiff::Timestamp>,
}

impl BackoffRecord {
    /// The record after these newly finished pods.
    pub fn next(&self, succeeded: &[&Pod], failed: &[&Pod]) -> BackoffRecord {
        let mut fails: Vec<jiff::Timestamp> = failed.iter().map(|p| finished_time(p)).collect();
        fails.sort();
        let last_success = succeeded.iter().map(|p| finished_time(p)).max();
        match last_success {
            None => {
                if fails.is_empty() {
                    return self.clone();
                }
                BackoffRecord {
                    failures_after_last_success: self.failures_after_last_success
                        + fails.len() as i32,
                    last_failure_time: fails.last().copied(),
                }
            }
            Some(ls) => {
                let after: Vec<_> = fails.iter().filter(|t| **t > ls).collect();
                BackoffRecord {
                    failures_after_last_success: after.len() as i32,
                    last_failure_time: after.last().map(|t| **t),
                }
            }
        }
    }

    /// How long pod creation must still wait.
    pub fn remaining(&self, now: jiff::Timestamp, base: Duration, max: Duration) -> Duration {
        let Some(last) = self.last_failure_time else {
            return Duration::ZERO;
        };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let mut backoff = base;
        for _ in 1..self.failures_after_last_success {
            backoff = backoff.saturating_mul(2);
            if backoff >= max {
                backoff = max;
                break;
            }
        }
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        backoff.saturating_sub(elapsed)
    }
}

// ---------------------------------------------------------------------------------------------
// Expectations: what this controller did and has not yet seen in its informer.

#[derive(Debug, Default)]
struct Expectations {
    /// Created pods (namespace/name) not seen yet.
    creations: HashMap<String, Instant>,
    /// Deleted pods (uid) still seen as live.
    deletions: HashMap<String, Instant>,
    /// Pods (uid) whose finalizer we removed but still see with it.
    rm_finalizers: HashSet<String>,
}

impl Ctrl {
    fn satisfied(&self, key: &str) -> bool {
        let mut all = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = all.get_mut(key) else {
            return true;
        };
        let pods = &self.pods;
        e.creations.retain(|k, t| {
            let (ns, name) = k.split_once('/').unwrap_or(("", k));
            t.elapsed() < EXPECTATIONS_TIMEOUT
                && pods.get(&ObjectRef::new(name).within(ns)).is_none()
        });
        let live: HashMap<String, bool> = pods
            .state()
            .iter()
            .map(|p| (uid_of(p), p.metadata.deletion_timestamp.is_none()))
            .collect();
        e.deletions
            .retain(|uid, t| t.elapsed() < EXPECTATIONS_TIMEOUT && live.get(uid) == Some(&true));
        e.creations.is_empty() && e.deletions.is_empty()
    }

    fn expected_rm_finalizers(&self, key: &str, pods: &[Arc<Pod>]) -> HashSet<String> {
        let mut all = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = all.get_mut(key) else {
            return HashSet::new();
        };
        let with: HashSet<String> = pods
            .iter()
            .filter(|p| has_finalizer(p))
            .map(|p| uid_of(p))
            .collect();
        e.rm_finalizers.retain(|u| with.contains(u));
        e.rm_finalizers.clone()
    }

    fn expect(&self, key: &str, f: impl FnOnce(&mut Expectations)) {
        let mut all = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(key.to_string()).or_default());
    }

    fn forget_job(&self, key: &str, uid: &str) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.expectations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// The freshest copy of the job we know: the informer's or the one our last write returned.
    fn freshest(&self, job: Arc<Job>) -> Arc<Job> {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match written.get(&uid) {
            Some(w) if rv(w) > rv(&job) => w.clone(),
            _ => job,
        }
    }
}

fn rv(job: &Job) -> u64 {
    job.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn job_key(job: &Job) -> String {
    format!(
        "{}/{}",
        job.metadata.namespace.as_deref().unwrap_or(""),
        job.metadata.name.as_deref().unwrap_or("")
    )
}

// ---------------------------------------------------------------------------------------------
// The sync

struct SyncCtx {
    job: Job,
    pods: Vec<Arc<Pod>>,
    active_pods: Vec<Arc<Pod>>,
    finished: Option<JobCondition>,
    succeeded: i32,
    failed: i32,
    prev_succeeded_indexes: Intervals,
    succeeded_indexes: Intervals,
    new_backoff: BackoffRecord,
    expected_rm_finalizers: HashSet<String>,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    terminating: i32,
    ready: i32,
}

async fn sync_job(c: &Ctrl, shared: Arc<Job>) -> Result<Action, ControllerError> {
    let key = job_key(&shared);
    let shared = c.freshest(shared);
    if let Some(m) = shared.spec.as_ref().and_then(|s| s.managed_by.as_deref())
        && m != CONTROLLER_NAME
    {
        tracing::debug!(
            job = key,
            managed_by = m,
            "job is managed by another controller"
        );
        return Ok(Action::await_change());
    }
    if is_finished(&shared) {
        c.forget_job(&key, shared.metadata.uid.as_deref().unwrap_or_default());
        return Ok(Action::await_change());
    }
    let mut job = (*shared).clone();
    let jref = job.object_ref(&());
    let Some(spec) = job.spec.clone() else {
        return Ok(Action::await_change());
    };
    if let Some(mode) = spec.completion_mode.as_deref()
        && mode != "NonIndexed"
        && mode != "Indexed"
    {
        c.events
            .warning(
                &jref,
                "UnknownCompletionMode",
                "Sync",
                "Skipped Job sync because completion mode is unknown".into(),
            )
            .await;
        return Ok(Action::await_change());
    }
    let status = job.status.get_or_insert_with(JobStatus::default);
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default)
        .clone();
    let satisfied = c.satisfied(&key);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = c
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
        })
        .collect();
    let active_pods: Vec<Arc<Pod>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
    let mut sx = SyncCtx {
        ready: active_pods.iter().filter(|p| pod_ready(p)).count() as i32,
        terminating: pods.iter().filter(|p| is_terminating(p)).count() as i32,
        expected_rm_finalizers: c.expected_rm_finalizers(&key, &pods),
        uncounted_succeeded: uncounted.succeeded.iter().flatten().cloned().collect(),
        uncounted_failed: uncounted.failed.iter().flatten().cloned().collect(),
        active_pods,
        pods,
        job: job.clone(),
        finished: None,
        succeeded: 0,
        failed: 0,
        prev_succeeded_indexes: Intervals::default(),
        succeeded_indexes: Intervals::default(),
        new_backoff: BackoffRecord::default(),
    };
    let mut active = sx.active_pods.len() as i32;
    let (new_succeeded, new_failed) = new_finished_pods(&sx);
    let st = sx.job.status.clone().unwrap_or_default();
    let counted_failed = new_failed
        .iter()
        .filter(|p| match_pod_failure_policy(spec.pod_failure_policy.as_ref(), p).1)
        .count() as i32;
    sx.succeeded = st.succeeded.unwrap_or(0)
        + new_succeeded.len() as i32
        + sx.uncounted_succeeded.len() as i32;
    sx.failed = st.failed.unwrap_or(0) + counted_failed + sx.uncounted_failed.len() as i32;

    let mut requeue: Option<Duration> = None;
    if st.start_time.is_none() && !suspended(&sx.job) {
        sx.job
            .status
            .get_or_insert_with(Default::default)
            .start_time = Some(Time(now()));
    }
    {
        let backoff = c.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let ns: Vec<&Pod> = new_succeeded.iter().map(|p| p.as_ref()).collect();
        let nf: Vec<&Pod> = new_failed.iter().map(|p| p.as_ref()).collect();
        sx.new_backoff = backoff
            .get(&key)
            .cloned()
            .unwrap_or_default()
            .next(&ns, &nf);
    }

    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let exceeds_backoff = sx.failed > backoff_limit;
    sx.finished = find_condition(conditions(&sx.job), "SuccessCriteriaMet")
        .filter(|c| c.status == "True")
        .cloned();
    if sx.finished.is_none() {
        if let Some(ft) =
            find_condition(conditions(&sx.job), "FailureTarget").filter(|c| c.status == "True")
        {
            sx.finished = Some(new_condition(
                "Failed",
                "True",
                ft.reason.as_deref().unwrap_or(""),
                ft.message.as_deref().unwrap_or(""),
            ));
        } else if let Some(msg) = fail_job_message(&sx.job, &sx.pods) {
            sx.finished = Some(new_condition(
                "FailureTarget",
                "True",
                "PodFailurePolicy",
                &msg,
            ));
        }
    }
    if sx.finished.is_none() {
        if exceeds_backoff || past_backoff_limit_on_failure(&sx.job, &sx.pods) {
            sx.finished = Some(new_condition(
                "FailureTarget",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
        } else if past_active_deadline(&sx.job) {
            sx.finished = Some(new_condition(
                "FailureTarget",
                "True",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
        } else if let (Some(ads), false) = (spec.active_deadline_seconds, suspended(&sx.job))
            && let Some(start) = sx.job.status.as_ref().and_then(|s| s.start_time.as_ref())
        {
            let deadline = start.0 + jiff::SignedDuration::from_secs(ads);
            let left = Duration::try_from(deadline.duration_since(now())).unwrap_or_default();
            requeue = Some(left);
        }
    }
    if is_indexed(&sx.job) {
        let completions = spec.completions.unwrap_or(1);
        let prev = Intervals::parse(st.completed_indexes.as_deref().unwrap_or(""), completions);
        let mut new: Vec<i32> = sx
            .pods
            .iter()
            .filter(|p| phase(p) == "Succeeded" && has_finalizer(p))
            .filter_map(|p| completion_index(&p.metadata))
            .filter(|i| *i < completions)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        new.dedup();
        sx.succeeded_indexes = prev.with(&new);
        sx.prev_succeeded_indexes = prev;
        sx.succeeded = sx.succeeded_indexes.total();
    }

    let mut suspend_changed = false;
    let mut manage_err = None;
    if sx.finished.is_some() {
        let (deleted_ready, deleted, err) = delete_active_pods(c, &sx.job, &sx.active_pods).await;
        if deleted != active || !satisfied {
            // Pods may remain (finalizers, or pods our informer has not shown us yet).
            sx.finished = None;
        }
        active -= deleted;
        sx.terminating += deleted;
        sx.ready -= deleted_ready;
        manage_err = err;
    } else {
        let mut manage_called = false;
        if satisfied && sx.job.metadata.deletion_timestamp.is_none() {
            let (a, delay, err) = manage_job(c, &key, &mut sx).await;
            active = a;
            manage_err = err;
            manage_called = true;
            if let Some(d) = delay {
                requeue = Some(requeue.map_or(d, |r| r.min(d)));
            }
        }
        let complete = match spec.completions {
            None => sx.succeeded > 0 && active == 0,
            Some(n) => sx.succeeded >= n && active == 0,
        };
        if complete {
            sx.finished = Some(new_condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
        } else if manage_called {
            let is_suspended = suspended(&sx.job);
            let conds = sx
                .job
                .status
                .get_or_insert_with(Default::default)
                .conditions
                .get_or_insert_with(Vec::new);
            if is_suspended {
                if ensure_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended") {
                    suspend_changed = true;
                    c.events
                        .normal(&jref, "Suspended", "Suspend", "Job suspended".into())
                        .await;
                }
            } else if ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed") {
                suspend_changed = true;
                c.events
                    .normal(&jref, "Resumed", "Resume", "Job resumed".into())
                    .await;
                // A resumed Job's activeDeadlineSeconds counts from now.
                sx.job
                    .status
                    .get_or_insert_with(Default::default)
                    .start_time = Some(Time(now()));
            }
        }
    }

    let status = sx.job.status.get_or_insert_with(Default::default);
    let needs_update = suspend_changed
        || active != status.active.unwrap_or(0)
        || Some(sx.ready) != status.ready
        || Some(sx.terminating) != status.terminating;
    status.active = nonzero(active);
    status.ready = Some(sx.ready);
    status.terminating = Some(sx.terminating);
    track_status_and_remove_finalizers(c, &key, &mut sx, needs_update).await?;
    if let Some(e) = manage_err {
        return Err(e);
    }
    Ok(match requeue {
        Some(d) => Action::requeue(d.max(Duration::from_millis(100))),
        None => Action::await_change(),
    })
}

/// Finished pods not yet counted (still holding the finalizer, not in the uncounted lists).
fn new_finished_pods(sx: &SyncCtx) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
    let completions = sx
        .job
        .spec
        .as_ref()
        .and_then(|s| s.completions)
        .unwrap_or(1);
    let valid = |p: &Pod| {
        let uid = uid_of(p);
        has_finalizer(p)
            && !sx.expected_rm_finalizers.contains(&uid)
            && (!is_indexed(&sx.job)
                || completion_index(&p.metadata).is_some_and(|i| i < completions))
    };
    let succeeded = sx
        .pods
        .iter()
        .filter(|p| valid(p) && !sx.uncounted_succeeded.contains(&uid_of(p)))
        .filter(|p| phase(p) == "Succeeded")
        .cloned()
        .collect();
    let failed = sx
        .pods
        .iter()
        .filter(|p| valid(p) && !sx.uncounted_failed.contains(&uid_of(p)))
        .filter(|p| is_pod_failed(p, &sx.job))
        .cloned()
        .collect();
    (succeeded, failed)
}

fn fail_job_message(job: &Job, pods: &[Arc<Pod>]) -> Option<String> {
    let policy = pod_failure_policy(job)?;
    pods.iter()
        .filter(|p| is_pod_failed(p, job))
        .find_map(|p| match_pod_failure_policy(Some(policy), p).0)
}

/// With restartPolicy OnFailure, container restarts count against backoffLimit.
fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>]) -> bool {
    let spec = job.spec.as_ref();
    let restart = spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if restart != Some("OnFailure") {
        return false;
    }
    let limit = spec.and_then(|s| s.backoff_limit).unwrap_or(6);
    let mut restarts = 0;
    for p in pods {
        if matches!(phase(p), "Running" | "Pending") {
            let st = p.status.as_ref();
            for cs in st
                .and_then(|s| s.init_container_statuses.as_deref())
                .unwrap_or(&[])
                .iter()
                .chain(
                    st.and_then(|s| s.container_statuses.as_deref())
                        .unwrap_or(&[]),
                )
            {
                restarts += cs.restart_count;
            }
        }
    }
    if limit == 0 {
        return restarts > 0;
    }
    restarts >= limit
}

fn past_active_deadline(job: &Job) -> bool {
    let Some(ads) = job.spec.as_ref().and_then(|s| s.active_deadline_seconds) else {
        return false;
    };
    let Some(start) = job.status.as_ref().and_then(|s| s.start_time.as_ref()) else {
        return false;
    };
    if suspended(job) {
        return false;
    }
    now().duration_since(start.0) >= jiff::SignedDuration::from_secs(ads)
}

/// Deletes the pods (keeping finalizers; they are removed when the pods are counted).
/// Returns (ready deleted, deleted, first error).
async fn delete_active_pods(
    c: &Ctrl,
    job: &Job,
    pods: &[Arc<Pod>],
) -> (i32, i32, Option<ControllerError>) {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
    let jref = job.object_ref(&());
    let results = futures::future::join_all(pods.iter().map(|p| {
        let api = api.clone();
        let name = p.metadata.name.clone().unwrap_or_default();
        async move { (api.delete(&name, &DeleteParams::default()).await, name) }
    }))
    .await;
    let (mut ready, mut deleted, mut err) = (0, 0, None);
    for ((res, name), p) in results.into_iter().zip(pods) {
        match res {
            Ok(_) => {
                c.events
                    .normal(
                        &jref,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {name}"),
                    )
                    .await;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                c.events
                    .warning(
                        &jref,
                        "FailedDelete",
                        "Delete",
                        format!("Error deleting: {e}"),
                    )
                    .await;
                err.get_or_insert(ControllerError::Kube(e));
                continue;
            }
        }
        deleted += 1;
        if pod_ready(p) {
            ready += 1;
        }
    }
    (ready, deleted, err)
}

/// Pods to delete first: unscheduled, pending, not ready, newest.
fn removal_order(pods: &mut [Arc<Pod>]) {
    fn rank(p: &Pod) -> (bool, u8, bool, std::cmp::Reverse<i64>) {
        let scheduled = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let phase_rank = match phase(p) {
            "Pending" => 0,
            "Unknown" => 1,
            "Running" => 2,
            _ => 3,
        };
        let created = p
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second());
        (
            scheduled,
            phase_rank,
            pod_ready(p),
            std::cmp::Reverse(created),
        )
    }
    pods.sort_by_key(|p| rank(p));
}

/// Pods beyond need: duplicates of an index or out-of-range indexes first, then by order.
fn active_pods_for_removal(job: &Job, pods: &[Arc<Pod>], rm_at_least: usize) -> Vec<Arc<Pod>> {
    let mut rm: Vec<Arc<Pod>> = Vec::new();
    let mut left: Vec<Arc<Pod>> = Vec::new();
    if is_indexed(job) {
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(1);
        let mut by_index: HashMap<i32, Vec<Arc<Pod>>> = HashMap::new();
        for p in pods {
            match completion_index(&p.metadata) {
                Some(i) if i < completions => by_index.entry(i).or_default().push(p.clone()),
                _ => rm.push(p.clone()),
            }
        }
        for (_, mut same) in by_index {
            removal_order(&mut same);
            let keep = same.pop();
            rm.extend(same);
            left.extend(keep);
        }
    } else {
        left = pods.to_vec();
    }
    if rm.len() < rm_at_least {
        removal_order(&mut left);
        let more = rm_at_least - rm.len();
        rm.extend(left.into_iter().take(more));
    }
    rm
}

/// Creates or deletes pods toward the wanted number of active ones; returns the new active
/// count, a delay before pod creation may happen (failure backoff), and the first error.
async fn manage_job(
    c: &Ctrl,
    key: &str,
    sx: &mut SyncCtx,
) -> (i32, Option<Duration>, Option<ControllerError>) {
    let job = sx.job.clone();
    let spec = job.spec.clone().unwrap_or_default();
    let mut active = sx.active_pods.len() as i32;
    let parallelism = spec.parallelism.unwrap_or(1);
    if suspended(&job) {
        let rm = active_pods_for_removal(&job, &sx.active_pods, active as usize);
        let (ready, removed, err) = delete_job_pods(c, key, &job, &rm).await;
        sx.terminating += removed;
        sx.ready -= ready;
        return (active - removed, None, err);
    }
    let want_active = match spec.completions {
        None if sx.succeeded > 0 => active,
        None => parallelism,
        Some(n) => (n - sx.succeeded).clamp(0, parallelism),
    };
    let rm_at_least = (active - want_active).max(0) as usize;
    let mut rm = active_pods_for_removal(&job, &sx.active_pods, rm_at_least);
    rm.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
    if !rm.is_empty() {
        tracing::debug!(
            job = key,
            deleted = rm.len(),
            target = want_active,
            "too many pods"
        );
        let (ready, removed, err) = delete_job_pods(c, key, &job, &rm).await;
        sx.terminating += removed;
        sx.ready -= ready;
        return (active - removed, None, err);
    }
    let terminating = if only_replace_failed(&job) {
        sx.terminating
    } else {
        0
    };
    let mut diff = want_active - terminating - active;
    if diff <= 0 {
        return (active, None, None);
    }
    let remaining = sx
        .new_backoff
        .remaining(now(), POD_FAILURE_BACKOFF, MAX_POD_FAILURE_BACKOFF);
    if !remaining.is_zero() {
        tracing::debug!(job = key, wait = ?remaining, "delaying pod re-creation after failures");
        return (active, Some(remaining.max(Duration::from_secs(1))), None);
    }
    diff = diff.min(MAX_POD_CREATE_DELETE_PER_SYNC as i32);
    let mut indexes: Vec<i32> = Vec::new();
    if is_indexed(&job) {
        let completions = spec.completions.unwrap_or(1);
        let mut running: Vec<i32> = sx
            .active_pods
            .iter()
            .filter_map(|p| completion_index(&p.metadata))
            .collect();
        if only_replace_failed(&job) {
            running.extend(
                sx.pods
                    .iter()
                    .filter(|p| is_terminating(p))
                    .filter_map(|p| completion_index(&p.metadata)),
            );
        }
        running.sort();
        running.dedup();
        let non_pending = sx.succeeded_indexes.with(&running);
        indexes = first_pending_indexes(&non_pending, diff as usize, completions);
        diff = indexes.len() as i32;
    }
    let mut template = spec.template.clone();
    if is_indexed(&job) {
        add_completion_index_env(&mut template);
    }
    let fins = template
        .metadata
        .get_or_insert_with(Default::default)
        .finalizers
        .get_or_insert_with(Vec::new);
    if !fins.iter().any(|f| f == TRACKING_FINALIZER) {
        fins.push(TRACKING_FINALIZER.to_string());
    }
    tracing::debug!(
        job = key,
        need = want_active,
        creating = diff,
        "too few pods"
    );
    active += diff;
    let mut left = diff;
    let mut batch = left.min(1);
    let mut first_err = None;
    let mut queue = indexes.into_iter();
    // Slow start: batches of 1, 2, 4, ... stop at the first failing batch.
    while left > 0 {
        let creates = (0..batch).map(|_| {
            let index = queue.next();
            create_pod(c, key, &job, &template, index)
        });
        let results = futures::future::join_all(creates).await;
        let failed = results.iter().filter(|r| r.is_err()).count() as i32;
        for r in results {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        active -= failed;
        left -= batch;
        if failed > 0 {
            active -= left;
            break;
        }
        batch = (batch * 2).min(left);
    }
    (active, None, first_err)
}

fn add_completion_index_env(t: &mut PodTemplateSpec) {
    let Some(spec) = t.spec.as_mut() else { return };
    let var = EnvVar {
        name: COMPLETION_INDEX_ENV.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    for ctr in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        let env = ctr.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
            env.push(var.clone());
        }
    }
}

fn job_owner_ref(job: &Job) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.metadata.name.clone()?,
        uid: job.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// A pod for the job from `template` (the controller's GetPodFromTemplate).
pub fn pod_from_template(job: &Job, template: &PodTemplateSpec, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    let mut labels = tmeta.labels.clone();
    let mut annotations = tmeta.annotations.clone();
    let generate_name = match index {
        Some(i) => {
            annotations
                .get_or_insert_with(Default::default)
                .insert(COMPLETION_INDEX.into(), i.to_string());
            labels
                .get_or_insert_with(Default::default)
                .insert(COMPLETION_INDEX.into(), i.to_string());
            spec.hostname = Some(format!("{name}-{i}"));
            generate_name_with_index(&name, i)
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels,
            annotations,
            finalizers: tmeta.finalizers.clone(),
            owner_references: job_owner_ref(job).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

async fn create_pod(
    c: &Ctrl,
    key: &str,
    job: &Job,
    template: &PodTemplateSpec,
    index: Option<i32>,
) -> Result<(), ControllerError> {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let pod = pod_from_template(job, template, index);
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
    let jref = job.object_ref(&());
    match api.create(&PostParams::default(), &pod).await {
        Ok(created) => {
            let name = created.metadata.name.clone().unwrap_or_default();
            c.expect(key, |e| {
                e.creations.insert(format!("{ns}/{name}"), Instant::now());
            });
            c.events
                .normal(
                    &jref,
                    "SuccessfulCreate",
                    "Create",
                    format!("Created pod: {name}"),
                )
                .await;
            Ok(())
        }
        Err(e) => {
            let terminating_ns = matches!(&e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"));
            if !terminating_ns {
                c.events
                    .warning(
                        &jref,
                        "FailedCreate",
                        "Create",
                        format!("Error creating: {e}"),
                    )
                    .await;
            }
            Err(e.into())
        }
    }
}

/// Removes the tracking finalizer and deletes the pods; returns (ready, deleted, first error).
async fn delete_job_pods(
    c: &Ctrl,
    key: &str,
    job: &Job,
    pods: &[Arc<Pod>],
) -> (i32, i32, Option<ControllerError>) {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
    let jref = job.object_ref(&());
    c.expect(key, |e| {
        for p in pods {
            e.deletions.insert(uid_of(p), Instant::now());
        }
    });
    let results = futures::future::join_all(pods.iter().map(|p| {
        let api = api.clone();
        let p = p.clone();
        async move {
            let name = p.metadata.name.clone().unwrap_or_default();
            if has_finalizer(&p) {
                api.patch(&name, &PatchParams::default(), &remove_finalizer_patch())
                    .await?;
            }
            api.delete(&name, &DeleteParams::default())
                .await
                .map(|_| ())
        }
    }))
    .await;
    let (mut ready, mut deleted, mut err) = (0, 0, None);
    for (res, p) in results.into_iter().zip(pods) {
        let name = p.metadata.name.clone().unwrap_or_default();
        match res {
            Ok(()) => {
                c.events
                    .normal(
                        &jref,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {name}"),
                    )
                    .await;
            }
            Err(e) => {
                c.expect(key, |x| {
                    x.deletions.remove(&uid_of(p));
                });
                if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    continue;
                }
                c.events
                    .warning(
                        &jref,
                        "FailedDelete",
                        "Delete",
                        format!("Error deleting: {e}"),
                    )
                    .await;
                err.get_or_insert(ControllerError::Kube(e));
                continue;
            }
        }
        deleted += 1;
        if pod_ready(p) {
            ready += 1;
        }
    }
    (ready, deleted, err)
}

fn remove_finalizer_patch() -> Patch<serde_json::Value> {
    Patch::Strategic(
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}),
    )
}

/// Whether a pod's finalizer may go: the Job is ending, the pod succeeded, or it failed.
fn can_remove_finalizer(sx: &SyncCtx, pod: &Pod, failed: bool) -> bool {
    sx.job.metadata.deletion_timestamp.is_some()
        || sx.finished.is_some()
        || phase(pod) == "Succeeded"
        || failed
}

/// Moves finished pods into `uncountedTerminatedPods`, removes their finalizers, then counts
/// them, and finally sets the terminal condition once nothing is left uncounted or running.
async fn track_status_and_remove_finalizers(
    c: &Ctrl,
    key: &str,
    sx: &mut SyncCtx,
    mut needs_flush: bool,
) -> Result<(), ControllerError> {
    let indexed = is_indexed(&sx.job);
    let completions = sx
        .job
        .spec
        .as_ref()
        .and_then(|s| s.completions)
        .unwrap_or(1);
    if indexed {
        let mut pods = sx.pods.clone();
        pods.sort_by_key(|p| completion_index(&p.metadata).unwrap_or(-1));
        sx.pods = pods;
    }
    let mut with_finalizer: HashSet<String> = sx
        .pods
        .iter()
        .filter(|p| has_finalizer(p) && !sx.expected_rm_finalizers.contains(&uid_of(p)))
        .map(|p| uid_of(p))
        .collect();
    let policy = pod_failure_policy(&sx.job).cloned();
    let status = sx.job.status.get_or_insert_with(Default::default);
    if clean_uncounted(status, &with_finalizer) {
        needs_flush = true;
    }
    let mut to_remove: Vec<Arc<Pod>> = Vec::new();
    let mut new_succeeded_indexes: Vec<i32> = Vec::new();
    let mut reached_max = false;
    let pods = sx.pods.clone();
    for pod in &pods {
        let uid = uid_of(pod);
        if !has_finalizer(pod) || sx.expected_rm_finalizers.contains(&uid) {
            continue;
        }
        let failed = is_pod_failed(pod, &sx.job);
        if !can_remove_finalizer(sx, pod, failed) {
            continue;
        }
        to_remove.push(pod.clone());
        let uncounted = sx
            .job
            .status
            .get_or_insert_with(Default::default)
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let ending_in_failure = sx
            .finished
            .as_ref()
            .is_some_and(|f| f.type_ != "SuccessCriteriaMet");
        if phase(pod) == "Succeeded" && !sx.uncounted_failed.contains(&uid) {
            if indexed {
                if let Some(ix) = completion_index(&pod.metadata)
                    && ix < completions
                    && !sx.prev_succeeded_indexes.has(ix)
                {
                    new_succeeded_indexes.push(ix);
                    needs_flush = true;
                }
            } else if !sx.uncounted_succeeded.contains(&uid) {
                needs_flush = true;
                uncounted
                    .succeeded
                    .get_or_insert_with(Vec::new)
                    .push(uid.clone());
            }
        } else if failed || ending_in_failure {
            let ix_ok =
                !indexed || completion_index(&pod.metadata).is_some_and(|i| i < completions);
            if !sx.uncounted_failed.contains(&uid) && ix_ok {
                let counts = match_pod_failure_policy(policy.as_ref(), pod).1;
                if counts {
                    needs_flush = true;
                    uncounted
                        .failed
                        .get_or_insert_with(Vec::new)
                        .push(uid.clone());
                }
            }
        }
        let n = new_succeeded_indexes.len()
            + uncounted.succeeded.as_ref().map_or(0, Vec::len)
            + uncounted.failed.as_ref().map_or(0, Vec::len);
        if n >= MAX_UNCOUNTED_PODS {
            reached_max = true;
            break;
        }
    }
    if indexed {
        new_succeeded_indexes.sort();
        sx.succeeded_indexes = sx.succeeded_indexes.with(&new_succeeded_indexes);
        let s = sx.succeeded_indexes.to_string();
        let status = sx.job.status.get_or_insert_with(Default::default);
        if s != status.completed_indexes.clone().unwrap_or_default() {
            needs_flush = true;
        }
        status.succeeded = nonzero(sx.succeeded_indexes.total());
        status.completed_indexes = (!s.is_empty()).then_some(s);
    }
    if let Some(f) = sx.finished.clone()
        && f.type_ == "FailureTarget"
    {
        // Record why the Job fails before its pods' finalizers go.
        let conds = sx
            .job
            .status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new);
        if find_condition(conds, "FailureTarget").is_none() {
            conds.push(f.clone());
        }
        needs_flush = true;
        sx.finished = Some(new_condition(
            "Failed",
            "True",
            f.reason.as_deref().unwrap_or(""),
            f.message.as_deref().unwrap_or(""),
        ));
    }
    if let Some(f) = sx.finished.clone()
        && f.type_ == "SuccessCriteriaMet"
    {
        let conds = sx
            .job
            .status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new);
        if find_condition(conds, "SuccessCriteriaMet")
            .filter(|c| c.status == "True")
            .is_none()
        {
            conds.push(f.clone());
            needs_flush = true;
        }
        sx.finished = Some(new_condition(
            "Complete",
            "True",
            f.reason.as_deref().unwrap_or(""),
            f.message.as_deref().unwrap_or(""),
        ));
    }

    // 1. Flush the uncounted pods (and interim conditions) before touching finalizers.
    if needs_flush {
        update_status(c, sx).await?;
        c.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), sx.new_backoff.clone());
        needs_flush = false;
    }
    // 2. Remove the finalizers.
    let mut rm_err = None;
    if !to_remove.is_empty() {
        c.expect(key, |e| {
            for p in &to_remove {
                e.rm_finalizers.insert(uid_of(p));
            }
        });
        let ns = sx.job.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
        let results = futures::future::join_all(to_remove.iter().map(|p| {
            let api = api.clone();
            let name = p.metadata.name.clone().unwrap_or_default();
            async move {
                api.patch(&name, &PatchParams::default(), &remove_finalizer_patch())
                    .await
            }
        }))
        .await;
        for (res, p) in results.into_iter().zip(&to_remove) {
            match res {
                Ok(_) => {
                    with_finalizer.remove(&uid_of(p));
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    with_finalizer.remove(&uid_of(p));
                    c.expect(key, |x| {
                        x.rm_finalizers.remove(&uid_of(p));
                    });
                }
                Err(e) => {
                    c.expect(key, |x| {
                        x.rm_finalizers.remove(&uid_of(p));
                    });
                    tracing::warn!(job = key, error = %e, "removing tracking finalizer");
                    rm_err.get_or_insert(ControllerError::Kube(e));
                }
            }
        }
    }
    // 3. Count the pods whose finalizer is gone.
    let status = sx.job.status.get_or_insert_with(Default::default);
    if clean_uncounted(status, &with_finalizer) {
        needs_flush = true;
    }
    if let Some(e) = rm_err {
        if needs_flush {
            update_status(c, sx).await?;
        }
        return Err(e);
    }
    // 4. Finish the Job once nothing is left uncounted or terminating.
    let finished = !reached_max && enact_finished(sx);
    if finished {
        needs_flush = true;
    }
    if needs_flush {
        update_status(c, sx).await?;
        if finished {
            record_finished(c, sx).await;
        }
    }
    Ok(())
}

/// Moves uids whose finalizer is gone from the uncounted lists into the counters.
fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let mut changed = false;
    let u = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let keep = |v: &mut Option<Vec<String>>| -> i32 {
        let Some(list) = v.as_mut() else { return 0 };
        let before = list.len();
        list.retain(|uid| with_finalizer.contains(uid));
        let gone = (before - list.len()) as i32;
        if list.is_empty() {
            *v = None;
        }
        gone
    };
    let s = keep(&mut u.succeeded);
    let f = keep(&mut u.failed);
    if s > 0 {
        status.succeeded = nonzero(status.succeeded.unwrap_or(0) + s);
        changed = true;
    }
    if f > 0 {
        status.failed = nonzero(status.failed.unwrap_or(0) + f);
        changed = true;
    }
    changed
}

fn enact_finished(sx: &mut SyncCtx) -> bool {
    let Some(cond) = sx.finished.clone() else {
        return false;
    };
    let status = sx.job.status.get_or_insert_with(Default::default);
    if let Some(u) = &status.uncounted_terminated_pods {
        let n = u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len);
        if n > 0 {
            return false;
        }
    }
    if sx.terminating > 0 {
        return false;
    }
    let conds = status.conditions.get_or_insert_with(Vec::new);
    ensure_condition(
        conds,
        &cond.type_,
        &cond.status,
        cond.reason.as_deref().unwrap_or(""),
        cond.message.as_deref().unwrap_or(""),
    );
    if cond.type_ == "Complete" {
        status.completion_time =
            find_condition(conds, "Complete").and_then(|c| c.last_transition_time.clone());
    }
    true
}

async fn record_finished(c: &Ctrl, sx: &SyncCtx) {
    let Some(cond) = &sx.finished else { return };
    let jref = sx.job.object_ref(&());
    if cond.type_ == "Complete" {
        let completions = sx.job.spec.as_ref().and_then(|s| s.completions);
        let succeeded = sx
            .job
            .status
            .as_ref()
            .and_then(|s| s.succeeded)
            .unwrap_or(0);
        if completions.is_some_and(|n| succeeded > n) {
            c.events
                .warning(
                    &jref,
                    "TooManySucceededPods",
                    "Complete",
                    "Too many succeeded pods running after completion count reached".into(),
                )
                .await;
        }
        c.events
            .normal(&jref, "Completed", "Complete", "Job completed".into())
            .await;
    } else {
        c.events
            .warning(
                &jref,
                cond.reason.as_deref().unwrap_or("Failed"),
                "Fail",
                cond.message.clone().unwrap_or_default(),
            )
            .await;
    }
}

async fn update_status(c: &Ctrl, sx: &mut SyncCtx) -> Result<(), ControllerError> {
    let ns = sx.job.metadata.namespace.clone().unwrap_or_default();
    let name = sx.job.metadata.name.clone().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(c.client.clone(), &ns);
    let updated = api
        .replace_status(&name, &PostParams::default(), &sx.job)
        .await?;
    let uid = updated.metadata.uid.clone().unwrap_or_default();
    c.written
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(uid, Arc::new(updated.clone()));
    sx.job = updated;
    // Keep what this sync computed that the server copy may not show yet.
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Orphan pods: finalizers of pods whose Job is gone or finished

async fn orphan_worker(
    c: Arc<Ctrl>,
    mut rx: mpsc::UnboundedReceiver<ObjectRef<Pod>>,
    stop: CancellationToken,
) {
    loop {
        let r = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = stop.cancelled() => return,
        };
        let Some(pod) = c.pods.get(&r) else { continue };
        if !has_finalizer(&pod) {
            continue;
        }
        if let Some(owner) = controller_of(&pod.metadata) {
            if owner.kind != "Job" || owner.api_version != "batch/v1" {
                continue;
            }
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let job = c
                .jobs
                .get(&ObjectRef::new(&owner.name).within(&ns))
                .filter(|j| j.metadata.uid.as_deref() == Some(owner.uid.as_str()));
            if let Some(job) = job {
                let managed = job.spec.as_ref().and_then(|s| s.managed_by.as_deref());
                if managed.is_some_and(|m| m != CONTROLLER_NAME) || !is_finished(&job) {
                    continue;
                }
            }
        }
        let api: Api<Pod> = Api::namespaced(
            c.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or(""),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        match api
            .patch(&name, &PatchParams::default(), &remove_finalizer_patch())
            .await
        {
            Ok(_) => tracing::debug!(pod = name, "removed tracking finalizer of orphan pod"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(pod = name, error = %e, "removing tracking finalizer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_merge_and_print_like_completed_indexes() {
        let iv = Intervals::parse("0-2,4,6,7", 10);
        assert_eq!(iv.0, vec![(0, 2), (4, 4), (6, 7)]);
        assert_eq!(iv.total(), 6);
        assert_eq!(iv.to_string(), "0-2,4,6,7");
        assert_eq!(iv.with(&[3, 5]).to_string(), "0-7");
        assert_eq!(iv.with(&[9]).to_string(), "0-2,4,6,7,9");
        assert!(iv.has(1) && iv.has(7) && !iv.has(5));
        // Indexes at or past completions are dropped, ranges clipped.
        assert_eq!(Intervals::parse("1-5,8", 4).to_string(), "1-3");
        assert_eq!(Intervals::parse("", 3).total(), 0);
        // Two adjacent indexes print with a comma, as upstream.
        assert_eq!(Intervals::default().with(&[0, 1]).to_string(), "0,1");
    }

    #[test]
    fn pending_indexes_skip_done_and_running() {
        let done = Intervals::parse("0,2", 5);
        assert_eq!(first_pending_indexes(&done, 2, 5), vec![1, 3]);
        assert_eq!(first_pending_indexes(&done, 9, 5), vec![1, 3, 4]);
        assert_eq!(
            first_pending_indexes(&Intervals::default(), 3, 2),
            vec![0, 1]
        );
    }

    #[test]
    fn generate_name_keeps_the_index() {
        assert_eq!(generate_name_with_index("pi", 3), "pi-3-");
        let long = "a".repeat(70);
        let g = generate_name_with_index(&long, 12);
        assert_eq!(g.len(), 58);
        assert!(g.ends_with("a-12-"));
    }

    fn pod_with(phase_: &str, finished: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": phase_, "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "finishedAt": finished}}}]}
        }))
        .expect("pod")
    }

    #[test]
    fn backoff_doubles_per_consecutive_failure() {
        let t0: jiff::Timestamp = "2024-01-01T00:00:10Z".parse().expect("time");
        let f1 = pod_with("Failed", "2024-01-01T00:00:10Z");
        let r = BackoffRecord::default().next(&[], &[&f1]);
        assert_eq!(r.failures_after_last_success, 1);
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(600);
        assert_eq!(r.remaining(t0, base, max), Duration::from_secs(10));
        assert_eq!(
            r.remaining(t0 + jiff::SignedDuration::from_secs(4), base, max),
            Duration::from_secs(6)
        );
        let f2 = pod_with("Failed", "2024-01-01T00:00:30Z");
        let r2 = r.next(&[], &[&f2]);
        assert_eq!(r2.failures_after_last_success, 2);
        let t1: jiff::Timestamp = "2024-01-01T00:00:30Z".parse().expect("time");
        assert_eq!(r2.remaining(t1, base, max), Duration::from_secs(20));
        // A success after the failures resets the count.
        let ok = pod_with("Succeeded", "2024-01-01T00:00:40Z");
        let r3 = r2.next(&[&ok], &[]);
        assert_eq!(r3.failures_after_last_success, 0);
        assert_eq!(r3.remaining(t1, base, max), Duration::ZERO);
        // Capped at the maximum.
        let many = BackoffRecord {
            failures_after_last_success: 30,
            last_failure_time: Some(t1),
        };
        assert_eq!(many.remaining(t1, base, max), max);
    }

    #[test]
    fn failure_policy_rules_match_exit_codes_and_conditions() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        ]}))
        .expect("policy");
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p-1", "namespace": "ns"},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 42}}}]}
        }))
        .expect("pod");
        let (msg, counts, action) = match_pod_failure_policy(Some(&policy), &pod);
        assert_eq!(
            msg.as_deref(),
            Some(
                "Container main for pod ns/p-1 failed with exit code 42 matching FailJob rule at index 1"
            )
        );
        assert!(counts);
        assert_eq!(action.as_deref(), Some("FailJob"));
        pod.status.as_mut().expect("status").conditions = Some(vec![
            serde_json::from_value(json!({"type": "DisruptionTarget", "status": "True"}))
                .expect("cond"),
        ]);
        let (msg, counts, action) = match_pod_failure_policy(Some(&policy), &pod);
        assert_eq!(
            (msg, counts, action.as_deref()),
            (None, false, Some("Ignore"))
        );
        assert_eq!(match_pod_failure_policy(None, &pod), (None, true, None));
    }

    #[test]
    fn indexed_pods_carry_index_annotation_label_and_hostname() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "idx", "namespace": "default", "uid": "u1"},
            "spec": {"completionMode": "Indexed", "template": {"metadata": {"labels": {"job-name": "idx"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .expect("job");
        let mut t = job.spec.as_ref().expect("spec").template.clone();
        add_completion_index_env(&mut t);
        let pod = pod_from_template(&job, &t, Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("idx-2-"));
        assert_eq!(completion_index(&pod.metadata), Some(2));
        assert_eq!(
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPLETION_INDEX))
                .map(String::as_str),
            Some("2")
        );
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("idx-2"));
        let env = spec.containers[0].env.as_ref().expect("env");
        assert_eq!(env[0].name, "JOB_COMPLETION_INDEX");
        let owner = &pod.metadata.owner_references.expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
    }

    #[test]
    fn conditions_are_only_added_when_not_false() {
        let mut list = Vec::new();
        assert!(!ensure_condition(
            &mut list,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed"
        ));
        assert!(list.is_empty());
        assert!(ensure_condition(
            &mut list,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended"
        ));
        assert!(!ensure_condition(
            &mut list,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended"
        ));
        assert!(ensure_condition(
            &mut list,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed"
        ));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "False");
    }
}
