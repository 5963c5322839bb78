//! A two-node cluster as a user gets it from `ketch up`, driven with the real kubectl: pods run
//! in containerd on both nodes and reach each other, logs and exec work, probes restart and
//! gate, ConfigMaps and Secrets arrive, a killed agent adopts its pods, a lost node's pods move,
//! and `ketch down` leaves nothing behind.
//!
//! Own names everywhere (cluster `kt<i>`, nodes `kt<i>-n1`/`kt<i>-n2`, bridge `kt<i>0`, subnet
//! 10.<200+i>.0.0/24, pods from 10.<150+i>.0.0/16, free ports), with `i` chosen so that
//! nothing on the machine has those names yet (not even what an earlier, killed run left), so
//! no other cluster is touched.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// This run's cluster name and address ranges.
struct Net {
    name: String,
    subnet: String,
    gateway: String,
    /// Prefix every pod IP and pod CIDR starts with, e.g. `10.150.`.
    pods: String,
}

impl Net {
    fn node(&self, i: u8) -> String {
        format!("{}-n{i}", self.name)
    }

    /// Node `i`'s address: `.10+i` of the node subnet.
    fn node_ip(&self, i: u8) -> String {
        format!("{}{}", &self.gateway[..self.gateway.len() - 1], 10 + i)
    }
}

fn net() -> &'static Net {
    static NET: std::sync::OnceLock<Net> = std::sync::OnceLock::new();
    NET.get_or_init(|| {
        let routes = text(&Command::new("ip").arg("route").output().expect("ip").stdout);
        let start = std::process::id() % 40;
        (0..40)
            .map(|k| (start + k) % 40)
            .map(|i| Net {
                name: format!("kt{i}"),
                subnet: format!("10.{}.0.0/24", 200 + i),
                gateway: format!("10.{}.0.1", 200 + i),
                pods: format!("10.{}.", 150 + i),
            })
            .find(|n| {
                let free = |p: String| !Path::new(&p).exists();
                free(format!("/run/netns/{}", n.node(1)))
                    && free(format!("/run/netns/{}", n.node(2)))
                    && free(format!("/sys/class/net/{}0", n.name))
                    && free(format!("/sys/class/net/{}n1", n.name))
                    && free(format!("/sys/class/net/{}n2", n.name))
                    && !routes.contains(&n.pods)
                    && !routes.contains(&n.subnet[..n.subnet.len() - 4])
            })
            .expect("a free cluster name and subnet")
    })
}
/// Ceiling for anything a cluster does on its own; generous, since CI machines are shared.
const PATIENCE: Duration = Duration::from_secs(240);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn ketch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ketch"))
        .args(args)
        .output()
        .expect("run ketch")
}

fn kubectl_bin() -> PathBuf {
    if let Some(k) = std::env::var_os("KETCH_KUBECTL") {
        return PathBuf::from(k);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_ketch"))
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("ketch-venv/bin/kubectl"))
        .expect("target dir")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `f` every half second until it gives a value; panics with `what` after `PATIENCE`.
fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The cluster; `ketch down` runs when it goes out of scope, also when the test fails.
struct Cluster {
    dir: tempfile::TempDir,
    state: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = ketch(&["down", "--state-dir", &self.state]);
    }
}

impl Cluster {
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(kubectl_bin())
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args, None);
        assert!(
            out.status.success(),
            "kubectl {}: {}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn apply(&self, yaml: &str) {
        let out = self.kubectl(&["apply", "-f", "-"], Some(yaml));
        assert!(out.status.success(), "apply: {}", text(&out.stderr));
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl json")
    }

    fn pod(&self, name: &str) -> Value {
        self.json(&["get", "pod", name])
    }

    fn pods(&self, selector: &str) -> Vec<Value> {
        self.json(&["get", "pods", "-l", selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the pod runs and is Ready; the pod.
    fn running(&self, name: &str) -> Value {
        wait(&format!("pod {name} Running and Ready"), || {
            let p = self.pod(name);
            (p["status"]["phase"] == "Running" && is_ready(&p)).then_some(p)
        })
    }

    fn exec(&self, pod: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", pod, "--"];
        args.extend_from_slice(cmd);
        self.kubectl(&args, None)
    }

    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("state.json")).expect("state");
        serde_json::from_str(&text).expect("state json")
    }

    fn pid(&self, process: &str) -> i32 {
        self.state()["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .find(|p| p["name"] == process)
            .and_then(|p| p["pid"].as_i64())
            .unwrap_or_else(|| panic!("no process {process}")) as i32
    }

    /// Runs `cmd` as one of `node`'s own processes (`ketch node-exec`).
    fn node_exec(&self, node: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["node-exec", "--state-dir", &self.state, node, "--"];
        args.extend_from_slice(cmd);
        ketch(&args)
    }

    /// `(hostname, client address)` as an echo pod saw a request for `url`, fetched from `pod`.
    fn who(&self, pod: &str, url: &str) -> Option<(String, String)> {
        let out = self.exec(pod, &["timeout", "5", "wget", "-qO-", url]);
        who_said(&out)
    }

    /// How many backends node `node`'s kernel holds for the frontend `label`
    /// (`10.96.0.7:80/TCP`), per `ketch bpf services`.
    fn backends_in_kernel(&self, node: &str, label: &str) -> Option<usize> {
        let out = ketch(&[
            "bpf",
            "services",
            "--state-dir",
            &self.state,
            "--node",
            node,
        ]);
        let shown = text(&out.stdout);
        let line = shown
            .lines()
            .find(|l| l.starts_with(&format!("{label} ")))?;
        Some(if line.contains("(none: refused)") {
            0
        } else {
            line.matches(", ").count() + 1
        })
    }

    fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.path().join("nodes").join(node)
    }

    /// IDs of the containers (sandbox included) of a pod in its node's containerd.
    fn containers(&self, node: &str, uid: &str) -> Vec<String> {
        let sock = self.node_dir(node).join("containerd/containerd.sock");
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&sock)
            .args(["-n", "k8s.io", "containers", "ls", "-q"])
            .arg(format!("labels.\"io.kubernetes.pod.uid\"=={uid}"))
            .output()
            .expect("ctr");
        assert!(out.status.success(), "ctr: {}", text(&out.stderr));
        text(&out.stdout).lines().map(String::from).collect()
    }
}

