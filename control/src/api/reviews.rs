//! Access and token reviews: create-only resources answered at once and never stored.

use super::decode;
use super::status::{ApiError, ApiResult};
use super::{ApiServer, Body, Ctx, object_response};
use crate::auth::authn::UserInfo;
use crate::auth::authz::{Attributes, Decision};
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn create(api: &Arc<ApiServer>, ctx: &Ctx, body: &[u8]) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let (raw, dups) = decode::object_body(ctx, body)?;
    let (mut review, _) =
        decode::check_object(&api.catalog, r, raw, &dups, ctx.query.field_validation)?;
    let status = match r.kind {
        "SelfSubjectAccessReview" => access_status(api, &ctx.user, review.get("spec"), None)?,
        "LocalSubjectAccessReview" => {
            let spec = review.get("spec");
            let ns = spec
                .and_then(|s| s.pointer("/resourceAttributes/namespace"))
                .and_then(Value::as_str);
            if ns.is_some_and(|n| n != ctx.path.namespace) {
                return Err(ApiError::bad_request(
                    "spec.resourceAttributes.namespace must match the namespace of the request",
                ));
            }
            access_status(api, &subject(spec), spec, Some(&ctx.path.namespace))?
        }
        "SubjectAccessReview" => {
            let spec = review.get("spec");
            let s = subject(spec);
            if s.name.is_empty() && s.groups.is_empty() {
                return Err(ApiError::bad_request(
                    "at least one of user or group must be specified",
                ));
            }
            access_status(api, &s, spec, None)?
        }
        "SelfSubjectRulesReview" => {
            let ns = review
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (resource_rules, non_resource_rules) = api.authorizer.rules_for(&ctx.user, ns);
            json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
        }
        "SelfSubjectReview" => json!({"userInfo": user_json(&ctx.user)}),
        "TokenReview" => {
            let token = review
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let audiences: Vec<String> = review
                .pointer("/spec/audiences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            match api.authenticate_token(token, &audiences).await {
                Some(Ok((u, auds))) => {
                    json!({"authenticated": true, "user": user_json(&u), "audiences": auds})
                }
                Some(Err(e)) => json!({"authenticated": false, "error": e.to_string()}),
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    if let Value::Object(m) = &mut review {
        m.insert("status".into(), status);
        m.entry("metadata").or_insert_with(|| json!({}));
    }
    Ok(object_response(
        StatusCode::CREATED,
        &review,
        ctx.output,
        ctx.query.pretty,
    ))
}

fn user_json(u: &UserInfo) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

fn subject(spec: Option<&Value>) -> UserInfo {
    let s = |k: &str| {
        spec.and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let groups = spec
        .and_then(|s| s.get("groups"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let extra: BTreeMap<String, Vec<String>> = spec
        .and_then(|s| s.get("extra"))
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    UserInfo {
        name: s("user"),
        uid: s("uid"),
        groups,
        extra,
    }
}

fn access_status(
    api: &ApiServer,
    user: &UserInfo,
    spec: Option<&Value>,
    namespace: Option<&str>,
) -> ApiResult<Value> {
    let res = spec.and_then(|s| s.get("resourceAttributes"));
    let non = spec.and_then(|s| s.get("nonResourceAttributes"));
    let field = |v: Option<&Value>, k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let attrs = match (res, non) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "spec.resourceAttributes: Invalid value: cannot be specified in combination with nonResourceAttributes",
            ));
        }
        (Some(ra), None) => Attributes {
            user: user.clone(),
            verb: field(Some(ra), "verb"),
            resource_request: true,
            namespace: namespace
                .map(String::from)
                .unwrap_or_else(|| field(Some(ra), "namespace")),
            api_group: field(Some(ra), "group"),
            resource: field(Some(ra), "resource"),
            subresource: field(Some(ra), "subresource"),
            name: field(Some(ra), "name"),
            path: String::new(),
        },
        (None, Some(na)) => Attributes {
            user: user.clone(),
            verb: field(Some(na), "verb"),
            resource_request: false,
            namespace: String::new(),
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            name: String::new(),
            path: field(Some(na), "path"),
        },
        (None, None) => {
            return Err(ApiError::bad_request(
                "spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
    };
    Ok(match api.authorizer.authorize(&attrs) {
        Decision::Allow { reason } => json!({"allowed": true, "reason": reason}),
        Decision::Deny { reason } => {
            let mut s = json!({"allowed": false});
            if !reason.is_empty() {
                s["reason"] = json!(reason);
            }
            s
        }
    })
}
