//! OpenAPI v3 schemas of the served kinds, decorated with the Kubernetes extensions that say how
//! lists and maps merge.
//!
//! One catalog serves three users: the `/openapi/v3` documents (kubectl computes its apply patches
//! and `explain` output from them), strict field validation, and the patch engines (strategic
//! merge and server-side apply). They all read the same extensions, so a patch kubectl computes
//! from our documents is merged by the server the way kubectl expected.

mod field_merge;
pub mod validate;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How a list or map field merges (upstream `x-kubernetes-list-type` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMerge {
    /// Replaced as a whole.
    ListAtomic,
    /// A set of scalars, merged by value.
    ListSet,
    /// A list of objects keyed by these fields; the first is the strategic-merge key.
    ListMap(&'static [&'static str]),
    /// A map replaced as a whole.
    MapAtomic,
}

/// Upstream list-map keys that k8s-openapi reduces to the patch merge key alone. Server-side apply
/// needs the full key: a Service may have port 53 twice (TCP and UDP).
const LIST_MAP_KEY_OVERRIDES: &[(&str, &str, &[&str])] = &[
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        &["port", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
    ),
];

/// Fields whose strategic-merge strategy includes `retainKeys` (a union: setting one member
/// clears the others).
const RETAIN_KEYS: &[(&str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "volumes"),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
];

/// A kind whose schema is in the catalog.
pub struct KindSchema {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Registers the kind's schema (and everything it references) with the generator and
    /// returns the schema's name.
    pub register: fn(&mut SchemaGenerator) -> String,
}

/// `register` for a k8s-openapi type.
pub fn register<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// Every schema by its upstream name (`io.k8s.api.core.v1.Pod`), OpenAPI 3.0 flavoured, with
/// references of the form `#/components/schemas/<name>`.
pub struct Catalog {
    schemas: BTreeMap<String, Value>,
    /// (group, version, kind) → schema name.
    kinds: HashMap<(String, String, String), String>,
}

const REF_PREFIX: &str = "#/components/schemas/";

impl Catalog {
    pub fn build(kinds: &[KindSchema]) -> Catalog {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let mut kind_names = HashMap::new();
        let mut gvks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for k in kinds {
            let name = (k.register)(&mut generator);
            gvks.entry(name.clone())
                .or_default()
                .push(json!({"group": k.group, "version": k.version, "kind": k.kind}));
            kind_names.insert(
                (
                    k.group.to_string(),
                    k.version.to_string(),
                    k.kind.to_string(),
                ),
                name,
            );
        }
        let mut schemas: BTreeMap<String, Value> =
            generator.take_definitions(true).into_iter().collect();
        decorate(&mut schemas);
        for (name, list) in gvks {
            if let Some(Value::Object(s)) = schemas.get_mut(&name) {
                s.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
            }
        }
        Catalog {
            schemas,
            kinds: kind_names,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schemas.get(name)
    }

    /// The schema of a kind served by the API.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        let name = self
            .kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))?;
        self.schemas.get(name)
    }

    pub fn kind_schema_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    /// Follows `$ref` and single-element `allOf` wrappers to the schema that describes the value.
    pub fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..16 {
            if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
                match r.strip_prefix(REF_PREFIX).and_then(|n| self.schemas.get(n)) {
                    Some(s) => schema = s,
                    None => return schema,
                }
            } else if let Some([inner]) = schema
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                // Extensions may sit on the wrapper (a property with a description); the target
                // carries the shape. Callers that need extensions read them before resolving.
                schema = inner;
            } else {
                return schema;
            }
        }
        schema
    }

    /// The schema of property `name` of an object schema, unresolved (so its extensions are kept).
    pub fn property<'a>(&'a self, object: &'a Value, name: &str) -> Option<&'a Value> {
        self.resolve(object)
            .get("properties")
            .and_then(|p| p.get(name))
    }

    /// The schema of the values of a map (`additionalProperties`), if the object is a map.
    pub fn map_values<'a>(&'a self, object: &'a Value) -> Option<&'a Value> {
        match self.resolve(object).get("additionalProperties") {
            Some(v @ Value::Object(_)) => Some(v),
            _ => None,
        }
    }

    /// The schema of the items of an array schema.
    pub fn items<'a>(&'a self, array: &'a Value) -> Option<&'a Value> {
        self.resolve(array).get("items")
    }

    /// How a field merges, read from its (unresolved) schema's extensions.
    pub fn merge_of(&self, field: &Value) -> Merge {
        let list_type = field.get("x-kubernetes-list-type").and_then(Value::as_str);
        let keys: Vec<String> = field
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let strategy = field
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("");
        Merge {
            list: match list_type {
                Some("map") => ListType::Map(keys),
                Some("set") => ListType::Set,
                _ => ListType::Atomic,
            },
            map_atomic: field.get("x-kubernetes-map-type").and_then(Value::as_str)
                == Some("atomic"),
            patch_merge_key: field
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
                .map(String::from),
            patch_merge: strategy.split(',').any(|s| s == "merge"),
            retain_keys: strategy.split(',').any(|s| s == "retainKeys"),
        }
    }

    /// Names of every schema reachable from the given ones (for per-group-version documents).
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roots.into_iter().map(String::from).collect();
        while let Some(name) = stack.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(s) = self.schemas.get(&name) {
                collect_refs(s, &mut stack);
            }
        }
        seen
    }
}

