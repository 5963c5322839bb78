//! Kernel-level tests of the Service load balancer: the real object loaded by aya into the real
//! kernel. NodePort through `BPF_PROG_TEST_RUN` on crafted frames (checksums verified here,
//! independently); socket load balancing with real sockets in a network namespace and a cgroup
//! of this test's own; the object loading with libbpf too.
//!
//! Needs root (bpf, mounts, namespaces, cgroups); without it every test says so and passes.
//! Object: `$KETCH_EBPF_OBJECT` or `<target dir>/ketch-ebpf.o` (`cargo xtask build-ebpf`).

use aya::programs::{SchedClassifier, TestRun, TestRunOptions};
use ketch_ebpf_common::{ct_flags, programs, stats};
use ketch_node::dataplane::packet::{TCP_ACK, TCP_FIN, frame, parse_checked, tcp_frame};
use ketch_node::dataplane::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;

const TC_ACT_OK: u32 = 0;
/// What `bpf_redirect_neigh` makes a tc program return: SNAT-ed packets leave through the FIB's
/// next hop instead of the stack (which would drop a local source arriving from outside).
const TC_ACT_REDIRECT: u32 = 7;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_UNSPEC: u32 = u32::MAX; // -1

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: dataplane kernel tests need root");
    false
}

/// A bpffs of this test's own; on drop: links and maps unpinned, unmounted, removed.
struct BpfDir {
    dir: tempfile::TempDir,
}

impl BpfDir {
    fn new() -> BpfDir {
        let dir = tempfile::Builder::new()
            .prefix("ketch-dptest-bpf")
            .tempdir()
            .expect("tempdir");
        BpfDir { dir }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("bpf")
    }
    fn config(&self) -> DataplaneConfig {
        let mut c = DataplaneConfig::new(self.path(), default_object_path());
        // Small maps: these tests write a handful of entries.
        c.sizes = MapSizes {
            services: 1024,
            backends: 1024,
            conntrack: 1024,
            affinity: 256,
            sock_revnat: 256,
        };
        c
    }
}

