//! The CronJob controller (upstream `pkg/controller/cronjob`, "v2"): creates a Job named
//! `<cronjob>-<scheduled time in minutes since the epoch>` at each scheduled time (within
//! `startingDeadlineSeconds`), honours `concurrencyPolicy` (Allow, Forbid, Replace) and
//! `suspend`, keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, and deletes
//! finished Jobs beyond the history limits. It sleeps until the next scheduled time.

use super::reconcile_loop::Recorder;
use super::reconcile_loop::{self, Queue, informer};
use super::util::controller_of;
use super::{Context, ControllerError};
use crate::cron::{Schedule, load_location};
use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Requeue padding past the scheduled time, for clock skew.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

pub fn runner(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run(ctx, stop))
}

struct Ctrl {
    client: kube::Client,
    events: Recorder,
    jobs: Store<Job>,
}

async fn run(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("cronjob-controller")?;
    let informer_client = ctx.clients.client("system:kube-controller-manager")?;
    let cronjobs = informer(Api::<CronJob>::all(informer_client.clone()));
    let jobs = informer(Api::<Job>::all(informer_client));
    let c = Arc::new(Ctrl {
        client: client.clone(),
        events: Recorder::new(&ctx, client, "cronjob-controller"),
        jobs: jobs.store.clone(),
    });
    let mut queue = Queue::<CronJob>::default();
    queue.add_self(cronjobs.events);
    queue.add_mapped(jobs.events, |job: Job| {
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        controller_of(&job.metadata)
            .filter(|o| o.kind == "CronJob")
            .map(|o| ObjectRef::<CronJob>::new(&o.name).within(&ns))
    });
    let ready = vec![
        reconcile_loop::ready(&cronjobs.store),
        reconcile_loop::ready(&jobs.store),
    ];
    reconcile_loop::run(
        "cronjob",
        cronjobs.store,
        queue,
        ready,
        c,
        |cj, c| async move { sync(&c, &cj).await },
        (Duration::from_millis(5), Duration::from_secs(1000)),
        stop,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Schedule arithmetic (upstream utils.go)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

/// (earliest time considered, the most recent scheduled time not after `now`, how many were
/// missed); an error for a schedule that never fires.
pub fn most_recent_schedule_time(
    created: Timestamp,
    last_schedule: Option<Timestamp>,
    starting_deadline: Option<i64>,
    now: Timestamp,
    sched: &Schedule,
    include_deadline: bool,
) -> (Timestamp, Option<Timestamp>, Missed, Result<(), String>) {
    let mut earliest = last_schedule.unwrap_or(created);
    if include_deadline && let Some(d) = starting_deadline {
        let deadline = now - jiff::SignedDuration::from_secs(d);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let never = || "time difference between two schedules is less than 1 second".to_string();
    let Some(t1) = sched.next(earliest) else {
        return (earliest, None, Missed::None, Err(never()));
    };
    if now < t1 {
        return (earliest, None, Missed::None, Ok(()));
    }
    let Some(t2) = sched.next(t1) else {
        return (earliest, Some(t1), Missed::None, Ok(()));
    };
    if now < t2 {
        return (earliest, Some(t1), Missed::None, Ok(()));
    }
    let between = t2.duration_since(t1).as_secs_f64().round() as i64;
    if between < 1 {
        return (earliest, None, Missed::None, Err(never()));
    }
    // Approximates how many schedules were missed, then walks the last stretch exactly.
    let elapsed = now.duration_since(t1).as_secs();
    let missed = elapsed / between + 1;
    let potential = t1 + jiff::SignedDuration::from_secs((missed - 2) * between);
    let mut most_recent = None;
    let mut t = sched.next(potential);
    while let Some(x) = t {
        if x > now {
            break;
        }
        most_recent = Some(x);
        t = sched.next(x);
    }
    let kind = if missed > 100 {
        Missed::Many
    } else {
        Missed::Few
    };
    (earliest, most_recent, kind, Ok(()))
}

fn times_of(cj: &CronJob) -> (Timestamp, Option<Timestamp>, Option<i64>) {
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(Timestamp::now, |t| t.0);
    let last = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0);
    let deadline = cj.spec.starting_deadline_seconds;
    (created, last, deadline)
}

/// How long until the next scheduled time (plus a small padding).
pub fn next_schedule_duration(cj: &CronJob, now: Timestamp, sched: &Schedule) -> Duration {
    let (created, last, deadline) = times_of(cj);
    let (earliest, recent, missed, res) =
        most_recent_schedule_time(created, last, deadline, now, sched, false);
    let from = match (res, recent) {
        (Err(_), _) => now,
        (Ok(()), Some(t)) => t,
        (Ok(()), None) if missed == Missed::None => earliest,
        (Ok(()), None) => now,
    };
    let next = sched
        .next(from)
        .unwrap_or(now + jiff::SignedDuration::from_hours(24 * 365));
    let d = Duration::try_from(next.duration_since(now)).unwrap_or_default();
    d + NEXT_SCHEDULE_DELTA
}

/// The schedule a CronJob means: its spec with `timeZone` applied.
pub fn parse_schedule(cj: &CronJob) -> Result<Schedule, String> {
    let spec = cj.spec.schedule.as_str();
    let tz = cj.spec.time_zone.as_deref();
    if spec.contains("TZ") {
        return Schedule::parse(spec);
    }
    match tz.map(load_location) {
        Some(Ok(z)) => Schedule::parse_in(spec, Some(z)),
        _ => Schedule::parse(spec),
    }
}

/// `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cj: &str, scheduled: Timestamp) -> String {
    format!("{cj}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job for a scheduled time (upstream getJobFromTemplate2).
pub fn job_from_template(cj: &CronJob, scheduled: Timestamp) -> Result<Job, String> {
    let name = cj.metadata.name.clone().unwrap_or_default();
    let spec = cj.spec.clone();
    let tmeta = spec.job_template.metadata.clone().unwrap_or_default();
    let mut annotations = tmeta.annotations.clone().unwrap_or_default();
    let tz = load_location(spec.time_zone.as_deref().unwrap_or(""))?;
    let local = scheduled.to_zoned(tz);
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        local
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: Some(tmeta.labels.clone().unwrap_or_default()),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name,
                uid: cj.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: spec.job_template.spec.clone(),
        status: None,
    })
}

fn job_condition(job: &Job) -> Option<&'static str> {
    super::job::finished_condition(job)
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn in_active(cj: &CronJob, uid: &str) -> bool {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .is_some_and(|a| a.iter().any(|r| r.uid.as_deref() == Some(uid)))
}

fn remove_active(cj: &mut CronJob, uid: &str) {
    if let Some(a) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
        a.retain(|r| r.uid.as_deref() != Some(uid));
    }
}

