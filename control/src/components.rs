//! The parts of `ketch-control` (API server, scheduler, controller manager), started together
//! in one process by default or apart (`--components`), the latter two under leader election.

use crate::auth::pki::Pki;
use crate::controllers::{self, ClientFactory, ControllerConfig, ControllerError};
use crate::leader::{self, ElectionConfig};
use crate::scheduler::{self, SchedulerConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Components {
    pub apiserver: bool,
    pub scheduler: bool,
    pub controllers: bool,
}

impl Components {
    pub fn parse(list: &[String]) -> Result<Components, String> {
        let mut c = Components {
            apiserver: false,
            scheduler: false,
            controllers: false,
        };
        for item in list {
            match item.trim() {
                "apiserver" => c.apiserver = true,
                "scheduler" => c.scheduler = true,
                "controllers" | "controller-manager" => c.controllers = true,
                "all" => {
                    c = Components {
                        apiserver: true,
                        scheduler: true,
                        controllers: true,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown component {other:?}: expected apiserver, scheduler, controllers or all"
                    ));
                }
            }
        }
        Ok(c)
    }
}

/// Clients for the in-process scheduler and controllers: a client certificate per identity,
/// issued by the cluster CA on first use, talking to this server over TLS like any client.
pub struct PkiClients {
    pki: Arc<Pki>,
    server: String,
    cache: Mutex<HashMap<String, kube::Client>>,
}

impl PkiClients {
    pub fn new(pki: Arc<Pki>, server: String) -> PkiClients {
        PkiClients {
            pki,
            server,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl ClientFactory for PkiClients {
    fn client(&self, user: &str) -> Result<kube::Client, ControllerError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(user) {
            return Ok(c.clone());
        }
        let err = |e: &dyn std::fmt::Display| ControllerError::Client(e.to_string());
        let cert = self.pki.issue_client(user, &[]).map_err(|e| err(&e))?;
        let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        let auth: kube::config::AuthInfo = serde_json::from_value(serde_json::json!({
            "client-certificate-data": b64(&cert.cert_pem),
            "client-key-data": b64(&cert.key_pem),
        }))
        .map_err(|e| err(&e))?;
        let ca = crate::api::server::certs(self.pki.ca_pem()).map_err(|e| err(&e))?;
        let mut cfg = kube::Config::new(self.server.parse().map_err(|e| err(&e))?);
        cfg.root_cert = Some(ca.iter().map(|c| c.to_vec()).collect());
        cfg.auth_info = auth;
        let client = kube::Client::try_from(cfg).map_err(|e| err(&e))?;
        cache.insert(user.to_string(), client.clone());
        Ok(client)
    }
}

/// A client from a kubeconfig file (for the scheduler and controllers run apart).
pub async fn client_from_kubeconfig(
    path: &std::path::Path,
) -> Result<kube::Client, ControllerError> {
    let err =
        |e: &dyn std::fmt::Display| ControllerError::Client(format!("{}: {e}", path.display()));
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(&e))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| err(&e))?;
    kube::Client::try_from(cfg).map_err(|e| err(&e))
}

/// The CA (PEM) a kubeconfig trusts for its current cluster, if it names one.
pub fn ca_from_kubeconfig(path: &std::path::Path) -> Option<String> {
    let kc = kube::config::Kubeconfig::read_from(path).ok()?;
    let context = kc.current_context.as_deref()?;
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)?
        .cluster
        .as_ref()?;
    if let Some(data) = &cluster.certificate_authority_data {
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).ok()?;
        return String::from_utf8(bytes).ok();
    }
    let file = cluster.certificate_authority.as_ref()?;
    std::fs::read_to_string(path.parent()?.join(file)).ok()
}

/// Who this process is, for leases and events: `<hostname>_<random>` as upstream.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}_{}", host.trim(), uuid::Uuid::new_v4())
}

/// Starts the scheduler and/or the controller manager, each when it holds its lease.
pub fn start(
    components: Components,
    clients: Arc<dyn ClientFactory>,
    scheduler_config: SchedulerConfig,
    controller_config: ControllerConfig,
    stop: CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ControllerError> {
    let id = controller_config.instance.clone();
    let mut tasks = Vec::new();
    if components.scheduler {
        let client = clients.client("system:kube-scheduler")?;
        let cfg = ElectionConfig::new("kube-scheduler", &id);
        let sched = scheduler_config.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(leader::run_elected(
            client.clone(),
            cfg,
            stop,
            move |lost| {
                let client = client.clone();
                let sched = sched.clone();
                async move { scheduler::run(client, sched, lost).await }
            },
        )));
    }
    if components.controllers {
        let client = clients.client("system:kube-controller-manager")?;
        let cfg = ElectionConfig::new("kube-controller-manager", &id);
        let ctx = Arc::new(controllers::Context {
            clients,
            config: controller_config,
        });
        tasks.push(tokio::spawn(leader::run_elected(
            client,
            cfg,
            stop,
            move |lost| controllers::run_all(ctx.clone(), lost),
        )));
    }
    Ok(tasks)
}
