//! Subresources beyond status: scale, pod binding and eviction, namespace finalize, service
//! account tokens, and the node-served ones (log, exec, attach, port-forward, proxy).

use super::decode;
use super::negotiate::{self, BodyType};
use super::selectors::LabelSelector;
use super::status::{ApiError, ApiResult};
use super::write::{apply_patch, update_loop};
use super::{ApiServer, Body, Ctx, object_response};
use crate::registry::meta;
use crate::registry::resources::{self, Sub};
use http::{Response, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn handle(
    api: &Arc<ApiServer>,
    ctx: &Ctx,
    sub: Sub,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    match (sub, ctx.verb) {
        (Sub::Scale, "get") => {
            let obj = api
                .store
                .get_existing(ctx.resource(), &ctx.path.namespace, &ctx.path.name)
                .await?;
            Ok(object_response(
                StatusCode::OK,
                &scale_view(&obj)?,
                ctx.output,
                ctx.query.pretty,
            ))
        }
        (Sub::Scale, "update" | "patch") => scale_update(api, ctx, body).await,
        (Sub::Finalize, "update") => super::write::update(api, ctx, body).await,
        (Sub::Binding, "create") => bind(api, ctx, body).await,
        (Sub::Eviction, "create") => evict(api, ctx, body).await,
        (Sub::Token, "create") => token_request(api, ctx, body).await,
        (Sub::Log | Sub::Exec | Sub::Attach | Sub::PortForward | Sub::Proxy, _) => {
            node_served(api, ctx, sub).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The `autoscaling/v1` Scale of a workload.
fn scale_view(obj: &Value) -> ApiResult<Value> {
    let selector = match obj.pointer("/spec/selector") {
        Some(sel) if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() => {
            LabelSelector::from_object(sel)
                .map(|s| s.to_string_form())
                .unwrap_or_default()
        }
        // ReplicationControllers select with a plain map.
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        }
    }))
}

async fn scale_update(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let ty = negotiate::body_type(ct)
        .ok_or_else(|| ApiError::unsupported_media_type(ct.unwrap_or_default()))?;
    if ty == BodyType::ApplyPatch {
        return Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml",
        ));
    }
    let (input, _) = decode::parse_body(body, ty)?;
    let precondition = match (ctx.verb, &input) {
        ("update", v) => {
            meta::parse_rv(meta::resource_version(v)).map_err(ApiError::bad_request)?
        }
        _ => None,
    };
    let scale_kind = resources::find("autoscaling", "v1", "horizontalpodautoscalers");
    let compute = |old: &Value| -> ApiResult<Option<Value>> {
        let current = scale_view(old)?;
        let wanted = if ctx.verb == "update" {
            input.clone()
        } else {
            // A Scale has no merge keys: a strategic patch behaves as a merge patch.
            let ty = if ty == BodyType::StrategicMergePatch {
                BodyType::MergePatch
            } else {
                ty
            };
            apply_patch(&api.catalog, None, ty, &current, &input)?
        };
        let replicas = match wanted.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("Scale.spec.replicas must be an integer"))?,
        };
        if replicas < 0 {
            let name = meta::name(old).to_string();
            let _ = scale_kind;
            return Err(ApiError {
                details: Some(
                    json!({"name": name, "group": "autoscaling", "kind": "Scale",
                    "causes": [{"reason": "FieldValueInvalid", "message": format!("Invalid value: {replicas}: must be greater than or equal to 0"), "field": "spec.replicas"}]}),
                ),
                ..ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                )
            });
        }
        let mut o = old.clone();
        if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), json!(replicas));
        }
        Ok(Some(o))
    };
    let updated = update_loop(api, ctx, r, precondition, compute, "Update").await?;
    Ok(object_response(
        StatusCode::OK,
        &scale_view(&updated)?,
        ctx.output,
        ctx.query.pretty,
    ))
}

