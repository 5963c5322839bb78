//! Field-level validation errors, shaped like apimachinery's `field.Error`
//! (`k8s.io/apimachinery/pkg/util/validation/field`): a field path, an error
//! type (the `StatusCause.type` on the wire) and the rendered error body.
//!
//! Bad values are rendered the way Go's `field.Error.ErrorBody()` does: strings
//! with `%q`, integers and booleans plainly, everything else as Go's
//! `encoding/json` would marshal it (map keys sorted, HTML characters escaped).

use serde_json::Value;
use std::fmt;

/// Machine-readable error type; the variant names are the wire `CauseType`s.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorType {
    FieldValueNotFound,
    FieldValueRequired,
    FieldValueDuplicate,
    FieldValueInvalid,
    FieldValueNotSupported,
    FieldValueForbidden,
    FieldValueTooLong,
    FieldValueTooMany,
    FieldValueTooShort,
    InternalError,
}

impl FieldErrorType {
    /// The `CauseType` string used in `Status.details.causes[].reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FieldValueNotFound => "FieldValueNotFound",
            Self::FieldValueRequired => "FieldValueRequired",
            Self::FieldValueDuplicate => "FieldValueDuplicate",
            Self::FieldValueInvalid => "FieldValueInvalid",
            Self::FieldValueNotSupported => "FieldValueNotSupported",
            Self::FieldValueForbidden => "FieldValueForbidden",
            Self::FieldValueTooLong => "FieldValueTooLong",
            Self::FieldValueTooMany => "FieldValueTooMany",
            Self::FieldValueTooShort => "FieldValueTooShort",
            Self::InternalError => "InternalError",
        }
    }

    /// The human wording that starts the error body (`ErrorType.String()`).
    pub fn description(self) -> &'static str {
        match self {
            Self::FieldValueNotFound => "Not found",
            Self::FieldValueRequired => "Required value",
            Self::FieldValueDuplicate => "Duplicate value",
            Self::FieldValueInvalid => "Invalid value",
            Self::FieldValueNotSupported => "Unsupported value",
            Self::FieldValueForbidden => "Forbidden",
            Self::FieldValueTooLong => "Too long",
            Self::FieldValueTooMany => "Too many",
            Self::FieldValueTooShort => "Too short",
            Self::InternalError => "Internal error",
        }
    }
}

impl fmt::Display for FieldErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation failure. `message` is upstream's `ErrorBody()` (what goes into
/// `StatusCause.message`); `Display` gives `Error()`, i.e. `field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: FieldErrorType,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Joins errors the way `ErrorList.ToAggregate().Error()` does: duplicates
/// (same rendered text) dropped, a single error bare, several in `[a, b]`.
pub fn aggregate_message(errs: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// The `Status.message` of a 422 Invalid response (`errors.NewInvalid`), e.g.
/// `Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: ...`.
pub fn invalid_status_message(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let agg = aggregate_message(errs);
    if agg.is_empty() {
        format!("{qualified} {} is invalid", go_quote(name))
    } else {
        format!("{qualified} {} is invalid: {agg}", go_quote(name))
    }
}

/// A field path such as `spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn new(name: &str) -> Path {
        Path(name.to_string())
    }

    pub(crate) fn child(&self, name: &str) -> Path {
        Path(format!("{}.{}", self.0, name))
    }

    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }

    pub(crate) fn key(&self, k: &str) -> Path {
        Path(format!("{}[{}]", self.0, k))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bad value to print after `Invalid value:` and friends.
#[derive(Debug, Clone)]
pub(crate) enum Bad {
    /// A Go `string`: printed with `%q`.
    Str(String),
    /// A Go integer: printed plainly.
    Int(i64),
    /// A Go bool: printed plainly.
    Bool(bool),
    /// A struct/slice/pointer: printed as JSON, object keys in the given order.
    Json(Value),
    /// A Go map: printed as JSON with keys sorted (what `encoding/json` does).
    Map(Value),
    /// `field.OmitValueType{}`: no value printed at all.
    Omit,
}

impl From<&str> for Bad {
    fn from(s: &str) -> Bad {
        Bad::Str(s.to_string())
    }
}

impl From<String> for Bad {
    fn from(s: String) -> Bad {
        Bad::Str(s)
    }
}

impl From<&String> for Bad {
    fn from(s: &String) -> Bad {
        Bad::Str(s.clone())
    }
}

impl From<i64> for Bad {
    fn from(i: i64) -> Bad {
        Bad::Int(i)
    }
}

impl From<bool> for Bad {
    fn from(b: bool) -> Bad {
        Bad::Bool(b)
    }
}

impl From<&Value> for Bad {
    fn from(v: &Value) -> Bad {
        match v {
            Value::String(s) => Bad::Str(s.clone()),
            Value::Bool(b) => Bad::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Bad::Int(i),
                None => Bad::Json(v.clone()),
            },
            _ => Bad::Json(v.clone()),
        }
    }
}

impl Bad {
    fn render(&self) -> Option<String> {
        match self {
            Bad::Str(s) => Some(go_quote(s)),
            Bad::Int(i) => Some(i.to_string()),
            Bad::Bool(b) => Some(b.to_string()),
            Bad::Json(v) => Some(go_json(v, false)),
            Bad::Map(v) => Some(go_json(v, true)),
            Bad::Omit => None,
        }
    }
}

fn build(path: &Path, reason: FieldErrorType, bad: Option<&Bad>, detail: &str) -> FieldError {
    let mut body = reason.description().to_string();
    if let Some(b) = bad.and_then(Bad::render) {
        body.push_str(": ");
        body.push_str(&b);
    }
    if !detail.is_empty() {
        body.push_str(": ");
        body.push_str(detail);
    }
    FieldError {
        field: path.as_str().to_string(),
        reason,
        message: body,
    }
}

