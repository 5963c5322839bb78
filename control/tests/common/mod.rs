//! Test harness: a real etcd and real `ketch-control` processes on free loopback ports, each
//! in its own temporary directory, killed by pid when the test ends (also when it fails).

#![allow(dead_code)]

pub mod kubelet;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Aborts a test's background task when dropped. Declared after the cluster, it goes first,
/// so the task never outlives the API server: a watcher without backoff against a server that
/// is gone fails at once, forever, without yielding, and the runtime's shutdown waits on it.
pub struct Task(pub tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Generous: CI machines are shared and slow; a condition usually holds within milliseconds.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` until it returns Some, or panics with `what` after [`WAIT`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > WAIT {
            panic!("timed out after {:?} waiting for {what}", WAIT);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Etcd {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let (client, peer) = (free_port(), free_port());
            let url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log");
            let child = Command::new("etcd")
                .args(["--name", "test", "--data-dir"])
                .arg(dir.path().join("data"))
                .args([
                    "--listen-client-urls",
                    &url,
                    "--advertise-client-urls",
                    &url,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                ])
                .args(["--initial-cluster", &format!("test={peer_url}")])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("etcd is installed (cargo xtask setup)");
            let mut e = Etcd {
                child,
                url,
                _dir: dir,
            };
            let start = Instant::now();
            while start.elapsed() < WAIT {
                if let Ok(Some(_)) = e.child.try_wait() {
                    break; // lost a port race: try other ports
                }
                if etcdctl(&e.url, &["endpoint", "health"]).status.success() {
                    return e;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("etcd did not start");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn etcdctl(url: &str, args: &[&str]) -> Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={url}"))
        .args(args)
        .output()
        .expect("etcdctl is installed (cargo xtask setup)")
}

pub fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("KETCH_TARGET_DIR") {
        return PathBuf::from(t);
    }
    // <target>/debug/ketch-control
    PathBuf::from(env!("CARGO_BIN_EXE_ketch-control"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target dir")
}

pub fn kubectl_path() -> PathBuf {
    std::env::var_os("KETCH_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("ketch-venv/bin/kubectl"))
}

pub fn python_path() -> PathBuf {
    std::env::var_os("KETCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("ketch-venv/bin/python"))
}

/// A running `ketch-control`.
pub struct Control {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    etcd_url: String,
    extra: Vec<String>,
}

impl Control {
    /// Starts a server on `etcd` with its own data directory under `dir`.
    pub fn start(etcd: &str, dir: &Path, extra: &[&str]) -> Control {
        let mut c = Control {
            child: None,
            port: 0,
            dir: dir.to_path_buf(),
            kubeconfig: dir.join("admin.kubeconfig"),
            etcd_url: etcd.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        c.restart();
        c
    }

    /// (Re)starts the process, on a fresh port, and waits until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..5 {
            self.port = free_port();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("control.log"))
                .expect("log");
            let child = Command::new(env!("CARGO_BIN_EXE_ketch-control"))
                .args([
                    "--bind-address",
                    "127.0.0.1",
                    "--secure-port",
                    &self.port.to_string(),
                ])
                .args(["--etcd-servers", &self.etcd_url, "--data-dir"])
                .arg(&self.dir)
                .args(["--etcd-compaction-interval", "0"])
                .args(&self.extra)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start ketch-control");
            self.child = Some(child);
            let start = Instant::now();
            while start.elapsed() < WAIT {
                if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                    break;
                }
                if self.kubectl(&["get", "--raw", "/readyz"]).status.success() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            self.kill();
        }
        panic!(
            "ketch-control did not become ready; log:\n{}",
            std::fs::read_to_string(self.dir.join("control.log")).unwrap_or_default()
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args, None)
    }

    pub fn kubectl_in(&self, args: &[&str], stdin: &str) -> Output {
        self.kubectl_as(&self.kubeconfig, args, Some(stdin))
    }

    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(kubectl_path());
        cmd.env("KUBECONFIG", kubeconfig)
            .env("HOME", &self.dir)
            .arg(format!("--server={}", self.url()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        let mut child = cmd
            .spawn()
            .expect("kubectl is installed (cargo xtask setup)");
        if let Some(input) = stdin
            && let Some(mut s) = child.stdin.take()
        {
            s.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout, panicking with stderr if it failed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ok_in(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_in(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl printed JSON")
    }

    /// A raw API request through kubectl (`kubectl get --raw`).
    pub fn raw(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["get", "--raw", path])).expect("JSON")
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.kill();
    }
}

/// etcd + one API server, in one temporary directory.
pub struct Cluster {
    pub control: Control,
    pub etcd: Etcd,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Cluster {
        let etcd = Etcd::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let control = Control::start(&etcd.url, dir.path(), extra);
        Cluster { control, etcd, dir }
    }
}

impl std::ops::Deref for Cluster {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

/// An async client for raw API requests (kube-rs's client, authenticated as the admin).
pub struct ApiClient {
    pub client: kube::Client,
}

impl ApiClient {
    pub async fn new(c: &Control) -> ApiClient {
        ApiClient::for_kubeconfig(c, &c.kubeconfig).await
    }

    pub async fn for_kubeconfig(c: &Control, kubeconfig: &Path) -> ApiClient {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
        let mut cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        cfg.cluster_url = c.url().parse().expect("url");
        ApiClient {
            client: kube::Client::try_from(cfg).expect("client"),
        }
    }

    /// (status, parsed body or Null)
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        content_type: &str,
    ) -> (u16, serde_json::Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).expect("json"))
            .unwrap_or_default();
        self.req_bytes(method, path, bytes, content_type).await
    }

    pub async fn req_bytes(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> (u16, serde_json::Value) {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(kube::client::Body::from(body))
            .expect("request");
        let resp = self.client.send(req).await.expect("send");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect_bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.req("GET", path, None, "application/json").await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.req("POST", path, Some(body), "application/json").await
    }

    /// Opens a watch; returns a receiver of parsed events.
    pub async fn watch(
        &self,
        path: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
        use http_body_util::BodyExt;
        let req = http::Request::builder()
            .method("GET")
            .uri(path)
            .body(kube::client::Body::empty())
            .expect("request");
        let resp = self.client.send(req).await.expect("watch");
        assert_eq!(resp.status().as_u16(), 200, "watch {path}");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if let Ok(v) = serde_json::from_slice(&line)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

/// The next watch event, or a panic after [`WAIT`].
pub async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) -> serde_json::Value {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a watch event in time")
        .expect("watch still open")
}

/// Polls an async condition until it returns Some, or panics after [`WAIT`].
pub async fn wait_for_async<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > WAIT {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
