//! `ketch image build|builtin|load` as a user runs them: archives are parsed back and checked
//! blob by blob, and the built-in images are imported into a real containerd (started by the test
//! on its own socket and directories) and run with `ctr`.

use flate2::read::GzDecoder;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "localhost/busybox:latest";
const PAUSE: &str = "localhost/pause:3.10";

fn ketch_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ketch"));
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.output().expect("run ketch")
}

fn ketch(args: &[&str]) -> Output {
    ketch_in(None, args)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[derive(Debug)]
struct TarEntry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
    data: Vec<u8>,
}

fn read_tar(bytes: &[u8]) -> Vec<TarEntry> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let h = e.header().clone();
        let path = e.path().expect("path").to_str().expect("utf-8").to_string();
        let link = e
            .link_name()
            .expect("link name")
            .map(|l| l.to_str().expect("utf-8").to_string());
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        out.push(TarEntry {
            path,
            kind: h.entry_type(),
            mode: h.mode().expect("mode"),
            uid: h.uid().expect("uid"),
            gid: h.gid().expect("gid"),
            mtime: h.mtime().expect("mtime"),
            link,
            data,
        });
    }
    out
}

/// An archive parsed back, every digest and size checked on the way.
struct Image {
    bytes: Vec<u8>,
    manifest_digest: String,
    config: Value,
    layer: BTreeMap<String, TarEntry>,
    layer_order: Vec<String>,
}

impl Image {
    fn entry(&self, path: &str) -> &TarEntry {
        self.layer
            .get(path)
            .unwrap_or_else(|| panic!("{path} not in the layer"))
    }

    fn run_config(&self, key: &str) -> &Value {
        &self.config["config"][key]
    }
}

