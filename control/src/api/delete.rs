//! DELETE and DELETECOLLECTION: grace periods, preconditions, propagation policy and
//! finalizers. An object with finalizers (or a pod still on a node) gets a deletionTimestamp and
//! stays until they are done; anything else is removed in one transaction.

use super::read::{self, render_one};
use super::status::{self, ApiError, ApiResult};
use super::{ApiServer, Body, Ctx, object_response};
use crate::registry::meta;
use crate::registry::resources::Resource;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

#[derive(Debug, Clone, Default)]
struct Options {
    grace: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    propagation: Option<String>,
    dry_run: bool,
}

fn options(ctx: &Ctx, body: &[u8]) -> ApiResult<Options> {
    let mut o = Options {
        grace: ctx.query.grace_period_seconds,
        propagation: ctx.query.propagation_policy.clone(),
        dry_run: ctx.query.dry_run,
        ..Options::default()
    };
    if ctx.query.orphan_dependents == Some(true) && o.propagation.is_none() {
        o.propagation = Some("Orphan".into());
    }
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        let (v, _) = super::decode::object_body(ctx, body).map_err(|e| {
            ApiError::bad_request(format!("error decoding DeleteOptions: {}", e.message))
        })?;
        if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
            o.grace = Some(g);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            o.propagation = Some(p.to_string());
        }
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && o.propagation.is_none()
        {
            o.propagation = Some("Orphan".into());
        }
        o.uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        o.resource_version = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
        if let Some(Value::Array(d)) = v.get("dryRun") {
            if d.iter().any(|x| x != "All") {
                return Err(ApiError::bad_request(
                    "dryRun: Unsupported value: supported values: \"All\"",
                ));
            }
            o.dry_run |= !d.is_empty();
        }
    }
    match o.propagation.as_deref() {
        None | Some("Background" | "Foreground" | "Orphan") => {}
        Some(p) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    }
    if o.grace.is_some_and(|g| g < 0) {
        o.grace = Some(0);
    }
    Ok(o)
}

pub async fn delete(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let opts = options(ctx, body)?;
    api.admission.validate_delete(r, &ctx.path.name)?;
    let (code, obj, deleted) =
        delete_one(api, r, &ctx.path.namespace, &ctx.path.name, &opts).await?;
    if deleted && !returns_object(r) {
        return Ok(object_response(
            code,
            &status::success(r, &ctx.path.name, meta::uid(&obj)),
            ctx.output,
            ctx.query.pretty,
        ));
    }
    Ok(render_one(ctx, r, &obj, code))
}

/// Kinds whose immediate deletion answers with the object rather than a Status.
fn returns_object(r: &Resource) -> bool {
    r.group.is_empty() && matches!(r.kind, "Pod" | "Service" | "Namespace")
}

