//! How each part of an object merges, read from the catalog's OpenAPI schemas the way
//! kube-openapi converts them for structured-merge-diff: structs and maps merge per field unless
//! atomic, lists are atomic unless `set` or `map`, schema-less parts are one value.

use super::go_zero::GO_ZERO;
use super::value::empty_object;
use crate::schema::{Catalog, ListType};
use serde_json::{Map, Value};

/// Where a value sits in the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty<'a> {
    /// A schema node, unresolved so the extensions on a property wrapper stay visible.
    Schema(&'a Value),
    /// Arbitrary JSON owned as one value (no schema, or a field the schema does not declare).
    Untyped,
    /// Arbitrary JSON whose maps merge per key and lists atomically
    /// (`x-kubernetes-preserve-unknown-fields`, or no schema at all).
    Deduced,
}

/// The shape of a value as the merge algorithms see it.
pub(crate) enum Atom<'a> {
    /// Compared and replaced as a whole: scalars, and values that do not fit their schema.
    Leaf,
    List(ListAtom<'a>),
    Map(MapAtom<'a>),
}

pub(crate) struct ListAtom<'a> {
    pub elem: Ty<'a>,
    pub rel: ListRel,
}

pub(crate) enum ListRel {
    Atomic,
    Set,
    /// Keyed items; a key field that is absent takes its schema default, if any.
    Map {
        keys: Vec<String>,
        defaults: Vec<Option<Value>>,
    },
}

pub(crate) struct MapAtom<'a> {
    /// Declared fields of a struct.
    pub fields: Option<&'a Map<String, Value>>,
    /// Type of other keys; `None` means other keys are not allowed (a plain struct).
    pub elem: Option<Ty<'a>>,
    pub atomic: bool,
    /// Upstream schema name, for the tables below.
    pub name: Option<&'a str>,
}

impl<'a> MapAtom<'a> {
    /// The type of a key and whether it is a declared struct field.
    pub fn field(&self, key: &str) -> (Ty<'a>, bool) {
        match self.fields.and_then(|f| f.get(key)) {
            Some(s) => (Ty::Schema(s), true),
            None => (self.elem.unwrap_or(Ty::Untyped), false),
        }
    }
}

/// Structs marked `+structType=atomic` upstream (`x-kubernetes-map-type: atomic` on the type),
/// which the catalog does not carry.
static ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.admissionregistration.v1.Variable",
    "io.k8s.api.admissionregistration.v1alpha1.MatchResources",
    "io.k8s.api.admissionregistration.v1alpha1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1alpha1.ParamKind",
    "io.k8s.api.admissionregistration.v1alpha1.ParamRef",
    "io.k8s.api.admissionregistration.v1beta1.MatchResources",
    "io.k8s.api.admissionregistration.v1beta1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1beta1.ParamKind",
    "io.k8s.api.admissionregistration.v1beta1.ParamRef",
    "io.k8s.api.admissionregistration.v1beta1.Variable",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.EvictionResponder",
    "io.k8s.api.core.v1.FileKeySelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.lifecycle.v1alpha1.Requester",
    "io.k8s.api.lifecycle.v1alpha1.TargetResponder",
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
];

/// Defaults of list-map key fields (upstream OpenAPI `default`): an item without the field is
/// keyed by the default (a port without `protocol` is the TCP port).
static KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"),
    ("io.k8s.api.core.v1.LocalObjectReference", "name", ""),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "TCP"),
];

/// Types upstream publishes without any type (arbitrary JSON, one value).
static UNTYPED: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSON",
];

/// What a Go-typed object carries for an unset field (see `go_zero`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoZero {
    /// A non-pointer struct: `{}` plus its own zero fields.
    Struct,
    /// A pointer, slice or map without `omitempty`: `null`.
    Null,
}

const REF_PREFIX: &str = "#/components/schemas/";

/// Schema lookups for one object type.
pub(crate) struct Types<'a> {
    pub catalog: &'a Catalog,
    /// The type of the whole object.
    pub root: Ty<'a>,
}

