//! Placeholder until the validation module lands.
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    FieldValueRequired,
    FieldValueInvalid,
    FieldValueNotSupported,
    FieldValueDuplicate,
    FieldValueForbidden,
    FieldValueTooLong,
    FieldValueTooMany,
}

impl FieldErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorType::FieldValueRequired => "FieldValueRequired",
            FieldErrorType::FieldValueInvalid => "FieldValueInvalid",
            FieldErrorType::FieldValueNotSupported => "FieldValueNotSupported",
            FieldErrorType::FieldValueDuplicate => "FieldValueDuplicate",
            FieldErrorType::FieldValueForbidden => "FieldValueForbidden",
            FieldErrorType::FieldValueTooLong => "FieldValueTooLong",
            FieldErrorType::FieldValueTooMany => "FieldValueTooMany",
        }
    }
}

pub struct FieldError {
    pub field: String,
    pub reason: FieldErrorType,
    pub message: String,
}

pub fn validate(
    _group: &str,
    _kind: &str,
    _namespaced: bool,
    obj: &Value,
    _old: Option<&Value>,
) -> Vec<FieldError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        return vec![FieldError {
            field: "metadata.name".into(),
            reason: FieldErrorType::FieldValueRequired,
            message: "Required value: name or generateName is required".into(),
        }];
    }
    vec![]
}
