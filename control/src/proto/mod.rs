//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`, what kubectl and
//! client-go send for built-in kinds) decoded into the JSON the same object has on the JSON API.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope whose `raw` bytes are the
//! object's own message. The message schemas live in the generated `table.rs`; besides field
//! numbers and JSON names it records, per field, when Go's JSON encoder writes it: Go's protobuf
//! encoder puts every non-pointer field on the wire even when zero, so "present on the wire" and
//! "present in JSON" differ exactly where `omitempty` applies to a non-pointer field.

mod schema;
#[rustfmt::skip]
mod table;
#[cfg(test)]
mod tests;
mod wire;

use base64::Engine as _;
use schema::{Field, Kind, Message, Presence, Special};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use wire::{Reader, Wire};

/// Prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";
/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Nesting limit for embedded messages. Real objects nest about a dozen deep; the cap keeps a
/// hostile body from exhausting the stack.
pub const MAX_DEPTH: usize = 64;

/// The envelope message, named in errors.
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

/// Seconds from the Unix epoch to Go's zero `time.Time` (0001-01-01T00:00:00Z).
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtoError {
    #[error("body does not start with the Kubernetes protobuf prefix k8s\\0")]
    MissingMagic,
    #[error("malformed protobuf in {message}{}: {reason}", field_suffix(.field))]
    Malformed {
        /// Full protobuf name of the message being read.
        message: &'static str,
        /// JSON name (or `#tag`) of the field, empty when the message itself is broken.
        field: String,
        reason: String,
    },
    #[error("no protobuf schema for apiVersion {api_version:?} kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("unsupported envelope {what} {value:?}")]
    UnsupportedEnvelope { what: &'static str, value: String },
    #[error("{message} is nested deeper than {MAX_DEPTH} messages")]
    TooDeep { message: &'static str },
}

fn field_suffix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(" field {field}")
    }
}

/// Decodes a protobuf request body into `(apiVersion, kind, object)`, the object in its JSON
/// form with `kind` and `apiVersion` first, as Go writes them.
pub fn decode(body: &[u8]) -> Result<(String, String, Value), ProtoError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtoError::MissingMagic)?;
    let env_err = |field: &str, reason: String| ProtoError::Malformed {
        message: UNKNOWN,
        field: field.to_string(),
        reason,
    };
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut content_encoding = String::new();
    let mut content_type = String::new();
    let mut r = Reader::new(envelope);
    while let Some((tag, w)) = r.field().map_err(|e| env_err("", e))? {
        let name = match tag {
            1 => "typeMeta",
            2 => "raw",
            3 => "contentEncoding",
            4 => "contentType",
            _ => continue,
        };
        let Wire::Len(b) = w else {
            return Err(env_err(name, wire_mismatch("length-delimited", &w)));
        };
        match tag {
            1 => {
                let mut tm = Reader::new(b);
                while let Some((t, w)) = tm.field().map_err(|e| env_err(name, e))? {
                    let slot = match t {
                        1 => &mut api_version,
                        2 => &mut kind,
                        _ => continue,
                    };
                    let Wire::Len(s) = w else {
                        return Err(env_err(name, wire_mismatch("length-delimited", &w)));
                    };
                    *slot = String::from_utf8_lossy(s).into_owned();
                }
            }
            2 => raw = Some(b),
            3 => content_encoding = String::from_utf8_lossy(b).into_owned(),
            _ => content_type = String::from_utf8_lossy(b).into_owned(),
        }
    }
    if !content_encoding.is_empty() {
        return Err(ProtoError::UnsupportedEnvelope {
            what: "contentEncoding",
            value: content_encoding,
        });
    }
    if !content_type.is_empty() && content_type != CONTENT_TYPE {
        return Err(ProtoError::UnsupportedEnvelope {
            what: "contentType",
            value: content_type,
        });
    }
    let id = table::KINDS
        .binary_search_by(|(v, k, _)| (*v, *k).cmp(&(api_version.as_str(), kind.as_str())))
        .map(|i| table::KINDS[i].2)
        .map_err(|_| ProtoError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let body = match message(id, raw.unwrap_or_default(), 0)? {
        Value::Object(m) => m,
        _ => {
            return Err(ProtoError::Malformed {
                message: UNKNOWN,
                field: "raw".into(),
                reason: format!("{kind} does not decode to an object"),
            });
        }
    };
    let mut object = Map::with_capacity(body.len() + 2);
    object.insert("kind".into(), Value::String(kind.clone()));
    object.insert("apiVersion".into(), Value::String(api_version.clone()));
    object.extend(body);
    Ok((api_version, kind, Value::Object(object)))
}

