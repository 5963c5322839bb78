//! The scheduler: watches pods and nodes, places pending pods on nodes, binds them through
//! `pods/binding`, and says why when it cannot (`FailedScheduling` events and the
//! `PodScheduled` condition, worded as kube-scheduler words them). A pod that fits nowhere may
//! preempt pods of lower priority (`preemption`).

pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod state;

use crate::controllers::Events;
use futures::{StreamExt, stream::BoxStream};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use plugins::{Candidate, Reject, unschedulable_message};
use queue::Queue;
use state::State;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Pods naming this scheduler (`spec.schedulerName`) are ours.
    pub name: String,
    /// Bindings in flight at once.
    pub parallel_binds: usize,
    /// Share of nodes to find feasible before scoring (None: kube's adaptive default).
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Identity reported in events.
    pub instance: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            name: "default-scheduler".into(),
            parallel_binds: 64,
            percentage_of_nodes_to_score: None,
            instance: "ketch-control".into(),
        }
    }
}

/// How many feasible nodes to find before scoring (kube's `numFeasibleNodesToFind`).
fn feasible_to_find(nodes: usize, pct: Option<u32>) -> usize {
    if nodes < 100 {
        return nodes;
    }
    let pct = pct.unwrap_or_else(|| (50i64 - nodes as i64 / 125).max(5) as u32) as usize;
    (nodes * pct / 100).max(100).min(nodes)
}

enum Outcome {
    Bound(String),
    Failed(String, String),
    /// The victims of this preemptor were dealt with (or that failed: retry it).
    Preempted(String, bool),
}

/// What happened to a pod, for the event worker.
enum Note {
    Scheduled {
        pod: Arc<Pod>,
        node: String,
    },
    Unschedulable {
        pod: Arc<Pod>,
        message: String,
        /// `status.nominatedNodeName` to write: None leaves it, Some("") clears it.
        nominate: Option<String>,
    },
}

