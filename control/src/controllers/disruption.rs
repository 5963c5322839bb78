//! The disruption controller (upstream `pkg/controller/disruption`): keeps each
//! PodDisruptionBudget's status — how many selected pods are healthy, how many must be, how many
//! are expected (from `minAvailable`/`maxUnavailable`, as integers or percentages of the
//! controllers' scale), and so how many voluntary disruptions (evictions) are allowed now. The
//! API server's eviction takes from `disruptionsAllowed` and notes the pod in `disruptedPods`;
//! this controller forgets such notes once the pod is gone or after two minutes.

use super::hpa::{ScaleError, get_scale};
use super::reconcile_loop::Recorder;
use super::reconcile_loop::{self, Queue, informer};
use super::util::{controller_of, pod_ready};
use super::{Context, ControllerError};
use crate::api::selectors::LabelSelector;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector as TypedSelector, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long an evicted pod is expected to take to go away.
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

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
}

async fn run(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("disruption-controller")?;
    let informer_client = ctx.clients.client("system:kube-controller-manager")?;
    let pdbs = informer(Api::<PodDisruptionBudget>::all(informer_client.clone()));
    let pods = informer(Api::<Pod>::all(informer_client));
    let c = Arc::new(Ctrl {
        client: client.clone(),
        events: Recorder::new(&ctx, client, "controllermanager"),
        pods: pods.store.clone(),
    });
    let mut queue = Queue::<PodDisruptionBudget>::default();
    queue.add_self(pdbs.events);
    let pdb_store = pdbs.store.clone();
    queue.add_mapped(pods.events, move |pod: Pod| {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        pdb_store
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|p| {
                selector_of(p.spec.as_ref().and_then(|s| s.selector.as_ref()))
                    .is_some_and(|s| s.matches(&labels))
            })
            .map(|p| ObjectRef::from_obj(p.as_ref()))
            .collect::<Vec<_>>()
    });
    let ready = vec![
        reconcile_loop::ready(&pdbs.store),
        reconcile_loop::ready(&pods.store),
    ];
    reconcile_loop::run(
        "disruption",
        pdbs.store,
        queue,
        ready,
        c,
        |pdb, c| async move { sync(&c, &pdb).await },
        (Duration::from_millis(5), Duration::from_secs(1000)),
        stop,
    )
    .await
}

/// A PDB's selector: none selects nothing, `{}` everything (policy/v1).
fn selector_of(sel: Option<&TypedSelector>) -> Option<LabelSelector> {
    let sel = sel?;
    let v = serde_json::to_value(sel).ok()?;
    LabelSelector::from_object(&v).ok()
}

/// `GetScaledValueFromIntOrPercent` with rounding up.
pub fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok((pct as f64 * f64::from(total) / 100.0).ceil() as i32)
        }
    }
}

async fn sync(c: &Ctrl, pdb: &PodDisruptionBudget) -> Result<Action, ControllerError> {
    match try_sync(c, pdb).await {
        Ok(a) => Ok(a),
        Err(e) => {
            tracing::info!(pdb = pdb.metadata.name.as_deref().unwrap_or(""), error = %e, "failed to sync PDB");
            fail_safe(c, pdb, &e.to_string()).await?;
            Err(e)
        }
    }
}