pub(crate) fn required(path: &Path, detail: &str) -> FieldError {
    build(path, FieldErrorType::FieldValueRequired, None, detail)
}

pub(crate) fn forbidden(path: &Path, detail: &str) -> FieldError {
    build(path, FieldErrorType::FieldValueForbidden, None, detail)
}

pub(crate) fn invalid(path: &Path, bad: impl Into<Bad>, detail: &str) -> FieldError {
    build(
        path,
        FieldErrorType::FieldValueInvalid,
        Some(&bad.into()),
        detail,
    )
}

pub(crate) fn duplicate(path: &Path, bad: impl Into<Bad>) -> FieldError {
    build(
        path,
        FieldErrorType::FieldValueDuplicate,
        Some(&bad.into()),
        "",
    )
}

pub(crate) fn not_found(path: &Path, bad: impl Into<Bad>) -> FieldError {
    build(
        path,
        FieldErrorType::FieldValueNotFound,
        Some(&bad.into()),
        "",
    )
}

pub(crate) fn not_found_detail(path: &Path, bad: impl Into<Bad>, detail: &str) -> FieldError {
    build(
        path,
        FieldErrorType::FieldValueNotFound,
        Some(&bad.into()),
        detail,
    )
}

pub(crate) fn not_supported(path: &Path, bad: impl Into<Bad>, valid: &[&str]) -> FieldError {
    let detail = if valid.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
        format!("supported values: {}", quoted.join(", "))
    };
    build(
        path,
        FieldErrorType::FieldValueNotSupported,
        Some(&bad.into()),
        &detail,
    )
}

/// `field.TooLong` with a byte limit.
pub(crate) fn too_long(path: &Path, max_bytes: i64) -> FieldError {
    let unit = if max_bytes == 1 { "byte" } else { "bytes" };
    build(
        path,
        FieldErrorType::FieldValueTooLong,
        None,
        &format!("may not be more than {max_bytes} {unit}"),
    )
}

pub(crate) fn too_many(path: &Path, actual: i64, max: i64) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    build(
        path,
        FieldErrorType::FieldValueTooMany,
        Some(&Bad::Int(actual)),
        &format!("must have at most {max} {unit}"),
    )
}

/// Go's `strconv.Quote`: escapes quotes, backslashes and non-printable runes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go `encoding/json` output for a value: compact, HTML-escaped strings, and
/// (when `sort` is set, as for Go maps) object keys in sorted order.
pub(crate) fn go_json(v: &Value, sort: bool) -> String {
    let mut out = String::new();
    write_go_json(v, sort, &mut out);
    out
}

fn write_go_json(v: &Value, sort: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_go_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(e, sort, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            if sort {
                keys.sort();
            }
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json_string(k, out);
                out.push(':');
                if let Some(val) = m.get(k.as_str()) {
                    write_go_json(val, sort, out);
                }
            }
            out.push('}');
        }
    }
}

fn write_go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_match_upstream_shapes() {
        let p = Path::new("spec").child("replicas");
        assert_eq!(
            invalid(&p, -1i64, "must be greater than or equal to 0").to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let p = Path::new("spec")
            .child("template")
            .child("spec")
            .child("containers")
            .index(0)
            .child("image");
        let e = required(&p, "");
        assert_eq!(
            e.to_string(),
            "spec.template.spec.containers[0].image: Required value"
        );
        assert_eq!(e.reason, FieldErrorType::FieldValueRequired);
        let e = not_supported(
            &Path::new("spec").child("type"),
            "Foo",
            &["ClusterIP", "NodePort"],
        );
        assert_eq!(
            e.message,
            r#"Unsupported value: "Foo": supported values: "ClusterIP", "NodePort""#
        );
        assert_eq!(
            too_long(&Path::new("metadata").child("annotations"), 262144).message,
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            too_many(&Path::new("x"), 21, 20).message,
            "Too many: 21: must have at most 20 items"
        );
        assert_eq!(
            duplicate(&Path::new("a").key("k"), "v").to_string(),
            r#"a[k]: Duplicate value: "v""#
        );
    }

    #[test]
    fn go_rendering_of_values() {
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(
            go_json(&json!({"b": "<x>", "a": [1, true, null]}), true),
            r#"{"a":[1,true,null],"b":"\u003cx\u003e"}"#
        );
        assert_eq!(go_json(&json!({"b": 1, "a": 2}), false), r#"{"b":1,"a":2}"#);
        let e = invalid(&Path::new("x"), Bad::Map(json!({"z": "1", "a": "2"})), "d");
        assert_eq!(e.message, r#"Invalid value: {"a":"2","z":"1"}: d"#);
        let e = invalid(&Path::new("x"), Bad::Omit, "d");
        assert_eq!(e.message, "Invalid value: d");
    }

    #[test]
    fn aggregates_like_upstream() {
        let a = required(&Path::new("a"), "");
        let b = required(&Path::new("b"), "");
        assert_eq!(
            aggregate_message(std::slice::from_ref(&a)),
            "a: Required value"
        );
        assert_eq!(
            aggregate_message(&[a.clone(), b, a.clone()]),
            "[a: Required value, b: Required value]"
        );
        assert_eq!(
            invalid_status_message("apps", "Deployment", "web", std::slice::from_ref(&a)),
            r#"Deployment.apps "web" is invalid: a: Required value"#
        );
        assert_eq!(
            invalid_status_message("", "Pod", "p", &[]),
            r#"Pod "p" is invalid"#
        );
    }
}