impl Drop for BpfDir {
    fn drop(&mut self) {
        let p = self.path();
        let _ = Dataplane::remove_pins(&p);
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().expect("socket address")
}

fn run(dp: &mut Dataplane, prog: &str, pkt: &[u8]) -> (u32, Vec<u8>) {
    let p: &mut SchedClassifier = dp
        .ebpf()
        .program_mut(prog)
        .expect("program")
        .try_into()
        .expect("classifier");
    let mut out = vec![0u8; pkt.len() + 256];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(pkt),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

const NODE: Ipv4Addr = Ipv4Addr::new(10, 239, 0, 11);

fn nodeport(port: u16, proto: Protocol, backends: Vec<BackendAddr>) -> Service {
    Service {
        frontend: Frontend {
            addr: Ipv4Addr::UNSPECIFIED,
            port,
            proto,
        },
        kind: ServiceKind::NodePort,
        backends,
        affinity_timeout: None,
        external_traffic_local: false,
        internal_traffic_local: false,
    }
}

fn backend(s: &str, local: bool) -> BackendAddr {
    let a = sa(s);
    BackendAddr {
        addr: *a.ip(),
        port: a.port(),
        local,
    }
}

#[test]
fn dataplane_nodeport_translation_in_the_kernel() {
    if !is_root() {
        return;
    }
    let bpf = BpfDir::new();
    let mut dp = Dataplane::open(bpf.config()).expect("open dataplane");
    dp.set_node_addresses(&[NODE], None)
        .expect("node addresses");
    dp.upsert_service(&nodeport(
        30080,
        Protocol::Tcp,
        vec![backend("10.244.1.5:8080", true)],
    ))
    .expect("upsert local");
    dp.upsert_service(&nodeport(
        30053,
        Protocol::Udp,
        vec![backend("10.244.2.7:5353", false)],
    ))
    .expect("upsert remote");
    dp.upsert_service(&nodeport(30099, Protocol::Tcp, vec![]))
        .expect("upsert empty");
    let client = sa("192.168.7.9:40000");

    // Local backend: DNAT only; the client address is kept.
    let syn = frame(Protocol::Tcp, client, SocketAddrV4::new(NODE, 30080), b"");
    let (ret, out) = run(&mut dp, programs::TC_INGRESS, &syn);
    assert_eq!(ret, TC_ACT_OK);
    let got = parse_checked(&out).expect("DNAT-ed frame has valid checksums");
    assert_eq!((got.src, got.dst), (client, sa("10.244.1.5:8080")));
    // The connection's next packet takes the conntrack entry to the same backend.
    let (ret, out2) = run(&mut dp, programs::TC_INGRESS, &syn);
    assert_eq!((ret, out2), (TC_ACT_OK, out));
    // The reply leaves through egress with the frontend as source.
    let reply = frame(Protocol::Tcp, sa("10.244.1.5:8080"), client, b"");
    let (ret, out) = run(&mut dp, programs::TC_EGRESS, &reply);
    assert_eq!(ret, TC_ACT_OK);
    let got = parse_checked(&out).expect("reverse-NAT-ed frame has valid checksums");
    assert_eq!((got.src, got.dst), (SocketAddrV4::new(NODE, 30080), client));

    // Remote backend: DNAT + SNAT to the node address, reply reversed on ingress.
    let udp = frame(
        Protocol::Udp,
        client,
        SocketAddrV4::new(NODE, 30053),
        b"query",
    );
    let (ret, out) = run(&mut dp, programs::TC_INGRESS, &udp);
    assert_eq!(ret, TC_ACT_REDIRECT);
    let got = parse_checked(&out).expect("SNAT-ed frame has valid checksums");
    assert_eq!(got.dst, sa("10.244.2.7:5353"));
    assert_eq!(*got.src.ip(), NODE);
    assert!((61000..=65535).contains(&got.src.port()), "{got:?}");
    let reply = frame(Protocol::Udp, sa("10.244.2.7:5353"), got.src, b"answer");
    let (ret, out) = run(&mut dp, programs::TC_INGRESS, &reply);
    assert_eq!(ret, TC_ACT_REDIRECT);
    let back = parse_checked(&out).expect("reply has valid checksums");
    assert_eq!(
        (back.src, back.dst),
        (SocketAddrV4::new(NODE, 30053), client)
    );

    // Traffic that is not a frontend passes untouched, on both hooks.
    for (prog, dst) in [
        (programs::TC_INGRESS, SocketAddrV4::new(NODE, 22)),
        (programs::TC_INGRESS, sa("10.1.2.3:30080")),
        (programs::TC_EGRESS, sa("10.244.1.5:8080")),
    ] {
        let f = frame(Protocol::Tcp, client, dst, b"x");
        let (ret, out) = run(&mut dp, prog, &f);
        assert_eq!((ret, &out), (TC_ACT_UNSPEC, &f), "{prog} {dst}");
    }

    // A frontend without backends goes on untouched to the stack, which refuses it (no socket
    // on the node port: RST or ICMP port unreachable), and is counted.
    let before = dp.stat(stats::NP_NO_BACKEND_REFUSED).expect("stat");
    let f = frame(Protocol::Tcp, client, SocketAddrV4::new(NODE, 30099), b"");
    assert_eq!(run(&mut dp, programs::TC_INGRESS, &f), (TC_ACT_UNSPEC, f));
    assert_eq!(
        dp.stat(stats::NP_NO_BACKEND_REFUSED).expect("stat"),
        before + 1
    );
    // externalTrafficPolicy Local with backends only on other nodes: dropped, as kube-proxy
    // does, and counted apart.
    let mut local = nodeport(
        30098,
        Protocol::Tcp,
        vec![backend("10.244.2.7:8080", false)],
    );
    local.external_traffic_local = true;
    dp.upsert_service(&local).expect("upsert local-policy");
    let before = dp.stat(stats::NP_NO_LOCAL_BACKEND_DROP).expect("stat");
    let f = frame(Protocol::Tcp, client, SocketAddrV4::new(NODE, 30098), b"");
    assert_eq!(run(&mut dp, programs::TC_INGRESS, &f).0, TC_ACT_SHOT);
    assert_eq!(
        dp.stat(stats::NP_NO_LOCAL_BACKEND_DROP).expect("stat"),
        before + 1
    );

    // The CLI readers see the connections: two per translated connection.
    let ct = dp.conntrack().expect("conntrack");
    assert_eq!(ct.len(), 4, "{ct:#?}");
    assert_eq!(ct.iter().filter(|e| e.is_reply()).count(), 2);

    // A FIN marks the TCP connection as closing; expiry then takes its two entries after the
    // short closing timeout, while the UDP connection stays until its own idle time.
    let fin = tcp_frame(
        client,
        SocketAddrV4::new(NODE, 30080),
        TCP_FIN | TCP_ACK,
        b"",
    );
    assert_eq!(run(&mut dp, programs::TC_INGRESS, &fin).0, TC_ACT_OK);
    let ct = dp.conntrack().expect("conntrack");
    let closing = ct
        .iter()
        .filter(|e| e.flags & ct_flags::CLOSING != 0)
        .collect::<Vec<_>>();
    assert_eq!(closing.len(), 1, "{ct:#?}");
    assert_eq!(closing[0].src, client);
    let t = CtTimeouts::default();
    let now = monotonic_now_ns();
    assert_eq!(dp.expire_conntrack(now, &t).expect("expire"), 0);
    let later = now + t.tcp_closing.as_nanos() as u64 + 1_000_000_000;
    assert_eq!(dp.expire_conntrack(later, &t).expect("expire"), 2);
    let ct = dp.conntrack().expect("conntrack");
    assert!(
        ct.iter().all(|e| e.proto == Some(Protocol::Udp)) && ct.len() == 2,
        "{ct:#?}"
    );
    let much_later = now + t.udp.as_nanos() as u64 + 1_000_000_000;
    assert_eq!(dp.expire_conntrack(much_later, &t).expect("expire"), 2);
    assert!(dp.conntrack().expect("conntrack").is_empty());
}

#[test]
fn dataplane_backend_swap_affinity_and_restart() {
    if !is_root() {
        return;
    }
    let bpf = BpfDir::new();
    let mut dp = Dataplane::open(bpf.config()).expect("open dataplane");
    dp.set_node_addresses(&[NODE], None)
        .expect("node addresses");
    let mut svc = nodeport(
        30100,
        Protocol::Tcp,
        (1..=4)
            .map(|i| backend(&format!("10.244.1.{i}:80"), true))
            .collect(),
    );
    svc.affinity_timeout = Some(600);
    let id = dp.upsert_service(&svc).expect("upsert");
    // Affinity: new connections (other source ports) of one client reach one backend.
    let mut seen = std::collections::BTreeSet::new();
    for sport in 41000..41016 {
        let f = frame(
            Protocol::Tcp,
            SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 9), sport),
            SocketAddrV4::new(NODE, 30100),
            b"",
        );
        let (ret, out) = run(&mut dp, programs::TC_INGRESS, &f);
        assert_eq!(ret, TC_ACT_OK);
        seen.insert(parse_checked(&out).expect("valid").dst);
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(dp.affinity().expect("affinity").len(), 1);

    // Swap to another set: listing shows exactly the new one, the id stays.
    svc.backends = vec![
        backend("10.244.1.2:80", true),
        backend("10.244.3.3:80", false),
    ];
    assert_eq!(dp.upsert_service(&svc).expect("swap"), id);
    let list = dp.list_services().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].backends, svc.backends);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].affinity_timeout, Some(600));

    // An agent restart (drop without cleanup) finds the same services in the pinned maps.
    drop(dp);
    let mut dp = Dataplane::open(bpf.config()).expect("reopen dataplane");
    let again = dp.list_services().expect("list");
    assert_eq!(again, list);
    assert!(dp.delete_service(&svc.stored_frontend()).expect("delete"));
    assert!(dp.list_services().expect("list").is_empty());
    let f = frame(
        Protocol::Tcp,
        sa("192.168.7.10:41000"),
        SocketAddrV4::new(NODE, 30100),
        b"",
    );
    assert_eq!(run(&mut dp, programs::TC_INGRESS, &f).0, TC_ACT_UNSPEC);
}

