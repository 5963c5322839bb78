//! The DaemonSet controller (upstream's `pkg/controller/daemon`): one pod on every node the
//! template may run on (node selector, required node affinity, taints against the template's
//! tolerations plus the DaemonSet defaults), each pinned to its node by a required node
//! affinity on `metadata.name` so the scheduler places it; pods leave nodes that stop
//! qualifying; a template change rolls node by node within maxUnavailable / maxSurge.

use super::history;
use super::workload::{
    self, Backoff, Expectations, RefManager, event_objects, is_not_found, key_of, owner_ref_of,
    reflect,
};
use super::{Context, ControllerError, util};
use crate::api::selectors::LabelSelector;
use crate::placement::{requirement_matches, tolerates};
use futures::future::{BoxFuture, join_all};
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CONTROLLER: &str = "daemon-set-controller";
/// Pod and revision label holding the template hash (`DefaultDaemonSetUniqueLabelKey`).
pub const HASH_LABEL: &str = "controller-revision-hash";
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// Most pods created or deleted in one sync.
const BURST_REPLICAS: usize = 250;
/// `--concurrent-daemonset-syncs` default.
const WORKERS: u16 = 2;
/// Deleting failed pods on a node backs off from 1s to 15min.
const FAILED_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(async move {
        let client = ctx.client_for(CONTROLLER)?;
        let (sets, set_events) = reflect(Api::<DaemonSet>::all(client.clone()));
        let (pods, pod_events) = reflect(Api::<Pod>::all(client.clone()));
        let (nodes, node_events) = reflect(Api::<Node>::all(client.clone()));
        let (revisions, rev_events) = reflect(Api::<ControllerRevision>::all(client.clone()));
        let ctl = Arc::new(Ctl {
            events: workload::Recorder::new(client.clone(), CONTROLLER, &ctx.config.instance),
            client,
            sets: sets.clone(),
            pods,
            nodes,
            revisions,
            backoff: Backoff::default(),
            expectations: Expectations::default(),
            failed_backoff: Mutex::new(HashMap::new()),
        });
        let (c1, c2, c3) = (ctl.clone(), ctl.clone(), ctl.clone());
        let mut seen_nodes = SeenNodes::default();
        let queue = stream::select_all([
            set_events
                .flat_map(move |ev| stream::iter(c1.set_triggers(&ev)))
                .boxed(),
            pod_events
                .flat_map(move |ev| stream::iter(c2.pod_triggers(&ev)))
                .boxed(),
            node_events
                .flat_map(move |ev| stream::iter(c3.node_triggers(&ev, &mut seen_nodes)))
                .boxed(),
            rev_events
                .flat_map(|ev| {
                    let refs: Vec<ObjectRef<DaemonSet>> = event_objects(&ev)
                        .into_iter()
                        .filter_map(|(r, _)| owner_ref_of(&r.metadata))
                        .collect();
                    stream::iter(refs)
                })
                .boxed(),
        ]);
        tracing::info!("starting daemon sets controller");
        workload::run(sets, queue, reconcile, error_policy, ctl, WORKERS, stop).await;
        Ok(())
    })
}

/// What of a node decides where daemon pods run (upstream ignores other node updates).
type NodeFacts = (Option<BTreeMap<String, String>>, Option<Vec<Taint>>);

/// The nodes as last seen by the node event handler.
#[derive(Default)]
struct SeenNodes {
    facts: HashMap<String, NodeFacts>,
    /// Names listed so far while a relist is under way.
    relisted: Option<HashSet<String>>,
}

struct Ctl {
    client: kube::Client,
    events: workload::Recorder,
    sets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    backoff: Backoff,
    /// Our pod creations and deletions not yet in the cache, per DaemonSet uid.
    expectations: Expectations,
    /// Per (set, generation, node): (delay, last failed pod deleted).
    failed_backoff: Mutex<HashMap<String, (Duration, Instant)>>,
}

async fn reconcile(ds: Arc<DaemonSet>, c: Arc<Ctl>) -> Result<Action, ControllerError> {
    c.wait_ready().await?;
    let action = c.sync(&ds).await?;
    c.backoff.reset(&key_of(&*ds));
    Ok(action)
}

fn error_policy(ds: Arc<DaemonSet>, err: &ControllerError, c: Arc<Ctl>) -> Action {
    let key = key_of(&*ds);
    tracing::info!(daemonset = %key, error = %err, "sync failed; requeuing");
    Action::requeue(c.backoff.next(&key))
}

fn err_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn uid_of(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or("")
}

// ---- scheduling predicates ----------------------------------------------------------------

/// The first taint (of those `filter` keeps) no toleration tolerates.
fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or("");
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(name)))
}

/// The pod's node selector and required node affinity both accept the node.
fn fits_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = spec
        .node_selector
        .as_ref()
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let affinity_ok = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|req| {
            req.node_selector_terms
                .iter()
                .any(|t| term_matches(t, node))
        });
    selector_ok && affinity_ok
}

/// Adds `t` unless an identical toleration is there (upstream's
/// `AddOrUpdateTolerationInPodSpec`).
fn add_toleration(spec: &mut PodSpec, t: Toleration) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    let same = |x: &Toleration| {
        x.key == t.key && x.operator == t.operator && x.value == t.value && x.effect == t.effect
    };
    if let Some(existing) = list.iter_mut().find(|x| same(x)) {
        *existing = t;
    } else {
        list.push(t);
    }
}

