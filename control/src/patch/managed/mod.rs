//! Server-side apply and `metadata.managedFields`, as kube-apiserver does them with
//! structured-merge-diff: which manager owns which field (`fieldsV1` sets), merging an applied
//! configuration into the live object, conflicts between managers, pruning of fields an applier
//! stopped setting, and the bookkeeping of ordinary writes (create/update/patch).
//!
//! The layers of upstream's field manager are kept, in the same order: the version check, the
//! last-applied annotation upgrade path for `kubectl`, tracking of objects created before
//! managedFields existed ("before-first-apply"), the cap of ten update entries, manager
//! identifiers, entry times, and stripping of the metadata fields nobody owns.

mod entries;
mod fieldpath;
mod go_zero;
mod typeinfo;
mod value;
mod walk;

#[cfg(test)]
mod tests;

pub use fieldpath::{FieldSet, PathElement, path_string};

use crate::schema::Catalog;
use entries::{
    APPLY, Entry, Managed, UPDATE, cap_update_managers, decode, describe, encode, identifier,
    is_reset,
};
use serde_json::{Map, Value};
use std::fmt;
use typeinfo::Types;
use value::{empty_object, equal, go_json};

/// The annotation client-side `kubectl apply` keeps its configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Upstream's limit on the total size of an object's annotations.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

/// managedFields or a `fieldsV1` set that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedError {
    #[error("error decoding set: {0}")]
    FieldsV1(String),
    #[error("{0}")]
    Entry(String),
    #[error("object must be a JSON object")]
    NotAnObject,
}

/// A field another manager owns and the applied configuration sets to a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager's name.
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    /// The version the owner wrote (meaningful for Update owners).
    pub api_version: String,
    pub subresource: Option<String>,
    /// The field as upstream prints it: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="web"].image`.
    pub field: String,
}

impl Conflict {
    /// How upstream names the owner: `"kubectl-client-side-apply" using apps/v1`.
    pub fn owner(&self) -> String {
        describe(
            &self.manager,
            &self.operation,
            &self.api_version,
            self.subresource.as_deref().unwrap_or(""),
        )
    }

    /// The `StatusCause` message upstream sends for this conflict (its `field` is `self.field`).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.owner())
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflict with {}: {}", self.owner(), self.field)
    }
}