/// How a field merges, as the patch engines need it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Merge {
    pub list: ListType,
    pub map_atomic: bool,
    pub patch_merge_key: Option<String>,
    pub patch_merge: bool,
    pub retain_keys: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ListType {
    #[default]
    Atomic,
    Set,
    Map(Vec<String>),
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                out.push(r.to_string());
            }
            m.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

fn decorate(schemas: &mut BTreeMap<String, Value>) {
    let mut table: HashMap<(&str, &str), FieldMerge> = HashMap::new();
    for (ty, field, merge) in field_merge::FIELD_MERGE {
        table.insert((*ty, *field), *merge);
    }
    for (name, schema) in schemas.iter_mut() {
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            let Value::Object(p) = prop else { continue };
            if let Some(merge) = table.get(&(name.as_str(), field.as_str())) {
                apply_merge(name, field, p, *merge);
            }
            if RETAIN_KEYS.contains(&(name.as_str(), field.as_str())) {
                let strategy = match p.get("x-kubernetes-patch-strategy").and_then(Value::as_str) {
                    Some(s) => format!("{s},retainKeys"),
                    None => "retainKeys".to_string(),
                };
                p.insert("x-kubernetes-patch-strategy".into(), strategy.into());
            }
        }
    }
}

fn apply_merge(ty: &str, field: &str, p: &mut Map<String, Value>, merge: FieldMerge) {
    match merge {
        FieldMerge::ListAtomic => {
            p.insert("x-kubernetes-list-type".into(), "atomic".into());
        }
        FieldMerge::ListSet => {
            p.insert("x-kubernetes-list-type".into(), "set".into());
            p.insert("x-kubernetes-patch-strategy".into(), "merge".into());
        }
        FieldMerge::ListMap(keys) => {
            let full = LIST_MAP_KEY_OVERRIDES
                .iter()
                .find(|(t, f, _)| *t == ty && *f == field)
                .map(|(_, _, k)| *k)
                .unwrap_or(keys);
            p.insert("x-kubernetes-list-type".into(), "map".into());
            p.insert("x-kubernetes-list-map-keys".into(), json!(full));
            if let Some(first) = keys.first() {
                p.insert("x-kubernetes-patch-merge-key".into(), (*first).into());
                p.insert("x-kubernetes-patch-strategy".into(), "merge".into());
            }
        }
        FieldMerge::MapAtomic => {
            p.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;

    fn catalog() -> Catalog {
        Catalog::build(&[
            KindSchema {
                group: "",
                version: "v1",
                kind: "Pod",
                register: register::<Pod>,
            },
            KindSchema {
                group: "apps",
                version: "v1",
                kind: "Deployment",
                register: register::<Deployment>,
            },
        ])
    }

    #[test]
    fn containers_merge_by_name_and_ports_by_port_and_protocol() {
        let c = catalog();
        let pod = c.kind("", "v1", "Pod").expect("pod schema");
        let spec = c.property(pod, "spec").expect("spec");
        let containers = c.property(spec, "containers").expect("containers");
        let m = c.merge_of(containers);
        assert_eq!(m.list, ListType::Map(vec!["name".into()]));
        assert_eq!(m.patch_merge_key.as_deref(), Some("name"));
        assert!(m.patch_merge);
        let container = c.items(containers).expect("items");
        let ports = c.property(container, "ports").expect("ports");
        assert_eq!(
            c.merge_of(ports).list,
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(
            c.merge_of(ports).patch_merge_key.as_deref(),
            Some("containerPort")
        );
        let volumes = c.property(spec, "volumes").expect("volumes");
        assert!(c.merge_of(volumes).retain_keys);
    }

    #[test]
    fn kinds_carry_their_group_version_kind() {
        let c = catalog();
        let d = c.kind("apps", "v1", "Deployment").expect("deployment");
        assert_eq!(
            d["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let names = c.closure(["io.k8s.api.apps.v1.Deployment"]);
        assert!(names.contains("io.k8s.api.core.v1.PodSpec"));
        assert!(!names.contains("io.k8s.api.core.v1.Pod"));
    }

    #[test]
    fn labels_are_a_map_of_strings() {
        let c = catalog();
        let pod = c.kind("", "v1", "Pod").expect("pod");
        let meta = c.property(pod, "metadata").expect("metadata");
        let labels = c.property(meta, "labels").expect("labels");
        let values = c.map_values(labels).expect("map");
        assert_eq!(c.resolve(values)["type"], "string");
    }
}