struct Scheduler {
    cfg: SchedulerConfig,
    client: kube::Client,
    state: State,
    queue: Queue,
    /// Pods waiting to be scheduled, latest version.
    pending: HashMap<String, Arc<Pod>>,
    /// Pods assumed on a node while their binding is in flight.
    assumed: HashSet<String>,
    next_start: usize,
    binds: Arc<Semaphore>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    notes: mpsc::Sender<Note>,
    synced_pods: bool,
    synced_nodes: bool,
    relist_pods: Option<HashSet<String>>,
    relist_nodes: Option<HashSet<String>>,
    /// PodDisruptionBudgets by namespace/name, for choosing preemption victims.
    budgets: HashMap<String, preemption::Budget>,
    /// Preemptors whose victims are being deleted: not tried again until that is done.
    preempting: HashSet<String>,
    events: Events,
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Scheduler {
    fn ours(&self, p: &Pod) -> bool {
        let spec = p.spec.as_ref();
        spec.and_then(|s| s.node_name.as_deref())
            .unwrap_or("")
            .is_empty()
            && spec
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or("default-scheduler")
                == self.cfg.name
            && p.metadata.deletion_timestamp.is_none()
            && !terminal(p)
            && spec
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_none_or(|g| g.is_empty())
    }

    fn on_pod(&mut self, pod: Pod) {
        let id = uid(&pod);
        if let Some(seen) = self.relist_pods.as_mut() {
            seen.insert(id.clone());
        }
        let pod = Arc::new(pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if !node.is_empty() {
            self.pending.remove(&id);
            self.queue.remove(&id);
            self.assumed.remove(&id);
            if terminal(&pod) {
                if self.state.remove_pod(&id).is_some() {
                    self.queue.cluster_changed();
                }
            } else {
                self.state.add_pod(pod, &node);
            }
            return;
        }
        if self.ours(&pod) {
            if self.assumed.contains(&id) {
                return; // our binding is on its way
            }
            let prio = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
            // A nomination written earlier (by us before a restart, or just now) keeps its room;
            // one only in memory survives an update that does not show it yet.
            let nominated = pod
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref())
                .filter(|n| !n.is_empty());
            if let Some(n) = nominated
                && self.state.nominated_node(&id) != Some(n)
            {
                self.state.nominate(&pod, n);
            }
            self.pending.insert(id.clone(), pod);
            self.queue.add(&id, prio);
        } else {
            self.pending.remove(&id);
            self.queue.remove(&id);
            self.state.unnominate(&id);
        }
    }

    fn on_pod_deleted(&mut self, pod: &Pod) {
        let id = uid(pod);
        self.state.unnominate(&id);
        self.pending.remove(&id);
        self.queue.remove(&id);
        self.assumed.remove(&id);
        if self.state.remove_pod(&id).is_some() {
            self.queue.cluster_changed();
        }
    }

    fn on_node(&mut self, node: Node) {
        if let Some(seen) = self.relist_nodes.as_mut() {
            seen.insert(node.metadata.name.clone().unwrap_or_default());
        }
        self.state.upsert_node(Arc::new(node));
        self.queue.cluster_changed();
    }

    fn handle_pods(&mut self, ev: watcher::Event<Pod>) {
        match ev {
            watcher::Event::Init => self.relist_pods = Some(HashSet::new()),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => self.on_pod(p),
            watcher::Event::Delete(p) => self.on_pod_deleted(&p),
            watcher::Event::InitDone => {
                // Whatever the new list did not contain is gone.
                if let Some(seen) = self.relist_pods.take() {
                    let gone: Vec<String> = self
                        .state
                        .pods
                        .keys()
                        .chain(self.pending.keys())
                        .filter(|u| !seen.contains(*u) && !self.assumed.contains(*u))
                        .cloned()
                        .collect();
                    for u in gone {
                        self.pending.remove(&u);
                        self.queue.remove(&u);
                        self.state.remove_pod(&u);
                    }
                }
                self.synced_pods = true;
            }
        }
    }

    fn handle_nodes(&mut self, ev: watcher::Event<Node>) {
        match ev {
            watcher::Event::Init => self.relist_nodes = Some(HashSet::new()),
            watcher::Event::InitApply(n) | watcher::Event::Apply(n) => self.on_node(n),
            watcher::Event::Delete(n) => {
                self.state
                    .remove_node(n.metadata.name.as_deref().unwrap_or_default());
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.relist_nodes.take() {
                    let gone: Vec<String> = self
                        .state
                        .order
                        .iter()
                        .filter(|n| !seen.contains(*n))
                        .cloned()
                        .collect();
                    for n in gone {
                        self.state.remove_node(&n);
                    }
                }
                self.synced_nodes = true;
                self.queue.cluster_changed();
            }
        }
    }

    fn handle_budgets(&mut self, ev: watcher::Event<PodDisruptionBudget>) {
        let key = |p: &PodDisruptionBudget| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap_or_default(),
                p.metadata.name.as_deref().unwrap_or_default()
            )
        };
        match ev {
            watcher::Event::Init => self.budgets.clear(),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                match preemption::Budget::from_pdb(&p) {
                    Some(b) => self.budgets.insert(key(&p), b),
                    None => self.budgets.remove(&key(&p)),
                };
            }
            watcher::Event::Delete(p) => {
                self.budgets.remove(&key(&p));
            }
            watcher::Event::InitDone => {}
        }
    }

    fn on_outcome(&mut self, o: Outcome) {
        match o {
            Outcome::Preempted(id, ok) => {
                self.preempting.remove(&id);
                if !ok && self.pending.contains_key(&id) {
                    // Some victim could not be removed: look again rather than wait forever.
                    let prio = self.pending.get(&id).map(|p| state::priority(p));
                    self.queue.retry_now(&id, prio.unwrap_or(0));
                }
            }
            Outcome::Bound(id) => {
                self.assumed.remove(&id);
                self.pending.remove(&id);
                self.queue.done(&id);
            }
            Outcome::Failed(id, why) => {
                tracing::info!(pod = %id, error = %why, "binding failed");
                self.assumed.remove(&id);
                self.state.remove_pod(&id);
                if self.pending.contains_key(&id) {
                    self.queue.failed(&id, false);
                } else {
                    self.queue.remove(&id);
                }
            }
        }
    }

    /// One scheduling cycle for one pod.
    fn schedule_one(&mut self, id: String) {
        let Some(pod) = self.pending.get(&id).cloned() else {
            self.queue.remove(&id);
            return;
        };
        let n = self.state.order.len();
        if n == 0 {
            self.fail(&id, pod, "no nodes available to schedule pods".into());
            return;
        }
        let cand = Candidate::new(&pod, &self.state);
        // A preemptor goes where it made room if it fits there now (kube's
        // evaluateNominatedNode).
        if let Some(nominated) = self.state.nominated_node(&id).map(str::to_string)
            && self
                .state
                .nodes
                .get(&nominated)
                .is_some_and(|node| cand.filter(node).is_ok())
        {
            self.state.add_pod(pod.clone(), &nominated);
            self.assumed.insert(id.clone());
            self.bind(id, pod, nominated);
            return;
        }
        let want = feasible_to_find(n, self.cfg.percentage_of_nodes_to_score);
        let mut feasible = Vec::with_capacity(want);
        // Few distinct reasons: a short list beats hashing one per rejected node.
        let mut reasons: Vec<(Reject, usize)> = Vec::new();
        let mut checked = 0;
        let mut pos = self.next_start % n;
        for _ in 0..n {
            let name = &self.state.order[pos];
            pos = if pos + 1 == n { 0 } else { pos + 1 };
            checked += 1;
            let Some(node) = self.state.nodes.get(name) else {
                continue;
            };
            match cand.filter(node) {
                Ok(()) => {
                    feasible.push(node);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(r) => match reasons.iter_mut().find(|(x, _)| *x == r) {
                    Some((_, c)) => *c += 1,
                    None => reasons.push((r, 1)),
                },
            }
        }
        self.next_start = (self.next_start + checked) % n;
        if feasible.is_empty() {
            let reasons: HashMap<Reject, usize> = reasons.into_iter().collect();
            let message = unschedulable_message(n, &reasons);
            let nominated = self.state.nominated_node(&id);
            let eligible = if self.preempting.contains(&id) {
                None
            } else {
                Some(preemption::eligible(&pod, nominated, &self.state))
            };
            // Preemption needs each node's failure: a second pass, on this path only, keeps
            // the common (feasible) path free of per-node allocations.
            let rejects: Vec<(String, Reject)> = if matches!(eligible, Some(Ok(()))) {
                self.state
                    .order
                    .iter()
                    .filter_map(|name| {
                        let node = self.state.nodes.get(name)?;
                        cand.filter(node).err().map(|r| (name.clone(), r))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            self.post_filter(&id, pod, message, eligible, rejects);
            return;
        }
        let scores = cand.score(&feasible);
        let best = scores.iter().copied().max().unwrap_or(0);
        let ties: Vec<usize> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == best)
            .map(|(i, _)| i)
            .collect();
        // Deterministic for a given pod, yet different pods of one workload land apart.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let pick = ties[(h.finish() as usize) % ties.len()];
        let node = feasible[pick].name.clone();
        // Assume: later pods see this one on its node before the binding lands.
        self.state.add_pod(pod.clone(), &node);
        self.assumed.insert(id.clone());
        self.bind(id, pod, node);
    }

    fn fail(&mut self, id: &str, pod: Arc<Pod>, message: String) {
        self.fail_nominating(id, pod, message, None);
    }

    fn fail_nominating(
        &mut self,
        id: &str,
        pod: Arc<Pod>,
        message: String,
        nominate: Option<String>,
    ) {
        tracing::debug!(pod = %id, %message, "unschedulable");
        self.queue.failed(id, true);
        let _ = self.notes.try_send(Note::Unschedulable {
            pod,
            message,
            nominate,
        });
    }

    /// The pod fits nowhere: try preemption, then record the failure (and any nomination).
    /// kube appends the preemption outcome to the filter message with its own period, so
    /// the message may end in "..", as upstream's does.
    fn post_filter(
        &mut self,
        id: &str,
        pod: Arc<Pod>,
        message: String,
        eligible: Option<Result<(), preemption::NoPreemption>>,
        rejects: Vec<(String, Reject)>,
    ) {
        match eligible {
            // Its earlier preemption is still under way.
            None => self.fail(id, pod, message),
            Some(Err(why)) => {
                let message = format!("{message} preemption: {}.", why.message());
                self.fail(id, pod, message);
            }
            Some(Ok(())) => {
                let budgets: Vec<preemption::Budget> = self.budgets.values().cloned().collect();
                let offset = if rejects.is_empty() {
                    0
                } else {
                    rand::random_range(0..rejects.len())
                };
                let n = self.state.order.len();
                match preemption::find(&pod, &mut self.state, &rejects, n, &budgets, offset) {
                    Err(why) => {
                        let had = self.state.nominated_node(id).is_some()
                            || pod
                                .status
                                .as_ref()
                                .and_then(|s| s.nominated_node_name.as_deref())
                                .is_some_and(|n| !n.is_empty());
                        self.state.unnominate(id);
                        let message = format!("{message} preemption: {}.", why.message());
                        self.fail_nominating(id, pod, message, had.then(String::new));
                    }
                    Ok(victims) => {
                        self.preempt(id, &pod, victims.clone());
                        self.fail_nominating(id, pod, message, Some(victims.node));
                    }
                }
            }
        }
    }

    /// Nominates the node, then removes the victims off the scheduling path.
    fn preempt(&mut self, id: &str, pod: &Arc<Pod>, victims: preemption::Victims) {
        let node = victims.node.clone();
        tracing::info!(pod = %id, %node, victims = victims.pods.len(), "preempting");
        self.state.nominate(pod, &node);
        for v in &victims.pods {
            if let Some(rec) = self.state.pods.get_mut(&uid(v)) {
                rec.preempted = true;
            }
        }
        // Lower-priority pods nominated to this node may no longer fit there.
        let p = state::priority(pod);
        let displaced: Vec<String> = self
            .state
            .nodes
            .get(&node)
            .map(|n| {
                n.nominated
                    .iter()
                    .filter(|x| x.priority < p)
                    .map(|x| x.uid.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut clear = Vec::new();
        for u in displaced {
            self.state.unnominate(&u);
            if let Some(other) = self.pending.get(&u) {
                clear.push(other.clone());
                self.queue.retry_now(&u, state::priority(other));
            }
        }
        self.preempting.insert(id.to_string());
        tokio::spawn(remove_victims(
            self.client.clone(),
            self.events.clone(),
            self.outcomes.clone(),
            self.cfg.name.clone(),
            pod.clone(),
            victims,
            clear,
        ));
    }

    fn bind(&self, id: String, pod: Arc<Pod>, node: String) {
        let client = self.client.clone();
        let outcomes = self.outcomes.clone();
        let notes = self.notes.clone();
        let binds = self.binds.clone();
        tokio::spawn(async move {
            let Ok(_permit) = binds.acquire_owned().await else {
                return;
            };
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client, &ns);
            let binding = serde_json::json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": id},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let result = api
                .create_subresource::<serde_json::Value, serde_json::Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await;
            match result {
                Ok(_) => {
                    let _ = outcomes.send(Outcome::Bound(id));
                    let _ = notes.try_send(Note::Scheduled { pod, node });
                }
                Err(e) => {
                    let _ = outcomes.send(Outcome::Failed(id, e.to_string()));
                }
            }
        });
    }
}

/// kube's prepareCandidate: each victim gets the DisruptionTarget condition, is deleted (with
/// its grace period) and gets a `Preempted` event; lower-priority pods nominated to the node
/// lose their nomination.
async fn remove_victims(
    client: kube::Client,
    events: Events,
    outcomes: mpsc::UnboundedSender<Outcome>,
    scheduler: String,
    preemptor: Arc<Pod>,
    victims: preemption::Victims,
    clear: Vec<Arc<Pod>>,
) {
    let id = uid(&preemptor);
    let related = kube::Resource::object_ref(preemptor.as_ref(), &());
    let mut ok = true;
    for victim in victims
        .pods
        .iter()
        .filter(|v| v.metadata.deletion_timestamp.is_none())
    {
        let ns = victim.metadata.namespace.clone().unwrap_or_default();
        let name = victim.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let patch = serde_json::json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
            "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
            "lastTransitionTime": crate::registry::meta::now(),
        }]}});
        let result = match api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => api
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            // Gone already: that is what we wanted.
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => {
                tracing::warn!(victim = %name, preemptor = %id, error = %e, "preempting a pod failed");
                ok = false;
                break;
            }
        }
        let r = kube::Resource::object_ref(victim.as_ref(), &());
        events
            .related(
                "Normal",
                &r,
                &related,
                "Preempted",
                "Preempting",
                format!("Preempted by pod {id} on node {}", victims.node),
            )
            .await;
    }
    for other in clear {
        let ns = other.metadata.namespace.clone().unwrap_or_default();
        let name = other.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let patch = serde_json::json!({"status": {"nominatedNodeName": null}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "clearing a nomination failed");
        }
    }
    let _ = outcomes.send(Outcome::Preempted(id, ok));
}

