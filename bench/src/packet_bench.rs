//! `packet-bench`: the packet path of the eBPF Service load balancer, in three parts run in
//! sequence (`--parts` picks some). Needs root and `<target dir>/ketch-ebpf.o`
//! (`cargo xtask build-ebpf`).
//!
//! 1. `tc`: per-packet cost of the NodePort tc program (`ketch_tc_ingress`) with 1, 1k, 10k
//!    and 100k frontends in the maps, through `BPF_PROG_TEST_RUN` (libbpf-sys's
//!    `bpf_prog_test_run_opts`, `repeat` = N: the kernel reports the mean ns per run). Each
//!    cell is the median of several runs.
//! 2. `socket`: connection rate and request-response latency between network namespaces
//!    through a ClusterIP (socket programs), the pod IP directly, and kube-proxy-style
//!    iptables DNAT with 10k Services (see `packet/socket.rs`).
//! 3. `programming`: time for the agent's proxy loop to program 10k Services from the API
//!    into fresh maps, and to apply one endpoint change (see `packet/programming.rs`).
//!
//! Paths measured in part 1 (the frontend lookup is a hash lookup, so all three should stay
//! flat):
//! - `established`: a packet of a NodePort connection already in conntrack (lookup + DNAT
//!   rewrite with incremental checksums);
//! - `miss`: a packet to a node port that is no frontend (exact + NodePort wildcard lookups,
//!   passed on untouched);
//! - `no-backend`: a packet to a NodePort frontend without backends (lookups, counted, passed on to the stack, which refuses it).
//!
//! Floor: `empty`, a two-instruction tc program (`r0 = -1; exit`) run the same way: what
//! BPF_PROG_TEST_RUN itself costs per repeat on this machine.

#[path = "packet/iptables.rs"]
mod iptables;
#[path = "packet/programming.rs"]
mod programming;
#[path = "packet/socket.rs"]
mod socket;
#[path = "packet/sys.rs"]
mod sys;
#[path = "packet/traffic.rs"]
mod traffic;

use anyhow::{Context, Result, bail};
use aya::programs::SchedClassifier;
use clap::{Parser, Subcommand};
use ketch_ebpf_common::programs;
use ketch_node::dataplane::packet::frame;
use ketch_node::dataplane::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd};

#[derive(Parser)]
#[command(
    name = "packet-bench",
    about = "Packet path of the eBPF Service load balancer: NodePort per-packet cost, \
             pod-to-pod through a ClusterIP vs pod IP vs iptables, map programming time"
)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Sub>,
    /// Parts to run, in this order: tc (1), socket (2), programming (3).
    #[arg(long, value_delimiter = ',', default_value = "tc,socket,programming")]
    parts: Vec<String>,
    /// Part (1): packets per BPF_PROG_TEST_RUN call.
    #[arg(long, default_value_t = 200_000)]
    repeat: u32,
    /// Part (1): calls per cell (the median is printed).
    #[arg(long, default_value_t = 9)]
    runs: usize,
    /// Part (1): numbers of frontends to load.
    #[arg(long, value_delimiter = ',', default_value = "1,1000,10000,100000")]
    services: Vec<u32>,
    /// The eBPF object (default as ketch-node's).
    #[arg(long)]
    bpf_object: Option<std::path::PathBuf>,
    #[command(flatten)]
    socket: socket::SocketArgs,
    #[command(flatten)]
    programming: programming::ProgArgs,
}

#[derive(Subcommand)]
enum Sub {
    /// The client of part (2), run by the bench itself in a child process.
    #[command(hide = true)]
    Client(traffic::ClientArgs),
}

const NODE: Ipv4Addr = Ipv4Addr::new(10, 239, 0, 11);

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Sub::Client(c)) = &args.cmd {
        return traffic::client_main(c);
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("packet-bench needs root (BPF_PROG_TEST_RUN, bpffs, namespaces, cgroups)");
    }
    for p in &args.parts {
        if !["tc", "socket", "programming"].contains(&p.as_str()) {
            bail!("--parts: tc, socket, programming; not {p:?}");
        }
    }
    sys::watch_signals()?;
    let object = args.bpf_object.clone().unwrap_or_else(default_object_path);
    if !object.exists() {
        bail!(
            "{} missing: run `cargo xtask build-ebpf` or pass --bpf-object",
            object.display()
        );
    }
    let part = |p: &str| args.parts.iter().any(|x| x == p);
    if part("tc") {
        tc_part(&args, &object)?;
    }
    let mut ipt = Vec::new();
    if part("socket") {
        ipt = socket::run(&args.socket, &object)?;
    }
    if part("programming") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(programming::run(&args.programming, &object, &ipt))?;
    }
    Ok(())
}

/// Part (1): the NodePort tc program's cost per packet vs. the number of frontends.
fn tc_part(args: &Args, object: &std::path::Path) -> Result<()> {
    println!(
        "## (1) NodePort tc ingress, BPF_PROG_TEST_RUN repeat={} , median of {} runs, ns/packet",
        args.repeat, args.runs
    );
    let empty = empty_program()?;
    let client = SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 9), 40000);
    let floor = median(
        empty.as_raw_fd(),
        &frame(Protocol::Tcp, client, SocketAddrV4::new(NODE, 30080), b""),
        args,
    )?;
    println!();
    println!("| services | established | miss | no-backend | empty program | load s |");
    println!("|---|---|---|---|---|---|");
    for &n in &args.services {
        sys::check_stop()?;
        let row = measure(args, object, n)?;
        println!(
            "| {n} | {:.1} | {:.1} | {:.1} | {floor:.1} | {:.1} |",
            row.0, row.1, row.2, row.3
        );
    }
    Ok(())
}

