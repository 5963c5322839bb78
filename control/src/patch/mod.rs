//! The patch engines: strategic merge patch and server-side apply (JSON patch and JSON merge
//! patch come from the `json-patch` crate).

pub mod managed;
pub mod strategic;