/// Upstream's conflict message (`Apply failed with 1 conflict: conflict with "x" using apps/v1:
/// .spec.replicas`); several conflicts are grouped by owner.
pub fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: {only}");
    }
    let mut lines = Vec::new();
    let mut owners: Vec<(String, String)> = conflicts
        .iter()
        .map(|c| {
            (
                identifier(
                    &c.manager,
                    &c.operation,
                    &c.api_version,
                    c.subresource.as_deref().unwrap_or(""),
                ),
                c.owner(),
            )
        })
        .collect();
    owners.sort();
    owners.dedup();
    for (id, owner) in owners {
        lines.push(format!("conflicts with {owner}:"));
        for c in conflicts {
            if identifier(
                &c.manager,
                &c.operation,
                &c.api_version,
                c.subresource.as_deref().unwrap_or(""),
            ) == id
            {
                lines.push(format!("- {}", c.field));
            }
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the configuration changes (409 Conflict, one cause per entry).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// 400 Bad Request: wrong kind or version, managedFields in the configuration, not an object.
    #[error("{0}")]
    BadRequest(String),
    /// The configuration does not fit the schema (undeclared field, list-map item without its
    /// keys, duplicate keys, wrong scalar type). Upstream answers 500 with this message.
    #[error("failed to create typed patch object ({object}): {message}")]
    InvalidConfig { object: String, message: String },
    /// The live object's managedFields cannot be decoded (upstream answers 500).
    #[error("failed to decode managed fields: {0}")]
    ManagedFields(ManagedError),
    /// The live object cannot be merged with (e.g. a list-map item without its keys).
    #[error("failed to merge config: {0}")]
    Merge(String),
}

/// Fields nobody owns, removed from every writer's set.
fn strip_set() -> FieldSet {
    FieldSet::from_field_paths(&[
        &["apiVersion"],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ])
}

/// The fields a write through `subresource` does not own because the strategy resets them
/// (upstream `GetResetFields`): `status` for the main resource, `spec` for `status`. Resources
/// whose strategy differs (a custom resource without a status subresource, Deployment status also
/// resetting labels) pass their own set via [`Request::reset`].
pub fn default_reset_fields(subresource: Option<&str>) -> FieldSet {
    match subresource {
        None => FieldSet::from_field_paths(&[&["status"]]),
        Some("status") => FieldSet::from_field_paths(&[&["spec"]]),
        Some(_) => FieldSet::new(),
    }
}

/// Fields set in `obj` as upstream tracks them: leaves, list-map items by key (`k:{...}`), set
/// items by value (`v:...`), atomic lists and maps as one field, empty maps; without
/// apiVersion, kind and the metadata fields nobody owns (name, namespace, uid, resourceVersion,
/// generation, creationTimestamp, managedFields, selfLink).
pub fn field_set(catalog: &Catalog, schema: Option<&Value>, obj: &Value) -> FieldSet {
    Types::new(catalog, schema)
        .field_set(obj)
        .difference(&strip_set())
}

/// Server-side apply of `config` by `manager` onto `live` (`None`: the object does not exist
/// yet). Returns the merged object with updated `metadata.managedFields`. See [`Request::apply`].
#[allow(clippy::too_many_arguments)]
pub fn apply(
    catalog: &Catalog,
    schema: Option<&Value>,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    Request {
        catalog,
        schema,
        manager,
        api_version,
        subresource,
        now,
        reset: None,
    }
    .apply(live, config, force)
}

/// managedFields bookkeeping for a create/update/patch by `manager`. See
/// [`Request::record_update`].
#[allow(clippy::too_many_arguments)]
pub fn record_update(
    catalog: &Catalog,
    schema: Option<&Value>,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
) -> Result<(), ManagedError> {
    Request {
        catalog,
        schema,
        manager,
        api_version,
        subresource,
        now,
        reset: None,
    }
    .record_update(old, new)
}

/// One write by one manager.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub catalog: &'a Catalog,
    /// The kind's schema; `None` treats the object as schema-less (maps merge per key, lists
    /// are atomic).
    pub schema: Option<&'a Value>,
    /// The field manager (`fieldManager` query parameter, or the user agent's default).
    pub manager: &'a str,
    /// The object's apiVersion (`apps/v1`).
    pub api_version: &'a str,
    /// The subresource written through (`status`), if any.
    pub subresource: Option<&'a str>,
    /// The time to record, RFC 3339 (`2024-05-01T10:00:00Z`).
    pub now: &'a str,
    /// Fields the strategy resets for this write; `None` means [`default_reset_fields`].
    pub reset: Option<&'a FieldSet>,
}

