//! The etcd v3 backend, with endpoint failover.
//!
//! `etcd-client` balances over its endpoints but keeps sending to a dead member, so this keeps one
//! client per endpoint and moves to the next endpoint when a call fails with a transport error.

use super::{
    Condition, Kv, ListPage, Op, Storage, StorageError, Txn, TxnOutcome, WatchEvent, WatchMode,
    WatchReceiver,
};
use crate::metrics::Metrics;
use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, TxnOp, TxnOpResponse,
    WatchOptions,
};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

pub struct EtcdStorage {
    endpoints: Vec<String>,
    clients: Vec<Mutex<Option<Client>>>,
    current: AtomicUsize,
    metrics: Arc<Metrics>,
    /// For watch tasks, which outlive the call that starts them and reconnect on failure.
    me: Weak<EtcdStorage>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// Largest etcd response accepted (gRPC's default is 4 MiB): an unpaginated LIST of 10,000
/// Services is ~9 MB, and kube-apiserver's etcd client allows up to 2 GiB.
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

impl EtcdStorage {
    pub fn new(endpoints: Vec<String>, metrics: Arc<Metrics>) -> Result<Arc<Self>, StorageError> {
        if endpoints.is_empty() {
            return Err(StorageError::Other("no etcd endpoints given".into()));
        }
        let clients = endpoints.iter().map(|_| Mutex::new(None)).collect();
        Ok(Arc::new_cyclic(|me| EtcdStorage {
            endpoints,
            clients,
            current: AtomicUsize::new(0),
            metrics,
            me: me.clone(),
        }))
    }

    async fn client(&self, index: usize) -> Result<Client, StorageError> {
        let mut slot = self.clients[index].lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let opts = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect([self.endpoints[index].as_str()], Some(opts))
            .await
            .map_err(|e| StorageError::Unavailable(format!("{}: {e}", self.endpoints[index])))?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs `f` against the current endpoint, failing over to the others on transport errors.
    async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StorageError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = Instant::now();
        let n = self.endpoints.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut last_err = StorageError::Unavailable("no endpoint tried".into());
        // Two rounds: a member that just restarted or a leader election gets a second chance.
        for attempt in 0..2 * n {
            let index = (first + attempt) % n;
            if attempt == n {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let client = match self.client(index).await {
                Ok(c) => c,
                Err(e) => {
                    last_err = e;
                    continue;
                }
            };
            match f(client).await {
                Ok(v) => {
                    if index != first {
                        self.current.store(index, Ordering::Relaxed);
                        tracing::warn!(endpoint = %self.endpoints[index], "etcd failover");
                    }
                    self.metrics.etcd_request(op, start.elapsed());
                    return Ok(v);
                }
                Err(e) => {
                    let err = map_error(e);
                    if !matches!(err, StorageError::Unavailable(_)) {
                        self.metrics.etcd_request(op, start.elapsed());
                        return Err(err);
                    }
                    tracing::debug!(endpoint = %self.endpoints[index], error = %err, "etcd call failed");
                    // Drop the client so the next use reconnects.
                    *self.clients[index].lock().await = None;
                    last_err = err;
                }
            }
        }
        Err(last_err)
    }
}

fn map_error(e: etcd_client::Error) -> StorageError {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let msg = s.message().to_string();
            if msg.contains("compacted") {
                StorageError::Compacted {
                    requested: 0,
                    compacted: 0,
                }
            } else if msg.contains("future revision") {
                StorageError::FutureRevision(0)
            } else {
                match s.code() {
                    tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Unknown
                    | tonic::Code::Cancelled
                    | tonic::Code::Aborted => StorageError::Unavailable(msg),
                    _ => StorageError::Other(format!("{:?}: {msg}", s.code())),
                }
            }
        }
        etcd_client::Error::TransportError(t) => StorageError::Unavailable(t.to_string()),
        etcd_client::Error::IoError(io) => StorageError::Unavailable(io.to_string()),
        other => StorageError::Other(other.to_string()),
    }
}

