//! The traffic of part (2): a server answering fixed-size requests, and the client that runs in
//! a child process of the bench (so that it can sit in the client cgroup and network namespace
//! without moving the bench itself).
//!
//! - RR: one keep-alive connection, N request/response round trips, each timed.
//! - CRR: connect, one request, one response, close, over and over for a fixed time. The
//!   server closes first (as an HTTP/1.0 server does), so the TIME_WAIT sockets are on the
//!   server side and the client's ports are free again at once.

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Server ports: keep-alive (RR) and one request per connection (CRR).
pub const RR_PORT: u16 = 8080;
pub const CRR_PORT: u16 = 8081;

/// Starts the server threads inside the namespace at `netns`, listening on every address;
/// returns once both ports listen.
pub fn start_server(netns: PathBuf, size: usize) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<()>>();
    std::thread::spawn(move || {
        let listeners = (|| -> Result<(TcpListener, TcpListener)> {
            super::sys::enter_netns(&netns)?;
            let rr = TcpListener::bind(("0.0.0.0", RR_PORT)).context("bind RR port")?;
            let crr = TcpListener::bind(("0.0.0.0", CRR_PORT)).context("bind CRR port")?;
            Ok((rr, crr))
        })();
        let (rr, crr) = match listeners {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        // Threads inherit the namespace of the thread that creates them, and the listening
        // sockets belong to it anyway.
        for _ in 0..2 {
            let Ok(l) = crr.try_clone() else { break };
            std::thread::spawn(move || {
                while let Ok((mut s, _)) = l.accept() {
                    let _ = s.set_nodelay(true);
                    let mut buf = vec![0u8; size];
                    if s.read_exact(&mut buf).is_ok() {
                        let _ = s.write_all(&buf);
                    }
                    // Dropped here: the server closes first.
                }
            });
        }
        let _ = tx.send(Ok(()));
        for s in rr.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut buf = vec![0u8; size];
                while s.read_exact(&mut buf).is_ok() {
                    if s.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .context("server did not start")?
}

/// Arguments of the client child (hidden subcommand of packet-bench).
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Network namespace to enter (a /run/netns path).
    #[arg(long)]
    pub netns: PathBuf,
    /// cgroup v2 directory to join first (where the socket programs are attached).
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// `rr` or `crr`.
    #[arg(long)]
    pub mode: String,
    #[arg(long)]
    pub target: SocketAddrV4,
    /// Request and response size, bytes.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// RR: round trips measured.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// CRR: seconds of connections measured.
    #[arg(long, default_value_t = 1.5)]
    pub secs: f64,
    /// Unmeasured round trips (RR) or connections (CRR) first.
    #[arg(long, default_value_t = 500)]
    pub warmup: usize,
}

/// What one client run measured (printed by the child as one JSON line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Operations (round trips or connections) per second.
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Sample {
    pub fn parse(line: &str) -> Result<Sample> {
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).with_context(|| format!("client output {line:?}"))?;
        let f = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_f64)
                .with_context(|| format!("{k} missing in client output {line:?}"))
        };
        Ok(Sample {
            rate: f("rate")?,
            p50_us: f("p50_us")?,
            p99_us: f("p99_us")?,
        })
    }
}

/// The client child's main: join the cgroup, enter the namespace, measure, print one line.
pub fn client_main(a: &ClientArgs) -> Result<()> {
    if let Some(cg) = &a.cgroup {
        // "0": this process; it has one thread yet, so all of it moves.
        std::fs::write(cg.join("cgroup.procs"), "0")
            .with_context(|| format!("join {}", cg.display()))?;
    }
    super::sys::enter_netns(&a.netns)?;
    let (lat, (n, wall)) = match a.mode.as_str() {
        "rr" => rr(a)?,
        "crr" => crr(a)?,
        m => bail!("unknown mode {m}"),
    };
    let (p50, p99) = quantiles(lat);
    println!(
        "{}",
        json!({"rate": n as f64 / wall.as_secs_f64(), "p50_us": p50, "p99_us": p99})
    );
    Ok(())
}

fn quantiles(mut ns: Vec<u64>) -> (f64, f64) {
    if ns.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    (at(0.5), at(0.99))
}

fn connect(target: SocketAddrV4) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&target.into(), Duration::from_secs(5))
        .with_context(|| format!("connect {target}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Keep-alive round trips; returns each one's ns and (count, wall time).
fn rr(a: &ClientArgs) -> Result<(Vec<u64>, (usize, Duration))> {
    let mut s = connect(a.target)?;
    let req = vec![7u8; a.size];
    let mut resp = vec![0u8; a.size];
    let mut one = |s: &mut TcpStream| -> Result<()> {
        s.write_all(&req)?;
        s.read_exact(&mut resp).context("read response")?;
        Ok(())
    };
    for _ in 0..a.warmup {
        one(&mut s)?;
    }
    let mut lat = Vec::with_capacity(a.count);
    let start = Instant::now();
    for _ in 0..a.count {
        let t = Instant::now();
        one(&mut s)?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    Ok((lat, (a.count, start.elapsed())))
}

/// Connect-request-response-close for `secs`; returns each connection's ns and (count, wall).
fn crr(a: &ClientArgs) -> Result<(Vec<u64>, (usize, Duration))> {
    let req = vec![7u8; a.size];
    let mut resp = vec![0u8; a.size];
    let mut one = || -> Result<()> {
        let mut s = connect(a.target)?;
        s.write_all(&req)?;
        s.read_exact(&mut resp).context("read response")?;
        // The server closes after its response: wait for that, then close our end.
        let mut rest = [0u8; 1];
        if s.read(&mut rest).context("read close")? != 0 {
            bail!("server sent more than one response");
        }
        Ok(())
    };
    for _ in 0..a.warmup {
        one()?;
    }
    let mut lat = Vec::with_capacity(1 << 16);
    let limit = Duration::from_secs_f64(a.secs);
    let start = Instant::now();
    while start.elapsed() < limit {
        let t = Instant::now();
        one()?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let n = lat.len();
    Ok((lat, (n, start.elapsed())))
}
