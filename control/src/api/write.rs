//! CREATE, UPDATE (PUT) and PATCH: decode → defaults → managed fields → admission (mutate,
//! validate) → one storage transaction. Retries on a concurrent write when the client set no
//! resourceVersion precondition.

use super::decode;
use super::negotiate::BodyType;
use super::read::render_one;
use super::status::{ApiError, ApiResult};
use super::{ApiServer, Body, Ctx, with_warnings};
use crate::patch::{managed, strategic};
use crate::registry::meta;
use crate::registry::resources::{Resource, Sub};
use crate::registry::strategy;
use http::{Response, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;

/// Attempts at an update before giving up on a hot object.
const MAX_RETRIES: usize = 16;

fn content_type(ctx: &Ctx) -> Option<&str> {
    ctx.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

pub async fn create(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let (raw, dups) = decode::object_body(ctx, body)?;
    let (decoded, findings) =
        decode::check_object(&api.catalog, r, raw, &dups, ctx.query.field_validation)?;
    let created = create_object(api, ctx, r, decoded, "Update").await?;
    Ok(with_warnings(
        render_one(ctx, r, &created, StatusCode::CREATED),
        &findings.warnings,
    ))
}

/// The create pipeline for a decoded object (also server-side apply of a new object).
pub async fn create_object(
    api: &Arc<ApiServer>,
    ctx: &Ctx,
    r: &'static Resource,
    decoded: Value,
    operation: &str,
) -> ApiResult<Value> {
    let mut decoded = decoded;
    place_in_namespace(ctx, r, &mut decoded)?;
    for attempt in 0..MAX_RETRIES {
        let mut obj = decoded.clone();
        let generated = generate_name(&mut obj);
        if meta::name(&obj).is_empty() {
            return Err(ApiError::invalid_field(
                r,
                "",
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            ));
        }
        strategy::prepare_create(r, &mut obj);
        api.admission.defaults(r, &mut obj);
        if operation == "Update" {
            record_managed(api, ctx, r, None, &mut obj)?;
        }
        let extra = api.admission.mutate(&api.store, r, &mut obj, None).await?;
        api.admission.validate(&api.store, r, &obj, None).await?;
        if ctx.query.dry_run {
            return Ok(obj);
        }
        match api.store.create(r, obj, extra).await {
            Ok(created) => return Ok(created),
            // Another generated name or allocation won the race: pick again.
            Err(e)
                if e.code == 409
                    && (generated || e.reason == "Conflict")
                    && attempt + 1 < MAX_RETRIES =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::internal(
        "could not create the object after several attempts",
    ))
}

fn place_in_namespace(ctx: &Ctx, r: &Resource, obj: &mut Value) -> ApiResult<()> {
    let body_ns = meta::namespace(obj).to_string();
    let m = meta::metadata_mut(obj);
    if r.namespaced {
        if ctx.path.namespace.is_empty() {
            return Err(ApiError::bad_request(
                "the namespace of the object must be given in the request path",
            ));
        }
        if !body_ns.is_empty() && body_ns != ctx.path.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        m.insert("namespace".into(), json!(ctx.path.namespace));
    } else {
        m.remove("namespace");
    }
    Ok(())
}

/// `generateName` → a name with a random 5-character suffix, as Kubernetes makes them.
fn generate_name(obj: &mut Value) -> bool {
    if !meta::name(obj).is_empty() {
        return false;
    }
    let Some(prefix) = meta::str_at(obj, "/metadata/generateName").map(String::from) else {
        return false;
    };
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rand::random::<u32>() as usize % ALPHABET.len()] as char)
        .collect();
    let mut base = prefix;
    base.truncate(63 - 5);
    meta::metadata_mut(obj).insert("name".into(), json!(format!("{base}{suffix}")));
    true
}

fn record_managed(
    api: &ApiServer,
    ctx: &Ctx,
    r: &Resource,
    old: Option<&Value>,
    obj: &mut Value,
) -> ApiResult<()> {
    let schema = api.catalog.kind(r.group, r.version, r.kind);
    let sub = ctx.path.sub.map(Sub::name);
    managed::record_update(
        &api.catalog,
        schema,
        old,
        obj,
        &ctx.manager(),
        &r.api_version(),
        sub,
        &meta::now(),
    )
    .map_err(|e| ApiError::internal(format!("managed fields: {e}")))
}

pub async fn update(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let (raw, dups) = decode::object_body(ctx, body)?;
    let (new, findings) =
        decode::check_object(&api.catalog, r, raw, &dups, ctx.query.field_validation)?;
    check_identity(ctx, r, &new)?;
    let precondition =
        meta::parse_rv(meta::resource_version(&new)).map_err(ApiError::bad_request)?;
    let obj = update_loop(
        api,
        ctx,
        r,
        precondition,
        |_old| Ok(Some(new.clone())),
        "Update",
    )
    .await?;
    Ok(with_warnings(
        render_one(ctx, r, &obj, StatusCode::OK),
        &findings.warnings,
    ))
}

/// The name and namespace in a body must match the URL.
fn check_identity(ctx: &Ctx, r: &Resource, obj: &Value) -> ApiResult<()> {
    let name = meta::name(obj);
    if name != ctx.path.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            ctx.path.name
        )));
    }
    let ns = meta::namespace(obj);
    if r.namespaced && !ns.is_empty() && ns != ctx.path.namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Read-modify-write: `compute` turns the stored object into the new one (`None` = the object
/// does not exist and the caller handles creation). Retries on conflicts unless `precondition`.
pub(crate) async fn update_loop(
    api: &Arc<ApiServer>,
    ctx: &Ctx,
    r: &'static Resource,
    precondition: Option<i64>,
    compute: impl Fn(&Value) -> ApiResult<Option<Value>>,
    operation: &str,
) -> ApiResult<Value> {
    for _ in 0..MAX_RETRIES {
        let old = api
            .store
            .get_existing(r, &ctx.path.namespace, &ctx.path.name)
            .await?;
        let old_rev = meta::parse_rv(meta::resource_version(&old))
            .ok()
            .flatten()
            .unwrap_or(0);
        if let Some(p) = precondition
            && p != old_rev
        {
            return Err(ApiError::stale(r, &ctx.path.name));
        }
        let Some(mut obj) = compute(&old)? else {
            return Err(ApiError::not_found(r, &ctx.path.name));
        };
        meta::metadata_mut(&mut obj).insert("namespace".into(), json!(ctx.path.namespace));
        if !r.namespaced {
            meta::metadata_mut(&mut obj).remove("namespace");
        }
        strategy::prepare_update(r, &mut obj, &old, ctx.path.sub);
        api.admission.defaults(r, &mut obj);
        if operation == "Update" {
            record_managed(api, ctx, r, Some(&old), &mut obj)?;
        }
        let extra = api
            .admission
            .mutate(&api.store, r, &mut obj, Some(&old))
            .await?;
        api.admission
            .validate(&api.store, r, &obj, Some(&old))
            .await?;
        if unchanged(&obj, &old) {
            return Ok(old);
        }
        if ctx.query.dry_run {
            return Ok(obj);
        }
        // Removing the last finalizer of an object being deleted completes the deletion.
        if deletion_complete(r, &obj) {
            let mut extra_del = api.admission.on_delete(r, &obj);
            extra_del.conditions.extend(extra.conditions);
            match api
                .store
                .delete(r, &ctx.path.namespace, &ctx.path.name, old_rev, extra_del)
                .await
            {
                Ok(rev) => {
                    meta::set_resource_version(&mut obj, rev);
                    return Ok(obj);
                }
                Err(e) if e.code == 409 && precondition.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
        match api.store.update(r, obj, old_rev, extra).await {
            Ok(o) => return Ok(o),
            Err(e) if e.code == 409 && precondition.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        r,
        &ctx.path.name,
        "the object is being modified too often; try again",
    ))
}

/// An object marked for deletion whose last finalizer is gone is removed.
fn deletion_complete(r: &Resource, obj: &Value) -> bool {
    let namespace_finalizers = r.group.is_empty()
        && r.kind == "Namespace"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    meta::deletion_timestamp(obj).is_some()
        && meta::finalizers(obj).is_empty()
        && !namespace_finalizers
        && !awaits_kubelet(r, obj)
}

/// A pod being deleted gracefully on a node is removed by its kubelet, not by the last finalizer.
pub fn awaits_kubelet(r: &Resource, obj: &Value) -> bool {
    r.group.is_empty()
        && r.kind == "Pod"
        && obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
        && !meta::str_at(obj, "/spec/nodeName")
            .unwrap_or_default()
            .is_empty()
}

/// Equal apart from the resource version and managed-field timestamps: nothing to write.
fn unchanged(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
                for e in mf.iter_mut() {
                    if let Value::Object(e) = e {
                        e.remove("time");
                    }
                }
            }
        }
        v
    };
    strip(new) == strip(old)
}