fn parse_archive(path: &Path, name: &str) -> Image {
    let bytes = std::fs::read(path).expect("read archive");
    let outer = read_tar(&bytes);
    for e in &outer {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.path);
    }
    let files: BTreeMap<String, &TarEntry> = outer
        .iter()
        .filter(|e| e.kind == tar::EntryType::Regular)
        .map(|e| (e.path.clone(), e))
        .collect();
    let layout: Value =
        serde_json::from_slice(&files["oci-layout"].data).expect("oci-layout is JSON");
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");

    // A blob named by a descriptor exists, and its digest and size are the descriptor's.
    let blob = |desc: &Value| -> Vec<u8> {
        let digest = desc["digest"].as_str().expect("digest");
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let data = &files
            .get(&format!("blobs/sha256/{hex}"))
            .unwrap_or_else(|| panic!("blob {digest} missing"))
            .data;
        assert_eq!(sha256(data), digest, "blob content matches its digest");
        assert_eq!(
            desc["size"].as_u64(),
            Some(data.len() as u64),
            "size of {digest}"
        );
        data.clone()
    };

    let index: Value = serde_json::from_slice(&files["index.json"].data).expect("index.json");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1);
    let mdesc = &manifests[0];
    assert_eq!(
        mdesc["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(mdesc["annotations"]["io.containerd.image.name"], name);
    assert_eq!(
        mdesc["annotations"]["org.opencontainers.image.ref.name"],
        name
    );
    let manifest: Value = serde_json::from_slice(&blob(mdesc)).expect("manifest JSON");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config: Value = serde_json::from_slice(&blob(&manifest["config"])).expect("config JSON");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["type"], "layers");

    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let gz = blob(&layers[0]);
    let mut tar_bytes = Vec::new();
    GzDecoder::new(gz.as_slice())
        .read_to_end(&mut tar_bytes)
        .expect("gunzip layer");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([sha256(&tar_bytes)]),
        "diff_id is the digest of the uncompressed layer"
    );

    let mut layer = BTreeMap::new();
    let mut layer_order = Vec::new();
    for e in read_tar(&tar_bytes) {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.path);
        let p = e.path.trim_end_matches('/').to_string();
        layer_order.push(p.clone());
        assert!(layer.insert(p, e).is_none(), "duplicate entry");
    }
    Image {
        bytes,
        manifest_digest: mdesc["digest"].as_str().expect("digest").to_string(),
        config,
        layer,
        layer_order,
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A small tree with the cases that matter: modes, a symlink, an empty and a sticky directory,
/// and a path longer than the 100 bytes of a plain tar header.
fn sample_tree(root: &Path) -> String {
    let long = format!("deep/{}/file", "d".repeat(120));
    for d in ["bin", "etc", "empty", "sticky"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("bin/tool"), b"#!/bin/sh\necho tool\n").expect("write");
    set_mode(&root.join("bin/tool"), 0o755);
    std::fs::write(root.join("etc/conf"), b"secret=1\n").expect("write");
    set_mode(&root.join("etc/conf"), 0o640);
    set_mode(&root.join("empty"), 0o700);
    set_mode(&root.join("sticky"), 0o1777);
    std::os::unix::fs::symlink("bin/tool", root.join("link")).expect("symlink");
    std::fs::create_dir_all(root.join(&long).parent().expect("parent")).expect("mkdir");
    std::fs::write(root.join(&long), b"long").expect("write");
    long
}

#[test]
fn build_from_a_folder_parses_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let long = sample_tree(&root);
    let out = tmp.path().join("x.tar");
    let said = ok(&ketch(&[
        "image",
        "build",
        s(&root),
        "--name",
        "localhost/x:tag",
        "--entrypoint",
        r#"["/bin/tool", "-v"]"#,
        "--cmd",
        "a b",
        "--env",
        "K=V",
        "--workdir",
        "/etc",
        "-o",
        s(&out),
    ]));
    let img = parse_archive(&out, "localhost/x:tag");
    assert!(said.contains(&img.manifest_digest), "{said}");

    assert_eq!(
        img.run_config("Entrypoint"),
        &serde_json::json!(["/bin/tool", "-v"])
    );
    assert_eq!(img.run_config("Cmd"), &serde_json::json!(["a", "b"]));
    assert_eq!(img.run_config("WorkingDir"), "/etc");
    let env = img.run_config("Env").as_array().expect("Env");
    assert!(env.contains(&Value::from("K=V")), "{env:?}");
    assert!(
        env.iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with("PATH="))),
        "a default PATH: {env:?}"
    );

    let mut sorted = img.layer_order.clone();
    sorted.sort();
    assert_eq!(img.layer_order, sorted, "entries in path order");

    let tool = img.entry("bin/tool");
    assert_eq!(tool.kind, tar::EntryType::Regular);
    assert_eq!(tool.mode, 0o755);
    assert_eq!(tool.data, b"#!/bin/sh\necho tool\n");
    assert_eq!(img.entry("etc/conf").mode, 0o640);
    let link = img.entry("link");
    assert_eq!(link.kind, tar::EntryType::Symlink);
    assert_eq!(link.link.as_deref(), Some("bin/tool"));
    assert_eq!(img.entry("empty").kind, tar::EntryType::Directory);
    assert_eq!(img.entry("empty").mode, 0o700);
    assert_eq!(img.entry("sticky").mode, 0o1777);
    assert_eq!(img.entry(&long).data, b"long");
}

#[test]
fn builds_are_deterministic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    sample_tree(&root);
    let build = |out: &Path| {
        ok(&ketch(&[
            "image",
            "build",
            s(&root),
            "--name",
            "localhost/x:tag",
            "-o",
            s(out),
        ]));
        std::fs::read(out).expect("read")
    };
    let first = build(&tmp.path().join("1.tar"));
    // Other times on the files must not change the bytes.
    let f = std::fs::File::options()
        .write(true)
        .open(root.join("bin/tool"))
        .expect("open");
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .expect("set mtime");
    let second = build(&tmp.path().join("2.tar"));
    assert!(first == second, "two builds of one folder differ");

    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    ok(&ketch(&["image", "builtin", "-o", s(&a)]));
    ok(&ketch(&["image", "builtin", "-o", s(&b)]));
    for f in ["localhost_busybox_latest.tar", "localhost_pause_3.10.tar"] {
        let x = std::fs::read(a.join(f)).expect("read");
        let y = std::fs::read(b.join(f)).expect("read");
        assert!(x == y, "two builds of {f} differ");
    }
}