/// The tolerations every daemon pod gets, so node problems neither evict it nor keep it off
/// a node (upstream's `AddOrUpdateDaemonPodTolerations`).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        add_toleration(spec, exists(key, effect));
    }
    if spec.host_network == Some(true) {
        add_toleration(
            spec,
            exists("node.kubernetes.io/network-unavailable", "NoSchedule"),
        );
    }
}

/// (should run, should continue running) a daemon pod of `ds` on `node` (upstream's
/// `NodeShouldRunDaemonPod`): a pod already there survives NoSchedule taints.
pub fn node_should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    let mut spec = ds.spec.template.spec.clone().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    add_daemon_tolerations(&mut spec);
    if !fits_node_affinity(&spec, node) {
        return (false, false);
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let blocking = untolerated(taints, tolerations, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    });
    if blocking.is_some() {
        let evicting = untolerated(taints, tolerations, |t| t.effect == "NoExecute");
        return (false, evicting.is_none());
    }
    (true, true)
}

/// Pins a pod to `node` through a required node affinity on `metadata.name`, replacing any
/// required terms (upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`).
fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
            match_expressions: None,
        }],
    };
    let mut a = affinity.unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(selector);
    a
}

/// The node a daemon pod is for: where it runs, or where its affinity pins it.
fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_deref()?.iter().find_map(|r| {
            let vals = r.values.as_deref().unwrap_or_default();
            (r.key == "metadata.name" && r.operator == "In" && vals.len() == 1)
                .then(|| vals[0].clone())
        })
    })
}

fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

/// The template pods are created from: daemon tolerations, hash and generation labels.
fn pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut t = ds.spec.template.clone();
    add_daemon_tolerations(t.spec.get_or_insert_with(Default::default));
    let labels = t
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(HASH_LABEL.into(), hash.to_string());
    }
    t
}

fn is_pod_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let label = |k: &str| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(k))
            .map(String::as_str)
    };
    (!hash.is_empty() && label(HASH_LABEL) == Some(hash))
        || generation.is_some_and(|g| label(TEMPLATE_GENERATION_LABEL) == Some(&g.to_string()))
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Scheduled pods first, then oldest first, then by name.
fn sort_pods(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let scheduled = |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty())
        };
        scheduled(b)
            .cmp(&scheduled(a))
            .then_with(|| {
                let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// A count or a percentage of `total`, rounded up (`GetScaledValueFromIntOrPercent`).
fn scaled(v: Option<&IntOrString>, total: i64) -> i64 {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => i64::from(*i),
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(0, |p| (p * total + 99) / 100),
    }
}

fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    let us = ds.spec.update_strategy.as_ref()?;
    if us.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    us.rolling_update.as_ref()
}

fn surge_count(ds: &DaemonSet, total: i64) -> i64 {
    rolling(ds).map_or(0, |r| scaled(r.max_surge.as_ref(), total))
}

fn unavailable_count(ds: &DaemonSet, total: i64) -> i64 {
    rolling(ds).map_or(0, |r| scaled(r.max_unavailable.as_ref(), total))
}

/// The up-to-date and the out-of-date pod on a node.
type NewAndOld<'a> = (Option<&'a Arc<Pod>>, Option<&'a Arc<Pod>>);

/// The oldest new and old non-deleted pods on a node; None when there are several of either
/// (the manage loop prunes those first).
fn updated_pods_on_node<'a>(
    pods: &'a [Arc<Pod>],
    hash: &str,
    generation: Option<i64>,
) -> Option<NewAndOld<'a>> {
    let (mut new, mut old) = (None, None);
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_pod_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new, old))
}

/// Upstream's template hash (`controller.ComputeHash`): FNV-1a of the template and the
/// collision count.
fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    history::safe_encode(&history::fnv32a(&bytes).to_string())
}

fn revision_hash(rev: &ControllerRevision) -> Option<&str> {
    rev.metadata
        .labels
        .as_ref()?
        .get(HASH_LABEL)
        .map(String::as_str)
}

/// The revision holds the set's current template.
fn matches_template(ds: &DaemonSet, rev: &ControllerRevision) -> bool {
    rev.data.0 == history::template_patch(&ds.spec.template)
}

/// What the per-node pass decided.
#[derive(Default)]
struct Plan {
    create_on: Vec<String>,
    delete: Vec<String>,
    requeue: Option<Duration>,
}

impl Ctl {
    async fn wait_ready(&self) -> Result<(), ControllerError> {
        let err = |e: kube::runtime::reflector::store::WriterDropped| {
            ControllerError::Invalid(e.to_string())
        };
        self.sets.wait_until_ready().await.map_err(err)?;
        self.pods.wait_until_ready().await.map_err(err)?;
        self.nodes.wait_until_ready().await.map_err(err)?;
        self.revisions.wait_until_ready().await.map_err(err)
    }

    fn set_triggers(&self, ev: &watcher::Event<DaemonSet>) -> Vec<ObjectRef<DaemonSet>> {
        if matches!(ev, watcher::Event::InitDone) {
            // After a relist the cache holds every set (triggers for those listed came while
            // it was still being filled, and may have found nothing).
            return self
                .sets
                .state()
                .iter()
                .map(|s| ObjectRef::from_obj(&**s))
                .collect();
        }
        let mut out = Vec::new();
        for (ds, deleted) in event_objects(ev) {
            if deleted {
                self.expectations.forget(uid_of(&ds.metadata));
            } else {
                out.push(ObjectRef::from_obj(ds));
            }
        }
        out
    }