/// A cgroup v2 directory of this test's own; removed on drop (after its processes exited).
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let root = ketch_node::dataplane::cgroup::cgroup2_root().expect("a cgroup2 mount");
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("create cgroup");
        Cgroup(dir)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A network namespace of this test's own with `10.250.0.2/32` on its loopback.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        if Path::new("/run/netns").join(name).exists() {
            // Left by a killed run of this test (the name has our pid, so it is ours).
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
        let ns = Netns(name.to_string());
        for args in [
            vec!["netns", "add", name],
            vec!["-n", name, "link", "set", "lo", "up"],
            vec!["-n", name, "addr", "add", "10.250.0.2/32", "dev", "lo"],
        ] {
            let st = Command::new("ip").args(&args).status().expect("run ip");
            assert!(st.success(), "ip {args:?}");
        }
        ns
    }
    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.0)
    }
    /// Moves the calling thread into the namespace.
    fn enter(&self) {
        let f = std::fs::File::open(self.path()).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 77, 1);
const EMPTY_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 77, 2);

fn cluster_ip(addr: Ipv4Addr, port: u16, proto: Protocol, backends: Vec<BackendAddr>) -> Service {
    Service {
        frontend: Frontend { addr, port, proto },
        kind: ServiceKind::ClusterIp,
        backends,
        affinity_timeout: None,
        external_traffic_local: false,
        internal_traffic_local: false,
    }
}

