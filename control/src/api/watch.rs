//! WATCH: a chunked stream of JSON events, one per line, fed from the resource's watch cache.

use super::negotiate::Output;
use super::query::RvMatch;
use super::status::{ApiError, ApiResult};
use super::{ApiServer, Body, Ctx, read, table};
use crate::registry::resources::Resource;
use crate::registry::store;
use crate::registry::{convert, meta};
use crate::storage::cache::{CacheEvent, CacheWatcher, EventKind};
use crate::storage::{StorageError, WatchMode, WatchReceiver};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where a watch's events come from.
enum Source {
    Cache(CacheWatcher),
    /// A revision older than the cache window: straight from storage (rare).
    Storage(WatchReceiver),
}

impl Source {
    async fn next(&mut self) -> Result<Vec<Arc<CacheEvent>>, ApiError> {
        match self {
            Source::Cache(w) => w.next().await.map_err(|t| {
                ApiError::gone(format!(
                    "too old resource version: {} ({})",
                    w.cursor(),
                    t.oldest
                ))
            }),
            Source::Storage(rx) => match rx.recv().await {
                Some(Ok(batch)) => Ok(batch
                    .iter()
                    .filter_map(|e| CacheEvent::from_storage(e, store::decode))
                    .map(Arc::new)
                    .collect()),
                Some(Err(e)) => Err(e.into()),
                None => Err(ApiError::gone("watch closed")),
            },
        }
    }

    fn bookmark(&mut self) -> Option<i64> {
        match self {
            Source::Cache(w) => Some(w.bookmark()),
            Source::Storage(_) => None,
        }
    }
}