pub async fn patch(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let ct = content_type(ctx);
    let ty = super::negotiate::body_type(ct)
        .filter(|t| !matches!(t, BodyType::Json | BodyType::Yaml | BodyType::Protobuf))
        .ok_or_else(|| ApiError::unsupported_media_type(ct.unwrap_or_default()))?;
    let (patch, dups) = decode::parse_body(body, ty)?;
    if ty == BodyType::ApplyPatch {
        return apply(api, ctx, r, patch, &dups).await;
    }
    let precondition = match &patch {
        Value::Object(_) => {
            meta::parse_rv(meta::resource_version(&patch)).map_err(ApiError::bad_request)?
        }
        _ => None,
    };
    let schema = api.catalog.kind(r.group, r.version, r.kind);
    let warnings = std::sync::Mutex::new(Vec::new());
    let compute = |old: &Value| -> ApiResult<Option<Value>> {
        let patched = apply_patch(&api.catalog, schema, ty, old, &patch)?;
        let (checked, findings) =
            decode::check_object(&api.catalog, r, patched, &dups, ctx.query.field_validation)?;
        if let Ok(mut w) = warnings.lock() {
            *w = findings.warnings;
        }
        check_patch_identity(ctx, r, old, &checked)?;
        Ok(Some(checked))
    };
    let obj = update_loop(api, ctx, r, precondition, compute, "Update").await?;
    let w = warnings.into_inner().unwrap_or_default();
    Ok(with_warnings(render_one(ctx, r, &obj, StatusCode::OK), &w))
}

