//! The namespace controller (upstream `pkg/controller/namespace`): a namespace marked for
//! deletion is emptied of every namespaced resource the API serves (found through discovery),
//! its status conditions tell what remains, and once nothing does, the `kubernetes` finalizer is
//! removed through the `finalize` subresource so the API server can remove the namespace.

use super::discovery::{self, Discovered, Served};
use super::{Context, ControllerError};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "namespace";
const IDENTITY: &str = "namespace-controller";
/// The finalizer this controller owns.
const FINALIZER: &str = "kubernetes";
/// How long to wait for objects held by finalizers before looking again.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(async move {
        let client = ctx.client_for(IDENTITY)?;
        let state = Arc::new(State {
            client: client.clone(),
            failures: Mutex::new(HashMap::new()),
        });
        Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
            .with_config(kube::runtime::controller::Config::default().concurrency(10))
            .graceful_shutdown_on(stop.cancelled_owned())
            .run(reconcile, error_policy, state)
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "namespace controller");
                }
            })
            .await;
        Ok(())
    })
}

struct State {
    client: kube::Client,
    /// Consecutive failures per namespace, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Content(String),
}

async fn reconcile(ns: Arc<Namespace>, state: Arc<State>) -> Result<Action, SyncError> {
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let name = ns.metadata.name.clone().unwrap_or_default();
    let outcome = delete_namespace(&state.client, &name).await;
    if outcome.is_ok()
        && let Ok(mut f) = state.failures.lock()
    {
        f.remove(&name);
    }
    match outcome? {
        None => Ok(Action::await_change()),
        Some(estimate) => {
            tracing::debug!(namespace = %name, estimate, "content remains in the namespace");
            Ok(Action::requeue(Duration::from_secs(
                (estimate / 2 + 1).max(1) as u64,
            )))
        }
    }
}

fn error_policy(ns: Arc<Namespace>, err: &SyncError, state: Arc<State>) -> Action {
    let name = ns.metadata.name.clone().unwrap_or_default();
    let n = state
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(name.clone()).or_insert(0);
            *n += 1;
            *n
        })
        .unwrap_or(1);
    tracing::info!(namespace = %name, error = %err, attempt = n, "namespace deletion not finished");
    // Exponential from 100 ms, as a workqueue rate limiter, capped at a minute.
    let ms = 100u64.saturating_mul(1 << n.min(10)).min(60_000);
    Action::requeue(Duration::from_millis(ms))
}

/// One pass over a namespace being deleted; `Some(seconds)` while content is still going away.
pub async fn delete_namespace(client: &kube::Client, name: &str) -> Result<Option<i64>, SyncError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(mut ns) = api.get_opt(name).await? else {
        return Ok(None);
    };
    let Some(deleted_at) = ns.metadata.deletion_timestamp.clone() else {
        return Ok(None);
    };
    let uid = ns.metadata.uid.clone();
    // The phase says Terminating (the API server sets it too; older objects may lack it).
    loop {
        let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Terminating") {
            break;
        }
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
        match api.replace_status(name, &PostParams::default(), &ns).await {
            Ok(updated) => ns = updated,
            Err(kube::Error::Api(e)) if e.code == 409 => ns = refetch(&api, name, &uid).await?,
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    if finalizers(&ns).is_empty() {
        return Ok(None);
    }
    let estimate = delete_all_content(client, &api, &mut ns, deleted_at.0).await?;
    if estimate > 0 {
        return Ok(Some(estimate));
    }
    // Content is gone: give up our finalizer.
    loop {
        let mut fin = ns.clone();
        let remaining: Vec<String> = finalizers(&ns)
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect();
        fin.spec.get_or_insert_with(Default::default).finalizers = Some(remaining);
        match api
            .replace_subresource("finalize", name, &PostParams::default(), &fin)
            .await
        {
            Ok(_) => {
                tracing::info!(namespace = %name, "namespace emptied and finalized");
                return Ok(None);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
            Err(kube::Error::Api(e)) if e.code == 409 => ns = refetch(&api, name, &uid).await?,
            Err(e) => return Err(e.into()),
        }
    }
}

async fn refetch(
    api: &Api<Namespace>,
    name: &str,
    uid: &Option<String>,
) -> Result<Namespace, SyncError> {
    let ns = api.get(name).await?;
    if &ns.metadata.uid != uid {
        return Err(SyncError::Content(
            "namespace uid has changed across retries".into(),
        ));
    }
    Ok(ns)
}

fn finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

/// What deleting one resource's objects left behind.
#[derive(Debug, Default, PartialEq)]
struct Remaining {
    estimate: i64,
    count: usize,
    finalizers: BTreeMap<String, usize>,
}

/// Deletes everything in the namespace; returns how many seconds to wait for the rest, and
/// records the outcome in the namespace's deletion conditions.
async fn delete_all_content(
    client: &kube::Client,
    api: &Api<Namespace>,
    ns: &mut Namespace,
    deleted_at: jiff::Timestamp,
) -> Result<i64, SyncError> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    let mut updater = ConditionUpdater::default();
    let mut errors: Vec<String> = Vec::new();
    let found = match discovery::discover(client).await {
        Ok(d) => d,
        Err(e) => {
            updater.discovery_failed(e.to_string());
            errors.push(e.to_string());
            Discovered::default()
        }
    };
    if let Some(msg) = found.failure_message() {
        updater.discovery_failed(msg.clone());
        errors.push(msg);
    }
    let mut estimate = 0i64;
    let mut by_resource: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_finalizer: BTreeMap<String, usize> = BTreeMap::new();
    let mut content_errors: Vec<String> = Vec::new();
    for r in found
        .resources
        .iter()
        .filter(|r| r.namespaced && r.supports(&["delete"]))
    {
        match delete_resource(client, r, &name, deleted_at).await {
            Ok(rem) => {
                estimate = estimate.max(rem.estimate);
                if rem.count > 0 {
                    by_resource.insert(r.group_resource(), rem.count);
                    for (f, n) in rem.finalizers {
                        *by_finalizer.entry(f).or_insert(0) += n;
                    }
                }
            }
            Err((rem, e)) => {
                estimate = estimate.max(rem.estimate);
                if rem.count > 0 {
                    by_resource.insert(r.group_resource(), rem.count);
                }
                content_errors.push(e);
            }
        }
    }
    updater.content_totals(&by_resource, &by_finalizer);
    updater.content_errors(&content_errors);
    errors.extend(content_errors);
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    if updater.apply(status)
        && let Err(e) = api
            .replace_status(&name, &PostParams::default(), &*ns)
            .await
    {
        tracing::info!(namespace = %name, error = %e, "couldn't update the namespace's deletion conditions");
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(SyncError::Content(errors.join(", ")));
    }
    Ok(estimate)
}