pub async fn watch(api: &Arc<ApiServer>, ctx: &Ctx) -> ApiResult<Response<Body>> {
    let r = ctx.resource();
    let q = &ctx.query;
    let keep = read::filter(r, q)?;
    let name = ctx.path.name.clone();
    let keep = move |o: &Value| keep(o) && (name.is_empty() || meta::name(o) == name);
    if q.rv_match == RvMatch::Exact {
        return Err(ApiError::bad_request(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch",
        ));
    }
    let rv = match &q.resource_version {
        None => None,
        Some(s) => meta::parse_rv(s).map_err(ApiError::bad_request)?,
    };
    let initial_end_bookmark = q.send_initial_events == Some(true);
    let send_initial = match q.send_initial_events {
        Some(true) => {
            if q.rv_match != RvMatch::NotOlderThan {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !q.allow_bookmarks {
                return Err(ApiError::bad_request(
                    "allowWatchBookmarks: Forbidden: sendInitialEvents requires allowWatchBookmarks=true",
                ));
            }
            true
        }
        Some(false) => false,
        // Without sendInitialEvents, "any" and "latest" versions begin with the current state.
        None => matches!(rv, None | Some(0)),
    };
    let cache = api.cache(r)?.clone();

    let ns_prefix = r.namespace_prefix(&ctx.path.namespace);
    let (initial, start, source) = if send_initial || matches!(rv, None | Some(0)) {
        // The current state comes from the cache, with a cursor at exactly that revision.
        if let Some(want) = rv.filter(|v| *v > cache.latest())
            && !cache.wait_for(want, Duration::from_secs(3)).await
        {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {want}, current: {}",
                cache.latest()
            )));
        }
        let (items, at, watcher) = cache.snapshot(&ns_prefix);
        let items = if send_initial {
            items
                .into_iter()
                .map(|o| convert::from_stored(r, (*o).clone()))
                .filter(|o| keep(o))
                .collect()
        } else {
            Vec::new()
        };
        (items, at, Source::Cache(watcher))
    } else {
        let start = rv.unwrap_or(0);
        let source = match cache.subscribe(start) {
            Ok(w) => {
                if start < cache.latest() {
                    match api.store.storage.check_revision(start).await {
                        Ok(()) => {}
                        Err(e @ StorageError::Compacted { .. }) => {
                            return Ok(error_stream(&ApiError::from(e)));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Source::Cache(w)
            }
            // With previous values: a deletion is only told with the object's last state.
            Err(_) => match api
                .store
                .storage
                .watch(
                    &ns_prefix,
                    start,
                    WatchMode {
                        progress: false,
                        prev: true,
                    },
                )
                .await
            {
                Ok(rx) => Source::Storage(rx),
                Err(e @ StorageError::Compacted { .. }) => {
                    return Ok(error_stream(&ApiError::from(e)));
                }
                Err(e) => return Err(e.into()),
            },
        };
        (Vec::new(), start, source)
    };

    let timeout = match q.timeout_seconds {
        Some(t) => Duration::from_secs(t),
        None => {
            // Spread reconnections like kube-apiserver: between one and two minimum timeouts.
            let base = api.config.min_request_timeout;
            base + base.mul_f64(rand::random::<f64>())
        }
    };
    let in_namespace = move |e: &CacheEvent| e.key.starts_with(&ns_prefix);
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(64);
    let stream = Stream {
        r,
        output: ctx.output,
        include: ctx.query.include_object,
        bookmarks: q.allow_bookmarks,
        bookmark_interval: api.config.bookmark_interval,
        tx,
        columns_sent: false,
    };
    let metrics = api.metrics.clone();
    metrics.watcher_started(r.plural);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(
            timeout,
            stream.run(
                source,
                initial,
                initial_end_bookmark,
                start,
                &keep,
                &in_namespace,
                &metrics,
            ),
        )
        .await;
        metrics.watcher_stopped(r.plural);
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    Ok(resp)
}

/// A 200 response holding one ERROR event (how Kubernetes reports a too-old version to a watch).
fn error_stream(e: &ApiError) -> Response<Body> {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    line.push(b'\n');
    super::bytes_response(StatusCode::OK, "application/json", line)
}

struct Stream {
    r: &'static Resource,
    output: Output,
    include: super::query::IncludeObject,
    bookmarks: bool,
    bookmark_interval: Duration,
    tx: mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>,
    columns_sent: bool,
}

impl Stream {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        mut self,
        mut source: Source,
        initial: Vec<Value>,
        initial_end_bookmark: bool,
        start: i64,
        keep: &(dyn Fn(&Value) -> bool + Send + Sync),
        in_namespace: &(dyn Fn(&CacheEvent) -> bool + Send + Sync),
        metrics: &crate::metrics::Metrics,
    ) {
        for obj in &initial {
            if !self.send("ADDED", obj).await {
                return;
            }
        }
        if initial_end_bookmark {
            let mark = self.bookmark_object(start, true);
            if !self.send_raw("BOOKMARK", mark).await {
                return;
            }
        }
        let mut ticker = tokio::time::interval(self.bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                batch = source.next() => {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = self.send_raw("ERROR", e.to_status()).await;
                            return;
                        }
                    };
                    for ev in batch {
                        if !in_namespace(&ev) {
                            continue;
                        }
                        let ev = served_form(self.r, ev);
                        let Some(kind) = classify(&ev, keep) else { continue };
                        metrics.watch_event(self.r.plural);
                        if !self.send_event(kind, &ev).await {
                            return;
                        }
                    }
                }
                _ = ticker.tick(), if self.bookmarks => {
                    if let Some(rev) = source.bookmark() {
                        let mark = self.bookmark_object(rev, false);
                        if !self.send_raw("BOOKMARK", mark).await {
                            return;
                        }
                    }
                }
                _ = self.tx.closed() => return,
            }
        }
    }

    fn bookmark_object(&self, rev: i64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.r.kind, "apiVersion": self.r.api_version(), "metadata": meta})
    }

    async fn send(&mut self, kind: &str, obj: &Value) -> bool {
        match self.shaped(obj) {
            Some(object) => self.send_raw(kind, object).await,
            None => {
                self.send_line(line(kind, &serde_json::to_vec(obj).unwrap_or_default()))
                    .await
            }
        }
    }

    /// Sends a change; plain JSON watchers share the event's one encoding of the object.
    async fn send_event(&mut self, kind: &str, ev: &CacheEvent) -> bool {
        match self.shaped(&ev.object) {
            Some(object) => self.send_raw(kind, object).await,
            None => self.send_line(line(kind, ev.object_json())).await,
        }
    }

    /// The object in the form this watch asked for, or `None` when that is the object itself.
    fn shaped(&mut self, obj: &Value) -> Option<Value> {
        match self.output {
            Output::Table => {
                let with_columns = !self.columns_sent;
                self.columns_sent = true;
                Some(table::table(
                    self.r,
                    std::slice::from_ref(obj),
                    self.include,
                    meta::resource_version(obj),
                    None,
                    with_columns,
                ))
            }
            Output::Metadata => Some(table::partial_metadata(obj)),
            _ => None,
        }
    }

    async fn send_raw(&mut self, kind: &str, object: Value) -> bool {
        self.send_line(line(kind, &serde_json::to_vec(&object).unwrap_or_default()))
            .await
    }

    async fn send_line(&mut self, line: Vec<u8>) -> bool {
        self.tx
            .send(Ok(Frame::data(Bytes::from(line))))
            .await
            .is_ok()
    }
}

