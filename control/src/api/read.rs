//! GET of one object and LIST.

use super::negotiate::Output;
use super::query::{Query, RvMatch};
use super::status::{ApiError, ApiResult};
use super::{ApiServer, Body, Ctx, object_response, table};
use crate::registry::resources::Resource;
use crate::registry::{convert, meta};
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn get(api: &Arc<ApiServer>, ctx: &Ctx) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    // "Any version" is served from the watch cache, as Kubernetes does.
    if ctx.query.resource_version.as_deref() == Some("0")
        && let Ok(cache) = api.cache(r)
    {
        let obj = cache
            .get(&r.key(&ctx.path.namespace, &ctx.path.name))
            .map(|o| convert::from_stored(r, (*o).clone()))
            .ok_or_else(|| ApiError::not_found(r, &ctx.path.name))?;
        return Ok(render_one(ctx, r, &obj, StatusCode::OK));
    }
    let obj = api
        .store
        .get_existing(r, &ctx.path.namespace, &ctx.path.name)
        .await?;
    Ok(render_one(ctx, r, &obj, StatusCode::OK))
}

/// One object in the form the client asked for.
pub fn render_one(ctx: &Ctx, r: &Resource, obj: &Value, code: StatusCode) -> Response<Body> {
    let v = match ctx.output {
        Output::Table => table::table(
            r,
            std::slice::from_ref(obj),
            ctx.query.include_object,
            meta::resource_version(obj),
            None,
            true,
        ),
        Output::Metadata => table::partial_metadata(obj),
        _ => obj.clone(),
    };
    object_response(code, &v, ctx.output, ctx.query.pretty)
}

/// A predicate for label and field selectors (and the namespace, for field selectors on it).
pub fn filter(r: &'static Resource, q: &Query) -> ApiResult<impl Fn(&Value) -> bool + use<>> {
    for (field, _, _) in &q.field_selector.0 {
        let known = matches!(field.as_str(), "metadata.name" | "metadata.namespace")
            || r.field_selectors.iter().any(|(f, _)| f == field);
        if !known {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {field}"
            )));
        }
    }
    let labels = q.label_selector.clone();
    let fields = q.field_selector.clone();
    Ok(move |obj: &Value| {
        labels.matches_object(obj)
            && fields.matches(|f| match f {
                "metadata.name" => Some(meta::name(obj).to_string()),
                "metadata.namespace" => Some(meta::namespace(obj).to_string()),
                other => r
                    .field_selectors
                    .iter()
                    .find(|(name, _)| *name == other)
                    .and_then(|(_, ptr)| meta::field_value(obj, ptr)),
            })
    })
}

/// The revision a list reads at, per `resourceVersion` and `resourceVersionMatch`.
pub fn list_revision(q: &Query) -> ApiResult<i64> {
    let rv = match &q.resource_version {
        None => None,
        Some(s) => meta::parse_rv(s).map_err(ApiError::bad_request)?,
    };
    match (rv, q.rv_match) {
        (None, RvMatch::Unset) => Ok(0),
        (None, m) => Err(ApiError::bad_request(format!(
            "resourceVersionMatch: Forbidden: resourceVersionMatch {m:?} is forbidden unless resourceVersion is provided"
        ))),
        (Some(0), RvMatch::Exact) => Err(ApiError::bad_request(
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        )),
        (Some(n), RvMatch::Exact) => Ok(n),
        // Legacy semantics: a resourceVersion with a page limit means "exactly".
        (Some(n), RvMatch::Unset) if n > 0 && (q.limit > 0 || q.continue_token.is_some()) => Ok(n),
        (Some(_), _) => Ok(0),
    }
}

pub async fn list(api: &Arc<ApiServer>, ctx: &Ctx) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let keep = filter(r, &ctx.query)?;
    let revision = list_revision(&ctx.query)?;
    let any_version =
        ctx.query.resource_version.as_deref() == Some("0") && ctx.query.continue_token.is_none();
    let page = match api.cache(r) {
        // "Any version" lists come whole from the watch cache (the limit does not apply), as
        // Kubernetes serves them.
        Ok(cache) if any_version => {
            let (items, at) = cache.list(&r.namespace_prefix(&ctx.path.namespace));
            let items = items
                .into_iter()
                .map(|o| convert::from_stored(r, (*o).clone()))
                .filter(|o| keep(o))
                .collect();
            crate::registry::store::Page {
                items,
                revision: at,
                continue_token: None,
                remaining: None,
            }
        }
        _ => {
            api.store
                .list(
                    r,
                    &ctx.path.namespace,
                    ctx.query.limit,
                    ctx.query.continue_token.as_deref(),
                    revision,
                    &keep,
                )
                .await?
        }
    };
    let rv = page.revision.to_string();
    let v = match ctx.output {
        Output::Table => table::table(
            r,
            &page.items,
            ctx.query.include_object,
            &rv,
            page.continue_token.as_deref(),
            true,
        ),
        Output::Metadata => {
            let mut meta = json!({"resourceVersion": rv});
            if let Some(c) = &page.continue_token {
                meta["continue"] = json!(c);
            }
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": page.items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
            })
        }
        _ => list_object(r, page.items, &rv, page.continue_token.as_deref()),
    };
    Ok(object_response(
        StatusCode::OK,
        &v,
        ctx.output,
        ctx.query.pretty,
    ))
}

pub fn list_object(
    r: &Resource,
    items: Vec<Value>,
    rv: &str,
    continue_token: Option<&str>,
) -> Value {
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": format!("{}List", r.kind),
        "apiVersion": r.api_version(),
        "metadata": meta,
        "items": items,
    })
}
