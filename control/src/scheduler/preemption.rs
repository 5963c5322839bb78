//! PostFilter: kube-scheduler's DefaultPreemption. When a pod fits nowhere, find nodes where
//! removing pods of lower priority lets it pass every filter, keep the fewest and least
//! important such pods as victims (sparing those a PodDisruptionBudget protects where
//! possible), and pick the node whose victims hurt least.

use super::plugins::{Candidate, Reject, unschedulable_message};
use super::state::{PodRec, State, priority};
use crate::api::selectors::LabelSelector;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use std::cmp::{Ordering, Reverse};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// `MinCandidateNodesPercentage` and `MinCandidateNodesAbsolute` of DefaultPreemptionArgs.
const MIN_CANDIDATE_PERCENT: usize = 10;
const MIN_CANDIDATES: usize = 100;

/// What preemption needs of a PodDisruptionBudget.
#[derive(Debug, Clone)]
pub struct Budget {
    pub namespace: String,
    selector: LabelSelector,
    allowed: i32,
    /// Pods the API server already counted as disrupted (evictions in flight).
    disrupted: HashSet<String>,
}

impl Budget {
    pub fn from_pdb(pdb: &PodDisruptionBudget) -> Option<Budget> {
        let sel = pdb.spec.as_ref()?.selector.as_ref()?;
        let selector = LabelSelector::from_object(&serde_json::to_value(sel).ok()?).ok()?;
        let status = pdb.status.as_ref();
        Some(Budget {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector,
            allowed: status.and_then(|s| s.disruptions_allowed).unwrap_or(0),
            disrupted: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        })
    }
}

/// One node where preemption would let the pod in.
#[derive(Debug, Clone)]
pub struct Victims {
    pub node: String,
    /// Most important first.
    pub pods: Vec<Arc<Pod>>,
    pub pdb_violations: usize,
}

/// Why preemption did not nominate a node, worded for the `preemption: …` part of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPreemption {
    /// Not eligible: keep any nomination the pod has.
    NotEligible(String),
    /// No node would do: the nomination, if any, is cleared.
    NoCandidates(String),
}

impl NoPreemption {
    pub fn message(&self) -> &str {
        match self {
            NoPreemption::NotEligible(m) | NoPreemption::NoCandidates(m) => m,
        }
    }
}

/// `GetPodStartTime`: pods not started yet count as starting now (the latest).
fn start_time(pod: &Pod) -> Timestamp {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::MAX)
}

/// `MoreImportantPod` as an ordering: higher priority, then earlier start, comes first.
fn importance(a: &Pod, b: &Pod) -> Ordering {
    priority(b)
        .cmp(&priority(a))
        .then_with(|| start_time(a).cmp(&start_time(b)))
}

/// `PodEligibleToPreemptOthers`.
pub fn eligible(pod: &Pod, nominated: Option<&str>, state: &State) -> Result<(), NoPreemption> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err(NoPreemption::NotEligible(
            "not eligible due to preemptionPolicy=Never.".into(),
        ));
    }
    // Victims chosen earlier are still going away: wait for them rather than pick more.
    if let Some(node) = nominated.and_then(|n| state.nodes.get(n)) {
        let p = priority(pod);
        let waiting = node
            .pods
            .iter()
            .filter_map(|u| state.pods.get(u))
            .any(|v| v.priority < p && v.preempted);
        if waiting {
            return Err(NoPreemption::NotEligible(
                "not eligible due to a terminating pod on the nominated node.".into(),
            ));
        }
    }
    Ok(())
}

/// Whether `pod` passes every filter on `node` as the state is now.
fn fits(
    pod: &Pod,
    base: &Candidate,
    rebuild: bool,
    state: &State,
    node: &str,
) -> Result<(), Reject> {
    let Some(n) = state.nodes.get(node) else {
        return Err(Reject::PreemptionNotHelpful);
    };
    if rebuild {
        Candidate::new(pod, state).filter(n)
    } else {
        base.filter(n)
    }
}

