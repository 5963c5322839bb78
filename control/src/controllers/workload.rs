//! Machinery the workload controllers (StatefulSet, DaemonSet) share: caches fed by reflectors
//! whose events also trigger reconciles (one watch per resource serves both, as a shared
//! informer does), adoption and release of dependents (upstream's `ControllerRefManager`),
//! expectations of our own writes, and per-object retry backoff.

use super::ControllerError;
use super::util;
use crate::api::selectors::LabelSelector;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config, applier};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The HTTP status of an API error, if the error is one.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}

pub fn is_already_exists(e: &kube::Error) -> bool {
    api_code(e) == Some(409) && matches!(e, kube::Error::Api(s) if s.reason == "AlreadyExists")
}

pub fn is_conflict(e: &kube::Error) -> bool {
    api_code(e) == Some(409) && !is_already_exists(e)
}

/// `namespace/name`, the key upstream's work queues use.
pub fn key_of<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

/// A reflector over every object of `K`: the cache, and the stream of its events (the cache is
/// updated before an event is passed on, so a reconcile triggered by it sees the change).
pub fn reflect<K>(api: Api<K>) -> (Store<K>, BoxStream<'static, watcher::Event<K>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    )
    .filter_map(|ev| async move {
        match ev {
            Ok(ev) => Some(ev),
            Err(e) => {
                tracing::debug!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                None
            }
        }
    })
    .boxed();
    (reader, stream)
}

/// The objects an event is about (nothing for the markers of a relist).
pub fn event_objects<K>(ev: &watcher::Event<K>) -> Vec<(&K, bool)> {
    match ev {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => vec![(o, false)],
        watcher::Event::Delete(o) => vec![(o, true)],
        watcher::Event::Init | watcher::Event::InitDone => vec![],
    }
}

/// The owner an object's controller reference names, when it is of kind `O`.
pub fn owner_ref_of<O: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> Option<ObjectRef<O>> {
    let c = util::controller_of(meta)?;
    if c.kind != O::kind(&()) {
        return None;
    }
    Some(ObjectRef::new(&c.name).within(meta.namespace.as_deref().unwrap_or("")))
}

/// Runs `reconcile` over `store`'s objects whenever `queue` names one, until `stop`.
pub async fn run<K, Ctx, Fut>(
    store: Store<K>,
    queue: impl Stream<Item = ObjectRef<K>> + Send + 'static,
    mut reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    error_policy: impl Fn(Arc<K>, &ControllerError, Arc<Ctx>) -> Action,
    ctx: Arc<Ctx>,
    concurrency: u16,
    stop: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, ControllerError>> + Send + 'static,
{
    let queue = queue
        .take_until(stop.cancelled_owned())
        .map(Ok::<_, Infallible>);
    applier(
        move |obj, ctx| Box::pin(reconcile(obj, ctx)),
        error_policy,
        ctx,
        store,
        queue,
        Config::default().concurrency(concurrency),
    )
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "reconcile loop");
        }
    })
    .await;
}

/// Events about a workload that name the object acted on as `related`, published in the
/// background: events are best-effort and must not hold up a sync.
#[derive(Clone)]
pub struct Recorder(super::Events);

impl Recorder {
    pub fn new(client: kube::Client, component: &str, instance: &str) -> Recorder {
        Recorder(super::Events::new(client, component, instance))
    }

    pub fn emit(
        &self,
        regarding: ObjectReference,
        related: Option<ObjectReference>,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let rec = self.0.clone();
        let (reason, action) = (reason.to_string(), action.to_string());
        let type_ = if warning { "Warning" } else { "Normal" };
        tokio::spawn(async move {
            match related {
                Some(r) => {
                    rec.related(type_, &regarding, &r, &reason, &action, note)
                        .await
                }
                None if warning => rec.warning(&regarding, &reason, &action, note).await,
                None => rec.normal(&regarding, &reason, &action, note).await,
            }
        });
    }
}

/// A reference to a namespaced object of kind `K` by name (for `related` in events).
pub fn reference<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    }
}

/// Retry delays per object: 5ms doubling to 1000s, as client-go's default controller rate
/// limiter; a success forgets the object.
#[derive(Default)]
pub struct Backoff(Mutex<HashMap<String, u32>>);

impl Backoff {
    pub fn next(&self, key: &str) -> Duration {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.to_string()).or_default();
        let d = Duration::from_millis(5).saturating_mul(1u32 << (*n).min(20));
        *n = n.saturating_add(1);
        d.min(Duration::from_secs(1000))
    }

    pub fn reset(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// Our own creations and deletions not yet seen in the cache, per owner (upstream's
/// `ControllerExpectations`, by uid rather than by count). While some are pending, the cache
/// may lack them and acting on it would, say, create a second pod for a node.
#[derive(Default)]
pub struct Expectations(Mutex<HashMap<String, Pending>>);

#[derive(Default)]
struct Pending {
    adds: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

/// Expectations older than this are given up on (a missed event must not block forever).
const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn satisfied(&self, owner: &str) -> bool {
        let mut m = self.lock();
        let done = match m.get(owner) {
            None => return true,
            Some(p) => {
                (p.adds.is_empty() && p.deletes.is_empty())
                    || p.since.is_some_and(|t| t.elapsed() > EXPECTATIONS_TTL)
            }
        };
        if done {
            m.remove(owner);
        }
        done
    }

    /// We created `uid`; `seen` tells whether the cache already holds it. The check runs under
    /// the lock that [`observe`](Self::observe) takes, so an event cannot slip in between.
    pub fn expect_add(&self, owner: &str, uid: &str, seen: impl FnOnce() -> bool) {
        let mut m = self.lock();
        if !seen() {
            let p = m.entry(owner.to_string()).or_default();
            p.adds.insert(uid.to_string());
            p.since = Some(Instant::now());
        }
    }

    /// We deleted `uid`; `gone` tells whether the cache already shows it gone or terminating.
    pub fn expect_delete(&self, owner: &str, uid: &str, gone: impl FnOnce() -> bool) {
        let mut m = self.lock();
        if !gone() {
            let p = m.entry(owner.to_string()).or_default();
            p.deletes.insert(uid.to_string());
            p.since = Some(Instant::now());
        }
    }

    /// The cache saw `uid`, present or `gone` (deleted or terminating).
    pub fn observe(&self, owner: &str, uid: &str, gone: bool) {
        let mut m = self.lock();
        if let Some(p) = m.get_mut(owner) {
            p.adds.remove(uid);
            if gone {
                p.deletes.remove(uid);
            }
        }
    }

    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }
}

