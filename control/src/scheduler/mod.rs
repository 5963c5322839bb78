//! The scheduler: watches pods and nodes, places pending pods on nodes, binds them through
//! `pods/binding`, and says why when it cannot (`FailedScheduling` events and the
//! `PodScheduled` condition, worded as kube-scheduler words them).

pub mod plugins;
pub mod queue;
pub mod resources;
pub mod state;

use crate::controllers::Events;
use futures::{StreamExt, stream::BoxStream};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
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
}

/// What happened to a pod, for the event worker.
enum Note {
    Scheduled { pod: Arc<Pod>, node: String },
    Unschedulable { pod: Arc<Pod>, message: String },
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
            self.pending.insert(id.clone(), pod);
            self.queue.add(&id, prio);
        } else {
            self.pending.remove(&id);
            self.queue.remove(&id);
        }
    }

    fn on_pod_deleted(&mut self, pod: &Pod) {
        let id = uid(pod);
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

    fn on_outcome(&mut self, o: Outcome) {
        match o {
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
        let want = feasible_to_find(n, self.cfg.percentage_of_nodes_to_score);
        let mut feasible = Vec::with_capacity(want);
        let mut reasons: HashMap<Reject, usize> = HashMap::new();
        let mut checked = 0;
        for i in 0..n {
            let name = &self.state.order[(self.next_start + i) % n];
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
                Err(r) => *reasons.entry(r).or_default() += 1,
            }
        }
        self.next_start = (self.next_start + checked) % n;
        if feasible.is_empty() {
            let message = unschedulable_message(n, &reasons);
            self.fail(&id, pod, message);
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
        tracing::debug!(pod = %id, %message, "unschedulable");
        self.queue.failed(id, true);
        let _ = self.notes.try_send(Note::Unschedulable { pod, message });
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
            Note::Unschedulable { pod, message } => {
                let current = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
                    .and_then(|c| c.message.clone());
                if current.as_deref() == Some(message.as_str()) {
                    continue; // already said
                }
                let r = kube::Resource::object_ref(pod.as_ref(), &());
                events
                    .warning(&r, "FailedScheduling", "Scheduling", message.clone())
                    .await;
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let patch = serde_json::json!({"status": {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastProbeTime": null,
                    "lastTransitionTime": crate::registry::meta::now(),
                }]}});
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
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let (notes_tx, notes_rx) = mpsc::channel(4096);
    let events = Events::new(client.clone(), &cfg.name, &cfg.instance);
    let worker = tokio::spawn(note_worker(client.clone(), events, notes_rx));
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
    };
    let mut pods = pods;
    let mut nodes = nodes;
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
