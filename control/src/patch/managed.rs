//! Placeholder until server-side apply lands: apply is a JSON merge, no field ownership.
use crate::schema::Catalog;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

impl Conflict {
    pub fn message(&self) -> String {
        format!("conflict with \"{}\": {}", self.manager, self.field)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("conflicts")]
    Conflicts(Vec<Conflict>),
    #[error("{0}")]
    Malformed(String),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManagedError(pub String);

#[allow(clippy::too_many_arguments)]
pub fn apply(
    _catalog: &Catalog,
    _schema: Option<&Value>,
    live: Option<&Value>,
    config: &Value,
    _manager: &str,
    _api_version: &str,
    _subresource: Option<&str>,
    _force: bool,
    _now: &str,
) -> Result<Value, ApplyError> {
    let mut out = live.cloned().unwrap_or(Value::Object(Default::default()));
    json_patch::merge(&mut out, config);
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub fn record_update(
    _catalog: &Catalog,
    _schema: Option<&Value>,
    _old: Option<&Value>,
    _new: &mut Value,
    _manager: &str,
    _api_version: &str,
    _subresource: Option<&str>,
    _now: &str,
) -> Result<(), ManagedError> {
    Ok(())
}