fn measure(args: &Args, object: &std::path::Path, n: u32) -> Result<(f64, f64, f64, f64)> {
    let fs = sys::Bpffs::new()?;
    let mut cfg = DataplaneConfig::new(fs.path(), object);
    cfg.sizes = MapSizes {
        services: 2 * n + 64,
        backends: n + 64,
        conntrack: 65536,
        affinity: 1024,
        sock_revnat: 1024,
    };
    let mut dp = Dataplane::open(cfg).context("open dataplane")?;
    dp.set_node_addresses(&[NODE], None)?;
    let started = std::time::Instant::now();
    // n - 2 ClusterIP frontends with one backend each, plus the two NodePorts measured.
    for i in 0..n.saturating_sub(2) {
        let [_, _, a, b] = (i + 1).to_be_bytes();
        let hi = (i >> 16) as u8;
        dp.upsert_service(&Service {
            frontend: Frontend {
                addr: Ipv4Addr::new(10, 96 + hi, a, b),
                port: 80,
                proto: Protocol::Tcp,
            },
            kind: ServiceKind::ClusterIp,
            backends: vec![BackendAddr {
                addr: Ipv4Addr::new(10, 244, a, b),
                port: 8080,
                local: false,
            }],
            affinity_timeout: None,
            external_traffic_local: false,
            internal_traffic_local: false,
        })?;
    }
    let nodeport = |port, backends| Service {
        frontend: Frontend {
            addr: Ipv4Addr::UNSPECIFIED,
            port,
            proto: Protocol::Tcp,
        },
        kind: ServiceKind::NodePort,
        backends,
        affinity_timeout: None,
        external_traffic_local: false,
        internal_traffic_local: false,
    };
    dp.upsert_service(&nodeport(
        30080,
        vec![BackendAddr {
            addr: Ipv4Addr::new(10, 244, 9, 9),
            port: 8080,
            local: true,
        }],
    ))?;
    if n >= 2 {
        dp.upsert_service(&nodeport(30099, vec![]))?;
    }
    let load_s = started.elapsed().as_secs_f64();
    let client = SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 9), 40000);
    let pkt = |port| frame(Protocol::Tcp, client, SocketAddrV4::new(NODE, port), b"");
    let prog: &mut SchedClassifier = dp
        .ebpf()
        .program_mut(programs::TC_INGRESS)
        .context("program")?
        .try_into()?;
    let fd = prog.fd()?.as_fd().as_raw_fd();
    let established = median(fd, &pkt(30080), args)?;
    let miss = median(fd, &pkt(22), args)?;
    let no_backend = if n >= 2 {
        median(fd, &pkt(30099), args)?
    } else {
        f64::NAN
    };
    Ok((established, miss, no_backend, load_s))
}

fn median(fd: i32, pkt: &[u8], args: &Args) -> Result<f64> {
    let mut v = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        v.push(test_run(fd, pkt, args.repeat)? as f64);
    }
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

/// `r0 = -1; exit` as a tc program: the cost floor of a test run.
fn empty_program() -> Result<std::os::fd::OwnedFd> {
    let insns = [
        // BPF_ALU64 | BPF_MOV | BPF_K, dst r0, imm -1
        libbpf_sys::bpf_insn {
            code: 0xb7,
            _bitfield_align_1: [],
            _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
            off: 0,
            imm: -1,
        },
        // BPF_JMP | BPF_EXIT
        libbpf_sys::bpf_insn {
            code: 0x95,
            _bitfield_align_1: [],
            _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
            off: 0,
            imm: 0,
        },
    ];
    let license = c"GPL";
    // SAFETY: two valid instructions, a NUL-terminated license, no options; the returned fd is
    // owned by the OwnedFd.
    #[allow(unsafe_code)]
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_SCHED_CLS,
            std::ptr::null(),
            license.as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    if fd < 0 {
        bail!("bpf_prog_load (empty program): {fd}");
    }
    // SAFETY: a fresh fd returned by the kernel and owned by nobody else.
    #[allow(unsafe_code)]
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// One BPF_PROG_TEST_RUN through libbpf: returns the kernel's mean ns per run.
fn test_run(fd: i32, pkt: &[u8], repeat: u32) -> Result<u32> {
    let mut out = vec![0u8; pkt.len() + 256];
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        data_in: pkt.as_ptr().cast(),
        data_size_in: pkt.len() as u32,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        repeat: repeat as i32,
        ..Default::default()
    };
    // SAFETY: `opts` points at `pkt` and `out`, both alive for the call; `sz` is the struct's
    // size as libbpf requires; `fd` is a loaded program owned by the Dataplane.
    #[allow(unsafe_code)]
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd, &mut opts) };
    if rc != 0 {
        bail!("bpf_prog_test_run_opts: {rc}");
    }
    Ok(opts.duration)
}