/// Applies a JSON, merge or strategic merge patch to `old`.
pub(crate) fn apply_patch(
    catalog: &crate::schema::Catalog,
    schema: Option<&Value>,
    ty: BodyType,
    old: &Value,
    patch: &Value,
) -> ApiResult<Value> {
    Ok(match ty {
        BodyType::JsonPatch => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = old.clone();
            json_patch::patch(&mut doc, &p).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            doc
        }
        BodyType::MergePatch => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut doc = old.clone();
            json_patch::merge(&mut doc, patch);
            doc
        }
        BodyType::StrategicMergePatch => {
            strategic::apply(catalog, schema, old, patch).map_err(|e| {
                if e.upstream_status() == 422 {
                    ApiError::new(422, "Invalid", e.to_string())
                } else {
                    ApiError::bad_request(e.to_string())
                }
            })?
        }
        BodyType::Json | BodyType::Yaml | BodyType::ApplyPatch | BodyType::Protobuf => {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
    })
}

/// A patch may not rename an object or move it (the URL names it).
fn check_patch_identity(ctx: &Ctx, r: &Resource, old: &Value, new: &Value) -> ApiResult<()> {
    if meta::name(new) != meta::name(old) {
        return Err(ApiError::invalid_field(
            r,
            &ctx.path.name,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: \"{}\": field is immutable", meta::name(new)),
        ));
    }
    if r.namespaced
        && meta::namespace(new) != meta::namespace(old)
        && !meta::namespace(new).is_empty()
    {
        return Err(ApiError::invalid_field(
            r,
            &ctx.path.name,
            "metadata.namespace",
            "FieldValueInvalid",
            format!(
                "Invalid value: \"{}\": field is immutable",
                meta::namespace(new)
            ),
        ));
    }
    if !meta::uid(new).is_empty() && meta::uid(new) != meta::uid(old) {
        return Err(ApiError::invalid_field(
            r,
            &ctx.path.name,
            "metadata.uid",
            "FieldValueInvalid",
            format!("Invalid value: \"{}\": field is immutable", meta::uid(new)),
        ));
    }
    Ok(())
}