#[test]
fn default_output_is_named_after_the_image_in_the_current_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("f"), b"f").expect("write");
    ok(&ketch_in(
        Some(tmp.path()),
        &["image", "build", "root", "--name", "localhost/x:tag"],
    ));
    parse_archive(&tmp.path().join("localhost_x_tag.tar"), "localhost/x:tag");
    // A name without a registry is stored as pods will ask for it.
    ok(&ketch_in(
        Some(tmp.path()),
        &["image", "build", "root", "--name", "app"],
    ));
    parse_archive(
        &tmp.path().join("docker.io_library_app_latest.tar"),
        "docker.io/library/app:latest",
    );
}

#[test]
fn build_refuses_what_it_cannot_represent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let out = ketch(&["image", "build", s(&root), "--name", "localhost/X:tag"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid image name"));

    nix::unistd::mkfifo(
        &root.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let out = ketch(&["image", "build", s(&root), "--name", "localhost/x:tag"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipe") && err.contains("FIFO"), "{err}");
    assert!(!tmp.path().join("localhost_x_tag.tar").exists());
}

#[test]
fn builtin_images_parse_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let said = ok(&ketch(&["image", "builtin", "-o", s(tmp.path())]));
    assert!(said.contains(BUSYBOX) && said.contains(PAUSE), "{said}");
    let host_busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");

    let bb = parse_archive(&tmp.path().join("localhost_busybox_latest.tar"), BUSYBOX);
    let bin = bb.entry("bin/busybox");
    assert_eq!(bin.kind, tar::EntryType::Regular);
    assert_eq!(bin.mode, 0o755);
    assert!(bin.data == host_busybox, "bin/busybox is the host's binary");
    for applet in [
        "bin/sh",
        "bin/httpd",
        "bin/nc",
        "bin/wget",
        "bin/sleep",
        "sbin/ifconfig",
        "usr/bin/wget",
        "usr/bin/env",
    ] {
        let e = bb.entry(applet);
        assert_eq!(e.kind, tar::EntryType::Symlink, "{applet}");
        assert_eq!(e.link.as_deref(), Some("/bin/busybox"), "{applet}");
    }
    let passwd = String::from_utf8_lossy(&bb.entry("etc/passwd").data).into_owned();
    assert!(passwd.contains("root:x:0:0:") && passwd.contains("nobody:x:65534:65534:"));
    let group = String::from_utf8_lossy(&bb.entry("etc/group").data).into_owned();
    assert!(group.contains("root:x:0:") && group.contains("nobody:x:65534:"));
    assert_eq!(bb.entry("tmp").kind, tar::EntryType::Directory);
    assert_eq!(bb.entry("tmp").mode, 0o1777);
    assert_eq!(bb.entry("var/www").kind, tar::EntryType::Directory);
    assert_eq!(bb.run_config("Cmd"), &serde_json::json!(["sh"]));

    let pause = parse_archive(&tmp.path().join("localhost_pause_3.10.tar"), PAUSE);
    assert!(pause.entry("bin/busybox").data == host_busybox);
    assert_eq!(
        pause.run_config("Entrypoint"),
        &serde_json::json!(["/bin/busybox", "sleep", "2147483647"])
    );
    assert_ne!(bb.bytes, pause.bytes);
}

#[test]
fn load_without_a_running_node_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ar = tmp.path().join("images");
    ok(&ketch(&["image", "builtin", "-o", s(&ar)]));
    let tar = ar.join("localhost_pause_3.10.tar");
    let out = ketch(&["image", "load", s(&tar), "--state-dir", s(tmp.path())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no node runs"), "{err}");
    assert!(err.contains("nodes/*/containerd/containerd.sock"), "{err}");

    // A socket left behind by a node that is gone is not a running node.
    let sock_dir = tmp.path().join("nodes/n0/containerd");
    std::fs::create_dir_all(&sock_dir).expect("mkdir");
    drop(std::os::unix::net::UnixListener::bind(sock_dir.join("containerd.sock")).expect("bind"));
    let out = ketch(&["image", "load", s(&tar), "--state-dir", s(tmp.path())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no node runs") && err.contains("n0"), "{err}");
}

/// A containerd of our own: root, state, sockets, runc root and FIFOs under a temp dir, the CRI
/// plugin and the snapshotters that probe the host disabled. Its socket is where `ketch image
/// load` looks for node `n1`. Dropping it removes every trace, also after a failed test.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
    /// Our containers' cgroup parent (the same name in every hierarchy).
    cgroup: String,
    /// `/run/containerd` and `/run/containerd/s` (shim sockets) that the shims create and we
    /// remove if they were not there before (and are empty).
    run_dirs_to_remove: Vec<PathBuf>,
    /// Ids of the containers we ran, to find their shims' sockets.
    ids: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ketch-image-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        let socket = d.join("nodes/n1/containerd/containerd.sock");
        std::fs::create_dir_all(socket.parent().expect("parent")).expect("mkdir");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
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
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = socket.display(),
            opt = d.join("opt").display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("write config");
        let mut run_dirs_to_remove = Vec::new();
        for p in ["/run/containerd/s", "/run/containerd"] {
            if !Path::new(p).exists() {
                run_dirs_to_remove.push(PathBuf::from(p));
            }
        }
        let log = std::fs::File::create(d.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd (is it installed?)");
        let mut me = Containerd {
            dir,
            child,
            socket,
            cgroup: format!("ketch-image-test-{}", std::process::id()),
            run_dirs_to_remove,
            ids: Default::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if me.ctr(&["version"]).status.success() {
                break;
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("containerd exited ({status}):\n{}", me.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd not ready after 60s:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        me
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            // A ceiling, so that a wedged daemon fails the test instead of hanging it.
            .args(["--timeout", "120s", "-n", "k8s.io"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    /// `ctr run` with everything runc and ctr keep on disk under our directory, and the
    /// container's cgroup under ours.
    fn run(&self, extra: &[&str], image: &str, id: &str, cmd: &[&str]) -> Output {
        let d = self.dir.path();
        let runc_root = d.join("runc");
        let fifo = d.join("fifo");
        let cgroup = format!("/{}/{id}", self.cgroup);
        self.ids.borrow_mut().push(id.to_string());
        let mut args = vec![
            "run",
            "--runc-root",
            s(&runc_root),
            "--fifo-dir",
            s(&fifo),
            "--cgroup",
            &cgroup,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image, id]);
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }

    /// `(pid, status)` of a task, from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = ok(&self.ctr(&["task", "ls"]));
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [tid, pid, status] if *tid == id => Some((pid.parse().ok()?, status.to_string())),
                _ => None,
            }
        })
    }

    fn wait_task(&self, id: &str, want: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((pid, status)) = self.task(id)
                && status == want
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} not {want}: {:?}",
                self.task(id)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Our cgroup in every hierarchy that has it.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
            return Vec::new();
        };
        rd.filter_map(Result::ok)
            .map(|e| e.path().join(&self.cgroup))
            .filter(|p| p.is_dir())
            .collect()
    }
}

/// Directories under `dir` (itself included), deepest first.
fn dirs_deepest_first(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs_deepest_first(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

/// Mount points at or under `dir` in our mount namespace, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(Ok(v)) = b
                .get(i + 1..i + 4)
                .and_then(|o| std::str::from_utf8(o).ok())
                .map(|o| u8::from_str_radix(o, 8))
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // 1. Through containerd: kill and delete every task and container (and their snapshots).
        if matches!(self.child.try_wait(), Ok(None)) {
            let list = |what: &str| -> Vec<String> {
                let out = self.ctr(&[what, "ls", "-q"]);
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            };
            for id in list("tasks") {
                let _ = self.ctr(&["task", "delete", "--force", &id]);
            }
            for id in list("containers") {
                let _ = self.ctr(&["container", "delete", &id]);
            }
        }
        // 2. Processes still in our cgroup (if containerd could not stop them): ours by cgroup.
        for cg in self.cgroup_dirs() {
            let mut dirs = Vec::new();
            dirs_deepest_first(&cg, &mut dirs);
            for d in dirs {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // 3. containerd itself, by the pid we started.
        let pid = Pid::from_raw(self.child.id() as i32);
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // 4. Shims it started for us and that outlived it: they name our socket in their
        //    arguments (`-address <our socket>`), which no other process does.
        let sock = self.socket.as_os_str().as_encoded_bytes().to_vec();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.filter_map(Result::ok) {
                let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if cmdline.split(|b| *b == 0).any(|arg| arg == sock.as_slice()) {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
        }
        // 5. Mounts left under our directory (container rootfs, snapshots).
        for m in mounts_under(self.dir.path()) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        // 6. Our cgroups, deepest first in every hierarchy (runc leaves the parents behind);
        //    a cgroup whose processes are still exiting is busy for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        for cg in self.cgroup_dirs() {
            let mut dirs = Vec::new();
            dirs_deepest_first(&cg, &mut dirs);
            for d in dirs {
                while std::fs::remove_dir(&d).is_err() && d.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        // 7. Sockets of shims that were killed: containerd 1.6 names them
        //    /run/containerd/s/<sha256 of "<its address>/<namespace>/<id>">, so they are ours.
        for id in self.ids.borrow().iter() {
            let key = format!("{}/k8s.io/{id}", self.socket.display());
            let name = format!("{:x}", Sha256::digest(key.as_bytes()));
            let _ = std::fs::remove_file(Path::new("/run/containerd/s").join(name));
        }
        // 8. Run directories that were not there before, only if empty (others may use them).
        for d in &self.run_dirs_to_remove {
            let _ = std::fs::remove_dir(d);
        }
        // The temp dir goes when `self.dir` is dropped, right after this.
    }
}

#[test]
fn containerd_imports_and_runs_the_builtin_images() {
    let ctd = Containerd::start();
    let state_dir = ctd.dir.path().to_path_buf();
    let images = state_dir.join("images");
    ok(&ketch(&["image", "builtin", "-o", s(&images)]));
    // A second node that is down: reported and skipped.
    let stale = state_dir.join("nodes/n0/containerd");
    std::fs::create_dir_all(&stale).expect("mkdir");
    drop(std::os::unix::net::UnixListener::bind(stale.join("containerd.sock")).expect("bind"));

    let said = ok(&ketch(&[
        "image",
        "load",
        s(&images.join("localhost_busybox_latest.tar")),
        s(&images.join("localhost_pause_3.10.tar")),
        "--state-dir",
        s(&state_dir),
    ]));
    assert_eq!(said.matches("n1: imported").count(), 2, "{said}");
    assert!(said.contains("n0: skipped"), "{said}");
    let listed = ok(&ctd.ctr(&["images", "ls", "-q"]));
    for name in [BUSYBOX, PAUSE] {
        assert!(listed.lines().any(|l| l == name), "{name} in {listed}");
    }

    // Its own network namespace (only lo); the applets resolve through the /bin symlinks.
    let out = ctd.run(
        &["--rm"],
        BUSYBOX,
        "t1",
        &["sh", "-c", "echo hi; ls /bin/wget"],
    );
    assert_eq!(ok(&out), "hi\n/bin/wget\n");

    // The pause image lives until it is killed: SIGTERM does nothing to a PID 1 without a
    // handler, SIGKILL (what the CRI sends to stop a sandbox) ends it.
    ok(&ctd.run(&["-d"], PAUSE, "p1", &[]));
    let pid = ctd.wait_task("p1", "RUNNING");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert_eq!(cmdline, b"/bin/busybox\0sleep\x002147483647\0");
    ok(&ctd.ctr(&["task", "kill", "--signal", "SIGTERM", "p1"]));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        ctd.task("p1").map(|t| t.1).as_deref(),
        Some("RUNNING"),
        "the sandbox process ignores SIGTERM"
    );
    ok(&ctd.ctr(&["task", "kill", "--signal", "SIGKILL", "p1"]));
    ctd.wait_task("p1", "STOPPED");
    ok(&ctd.ctr(&["task", "delete", "p1"]));
    ok(&ctd.ctr(&["container", "delete", "p1"]));

    let dir = state_dir.clone();
    let cgroup = ctd.cgroup.clone();
    drop(ctd);
    assert!(!dir.exists(), "temp dir removed");
    assert!(mounts_under(&dir).is_empty(), "no mounts left");
    assert!(
        !Path::new("/sys/fs/cgroup/unified").join(&cgroup).exists(),
        "cgroup removed"
    );
}