/// `pods/binding`: the scheduler assigns a pod to a node, once.
async fn bind(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let (binding, _) = decode::object_body(ctx, body)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid_field(
            r,
            &ctx.path.name,
            "target.name",
            "FieldValueRequired",
            "Required value",
        ));
    }
    let name = ctx.path.name.clone();
    for attempt in 0..16 {
        // First try the watch cache's copy: the write is conditional on its revision, so a
        // stale copy costs a retry from storage, and a fresh one saves a storage read.
        let cached = (attempt == 0)
            .then(|| api.cache(r).ok()?.get(&r.key(&ctx.path.namespace, &name)))
            .flatten();
        let mut pod = match cached {
            Some(p) => (*p).clone(),
            None => {
                api.store
                    .get_existing(r, &ctx.path.namespace, &name)
                    .await?
            }
        };
        let rev = meta::parse_rv(meta::resource_version(&pod))
            .ok()
            .flatten()
            .unwrap_or(0);
        if meta::deletion_timestamp(&pod).is_some() {
            return Err(ApiError::conflict(
                r,
                &name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        let current = meta::str_at(&pod, "/spec/nodeName")
            .unwrap_or_default()
            .to_string();
        if !current.is_empty() {
            return Err(ApiError::conflict(
                r,
                &name,
                &format!("pod {name} is already assigned to node \"{current}\""),
            ));
        }
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        if let Some(ann) = binding
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
        {
            let m = meta::metadata_mut(&mut pod);
            let a = m.entry("annotations").or_insert_with(|| json!({}));
            if let Value::Object(a) = a {
                for (k, v) in ann {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
        set_condition(&mut pod, "PodScheduled", "True", "");
        if ctx.query.dry_run {
            break;
        }
        match api.store.update(r, pod, rev, Default::default()).await {
            Ok(_) => break,
            Err(e) if e.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(object_response(
        StatusCode::CREATED,
        &success(),
        ctx.output,
        ctx.query.pretty,
    ))
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

/// Sets a pod condition (type → status), keeping the others.
fn set_condition(pod: &mut Value, ty: &str, status: &str, reason: &str) {
    let now = meta::now();
    let Some(root) = pod.as_object_mut() else {
        return;
    };
    let st = root.entry("status").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else { return };
    let conds = st.entry("conditions").or_insert_with(|| json!([]));
    let Value::Array(list) = conds else { return };
    let mut c =
        json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
    {
        Some(existing) => *existing = c,
        None => list.push(c),
    }
}

/// `pods/eviction`: delete a pod unless a PodDisruptionBudget forbids it (429).
async fn evict(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let (eviction, _) = decode::object_body(ctx, body)?;
    let pod = api
        .store
        .get_existing(r, &ctx.path.namespace, &ctx.path.name)
        .await?;
    let terminal = matches!(
        meta::str_at(&pod, "/status/phase"),
        Some("Succeeded" | "Failed")
    );
    if !terminal && meta::deletion_timestamp(&pod).is_none() {
        charge_disruption_budget(api, &pod).await?;
    }
    let mut delete_body = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
    if let Some(uid) = Some(meta::uid(&pod)).filter(|u| !u.is_empty())
        && delete_body.pointer("/preconditions/uid").is_none()
        && let Value::Object(m) = &mut delete_body
    {
        m.insert("preconditions".into(), json!({"uid": uid}));
    }
    let delete_ctx = Ctx {
        user: ctx.user.clone(),
        verb: "delete",
        path: ctx.path.clone(),
        query: ctx.query.clone(),
        output: ctx.output,
        headers: ctx.headers.clone(),
        method: http::Method::DELETE,
        upgrade: std::sync::Mutex::new(None),
    };
    let mut path = delete_ctx.path.clone();
    path.sub = None;
    let delete_ctx = Ctx { path, ..delete_ctx };
    let bytes = serde_json::to_vec(&delete_body).unwrap_or_default();
    super::delete::delete(api, &delete_ctx, &bytes).await?;
    Ok(object_response(
        StatusCode::CREATED,
        &success(),
        ctx.output,
        ctx.query.pretty,
    ))
}

/// Takes one allowed disruption from every budget covering the pod, or refuses with 429.
async fn charge_disruption_budget(api: &Arc<ApiServer>, pod: &Value) -> ApiResult<()> {
    let Some(pdbs) = resources::find("policy", "v1", "poddisruptionbudgets") else {
        return Ok(());
    };
    let page = api
        .store
        .list(pdbs, meta::namespace(pod), 0, None, 0, &|_| true)
        .await?;
    for pdb in page.items {
        let Some(sel) = pdb.pointer("/spec/selector") else {
            continue;
        };
        let Ok(sel) = LabelSelector::from_object(sel) else {
            continue;
        };
        if sel.is_empty() || !sel.matches_object(pod) {
            continue;
        }
        let allowed = pdb
            .pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if allowed < 1 {
            return Err(ApiError {
                details: Some(
                    json!({"causes": [{"reason": "DisruptionBudget", "message": format!(
                    "The disruption budget {} needs {} healthy pods and has {} currently",
                    meta::name(&pdb),
                    pdb.pointer("/status/desiredHealthy").and_then(Value::as_i64).unwrap_or(0),
                    pdb.pointer("/status/currentHealthy").and_then(Value::as_i64).unwrap_or(0))}]}),
                ),
                ..ApiError::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                )
            });
        }
        let rev = meta::parse_rv(meta::resource_version(&pdb))
            .ok()
            .flatten()
            .unwrap_or(0);
        let mut charged = pdb.clone();
        if let Some(st) = charged.get_mut("status").and_then(Value::as_object_mut) {
            st.insert("disruptionsAllowed".into(), json!(allowed - 1));
            let dp = st.entry("disruptedPods").or_insert_with(|| json!({}));
            if let Value::Object(dp) = dp {
                dp.insert(meta::name(pod).to_string(), json!(meta::now()));
            }
        }
        api.store
            .update(pdbs, charged, rev, Default::default())
            .await
            .map_err(|e| {
                if e.code == 409 {
                    ApiError::too_many_requests(
                        "the disruption budget changed; try the eviction again",
                    )
                } else {
                    e
                }
            })?;
    }
    Ok(())
}

/// A 422 about a TokenRequest field, worded as kube-apiserver does.
fn token_request_invalid(name: &str, field: &str, message: String) -> ApiError {
    ApiError {
        details: Some(
            json!({"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest",
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]}),
        ),
        ..ApiError::new(
            422,
            "Invalid",
            format!("TokenRequest.authentication.k8s.io \"{name}\" is invalid: {field}: {message}"),
        )
    }
}

/// `serviceaccounts/<name>/token` (TokenRequest): a signed token for the service account,
/// optionally bound to a pod, secret or node.
async fn token_request(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    use crate::auth::serviceaccount::{self as sat, Binding, Claims, Ref};
    let (mut req, _) = decode::object_body(ctx, body)?;
    let (ns, name) = (ctx.path.namespace.as_str(), ctx.path.name.as_str());
    if !req.is_object() {
        return Err(ApiError::bad_request(
            "a TokenRequest must be a JSON object",
        ));
    }
    for (field, want) in [("name", name), ("namespace", ns)] {
        if let Some(got) = req
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && *v != want)
        {
            return Err(token_request_invalid(
                name,
                &format!("metadata.{field}"),
                format!(
                    "Invalid value: \"{got}\": must match the service account {field} if specified"
                ),
            ));
        }
    }
    let expiration = match req.pointer("/spec/expirationSeconds") {
        None | Some(Value::Null) => sat::DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    if expiration < sat::MIN_EXPIRATION_SECONDS {
        return Err(token_request_invalid(
            name,
            "spec.expirationSeconds",
            format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
        ));
    }
    if expiration > i64::from(u32::MAX) {
        return Err(token_request_invalid(
            name,
            "spec.expirationSeconds",
            format!(
                "Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let mut audiences: Vec<String> = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = vec![sat::ISSUER.to_string()];
    }
    let sa = api.store.get_existing(ctx.resource(), ns, name).await?;
    let sa_ref = Ref {
        name: name.to_string(),
        uid: meta::uid(&sa).to_string(),
    };
    let core = |plural: &str| {
        resources::find("", "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))
    };
    let mut binding = Binding::default();
    let bound = req
        .pointer("/spec/boundObjectRef")
        .filter(|b| !b.is_null())
        .cloned();
    if let Some(b) = &bound {
        let field = |k: &str| {
            b.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind, obj_name, want_uid) = (
            field("apiVersion"),
            field("kind"),
            field("name"),
            field("uid"),
        );
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version.as_str()),
        };
        let (plural, namespace) = match (group, kind.as_str()) {
            ("", "Pod") => ("pods", ns),
            ("", "Secret") => ("secrets", ns),
            ("", "Node") => ("nodes", ""),
            _ => {
                // Go's GroupVersionKind.String()
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        let r = core(plural)?;
        let obj = api.store.get_existing(r, namespace, &obj_name).await?;
        let uid = meta::uid(&obj).to_string();
        if !want_uid.is_empty() && want_uid != uid {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {kind} \"{obj_name}\": the UID in the bound object reference ({want_uid}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
                ),
            ));
        }
        let this = Some(Ref {
            name: obj_name.clone(),
            uid,
        });
        match plural {
            "pods" => {
                let runs_as = meta::str_at(&obj, "/spec/serviceAccountName").unwrap_or_default();
                if runs_as != name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount \"{name}\" to pod running with different serviceaccount name."
                    )));
                }
                binding.pod = this;
                // The node a pod runs on is named in its tokens (informational).
                let node = meta::str_at(&obj, "/spec/nodeName").unwrap_or_default();
                if !node.is_empty()
                    && let Some(n) = api.store.get(core("nodes")?, "", node).await?
                {
                    binding.node = Some(Ref {
                        name: node.to_string(),
                        uid: meta::uid(&n).to_string(),
                    });
                }
            }
            "secrets" => binding.secret = this,
            _ => binding.node = this,
        }
    }
    // Kubelets ask for 3607 s; such pod tokens are valid for a year but warn after 3607 s.
    let (lifetime, warn_after) = if binding.pod.is_some()
        && expiration == sat::WARN_ONLY_EXPIRATION_SECONDS
        && audiences.iter().any(|a| a == sat::ISSUER)
    {
        (sat::EXTENDED_EXPIRATION_SECONDS, Some(expiration))
    } else {
        (expiration, None)
    };
    let now = jiff::Timestamp::now();
    let claims = Claims::new(
        ns,
        sa_ref,
        binding,
        audiences.clone(),
        now.as_second(),
        lifetime,
        warn_after,
    );
    let token = if ctx.query.dry_run {
        String::new()
    } else {
        api.sa_keys
            .sign(&claims)
            .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?
    };
    let expires = now + jiff::SignedDuration::from_secs(expiration);
    let m = meta::metadata_mut(&mut req);
    m.insert("name".into(), json!(name));
    m.insert("namespace".into(), json!(ns));
    m.insert("creationTimestamp".into(), json!(meta::format_time(now)));
    if let Value::Object(o) = &mut req {
        o.insert("kind".into(), json!("TokenRequest"));
        o.insert("apiVersion".into(), json!("authentication.k8s.io/v1"));
        o.insert(
            "spec".into(),
            json!({"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": bound}),
        );
        o.insert(
            "status".into(),
            json!({"token": token, "expirationTimestamp": meta::format_time(expires)}),
        );
    }
    Ok(object_response(
        StatusCode::CREATED,
        &req,
        ctx.output,
        ctx.query.pretty,
    ))
}

/// Log, exec, attach and port-forward are served by the node the pod runs on.
async fn node_served(api: &Arc<ApiServer>, ctx: &Ctx, sub: Sub) -> ApiResult<Response<Body>> {
    if ctx.resource().kind == "Pod" && sub != Sub::Proxy {
        return super::nodeproxy::serve(api, ctx, sub).await;
    }
    Err(ApiError::unavailable(format!(
        "{}/{} is not served by ketch",
        ctx.resource().plural,
        sub.name()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_of_a_deployment() {
        let d = json!({"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_view(&d).expect("scale");
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
    }
}