/// Parses the `/cgi-bin/who` answer of an echo pod.
fn who_said(out: &Output) -> Option<(String, String)> {
    let body = text(&out.stdout);
    let mut words = body.split_whitespace();
    match (out.status.success(), words.next(), words.next()) {
        (true, Some(host), Some(addr)) if host.starts_with("echo-") => {
            // httpd listens on a dual-stack socket: `[::ffff:10.0.0.1]`.
            let addr = addr.trim_start_matches("[::ffff:").trim_end_matches(']');
            Some((host.to_string(), addr.to_string()))
        }
        _ => None,
    }
}

/// Sends a line on a long-lived connection and waits for its echo.
fn echo_line(w: &mut impl Write, lines: &std::sync::mpsc::Receiver<String>, msg: &str) {
    writeln!(w, "{msg}").expect("write to the connection");
    w.flush().expect("flush");
    let got = lines
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("no echo of {msg:?}: {e}"));
    assert_eq!(got, msg);
}

/// The lines `r` yields, on a channel (so a reader can wait with a ceiling).
fn line_channel(r: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_default()
}

fn kill9(pid: i32) {
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill")
            .success()
    );
    wait(&format!("pid {pid} to die"), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        matches!(state, None | Some("Z") | Some("X")).then_some(())
    });
}

/// What exists on the machine that a cluster could leave behind.
#[derive(Debug, PartialEq)]
struct Traces {
    netns: Vec<String>,
    links: Vec<String>,
    mounts: Vec<String>,
    cgroups: Vec<String>,
    routes: Vec<String>,
}

fn traces(state_dir: &Path) -> Traces {
    let names = |dir: &str, keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| keep(n))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let ours = |n: &str| n.starts_with(&net().name);
    let mut cgroups = Vec::new();
    for h in names("/sys/fs/cgroup", &|_| true) {
        for c in names(&format!("/sys/fs/cgroup/{h}"), &ours) {
            cgroups.push(format!("{h}/{c}"));
        }
    }
    let prefix = state_dir.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    let routes = text(
        &Command::new("ip")
            .args(["route"])
            .output()
            .expect("ip")
            .stdout,
    )
    .lines()
    .filter(|r| r.starts_with(&net().pods) || r.contains(&format!("{}0", net().name)))
    .map(String::from)
    .collect();
    Traces {
        // Pod namespaces containerd makes are named cni-<uuid>; any new one is a leak.
        netns: names("/run/netns", &|_| true),
        links: names("/sys/class/net", &ours),
        mounts,
        cgroups,
        routes,
    }
}

const APPS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      # A lost node's pods move after 2 s instead of the default 300 s.
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - name: httpd
        image: localhost/busybox:latest
        command: ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"]
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 1; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: ["sh", "-c", "touch /tmp/ok; exec sleep 100000"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/ok"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: rd}
spec:
  selector: {app: rd}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: ready, labels: {app: rd}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/tmp"]
    readinessProbe:
      tcpSocket: {port: 80}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: never-ready, labels: {app: rd}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/tmp"]
    readinessProbe:
      tcpSocket: {port: 81}
      periodSeconds: 1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, file.txt: from-configmap}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: cfgpod}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: ["sleep", "100000"]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    envFrom:
    - {configMapRef: {name: cfg}, prefix: CM_}
    volumeMounts:
    - {name: cm, mountPath: /etc/cfg}
    - {name: sc, mountPath: /etc/sec}
  volumes:
  - {name: cm, configMap: {name: cfg}}
  - {name: sc, secret: {secretName: sec}}
"#;