/// Deletes one object; returns (HTTP code, object, whether it is gone now).
async fn delete_one(
    api: &Arc<ApiServer>,
    r: &'static Resource,
    namespace: &str,
    name: &str,
    opts: &Options,
) -> ApiResult<(StatusCode, Value, bool)> {
    for _ in 0..16 {
        let obj = api.store.get_existing(r, namespace, name).await?;
        let rev = meta::parse_rv(meta::resource_version(&obj))
            .ok()
            .flatten()
            .unwrap_or(0);
        if let Some(uid) = &opts.uid
            && uid != meta::uid(&obj)
        {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::uid(&obj)
                ),
            ));
        }
        if let Some(want) = &opts.resource_version
            && want != meta::resource_version(&obj)
        {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    meta::resource_version(&obj)
                ),
            ));
        }
        let mut pending = obj.clone();
        let mut finalizers = meta::finalizers(&obj);
        match opts.propagation.as_deref() {
            Some("Foreground") if !finalizers.iter().any(|f| f == FOREGROUND) => {
                finalizers.retain(|f| f != ORPHAN);
                finalizers.push(FOREGROUND.into());
            }
            Some("Orphan") if !finalizers.iter().any(|f| f == ORPHAN) => {
                finalizers.retain(|f| f != FOREGROUND);
                finalizers.push(ORPHAN.into());
            }
            _ => {}
        }
        let grace = grace_period(r, &obj, opts.grace);
        let namespace_finalizers = r.group.is_empty()
            && r.kind == "Namespace"
            && obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
        let graceful_pod =
            r.group.is_empty() && r.kind == "Pod" && grace > 0 && on_node_and_running(&obj);
        if finalizers.is_empty() && !namespace_finalizers && !graceful_pod {
            if opts.dry_run {
                return Ok((StatusCode::OK, obj, true));
            }
            let extra = api.admission.on_delete(r, &obj);
            return match api.store.delete(r, namespace, name, rev, extra).await {
                Ok(drev) => {
                    let mut gone = obj;
                    meta::set_resource_version(&mut gone, drev);
                    Ok((StatusCode::OK, gone, true))
                }
                Err(e) if e.code == 409 => continue,
                Err(e) => Err(e),
            };
        }
        // Deletion in progress: mark it, shortening (never lengthening) an earlier grace period.
        let m = meta::metadata_mut(&mut pending);
        m.insert("finalizers".into(), json!(finalizers));
        if finalizers.is_empty() {
            m.remove("finalizers");
        }
        let current = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
        let already = m.contains_key("deletionTimestamp");
        let effective = match current {
            Some(c) if already => c.min(grace),
            _ => grace,
        };
        if !already || Some(effective) != current {
            let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(effective);
            m.insert("deletionTimestamp".into(), json!(meta::format_time(when)));
            m.insert("deletionGracePeriodSeconds".into(), json!(effective));
            if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                m.insert("generation".into(), json!(g + 1));
            }
        }
        if r.group.is_empty()
            && r.kind == "Namespace"
            && let Some(status) = pending.get_mut("status").and_then(Value::as_object_mut)
        {
            status.insert("phase".into(), json!("Terminating"));
        }
        if pending == obj || opts.dry_run {
            return Ok((StatusCode::ACCEPTED, pending, false));
        }
        match api.store.update(r, pending, rev, Default::default()).await {
            Ok(updated) => return Ok((StatusCode::ACCEPTED, updated, false)),
            Err(e) if e.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        r,
        name,
        "the object is being modified too often; try again",
    ))
}

/// The grace period of a deletion: the request's, else the pod's own, else none.
fn grace_period(r: &Resource, obj: &Value, requested: Option<i64>) -> i64 {
    if let Some(g) = requested {
        return g;
    }
    if r.group.is_empty() && r.kind == "Pod" {
        return obj
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30);
    }
    0
}

/// A pod bound to a node and not finished: its kubelet must stop it before it disappears.
fn on_node_and_running(pod: &Value) -> bool {
    let bound = !meta::str_at(pod, "/spec/nodeName")
        .unwrap_or_default()
        .is_empty();
    let phase = meta::str_at(pod, "/status/phase").unwrap_or_default();
    bound && !matches!(phase, "Succeeded" | "Failed")
}

pub async fn delete_collection(
    api: &Arc<ApiServer>,
    ctx: &Ctx,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let opts = options(ctx, body)?;
    let keep = read::filter(r, &ctx.query)?;
    let page = api
        .store
        .list(r, &ctx.path.namespace, 0, None, 0, &keep)
        .await?;
    let mut out = Vec::new();
    for obj in page.items {
        let (ns, name) = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        if api.admission.validate_delete(r, &name).is_err() {
            continue;
        }
        match delete_one(api, r, &ns, &name, &opts).await {
            Ok((_, o, _)) => out.push(o),
            // Gone meanwhile: that is what was asked.
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let rv = page.revision.to_string();
    Ok(object_response(
        StatusCode::OK,
        &read::list_object(r, out, &rv, None),
        ctx.output,
        ctx.query.pretty,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::resources::find;

    #[test]
    fn pods_take_their_own_grace_period() {
        let pods = find("", "v1", "pods").expect("pods");
        let pod = json!({"spec": {"terminationGracePeriodSeconds": 5, "nodeName": "n1"}, "status": {"phase": "Running"}});
        assert_eq!(grace_period(pods, &pod, None), 5);
        assert_eq!(grace_period(pods, &pod, Some(0)), 0);
        assert!(on_node_and_running(&pod));
        let cms = find("", "v1", "configmaps").expect("configmaps");
        assert_eq!(grace_period(cms, &json!({}), None), 0);
    }
}
