//! Local nodes for `ketch up --nodes N`: each node is a network namespace on a bridge in the
//! root namespace, with its own containerd (own root, state, socket and config) and its own
//! `ketch-node`, all started inside the namespace. Everything made is recorded in the state so
//! that `ketch down` (or the next `up` after a crash) removes exactly that.

use crate::state::{NodeState, Proc, State};
use anyhow::{Context, Result, bail};
use ketch_control::auth::pki::{self, Pki};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where a cluster's nodes live: a bridge `<name>0` with the first address of `subnet`, and
/// node `i` at the `10 + i`th address in namespace `<name>-n<i>` (also the Node's name).
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
}

impl Network {
    pub fn new(name: &str, subnet: &str) -> Result<Network> {
        let valid = !name.is_empty()
            && name.len() <= 10
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            bail!(
                "--cluster-name {name:?}: 1-10 characters of a-z, 0-9 and '-', starting with a letter"
            );
        }
        let (addr, prefix) = subnet
            .split_once('/')
            .context("--node-subnet: expected an IPv4 CIDR like 10.239.0.0/24")?;
        let addr: Ipv4Addr = addr
            .parse()
            .with_context(|| format!("--node-subnet {subnet:?}: bad address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (16..=24).contains(p))
            .with_context(|| format!("--node-subnet {subnet:?}: the prefix must be 16 to 24"))?;
        let mask = u32::MAX << (32 - prefix);
        if u32::from(addr) & !mask != 0 {
            bail!("--node-subnet {subnet:?}: host bits are set");
        }
        Ok(Network {
            name: name.into(),
            subnet: addr,
            prefix,
        })
    }

    pub fn bridge(&self) -> String {
        format!("{}0", self.name)
    }

    /// The bridge's address: where nodes reach the API server.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet) + 1)
    }

    /// The node names, addresses and places of a cluster of `n` nodes.
    pub fn plan(&self, n: usize, dir: &Path) -> Result<Vec<NodeState>> {
        if n > 200 {
            bail!("--nodes {n}: at most 200");
        }
        Ok((1..=n)
            .map(|i| {
                let name = format!("{}-n{i}", self.name);
                NodeState {
                    ip: Ipv4Addr::from(u32::from(self.subnet) + 10 + i as u32),
                    netns: name.clone(),
                    veth: format!("{}n{i}", self.name),
                    dir: dir.join("nodes").join(&name),
                    pod_cidr: None,
                    name,
                }
            })
            .collect())
    }

    /// The bridge the nodes hang off; its name if this call created it.
    pub fn ensure_bridge(&self) -> Result<Option<String>> {
        let bridge = self.bridge();
        if link_exists(&bridge) {
            return Ok(None);
        }
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        let made = Some(bridge.clone());
        let configure = || -> Result<()> {
            ip(&[
                "addr",
                "add",
                &format!("{}/{}", self.gateway(), self.prefix),
                "dev",
                &bridge,
            ])?;
            ip(&["link", "set", &bridge, "up"])
        };
        if let Err(e) = configure() {
            delete_link(&bridge);
            return Err(e);
        }
        Ok(made)
    }

    /// The node's network namespace and its link to the bridge.
    pub fn create_netns(&self, n: &NodeState) -> Result<()> {
        ip(&["netns", "add", &n.netns])?;
        ip(&[
            "link", "add", &n.veth, "type", "veth", "peer", "name", "eth0", "netns", &n.netns,
        ])?;
        ip(&["link", "set", &n.veth, "master", &self.bridge(), "up"])?;
        let inside = |args: &[&str]| -> Result<()> {
            let mut a = vec!["-n", n.netns.as_str()];
            a.extend_from_slice(args);
            ip(&a)
        };
        inside(&["link", "set", "lo", "up"])?;
        inside(&[
            "addr",
            "add",
            &format!("{}/{}", n.ip, self.prefix),
            "dev",
            "eth0",
        ])?;
        inside(&["link", "set", "eth0", "up"])?;
        inside(&[
            "route",
            "add",
            "default",
            "via",
            &self.gateway().to_string(),
        ])?;
        // The node routes its pods' traffic: forwarding on in its namespace.
        in_netns_sysctl(&n.netns)
    }

