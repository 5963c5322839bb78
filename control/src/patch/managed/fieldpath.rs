//! Field paths and sets of them (structured-merge-diff `fieldpath`), and the `fieldsV1` JSON
//! form managedFields stores them in.

use super::ManagedError;
use super::value::{compare, go_json, to_display, write_go_object};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One step of a path into an object.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a struct or a key of a map (`f:name`).
    Field(String),
    /// The item of a list-map with these key values, sorted by key name (`k:{"name":"web"}`).
    Key(Vec<(String, Value)>),
    /// The item of a set with this value (`v:"a"`).
    Value(Value),
    /// An index into a list (`i:0`); appears only in sets written by others.
    Index(i64),
}

impl PathElement {
    pub fn field(name: &str) -> PathElement {
        PathElement::Field(name.to_string())
    }

    /// A list-map key; the fields are sorted by name as upstream requires.
    pub fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    fn tag(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key of the element (`f:replicas`, `k:{"name":"web"}`, `v:"a"`, `i:0`).
    pub fn to_fields_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut out = String::from("k:");
                write_go_object(fields.iter().map(|(k, v)| (k, v)), &mut out, false);
                out
            }
            PathElement::Value(v) => format!("v:{}", go_json(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `fieldsV1` key; `Ok(None)` for element kinds this version does not know
    /// (upstream drops those rather than failing).
    pub fn from_fields_key(key: &str) -> Result<Option<PathElement>, ManagedError> {
        let bad = |why: String| ManagedError::FieldsV1(why);
        let mut chars = key.chars();
        let (Some(kind), Some(sep)) = (chars.next(), chars.next()) else {
            return Err(bad(format!("key must be 2 characters long: {key:?}")));
        };
        if sep != ':' {
            return Err(bad(format!("missing colon: {key}")));
        }
        let rest = chars.as_str();
        Ok(Some(match kind {
            'f' => PathElement::Field(rest.to_string()),
            'v' => PathElement::Value(
                serde_json::from_str(rest).map_err(|e| bad(format!("parsing {key:?}: {e}")))?,
            ),
            'k' => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => PathElement::key(fields.into_iter().collect()),
                Ok(_) => return Err(bad(format!("parsing {key:?}: expected an object"))),
                Err(e) => return Err(bad(format!("parsing {key:?}: {e}"))),
            },
            'i' => PathElement::Index(
                rest.parse()
                    .map_err(|e| bad(format!("parsing {key:?}: {e}")))?,
            ),
            _ => return Ok(None),
        }))
    }
}

impl Ord for PathElement {
    /// Upstream order: fields < keys < values < indexes, then by content.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| compare(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.tag().cmp(&other.tag()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// As upstream prints paths in conflicts: `.spec`, `[name="web"]`, `[=a]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", to_display(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", to_display(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path printed as upstream does (`.spec.template.spec.containers[name="web"].image`).
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths (structured-merge-diff `fieldpath.Set`): `members` are the elements
/// of this node that are in the set, `children` the subsets below elements (being a parent
/// does not make an element a member).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// A set of plain field paths, e.g. `[&["spec"], &["metadata", "labels"]]`.
    pub fn from_field_paths(paths: &[&[&str]]) -> FieldSet {
        let mut set = FieldSet::new();
        for path in paths {
            let p: Vec<PathElement> = path.iter().map(|f| PathElement::field(f)).collect();
            set.insert(&p);
        }
        set
    }

    /// Adds a path. Its parents are not added; the empty path (the whole object) is never owned.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the path is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Number of member paths.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    /// The subset below `pe`, without the prefix.
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe).filter(|c| !c.is_empty())
    }

    pub(crate) fn members(&self) -> &BTreeSet<PathElement> {
        &self.members
    }

    pub(crate) fn children(&self) -> &BTreeMap<PathElement, FieldSet> {
        &self.children
    }

    pub(crate) fn from_parts(
        members: BTreeSet<PathElement>,
        children: BTreeMap<PathElement, FieldSet>,
    ) -> FieldSet {
        FieldSet { members, children }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths that are members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let i = child.intersection(theirs);
                if !i.is_empty() {
                    children.insert(pe.clone(), i);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Members of `self` that are not members of `other` (a member of `other` does not remove
    /// the paths below it: upstream's "parent − child = parent", and children survive too).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let d = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !d.is_empty() {
                children.insert(pe.clone(), d);
            }
        }
        FieldSet { members, children }
    }

    /// Like `difference`, but a member of `other` also removes everything below it.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let d = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !d.is_empty() {
                children.insert(pe.clone(), d);
            }
        }
        FieldSet { members, children }
    }

    /// Every member path, in upstream's iteration order (a node's members, then its children).
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Reads the `fieldsV1` JSON form.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, ManagedError> {
        match v {
            Value::Object(map) => Ok(read_node(map)?.0.unwrap_or_default()),
            Value::Null => Ok(FieldSet::new()),
            other => Err(ManagedError::FieldsV1(format!(
                "expected an object, got {other}"
            ))),
        }
    }

    /// The `fieldsV1` JSON form: keys in upstream order, `".": {}` marking a member that also has
    /// children.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.write_node(false))
    }

    fn write_node(&self, member: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if member {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self
            .children
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .peekable();
        loop {
            let order = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(m), Some((c, _))) => (*m).cmp(c),
            };
            match order {
                Ordering::Less => {
                    if let Some(m) = members.next() {
                        out.insert(m.to_fields_key(), Value::Object(Map::new()));
                    }
                }
                Ordering::Greater => {
                    if let Some((pe, child)) = children.next() {
                        out.insert(pe.to_fields_key(), Value::Object(child.write_node(false)));
                    }
                }
                Ordering::Equal => {
                    members.next();
                    if let Some((pe, child)) = children.next() {
                        out.insert(pe.to_fields_key(), Value::Object(child.write_node(true)));
                    }
                }
            }
        }
        out
    }
}