/// Echo servers (TCP 8080, UDP 5353) on 10.250.0.2 inside the namespace, on their own thread.
fn start_servers(ns: &Netns) {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = ns.path();
    std::thread::spawn(move || {
        let f = std::fs::File::open(path).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let tcp = std::net::TcpListener::bind("10.250.0.2:8080").expect("bind tcp");
        let udp = std::net::UdpSocket::bind("10.250.0.2:5353").expect("bind udp");
        tx.send(()).expect("ready");
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], from);
            }
        });
        for s in tcp.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s.try_clone().expect("clone"), &mut s);
            });
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("servers ready");
}

/// Runs `client_helper` below in a new process that is in `cg` and in `ns`, and returns what
/// it printed.
fn run_client(cg: &Cgroup, ns: &Netns) -> String {
    let exe = std::env::current_exe().expect("current exe");
    // The shell joins the cgroup first, so nsenter and the test binary start inside it.
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg("echo $$ > \"$1/cgroup.procs\" && shift && exec /usr/bin/nsenter --net=\"$1\" -- \"$2\" --exact client_helper --nocapture --test-threads=1")
        .arg("sh")
        .arg(&cg.0)
        .arg(ns.path())
        .arg(exe)
        .env("KETCH_DP_CLIENT", "1")
        .output()
        .expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    // The harness may print "test client_helper ... " on the same line as the first field.
    let pat = format!("{key}=");
    out.lines()
        .find_map(|l| l.find(&pat).map(|i| &l[i + pat.len()..]))
        .unwrap_or_else(|| panic!("{key} missing in client output:\n{out}"))
}

/// The client side, run only as a child of `dataplane_socket_lb_real_sockets`.
#[test]
fn client_helper() {
    if std::env::var_os("KETCH_DP_CLIENT").is_none() {
        return;
    }
    use std::io::{Read, Write};
    let t = std::time::Duration::from_secs(5);
    let front = SocketAddrV4::new(CLUSTER_IP, 80);
    let mut s = std::net::TcpStream::connect_timeout(&front.into(), t).expect("tcp connect");
    s.set_read_timeout(Some(t)).expect("timeout");
    s.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).expect("read echo");
    println!("TCP_PEER={}", s.peer_addr().expect("peer"));
    println!("TCP_ECHO={}", String::from_utf8_lossy(&buf));

    let u = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp bind");
    u.set_read_timeout(Some(t)).expect("timeout");
    u.send_to(b"dgram", SocketAddrV4::new(CLUSTER_IP, 53))
        .expect("send_to");
    let mut buf = [0u8; 64];
    let (n, from) = u.recv_from(&mut buf).expect("recv_from");
    println!("UDP_FROM={from}");
    println!("UDP_ECHO={}", String::from_utf8_lossy(&buf[..n]));

    let c = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp bind");
    c.set_read_timeout(Some(t)).expect("timeout");
    c.connect(SocketAddrV4::new(CLUSTER_IP, 53))
        .expect("connect");
    c.send(b"conn").expect("send");
    let n = c.recv(&mut buf).expect("recv");
    println!("UDPC_PEER={}", c.peer_addr().expect("peer"));
    println!("UDPC_ECHO={}", String::from_utf8_lossy(&buf[..n]));

    let started = std::time::Instant::now();
    let e = std::net::TcpStream::connect_timeout(&SocketAddrV4::new(EMPTY_IP, 80).into(), t)
        .expect_err("no backend must refuse");
    println!("EMPTY_ERR={}", e.raw_os_error().unwrap_or(0));
    // Reported, not asserted (no timing assertions): how "immediate" the refusal was.
    println!("EMPTY_MS={}", started.elapsed().as_millis());
}