    /// A route in the root namespace to a node's pods, so that answers to pods (from the API
    /// server, from the host) go back through that node.
    pub fn add_pod_route(&self, n: &NodeState, cidr: &str) -> Result<()> {
        ip(&[
            "route",
            "replace",
            cidr,
            "via",
            &n.ip.to_string(),
            "dev",
            &self.bridge(),
        ])
    }
}

fn in_netns_sysctl(netns: &str) -> Result<()> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ])
        .output()
        .context("sysctl in the node namespace")?;
    if !out.status.success() {
        bail!(
            "enable forwarding in {netns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn delete_link(name: &str) {
    // The kernel may be removing it already (the peer's namespace went): gone is fine.
    if link_exists(name)
        && let Err(e) = ip(&["link", "del", name])
        && link_exists(name)
    {
        eprintln!("warning: {e}");
    }
}

/// Credentials of a node: its kubeconfig (system:node:<name>), its kubelet serving certificate.
pub fn write_credentials(pki: &Pki, n: &NodeState, api_url: &str) -> Result<()> {
    let dir = n.dir.join("pki");
    std::fs::create_dir_all(&dir)?;
    let client = pki.issue_client(&format!("system:node:{}", n.name), &["system:nodes"])?;
    std::fs::write(
        n.dir.join("kubeconfig"),
        pki::kubeconfig(
            api_url,
            pki.ca_pem(),
            &format!("system:node:{}", n.name),
            &client,
        ),
    )?;
    let serving = pki.issue_serving(
        &n.name,
        std::slice::from_ref(&n.name),
        &[std::net::IpAddr::V4(n.ip)],
    )?;
    std::fs::write(dir.join("kubelet.crt"), serving.cert_pem)?;
    std::fs::write(dir.join("kubelet.key"), serving.key_pem)?;
    std::fs::write(dir.join("ca.crt"), pki.ca_pem())?;
    Ok(())
}

pub fn containerd_dir(n: &NodeState) -> PathBuf {
    n.dir.join("containerd")
}

pub fn containerd_socket(n: &NodeState) -> PathBuf {
    containerd_dir(n).join("containerd.sock")
}

/// containerd's config for one node: everything of its own, nothing pulled.
pub fn containerd_config(n: &NodeState, pause: &str) -> String {
    let d = containerd_dir(n);
    let p = |s: &str| d.join(s).display().to_string();
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
"#,
        root = p("root"),
        state = p("state"),
        sock = containerd_socket(n).display(),
        opt = p("opt"),
        runc = p("runc"),
        cni_bin = n.dir.join("cni/bin").display(),
        cni_conf = n.dir.join("cni/conf").display(),
    )
}

/// The CNI binaries containerd runs for this node: our plugin and the standard loopback.
pub fn cni_bin(n: &NodeState, ketch_cni: &Path) -> Result<()> {
    let bin = n.dir.join("cni/bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(n.dir.join("cni/conf"))?;
    for (name, target) in [
        ("ketch-cni", ketch_cni.to_path_buf()),
        ("loopback", PathBuf::from("/usr/lib/cni/loopback")),
    ] {
        if !target.exists() {
            bail!(
                "{} not found (cargo xtask setup installs containernetworking-plugins)",
                target.display()
            );
        }
        let link = bin.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)?;
    }
    Ok(())
}