/// Records events and the PodScheduled condition off the scheduling path.
async fn note_worker(client: kube::Client, events: Events, mut rx: mpsc::Receiver<Note>) {
    while let Some(note) = rx.recv().await {
        match note {
            Note::Scheduled { pod, node } => {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let r = kube::Resource::object_ref(pod.as_ref(), &());
                events
                    .normal(
                        &r,
                        "Scheduled",
                        "Binding",
                        format!("Successfully assigned {ns}/{name} to {node}"),
                    )
                    .await;
            }
            Note::Unschedulable {
                pod,
                message,
                nominate,
            } => {
                let current = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
                    .and_then(|c| c.message.clone());
                let nominated_now = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.nominated_node_name.clone())
                    .unwrap_or_default();
                let same_nomination = nominate.as_ref().is_none_or(|n| *n == nominated_now);
                if current.as_deref() == Some(message.as_str()) && same_nomination {
                    continue; // already said
                }
                let r = kube::Resource::object_ref(pod.as_ref(), &());
                events
                    .warning(&r, "FailedScheduling", "Scheduling", message.clone())
                    .await;
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let mut patch = serde_json::json!({"status": {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastProbeTime": null,
                    "lastTransitionTime": crate::registry::meta::now(),
                }]}});
                if let Some(n) = nominate {
                    patch["status"]["nominatedNodeName"] = if n.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::json!(n)
                    };
                }
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    tracing::debug!(pod = %name, error = %e, "recording PodScheduled=False failed");
                }
            }
        }
    }
}