// ---------------------------------------------------------------------------------------------
// The sync

async fn sync(c: &Ctrl, shared: &CronJob) -> Result<Action, ControllerError> {
    let ns = shared.metadata.namespace.clone().unwrap_or_default();
    let name = shared.metadata.name.clone().unwrap_or_default();
    let jobs: Vec<Arc<Job>> = c
        .jobs
        .state()
        .into_iter()
        .filter(|j| {
            j.metadata.namespace.as_deref() == Some(ns.as_str())
                && controller_of(&j.metadata).is_some_and(|o| o.kind == "CronJob" && o.name == name)
        })
        .collect();
    let mut cj = shared.clone();
    let cleaned = cleanup_finished_jobs(c, &mut cj, &jobs).await;
    let (requeue, changed, err) = sync_cronjob(c, &mut cj, &jobs).await;
    if let Some(e) = &err {
        tracing::debug!(cronjob = name, error = %e, "sync");
    }
    if cleaned || changed {
        let api: Api<CronJob> = Api::namespaced(c.client.clone(), &ns);
        api.replace_status(&name, &PostParams::default(), &cj)
            .await?;
    }
    match (requeue, err) {
        (Some(d), _) => Ok(Action::requeue(d)),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(Action::await_change()),
    }
}

async fn sync_cronjob(
    c: &Ctrl,
    cj: &mut CronJob,
    jobs: &[Arc<Job>],
) -> (Option<Duration>, bool, Option<ControllerError>) {
    let now = Timestamp::now();
    let mut changed = false;
    let cref = cj.object_ref(&());
    let ns = cj.metadata.namespace.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(c.client.clone(), &ns);
    for j in jobs {
        let uid = j.metadata.uid.clone().unwrap_or_default();
        let jname = j.metadata.name.clone().unwrap_or_default();
        let found = in_active(cj, &uid);
        let finished = job_condition(j);
        if !found && finished.is_none() {
            // Maybe our status write is newer than the informer: ask the server.
            let api: Api<CronJob> = Api::namespaced(c.client.clone(), &ns);
            match api
                .get(cj.metadata.name.as_deref().unwrap_or_default())
                .await
            {
                Ok(fresh) if in_active(&fresh, &uid) => {
                    *cj = fresh;
                    continue;
                }
                Ok(_) => {}
                Err(e) => return (None, changed, Some(e.into())),
            }
            c.events
                .warning(
                    &cref,
                    "UnexpectedJob",
                    "Reconcile",
                    format!("Saw a job that the controller did not create or forgot: {jname}"),
                )
                .await;
        } else if found && let Some(status) = finished {
            remove_active(cj, &uid);
            c.events
                .normal(
                    &cref,
                    "SawCompletedJob",
                    "Reconcile",
                    format!("Saw completed job: {jname}, status: {status}"),
                )
                .await;
            changed = true;
        } else if finished == Some("Complete") {
            let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
            let st = cj.status.get_or_insert_with(Default::default);
            match (&st.last_successful_time, &done) {
                (None, _) => {
                    st.last_successful_time = done;
                    changed = true;
                }
                (Some(last), Some(d)) if d.0 > last.0 => {
                    st.last_successful_time = done;
                    changed = true;
                }
                _ => {}
            }
        }
    }
    // Active jobs that are gone for good leave the list.
    let active: Vec<ObjectReference> = cj
        .status
        .as_ref()
        .and_then(|s| s.active.clone())
        .unwrap_or_default();
    for r in active {
        let uid = r.uid.clone().unwrap_or_default();
        if jobs
            .iter()
            .any(|j| j.metadata.uid.as_deref() == Some(uid.as_str()))
        {
            continue;
        }
        let rname = r.name.clone().unwrap_or_default();
        match jobs_api.get(&rname).await {
            Err(kube::Error::Api(e)) if e.code == 404 => {
                c.events
                    .normal(
                        &cref,
                        "MissingJob",
                        "Reconcile",
                        format!("Active job went missing: {rname}"),
                    )
                    .await;
                remove_active(cj, &uid);
                changed = true;
            }
            Err(e) => return (None, changed, Some(e.into())),
            Ok(_) => {}
        }
    }
    if cj.metadata.deletion_timestamp.is_some() {
        return (None, changed, None);
    }
    let spec = cj.spec.clone();
    if let Some(tz) = &spec.time_zone
        && let Err(e) = load_location(tz)
    {
        c.events
            .warning(
                &cref,
                "UnknownTimeZone",
                "Reconcile",
                format!("invalid timeZone: {tz:?}: {e}"),
            )
            .await;
        return (None, changed, None);
    }
    if spec.suspend == Some(true) {
        return (None, changed, None);
    }
    if spec.schedule.contains("TZ") {
        c.events
            .warning(
                &cref,
                "UnsupportedSchedule",
                "Reconcile",
                format!(
                    "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                    spec.schedule
                ),
            )
            .await;
    }
    let sched = match parse_schedule(cj) {
        Ok(s) => s,
        Err(e) => {
            c.events
                .warning(
                    &cref,
                    "UnparseableSchedule",
                    "Reconcile",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                )
                .await;
            return (None, changed, None);
        }
    };
    let (created, last, deadline) = times_of(cj);
    let (_, recent, missed, res) =
        most_recent_schedule_time(created, last, deadline, now, &sched, true);
    if let Err(e) = res {
        c.events
            .warning(
                &cref,
                "InvalidSchedule",
                "Reconcile",
                format!("invalid schedule: {} : {e}", spec.schedule),
            )
            .await;
        return (None, changed, None);
    }
    let Some(scheduled) = recent.filter(|t| *t <= now) else {
        return (Some(next_schedule_duration(cj, now, &sched)), changed, None);
    };
    if missed == Missed::Many {
        c.events
            .warning(
                &cref,
                "TooManyMissedTimes",
                "Reconcile",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
            )
            .await;
    }
    if let Some(d) = spec.starting_deadline_seconds
        && scheduled + jiff::SignedDuration::from_secs(d) < now
    {
        c.events
            .warning(
                &cref,
                "MissSchedule",
                "Reconcile",
                format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")
                ),
            )
            .await;
        return (Some(next_schedule_duration(cj, now, &sched)), changed, None);
    }
    let cj_name = cj.metadata.name.clone().unwrap_or_default();
    let want_name = job_name(&cj_name, scheduled);
    let st = cj.status.clone().unwrap_or_default();
    let active_by_name = st
        .active
        .iter()
        .flatten()
        .any(|r| r.name.as_deref() == Some(want_name.as_str()));
    if active_by_name
        || st
            .last_schedule_time
            .as_ref()
            .is_some_and(|t| t.0 == scheduled)
    {
        return (Some(next_schedule_duration(cj, now, &sched)), changed, None);
    }
    let active_count = st.active.as_ref().map_or(0, Vec::len);
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && active_count > 0 {
        c.events
            .normal(
                &cref,
                "JobAlreadyActive",
                "Reconcile",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            )
            .await;
        return (Some(next_schedule_duration(cj, now, &sched)), changed, None);
    }
    if policy == "Replace" {
        for r in st.active.iter().flatten() {
            let rname = r.name.clone().unwrap_or_default();
            let job = match jobs_api.get(&rname).await {
                Ok(j) => j,
                Err(e) => {
                    c.events
                        .warning(&cref, "FailedGet", "Reconcile", format!("Get job: {e}"))
                        .await;
                    return (None, changed, Some(e.into()));
                }
            };
            if !delete_job(c, cj, &job).await {
                return (
                    None,
                    changed,
                    Some(ControllerError::Invalid(format!(
                        "could not replace job {ns}/{rname}"
                    ))),
                );
            }
            changed = true;
        }
    }
    let req = match job_from_template(cj, scheduled) {
        Ok(j) => j,
        Err(e) => return (None, changed, Some(ControllerError::Invalid(e))),
    };
    let created_job = match jobs_api.create(&PostParams::default(), &req).await {
        Ok(j) => {
            c.events
                .normal(
                    &cref,
                    "SuccessfulCreate",
                    "Create",
                    format!("Created job {want_name}"),
                )
                .await;
            j
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Created before but not recorded (a crash between the two): record it now.
            let j = match jobs_api.get(&want_name).await {
                Ok(j) => j,
                Err(e) => return (None, changed, Some(e.into())),
            };
            let ours = controller_of(&j.metadata)
                .is_some_and(|o| Some(&o.uid) == cj.metadata.uid.as_ref());
            if !ours || in_active(cj, j.metadata.uid.as_deref().unwrap_or_default()) {
                return (None, changed, None);
            }
            tracing::info!(cronjob = cj_name, job = want_name, "job already exists");
            j
        }
        Err(e) => {
            let terminating = e.to_string().contains("being terminated");
            if !terminating {
                c.events
                    .warning(
                        &cref,
                        "FailedCreate",
                        "Create",
                        format!("Error creating job: {e}"),
                    )
                    .await;
            }
            return (None, changed, Some(e.into()));
        }
    };
    let st = cj.status.get_or_insert_with(Default::default);
    st.active
        .get_or_insert_with(Vec::new)
        .push(job_ref(&created_job));
    st.last_schedule_time = Some(Time(scheduled));
    (Some(next_schedule_duration(cj, now, &sched)), true, None)
}

