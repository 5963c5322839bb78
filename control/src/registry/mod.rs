//! What the API serves and how objects of each kind are stored and changed.

pub mod convert;
pub mod meta;
pub mod resources;
pub mod store;
pub mod strategy;
