//! Query parameters of resource requests (ListOptions, GetOptions, CreateOptions, PatchOptions,
//! DeleteOptions, PodLogOptions …), parsed once.

use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RvMatch {
    Unset,
    NotOlderThan,
    Exact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

#[derive(Debug, Clone)]
pub struct Query {
    pub raw: HashMap<String, Vec<String>>,
    /// The query string as sent.
    pub original: String,
    pub watch: bool,
    pub resource_version: Option<String>,
    pub rv_match: RvMatch,
    pub limit: i64,
    pub continue_token: Option<String>,
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<u64>,
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    pub force: bool,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub include_object: IncludeObject,
    pub pretty: bool,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "True" | "TRUE" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid value {v:?} for {name}: must be a boolean"
        ))),
    }
}

impl Query {
    pub fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut raw: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            raw.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        let get = |k: &str| raw.get(k).and_then(|v| v.first()).map(String::as_str);
        let label_selector = LabelSelector::parse(get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {}", e.0)))?;
        let field_selector = FieldSelector::parse(get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.0))?;
        let limit = match get("limit") {
            Some(l) if !l.is_empty() => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid value {l:?} for limit")))?
                .max(0),
            _ => 0,
        };
        let rv_match = match get("resourceVersionMatch") {
            None | Some("") => RvMatch::Unset,
            Some("NotOlderThan") => RvMatch::NotOlderThan,
            Some("Exact") => RvMatch::Exact,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        };
        let field_validation = match get("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                )));
            }
        };
        let dry_run = match raw.get("dryRun") {
            None => false,
            Some(values) => {
                for v in values {
                    if v != "All" {
                        return Err(ApiError::bad_request(format!(
                            "dryRun: Unsupported value: {v:?}: supported values: \"All\""
                        )));
                    }
                }
                true
            }
        };
        let timeout_seconds = match get("timeoutSeconds") {
            Some(t) if !t.is_empty() => Some(t.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid value {t:?} for timeoutSeconds"))
            })?),
            _ => None,
        };
        let grace_period_seconds = match get("gracePeriodSeconds") {
            Some(g) if !g.is_empty() => Some(g.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("invalid value {g:?} for gracePeriodSeconds"))
            })?),
            _ => None,
        };
        let include_object = match get("includeObject") {
            None | Some("") | Some("Metadata") => IncludeObject::Metadata,
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            Some(o) => {
                return Err(ApiError::bad_request(format!(
                    "includeObject: Unsupported value: {o:?}"
                )));
            }
        };
        Ok(Query {
            watch: get("watch")
                .map(|w| parse_bool("watch", w))
                .transpose()?
                .unwrap_or(false),
            resource_version: get("resourceVersion")
                .filter(|s| !s.is_empty())
                .map(String::from),
            rv_match,
            limit,
            continue_token: get("continue").filter(|s| !s.is_empty()).map(String::from),
            label_selector,
            field_selector,
            allow_bookmarks: get("allowWatchBookmarks")
                .map(|b| parse_bool("allowWatchBookmarks", b))
                .transpose()?
                .unwrap_or(false),
            send_initial_events: get("sendInitialEvents")
                .map(|b| parse_bool("sendInitialEvents", b))
                .transpose()?,
            timeout_seconds,
            dry_run,
            field_manager: get("fieldManager")
                .filter(|s| !s.is_empty())
                .map(String::from),
            field_validation,
            force: get("force")
                .map(|b| parse_bool("force", b))
                .transpose()?
                .unwrap_or(false),
            grace_period_seconds,
            propagation_policy: get("propagationPolicy")
                .filter(|s| !s.is_empty())
                .map(String::from),
            orphan_dependents: get("orphanDependents")
                .map(|b| parse_bool("orphanDependents", b))
                .transpose()?,
            include_object,
            pretty: get("pretty").is_some_and(|p| p == "true" || p == "1"),
            original: query.unwrap_or_default().to_string(),
            raw,
        })
    }

    pub fn raw_query(&self) -> &str {
        &self.original
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.raw.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn all(&self, k: &str) -> &[String] {
        self.raw.get(k).map(Vec::as_slice).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubectl_watch_query() {
        let q = Query::parse(Some(
            "fieldSelector=metadata.name%3Dweb&watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ))
        .expect("parse");
        assert!(q.watch && q.allow_bookmarks);
        assert_eq!(q.send_initial_events, Some(true));
        assert_eq!(q.rv_match, RvMatch::NotOlderThan);
        assert_eq!(q.field_selector.exact("metadata.name"), Some("web"));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Query::parse(Some("limit=abc")).is_err());
        assert!(Query::parse(Some("dryRun=Some")).is_err());
        assert!(Query::parse(Some("fieldValidation=Loud")).is_err());
        assert!(Query::parse(Some("labelSelector=a%20in%20b")).is_err());
    }
}
