//! `metadata.managedFields` as a map from manager identifier to owned field set, like upstream's
//! decoded form: decoding and encoding entries, identifiers, and the cap on update entries.

use super::ManagedError;
use super::fieldpath::FieldSet;
use super::value::{go_quote, write_go_string};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";

/// Update entries beyond this many are merged, oldest first, into "ancient-changes".
const MAX_UPDATE_MANAGERS: usize = 10;

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: String,
    /// As stored (RFC 3339); absent when upstream would not have set one.
    pub time: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    pub fn applied(&self) -> bool {
        self.operation == APPLY
    }
}

/// How conflicts name a manager: `"kubectl"`, `"kube-controller-manager" using apps/v1`,
/// `"x" with subresource "status" using v1`.
pub(crate) fn describe(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = go_quote(manager);
    if !subresource.is_empty() {
        out = format!("{out} with subresource {}", go_quote(subresource));
    }
    if operation == UPDATE {
        out = format!("{out} using {api_version}");
    }
    out
}

/// Upstream's manager identifier: the entry's JSON without fields and time, and without the
/// apiVersion for appliers (so one applier keeps one entry across versions).
pub(crate) fn identifier(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut field = |name: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_go_string(name, &mut out);
        out.push(':');
        write_go_string(value, &mut out);
    };
    field("manager", manager);
    field("operation", operation);
    if operation != APPLY {
        field("apiVersion", api_version);
    }
    field("subresource", subresource);
    out.push('}');
    out
}

/// Entries by identifier.
pub(crate) type Managed = BTreeMap<String, Entry>;

pub(crate) fn id_of(e: &Entry) -> String {
    identifier(&e.manager, &e.operation, &e.api_version, &e.subresource)
}

/// Decodes `metadata.managedFields` (absent or null is empty), checking entries as upstream does.
pub(crate) fn decode(v: Option<&Value>) -> Result<Managed, ManagedError> {
    let mut out = Managed::new();
    let entries = match v {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(ManagedError::Entry(format!(
                "managedFields must be a list, got {other}"
            )));
        }
    };
    for (i, raw) in entries.iter().enumerate() {
        let Value::Object(e) = raw else {
            return Err(ManagedError::Entry(format!(
                "managed fields entry {i} is not an object"
            )));
        };
        let text = |k: &str| -> Result<String, ManagedError> {
            match e.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(ManagedError::Entry(format!(
                    "managed fields entry {i}: {k} must be a string, got {other}"
                ))),
            }
        };
        let operation = text("operation")?;
        if operation != APPLY && operation != UPDATE {
            return Err(ManagedError::Entry(
                "operation must be `Apply` or `Update`".into(),
            ));
        }
        let api_version = text("apiVersion")?;
        if api_version.is_empty() {
            return Err(ManagedError::Entry("apiVersion must not be empty".into()));
        }
        match text("fieldsType")?.as_str() {
            "FieldsV1" => {}
            "" => {
                return Err(ManagedError::Entry(format!(
                    "missing fieldsType in managed fields entry {i}"
                )));
            }
            other => {
                return Err(ManagedError::Entry(format!(
                    "invalid fieldsType {} in managed fields entry {i}",
                    go_quote(other)
                )));
            }
        }
        let set = FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null))?;
        let time = text("time")?;
        let entry = Entry {
            manager: text("manager")?,
            operation,
            api_version,
            subresource: text("subresource")?,
            time: (!time.is_empty()).then_some(time),
            set,
        };
        out.insert(id_of(&entry), entry);
    }
    Ok(out)
}

fn seconds(time: Option<&str>) -> i64 {
    time.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0, |t| t.as_second())
}

/// Encodes entries in upstream's order (operation, time, manager, apiVersion, subresource);
/// `None` when there are none (the field is then absent).
pub(crate) fn encode(managed: &Managed) -> Option<Value> {
    if managed.is_empty() {
        return None;
    }
    let mut entries: Vec<&Entry> = managed.values().collect();
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| seconds(p.time.as_deref()).cmp(&seconds(q.time.as_deref())))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    let out = entries
        .into_iter()
        .map(|e| {
            let mut m = Map::new();
            if !e.manager.is_empty() {
                m.insert("manager".into(), e.manager.clone().into());
            }
            m.insert("operation".into(), e.operation.clone().into());
            m.insert("apiVersion".into(), e.api_version.clone().into());
            if let Some(t) = &e.time {
                m.insert("time".into(), t.clone().into());
            }
            m.insert("fieldsType".into(), "FieldsV1".into());
            m.insert("fieldsV1".into(), e.set.to_fields_v1());
            if !e.subresource.is_empty() {
                m.insert("subresource".into(), e.subresource.clone().into());
            }
            Value::Object(m)
        })
        .collect();
    Some(Value::Array(out))
}

