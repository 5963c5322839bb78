//! `ketch-node`: the node agent (the kubelet's duties on containerd).

use anyhow::{Context, Result};
use clap::Parser;
use ketch_node::kubelet::{self, config::KubeletConfig};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(name = "ketch-node", version, about = "Ketch node agent")]
struct Args {
    /// The Node's name.
    #[arg(long)]
    node_name: String,
    /// Stop and remove every pod of this node's runtime, unmount their volumes, remove their
    /// cgroups, then exit (what `ketch down` runs before stopping containerd).
    #[arg(long)]
    cleanup: bool,
    /// The node's address (InternalIP; the kubelet API listens here).
    #[arg(long, required_unless_present_any = ["cleanup", "show_bpf"])]
    node_ip: Option<IpAddr>,
    /// Kubeconfig with this node's credentials.
    #[arg(long, required_unless_present_any = ["cleanup", "show_bpf"])]
    kubeconfig: Option<PathBuf>,
    /// containerd's socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    container_runtime_endpoint: PathBuf,
    /// Pods' volumes, logs and other state.
    #[arg(long, default_value = "/var/lib/ketch/node")]
    root_dir: PathBuf,
    #[arg(long, default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// ketch-cni's address allocations.
    #[arg(long)]
    cni_data_dir: Option<PathBuf>,
    /// Parent cgroup of every pod (default `/ketch-<node name>`).
    #[arg(long)]
    cgroup_parent: Option<String>,
    #[arg(long, default_value_t = 10250)]
    port: u16,
    #[arg(long, required_unless_present_any = ["cleanup", "show_bpf"])]
    tls_cert_file: Option<PathBuf>,
    #[arg(long, required_unless_present_any = ["cleanup", "show_bpf"])]
    tls_private_key_file: Option<PathBuf>,
    /// CA of the client certificates the kubelet API accepts (the cluster CA).
    #[arg(long, required_unless_present_any = ["cleanup", "show_bpf"])]
    client_ca_file: Option<PathBuf>,
    /// Nameservers for pods with dnsPolicy ClusterFirst (comma-separated).
    #[arg(long, value_delimiter = ',')]
    cluster_dns: Vec<IpAddr>,
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    #[arg(long, default_value = "localhost/pause:3.10")]
    pod_infra_container_image: String,
    /// Extra node labels, `k=v` comma-separated.
    #[arg(long, value_delimiter = ',')]
    node_labels: Vec<String>,
    /// Seconds between lease renewals.
    #[arg(long, default_value_t = 10)]
    lease_interval: u64,
    /// Hard eviction thresholds, as the kubelet's flag: `memory.available<100Mi,…` (also
    /// `nodefs.available<10%`); empty for none.
    #[arg(long, default_value = "memory.available<100Mi,nodefs.available<10%")]
    eviction_hard: String,
    /// Seconds between eviction checks (the kubelet's evictionMonitoringPeriod).
    #[arg(long, default_value_t = 10)]
    eviction_monitoring_period: u64,
    /// The eBPF object (`cargo xtask build-ebpf`); default: $KETCH_EBPF_OBJECT, else
    /// `ketch-ebpf.o` next to this binary's directory (the cargo target dir).
    #[arg(long)]
    bpf_object: Option<PathBuf>,
    /// Interface NodePort traffic arrives on (default: the one holding --node-ip).
    #[arg(long)]
    nodeport_interface: Option<String>,
    /// Print what the kernel holds (`services`, `backends` or `conntrack`) from the maps pinned
    /// under --root-dir, then exit (what `ketch bpf` runs).
    #[arg(long, value_parser = ["services", "backends", "conntrack"])]
    show_bpf: Option<String>,
    /// Port of the cluster DNS served on --node-ip (UDP and TCP); 0: none.
    #[arg(long, default_value_t = 53)]
    dns_port: u16,
    /// Where `/metrics` (Prometheus text) is served over plain HTTP, as kube-proxy's flag;
    /// empty: nowhere.
    #[arg(long, default_value = "127.0.0.1:10249")]
    metrics_bind_address: String,
    /// Entries of the eBPF maps, `services=65536,backends=65536,conntrack=131072,affinity=65536,
    /// sock-revnat=65536` (any subset). Applies when a map is created: pinned maps keep theirs.
    #[arg(long, default_value = "")]
    bpf_map_sizes: ketch_node::dataplane::MapSizes,
}

