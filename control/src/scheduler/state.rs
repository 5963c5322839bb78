//! The scheduler's view of the cluster: nodes with what is bound (or assumed) on them, and
//! indices that make affinity and spreading lookups cheap at thousands of nodes and pods.

use super::resources::{Resources, node_allocatable, pod_requests};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub struct NodeInfo {
    pub name: String,
    /// A small number of its own, stable while the node exists: index into per-node tables.
    pub slot: usize,
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
    /// The pod itself: its labels and anti-affinity count on the node as if it were there.
    pub pod: Arc<Pod>,
}

impl NodeInfo {
    fn new(node: Arc<Node>, slot: usize) -> NodeInfo {
        let mut n = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            slot,
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

    /// Takes the node's new version; says whether its labels and its taints changed.
    fn set(&mut self, node: Arc<Node>) -> (bool, bool) {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let changed = (labels != self.labels, taints != self.taints);
        self.labels = labels;
        self.taints = taints;
        self.unschedulable = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        self.allocatable = node_allocatable(&node);
        self.node = node;
        changed
    }
}

/// No domain: the node lacks the topology label.
const NO_DOMAIN: u32 = u32::MAX;

/// The values one node label takes over all nodes, numbered, and each node's number by slot:
/// affinity and spreading look a node's domain up in an array instead of hashing strings.
#[derive(Debug)]
pub struct Topology {
    pub names: Vec<String>,
    ids: HashMap<String, u32>,
    of_slot: Vec<u32>,
}

impl Topology {
    /// The node's domain number, if it has the label.
    pub fn domain(&self, n: &NodeInfo) -> Option<usize> {
        self.of_slot
            .get(n.slot)
            .copied()
            .filter(|d| *d != NO_DOMAIN)
            .map(|d| d as usize)
    }

    pub fn id(&self, value: &str) -> Option<usize> {
        self.ids.get(value).map(|d| *d as usize)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
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
    /// foldhash, not SipHash: every scheduling cycle looks nodes up by name hundreds to
    /// thousands of times, and SipHash was the largest cost of the affinity benchmark.
    pub nodes: foldhash::HashMap<String, NodeInfo>,
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
    /// Spreading domains eligible (by topology number) for a given (topology key, node
    /// constraints): the same for every replica of a workload, so computed once per node
    /// change, not once per pod.
    pub domain_cache: RefCell<HashMap<String, Arc<Vec<bool>>>>,
    /// Topologies by label key, built when first asked for; dropped when node labels change.
    topologies: RefCell<HashMap<String, Arc<Topology>>>,
    /// Nodes (by slot) passing a nodeSelector + required node affinity, keyed by its text;
    /// dropped when node labels change.
    node_masks: RefCell<HashMap<String, Arc<Vec<bool>>>>,
    free_slots: Vec<usize>,
    next_slot: usize,
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
    /// Node-derived caches: labels feed all of them, taints only the spreading domains.
    /// Status-only updates (heartbeats) keep them.
    fn forget_nodes(&mut self, labels: bool, taints: bool) {
        if labels || taints {
            self.domain_cache.get_mut().clear();
        }
        if labels {
            self.topologies.get_mut().clear();
            self.node_masks.get_mut().clear();
        }
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.nodes.get_mut(&name) {
            Some(n) => {
                let (labels, taints) = n.set(node);
                self.forget_nodes(labels, taints);
            }
            None => {
                let slot = self.free_slots.pop().unwrap_or_else(|| {
                    self.next_slot += 1;
                    self.next_slot - 1
                });
                self.nodes.insert(name.clone(), NodeInfo::new(node, slot));
                let pos = self.order.binary_search(&name).unwrap_or_else(|p| p);
                self.order.insert(pos, name);
                self.forget_nodes(true, true);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        self.forget_nodes(true, true);
        if let Some(n) = self.nodes.remove(name) {
            self.free_slots.push(n.slot);
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
        let anti = !super::plugins::required_anti_terms(&pod).is_empty();
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

    /// The numbered domains of label `key`.
    pub fn topology(&self, key: &str) -> Arc<Topology> {
        if let Some(t) = self.topologies.borrow().get(key) {
            return t.clone();
        }
        let mut names: Vec<String> = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut of_slot = vec![NO_DOMAIN; self.next_slot];
        for n in self.nodes.values() {
            if let Some(v) = n.labels.get(key) {
                let id = *ids.entry(v.clone()).or_insert_with(|| {
                    names.push(v.clone());
                    (names.len() - 1) as u32
                });
                of_slot[n.slot] = id;
            }
        }
        let t = Arc::new(Topology {
            names,
            ids,
            of_slot,
        });
        self.topologies
            .borrow_mut()
            .insert(key.to_string(), t.clone());
        t
    }

    /// Which nodes (by slot) `pass`, cached under `key` until node labels change; `pass` must
    /// depend on nothing but the node's labels and name.
    pub fn node_mask(&self, key: &str, pass: impl Fn(&NodeInfo) -> bool) -> Arc<Vec<bool>> {
        if let Some(m) = self.node_masks.borrow().get(key) {
            return m.clone();
        }
        let mut mask = vec![false; self.next_slot];
        for n in self.nodes.values() {
            mask[n.slot] = pass(n);
        }
        let m = Arc::new(mask);
        self.node_masks
            .borrow_mut()
            .insert(key.to_string(), m.clone());
        m
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
            pod: Arc::new(pod.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, zone: &str, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"zone": zone}},
                "status": {"allocatable": {"cpu": cpu, "pods": "110"}}}))
            .expect("node"),
        )
    }

    #[test]
    fn topologies_and_masks_follow_label_changes_only() {
        let mut s = State::default();
        s.upsert_node(node("a", "z1", "1"));
        s.upsert_node(node("b", "z2", "1"));
        let t = s.topology("zone");
        assert_eq!(t.len(), 2);
        let (a, b) = (&s.nodes["a"], &s.nodes["b"]);
        assert_eq!(t.domain(a), t.id("z1"));
        assert_ne!(t.domain(a), t.domain(b));
        assert_eq!(s.topology("missing").domain(a), None);
        let in_z1 = |n: &NodeInfo| n.labels.get("zone").is_some_and(|z| z == "z1");
        assert!(!s.node_mask("z1", in_z1)[s.nodes["b"].slot]);
        // A status-only update (a heartbeat) keeps what was computed.
        s.upsert_node(node("b", "z2", "2"));
        assert!(Arc::ptr_eq(&t, &s.topology("zone")));
        // A label change drops it: b is now in z1, for topologies and masks alike.
        s.upsert_node(node("b", "z1", "2"));
        let t2 = s.topology("zone");
        assert_eq!(t2.len(), 1);
        assert_eq!(t2.domain(&s.nodes["b"]), t2.domain(&s.nodes["a"]));
        assert!(s.node_mask("z1", in_z1)[s.nodes["b"].slot]);
        // Slots are reused, and a new node is seen at once.
        let slot_b = s.nodes["b"].slot;
        s.remove_node("b");
        s.upsert_node(node("c", "z3", "1"));
        assert_eq!(s.nodes["c"].slot, slot_b);
        assert_eq!(s.topology("zone").len(), 2);
    }
}