impl<'a> Types<'a> {
    pub fn new(catalog: &'a Catalog, schema: Option<&'a Value>) -> Types<'a> {
        Types {
            catalog,
            root: schema.map_or(Ty::Deduced, Ty::Schema),
        }
    }

    /// The upstream name of the schema a node refers to (through `$ref`/`allOf` wrappers), or of
    /// a kind's schema passed directly.
    fn schema_name(&self, mut s: &'a Value) -> Option<&'a str> {
        let mut name = None;
        for _ in 0..16 {
            if let Some(r) = s.get("$ref").and_then(Value::as_str) {
                let n = r.strip_prefix(REF_PREFIX)?;
                name = Some(n);
                match self.catalog.get(n) {
                    Some(target) => s = target,
                    None => return name,
                }
            } else if let Some([inner]) =
                s.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
            {
                s = inner;
            } else {
                break;
            }
        }
        if name.is_some() {
            return name;
        }
        let gvk = s
            .get("x-kubernetes-group-version-kind")?
            .as_array()?
            .first()?;
        let field = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("");
        self.catalog
            .kind_schema_name(field("group"), field("version"), field("kind"))
    }

    /// The shape of a value of type `ty`; `values` are the values being looked at (a value that
    /// does not fit the schema makes the node a leaf, where upstream would fail validation).
    pub fn atom(&self, ty: Ty<'a>, values: &[Option<&Value>]) -> Atom<'a> {
        let present = values.iter().flatten().filter(|v| !v.is_null());
        match ty {
            Ty::Untyped => Atom::Leaf,
            Ty::Deduced => {
                let mut kinds = present.map(|v| match v {
                    Value::Object(_) => 1,
                    Value::Array(_) => 2,
                    _ => 0,
                });
                let first = kinds.next();
                if kinds.any(|k| Some(k) != first) {
                    return Atom::Leaf;
                }
                match first {
                    Some(1) | None => Atom::Map(MapAtom {
                        fields: None,
                        elem: Some(Ty::Deduced),
                        atomic: false,
                        name: None,
                    }),
                    _ => Atom::Leaf,
                }
            }
            Ty::Schema(s) => {
                let atom = self.schema_atom(s);
                let fits = |v: &Value| match &atom {
                    Atom::Leaf => true,
                    Atom::List(_) => v.is_array(),
                    Atom::Map(_) => v.is_object(),
                };
                let mut present = present;
                if present.all(|v| fits(v)) {
                    atom
                } else {
                    Atom::Leaf
                }
            }
        }
    }

    fn schema_atom(&self, s: &'a Value) -> Atom<'a> {
        let r = self.catalog.resolve(s);
        let name = self.schema_name(s);
        if name.is_some_and(|n| UNTYPED.contains(&n)) {
            return Atom::Leaf;
        }
        let flag =
            |k: &str| s.get(k) == Some(&Value::Bool(true)) || r.get(k) == Some(&Value::Bool(true));
        let preserve = flag("x-kubernetes-preserve-unknown-fields");
        let props = r.get("properties").and_then(Value::as_object);
        let additional = r.get("additionalProperties");
        let items = r.get("items");
        let is_object = match r.get("type").and_then(Value::as_str) {
            Some("object") => true,
            Some("array") => false,
            Some(_) => return Atom::Leaf,
            None if props.is_some() || additional.is_some() => true,
            None if items.is_some() => false,
            None if preserve => {
                return self.atom(Ty::Deduced, &[]);
            }
            None => return Atom::Leaf,
        };
        if !is_object {
            let elem = items.map_or(Ty::Untyped, Ty::Schema);
            let list = match self.catalog.merge_of(s).list {
                ListType::Atomic => self.catalog.merge_of(r).list,
                other => other,
            };
            let rel = match list {
                ListType::Atomic => ListRel::Atomic,
                ListType::Set => ListRel::Set,
                ListType::Map(keys) if keys.is_empty() => ListRel::Atomic,
                ListType::Map(keys) => {
                    let defaults = keys.iter().map(|k| self.key_default(items, k)).collect();
                    ListRel::Map { keys, defaults }
                }
            };
            return Atom::List(ListAtom { elem, rel });
        }
        let elem = match additional {
            Some(v @ Value::Object(_)) => Some(Ty::Schema(v)),
            Some(Value::Bool(true)) => Some(Ty::Untyped),
            _ if preserve => Some(Ty::Deduced),
            // A free-form object (`RawExtension`): a map of arbitrary values.
            _ if props.is_none() => Some(Ty::Untyped),
            _ => None,
        };
        let map_atomic =
            |v: &Value| v.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        let atomic = self.catalog.merge_of(s).map_atomic
            || map_atomic(r)
            || name.is_some_and(|n| ATOMIC_STRUCTS.binary_search(&n).is_ok());
        Atom::Map(MapAtom {
            fields: props,
            elem,
            atomic,
            name,
        })
    }

    fn key_default(&self, items: Option<&'a Value>, key: &str) -> Option<Value> {
        let items = items?;
        let declared = self
            .catalog
            .property(items, key)
            .and_then(|p| self.catalog.resolve(p).get("default"));
        if let Some(d) = declared {
            return Some(d.clone());
        }
        let name = self.schema_name(items)?;
        KEY_DEFAULTS
            .iter()
            .find(|(ty, field, _)| *ty == name && *field == key)
            .map(|(_, _, d)| Value::String((*d).to_string()))
    }

    /// The value as a Go-typed object would carry it: unset non-pointer structs become `{}` and
    /// unset non-`omitempty` pointers `null`. Only comparisons use it, so that "added" means
    /// what it means upstream (a `spec` never appears as added, its fields do).
    pub fn with_go_zero(&self, ty: Ty<'a>, v: &Value) -> Value {
        match (self.atom(ty, &[Some(v)]), v) {
            (Atom::Map(m), Value::Object(map)) => {
                let mut out = Map::new();
                for (k, child) in map {
                    out.insert(k.clone(), self.with_go_zero(m.field(k).0, child));
                }
                if let Some(name) = m.name {
                    let start = GO_ZERO.partition_point(|e| e.0 < name);
                    for (_, field, zero) in GO_ZERO[start..].iter().take_while(|e| e.0 == name) {
                        if out.contains_key(*field) {
                            continue;
                        }
                        let (fty, declared) = m.field(field);
                        if !declared {
                            continue;
                        }
                        let z = match zero {
                            GoZero::Null => Value::Null,
                            GoZero::Struct => self.with_go_zero(fty, &empty_object()),
                        };
                        out.insert((*field).to_string(), z);
                    }
                }
                Value::Object(out)
            }
            (Atom::List(l), Value::Array(items)) => {
                Value::Array(items.iter().map(|i| self.with_go_zero(l.elem, i)).collect())
            }
            _ => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(ATOMIC_STRUCTS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            GO_ZERO
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
    }
}