async fn try_sync(c: &Ctrl, pdb: &PodDisruptionBudget) -> Result<Action, ControllerError> {
    let pref = pdb.object_ref(&());
    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
    let spec = pdb.spec.clone().unwrap_or_default();
    let sel = selector_of(spec.selector.as_ref());
    let pods: Vec<Arc<Pod>> = match &sel {
        None => Vec::new(),
        Some(s) => c
            .pods
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns.as_str())
                    && s.matches(p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
            })
            .collect(),
    };
    if pods.is_empty() {
        c.events
            .normal(&pref, "NoPods", "Sync", "No matching pods found".into())
            .await;
    }
    let (expected, desired, unmanaged) = match expected_pod_count(c, pdb, &pods).await {
        Ok(x) => x,
        Err(e) => {
            c.events
                .warning(
                    &pref,
                    "CalculateExpectedPodCountFailed",
                    "Sync",
                    format!("Failed to calculate the number of expected pods: {e}"),
                )
                .await;
            return Err(ControllerError::Invalid(e));
        }
    };
    if !unmanaged.is_empty() {
        let shown = spec
            .selector
            .as_ref()
            .map(go_selector_string)
            .unwrap_or_else(|| "nil".into());
        c.events
            .warning(
                &pref,
                "UnmanagedPods",
                "Sync",
                format!(
                    "Pods selected by this PodDisruptionBudget (selector: {shown}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
                ),
            )
            .await;
    }
    let now = jiff::Timestamp::now();
    let (disrupted, recheck) = disrupted_pod_map(c, pdb, &pods, now).await;
    let healthy = count_healthy(&pods, &disrupted, now);
    update_status(c, pdb, healthy, desired, expected, disrupted).await?;
    Ok(match recheck {
        Some(t) => Action::requeue(
            Duration::try_from(t.duration_since(now)).unwrap_or_default()
                + Duration::from_millis(10),
        ),
        None => Action::await_change(),
    })
}

/// Go's `%v` of a LabelSelector pointer, as the UnmanagedPods event prints it.
fn go_selector_string(s: &TypedSelector) -> String {
    let labels = s
        .match_labels
        .as_ref()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels},}},MatchExpressions:[]LabelSelectorRequirement{{}},}}"
    )
}

/// (expected pods, desired healthy, unmanaged pod names).
async fn expected_pod_count(
    c: &Ctrl,
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
) -> Result<(i32, i32, Vec<String>), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    if let Some(mu) = &spec.max_unavailable {
        let (expected, unmanaged) = expected_scale(c, pods).await?;
        let max_unavailable = scaled_value(mu, expected)?;
        return Ok((expected, (expected - max_unavailable).max(0), unmanaged));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((pods.len() as i32, *n, Vec::new())),
        Some(v @ IntOrString::String(_)) => {
            let (expected, unmanaged) = expected_scale(c, pods).await?;
            Ok((expected, scaled_value(v, expected)?, unmanaged))
        }
        None => Ok((0, 0, Vec::new())),
    }
}

