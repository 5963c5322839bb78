//! Part (2): connection rate and request-response latency between "pods" (network namespaces)
//! through a ClusterIP translated by the socket programs, through the pod IP directly (the
//! limit), and through kube-proxy-style iptables DNAT with the same number of Services.
//!
//! Topology, all of it made by this run and removed at its end:
//!
//! ```text
//!   kb-<pid>-cli  10.250.1.1 ─veth─ 10.250.1.2 ┐
//!   (client cgroup with the socket programs)   │ kb-<pid>-srv: the server, :8080 keep-alive,
//!   kb-<pid>-ipl  10.250.2.1 ─veth─ 10.250.2.2 ┤ :8081 one request per connection
//!   (iptables-legacy nat rules)                │
//!   kb-<pid>-ipn  10.250.3.1 ─veth─ 10.250.3.2 ┘
//!   (iptables-nft nat rules)
//! ```
//!
//! The dataplane holds N ClusterIP Services (the measured one among them) and is attached to
//! the client cgroup; each iptables namespace holds the same N Services as kube-proxy writes
//! them, the measured one last in `KUBE-SERVICES`. Clients are child processes of the bench
//! (joined to the cgroup where it applies); targets are measured interleaved, round by round.

use super::iptables::{self, Flavor, SvcPort};
use super::sys::{self, Bpffs, Cgroup, Netns};
use super::traffic::{self, CRR_PORT, RR_PORT, Sample};
use anyhow::{Context, Result, bail};
use ketch_ebpf_common::stats;
use ketch_node::dataplane::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct SocketArgs {
    /// Part (2): Services in the maps and in the iptables rules.
    #[arg(long, default_value_t = 10_000)]
    pub socket_services: u32,
    /// Part (2): rounds (each measures every target once, interleaved).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Part (2): RR round trips per sample.
    #[arg(long, default_value_t = 20_000)]
    pub rr_count: usize,
    /// Part (2): seconds of CRR per sample.
    #[arg(long, default_value_t = 1.0)]
    pub crr_secs: f64,
    /// Part (2): request and response size, bytes.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Part (2): iptables baselines to measure (legacy, nft).
    #[arg(long, value_delimiter = ',', default_value = "legacy,nft")]
    pub iptables: Vec<String>,
}

/// The pod network of the iptables rules' `! -s <cluster cidr>` masquerade test: the clients
/// are inside it, as pods are, so nothing is masqueraded.
const CLUSTER_CIDR: &str = "10.250.0.0/16";

/// What part (3) reuses: iptables timings from this run, per flavor.
#[derive(Debug, Clone)]
pub struct IptablesTimes {
    pub flavor: Flavor,
    pub services: u32,
    pub rules: usize,
    pub full_restore: Duration,
    /// Medians of a few one-endpoint changes (`--noflush`, only the changed chains).
    pub one_change: Duration,
}

#[derive(Debug, Clone)]
struct Target {
    label: String,
    netns: PathBuf,
    cgroup: Option<PathBuf>,
    addr: Ipv4Addr,
    /// Ports for RR and CRR.
    ports: (u16, u16),
    rr: Vec<Sample>,
    crr: Vec<Sample>,
}

/// The measured Service's ClusterIP (the last one: 10.96.0.0/12 filled from the bottom).
fn vip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 1)) + i)
}

/// N Service ports: N-1 fillers with 1-3 endpoints in 10.244/16 (never reached), then the
/// measured Service with its two ports (RR, CRR) to `server`.
fn services(n: u32, server: Ipv4Addr) -> Vec<SvcPort> {
    let mut out: Vec<SvcPort> = (0..n.saturating_sub(1))
        .map(|i| {
            let eps = (i % 3) as u8 + 1;
            SvcPort {
                name: format!("bench/svc-{i}:http"),
                vip: vip(i),
                port: 80,
                endpoints: (0..eps)
                    .map(|e| {
                        let [_, _, a, b] = (i * 3 + u32::from(e)).to_be_bytes();
                        SocketAddrV4::new(Ipv4Addr::new(10, 244, a, b), 8080)
                    })
                    .collect(),
            }
        })
        .collect();
    let measured = vip(n.saturating_sub(1));
    for (name, port, tport) in [("rr", 80, RR_PORT), ("crr", 81, CRR_PORT)] {
        out.push(SvcPort {
            name: format!("bench/measured:{name}"),
            vip: measured,
            port,
            endpoints: vec![SocketAddrV4::new(server, tport)],
        });
    }
    out
}

