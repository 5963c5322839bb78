//! Assembling and starting `ketch-control`: PKI, storage, API server, bootstrap, compaction.

use crate::admission::Admission;
use crate::admission::allocators::Allocators;
use crate::api::{ApiConfig, ApiServer};
use crate::auth::authn::TokenFile;
use crate::auth::pki::{self, Pki};
use crate::auth::serviceaccount::TokenKeys;
use crate::metrics::Metrics;
use crate::storage::etcd::EtcdStorage;
use crate::storage::{Condition, Op, Storage, Txn, TxnOutcome};
use ipnetwork::Ipv4Network;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub bind: SocketAddr,
    /// The address clients and the `kubernetes` Service use to reach this server.
    pub advertise: IpAddr,
    pub etcd_servers: Vec<String>,
    /// PKI and admin kubeconfig live here.
    pub data_dir: PathBuf,
    /// Where to write the admin kubeconfig (default `<data_dir>/admin.kubeconfig`).
    pub kubeconfig_out: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub service_cidr: Ipv4Network,
    pub node_ports: (u16, u16),
    pub api: ApiConfig,
    /// How often old etcd revisions are compacted away (zero: never).
    pub compaction_interval: Duration,
    /// Extra DNS names for the serving certificate.
    pub extra_sans: Vec<String>,
    /// Seconds pods tolerate the not-ready and unreachable taints unless they say otherwise.
    pub default_toleration_seconds: (i64, i64),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("PKI: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::api::server::TlsError),
    #[error("tokens: {0}")]
    Tokens(#[from] crate::auth::authn::AuthnError),
    #[error("service account key: {0}")]
    ServiceAccountKey(#[from] crate::auth::serviceaccount::TokenError),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::api::status::ApiError),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running control plane.
pub struct Running {
    pub api: Arc<ApiServer>,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub pki: Arc<Pki>,
}

/// Starts serving; returns once the server is bootstrapped and ready.
pub async fn start(cfg: ControlConfig) -> Result<Running, StartError> {
    let pki = Arc::new(Pki::load_or_create(&cfg.data_dir.join("pki"))?);
    let listener = TcpListener::bind(cfg.bind)
        .await
        .map_err(|source| StartError::Listen {
            addr: cfg.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: cfg.bind,
        source,
    })?;

    let allocators = Allocators {
        service_cidr: cfg.service_cidr,
        node_port_first: cfg.node_ports.0,
        node_port_last: cfg.node_ports.1,
    };
    let mut names: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(cfg.extra_sans.iter().cloned());
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(h.trim().to_string());
    }
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        cfg.advertise,
        IpAddr::V4(allocators.api_service_ip()),
    ];
    if !addr.ip().is_unspecified() {
        ips.push(addr.ip());
    }
    ips.dedup();
    // The serving certificate names this server's addresses: one per advertise address.
    let serving_name = format!("apiserver-{}", cfg.advertise).replace([':', '.'], "-");
    let serving = pki.load_or_issue(&serving_name, |p| {
        p.issue_serving("kube-apiserver", &names, &ips)
    })?;
    let admin = pki.load_or_issue("admin", |p| {
        p.issue_client("kubernetes-admin", &["system:masters"])
    })?;
    let tls = crate::api::server::server_config(&serving, pki.ca_pem())?;

    let host = if addr.ip().is_unspecified() {
        cfg.advertise
    } else {
        addr.ip()
    };
    let server_url = format!("https://{}", SocketAddr::new(host, addr.port()));
    let kubeconfig = cfg
        .kubeconfig_out
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("admin.kubeconfig"));
    let text = pki::kubeconfig(&server_url, pki.ca_pem(), "kubernetes-admin", &admin);
    write_file(&kubeconfig, &text)?;

    let tokens = match &cfg.token_file {
        Some(p) => TokenFile::load(p)?,
        None => TokenFile::default(),
    };
    let sa_keys = TokenKeys::load_or_create(pki.dir())?;
    let metrics = Arc::new(Metrics::new());
    let storage: Arc<dyn Storage> = EtcdStorage::new(cfg.etcd_servers.clone(), metrics.clone())?;
    // Wait for etcd: a cluster brought up together may start its API server first.
    let mut waited = Duration::ZERO;
    loop {
        match storage.current_revision().await {
            Ok(_) => break,
            Err(e) if waited < Duration::from_secs(60) => {
                tracing::info!(error = %e, "waiting for etcd");
                tokio::time::sleep(Duration::from_millis(500)).await;
                waited += Duration::from_millis(500);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let admission = Admission {
        allocators,
        not_ready_toleration_seconds: cfg.default_toleration_seconds.0,
        unreachable_toleration_seconds: cfg.default_toleration_seconds.1,
        priority_classes: None,
    };
    let api = ApiServer::new(
        cfg.api.clone(),
        storage.clone(),
        metrics,
        tokens,
        sa_keys,
        admission,
    )
    .await?;
    let kubelet_client = pki.load_or_issue("apiserver-kubelet-client", |p| {
        p.issue_client("kube-apiserver-kubelet-client", &["system:masters"])
    })?;
    let _ = api.kubelet_tls.set(crate::api::server::client_config(
        &kubelet_client,
        pki.ca_pem(),
    )?);
    tokio::spawn(crate::api::server::serve(listener, tls, api.clone()));
    crate::bootstrap::run(&api, cfg.advertise, addr.port()).await?;
    if !cfg.compaction_interval.is_zero() {
        tokio::spawn(compactor(storage, cfg.compaction_interval));
    }
    api.set_ready();
    tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "API server ready");
    Ok(Running {
        api,
        addr,
        kubeconfig,
        pki,
    })
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), StartError> {
    let err = |source| StartError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(err)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

const COMPACT_KEY: &str = "/registry/compact_rev_key";

/// Compacts etcd to the revision seen one interval earlier, as kube-apiserver does; a marker key
/// makes sure that among several API servers only one compacts per interval.
async fn compactor(storage: Arc<dyn Storage>, interval: Duration) {
    let mut previous: Option<i64> = None;
    loop {
        tokio::time::sleep(interval).await;
        let Ok(now) = storage.current_revision().await else {
            continue;
        };
        if let Some(rev) = previous {
            let Ok((marker, _)) = storage.get(COMPACT_KEY).await else {
                continue;
            };
            let condition = match &marker {
                Some(kv) => Condition::ModRevision(COMPACT_KEY.into(), kv.mod_revision),
                None => Condition::Absent(COMPACT_KEY.into()),
            };
            let txn = Txn {
                conditions: vec![condition],
                ops: vec![Op::Put(COMPACT_KEY.into(), rev.to_string().into_bytes())],
            };
            if let Ok(TxnOutcome::Committed { .. }) = storage.txn(txn).await {
                match storage.compact(rev).await {
                    Ok(()) => tracing::info!(revision = rev, "compacted etcd"),
                    Err(e) => tracing::warn!(error = %e, "compaction failed"),
                }
            }
        }
        previous = Some(now);
    }
}
