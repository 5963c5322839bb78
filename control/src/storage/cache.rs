//! The watch cache: one storage watch per resource feeds every client watching it.
//!
//! Each resource's cache keeps the current objects and a window of recent events, decoded once
//! and shared. A client watch is a cursor into that window; it sleeps until the cache's revision
//! moves past it. A client whose cursor falls out of the window (too slow, or asking for an older
//! revision) is told so and the API layer serves it from storage directly or ends the watch.
//! The objects answer "any version" reads (`resourceVersion=0`) and the initial state of watches
//! without touching storage, as kube-apiserver's watch cache does.

use super::{Kv, Storage, StorageError, WatchEvent, WatchMode};
use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change to one object, decoded.
#[derive(Debug)]
pub struct CacheEvent {
    pub revision: i64,
    pub kind: EventKind,
    pub key: String,
    /// The object after the change; for a deletion its last state, stamped with the deletion's
    /// revision as Kubernetes does.
    pub object: Arc<Value>,
    /// The object before the change (selectors need it to turn a MODIFIED into ADDED/DELETED).
    pub prev: Option<Arc<Value>>,
    /// `object` as JSON, made by the first watcher that sends it and shared by the rest.
    json: OnceLock<Bytes>,
}

/// Turns stored bytes into the API object, with `metadata.resourceVersion` set.
pub type Decoder = fn(&Kv) -> Option<Value>;

impl CacheEvent {
    pub fn new(
        revision: i64,
        kind: EventKind,
        key: String,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
    ) -> CacheEvent {
        CacheEvent {
            revision,
            kind,
            key,
            object,
            prev,
            json: OnceLock::new(),
        }
    }

    /// `object` serialized as JSON, once for all the watchers that send this event.
    pub fn object_json(&self) -> &Bytes {
        self.json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&*self.object).unwrap_or_default()))
    }

    /// `None` for progress notifications and undecodable values.
    pub fn from_storage(ev: &WatchEvent, decode: Decoder) -> Option<CacheEvent> {
        match ev {
            WatchEvent::Put { kv, prev } => {
                let object = Arc::new(decode(kv)?);
                let prev = prev.as_ref().and_then(decode).map(Arc::new);
                let kind = if kv.create_revision == kv.mod_revision {
                    EventKind::Added
                } else {
                    EventKind::Modified
                };
                Some(CacheEvent::new(
                    kv.mod_revision,
                    kind,
                    kv.key.clone(),
                    object,
                    prev,
                ))
            }
            WatchEvent::Delete {
                key,
                revision,
                prev,
            } => {
                let prev_kv = prev.as_ref()?;
                let mut object = decode(prev_kv)?;
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert(
                        "resourceVersion".into(),
                        Value::String(revision.to_string()),
                    );
                }
                Some(CacheEvent::new(
                    *revision,
                    EventKind::Deleted,
                    key.clone(),
                    Arc::new(object),
                    decode(prev_kv).map(Arc::new),
                ))
            }
            WatchEvent::Progress { .. } => None,
        }
    }
}

/// The cache's own storage watch: progress events move its revision on while its prefix is
/// quiet; previous values it does not need, holding every object already (etcd reads and
/// sends less, and the cache parses one value per change instead of two).
const CACHE_WATCH: WatchMode = WatchMode {
    progress: true,
    prev: false,
};

/// One storage event, decoded, before the cache applies it.
enum Change {
    Put {
        key: String,
        revision: i64,
        created: bool,
        object: Arc<Value>,
    },
    Delete {
        key: String,
        revision: i64,
    },
}

impl Change {
    fn decode(ev: WatchEvent, decode: Decoder) -> Option<Change> {
        match ev {
            WatchEvent::Put { kv, .. } => Some(Change::Put {
                object: Arc::new(decode(&kv)?),
                revision: kv.mod_revision,
                created: kv.create_revision == kv.mod_revision,
                key: kv.key,
            }),
            WatchEvent::Delete { key, revision, .. } => Some(Change::Delete { key, revision }),
            WatchEvent::Progress { .. } => None,
        }
    }
}