fn wire_mismatch(expected: &str, got: &Wire<'_>) -> String {
    format!("expected {expected} wire type, got {}", got.type_name())
}

fn lookup(id: u16) -> Result<&'static Message, ProtoError> {
    table::MESSAGES
        .get(usize::from(id))
        .ok_or_else(|| ProtoError::Malformed {
            message: UNKNOWN,
            field: String::new(),
            reason: format!("schema table has no message {id}"),
        })
}

fn bad(msg: &Message, field: &Field, reason: impl Into<String>) -> ProtoError {
    ProtoError::Malformed {
        message: msg.name,
        field: if field.json.is_empty() {
            format!("#{}", field.tag)
        } else {
            field.json.to_string()
        },
        reason: reason.into(),
    }
}

fn bad_msg(msg: &Message, reason: impl Into<String>) -> ProtoError {
    ProtoError::Malformed {
        message: msg.name,
        field: String::new(),
        reason: reason.into(),
    }
}

/// Decodes message `id` from `data` into its JSON form.
fn message(id: u16, data: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let msg = lookup(id)?;
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep { message: msg.name });
    }
    match msg.special {
        Special::None => fields(msg, data, depth).map(Value::Object),
        Special::Items => {
            let field = msg
                .fields
                .first()
                .ok_or_else(|| bad_msg(msg, "no items field"))?;
            let mut items = Vec::new();
            let mut r = Reader::new(data);
            while let Some((tag, w)) = r.field().map_err(|e| bad_msg(msg, e))? {
                if tag == field.tag {
                    elements(msg, field, &w, depth, &mut items)?;
                }
            }
            // A Go nil slice: no items decode to nil, which Go writes as null.
            Ok(if items.is_empty() {
                Value::Null
            } else {
                Value::Array(items)
            })
        }
        special => special_value(msg, special, data),
    }
}

