//! The structured-merge-diff walks over a typed object: the field set it sets, validation of an
//! applied configuration, comparison of two versions, the apply merge, and removal of items.

use super::fieldpath::{FieldSet, PathElement, path_string};
use super::typeinfo::{Atom, ListAtom, ListRel, MapAtom, Ty, Types};
use super::value::{equal, go_quote};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What changed between two versions of an object (leaf fields, plus containers that appeared
/// or disappeared as a whole).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    /// Drops the fields (and everything below them) that the strategy resets.
    pub fn exclude(self, fields: &FieldSet) -> Comparison {
        if fields.is_empty() {
            return self;
        }
        Comparison {
            added: self.added.recursive_difference(fields),
            modified: self.modified.recursive_difference(fields),
            removed: self.removed.recursive_difference(fields),
        }
    }
}

impl<'a> Types<'a> {
    /// The path element of a list item, or why it has none.
    pub fn item_element(&self, list: &ListAtom<'a>, item: &Value) -> Result<PathElement, String> {
        match &list.rel {
            ListRel::Map { keys, defaults } => {
                let fields = match item {
                    Value::Object(m) => m,
                    Value::Null => {
                        return Err("associative list with keys may not have a null element".into());
                    }
                    _ => {
                        return Err(
                            "associative list with keys may not have non-map elements".into()
                        );
                    }
                };
                let mut key = Vec::new();
                for (k, d) in keys.iter().zip(defaults) {
                    if let Some(v) = fields.get(k) {
                        key.push((k.clone(), v.clone()));
                    } else if let Some(d) = d {
                        key.push((k.clone(), d.clone()));
                    }
                }
                if key.is_empty() {
                    let quoted: Vec<String> = keys.iter().map(|k| go_quote(k)).collect();
                    return Err(format!(
                        "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                        quoted.join(" ")
                    ));
                }
                Ok(PathElement::key(key))
            }
            ListRel::Set => match item {
                Value::Object(_) => {
                    Err("associative list without keys has an element that's a map type".into())
                }
                Value::Array(_) => {
                    Err("not supported: associative list with lists as elements".into())
                }
                Value::Null => Err(
                    "associative list without keys has an element that's an explicit null".into(),
                ),
                v => Ok(PathElement::Value(v.clone())),
            },
            ListRel::Atomic => Err("invalid indexing of non-associative list".into()),
        }
    }

