//! Who is asking (authentication) and whether they may (RBAC authorization).

pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod pki;
pub mod rbac;
pub mod serviceaccount;
