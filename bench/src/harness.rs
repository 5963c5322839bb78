//! Processes for benchmarks: a private etcd and a release `ketch-control` on free loopback
//! ports, killed when dropped.

use anyhow::{Context, Result, bail};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn start_etcd(dir: &Path) -> Result<(Proc, String)> {
    let (c, p) = (free_port()?, free_port()?);
    let url = format!("http://127.0.0.1:{c}");
    let peer = format!("http://127.0.0.1:{p}");
    let child = Command::new("etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("bench={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start etcd (cargo xtask setup installs it)")?;
    Ok((Proc(child), url))
}

pub fn control_binary() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let p = me
        .parent()
        .map(|d| d.join("ketch-control"))
        .context("no directory")?;
    if !p.exists() {
        bail!(
            "{} missing: build with cargo build --release first",
            p.display()
        );
    }
    Ok(p)
}

pub async fn start_control(
    dir: &Path,
    etcd: &str,
    extra: &[&str],
) -> Result<(Proc, kube::Client, u16)> {
    let port = free_port()?;
    let child = Command::new(control_binary()?)
        .args([
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            &port.to_string(),
            "--etcd-servers",
            etcd,
        ])
        .arg("--data-dir")
        .arg(dir.join("control"))
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("KETCH_BENCH_CONTROL_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(control_log()?)
        .spawn()
        .context("start ketch-control")?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(client) = client(dir, port).await
            && client
                .request_text(http::Request::get("/readyz").body(Vec::new())?)
                .await
                .is_ok()
        {
            return Ok((proc, client, port));
        }
        if Instant::now() > deadline {
            bail!("ketch-control did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where ketch-control's log goes: `KETCH_BENCH_CONTROL_LOG` (appended to), else nowhere.
fn control_log() -> Result<Stdio> {
    match std::env::var_os("KETCH_BENCH_CONTROL_LOG") {
        Some(p) => Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .with_context(|| format!("open {}", Path::new(&p).display()))?
            .into()),
        None => Ok(Stdio::null()),
    }
}

/// A new client with its own connection.
pub async fn client(dir: &Path, port: u16) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(dir.join("control/admin.kubeconfig"))?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    cfg.cluster_url = format!("https://127.0.0.1:{port}").parse()?;
    Ok(kube::Client::try_from(cfg)?)
}