/// The sum of the scales of the pods' controllers; pods with none are unmanaged.
async fn expected_scale(c: &Ctrl, pods: &[Arc<Pod>]) -> Result<(i32, Vec<String>), String> {
    let mut scales: HashMap<String, i32> = HashMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(owner) = controller_of(&pod.metadata) else {
            unmanaged.push(name);
            continue;
        };
        if scales.contains_key(&owner.uid) {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        match controller_scale(c, owner, &ns).await? {
            Some((uid, n)) => {
                scales.insert(uid, n);
            }
            None => return Err(format!("found no controllers for pod {name:?}")),
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// The scale of a pod's controller, if it exists with that uid (the upstream finders in turn).
async fn controller_scale(
    c: &Ctrl,
    owner: &OwnerReference,
    ns: &str,
) -> Result<Option<(String, i32)>, String> {
    let group = group_of(&owner.api_version);
    let client = c.client.clone();
    let err = |e: kube::Error| e.to_string();
    match (owner.kind.as_str(), group) {
        ("ReplicationController", "") => {
            let api: Api<ReplicationController> = Api::namespaced(client, ns);
            return Ok(api.get_opt(&owner.name).await.map_err(err)?.and_then(|rc| {
                (rc.metadata.uid.as_deref() == Some(owner.uid.as_str())).then(|| {
                    let n = rc.spec.and_then(|s| s.replicas).unwrap_or(1);
                    (owner.uid.clone(), n)
                })
            }));
        }
        ("ReplicaSet", "apps" | "extensions") => {
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
            let Some(rs) = api.get_opt(&owner.name).await.map_err(err)? else {
                return Ok(None);
            };
            if rs.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
                return Ok(None);
            }
            match controller_of(&rs.metadata).filter(|o| o.kind == "Deployment") {
                Some(d) => {
                    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
                    if let Some(dep) = api.get_opt(&d.name).await.map_err(err)?
                        && dep.metadata.uid.as_deref() == Some(d.uid.as_str())
                    {
                        let n = dep.spec.replicas.unwrap_or(1);
                        return Ok(Some((d.uid.clone(), n)));
                    }
                }
                None => {
                    let n = rs.spec.replicas.unwrap_or(1);
                    return Ok(Some((owner.uid.clone(), n)));
                }
            }
        }
        ("StatefulSet", "apps") => {
            let api: Api<StatefulSet> = Api::namespaced(client, ns);
            return Ok(api.get_opt(&owner.name).await.map_err(err)?.and_then(|s| {
                (s.metadata.uid.as_deref() == Some(owner.uid.as_str())).then(|| {
                    let n = s.spec.replicas.unwrap_or(1);
                    (owner.uid.clone(), n)
                })
            }));
        }
        _ => {}
    }
    // Anything else with a scale subresource.
    match get_scale(&c.client, ns, &owner.api_version, &owner.kind, &owner.name).await {
        Ok(s) if s.uid == owner.uid => Ok(Some((s.uid, s.replicas))),
        Ok(_) | Err(ScaleError::NoMatch(_)) | Err(ScaleError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The still-pending entries of `status.disruptedPods`, and when to look again.
async fn disrupted_pod_map(
    c: &Ctrl,
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    now: jiff::Timestamp,
) -> (BTreeMap<String, Time>, Option<jiff::Timestamp>) {
    let mut out = BTreeMap::new();
    let mut recheck: Option<jiff::Timestamp> = None;
    let Some(disrupted) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (out, None);
    };
    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(t) = disrupted.get(&name) else {
            continue;
        };
        let expected = t.0 + jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
        if expected < now {
            tracing::info!(
                pod = name,
                "pod was expected to be deleted but it wasn't, updating PDB"
            );
            c.events
                .warning(
                    &pod.object_ref(&()),
                    "NotDeleted",
                    "Sync",
                    format!("Pod was expected by PDB {ns}/{ns} to be deleted but it wasn't"),
                )
                .await;
        } else {
            recheck = Some(recheck.map_or(expected, |r| r.min(expected)));
            out.insert(name, t.clone());
        }
    }
    (out, recheck)
}

fn count_healthy(
    pods: &[Arc<Pod>],
    disrupted: &BTreeMap<String, Time>,
    now: jiff::Timestamp,
) -> i32 {
    let timeout = jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            disrupted.get(&name).is_none_or(|t| t.0 + timeout <= now)
        })
        .filter(|p| pod_ready(p))
        .count() as i32
}

fn condition_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let st = pdb.status.clone().unwrap_or_default();
    let Some(c) = st
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
    else {
        return false;
    };
    if st.observed_generation != pdb.metadata.generation {
        return false;
    }
    if st.disruptions_allowed.unwrap_or(0) > 0 {
        c.status == "True" && c.reason == "SufficientPods"
    } else {
        c.status == "False" && c.reason == "InsufficientPods"
    }
}

/// `meta.SetStatusCondition`: the transition time moves only when the status does.
fn set_condition(list: &mut Vec<Condition>, mut cond: Condition) {
    match list.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(c) => {
            if c.status != cond.status {
                c.status = cond.status;
                c.last_transition_time = cond.last_transition_time;
            }
            c.reason = cond.reason;
            c.message = cond.message;
            c.observed_generation = cond.observed_generation;
        }
        None => {
            cond.last_transition_time = Time(jiff::Timestamp::now());
            list.push(cond);
        }
    }
}

fn disruption_allowed_condition(st: &mut PodDisruptionBudgetStatus) {
    let allowed = st.disruptions_allowed.unwrap_or(0) > 0;
    let cond = Condition {
        type_: "DisruptionAllowed".into(),
        status: if allowed { "True" } else { "False" }.into(),
        reason: if allowed {
            "SufficientPods"
        } else {
            "InsufficientPods"
        }
        .into(),
        message: String::new(),
        observed_generation: st.observed_generation,
        last_transition_time: Time(jiff::Timestamp::now()),
    };
    set_condition(st.conditions.get_or_insert_with(Vec::new), cond);
}