/// Runs `program` inside the node's network namespace (nsenter, not `ip netns exec`, which
/// would remount /sys and break runc's cgroup discovery).
pub fn spawn_in_node(
    n: &NodeState,
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<Proc> {
    let mut all = vec![
        format!("--net=/run/netns/{}", n.netns),
        "--".to_string(),
        program.display().to_string(),
    ];
    all.extend(args.iter().cloned());
    crate::spawn(name, Path::new("/usr/bin/nsenter"), &all, log)
}

/// `ctr version` answers on the node's socket.
pub fn containerd_ready(n: &NodeState) -> bool {
    Command::new("ctr")
        .arg("--address")
        .arg(containerd_socket(n))
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Removes what a node left: runtime objects (through `ketch-node --cleanup`, while containerd
/// still runs), then — after the processes stopped — mounts under its directory, its cgroups,
/// its namespace.
pub fn cleanup_runtime(n: &NodeState, ketch_node: &Path) -> bool {
    if !containerd_socket(n).exists() {
        return true;
    }
    let log = std::fs::File::create(cleanup_log(n));
    let (out, err) = match log.as_ref().map(|f| (f.try_clone(), f.try_clone())) {
        Ok((Ok(a), Ok(b))) => (Stdio::from(a), Stdio::from(b)),
        _ => (Stdio::null(), Stdio::null()),
    };
    let status = Command::new("/usr/bin/nsenter")
        .arg(format!("--net=/run/netns/{}", n.netns))
        .arg("--")
        .arg(ketch_node)
        .args([
            "--cleanup",
            "--node-name",
            &n.name,
            "--container-runtime-endpoint",
        ])
        .arg(containerd_socket(n))
        .arg("--root-dir")
        .arg(kubelet_dir(n))
        .arg("--cgroup-parent")
        .arg(cgroup_parent(n))
        .stdout(out)
        .stderr(err)
        .status();
    status.is_ok_and(|s| s.success())
}

fn cleanup_log(n: &NodeState) -> PathBuf {
    n.dir.join("ketch-node-cleanup.log")
}

pub fn kubelet_dir(n: &NodeState) -> PathBuf {
    n.dir.join("kubelet")
}

/// Every pod of the node lives below this cgroup, in each hierarchy.
pub fn cgroup_parent(n: &NodeState) -> String {
    format!("/{}", n.name)
}

/// `ketch-node`'s arguments for this node.
pub fn node_args(n: &NodeState) -> Vec<String> {
    let d = |p: &str| n.dir.join(p).display().to_string();
    [
        ("--node-name", n.name.clone()),
        ("--node-ip", n.ip.to_string()),
        ("--kubeconfig", d("kubeconfig")),
        (
            "--container-runtime-endpoint",
            containerd_socket(n).display().to_string(),
        ),
        ("--root-dir", kubelet_dir(n).display().to_string()),
        ("--cni-conf-dir", d("cni/conf")),
        ("--cni-data-dir", d("ipam")),
        ("--cgroup-parent", cgroup_parent(n)),
        // Every node answers cluster DNS on its own address; its pods ask it.
        ("--cluster-dns", n.ip.to_string()),
        ("--tls-cert-file", d("pki/kubelet.crt")),
        ("--tls-private-key-file", d("pki/kubelet.key")),
        ("--client-ca-file", d("pki/ca.crt")),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// Unmounts everything mounted below `dir` (deepest first).
pub fn unmount_below(dir: &Path) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Err(e) = nix::mount::umount2(Path::new(&p), nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("warning: unmount {p}: {e}");
        }
    }
}

/// Removes the node's cgroup tree from every hierarchy, deepest first.
pub fn remove_cgroups(n: &NodeState) {
    let Ok(hiers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let parent = cgroup_parent(n);
    for h in hiers.flatten() {
        remove_empty_tree(&h.path().join(parent.trim_start_matches('/')));
    }
}

/// Removes the empty folders of a tree, deepest first; files stay. (A cgroup is an empty
/// folder once no process is in it: its files are the kernel's.)
fn remove_empty_tree(dir: &Path) {
    if let Ok(children) = std::fs::read_dir(dir) {
        for c in children.flatten() {
            if c.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_tree(&c.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

pub fn delete_pod_route(n: &NodeState) {
    if let Some(cidr) = &n.pod_cidr {
        // Gone already if the bridge went first; only ours (via this node) is removed.
        let _ = ip(&["route", "del", cidr, "via", &n.ip.to_string()]);
    }
}

pub fn delete_netns(n: &NodeState) {
    if Path::new("/run/netns").join(&n.netns).exists()
        && let Err(e) = ip(&["netns", "del", &n.netns])
    {
        eprintln!("warning: {e}");
    }
    // The kernel removes the host end with the namespace (a little later); make sure.
    delete_link(&n.veth);
}

fn proc_name(kind: &str, n: &NodeState) -> String {
    format!("{kind}-{}", n.name)
}

/// Starts `count` nodes and waits until every one is Ready with a pod network.
/// What every node gets beyond its network.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// The node's memory in bytes: the limit of its pods' cgroup (none: the host's).
    pub memory: Option<u64>,
    /// Passed to each ketch-node as `--eviction-hard`.
    pub eviction_hard: Option<String>,
}

/// Parses a memory size the way Kubernetes writes quantities (`512Mi`, `2Gi`, `1G`, bytes).
pub fn parse_memory(s: &str) -> Result<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?}: expected a size like 512Mi or 2Gi"))?;
    let mult: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => bail!("{s:?}: unknown unit {unit:?} (use Ki, Mi, Gi, k, M or G)"),
    };
    let bytes = n.saturating_mul(mult);
    if bytes < 64 << 20 {
        bail!("{s:?}: a node needs at least 64Mi");
    }
    Ok(bytes)
}

/// Caps the memory of everything below the node's cgroup (its pods), as a machine of that size.
fn limit_memory(n: &NodeState, bytes: u64) -> Result<()> {
    let dir = Path::new("/sys/fs/cgroup/memory").join(cgroup_parent(n).trim_start_matches('/'));
    let (dir, file) = if Path::new("/sys/fs/cgroup/memory").is_dir() {
        (dir, "memory.limit_in_bytes")
    } else {
        (
            Path::new("/sys/fs/cgroup").join(cgroup_parent(n).trim_start_matches('/')),
            "memory.max",
        )
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::write(dir.join(file), bytes.to_string())
        .with_context(|| format!("write {}", dir.join(file).display()))
}

pub async fn start(
    dir: &Path,
    net: &Network,
    count: usize,
    opts: &NodeOptions,
    timeout: Duration,
    st: &mut State,
) -> Result<()> {
    let ketch_node = crate::sibling("ketch-node")?;
    let ketch_cni = crate::sibling("ketch-cni")?;
    let containerd = crate::which("containerd")
        .context("containerd is not installed (cargo xtask setup installs it)")?;
    for tool in ["ctr", "runc", "nsenter"] {
        crate::which(tool)
            .with_context(|| format!("{tool} is not installed (cargo xtask setup)"))?;
    }
    // Shared folders the runtime writes to (shim sockets, CNI result cache): removed by
    // `down` only if they are ours.
    for shared in ["/run/containerd", "/var/lib/cni"] {
        let p = PathBuf::from(shared);
        if !p.exists() {
            std::fs::create_dir_all(&p).with_context(|| format!("create {shared}"))?;
            st.created_dirs.push(p);
        }
    }
    crate::state::save(dir, st)?;

    crate::progress("building the built-in images");
    let images = crate::image::builtin::builtin_images(&dir.join("images"))?;
    let pki = Pki::load_or_create(&dir.join("control/pki"))?;
    let plan = net.plan(count, dir)?;
    for n in &plan {
        crate::progress(&format!("starting node {} at {}", n.name, n.ip));
        if Path::new("/run/netns").join(&n.netns).exists() || link_exists(&n.veth) {
            bail!(
                "network namespace {} or link {} already exists (another cluster named {:?}?); \
                 pass --cluster-name",
                n.netns,
                n.veth,
                net.name
            );
        }
        // Recorded first so that teardown finds a half-made node too.
        st.nodes.push(n.clone());
        crate::state::save(dir, st)?;
        net.create_netns(n)?;
        if let Some(bytes) = opts.memory {
            limit_memory(n, bytes)?;
        }
        std::fs::create_dir_all(containerd_dir(n))?;
        write_credentials(&pki, n, &st.api_url)?;
        cni_bin(n, &ketch_cni)?;
        let config = containerd_dir(n).join("config.toml");
        std::fs::write(&config, containerd_config(n, crate::image::builtin::PAUSE))?;
        let p = spawn_in_node(
            n,
            &proc_name("containerd", n),
            &containerd,
            &["--config".into(), config.display().to_string()],
            &n.dir.join("containerd.log"),
        )?;
        st.processes.push(p);
        crate::state::save(dir, st)?;
    }
    for n in &plan {
        wait_containerd(n, find_proc(st, "containerd", n), timeout).await?;
    }
    crate::progress("importing images into every node");
    for (name, archive) in &images {
        for r in crate::image::load::load(archive, dir)? {
            if let crate::image::load::Outcome::Imported { .. } = r.outcome {
                continue;
            }
            bail!(
                "importing {name} into {} failed: {:?}",
                r.node.name,
                r.outcome
            );
        }
    }
    let before = heartbeats(dir, st).await?;
    for n in &plan {
        let mut args = node_args(n);
        if let Some(e) = &opts.eviction_hard {
            args.extend(["--eviction-hard".into(), e.clone()]);
        }
        let p = spawn_in_node(
            n,
            &proc_name("ketch-node", n),
            &ketch_node,
            &args,
            &n.dir.join("ketch-node.log"),
        )?;
        st.processes.push(p);
        crate::state::save(dir, st)?;
    }
    crate::progress(&format!("waiting for {count} nodes to be Ready"));
    let names: Vec<String> = plan.iter().map(|n| n.name.clone()).collect();
    let cidrs = wait_ready(dir, st, &names, &before, timeout).await?;
    for n in st.nodes.iter_mut() {
        if let Some(cidr) = cidrs.get(&n.name) {
            net.add_pod_route(n, cidr)?;
            n.pod_cidr = Some(cidr.clone());
        }
    }
    crate::state::save(dir, st)?;
    Ok(())
}

/// The nodes' last Ready heartbeats now (Nodes kept in etcd from an earlier run, or posted by a
/// ketch-node that has died): only a later one shows the ketch-node started next.
pub async fn heartbeats(dir: &Path, st: &State) -> Result<BTreeMap<String, jiff::Timestamp>> {
    let (host, port) = api_host_port(&st.api_url)?;
    let answer =
        crate::probe::api_get(&host, port, &dir.join("control/pki"), "/api/v1/nodes").await?;
    let Some((200, body)) = answer else {
        bail!("the API server did not list the nodes");
    };
    let v: serde_json::Value = serde_json::from_str(&body).context("the node list")?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["metadata"]["name"].as_str()?.to_string(), heartbeat(n)?)))
        .collect())
}

/// When the node last said it is Ready (or not).
fn heartbeat(node: &serde_json::Value) -> Option<jiff::Timestamp> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["lastHeartbeatTime"]
        .as_str()?
        .parse()
        .ok()
}