struct Window {
    /// Every object under the prefix as of `latest`, by key.
    objects: BTreeMap<String, Arc<Value>>,
    events: VecDeque<Arc<CacheEvent>>,
    /// Every event with a revision greater than this is in `events`.
    oldest: i64,
    /// The store's revision as far as this cache knows (events or progress).
    latest: i64,
}

pub struct WatchCache {
    prefix: String,
    window: Mutex<Window>,
    latest_tx: watch::Sender<i64>,
    capacity: usize,
}

/// The requested revision is older than the cache's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    pub oldest: i64,
}

impl std::fmt::Debug for WatchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl WatchCache {
    /// Starts caching `prefix` from the store's current revision.
    pub async fn start(
        storage: Arc<dyn Storage>,
        prefix: String,
        capacity: usize,
        decode: Decoder,
    ) -> Result<Arc<WatchCache>, StorageError> {
        let (objects, start) = load(storage.as_ref(), &prefix, decode).await?;
        let rx = storage.watch(&prefix, start, CACHE_WATCH).await?;
        let (latest_tx, _) = watch::channel(start);
        let cache = Arc::new(WatchCache {
            prefix,
            window: Mutex::new(Window {
                objects,
                events: VecDeque::new(),
                oldest: start,
                latest: start,
            }),
            latest_tx,
            capacity: capacity.max(1),
        });
        tokio::spawn(run(Arc::downgrade(&cache), storage, rx, decode));
        Ok(cache)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The newest revision the cache has seen.
    pub fn latest(&self) -> i64 {
        self.lock().latest
    }

    /// The objects under `prefix` (a namespace's, say) as of the returned revision, and a cursor
    /// that yields every event after it: a consistent start for a watch.
    pub fn snapshot(self: &Arc<Self>, prefix: &str) -> (Vec<Arc<Value>>, i64, CacheWatcher) {
        let w = self.lock();
        let watcher = CacheWatcher {
            cache: self.clone(),
            cursor: w.latest,
            latest_rx: self.latest_tx.subscribe(),
        };
        (objects_under(&w, prefix), w.latest, watcher)
    }

    /// The objects under `prefix` as of the returned revision.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Value>>, i64) {
        let w = self.lock();
        (objects_under(&w, prefix), w.latest)
    }

    /// One object as of the cache's revision.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.lock().objects.get(key).cloned()
    }

    /// A cursor that yields every event after revision `after`.
    pub fn subscribe(self: &Arc<Self>, after: i64) -> Result<CacheWatcher, TooOld> {
        let w = self.lock();
        if after < w.oldest {
            return Err(TooOld { oldest: w.oldest });
        }
        Ok(CacheWatcher {
            cache: self.clone(),
            cursor: after,
            latest_rx: self.latest_tx.subscribe(),
        })
    }

    /// Waits until the cache has seen `revision` (a client's own write, say), up to `limit`.
    pub async fn wait_for(&self, revision: i64, limit: Duration) -> bool {
        let mut rx = self.latest_tx.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|l| *l >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // A poisoned lock means a panic while holding it; the window is still consistent
        // because every mutation is a single push/pop.
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a batch of changes in revision order; each event's previous object is the one
    /// the cache held for its key.
    fn push(&self, batch: Vec<Change>, latest: i64) {
        let mut w = self.lock();
        for change in batch {
            let ev = match change {
                Change::Put {
                    key,
                    revision,
                    created,
                    object,
                } => {
                    let prev = w.objects.insert(key.clone(), object.clone());
                    let kind = if created {
                        EventKind::Added
                    } else {
                        EventKind::Modified
                    };
                    CacheEvent::new(revision, kind, key, object, prev)
                }
                Change::Delete { key, revision } => {
                    // Something the cache never decoded: nothing to tell watchers.
                    let Some(prev) = w.objects.remove(&key) else {
                        continue;
                    };
                    // Its last state, stamped with the deletion's revision as Kubernetes does.
                    let mut object = (*prev).clone();
                    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.insert(
                            "resourceVersion".into(),
                            Value::String(revision.to_string()),
                        );
                    }
                    CacheEvent::new(
                        revision,
                        EventKind::Deleted,
                        key,
                        Arc::new(object),
                        Some(prev),
                    )
                }
            };
            w.events.push_back(Arc::new(ev));
        }
        while w.events.len() > self.capacity {
            if let Some(old) = w.events.pop_front() {
                w.oldest = old.revision;
            }
        }
        if latest > w.latest {
            w.latest = latest;
        }
        let l = w.latest;
        drop(w);
        self.latest_tx.send_replace(l);
    }

    /// Start again from `objects` at `revision`: clients behind it must start again too.
    fn reset(&self, objects: BTreeMap<String, Arc<Value>>, revision: i64) {
        let mut w = self.lock();
        w.objects = objects;
        w.events.clear();
        w.oldest = revision;
        w.latest = w.latest.max(revision);
        let l = w.latest;
        drop(w);
        self.latest_tx.send_replace(l);
    }
}

