//! The real `ketch-cni` binary against real network namespaces (needs root, iproute2, nsenter and
//! busybox). Each test makes its own "node" namespace, runs the plugin inside it with
//! `nsenter --net=…`, and "pod" namespaces for the containers; guards delete them all.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use ketch_node::cni::host_veth_name;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ketch-cni");
const CIDR: &str = "10.77.0.0/29"; // .2 ... .6 are handed out

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(what: &str) -> String {
    format!(
        "kcni-{}-{}-{what}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
fn ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace this test made; deleted on drop (with every link in it).
struct Netns {
    name: String,
}

impl Netns {
    fn new(what: &str) -> Self {
        let name = unique(what);
        ok("ip", &["netns", "add", &name]);
        Self { name }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n <ns> …`
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ok("ip", &all)
    }

    fn has_link(&self, name: &str) -> bool {
        run("ip", &["-n", &self.name, "link", "show", "dev", name])
            .status
            .success()
    }

    fn delete(&self) {
        // Already gone is fine (a test may delete a pod's namespace itself).
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

/// What one plugin run printed and how it ended.
struct Reply {
    json: Value,
    success: bool,
    stderr: String,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "success={} stdout={} stderr={}",
            self.success, self.json, self.stderr
        )
    }
}

/// A node: its namespace, where the plugin runs, and its IPAM directory.
struct Node {
    ns: Netns,
    data: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        Self {
            ns: Netns::new("node"),
            data: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn ipam_dir(&self) -> PathBuf {
        self.data.path().join("ipam")
    }

    fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "ketch",
            "type": "ketch-cni",
            "podCIDR": CIDR,
            "dataDir": self.ipam_dir(),
            "mtu": 1400,
        })
    }

    /// Runs the plugin in the node's namespace with only the given `CNI_*` variables.
    fn plugin(&self, env: &[(&str, &str)], stdin: &str) -> Reply {
        use std::io::Write;
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.path().display()))
            .arg("--")
            .arg(BIN)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("KETCH_CNI_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ketch-cni");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait ketch-cni");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"))
        };
        Reply {
            json,
            success: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn attach(&self, command: &str, id: &str, netns: &Path, conf: &Value) -> Reply {
        let netns = netns.display().to_string();
        self.plugin(
            &[
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", id),
                ("CNI_NETNS", &netns),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/usr/lib/cni"),
                (
                    "CNI_ARGS",
                    &format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={id};K8S_POD_UID=uid-{id}"),
                ),
            ],
            &conf.to_string(),
        )
    }

    fn add(&self, id: &str, pod: &Netns) -> Value {
        let r = self.attach("ADD", id, &pod.path(), &self.conf());
        assert!(r.success, "ADD {id}: {r:?}");
        r.json
    }

    fn del(&self, id: &str, netns: &Path) {
        let r = self.attach("DEL", id, netns, &self.conf());
        assert!(r.success, "DEL {id}: {r:?}");
        assert_eq!(r.json, Value::Null, "DEL prints nothing");
    }

    fn check(&self, id: &str, pod: &Netns, prev: &Value) -> Reply {
        let mut conf = self.conf();
        conf["prevResult"] = prev.clone();
        self.attach("CHECK", id, &pod.path(), &conf)
    }

    /// The addresses with a state file in the IPAM directory.
    fn allocated(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.ipam_dir())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.parse::<std::net::Ipv4Addr>().is_ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn sysctl(&self, path: &str) -> String {
        ok(
            "nsenter",
            &[
                &format!("--net={}", self.ns.path().display()),
                "--",
                "cat",
                path,
            ],
        )
        .trim()
        .to_string()
    }
}

/// A line of `ip route` output starting with `start` and containing `with`.
fn has_route(routes: &str, start: &str, with: &str) -> bool {
    routes
        .lines()
        .any(|l| l.starts_with(start) && l.contains(with))
}

fn pod_ip(result: &Value) -> String {
    let addr = result["ips"][0]["address"]
        .as_str()
        .expect("ips[0].address");
    addr.strip_suffix("/32")
        .unwrap_or_else(|| panic!("{addr} is not a /32"))
        .to_string()
}

/// Pings from `from` to `ip`, a few tries of five seconds each.
fn ping(from: &Netns, ip: &str) {
    let mut last = None;
    for _ in 0..3 {
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                &from.name,
                "/bin/busybox",
                "ping",
                "-c1",
                "-W5",
                ip,
            ],
        );
        if out.status.success() {
            return;
        }
        last = Some(out);
    }
    let out = last.expect("tried");
    panic!(
        "ping {ip} from {} failed: {}{}",
        from.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn add_check_ping_and_del_two_pods() {
    let node = Node::new();
    let pod_a = Netns::new("pa");
    let pod_b = Netns::new("pb");
    let id_a = unique("ca");
    let id_b = unique("cb");
    // The node does not forward in general: pod traffic must pass on the veths' own setting.
    ok(
        "nsenter",
        &[
            &format!("--net={}", node.ns.path().display()),
            "--",
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=0",
        ],
    );

    // ADD: the result lists host veth and pod interface, the /32 and the default route.
    let res_a = node.add(&id_a, &pod_a);
    let veth_a = host_veth_name(&id_a, "eth0");
    assert_eq!(res_a["cniVersion"], "1.0.0");
    assert_eq!(res_a["interfaces"][0]["name"], veth_a.as_str());
    assert!(res_a["interfaces"][0].get("sandbox").is_none());
    assert_eq!(res_a["interfaces"][1]["name"], "eth0");
    assert_eq!(
        res_a["interfaces"][1]["sandbox"],
        pod_a.path().display().to_string()
    );
    assert_eq!(
        res_a["ips"],
        json!([{"address": "10.77.0.2/32", "gateway": "169.254.1.1", "interface": 1}])
    );
    assert_eq!(
        res_a["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}])
    );
    let res_b = node.add(&id_b, &pod_b);
    let veth_b = host_veth_name(&id_b, "eth0");
    assert_eq!(pod_ip(&res_b), "10.77.0.3");
    assert_eq!(node.allocated(), vec!["10.77.0.2", "10.77.0.3"]);
    let state = std::fs::read_to_string(node.ipam_dir().join("10.77.0.2")).expect("state file");
    assert_eq!(state, format!("{id_a}\neth0\n"));

    // The pod side: the /32, the gateway routes, the permanent neighbour with the host MAC.
    let host_mac = res_a["interfaces"][0]["mac"].as_str().expect("mac");
    let addr = pod_a.ip(&["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains("inet 10.77.0.2/32"), "{addr}");
    let link = pod_a.ip(&["-o", "link", "show", "dev", "eth0"]);
    assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");
    let routes = pod_a.ip(&["-4", "route", "show"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev eth0"),
        "{routes}"
    );
    assert!(
        has_route(&routes, "169.254.1.1 dev eth0 ", "scope link"),
        "{routes}"
    );
    let neigh = pod_a.ip(&["-4", "neigh", "show", "dev", "eth0"]);
    assert!(
        neigh.contains(&format!("169.254.1.1 lladdr {host_mac} PERMANENT")),
        "{neigh}"
    );
    // The node side: the veth up, the /32 route to it, forwarding and rp_filter on it.
    let routes = node.ns.ip(&["-4", "route", "show"]);
    assert!(
        has_route(&routes, &format!("10.77.0.2 dev {veth_a} "), "scope link"),
        "{routes}"
    );
    assert!(
        has_route(&routes, &format!("10.77.0.3 dev {veth_b} "), "scope link"),
        "{routes}"
    );
    let link = node.ns.ip(&["-o", "link", "show", "dev", &veth_a]);
    assert!(link.contains(",UP") && link.contains("mtu 1400"), "{link}");
    assert_eq!(
        node.sysctl(&format!("/proc/sys/net/ipv4/conf/{veth_a}/forwarding")),
        "1"
    );
    assert_eq!(
        node.sysctl(&format!("/proc/sys/net/ipv4/conf/{veth_a}/rp_filter")),
        "1"
    );

    // The pods reach each other, routed through the node's namespace.
    ping(&pod_a, "10.77.0.3");
    ping(&pod_b, "10.77.0.2");
    // The node reaches its pods from its own address (.1, as kubelet probes do).
    node.ns.ip(&["link", "set", "lo", "up"]);
    node.ns.ip(&["addr", "add", "10.77.0.1/32", "dev", "lo"]);
    ping(&node.ns, "10.77.0.2");

    // CHECK passes for both; it notices a missing neighbour entry.
    let r = node.check(&id_a, &pod_a, &res_a);
    assert!(r.success, "CHECK a: {r:?}");
    assert_eq!(r.json, Value::Null, "CHECK prints nothing");
    let r = node.check(&id_b, &pod_b, &res_b);
    assert!(r.success, "CHECK b: {r:?}");
    pod_b.ip(&["neigh", "del", "169.254.1.1", "dev", "eth0"]);
    let r = node.check(&id_b, &pod_b, &res_b);
    assert!(!r.success, "CHECK b without neighbour: {r:?}");
    assert_eq!(r.json["code"], 101, "{r:?}");

    // DEL removes the pair and frees the address; twice is fine.
    node.del(&id_a, &pod_a.path());
    assert!(!node.ns.has_link(&veth_a), "host veth left behind");
    assert!(!pod_a.has_link("eth0"), "pod interface left behind");
    assert_eq!(node.allocated(), vec!["10.77.0.3"]);
    node.del(&id_a, &pod_a.path());
    node.del(&unique("never-added"), &pod_a.path());

    // Round-robin: the freed .2 comes back only after .4, .5 and .6 were handed out.
    for expect in ["10.77.0.4", "10.77.0.5", "10.77.0.6", "10.77.0.2"] {
        let id = unique("cx");
        let res = node.add(&id, &pod_a);
        assert_eq!(pod_ip(&res), expect);
        node.del(&id, &pod_a.path());
    }

    // DEL after the pod's namespace is gone (and without CNI_NETNS at all) still frees it.
    pod_b.delete();
    node.del(&id_b, &pod_b.path());
    let r = node.plugin(
        &[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", &id_b),
            ("CNI_IFNAME", "eth0"),
        ],
        &node.conf().to_string(),
    );
    assert!(r.success, "DEL without netns: {r:?}");
    assert!(node.allocated().is_empty(), "{:?}", node.allocated());
    assert!(!node.ns.has_link(&veth_b));
}

#[test]
fn concurrent_adds_get_distinct_addresses() {
    let node = Node::new();
    let pods: Vec<Netns> = (0..5).map(|i| Netns::new(&format!("p{i}"))).collect();
    let ids: Vec<String> = (0..5).map(|i| unique(&format!("c{i}"))).collect();
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .zip(&ids)
            .map(|(pod, id)| {
                let node = &node;
                s.spawn(move || node.add(id, pod))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ADD thread"))
            .collect()
    });
    let ips: HashSet<String> = results.iter().map(pod_ip).collect();
    assert_eq!(ips.len(), 5, "{ips:?}");
    assert_eq!(node.allocated().len(), 5);
    // The whole /29 is in use now: a sixth ADD fails cleanly with our "exhausted" code.
    let extra = Netns::new("px");
    let r = node.attach("ADD", &unique("cx"), &extra.path(), &node.conf());
    assert!(!r.success);
    assert_eq!(r.json["code"], 100, "{r:?}");
    assert!(!extra.has_link("eth0"));
    ping(&pods[0], &pod_ip(&results[4]));
    for (pod, id) in pods.iter().zip(&ids) {
        node.del(id, &pod.path());
    }
    assert!(node.allocated().is_empty());
}

#[test]
fn bad_input_gives_error_json_and_failure() {
    let node = Node::new();
    let pod = Netns::new("pe");
    let pod_path = pod.path().display().to_string();
    let conf = node.conf();
    let add_env = |netns: &str| -> Vec<(&'static str, String)> {
        vec![
            ("CNI_COMMAND", "ADD".to_string()),
            ("CNI_CONTAINERID", "bad-input-1".to_string()),
            ("CNI_NETNS", netns.to_string()),
            ("CNI_IFNAME", "eth0".to_string()),
        ]
    };
    let call = |env: &[(&'static str, String)], stdin: &str| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        node.plugin(&env, stdin)
    };
    let expect_error = |r: Reply, code: u64| {
        assert!(!r.success, "expected failure: {r:?}");
        assert_eq!(r.json["code"], code, "{r:?}");
        assert!(
            r.json["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{r:?}"
        );
        assert!(r.json["cniVersion"].is_string(), "{r:?}");
        r.json
    };

    // VERSION
    let r = node.plugin(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"1.0.0"}"#);
    assert!(r.success);
    assert_eq!(
        r.json,
        json!({"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]})
    );

    // Environment: 4, naming the variable.
    let e = expect_error(node.plugin(&[], &conf.to_string()), 4);
    assert!(e["msg"].as_str().is_some_and(|m| m.contains("CNI_COMMAND")));
    expect_error(
        node.plugin(&[("CNI_COMMAND", "FROB")], &conf.to_string()),
        4,
    );
    let mut env = add_env(&pod_path);
    env.retain(|(k, _)| *k != "CNI_NETNS");
    let e = expect_error(call(&env, &conf.to_string()), 4);
    assert!(
        e["msg"].as_str().is_some_and(|m| m.contains("CNI_NETNS")),
        "{e}"
    );
    let mut env = add_env(&pod_path);
    env[3].1 = "a-very-long-ifname".to_string();
    expect_error(call(&env, &conf.to_string()), 4);

    // Configuration: 6 undecodable, 1 version, 7 invalid, 2 unsupported field.
    expect_error(call(&add_env(&pod_path), "{not json"), 6);
    let mut c = conf.clone();
    c["cniVersion"] = json!("0.2.0");
    expect_error(call(&add_env(&pod_path), &c.to_string()), 1);
    let mut c = conf.clone();
    c["podCIDR"] = json!("10.77.0.0/31");
    let e = expect_error(call(&add_env(&pod_path), &c.to_string()), 7);
    assert_eq!(e["cniVersion"], "1.0.0");
    let mut c = conf.clone();
    c["ipam"] = json!({"type": "host-local"});
    expect_error(call(&add_env(&pod_path), &c.to_string()), 2);
    let mut c = conf.clone();
    c["cniVersion"] = json!("1.1.0");
    let gc = [
        ("CNI_COMMAND", "GC".to_string()),
        ("CNI_PATH", "/usr/lib/cni".to_string()),
    ];
    expect_error(call(&gc, &c.to_string()), 1);

    // A namespace that does not exist: 3. The node's own namespace: 8.
    let missing = format!("/run/netns/{}", unique("missing"));
    expect_error(call(&add_env(&missing), &conf.to_string()), 3);
    let own = node.ns.path().display().to_string();
    expect_error(call(&add_env(&own), &conf.to_string()), 8);

    // An interface of that name already in the pod: ADD fails and leaves nothing behind.
    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "theirs",
    ]);
    let r = call(&add_env(&pod_path), &conf.to_string());
    let e = expect_error(r, 999);
    assert!(
        e["msg"]
            .as_str()
            .is_some_and(|m| m.contains("already exists")),
        "{e}"
    );
    assert!(node.allocated().is_empty(), "{:?}", node.allocated());
    assert!(!node.ns.has_link(&host_veth_name("bad-input-1", "eth0")));
    let link = pod.ip(&["-d", "-o", "link", "show", "dev", "eth0"]);
    assert!(
        link.contains("eth0@theirs"),
        "the pod's own eth0 must be untouched: {link}"
    );
}