/// One watch event line, `{"type":…,"object":…}` and a newline, around an encoded object.
fn line(kind: &str, object: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(object.len() + kind.len() + 32);
    out.extend_from_slice(b"{\"type\":");
    // Event types are fixed ASCII words, but encode it anyway rather than trust that.
    out.extend_from_slice(&serde_json::to_vec(kind).unwrap_or_default());
    out.extend_from_slice(b",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    out
}

/// An event with its objects in the form `r` serves (events.k8s.io events are stored as core).
fn served_form(r: &Resource, ev: Arc<CacheEvent>) -> Arc<CacheEvent> {
    if !convert::converts(r) {
        return ev;
    }
    Arc::new(CacheEvent::new(
        ev.revision,
        ev.kind,
        ev.key.clone(),
        Arc::new(convert::from_stored(r, (*ev.object).clone())),
        ev.prev
            .as_ref()
            .map(|p| Arc::new(convert::from_stored(r, (**p).clone()))),
    ))
}

/// The event type a filtered watcher sees: a change that moves an object into the selection is
/// ADDED, out of it DELETED.
fn classify(ev: &CacheEvent, keep: &dyn Fn(&Value) -> bool) -> Option<&'static str> {
    let now = keep(&ev.object);
    match ev.kind {
        EventKind::Added => now.then_some("ADDED"),
        EventKind::Deleted => now.then_some("DELETED"),
        EventKind::Modified => {
            let before = ev.prev.as_deref().is_some_and(keep);
            match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_changes_become_added_and_deleted() {
        let keep = |o: &Value| o["metadata"]["labels"]["app"] == "web";
        let obj = |app: &str| Arc::new(json!({"metadata": {"labels": {"app": app}}}));
        let ev = |prev: &str, now: &str| {
            CacheEvent::new(
                2,
                EventKind::Modified,
                "k".into(),
                obj(now),
                Some(obj(prev)),
            )
        };
        assert_eq!(classify(&ev("db", "web"), &keep), Some("ADDED"));
        assert_eq!(classify(&ev("web", "db"), &keep), Some("DELETED"));
        assert_eq!(classify(&ev("web", "web"), &keep), Some("MODIFIED"));
        assert_eq!(classify(&ev("db", "db"), &keep), None);
    }

    #[test]
    fn a_shared_encoding_makes_the_same_line_as_the_whole_event() {
        let obj =
            Arc::new(json!({"kind": "Pod", "metadata": {"name": "p\"q", "resourceVersion": "9"}}));
        let ev = CacheEvent::new(9, EventKind::Modified, "k".into(), obj.clone(), None);
        let whole = serde_json::to_vec(&json!({"type": "MODIFIED", "object": *obj})).expect("json");
        let mut want = whole;
        want.push(b'\n');
        assert_eq!(line("MODIFIED", ev.object_json()), want);
        // The encoding is made once and shared.
        assert!(std::ptr::eq(ev.object_json(), ev.object_json()));
    }
}
