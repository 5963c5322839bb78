//! Kubelet duties: node registration and heartbeat, pod workers over CRI, probes, volumes,
//! status, logs and exec, and the node's pod routes.

pub mod config;
pub mod cri;
pub mod env;
pub mod eviction;
pub mod logs;
pub mod network;
pub mod node;
pub mod pods;
pub mod probes;
pub mod server;
pub mod spec;
pub mod status;
pub mod volumes;
pub mod worker;

use config::KubeletConfig;
use futures::StreamExt;
use ipnetwork::Ipv4Network;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("container runtime: {0}")]
    Cri(#[from] cri::CriError),
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

fn tls_config(cfg: &KubeletConfig) -> Result<Arc<rustls::ServerConfig>, KubeletError> {
    let err = |e: &dyn std::fmt::Display| KubeletError::Tls(e.to_string());
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| KubeletError::Tls(format!("{}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut read(&cfg.tls_cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&e))?;
    let key = rustls_pemfile::private_key(&mut read(&cfg.tls_key)?.as_slice())
        .map_err(|e| err(&e))?
        .ok_or_else(|| KubeletError::Tls("no private key".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut read(&cfg.client_ca)?.as_slice()) {
        roots.add(c.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| err(&e))?;
    let mut c = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| err(&e))?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// Waits until the runtime answers CRI calls; false when `stop` fired first.
async fn wait_for_runtime(cri: &cri::Cri, stop: &CancellationToken) -> bool {
    loop {
        match cri.version().await {
            Ok(v) => {
                tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, "container runtime ready");
                return true;
            }
            Err(e) => {
                tracing::info!(error = %e, "waiting for the container runtime");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => return false,
                }
            }
        }
    }
}

/// Runs the node agent until `stop`.
pub async fn run(
    cfg: KubeletConfig,
    client: kube::Client,
    stop: CancellationToken,
) -> Result<(), KubeletError> {
    let cfg = Arc::new(cfg);
    let cri = cri::Cri::new(&cfg.cri_socket)?;
    // A runtime that is (re)starting is waited for, not fatal.
    if !wait_for_runtime(&cri, &stop).await {
        return Ok(());
    }
    let registered = node::register(&client, &cfg, &cri).await?;
    let node_uid = registered.metadata.uid.clone().unwrap_or_default();
    let alloc = node::allocatable(&cfg);
    let facts = env::NodeFacts {
        host_ip: cfg.node_ip.to_string(),
        allocatable_cpu_milli: alloc
            .get("cpu")
            .and_then(|c| spec::quantity(c, true))
            .unwrap_or(0),
        allocatable_memory: alloc
            .get("memory")
            .and_then(|m| spec::quantity(m, false))
            .unwrap_or(0),
    };
    let shared = Arc::new(worker::Shared {
        cfg: cfg.clone(),
        client: client.clone(),
        cri: cri.clone(),
        events: ketch_events::Events::new(client.clone(), "kubelet", &cfg.node_name),
        tokens: volumes::TokenCache::default(),
        node: RwLock::new(facts),
        evictions: Default::default(),
        evicted: tokio::sync::watch::channel(0).0,
    });
    let registry = pods::Registry::default();

    // Kubelet API.
    let addr = std::net::SocketAddr::new(cfg.node_ip, cfg.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| KubeletError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let server = Arc::new(server::Server {
        cri: cri.clone(),
        registry: registry.clone(),
    });
    tokio::spawn(server::serve(listener, tls_config(&cfg)?, server));

    // Network: wait for our podCIDR, write the CNI config, keep routes to the other nodes.
    let (net_ready_tx, mut net_ready) = tokio::sync::watch::channel(false);
    tokio::spawn(watch_nodes(
        client.clone(),
        cfg.clone(),
        net_ready_tx,
        stop.clone(),
    ));

    // Node-pressure eviction; a change of pressure is reported at once.
    let (pressure_tx, mut pressure) = tokio::sync::watch::channel(false);
    tokio::spawn(eviction::run(
        shared.clone(),
        registry.clone(),
        pressure_tx,
        stop.clone(),
    ));

    // Heartbeat: lease and status.
    {
        let (client, cfg, cri, stop) = (client.clone(), cfg.clone(), cri.clone(), stop.clone());
        tokio::spawn(async move {
            let mut lease = tokio::time::interval(cfg.lease_interval);
            let mut status = tokio::time::interval(cfg.status_interval);
            loop {
                tokio::select! {
                    _ = lease.tick() => {
                        if let Err(e) = node::renew_lease(&client, &cfg, &node_uid).await {
                            tracing::warn!(error = %e, "renewing the node lease failed");
                        }
                        continue;
                    }
                    _ = status.tick() => {}
                    // The network becoming ready is reported at once, not at the next tick.
                    Ok(()) = net_ready.changed() => {}
                    Ok(()) = pressure.changed() => {}
                    _ = stop.cancelled() => return,
                }
                let network = *net_ready.borrow_and_update();
                let ready = match (cri.version().await, network) {
                    (Err(e), _) => Err(format!("container runtime is down: {e}")),
                    (Ok(_), false) => Err("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized".into()),
                    (Ok(_), true) => Ok(()),
                };
                if let Err(e) = node::update_status(&client, &cfg, ready).await {
                    tracing::warn!(error = %e, "updating the node status failed");
                }
            }
        });
    }
    pods::run(shared, registry, stop).await;
    Ok(())
}

/// Removes every pod sandbox and container of this node's runtime, their volumes and cgroups
/// (the node is going away; nothing here asks the API).
pub async fn cleanup(cfg: &KubeletConfig) -> Result<(), KubeletError> {
    let cri = cri::Cri::new(&cfg.cri_socket)?;
    // A containerd revived for the clean-up serves gRPC before its CRI plugin is up.
    let never = CancellationToken::new();
    if tokio::time::timeout(Duration::from_secs(120), wait_for_runtime(&cri, &never))
        .await
        .is_err()
    {
        cri.version().await?;
    }
    for c in cri.list_containers(None).await? {
        let _ = cri.stop_container(&c.id, 0).await;
        if let Err(e) = cri.remove_container(&c.id).await {
            tracing::warn!(container = %c.id, error = %e, "removing a container failed");
        }
    }
    for s in cri.list_pod_sandboxes().await? {
        let _ = cri.stop_pod_sandbox(&s.id).await;
        if let Err(e) = cri.remove_pod_sandbox(&s.id).await {
            tracing::warn!(sandbox = %s.id, error = %e, "removing a sandbox failed");
        }
        if let Some(m) = s.metadata {
            volumes::teardown(cfg, &m.uid);
            worker::remove_pod_cgroups(cfg, &m.uid);
        }
    }
    // Pods whose sandbox was already gone may still have volume directories.
    if let Ok(pods) = std::fs::read_dir(cfg.root_dir.join("pods")) {
        for p in pods.flatten() {
            volumes::teardown(cfg, &p.file_name().to_string_lossy());
        }
    }
    Ok(())
}

/// Follows Nodes: our own podCIDR (→ CNI config) and everyone else's (→ routes).
async fn watch_nodes(
    client: kube::Client,
    cfg: Arc<KubeletConfig>,
    ready: tokio::sync::watch::Sender<bool>,
    stop: CancellationToken,
) {
    let api: Api<Node> = Api::all(client);
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut written: Option<String> = None;
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = stop.cancelled() => return,
        };
        match ev {
            Some(Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => {
                nodes.insert(n.metadata.name.clone().unwrap_or_default(), n);
            }
            Some(Ok(watcher::Event::Delete(n))) => {
                nodes.remove(n.metadata.name.as_deref().unwrap_or_default());
            }
            Some(Ok(watcher::Event::Init)) => nodes.clear(),
            Some(Ok(watcher::Event::InitDone)) => {}
            Some(Err(e)) => {
                tracing::warn!(error = %e, "node watch failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            None => return,
        }
        if let Some(cidr) = nodes
            .get(&cfg.node_name)
            .and_then(|n| n.spec.as_ref()?.pod_cidr.clone())
            && written.as_deref() != Some(cidr.as_str())
        {
            match network::write_cni_config(&cfg.cni_conf_dir, &cidr, &cfg.cni_data_dir) {
                Ok(()) => {
                    tracing::info!(pod_cidr = %cidr, "pod network configured");
                    written = Some(cidr);
                    ready.send_replace(true);
                }
                Err(e) => tracing::warn!(error = %e, "writing the CNI config failed"),
            }
        }
        let mut want: BTreeMap<Ipv4Network, Ipv4Addr> = BTreeMap::new();
        for (name, n) in &nodes {
            if *name == cfg.node_name {
                continue;
            }
            let cidr = n
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.as_ref())
                .and_then(|c| c.parse().ok());
            let ip = n
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                .and_then(|a| a.address.parse().ok());
            if let (Some(c), Some(ip)) = (cidr, ip) {
                want.insert(c, ip);
            }
        }
        if let Err(e) = network::sync_routes(&want).await {
            tracing::warn!(error = %e, "programming routes to other nodes failed");
        }
    }
}
