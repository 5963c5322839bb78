//! One worker per pod: it drives the runtime towards the pod's spec (sandbox, init containers in
//! order, containers with their restart policy and back-off, probes), reports status, and tears
//! everything down gracefully when the pod is deleted. Each sync reads the runtime's state, so a
//! restarted agent picks up running pods as they are.

use super::config::KubeletConfig;
use super::cri::{Cri, CriError};
use super::env::{self, EnvError, NodeFacts};
use super::probes::{self, Kind};
use super::spec::{self, CONTAINER_NAME, POD_UID};
use super::status::{self, ContainerView, PodView};
use super::volumes::{self, TokenCache, VolumeError};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What every worker shares.
pub struct Shared {
    pub cfg: Arc<KubeletConfig>,
    pub client: kube::Client,
    pub cri: Cri,
    pub events: ketch_events::Events,
    pub tokens: TokenCache,
    pub node: RwLock<NodeFacts>,
    /// Pods the eviction manager chose (uid → the message their status gets).
    pub evictions: std::sync::Mutex<HashMap<String, String>>,
    /// Bumped on every new eviction, so workers look at once.
    pub evicted: watch::Sender<u64>,
}

const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long restarts without back-off (the kubelet's 2 × max).
const BACKOFF_RESET: Duration = Duration::from_secs(600);

pub enum Outcome {
    /// Sync again after this long, or sooner when something changes.
    Again(Duration),
    /// The pod is gone from the node; the worker ends.
    Done,
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error(transparent)]
    Api(#[from] kube::Error),
}

struct Backoff {
    delay: Duration,
}

pub struct Worker {
    shared: Arc<Shared>,
    uid: String,
    backoff: HashMap<String, Backoff>,
    probes: HashMap<(String, Kind), CancellationToken>,
    results: probes::Results,
    pub probe_changed: watch::Sender<u64>,
    last_status: Option<Value>,
    start_time: String,
    waiting: HashMap<String, (String, String)>,
    /// Events already recorded (reason + object), so a resync does not repeat them.
    said: HashSet<String>,
    terminal: bool,
    pull_failures: HashSet<String>,
    /// Set when the eviction manager chose this pod: the status message.
    evicted: Option<String>,
}

fn attempt_of(c: &cri::Container) -> u32 {
    c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0)
}

fn name_of(c: &cri::Container) -> String {
    c.labels
        .get(CONTAINER_NAME)
        .cloned()
        .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
        .unwrap_or_default()
}

fn is_running(s: &cri::ContainerStatus) -> bool {
    s.state == cri::ContainerState::ContainerRunning as i32
}