/// Service names by frontend, written by the proxy for `--show-bpf`.
const NAMES_FILE: &str = "bpf-names.json";

/// Prints the pinned maps as a person reads them.
fn show_bpf(root: &std::path::Path, what: &str) -> Result<()> {
    use ketch_node::dataplane::{Pinned, ServiceKind};
    let pinned =
        Pinned::open(&root.join("bpf")).context("open the pinned maps (is the node up?)")?;
    let names: std::collections::BTreeMap<String, String> = std::fs::read(root.join(NAMES_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let label = |f: &ketch_node::dataplane::Frontend| ketch_node::proxy::frontend_label(f);
    match what {
        "services" => {
            println!(
                "{:<24} {:<10} {:<28} BACKENDS",
                "FRONTEND", "KIND", "SERVICE"
            );
            for s in pinned.services()? {
                let kind = match s.kind {
                    ServiceKind::ClusterIp => "ClusterIP",
                    ServiceKind::NodePort => "NodePort",
                    ServiceKind::ExternalIp => "External",
                };
                let backends: Vec<String> = s
                    .backends
                    .iter()
                    .map(|b| {
                        format!(
                            "{}:{}{}",
                            b.addr,
                            b.port,
                            if b.local { " (local)" } else { "" }
                        )
                    })
                    .collect();
                let l = label(&s.frontend);
                let name = names.get(&l).map(String::as_str).unwrap_or("?");
                let shown = if backends.is_empty() {
                    "(none: refused)".to_string()
                } else {
                    backends.join(", ")
                };
                println!("{l:<24} {kind:<10} {name:<28} {shown}");
            }
        }
        "backends" => {
            println!("{:<6} {:<22} LOCAL", "ID", "ADDRESS");
            for b in pinned.backends()? {
                println!(
                    "{:<6} {:<22} {}",
                    b.id,
                    format!("{}:{}", b.addr.addr, b.addr.port),
                    b.addr.local
                );
            }
        }
        _ => {
            println!(
                "{:<5} {:<22} {:<22} {:<22} {:<22} {:<8} FLAGS",
                "PROTO", "SOURCE", "DESTINATION", "NAT SOURCE", "NAT DESTINATION", "SERVICE"
            );
            for c in pinned.conntrack()? {
                let proto = c
                    .proto
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_else(|| "?".into());
                let mut dir = if c.is_reply() { "reply" } else { "forward" }.to_string();
                if c.flags & ketch_ebpf_common::ct_flags::CLOSING != 0 {
                    dir.push_str(",closing");
                }
                println!(
                    "{proto:<5} {:<22} {:<22} {:<22} {:<22} {:<8} {dir}",
                    c.src.to_string(),
                    c.dst.to_string(),
                    c.nat_src.to_string(),
                    c.nat_dst.to_string(),
                    c.service_id
                );
            }
        }
    }
    Ok(())
}

/// The interface that holds `ip`.
fn interface_of(ip: IpAddr) -> Option<String> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        let addr = a.address?;
        let v4 = addr.as_sockaddr_in()?.ip();
        (IpAddr::V4(v4) == ip).then_some(a.interface_name)
    })
}