/// Runs until `stop`.
pub async fn run(client: kube::Client, cfg: SchedulerConfig, stop: CancellationToken) {
    let pods: BoxStream<'static, Result<watcher::Event<Pod>, watcher::Error>> =
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).boxed();
    let nodes: BoxStream<'static, Result<watcher::Event<Node>, watcher::Error>> =
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).boxed();
    let budgets: BoxStream<'static, Result<watcher::Event<PodDisruptionBudget>, watcher::Error>> =
        watcher(
            Api::<PodDisruptionBudget>::all(client.clone()),
            watcher::Config::default(),
        )
        .boxed();
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let (notes_tx, notes_rx) = mpsc::channel(4096);
    let events = Events::new(client.clone(), &cfg.name, &cfg.instance);
    let worker = tokio::spawn(note_worker(client.clone(), events.clone(), notes_rx));
    let mut s = Scheduler {
        binds: Arc::new(Semaphore::new(cfg.parallel_binds.max(1))),
        cfg,
        client,
        state: State::default(),
        queue: Queue::default(),
        pending: HashMap::new(),
        assumed: HashSet::new(),
        next_start: 0,
        outcomes: outcomes_tx,
        notes: notes_tx,
        synced_pods: false,
        synced_nodes: false,
        relist_pods: None,
        relist_nodes: None,
        budgets: HashMap::new(),
        preempting: HashSet::new(),
        events,
    };
    let mut pods = pods;
    let mut nodes = nodes;
    let mut budgets = budgets;
    let mut flush = tokio::time::interval(Duration::from_secs(5));
    loop {
        let ready = s.synced_pods && s.synced_nodes && s.queue.has_ready();
        let wake = s.queue.next_backoff().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = stop.cancelled() => break,
            ev = pods.next() => match ev {
                Some(Ok(ev)) => s.handle_pods(ev),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "pod watch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => break,
            },
            ev = nodes.next() => match ev {
                Some(Ok(ev)) => s.handle_nodes(ev),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "node watch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => break,
            },
            ev = budgets.next() => match ev {
                Some(Ok(ev)) => s.handle_budgets(ev),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "PodDisruptionBudget watch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => break,
            },
            Some(o) = outcomes.recv() => s.on_outcome(o),
            _ = flush.tick() => s.queue.flush_unschedulable(),
            _ = async { if let Some(w) = wake { tokio::time::sleep_until(w).await } else { std::future::pending::<()>().await } } => {}
            _ = std::future::ready(()), if ready => {
                // A batch, then back to events so the cluster view stays fresh.
                for _ in 0..32 {
                    let Some(id) = s.queue.pop() else { break };
                    s.schedule_one(id);
                }
            }
        }
    }
    worker.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sizes_follow_kube_scheduler() {
        assert_eq!(feasible_to_find(50, None), 50);
        assert_eq!(feasible_to_find(5000, None), 500);
        assert_eq!(feasible_to_find(1000, None), 420);
        assert_eq!(feasible_to_find(200, Some(10)), 100);
    }
}
