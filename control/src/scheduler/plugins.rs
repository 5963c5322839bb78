//! Filter and score plugins, as kube-scheduler's default profile has them: NodeUnschedulable,
//! NodeResourcesFit, NodeAffinity, TaintToleration, NodePorts, InterPodAffinity,
//! PodTopologySpread; scored by least allocation, balance, preferred affinities, taints and
//! spreading.

use super::resources::{Resources, pod_requests};
use super::state::{NodeInfo, Nominee, State, Topology, host_ports};
use crate::api::selectors::LabelSelector;
use crate::placement::{requirement_matches, tolerates};
use k8s_openapi::api::core::v1::{
    NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration, TopologySpreadConstraint,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Why a node was rejected, worded as kube-scheduler words it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    Unschedulable,
    Insufficient(String),
    TooManyPods,
    NodeAffinity,
    Taint(String, String),
    Ports,
    PodAffinity,
    PodAntiAffinity,
    ExistingAntiAffinity,
    Spread,
    SpreadMissingLabel,
    /// Preemption: the node failed a filter that removing pods cannot fix.
    PreemptionNotHelpful,
    /// Preemption: nothing of lower priority runs there.
    NoVictims,
}

impl Reject {
    pub fn message(&self) -> String {
        match self {
            Reject::Unschedulable => "node(s) were unschedulable".into(),
            Reject::Insufficient(r) => format!("Insufficient {r}"),
            Reject::TooManyPods => "Too many pods".into(),
            Reject::NodeAffinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Reject::Taint(k, v) => format!("node(s) had untolerated taint {{{k}: {v}}}"),
            Reject::Ports => "node(s) didn't have free ports for the requested pod ports".into(),
            Reject::PodAffinity => "node(s) didn't match pod affinity rules".into(),
            Reject::PodAntiAffinity => "node(s) didn't match pod anti-affinity rules".into(),
            Reject::ExistingAntiAffinity => {
                "node(s) didn't satisfy existing pods anti-affinity rules".into()
            }
            Reject::Spread => "node(s) didn't match pod topology spread constraints".into(),
            Reject::SpreadMissingLabel => {
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .into()
            }
            Reject::PreemptionNotHelpful => "Preemption is not helpful for scheduling".into(),
            Reject::NoVictims => "No preemption victims found for incoming pod".into(),
        }
    }

    /// kube's `UnschedulableAndUnresolvable`: removing pods from the node would not help.
    pub fn unresolvable(&self) -> bool {
        matches!(
            self,
            Reject::Unschedulable
                | Reject::NodeAffinity
                | Reject::Taint(..)
                | Reject::PodAffinity
                | Reject::SpreadMissingLabel
                | Reject::PreemptionNotHelpful
                | Reject::NoVictims
        )
    }
}

/// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.`
pub fn unschedulable_message(total: usize, reasons: &HashMap<Reject, usize>) -> String {
    let mut parts: Vec<String> = reasons
        .iter()
        .map(|(r, n)| format!("{n} {}", r.message()))
        .collect();
    parts.sort();
    format!("0/{total} nodes are available: {}.", parts.join(", "))
}

fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&node.name)))
}

/// Everything about the incoming pod the plugins need, computed once per scheduling attempt.
pub struct Candidate {
    uid: String,
    pub priority: i32,
    pub requests: Resources,
    ports: Vec<(String, i32, String)>,
    tolerations: Vec<Toleration>,
    node_selector: BTreeMap<String, String>,
    required_terms: Option<Vec<NodeSelectorTerm>>,
    /// Nodes (by slot) passing nodeSelector and required node affinity; None: no such rule.
    node_mask: Option<Arc<Vec<bool>>>,
    preferred_terms: Vec<(i32, NodeSelectorTerm)>,
    namespace: String,
    labels: BTreeMap<String, String>,
    /// Required pod affinity: (topology, whether each domain holds a matching pod; None = any).
    affinity: Vec<(Arc<Topology>, Option<Vec<bool>>)>,
    /// Required anti-affinity: (topology, whether each domain holds a matching pod).
    anti_affinity: Vec<(Arc<Topology>, Vec<bool>)>,
    /// The same terms as (topology key, selector, namespaces), for pods nominated to a node.
    anti_terms: Vec<(String, LabelSelector, Vec<String>)>,
    /// Existing pods' anti-affinity against this pod: (topology, domain).
    existing_anti: Vec<(Arc<Topology>, usize)>,
    /// Preferred (anti-)affinity: (weight, topology, matching pods per domain).
    preferred_affinity: Vec<(i64, Arc<Topology>, Vec<i64>)>,
    spread: Vec<Spread>,
    /// Pods of the same controller per node (default spreading).
    siblings: HashMap<String, u32>,
}

