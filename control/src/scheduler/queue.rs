//! The scheduling queue: active pods by priority then age, pods backing off after an error, and
//! unschedulable pods waiting for the cluster to change.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often even if nothing seems to change.
pub const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    priority: i32,
    seq: u64,
    uid: String,
}

impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        // Higher priority first, then older (smaller sequence) first.
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    /// Popped and being scheduled or bound.
    InFlight,
}

#[derive(Default)]
pub struct Queue {
    active: BinaryHeap<Entry>,
    backoff: BTreeMap<(Instant, u64), String>,
    place: HashMap<String, (Where, i32, u64)>,
    attempts: HashMap<String, u32>,
    seq: u64,
}

impl Queue {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A pod that needs scheduling (new, or changed while waiting).
    pub fn add(&mut self, uid: &str, priority: i32) {
        match self.place.get(uid).map(|p| p.0) {
            Some(Where::Active | Where::InFlight | Where::Backoff(_)) => {}
            Some(Where::Unschedulable(_)) | None => self.activate(uid, priority),
        }
    }

    fn activate(&mut self, uid: &str, priority: i32) {
        let seq = self.next_seq();
        self.place
            .insert(uid.to_string(), (Where::Active, priority, seq));
        self.active.push(Entry {
            priority,
            seq,
            uid: uid.to_string(),
        });
    }

    /// Back to the active queue at once, wherever it waited and whatever its backoff (the
    /// cluster changed for it alone: its preemption failed, or its nomination was taken).
    pub fn retry_now(&mut self, uid: &str, priority: i32) {
        self.remove(uid);
        self.activate(uid, priority);
    }

    pub fn remove(&mut self, uid: &str) {
        self.place.remove(uid);
        self.attempts.remove(uid);
    }

    /// The next pod to schedule, if any is ready.
    pub fn pop(&mut self) -> Option<String> {
        let now = Instant::now();
        while let Some((&(at, seq), _)) = self.backoff.iter().next() {
            if at > now {
                break;
            }
            if let Some(uid) = self.backoff.remove(&(at, seq))
                && let Some((Where::Backoff(t), prio, _)) = self.place.get(&uid).copied()
                && t == at
            {
                self.activate(&uid, prio);
            }
        }
        while let Some(e) = self.active.pop() {
            match self.place.get_mut(&e.uid) {
                Some(p) if p.0 == Where::Active && p.2 == e.seq => {
                    p.0 = Where::InFlight;
                    return Some(e.uid);
                }
                _ => continue, // stale entry
            }
        }
        None
    }

    pub fn has_ready(&self) -> bool {
        !self.active.is_empty()
            || self
                .backoff
                .keys()
                .next()
                .is_some_and(|(at, _)| *at <= Instant::now())
    }

    /// When the earliest backoff ends.
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.keys().next().map(|(at, _)| *at)
    }

    /// Scheduled and bound: forget it.
    pub fn done(&mut self, uid: &str) {
        self.remove(uid);
    }

    /// The attempt failed: unschedulable pods wait for a cluster change, errors back off.
    pub fn failed(&mut self, uid: &str, unschedulable: bool) {
        let Some((_, prio, seq)) = self.place.get(uid).copied() else {
            return;
        };
        let n = self.attempts.entry(uid.to_string()).or_default();
        *n += 1;
        let backoff = INITIAL_BACKOFF
            .saturating_mul(1 << (*n - 1).min(4))
            .min(MAX_BACKOFF);
        let now = Instant::now();
        if unschedulable {
            self.place
                .insert(uid.to_string(), (Where::Unschedulable(now), prio, seq));
        } else {
            let at = now + backoff;
            let s = self.next_seq();
            self.backoff.insert((at, s), uid.to_string());
            self.place
                .insert(uid.to_string(), (Where::Backoff(at), prio, seq));
        }
    }

    /// Something changed that may make unschedulable pods fit: retry them (after their backoff).
    pub fn cluster_changed(&mut self) {
        let waiting: Vec<(String, i32)> = self
            .place
            .iter()
            .filter(|(_, p)| matches!(p.0, Where::Unschedulable(_)))
            .map(|(u, p)| (u.clone(), p.1))
            .collect();
        for (uid, prio) in waiting {
            let n = self.attempts.get(&uid).copied().unwrap_or(1);
            let backoff = INITIAL_BACKOFF
                .saturating_mul(1 << n.saturating_sub(1).min(4))
                .min(MAX_BACKOFF);
            let at = Instant::now() + backoff / 2;
            let s = self.next_seq();
            self.backoff.insert((at, s), uid.clone());
            self.place.insert(uid, (Where::Backoff(at), prio, s));
        }
    }

    /// Unschedulable pods that waited too long get another try regardless.
    pub fn flush_unschedulable(&mut self) {
        let now = Instant::now();
        let due: Vec<(String, i32)> = self
            .place
            .iter()
            .filter(|(_, p)| matches!(p.0, Where::Unschedulable(since) if now.duration_since(since) >= UNSCHEDULABLE_FLUSH))
            .map(|(u, p)| (u.clone(), p.1))
            .collect();
        for (uid, prio) in due {
            self.activate(&uid, prio);
        }
    }

    pub fn len(&self) -> usize {
        self.place.len()
    }

    pub fn is_empty(&self) -> bool {
        self.place.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_then_age() {
        let mut q = Queue::default();
        q.add("a", 0);
        q.add("b", 10);
        q.add("c", 0);
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop().as_deref(), Some("c"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_cluster_change() {
        let mut q = Queue::default();
        q.add("a", 0);
        assert_eq!(q.pop().as_deref(), Some("a"));
        q.failed("a", true);
        assert_eq!(q.pop(), None);
        q.add("a", 0); // the pod changed
        assert_eq!(q.pop().as_deref(), Some("a"));
        q.failed("a", false);
        assert!(!q.has_ready(), "errors back off");
        assert!(q.next_backoff().is_some());
        q.remove("a");
        assert!(q.is_empty());
    }
}