impl<'a> Request<'a> {
    fn types(&self) -> Types<'a> {
        Types::new(self.catalog, self.schema)
    }

    fn reset_fields(&self) -> FieldSet {
        self.reset
            .cloned()
            .unwrap_or_else(|| default_reset_fields(self.subresource))
    }

    fn subresource(&self) -> &'a str {
        self.subresource.unwrap_or("")
    }

    /// Server-side apply. The configuration must have this request's apiVersion and the
    /// object's kind and no managedFields. Fields other managers own and the configuration
    /// changes are conflicts unless `force`, which moves them to `manager`. Fields `manager`
    /// applied before and no longer applies are removed unless another manager owns them. The
    /// strategy's reset fields (status, for the main resource) merge but are not owned; the caller
    /// resets them as its strategy does.
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        force: bool,
    ) -> Result<Value, ApplyError> {
        let types = self.types();
        self.check_config(&types, live, config)?;
        let managed = decode(live.and_then(|l| l.pointer("/metadata/managedFields")))
            .map_err(ApplyError::ManagedFields)?;
        let live_obj = live
            .map(without_managed_fields)
            .unwrap_or_else(empty_object);

        let result = match self.apply_once(&types, &live_obj, config, &managed, force) {
            Err(ApplyError::Conflicts(conflicts)) if self.manager == "kubectl" => {
                // Upgrading from client-side apply: fields the last-applied annotation set, and
                // that still hold those values, may be taken over without force.
                let Some(allowed) = self.allowed_by_last_applied(&types, &live_obj) else {
                    return Err(ApplyError::Conflicts(conflicts));
                };
                let remaining: Vec<Conflict> = conflicts
                    .iter()
                    .filter(|c| !allowed.contains(&c.field))
                    .cloned()
                    .collect();
                if !remaining.is_empty() {
                    return Err(ApplyError::Conflicts(remaining));
                }
                self.apply_once(&types, &live_obj, config, &managed, true)?
            }
            other => other?,
        };
        let (mut obj, managed) = result;
        set_managed_fields(&mut obj, encode(&managed));
        if self.manager == "kubectl" {
            update_last_applied(&mut obj, config);
        }
        Ok(obj)
    }

    fn check_config(
        &self,
        types: &Types<'a>,
        live: Option<&Value>,
        config: &Value,
    ) -> Result<(), ApplyError> {
        let Value::Object(cfg) = config else {
            return Err(ApplyError::BadRequest(
                "the applied configuration must be an object".into(),
            ));
        };
        let text = |v: Option<&Value>, k: &str| {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let version = text(Some(config), "apiVersion");
        let kind = text(Some(config), "kind");
        let expected_kind = match live
            .map(|l| text(Some(l), "kind"))
            .filter(|k| !k.is_empty())
        {
            Some(k) => Some(k),
            None => self.schema_kind(),
        };
        let gvk = |version: &str, kind: &str| {
            let gv = if version.contains('/') {
                version.to_string()
            } else {
                format!("/{version}")
            };
            format!("{gv}, Kind={kind}")
        };
        if version != self.api_version
            || kind.is_empty()
            || expected_kind.is_some_and(|k| k != kind)
        {
            return Err(ApplyError::BadRequest(format!(
                "invalid object type: {}",
                gvk(&version, &kind)
            )));
        }
        if cfg
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .is_some_and(|m| !m.is_null())
        {
            return Err(ApplyError::BadRequest(
                "metadata.managedFields must be nil".into(),
            ));
        }
        let errs = types.validate(config);
        if !errs.is_empty() {
            let message = if let [one] = errs.as_slice() {
                one.clone()
            } else {
                format!(
                    "errors:\n{}",
                    errs.iter()
                        .map(|e| format!("  {e}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            };
            let meta = |k: &str| {
                config
                    .get("metadata")
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let object = format!(
                "{}/{}; {}",
                meta("namespace"),
                meta("name"),
                gvk(&version, &kind)
            );
            return Err(ApplyError::InvalidConfig { object, message });
        }
        Ok(())
    }

    /// The kind the schema serves at this request's version.
    fn schema_kind(&self) -> Option<String> {
        let gvks = self
            .schema?
            .get("x-kubernetes-group-version-kind")?
            .as_array()?;
        gvks.iter().find_map(|g| {
            let group = g.get("group").and_then(Value::as_str).unwrap_or("");
            let version = g.get("version").and_then(Value::as_str).unwrap_or("");
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            (gv == self.api_version).then(|| {
                g.get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
        })
    }

    /// One pass of the apply pipeline below the last-applied layer.
    fn apply_once(
        &self,
        types: &Types<'a>,
        live: &Value,
        config: &Value,
        managed: &Managed,
        force: bool,
    ) -> Result<(Value, Managed), ApplyError> {
        let mut managed = managed.clone();
        let reset = self.reset_fields();
        if managed.is_empty() {
            // An object written before field management (or whose managedFields were reset):
            // what it holds becomes owned by "before-first-apply".
            self.track_update(
                types,
                &empty_object(),
                live,
                &mut managed,
                "before-first-apply",
                &reset,
            );
        }

        let id = identifier(self.manager, APPLY, self.api_version, self.subresource());
        let merged = types.merge(live, config).map_err(ApplyError::Merge)?;
        let last = managed.get(&id).map(|e| e.set.clone());
        let set = types.field_set(config).recursive_difference(&reset);
        let previous_time = managed.get(&id).and_then(|e| e.time.clone());
        managed.insert(
            id.clone(),
            Entry {
                manager: self.manager.to_string(),
                operation: APPLY.into(),
                api_version: self.api_version.to_string(),
                subresource: self.subresource().to_string(),
                time: previous_time,
                set,
            },
        );
        let merged = match &last {
            Some(last) if !last.is_empty() => prune(types, &merged, &managed, last),
            _ => merged,
        };
        self.update_owners(types, live, &merged, &mut managed, Some(&id), force, &reset)?;

        strip_meta(&mut managed, &id);
        let changed = !equal(live, &merged);
        if changed && let Some(e) = managed.get_mut(&id) {
            e.time = Some(self.now.to_string());
        }
        Ok((if changed { merged } else { live.clone() }, managed))
    }

    /// Upstream `Updater.update`: compares the versions, takes the changed fields away from
    /// every other manager (or reports them as conflicts), and drops removed fields everywhere.
    #[allow(clippy::too_many_arguments)]
    fn update_owners(
        &self,
        types: &Types<'a>,
        old: &Value,
        new: &Value,
        managed: &mut Managed,
        workflow: Option<&str>,
        force: bool,
        reset: &FieldSet,
    ) -> Result<walk::Comparison, ApplyError> {
        let cmp = types
            .compare(
                &types.with_go_zero(types.root, old),
                &types.with_go_zero(types.root, new),
            )
            .exclude(reset);
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts = Vec::new();
        for (id, entry) in managed.iter() {
            if Some(id.as_str()) == workflow {
                continue;
            }
            let taken = entry.set.intersection(&changed);
            if !taken.is_empty() {
                conflicts.push((id.clone(), taken));
            }
        }
        if !force && !conflicts.is_empty() {
            let mut out = Vec::new();
            for (id, taken) in &conflicts {
                let Some(e) = managed.get(id) else { continue };
                for p in taken.paths() {
                    out.push(Conflict {
                        manager: e.manager.clone(),
                        operation: e.operation.clone(),
                        api_version: e.api_version.clone(),
                        subresource: (!e.subresource.is_empty()).then(|| e.subresource.clone()),
                        field: path_string(&p),
                    });
                }
            }
            return Err(ApplyError::Conflicts(out));
        }
        for (id, taken) in conflicts {
            if let Some(e) = managed.get_mut(&id) {
                e.set = e.set.difference(&taken);
            }
        }
        if !cmp.removed.is_empty() {
            for (id, e) in managed.iter_mut() {
                if Some(id.as_str()) != workflow {
                    e.set = e.set.difference(&cmp.removed);
                }
            }
        }
        managed.retain(|_, e| !e.set.is_empty());
        Ok(cmp)
    }

    /// The update pipeline (identifier, takeover of changed fields, merge into the manager's
    /// previous update entry, stripped metadata, time, cap of update entries).
    fn track_update(
        &self,
        types: &Types<'a>,
        old: &Value,
        new: &Value,
        managed: &mut Managed,
        manager: &str,
        reset: &FieldSet,
    ) {
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let Ok(cmp) = self.update_owners(types, old, new, managed, None, true, reset) else {
            return;
        };
        let taken = cmp
            .modified
            .union(&cmp.added)
            .recursive_difference(reset)
            .difference(&strip_set());
        if !taken.is_empty() {
            let id = identifier(manager, UPDATE, self.api_version, self.subresource());
            let previous = managed.remove(&id).map(|e| e.set).unwrap_or_default();
            managed.insert(
                id,
                Entry {
                    manager: manager.to_string(),
                    operation: UPDATE.into(),
                    api_version: self.api_version.to_string(),
                    subresource: self.subresource().to_string(),
                    time: Some(self.now.to_string()),
                    set: taken.union(&previous),
                },
            );
        }
        cap_update_managers(managed);
    }

    /// Records a create (`old` is `None`), update or patch by this request's manager in
    /// `new`'s managedFields: fields added or changed become the manager's (and are taken from
    /// others), removed fields leave every set, empty entries go. managedFields sent in `new` are
    /// kept when they decode (an empty list, or a single empty entry, resets them), except through
    /// a subresource where the live ones always count. An existing object without managedFields
    /// stays untracked, as upstream.
    pub fn record_update(&self, old: Option<&Value>, new: &mut Value) -> Result<(), ManagedError> {
        if !new.is_object() {
            return Err(ManagedError::NotAnObject);
        }
        let types = self.types();
        let live_managed =
            || decode(old.and_then(|o| o.pointer("/metadata/managedFields"))).unwrap_or_default();
        let mut managed = if self.subresource.is_some() {
            live_managed()
        } else {
            let sent = new.pointer("/metadata/managedFields");
            if is_reset(sent) {
                Managed::new()
            } else {
                match decode(sent) {
                    Ok(m) if !m.is_empty() => m,
                    _ => live_managed(),
                }
            }
        };
        set_managed_fields(new, None);
        if managed.is_empty()
            && let Some(old) = old
            && old
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .is_some_and(|u| !u.is_empty())
        {
            return Ok(());
        }
        let old_obj = old.map(without_managed_fields).unwrap_or_else(empty_object);
        self.track_update(
            &types,
            &old_obj,
            new,
            &mut managed,
            self.manager,
            &self.reset_fields(),
        );
        set_managed_fields(new, encode(&managed));
        Ok(())
    }

    /// Paths (printed) that the last-applied annotation set and the live object still holds.
    fn allowed_by_last_applied(&self, types: &Types<'a>, live: &Value) -> Option<Vec<String>> {
        let text = live
            .pointer("/metadata/annotations")?
            .get(LAST_APPLIED_ANNOTATION)?
            .as_str()?;
        let last: Value = serde_json::from_str(text).ok()?;
        if !last.is_object()
            || last.get("apiVersion").and_then(Value::as_str) != Some(self.api_version)
        {
            return None;
        }
        if !types.validate(&last).is_empty() {
            return None;
        }
        let cmp = types.compare(&last, &types.with_go_zero(types.root, live));
        let allowed = types
            .field_set(&last)
            .difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed);
        Some(allowed.paths().iter().map(|p| path_string(p)).collect())
    }
}

/// Removes what the applier applied last time and no longer applies, unless someone else owns
/// it (upstream `prune`, `addBackOwnedItems`, `addBackDanglingItems`).
fn prune(types: &Types<'_>, merged: &Value, managed: &Managed, last: &FieldSet) -> Value {
    let named = |s: &FieldSet| types.with_named_fields(s);
    let pruned = types.remove(merged, &named(last));

    let owned = managed
        .values()
        .fold(FieldSet::new(), |acc, e| acc.union(&e.set));
    let merged_set = named(&types.field_set(merged));
    let pruned_set = named(&types.field_set(&pruned));
    let pruned = types.remove(
        merged,
        &merged_set.difference(&pruned_set.union(&named(&owned))),
    );

    let pruned_set = named(&types.field_set(&pruned));
    types.remove(
        merged,
        &merged_set
            .difference(&pruned_set)
            .intersection(&named(last)),
    )
}

/// Drops the fields nobody owns from one entry (and the entry if nothing is left).
fn strip_meta(managed: &mut Managed, id: &str) {
    if let Some(e) = managed.get_mut(id) {
        e.set = e.set.difference(&strip_set());
        if e.set.is_empty() {
            managed.remove(id);
        }
    }
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    set_managed_fields(&mut v, None);
    v
}

/// Sets (or with `None` removes) `metadata.managedFields`.
fn set_managed_fields(obj: &mut Value, fields: Option<Value>) {
    let Value::Object(map) = obj else { return };
    match fields {
        Some(f) => {
            let meta = map.entry("metadata").or_insert_with(empty_object);
            if !meta.is_object() {
                *meta = empty_object();
            }
            if let Value::Object(m) = meta {
                m.insert("managedFields".into(), f);
            }
        }
        None => {
            if let Some(Value::Object(m)) = map.get_mut("metadata") {
                m.remove("managedFields");
            }
        }
    }
}

/// Keeps an existing last-applied annotation in step with what `kubectl` now applies
/// server-side (the configuration without the annotation, as `encoding/json` writes it), or
/// drops it when it would push the annotations over their size limit.
fn update_last_applied(obj: &mut Value, config: &Value) {
    let has = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut cfg = config.clone();
    if let Some(Value::Object(ann)) = cfg.pointer_mut("/metadata/annotations") {
        ann.remove(LAST_APPLIED_ANNOTATION);
    }
    let text = format!("{}\n", go_json(&cfg));
    if let Some(Value::Object(ann)) = obj.pointer_mut("/metadata/annotations") {
        ann.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
        if annotations_size(ann) > ANNOTATIONS_SIZE_LIMIT {
            ann.remove(LAST_APPLIED_ANNOTATION);
        }
    }
}

fn annotations_size(ann: &Map<String, Value>) -> usize {
    ann.iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum()
}
