//! `ketch`: bring a local cluster up, see what runs, take it down.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod image;
mod nodes;
mod probe;
mod state;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use state::{Proc, State};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "ketch",
    version,
    about = "A Kubernetes-compatible cluster with an eBPF dataplane"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a local cluster in the background: etcd, the control plane and N nodes (each a
    /// network namespace with its own containerd and ketch-node).
    Up {
        #[arg(long, default_value = "/var/lib/ketch")]
        state_dir: PathBuf,
        /// HTTPS port of the API server.
        #[arg(long, default_value_t = 6443)]
        api_port: u16,
        /// Use these etcd endpoints (comma-separated) instead of starting one.
        #[arg(long, value_delimiter = ',')]
        etcd_servers: Vec<String>,
        /// Client port of the etcd `ketch up` starts (its peer port is the next one).
        #[arg(long, default_value_t = 2379)]
        etcd_port: u16,
        /// Seconds to wait for each component to become ready.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// How many nodes (network namespaces with containerd and ketch-node) to start.
        #[arg(long, default_value_t = 2)]
        nodes: usize,
        /// Prefix of the nodes' names and namespaces (`<name>-n1`, …) and of the bridge.
        #[arg(long, default_value = "ketch")]
        cluster_name: String,
        /// The nodes' network; the bridge takes its first address.
        #[arg(long, default_value = "10.239.0.0/24")]
        node_subnet: String,
        /// Pods' addresses; each node gets a /24 of it.
        #[arg(long, default_value = "10.244.0.0/16")]
        cluster_cidr: String,
        /// Each node's memory (e.g. 2Gi): a limit on its pods' cgroup, reported as its
        /// capacity and the base of its eviction thresholds (default: the host's).
        #[arg(long)]
        node_memory: Option<String>,
        /// The nodes' hard eviction thresholds (kubelet syntax). The default leaves out the
        /// kubelet's `nodefs.available<10%`, as kind does: local nodes share the host's disk,
        /// and a full build directory must not taint every node.
        #[arg(long, default_value = "memory.available<100Mi")]
        eviction_hard: String,
    },
    /// Stop what `ketch up` started (and nothing else).
    Down {
        #[arg(long, default_value = "/var/lib/ketch")]
        state_dir: PathBuf,
    },
    /// Say what runs.
    Status {
        #[arg(long, default_value = "/var/lib/ketch")]
        state_dir: PathBuf,
    },
    /// Build container images locally and load them into the nodes (no registry needed).
    Image {
        #[command(subcommand)]
        cmd: image::cli::ImageCmd,
    },
    /// What each node's kernel holds for Services: `services`, `backends` or `conntrack`.
    Bpf {
        #[arg(value_parser = ["services", "backends", "conntrack"])]
        what: String,
        #[arg(long, default_value = "/var/lib/ketch")]
        state_dir: PathBuf,
        /// Only this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Run a command as one of a node's own processes (like `docker exec` into a kind node): in
    /// the node's network namespace and its cgroup, where the Service programs apply.
    NodeExec {
        #[arg(long, default_value = "/var/lib/ketch")]
        state_dir: PathBuf,
        /// The node (`ketch status` lists them).
        node: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// Becomes `command` inside node `name`: joins `<node cgroup>/host` (so connect() to a
/// ClusterIP is translated as for the node's pods), enters its network namespace, execs.
fn node_exec(dir: &Path, name: &str, command: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let st = state::load(dir)?
        .with_context(|| format!("no cluster in {} (ketch up first)", dir.display()))?;
    let n = st
        .nodes
        .iter()
        .find(|n| n.name == name)
        .with_context(|| format!("no node {name} in this cluster"))?;
    let cgroup = ketch_node::dataplane::cgroup::node_cgroup(&nodes::cgroup_parent(n))
        .context("no cgroup2 mount on this machine")?;
    ketch_node::dataplane::cgroup::join_node_cgroup(&cgroup, "host")
        .with_context(|| format!("join the cgroup of {name}"))?;
    let ns = std::fs::File::open(Path::new("/run/netns").join(&n.netns))
        .with_context(|| format!("open the network namespace of {name}"))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("enter the network namespace of {name}"))?;
    let (prog, args) = command.split_first().context("no command")?;
    // exec only returns on failure.
    let err = std::process::Command::new(prog).args(args).exec();
    Err(anyhow::Error::new(err).context(format!("run {prog}")))
}

/// Prints every node's pinned Service maps (through `ketch-node --show-bpf`).
fn bpf(dir: &Path, what: &str, only: Option<&str>) -> Result<()> {
    let st = state::load(dir)?
        .with_context(|| format!("no cluster in {} (ketch up first)", dir.display()))?;
    let ketch_node = sibling("ketch-node")?;
    let nodes: Vec<&state::NodeState> = st
        .nodes
        .iter()
        .filter(|n| only.is_none_or(|o| o == n.name))
        .collect();
    if nodes.is_empty() {
        bail!("no node {} in this cluster", only.unwrap_or("at all"));
    }
    for n in nodes {
        println!("== {}", n.name);
        let status = std::process::Command::new(&ketch_node)
            .args(["--show-bpf", what, "--node-name", &n.name, "--root-dir"])
            .arg(nodes::kubelet_dir(n))
            .status()
            .context("run ketch-node")?;
        if !status.success() {
            bail!("reading the maps of {} failed", n.name);
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ketch: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Up {
            state_dir,
            api_port,
            etcd_servers,
            etcd_port,
            timeout,
            nodes,
            cluster_name,
            node_subnet,
            cluster_cidr,
            node_memory,
            eviction_hard,
        } => {
            let opts = UpOptions {
                api_port,
                etcd_servers,
                etcd_port,
                timeout: Duration::from_secs(timeout),
                nodes,
                network: nodes::Network::new(&cluster_name, &node_subnet)?,
                cluster_cidr,
                node: nodes::NodeOptions {
                    memory: node_memory
                        .as_deref()
                        .map(nodes::parse_memory)
                        .transpose()
                        .context("--node-memory")?,
                    eviction_hard: Some(eviction_hard),
                },
            };
            rt.block_on(up(&state_dir, opts))
        }
        Cmd::Down { state_dir } => down(&state_dir),
        Cmd::Status { state_dir } => {
            let all = status(&state_dir)?;
            if !all {
                std::process::exit(3);
            }
            Ok(())
        }
        Cmd::Image { cmd } => image::cli::run(cmd),
        Cmd::Bpf {
            what,
            state_dir,
            node,
        } => bpf(&state_dir, &what, node.as_deref()),
        Cmd::NodeExec {
            state_dir,
            node,
            command,
        } => node_exec(&state_dir, &node, &command),
    }
}

pub(crate) fn progress(msg: &str) {
    println!("==> {msg}");
    let _ = std::io::stdout().flush();
}

/// A program shipped next to this one (the build puts every binary in one directory).
pub(crate) fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("find the ketch executable")?;
    let p = me
        .parent()
        .map(|d| d.join(name))
        .context("ketch has no directory")?;
    if !p.exists() {
        bail!(
            "{} not found next to {}; build the workspace first (cargo build)",
            name,
            me.display()
        );
    }
    Ok(p)
}

/// Starts a program in its own process group with its output in `log`, detached from us.
pub(crate) fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> Result<Proc> {
    let out = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    start(name, program, args, log, out)
}

/// Starts a process of ours again the way it was started, its output appended to its log.
pub(crate) fn respawn(p: &Proc) -> Result<Proc> {
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&p.log)
        .with_context(|| format!("open {}", p.log.display()))?;
    let _ = writeln!(out, "--- restarted by ketch up (pid {} had died)", p.pid);
    start(&p.name, &p.program, &p.args, &p.log, out)
}

fn start(
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
    out: std::fs::File,
) -> Result<Proc> {
    let err = out.try_clone()?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {}", program.display()))?;
    let pid = child.id() as i32;
    let start_ticks = state::start_ticks(pid)
        .with_context(|| format!("{name} exited at once; see {}", log.display()))?;
    Ok(Proc {
        name: name.into(),
        pid,
        start_ticks,
        log: log.into(),
        program: program.into(),
        args: args.to_vec(),
    })
}

pub(crate) async fn wait_until<F, Fut>(
    what: &str,
    proc: Option<&Proc>,
    timeout: Duration,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    let mut next_note = Duration::from_secs(5);
    loop {
        if check().await {
            return Ok(());
        }
        if let Some(p) = proc
            && !p.alive()
        {
            bail!(
                "{} exited; its log ({}) ends with:\n{}",
                p.name,
                p.log.display(),
                tail(&p.log, 15)
            );
        }
        let waited = start.elapsed();
        if waited > timeout {
            bail!("{what} not ready after {}s", timeout.as_secs());
        }
        if waited > next_note {
            progress(&format!("still waiting for {what} ({}s)", waited.as_secs()));
            next_note += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct UpOptions {
    api_port: u16,
    etcd_servers: Vec<String>,
    etcd_port: u16,
    timeout: Duration,
    nodes: usize,
    network: nodes::Network,
    cluster_cidr: String,
    node: nodes::NodeOptions,
}

async fn up(dir: &Path, opts: UpOptions) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if let Some(old) = state::load(&dir)? {
        if !old.processes.is_empty() && old.processes.iter().all(Proc::alive) {
            progress(&format!("already up at {}", old.api_url));
            println!("export KUBECONFIG={}", old.kubeconfig.display());
            return Ok(());
        }
        if recoverable(&old) {
            let mut st = old.clone();
            match recover(&dir, &mut st, opts.timeout).await {
                Ok(()) => {
                    println!("Cluster is up again. Logs are in {}.", dir.display());
                    println!("export KUBECONFIG={}", st.kubeconfig.display());
                    return Ok(());
                }
                Err(e) => {
                    progress(&format!("could not restart the cluster in place: {e:#}"));
                    teardown(&st);
                    state::remove(&dir)?;
                }
            }
        } else {
            // Half-made, or its namespaces are gone (a reboot): remove what is left, start afresh.
            progress("cleaning up after an earlier run that did not stop cleanly");
            teardown(&old);
            state::remove(&dir)?;
        }
    }
    let mut st = State {
        kubeconfig: dir.join("kubeconfig"),
        ..State::default()
    };
    let mut result = start_components(&dir, &opts, &mut st).await;
    if result.is_ok() && opts.nodes > 0 {
        result = nodes::start(
            &dir,
            &opts.network,
            opts.nodes,
            &opts.node,
            opts.timeout,
            &mut st,
        )
        .await;
    }
    if let Err(e) = result {
        // Leave nothing half-started behind.
        progress("start failed; removing what was started");
        teardown(&st);
        let _ = state::remove(&dir);
        return Err(e);
    }
    println!("Cluster is up. Logs are in {}.", dir.display());
    println!("export KUBECONFIG={}", st.kubeconfig.display());
    Ok(())
}

/// An earlier cluster whose processes can be started again in place: it came up completely
/// (every process recorded with how to start it) and its nodes' namespaces are still there.
fn recoverable(st: &State) -> bool {
    !st.api_url.is_empty()
        && st
            .processes
            .iter()
            .all(|p| !p.program.as_os_str().is_empty())
        && st.processes.iter().any(|p| p.name == "ketch-control")
        && st.nodes.iter().all(|n| nodes::intact(st, n))
        && st
            .bridge
            .as_ref()
            .is_none_or(|b| Path::new("/sys/class/net").join(b).exists())
}

/// Starts again, in the order `up` started them, the processes that died, each waited for.
/// Running containers are kept: a restarted containerd finds them, a restarted ketch-node adopts
/// them.
async fn recover(dir: &Path, st: &mut State, timeout: Duration) -> Result<()> {
    let mut restarted_nodes = Vec::new();
    let mut before = None;
    for i in 0..st.processes.len() {
        if st.processes[i].alive() {
            continue;
        }
        let old = st.processes[i].clone();
        if before.is_none() && nodes::owner(st, &old).is_some_and(|(_, kind)| kind == "ketch-node")
        {
            before = Some(nodes::heartbeats(dir, st).await?);
        }
        progress(&format!(
            "{} (pid {}) had died; starting it again",
            old.name, old.pid
        ));
        let p = respawn(&old)?;
        st.processes[i] = p.clone();
        state::save(dir, st)?;
        match (old.name.as_str(), nodes::owner(st, &p)) {
            ("etcd", _) => {
                let client = st.etcd_servers.first().cloned().unwrap_or_default();
                wait_until("etcd", Some(&p), timeout, || probe::etcd_healthy(&client)).await?;
            }
            ("ketch-control", _) => {
                let (host, port) = nodes::api_host_port(&st.api_url)?;
                let pki = dir.join("control/pki");
                wait_until("the API server", Some(&p), timeout, || {
                    let (pki, host) = (pki.clone(), host.clone());
                    async move { probe::api_ready(&host, port, &pki).await.unwrap_or(false) }
                })
                .await?;
            }
            (_, Some((n, "containerd"))) => nodes::wait_containerd(n, Some(&p), timeout).await?,
            (_, Some((n, _))) => restarted_nodes.push(n.name.clone()),
            _ => {}
        }
    }
    if !restarted_nodes.is_empty() {
        progress(&format!(
            "waiting for {} to be Ready",
            restarted_nodes.join(", ")
        ));
        let before = before.unwrap_or_default();
        nodes::wait_ready(dir, st, &restarted_nodes, &before, timeout).await?;
    }
    Ok(())
}

async fn start_components(dir: &Path, opts: &UpOptions, st: &mut State) -> Result<()> {
    let etcd_servers = if opts.etcd_servers.is_empty() {
        let etcd_port = opts.etcd_port;
        let client = format!("http://127.0.0.1:{etcd_port}");
        let peer = format!(
            "http://127.0.0.1:{}",
            etcd_port.checked_add(1).context("--etcd-port too high")?
        );
        if probe::etcd_healthy(&client).await {
            bail!("something already answers on {client}; pass --etcd-port or --etcd-servers");
        }
        progress(&format!("starting etcd on {client}"));
        let etcd = which("etcd")
            .context("etcd is not installed (apt-get install etcd-server, or cargo xtask setup)")?;
        let args = vec![
            "--name".into(),
            "ketch".into(),
            "--data-dir".into(),
            dir.join("etcd").display().to_string(),
            "--listen-client-urls".into(),
            client.clone(),
            "--advertise-client-urls".into(),
            client.clone(),
            "--listen-peer-urls".into(),
            peer.clone(),
            "--initial-advertise-peer-urls".into(),
            peer.clone(),
            "--initial-cluster".into(),
            format!("ketch={peer}"),
        ];
        let p = spawn("etcd", &etcd, &args, &dir.join("etcd.log"))?;
        st.processes.push(p.clone());
        state::save(dir, st)?;
        wait_until("etcd", Some(&p), opts.timeout, || {
            probe::etcd_healthy(&client)
        })
        .await?;
        vec![client]
    } else {
        opts.etcd_servers.clone()
    };
    st.etcd_servers = etcd_servers.clone();

    // With nodes, the API server listens on the bridge (nodes and pods reach it there);
    // without, on loopback only.
    let host = if opts.nodes > 0 {
        if let Some(bridge) = opts.network.ensure_bridge()? {
            st.bridge = Some(bridge);
            state::save(dir, st)?;
        }
        opts.network.gateway().to_string()
    } else {
        "127.0.0.1".to_string()
    };
    let api_port = opts.api_port;
    progress(&format!("starting ketch-control on {host}:{api_port}"));
    let control = sibling("ketch-control")?;
    let args = vec![
        "--bind-address".into(),
        host.clone(),
        "--advertise-address".into(),
        host.clone(),
        "--secure-port".into(),
        api_port.to_string(),
        "--etcd-servers".into(),
        etcd_servers.join(","),
        "--data-dir".into(),
        dir.join("control").display().to_string(),
        "--kubeconfig-out".into(),
        st.kubeconfig.display().to_string(),
        "--cluster-cidr".into(),
        opts.cluster_cidr.clone(),
    ];
    let p = spawn("ketch-control", &control, &args, &dir.join("control.log"))?;
    st.processes.push(p.clone());
    st.api_url = format!("https://{host}:{api_port}");
    state::save(dir, st)?;
    let pki = dir.join("control/pki");
    wait_until("the API server", Some(&p), opts.timeout, || {
        let pki = pki.clone();
        let host = host.clone();
        async move {
            probe::api_ready(&host, api_port, &pki)
                .await
                .unwrap_or(false)
        }
    })
    .await?;
    Ok(())
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Stops one of our processes: TERM, then KILL after a grace period.
pub(crate) fn stop(p: &Proc) {
    if !p.alive() {
        return;
    }
    let pid = Pid::from_raw(p.pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if p.alive() {
        let _ = kill(pid, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while p.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    println!("stopped {} (pid {})", p.name, p.pid);
}

/// Removes everything `st` records: the nodes (their pods, processes, mounts, cgroups,
/// namespaces), the bridge and folders `up` made, then the control plane, newest first.
fn teardown(st: &State) {
    nodes::teardown(st);
    for p in st.processes.iter().rev() {
        stop(p);
    }
}

fn down(dir: &Path) -> Result<()> {
    let Some(st) = state::load(dir)? else {
        println!("nothing to stop: no cluster state in {}", dir.display());
        return Ok(());
    };
    teardown(&st);
    state::remove(dir)?;
    println!("cluster stopped (data kept in {})", dir.display());
    Ok(())
}

fn status(dir: &Path) -> Result<bool> {
    let Some(st) = state::load(dir)? else {
        println!("not running: no cluster state in {}", dir.display());
        return Ok(false);
    };
    let mut all = true;
    for p in &st.processes {
        let alive = p.alive();
        all &= alive;
        println!(
            "{:<20} {:<8} pid {:<8} log {}",
            p.name,
            if alive { "running" } else { "stopped" },
            p.pid,
            p.log.display()
        );
    }
    println!("API server           {}", st.api_url);
    println!("etcd                 {}", st.etcd_servers.join(","));
    println!("kubeconfig           {}", st.kubeconfig.display());
    Ok(all)
}