fn is_exited(s: &cri::ContainerStatus) -> bool {
    s.state == cri::ContainerState::ContainerExited as i32
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The newest and the previous runtime container of each container name.
struct Observed {
    latest: HashMap<String, cri::ContainerStatus>,
    previous: HashMap<String, cri::ContainerStatus>,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, uid: String) -> Worker {
        let (probe_changed, _) = watch::channel(0);
        Worker {
            shared,
            uid,
            backoff: HashMap::new(),
            probes: HashMap::new(),
            results: probes::Results::default(),
            probe_changed,
            last_status: None,
            start_time: now_rfc3339(),
            waiting: HashMap::new(),
            said: HashSet::new(),
            terminal: false,
            pull_failures: HashSet::new(),
            evicted: None,
        }
    }

    fn pod_ref(pod: &Pod, container: Option<&str>) -> ObjectReference {
        let mut r = kube::Resource::object_ref(pod, &());
        if let Some(c) = container {
            r.field_path = Some(format!("spec.containers{{{c}}}"));
        }
        r
    }

    /// Records an event once per `key` (resyncs do not repeat it).
    async fn event_once(
        &mut self,
        key: String,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        if !self.said.insert(key) {
            return;
        }
        self.event(pod, container, warning, reason, note).await;
    }

    async fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let r = Self::pod_ref(pod, container);
        if warning {
            self.shared.events.warning(&r, reason, reason, note).await;
        } else {
            self.shared.events.normal(&r, reason, reason, note).await;
        }
    }

    /// One pass towards the desired state.
    pub async fn sync(&mut self, pod: Option<Arc<Pod>>) -> Outcome {
        let result = match pod {
            None => self.remove(None).await.map(|_| Outcome::Done),
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                self.remove(Some(&p)).await.map(|_| Outcome::Done)
            }
            Some(p) => self.run_pod(&p).await,
        };
        match result {
            Ok(o) => o,
            Err(SyncError::Cri(e)) if e.unavailable() => {
                tracing::warn!(pod = %self.uid, error = %e, "container runtime unavailable; waiting for it");
                Outcome::Again(Duration::from_secs(2))
            }
            Err(e) => {
                tracing::warn!(pod = %self.uid, error = %e, "pod sync failed");
                Outcome::Again(Duration::from_secs(2))
            }
        }
    }

    async fn observe(&self) -> Result<Observed, SyncError> {
        let all = self.shared.cri.list_containers(None).await?;
        let mut mine: Vec<cri::Container> = all
            .into_iter()
            .filter(|c| c.labels.get(POD_UID) == Some(&self.uid))
            .collect();
        mine.sort_by_key(|c| (name_of(c), attempt_of(c), c.created_at));
        let mut latest = HashMap::new();
        let mut previous = HashMap::new();
        for c in mine {
            let name = name_of(&c);
            let Ok(status) = self.shared.cri.container_status(&c.id).await else {
                continue;
            };
            if let Some(old) = latest.insert(name.clone(), status) {
                previous.insert(name, old);
            }
        }
        Ok(Observed { latest, previous })
    }

    async fn ensure_sandbox(
        &mut self,
        pod: &Pod,
    ) -> Result<(String, String, cri::PodSandboxConfig), SyncError> {
        let cri = &self.shared.cri;
        let mut boxes: Vec<cri::PodSandbox> = cri
            .list_pod_sandboxes()
            .await?
            .into_iter()
            .filter(|s| s.metadata.as_ref().map(|m| m.uid.as_str()) == Some(self.uid.as_str()))
            .collect();
        boxes.sort_by_key(|s| {
            (
                s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                s.created_at,
            )
        });
        let ready = boxes
            .iter()
            .rev()
            .find(|s| s.state == cri::PodSandboxState::SandboxReady as i32);
        if let Some(b) = ready {
            let attempt = b.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
            let config = spec::sandbox_config(&self.shared.cfg, pod, attempt);
            let ip = cri
                .pod_sandbox_status(&b.id)
                .await?
                .network
                .map(|n| n.ip)
                .unwrap_or_default();
            return Ok((b.id.clone(), ip, config));
        }
        let attempt = boxes
            .last()
            .map(|s| s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0) + 1)
            .unwrap_or(0);
        if !boxes.is_empty() {
            // The sandbox died: its containers go with it (the kubelet's SandboxChanged).
            self.event(
                pod,
                None,
                false,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.".into(),
            )
            .await;
            for c in self.shared.cri.list_containers(None).await? {
                if c.labels.get(POD_UID) == Some(&self.uid)
                    && c.state == cri::ContainerState::ContainerRunning as i32
                {
                    let _ = cri.stop_container(&c.id, 0).await;
                }
            }
        }
        let config = spec::sandbox_config(&self.shared.cfg, pod, attempt);
        if let Err(e) = std::fs::create_dir_all(&config.log_directory) {
            tracing::warn!(dir = %config.log_directory, error = %e, "creating the log directory failed");
        }
        let id = match cri.run_pod_sandbox(config.clone()).await {
            Ok(id) => id,
            Err(e) => {
                self.event(
                    pod,
                    None,
                    true,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                )
                .await;
                return Err(e.into());
            }
        };
        let ip = cri
            .pod_sandbox_status(&id)
            .await?
            .network
            .map(|n| n.ip)
            .unwrap_or_default();
        Ok((id, ip, config))
    }

    fn facts(&self) -> NodeFacts {
        let n = self.shared.node.read().unwrap_or_else(|p| p.into_inner());
        NodeFacts {
            host_ip: n.host_ip.clone(),
            allocatable_cpu_milli: n.allocatable_cpu_milli,
            allocatable_memory: n.allocatable_memory,
        }
    }

    /// Creates and starts attempt `attempt` of container `c`; false if it is waiting (config, image).
    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        sandbox_id: &str,
        sandbox_config: &cri::PodSandboxConfig,
        pod_ip: &str,
        volumes: &HashMap<String, PathBuf>,
        init: bool,
    ) -> Result<bool, SyncError> {
        let image = c.image.clone().unwrap_or_default();
        if self.shared.cri.image_present(&image).await?.is_none() {
            match self.shared.cri.pull_image(&image).await {
                Ok(_) => {}
                Err(e) => {
                    let reason = if self.pull_failures.contains(&c.name) {
                        "ImagePullBackOff"
                    } else {
                        "ErrImagePull"
                    };
                    self.pull_failures.insert(c.name.clone());
                    let msg = format!("failed to pull image \"{image}\": {e}");
                    self.event_once(
                        format!("pull/{}/{attempt}", c.name),
                        pod,
                        Some(&c.name),
                        true,
                        "Failed",
                        msg.clone(),
                    )
                    .await;
                    self.waiting.insert(c.name.clone(), (reason.into(), msg));
                    return Ok(false);
                }
            }
        } else {
            self.event_once(
                format!("pulled/{}/{attempt}", c.name),
                pod,
                Some(&c.name),
                false,
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            )
            .await;
        }
        let envs =
            match env::container_env(&self.shared.client, pod, c, pod_ip, &self.facts()).await {
                Ok(e) => e,
                Err(EnvError::Config(msg)) => {
                    self.event_once(
                        format!("cfg/{}/{msg}", c.name),
                        pod,
                        Some(&c.name),
                        true,
                        "Failed",
                        format!("Error: {msg}"),
                    )
                    .await;
                    self.waiting
                        .insert(c.name.clone(), ("CreateContainerConfigError".into(), msg));
                    return Ok(false);
                }
                Err(EnvError::Api(e)) => return Err(e.into()),
            };
        let term_log = self
            .shared
            .cfg
            .pod_dir(&self.uid)
            .join("containers")
            .join(&c.name)
            .join(attempt.to_string());
        if let Some(parent) = term_log.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(&term_log, b"");
        let mounts = match volumes::mounts_for(c, volumes, &term_log) {
            Ok(m) => m,
            Err(e) => {
                self.waiting.insert(
                    c.name.clone(),
                    ("CreateContainerConfigError".into(), e.to_string()),
                );
                return Ok(false);
            }
        };
        let qos = pod
            .status
            .as_ref()
            .and_then(|s| s.qos_class.clone())
            .unwrap_or_else(|| "BestEffort".into());
        let memory_capacity = self.facts().allocatable_memory;
        let config = spec::container_config(
            pod,
            c,
            spec::ContainerContext {
                attempt,
                env: envs,
                mounts,
                qos: &qos,
                memory_capacity,
                init,
            },
        );
        let id = match self
            .shared
            .cri
            .create_container(sandbox_id, config, sandbox_config.clone())
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let msg = e.to_string();
                self.event(pod, Some(&c.name), true, "Failed", format!("Error: {msg}"))
                    .await;
                self.waiting
                    .insert(c.name.clone(), ("CreateContainerError".into(), msg));
                return Ok(false);
            }
        };
        self.event(
            pod,
            Some(&c.name),
            false,
            "Created",
            format!("Created container: {}", c.name),
        )
        .await;
        if let Err(e) = self.shared.cri.start_container(&id).await {
            self.event(pod, Some(&c.name), true, "Failed", format!("Error: {e}"))
                .await;
            return Err(e.into());
        }
        self.event(
            pod,
            Some(&c.name),
            false,
            "Started",
            format!("Started container {}", c.name),
        )
        .await;
        self.waiting.remove(&c.name);
        self.pull_failures.remove(&c.name);
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())
            && let Err(msg) = self.run_hook(h, &id, pod_ip, c).await
        {
            self.event(pod, Some(&c.name), true, "FailedPostStartHook", msg)
                .await;
            let _ = self.shared.cri.stop_container(&id, 0).await;
        }
        Ok(true)
    }

    async fn run_hook(
        &self,
        h: &k8s_openapi::api::core::v1::LifecycleHandler,
        id: &str,
        pod_ip: &str,
        c: &Container,
    ) -> Result<(), String> {
        let probe = k8s_openapi::api::core::v1::Probe {
            exec: h.exec.clone(),
            http_get: h.http_get.clone(),
            tcp_socket: h.tcp_socket.clone(),
            timeout_seconds: Some(30),
            ..Default::default()
        };
        if let Some(sleep) = &h.sleep {
            tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
            return Ok(());
        }
        let ports = container_ports(c);
        let v = probes::check(&probe, &self.shared.cri, id, pod_ip, &ports).await;
        if v.ok { Ok(()) } else { Err(v.message) }
    }

    /// The back-off gate before restarting a container that exited at `finished_at` (CRI
    /// nanoseconds), as the kubelet's: the first restart is immediate, each later one waits
    /// twice as long after the exit as the one before (10 s up to 5 min); a run of over
    /// 10 min starts again from the beginning.
    fn may_restart(
        &mut self,
        name: &str,
        ran_for: Duration,
        finished_at: i64,
    ) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(i64::MAX);
        match self.backoff.get_mut(name) {
            Some(b) if ran_for <= BACKOFF_RESET => {
                let until = finished_at.saturating_add(b.delay.as_nanos() as i64);
                if now < until {
                    return Err(format!(
                        "back-off {}s restarting failed container",
                        b.delay.as_secs()
                    ));
                }
                b.delay = (b.delay * 2).min(MAX_BACKOFF);
            }
            _ => {
                self.backoff.insert(
                    name.to_string(),
                    Backoff {
                        delay: INITIAL_BACKOFF,
                    },
                );
            }
        }
        Ok(())
    }

    async fn run_pod(&mut self, pod: &Pod) -> Result<Outcome, SyncError> {
        let chosen = self
            .shared
            .evictions
            .lock()
            .ok()
            .and_then(|e| e.get(&self.uid).cloned());
        if let Some(message) = chosen
            && self.evicted.is_none()
        {
            return self.evict(pod, message).await;
        }
        if self.terminal {
            return Ok(Outcome::Again(Duration::from_secs(30)));
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let restart_policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let volumes = match volumes::setup(
            &self.shared.client,
            &self.shared.cfg,
            pod,
            &self.shared.tokens,
        )
        .await
        {
            Ok(v) => v,
            Err(e) => {
                let msg = match &e {
                    VolumeError::Config(m) => m.clone(),
                    other => other.to_string(),
                };
                self.event_once(
                    format!("mount/{msg}"),
                    pod,
                    None,
                    true,
                    "FailedMount",
                    format!("MountVolume.SetUp failed: {msg}"),
                )
                .await;
                self.report(
                    pod,
                    false,
                    None,
                    &Observed {
                        latest: HashMap::new(),
                        previous: HashMap::new(),
                    },
                    &restart_policy,
                )
                .await?;
                return Ok(Outcome::Again(Duration::from_secs(2)));
            }
        };
        let (sandbox_id, pod_ip, sandbox_config) = self.ensure_sandbox(pod).await?;
        let observed = self.observe().await?;
        // Init containers, in order.
        let mut init_done = true;
        for c in spec.init_containers.iter().flatten() {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            match observed.latest.get(&c.name) {
                None => {
                    self.start_container(
                        pod,
                        c,
                        0,
                        &sandbox_id,
                        &sandbox_config,
                        &pod_ip,
                        &volumes,
                        true,
                    )
                    .await?;
                    init_done = false;
                    break;
                }
                Some(s) if is_running(s) => {
                    if !sidecar {
                        init_done = false;
                        break;
                    }
                }
                Some(s) if is_exited(s) && s.exit_code == 0 && !sidecar => {}
                Some(s) if is_exited(s) => {
                    init_done = false;
                    if sidecar || restart_policy != "Never" {
                        let ran =
                            Duration::from_nanos((s.finished_at - s.started_at).max(0) as u64);
                        match self.may_restart(&c.name, ran, s.finished_at) {
                            Ok(()) => {
                                let next = s.metadata.as_ref().map(|m| m.attempt + 1).unwrap_or(1);
                                self.start_container(
                                    pod,
                                    c,
                                    next,
                                    &sandbox_id,
                                    &sandbox_config,
                                    &pod_ip,
                                    &volumes,
                                    true,
                                )
                                .await?;
                            }
                            Err(msg) => {
                                self.waiting.insert(
                                    c.name.clone(),
                                    (
                                        "CrashLoopBackOff".into(),
                                        format!("{msg} {}", self.who(pod, c)),
                                    ),
                                );
                            }
                        }
                    }
                    break;
                }
                Some(s) => {
                    self.shared.cri.start_container(&s.id).await?;
                    init_done = false;
                    break;
                }
            }
        }
        let observed = if init_done {
            // Containers, each by its restart policy.
            for c in &spec.containers {
                let Some(s) = observed.latest.get(&c.name) else {
                    self.start_container(
                        pod,
                        c,
                        0,
                        &sandbox_id,
                        &sandbox_config,
                        &pod_ip,
                        &volumes,
                        false,
                    )
                    .await?;
                    continue;
                };
                let attempt = s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
                if is_running(s) {
                    let changed =
                        s.annotations.get(spec::CONTAINER_HASH) != Some(&spec::container_hash(c));
                    let unhealthy = self.results.get(&s.id, Kind::Liveness).filter(|v| !v.ok);
                    let startup_failed = self
                        .results
                        .get(&s.id, Kind::Startup)
                        .filter(|v| !v.ok && !v.message.is_empty());
                    if changed || unhealthy.is_some() || startup_failed.is_some() {
                        let why = if changed {
                            format!("Container {} definition changed, will be restarted", c.name)
                        } else if let Some(v) = &unhealthy {
                            self.event(
                                pod,
                                Some(&c.name),
                                true,
                                "Unhealthy",
                                format!("Liveness probe failed: {}", v.message),
                            )
                            .await;
                            format!(
                                "Container {} failed liveness probe, will be restarted",
                                c.name
                            )
                        } else {
                            format!(
                                "Container {} failed startup probe, will be restarted",
                                c.name
                            )
                        };
                        self.event(pod, Some(&c.name), false, "Killing", why).await;
                        self.kill_container(
                            pod,
                            c,
                            &s.id,
                            &pod_ip,
                            spec.termination_grace_period_seconds.unwrap_or(30),
                        )
                        .await;
                        self.results.forget(&s.id);
                    }
                    continue;
                }
                if is_exited(s) {
                    let restart = restart_policy == "Always"
                        || (restart_policy == "OnFailure" && s.exit_code != 0);
                    if !restart {
                        continue;
                    }
                    let ran = Duration::from_nanos((s.finished_at - s.started_at).max(0) as u64);
                    match self.may_restart(&c.name, ran, s.finished_at) {
                        Ok(()) => {
                            self.start_container(
                                pod,
                                c,
                                attempt + 1,
                                &sandbox_id,
                                &sandbox_config,
                                &pod_ip,
                                &volumes,
                                false,
                            )
                            .await?;
                        }
                        Err(msg) => {
                            let full = format!("{msg} {}", self.who(pod, c));
                            self.event_once(
                                format!("backoff/{}/{attempt}", c.name),
                                pod,
                                Some(&c.name),
                                true,
                                "BackOff",
                                format!(
                                    "Back-off restarting failed container {} in pod {}",
                                    c.name,
                                    self.pod_label(pod)
                                ),
                            )
                            .await;
                            self.waiting
                                .insert(c.name.clone(), ("CrashLoopBackOff".into(), full));
                        }
                    }
                    continue;
                }
                // Created but not started (an agent restart in between).
                self.shared.cri.start_container(&s.id).await?;
            }
            self.observe().await?
        } else {
            observed
        };
        self.manage_probes(pod, &observed, &pod_ip);
        let phase = self
            .report(pod, true, Some(pod_ip.clone()), &observed, &restart_policy)
            .await?;
        if phase == "Succeeded" || phase == "Failed" {
            // Finished pods keep their containers (for logs) but not their sandbox.
            self.terminal = true;
            self.stop_probes();
            let _ = self.shared.cri.stop_pod_sandbox(&sandbox_id).await;
            return Ok(Outcome::Again(Duration::from_secs(30)));
        }
        let settled = observed.latest.values().all(is_running)
            && spec.containers.iter().all(|c| {
                observed.latest.get(&c.name).is_some_and(|s| {
                    self.results
                        .get(&s.id, Kind::Readiness)
                        .is_none_or(|v| v.ok)
                })
            });
        Ok(Outcome::Again(if settled {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(1)
        }))
    }

    /// Node-pressure eviction: kill everything at once (a hard threshold allows no grace), free
    /// the volumes (memory-backed ones are part of the pressure) and leave the pod `Failed` with
    /// reason `Evicted`; it is never restarted here, its controller makes a new one.
    async fn evict(&mut self, pod: &Pod, message: String) -> Result<Outcome, SyncError> {
        self.stop_probes();
        self.event(pod, None, true, "Evicted", message.clone())
            .await;
        let cri = self.shared.cri.clone();
        for c in cri.list_containers(None).await? {
            if c.labels.get(POD_UID) == Some(&self.uid)
                && c.state == cri::ContainerState::ContainerRunning as i32
                && let Err(e) = cri.stop_container(&c.id, 0).await
                && !e.not_found()
            {
                return Err(e.into());
            }
        }
        for s in cri.list_pod_sandboxes().await? {
            if s.metadata.as_ref().map(|m| m.uid.as_str()) == Some(self.uid.as_str()) {
                let _ = cri.stop_pod_sandbox(&s.id).await;
            }
        }
        volumes::teardown(&self.shared.cfg, &self.uid);
        self.evicted = Some(message);
        self.terminal = true;
        let observed = self.observe().await?;
        let restart_policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        self.report(pod, false, None, &observed, &restart_policy)
            .await?;
        Ok(Outcome::Again(Duration::from_secs(30)))
    }

    fn who(&self, pod: &Pod, c: &Container) -> String {
        format!(
            "container={} pod={}_{}({})",
            c.name,
            pod.metadata.name.as_deref().unwrap_or(""),
            pod.metadata.namespace.as_deref().unwrap_or(""),
            self.uid
        )
    }

    fn pod_label(&self, pod: &Pod) -> String {
        format!(
            "{}_{}({})",
            pod.metadata.name.as_deref().unwrap_or(""),
            pod.metadata.namespace.as_deref().unwrap_or(""),
            self.uid
        )
    }

    fn manage_probes(&mut self, pod: &Pod, observed: &Observed, pod_ip: &str) {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut wanted: HashSet<(String, Kind)> = HashSet::new();
        for c in spec.containers.iter().chain(
            spec.init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always")),
        ) {
            let Some(s) = observed.latest.get(&c.name).filter(|s| is_running(s)) else {
                continue;
            };
            for (kind, probe) in [
                (Kind::Startup, &c.startup_probe),
                (Kind::Liveness, &c.liveness_probe),
                (Kind::Readiness, &c.readiness_probe),
            ] {
                let Some(probe) = probe.clone() else { continue };
                // Liveness and readiness wait for the startup probe to pass.
                if kind != Kind::Startup
                    && c.startup_probe.is_some()
                    && !self.results.get(&s.id, Kind::Startup).is_some_and(|v| v.ok)
                {
                    continue;
                }
                let key = (s.id.clone(), kind);
                wanted.insert(key.clone());
                if self.probes.contains_key(&key) {
                    continue;
                }
                let stop = CancellationToken::new();
                tokio::spawn(probes::run(
                    probe,
                    kind,
                    self.shared.cri.clone(),
                    s.id.clone(),
                    pod_ip.to_string(),
                    container_ports(c),
                    self.results.clone(),
                    self.probe_changed.clone(),
                    stop.clone(),
                ));
                self.probes.insert(key, stop);
            }
        }
        self.probes.retain(|k, stop| {
            let keep = wanted.contains(k);
            if !keep {
                stop.cancel();
            }
            keep
        });
    }

    fn stop_probes(&mut self) {
        for (_, stop) in self.probes.drain() {
            stop.cancel();
        }
    }

    /// Computes and writes the pod status (when it changed); returns the phase.
    async fn report(
        &mut self,
        pod: &Pod,
        sandbox_ready: bool,
        pod_ip: Option<String>,
        observed: &Observed,
        restart_policy: &str,
    ) -> Result<String, SyncError> {
        let spec = pod.spec.clone().unwrap_or_default();
        let view_of = |c: &'_ Container, sidecar: bool| -> (bool, bool) {
            let Some(s) = observed.latest.get(&c.name) else {
                return (false, false);
            };
            if !is_running(s) {
                return (false, false);
            }
            let started = c.startup_probe.is_none()
                || self.results.get(&s.id, Kind::Startup).is_some_and(|v| v.ok);
            let ready = started
                && match &c.readiness_probe {
                    None => true,
                    Some(_) => self
                        .results
                        .get(&s.id, Kind::Readiness)
                        .is_some_and(|v| v.ok),
                };
            let _ = sidecar;
            (ready, started)
        };
        let init: Vec<ContainerView> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| {
                let sidecar = c.restart_policy.as_deref() == Some("Always");
                let (ready, started) = view_of(c, sidecar);
                ContainerView {
                    spec: c,
                    latest: observed.latest.get(&c.name),
                    previous: observed.previous.get(&c.name),
                    waiting: self.waiting.get(&c.name).cloned(),
                    ready,
                    started,
                    sidecar,
                }
            })
            .collect();
        let main: Vec<ContainerView> = spec
            .containers
            .iter()
            .map(|c| {
                let (ready, started) = view_of(c, false);
                ContainerView {
                    spec: c,
                    latest: observed.latest.get(&c.name),
                    previous: observed.previous.get(&c.name),
                    waiting: self.waiting.get(&c.name).cloned(),
                    ready,
                    started,
                    sidecar: false,
                }
            })
            .collect();
        let gates_ok = spec.readiness_gates.iter().flatten().all(|g| {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == g.condition_type && c.status == "True")
                })
        });
        let view = PodView {
            sandbox_ready,
            pod_ip,
            host_ip: self.facts().host_ip,
            start_time: pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| self.start_time.clone()),
            qos: pod
                .status
                .as_ref()
                .and_then(|s| s.qos_class.clone())
                .unwrap_or_else(|| "BestEffort".into()),
            restart_policy: restart_policy.to_string(),
            init,
            main,
            readiness_gates_ok: gates_ok,
        };
        let previous = pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
        let mut status = status::pod_status(&view, previous.as_ref().or(self.last_status.as_ref()));
        if let Some(message) = &self.evicted {
            status::mark_evicted(&mut status, message);
        }
        let phase = status["phase"].as_str().unwrap_or("Pending").to_string();
        let comparable = |v: &Value| {
            let mut v = v.clone();
            if let Some(cs) = v.get_mut("conditions").and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(m) = c.as_object_mut() {
                        m.remove("lastTransitionTime");
                    }
                }
            }
            v
        };
        if self.last_status.as_ref().map(comparable) != Some(comparable(&status)) {
            let api: Api<Pod> = Api::namespaced(
                self.shared.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let name = pod.metadata.name.clone().unwrap_or_default();
            let patch = serde_json::json!({"status": status});
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => self.last_status = Some(status),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(phase)
    }

    async fn kill_container(&self, pod: &Pod, c: &Container, id: &str, pod_ip: &str, grace: i64) {
        let start = Instant::now();
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
            let budget = Duration::from_secs(grace.max(0) as u64);
            match tokio::time::timeout(budget, self.run_hook(h, id, pod_ip, c)).await {
                Ok(Err(msg)) => {
                    self.event(pod, Some(&c.name), true, "FailedPreStopHook", msg)
                        .await
                }
                Err(_) => {
                    self.event(
                        pod,
                        Some(&c.name),
                        true,
                        "FailedPreStopHook",
                        "PreStopHook timed out".into(),
                    )
                    .await
                }
                Ok(Ok(())) => {}
            }
        }
        let left = (grace - start.elapsed().as_secs() as i64).max(2);
        if let Err(e) = self.shared.cri.stop_container(id, left).await
            && !e.not_found()
        {
            tracing::warn!(container = %id, error = %e, "stopping a container failed");
        }
    }

    /// Stops everything of the pod (gracefully if `pod` is given), removes it from the runtime
    /// and the node, and completes the API deletion.
    async fn remove(&mut self, pod: Option<&Pod>) -> Result<(), SyncError> {
        self.stop_probes();
        let cri = self.shared.cri.clone();
        let containers: Vec<cri::Container> = cri
            .list_containers(None)
            .await?
            .into_iter()
            .filter(|c| c.labels.get(POD_UID) == Some(&self.uid))
            .collect();
        if let Some(p) = pod {
            let grace = p
                .metadata
                .deletion_grace_period_seconds
                .or(p
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds))
                .unwrap_or(30);
            let spec = p.spec.clone().unwrap_or_default();
            let ip = p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default();
            let mut kills = Vec::new();
            let this = &*self;
            for c in containers
                .iter()
                .filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
            {
                let name = name_of(c);
                let Some(cs) = spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .find(|x| x.name == name)
                    .cloned()
                else {
                    let _ = cri.stop_container(&c.id, 0).await;
                    continue;
                };
                this.event(
                    p,
                    Some(&name),
                    false,
                    "Killing",
                    format!("Stopping container {name}"),
                )
                .await;
                let id = c.id.clone();
                let ip = ip.clone();
                kills.push(async move { this.kill_container(p, &cs, &id, &ip, grace).await });
            }
            futures::future::join_all(kills).await;
        } else {
            for c in containers
                .iter()
                .filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
            {
                let _ = cri.stop_container(&c.id, 0).await;
            }
        }
        for c in &containers {
            if let Err(e) = cri.remove_container(&c.id).await
                && !e.not_found()
            {
                tracing::warn!(container = %c.id, error = %e, "removing a container failed");
            }
        }
        for s in cri.list_pod_sandboxes().await? {
            if s.metadata.as_ref().map(|m| m.uid.as_str()) == Some(self.uid.as_str()) {
                let _ = cri.stop_pod_sandbox(&s.id).await;
                if let Err(e) = cri.remove_pod_sandbox(&s.id).await
                    && !e.not_found()
                {
                    tracing::warn!(sandbox = %s.id, error = %e, "removing a sandbox failed");
                }
            }
        }
        volumes::teardown(&self.shared.cfg, &self.uid);
        self.shared.tokens.forget(&self.uid);
        remove_pod_cgroups(&self.shared.cfg, &self.uid);
        if let Some(p) = pod {
            let log_dir = self.shared.cfg.log_dir(
                p.metadata.namespace.as_deref().unwrap_or(""),
                p.metadata.name.as_deref().unwrap_or(""),
                &self.uid,
            );
            let _ = std::fs::remove_dir_all(log_dir);
            let api: Api<Pod> = Api::namespaced(
                self.shared.client.clone(),
                p.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api
                .delete(p.metadata.name.as_deref().unwrap_or(""), &dp)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Ports by name of a container (named probe ports).
pub fn container_ports(c: &Container) -> HashMap<String, i32> {
    c.ports
        .iter()
        .flatten()
        .filter_map(|p| p.name.clone().map(|n| (n, p.container_port)))
        .collect()
}

/// runc leaves the pod's cgroup directories behind: remove them, deepest first, in every
/// hierarchy.
pub fn remove_pod_cgroups(cfg: &KubeletConfig, uid: &str) {
    let rel = cfg.pod_cgroup(uid);
    let Ok(hiers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hiers.flatten() {
        let dir = h.path().join(rel.trim_start_matches('/'));
        remove_cgroup_tree(&dir);
    }
}

fn remove_cgroup_tree(dir: &std::path::Path) {
    if let Ok(children) = std::fs::read_dir(dir) {
        for c in children.flatten() {
            if c.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&c.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