struct Spread {
    topo: Arc<Topology>,
    max_skew: i64,
    hard: bool,
    /// Matching pods per domain (0 for domains the pod could not go to).
    counts: Vec<i64>,
    min: i64,
    selector: LabelSelector,
    /// Domains the pod could go to.
    eligible: Arc<Vec<bool>>,
    /// Fewer eligible domains than `minDomains`: the minimum counts as 0.
    below_min_domains: bool,
}

impl Spread {
    /// Matching pods in domain `d` and the global minimum, with `extra` more pods in `d`
    /// (pods nominated to the node being filtered).
    fn with_extra(&self, d: usize, extra: i64) -> (i64, i64) {
        let extra = if self.eligible.get(d).copied().unwrap_or(false) {
            extra
        } else {
            0
        };
        let count = self.counts.get(d).copied().unwrap_or(0) + extra;
        if extra == 0 || self.below_min_domains {
            return (count, self.min);
        }
        let min = self
            .counts
            .iter()
            .zip(self.eligible.iter())
            .enumerate()
            .filter(|(_, (_, e))| **e)
            .map(|(i, (c, _))| if i == d { count } else { *c })
            .min()
            .unwrap_or(0);
        (count, min)
    }
}

fn selector_of(
    term_selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> Option<LabelSelector> {
    let v = serde_json::to_value(term_selector?).ok()?;
    LabelSelector::from_object(&v).ok()
}

/// Pods matching `sel` in `namespaces`, per domain of `topo`.
fn domains_with(
    state: &State,
    namespaces: &[String],
    sel: &LabelSelector,
    topo: &Topology,
) -> Vec<i64> {
    let mut out = vec![0i64; topo.len()];
    let mut add = |node: &str, n: i64| {
        if let Some(d) = state.nodes.get(node).and_then(|ni| topo.domain(ni)) {
            out[d] += n;
        }
    };
    // One `key=value` requirement: answered from the label index.
    if let [crate::api::selectors::Requirement::Eq(k, v)] = sel.0.as_slice() {
        for ns in namespaces {
            for (node, n) in state.label_counts(ns, k, v).into_iter().flatten() {
                add(node, *n as i64);
            }
        }
        return out;
    }
    for ns in namespaces {
        for uid in state.by_namespace.get(ns).into_iter().flatten() {
            if let Some(p) = state.pods.get(uid)
                && sel.matches(&p.labels)
            {
                add(&p.node, 1);
            }
        }
    }
    out
}

/// A pod's required anti-affinity terms.
pub fn required_anti_terms(pod: &Pod) -> &[PodAffinityTerm] {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
}

fn term_namespaces(term: &PodAffinityTerm, own: &str) -> Vec<String> {
    match term.namespaces.as_deref() {
        Some(ns) if !ns.is_empty() => ns.to_vec(),
        _ => vec![own.to_string()],
    }
}

impl Candidate {
    pub fn new(pod: &Pod, state: &State) -> Candidate {
        let default_spec = Default::default();
        let spec = pod.spec.as_ref().unwrap_or(&default_spec);
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let default_affinity = Default::default();
        let affinity = spec.affinity.as_ref().unwrap_or(&default_affinity);
        let node_aff = affinity.node_affinity.clone().unwrap_or_default();
        let mut c = Candidate {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            priority: super::state::priority(pod),
            requests: pod_requests(pod),
            ports: host_ports(pod),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            required_terms: node_aff
                .required_during_scheduling_ignored_during_execution
                .map(|s| s.node_selector_terms),
            node_mask: None,
            preferred_terms: node_aff
                .preferred_during_scheduling_ignored_during_execution
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.weight, p.preference))
                .collect(),
            namespace: namespace.clone(),
            labels: labels.clone(),
            affinity: Vec::new(),
            anti_affinity: Vec::new(),
            anti_terms: Vec::new(),
            existing_anti: Vec::new(),
            preferred_affinity: Vec::new(),
            spread: Vec::new(),
            siblings: HashMap::new(),
        };
        if !c.node_selector.is_empty() || c.required_terms.is_some() {
            // The same for every replica of a workload: evaluated once per node, not per pod.
            let key = format!("{:?}|{:?}", c.node_selector, c.required_terms);
            c.node_mask = Some(state.node_mask(&key, |n| c.node_affinity_eval(n)));
        }
        let pod_aff = affinity.pod_affinity.clone().unwrap_or_default();
        for term in pod_aff
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            let Some(sel) = selector_of(term.label_selector.as_ref()) else {
                continue;
            };
            let nss = term_namespaces(term, &namespace);
            let topo = state.topology(&term.topology_key);
            let domains = domains_with(state, &nss, &sel, &topo);
            // The first pod of a group that matches its own affinity may go anywhere.
            let any =
                domains.iter().all(|n| *n == 0) && nss.contains(&namespace) && sel.matches(&labels);
            c.affinity.push((
                topo,
                if any {
                    None
                } else {
                    Some(domains.iter().map(|n| *n > 0).collect())
                },
            ));
        }
        for w in pod_aff
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            let Some(sel) = selector_of(w.pod_affinity_term.label_selector.as_ref()) else {
                continue;
            };
            let nss = term_namespaces(&w.pod_affinity_term, &namespace);
            let topo = state.topology(&w.pod_affinity_term.topology_key);
            let counts = domains_with(state, &nss, &sel, &topo);
            c.preferred_affinity.push((w.weight as i64, topo, counts));
        }
        let anti = affinity.pod_anti_affinity.clone().unwrap_or_default();
        for term in anti
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            let Some(sel) = selector_of(term.label_selector.as_ref()) else {
                continue;
            };
            let nss = term_namespaces(term, &namespace);
            let topo = state.topology(&term.topology_key);
            let domains = domains_with(state, &nss, &sel, &topo);
            c.anti_affinity
                .push((topo, domains.iter().map(|n| *n > 0).collect()));
            c.anti_terms.push((term.topology_key.clone(), sel, nss));
        }
        for w in anti
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            let Some(sel) = selector_of(w.pod_affinity_term.label_selector.as_ref()) else {
                continue;
            };
            let nss = term_namespaces(&w.pod_affinity_term, &namespace);
            let topo = state.topology(&w.pod_affinity_term.topology_key);
            let counts = domains_with(state, &nss, &sel, &topo);
            c.preferred_affinity
                .push((-(w.weight as i64), topo, counts));
        }
        // Existing pods that refuse to share a domain with pods like this one.
        for uid in &state.with_anti_affinity {
            let Some(p) = state.pods.get(uid) else {
                continue;
            };
            for term in required_anti_terms(&p.pod) {
                let Some(sel) = selector_of(term.label_selector.as_ref()) else {
                    continue;
                };
                if term_namespaces(term, &p.namespace).contains(&namespace)
                    && sel.matches(&labels)
                    && let Some(n) = state.nodes.get(&p.node)
                {
                    let topo = state.topology(&term.topology_key);
                    if let Some(d) = topo.domain(n) {
                        c.existing_anti.push((topo, d));
                    }
                }
            }
        }
        for tsc in spec.topology_spread_constraints.iter().flatten() {
            c.spread.push(c.spread_counts(state, tsc));
        }
        if let Some(owner) = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
        {
            c.siblings = state.owner_counts(&owner.uid);
        }
        c
    }

    fn spread_counts(&self, state: &State, tsc: &TopologySpreadConstraint) -> Spread {
        let sel = selector_of(tsc.label_selector.as_ref()).unwrap_or_default();
        let topo = state.topology(&tsc.topology_key);
        // Domains are those of nodes the pod could go to: by its node affinity (unless the
        // policy ignores it) and, with `nodeTaintsPolicy: Honor`, by its tolerations.
        let honor_affinity = tsc.node_affinity_policy.as_deref() != Some("Ignore");
        let honor_taints = tsc.node_taints_policy.as_deref() == Some("Honor");
        let key = format!(
            "{}|{}|{:?}|{:?}|{}",
            tsc.topology_key,
            honor_affinity,
            honor_affinity.then_some((&self.node_selector, &self.required_terms)),
            honor_taints.then_some(&self.tolerations),
            honor_taints
        );
        let cached = state.domain_cache.borrow().get(&key).cloned();
        let eligible = match cached {
            Some(d) => d,
            None => {
                let mut d = vec![false; topo.len()];
                for n in state.nodes.values() {
                    if honor_affinity && !self.node_affinity_ok(n) {
                        continue;
                    }
                    if honor_taints && self.untolerated_taint(n).is_some() {
                        continue;
                    }
                    if let Some(i) = topo.domain(n) {
                        d[i] = true;
                    }
                }
                let d = Arc::new(d);
                state.domain_cache.borrow_mut().insert(key, d.clone());
                d
            }
        };
        let mut counts = vec![0i64; topo.len()];
        let below_min_domains =
            (eligible.iter().filter(|e| **e).count() as i32) < tsc.min_domains.unwrap_or(1);
        if !sel.is_empty() {
            let found = domains_with(state, std::slice::from_ref(&self.namespace), &sel, &topo);
            for (i, n) in found.into_iter().enumerate() {
                if eligible.get(i).copied().unwrap_or(false) {
                    counts[i] = n;
                }
            }
        }
        let min = if below_min_domains {
            0
        } else {
            counts
                .iter()
                .zip(eligible.iter())
                .filter(|(_, e)| **e)
                .map(|(c, _)| *c)
                .min()
                .unwrap_or(0)
        };
        Spread {
            topo,
            max_skew: tsc.max_skew.max(1) as i64,
            hard: tsc.when_unsatisfiable == "DoNotSchedule",
            counts,
            min,
            selector: sel,
            eligible,
            below_min_domains,
        }
    }

    /// Whether the filters look beyond the node itself (other pods' labels and terms), so
    /// that removing pods from a node changes more than its free resources.
    pub fn depends_on_other_pods(&self) -> bool {
        !self.affinity.is_empty()
            || !self.anti_affinity.is_empty()
            || !self.existing_anti.is_empty()
            || self.spread.iter().any(|s| s.hard)
    }

    fn node_affinity_ok(&self, n: &NodeInfo) -> bool {
        match &self.node_mask {
            Some(mask) => match mask.get(n.slot) {
                Some(ok) => *ok,
                None => self.node_affinity_eval(n),
            },
            None => true,
        }
    }

    /// nodeSelector and required node affinity, evaluated on the node's labels.
    fn node_affinity_eval(&self, n: &NodeInfo) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| n.labels.get(k) == Some(v))
            && self
                .required_terms
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| term_matches(t, n)))
    }

    fn untolerated_taint<'n>(&self, n: &'n NodeInfo) -> Option<&'n Taint> {
        n.taints.iter().find(|taint| {
            (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                && !self.tolerations.iter().any(|t| tolerates(t, taint))
        })
    }

    /// Every filter; the first failure wins (as kube's filter order).
    pub fn filter(&self, n: &NodeInfo) -> Result<(), Reject> {
        if n.unschedulable
            && !self.tolerations.iter().any(|t| {
                tolerates(
                    t,
                    &Taint {
                        key: "node.kubernetes.io/unschedulable".into(),
                        effect: "NoSchedule".into(),
                        ..Default::default()
                    },
                )
            })
        {
            return Err(Reject::Unschedulable);
        }
        if !self.node_affinity_ok(n) {
            return Err(Reject::NodeAffinity);
        }
        if let Some(taint) = self.untolerated_taint(n) {
            return Err(Reject::Taint(
                taint.key.clone(),
                taint.value.clone().unwrap_or_default(),
            ));
        }
        // Pods nominated here by preemption, at least as important as this one, keep their
        // room (kube's addNominatedPods).
        let nominees: Vec<&Nominee> = n
            .nominated
            .iter()
            .filter(|p| p.priority >= self.priority && p.uid != self.uid)
            .collect();
        let mut with_nominated = None;
        let mut nominated_ports = Vec::new();
        for p in &nominees {
            with_nominated
                .get_or_insert_with(|| n.requested.clone())
                .add(&p.requests);
            nominated_ports.extend(p.ports.iter());
        }
        for p in &self.ports {
            let clash = |(proto, port, ip): &(String, i32, String)| {
                proto == &p.0 && *port == p.1 && (ip == &p.2 || ip == "0.0.0.0" || p.2 == "0.0.0.0")
            };
            if n.used_ports.keys().any(clash) || nominated_ports.iter().any(|q| clash(q)) {
                return Err(Reject::Ports);
            }
        }
        let (free, req) = (
            &n.allocatable,
            with_nominated.as_ref().unwrap_or(&n.requested),
        );
        if req.pods + 1 > free.pods {
            return Err(Reject::TooManyPods);
        }
        let r = &self.requests;
        if r.cpu_milli > 0 && req.cpu_milli + r.cpu_milli > free.cpu_milli {
            return Err(Reject::Insufficient("cpu".into()));
        }
        if r.memory > 0 && req.memory + r.memory > free.memory {
            return Err(Reject::Insufficient("memory".into()));
        }
        if r.ephemeral > 0 && req.ephemeral + r.ephemeral > free.ephemeral {
            return Err(Reject::Insufficient("ephemeral-storage".into()));
        }
        for (k, v) in &r.scalar {
            if *v > 0
                && req.scalar.get(k).copied().unwrap_or(0) + v
                    > free.scalar.get(k).copied().unwrap_or(0)
            {
                return Err(Reject::Insufficient(k.clone()));
            }
        }
        for (topo, domains) in &self.affinity {
            let ok = match (topo.domain(n), domains) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(d), Some(ds)) => ds.get(d).copied().unwrap_or(false),
            };
            if !ok {
                return Err(Reject::PodAffinity);
            }
        }
        for (topo, domains) in &self.anti_affinity {
            if topo
                .domain(n)
                .is_some_and(|d| domains.get(d).copied().unwrap_or(false))
            {
                return Err(Reject::PodAntiAffinity);
            }
        }
        for (topo, domain) in &self.existing_anti {
            if topo.domain(n) == Some(*domain) {
                return Err(Reject::ExistingAntiAffinity);
            }
        }
        self.nominee_affinity(n, &nominees)?;
        for s in self.spread.iter().filter(|s| s.hard) {
            let Some(d) = s.topo.domain(n) else {
                return Err(Reject::SpreadMissingLabel);
            };
            let extra = if s.selector.is_empty() {
                0
            } else {
                nominees
                    .iter()
                    .filter(|p| {
                        p.pod.metadata.namespace.as_deref() == Some(self.namespace.as_str())
                            && s.selector
                                .matches(p.pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
                    })
                    .count() as i64
            };
            let (count, min) = s.with_extra(d, extra);
            if count + 1 - min > s.max_skew {
                return Err(Reject::Spread);
            }
        }
        Ok(())
    }

    /// Pods nominated to `n` count as if they ran there (kube's addNominatedPods): this pod's
    /// required anti-affinity must not match them, nor theirs this pod. (Their labels cannot
    /// satisfy this pod's affinity: kube also filters without them, and both must pass.)
    fn nominee_affinity(&self, n: &NodeInfo, nominees: &[&Nominee]) -> Result<(), Reject> {
        let none = BTreeMap::new();
        for p in nominees {
            let namespace = p.pod.metadata.namespace.as_deref().unwrap_or_default();
            let labels = p.pod.metadata.labels.as_ref().unwrap_or(&none);
            for (key, sel, nss) in &self.anti_terms {
                if n.labels.contains_key(key)
                    && nss.iter().any(|ns| ns == namespace)
                    && sel.matches(labels)
                {
                    return Err(Reject::PodAntiAffinity);
                }
            }
            for term in required_anti_terms(&p.pod) {
                let Some(sel) = selector_of(term.label_selector.as_ref()) else {
                    continue;
                };
                if n.labels.contains_key(&term.topology_key)
                    && term_namespaces(term, namespace).contains(&self.namespace)
                    && sel.matches(&self.labels)
                {
                    return Err(Reject::ExistingAntiAffinity);
                }
            }
        }
        Ok(())
    }

    /// Scores feasible nodes (0‥100 per plugin, weighted as the default profile), best first.
    pub fn score(&self, nodes: &[&NodeInfo]) -> Vec<i64> {
        let mut total = vec![0i64; nodes.len()];
        // NodeResourcesFit (least allocated) and BalancedAllocation: already 0‥100.
        let r = &self.requests;
        for (t, n) in total.iter_mut().zip(nodes) {
            let frac = |used: i64, alloc: i64| {
                if alloc <= 0 {
                    1.0
                } else {
                    ((used as f64) / (alloc as f64)).min(1.0)
                }
            };
            let cpu = frac(n.requested.cpu_milli + r.cpu_milli, n.allocatable.cpu_milli);
            let mem = frac(n.requested.memory + r.memory, n.allocatable.memory);
            let least = ((1.0 - cpu) * 50.0 + (1.0 - mem) * 50.0) as i64;
            let balanced = ((1.0 - (cpu - mem).abs() / 2.0) * 100.0) as i64;
            *t += least + balanced;
        }
        let mut add = |raw: Vec<i64>, weight: i64, higher_is_better: bool| {
            let (min, max) = (
                raw.iter().copied().min().unwrap_or(0),
                raw.iter().copied().max().unwrap_or(0),
            );
            for (t, v) in total.iter_mut().zip(raw) {
                let norm = if max == min {
                    100
                } else if higher_is_better {
                    (v - min) * 100 / (max - min)
                } else {
                    (max - v) * 100 / (max - min)
                };
                *t += norm * weight;
            }
        };
        if !self.preferred_terms.is_empty() {
            let raw = nodes
                .iter()
                .map(|n| {
                    self.preferred_terms
                        .iter()
                        .filter(|(_, t)| term_matches(t, n))
                        .map(|(w, _)| *w as i64)
                        .sum()
                })
                .collect();
            add(raw, 2, true);
        }
        let untolerated = |n: &NodeInfo| {
            n.taints
                .iter()
                .filter(|t| {
                    t.effect == "PreferNoSchedule"
                        && !self.tolerations.iter().any(|tol| tolerates(tol, t))
                })
                .count() as i64
        };
        if nodes.iter().any(|n| untolerated(n) > 0) {
            add(nodes.iter().map(|n| untolerated(n)).collect(), 3, false);
        }
        if !self.preferred_affinity.is_empty() {
            let raw = nodes
                .iter()
                .map(|n| {
                    self.preferred_affinity
                        .iter()
                        .map(|(w, topo, counts)| {
                            topo.domain(n)
                                .and_then(|d| counts.get(d))
                                .map(|c| w * c)
                                .unwrap_or(0)
                        })
                        .sum()
                })
                .collect();
            add(raw, 2, true);
        }
        let soft: Vec<&Spread> = self.spread.iter().filter(|s| !s.hard).collect();
        if !soft.is_empty() {
            let raw = nodes
                .iter()
                .map(|n| {
                    soft.iter()
                        .map(|s| {
                            s.topo
                                .domain(n)
                                .and_then(|d| s.counts.get(d))
                                .copied()
                                .unwrap_or(0)
                        })
                        .sum()
                })
                .collect();
            add(raw, 2, false);
        } else if self.spread.is_empty() && !self.siblings.is_empty() {
            // Default spreading: fewer replicas of the same controller on a node is better.
            add(
                nodes
                    .iter()
                    .map(|n| self.siblings.get(&n.name).copied().unwrap_or(0) as i64)
                    .collect(),
                2,
                false,
            );
        }
        total
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_counts_reasons_like_kube_scheduler() {
        let mut reasons = HashMap::new();
        reasons.insert(Reject::Insufficient("cpu".into()), 1);
        reasons.insert(
            Reject::Taint(
                "node-role.kubernetes.io/control-plane".into(),
                String::new(),
            ),
            2,
        );
        assert_eq!(
            unschedulable_message(3, &reasons),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }."
        );
    }
}
