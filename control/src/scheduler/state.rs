//! The scheduler's view of the cluster: nodes with what is bound (or assumed) on them, and
//! indices that make affinity and spreading lookups cheap at thousands of nodes and pods.

use super::resources::{Resources, node_allocatable, pod_requests};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub struct NodeInfo {
    pub name: String,
    pub node: Arc<Node>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub requested: Resources,
    pub pods: HashSet<String>,
    /// (protocol, hostPort, hostIP)
    pub used_ports: HashMap<(String, i32, String), u32>,
    /// Pending pods nominated to this node by preemption: their room is kept for them.
    pub nominated: Vec<Nominee>,
}

/// A pending pod that preempted others on a node and waits for them to go.
#[derive(Debug, Clone)]
pub struct Nominee {
    pub uid: String,
    pub priority: i32,
    pub requests: Resources,
    pub ports: Vec<(String, i32, String)>,
}

impl NodeInfo {
    fn new(node: Arc<Node>) -> NodeInfo {
        let mut n = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            node: node.clone(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable: Resources::default(),
            requested: Resources::default(),
            pods: HashSet::new(),
            used_ports: HashMap::new(),
            nominated: Vec::new(),
        };
        n.set(node);
        n
    }

    fn set(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        self.unschedulable = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        self.allocatable = node_allocatable(&node);
        self.node = node;
    }
}

/// A pod that occupies a node (bound, or assumed while its binding is in flight).
pub struct PodRec {
    pub uid: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub node: String,
    pub requests: Resources,
    pub ports: Vec<(String, i32, String)>,
    pub priority: i32,
    /// Being deleted to make room for a preemptor (or about to be).
    pub preempted: bool,
    pub pod: Arc<Pod>,
}

pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// `podTerminatingByPreemption`: deleted, with the scheduler's DisruptionTarget condition.
fn terminating_by_preemption(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "DisruptionTarget"
                        && c.status == "True"
                        && c.reason.as_deref() == Some("PreemptionByScheduler")
                })
            })
}

pub fn host_ports(pod: &Pod) -> Vec<(String, i32, String)> {
    let mut out = Vec::new();
    for c in pod.spec.iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    }) {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                let ip = p
                    .host_ip
                    .clone()
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into());
                out.push((proto, hp, ip));
            }
        }
    }
    out
}

#[derive(Default)]
pub struct State {
    pub nodes: HashMap<String, NodeInfo>,
    /// Node names in a stable order (the scheduler walks them round-robin).
    pub order: Vec<String>,
    pub pods: HashMap<String, PodRec>,
    /// (namespace, label key, label value) → node → number of pods with that label.
    by_label: HashMap<(String, String, String), HashMap<String, u32>>,
    pub by_namespace: HashMap<String, HashSet<String>>,
    /// Pods whose spec has required anti-affinity: incoming pods must respect them too.
    pub with_anti_affinity: HashSet<String>,
    /// Controller uid → node → number of its pods there (default spreading).
    by_owner: HashMap<String, HashMap<String, u32>>,
    /// Bound pods per priority: preemption is skipped at once when nothing is lower.
    priorities: BTreeMap<i32, usize>,
    /// Pending pod → the node it is nominated to.
    nominations: HashMap<String, String>,
    /// Spreading domains eligible for a given (topology key, node constraints): the same for
    /// every replica of a workload, so computed once per node change, not once per pod.
    pub domain_cache: std::cell::RefCell<HashMap<String, std::sync::Arc<HashSet<String>>>>,
}