/// Reads one `fieldsV1` node: the set below it (if any) and whether the node itself is a member.
fn read_node(map: &Map<String, Value>) -> Result<(Option<FieldSet>, bool), ManagedError> {
    let mut set: Option<FieldSet> = None;
    let mut member = false;
    for (key, v) in map {
        if key == "." {
            member = true;
            continue;
        }
        let Some(pe) = PathElement::from_fields_key(key)? else {
            continue;
        };
        let Value::Object(inner) = v else {
            return Err(ManagedError::FieldsV1(format!(
                "{key:?}: expected an object, got {v}"
            )));
        };
        let (grandchildren, child_member) = read_node(inner)?;
        if child_member {
            set.get_or_insert_with(FieldSet::new)
                .members
                .insert(pe.clone());
        }
        if let Some(g) = grandchildren {
            let s = set.get_or_insert_with(FieldSet::new);
            // Two spellings of one key (`k:{"a":1}` and `k:{ "a": 1 }`) land on one element.
            let merged = match s.children.get(&pe) {
                Some(existing) => existing.union(&g),
                None => g,
            };
            s.children.insert(pe, merged);
        }
    }
    if set.is_none() {
        member = true;
    }
    Ok((set, member))
}

impl fmt::Display for FieldSet {
    /// One path per line, as upstream's `Set.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.paths().iter().map(|p| path_string(p)).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(parts: &[PathElement]) -> Vec<PathElement> {
        parts.to_vec()
    }

    fn f(name: &str) -> PathElement {
        PathElement::field(name)
    }

    #[test]
    fn fields_v1_round_trip_keeps_dot_members_and_order() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
                }}}
            },
            "f:status": {"f:conditions": {"v:\"a\"": {}, "i:3": {}}}
        });
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert!(set.has(&p(&[f("metadata"), f("labels")])));
        assert!(!set.has(&p(&[f("metadata")])));
        let web = PathElement::key(vec![("name".into(), json!("web"))]);
        assert!(set.has(&p(&[
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            web.clone()
        ])));
        assert!(set.has(&p(&[
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            web,
            f("image")
        ])));
        assert_eq!(set.to_fields_v1(), v);
        assert_eq!(
            serde_json::to_string(&set.to_fields_v1()).unwrap(),
            serde_json::to_string(&v).unwrap(),
            "key order is upstream's"
        );
    }

    #[test]
    fn serialization_sorts_fields_before_keys_before_values() {
        let mut set = FieldSet::new();
        set.insert(&p(&[f("b")]));
        set.insert(&p(&[PathElement::Index(1)]));
        set.insert(&p(&[PathElement::Value(json!("x"))]));
        set.insert(&p(&[PathElement::key(vec![
            ("port".into(), json!(80)),
            ("name".into(), json!("a")),
        ])]));
        set.insert(&p(&[f("a"), f("z")]));
        let s = serde_json::to_string(&set.to_fields_v1()).unwrap();
        assert_eq!(
            s,
            r#"{"f:a":{"f:z":{}},"f:b":{},"k:{\"name\":\"a\",\"port\":80}":{},"v:\"x\"":{},"i:1":{}}"#
        );
    }

    #[test]
    fn malformed_fields_v1_is_rejected_and_unknown_kinds_dropped() {
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:[1]": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"fx": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"i:x": {}})).is_err());
        let s = FieldSet::from_fields_v1(&json!({"z:whatever": {}, "f:a": {}})).unwrap();
        assert_eq!(s.to_fields_v1(), json!({"f:a": {}}));
    }

    #[test]
    fn set_algebra_matches_upstream() {
        let a =
            FieldSet::from_fields_v1(&json!({"f:a": {".": {}, "f:b": {}, "f:c": {}}, "f:d": {}}))
                .unwrap();
        let b = FieldSet::from_fields_v1(&json!({"f:a": {"f:b": {}}, "f:e": {}})).unwrap();
        assert_eq!(
            a.union(&b).to_fields_v1(),
            json!({"f:a": {".": {}, "f:b": {}, "f:c": {}}, "f:d": {}, "f:e": {}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:a": {"f:b": {}}})
        );
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:a": {".": {}, "f:c": {}}, "f:d": {}})
        );
        // A parent member in `other` leaves the children with plain difference...
        let parent = FieldSet::from_field_paths(&[&["a"]]);
        assert_eq!(
            a.difference(&parent).to_fields_v1(),
            json!({"f:a": {"f:b": {}, "f:c": {}}, "f:d": {}})
        );
        // ...and removes them with the recursive one.
        assert_eq!(
            a.recursive_difference(&parent).to_fields_v1(),
            json!({"f:d": {}})
        );
        assert_eq!(a.len(), 4);
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn paths_print_like_upstream() {
        let key = PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        let path = p(&[f("spec"), f("ports"), key, f("port")]);
        assert_eq!(
            path_string(&path),
            r#".spec.ports[containerPort=80,protocol="TCP"].port"#
        );
        assert_eq!(
            path_string(&p(&[
                f("a"),
                PathElement::Value(json!("x")),
                PathElement::Index(2)
            ])),
            r#".a[="x"][2]"#
        );
    }
}