/// Deletes a Job (and, through background propagation, its pods); drops it from `active`.
async fn delete_job(c: &Ctrl, cj: &mut CronJob, job: &Job) -> bool {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(c.client.clone(), &ns);
    let cref = cj.object_ref(&());
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    if let Err(e) = api.delete(&name, &dp).await {
        c.events
            .warning(&cref, "FailedDelete", "Delete", format!("Deleted job: {e}"))
            .await;
        tracing::warn!(job = name, error = %e, "deleting job of cronjob");
        return false;
    }
    remove_active(cj, job.metadata.uid.as_deref().unwrap_or_default());
    c.events
        .normal(
            &cref,
            "SuccessfulDelete",
            "Delete",
            format!("Deleted job {name}"),
        )
        .await;
    true
}

/// Oldest first by start time (unstarted last), then by name.
fn by_start_time(a: &Arc<Job>, b: &Arc<Job>) -> std::cmp::Ordering {
    let sa = a
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0);
    let sb = b
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0);
    match (sa, sb) {
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (x, y) if x == y => a.metadata.name.cmp(&b.metadata.name),
        (x, y) => x.cmp(&y),
    }
}

async fn cleanup_finished_jobs(c: &Ctrl, cj: &mut CronJob, jobs: &[Arc<Job>]) -> bool {
    let spec = cj.spec.clone();
    if spec.successful_jobs_history_limit.is_none() && spec.failed_jobs_history_limit.is_none() {
        return false;
    }
    let mut changed = false;
    for (status, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<Arc<Job>> = jobs
            .iter()
            .filter(|j| job_condition(j) == Some(status))
            .cloned()
            .collect();
        let excess = done.len() as i64 - i64::from(limit);
        if excess <= 0 {
            continue;
        }
        done.sort_by(by_start_time);
        for j in done.iter().take(excess as usize) {
            if delete_job(c, cj, j).await {
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn utc(spec: &str) -> Schedule {
        Schedule::parse_in(spec, Some(jiff::tz::TimeZone::UTC)).expect("schedule")
    }

    #[test]
    fn most_recent_time_counts_missed_schedules() {
        let s = utc("* * * * *");
        let created = ts("2024-05-01T10:00:30Z");
        // Nothing due yet.
        let (_, t, m, r) =
            most_recent_schedule_time(created, None, None, ts("2024-05-01T10:00:59Z"), &s, true);
        assert_eq!((t, m, r), (None, Missed::None, Ok(())));
        // Exactly one due.
        let (_, t, m, _) =
            most_recent_schedule_time(created, None, None, ts("2024-05-01T10:01:10Z"), &s, true);
        assert_eq!((t, m), (Some(ts("2024-05-01T10:01:00Z")), Missed::None));
        // Several missed: the most recent one counts.
        let (_, t, m, _) = most_recent_schedule_time(
            created,
            Some(ts("2024-05-01T10:01:00Z")),
            None,
            ts("2024-05-01T10:05:10Z"),
            &s,
            true,
        );
        assert_eq!((t, m), (Some(ts("2024-05-01T10:05:00Z")), Missed::Few));
        // More than a hundred missed.
        let (_, t, m, _) =
            most_recent_schedule_time(created, None, None, ts("2024-05-02T10:00:00Z"), &s, true);
        assert_eq!((t, m), (Some(ts("2024-05-02T10:00:00Z")), Missed::Many));
        // startingDeadlineSeconds moves the earliest time considered forward.
        let (earliest, t, m, _) = most_recent_schedule_time(
            created,
            None,
            Some(30),
            ts("2024-05-02T10:00:10Z"),
            &s,
            true,
        );
        assert_eq!(earliest, ts("2024-05-02T09:59:40Z"));
        assert_eq!((t, m), (Some(ts("2024-05-02T10:00:00Z")), Missed::None));
        // A schedule that never fires is an error.
        let (_, _, _, r) = most_recent_schedule_time(
            created,
            None,
            None,
            ts("2024-05-02T10:00:10Z"),
            &utc("0 0 31 2 *"),
            true,
        );
        assert!(r.is_err());
    }

    fn cronjob(extra: serde_json::Value) -> CronJob {
        let mut v = json!({
            "metadata": {"name": "hello", "namespace": "default", "uid": "cj-uid",
                "creationTimestamp": "2024-05-01T10:00:30Z"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}}
        });
        if let (Some(spec), Some(e)) = (v["spec"].as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                spec.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).expect("cronjob")
    }

    #[test]
    fn next_requeue_waits_for_the_next_slot() {
        let cj = cronjob(json!({"timeZone": "UTC"}));
        let s = parse_schedule(&cj).expect("schedule");
        let d = next_schedule_duration(&cj, ts("2024-05-01T10:03:00Z"), &s);
        assert_eq!(d, Duration::from_secs(120) + NEXT_SCHEDULE_DELTA);
    }

    #[test]
    fn jobs_are_named_by_minutes_and_annotated_with_the_scheduled_time() {
        let t = ts("2024-05-01T10:05:00Z");
        assert_eq!(job_name("hello", t), format!("hello-{}", 1714557900 / 60));
        assert_eq!(job_name("hello", t), "hello-28575965");
        let cj = cronjob(json!({"timeZone": "Asia/Tokyo"}));
        let job = job_from_template(&cj, t).expect("job");
        assert_eq!(job.metadata.name.as_deref(), Some("hello-28575965"));
        let ann = job.metadata.annotations.expect("annotations");
        assert_eq!(ann[SCHEDULED_TIMESTAMP], "2024-05-01T19:05:00+09:00");
        assert_eq!(job.metadata.labels.expect("labels")["team"], "a");
        let owner = &job.metadata.owner_references.expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("CronJob", "cj-uid", Some(true))
        );
        let utc_job = job_from_template(&cronjob(json!({})), t).expect("job");
        assert_eq!(
            utc_job.metadata.annotations.expect("annotations")[SCHEDULED_TIMESTAMP],
            "2024-05-01T10:05:00Z"
        );
    }

    #[test]
    fn time_zone_field_applies_to_the_schedule() {
        let cj = cronjob(json!({"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo"}));
        let s = parse_schedule(&cj).expect("schedule");
        assert_eq!(
            s.next(ts("2024-05-01T01:00:00Z")),
            Some(ts("2024-05-02T00:00:00Z"))
        );
    }
}