/// Server-side apply (`application/apply-patch+yaml`).
async fn apply(
    api: &Arc<ApiServer>,
    ctx: &Ctx,
    r: &'static Resource,
    config: Value,
    dups: &[String],
) -> ApiResult<Response<Body>> {
    let Some(manager) = ctx.query.field_manager.clone() else {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requires fieldManager to be set",
        ));
    };
    // The applied configuration must be a well-formed partial object of this kind.
    let (checked, findings) = decode::check_object(
        &api.catalog,
        r,
        config.clone(),
        dups,
        ctx.query.field_validation,
    )?;
    check_identity(ctx, r, &checked)?;
    let mut config = config;
    if let Value::Object(m) = &mut config {
        m.entry("apiVersion")
            .or_insert_with(|| json!(r.api_version()));
        m.entry("kind").or_insert_with(|| json!(r.kind));
    }
    let schema = api.catalog.kind(r.group, r.version, r.kind);
    let sub = ctx.path.sub.map(Sub::name);
    let now = meta::now();
    let existing = api
        .store
        .get(r, &ctx.path.namespace, &ctx.path.name)
        .await?;
    if existing.is_none() {
        if ctx.path.sub.is_some() {
            return Err(ApiError::not_found(r, &ctx.path.name));
        }
        let applied = managed::apply(
            &api.catalog,
            schema,
            None,
            &config,
            &manager,
            &r.api_version(),
            sub,
            ctx.query.force,
            &now,
        )
        .map_err(|e| apply_error(r, &ctx.path.name, e))?;
        let (obj, _) = decode::check_object(
            &api.catalog,
            r,
            applied,
            &[],
            super::query::FieldValidation::Ignore,
        )?;
        match create_object(api, ctx, r, obj, "Apply").await {
            Ok(created) => {
                return Ok(with_warnings(
                    render_one(ctx, r, &created, StatusCode::CREATED),
                    &findings.warnings,
                ));
            }
            // Created meanwhile by someone else: apply onto it below.
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => return Err(e),
        }
    }
    let precondition =
        meta::parse_rv(meta::resource_version(&config)).map_err(ApiError::bad_request)?;
    let compute = |old: &Value| -> ApiResult<Option<Value>> {
        let merged = managed::apply(
            &api.catalog,
            schema,
            Some(old),
            &config,
            &manager,
            &r.api_version(),
            sub,
            ctx.query.force,
            &now,
        )
        .map_err(|e| apply_error(r, &ctx.path.name, e))?;
        let (obj, _) = decode::check_object(
            &api.catalog,
            r,
            merged,
            &[],
            super::query::FieldValidation::Ignore,
        )?;
        Ok(Some(obj))
    };
    let obj = update_loop(api, ctx, r, precondition, compute, "Apply").await?;
    Ok(with_warnings(
        render_one(ctx, r, &obj, StatusCode::OK),
        &findings.warnings,
    ))
}

fn apply_error(r: &Resource, name: &str, e: managed::ApplyError) -> ApiError {
    match e {
        managed::ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.cause_message(), "field": c.field}))
                .collect();
            let mut err = ApiError::conflict(r, name, "");
            err.message = managed::conflicts_message(&conflicts);
            if let Some(d) = err.details.as_mut() {
                d["causes"] = Value::Array(causes);
            }
            err
        }
        managed::ApplyError::BadRequest(m) => ApiError::bad_request(m),
        managed::ApplyError::InvalidConfig { .. } => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}