/// A pod from a controller's template (upstream's `GetPodFromTemplate`).
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner_name: &str,
    controller_ref: OwnerReference,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            generate_name: Some(format!("{owner_name}-")),
            owner_references: Some(vec![controller_ref]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Adopts orphans that match and releases dependents that no longer do (upstream's
/// `ControllerRefManager`); returns what `owner` controls.
pub struct RefManager<'a, O> {
    pub owner: &'a O,
    pub owner_api: Api<O>,
    pub selector: &'a LabelSelector,
    /// Whether the owner may still adopt, checked once against the API on first need.
    can_adopt: Option<Result<(), String>>,
}

impl<'a, O> RefManager<'a, O>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    pub fn new(owner: &'a O, owner_api: Api<O>, selector: &'a LabelSelector) -> Self {
        RefManager {
            owner,
            owner_api,
            selector,
            can_adopt: None,
        }
    }

    /// Claims `objects` (all of the owner's namespace); `filter` narrows what may be adopted
    /// or kept beyond the selector.
    pub async fn claim<K>(
        &mut self,
        api: &Api<K>,
        objects: Vec<Arc<K>>,
        filter: impl Fn(&K) -> bool,
    ) -> Result<Vec<Arc<K>>, ControllerError>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
    {
        let uid = self.owner.meta().uid.clone().unwrap_or_default();
        let owner_deleting = self.owner.meta().deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        let mut first_err = None;
        for obj in objects {
            let meta = obj.meta();
            let matched = util::matches(self.selector, meta.labels.as_ref()) && filter(&obj);
            if let Some(c) = util::controller_of(meta) {
                if c.uid != uid {
                    continue;
                }
                if matched {
                    claimed.push(obj);
                } else if !owner_deleting && let Err(e) = self.release(api, &obj).await {
                    first_err.get_or_insert(e);
                }
                continue;
            }
            if owner_deleting || !matched || meta.deletion_timestamp.is_some() {
                continue;
            }
            if let Err(e) = self.check_can_adopt().await {
                first_err.get_or_insert(e);
                continue;
            }
            match self.adopt(api, &obj).await {
                Ok(Some(adopted)) => claimed.push(Arc::new(adopted)),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(claimed),
        }
    }

    async fn check_can_adopt(&mut self) -> Result<(), ControllerError> {
        if self.can_adopt.is_none() {
            let name = self.owner.name_any();
            let res = match self.owner_api.get(&name).await {
                Ok(fresh) if fresh.meta().uid != self.owner.meta().uid => Err(format!(
                    "original {} {name} is gone: got uid {:?}, wanted {:?}",
                    O::kind(&()),
                    fresh.meta().uid,
                    self.owner.meta().uid
                )),
                Ok(fresh) if fresh.meta().deletion_timestamp.is_some() => {
                    Err(format!("{} {name} has just been deleted", O::kind(&())))
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            self.can_adopt = Some(res);
        }
        match &self.can_adopt {
            Some(Err(e)) => Err(ControllerError::Invalid(format!("can't adopt: {e}"))),
            _ => Ok(()),
        }
    }

    async fn adopt<K>(&self, api: &Api<K>, obj: &K) -> Result<Option<K>, ControllerError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let Some(cref) = util::controller_ref(self.owner) else {
            return Ok(None);
        };
        // The uid makes the patch fail if the object was replaced meanwhile.
        let patch = json!({"metadata": {"ownerReferences": [cref], "uid": obj.meta().uid}});
        match api
            .patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
        {
            Ok(o) => Ok(Some(o)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn release<K>(&self, api: &Api<K>, obj: &K) -> Result<(), ControllerError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let uid = self.owner.meta().uid.clone().unwrap_or_default();
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": uid}],
            "uid": obj.meta().uid,
        }});
        match api
            .patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Gone, or no longer ours: nothing to release.
            Err(e) if matches!(api_code(&e), Some(404 | 422)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_wait_for_our_own_writes() {
        let e = Expectations::default();
        assert!(e.satisfied("ds"));
        e.expect_add("ds", "u1", || false);
        e.expect_add("ds", "u2", || true); // already in the cache
        e.expect_delete("ds", "u3", || false);
        assert!(!e.satisfied("ds"));
        e.observe("ds", "u1", false);
        assert!(!e.satisfied("ds"));
        e.observe("ds", "u3", false); // an update, not yet terminating
        assert!(!e.satisfied("ds"));
        e.observe("ds", "u3", true);
        assert!(e.satisfied("ds"));
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let b = Backoff::default();
        assert_eq!(b.next("a"), Duration::from_millis(5));
        assert_eq!(b.next("a"), Duration::from_millis(10));
        assert_eq!(b.next("a"), Duration::from_millis(20));
        b.reset("a");
        assert_eq!(b.next("a"), Duration::from_millis(5));
        for _ in 0..40 {
            b.next("b");
        }
        assert_eq!(b.next("b"), Duration::from_secs(1000));
    }
}
