//! Event recording as Kubernetes components do it (events.k8s.io/v1, which the API serves as
//! core/v1 too): a new Event per distinct message, and a repeat of the same message about the
//! same object within a few minutes counted in the first one's `series`.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Repeats within this window become a series (kube's event cache TTL).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// How often expired entries are swept out of the cache: sweeping on every event made a burst
/// of N events cost N² (a 1,000-pod ReplicaSet records one per pod).
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    regarding: (String, String, String, String),
    type_: &'static str,
    reason: String,
    action: String,
    note: String,
}

/// The series cache: what was recorded recently, and when it was last swept.
struct Seen {
    recorded: HashMap<Key, Recorded>,
    swept: Instant,
}

impl Seen {
    /// Counts a repeat of `key` if it was recorded within the window.
    fn repeat(&mut self, key: &Key, now: Instant) -> Option<(String, String, i32)> {
        if now.duration_since(self.swept) >= SWEEP_EVERY {
            self.recorded
                .retain(|_, r| now.duration_since(r.last) < SERIES_WINDOW);
            self.swept = now;
        }
        let r = self
            .recorded
            .get_mut(key)
            .filter(|r| now.duration_since(r.last) < SERIES_WINDOW)?;
        r.count += 1;
        r.last = now;
        Some((r.namespace.clone(), r.name.clone(), r.count))
    }
}

struct Recorded {
    namespace: String,
    name: String,
    count: i32,
    last: Instant,
}

/// Records events; failures to record are logged, not fatal.
#[derive(Clone)]
pub struct Events {
    client: kube::Client,
    controller: String,
    instance: String,
    seen: Arc<Mutex<Seen>>,
}

fn micro_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl Events {
    pub fn new(client: kube::Client, component: &str, instance: &str) -> Events {
        Events {
            client,
            controller: component.to_string(),
            instance: instance.to_string(),
            seen: Arc::new(Mutex::new(Seen {
                recorded: HashMap::new(),
                swept: Instant::now(),
            })),
        }
    }

    pub async fn normal(
        &self,
        regarding: &ObjectReference,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish("Normal", regarding, None, reason, action, note)
            .await;
    }

    pub async fn warning(
        &self,
        regarding: &ObjectReference,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish("Warning", regarding, None, reason, action, note)
            .await;
    }

    /// An event about `regarding` that also names a `related` object (the pod a controller made).
    pub async fn related(
        &self,
        type_: &'static str,
        regarding: &ObjectReference,
        related: &ObjectReference,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(type_, regarding, Some(related), reason, action, note)
            .await;
    }

    async fn publish(
        &self,
        type_: &'static str,
        regarding: &ObjectReference,
        related: Option<&ObjectReference>,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let namespace = regarding
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = Key {
            regarding: (
                regarding.kind.clone().unwrap_or_default(),
                namespace.clone(),
                regarding.name.clone().unwrap_or_default(),
                regarding.uid.clone().unwrap_or_default(),
            ),
            type_,
            reason: reason.to_string(),
            action: action.to_string(),
            note: note.clone(),
        };
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &namespace);
        let repeat = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .repeat(&key, Instant::now());
        if let Some((ns, name, count)) = repeat {
            let api: Api<k8s_openapi::api::events::v1::Event> =
                Api::namespaced(self.client.clone(), &ns);
            let patch = json!({"series": {"count": count, "lastObservedTime": micro_now()}});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                // Gone (expired or deleted): record it afresh.
                Err(e) => {
                    tracing::debug!(event = %name, error = %e, "updating an event series failed")
                }
            }
        }
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or("event"),
            nanos
        );
        let mut ev = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "eventTime": micro_now(),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "regarding": regarding,
            "note": note,
            "type": type_,
        });
        if let Some(r) = related {
            ev["related"] = json!(r);
        }
        let ev: k8s_openapi::api::events::v1::Event = match serde_json::from_value(ev) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "building an event failed");
                return;
            }
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.recorded.insert(
                    key,
                    Recorded {
                        namespace,
                        name,
                        count: 1,
                        last: Instant::now(),
                    },
                );
            }
            Err(e) => tracing::debug!(reason, error = %e, "recording an event failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(note: &str) -> Key {
        Key {
            regarding: ("Pod".into(), "default".into(), "p".into(), "u".into()),
            type_: "Normal",
            reason: "Scheduled".into(),
            action: "Binding".into(),
            note: note.into(),
        }
    }

    fn seen_with(k: Key, last: Instant) -> Seen {
        let mut recorded = HashMap::new();
        recorded.insert(
            k,
            Recorded {
                namespace: "default".into(),
                name: "p.1".into(),
                count: 1,
                last,
            },
        );
        Seen {
            recorded,
            swept: last,
        }
    }

    #[test]
    fn repeats_within_the_window_count_in_the_series() {
        let t0 = Instant::now();
        let mut seen = seen_with(key("a"), t0);
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(
            seen.repeat(&key("a"), t1),
            Some(("default".into(), "p.1".into(), 2))
        );
        assert_eq!(seen.repeat(&key("b"), t1), None);
        // The repeat moved the window on.
        assert!(seen.repeat(&key("a"), t1 + SERIES_WINDOW / 2).is_some());
    }

    #[test]
    fn an_expired_entry_is_not_a_repeat_even_before_the_sweep() {
        let t0 = Instant::now();
        let mut seen = seen_with(key("a"), t0);
        // Swept just now, so the entry is still in the map, but past its window.
        seen.swept = t0 + SERIES_WINDOW;
        assert_eq!(
            seen.repeat(&key("a"), t0 + SERIES_WINDOW + Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn sweeps_drop_expired_entries_only_now_and_then() {
        let t0 = Instant::now();
        let mut seen = seen_with(key("a"), t0);
        let late = t0 + SERIES_WINDOW + SWEEP_EVERY;
        assert_eq!(seen.repeat(&key("b"), late), None);
        assert!(seen.recorded.is_empty());
        assert_eq!(seen.swept, late);
    }
}
