//! What the packet bench makes on the machine — network namespaces, a cgroup, a bpffs — each
//! behind a guard that removes it when dropped (also when unwinding from a panic), plus a
//! SIGINT/SIGTERM watcher so that Ctrl-C ends the run through the same guards.

use anyhow::{Context, Result, bail};
use ketch_node::dataplane::Dataplane;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
/// The client process running now (0: none), killed on a signal so the run ends promptly.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread and child started after)
/// and turns them into [`stopped`] on a thread of its own. Call first thing in `main`.
pub fn watch_signals() -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("block signals")?;
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            eprintln!("packet-bench: {sig}, cleaning up");
            STOP.store(true, Ordering::SeqCst);
            let pid = CHILD.load(Ordering::SeqCst);
            if pid > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    });
    Ok(())
}

/// Whether a signal asked the run to end.
pub fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Fails if a signal asked the run to end (so guards clean up on the way out).
pub fn check_stop() -> Result<()> {
    if stopped() {
        bail!("interrupted");
    }
    Ok(())
}

/// Runs `cmd` to completion as the current child (killed on a signal); returns its output.
pub fn run_child(cmd: &mut Command) -> Result<std::process::Output> {
    check_stop()?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {cmd:?}"))?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let out = child.wait_with_output();
    CHILD.store(0, Ordering::SeqCst);
    let out = out.with_context(|| format!("wait for {cmd:?}"))?;
    check_stop()?;
    Ok(out)
}

/// Runs a command that must succeed (ip, sysctl, iptables-restore …).
pub fn sh(program: &str, args: &[&str]) -> Result<()> {
    let out = run_child(Command::new(program).args(args))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A network namespace of this run (`/run/netns/<name>`), deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Result<Netns> {
        if Path::new("/run/netns").join(name).exists() {
            // The name carries our pid: a namespace of that name is from a killed run that had
            // the same pid, so it is this bench's own leftover.
            let _ = sh("ip", &["netns", "del", name]);
        }
        sh("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n <ns> …`
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        sh("ip", &a)
    }

    /// Sets a per-namespace sysctl by writing under `/proc/sys` from a thread inside it.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let file = Path::new("/proc/sys").join(key.replace('.', "/"));
        let value = value.to_string();
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                // /proc/sys/net is resolved in the namespace of the thread that opens it.
                enter_netns(&path)?;
                std::fs::write(&file, &value).with_context(|| format!("write {}", file.display()))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("sysctl thread panicked"))?
        })
    }

    /// Joins this namespace to `other` by a veth pair, `local`/`peer` being interface names
    /// inside each (nothing is created in the root namespace), with `addr_local`/`addr_peer`
    /// (CIDR notation) on them.
    pub fn veth(
        &self,
        local: &str,
        addr_local: &str,
        other: &Netns,
        peer: &str,
        addr_peer: &str,
    ) -> Result<()> {
        sh(
            "ip",
            &[
                "link",
                "add",
                local,
                "netns",
                &self.name,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                &other.name,
            ],
        )?;
        self.ip(&["addr", "add", addr_local, "dev", local])?;
        other.ip(&["addr", "add", addr_peer, "dev", peer])?;
        self.ip(&["link", "set", local, "up"])?;
        other.ip(&["link", "set", peer, "up"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Plain Command: this must run even after a signal.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter_netns(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns {}", path.display()))
}

/// A cgroup v2 directory of this run, removed on drop (its processes — the clients — have
/// exited by then; a cgroup with none left is removable).
pub struct Cgroup(pub PathBuf);

impl Cgroup {
    pub fn new(name: &str) -> Result<Cgroup> {
        let root = ketch_node::dataplane::cgroup::cgroup2_root().context("no cgroup2 mount")?;
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Cgroup(dir))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A client killed a moment ago may still be leaving it: retry briefly.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("packet-bench: could not remove {}", self.0.display());
    }
}

/// A bpffs of this run under a temporary directory: pins removed and unmounted on drop.
pub struct Bpffs(tempfile::TempDir);

impl Bpffs {
    pub fn new() -> Result<Bpffs> {
        Ok(Bpffs(
            tempfile::Builder::new()
                .prefix("ketch-packet-bench")
                .tempdir()?,
        ))
    }

    /// The temporary directory the mount point is in (room for ordinary files).
    pub fn dir(&self) -> &Path {
        self.0.path()
    }

    /// The mount point (mounted by `Dataplane::open`).
    pub fn path(&self) -> PathBuf {
        self.0.path().join("bpf")
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let p = self.path();
        let _ = Dataplane::remove_pins(&p);
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}