/// Deletes the objects of one resource in the namespace (collection delete when served, else
/// one by one) and reports what is left. Errors come with what is left too.
async fn delete_resource(
    client: &kube::Client,
    r: &Served,
    namespace: &str,
    deleted_at: jiff::Timestamp,
) -> Result<Remaining, (Remaining, String)> {
    let ar = r.api_resource();
    let full: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let metadata: Api<PartialObjectMeta<DynamicObject>> =
        Api::namespaced_with(client.clone(), namespace, &ar);
    let gvr = format!("{}/{}, Resource={}", r.group, r.version, r.plural);
    let fail = |estimate: i64, e: String| {
        (
            Remaining {
                estimate,
                ..Remaining::default()
            },
            e,
        )
    };
    let estimate = if r.group.is_empty() && r.plural == "pods" {
        pod_estimate(client, namespace, deleted_at)
            .await
            .map_err(|e| fail(0, e.to_string()))?
    } else {
        0
    };
    // Background propagation: the namespace is emptied anyway, orphans are pointless.
    let dp = DeleteParams::background();
    let listed_ok = r.supports(&["list"]);
    let mut collection_done = false;
    if r.supports(&["deletecollection"]) {
        match full.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => collection_done = true,
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {}
            Err(e) => return Err(fail(estimate, e.to_string())),
        }
    }
    if !collection_done && listed_ok {
        let items = metadata
            .list(&ListParams::default())
            .await
            .map_err(|e| fail(estimate, e.to_string()))?;
        for item in items.items {
            let Some(n) = item.metadata.name.as_deref() else {
                continue;
            };
            match full.delete(n, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {}
                Err(e) => return Err(fail(estimate, e.to_string())),
            }
        }
    }
    if !listed_ok {
        return Ok(Remaining {
            estimate,
            ..Remaining::default()
        });
    }
    let left = match metadata.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => Vec::new(),
        Err(e) => return Err(fail(estimate, e.to_string())),
    };
    if left.is_empty() {
        return Ok(Remaining::default());
    }
    let mut finalizers = BTreeMap::new();
    for item in &left {
        for f in item.metadata.finalizers.iter().flatten() {
            *finalizers.entry(f.clone()).or_insert(0) += 1;
        }
    }
    let rem = |estimate| Remaining {
        estimate,
        count: left.len(),
        finalizers: finalizers.clone(),
    };
    if estimate != 0 {
        return Ok(rem(estimate));
    }
    // Objects held by finalizers are normal: give their owners time.
    if !finalizers.is_empty() {
        return Ok(rem(FINALIZER_ESTIMATE_SECONDS));
    }
    Err((
        rem(0),
        format!("unexpected items still remain in namespace: {namespace} for gvr: {gvr}"),
    ))
}

/// The longest grace period of the namespace's running pods, while it has not yet passed since
/// the namespace was deleted.
async fn pod_estimate(
    client: &kube::Client,
    namespace: &str,
    deleted_at: jiff::Timestamp,
) -> Result<i64, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut estimate = 0i64;
    for pod in pods.list(&ListParams::default()).await?.items {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        if let Some(g) = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
        {
            estimate = estimate.max(g);
        }
    }
    let elapsed = (jiff::Timestamp::now() - deleted_at).get_seconds();
    Ok(if elapsed >= estimate { 0 } else { estimate })
}