    /// The set a pod event concerns (noting our expectations of it), or for an orphan every
    /// set that selects it.
    fn pod_triggers(&self, ev: &watcher::Event<Pod>) -> Vec<ObjectRef<DaemonSet>> {
        let mut out = Vec::new();
        for (pod, deleted) in event_objects(ev) {
            if let Some(r) = owner_ref_of::<DaemonSet>(&pod.metadata) {
                let owner_uid = util::controller_of(&pod.metadata)
                    .map(|c| c.uid.clone())
                    .unwrap_or_default();
                if self
                    .sets
                    .get(&r)
                    .is_some_and(|s| uid_of(&s.metadata) == owner_uid)
                {
                    let gone = deleted || pod.metadata.deletion_timestamp.is_some();
                    self.expectations
                        .observe(&owner_uid, uid_of(&pod.metadata), gone);
                    out.push(r);
                }
                continue;
            }
            if deleted {
                continue;
            }
            for s in self.sets.state() {
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

    /// Every set, when a node comes, goes, or changes labels or taints.
    fn node_triggers(
        &self,
        ev: &watcher::Event<Node>,
        seen: &mut SeenNodes,
    ) -> Vec<ObjectRef<DaemonSet>> {
        let mut changed = false;
        match ev {
            watcher::Event::Init => seen.relisted = Some(HashSet::new()),
            watcher::Event::InitDone => {
                // Nodes deleted while the watch was down are simply absent from the relist.
                if let Some(listed) = seen.relisted.take() {
                    let before = seen.facts.len();
                    seen.facts.retain(|name, _| listed.contains(name));
                    changed = seen.facts.len() != before;
                }
            }
            _ => {}
        }
        for (node, deleted) in event_objects(ev) {
            let name = node.metadata.name.clone().unwrap_or_default();
            if deleted {
                changed |= seen.facts.remove(&name).is_some();
                continue;
            }
            if let Some(listed) = seen.relisted.as_mut() {
                listed.insert(name.clone());
            }
            let facts = (
                node.metadata.labels.clone(),
                node.spec.as_ref().and_then(|s| s.taints.clone()),
            );
            if seen.facts.get(&name) != Some(&facts) {
                seen.facts.insert(name, facts);
                changed = true;
            }
        }
        if !changed {
            return Vec::new();
        }
        self.sets
            .state()
            .iter()
            .map(|s| ObjectRef::from_obj(&**s))
            .collect()
    }

    /// An event about the set; `pod` names the pod concerned.
    fn record(
        &self,
        ds: &DaemonSet,
        pod: &str,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let related = (!pod.is_empty()).then(|| {
            workload::reference::<Pod>(ds.metadata.namespace.as_deref().unwrap_or(""), pod)
        });
        self.events
            .emit(ds.object_ref(&()), related, warning, reason, action, note);
    }

    fn pod_api(&self, ds: &DaemonSet) -> Api<Pod> {
        Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    fn rev_api(&self, ds: &DaemonSet) -> Api<ControllerRevision> {
        Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    fn ds_api(&self, ds: &DaemonSet) -> Api<DaemonSet> {
        Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    async fn sync(&self, ds: &DaemonSet) -> Result<Action, ControllerError> {
        let sel = &ds.spec.selector;
        if sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
            && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
        {
            self.record(
                ds,
                "",
                true,
                "SelectingAll",
                "Sync",
                "This daemon set is selecting all pods. A non-empty selector is required.".into(),
            );
            return Ok(Action::await_change());
        }
        let Some(selector) = util::selector(sel) else {
            return Ok(Action::await_change());
        };
        // A set being deleted may have lost some of its revisions already; its status could
        // not be trusted.
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let nodes = self.nodes.state();
        let (cur, old) = self.construct_history(ds, &selector).await?;
        let hash = revision_hash(&cur).unwrap_or("").to_string();

        if !self.expectations.satisfied(uid_of(&ds.metadata)) {
            // Only the status; the generation was not acted on yet.
            return self
                .update_status(ds, &selector, &nodes, &hash, false)
                .await;
        }
        let result = self
            .update_daemon_set(ds, &selector, &nodes, &hash, old)
            .await;
        let status = self.update_status(ds, &selector, &nodes, &hash, true).await;
        let requeue = result?;
        let action = status?;
        Ok(match requeue {
            Some(d) => Action::requeue(d),
            None => action,
        })
    }

    /// Pods of the set (adopting and releasing as needed), by the node they are for.
    async fn node_to_pods(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
        include_deleted_terminal: bool,
    ) -> Result<HashMap<String, Vec<Arc<Pod>>>, ControllerError> {
        let ns = ds.metadata.namespace.as_deref();
        let in_ns: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == ns)
            .collect();
        let mut refs = RefManager::new(ds, self.ds_api(ds), selector);
        let pods = refs.claim(&self.pod_api(ds), in_ns, |_| true).await?;
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in pods {
            let terminal = matches!(phase(&pod), "Succeeded" | "Failed");
            if !include_deleted_terminal && terminal && pod.metadata.deletion_timestamp.is_some() {
                // Finished and on its way out: nothing left for us to do with it.
                continue;
            }
            if let Some(node) = target_node(&pod) {
                by_node.entry(node).or_default().push(pod);
            }
        }
        Ok(by_node)
    }

    async fn update_daemon_set(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
        nodes: &[Arc<Node>],
        hash: &str,
        old: Vec<Arc<ControllerRevision>>,
    ) -> Result<Option<Duration>, ControllerError> {
        let requeue = self.manage(ds, selector, nodes, hash).await?;
        if self.expectations.satisfied(uid_of(&ds.metadata)) && is_rolling_update(ds) {
            self.rolling_update(ds, selector, nodes, hash).await?;
        }
        self.cleanup_history(ds, selector, old).await?;
        Ok(requeue)
    }

    /// Creates daemon pods where they are missing and deletes those that should not be.
    async fn manage(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
        nodes: &[Arc<Node>],
        hash: &str,
    ) -> Result<Option<Duration>, ControllerError> {
        let by_node = self.node_to_pods(ds, selector, false).await?;
        let mut plan = Plan::default();
        for node in nodes {
            self.pods_should_be_on_node(node, &by_node, ds, hash, &mut plan);
        }
        // Unscheduled pods for nodes that no longer exist: the pod GC cannot see them.
        let existing: HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        for (node, pods) in &by_node {
            if existing.contains(node.as_str()) {
                continue;
            }
            for p in pods {
                let unscheduled = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_none_or(str::is_empty);
                if unscheduled {
                    plan.delete
                        .push(p.metadata.name.clone().unwrap_or_default());
                }
            }
        }
        self.sync_nodes(ds, &plan.delete, &plan.create_on, hash)
            .await?;
        Ok(plan.requeue)
    }

    fn pods_should_be_on_node(
        &self,
        node: &Node,
        by_node: &HashMap<String, Vec<Arc<Pod>>>,
        ds: &DaemonSet,
        hash: &str,
        plan: &mut Plan,
    ) {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let (should_run, should_continue) = node_should_run(node, ds);
        let daemon_pods = by_node.get(&node_name);
        let name_of = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
        match daemon_pods {
            None if should_run => plan.create_on.push(node_name),
            Some(pods) if should_continue => {
                let mut running: Vec<Arc<Pod>> = Vec::new();
                for pod in pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                {
                    let pod_ref = format!(
                        "{}/{}",
                        pod.metadata.namespace.as_deref().unwrap_or(""),
                        name_of(pod)
                    );
                    match phase(pod) {
                        "Failed" => {
                            // The kubelet may keep rejecting the pod: back off between
                            // replacements instead of fighting it in a hot loop.
                            let key = format!(
                                "{}/{}/{node_name}",
                                uid_of(&ds.metadata),
                                ds.status
                                    .as_ref()
                                    .and_then(|s| s.observed_generation)
                                    .unwrap_or(0)
                            );
                            if let Some(delay) = self.failed_pod_backoff(&key) {
                                plan.requeue = Some(plan.requeue.map_or(delay, |d| d.min(delay)));
                                continue;
                            }
                            self.record(
                                ds,
                                &name_of(pod),
                                true,
                                "FailedDaemonPod",
                                "Delete",
                                format!("Found failed daemon pod {pod_ref} on node {node_name}, will try to kill it"),
                            );
                            plan.delete.push(name_of(pod));
                        }
                        "Succeeded" => {
                            self.record(
                                ds,
                                &name_of(pod),
                                false,
                                "SucceededDaemonPod",
                                "Delete",
                                format!("Found succeeded daemon pod {pod_ref} on node {node_name}, will try to delete it"),
                            );
                            plan.delete.push(name_of(pod));
                        }
                        _ => running.push(pod.clone()),
                    }
                }
                sort_pods(&mut running);
                let allows_surge = surge_count(ds, 1) > 0;
                if !allows_surge {
                    // One pod per node: the oldest stays.
                    plan.delete
                        .extend(running.iter().skip(1).map(|p| name_of(p)));
                    return;
                }
                if running.len() <= 1 {
                    if running.is_empty() && should_run {
                        plan.create_on.push(node_name);
                    }
                    return;
                }
                // Surging allows an old and a new pod side by side until the new one is
                // available (or the old one is not ready); everything else goes.
                let generation = template_generation(ds);
                let (mut oldest_new, mut oldest_old) = (None, None);
                for pod in &running {
                    let slot = if is_pod_updated(pod, hash, generation) {
                        &mut oldest_new
                    } else {
                        &mut oldest_old
                    };
                    if slot.is_none() {
                        *slot = Some(pod.clone());
                    } else {
                        plan.delete.push(name_of(pod));
                    }
                }
                if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
                    if !util::pod_ready(&old)
                        || util::pod_available(&new, min_ready, jiff::Timestamp::now())
                    {
                        plan.delete.push(name_of(&old));
                    }
                }
            }
            Some(pods) if !should_continue => {
                plan.delete.extend(
                    pods.iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .map(|p| name_of(p)),
                );
            }
            _ => {}
        }
    }

    /// Some(remaining delay) while deleting failed pods on this node is backing off; otherwise
    /// starts or doubles the backoff and returns None.
    fn failed_pod_backoff(&self, key: &str) -> Option<Duration> {
        let mut m = self
            .failed_backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Entries idle for long are over (as flowcontrol.Backoff's GC).
        m.retain(|_, (_, last)| now.duration_since(*last) <= 2 * FAILED_BACKOFF_MAX);
        if let Some((delay, last)) = m.get(key)
            && now.duration_since(*last) < *delay
        {
            return Some(*delay);
        }
        let next = match m.get(key) {
            Some((delay, last)) if now.duration_since(*last) <= 2 * FAILED_BACKOFF_MAX => {
                (*delay * 2).min(FAILED_BACKOFF_MAX)
            }
            _ => FAILED_BACKOFF_INITIAL,
        };
        m.insert(key.to_string(), (next, now));
        None
    }

    /// Deletes `delete` and creates a pod on each of `create_on`, within the burst limit, in
    /// slow-start batches (a failing create stops before flooding the API).
    async fn sync_nodes(
        &self,
        ds: &DaemonSet,
        delete: &[String],
        create_on: &[String],
        hash: &str,
    ) -> Result<(), ControllerError> {
        let owner = uid_of(&ds.metadata).to_string();
        let ds_name = ds.metadata.name.clone().unwrap_or_default();
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let api = self.pod_api(ds);
        let template = pod_template(ds, hash);
        let cref = util::controller_ref(ds).unwrap_or_default();
        let create_on = &create_on[..create_on.len().min(BURST_REPLICAS)];
        let delete = &delete[..delete.len().min(BURST_REPLICAS)];
        let mut first_err: Option<ControllerError> = None;

        let create = |node: &String| {
            let mut t = template.clone();
            if let Some(spec) = t.spec.as_mut() {
                spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
            }
            let pod = workload::pod_from_template(&t, &ds_name, cref.clone());
            let (api, owner, ns) = (api.clone(), owner.clone(), ns.clone());
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(created) => {
                        let name = created.metadata.name.clone().unwrap_or_default();
                        let uid = uid_of(&created.metadata).to_string();
                        self.expectations.expect_add(&owner, &uid, || {
                            self.pods
                                .get(&ObjectRef::new(&name).within(&ns))
                                .is_some_and(|p| uid_of(&p.metadata) == uid)
                        });
                        self.record(
                            ds,
                            &name,
                            false,
                            "SuccessfulCreate",
                            "Create",
                            format!("Created pod: {name}"),
                        );
                        Ok(())
                    }
                    // Nothing can be created in a namespace on its way out; nor is it needed.
                    Err(e) if err_text(&e).contains("because it is being terminated") => Ok(()),
                    Err(e) => {
                        self.record(
                            ds,
                            "",
                            true,
                            "FailedCreate",
                            "Create",
                            format!("Error creating: {}", err_text(&e)),
                        );
                        Err(ControllerError::from(e))
                    }
                }
            }
        };
        let (mut pos, mut batch) = (0, create_on.len().min(1));
        while batch > 0 {
            let results = join_all(create_on[pos..pos + batch].iter().map(&create)).await;
            pos += batch;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                // The rest waits for a later sync.
                first_err = Some(e);
                break;
            }
            batch = (2 * batch).min(create_on.len() - pos);
        }

        let results = join_all(delete.iter().map(|name| {
            let api = api.clone();
            let owner = owner.clone();
            let ns = ns.clone();
            async move {
                let uid = self
                    .pods
                    .get(&ObjectRef::new(name).within(&ns))
                    .map(|p| uid_of(&p.metadata).to_string());
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {
                        if let Some(uid) = uid {
                            self.expectations.expect_delete(&owner, &uid, || {
                                self.pods
                                    .get(&ObjectRef::new(name).within(&ns))
                                    .is_none_or(|p| {
                                        uid_of(&p.metadata) != uid
                                            || p.metadata.deletion_timestamp.is_some()
                                    })
                            });
                        }
                        self.record(
                            ds,
                            name,
                            false,
                            "SuccessfulDelete",
                            "Delete",
                            format!("Deleted pod: {name}"),
                        );
                        Ok(())
                    }
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => {
                        self.record(
                            ds,
                            name,
                            true,
                            "FailedDelete",
                            "Delete",
                            format!("Error deleting: {}", err_text(&e)),
                        );
                        Err(ControllerError::from(e))
                    }
                }
            }
        }))
        .await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Replaces out-of-date pods within maxUnavailable, or with maxSurge by starting the new
    /// pod before the old one goes (upstream's `rollingUpdate`).
    async fn rolling_update(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
        nodes: &[Arc<Node>],
        hash: &str,
    ) -> Result<(), ControllerError> {
        let mut by_node = self.node_to_pods(ds, selector, false).await?;
        let mut desired = 0i64;
        for node in nodes {
            if node_should_run(node, ds).0 {
                desired += 1;
                by_node
                    .entry(node.metadata.name.clone().unwrap_or_default())
                    .or_default();
            }
        }
        let max_surge = surge_count(ds, desired);
        let mut max_unavailable = unavailable_count(ds, desired);
        if desired > 0 && max_unavailable == 0 && max_surge == 0 {
            // An impossible configuration: accept unavailability as the default does.
            max_unavailable = 1;
        }
        let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
        let now = jiff::Timestamp::now();
        let available = |p: &Pod| util::pod_available(p, min_ready, now);
        let generation = template_generation(ds);
        let mut node_names: Vec<&String> = by_node.keys().collect();
        node_names.sort();
        let name_of = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
        let node_by_name = |n: &str| {
            nodes
                .iter()
                .find(|x| x.metadata.name.as_deref() == Some(n))
                .cloned()
        };

        if max_surge == 0 {
            let mut unavailable = 0i64;
            let mut replacements = Vec::new();
            let mut candidates = Vec::new();
            for node in node_names {
                let Some((new, old)) = updated_pods_on_node(&by_node[node], hash, generation)
                else {
                    // Excess pods: the manage loop prunes them; count the node unavailable.
                    unavailable += 1;
                    continue;
                };
                match (new, old) {
                    (None, None) | (Some(_), Some(_)) => unavailable += 1,
                    (Some(new), None) => {
                        if !available(new) {
                            unavailable += 1;
                        }
                    }
                    (None, Some(old)) => {
                        if !available(old) {
                            replacements.push(name_of(old));
                            unavailable += 1;
                        } else if unavailable < max_unavailable {
                            candidates.push(name_of(old));
                        }
                    }
                }
            }
            let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
            replacements.extend(candidates.into_iter().take(room));
            return self.sync_nodes(ds, &replacements, &[], hash).await;
        }

        let mut delete = Vec::new();
        let mut should_not_run = Vec::new();
        let mut candidate_nodes = Vec::new();
        let mut allowed_nodes = Vec::new();
        let (mut surge, mut num_available) = (0i64, 0i64);
        for node in node_names {
            let Some((new, old)) = updated_pods_on_node(&by_node[node], hash, generation) else {
                surge += 1;
                continue;
            };
            if let Some(p) = old.or(new)
                && available(p)
            {
                num_available += 1;
            }
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) => {
                    let runs = node_by_name(node).is_some_and(|n| node_should_run(&n, ds).0);
                    if !available(old) {
                        if runs {
                            allowed_nodes.push(node.clone());
                        } else {
                            delete.push(name_of(old));
                        }
                    } else if !runs {
                        should_not_run.push(name_of(old));
                    } else if surge < max_surge {
                        candidate_nodes.push(node.clone());
                    }
                }
                (Some(new), Some(old)) => {
                    if available(new) {
                        delete.push(name_of(old));
                    } else {
                        surge += 1;
                    }
                }
            }
        }
        // With surge the owner expects full availability: an old pod on a node it no longer
        // fits only goes once enough pods are available elsewhere.
        let deletable = (num_available - desired).clamp(0, should_not_run.len() as i64) as usize;
        delete.extend(should_not_run.into_iter().take(deletable));
        let room = (max_surge - surge).clamp(0, candidate_nodes.len() as i64) as usize;
        allowed_nodes.extend(candidate_nodes.into_iter().take(room));
        self.sync_nodes(ds, &delete, &allowed_nodes, hash).await
    }