/// Pods of every QoS class on one node, for the eviction order.
const EVICTION: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: be, labels: {evict: "yes"}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: localhost/busybox:latest, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: bu, labels: {evict: "yes"}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: [sleep, "3600"]
    resources: {requests: {memory: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: gu, labels: {evict: "yes"}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: [sleep, "3600"]
    resources: {requests: {memory: 32Mi, cpu: 10m}, limits: {memory: 32Mi, cpu: 10m}}
"#;

/// A ClusterIP and a NodePort Service over the web pods, and one that selects nothing.
const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: webnp}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 8080, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  type: NodePort
  selector: {app: nothing-has-this}
  ports: [{port: 80}]
"#;

/// Pods that say who they are and who asked (CGI `/cgi-bin/who`: `<hostname> <client address>`),
/// echo TCP lines on 7000, and are ready while /tmp/ready exists; Services over them: plain,
/// sticky (ClientIP affinity), NodePort with externalTrafficPolicy Local, NodePort for the echo.
const ECHO: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: echo-cgi}
data:
  who: |
    #!/bin/sh
    echo "Content-Type: text/plain"
    echo
    echo "$(hostname) $REMOTE_ADDR"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: http
        image: localhost/busybox:latest
        command: ["sh", "-c", "touch /tmp/ready && exec httpd -f -p 80 -h /www"]
        volumeMounts: [{name: cgi, mountPath: /www/cgi-bin}]
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
      - name: tcp-echo
        image: localhost/busybox:latest
        command: ["nc", "-ll", "-p", "7000", "-e", "/bin/cat"]
      volumes:
      - name: cgi
        configMap: {name: echo-cgi, defaultMode: 0755}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80}, {name: tcp-echo, port: 7000}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-sticky}
spec:
  selector: {app: echo}
  sessionAffinity: ClientIP
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: echo}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-np}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 7000}]
"#;

/// A UDP Service without selector whose endpoints are the nodes' cluster DNS servers.
const NODE_DNS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: node-dns}
spec:
  ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: node-dns-1
  labels: {kubernetes.io/service-name: node-dns}
addressType: IPv4
ports: [{name: dns, port: 53, protocol: UDP}]
endpoints:
- {addresses: [NODE1], conditions: {ready: true}}
- {addresses: [NODE2], conditions: {ready: true}}
"#;

/// Burstable, and far over its request once it filled its memory-backed volume.
const HOG: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: hog, labels: {evict: "yes"}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    command: [sh, -c, "dd if=/dev/zero of=/fill/f bs=1M count=700 && exec sleep 3600"]
    resources: {requests: {memory: 16Mi}}
    volumeMounts: [{name: fill, mountPath: /fill}]
  volumes:
  - {name: fill, emptyDir: {medium: Memory}}
"#;