const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// The conditions this controller maintains, in upstream order, with their "all is well" forms.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GV_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        CONTENT_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        FINALIZERS_REMAINING,
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// Collects the failing conditions of one pass (`status_condition_utils.go`).
#[derive(Default)]
struct ConditionUpdater {
    /// type → (reason, message) of conditions that are True.
    failing: BTreeMap<&'static str, (&'static str, String)>,
}

impl ConditionUpdater {
    fn discovery_failed(&mut self, message: String) {
        self.failing
            .insert(DISCOVERY_FAILURE, ("DiscoveryFailed", message));
    }

    fn content_errors(&mut self, errors: &[String]) {
        if errors.is_empty() {
            return;
        }
        let mut msgs = errors.to_vec();
        msgs.sort();
        self.failing.insert(
            CONTENT_FAILURE,
            (
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ),
        );
    }

    fn content_totals(
        &mut self,
        by_resource: &BTreeMap<String, usize>,
        by_finalizer: &BTreeMap<String, usize>,
    ) {
        if !by_resource.is_empty() {
            let mut list: Vec<String> = by_resource
                .iter()
                .map(|(r, n)| {
                    // upstream prints `<resource>.<group>`, with a trailing dot for core
                    let with_dot = if r.contains('.') {
                        r.clone()
                    } else {
                        format!("{r}.")
                    };
                    format!("{with_dot} has {n} resource instances")
                })
                .collect();
            list.sort();
            self.failing.insert(
                CONTENT_REMAINING,
                (
                    "SomeResourcesRemain",
                    format!("Some resources are remaining: {}", list.join(", ")),
                ),
            );
        }
        if !by_finalizer.is_empty() {
            let mut list: Vec<String> = by_finalizer
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            list.sort();
            self.failing.insert(
                FINALIZERS_REMAINING,
                (
                    "SomeFinalizersRemain",
                    format!(
                        "Some content in the namespace has finalizers remaining: {}",
                        list.join(", ")
                    ),
                ),
            );
        }
    }

    /// Writes the five conditions into `status`; true if anything changed.
    fn apply(&self, status: &mut NamespaceStatus) -> bool {
        let now = Time(jiff::Timestamp::now());
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        let mut changed = false;
        for (ty, ok_reason, ok_message) in CONDITIONS {
            let (state, reason, message) = match self.failing.get(ty) {
                Some((r, m)) => ("True", *r, m.clone()),
                None => ("False", ok_reason, ok_message.to_string()),
            };
            match conditions.iter_mut().find(|c| c.type_ == ty) {
                None => {
                    conditions.push(NamespaceCondition {
                        type_: ty.to_string(),
                        status: state.to_string(),
                        reason: Some(reason.to_string()),
                        message: Some(message),
                        last_transition_time: Some(now.clone()),
                    });
                    changed = true;
                }
                Some(c) => {
                    if c.status != state
                        || c.reason.as_deref() != Some(reason)
                        || c.message.as_deref() != Some(message.as_str())
                    {
                        if c.status != state {
                            c.last_transition_time = Some(now.clone());
                        }
                        c.status = state.to_string();
                        c.reason = Some(reason.to_string());
                        c.message = Some(message);
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_report_what_remains_then_all_clear() {
        let mut status = NamespaceStatus::default();
        let mut u = ConditionUpdater::default();
        u.content_totals(
            &BTreeMap::from([("pods".to_string(), 2), ("deployments.apps".to_string(), 1)]),
            &BTreeMap::from([("example.com/hold".to_string(), 1)]),
        );
        assert!(u.apply(&mut status));
        let c = status.conditions.clone().expect("conditions");
        assert_eq!(
            c.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            vec![
                DISCOVERY_FAILURE,
                GV_PARSING_FAILURE,
                CONTENT_FAILURE,
                CONTENT_REMAINING,
                FINALIZERS_REMAINING
            ]
        );
        assert_eq!(c[0].status, "False");
        assert_eq!(c[0].reason.as_deref(), Some("ResourcesDiscovered"));
        assert_eq!(c[3].status, "True");
        assert_eq!(
            c[3].message.as_deref(),
            Some(
                "Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 resource instances"
            )
        );
        assert_eq!(
            c[4].message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            )
        );
        // The same pass again changes nothing.
        assert!(!u.apply(&mut status));
        let mut errs = ConditionUpdater::default();
        errs.content_errors(&["b".into(), "a".into()]);
        assert!(errs.apply(&mut status));
        let c = status.conditions.clone().expect("conditions");
        assert_eq!(
            c[2].message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a, b")
        );
        assert_eq!(c[3].status, "False");
        assert_eq!(c[3].reason.as_deref(), Some("ContentRemoved"));
    }
}