/// Decodes a plain message: its fields in Go JSON order, each as Go's encoder would write it.
fn fields(
    msg: &'static Message,
    data: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, ProtoError> {
    let mut seen: Vec<(usize, Wire<'_>)> = Vec::new();
    let mut r = Reader::new(data);
    while let Some((tag, w)) = r.field().map_err(|e| bad_msg(msg, e))? {
        // Unknown field numbers are skipped, as Go does.
        if let Some(i) = msg.fields.iter().position(|f| f.tag == tag) {
            seen.push((i, w));
        }
    }
    // Stable: repeated elements and last-wins scalars keep their wire order.
    seen.sort_by_key(|(i, _)| *i);
    let mut out = Map::new();
    let mut rest = seen.as_slice();
    for (i, field) in msg.fields.iter().enumerate() {
        let n = rest.iter().take_while(|(j, _)| *j == i).count();
        let (mine, tail) = rest.split_at(n);
        rest = tail;
        let wires: Vec<Wire<'_>> = mine.iter().map(|(_, w)| *w).collect();
        field_value(msg, field, &wires, depth, &mut out)?;
    }
    Ok(out)
}

fn field_value(
    msg: &'static Message,
    field: &Field,
    wires: &[Wire<'_>],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    let p = field.presence;
    if p == Presence::Inline {
        let Kind::Msg(id) = field.kind else {
            return Err(bad(msg, field, "inlined field is not a message"));
        };
        let data = merged(msg, field, wires)?;
        match message(id, &data, depth + 1)? {
            Value::Object(m) => out.extend(m),
            _ => return Err(bad(msg, field, "inlined message is not an object")),
        }
        return Ok(());
    }
    // Nil slices and maps: written as null unless omitted.
    let nil = || match p {
        Presence::Always | Presence::PointerOrNull => Some(Value::Null),
        _ => None,
    };
    let value = if field.repeated {
        let mut items = Vec::new();
        for w in wires {
            elements(msg, field, w, depth, &mut items)?;
        }
        if items.is_empty() {
            nil()
        } else {
            Some(Value::Array(items))
        }
    } else if let Kind::StrMap(value_kind) = field.kind {
        let mut entries = BTreeMap::new();
        for w in wires {
            let Wire::Len(b) = w else {
                return Err(bad(msg, field, wire_mismatch("length-delimited", w)));
            };
            let (k, v) = map_entry(msg, field, value_kind, b, depth)?;
            // Last entry for a key wins, as in Go.
            entries.insert(k, v);
        }
        if entries.is_empty() {
            nil()
        } else {
            Some(Value::Object(entries.into_iter().collect()))
        }
    } else if let Kind::Msg(id) = field.kind {
        let v = match (wires.is_empty(), p) {
            (true, Presence::Pointer) => None,
            (true, Presence::PointerOrNull) => Some(Value::Null),
            // A struct value: Go decodes nothing into its zero value and writes that.
            _ => Some(message(id, &merged(msg, field, wires)?, depth + 1)?),
        };
        match p {
            Presence::OmitZero => v.filter(|v| !v.is_null()),
            // Only wrapped slices reach here (structs are never omitempty in Go JSON).
            Presence::OmitEmpty => v.filter(|v| !is_empty(v)),
            _ => v,
        }
    } else {
        match wires.last() {
            // Last one wins for a repeated non-repeated field, as in Go.
            Some(w) => {
                let v = scalar(field.kind, w).map_err(|e| bad(msg, field, e))?;
                if p == Presence::OmitEmpty && is_empty(&v) {
                    None
                } else {
                    Some(v)
                }
            }
            None => match p {
                Presence::Always => Some(zero(field.kind)),
                Presence::PointerOrNull => Some(Value::Null),
                _ => None,
            },
        }
    };
    if let Some(v) = value {
        out.insert(field.json.to_string(), v);
    }
    Ok(())
}

/// The payload of a singular message field; several occurrences merge, which for protobuf is
/// the same as decoding their concatenation.
fn merged<'a>(
    msg: &Message,
    field: &Field,
    wires: &[Wire<'a>],
) -> Result<Cow<'a, [u8]>, ProtoError> {
    match wires {
        [] => Ok(Cow::Borrowed(&[])),
        [Wire::Len(b)] => Ok(Cow::Borrowed(b)),
        _ => {
            let mut out = Vec::new();
            for w in wires {
                match w {
                    Wire::Len(b) => out.extend_from_slice(b),
                    other => return Err(bad(msg, field, wire_mismatch("length-delimited", other))),
                }
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// Appends the element(s) one occurrence of a repeated field carries (several when packed).
fn elements(
    msg: &Message,
    field: &Field,
    w: &Wire<'_>,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<(), ProtoError> {
    let fail = |e: String| bad(msg, field, e);
    match (field.kind, w) {
        (Kind::Msg(id), Wire::Len(b)) => items.push(message(id, b, depth + 1)?),
        (Kind::Msg(_), other) => return Err(fail(wire_mismatch("length-delimited", other))),
        (Kind::StrMap(_), _) => return Err(fail("repeated map fields are not supported".into())),
        (Kind::Bool | Kind::I32 | Kind::I64, Wire::Len(b)) => {
            let mut r = Reader::new(b);
            while !r.is_empty() {
                let v = r.varint().map_err(fail)?;
                items.push(scalar(field.kind, &Wire::Varint(v)).map_err(fail)?);
            }
        }
        (Kind::F64, Wire::Len(b)) => {
            if b.len() % 8 != 0 {
                return Err(fail("packed doubles not a multiple of 8 bytes".into()));
            }
            for c in b.chunks_exact(8) {
                let bits =
                    u64::from_le_bytes(c.try_into().map_err(|_| fail("short double".into()))?);
                items.push(scalar(Kind::F64, &Wire::Fixed64(bits)).map_err(fail)?);
            }
        }
        (Kind::F32, Wire::Len(b)) => {
            if b.len() % 4 != 0 {
                return Err(fail("packed floats not a multiple of 4 bytes".into()));
            }
            for c in b.chunks_exact(4) {
                let bits =
                    u32::from_le_bytes(c.try_into().map_err(|_| fail("short float".into()))?);
                items.push(scalar(Kind::F32, &Wire::Fixed32(bits)).map_err(fail)?);
            }
        }
        (kind, w) => items.push(scalar(kind, w).map_err(fail)?),
    }
    Ok(())
}

fn map_entry(
    msg: &Message,
    field: &Field,
    value_kind: &Kind,
    entry: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let fail = |e: String| bad(msg, field, e);
    let mut key = String::new();
    let mut value: Option<Wire<'_>> = None;
    let mut r = Reader::new(entry);
    while let Some((tag, w)) = r.field().map_err(fail)? {
        match (tag, w) {
            (1, Wire::Len(b)) => key = String::from_utf8_lossy(b).into_owned(),
            (1, other) => {
                return Err(fail(format!(
                    "map key: {}",
                    wire_mismatch("length-delimited", &other)
                )));
            }
            (2, w) => value = Some(w),
            _ => {}
        }
    }
    let value = match (*value_kind, value) {
        (Kind::Msg(id), None) => message(id, &[], depth + 1)?,
        (Kind::Msg(id), Some(Wire::Len(b))) => message(id, b, depth + 1)?,
        (Kind::Msg(_), Some(other)) => {
            return Err(fail(format!(
                "map value: {}",
                wire_mismatch("length-delimited", &other)
            )));
        }
        // A missing value is the zero value; Go allocates an empty slice for bytes.
        (Kind::Bytes, None) => Value::String(String::new()),
        (kind, None) => zero(kind),
        (kind, Some(w)) => scalar(kind, &w).map_err(|e| fail(format!("map value: {e}")))?,
    };
    Ok((key, value))
}

fn scalar(kind: Kind, w: &Wire<'_>) -> Result<Value, String> {
    Ok(match (kind, *w) {
        (Kind::Str, Wire::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Kind::Bytes, Wire::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Kind::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // int32 travels sign-extended to 64 bits; Go keeps the low 32.
        (Kind::I32, Wire::Varint(v)) => Value::from(v as i32),
        (Kind::I64, Wire::Varint(v)) => Value::from(v as i64),
        (Kind::F64, Wire::Fixed64(bits)) => float(f64::from_bits(bits))?,
        (Kind::F32, Wire::Fixed32(bits)) => {
            // Go writes a float32 with float32 precision: go through its shortest decimal form.
            let x = f32::from_bits(bits);
            float(x.to_string().parse::<f64>().unwrap_or(f64::from(x)))?
        }
        (kind, w) => {
            let expected = match kind {
                Kind::Str | Kind::Bytes | Kind::Msg(_) | Kind::StrMap(_) => "length-delimited",
                Kind::Bool | Kind::I32 | Kind::I64 => "varint",
                Kind::F64 => "64-bit",
                Kind::F32 => "32-bit",
            };
            return Err(wire_mismatch(expected, &w));
        }
    })
}

fn float(x: f64) -> Result<Value, String> {
    // Go's encoder rejects NaN and infinities.
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| format!("unsupported floating-point value {x}"))
}

/// The JSON of a Go zero value of a scalar kind.
fn zero(kind: Kind) -> Value {
    match kind {
        Kind::Str => Value::String(String::new()),
        Kind::Bool => Value::Bool(false),
        Kind::I32 | Kind::I64 => Value::from(0),
        Kind::F64 | Kind::F32 => Value::from(0.0),
        // Nil []byte and nil maps; messages never reach here.
        Kind::Bytes | Kind::StrMap(_) | Kind::Msg(_) => Value::Null,
    }
}

/// What Go's `omitempty` drops: false, 0, "", and nil or empty slices and maps.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The last occurrence of each of the fields 1..=3 of a special message.
fn special_fields<'a>(msg: &Message, data: &'a [u8]) -> Result<[Option<Wire<'a>>; 3], ProtoError> {
    let mut out = [None; 3];
    let mut r = Reader::new(data);
    while let Some((tag, w)) = r.field().map_err(|e| bad_msg(msg, e))? {
        if let Some(slot) = out.get_mut((tag as usize).wrapping_sub(1)) {
            *slot = Some(w);
        }
    }
    Ok(out)
}

fn special_int(msg: &Message, field: &str, w: Option<Wire<'_>>) -> Result<i64, ProtoError> {
    match w {
        None => Ok(0),
        Some(Wire::Varint(v)) => Ok(v as i64),
        Some(other) => Err(ProtoError::Malformed {
            message: msg.name,
            field: field.into(),
            reason: wire_mismatch("varint", &other),
        }),
    }
}

fn special_bytes<'a>(
    msg: &Message,
    field: &str,
    w: Option<Wire<'a>>,
) -> Result<Option<&'a [u8]>, ProtoError> {
    match w {
        None => Ok(None),
        Some(Wire::Len(b)) => Ok(Some(b)),
        Some(other) => Err(ProtoError::Malformed {
            message: msg.name,
            field: field.into(),
            reason: wire_mismatch("length-delimited", &other),
        }),
    }
}

fn special_value(msg: &Message, special: Special, data: &[u8]) -> Result<Value, ProtoError> {
    let [f1, f2, f3] = special_fields(msg, data)?;
    let fail = |field: &str, reason: String| ProtoError::Malformed {
        message: msg.name,
        field: field.into(),
        reason,
    };
    Ok(match special {
        Special::Time => {
            // Go decodes an empty Time as the zero time and drops nanoseconds (its JSON
            // carries whole seconds only).
            if data.is_empty() {
                return Ok(Value::Null);
            }
            let secs = special_int(msg, "seconds", f1)?;
            if secs == GO_ZERO_TIME_UNIX {
                return Ok(Value::Null);
            }
            Value::String(format_rfc3339(secs, None))
        }
        Special::MicroTime => {
            if data.is_empty() {
                return Ok(Value::Null);
            }
            let secs = special_int(msg, "seconds", f1)?;
            let nanos = i64::from(special_int(msg, "nanos", f2)? as i32);
            // Truncated to microseconds toward zero first, then normalised, as Go does.
            let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos - nanos % 1000);
            let secs = i64::try_from(total.div_euclid(1_000_000_000))
                .map_err(|_| fail("seconds", "time out of range".into()))?;
            let micros = (total.rem_euclid(1_000_000_000) / 1000) as u32;
            if secs == GO_ZERO_TIME_UNIX && micros == 0 {
                return Ok(Value::Null);
            }
            Value::String(format_rfc3339(secs, Some(micros)))
        }
        Special::Duration => Value::String(go_duration(special_int(msg, "duration", f1)?)),
        Special::Quantity => match special_bytes(msg, "string", f1)? {
            // The zero Quantity.
            None => Value::String("0".into()),
            Some([]) => return Err(fail("string", "quantity must not be empty".into())),
            Some(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
        },
        Special::IntOrString => match special_int(msg, "type", f1)? {
            0 => Value::from(special_int(msg, "intVal", f2)? as i32),
            1 => Value::String(
                special_bytes(msg, "strVal", f3)?
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default(),
            ),
            t => return Err(fail("type", format!("impossible IntOrString type {t}"))),
        },
        Special::RawExtension => match special_bytes(msg, "raw", f1)? {
            None => Value::Null,
            Some(raw) => embedded_json(raw).map_err(|e| fail("raw", e))?,
        },
        Special::FieldsV1 => match special_bytes(msg, "Raw", f1)? {
            None | Some([]) => Value::Null,
            Some(raw) => embedded_json(raw).map_err(|e| fail("Raw", e))?,
        },
        Special::None | Special::Items => return Err(bad_msg(msg, "not a special message")),
    })
}

/// Embedded raw bytes that Go passes through into JSON when they look like JSON.
fn embedded_json(raw: &[u8]) -> Result<Value, String> {
    // Go's RawExtension content sniffing: JSON starts with whitespace or a JSON token.
    match raw.first() {
        Some(
            b'\t'
            | b'\r'
            | b'\n'
            | b' '
            | b'{'
            | b'['
            | b'n'
            | b't'
            | b'f'
            | b'"'
            | b'-'
            | b'0'..=b'9',
        ) => serde_json::from_slice(raw).map_err(|e| format!("invalid embedded JSON: {e}")),
        _ if raw.starts_with(&[0xd9, 0xd9, 0xf7]) => Err("embedded CBOR is not supported".into()),
        _ => Err("embedded bytes are neither JSON nor CBOR".into()),
    }
}

/// RFC 3339 in UTC as Go's `time.Format` writes it, with `micros` as six fractional digits.
fn format_rfc3339(secs: i64, micros: Option<u32>) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Go pads the year to four digits and prefixes a minus sign before the padding.
    let year = if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    };
    let (h, m, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    match micros {
        None => format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        Some(us) => format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{us:06}Z"),
    }
}

/// Go's `time.Duration.String()`.
fn go_duration(nanos: i64) -> String {
    fn frac(v: u64, prec: u32) -> String {
        if v == 0 {
            return String::new();
        }
        let digits = format!("{v:0width$}", width = prec as usize);
        format!(".{}", digits.trim_end_matches('0'))
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let scale = 10u64.pow(prec);
        return format!("{sign}{}{}{unit}", u / scale, frac(u % scale, prec));
    }
    let fraction = frac(u % 1_000_000_000, 9);
    let secs = u / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}{fraction}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}{fraction}s")
    } else {
        format!("{sign}{s}{fraction}s")
    }
}
