//! API discovery: legacy (`/api`, `/apis`, `/apis/<g>/<v>`) and aggregated (`apidiscovery.k8s.io/v2`).

use super::negotiate::Output;
use super::status::{ApiError, ApiResult};
use super::{Body, bytes_response, json_response};
use crate::registry::resources::{self, Resource, Storage};
use http::{Response, StatusCode};
use serde_json::{Value, json};

const DISCOVERY_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn verbs(r: &Resource) -> Vec<&'static str> {
    match r.storage {
        Storage::Virtual => vec!["create"],
        Storage::Stored => vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    }
}

fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    resources::RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

fn group_names() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for (g, _) in resources::group_versions() {
        if !g.is_empty() && !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

fn versions_of(group: &str) -> Vec<&'static str> {
    resources::group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(_, v)| v)
        .collect()
}

pub fn core_versions(output: Output) -> ApiResult<Response<Body>> {
    if output == Output::Discovery {
        return Ok(aggregated(&[""]));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }),
        false,
    ))
}

fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = versions_of(group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(json!({}));
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

pub fn groups(output: Output) -> ApiResult<Response<Body>> {
    let names = group_names();
    if output == Output::Discovery {
        return Ok(aggregated(&names));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": names.iter().map(|g| api_group(g)).collect::<Vec<_>>(),
        }),
        false,
    ))
}

pub fn group(group: &str) -> ApiResult<Response<Body>> {
    if !group_names().contains(&group) {
        return Err(ApiError::no_route());
    }
    let mut g = api_group(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Ok(json_response(StatusCode::OK, &g, false))
}

pub fn resource_list(group: &str, version: &str) -> ApiResult<Response<Body>> {
    let list: Vec<&Resource> = in_group_version(group, version).collect();
    if list.is_empty() {
        return Err(ApiError::no_route());
    }
    let mut out = Vec::new();
    for r in list {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r),
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        out.push(e);
        for s in r.subresources {
            let (g, v, k) = s.response_kind(r);
            let mut e = json!({
                "name": format!("{}/{}", r.plural, s.name()),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": if k.is_empty() { r.kind } else { k },
                "verbs": s.verbs(),
            });
            if !k.is_empty() && (g, v) != (r.group, r.version) {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            out.push(e);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}),
        false,
    ))
}

fn discovery_resource(r: &Resource) -> Value {
    let mut e = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": verbs(r),
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (g, v, k) = s.response_kind(r);
            let mut sub = json!({"subresource": s.name(), "verbs": s.verbs()});
            if !k.is_empty() {
                sub["responseKind"] = json!({"group": g, "version": v, "kind": k});
            }
            sub
        })
        .collect();
    if !subs.is_empty() {
        e["subresources"] = Value::Array(subs);
    }
    e
}

/// An `APIGroupDiscoveryList` for these groups (`""` is the core group).
fn aggregated(groups: &[&str]) -> Response<Body> {
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let versions: Vec<Value> = versions_of(g)
                .iter()
                .map(|v| {
                    json!({
                        "version": v,
                        "resources": in_group_version(g, v).map(discovery_resource).collect::<Vec<_>>(),
                        "freshness": "Current",
                    })
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    });
    bytes_response(
        StatusCode::OK,
        DISCOVERY_CONTENT_TYPE,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}
