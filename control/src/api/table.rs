//! `meta.k8s.io/v1` Tables and `PartialObjectMetadata` for `kubectl get`.

use super::query::IncludeObject;
use crate::printers;
use crate::registry::resources::Resource;
use serde_json::{Value, json};

pub fn column_definitions(r: &Resource) -> Value {
    printers::column_definitions_json(r.group, r.kind)
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

pub fn row(r: &Resource, obj: &Value, include: IncludeObject, now: jiff::Timestamp) -> Value {
    let cells = printers::cells(r.group, r.kind, obj, now);
    let mut row = json!({"cells": cells});
    let conditions = printers::row_conditions(r.group, r.kind, obj);
    if !conditions.is_empty() {
        row["conditions"] = Value::Array(conditions);
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(obj),
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A Table of `items`; `with_columns` is false for the watch events after the first.
pub fn table(
    r: &Resource,
    items: &[Value],
    include: IncludeObject,
    resource_version: &str,
    continue_token: Option<&str>,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    let mut rows: Vec<Value> = items.iter().map(|o| row(r, o, include, now)).collect();
    if r.kind == "StorageClass" {
        // "(default)" is judged across every class in the answer.
        let default = printers::effective_default_storage_class(items);
        for row in &mut rows {
            if let Some(Value::Array(cells)) = row.get_mut("cells") {
                printers::mark_default_storage_class(cells, default.as_deref());
            }
        }
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if with_columns { column_definitions(r) } else { json!([]) },
        "rows": rows,
    })
}