/// Loads and attaches the Service dataplane: bpffs under the root dir, NodePort on the node's
/// interface, socket load balancing on the node's cgroup v2 (which the agent joins, so that
/// it and what it starts are translated like pods).
fn open_dataplane(
    interface: Option<String>,
    cfg: &KubeletConfig,
    object: PathBuf,
    sizes: ketch_node::dataplane::MapSizes,
) -> Result<ketch_node::dataplane::Dataplane> {
    use ketch_node::dataplane::{Dataplane, DataplaneConfig, cgroup};
    let node_ip = match cfg.node_ip {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => anyhow::bail!("--node-ip: the dataplane is IPv4 only"),
    };
    let mut dc = DataplaneConfig::new(cfg.root_dir.join("bpf"), object);
    dc.sizes = sizes;
    dc.interface = Some(
        interface
            .or_else(|| interface_of(cfg.node_ip))
            .with_context(|| {
                format!("no interface holds --node-ip {node_ip}; pass --nodeport-interface")
            })?,
    );
    let cg = cgroup::node_cgroup(&cfg.cgroup_parent).context("no cgroup v2 mount on this host")?;
    cgroup::join_node_cgroup(&cg, "ketch-node")?;
    dc.cgroup = Some(cg);
    let mut dp = Dataplane::open(dc)
        .context("load the eBPF dataplane (cargo xtask build-ebpf builds it)")?;
    dp.set_node_addresses(&[node_ip], None)?;
    Ok(dp)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ketch-node: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .init();
    let labels = args
        .node_labels
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--node-labels {l:?}: expected k=v"))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpf_object = args
        .bpf_object
        .clone()
        .unwrap_or_else(ketch_node::dataplane::default_object_path);
    std::fs::create_dir_all(&args.root_dir)
        .with_context(|| format!("create {}", args.root_dir.display()))?;
    let cfg = KubeletConfig {
        cni_data_dir: args
            .cni_data_dir
            .clone()
            .unwrap_or_else(|| args.root_dir.join("ipam")),
        cgroup_parent: args
            .cgroup_parent
            .clone()
            .unwrap_or_else(|| format!("/ketch-{}", args.node_name)),
        node_name: args.node_name.clone(),
        node_ip: args.node_ip.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        cri_socket: args.container_runtime_endpoint,
        root_dir: args.root_dir,
        cni_conf_dir: args.cni_conf_dir,
        port: args.port,
        tls_cert: args.tls_cert_file.clone().unwrap_or_default(),
        tls_key: args.tls_private_key_file.clone().unwrap_or_default(),
        client_ca: args.client_ca_file.clone().unwrap_or_default(),
        cluster_dns: args.cluster_dns,
        cluster_domain: args.cluster_domain,
        lease_interval: Duration::from_secs(args.lease_interval.max(1)),
        status_interval: Duration::from_secs(10),
        pause_image: args.pod_infra_container_image,
        labels,
        eviction_hard: kubelet::eviction::parse_thresholds(&args.eviction_hard)
            .context("--eviction-hard")?,
        eviction_period: Duration::from_secs(args.eviction_monitoring_period.max(1)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.cleanup {
        return rt.block_on(kubelet::cleanup(&cfg)).context("cleanup");
    }
    if let Some(what) = &args.show_bpf {
        return show_bpf(&cfg.root_dir, what);
    }
    let kubeconfig = args
        .kubeconfig
        .clone()
        .context("--kubeconfig is required")?;
    let dns_port = args.dns_port;
    let metrics_addr: Option<std::net::SocketAddr> = match args.metrics_bind_address.as_str() {
        "" => None,
        a => Some(
            a.parse()
                .with_context(|| format!("--metrics-bind-address {a}: not an address:port"))?,
        ),
    };
    let metrics = std::sync::Arc::new(ketch_node::metrics::Metrics::new(cfg.root_dir.join("bpf")));
    let dataplane = open_dataplane(
        args.nodeport_interface.clone(),
        &cfg,
        bpf_object,
        args.bpf_map_sizes.clone(),
    )?;
    rt.block_on(async move {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)
            .with_context(|| format!("read {}", kubeconfig.display()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = kube::Client::try_from(config)?;
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            if let Ok(mut term) = term {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            s.cancel();
        });
        if dns_port != 0 {
            let addr = std::net::SocketAddr::new(cfg.node_ip, dns_port);
            let (client, domain, stop) = (client.clone(), cfg.cluster_domain.clone(), stop.clone());
            tokio::spawn(async move {
                if let Err(e) = ketch_node::dns::run(client, addr, domain, stop).await {
                    tracing::error!(error = %e, "cluster DNS stopped");
                }
            });
        }
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen on {addr} for metrics"))?;
            tokio::spawn(ketch_node::metrics::serve(listener, metrics.clone()));
        }
        tokio::spawn(ketch_node::proxy::run_with_metrics(
            client.clone(),
            dataplane,
            cfg.node_name.clone(),
            cfg.root_dir.join(NAMES_FILE),
            metrics.proxy.clone(),
            stop.clone(),
        ));
        kubelet::run(cfg, client, stop)
            .await
            .context("node agent")?;
        Ok(())
    })
}
