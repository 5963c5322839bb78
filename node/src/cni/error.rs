//! The CNI error result: a code from the spec's table (or ours, 100+), a short message and details.

use serde::Serialize;

/// Error codes. 1–11 are the spec's well-known codes; 8 is libcni's `ErrInvalidNetNS`;
/// 100 and up are ours; 999 is libcni's `ErrInternal`, used for kernel (netlink, sysctl) failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 1: the configuration's `cniVersion` is not one we support.
    IncompatibleVersion,
    /// 2: a field we do not support; the message names the key and value.
    UnsupportedField,
    /// 3: the container (its network namespace) does not exist.
    UnknownContainer,
    /// 4: a `CNI_*` environment variable is missing or invalid; the message names it.
    InvalidEnvironment,
    /// 5: reading stdin or the IPAM state failed.
    IoFailure,
    /// 6: stdin is not the JSON we expect.
    DecodingFailure,
    /// 7: the configuration decodes but is not valid.
    InvalidConfig,
    /// 8: `CNI_NETNS` is the plugin's own namespace.
    InvalidNetns,
    /// 11: a transient condition; the runtime may retry.
    TryAgainLater,
    /// 100: every address of the podCIDR is allocated.
    AddressesExhausted,
    /// 101: CHECK found the attachment missing or different from `prevResult`.
    CheckFailed,
    /// 999: the kernel refused an operation.
    Internal,
}

impl ErrorCode {
    /// The number that goes into the error JSON.
    pub fn code(self) -> u32 {
        match self {
            Self::IncompatibleVersion => 1,
            Self::UnsupportedField => 2,
            Self::UnknownContainer => 3,
            Self::InvalidEnvironment => 4,
            Self::IoFailure => 5,
            Self::DecodingFailure => 6,
            Self::InvalidConfig => 7,
            Self::InvalidNetns => 8,
            Self::TryAgainLater => 11,
            Self::AddressesExhausted => 100,
            Self::CheckFailed => 101,
            Self::Internal => 999,
        }
    }
}

/// A failed command, printed on stdout as the spec's error JSON (the binary then exits non-zero).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg} (code {}){}", .code.code(), if .details.is_empty() { String::new() } else { format!(": {}", .details) })]
pub struct CniError {
    pub code: ErrorCode,
    pub msg: String,
    pub details: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorJson<'a> {
    cni_version: &'a str,
    code: u32,
    msg: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    details: &'a str,
}

impl CniError {
    pub fn new(code: ErrorCode, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn internal(msg: impl Into<String>, details: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, msg, details.to_string())
    }

    /// The error JSON for `cni_version` (the request's version when it was readable).
    pub fn to_json(&self, cni_version: &str) -> String {
        let body = ErrorJson {
            cni_version,
            code: self.code.code(),
            msg: &self.msg,
            details: &self.details,
        };
        // Serialising plain strings and a number cannot fail.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            format!(
                r#"{{"cniVersion":"{cni_version}","code":{},"msg":"error"}}"#,
                self.code.code()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_fields() {
        let e = CniError::new(
            ErrorCode::InvalidConfig,
            "invalid podCIDR",
            "\"10.0.0.0/31\" is too small",
        );
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.0.0")).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"cniVersion":"1.0.0","code":7,"msg":"invalid podCIDR","details":"\"10.0.0.0/31\" is too small"})
        );
    }

    #[test]
    fn empty_details_are_left_out() {
        let e = CniError::new(ErrorCode::InvalidEnvironment, "CNI_COMMAND missing", "");
        assert_eq!(
            e.to_json("0.4.0"),
            r#"{"cniVersion":"0.4.0","code":4,"msg":"CNI_COMMAND missing"}"#
        );
        assert_eq!(e.to_string(), "CNI_COMMAND missing (code 4)");
    }

    #[test]
    fn codes_match_the_spec_table() {
        let table = [
            (ErrorCode::IncompatibleVersion, 1),
            (ErrorCode::UnsupportedField, 2),
            (ErrorCode::UnknownContainer, 3),
            (ErrorCode::InvalidEnvironment, 4),
            (ErrorCode::IoFailure, 5),
            (ErrorCode::DecodingFailure, 6),
            (ErrorCode::InvalidConfig, 7),
            (ErrorCode::TryAgainLater, 11),
        ];
        for (code, n) in table {
            assert_eq!(code.code(), n, "{code:?}");
        }
    }
}
