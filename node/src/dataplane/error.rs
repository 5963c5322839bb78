//! Errors of the dataplane loader and map writers.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("eBPF object {path}: {source}")]
    Load {
        path: PathBuf,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("eBPF object {0} not found (run `cargo xtask build-ebpf`, or pass --bpf-object)")]
    ObjectMissing(PathBuf),
    #[error("program {name}: {source}")]
    Program {
        name: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("map {name}: {source}")]
    Map {
        name: String,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("map {0} is missing from the object")]
    MapMissing(&'static str),
    #[error("pinned map {name} has key/value size {found:?}, this build expects {want:?}")]
    PinnedMismatch {
        name: &'static str,
        found: (u32, u32),
        want: (u32, u32),
    },
    #[error("link {path}: {message}")]
    Link { path: PathBuf, message: String },
    #[error("bpffs at {path}: {source}")]
    Bpffs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid service: {0}")]
    InvalidService(String),
    #[error("service map is full: {0}")]
    Full(String),
}

impl DataplaneError {
    pub(crate) fn map(name: &str, e: aya::maps::MapError) -> Self {
        DataplaneError::Map {
            name: name.to_string(),
            source: Box::new(e),
        }
    }
    pub(crate) fn program(name: &str, e: aya::programs::ProgramError) -> Self {
        DataplaneError::Program {
            name: name.to_string(),
            source: Box::new(e),
        }
    }
}