    /// Every field `v` sets (upstream `ToFieldSet`): leaves, list items (by key or value), empty
    /// or null maps, map keys, and atomic lists and maps as single fields.
    pub fn field_set(&self, v: &Value) -> FieldSet {
        let mut out = FieldSet::new();
        self.collect(self.root, v, &mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, ty: Ty<'a>, v: &Value, path: &mut Vec<PathElement>, out: &mut FieldSet) {
        match self.atom(ty, &[Some(v)]) {
            Atom::Leaf => out.insert(path),
            Atom::List(l) => {
                if matches!(l.rel, ListRel::Atomic) {
                    out.insert(path);
                    return;
                }
                let Value::Array(items) = v else { return };
                let pes: Vec<Option<PathElement>> = items
                    .iter()
                    .map(|i| self.item_element(&l, i).ok())
                    .collect();
                let mut seen = BTreeSet::new();
                let mut duplicates = BTreeSet::new();
                for pe in pes.iter().flatten() {
                    if !seen.insert(pe) && duplicates.insert(pe) {
                        // Duplicated items are owned as a whole, never field by field.
                        path.push(pe.clone());
                        out.insert(path);
                        path.pop();
                    }
                }
                for (item, pe) in items.iter().zip(&pes) {
                    let Some(pe) = pe else { continue };
                    if duplicates.contains(pe) {
                        continue;
                    }
                    path.push(pe.clone());
                    self.collect(l.elem, item, path, out);
                    out.insert(path);
                    path.pop();
                }
            }
            Atom::Map(m) => {
                if m.atomic {
                    out.insert(path);
                    return;
                }
                let Value::Object(map) = v else { return };
                for (k, child) in map {
                    let (cty, declared) = m.field(k);
                    path.push(PathElement::Field(k.clone()));
                    self.collect(cty, child, path, out);
                    let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                    if empty || !declared {
                        out.insert(path);
                    }
                    path.pop();
                }
            }
        }
    }

    /// Checks an applied configuration against the schema as upstream's typed conversion does:
    /// undeclared fields, scalar types, list-map keys and duplicates. Errors read like upstream's.
    pub fn validate(&self, v: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(self.root, v, &mut Vec::new(), &mut errs);
        errs
    }

    fn check(&self, ty: Ty<'a>, v: &Value, path: &mut Vec<PathElement>, errs: &mut Vec<String>) {
        let Ty::Schema(s) = ty else { return };
        let here = |path: &[PathElement], msg: String| {
            let p = path_string(path);
            if p.is_empty() {
                msg
            } else {
                format!("{p}: {msg}")
            }
        };
        if v.is_null() {
            return;
        }
        match self.atom(ty, &[]) {
            Atom::Leaf => {
                if let Some(msg) = self.check_scalar(s, v) {
                    errs.push(here(path, msg));
                }
            }
            Atom::List(l) => {
                let Value::Array(items) = v else {
                    errs.push(here(path, format!("expected list, got {v}")));
                    return;
                };
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let pe = if matches!(l.rel, ListRel::Atomic) {
                        PathElement::Index(i as i64)
                    } else {
                        match self.item_element(&l, item) {
                            Ok(pe) => pe,
                            Err(e) => {
                                errs.push(here(path, format!("element {i}: {e}")));
                                return;
                            }
                        }
                    };
                    if !matches!(l.rel, ListRel::Atomic) && !seen.insert(pe.clone()) {
                        errs.push(here(path, format!("duplicate entries for key {pe}")));
                    }
                    path.push(pe);
                    self.check(l.elem, item, path, errs);
                    path.pop();
                }
            }
            Atom::Map(m) => {
                let Value::Object(map) = v else {
                    errs.push(here(path, format!("expected map, got {v}")));
                    return;
                };
                for (k, child) in map {
                    path.push(PathElement::Field(k.clone()));
                    let (cty, declared) = m.field(k);
                    if !declared && m.elem.is_none() {
                        errs.push(here(path, "field not declared in schema".into()));
                        path.pop();
                        // Upstream stops looking at this map after the first unknown field.
                        return;
                    }
                    self.check(cty, child, path, errs);
                    path.pop();
                }
            }
        }
    }

    fn check_scalar(&self, s: &Value, v: &Value) -> Option<String> {
        let r = self.catalog.resolve(s);
        let go_type = |v: &Value| match v {
            Value::Object(_) => "map[string]interface {}",
            Value::Array(_) => "[]interface {}",
            Value::String(_) => "string",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float64",
            _ => "int64",
        };
        match r.get("type").and_then(Value::as_str) {
            Some("integer" | "number") if !v.is_number() => Some(format!(
                "expected numeric (int or float), got {}",
                go_type(v)
            )),
            Some("string") if !v.is_string() => Some(format!("expected string, got {v}")),
            Some("boolean") if !v.is_boolean() => Some(format!("expected boolean, got {v}")),
            None if r.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
                && (v.is_object() || v.is_array()) =>
            {
                Some(format!("expected any scalar, got {v}"))
            }
            _ => None,
        }
    }

    /// What changed from `old` to `new` (upstream `Compare`).
    pub fn compare(&self, old: &Value, new: &Value) -> Comparison {
        let mut cmp = Comparison::default();
        self.diff(self.root, Some(old), Some(new), &mut Vec::new(), &mut cmp);
        cmp
    }

