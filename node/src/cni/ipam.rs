//! Address management from the node's podCIDR, with all state on disk (like host-local).
//!
//! Layout of the data directory:
//! - `<address>` (e.g. `10.244.1.2`): one file per allocated address, holding the container id
//!   and the interface name on two lines;
//! - `last_reserved_ip`: the address handed out last, where the next search starts;
//! - `lock`: every operation holds an exclusive `flock` on it, so concurrent plugin processes
//!   (and threads) never hand out one address twice.
//!
//! Files are written to a temporary name and renamed, so a crash never leaves a half-written one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;
use nix::fcntl::{Flock, FlockArg};

const LOCK_FILE: &str = "lock";
const LAST_RESERVED_FILE: &str = "last_reserved_ip";

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("IPAM state in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("locking {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("no free address left in {0}")]
    Exhausted(Ipv4Network),
    #[error("{0} is too small to allocate from")]
    TooSmall(Ipv4Network),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IpamError + '_ {
    move |source| IpamError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One allocated address and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub ip: Ipv4Addr,
    pub container_id: String,
    pub ifname: String,
}

/// The allocator for one podCIDR whose state lives in `dir`.
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
    cidr: Ipv4Network,
    /// First and last address we may hand out (network, `.1` and broadcast excluded).
    first: u32,
    last: u32,
}

impl Ipam {
    pub fn new(dir: impl Into<PathBuf>, cidr: Ipv4Network) -> Result<Self, IpamError> {
        let network = u32::from(cidr.network());
        let broadcast = u32::from(cidr.broadcast());
        // network + 1 is the node's; at least one address must remain before broadcast.
        if broadcast < network.saturating_add(3) {
            return Err(IpamError::TooSmall(cidr));
        }
        Ok(Self {
            dir: dir.into(),
            cidr,
            first: network + 2,
            last: broadcast - 1,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The addresses we may hand out, inclusive.
    pub fn range(&self) -> (Ipv4Addr, Ipv4Addr) {
        (Ipv4Addr::from(self.first), Ipv4Addr::from(self.last))
    }

    /// Takes the exclusive lock (blocking), creating the directory and lock file if needed.
    fn lock(&self) -> Result<Flock<File>, IpamError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, source)| IpamError::Lock { path, source })
    }

    /// The address of `(container_id, ifname)`, allocating the next free one (round-robin after
    /// the last one handed out) if it has none.
    pub fn allocate(&self, container_id: &str, ifname: &str) -> Result<Ipv4Addr, IpamError> {
        let _lock = self.lock()?;
        let allocations = self.read_allocations()?;
        if let Some(a) = allocations
            .iter()
            .find(|a| a.container_id == container_id && a.ifname == ifname)
        {
            return Ok(a.ip);
        }
        let taken: std::collections::HashSet<u32> =
            allocations.iter().map(|a| u32::from(a.ip)).collect();
        let start = match self.read_last_reserved()? {
            Some(last) if (self.first..self.last).contains(&last) => last + 1,
            _ => self.first,
        };
        let size = self.last - self.first + 1;
        let candidate = (0..size)
            .map(|i| self.first + (start - self.first + i) % size)
            .find(|ip| !taken.contains(ip))
            .ok_or(IpamError::Exhausted(self.cidr))?;
        let ip = Ipv4Addr::from(candidate);
        self.write_atomically(&ip.to_string(), &format!("{container_id}\n{ifname}\n"))?;
        self.write_atomically(LAST_RESERVED_FILE, &ip.to_string())?;
        Ok(ip)
    }

