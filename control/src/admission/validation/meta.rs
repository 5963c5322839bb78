//! ObjectMeta, labels, annotations, label selectors and owner references
//! (`apimachinery/pkg/api/validation/objectmeta.go`,
//! `apimachinery/pkg/apis/meta/v1/validation`), plus the core API's extra
//! check on finalizer names.

use super::Errs;
use crate::admission::field::{self, Bad, Path, go_quote};
use crate::admission::json::{arr, i, obj, opt_b, opt_i, s, string_map, strings};
use crate::admission::names::{NameFn, is_qualified_name, is_valid_label_value, name_is_dns_label};
use serde_json::Value;

pub(crate) const IS_NEGATIVE: &str = "must be greater than or equal to 0";
pub(crate) const FIELD_IMMUTABLE: &str = "field is immutable";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `ValidateNonnegativeField`.
pub(crate) fn nonnegative(value: i64, path: &Path, errs: &mut Errs) {
    if value < 0 {
        errs.push(field::invalid(path, value, IS_NEGATIVE));
    }
}

/// `ValidateLabelName`.
pub(crate) fn validate_label_name(key: &str, path: &Path, errs: &mut Errs) {
    for m in is_qualified_name(key) {
        errs.push(field::invalid(path, key, &m));
    }
}

/// `ValidateLabels`: keys and values reported at the map's path.
pub(crate) fn validate_labels(labels: Option<&Value>, path: &Path, errs: &mut Errs) {
    for (k, v) in string_map(labels) {
        validate_label_name(&k, path, errs);
        for m in is_valid_label_value(&v) {
            errs.push(field::invalid(path, v.as_str(), &m));
        }
    }
}

/// `ValidateAnnotations`: case-insensitive qualified keys, 256 KiB in total.
pub(crate) fn validate_annotations(annotations: Option<&Value>, path: &Path, errs: &mut Errs) {
    let mut total = 0usize;
    for (k, v) in string_map(annotations) {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(field::invalid(path, k.as_str(), &m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(field::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT as i64));
    }
}

/// `ValidateLabelSelector` (a nil selector is valid).
pub(crate) fn validate_label_selector(
    sel: Option<&Value>,
    allow_invalid_values: bool,
    path: &Path,
    errs: &mut Errs,
) {
    let Some(sel) = sel else {
        return;
    };
    validate_labels(sel.get("matchLabels"), &path.child("matchLabels"), errs);
    for (idx, expr) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = path.child("matchExpressions").index(idx);
        let op = s(expr, "operator");
        let values = strings(expr, "values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(field::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(field::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(field::invalid(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        validate_label_name(s(expr, "key"), &p.child("key"), errs);
        if !allow_invalid_values {
            for (vi, v) in values.iter().enumerate() {
                for m in is_valid_label_value(v) {
                    errs.push(field::invalid(&p.child("values").index(vi), *v, &m));
                }
            }
        }
    }
}

/// A label selector as `metav1.LabelSelectorAsSelector` builds it.
#[derive(Debug)]
pub(crate) enum Selector {
    /// Nil selector: matches nothing (and is not "empty").
    Nothing,
    /// Conjunction of requirements; no requirements matches everything.
    Reqs(Vec<Req>),
}

#[derive(Debug)]
pub(crate) struct Req {
    key: String,
    op: String,
    values: Vec<String>,
}

impl Selector {
    /// `Err` when the selector cannot be converted (bad operator/key/value).
    pub(crate) fn from_label_selector(sel: Option<&Value>) -> Result<Selector, ()> {
        let Some(sel) = sel else {
            return Ok(Selector::Nothing);
        };
        let mut reqs = Vec::new();
        for (k, v) in string_map(sel.get("matchLabels")) {
            if !is_qualified_name(&k).is_empty() || !is_valid_label_value(&v).is_empty() {
                return Err(());
            }
            reqs.push(Req {
                key: k,
                op: "In".into(),
                values: vec![v],
            });
        }
        for expr in arr(sel, "matchExpressions") {
            let key = s(expr, "key").to_string();
            let op = s(expr, "operator").to_string();
            let values: Vec<String> = strings(expr, "values")
                .into_iter()
                .map(str::to_string)
                .collect();
            if !is_qualified_name(&key).is_empty() {
                return Err(());
            }
            match op.as_str() {
                "In" | "NotIn" => {
                    if values.is_empty()
                        || values.iter().any(|v| !is_valid_label_value(v).is_empty())
                    {
                        return Err(());
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        return Err(());
                    }
                }
                _ => return Err(()),
            }
            reqs.push(Req { key, op, values });
        }
        Ok(Selector::Reqs(reqs))
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Selector::Reqs(r) if r.is_empty())
    }

    pub(crate) fn matches(&self, labels: &[(String, String)]) -> bool {
        let Selector::Reqs(reqs) = self else {
            return false;
        };
        reqs.iter().all(|r| {
            let val = labels.iter().find(|(k, _)| *k == r.key).map(|(_, v)| v);
            match r.op.as_str() {
                "In" => val.is_some_and(|v| r.values.contains(v)),
                "NotIn" => val.is_none_or(|v| !r.values.contains(v)),
                "Exists" => val.is_some(),
                "DoesNotExist" => val.is_none(),
                _ => false,
            }
        })
    }
}