/// Waits until the nodes `names` are Ready with a heartbeat later than in `before`; their
/// podCIDRs.
pub async fn wait_ready(
    dir: &Path,
    st: &State,
    names: &[String],
    before: &BTreeMap<String, jiff::Timestamp>,
    timeout: Duration,
) -> Result<BTreeMap<String, String>> {
    let (host, port) = api_host_port(&st.api_url)?;
    let admin_pki = dir.join("control/pki");
    let mut cidrs = BTreeMap::new();
    let start = std::time::Instant::now();
    loop {
        if let Some((200, body)) =
            crate::probe::api_get(&host, port, &admin_pki, "/api/v1/nodes").await?
        {
            cidrs = ready_nodes(&body, names, before);
            if cidrs.len() == names.len() {
                return Ok(cidrs);
            }
        }
        for n in st.nodes.iter().filter(|n| names.contains(&n.name)) {
            if let Some(p) = find_proc(st, "ketch-node", n)
                && !p.alive()
            {
                bail!(
                    "{} exited; its log ({}) ends with:\n{}",
                    p.name,
                    p.log.display(),
                    crate::tail(&p.log, 15)
                );
            }
        }
        if start.elapsed() > timeout {
            let waiting: Vec<&String> = names.iter().filter(|n| !cidrs.contains_key(*n)).collect();
            bail!(
                "nodes not Ready after {}s: {waiting:?} (logs: {}/nodes/*/ketch-node.log)",
                timeout.as_secs(),
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the node's containerd answers.
pub async fn wait_containerd(n: &NodeState, p: Option<&Proc>, timeout: Duration) -> Result<()> {
    crate::wait_until(&format!("containerd of {}", n.name), p, timeout, || async {
        containerd_ready(n)
    })
    .await
}

/// The node a process of `st` belongs to, and what it is there.
pub fn owner<'a>(st: &'a State, p: &Proc) -> Option<(&'a NodeState, &'static str)> {
    st.nodes.iter().find_map(|n| {
        ["containerd", "ketch-node"]
            .into_iter()
            .find(|kind| p.name == proc_name(kind, n))
            .map(|kind| (n, kind))
    })
}

/// Everything a node needs to be restarted in place is still there.
pub fn intact(st: &State, n: &NodeState) -> bool {
    Path::new("/run/netns").join(&n.netns).exists()
        && link_exists(&n.veth)
        && find_proc(st, "containerd", n).is_some()
        && find_proc(st, "ketch-node", n).is_some()
}

fn find_proc<'a>(st: &'a State, kind: &str, n: &NodeState) -> Option<&'a Proc> {
    let name = proc_name(kind, n);
    st.processes.iter().rev().find(|p| p.name == name)
}

pub fn api_host_port(url: &str) -> Result<(String, u16)> {
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("API URL {url:?}"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .with_context(|| format!("API URL {url:?}"))?;
    Ok((host.to_string(), port.parse()?))
}

/// The nodes of `names` that are Ready (said later than in `before`) and have a podCIDR, with it.
fn ready_nodes(
    list: &str,
    names: &[String],
    before: &BTreeMap<String, jiff::Timestamp>,
) -> BTreeMap<String, String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(list) else {
        return BTreeMap::new();
    };
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let name = n["metadata"]["name"].as_str()?;
            if !names.iter().any(|x| x == name) {
                return None;
            }
            let ready = n["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let fresh = match (before.get(name), heartbeat(n)) {
                (None, _) => true,
                (Some(old), Some(now)) => now > *old,
                (Some(_), None) => false,
            };
            let cidr = n["spec"]["podCIDR"].as_str()?;
            (ready && fresh).then(|| (name.to_string(), cidr.to_string()))
        })
        .collect()
}

