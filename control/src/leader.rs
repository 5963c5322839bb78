//! Leader election on a `coordination.k8s.io/v1` Lease, as kube-scheduler and
//! kube-controller-manager do it: the holder renews the lease every `retry_period`; a candidate
//! takes it over once `lease_duration` has passed without renewal. Writes carry the lease's
//! resourceVersion, so two candidates can never both win the same round.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub namespace: String,
    pub name: String,
    /// Who we are (`<hostname>_<uuid>` upstream).
    pub identity: String,
    pub lease_duration: Duration,
    /// A leader that cannot renew for this long steps down (before others may take over).
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl ElectionConfig {
    pub fn new(name: &str, identity: &str) -> ElectionConfig {
        ElectionConfig {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// One attempt to acquire or renew; Ok(true) if we hold the lease afterwards.
pub async fn try_acquire(api: &Api<Lease>, cfg: &ElectionConfig) -> Result<bool, kube::Error> {
    let existing = api.get_opt(&cfg.name).await?;
    let duration_secs = cfg.lease_duration.as_secs() as i32;
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                namespace: Some(cfg.namespace.clone()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let held_by_us = holder == cfg.identity;
    if !held_by_us && !holder.is_empty() {
        let renewed = spec
            .renew_time
            .as_ref()
            .map(|t| t.0)
            .or(spec.acquire_time.as_ref().map(|t| t.0));
        let duration = spec.lease_duration_seconds.unwrap_or(duration_secs).max(1) as i64;
        let expired = match renewed {
            Some(t) => jiff::Timestamp::now() > t + jiff::SignedDuration::from_secs(duration),
            None => true,
        };
        if !expired {
            return Ok(false);
        }
    }
    if !held_by_us {
        spec.holder_identity = Some(cfg.identity.clone());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(now());
    spec.lease_duration_seconds = Some(duration_secs);
    // The resourceVersion read above makes this a compare-and-swap.
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `work` whenever this instance leads, forever (until `shutdown`). `work` is given a token
/// that is cancelled when leadership is lost; it must then stop promptly.
pub async fn run_elected<F, Fut>(
    client: kube::Client,
    cfg: ElectionConfig,
    shutdown: CancellationToken,
    work: F,
) where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    loop {
        // Candidate: try until we win.
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match try_acquire(&api, &cfg).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::debug!(lease = %cfg.name, error = %e, "lease attempt failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(cfg.retry_period) => {}
                _ = shutdown.cancelled() => return,
            }
        }
        tracing::info!(lease = %cfg.name, identity = %cfg.identity, "became leader");
        let lost = shutdown.child_token();
        let task = tokio::spawn(work(lost.clone()));
        // Leader: renew; step down if renewal keeps failing past the deadline.
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(cfg.retry_period) => {}
                _ = shutdown.cancelled() => break,
            }
            match try_acquire(&api, &cfg).await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease = %cfg.name, "lost the lease to another instance");
                    break;
                }
                Err(e) => {
                    tracing::warn!(lease = %cfg.name, error = %e, "lease renewal failed");
                    if last_renewed.elapsed() > cfg.renew_deadline {
                        break;
                    }
                }
            }
        }
        lost.cancel();
        let _ = task.await;
        tracing::info!(lease = %cfg.name, "stopped leading");
    }
}
