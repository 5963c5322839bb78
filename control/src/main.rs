//! `ketch-control`: the Kubernetes API server (scheduler and controllers join in later).

use anyhow::{Context, Result, bail};
use clap::Parser;
use ketch_control::api::ApiConfig;
use ketch_control::components::{Components, PkiClients};
use ketch_control::controllers::{ClientFactory, ControllerConfig, SharedClient};
use ketch_control::scheduler::SchedulerConfig;
use ketch_control::server::{self, ControlConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

// Every request builds and drops JSON trees: mimalloc's per-thread free lists make that a
// fraction of what glibc's malloc costs under two busy threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "ketch-control",
    version,
    about = "Ketch control plane: a Kubernetes API server on etcd"
)]
struct Args {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Port to serve HTTPS on.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Address other components use to reach this server (in its certificate and the
    /// `kubernetes` Service).
    #[arg(long, default_value = "127.0.0.1")]
    advertise_address: IpAddr,
    /// etcd endpoints, comma-separated.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Directory for the PKI (CA, serving and admin certificates).
    #[arg(long, default_value = "/var/lib/ketch/control")]
    data_dir: PathBuf,
    /// Where to write the admin kubeconfig (default: <data-dir>/admin.kubeconfig).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Static bearer tokens: CSV lines `token,user,uid[,"group1,group2"]`.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// ClusterIP range of Services.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// NodePort range of Services, `first-last`.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// Events kept per resource in the watch cache.
    #[arg(long, default_value_t = 2048)]
    watch_cache_size: usize,
    /// Seconds between etcd compactions (0 disables).
    #[arg(long, default_value_t = 300)]
    etcd_compaction_interval: u64,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    watch_bookmark_interval: u64,
    /// Extra DNS names for the serving certificate.
    #[arg(long, value_delimiter = ',')]
    tls_san: Vec<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
    /// What this process runs: apiserver, scheduler, controllers (comma-separated) or all.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    components: Vec<String>,
    /// Kubeconfig for the scheduler and controllers when the API server runs elsewhere.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Controllers to run: `*` for all, names, `-name` to leave one out.
    #[arg(long, default_value = "*", value_delimiter = ',')]
    controllers: Vec<String>,
    /// The pod network; each node gets a `--node-cidr-mask-size` slice of it as its podCIDR.
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    #[arg(long, default_value_t = 24)]
    node_cidr_mask_size: u8,
    /// Seconds a pod tolerates a not-ready node before eviction (unless it says otherwise).
    #[arg(long, default_value_t = 300)]
    default_not_ready_toleration_seconds: i64,
    /// Seconds a pod tolerates an unreachable node before eviction (unless it says otherwise).
    #[arg(long, default_value_t = 300)]
    default_unreachable_toleration_seconds: i64,
    /// Seconds without a node lease renewal before the node is marked unknown.
    #[arg(long, default_value_t = 40)]
    node_monitor_grace_period: u64,
    /// Most endpoints the EndpointSlice controller puts in one slice (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max_endpoints_per_slice: u16,
    /// The cluster CA published to every namespace as ConfigMap `kube-root-ca.crt` (default:
    /// this server's CA, or the CA of `--kubeconfig`).
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ketch-control: error: {e:#}");
        std::process::exit(1);
    }
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let (a, b) = s
        .split_once('-')
        .with_context(|| format!("--service-node-port-range {s:?}: expected first-last"))?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    if a == 0 || a > b {
        bail!("--service-node-port-range {s:?}: first must be at least 1 and not above last");
    }
    Ok((a, b))
}

fn run() -> Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_format == "json" {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .init();
    }
    let service_cidr = args.service_cluster_ip_range.parse().with_context(|| {
        format!(
            "--service-cluster-ip-range {:?}",
            args.service_cluster_ip_range
        )
    })?;
    let cfg = ControlConfig {
        bind: SocketAddr::new(args.bind_address, args.secure_port),
        advertise: args.advertise_address,
        etcd_servers: args.etcd_servers,
        data_dir: args.data_dir,
        kubeconfig_out: args.kubeconfig_out,
        token_file: args.token_auth_file,
        service_cidr,
        node_ports: parse_port_range(&args.service_node_port_range)?,
        api: ApiConfig {
            watch_cache_size: args.watch_cache_size,
            bookmark_interval: Duration::from_secs(args.watch_bookmark_interval.max(1)),
            ..ApiConfig::default()
        },
        compaction_interval: Duration::from_secs(args.etcd_compaction_interval),
        extra_sans: args.tls_san,
        default_toleration_seconds: (
            args.default_not_ready_toleration_seconds,
            args.default_unreachable_toleration_seconds,
        ),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let components = Components::parse(&args.components).map_err(anyhow::Error::msg)?;
    let identity = ketch_control::components::identity();
    tracing::info!(%identity, ?components, "starting");
    let cluster_cidr = args
        .cluster_cidr
        .parse()
        .with_context(|| format!("--cluster-cidr {:?}", args.cluster_cidr))?;
    let mut controller_config = ControllerConfig {
        enabled: args.controllers.clone(),
        cluster_cidr: Some(cluster_cidr),
        node_cidr_mask_size: args.node_cidr_mask_size,
        node_monitor_grace_period: Duration::from_secs(args.node_monitor_grace_period),
        instance: identity.clone(),
        max_endpoints_per_slice: usize::from(args.max_endpoints_per_slice),
        root_ca: match &args.root_ca_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("--root-ca-file {}", p.display()))?,
            ),
            None => None,
        },
    };
    let scheduler_config = SchedulerConfig {
        instance: identity,
        ..SchedulerConfig::default()
    };
    let kubeconfig = args.kubeconfig.clone();
    rt.block_on(async move {
        let clients: Arc<dyn ClientFactory> = if components.apiserver {
            let running = server::start(cfg).await.context("start the API server")?;
            tracing::info!(addr = %running.addr, "serving");
            let host = if running.addr.ip().is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                running.addr.ip()
            };
            let url = format!("https://{}", SocketAddr::new(host, running.addr.port()));
            if controller_config.root_ca.is_none() {
                controller_config.root_ca = Some(running.pki.ca_pem().to_string());
            }
            Arc::new(PkiClients::new(running.pki.clone(), url))
        } else {
            let path = kubeconfig
                .context("--kubeconfig is required when this process runs no API server")?;
            if controller_config.root_ca.is_none() {
                controller_config.root_ca = ketch_control::components::ca_from_kubeconfig(&path);
            }
            Arc::new(SharedClient(
                ketch_control::components::client_from_kubeconfig(&path).await?,
            ))
        };
        let stop = CancellationToken::new();
        let tasks = ketch_control::components::start(
            components,
            clients,
            scheduler_config,
            controller_config,
            stop.clone(),
        )?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        stop.cancel();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        Ok(())
    })
}