/// `filterPodsWithPDBViolation`: victims whose removal would exceed a budget, and the rest.
fn split_by_budget(pods: Vec<PodRec>, budgets: &[Budget]) -> (Vec<PodRec>, Vec<PodRec>) {
    let mut allowed: Vec<i32> = budgets.iter().map(|b| b.allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        if !p.labels.is_empty() {
            for (i, b) in budgets.iter().enumerate() {
                // An empty selector matches nothing here, as upstream has it.
                if b.namespace != p.namespace
                    || b.selector.is_empty()
                    || !b.selector.matches(&p.labels)
                {
                    continue;
                }
                let name = p.pod.metadata.name.as_deref().unwrap_or_default();
                if b.disrupted.contains(name) {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(p);
        } else {
            fine.push(p);
        }
    }
    (violating, fine)
}

/// `SelectVictimsOnNode`: remove every lower-priority pod; if the pod then fits, put back as
/// many as possible, most important first (budget-protected ones before the others). The
/// state is left as it was found.
pub fn select_victims(
    pod: &Pod,
    base: &Candidate,
    state: &mut State,
    node: &str,
    budgets: &[Budget],
) -> Result<Victims, Reject> {
    let p = priority(pod);
    let lower: Vec<String> = match state.nodes.get(node) {
        Some(n) => n
            .pods
            .iter()
            .filter(|u| state.pods.get(*u).is_some_and(|r| r.priority < p))
            .cloned()
            .collect(),
        None => return Err(Reject::PreemptionNotHelpful),
    };
    if lower.is_empty() {
        return Err(Reject::NoVictims);
    }
    let rebuild = base.depends_on_other_pods();
    let mut removed: Vec<PodRec> = lower.iter().filter_map(|u| state.remove_pod(u)).collect();
    if let Err(r) = fits(pod, base, rebuild, state, node) {
        for rec in removed {
            state.insert(rec);
        }
        return Err(r);
    }
    removed.sort_by(|a, b| importance(&a.pod, &b.pod));
    let (violating, fine) = split_by_budget(removed, budgets);
    let mut victims: Vec<(PodRec, bool)> = Vec::new();
    for (rec, violates) in violating
        .into_iter()
        .map(|r| (r, true))
        .chain(fine.into_iter().map(|r| (r, false)))
    {
        let id = rec.uid.clone();
        state.insert(rec);
        if fits(pod, base, rebuild, state, node).is_err()
            && let Some(rec) = state.remove_pod(&id)
        {
            victims.push((rec, violates));
        }
    }
    let pdb_violations = victims.iter().filter(|(_, v)| *v).count();
    let mut pods: Vec<Arc<Pod>> = victims.iter().map(|(r, _)| r.pod.clone()).collect();
    for (rec, _) in victims {
        state.insert(rec);
    }
    pods.sort_by(|a, b| importance(a, b));
    Ok(Victims {
        node: node.to_string(),
        pods,
        pdb_violations,
    })
}

/// `pickOneNodeForPreemption`: fewest budget violations, then the lowest most-important
/// victim, then the smallest sum of priorities, then the fewest victims, then the node whose
/// most important victims started last; the first of any remaining tie.
pub fn pick(candidates: Vec<Victims>) -> Option<Victims> {
    let key = |v: &Victims| {
        let top = v.pods.first().map(|p| priority(p)).unwrap_or(i32::MIN);
        // Offset so that every term is positive and more victims always weigh more.
        let sum: i64 = v
            .pods
            .iter()
            .map(|p| i64::from(priority(p)) + i64::from(i32::MAX) + 1)
            .sum();
        let earliest_top = v
            .pods
            .iter()
            .filter(|p| priority(p) == top)
            .map(|p| start_time(p))
            .min()
            .unwrap_or(Timestamp::MAX);
        (
            v.pdb_violations,
            top,
            sum,
            v.pods.len(),
            Reverse(earliest_top),
        )
    };
    // min_by_key keeps the first of equal keys.
    candidates.into_iter().min_by_key(key)
}

/// The dry run over the nodes the filters rejected (`rejects`: node → why), starting at
/// `offset`. `total` is the cluster's node count, for the message.
pub fn find(
    pod: &Pod,
    state: &mut State,
    rejects: &[(String, Reject)],
    total: usize,
    budgets: &[Budget],
    offset: usize,
) -> Result<Victims, NoPreemption> {
    let base = Candidate::new(pod, state);
    let mut statuses: HashMap<Reject, usize> = HashMap::new();
    let potential: Vec<&String> = rejects
        .iter()
        .filter_map(|(n, r)| {
            if r.unresolvable() {
                *statuses.entry(Reject::PreemptionNotHelpful).or_default() += 1;
                None
            } else {
                Some(n)
            }
        })
        .collect();
    let p = priority(pod);
    if !potential.is_empty() && !state.any_below(p) {
        // Nothing of lower priority anywhere: no node can have victims.
        *statuses.entry(Reject::NoVictims).or_default() += potential.len();
    } else if !potential.is_empty() {
        let wanted = (potential.len() * MIN_CANDIDATE_PERCENT / 100)
            .max(MIN_CANDIDATES)
            .min(potential.len());
        let mut found = Vec::new();
        let mut clean = 0;
        for i in 0..potential.len() {
            let node = potential[(offset + i) % potential.len()];
            match select_victims(pod, &base, state, node, budgets) {
                Ok(v) => {
                    if v.pdb_violations == 0 {
                        clean += 1;
                    }
                    found.push(v);
                    if clean > 0 && found.len() >= wanted {
                        break;
                    }
                }
                Err(r) => *statuses.entry(r).or_default() += 1,
            }
        }
        if let Some(best) = pick(found) {
            return Ok(best);
        }
    }
    Err(NoPreemption::NoCandidates(unschedulable_message(
        total, &statuses,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    fn node(name: &str, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}),
            )
            .expect("node"),
        )
    }

    fn pod(
        name: &str,
        prio: i32,
        cpu: &str,
        labels: serde_json::Value,
        start: Option<&str>,
    ) -> Arc<Pod> {
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": {"priority": prio, "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu}}}]}});
        if let Some(s) = start {
            p["status"] = json!({"startTime": s});
        }
        Arc::new(serde_json::from_value(p).expect("pod"))
    }

    fn names(v: &Victims) -> Vec<String> {
        v.pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    fn cluster() -> State {
        let mut s = State::default();
        s.upsert_node(node("n1", "4"));
        s
    }

    /// A pod with extra spec fields (affinity, spread).
    fn pod_with(name: &str, prio: i32, labels: serde_json::Value, spec: serde_json::Value) -> Pod {
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": {"priority": prio, "containers": [{"name": "c", "image": "i"}]}});
        if let (Some(to), Some(from)) = (p["spec"].as_object_mut(), spec.as_object()) {
            to.extend(from.clone());
        }
        serde_json::from_value(p).expect("pod")
    }

    fn anti(app: &str) -> serde_json::Value {
        json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": app}}}]}}})
    }

    #[test]
    fn pods_nominated_to_a_node_count_for_anti_affinity_and_spread() {
        let mut s = cluster();
        s.upsert_node(node("n2", "4"));
        let filter = |s: &State, p: &Pod, node: &str| Candidate::new(p, s).filter(&s.nodes[node]);

        // A db pod waits for room on n1 (priority 100).
        s.nominate(&pod_with("db", 100, json!({"app": "db"}), json!({})), "n1");
        // This pod refuses to share a node with db pods: not n1.
        let web = pod_with("web", 50, json!({"app": "web"}), anti("db"));
        assert_eq!(filter(&s, &web, "n1"), Err(Reject::PodAntiAffinity));
        assert_eq!(filter(&s, &web, "n2"), Ok(()));
        // A more important pod does not make room for a less important nominee.
        let vip = pod_with("vip", 200, json!({"app": "web"}), anti("db"));
        assert_eq!(filter(&s, &vip, "n1"), Ok(()));

        // A nominee that refuses web pods keeps them off its node.
        s.nominate(
            &pod_with("cache", 100, json!({"app": "cache"}), anti("web")),
            "n2",
        );
        let plain = pod_with("web2", 50, json!({"app": "web"}), json!({}));
        assert_eq!(filter(&s, &plain, "n2"), Err(Reject::ExistingAntiAffinity));
        assert_eq!(filter(&s, &plain, "n1"), Ok(()));

        // Spread: the db nominee counts on n1, so a second db pod (max skew 1) goes to n2.
        let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "db"}}}]});
        let db2 = pod_with("db2", 50, json!({"app": "db"}), spread);
        assert_eq!(filter(&s, &db2, "n1"), Err(Reject::Spread));
        assert_eq!(filter(&s, &db2, "n2"), Ok(()));
        // Once the nominee is gone (bound elsewhere, or deleted), n1 is open again.
        s.unnominate("db");
        assert_eq!(filter(&s, &db2, "n1"), Ok(()));
        assert_eq!(filter(&s, &web, "n1"), Ok(()));
    }

    #[test]
    fn the_fewest_least_important_pods_go() {
        let mut s = cluster();
        // 4 CPUs full: 1 + 1 at priority 10, 1 + 1 at priority 5 (one started earlier).
        s.add_pod(pod("a", 10, "1", json!({}), None), "n1");
        s.add_pod(pod("b", 10, "1", json!({}), None), "n1");
        s.add_pod(
            pod("c", 5, "1", json!({}), Some("2026-01-01T00:00:00Z")),
            "n1",
        );
        s.add_pod(
            pod("d", 5, "1", json!({}), Some("2026-01-02T00:00:00Z")),
            "n1",
        );
        let before = s.nodes["n1"].requested.clone();
        let incoming = pod("hi", 100, "2", json!({}), None);
        let base = Candidate::new(&incoming, &s);
        let v = select_victims(&incoming, &base, &mut s, "n1", &[]).expect("victims");
        let mut got = names(&v);
        got.sort();
        assert_eq!(got, vec!["c", "d"], "the two priority-5 pods make room");
        assert_eq!(
            s.nodes["n1"].requested, before,
            "the what-if leaves the state alone"
        );
        // One CPU is enough: the later-started of the two lowest goes.
        let one = pod("mid", 100, "1", json!({}), None);
        let base = Candidate::new(&one, &s);
        let v = select_victims(&one, &base, &mut s, "n1", &[]).expect("victims");
        assert_eq!(names(&v), vec!["d"]);
    }

    #[test]
    fn equal_or_higher_priority_is_never_a_victim() {
        let mut s = cluster();
        s.add_pod(pod("a", 100, "2", json!({}), None), "n1");
        s.add_pod(pod("b", 50, "2", json!({}), None), "n1");
        let incoming = pod("same", 100, "3", json!({}), None);
        let base = Candidate::new(&incoming, &s);
        // Removing b frees only 2 CPUs: not enough, and a is as important as the preemptor.
        assert_eq!(
            select_victims(&incoming, &base, &mut s, "n1", &[]).err(),
            Some(Reject::Insufficient("cpu".into()))
        );
        let low = pod("low", 50, "1", json!({}), None);
        let base = Candidate::new(&low, &s);
        assert_eq!(
            select_victims(&low, &base, &mut s, "n1", &[]).err(),
            Some(Reject::NoVictims)
        );
    }

    #[test]
    fn budgets_spare_protected_pods_when_others_will_do() {
        let mut s = cluster();
        s.add_pod(pod("db", 1, "2", json!({"app": "db"}), None), "n1");
        s.add_pod(pod("web", 5, "2", json!({"app": "web"}), None), "n1");
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "db"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}}))
        .expect("pdb");
        let budgets = vec![Budget::from_pdb(&pdb).expect("budget")];
        let incoming = pod("hi", 100, "2", json!({}), None);
        let base = Candidate::new(&incoming, &s);
        let v = select_victims(&incoming, &base, &mut s, "n1", &budgets).expect("victims");
        assert_eq!(
            names(&v),
            vec!["web"],
            "the budget keeps db although it is lower"
        );
        assert_eq!(v.pdb_violations, 0);
        // When only the protected pod would do, it goes, counted as a violation.
        let big = pod("big", 100, "4", json!({}), None);
        let base = Candidate::new(&big, &s);
        let v = select_victims(&big, &base, &mut s, "n1", &budgets).expect("victims");
        assert_eq!(v.pdb_violations, 1);
    }

    #[test]
    fn the_node_whose_victims_hurt_least_is_picked() {
        let v = |node: &str, pdb: usize, pods: Vec<Arc<Pod>>| Victims {
            node: node.into(),
            pods,
            pdb_violations: pdb,
        };
        let p = |n: &str, prio: i32| pod(n, prio, "1", json!({}), None);
        // A budget violation loses against anything.
        let best = pick(vec![
            v("n1", 1, vec![p("a", 1)]),
            v("n2", 0, vec![p("b", 50), p("c", 40)]),
        ]);
        assert_eq!(best.map(|b| b.node), Some("n2".into()));
        // Then the lower most-important victim, then fewer victims.
        let best = pick(vec![
            v("n1", 0, vec![p("a", 50)]),
            v("n2", 0, vec![p("b", 10), p("c", 10)]),
            v("n3", 0, vec![p("d", 10)]),
        ]);
        assert_eq!(best.map(|b| b.node), Some("n3".into()));
    }

    #[test]
    fn never_and_waiting_preemptors_are_not_eligible() {
        let mut s = cluster();
        let mut never = (*pod("n", 100, "1", json!({}), None)).clone();
        if let Some(spec) = never.spec.as_mut() {
            spec.preemption_policy = Some("Never".into());
        }
        assert!(matches!(
            eligible(&never, None, &s),
            Err(NoPreemption::NotEligible(_))
        ));
        s.add_pod(pod("victim", 1, "1", json!({}), None), "n1");
        let hi = pod("hi", 100, "1", json!({}), None);
        assert!(eligible(&hi, Some("n1"), &s).is_ok());
        if let Some(r) = s.pods.get_mut("victim") {
            r.preempted = true;
        }
        assert!(eligible(&hi, Some("n1"), &s).is_err());
        assert!(eligible(&hi, None, &s).is_ok());
    }

    #[test]
    fn no_lower_priority_anywhere_says_so() {
        let mut s = cluster();
        s.upsert_node(node("n2", "1"));
        s.add_pod(pod("a", 100, "4", json!({}), None), "n1");
        let incoming = pod("b", 100, "2", json!({}), None);
        let rejects = vec![
            ("n1".to_string(), Reject::Insufficient("cpu".into())),
            ("n2".to_string(), Reject::NodeAffinity),
        ];
        let e = find(&incoming, &mut s, &rejects, 2, &[], 0).expect_err("nothing to preempt");
        assert_eq!(
            e,
            NoPreemption::NoCandidates(
                "0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.".into()
            )
        );
    }
}
