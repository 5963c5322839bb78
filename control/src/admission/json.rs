//! Small read/write helpers over `serde_json::Value` objects in wire form.
//! Absent and `null` both mean "unset", matching Go's nil pointers and zero
//! values after decoding.

use serde_json::{Map, Value};

/// String field, `""` when unset.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// String field that distinguishes unset (`None`) from empty (`Some("")`).
pub(crate) fn opt_s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Integer field, 0 when unset.
pub(crate) fn i(v: &Value, key: &str) -> i64 {
    opt_i(v, key).unwrap_or(0)
}

/// Integer field, `None` when unset.
pub(crate) fn opt_i(v: &Value, key: &str) -> Option<i64> {
    v.get(key)
        .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

/// Boolean field, false when unset.
pub(crate) fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Boolean field, `None` when unset.
pub(crate) fn opt_b(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// Object (or any non-null) field, `None` when unset.
pub(crate) fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// Array field, empty when unset.
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Whether a field is present and not null (a non-nil Go pointer/slice/map).
pub(crate) fn has(v: &Value, key: &str) -> bool {
    obj(v, key).is_some()
}

/// Map field entries (in wire order), empty when unset.
pub(crate) fn entries<'a>(v: &'a Value, key: &str) -> Vec<(&'a String, &'a Value)> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// Number of entries of a map field (0 when unset).
pub(crate) fn map_len(v: &Value, key: &str) -> usize {
    v.get(key)
        .and_then(Value::as_object)
        .map(Map::len)
        .unwrap_or(0)
}

/// A map of strings (labels, selectors), in wire order.
pub(crate) fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Array of strings.
pub(crate) fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    arr(v, key).iter().filter_map(Value::as_str).collect()
}

/// `v[key]` as a mutable object, created (replacing null/absent) if needed.
/// Returns `None` only when `v` itself is not an object.
pub(crate) fn ensure_obj<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let m = v.as_object_mut()?;
    let slot = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// `v[key]` as a mutable value if present and non-null.
pub(crate) fn get_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    v.get_mut(key).filter(|x| !x.is_null())
}

/// Mutable array elements of `v[key]` (empty when unset).
pub(crate) fn arr_mut<'a>(v: &'a mut Value, key: &str) -> std::slice::IterMut<'a, Value> {
    match v.get_mut(key).and_then(Value::as_array_mut) {
        Some(a) => a.iter_mut(),
        None => [].iter_mut(),
    }
}

/// Whether a field counts as unset for Go defaulting: absent, null, or the
/// zero value of its type (`""`, `0`, `false`).
pub(crate) fn is_zero_or_unset(v: &Value, key: &str) -> bool {
    match v.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        Some(_) => false,
    }
}

/// Sets `v[key] = value` when `v[key]` is absent or null (a nil Go pointer).
pub(crate) fn default_ptr(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let unset = m.get(key).is_none_or(Value::is_null);
        if unset {
            m.insert(key.to_string(), value);
        }
    }
}

/// Sets `v[key] = value` when `v[key]` holds its type's zero value or is unset
/// (Go's `if x == "" { x = ... }` on non-pointer fields).
pub(crate) fn default_zero(v: &mut Value, key: &str, value: Value) {
    if is_zero_or_unset(v, key)
        && let Some(m) = v.as_object_mut()
    {
        m.insert(key.to_string(), value);
    }
}

/// `v[key]` as a mutable value, created as `{}` (replacing null/absent) if
/// needed. Returns `None` only when `v` itself is not an object.
pub(crate) fn ensure_val<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    ensure_obj(v, key)?;
    v.get_mut(key)
}
