//! `/openapi/v3`: one OpenAPI 3.0 document per group/version, built once at start from the schema
//! catalog. kubectl reads them to validate, to `explain`, and to compute apply patches.

use super::status::{ApiError, ApiResult};
use crate::registry::resources::{self, Resource, Storage, Sub};
use crate::schema::Catalog;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

pub struct Documents {
    index: Value,
    /// "api/v1", "apis/apps/v1" → serialized document.
    docs: BTreeMap<String, Bytes>,
}

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

impl Documents {
    pub fn build(catalog: &Catalog) -> Documents {
        let mut docs = BTreeMap::new();
        let mut paths = Map::new();
        for (group, version) in resources::group_versions() {
            let key = if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            };
            let rs: Vec<&Resource> = resources::RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .collect();
            let doc = document(catalog, &key, &rs);
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={:016X}", h.finish())}),
            );
            docs.insert(key, Bytes::from(bytes));
        }
        Documents {
            index: json!({"paths": paths}),
            docs,
        }
    }

    pub fn index(&self) -> &Value {
        &self.index
    }

    pub fn document(&self, path: &str) -> ApiResult<Bytes> {
        self.docs
            .get(path.trim_matches('/'))
            .cloned()
            .ok_or_else(ApiError::no_route)
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn query_param(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

fn operation_id(action: &str, r: &Resource, namespaced_path: bool, collection: bool) -> String {
    let group: String = if r.group.is_empty() {
        "Core".into()
    } else {
        r.group
            .split('.')
            .next()
            .unwrap_or_default()
            .split('-')
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    let version = {
        let mut c = r.version.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let ns = if namespaced_path { "Namespaced" } else { "" };
    let coll = if collection { "Collection" } else { "" };
    format!("{action}{group}{version}{coll}{ns}{}", r.kind)
}

fn operation(
    r: &Resource,
    action: &str,
    verb: &str,
    id: String,
    params: Vec<Value>,
    body: Option<Value>,
    response: Value,
) -> Value {
    let mut op = json!({
        "operationId": id,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": response.clone()}, "application/yaml": {"schema": response}}},
            "401": {"description": "Unauthorized"},
        },
        "tags": [verb],
    });
    if let Some(b) = body {
        op["requestBody"] = b;
    }
    op
}

fn write_params(with_force: bool) -> Vec<Value> {
    let mut p = vec![
        query_param(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        query_param(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query_param(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ];
    if with_force {
        p.push(query_param(
            "force",
            "boolean",
            "Force is going to \"force\" Apply requests.",
        ));
    }
    p
}

fn list_params() -> Vec<Value> {
    [
        "allowWatchBookmarks",
        "continue",
        "fieldSelector",
        "labelSelector",
        "limit",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeoutSeconds",
        "watch",
    ]
    .iter()
    .map(|n| {
        let ty = match *n {
            "allowWatchBookmarks" | "sendInitialEvents" | "watch" => "boolean",
            "limit" | "timeoutSeconds" => "integer",
            _ => "string",
        };
        query_param(n, ty, "")
    })
    .collect()
}

fn document(catalog: &Catalog, key: &str, rs: &[&Resource]) -> Value {
    let mut paths = Map::new();
    let mut roots: Vec<String> = vec![
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status".into(),
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into(),
    ];
    let prefix = format!("/{key}");
    for r in rs {
        let Some(name) = catalog.kind_schema_name(r.group, r.version, r.kind) else {
            continue;
        };
        roots.push(name.to_string());
        let obj = schema_ref(name);
        let body_json = json!({"required": true, "content": {"application/json": {"schema": obj.clone()}, "application/yaml": {"schema": obj.clone()}}});
        if r.storage == Storage::Virtual {
            let path = if r.namespaced {
                format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
            } else {
                format!("{prefix}/{}", r.plural)
            };
            let id = operation_id("create", r, r.namespaced, false);
            paths.insert(path, json!({"post": operation(r, "post", "create", id, write_params(false), Some(body_json), obj)}));
            continue;
        }
        let list = json!({"type": "object", "description": format!("A list of {}", r.kind)});
        let patch_body = json!({"required": true, "content": PATCH_TYPES.iter().map(|t| (t.to_string(), json!({"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")}))).collect::<Map<String, Value>>()});
        let status_ref = schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status");
        let delete_body = json!({"content": {"application/json": {"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")}}});
        let base = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        let mut path_params = vec![];
        if r.namespaced {
            path_params.push(json!({"name": "namespace", "in": "path", "required": true, "description": "object name and auth scope, such as for teams and projects", "schema": {"type": "string", "uniqueItems": true}}));
        }
        let mut collection = Map::new();
        collection.insert(
            "get".into(),
            operation(
                r,
                "list",
                "list",
                operation_id("list", r, r.namespaced, false),
                list_params(),
                None,
                list.clone(),
            ),
        );
        collection.insert(
            "post".into(),
            operation(
                r,
                "post",
                "create",
                operation_id("create", r, r.namespaced, false),
                write_params(false),
                Some(body_json.clone()),
                obj.clone(),
            ),
        );
        collection.insert(
            "delete".into(),
            operation(
                r,
                "deletecollection",
                "deletecollection",
                operation_id("delete", r, r.namespaced, true),
                list_params(),
                Some(delete_body.clone()),
                status_ref.clone(),
            ),
        );
        collection.insert("parameters".into(), Value::Array(path_params.clone()));
        paths.insert(base.clone(), Value::Object(collection));

        let mut named_params = path_params.clone();
        named_params.push(json!({"name": "name", "in": "path", "required": true, "description": format!("name of the {}", r.kind), "schema": {"type": "string", "uniqueItems": true}}));
        let mut item = Map::new();
        item.insert(
            "get".into(),
            operation(
                r,
                "get",
                "get",
                operation_id("read", r, r.namespaced, false),
                vec![],
                None,
                obj.clone(),
            ),
        );
        item.insert(
            "put".into(),
            operation(
                r,
                "put",
                "update",
                operation_id("replace", r, r.namespaced, false),
                write_params(false),
                Some(body_json.clone()),
                obj.clone(),
            ),
        );
        item.insert(
            "patch".into(),
            operation(
                r,
                "patch",
                "patch",
                operation_id("patch", r, r.namespaced, false),
                write_params(true),
                Some(patch_body.clone()),
                obj.clone(),
            ),
        );
        item.insert(
            "delete".into(),
            operation(
                r,
                "delete",
                "delete",
                operation_id("delete", r, r.namespaced, false),
                vec![
                    query_param("gracePeriodSeconds", "integer", ""),
                    query_param("propagationPolicy", "string", ""),
                ],
                Some(delete_body),
                obj.clone(),
            ),
        );
        item.insert("parameters".into(), Value::Array(named_params.clone()));
        paths.insert(format!("{base}/{{name}}"), Value::Object(item));

        if r.has(Sub::Status) {
            let mut st = Map::new();
            st.insert(
                "get".into(),
                operation(
                    r,
                    "get",
                    "get",
                    operation_id("read", r, r.namespaced, false) + "Status",
                    vec![],
                    None,
                    obj.clone(),
                ),
            );
            st.insert(
                "put".into(),
                operation(
                    r,
                    "put",
                    "update",
                    operation_id("replace", r, r.namespaced, false) + "Status",
                    write_params(false),
                    Some(body_json.clone()),
                    obj.clone(),
                ),
            );
            st.insert(
                "patch".into(),
                operation(
                    r,
                    "patch",
                    "patch",
                    operation_id("patch", r, r.namespaced, false) + "Status",
                    write_params(true),
                    Some(patch_body.clone()),
                    obj.clone(),
                ),
            );
            st.insert("parameters".into(), Value::Array(named_params.clone()));
            paths.insert(format!("{base}/{{name}}/status"), Value::Object(st));
        }
        if r.namespaced {
            let all = format!("{prefix}/{}", r.plural);
            paths.insert(all, json!({"get": operation(r, "list", "list", format!("list{}ForAllNamespaces", r.kind), list_params(), None, list)}));
        }
    }
    let mut schemas = Map::new();
    for name in catalog.closure(roots.iter().map(String::as_str)) {
        if let Some(s) = catalog.get(&name) {
            schemas.insert(name, s.clone());
        }
    }
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}),
    );
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}}},
        "security": [{"BearerToken": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::resources::RESOURCES;

    #[test]
    fn documents_carry_patch_operations_with_field_validation() {
        let catalog = Catalog::build(
            &RESOURCES
                .iter()
                .map(Resource::kind_schema)
                .collect::<Vec<_>>(),
        );
        let docs = Documents::build(&catalog);
        let url = docs.index()["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("url")
            .to_string();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc: Value =
            serde_json::from_slice(&docs.document("apis/apps/v1").expect("doc")).expect("json");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let params: Vec<&str> = patch["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(params.contains(&"fieldValidation"));
        let schema = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let containers =
            &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert!(
            doc["components"]["schemas"]
                .get("io.k8s.api.core.v1.Pod")
                .is_none(),
            "only what apps/v1 refers to"
        );
    }
}