/// Renders a `*metav1.LabelSelector` the way Go's JSON encoder prints it.
pub(crate) fn selector_bad(sel: Option<&Value>) -> Bad {
    let Some(sel) = sel else {
        return Bad::Json(Value::Null);
    };
    let mut out = serde_json::Map::new();
    if let Some(ml) =
        obj(sel, "matchLabels").filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
    {
        let mut sorted: Vec<(&String, &Value)> = ml
            .as_object()
            .map(|o| o.iter().collect())
            .unwrap_or_default();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        out.insert(
            "matchLabels".into(),
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        );
    }
    if !arr(sel, "matchExpressions").is_empty() {
        let exprs: Vec<Value> = arr(sel, "matchExpressions")
            .iter()
            .map(|e| {
                let mut m = serde_json::Map::new();
                m.insert("key".into(), Value::String(s(e, "key").to_string()));
                m.insert(
                    "operator".into(),
                    Value::String(s(e, "operator").to_string()),
                );
                if !arr(e, "values").is_empty() {
                    m.insert("values".into(), Value::Array(arr(e, "values").to_vec()));
                }
                Value::Object(m)
            })
            .collect();
        out.insert("matchExpressions".into(), Value::Array(exprs));
    }
    Bad::Json(Value::Object(out))
}

/// Labels of an object-or-template `metadata`.
pub(crate) fn labels_of(meta: Option<&Value>) -> Vec<(String, String)> {
    string_map(meta.and_then(|m| m.get("labels")))
}

fn parse_group_version(gv: &str) -> Result<(String, String), ()> {
    if gv.is_empty() || gv == "/" {
        return Ok((String::new(), String::new()));
    }
    match gv.matches('/').count() {
        0 => Ok((String::new(), gv.to_string())),
        1 => {
            let (g, v) = gv.split_once('/').unwrap_or(("", ""));
            Ok((g.to_string(), v.to_string()))
        }
        _ => Err(()),
    }
}

