//! The pod manager: watches only the pods bound to this node and keeps one worker per pod;
//! at start it adopts what the runtime already runs and removes what no pod claims.

use super::spec::POD_UID;
use super::worker::{Outcome, Shared, Worker};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// (namespace, name) → uid of the pods this node runs, for the kubelet API.
type ByName = HashMap<(String, String), Arc<Pod>>;

#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<ByName>>,
}

impl Registry {
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn set(&self, pod: &Arc<Pod>) {
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, pod.clone());
    }

    fn remove(&self, pod: &Pod) {
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    pub fn all(&self) -> Vec<Arc<Pod>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Handle {
    tx: watch::Sender<Option<Arc<Pod>>>,
}

async fn run_worker(
    shared: Arc<Shared>,
    uid: String,
    mut rx: watch::Receiver<Option<Arc<Pod>>>,
    done: mpsc::UnboundedSender<String>,
) {
    let mut worker = Worker::new(shared.clone(), uid.clone());
    let mut probes = worker.probe_changed.subscribe();
    let mut evictions = shared.evicted.subscribe();
    loop {
        let pod = rx.borrow_and_update().clone();
        match worker.sync(pod).await {
            Outcome::Done => break,
            Outcome::Again(after) => {
                tokio::select! {
                    r = rx.changed() => if r.is_err() {
                        // The manager is gone: stop without touching the pod (agent shutdown).
                        return;
                    },
                    _ = probes.changed() => {}
                    _ = evictions.changed() => {}
                    _ = tokio::time::sleep(after) => {}
                }
            }
        }
    }
    if let Ok(mut e) = shared.evictions.lock() {
        e.remove(&uid);
    }
    let _ = done.send(uid);
}

/// Runs until `stop`.
pub async fn run(shared: Arc<Shared>, registry: Registry, stop: CancellationToken) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", shared.cfg.node_name));
    let mut stream = watcher(api, cfg).boxed();
    let mut workers: HashMap<String, Handle> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let mut seen: Option<HashSet<String>> = None;
    let mut adopted = false;
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            Some(uid) = done_rx.recv() => {
                workers.remove(&uid);
                continue;
            }
            _ = stop.cancelled() => return,
        };
        let ev = match ev {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "pod watch failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            None => return,
        };
        match ev {
            watcher::Event::Init => seen = Some(HashSet::new()),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if let Some(s) = seen.as_mut() {
                    s.insert(uid.clone());
                }
                let p = Arc::new(p);
                registry.set(&p);
                match workers.get(&uid) {
                    Some(h) => {
                        h.tx.send_replace(Some(p));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Some(p));
                        tokio::spawn(run_worker(shared.clone(), uid.clone(), rx, done_tx.clone()));
                        workers.insert(uid, Handle { tx });
                    }
                }
            }
            watcher::Event::Delete(p) => {
                registry.remove(&p);
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if let Some(h) = workers.get(&uid) {
                    h.tx.send_replace(None);
                }
            }
            watcher::Event::InitDone => {
                let Some(seen) = seen.take() else { continue };
                for (uid, h) in &workers {
                    if !seen.contains(uid) {
                        h.tx.send_replace(None);
                    }
                }
                if !adopted {
                    adopted = true;
                    remove_orphans(&shared, &seen, &mut workers, &done_tx).await;
                }
            }
        }
    }
}

/// Sandboxes and containers of pods that no longer exist (deleted while the agent was down):
/// a worker for each tears it down.
async fn remove_orphans(
    shared: &Arc<Shared>,
    known: &HashSet<String>,
    workers: &mut HashMap<String, Handle>,
    done: &mpsc::UnboundedSender<String>,
) {
    let mut orphans: HashSet<String> = HashSet::new();
    let mut adopted: HashSet<String> = HashSet::new();
    if let Ok(boxes) = shared.cri.list_pod_sandboxes().await {
        for b in boxes {
            if let Some(m) = b.metadata {
                if known.contains(&m.uid) {
                    adopted.insert(m.uid);
                } else {
                    orphans.insert(m.uid);
                }
            }
        }
    }
    if !adopted.is_empty() {
        // Their workers found the sandboxes and containers as they are and keep them.
        tracing::info!(
            pods = adopted.len(),
            "adopted the pods already running in the runtime"
        );
    }
    if let Ok(cs) = shared.cri.list_containers(None).await {
        for c in cs {
            if let Some(uid) = c.labels.get(POD_UID)
                && !known.contains(uid)
            {
                orphans.insert(uid.clone());
            }
        }
    }
    for uid in orphans {
        if workers.contains_key(&uid) {
            continue;
        }
        tracing::info!(pod = %uid, "removing the leftovers of a pod that no longer exists");
        let (tx, rx) = watch::channel(None);
        tokio::spawn(run_worker(shared.clone(), uid.clone(), rx, done.clone()));
        workers.insert(uid, Handle { tx });
    }
}