/// Whether a request's managedFields ask for a reset: an empty list, or one empty entry.
pub(crate) fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) if a.is_empty() => true,
        Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
            Value::Object(e) => e.values().all(|v| v.is_null() || v.as_str() == Some("")),
            _ => false,
        },
        _ => false,
    }
}

/// Merges the oldest update entries into one "ancient-changes" entry per apiVersion until at
/// most ten update entries remain.
pub(crate) fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<(i64, String)> = managed
        .iter()
        .filter(|(_, e)| !e.applied())
        .map(|(id, e)| (seconds(e.time.as_deref()), id.clone()))
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort();
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for (_, id) in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(entry) = managed.get(&id).cloned() else {
            continue;
        };
        let version = entry.api_version.clone();
        let bucket = identifier("ancient-changes", UPDATE, &version, "");
        match first_of_version.get(&version) {
            Some(first) => {
                if !managed.contains_key(&bucket)
                    && let Some(mut moved) = managed.remove(first)
                {
                    moved.manager = "ancient-changes".into();
                    moved.subresource.clear();
                    managed.insert(bucket.clone(), moved);
                }
                if id == bucket {
                    continue;
                }
                if let Some(b) = managed.get_mut(&bucket) {
                    b.set = entry.set.union(&b.set);
                    b.api_version = version;
                    b.time = entry.time.clone();
                }
                managed.remove(&id);
                length -= 1;
            }
            None => {
                first_of_version.insert(version, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_are_upstream_json() {
        assert_eq!(
            identifier("kubectl", APPLY, "apps/v1", ""),
            r#"{"manager":"kubectl","operation":"Apply"}"#
        );
        assert_eq!(
            identifier("kcm", UPDATE, "apps/v1", "status"),
            r#"{"manager":"kcm","operation":"Update","apiVersion":"apps/v1","subresource":"status"}"#
        );
        assert_eq!(
            describe("kcm", UPDATE, "apps/v1", "status"),
            r#""kcm" with subresource "status" using apps/v1"#
        );
        assert_eq!(describe("kubectl", APPLY, "apps/v1", ""), r#""kubectl""#);
    }

    #[test]
    fn decode_rejects_bad_entries() {
        let ok = json!([{"manager": "a", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]);
        assert_eq!(decode(Some(&ok)).unwrap().len(), 1);
        let bad_op = json!([{"manager": "a", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]);
        assert_eq!(
            decode(Some(&bad_op)).unwrap_err().to_string(),
            "operation must be `Apply` or `Update`"
        );
        let no_version = json!([{"manager": "a", "operation": "Apply", "fieldsType": "FieldsV1"}]);
        assert_eq!(
            decode(Some(&no_version)).unwrap_err().to_string(),
            "apiVersion must not be empty"
        );
        let no_type = json!([{"manager": "a", "operation": "Apply", "apiVersion": "v1"}]);
        assert_eq!(
            decode(Some(&no_type)).unwrap_err().to_string(),
            "missing fieldsType in managed fields entry 0"
        );
        let bad_type = json!([{"manager": "a", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"}]);
        assert_eq!(
            decode(Some(&bad_type)).unwrap_err().to_string(),
            r#"invalid fieldsType "FieldsV2" in managed fields entry 0"#
        );
    }

    #[test]
    fn reset_requests_are_recognised() {
        assert!(is_reset(Some(&json!([]))));
        assert!(is_reset(Some(&json!([{}]))));
        assert!(!is_reset(Some(&json!(null))));
        assert!(!is_reset(None));
        assert!(!is_reset(Some(&json!([{"manager": "a"}]))));
    }

    #[test]
    fn more_than_ten_update_entries_are_capped_into_ancient_changes() {
        let mut managed = Managed::new();
        for i in 0..12 {
            let e = Entry {
                manager: format!("m{i:02}"),
                operation: UPDATE.into(),
                api_version: "v1".into(),
                subresource: String::new(),
                time: Some(format!("2024-01-01T00:00:{i:02}Z")),
                set: FieldSet::from_field_paths(&[&["data", &format!("k{i}")]]),
            };
            managed.insert(id_of(&e), e);
        }
        cap_update_managers(&mut managed);
        assert_eq!(managed.len(), 10);
        let bucket = &managed[&identifier("ancient-changes", UPDATE, "v1", "")];
        assert_eq!(
            bucket.set.to_fields_v1(),
            json!({"f:data": {"f:k0": {}, "f:k1": {}, "f:k2": {}}})
        );
        assert_eq!(bucket.time.as_deref(), Some("2024-01-01T00:00:02Z"));
        assert!(!managed.contains_key(&identifier("m00", UPDATE, "v1", "")));
        assert!(managed.contains_key(&identifier("m03", UPDATE, "v1", "")));
    }
}