fn objects_under(w: &Window, prefix: &str) -> Vec<Arc<Value>> {
    w.objects
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Every object under `prefix` and the revision they were read at.
async fn load(
    storage: &dyn Storage,
    prefix: &str,
    decode: Decoder,
) -> Result<(BTreeMap<String, Arc<Value>>, i64), StorageError> {
    let mut objects = BTreeMap::new();
    let mut start = String::new();
    let mut revision = 0;
    loop {
        let page = storage.list(prefix, &start, 1000, revision).await?;
        revision = page.revision;
        for kv in &page.kvs {
            if let Some(v) = decode(kv) {
                objects.insert(kv.key.clone(), Arc::new(v));
            }
        }
        match (page.more, page.kvs.last()) {
            (true, Some(last)) => start = format!("{}\u{0}", last.key),
            _ => return Ok((objects, revision)),
        }
    }
}

async fn run(
    cache: std::sync::Weak<WatchCache>,
    storage: Arc<dyn Storage>,
    mut rx: super::WatchReceiver,
    decode: Decoder,
) {
    loop {
        let Some(msg) = rx.recv().await else { return };
        let Some(c) = cache.upgrade() else { return };
        match msg {
            Ok(batch) => {
                let latest = batch.last().map(WatchEvent::revision).unwrap_or(0);
                // Parsing happens here, outside the lock that watchers and readers take.
                let changes = batch
                    .into_iter()
                    .filter_map(|e| Change::decode(e, decode))
                    .collect();
                c.push(changes, latest);
            }
            Err(e) => {
                tracing::warn!(prefix = %c.prefix, error = %e, "watch cache lost its storage watch; restarting");
                loop {
                    let restarted = match load(storage.as_ref(), &c.prefix, decode).await {
                        Ok((objects, rev)) => storage
                            .watch(&c.prefix, rev, CACHE_WATCH)
                            .await
                            .map(|rx| (objects, rev, rx)),
                        Err(e) => Err(e),
                    };
                    match restarted {
                        Ok((objects, rev, new_rx)) => {
                            c.reset(objects, rev);
                            rx = new_rx;
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                    }
                }
            }
        }
    }
}

/// One client's position in a cache.
pub struct CacheWatcher {
    cache: Arc<WatchCache>,
    cursor: i64,
    latest_rx: watch::Receiver<i64>,
}

impl CacheWatcher {
    /// The next events after the cursor, waiting for them if there are none yet.
    pub async fn next(&mut self) -> Result<Vec<Arc<CacheEvent>>, TooOld> {
        loop {
            {
                let w = self.cache.lock();
                if self.cursor < w.oldest {
                    return Err(TooOld { oldest: w.oldest });
                }
                let first = w.events.partition_point(|e| e.revision <= self.cursor);
                if first < w.events.len() {
                    let out: Vec<_> = w.events.range(first..).cloned().collect();
                    if let Some(last) = out.last() {
                        self.cursor = last.revision;
                    }
                    return Ok(out);
                }
            }
            if self.latest_rx.changed().await.is_err() {
                return Err(TooOld { oldest: i64::MAX });
            }
        }
    }

    /// A revision safe to announce in a BOOKMARK: every event up to it has been returned.
    pub fn bookmark(&mut self) -> i64 {
        let w = self.cache.lock();
        let pending = w.events.back().is_some_and(|e| e.revision > self.cursor);
        if !pending && w.latest > self.cursor {
            self.cursor = w.latest;
        }
        self.cursor
    }

    pub fn cursor(&self) -> i64 {
        self.cursor
    }
}
