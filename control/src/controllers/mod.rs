//! The controller manager: controllers written on kube-runtime against the API server, each
//! with its own identity (a service account of kube-system, as kube-controller-manager's
//! `--use-service-account-credentials` gives them) so RBAC applies to them as upstream.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod discovery;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointutil;
pub mod garbagecollector;
pub mod history;
pub mod hpa;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub(crate) mod reconcile_loop;
pub mod replicaset;
pub mod rootca;
pub mod serviceaccount;
pub mod statefulset;
pub mod util;
pub mod workload;

use futures::future::BoxFuture;
use ipnetwork::Ipv4Network;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How controllers reach the API: a client per identity.
pub trait ClientFactory: Send + Sync {
    /// A client authenticated as `user` (`system:serviceaccount:kube-system:<name>`).
    fn client(&self, user: &str) -> Result<kube::Client, ControllerError>;
}

/// One client for everything (a kubeconfig given on the command line).
pub struct SharedClient(pub kube::Client);

impl ClientFactory for SharedClient {
    fn client(&self, _user: &str) -> Result<kube::Client, ControllerError> {
        Ok(self.0.clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("API: {0}")]
    Kube(#[from] kube::Error),
    #[error("client setup: {0}")]
    Client(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Which controllers run: names, `*` for all, `-name` to leave one out (kube's flag).
    pub enabled: Vec<String>,
    /// Pod network of the cluster, split into a podCIDR per node (node IPAM).
    pub cluster_cidr: Option<Ipv4Network>,
    pub node_cidr_mask_size: u8,
    /// A node whose lease is not renewed for this long is marked unknown.
    pub node_monitor_grace_period: Duration,
    /// Identity reported in events (`reportingInstance`).
    pub instance: String,
    /// Most endpoints in one EndpointSlice (`--max-endpoints-per-slice`).
    pub max_endpoints_per_slice: usize,
    /// The cluster CA (PEM) published in every namespace (`--root-ca-file`).
    pub root_ca: Option<String>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            enabled: vec!["*".into()],
            cluster_cidr: None,
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            instance: "ketch-control".into(),
            max_endpoints_per_slice: 100,
            root_ca: None,
        }
    }
}

impl ControllerConfig {
    pub fn is_enabled(&self, name: &str) -> bool {
        if self
            .enabled
            .iter()
            .any(|e| e.strip_prefix('-') == Some(name))
        {
            return false;
        }
        self.enabled.iter().any(|e| e == "*" || e == name)
    }
}

pub struct Context {
    pub clients: Arc<dyn ClientFactory>,
    pub config: ControllerConfig,
}

impl Context {
    /// The client of a controller's service account (`<name>-controller` in kube-system).
    pub fn client_for(&self, controller: &str) -> Result<kube::Client, ControllerError> {
        self.clients
            .client(&format!("system:serviceaccount:kube-system:{controller}"))
    }

    /// An event recorder reporting as `component` (e.g. `deployment-controller`).
    pub fn recorder(&self, client: kube::Client, component: &str) -> Events {
        Events::new(client, component, &self.config.instance)
    }
}

pub use ketch_events::Events;

type Runner =
    fn(Arc<Context>, CancellationToken) -> BoxFuture<'static, Result<(), ControllerError>>;

/// Every controller, by the name `--controllers` uses.
pub fn all() -> Vec<(&'static str, Runner)> {
    vec![
        ("endpoint", endpoints::run),
        ("endpointslice", endpointslice::run),
        (nodeipam::NAME, |ctx, stop| {
            Box::pin(nodeipam::run(ctx, stop))
        }),
        (nodelifecycle::NAME, |ctx, stop| {
            Box::pin(nodelifecycle::run(ctx, stop))
        }),
        (garbagecollector::NAME, garbagecollector::run),
        (namespace::NAME, namespace::run),
        (rootca::NAME, rootca::run),
        (serviceaccount::NAME, serviceaccount::run),
        ("statefulset", statefulset::run),
        ("daemonset", daemonset::run),
        ("deployment", deployment::run),
        ("replicaset", replicaset::run),
        ("job", job::runner),
        ("cronjob", cronjob::runner),
        ("disruption", disruption::runner),
        ("horizontalpodautoscaling", hpa::runner),
    ]
}

/// Runs every enabled controller until `stop`; a controller that fails is restarted.
pub async fn run_all(ctx: Arc<Context>, stop: CancellationToken) {
    let mut tasks = Vec::new();
    for (name, run) in all() {
        if !ctx.config.is_enabled(name) {
            continue;
        }
        let ctx = ctx.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                match run(ctx.clone(), stop.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(controller = name, error = %e, "controller failed; restarting");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                            _ = stop.cancelled() => break,
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_selection_follows_kube_flag_syntax() {
        let cfg = ControllerConfig {
            enabled: vec!["*".into(), "-job".into()],
            ..Default::default()
        };
        assert!(cfg.is_enabled("deployment"));
        assert!(!cfg.is_enabled("job"));
        let only = ControllerConfig {
            enabled: vec!["namespace".into()],
            ..Default::default()
        };
        assert!(only.is_enabled("namespace") && !only.is_enabled("deployment"));
    }
}