fn to_kv(kv: &etcd_client::KeyValue) -> Kv {
    Kv {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> i64 {
    h.map(|h| h.revision()).unwrap_or(0)
}

/// The end of the range of keys with `prefix` (etcd's "prefix end").
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn get(&self, key: &str) -> Result<(Option<Kv>, i64), StorageError> {
        let resp = self
            .call("get", |mut c| {
                let key = key.to_string();
                async move { c.get(key, None).await }
            })
            .await?;
        Ok((
            resp.kvs().first().map(to_kv),
            header_revision(resp.header()),
        ))
    }

    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListPage, StorageError> {
        let from = if start.is_empty() { prefix } else { start };
        let resp = self
            .call("list", |c| {
                let mut opts = GetOptions::new()
                    .with_range(prefix_end(prefix))
                    .with_limit(limit);
                if revision > 0 {
                    opts = opts.with_revision(revision);
                }
                let from = from.to_string();
                async move {
                    c.kv_client()
                        .max_decoding_message_size(MAX_RESPONSE_BYTES)
                        .get(from, Some(opts))
                        .await
                }
            })
            .await
            .map_err(|e| match e {
                StorageError::Compacted { .. } => StorageError::Compacted {
                    requested: revision,
                    compacted: 0,
                },
                StorageError::FutureRevision(_) => StorageError::FutureRevision(revision),
                e => e,
            })?;
        Ok(ListPage {
            kvs: resp.kvs().iter().map(to_kv).collect(),
            more: resp.more(),
            revision: if revision > 0 {
                revision
            } else {
                header_revision(resp.header())
            },
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StorageError> {
        let compares: Vec<Compare> = txn
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Absent(k) => Compare::create_revision(k.as_str(), CompareOp::Equal, 0),
                Condition::ModRevision(k, r) => {
                    Compare::mod_revision(k.as_str(), CompareOp::Equal, *r)
                }
            })
            .collect();
        let ops: Vec<TxnOp> = txn
            .ops
            .iter()
            .map(|o| match o {
                Op::Put(k, v) => TxnOp::put(k.as_str(), v.clone(), None),
                Op::Delete(k) => TxnOp::delete(k.as_str(), None),
            })
            .collect();
        let reads: Vec<TxnOp> = txn
            .conditions
            .iter()
            .map(|c| TxnOp::get(c.key(), None))
            .collect();
        let resp = self
            .call("txn", |mut c| {
                let t = etcd_client::Txn::new()
                    .when(compares.clone())
                    .and_then(ops.clone())
                    .or_else(reads.clone());
                async move { c.txn(t).await }
            })
            .await?;
        if resp.succeeded() {
            return Ok(TxnOutcome::Committed {
                revision: header_revision(resp.header()),
            });
        }
        let current = resp
            .op_responses()
            .into_iter()
            .map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(to_kv),
                _ => None,
            })
            .collect();
        Ok(TxnOutcome::Failed { current })
    }

    async fn watch(
        &self,
        prefix: &str,
        after: i64,
        mode: WatchMode,
    ) -> Result<WatchReceiver, StorageError> {
        let (tx, rx) = mpsc::channel(256);
        let mut stream = self.open_watch(prefix, after + 1, mode.prev).await?;
        let this = self.me.clone();
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            let mut last = after;
            let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
            ticker.tick().await;
            loop {
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = ticker.tick(), if mode.progress => {
                        if stream.request_progress().await.is_err() {
                            tracing::debug!("etcd progress request failed");
                        }
                        continue;
                    }
                    _ = tx.closed() => return,
                };
                match msg {
                    Ok(Some(resp)) => {
                        if resp.compact_revision() > 0 {
                            let _ = tx
                                .send(Err(StorageError::Compacted {
                                    requested: last + 1,
                                    compacted: resp.compact_revision(),
                                }))
                                .await;
                            return;
                        }
                        if resp.canceled() {
                            let _ = tx
                                .send(Err(StorageError::Other(format!(
                                    "watch canceled: {}",
                                    resp.cancel_reason()
                                ))))
                                .await;
                            return;
                        }
                        let mut batch = Vec::with_capacity(resp.events().len());
                        for ev in resp.events() {
                            let Some(kv) = ev.kv() else { continue };
                            let prev = ev.prev_kv().map(to_kv);
                            batch.push(match ev.event_type() {
                                EventType::Put => WatchEvent::Put {
                                    kv: to_kv(kv),
                                    prev,
                                },
                                EventType::Delete => WatchEvent::Delete {
                                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                                    revision: kv.mod_revision(),
                                    prev,
                                },
                            });
                        }
                        if let Some(ev) = batch.last() {
                            last = ev.revision();
                        } else if !resp.created() {
                            // A progress notification: nothing happened up to the header revision.
                            let rev = header_revision(resp.header());
                            if rev > last {
                                last = rev;
                                batch.push(WatchEvent::Progress { revision: rev });
                            }
                        }
                        if !batch.is_empty() && tx.send(Ok(batch)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) | Err(_) => {
                        // The member went away: resume from the last revision seen, on any member.
                        tracing::warn!(prefix = %prefix, last, "etcd watch broken, resuming");
                        loop {
                            let Some(storage) = this.upgrade() else {
                                return;
                            };
                            match storage.open_watch(&prefix, last + 1, mode.prev).await {
                                Ok(s) => {
                                    stream = s;
                                    break;
                                }
                                Err(StorageError::Compacted { .. }) => {
                                    let _ = tx
                                        .send(Err(StorageError::Compacted {
                                            requested: last + 1,
                                            compacted: 0,
                                        }))
                                        .await;
                                    return;
                                }
                                Err(_) => {
                                    if tx.is_closed() {
                                        return;
                                    }
                                    tokio::time::sleep(Duration::from_millis(500)).await;
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        let resp = self
            .call("get", |mut c| async move {
                c.get("/registry/", Some(GetOptions::new().with_count_only()))
                    .await
            })
            .await?;
        Ok(header_revision(resp.header()))
    }

    async fn check_revision(&self, revision: i64) -> Result<(), StorageError> {
        if revision <= 0 {
            return Ok(());
        }
        self.call("get", |mut c| async move {
            c.get(
                "/registry/",
                Some(GetOptions::new().with_count_only().with_revision(revision)),
            )
            .await
        })
        .await
        .map(|_| ())
        .map_err(|e| match e {
            StorageError::Compacted { .. } => StorageError::Compacted {
                requested: revision,
                compacted: 0,
            },
            StorageError::FutureRevision(_) => StorageError::FutureRevision(revision),
            e => e,
        })
    }

    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        self.call(
            "compact",
            |mut c| async move { c.compact(revision, None).await },
        )
        .await
        .map(|_| ())
    }
}

impl EtcdStorage {
    /// Opens a watch and waits for etcd to confirm it (or to say the revision is compacted).
    async fn open_watch(
        &self,
        prefix: &str,
        start: i64,
        prev: bool,
    ) -> Result<etcd_client::WatchStream, StorageError> {
        let mut stream = self
            .call("watch", |c| {
                let mut opts = WatchOptions::new()
                    .with_range(prefix_end(prefix))
                    .with_start_revision(start.max(0))
                    .with_progress_notify();
                if prev {
                    opts = opts.with_prev_key();
                }
                let prefix = prefix.to_string();
                async move {
                    c.watch_client()
                        .max_decoding_message_size(MAX_RESPONSE_BYTES)
                        .watch(prefix, Some(opts))
                        .await
                }
            })
            .await?;
        stream_with_created(&mut stream).await.map(|_| stream)
    }
}

/// The first message of a new watch says whether it was created; a compacted start revision is
/// reported there, before any event.
async fn stream_with_created(stream: &mut etcd_client::WatchStream) -> Result<(), StorageError> {
    match stream.message().await {
        Ok(Some(resp)) if resp.compact_revision() > 0 => Err(StorageError::Compacted {
            requested: 0,
            compacted: resp.compact_revision(),
        }),
        Ok(Some(resp)) if resp.canceled() => Err(StorageError::Other(format!(
            "watch canceled: {}",
            resp.cancel_reason()
        ))),
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(StorageError::Unavailable("watch stream closed".into())),
        Err(e) => Err(map_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }
}