#[test]
fn two_node_cluster_runs_real_pods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().display().to_string();
    let before = traces(dir.path());
    let pods_cidr = format!("{}0.0/16", net().pods);
    let c = Cluster { dir, state };
    let (api, etcd) = (free_port().to_string(), free_port().to_string());
    let up = || {
        ketch(&[
            "up",
            "--state-dir",
            &c.state,
            "--api-port",
            &api,
            "--etcd-port",
            &etcd,
            "--nodes",
            "2",
            "--cluster-name",
            &net().name,
            "--node-subnet",
            &net().subnet,
            "--cluster-cidr",
            &pods_cidr,
            "--timeout",
            "240",
            "--node-memory",
            "1Gi",
            "--eviction-hard",
            "memory.available<400Mi",
        ])
    };
    let out = up();
    assert!(
        out.status.success(),
        "ketch up: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Both nodes registered, Ready, with addresses and pod CIDRs from the cluster's range.
    let nodes = c.json(&["get", "nodes"]);
    let nodes = nodes["items"].as_array().expect("items");
    let names: Vec<&str> = nodes
        .iter()
        .map(|n| str_of(n, &["metadata", "name"]))
        .collect();
    assert_eq!(names, [net().node(1), net().node(2)]);
    for n in nodes {
        assert!(
            str_of(n, &["spec", "podCIDR"]).starts_with(&net().pods),
            "{n}"
        );
        let addrs = n["status"]["addresses"].to_string();
        assert!(addrs.contains(&net().gateway), "{addrs}");
    }

    c.apply(APPS);

    // --- pods spread and Running, and reach each other within and across nodes.
    let web = wait("4 web pods Running and Ready", || {
        let pods = c.pods("app=web");
        (pods.len() == 4
            && pods
                .iter()
                .all(|p| p["status"]["phase"] == "Running" && is_ready(p)))
        .then_some(pods)
    });
    let on = |node: &str| {
        web.iter()
            .filter(|p| str_of(p, &["spec", "nodeName"]) == node)
            .count()
    };
    assert!(
        on(&net().node(1)) > 0 && on(&net().node(2)) > 0,
        "pods spread over both nodes"
    );
    let from = str_of(&web[0], &["metadata", "name"]).to_string();
    for p in &web {
        let ip = str_of(p, &["status", "podIP"]);
        assert!(ip.starts_with(&net().pods), "pod IP {ip}");
        let out = c.exec(
            &from,
            &["timeout", "10", "wget", "-qO-", &format!("http://{ip}/")],
        );
        assert_eq!(
            text(&out.stdout).trim(),
            format!("hello from {}", str_of(p, &["metadata", "name"])),
            "{from} -> {ip}: {}",
            text(&out.stderr)
        );
    }

    // --- Services through the eBPF dataplane, no iptables: a ClusterIP from a pod on each node
    // spreads over the ready pods; a NodePort answers on both node addresses from the root
    // namespace; a Service without endpoints refuses at once.
    c.apply(SERVICES);
    let cluster_ip = str_of(&c.json(&["get", "svc", "web"]), &["spec", "clusterIP"]).to_string();
    let np = c.json(&["get", "svc", "webnp"])["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    for node in [net().node(1), net().node(2)] {
        let client = web
            .iter()
            .find(|p| str_of(p, &["spec", "nodeName"]) == node)
            .map(|p| str_of(p, &["metadata", "name"]).to_string())
            .expect("a web pod on the node");
        let mut seen = std::collections::BTreeSet::new();
        wait(&format!("ClusterIP answers from {node}, spread"), || {
            let out = c.exec(
                &client,
                &[
                    "timeout",
                    "5",
                    "wget",
                    "-qO-",
                    &format!("http://{cluster_ip}/"),
                ],
            );
            let body = text(&out.stdout);
            if out.status.success() && body.starts_with("hello from web-") {
                seen.insert(body.trim().to_string());
            }
            (seen.len() >= 2).then_some(())
        });
    }
    // `ketch bpf services` shows what each node's kernel holds, by Service name.
    let out = ketch(&["bpf", "services", "--state-dir", &c.state]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    for i in [1, 2] {
        assert!(shown.contains(&format!("== {}", net().node(i))), "{shown}");
    }
    assert!(
        shown
            .lines()
            .any(|l| l.contains(&format!("{cluster_ip}:80/TCP")) && l.contains("default/web")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains("default/empty") && l.contains("refused")),
        "{shown}"
    );

    // Cluster DNS on every node: a Service by its short name (search list) from a pod on each
    // node, by its full name; a missing name is NXDOMAIN, a name outside the cluster fails at
    // once (SERVFAIL) rather than timing out.
    for node in [net().node(1), net().node(2)] {
        let client = web
            .iter()
            .find(|p| str_of(p, &["spec", "nodeName"]) == node)
            .map(|p| str_of(p, &["metadata", "name"]).to_string())
            .expect("a web pod on the node");
        wait(&format!("http://web/ by name from {node}"), || {
            let out = c.exec(&client, &["timeout", "10", "wget", "-qO-", "http://web/"]);
            text(&out.stdout)
                .starts_with("hello from web-")
                .then_some(())
        });
    }
    let out = c.exec(&from, &["nslookup", "web.default.svc.cluster.local"]);
    assert!(
        out.status.success() && text(&out.stdout).contains(&cluster_ip),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = c.exec(&from, &["nslookup", "nope.default.svc.cluster.local"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success() && said.contains("NXDOMAIN"), "{said}");
    let out = c.exec(&from, &["timeout", "20", "nslookup", "example.com"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success() && out.status.code() != Some(143) && said.contains("SERVFAIL"),
        "{said}"
    );
    for i in [1, 2] {
        let url = format!("http://{}:{np}/", net().node_ip(i));
        wait(&format!("NodePort {url} from the root namespace"), || {
            let out = Command::new("timeout")
                .args(["5", "busybox", "wget", "-qO-", &url])
                .output()
                .expect("busybox");
            text(&out.stdout)
                .starts_with("hello from web-")
                .then_some(())
        });
    }
    let empty = str_of(&c.json(&["get", "svc", "empty"]), &["spec", "clusterIP"]).to_string();
    // Refused by connect() itself (EPERM), not a timeout: that is what the message says.
    wait("a Service without endpoints refuses at once", || {
        let out = c.exec(
            &from,
            &["timeout", "5", "wget", "-qO-", &format!("http://{empty}/")],
        );
        (!out.status.success() && text(&out.stderr).contains("not permitted")).then_some(())
    });
    for i in [1, 2] {
        let ns = format!("--net=/run/netns/{}", net().node(i));
        for cmd in [&["iptables-save"][..], &["nft", "list", "ruleset"][..]] {
            let out = Command::new("nsenter")
                .arg(&ns)
                .arg("--")
                .args(cmd)
                .output()
                .expect("nsenter");
            let rules = text(&out.stdout);
            assert!(
                !rules.contains(&cluster_ip) && !rules.contains(&np.to_string()),
                "{cmd:?} in node {i} mentions a Service: {rules}"
            );
        }
    }

    // The empty Service's NodePort refuses at once on every node too (the stack answers: RST).
    let empty_np = c.json(&["get", "svc", "empty"])["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    for i in [1, 2] {
        let url = format!("http://{}:{empty_np}/", net().node_ip(i));
        wait(&format!("{url} refuses"), || {
            let out = Command::new("timeout")
                .args(["5", "busybox", "wget", "-qO-", &url])
                .output()
                .expect("busybox");
            text(&out.stderr).contains("refused").then_some(())
        });
    }

    // --- Service semantics: spread over 3, UDP, the nodes' own processes, session affinity,
    // externalTrafficPolicy Local, readiness, scaling; and the agent's metrics.
    c.apply(ECHO);
    c.apply(
        &NODE_DNS
            .replace("NODE1", &net().node_ip(1))
            .replace("NODE2", &net().node_ip(2)),
    );
    let echo = wait("3 echo pods Running and Ready", || {
        let pods = c.pods("app=echo");
        (pods.len() == 3
            && pods
                .iter()
                .all(|p| p["status"]["phase"] == "Running" && is_ready(p)))
        .then_some(pods)
    });
    let ip_of =
        |svc: &str| str_of(&c.json(&["get", "svc", svc]), &["spec", "clusterIP"]).to_string();
    let node_port = |svc: &str| {
        c.json(&["get", "svc", svc])["spec"]["ports"][0]["nodePort"]
            .as_i64()
            .expect("nodePort")
    };
    let (echo_ip, sticky_ip, dns_ip) = (ip_of("echo"), ip_of("echo-sticky"), ip_of("node-dns"));
    let (local_np, echo_np) = (node_port("echo-local"), node_port("echo-np"));
    let who_url = format!("http://{echo_ip}/cgi-bin/who");
    let client_on = |node: &str| -> String {
        web.iter()
            .find(|p| str_of(p, &["spec", "nodeName"]) == node)
            .map(|p| str_of(p, &["metadata", "name"]).to_string())
            .expect("a web pod on the node")
    };
    for i in [1, 2] {
        let node = net().node(i);
        let client = client_on(&node);
        // Load spreads: every one of the 3 backends answers, and sees the pod's own address
        // (translated at connect(): no SNAT east-west).
        let client_ip = str_of(&c.pod(&client), &["status", "podIP"]).to_string();
        let mut hosts = std::collections::BTreeSet::new();
        wait(
            &format!("all 3 echo pods answer {client} on {node}"),
            || {
                if let Some((host, addr)) = c.who(&client, &who_url) {
                    assert_eq!(addr, client_ip, "the backend sees the client pod's address");
                    hosts.insert(host);
                }
                (hosts.len() == 3).then_some(())
            },
        );
        // UDP through a ClusterIP from a pod: DNS queries to a Service whose endpoints are the
        // nodes' DNS servers; the answer comes back from the ClusterIP.
        wait(&format!("UDP ClusterIP from {client} on {node}"), || {
            let out = c.exec(
                &client,
                &[
                    "timeout",
                    "10",
                    "nslookup",
                    "web.default.svc.cluster.local",
                    &dns_ip,
                ],
            );
            (out.status.success() && text(&out.stdout).contains(&cluster_ip)).then_some(())
        });
        // The node's own processes: TCP by ClusterIP; a name through the cluster DNS by UDP to
        // its ClusterIP (the host's resolv.conf does not know the cluster, as on a kubeadm
        // node); TCP to the address it gave.
        wait(&format!("TCP ClusterIP from a process of {node}"), || {
            let out = c.node_exec(
                &node,
                &["timeout", "5", "busybox", "wget", "-qO-", &who_url],
            );
            who_said(&out).map(|_| ())
        });
        let out = c.node_exec(
            &node,
            &[
                "timeout",
                "10",
                "busybox",
                "nslookup",
                "web.default.svc.cluster.local",
                &dns_ip,
            ],
        );
        assert!(
            out.status.success() && text(&out.stdout).contains(&cluster_ip),
            "UDP ClusterIP from a process of {node}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let out = c.node_exec(
            &node,
            &[
                "timeout",
                "5",
                "busybox",
                "wget",
                "-qO-",
                &format!("http://{cluster_ip}/"),
            ],
        );
        assert!(
            text(&out.stdout).starts_with("hello from web-"),
            "{}",
            text(&out.stderr)
        );
    }

    // sessionAffinity: ClientIP sticks to one backend.
    let client = client_on(&net().node(1));
    let sticky_url = format!("http://{sticky_ip}/cgi-bin/who");
    let first = wait("the sticky Service answers", || c.who(&client, &sticky_url));
    for _ in 0..8 {
        let again = c
            .who(&client, &sticky_url)
            .expect("the sticky Service answers");
        assert_eq!(again.0, first.0, "sessionAffinity ClientIP sticks");
    }

    // externalTrafficPolicy Local: the backend sees the real client (the root namespace's
    // address on the bridge) and is on the node that was asked.
    for i in [1, 2] {
        let node = net().node(i);
        let local: Vec<String> = echo
            .iter()
            .filter(|p| str_of(p, &["spec", "nodeName"]) == node)
            .map(|p| str_of(p, &["metadata", "name"]).to_string())
            .collect();
        if local.is_empty() {
            continue;
        }
        let url = format!("http://{}:{local_np}/cgi-bin/who", net().node_ip(i));
        let (host, addr) = wait(&format!("{url} from the root namespace"), || {
            let out = Command::new("timeout")
                .args(["5", "busybox", "wget", "-qO-", &url])
                .output()
                .expect("busybox");
            who_said(&out)
        });
        assert!(local.contains(&host), "{host} is not on {node}: {local:?}");
        assert_eq!(addr, net().gateway, "the client address is preserved");
    }

    // A pod failing readiness stops receiving new connections.
    let victim = str_of(&echo[0], &["metadata", "name"]).to_string();
    let echo80 = format!("{echo_ip}:80/TCP");
    c.ok(&["exec", &victim, "-c", "http", "--", "rm", "/tmp/ready"]);
    wait(&format!("{victim} out of the kernel's backends"), || {
        (c.backends_in_kernel(&net().node(1), &echo80) == Some(2)).then_some(())
    });
    for _ in 0..12 {
        let (host, _) = c
            .who(&client, &who_url)
            .expect("the ready echo pods answer");
        assert_ne!(host, victim, "a pod that is not ready got a new connection");
    }
    c.ok(&["exec", &victim, "-c", "http", "--", "touch", "/tmp/ready"]);

    // Scaling to 5 and to 1 is followed.
    c.ok(&["scale", "deploy", "echo", "--replicas", "5"]);
    let mut hosts = std::collections::BTreeSet::new();
    wait("5 echo pods answer through the ClusterIP", || {
        if let Some((host, _)) = c.who(&client, &who_url) {
            hosts.insert(host);
        }
        (hosts.len() == 5).then_some(())
    });
    c.ok(&["scale", "deploy", "echo", "--replicas", "1"]);
    let last = wait("one echo pod left", || {
        let alive: Vec<String> = c
            .pods("app=echo")
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| str_of(p, &["metadata", "name"]).to_string())
            .collect();
        (alive.len() == 1).then(|| alive[0].clone())
    });
    wait("one backend in the kernel", || {
        (c.backends_in_kernel(&net().node(1), &echo80) == Some(1)).then_some(())
    });
    for _ in 0..8 {
        let (host, _) = c.who(&client, &who_url).expect("the last echo pod answers");
        assert_eq!(host, last, "only the remaining pod gets connections");
    }

    // The agent's metrics: programming latency as kube-proxy names it, the programs' counters.
    let out = c.node_exec(
        &net().node(1),
        &[
            "timeout",
            "5",
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1:10249/metrics",
        ],
    );
    let metrics = text(&out.stdout);
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kubeproxy_network_programming_duration_seconds_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no programming duration: {metrics}{}", text(&out.stderr)));
    assert!(count > 0.0, "{metrics}");
    assert!(
        metrics.contains("ketch_dataplane_events_total{event=\"nodeport_new\"}"),
        "{metrics}"
    );

    // --- kubectl logs (also -f) and exec (non-interactive, -i with stdin, -it with a tty).
    c.running("talker");
    let logs = wait("talker's first lines", || {
        let l = c.ok(&["logs", "talker"]);
        l.contains("line 1").then_some(l)
    });
    assert!(logs.starts_with("line 0\n"), "{logs}");
    let tail = c.ok(&["logs", "talker", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let mut follow = Command::new(kubectl_bin())
        .env("KUBECONFIG", c.dir.path().join("kubeconfig"))
        .env("HOME", c.dir.path())
        .args(["logs", "-f", "talker", "--tail=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let second = lines.next().expect("a streamed line").expect("read");
    let _ = follow.kill();
    let _ = follow.wait();
    let n = |l: &str| {
        l.trim_start_matches("line ")
            .parse::<u64>()
            .expect("counter")
    };
    assert!(n(&second) > n(&first), "{first} then {second}");

    let out = c.exec("talker", &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "kubectl passes the exit code on"
    );
    assert!(text(&out.stderr).contains("exit code 3"));
    let out = c.kubectl(
        &["exec", "-i", "talker", "--", "sh"],
        Some("echo $((6*7))\n"),
    );
    assert_eq!(text(&out.stdout), "42\n", "{}", text(&out.stderr));
    let script = format!(
        "{} exec -it talker -- sh -c 'tty; echo cols=$(stty size)'",
        kubectl_bin().display()
    );
    let out = Command::new("script")
        .args(["-qec", &script, "/dev/null"])
        .env("KUBECONFIG", c.dir.path().join("kubeconfig"))
        .env("HOME", c.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "exec -it has a terminal: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // --- a failing liveness probe restarts the container.
    c.running("live");
    assert!(c.exec("live", &["rm", "/tmp/ok"]).status.success());
    let restarted = wait("live restarted by its liveness probe", || {
        let p = c.pod("live");
        let s = &p["status"]["containerStatuses"][0];
        (s["restartCount"].as_i64() >= Some(1) && s["state"]["running"].is_object()).then_some(p)
    });
    let s = &restarted["status"]["containerStatuses"][0];
    assert_eq!(s["lastState"]["terminated"]["exitCode"], 137, "{s}");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=live",
    ]);
    assert!(
        events.contains("Unhealthy") && events.contains("Killing"),
        "{events}"
    );

    // --- a pod that never gets ready serves no traffic for its Service.
    let ready = c.running("ready");
    let ready_ip = str_of(&ready, &["status", "podIP"]).to_string();
    let never = wait("never-ready Running", || {
        let p = c.pod("never-ready");
        (p["status"]["phase"] == "Running").then_some(p)
    });
    assert!(!is_ready(&never));
    let never_ip = str_of(&never, &["status", "podIP"]).to_string();
    wait("the ready pod in the Service's EndpointSlice", || {
        let slices = c.json(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=rd",
        ]);
        let eps: Vec<Value> = slices["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .collect();
        let serving = |ip: &str| {
            eps.iter()
                .any(|e| e["addresses"][0] == ip && e["conditions"]["ready"] != Value::Bool(false))
        };
        (serving(&ready_ip) && !serving(&never_ip)).then_some(())
    });
    let endpoints = c.json(&["get", "endpoints", "rd"]);
    let addrs = endpoints["subsets"][0]["addresses"].to_string();
    assert!(
        addrs.contains(&ready_ip) && !addrs.contains(&never_ip),
        "{addrs}"
    );

    // --- ConfigMap and Secret values in env and files; the Secret on tmpfs, both read-only.
    c.running("cfgpod");
    let out = c.exec(
        "cfgpod",
        &[
            "sh",
            "-c",
            "echo $GREETING $PASSWORD $MY_NODE $CM_greeting; cat /etc/cfg/file.txt /etc/sec/password",
        ],
    );
    let cfgpod = c.pod("cfgpod");
    let node = str_of(&cfgpod, &["spec", "nodeName"]).to_string();
    assert_eq!(
        text(&out.stdout),
        format!("hello s3cret {node} hello\nfrom-configmaps3cret"),
        "{}",
        text(&out.stderr)
    );
    let mounts = text(&c.exec("cfgpod", &["cat", "/proc/mounts"]).stdout);
    let line = |path: &str| {
        mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(path))
            .unwrap_or_else(|| panic!("{path} not mounted: {mounts}"))
            .to_string()
    };
    assert!(
        line("/etc/sec").starts_with("tmpfs "),
        "{}",
        line("/etc/sec")
    );
    assert!(line("/etc/sec").contains(" ro,"), "{}", line("/etc/sec"));
    assert!(line("/etc/cfg").contains(" ro,"), "{}", line("/etc/cfg"));
    assert!(!c.exec("cfgpod", &["touch", "/etc/cfg/x"]).status.success());

    // --- deleting a pod frees its containers and its address.
    let uid = str_of(&cfgpod, &["metadata", "uid"]).to_string();
    let ip = str_of(&cfgpod, &["status", "podIP"]).to_string();
    let lease = c.node_dir(&node).join("ipam").join(&ip);
    assert!(
        lease.exists(),
        "{} holds the pod's address",
        lease.display()
    );
    assert!(!c.containers(&node, &uid).is_empty());
    c.ok(&["delete", "pod", "cfgpod", "--wait=true"]);
    wait("cfgpod's containers and address freed", || {
        (c.containers(&node, &uid).is_empty() && !lease.exists()).then_some(())
    });

    // --- kill -9 of ketch-node: pods keep serving; the restarted agent adopts them.
    let n1_pod = web
        .iter()
        .find(|p| str_of(p, &["spec", "nodeName"]) == net().node(1))
        .expect("a web pod on kt-n1");
    let n1_ip = str_of(n1_pod, &["status", "podIP"]).to_string();
    let n2_pod = web
        .iter()
        .find(|p| str_of(p, &["spec", "nodeName"]) == net().node(2))
        .map(|p| str_of(p, &["metadata", "name"]).to_string())
        .expect("a web pod on kt-n2");
    let containers = |pods: &[Value]| -> Vec<(String, String, i64)> {
        let mut v: Vec<_> = pods
            .iter()
            .map(|p| {
                let s = &p["status"]["containerStatuses"][0];
                (
                    str_of(p, &["metadata", "name"]).to_string(),
                    s["containerID"].as_str().unwrap_or_default().to_string(),
                    s["restartCount"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before_kill = containers(&c.pods("app=web"));
    // Long-lived connections through node 1's dataplane: a process of node 1 to the echo
    // ClusterIP (translated at connect()), and the root namespace to node 1's NodePort
    // (per packet, with connection tracking in a pinned map).
    let mut nc = Command::new(env!("CARGO_BIN_EXE_ketch"))
        .args(["node-exec", "--state-dir", &c.state, &net().node(1), "--"])
        .args(["busybox", "nc", &echo_ip, "7000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ketch node-exec nc");
    let mut nc_in = nc.stdin.take().expect("stdin");
    let nc_out = line_channel(nc.stdout.take().expect("stdout"));
    echo_line(&mut nc_in, &nc_out, "ClusterIP before");
    let np_addr = format!("{}:{echo_np}", net().node_ip(1));
    let np_conn = wait("a NodePort connection to the echo", || {
        std::net::TcpStream::connect(&np_addr).ok()
    });
    let np_out = line_channel(np_conn.try_clone().expect("clone"));
    let mut np_in = np_conn;
    echo_line(&mut np_in, &np_out, "NodePort before");
    kill9(c.pid(&format!("ketch-node-{}", net().node(1))));
    // The agent is gone: open connections keep flowing, and new ones are still translated.
    echo_line(&mut nc_in, &nc_out, "ClusterIP while the agent is dead");
    echo_line(&mut np_in, &np_out, "NodePort while the agent is dead");
    let out = c.node_exec(
        &net().node(1),
        &["timeout", "5", "busybox", "wget", "-qO-", &who_url],
    );
    assert!(
        who_said(&out).is_some(),
        "new ClusterIP connection: {}",
        text(&out.stderr)
    );
    let mut fresh = std::net::TcpStream::connect(&np_addr).expect("new NodePort connection");
    let fresh_out = line_channel(fresh.try_clone().expect("clone"));
    echo_line(&mut fresh, &fresh_out, "new NodePort connection");
    drop(fresh);
    let out = c.exec(
        &n2_pod,
        &["timeout", "10", "wget", "-qO-", &format!("http://{n1_ip}/")],
    );
    assert!(
        text(&out.stdout).starts_with("hello from"),
        "a pod on the node whose agent is dead still serves: {}",
        text(&out.stderr)
    );
    let out = up();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(&format!("ketch-node-{} (pid", net().node(1))),
        "{}",
        text(&out.stdout)
    );
    // Give the agent time to (wrongly) restart anything, then compare.
    wait("node 1's pods reported by the new agent", || {
        let pods = c.pods("app=web");
        pods.iter()
            .all(|p| p["status"]["phase"] == "Running" && is_ready(p))
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        containers(&c.pods("app=web")),
        before_kill,
        "same containers, no restarts"
    );
    let log =
        std::fs::read_to_string(c.node_dir(&net().node(1)).join("ketch-node.log")).expect("log");
    assert!(
        log.contains("adopted the pods already running"),
        "the agent says it adopted pods"
    );
    // The new agent took over the pinned maps without a flush: the same connections go on.
    echo_line(&mut nc_in, &nc_out, "ClusterIP after the restart");
    echo_line(&mut np_in, &np_out, "NodePort after the restart");
    drop(np_in);
    drop(nc_in);
    let _ = nc.kill();
    let _ = nc.wait();
    c.ok(&["delete", "deploy", "echo", "--wait=true"]);
    wait("the echo pods gone", || {
        c.pods("app=echo").is_empty().then_some(())
    });

    // --- a node stopped for good: its pods are recreated on the other node.
    kill9(c.pid(&format!("ketch-node-{}", net().node(2))));
    wait("all web pods Running on kt-n1", || {
        let pods = c.pods("app=web");
        let live: Vec<&Value> = pods
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        (live.len() == 4
            && live.iter().all(|p| {
                str_of(p, &["spec", "nodeName"]) == net().node(1)
                    && p["status"]["phase"] == "Running"
                    && is_ready(p)
            }))
        .then_some(())
    });
    let nodes = c.ok(&["get", "nodes"]);
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with(&net().node(2)) && l.contains("NotReady")),
        "{nodes}"
    );

    // --- node-pressure eviction by QoS. Each node has 1Gi (its cgroup) and evicts below 400Mi
    // available. A Burstable pod filling 700Mi of memory-backed emptyDir makes the pressure:
    // the idle BestEffort pod goes first, then the Burstable pod far over its request; the
    // Guaranteed pod and the Burstable pod within its request stay.
    c.ok(&["delete", "deployment", "web"]);
    // The lost node's pods never finish terminating on their own: what a user does for a dead
    // node is a forced delete.
    c.ok(&["delete", "pods", "--all", "--force", "--grace-period=0"]);
    wait("every pod gone", || {
        c.json(&["get", "pods"])["items"]
            .as_array()
            .is_some_and(|i| i.is_empty())
            .then_some(())
    });
    c.apply(&EVICTION.replace("NODE", &net().node(1)));
    for p in ["be", "bu", "gu"] {
        c.running(p);
    }
    assert_eq!(c.pod("be")["status"]["qosClass"], "BestEffort");
    assert_eq!(c.pod("gu")["status"]["qosClass"], "Guaranteed");
    c.apply(&HOG.replace("NODE", &net().node(1)));
    let phase = |pods: &[Value], name: &str| -> (String, String) {
        pods.iter()
            .find(|p| p["metadata"]["name"] == name)
            .map(|p| {
                (
                    str_of(p, &["status", "phase"]).to_string(),
                    str_of(p, &["status", "reason"]).to_string(),
                )
            })
            .unwrap_or_default()
    };
    let mut saw_pressure = false;
    wait("the hog evicted", || {
        let pods = c.pods("evict=yes");
        let node = c.json(&["get", "node", &net().node(1)]);
        saw_pressure |= node["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "MemoryPressure" && c["status"] == "True")
        });
        let hog = phase(&pods, "hog");
        if hog.0 == "Failed" {
            // Both are read from one list: the hog never goes while the BestEffort pod stays.
            assert_eq!(phase(&pods, "be"), ("Failed".into(), "Evicted".into()));
            assert_eq!(hog.1, "Evicted");
            return Some(());
        }
        None
    });
    assert!(saw_pressure, "the node reported MemoryPressure");
    for p in ["bu", "gu"] {
        let pod = c.pod(p);
        assert_eq!(pod["status"]["phase"], "Running", "{p} kept");
    }
    let be = c.pod("be");
    assert!(
        str_of(&be, &["status", "message"]).contains("low on resource: memory"),
        "{be}"
    );
    wait("the memory pressure to end", || {
        let node = c.json(&["get", "node", &net().node(1)]);
        node["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "MemoryPressure" && c["status"] == "False")
            })
            .then_some(())
    });

    // --- ketch down leaves nothing behind.
    let pids: Vec<i64> = c.state()["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_i64())
        .collect();
    let out = ketch(&["down", "--state-dir", &c.state]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "pid {pid} still runs"
        );
    }
    let after = wait("the kernel to finish removing links", || {
        let t = traces(c.dir.path());
        (t.links == before.links).then_some(t)
    });
    assert_eq!(after, before, "ketch down left something behind");
}
