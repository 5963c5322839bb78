//! Shapes of the generated protobuf schema table (`table.rs`).

/// Wire type and JSON form of a field (or of a repeated field's elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Bool,
    I32,
    I64,
    // No 1.37 built-in kind has a floating-point field; kept so a regenerated table that does
    // still decodes.
    #[allow(dead_code)]
    F64,
    #[allow(dead_code)]
    F32,
    /// JSON: base64 string.
    Bytes,
    /// A message, by index into `MESSAGES`.
    Msg(u16),
    /// `map<string, V>`; JSON: an object with sorted keys, as Go's encoder writes maps.
    StrMap(&'static Kind),
}

/// When Go's JSON encoder writes a field, given what the protobuf wire carried. Go's protobuf
/// encoder writes every non-pointer field even when zero, so wire presence alone does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Presence {
    /// A pointer with `omitempty`: written iff present on the wire (an explicit zero stays).
    Pointer,
    /// A pointer without `omitempty`: `null` when absent.
    PointerOrNull,
    /// A value with `omitempty`: dropped when zero / empty.
    OmitEmpty,
    /// A struct value with `omitzero` (the time types): dropped when zero, i.e. JSON `null`.
    OmitZero,
    /// A value without `omitempty`: always written (zero value, or `null` for nil slices and maps).
    Always,
    /// An embedded struct: its fields are spliced into the enclosing object.
    Inline,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    None,
    /// `meta.v1.Time`: RFC 3339 at second precision, `null` when zero.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 with six fractional digits, `null` when zero.
    MicroTime,
    /// `meta.v1.Duration`: Go's `time.Duration` string. No 1.37 built-in kind reaches it; kept
    /// so a regenerated table that does still decodes.
    #[allow(dead_code)]
    Duration,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`: the embedded JSON.
    RawExtension,
    /// `meta.v1.FieldsV1`: the embedded JSON.
    FieldsV1,
    /// A Go named slice (`type ExtraValue []string`) wrapped as `repeated T items = 1`: the array.
    Items,
}

#[derive(Debug)]
pub(super) struct Message {
    /// Full protobuf name, for errors.
    pub name: &'static str,
    pub special: Special,
    /// In Go JSON order.
    pub fields: &'static [Field],
}

#[derive(Debug)]
pub(super) struct Field {
    pub tag: u32,
    /// Empty for inlined fields.
    pub json: &'static str,
    pub kind: Kind,
    pub repeated: bool,
    pub presence: Presence,
}

/// Keeps the generated table short.
pub(super) const fn f(
    tag: u32,
    json: &'static str,
    kind: Kind,
    repeated: bool,
    presence: Presence,
) -> Field {
    Field {
        tag,
        json,
        kind,
        repeated,
        presence,
    }
}