/// Removes every node `st` records, in the order that leaves nothing: ketch-node stops; the
/// runtime's pods go (with a containerd started again for it if it had died); containerd
/// stops; then mounts, cgroups, routes, namespaces, the bridge and the shared folders.
pub fn teardown(st: &State) {
    let ketch_node = crate::sibling("ketch-node").ok();
    for n in &st.nodes {
        if let Some(p) = find_proc(st, "ketch-node", n) {
            crate::stop(p);
        }
        let running = find_proc(st, "containerd", n)
            .filter(|p| p.alive())
            .cloned();
        let revived = match running {
            Some(_) => None,
            None => revive_containerd(n),
        };
        if let Some(k) = &ketch_node
            && (running.is_some() || revived.is_some())
            && !cleanup_runtime(n, k)
        {
            eprintln!(
                "warning: could not remove the pods of {} (see {})",
                n.name,
                cleanup_log(n).display()
            );
        }
        if let Some(p) = running.as_ref().or(revived.as_ref()) {
            crate::stop(p);
        }
    }
    for n in &st.nodes {
        unmount_below(&n.dir);
        remove_cgroups(n);
        delete_pod_route(n);
        delete_netns(n);
    }
    if let Some(bridge) = &st.bridge {
        delete_link(bridge);
    }
    // Emptied by the runtime's clean-up; whatever is still in them belongs to someone else
    // (another cluster started while this one ran), so only empty folders go.
    for d in &st.created_dirs {
        remove_empty_tree(d);
        if d.exists() {
            eprintln!(
                "note: left {} in place: another runtime uses it",
                d.display()
            );
        }
    }
}

