//! `ketch up` / `status` / `down` as a user runs them, on a private state directory and ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KETCH_KUBECTL") {
        return PathBuf::from(k);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_ketch"))
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("ketch-venv/bin/kubectl"))
        .expect("target dir")
}

fn pids(dir: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(dir.join("state.json")).expect("state.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_i64())
        .map(|p| p as i32)
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        state != "Z" && state != "X"
    })
}

/// Stops the cluster even if the test fails half-way.
struct Down<'a>(&'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = ketch(&["down", "--state-dir", self.0]);
    }
}

#[test]
fn up_status_down_and_recovery_after_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().to_str().expect("utf8").to_string();
    let _down = Down(&state);
    let api = free_port().to_string();
    let etcd = free_port().to_string();
    let up = || {
        ketch(&[
            "up",
            "--state-dir",
            &state,
            "--api-port",
            &api,
            "--etcd-port",
            &etcd,
            "--nodes",
            "0",
        ])
    };

    let out = up();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("starting etcd") && stdout.contains("starting ketch-control"),
        "{stdout}"
    );
    let kubeconfig = dir.path().join("kubeconfig");
    assert!(
        stdout.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{stdout}"
    );

    let get_ns = || {
        Command::new(kubectl())
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .args(["get", "namespaces", "-o", "name"])
            .output()
            .expect("kubectl")
    };
    let out = get_ns();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"));

    let status = ketch(&["status", "--state-dir", &state]);
    assert!(status.status.success());
    assert!(
        says(&status.stdout, "ketch-control", "running"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    // A second `up` sees the running cluster and changes nothing.
    let before = pids(dir.path());
    assert!(up().status.success());
    assert_eq!(pids(dir.path()), before);

    // kill -9 the API server: status says so, and `up` recovers.
    let control = before[1];
    Command::new("kill")
        .args(["-9", &control.to_string()])
        .status()
        .expect("kill");
    let start = std::time::Instant::now();
    while alive(control) && start.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = ketch(&["status", "--state-dir", &state]);
    assert_eq!(status.status.code(), Some(3));
    let out = up();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ketch-control (pid"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let after = pids(dir.path());
    assert_eq!(after[0], before[0], "etcd was kept running");
    assert_ne!(after[1], before[1], "the API server was started again");
    assert!(alive(after[1]));
    assert!(get_ns().status.success(), "the recovered cluster answers");

    // A state whose processes cannot be restarted in place (here: etcd's record says nothing
    // about how it was started) is cleaned up and started afresh.
    let text = std::fs::read_to_string(dir.path().join("state.json")).expect("state");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["processes"][0]["program"] = serde_json::json!("");
    std::fs::write(dir.path().join("state.json"), v.to_string()).expect("write state");
    Command::new("kill")
        .args(["-9", &after[1].to_string()])
        .status()
        .expect("kill");
    while alive(after[1]) && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = up();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cleaning up"));
    assert!(!alive(after[0]), "the old etcd was stopped");
    let after = pids(dir.path());
    assert!(get_ns().status.success(), "the fresh cluster answers");

    // down stops exactly what up started.
    let out = ketch(&["down", "--state-dir", &state]);
    assert!(out.status.success());
    for pid in after {
        assert!(!alive(pid), "pid {pid} still runs after down");
    }
    assert_eq!(
        ketch(&["status", "--state-dir", &state]).status.code(),
        Some(3)
    );
}

/// Whether `ketch status` printed a line for `process` in `state`.
fn says(stdout: &[u8], process: &str, state: &str) -> bool {
    String::from_utf8_lossy(stdout).lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some(process) && words.next() == Some(state)
    })
}