async fn update_status(
    c: &Ctrl,
    pdb: &PodDisruptionBudget,
    healthy: i32,
    desired: i32,
    expected: i32,
    disrupted: BTreeMap<String, Time>,
) -> Result<(), ControllerError> {
    // No disruption before any pod is expected: a fresh budget starts safe.
    let mut allowed = healthy - desired;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let st = pdb.status.clone().unwrap_or_default();
    let old_disrupted = st.disrupted_pods.clone().unwrap_or_default();
    if st.current_healthy.unwrap_or(0) == healthy
        && st.desired_healthy.unwrap_or(0) == desired
        && st.expected_pods.unwrap_or(0) == expected
        && st.disruptions_allowed.unwrap_or(0) == allowed
        && old_disrupted == disrupted
        && st.observed_generation == pdb.metadata.generation
        && condition_up_to_date(pdb)
    {
        return Ok(());
    }
    let mut new = pdb.clone();
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: Some(healthy),
        desired_healthy: Some(desired),
        expected_pods: Some(expected),
        disruptions_allowed: Some(allowed),
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: st.conditions.clone(),
    };
    disruption_allowed_condition(&mut status);
    new.status = Some(status);
    write_status(c, &new).await
}

async fn write_status(c: &Ctrl, pdb: &PodDisruptionBudget) -> Result<(), ControllerError> {
    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let api: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), &ns);
    api.replace_status(&name, &PostParams::default(), pdb)
        .await?;
    Ok(())
}

/// After a failed sync: allow no disruption, and say why.
async fn fail_safe(c: &Ctrl, pdb: &PodDisruptionBudget, err: &str) -> Result<(), ControllerError> {
    let mut new = pdb.clone();
    let st = new.status.get_or_insert_with(Default::default);
    st.disruptions_allowed = Some(0);
    st.observed_generation = pdb.metadata.generation;
    let cond = Condition {
        type_: "DisruptionAllowed".into(),
        status: "False".into(),
        reason: "SyncFailed".into(),
        message: err.to_string(),
        observed_generation: pdb.metadata.generation,
        last_transition_time: Time(jiff::Timestamp::now()),
    };
    set_condition(st.conditions.get_or_insert_with(Vec::new), cond);
    write_status(c, &new).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled_value(&IntOrString::Int(2), 10), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("10%".into()), 10), Ok(1));
        assert_eq!(scaled_value(&IntOrString::String("0%".into()), 10), Ok(0));
        assert!(scaled_value(&IntOrString::String("half".into()), 10).is_err());
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name}, "status": {"conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    #[test]
    fn healthy_pods_exclude_unready_deleting_and_recently_evicted() {
        let now: jiff::Timestamp = "2024-01-01T00:01:00Z".parse().expect("ts");
        let pods = vec![
            pod("a", true, false),
            pod("b", true, false),
            pod("c", false, false),
            pod("d", true, true),
        ];
        assert_eq!(count_healthy(&pods, &BTreeMap::new(), now), 2);
        let evicted = BTreeMap::from([(
            "b".to_string(),
            Time("2024-01-01T00:00:30Z".parse().expect("ts")),
        )]);
        assert_eq!(count_healthy(&pods, &evicted, now), 1);
        // An eviction older than the deletion timeout no longer counts.
        let later: jiff::Timestamp = "2024-01-01T00:03:00Z".parse().expect("ts");
        assert_eq!(count_healthy(&pods, &evicted, later), 2);
    }

    #[test]
    fn selectors_nil_selects_nothing_and_empty_everything() {
        assert!(selector_of(None).is_none());
        let all = selector_of(Some(&TypedSelector::default())).expect("empty");
        assert!(all.matches(&BTreeMap::new()));
    }

    #[test]
    fn condition_follows_allowed_disruptions() {
        let mut st = PodDisruptionBudgetStatus {
            disruptions_allowed: Some(1),
            observed_generation: Some(3),
            ..Default::default()
        };
        disruption_allowed_condition(&mut st);
        let c = &st.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.observed_generation),
            ("True", "SufficientPods", Some(3))
        );
        st.disruptions_allowed = Some(0);
        disruption_allowed_condition(&mut st);
        let c = &st.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InsufficientPods")
        );
        assert_eq!(st.conditions.as_ref().map(Vec::len), Some(1));
    }
}