#[test]
fn dataplane_socket_lb_real_sockets() {
    if !is_root() {
        return;
    }
    let tag = std::process::id();
    let bpf = BpfDir::new();
    let cg = Cgroup::new(&format!("ketch-dptest-{tag}"));
    let ns = Netns::new(&format!("ketch-dptest-{tag}"));
    start_servers(&ns);

    // Open (and later reopen) from a thread inside the namespace, as the agent runs inside its
    // node's namespace: the tc programs go on that namespace's `lo`, the socket programs on
    // the cgroup.
    let open = |bpf: &BpfDir| {
        let mut cfg = bpf.config();
        cfg.interface = Some("lo".into());
        cfg.cgroup = Some(cg.0.clone());
        std::thread::scope(|s| {
            s.spawn(|| {
                ns.enter();
                Dataplane::open(cfg)
            })
            .join()
            .expect("open thread")
        })
        .expect("open dataplane")
    };
    let mut dp = open(&bpf);
    let pod = |port| backend(&format!("10.250.0.2:{port}"), true);
    dp.upsert_service(&cluster_ip(CLUSTER_IP, 80, Protocol::Tcp, vec![pod(8080)]))
        .expect("tcp service");
    dp.upsert_service(&cluster_ip(CLUSTER_IP, 53, Protocol::Udp, vec![pod(5353)]))
        .expect("udp service");
    dp.upsert_service(&cluster_ip(EMPTY_IP, 80, Protocol::Tcp, vec![]))
        .expect("empty service");

    let check = |out: &str| {
        assert_eq!(field(out, "TCP_PEER"), "10.96.77.1:80");
        assert_eq!(field(out, "TCP_ECHO"), "ping");
        assert_eq!(field(out, "UDP_FROM"), "10.96.77.1:53");
        assert_eq!(field(out, "UDP_ECHO"), "dgram");
        assert_eq!(field(out, "UDPC_PEER"), "10.96.77.1:53");
        assert_eq!(field(out, "UDPC_ECHO"), "conn");
        assert_eq!(field(out, "EMPTY_ERR"), nix::libc::EPERM.to_string());
    };
    let out = run_client(&cg, &ns);
    check(&out);
    eprintln!(
        "no-backend connect refused in {} ms",
        field(&out, "EMPTY_MS")
    );
    let translated = dp.stat(stats::SOCK_TRANSLATED).expect("stat");
    assert!(translated >= 3, "sock_translated = {translated}");

    // Agent restart: programs replaced through the pinned links, maps reused; still works.
    drop(dp);
    let dp = open(&bpf);
    assert_eq!(dp.list_services().expect("list").len(), 3);
    check(&run_client(&cg, &ns));
    let links: Vec<_> = std::fs::read_dir(bpf.path().join("links"))
        .expect("links dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(links.len(), 6, "{links:?}");
    dp.detach().expect("detach");
}

/// The object loads with libbpf as well (so bpftool and other libbpf tools can use it).
#[test]
fn dataplane_object_loads_with_libbpf() {
    if !is_root() {
        return;
    }
    let path = default_object_path();
    assert!(path.exists(), "{} missing", path.display());
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: libbpf's C API: a valid NUL-terminated path, null options; the object is closed
    // before return and not used after.
    #[allow(unsafe_code)]
    unsafe {
        let obj = libbpf_sys::bpf_object__open_file(c.as_ptr(), std::ptr::null());
        assert!(
            !obj.is_null() && libbpf_sys::libbpf_get_error(obj as *const _) == 0,
            "bpf_object__open_file failed"
        );
        let mut n = 0;
        let mut p = libbpf_sys::bpf_object__next_program(obj, std::ptr::null_mut());
        while !p.is_null() {
            n += 1;
            p = libbpf_sys::bpf_object__next_program(obj, p);
        }
        let rc = libbpf_sys::bpf_object__load(obj);
        libbpf_sys::bpf_object__close(obj);
        assert_eq!(rc, 0, "bpf_object__load: {rc}");
        assert_eq!(n, 6, "programs seen by libbpf");
    }
}
