//! The informer-and-workqueue plumbing shared by the job, cronjob, disruption and HPA
//! controllers, built on kube-runtime's `applier` (client-go's shared informers + rate-limited
//! workqueue): reflectors keep stores, every event is mapped to the keys it concerns *after* the
//! store saw it, and a key is never reconciled concurrently with itself.

use super::ControllerError;
use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, applier, watcher};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A store kept by a reflector, and the stream that drives it (yielding each object it touched).
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    pub store: Store<K>,
    pub events: BoxStream<'static, Result<K, watcher::Error>>,
}

/// Lists and watches `api` into a store, as a shared informer does.
pub fn informer<K>(api: Api<K>) -> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    )
    .touched_objects()
    .boxed();
    Informer { store, events }
}

/// The keys to reconcile, merged from any number of event streams.
pub struct Queue<K: Resource<DynamicType = ()> + 'static> {
    streams: SelectAll<BoxStream<'static, Result<ObjectRef<K>, watcher::Error>>>,
}

impl<K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            streams: SelectAll::new(),
        }
    }
}

impl<K> Queue<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    /// Events of the reconciled kind itself.
    pub fn add_self(&mut self, events: BoxStream<'static, Result<K, watcher::Error>>) {
        self.streams
            .push(events.map(|r| r.map(|o| ObjectRef::from_obj(&o))).boxed());
    }

    /// Events of another kind, each mapped to the keys it concerns.
    pub fn add_mapped<O, I>(
        &mut self,
        events: BoxStream<'static, Result<O, watcher::Error>>,
        map: impl Fn(O) -> I + Send + Sync + 'static,
    ) where
        O: Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>> + Send + 'static,
        I::IntoIter: Send,
    {
        let s = events.flat_map(move |r| match r {
            Ok(o) => futures::stream::iter(map(o).into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => futures::stream::iter(vec![Err(e)]),
        });
        self.streams.push(s.boxed());
    }

    fn into_stream(self) -> impl Stream<Item = Result<ObjectRef<K>, watcher::Error>> + Send {
        self.streams
    }
}

/// Per-key exponential backoff after failed syncs (client-go's item exponential rate limiter).
struct Failures {
    base: Duration,
    max: Duration,
    counts: Mutex<HashMap<String, u32>>,
}

impl Failures {
    fn next_delay(&self, key: &str) -> Duration {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.to_string()).or_insert(0);
        let d = self
            .base
            .saturating_mul(2u32.saturating_pow((*n).min(20)))
            .min(self.max);
        *n += 1;
        d
    }

    fn forget(&self, key: &str) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

fn key_of<K: Resource<DynamicType = ()>>(o: &K) -> String {
    let m = o.meta();
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

/// Runs `reconcile` over `queue` until `stop`: waits for `ready` (every informer's initial list)
/// before the first sync, as controllers wait for their caches; failed syncs are retried with
/// per-key exponential backoff from `base` to `max`.
#[allow(clippy::too_many_arguments)]
pub async fn run<K, Ctx, F, Fut, E>(
    name: &'static str,
    store: Store<K>,
    queue: Queue<K>,
    ready: Vec<BoxStoreReady>,
    ctx: Arc<Ctx>,
    reconcile: F,
    (base, max): (Duration, Duration),
    stop: CancellationToken,
) -> Result<(), ControllerError>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Debug + Eq + Hash + Clone + Unpin,
    Ctx: Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let failures = Arc::new(Failures {
        base,
        max,
        counts: Mutex::new(HashMap::new()),
    });
    let waits = Arc::new(Mutex::new(Some(futures::future::join_all(ready))));
    let ready = Arc::new(tokio::sync::OnceCell::new());
    let reconcile = Arc::new(reconcile);
    let f2 = failures.clone();
    let reconciler = move |obj: Arc<K>, c: Arc<Ctx>| {
        let reconcile = reconcile.clone();
        let failures = f2.clone();
        let ready = ready.clone();
        let waits = waits.clone();
        Box::pin(async move {
            ready
                .get_or_init(|| async {
                    let w = waits.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(w) = w {
                        w.await;
                    }
                    tracing::info!(controller = name, "caches synced");
                })
                .await;
            let key = key_of(obj.as_ref());
            let res = reconcile(obj, c).await;
            if res.is_ok() {
                failures.forget(&key);
            }
            res
        })
    };
    let error_policy = move |obj: Arc<K>, err: &E, _: Arc<Ctx>| {
        let key = key_of(obj.as_ref());
        let delay = failures.next_delay(&key);
        tracing::warn!(controller = name, key, error = %err, retry_in = ?delay, "sync failed");
        Action::requeue(delay)
    };
    let stream = applier(
        reconciler,
        error_policy,
        ctx,
        store,
        queue.into_stream(),
        Config::default(),
    );
    tracing::info!(controller = name, "starting");
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Err(kube::runtime::controller::Error::QueueError(e))) => {
                    tracing::debug!(controller = name, error = %e, "watch error");
                }
                Some(_) => {}
                None => return Ok(()),
            },
            _ = stop.cancelled() => {
                tracing::info!(controller = name, "stopping");
                return Ok(());
            }
        }
    }
}

/// Resolves once a store has seen its first full list.
pub type BoxStoreReady = futures::future::BoxFuture<'static, ()>;

/// The readiness of a store, to pass to [`run`].
pub fn ready<K>(store: &Store<K>) -> BoxStoreReady
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let s = store.clone();
    Box::pin(async move {
        let _ = s.wait_until_ready().await;
    })
}

/// A controller's event recorder: the shared [`super::Events`] (which folds only repeats of
/// one message into a series, as client-go does) under the controller's name and instance.
pub struct Recorder(super::Events);

impl Recorder {
    pub fn new(ctx: &super::Context, client: kube::Client, component: &str) -> Recorder {
        Recorder(super::Events::new(client, component, &ctx.config.instance))
    }
}

impl std::ops::Deref for Recorder {
    type Target = super::Events;

    fn deref(&self) -> &super::Events {
        &self.0
    }
}
