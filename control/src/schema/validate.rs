//! Unknown-field detection for `fieldValidation=Strict|Warn` (and pruning for `Ignore`).

use super::Catalog;
use serde_json::Value;

/// Paths (`spec.template.spec.containers[0].imagex`) of fields the schema does not declare.
pub fn unknown_fields(catalog: &Catalog, schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(catalog, schema, value, String::new(), &mut out);
    out
}

fn walk(catalog: &Catalog, schema: &Value, value: &Value, path: String, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    let resolved = catalog.resolve(schema);
    if resolved.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(values) = catalog.map_values(resolved) {
                for (k, v) in map {
                    walk(catalog, values, v, join(&path, k), out);
                }
                return;
            }
            let Some(props) = resolved.get("properties").and_then(Value::as_object) else {
                return; // free-form object (e.g. RawExtension)
            };
            for (k, v) in map {
                match props.get(k) {
                    Some(s) => walk(catalog, s, v, join(&path, k), out),
                    None => out.push(join(&path, k)),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = catalog.items(resolved) {
                for (i, v) in items.iter().enumerate() {
                    walk(catalog, item_schema, v, format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{KindSchema, register};
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_at_any_depth_and_accepts_known_ones() {
        let c = Catalog::build(&[KindSchema {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            register: register::<Deployment>,
        }]);
        let schema = c.kind("apps", "v1", "Deployment").expect("schema");
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"any-key": "v"}},
            "spec": {
                "replicasx": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagex": "j",
                    "resources": {"limits": {"cpu": "1"}}}]}}
            }
        });
        assert_eq!(
            unknown_fields(&c, schema, &obj),
            vec![
                "spec.replicasx".to_string(),
                "spec.template.spec.containers[0].imagex".to_string()
            ]
        );
        let good = json!({"metadata": {"name": "x"}, "spec": {"replicas": 1}});
        assert!(unknown_fields(&c, schema, &good).is_empty());
    }
}
