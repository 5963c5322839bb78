//! Request bodies → objects: parse (JSON with duplicate-field detection, or YAML), check kind and
//! apiVersion against the path, validate fields against the schema, normalize through the typed
//! k8s-openapi struct.

use super::negotiate::BodyType;
use super::query::FieldValidation;
use super::status::{ApiError, ApiResult};
use crate::registry::resources::Resource;
use crate::schema::{Catalog, validate};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Parses JSON, recording every duplicated field's path.
pub fn parse_json(bytes: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let dups = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Seed {
        path: String::new(),
        dups: &dups,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((v, dups.into_inner()))
}

struct Seed<'a> {
    path: String,
    dups: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed {
            path: format!("{}[{}]", self.path, out.len()),
            dups: self.dups,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if out.contains_key(&key) {
                self.dups.borrow_mut().push(path.clone());
            }
            let v = map.next_value_seed(Seed {
                path,
                dups: self.dups,
            })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// A body as a JSON value (JSON or YAML), with duplicated fields (JSON only; YAML rejects them).
pub fn parse_body(bytes: &[u8], ty: BodyType) -> ApiResult<(Value, Vec<String>)> {
    let looks_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    match ty {
        BodyType::Protobuf => crate::proto::decode(bytes)
            .map(|(_, _, v)| (v, Vec::new()))
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf: {e}"))),
        BodyType::Yaml | BodyType::ApplyPatch if !looks_json => {
            serde_yaml_ng::from_slice::<Value>(bytes)
                .map(|v| (v, Vec::new()))
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        _ => parse_json(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}"))),
    }
}

/// The body of a request whose content type names an object encoding (JSON, YAML, protobuf).
pub fn object_body(ctx: &super::Ctx, body: &[u8]) -> ApiResult<(Value, Vec<String>)> {
    let ct = ctx
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match super::negotiate::body_type(ct) {
        Some(ty @ (BodyType::Json | BodyType::Yaml | BodyType::Protobuf)) => parse_body(body, ty),
        _ => Err(ApiError::unsupported_media_type(ct.unwrap_or_default())),
    }
}

/// What decoding found besides the object.
#[derive(Debug, Default)]
pub struct Findings {
    pub warnings: Vec<String>,
}

/// Checks `obj` (a full object) against the resource and its schema, then normalizes it.
pub fn check_object(
    catalog: &Catalog,
    r: &Resource,
    mut obj: Value,
    dups: &[String],
    validation: FieldValidation,
) -> ApiResult<(Value, Findings)> {
    let handled_as = || {
        format!(
            "{} in version \"{}\" cannot be handled as a {}",
            r.kind, r.version, r.kind
        )
    };
    let Value::Object(map) = &mut obj else {
        return Err(ApiError::bad_request(format!(
            "{}: the body must be a JSON object",
            handled_as()
        )));
    };
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(r.kind.into()));
        }
        Some(k) if k == r.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({}) or kind {k:?} does not match {:?}",
                map.get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                r.api_version(),
                r.kind
            )));
        }
    }
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(r.api_version()));
        }
        Some(v) if v == r.api_version() => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                r.api_version()
            )));
        }
    }
    let mut findings = Findings::default();
    if validation != FieldValidation::Ignore {
        let unknown = catalog
            .kind(r.group, r.version, r.kind)
            .map(|s| validate::unknown_fields(catalog, s, &obj))
            .unwrap_or_default();
        let mut problems: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        problems.extend(dups.iter().map(|f| format!("duplicate field \"{f}\"")));
        if !problems.is_empty() {
            if validation == FieldValidation::Strict {
                return Err(ApiError::bad_request(format!(
                    "{}: strict decoding error: {}",
                    handled_as(),
                    problems.join(", ")
                )));
            }
            findings.warnings = problems;
        }
    }
    let normalized =
        (r.normalize)(obj).map_err(|e| ApiError::bad_request(format!("{}: {e}", handled_as())))?;
    Ok((normalized, findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicate_fields_with_their_paths() {
        let (v, dups) = parse_json(br#"{"spec":{"replicas":1,"replicas":2,"x":[{"a":1,"a":2}]}}"#)
            .expect("valid json");
        assert_eq!(v["spec"]["replicas"], 2);
        assert_eq!(
            dups,
            vec!["spec.replicas".to_string(), "spec.x[0].a".to_string()]
        );
        assert!(parse_json(b"{\"a\":").is_err());
    }

    #[test]
    fn yaml_and_json_bodies() {
        let (v, _) =
            parse_body(b"kind: Pod\nmetadata:\n  name: x\n", BodyType::Yaml).expect("yaml");
        assert_eq!(v["metadata"]["name"], "x");
        let (v, _) =
            parse_body(br#"{"kind":"Pod"}"#, BodyType::ApplyPatch).expect("json apply body");
        assert_eq!(v["kind"], "Pod");
    }
}