    fn diff(
        &self,
        ty: Ty<'a>,
        l: Option<&Value>,
        r: Option<&Value>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        let leaf = match self.atom(ty, &[l, r]) {
            Atom::Leaf => true,
            Atom::List(la) => {
                let (ll, rl) = (l.and_then(Value::as_array), r.and_then(Value::as_array));
                let empty = ll.is_none_or(Vec::is_empty) && rl.is_none_or(Vec::is_empty);
                if matches!(la.rel, ListRel::Atomic) || empty {
                    true
                } else {
                    self.diff_list(&la, ll, rl, path, cmp);
                    false
                }
            }
            Atom::Map(m) => {
                let (lm, rm) = (l.and_then(Value::as_object), r.and_then(Value::as_object));
                let empty = lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty);
                if m.atomic || empty {
                    true
                } else {
                    self.diff_map(&m, lm, rm, path, cmp);
                    false
                }
            }
        };
        match (l, r) {
            (None, _) => cmp.added.insert(path),
            (_, None) => cmp.removed.insert(path),
            (Some(a), Some(b)) => {
                if leaf && !equal(a, b) {
                    cmp.modified.insert(path)
                }
            }
        }
    }

    fn diff_list(
        &self,
        la: &ListAtom<'a>,
        ll: Option<&Vec<Value>>,
        rl: Option<&Vec<Value>>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        // Items by path element, keeping duplicates together; order does not matter for sets.
        let mut order: Vec<PathElement> = Vec::new();
        let mut known: BTreeSet<PathElement> = BTreeSet::new();
        let mut lefts: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        let mut rights: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        for (side, list) in [(&mut lefts, ll), (&mut rights, rl)] {
            for item in list.into_iter().flatten() {
                let Ok(pe) = self.item_element(la, item) else {
                    continue;
                };
                if known.insert(pe.clone()) {
                    order.push(pe.clone());
                }
                side.entry(pe).or_default().push(item);
            }
        }
        for pe in order {
            let l = lefts.get(&pe).map(Vec::as_slice).unwrap_or_default();
            let r = rights.get(&pe).map(Vec::as_slice).unwrap_or_default();
            path.push(pe);
            match (l.len(), r.len()) {
                (0..=1, 0..=1) => {
                    self.diff(la.elem, l.first().copied(), r.first().copied(), path, cmp)
                }
                (2.., 2..) => {
                    if l.len() != r.len() || l.iter().zip(r).any(|(a, b)| !equal(a, b)) {
                        cmp.modified.insert(path);
                    }
                }
                (2.., _) => {
                    if let Some(item) = r.first() {
                        self.diff(la.elem, None, Some(item), path, cmp);
                    }
                    cmp.removed.insert(path);
                }
                (_, _) => {
                    if let Some(item) = l.first() {
                        self.diff(la.elem, Some(item), None, path, cmp);
                    }
                    cmp.added.insert(path);
                }
            }
            path.pop();
        }
    }

    fn diff_map(
        &self,
        m: &MapAtom<'a>,
        lm: Option<&Map<String, Value>>,
        rm: Option<&Map<String, Value>>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        let keys = lm.into_iter().flat_map(Map::keys).chain(
            rm.into_iter()
                .flat_map(Map::keys)
                .filter(|k| !lm.is_some_and(|l| l.contains_key(*k))),
        );
        for k in keys {
            path.push(PathElement::Field(k.clone()));
            self.diff(
                m.field(k).0,
                lm.and_then(|l| l.get(k)),
                rm.and_then(|r| r.get(k)),
                path,
                cmp,
            );
            path.pop();
        }
    }

    /// Merges an applied configuration into the live object (upstream `Merge` with the
    /// "keep the right-hand side" rule): granular maps and keyed lists merge per entry, leaves and
    /// atomic parts take the configuration's value. `null`s the configuration sets on typed
    /// fields are dropped, as decoding into the typed object does upstream.
    pub fn merge(&self, live: &Value, config: &Value) -> Result<Value, String> {
        let mut path = Vec::new();
        Ok(self
            .merge_node(self.root, Some(live), Some(config), &mut path)?
            .unwrap_or_else(|| Value::Object(Map::new())))
    }

    fn merge_node(
        &self,
        ty: Ty<'a>,
        l: Option<&Value>,
        r: Option<&Value>,
        path: &mut Vec<PathElement>,
    ) -> Result<Option<Value>, String> {
        let keep_rhs = || Ok(r.or(l).cloned());
        match self.atom(ty, &[l, r]) {
            Atom::Leaf => keep_rhs(),
            Atom::List(la) => {
                let (ll, rl) = (l.and_then(Value::as_array), r.and_then(Value::as_array));
                let empty = ll.is_none_or(Vec::is_empty) && rl.is_none_or(Vec::is_empty);
                if matches!(la.rel, ListRel::Atomic) || empty {
                    return keep_rhs();
                }
                let out = self.merge_list(
                    &la,
                    ll.map(Vec::as_slice).unwrap_or_default(),
                    rl.map(Vec::as_slice).unwrap_or_default(),
                    path,
                )?;
                Ok((!out.is_empty()).then_some(Value::Array(out)))
            }
            Atom::Map(m) => {
                let (lm, rm) = (l.and_then(Value::as_object), r.and_then(Value::as_object));
                let empty = lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty);
                if m.atomic || empty {
                    return keep_rhs();
                }
                let mut out = Map::new();
                let keys = lm.into_iter().flat_map(Map::keys).chain(
                    rm.into_iter()
                        .flat_map(Map::keys)
                        .filter(|k| !lm.is_some_and(|l| l.contains_key(*k))),
                );
                for k in keys {
                    let cty = m.field(k).0;
                    path.push(PathElement::Field(k.clone()));
                    let merged = self.merge_node(
                        cty,
                        lm.and_then(|l| l.get(k)),
                        rm.and_then(|r| r.get(k)),
                        path,
                    )?;
                    path.pop();
                    // A null the configuration sets on a typed field clears it (decoding into
                    // the typed object drops it upstream); a null the live object already holds
                    // stays, so re-applying changes nothing.
                    let live_null = lm.and_then(|l| l.get(k)).is_some_and(Value::is_null);
                    match merged {
                        Some(Value::Null) if matches!(cty, Ty::Schema(_)) && !live_null => {}
                        Some(v) => {
                            out.insert(k.clone(), v);
                        }
                        None => {}
                    }
                }
                Ok((!out.is_empty()).then_some(Value::Object(out)))
            }
        }
    }

    /// Merges keyed lists keeping upstream's item order: live items stay where they are, the
    /// configuration's items come in its order, shared items where the configuration puts them.
    fn merge_list(
        &self,
        la: &ListAtom<'a>,
        lhs: &[Value],
        rhs: &[Value],
        path: &mut Vec<PathElement>,
    ) -> Result<Vec<Value>, String> {
        let element = |item: &Value, i: usize| {
            self.item_element(la, item)
                .map_err(|e| format!("{}: element {i}: {e}", path_string(path)))
        };
        let mut rhs_pes = Vec::new();
        let mut observed_rhs: BTreeMap<PathElement, &Value> = BTreeMap::new();
        for (i, item) in rhs.iter().enumerate() {
            let pe = element(item, i)?;
            if observed_rhs.insert(pe.clone(), item).is_some() {
                return Err(format!(
                    "{}: duplicate entries for key {pe}",
                    path_string(path)
                ));
            }
            rhs_pes.push(pe);
        }
        let mut lhs_pes = Vec::new();
        let mut observed_lhs: BTreeMap<PathElement, Value> = BTreeMap::new();
        for (i, item) in lhs.iter().enumerate() {
            let pe = element(item, i)?;
            // Duplicated live items are not merged with the configuration's item.
            let seen = observed_lhs.contains_key(&pe);
            observed_lhs.insert(pe.clone(), if seen { Value::Null } else { item.clone() });
            lhs_pes.push(pe);
        }
        let mut shared = rhs_pes.iter().filter(|pe| observed_lhs.contains_key(*pe));
        let mut next_shared = shared.next();
        let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
        let mut out = Vec::new();
        let mut push = |pe: &PathElement,
                        l: Option<&Value>,
                        r: Option<&Value>,
                        path: &mut Vec<PathElement>| {
            path.push(pe.clone());
            let merged = self.merge_node(la.elem, l, r, path);
            path.pop();
            if let Some(v) = merged? {
                out.push(v);
            }
            Ok::<(), String>(())
        };
        let (mut li, mut ri) = (0, 0);
        while li < lhs_pes.len() || ri < rhs_pes.len() {
            if li < lhs_pes.len() && ri < rhs_pes.len() {
                let pe = &lhs_pes[li];
                if *pe == rhs_pes[ri] {
                    merged_rhs.insert(pe);
                    push(
                        pe,
                        observed_lhs.get(pe),
                        observed_rhs.get(pe).copied(),
                        path,
                    )?;
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    // A shared item, but not the next one the configuration orders.
                    li += 1;
                    continue;
                }
            }
            if li < lhs_pes.len() {
                let pe = &lhs_pes[li];
                if !observed_rhs.contains_key(pe) {
                    // Every live item has an element (errors returned above), so indexes line up.
                    push(pe, lhs.get(li), None, path)?;
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                }
            }
            if ri < rhs_pes.len() {
                let pe = &rhs_pes[ri];
                merged_rhs.insert(pe);
                push(
                    pe,
                    observed_lhs.get(pe),
                    observed_rhs.get(pe).copied(),
                    path,
                )?;
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.next();
                }
            }
        }
        Ok(out)
    }

    /// `v` without the listed fields and items (upstream `RemoveItems`). Containers left empty
    /// by the removal disappear (upstream leaves a null the typed object then drops).
    pub fn remove(&self, v: &Value, items: &FieldSet) -> Value {
        self.remove_node(self.root, v, items)
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    fn remove_node(&self, ty: Ty<'a>, v: &Value, items: &FieldSet) -> Option<Value> {
        match self.atom(ty, &[Some(v)]) {
            Atom::Leaf => Some(v.clone()),
            Atom::List(la) => {
                let Value::Array(list) = v else {
                    return Some(v.clone());
                };
                if list.is_empty() {
                    return Some(v.clone());
                }
                if matches!(la.rel, ListRel::Atomic) {
                    return None;
                }
                let mut out = Vec::new();
                for item in list {
                    let Ok(pe) = self.item_element(&la, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if items.has(std::slice::from_ref(&pe)) {
                        continue;
                    }
                    match items.with_prefix(&pe) {
                        Some(sub) => out.extend(self.remove_node(la.elem, item, sub)),
                        None => out.push(item.clone()),
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            Atom::Map(m) => {
                let Value::Object(map) = v else {
                    return Some(v.clone());
                };
                if map.is_empty() {
                    return Some(v.clone());
                }
                if m.atomic {
                    return None;
                }
                let mut out = Map::new();
                for (k, child) in map {
                    let pe = PathElement::Field(k.clone());
                    if items.has(std::slice::from_ref(&pe)) {
                        continue;
                    }
                    let kept = match items.with_prefix(&pe) {
                        Some(sub) => self.remove_node(m.field(k).0, child, sub),
                        None => Some(child.clone()),
                    };
                    if let Some(kept) = kept {
                        out.insert(k.clone(), kept);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
        }
    }

    /// The set plus every declared struct field that has members below it (upstream
    /// `EnsureNamedFieldsAreMembers`), so that removing a struct's last owned field removes it.
    pub fn with_named_fields(&self, set: &FieldSet) -> FieldSet {
        self.named(set, Some(self.root))
    }

    fn named(&self, set: &FieldSet, ty: Option<Ty<'a>>) -> FieldSet {
        let atom = ty.map(|t| self.atom(t, &[]));
        let mut members = set.members().clone();
        let mut children = BTreeMap::new();
        for (pe, child) in set.children() {
            let child_ty = match (pe, &atom) {
                (PathElement::Field(name), Some(Atom::Map(m))) => {
                    let (cty, declared) = m.field(name);
                    if declared {
                        members.insert(pe.clone());
                    }
                    (declared || m.elem.is_some()).then_some(cty)
                }
                (PathElement::Key(_), Some(Atom::List(l))) => Some(l.elem),
                _ => None,
            };
            children.insert(pe.clone(), self.named(child, child_ty));
        }
        FieldSet::from_parts(members, children)
    }
}
