//! Strategic merge patch: `PATCH` with `Content-Type: application/strategic-merge-patch+json`,
//! applied the way kube-apiserver applies it (apimachinery `pkg/util/strategicpatch`,
//! `StrategicMergePatch` → `mergeMap` / `mergeSlice`).
//!
//! How each field merges comes from the schema catalog: the property's
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`, read from the unresolved
//! property schema (where the extensions sit). Without a schema (unknown type or field) maps merge
//! like JSON merge patch and lists are replaced.
//!
//! Supported, as upstream:
//! - maps merge recursively; `null` deletes a key; `{"$patch": "replace"}` / `{"$patch": "delete"}`
//!   inside a map replace it by the rest of the patch map / empty it;
//! - lists whose strategy is `merge`: objects merge by the merge key, `{"$patch": "delete", <key>}`
//!   removes items, a `{"$patch": "replace"}` element replaces the list with the other elements,
//!   primitives are unioned; the resulting order follows upstream (patch order, interleaved with
//!   the server-only items by their live order);
//! - `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`, `$retainKeys`;
//! - every other list is replaced.
//!
//! Directives never reach the result: values that are not merged with something (new fields, new
//! list items, replacements) are cleaned of them.

use crate::schema::Catalog;
use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// A malformed patch. `path` is the field path of the offending value (`spec.containers[0]`,
/// with list indices counted in the patch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicPatchError {
    #[error("invalid JSON document: the {0} must be a JSON object")]
    NotAnObject(&'static str),
    #[error("{}: map does not contain declared merge key: {key}", show(.path))]
    MissingMergeKey { path: String, key: String },
    #[error("{}: expected an object (the list merges by key {key:?})", show(.path))]
    ExpectedObjectItem { path: String, key: String },
    #[error("{}: unknown patch type: {value}", show(.path))]
    UnknownPatchType { path: String, value: String },
    #[error("{}: merging lists cannot yet be specified in the patch", show(.path))]
    MergeDirectiveInList { path: String },
    #[error("{}: the $patch directive needs an object here, but the field is a {found}", show(.path))]
    DirectiveOnNonObject { path: String, found: &'static str },
    #[error("{}: invalid patch format of {directive}: {reason}", show(.path))]
    BadDirective {
        path: String,
        directive: &'static str,
        reason: String,
    },
    #[error("{}: field {field:?} is present in the patch but not in the $retainKeys list", show(.path))]
    NotInRetainKeys { path: String, field: String },
    #[error("{}: the order in the patch list doesn't match the $setElementOrder list", show(.path))]
    SetElementOrderMismatch { path: String },
    #[error("{}: list element types are not identical", show(.path))]
    MixedElementTypes { path: String },
    #[error("{}: lists of lists are not supported", show(.path))]
    ListOfLists { path: String },
    #[error("{}: cannot merge lists of objects without a merge key", show(.path))]
    NoMergeKey { path: String },
}

impl StrategicPatchError {
    /// The HTTP status kube-apiserver answers with (`interpretStrategicMergePatchError`): 400 for
    /// malformed documents and directives, 422 for lists of lists, and 500 for the errors upstream
    /// leaves uninterpreted (missing merge keys, unknown `$patch` values, order mismatches, …).
    pub fn upstream_status(&self) -> u16 {
        match self {
            Self::NotAnObject(_)
            | Self::BadDirective { .. }
            | Self::NotInRetainKeys { .. }
            | Self::DirectiveOnNonObject { .. } => 400,
            Self::ListOfLists { .. } => 422,
            _ => 500,
        }
    }
}

fn show(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

/// Applies a strategic merge patch to `original`. `schema` is the (unresolved) schema of the
/// top-level kind (`catalog.kind("apps", "v1", "Deployment")`), None for an unknown type.
pub fn apply(
    catalog: &Catalog,
    schema: Option<&Value>,
    original: &Value,
    patch: &Value,
) -> Result<Value, StrategicPatchError> {
    let Value::Object(original) = original else {
        return Err(StrategicPatchError::NotAnObject("original object"));
    };
    let Value::Object(patch) = patch else {
        return Err(StrategicPatchError::NotAnObject("patch"));
    };
    let merged = Merger { catalog }.merge_map(schema, original.clone(), patch, "")?;
    Ok(Value::Object(merged))
}

struct Merger<'c> {
    catalog: &'c Catalog,
}

/// What the schema says about one field.
struct Field<'c> {
    /// The field's schema, unresolved; None when unknown.
    schema: Option<&'c Value>,
    merge: bool,
    merge_key: Option<String>,
    /// Upstream's `replace` strategy (not modelled by `schema::Merge`).
    replace: bool,
}

impl<'c> Merger<'c> {
    fn field(&self, parent: Option<&'c Value>, name: &str) -> Field<'c> {
        let schema = parent.and_then(|p| {
            self.catalog
                .property(p, name)
                .or_else(|| self.catalog.map_values(p))
        });
        match schema {
            None => Field {
                schema: None,
                merge: false,
                merge_key: None,
                replace: false,
            },
            Some(s) => {
                let merge = self.catalog.merge_of(s);
                Field {
                    schema: Some(s),
                    merge: merge.patch_merge,
                    merge_key: merge.patch_merge_key,
                    replace: has_strategy(s, "replace"),
                }
            }
        }
    }

    fn items(&self, field: &Field<'c>) -> Option<&'c Value> {
        field.schema.and_then(|s| self.catalog.items(s))
    }

    /// Upstream `mergeMap`.
    fn merge_map(
        &self,
        schema: Option<&'c Value>,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, StrategicPatchError> {
        if let Some(directive) = patch.get(PATCH) {
            return match directive.as_str() {
                Some("replace") => clean_fields(patch, path),
                Some("delete") => Ok(Map::new()),
                _ => Err(unknown_patch_type(path, directive)),
            };
        }
        if let Some(keep) = patch.get(RETAIN_KEYS) {
            retain_keys(&mut original, patch, keep, path)?;
        }
        // Lists named by `$setElementOrder` are merged and ordered first, as upstream does.
        let ordered = self.merge_ordered_lists(schema, &mut original, patch, path)?;

        for (key, value) in patch {
            if is_directive_key(key) || ordered.contains(&key.as_str()) {
                continue;
            }
            if value.is_null() {
                original.shift_remove(key);
                continue;
            }
            let field_path = join(path, key);
            let current = original
                .get_mut(key)
                .map(std::mem::take)
                .filter(|v| !v.is_null());
            let next = match current {
                None => clean(value, &field_path)?,
                Some(current) => self.merge_value(schema, key, current, value, &field_path)?,
            };
            match next {
                Some(v) => {
                    original.insert(key.clone(), v);
                }
                None => {
                    original.shift_remove(key);
                }
            }
        }

        // Deletions from primitive lists run after the list's own patch (upstream leaves the
        // relative order to map iteration; with `$setElementOrder` it is merge-then-delete too).
        for (key, value) in patch {
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let name = directive_target(key, path)?;
                delete_from_primitive_list(&mut original, name, value, &join(path, key))?;
            }
        }
        Ok(original)
    }

    /// Merges one existing, non-null value with its (non-null) patch. None removes the field.
    fn merge_value(
        &self,
        parent: Option<&'c Value>,
        key: &str,
        current: Value,
        patch: &Value,
        path: &str,
    ) -> Result<Option<Value>, StrategicPatchError> {
        match (current, patch) {
            (Value::Object(current), Value::Object(patch)) => {
                let field = self.field(parent, key);
                if field.replace {
                    return Ok(clean_map(patch, path)?.map(Value::Object));
                }
                Ok(Some(Value::Object(self.merge_map(
                    field.schema,
                    current,
                    patch,
                    path,
                )?)))
            }
            (Value::Array(current), Value::Array(patch)) => {
                let field = self.field(parent, key);
                let merged = if field.merge {
                    self.merge_list(
                        self.items(&field),
                        current,
                        patch,
                        field.merge_key.as_deref(),
                        path,
                    )?
                } else {
                    clean_list(patch, path)?
                };
                Ok(Some(Value::Array(merged)))
            }
            (current, Value::Object(patch)) if patch.contains_key(PATCH) => {
                Err(StrategicPatchError::DirectiveOnNonObject {
                    path: path.to_string(),
                    found: kind_name(&current),
                })
            }
            // Scalars, and values whose type changes, are replaced by the patch.
            (_, patch) => clean(patch, path),
        }
    }

    /// Upstream `mergeSlice` for a list whose strategy is `merge`.
    fn merge_list(
        &self,
        item_schema: Option<&'c Value>,
        original: Vec<Value>,
        patch: &[Value],
        merge_key: Option<&str>,
        path: &str,
    ) -> Result<Vec<Value>, StrategicPatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        if element_kind(&original, patch, path)? != Kind::Object {
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch) {
                if !merged.iter().any(|m| json_eq(m, v)) {
                    merged.push(v.clone());
                }
            }
            return Ok(normalize_order(merged, patch, &original, |v| Some(v)));
        }
        let Some(key) = merge_key else {
            return Err(StrategicPatchError::NoMergeKey {
                path: path.to_string(),
            });
        };

        let mut base = original;
        let mut plain: Vec<(usize, &Map<String, Value>)> = Vec::new();
        let mut replace = false;
        for (i, item) in patch.iter().enumerate() {
            let Value::Object(m) = item else {
                return Err(StrategicPatchError::MixedElementTypes {
                    path: path.to_string(),
                });
            };
            let Some(directive) = m.get(PATCH) else {
                plain.push((i, m));
                continue;
            };
            let item_path = index(path, i);
            match directive.as_str() {
                Some("delete") => {
                    let value = m.get(key).ok_or_else(|| missing_key(&item_path, key))?;
                    base.retain(|o| !o.get(key).is_some_and(|v| json_eq(v, value)));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(StrategicPatchError::MergeDirectiveInList { path: item_path });
                }
                _ => return Err(unknown_patch_type(&item_path, directive)),
            }
        }

        if replace {
            let mut replaced = Vec::with_capacity(plain.len());
            for (i, m) in plain {
                let item_path = index(path, i);
                if !m.contains_key(key) {
                    return Err(missing_key(&item_path, key));
                }
                replaced.push(Value::Object(clean_fields(m, &item_path)?));
            }
            return Ok(replaced);
        }

        let server: Vec<Value> = base.iter().filter_map(|o| o.get(key).cloned()).collect();
        let mut merged = base;
        for (i, m) in &plain {
            let item_path = index(path, *i);
            let value = m.get(key).ok_or_else(|| missing_key(&item_path, key))?;
            match merged
                .iter()
                .position(|o| o.get(key).is_some_and(|v| json_eq(v, value)))
            {
                Some(pos) => {
                    let Value::Object(current) = std::mem::take(&mut merged[pos]) else {
                        return Err(StrategicPatchError::MixedElementTypes {
                            path: path.to_string(),
                        });
                    };
                    merged[pos] =
                        Value::Object(self.merge_map(item_schema, current, m, &item_path)?);
                }
                None => merged.push(Value::Object(clean_fields(m, &item_path)?)),
            }
        }
        // Upstream refuses to order a keyed list holding an item without the key.
        if merged.iter().any(|o| o.get(key).is_none()) {
            return Err(missing_key(path, key));
        }
        let order: Vec<Value> = plain
            .iter()
            .filter_map(|(_, m)| m.get(key).cloned())
            .collect();
        Ok(normalize_order(merged, &order, &server, |v| v.get(key)))
    }

    /// Upstream `mergePatchIntoOriginal`: merges every list that has a `$setElementOrder/<field>`
    /// and puts it in that order. Returns the fields it handled.
    fn merge_ordered_lists<'p>(
        &self,
        schema: Option<&'c Value>,
        original: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        path: &str,
    ) -> Result<Vec<&'p str>, StrategicPatchError> {
        let mut handled = Vec::new();
        for (key, order) in patch {
            if !key.starts_with(SET_ELEMENT_ORDER) {
                continue;
            }
            let name = directive_target(key, path)?;
            let directive_path = join(path, key);
            let bad = |reason: String| StrategicPatchError::BadDirective {
                path: directive_path.clone(),
                directive: SET_ELEMENT_ORDER,
                reason,
            };
            let Value::Array(order) = order else {
                return Err(bad(format!("expected a list, got a {}", kind_name(order))));
            };
            let patch_list = match patch.get(name) {
                None => None,
                // The list is being deleted; there is nothing left to order.
                Some(Value::Null) => continue,
                Some(Value::Array(list)) => Some(list.as_slice()),
                Some(other) => {
                    return Err(bad(format!(
                        "{name} in the patch is a {}, not a list",
                        kind_name(other)
                    )));
                }
            };
            let current = match original.get_mut(name).map(std::mem::take) {
                None | Some(Value::Null) => None,
                Some(Value::Array(list)) => Some(list),
                Some(other) => {
                    return Err(bad(format!(
                        "{name} is a {}, not a list",
                        kind_name(&other)
                    )));
                }
            };
            let field_path = join(path, name);
            let field = self.field(schema, name);
            let merge_key = field.merge_key.as_deref();
            if let Some(list) = patch_list {
                validate_order(list, order, merge_key, &field_path, &directive_path)?;
            }
            // Keyed only when the elements are objects (upstream decides by element kind).
            let first = current
                .iter()
                .flatten()
                .chain(patch_list.into_iter().flatten())
                .next();
            let keyed = merge_key.filter(|_| first.is_some_and(Value::is_object));
            let ident = |v: &Value| -> Option<Value> {
                match keyed {
                    Some(k) => v.get(k).cloned(),
                    None => Some(v.clone()),
                }
            };
            let server: Vec<Value> = current.iter().flatten().filter_map(ident).collect();

            let merged = match (current, patch_list) {
                (Some(current), None) => current,
                (None, Some(list)) => clean_list(list, &field_path)?,
                (Some(current), Some(list)) if field.merge => {
                    self.merge_list(self.items(&field), current, list, merge_key, &field_path)?
                }
                (Some(_), Some(list)) => clean_list(list, &field_path)?,
                (None, None) => continue,
            };
            let ordered = match keyed {
                Some(k) => {
                    let mut ids = Vec::with_capacity(order.len());
                    for (i, o) in order.iter().enumerate() {
                        let id = o
                            .get(k)
                            .ok_or_else(|| missing_key(&index(&directive_path, i), k))?;
                        ids.push(id.clone());
                    }
                    if merged.iter().any(|o| o.get(k).is_none()) {
                        return Err(missing_key(&field_path, k));
                    }
                    normalize_order(merged, &ids, &server, |v| v.get(k))
                }
                None => normalize_order(merged, order, &server, |v| Some(v)),
            };
            original.insert(name.to_string(), Value::Array(ordered));
            handled.push(name);
        }
        Ok(handled)
    }
}

/// Upstream `validatePatchWithSetOrderList`: the patch list's items (deletions and other
/// directives aside) must appear in the `$setElementOrder` list, in the same relative order.
fn validate_order(
    list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
    field_path: &str,
    directive_path: &str,
) -> Result<(), StrategicPatchError> {
    if list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items = list
        .iter()
        .enumerate()
        .filter(|(_, item)| merge_key.is_none() || !is_delete_item(item))
        .peekable();
    let mut next_in_order = 0;
    while let Some(&(i, item)) = items.peek() {
        let Some(wanted) = order.get(next_in_order) else {
            break;
        };
        if item.as_object().is_some_and(|m| m.contains_key(PATCH)) {
            items.next();
            continue;
        }
        let equal = match merge_key {
            Some(k) => {
                let item_path = index(field_path, i);
                let Value::Object(m) = item else {
                    return Err(StrategicPatchError::ExpectedObjectItem {
                        path: item_path,
                        key: k.to_string(),
                    });
                };
                let have = m.get(k).ok_or_else(|| missing_key(&item_path, k))?;
                let want = wanted
                    .get(k)
                    .ok_or_else(|| missing_key(&index(directive_path, next_in_order), k))?;
                json_eq(have, want)
            }
            None => json_eq(item, wanted),
        };
        if equal {
            items.next();
        }
        next_in_order += 1;
    }
    if items.peek().is_some() {
        return Err(StrategicPatchError::SetElementOrderMismatch {
            path: field_path.to_string(),
        });
    }
    Ok(())
}

/// Upstream `applyRetainKeysDirective`: every field the patch sets must be listed, and fields of
/// the original that are not listed are cleared (a union switching members).
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    keep: &Value,
    path: &str,
) -> Result<(), StrategicPatchError> {
    let bad = |reason: &str| StrategicPatchError::BadDirective {
        path: path.to_string(),
        directive: RETAIN_KEYS,
        reason: reason.to_string(),
    };
    let Value::Array(names) = keep else {
        return Err(bad("expected a list of field names"));
    };
    let mut keep = Vec::with_capacity(names.len());
    for name in names {
        keep.push(
            name.as_str()
                .ok_or_else(|| bad("expected a list of field names"))?,
        );
    }
    for (key, value) in patch {
        if value.is_null() || is_directive_key(key) {
            continue;
        }
        if !keep.contains(&key.as_str()) {
            return Err(StrategicPatchError::NotInRetainKeys {
                path: path.to_string(),
                field: key.clone(),
            });
        }
    }
    original.retain(|k, _| keep.contains(&k.as_str()));
    Ok(())
}

/// `$deleteFromPrimitiveList/<name>`: removes every occurrence of the listed values. A missing or
/// non-list field is left alone, as upstream.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    name: &str,
    remove: &Value,
    directive_path: &str,
) -> Result<(), StrategicPatchError> {
    let bad = |reason: &str| StrategicPatchError::BadDirective {
        path: directive_path.to_string(),
        directive: DELETE_FROM_PRIMITIVE_LIST,
        reason: reason.to_string(),
    };
    let Value::Array(remove) = remove else {
        return Err(bad("expected a list"));
    };
    if remove.iter().any(|v| v.is_object() || v.is_array()) {
        return Err(bad("expected a list of primitives"));
    }
    if let Some(Value::Array(list)) = original.get_mut(name) {
        if list.iter().any(|v| v.is_object() || v.is_array()) {
            return Err(bad("the field is not a list of primitives"));
        }
        list.retain(|v| !remove.iter().any(|r| json_eq(r, v)));
    }
    Ok(())
}

/// Upstream `normalizeElementOrder` + `mergeSortedSlice`: items named in `order` come sorted by
/// it, the others keep their `server` order, and the two runs are interleaved wherever both items
/// are in `server` (an item the server has not seen goes before the remaining server-only items).
fn normalize_order<F>(items: Vec<Value>, order: &[Value], server: &[Value], ident: F) -> Vec<Value>
where
    F: Fn(&Value) -> Option<&Value>,
{
    let position = |list: &[Value], item: &Value| -> Option<usize> {
        let id = ident(item)?;
        list.iter().position(|x| json_eq(x, id))
    };
    let mut named: Vec<(usize, Option<usize>, Value)> = Vec::new();
    let mut rest: Vec<(Option<usize>, Value)> = Vec::new();
    for item in items {
        let in_server = position(server, &item);
        match position(order, &item) {
            Some(p) => named.push((p, in_server, item)),
            None => rest.push((in_server, item)),
        }
    }
    named.sort_by_key(|(p, _, _)| *p);
    rest.sort_by_key(|(s, _)| s.unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(named.len() + rest.len());
    let mut left = rest.into_iter().peekable();
    let mut right = named.into_iter().map(|(_, s, v)| (s, v)).peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some((Some(l), _)), Some((Some(r), _))) => l < r,
            (Some(_), Some(_)) | (None, Some(_)) => false,
            (Some(_), None) => true,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, v)) = next {
            out.push(v);
        }
    }
    out
}

/// A value taken from the patch as is (nothing to merge it with): directives are applied to
/// nothing and stripped, nulls dropped. None when the value deletes itself (`$patch: delete`).
fn clean(value: &Value, path: &str) -> Result<Option<Value>, StrategicPatchError> {
    match value {
        Value::Object(m) => Ok(clean_map(m, path)?.map(Value::Object)),
        Value::Array(list) => Ok(Some(Value::Array(clean_list(list, path)?))),
        other => Ok(Some(other.clone())),
    }
}

fn clean_map(
    m: &Map<String, Value>,
    path: &str,
) -> Result<Option<Map<String, Value>>, StrategicPatchError> {
    match m.get(PATCH) {
        None => {}
        Some(d) => match d.as_str() {
            Some("delete") => return Ok(None),
            // Replacing nothing yields the content (upstream would drop the value).
            Some("replace") => {}
            _ => return Err(unknown_patch_type(path, d)),
        },
    }
    clean_fields(m, path).map(Some)
}

fn clean_fields(
    m: &Map<String, Value>,
    path: &str,
) -> Result<Map<String, Value>, StrategicPatchError> {
    let mut out = Map::new();
    for (key, value) in m {
        if is_directive_key(key) || value.is_null() {
            continue;
        }
        if let Some(v) = clean(value, &join(path, key))? {
            out.insert(key.clone(), v);
        }
    }
    Ok(out)
}

fn clean_list(list: &[Value], path: &str) -> Result<Vec<Value>, StrategicPatchError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let item_path = index(path, i);
        if let Some(directive) = item.as_object().and_then(|m| m.get(PATCH)) {
            // Deleting from (or replacing) an empty list leaves only the plain items.
            match directive.as_str() {
                Some("delete" | "replace") => continue,
                Some("merge") => {
                    return Err(StrategicPatchError::MergeDirectiveInList { path: item_path });
                }
                _ => return Err(unknown_patch_type(&item_path, directive)),
            }
        }
        if let Some(v) = clean(item, &item_path)? {
            out.push(v);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

fn kind_name(v: &Value) -> &'static str {
    match kind(v) {
        Kind::Null => "null",
        Kind::Bool => "boolean",
        Kind::Number => "number",
        Kind::String => "string",
        Kind::Array => "list",
        Kind::Object => "object",
    }
}

/// Upstream `sliceElementType`: all elements of both lists share one kind, which is not a list.
fn element_kind(
    original: &[Value],
    patch: &[Value],
    path: &str,
) -> Result<Kind, StrategicPatchError> {
    let mut first = None;
    for v in original.iter().chain(patch) {
        let k = kind(v);
        if k == Kind::Array {
            return Err(StrategicPatchError::ListOfLists {
                path: path.to_string(),
            });
        }
        match first {
            None => first = Some(k),
            Some(f) if f != k => {
                return Err(StrategicPatchError::MixedElementTypes {
                    path: path.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(first.unwrap_or(Kind::Null))
}

/// JSON equality where `80` and `80.0` are the same number (Go decodes both to one value).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(p), Some(q)) => p == q,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn has_strategy(field: &Value, strategy: &str) -> bool {
    field
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .is_some_and(|s| s.split(',').any(|p| p.trim() == strategy))
}

fn is_directive_key(key: &str) -> bool {
    key == PATCH || key == RETAIN_KEYS || matches_directive_prefix(key)
}

fn matches_directive_prefix(key: &str) -> bool {
    key.starts_with(SET_ELEMENT_ORDER) || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

fn is_delete_item(item: &Value) -> bool {
    item.get(PATCH).and_then(Value::as_str) == Some("delete")
}

/// The field a `$setElementOrder/<field>` or `$deleteFromPrimitiveList/<field>` key names.
fn directive_target<'k>(key: &'k str, path: &str) -> Result<&'k str, StrategicPatchError> {
    let (directive, rest) = if let Some(rest) = key.strip_prefix(SET_ELEMENT_ORDER) {
        (SET_ELEMENT_ORDER, rest)
    } else if let Some(rest) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
        (DELETE_FROM_PRIMITIVE_LIST, rest)
    } else {
        return Ok(key);
    };
    rest.strip_prefix('/')
        .ok_or_else(|| StrategicPatchError::BadDirective {
            path: path.to_string(),
            directive,
            reason: format!("malformed key {key:?}, expected {directive}/<field>"),
        })
}

fn unknown_patch_type(path: &str, value: &Value) -> StrategicPatchError {
    let value = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    StrategicPatchError::UnknownPatchType {
        path: path.to_string(),
        value,
    }
}

fn missing_key(path: &str, key: &str) -> StrategicPatchError {
    StrategicPatchError::MissingMergeKey {
        path: path.to_string(),
        key: key.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

#[cfg(test)]
mod tests;
