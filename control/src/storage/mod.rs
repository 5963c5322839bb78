//! Revisioned key-value storage: the one job the API server asks of etcd.
//!
//! Nothing above this module knows etcd types. Keys are strings
//! (`/registry/<resource>/<namespace>/<name>`), values are bytes, and every write returns the
//! store's new revision, which the API exposes as `metadata.resourceVersion`.

pub mod cache;
pub mod etcd;

use async_trait::async_trait;
use std::fmt;
use tokio::sync::mpsc;

/// One stored key.
#[derive(Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv")
            .field("key", &self.key)
            .field("bytes", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// A page of a prefix range read at one revision.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub kvs: Vec<Kv>,
    /// More keys follow the last one returned.
    pub more: bool,
    /// The revision the page was read at.
    pub revision: i64,
}

/// A condition a transaction requires of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The key must not exist.
    Absent(String),
    /// The key must exist with exactly this modification revision.
    ModRevision(String, i64),
}

impl Condition {
    pub fn key(&self) -> &str {
        match self {
            Condition::Absent(k) | Condition::ModRevision(k, _) => k,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

/// All conditions hold → all operations apply atomically at one new revision.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub conditions: Vec<Condition>,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone)]
pub enum TxnOutcome {
    Committed {
        revision: i64,
    },
    /// A condition failed; the current value of each condition's key, in order.
    Failed {
        current: Vec<Option<Kv>>,
    },
}

#[derive(Debug, Clone)]
pub enum WatchEvent {
    Put {
        kv: Kv,
        prev: Option<Kv>,
    },
    Delete {
        key: String,
        revision: i64,
        prev: Option<Kv>,
    },
    /// No events up to this revision (a progress notification).
    Progress {
        revision: i64,
    },
}

impl WatchEvent {
    pub fn revision(&self) -> i64 {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } | WatchEvent::Progress { revision } => *revision,
        }
    }
}

/// What a storage watch carries besides the changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchMode {
    /// Periodic `Progress` events, so that a quiet prefix still learns the store's revision.
    pub progress: bool,
    /// Each change's previous value (`prev` in the events): without it a deletion carries no
    /// object. The watch cache keeps the previous values itself and asks for none.
    pub prev: bool,
}

/// Batches of events in revision order; an `Err` ends the stream.
pub type WatchReceiver = mpsc::Receiver<Result<Vec<WatchEvent>, StorageError>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("required revision {requested} has been compacted (oldest available {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    #[error("required revision {0} is a future revision")]
    FutureRevision(i64),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Other(String),
}

/// Revisioned get/list/transaction/watch over string keys.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The key's current value and the revision the read happened at.
    async fn get(&self, key: &str) -> Result<(Option<Kv>, i64), StorageError>;

    /// Keys with `prefix`, starting at `start` (inclusive; `""` = the beginning), at most `limit`
    /// (0 = all), read at `revision` (0 = latest).
    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListPage, StorageError>;

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StorageError>;

    /// Events on keys with `prefix` after revision `after` (exclusive), as `mode` asks.
    async fn watch(
        &self,
        prefix: &str,
        after: i64,
        mode: WatchMode,
    ) -> Result<WatchReceiver, StorageError>;

    async fn current_revision(&self) -> Result<i64, StorageError>;

    /// Fails with `Compacted` if `revision` is older than the oldest the store still has.
    async fn check_revision(&self, revision: i64) -> Result<(), StorageError>;

    async fn compact(&self, revision: i64) -> Result<(), StorageError>;
}