/// After a crash the node's containers may outlive its containerd; start it again (same
/// config) so that they can be stopped through it.
fn revive_containerd(n: &NodeState) -> Option<Proc> {
    let config = containerd_dir(n).join("config.toml");
    if !config.exists() || !Path::new("/run/netns").join(&n.netns).exists() {
        return None;
    }
    let containerd = crate::which("containerd")?;
    let p = spawn_in_node(
        n,
        &proc_name("containerd", n),
        &containerd,
        &["--config".into(), config.display().to_string()],
        &n.dir.join("containerd-cleanup.log"),
    )
    .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline && p.alive() {
        if containerd_ready(n) {
            return Some(p);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    crate::stop(&p);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_memory_sizes() {
        assert_eq!(parse_memory("512Mi").expect("512Mi"), 512 << 20);
        assert_eq!(parse_memory("2Gi").expect("2Gi"), 2 << 30);
        assert_eq!(parse_memory("1G").expect("1G"), 1_000_000_000);
        for bad in ["", "lots", "12Qi", "1Mi", "-5Gi"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_names_and_addresses() {
        let net = Network::new("ketch", "10.239.0.0/24").expect("valid");
        assert_eq!(net.bridge(), "ketch0");
        assert_eq!(net.gateway(), Ipv4Addr::new(10, 239, 0, 1));
        let plan = net.plan(2, Path::new("/s")).expect("plan");
        assert_eq!(plan[1].name, "ketch-n2");
        assert_eq!(plan[1].netns, "ketch-n2");
        assert_eq!(plan[1].veth, "ketchn2");
        assert_eq!(plan[1].ip, Ipv4Addr::new(10, 239, 0, 12));
        assert_eq!(plan[1].dir, Path::new("/s/nodes/ketch-n2"));
        assert_eq!(cgroup_parent(&plan[0]), "/ketch-n1");
    }

    #[test]
    fn bad_network_options_are_named() {
        let e = |name: &str, subnet: &str| format!("{:#}", Network::new(name, subnet).unwrap_err());
        assert!(e("Ketch", "10.239.0.0/24").contains("--cluster-name"));
        assert!(e("averyveryverylongname", "10.239.0.0/24").contains("--cluster-name"));
        assert!(e("k", "10.239.0.0").contains("--node-subnet"));
        assert!(e("k", "10.239.0.1/24").contains("host bits"));
        assert!(e("k", "10.239.0.0/28").contains("16 to 24"));
        assert!(e("k", "10.239.0.300/24").contains("bad address"));
    }

    #[test]
    fn only_our_ready_nodes_with_a_pod_cidr_count() {
        let list = r#"{"items":[
          {"metadata":{"name":"k-n1"},"spec":{"podCIDR":"10.244.0.0/24"},
           "status":{"conditions":[{"type":"Ready","status":"True",
             "lastHeartbeatTime":"2026-01-01T00:00:10Z"}]}},
          {"metadata":{"name":"k-n2"},"spec":{},
           "status":{"conditions":[{"type":"Ready","status":"True",
             "lastHeartbeatTime":"2026-01-01T00:00:10Z"}]}},
          {"metadata":{"name":"k-n3"},"spec":{"podCIDR":"10.244.2.0/24"},
           "status":{"conditions":[{"type":"Ready","status":"False",
             "lastHeartbeatTime":"2026-01-01T00:00:10Z"}]}},
          {"metadata":{"name":"k-n4"},"spec":{"podCIDR":"10.244.4.0/24"},
           "status":{"conditions":[{"type":"Ready","status":"True",
             "lastHeartbeatTime":"2026-01-01T00:00:04Z"}]}},
          {"metadata":{"name":"other"},"spec":{"podCIDR":"10.244.3.0/24"},
           "status":{"conditions":[{"type":"Ready","status":"True",
             "lastHeartbeatTime":"2026-01-01T00:00:10Z"}]}}]}"#;
        let names: Vec<String> = ["k-n1", "k-n2", "k-n3", "k-n4"].map(String::from).to_vec();
        let before: BTreeMap<String, jiff::Timestamp> = [("k-n4", "2026-01-01T00:00:04Z")]
            .into_iter()
            .map(|(n, t)| (n.to_string(), t.parse().expect("time")))
            .collect();
        let ready = ready_nodes(list, &names, &before);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready["k-n1"], "10.244.0.0/24");
    }

    #[test]
    fn containerd_config_keeps_everything_under_the_node() {
        let net = Network::new("ketch", "10.239.0.0/24").expect("valid");
        let n = &net.plan(1, Path::new("/s")).expect("plan")[0];
        let c = containerd_config(n, "localhost/pause:3.10");
        assert!(c.contains(r#"root = "/s/nodes/ketch-n1/containerd/root""#));
        assert!(c.contains(r#"address = "/s/nodes/ketch-n1/containerd/containerd.sock""#));
        assert!(c.contains(r#"sandbox_image = "localhost/pause:3.10""#));
        assert!(c.contains("restrict_oom_score_adj = true"));
    }
}