fn owner(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

impl State {
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        self.domain_cache.get_mut().clear();
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.nodes.get_mut(&name) {
            Some(n) => n.set(node),
            None => {
                self.nodes.insert(name.clone(), NodeInfo::new(node));
                let pos = self.order.binary_search(&name).unwrap_or_else(|p| p);
                self.order.insert(pos, name);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        self.domain_cache.get_mut().clear();
        if let Some(n) = self.nodes.remove(name) {
            for p in n.nominated {
                self.nominations.remove(&p.uid);
            }
        }
        if let Ok(pos) = self.order.binary_search(&name.to_string()) {
            self.order.remove(pos);
        }
    }

    /// Records (or moves) a pod onto a node.
    pub fn add_pod(&mut self, pod: Arc<Pod>, node: &str) {
        let id = uid(&pod);
        // A victim marked by this scheduler stays marked until its deletion shows.
        let marked = self
            .remove_pod(&id)
            .is_some_and(|old| old.preempted && old.node == node);
        self.unnominate(&id);
        let rec = PodRec {
            uid: id.clone(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            node: node.to_string(),
            requests: pod_requests(&pod),
            ports: host_ports(&pod),
            priority: priority(&pod),
            preempted: marked || terminating_by_preemption(&pod),
            pod,
        };
        self.insert(rec);
    }

    /// Puts back a record taken out by `remove_pod` (preemption's what-ifs), marks included.
    pub fn insert(&mut self, rec: PodRec) {
        let id = rec.uid.clone();
        let node = rec.node.clone();
        let node = node.as_str();
        let pod = rec.pod.clone();
        *self.priorities.entry(rec.priority).or_default() += 1;
        if let Some(n) = self.nodes.get_mut(node) {
            n.requested.add(&rec.requests);
            n.pods.insert(id.clone());
            for p in &rec.ports {
                *n.used_ports.entry(p.clone()).or_default() += 1;
            }
        }
        for (k, v) in &rec.labels {
            *self
                .by_label
                .entry((rec.namespace.clone(), k.clone(), v.clone()))
                .or_default()
                .entry(node.to_string())
                .or_default() += 1;
        }
        self.by_namespace
            .entry(rec.namespace.clone())
            .or_default()
            .insert(id.clone());
        let anti = pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .is_some_and(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
                    .is_some_and(|t| !t.is_empty())
            });
        if anti {
            self.with_anti_affinity.insert(id.clone());
        }
        if let Some(o) = owner(&pod) {
            *self
                .by_owner
                .entry(o)
                .or_default()
                .entry(node.to_string())
                .or_default() += 1;
        }
        self.pods.insert(id, rec);
    }

    pub fn remove_pod(&mut self, id: &str) -> Option<PodRec> {
        let rec = self.pods.remove(id)?;
        if let Some(c) = self.priorities.get_mut(&rec.priority) {
            *c -= 1;
            if *c == 0 {
                self.priorities.remove(&rec.priority);
            }
        }
        if let Some(n) = self.nodes.get_mut(&rec.node) {
            n.requested.sub(&rec.requests);
            n.pods.remove(id);
            for p in &rec.ports {
                if let Some(c) = n.used_ports.get_mut(p) {
                    *c -= 1;
                    if *c == 0 {
                        n.used_ports.remove(p);
                    }
                }
            }
        }
        for (k, v) in &rec.labels {
            let key = (rec.namespace.clone(), k.clone(), v.clone());
            if let Some(per_node) = self.by_label.get_mut(&key) {
                if let Some(c) = per_node.get_mut(&rec.node) {
                    *c -= 1;
                    if *c == 0 {
                        per_node.remove(&rec.node);
                    }
                }
                if per_node.is_empty() {
                    self.by_label.remove(&key);
                }
            }
        }
        if let Some(set) = self.by_namespace.get_mut(&rec.namespace) {
            set.remove(id);
        }
        self.with_anti_affinity.remove(id);
        if let Some(o) = owner(&rec.pod)
            && let Some(per_node) = self.by_owner.get_mut(&o)
        {
            if let Some(c) = per_node.get_mut(&rec.node) {
                *c -= 1;
                if *c == 0 {
                    per_node.remove(&rec.node);
                }
            }
            if per_node.is_empty() {
                self.by_owner.remove(&o);
            }
        }
        Some(rec)
    }

    /// Whether any bound pod has a priority below `p` (anything to preempt at all).
    pub fn any_below(&self, p: i32) -> bool {
        self.priorities.keys().next().is_some_and(|low| *low < p)
    }

    /// Keeps room on `node` for a pending pod (replacing an earlier nomination).
    pub fn nominate(&mut self, pod: &Pod, node: &str) {
        let id = uid(pod);
        self.unnominate(&id);
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        n.nominated.push(Nominee {
            uid: id.clone(),
            priority: priority(pod),
            requests: pod_requests(pod),
            ports: host_ports(pod),
        });
        self.nominations.insert(id, node.to_string());
    }

    pub fn unnominate(&mut self, id: &str) {
        if let Some(node) = self.nominations.remove(id)
            && let Some(n) = self.nodes.get_mut(&node)
        {
            n.nominated.retain(|p| p.uid != id);
        }
    }

    pub fn nominated_node(&self, id: &str) -> Option<&str> {
        self.nominations.get(id).map(String::as_str)
    }

    /// Node → number of pods of this controller.
    pub fn owner_counts(&self, owner_uid: &str) -> HashMap<String, u32> {
        self.by_owner.get(owner_uid).cloned().unwrap_or_default()
    }

    /// Nodes → number of pods in `namespace` carrying label `key=value`.
    pub fn label_counts(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
    ) -> Option<&HashMap<String, u32>> {
        self.by_label
            .get(&(namespace.to_string(), key.to_string(), value.to_string()))
    }
}