/// `ValidateOwnerReferences`.
pub(crate) fn validate_owner_references(refs: &[Value], path: &Path, errs: &mut Errs) {
    let mut first_controller: Option<String> = None;
    for (idx, r) in refs.iter().enumerate() {
        let p = path.index(idx);
        let api_version = s(r, "apiVersion");
        let gv = parse_group_version(api_version);
        if api_version.is_empty() {
            errs.push(field::required(&p.child("apiVersion"), "must not be empty"));
        } else if gv.as_ref().map(|(_, v)| v.is_empty()).unwrap_or(true) {
            errs.push(field::invalid(
                &p.child("apiVersion"),
                api_version,
                "must be <group>/<version> or <version>",
            ));
        }
        let kind = s(r, "kind");
        if kind.is_empty() {
            errs.push(field::required(&p.child("kind"), "must not be empty"));
        }
        if s(r, "name").is_empty() {
            errs.push(field::required(&p.child("name"), "must not be empty"));
        }
        if s(r, "uid").is_empty() {
            errs.push(field::required(&p.child("uid"), "must not be empty"));
        }
        let (group, version) = gv.unwrap_or_default();
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(field::invalid(
                &p,
                Bad::Json(r.clone()),
                &format!("{group}/{version}, Kind={kind} is disallowed from being an owner"),
            ));
        }
        if opt_b(r, "controller") == Some(true) {
            let cur = format!("{}/{}", kind, s(r, "name"));
            match &first_controller {
                Some(first) => errs.push(field::invalid(
                    path,
                    Bad::Json(Value::Array(refs.to_vec())),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"
                    ),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
}

/// `ValidateFinalizers` (qualified names; orphan vs foreground conflict).
fn validate_finalizers(finalizers: &[&str], path: &Path, errs: &mut Errs) {
    for f in finalizers {
        for m in is_qualified_name(f) {
            errs.push(field::invalid(path, *f, &m));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        let list: Vec<Value> = finalizers
            .iter()
            .map(|f| Value::String(f.to_string()))
            .collect();
        errs.push(field::invalid(
            path,
            Bad::Json(Value::Array(list)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// The core API's `validateKubeFinalizerName`: unqualified names must be
/// one of the standard finalizers.
fn validate_kube_finalizer_names(finalizers: &[&str], path: &Path, errs: &mut Errs) {
    for (idx, f) in finalizers.iter().enumerate() {
        if !f.contains('/') && !matches!(*f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(field::invalid(
                &path.index(idx),
                *f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// `ValidateManagedFields`.
fn validate_managed_fields(entries: &[Value], path: &Path, errs: &mut Errs) {
    for (idx, e) in entries.iter().enumerate() {
        let p = path.index(idx);
        match s(e, "operation") {
            "" => errs.push(field::required(&p.child("operation"), "must not be empty")),
            "Apply" | "Update" => {}
            other => errs.push(field::not_supported(
                &p.child("operation"),
                other,
                &["Apply", "Update"],
            )),
        }
        let ft = s(e, "fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            errs.push(field::invalid(
                &p.child("fieldsType"),
                ft,
                "must be `FieldsV1`",
            ));
        }
        let manager = s(e, "manager");
        if manager.len() > 128 {
            errs.push(field::too_long(&p.child("manager"), 128));
        }
        for (pos, c) in manager.char_indices() {
            if c.is_control() {
                errs.push(field::invalid(
                    &p.child("manager"),
                    manager,
                    &format!("invalid character U+{:04X} (at position {pos})", c as u32),
                ));
            }
        }
        if s(e, "subresource").len() > 256 {
            errs.push(field::too_long(&p.child("subresource"), 256));
        }
    }
}

/// Whether to apply the core API's finalizer-name rule (built-in kinds) or
/// only apimachinery's (custom resources).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finalizers {
    Kube,
    Generic,
}

/// `ValidateObjectMeta` for a create.
pub(crate) fn validate_object_meta(
    meta: Option<&Value>,
    namespaced: bool,
    name_fn: NameFn,
    fin: Finalizers,
    path: &Path,
    errs: &mut Errs,
) {
    let empty = Value::Object(serde_json::Map::new());
    let meta = meta.unwrap_or(&empty);
    let generate_name = s(meta, "generateName");
    if !generate_name.is_empty() {
        for m in name_fn(generate_name, true) {
            errs.push(field::invalid(
                &path.child("generateName"),
                generate_name,
                &m,
            ));
        }
    }
    let name = s(meta, "name");
    if name.is_empty() {
        errs.push(field::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for m in name_fn(name, false) {
            errs.push(field::invalid(&path.child("name"), name, &m));
        }
    }
    let ns = s(meta, "namespace");
    if namespaced {
        if ns.is_empty() {
            errs.push(field::required(&path.child("namespace"), ""));
        } else {
            for m in name_is_dns_label(ns, false) {
                errs.push(field::invalid(&path.child("namespace"), ns, &m));
            }
        }
    } else if !ns.is_empty() {
        errs.push(field::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    nonnegative(i(meta, "generation"), &path.child("generation"), errs);
    validate_labels(meta.get("labels"), &path.child("labels"), errs);
    validate_annotations(meta.get("annotations"), &path.child("annotations"), errs);
    validate_owner_references(
        arr(meta, "ownerReferences"),
        &path.child("ownerReferences"),
        errs,
    );
    let finalizers = strings(meta, "finalizers");
    validate_finalizers(&finalizers, &path.child("finalizers"), errs);
    validate_managed_fields(
        arr(meta, "managedFields"),
        &path.child("managedFields"),
        errs,
    );
    if fin == Finalizers::Kube {
        validate_kube_finalizer_names(&finalizers, &path.child("finalizers"), errs);
    }
}

fn immutable_str(new: &Value, old: &Value, key: &str, path: &Path, errs: &mut Errs) {
    let (n, o) = (s(new, key), s(old, key));
    if n != o {
        errs.push(field::invalid(&path.child(key), n, FIELD_IMMUTABLE));
    }
}

fn immutable_json(new: &Value, old: &Value, key: &str, path: &Path, errs: &mut Errs) {
    let n = new.get(key).cloned().unwrap_or(Value::Null);
    let o = old.get(key).cloned().unwrap_or(Value::Null);
    if n != o {
        errs.push(field::invalid(
            &path.child(key),
            Bad::Json(n),
            FIELD_IMMUTABLE,
        ));
    }
}

/// `ValidateObjectMetaUpdate`. The `resourceVersion` precondition is left to
/// the storage layer, which fills it in for unconditional updates.
pub(crate) fn validate_object_meta_update(
    new: Option<&Value>,
    old: Option<&Value>,
    fin: Finalizers,
    path: &Path,
    errs: &mut Errs,
) {
    let empty = Value::Object(serde_json::Map::new());
    let new = new.unwrap_or(&empty);
    let old = old.unwrap_or(&empty);
    if obj(old, "deletionTimestamp").is_some() {
        let old_f = strings(old, "finalizers");
        let mut extra: Vec<&str> = strings(new, "finalizers")
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let quoted: Vec<String> = extra.iter().map(|f| go_quote(f)).collect();
            errs.push(field::forbidden(
                &path.child("finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    let generation = i(new, "generation");
    nonnegative(generation, &path.child("generation"), errs);
    if generation < i(old, "generation") {
        errs.push(field::invalid(
            &path.child("generation"),
            generation,
            "must not be decremented",
        ));
    }
    immutable_str(new, old, "name", path, errs);
    immutable_str(new, old, "namespace", path, errs);
    immutable_str(new, old, "uid", path, errs);
    immutable_json(new, old, "creationTimestamp", path, errs);
    immutable_json(new, old, "deletionTimestamp", path, errs);
    if opt_i(new, "deletionGracePeriodSeconds") != opt_i(old, "deletionGracePeriodSeconds") {
        immutable_json(new, old, "deletionGracePeriodSeconds", path, errs);
    }
    validate_labels(new.get("labels"), &path.child("labels"), errs);
    validate_annotations(new.get("annotations"), &path.child("annotations"), errs);
    validate_owner_references(
        arr(new, "ownerReferences"),
        &path.child("ownerReferences"),
        errs,
    );
    validate_managed_fields(
        arr(new, "managedFields"),
        &path.child("managedFields"),
        errs,
    );
    if fin == Finalizers::Kube {
        validate_kube_finalizer_names(&strings(new, "finalizers"), &path.child("finalizers"), errs);
    }
}