fn to_service(p: &SvcPort) -> Service {
    Service {
        frontend: Frontend {
            addr: p.vip,
            port: p.port,
            proto: Protocol::Tcp,
        },
        kind: ServiceKind::ClusterIp,
        backends: p
            .endpoints
            .iter()
            .map(|e| BackendAddr {
                addr: *e.ip(),
                port: e.port(),
                local: false,
            })
            .collect(),
        affinity_timeout: None,
        external_traffic_local: false,
        internal_traffic_local: false,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn client(t: &Target, mode: &str, a: &SocketArgs) -> Result<Sample> {
    let exe = std::env::current_exe()?;
    let port = if mode == "rr" { t.ports.0 } else { t.ports.1 };
    let mut cmd = Command::new(exe);
    cmd.arg("client")
        .arg("--netns")
        .arg(&t.netns)
        .args(["--mode", mode])
        .args(["--target", &SocketAddrV4::new(t.addr, port).to_string()])
        .args(["--size", &a.size.to_string()])
        .args(["--count", &a.rr_count.to_string()])
        .args(["--secs", &a.crr_secs.to_string()]);
    if let Some(cg) = &t.cgroup {
        cmd.arg("--cgroup").arg(cg);
    }
    let out = sys::run_child(&mut cmd)?;
    if !out.status.success() {
        bail!(
            "{} {mode} client failed ({}): {}",
            t.label,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Sample::parse(stdout.lines().last().unwrap_or(""))
}

/// Runs part (2) and prints its tables; returns the iptables timings for part (3).
pub fn run(a: &SocketArgs, object: &Path) -> Result<Vec<IptablesTimes>> {
    let flavors: Vec<Flavor> = a
        .iptables
        .iter()
        .map(|s| Flavor::parse(s))
        .collect::<Result<_>>()?;
    let tag = std::process::id();
    let n = a.socket_services.max(1);
    println!(
        "\n## (2) pod to pod: ClusterIP (eBPF socket LB) vs pod IP vs iptables DNAT, {n} Services"
    );
    println!("setting up namespaces, cgroup, dataplane …");
    let srv = Netns::new(&format!("kb-{tag}-srv"))?;
    // tcp_max_tw_buckets: the server closes first, so CRR leaves its TIME_WAIT sockets here;
    // room for all of them keeps the kernel from logging overflows.
    srv.sysctl("net.ipv4.tcp_max_tw_buckets", "1048576")?;
    let cli = Netns::new(&format!("kb-{tag}-cli"))?;
    cli.veth("kbc0", "10.250.1.1/24", &srv, "kbs1", "10.250.1.2/24")?;
    cli.ip(&["route", "add", "default", "via", "10.250.1.2"])?;
    let mut ipt_ns = Vec::new();
    for (k, f) in flavors.iter().enumerate() {
        let i = k + 2;
        let short = match f {
            Flavor::Legacy => "ipl",
            Flavor::Nft => "ipn",
        };
        let ns = Netns::new(&format!("kb-{tag}-{short}"))?;
        ns.veth(
            "kbi0",
            &format!("10.250.{i}.1/24"),
            &srv,
            &format!("kbs{i}"),
            &format!("10.250.{i}.2/24"),
        )?;
        // Without a route to the ClusterIP range a connect fails before netfilter sees it
        // (kube-proxy hosts have a default route).
        ns.ip(&["route", "add", "default", "via", &format!("10.250.{i}.2")])?;
        ipt_ns.push((*f, ns, Ipv4Addr::new(10, 250, i as u8, 2)));
    }
    let cg = Cgroup::new(&format!("ketch-packet-bench-{tag}"))?;
    let bpf = Bpffs::new()?;
    let mut cfg = DataplaneConfig::new(bpf.path(), object);
    cfg.cgroup = Some(cg.0.clone());
    // A frontend takes a master entry and one per backend (fillers have up to 3).
    cfg.sizes = MapSizes {
        services: 4 * n + 1024,
        backends: 3 * n + 1024,
        conntrack: 1024,
        affinity: 1024,
        sock_revnat: 65536,
    };
    let mut dp = Dataplane::open(cfg).context("open dataplane")?;
    let server = Ipv4Addr::new(10, 250, 1, 2);
    let ports = services(n, server);
    let started = std::time::Instant::now();
    for p in &ports {
        dp.upsert_service(&to_service(p))?;
    }
    println!(
        "dataplane: {} frontends written in {:.2} s",
        ports.len(),
        started.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for (f, ns, backend) in &ipt_ns {
        sys::check_stop()?;
        let ports = services(n, *backend);
        let rules = iptables::ruleset(&ports, CLUSTER_CIDR);
        let count = rules.lines().filter(|l| l.starts_with("-A ")).count();
        println!(
            "iptables-{}: restoring {count} nat rules ({} Services) …",
            f.name(),
            n
        );
        let full = iptables::restore(ns, *f, &rules, false)?;
        println!(
            "iptables-{}: restored in {:.2} s",
            f.name(),
            full.as_secs_f64()
        );
        // One endpoint of a Service in the middle changes, and back, a few times.
        let mid = ports[ports.len() / 2].clone();
        let mut moved = mid.clone();
        moved.endpoints[0] = SocketAddrV4::new(Ipv4Addr::new(10, 245, 0, 1), 8080);
        let mut changes = Vec::new();
        for k in 0..6 {
            let (from, to) = if k % 2 == 0 {
                (&mid, &moved)
            } else {
                (&moved, &mid)
            };
            let d = iptables::endpoint_change(from, to, CLUSTER_CIDR);
            changes.push(iptables::restore(ns, *f, &d, true)?.as_secs_f64());
        }
        times.push(IptablesTimes {
            flavor: *f,
            services: n,
            rules: count,
            full_restore: full,
            one_change: Duration::from_secs_f64(median(changes)),
        });
    }
    traffic::start_server(srv.path(), a.size)?;

    let measured = vip(n - 1);
    let mut targets = vec![
        Target {
            label: "pod IP (direct)".into(),
            netns: cli.path(),
            cgroup: Some(cg.0.clone()),
            addr: server,
            ports: (RR_PORT, CRR_PORT),
            rr: vec![],
            crr: vec![],
        },
        Target {
            label: "ClusterIP, eBPF socket LB".into(),
            netns: cli.path(),
            cgroup: Some(cg.0.clone()),
            addr: measured,
            ports: (80, 81),
            rr: vec![],
            crr: vec![],
        },
    ];
    for (f, ns, _) in &ipt_ns {
        targets.push(Target {
            label: format!("ClusterIP, iptables-{} DNAT (last of {n})", f.name()),
            netns: ns.path(),
            cgroup: None,
            addr: measured,
            ports: (80, 81),
            rr: vec![],
            crr: vec![],
        });
    }
    let translated_before = dp.stat(stats::SOCK_TRANSLATED)?;
    for r in 0..a.rounds {
        for t in &mut targets {
            let rr = client(t, "rr", a)?;
            let crr = client(t, "crr", a)?;
            println!(
                "round {}/{}: {:<44} RR p50 {:>6.1} µs p99 {:>6.1} µs | CRR {:>7.0} conn/s",
                r + 1,
                a.rounds,
                t.label,
                rr.p50_us,
                rr.p99_us,
                crr.rate
            );
            t.rr.push(rr);
            t.crr.push(crr);
        }
    }
    let translated = dp.stat(stats::SOCK_TRANSLATED)? - translated_before;
    report(&targets, translated);
    drop(dp);
    Ok(times)
}

fn report(targets: &[Target], translated: u64) {
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    println!();
    println!("| target | CRR conn/s | CRR p50 µs | RR p50 µs | RR p99 µs | RR round trips/s |");
    println!("|---|---|---|---|---|---|");
    for t in targets {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} |",
            t.label,
            med(&t.crr, |s| s.rate),
            med(&t.crr, |s| s.p50_us),
            med(&t.rr, |s| s.p50_us),
            med(&t.rr, |s| s.p99_us),
            med(&t.rr, |s| s.rate),
        );
    }
    // Ratios of medians, and the range of the same ratio taken round by round (the rounds
    // interleave the targets, so a round's ratio shares that moment's machine noise).
    let ratio = |a: &Target, b: &Target, f: fn(&Sample) -> f64, crr: bool| {
        let (xa, xb) = if crr {
            (&a.crr, &b.crr)
        } else {
            (&a.rr, &b.rr)
        };
        let whole = med(xa, f) / med(xb, f);
        let per: Vec<f64> = xa.iter().zip(xb).map(|(x, y)| f(x) / f(y)).collect();
        let lo = per.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{whole:.3} ({lo:.2}–{hi:.2})")
    };
    println!();
    println!(
        "| ratio (median; per-round range) | CRR conn/s | CRR p50 latency | RR p50 latency | RR p99 latency |"
    );
    println!("|---|---|---|---|---|");
    let cip = &targets[1];
    for other in std::iter::once(&targets[0]).chain(&targets[2..]) {
        println!(
            "| ClusterIP eBPF / {} | {} | {} | {} | {} |",
            other.label,
            ratio(cip, other, |s| s.rate, true),
            ratio(cip, other, |s| s.p50_us, true),
            ratio(cip, other, |s| s.p50_us, false),
            ratio(cip, other, |s| s.p99_us, false),
        );
    }
    println!();
    println!(
        "socket LB translated {translated} connects during the rounds (ClusterIP RR + CRR incl. warmup)"
    );
}