    /// Frees every address held by `(container_id, ifname)`; returns them (none is not an error).
    pub fn release(&self, container_id: &str, ifname: &str) -> Result<Vec<Ipv4Addr>, IpamError> {
        let _lock = self.lock()?;
        let mut freed = Vec::new();
        for a in self.read_allocations()? {
            if a.container_id == container_id && a.ifname == ifname {
                let path = self.dir.join(a.ip.to_string());
                match fs::remove_file(&path) {
                    Ok(()) => freed.push(a.ip),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path)(e)),
                }
            }
        }
        Ok(freed)
    }

    /// The address held by `(container_id, ifname)`, if any.
    pub fn lookup(&self, container_id: &str, ifname: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        let _lock = self.lock()?;
        Ok(self
            .read_allocations()?
            .into_iter()
            .find(|a| a.container_id == container_id && a.ifname == ifname)
            .map(|a| a.ip))
    }

    /// Every allocation on disk (any address file, also ones outside the current podCIDR).
    pub fn allocations(&self) -> Result<Vec<Allocation>, IpamError> {
        let _lock = self.lock()?;
        self.read_allocations()
    }

    fn read_allocations(&self) -> Result<Vec<Allocation>, IpamError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let content = match fs::read_to_string(&path) {
                Ok(c) => c,
                // Released by nobody else (we hold the lock), but tolerate a racing `rm`.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path)(e)),
            };
            let mut lines = content.lines().map(str::trim);
            out.push(Allocation {
                ip,
                container_id: lines.next().unwrap_or_default().to_string(),
                ifname: lines.next().unwrap_or_default().to_string(),
            });
        }
        out.sort_by_key(|a| u32::from(a.ip));
        Ok(out)
    }

    fn read_last_reserved(&self) -> Result<Option<u32>, IpamError> {
        let path = self.dir.join(LAST_RESERVED_FILE);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim().parse::<Ipv4Addr>().ok().map(u32::from)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn write_atomically(&self, name: &str, content: &str) -> Result<(), IpamError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(content.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn net(s: &str) -> Ipv4Network {
        s.parse().expect("cidr")
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn skips_network_node_and_broadcast() {
        let dir = tempfile::tempdir().expect("tmp");
        let ipam = Ipam::new(dir.path(), net("10.9.0.0/30")).expect("ipam");
        assert_eq!(ipam.range(), (ip("10.9.0.2"), ip("10.9.0.2")));
        assert_eq!(ipam.allocate("a", "eth0").expect("first"), ip("10.9.0.2"));
        assert!(matches!(
            ipam.allocate("b", "eth0"),
            Err(IpamError::Exhausted(_))
        ));
        assert!(matches!(
            Ipam::new(dir.path(), net("10.9.0.0/31")),
            Err(IpamError::TooSmall(_))
        ));
    }

    #[test]
    fn state_files_look_like_host_local() {
        let dir = tempfile::tempdir().expect("tmp");
        let ipam = Ipam::new(dir.path(), net("10.244.1.0/24")).expect("ipam");
        ipam.allocate("c0ffee", "eth0").expect("alloc");
        let content = fs::read_to_string(dir.path().join("10.244.1.2")).expect("file");
        assert_eq!(content, "c0ffee\neth0\n");
        assert_eq!(
            fs::read_to_string(dir.path().join(LAST_RESERVED_FILE)).expect("last"),
            "10.244.1.2"
        );
        assert!(dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn same_attachment_gets_the_same_address() {
        let dir = tempfile::tempdir().expect("tmp");
        let ipam = Ipam::new(dir.path(), net("10.244.1.0/24")).expect("ipam");
        let a = ipam.allocate("a", "eth0").expect("a");
        assert_eq!(ipam.allocate("a", "eth0").expect("again"), a);
        assert_ne!(ipam.allocate("a", "eth1").expect("other if"), a);
        assert_eq!(ipam.lookup("a", "eth0").expect("lookup"), Some(a));
        assert_eq!(ipam.lookup("z", "eth0").expect("lookup"), None);
    }

    #[test]
    fn round_robin_does_not_reuse_at_once_and_wraps() {
        let dir = tempfile::tempdir().expect("tmp");
        // .2 .. .6 usable.
        let ipam = Ipam::new(dir.path(), net("10.1.0.0/29")).expect("ipam");
        assert_eq!(ipam.allocate("a", "eth0").expect("a"), ip("10.1.0.2"));
        assert_eq!(ipam.allocate("b", "eth0").expect("b"), ip("10.1.0.3"));
        assert_eq!(
            ipam.release("a", "eth0").expect("rel"),
            vec![ip("10.1.0.2")]
        );
        assert_eq!(ipam.allocate("c", "eth0").expect("c"), ip("10.1.0.4"));
        assert_eq!(ipam.allocate("d", "eth0").expect("d"), ip("10.1.0.5"));
        assert_eq!(ipam.allocate("e", "eth0").expect("e"), ip("10.1.0.6"));
        // Wraps past .3 (still b's) to the freed .2.
        assert_eq!(ipam.allocate("f", "eth0").expect("f"), ip("10.1.0.2"));
        assert!(matches!(
            ipam.allocate("g", "eth0"),
            Err(IpamError::Exhausted(_))
        ));
    }

    #[test]
    fn release_is_idempotent_and_state_survives_a_new_instance() {
        let dir = tempfile::tempdir().expect("tmp");
        let cidr = net("10.1.0.0/24");
        let ipam = Ipam::new(dir.path(), cidr).expect("ipam");
        ipam.allocate("a", "eth0").expect("a");
        ipam.allocate("b", "eth0").expect("b");
        assert_eq!(ipam.release("a", "eth0").expect("rel").len(), 1);
        assert!(ipam.release("a", "eth0").expect("rel again").is_empty());
        assert!(ipam.release("never", "eth0").expect("unknown").is_empty());

        // A "restart": a new allocator on the same directory continues after .3.
        let again = Ipam::new(dir.path(), cidr).expect("ipam");
        assert_eq!(
            again.allocations().expect("list"),
            vec![Allocation {
                ip: ip("10.1.0.3"),
                container_id: "b".into(),
                ifname: "eth0".into()
            }]
        );
        assert_eq!(again.allocate("c", "eth0").expect("c"), ip("10.1.0.4"));
    }

    #[test]
    fn last_reserved_outside_the_range_restarts_at_the_beginning() {
        let dir = tempfile::tempdir().expect("tmp");
        fs::write(dir.path().join(LAST_RESERVED_FILE), "192.168.7.7").expect("write");
        let ipam = Ipam::new(dir.path(), net("10.1.0.0/24")).expect("ipam");
        assert_eq!(ipam.allocate("a", "eth0").expect("a"), ip("10.1.0.2"));
    }

    #[test]
    fn concurrent_allocations_from_threads_never_collide() {
        let dir = tempfile::tempdir().expect("tmp");
        let ipam = Arc::new(Ipam::new(dir.path(), net("10.2.0.0/24")).expect("ipam"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let ipam = Arc::clone(&ipam);
                std::thread::spawn(move || {
                    (0..15)
                        .map(|i| ipam.allocate(&format!("c{t}-{i}"), "eth0").expect("alloc"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<Ipv4Addr> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(all.len(), 120);
        assert_eq!(unique.len(), 120, "an address was handed out twice");
        assert_eq!(ipam.allocations().expect("list").len(), 120);
        // Round-robin from a fresh directory packs the first 120 addresses.
        assert!(all.iter().all(|a| (2..=121).contains(&a.octets()[3])));
    }
}