    /// The current revision (created if none holds the template) and the old ones; relabels
    /// and renumbers as upstream's `constructHistory` does.
    async fn construct_history(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
    ) -> Result<(ControllerRevision, Vec<Arc<ControllerRevision>>), ControllerError> {
        let api = self.rev_api(ds);
        let in_ns: Vec<Arc<ControllerRevision>> = self
            .revisions
            .state()
            .into_iter()
            .filter(|r| r.metadata.namespace == ds.metadata.namespace)
            .collect();
        let mut refs = RefManager::new(ds, self.ds_api(ds), selector);
        let histories = refs.claim(&api, in_ns, |_| true).await?;
        let mut current = Vec::new();
        let mut old = Vec::new();
        for mut h in histories {
            if revision_hash(&h).is_none() {
                // Revisions from before the hash label: the name serves as the hash.
                let mut u = (*h).clone();
                let name = u.metadata.name.clone().unwrap_or_default();
                u.metadata
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(HASH_LABEL.into(), name.clone());
                h = Arc::new(api.replace(&name, &PostParams::default(), &u).await?);
            }
            if matches_template(ds, &h) {
                current.push(h);
            } else {
                old.push(h);
            }
        }
        let next = old
            .iter()
            .map(|h| h.revision.unwrap_or(0))
            .max()
            .unwrap_or(0)
            + 1;
        let cur = if current.is_empty() {
            self.snapshot(ds, next).await?
        } else {
            let keep = self.dedup_current(ds, selector, current).await?;
            if keep.revision.unwrap_or(0) < next {
                history::renumber_revision(&api, &keep, next).await?
            } else {
                keep
            }
        };
        Ok((cur, old))
    }

