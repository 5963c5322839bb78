//! Kinds served in two shapes from one stored form: `events.k8s.io/v1` Events are stored as
//! `core/v1` Events (as Kubernetes stores them), so `kubectl get events` shows what controllers
//! record through either API.

use super::resources::Resource;
use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core/v1 field)
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// Whether objects of `r` have a different stored shape.
pub fn converts(r: &Resource) -> bool {
    r.group == "events.k8s.io" && r.kind == "Event"
}

fn rename(obj: Value, api_version: &str, from_to: impl Fn(&str) -> Option<&'static str>) -> Value {
    let Value::Object(m) = obj else { return obj };
    let mut out = Map::new();
    for (k, v) in m {
        let key = match k.as_str() {
            "apiVersion" => {
                out.insert(k, Value::String(api_version.into()));
                continue;
            }
            other => from_to(other).map(String::from).unwrap_or(k),
        };
        out.insert(key, v);
    }
    Value::Object(out)
}

/// The stored form of an object of `r`.
pub fn to_stored(r: &Resource, obj: Value) -> Value {
    if !converts(r) {
        return obj;
    }
    rename(obj, "v1", |k| {
        EVENT_FIELDS.iter().find(|(e, _)| *e == k).map(|(_, c)| *c)
    })
}

/// The form `r` serves of a stored object.
pub fn from_stored(r: &Resource, obj: Value) -> Value {
    if !converts(r) {
        return obj;
    }
    rename(obj, "events.k8s.io/v1", |k| {
        EVENT_FIELDS.iter().find(|(_, c)| *c == k).map(|(e, _)| *e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::resources::find;
    use serde_json::json;

    #[test]
    fn events_round_trip_between_the_two_apis() {
        let r = find("events.k8s.io", "v1", "events").expect("events.k8s.io");
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "Scheduled", "reason": "Scheduled",
            "reportingController": "default-scheduler", "type": "Normal"});
        let stored = to_stored(r, ev.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "Scheduled");
        assert_eq!(stored["reportingComponent"], "default-scheduler");
        assert_eq!(from_stored(r, stored), ev);
        let core = find("", "v1", "events").expect("core events");
        assert_eq!(to_stored(core, ev.clone()), ev);
    }
}
