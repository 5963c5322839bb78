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
    pub pod: Arc<Pod>,
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
        self.nodes.remove(name);
        if let Ok(pos) = self.order.binary_search(&name.to_string()) {
            self.order.remove(pos);
        }
    }

    /// Records (or moves) a pod onto a node.
    pub fn add_pod(&mut self, pod: Arc<Pod>, node: &str) {
        let id = uid(&pod);
        self.remove_pod(&id);
        let rec = PodRec {
            uid: id.clone(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            node: node.to_string(),
            requests: pod_requests(&pod),
            ports: host_ports(&pod),
            pod: pod.clone(),
        };
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