    /// Keeps the newest of several revisions of the current template, moving pods to its
    /// hash first.
    async fn dedup_current(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
        mut current: Vec<Arc<ControllerRevision>>,
    ) -> Result<ControllerRevision, ControllerError> {
        current.sort_by_key(|h| h.revision.unwrap_or(0));
        let Some(keep) = current.pop() else {
            return Err(ControllerError::Invalid("no current revision".into()));
        };
        if current.is_empty() {
            return Ok((*keep).clone());
        }
        let keep_hash = revision_hash(&keep).unwrap_or("").to_string();
        let api = self.pod_api(ds);
        for pods in self.node_to_pods(ds, selector, false).await?.values() {
            for pod in pods {
                let label = pod.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL));
                if label != Some(&keep_hash) {
                    let patch = json!({"metadata": {"labels": {HASH_LABEL: keep_hash}}});
                    api.patch(
                        pod.metadata.name.as_deref().unwrap_or(""),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
                }
            }
        }
        let rev_api = self.rev_api(ds);
        for dup in current {
            match rev_api
                .delete(
                    dup.metadata.name.as_deref().unwrap_or(""),
                    &DeleteParams::default(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((*keep).clone())
    }

    /// Records the set's template as a new revision; a name taken by another template bumps
    /// the collision count and retries on the next sync.
    async fn snapshot(
        &self,
        ds: &DaemonSet,
        revision: i64,
    ) -> Result<ControllerRevision, ControllerError> {
        let collision = ds.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&ds.spec.template, collision);
        let name = format!("{}-{hash}", ds.metadata.name.as_deref().unwrap_or(""));
        let mut labels = ds
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(HASH_LABEL.into(), hash);
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: ds.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: ds.metadata.annotations.clone(),
                owner_references: util::controller_ref(ds).map(|r| vec![r]),
                ..Default::default()
            },
            data: k8s_openapi::apimachinery::pkg::runtime::RawExtension(history::template_patch(
                &ds.spec.template,
            )),
            revision: Some(revision),
        };
        let api = self.rev_api(ds);
        match api.create(&PostParams::default(), &rev).await {
            Ok(created) => Ok(created),
            Err(e) if workload::is_already_exists(&e) => {
                let existing = api.get(&name).await?;
                if matches_template(ds, &existing) {
                    return Ok(existing);
                }
                let ds_api = self.ds_api(ds);
                let mut fresh = ds_api
                    .get(ds.metadata.name.as_deref().unwrap_or(""))
                    .await?;
                let fresh_count = fresh.status.as_ref().and_then(|s| s.collision_count);
                if fresh_count != collision {
                    return Err(ControllerError::Invalid(format!(
                        "found a stale collision count ({collision:?}, expected {fresh_count:?}) of DaemonSet {:?}; will retry until it is updated",
                        ds.metadata.name
                    )));
                }
                let status = fresh.status.get_or_insert_with(Default::default);
                status.collision_count = Some(collision.unwrap_or(0) + 1);
                ds_api
                    .replace_status(
                        ds.metadata.name.as_deref().unwrap_or(""),
                        &PostParams::default(),
                        &fresh,
                    )
                    .await?;
                tracing::info!(daemonset = %key_of(ds), "hash collision; bumped collisionCount");
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the oldest old revisions beyond `revisionHistoryLimit` that no pod runs.
    async fn cleanup_history(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
        mut old: Vec<Arc<ControllerRevision>>,
    ) -> Result<(), ControllerError> {
        let limit = ds.spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        if old.len() <= limit {
            return Ok(());
        }
        let mut to_kill = old.len() - limit;
        let live: HashSet<String> = self
            .node_to_pods(ds, selector, true)
            .await?
            .values()
            .flatten()
            .filter_map(|p| p.metadata.labels.as_ref()?.get(HASH_LABEL).cloned())
            .collect();
        old.sort_by_key(|h| h.revision.unwrap_or(0));
        let api = self.rev_api(ds);
        for h in old {
            if to_kill == 0 {
                break;
            }
            if revision_hash(&h).is_some_and(|x| live.contains(x)) {
                continue;
            }
            match api
                .delete(
                    h.metadata.name.as_deref().unwrap_or(""),
                    &DeleteParams::default(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
            to_kill -= 1;
        }
        Ok(())
    }

    /// Counts the set's pods per node into its status; requeues while pods are ready but not
    /// yet available.
    async fn update_status(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
        nodes: &[Arc<Node>],
        hash: &str,
        observe_generation: bool,
    ) -> Result<Action, ControllerError> {
        let mut by_node = self.node_to_pods(ds, selector, false).await?;
        let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
        let now = jiff::Timestamp::now();
        let generation = template_generation(ds);
        let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
        let (mut ready, mut available, mut updated) = (0, 0, 0);
        for node in nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let pods = by_node.get_mut(&name).filter(|p| !p.is_empty());
            if node_should_run(node, ds).0 {
                desired += 1;
                let Some(pods) = pods else {
                    continue;
                };
                current += 1;
                sort_pods(pods);
                let pod = &pods[0];
                if util::pod_ready(pod) {
                    ready += 1;
                    if util::pod_available(pod, min_ready, now) {
                        available += 1;
                    }
                }
                if is_pod_updated(pod, hash, generation) {
                    updated += 1;
                }
            } else if pods.is_some() {
                misscheduled += 1;
            }
        }
        let status = DaemonSetStatus {
            desired_number_scheduled: desired,
            current_number_scheduled: current,
            number_misscheduled: misscheduled,
            number_ready: ready,
            number_available: Some(available),
            number_unavailable: Some(desired - available),
            updated_number_scheduled: Some(updated),
            ..Default::default()
        };
        self.store_status(ds, status, observe_generation).await?;
        if min_ready > 0 && ready != available {
            // Guard against clock skew: look again once the pods should be available.
            return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::await_change())
    }

    async fn store_status(
        &self,
        ds: &DaemonSet,
        counts: DaemonSetStatus,
        observe_generation: bool,
    ) -> Result<(), ControllerError> {
        let old = ds.status.clone().unwrap_or_default();
        let same = old.desired_number_scheduled == counts.desired_number_scheduled
            && old.current_number_scheduled == counts.current_number_scheduled
            && old.number_misscheduled == counts.number_misscheduled
            && old.number_ready == counts.number_ready
            && old.updated_number_scheduled.unwrap_or(0)
                == counts.updated_number_scheduled.unwrap_or(0)
            && old.number_available.unwrap_or(0) == counts.number_available.unwrap_or(0)
            && old.number_unavailable.unwrap_or(0) == counts.number_unavailable.unwrap_or(0)
            && old.observed_generation.unwrap_or(0) >= ds.metadata.generation.unwrap_or(0);
        if same {
            return Ok(());
        }
        let api = self.ds_api(ds);
        let name = ds.metadata.name.clone().unwrap_or_default();
        let mut obj = ds.clone();
        for attempt in 0..2 {
            let mut st = obj.status.clone().unwrap_or_default();
            if observe_generation {
                st.observed_generation = ds.metadata.generation;
            }
            st.desired_number_scheduled = counts.desired_number_scheduled;
            st.current_number_scheduled = counts.current_number_scheduled;
            st.number_misscheduled = counts.number_misscheduled;
            st.number_ready = counts.number_ready;
            st.updated_number_scheduled = counts.updated_number_scheduled;
            st.number_available = counts.number_available;
            st.number_unavailable = counts.number_unavailable;
            obj.status = Some(st);
            match api
                .replace_status(&name, &PostParams::default(), &obj)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt == 0 && workload::is_conflict(&e) => obj = api.get(&name).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
            "spec": {"taints": taints}
        }))
        .expect("node")
    }

    fn ds(spec: serde_json::Value) -> DaemonSet {
        let mut template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        if let (Some(t), Some(extra)) = (template["spec"].as_object_mut(), spec.as_object()) {
            for (k, v) in extra {
                t.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "default", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}
        }))
        .expect("ds")
    }

    #[test]
    fn nodes_qualify_by_selector_affinity_and_taints() {
        let plain = ds(json!({}));
        let n1 = node("n1", &[("disk", "ssd")], json!([]));
        let tainted = node(
            "n2",
            &[],
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        );
        let evicting = node(
            "n3",
            &[],
            json!([{"key": "dedicated", "effect": "NoExecute"}]),
        );
        let not_ready = node(
            "n4",
            &[],
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        assert_eq!(node_should_run(&n1, &plain), (true, true));
        // A NoSchedule taint keeps new pods off but lets a running one stay.
        assert_eq!(node_should_run(&tainted, &plain), (false, true));
        assert_eq!(node_should_run(&evicting, &plain), (false, false));
        // The default daemon tolerations cover node problems.
        assert_eq!(node_should_run(&not_ready, &plain), (true, true));
        let tolerant = ds(json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}));
        assert_eq!(node_should_run(&tainted, &tolerant), (true, true));
        assert_eq!(node_should_run(&evicting, &tolerant), (true, true));
        let ssd = ds(json!({"nodeSelector": {"disk": "ssd"}}));
        assert_eq!(node_should_run(&n1, &ssd), (true, true));
        assert_eq!(node_should_run(&not_ready, &ssd), (false, false));
        let affinity = ds(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]}}}}),
        );
        assert_eq!(node_should_run(&n1, &affinity), (false, false));
        assert_eq!(node_should_run(&not_ready, &affinity), (true, true));
    }

    #[test]
    fn pods_are_pinned_to_their_node_with_daemon_tolerations() {
        let d = ds(
            json!({"hostNetwork": true, "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]}),
        );
        let t = pod_template(&d, "abc");
        let spec = t.spec.clone().expect("spec");
        let keys: Vec<_> = spec
            .tolerations
            .iter()
            .flatten()
            .map(|t| t.key.clone().unwrap_or_default())
            .collect();
        assert_eq!(keys.len(), 7, "{keys:?}"); // no duplicate not-ready, network-unavailable for hostNetwork
        assert!(keys.contains(&"node.kubernetes.io/network-unavailable".to_string()));
        assert_eq!(
            t.metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(HASH_LABEL))
                .map(String::as_str),
            Some("abc")
        );
        let mut pod = workload::pod_from_template(&t, "x", Default::default());
        let spec = pod.spec.as_mut().expect("spec");
        spec.affinity = Some(pin_to_node(spec.affinity.take(), "n7"));
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("x-"));
        assert!(fits_node_affinity(
            pod.spec.as_ref().expect("spec"),
            &node("n7", &[], json!([]))
        ));
        assert!(!fits_node_affinity(
            pod.spec.as_ref().expect("spec"),
            &node("n8", &[], json!([]))
        ));
    }

    #[test]
    fn surge_and_unavailability_scale_with_the_node_count() {
        let mut d = ds(json!({}));
        assert_eq!((surge_count(&d, 10), unavailable_count(&d, 10)), (0, 1));
        if let Some(ru) = d
            .spec
            .update_strategy
            .as_mut()
            .and_then(|u| u.rolling_update.as_mut())
        {
            ru.max_surge = Some(IntOrString::String("25%".into()));
            ru.max_unavailable = Some(IntOrString::Int(0));
        }
        assert_eq!((surge_count(&d, 10), unavailable_count(&d, 10)), (3, 0));
        if let Some(u) = d.spec.update_strategy.as_mut() {
            u.type_ = Some("OnDelete".into());
        }
        assert_eq!((surge_count(&d, 10), unavailable_count(&d, 10)), (0, 0));
    }

    #[test]
    fn template_hashes_follow_the_template_and_collisions() {
        let a = ds(json!({}));
        let b = ds(json!({"hostNetwork": true}));
        assert_eq!(
            template_hash(&a.spec.template, None),
            template_hash(&a.spec.template, None)
        );
        assert_ne!(
            template_hash(&a.spec.template, None),
            template_hash(&b.spec.template, None)
        );
        assert_ne!(
            template_hash(&a.spec.template, None),
            template_hash(&a.spec.template, Some(1))
        );
    }
}
