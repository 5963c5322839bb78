//! The eBPF dataplane in user space (aya): loads `ketch-ebpf.o`, pins its maps and links under a
//! per-node bpffs, attaches the programs, and is the one writer of the Service maps.
//!
//! # Using it
//!
//! ```no_run
//! # use ketch_node::dataplane::*;
//! # use std::net::Ipv4Addr;
//! # fn main() -> Result<(), DataplaneError> {
//! let mut cfg = DataplaneConfig::new("/var/lib/ketch/node/bpf", default_object_path());
//! cfg.interface = Some("eth0".into());                        // NodePort (tc, TCX)
//! cfg.cgroup = Some("/sys/fs/cgroup/unified/ketch-n1".into()); // socket LB (cgroup v2)
//! let mut dp = Dataplane::open(cfg)?;  // reuses pinned maps: nothing is flushed
//! dp.set_node_addresses(&[Ipv4Addr::new(10, 239, 0, 11)], None)?;
//! let id = dp.upsert_service(&Service {
//!     frontend: Frontend { addr: Ipv4Addr::new(10, 96, 0, 10), port: 53, proto: Protocol::Udp },
//!     kind: ServiceKind::ClusterIp,
//!     backends: vec![BackendAddr { addr: Ipv4Addr::new(10, 244, 1, 5), port: 5353, local: true }],
//!     affinity_timeout: None,
//!     external_traffic_local: false,
//!     internal_traffic_local: false,
//! })?;
//! for s in dp.list_services()? { println!("{:?} -> {:?}", s.frontend, s.backends); }
//! # Ok(()) }
//! ```
//!
//! | call | what it does |
//! |---|---|
//! | [`Dataplane::open`] | mount the bpffs if needed, load the object, reuse pinned maps (an incompatible pinned map — other key/value size — is replaced, with a warning), load every program, attach to `interface`/`cgroup` if given (see the `attach` module for how a restart replaces programs without a gap), write the node config |
//! | [`Dataplane::upsert_service`] | create or replace a frontend's backends atomically; returns its [`ServiceId`] (stable for the frontend) |
//! | [`Dataplane::delete_service`] | remove a frontend (new connections to it are no longer translated) |
//! | [`Dataplane::list_services`] | every frontend with its backends, read back from the maps |
//! | [`Dataplane::set_node_addresses`] | the addresses NodePort frontends answer on, and the SNAT address for backends on other nodes (default: the first address) |
//! | [`Dataplane::conntrack`], [`Dataplane::affinity`], [`Dataplane::stats`] | readers for a CLI |
//! | [`Dataplane::expire_conntrack`] | delete connection-tracking entries idle past their [`CtTimeouts`] (TCP open / closing, UDP) |
//! | [`Dataplane::detach`] | remove the link pins: the programs stop (teardown) |
//! | [`cgroup::node_cgroup`], [`cgroup::join_node_cgroup`] | the cgroup v2 attach point of a node (`<cgroup2>/<cgroup parent>`), and moving the agent into it (see [`cgroup`] for why and the evidence) |
//!
//! One Kubernetes Service is one [`Service`] per frontend: ClusterIP × port, NodePort × port
//! (kind `NodePort`, address ignored), each external IP × port. The agent chooses the endpoints
//! (ready, or terminating-but-serving when none is ready) and marks the ones on this node
//! `local`; the writer applies the Local traffic policies itself. A frontend with no backends
//! stays in the maps and refuses: `connect`/`sendmsg` fail at once with EPERM, NodePort packets
//! are dropped and counted. Headless Services have no frontend and are not written.
//!
//! # Map layout (ebpf/common)
//!
//! `KETCH_SERVICES` {addr, port, proto, slot} → master entry at slot 0 (count, slot base, flags,
//! affinity timeout, service id), backend ids at the slots: one hash lookup picks a backend at
//! any scale. A backend set is replaced by writing the other half of the slot space first and
//! then the master entry, so no lookup sees a half-written set. `KETCH_BACKENDS` id → address.
//! `KETCH_CT` (LRU) holds one forward and one reply entry per NodePort connection; its value
//! has room for a policy verdict, reason and peer identity (NetworkPolicy, flow events).
//!
//! # Where NetworkPolicy and flow events fit (not built yet)
//!
//! Socket load balancing translates at `connect()`, so every packet on a pod's veth already
//! carries the backend's real address: policy programs on the host side of each pod veth (tc
//! ingress and egress, attached by ketch-cni beside the veth it makes) see pod-to-pod tuples
//! and need no knowledge of Services. They share `KETCH_CT` with `scope` = `CT_SCOPE_POLICY`
//! (same key shape, a separate key space), keep the verdict, reason and peer identity in the
//! value fields already reserved, and are expired by the same agent pass ([`CtTimeouts`]).
//! NodePort traffic is DNAT-ed on the node interface before it reaches a pod veth, so policy
//! there also sees the backend address, and the client's (or the SNAT) source.

mod attach;
mod bpffs;
pub mod cgroup;
mod error;
mod expiry;
pub mod packet;
mod service;
mod tables;
mod view;

pub use error::DataplaneError;
pub use expiry::{CtTimeouts, monotonic_now_ns};
pub use service::{BackendAddr, Frontend, Protocol, Service, ServiceEntry, ServiceId, ServiceKind};
pub use tables::{AffinityEntry, BackendEntry, CtEntry};
pub use view::Pinned;

use aya::maps::{Array, HashMap, MapData, MapInfo, PerCpuArray};
use aya::programs::{CgroupSockAddr, SchedClassifier, TcAttachType};
use aya::{Ebpf, EbpfLoader};
use ketch_ebpf_common::{self as abi, maps, programs};
use std::collections::{BTreeSet, HashMap as StdHashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Map sizes (entries). They apply when a map is created; a pinned map keeps its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSizes {
    pub services: u32,
    pub backends: u32,
    pub conntrack: u32,
    pub affinity: u32,
    pub sock_revnat: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        MapSizes {
            services: 65536,
            backends: 65536,
            conntrack: 131072,
            affinity: 65536,
            sock_revnat: 65536,
        }
    }
}

/// A bad `--bpf-map-sizes` value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapSizesError {
    #[error("{0:?}: expected <map>=<entries>")]
    Syntax(String),
    #[error("unknown map {0:?} (one of services, backends, conntrack, affinity, sock-revnat)")]
    UnknownMap(String),
    #[error("{map}={value}: entries must be a whole number from 1 to {max}")]
    Entries {
        map: String,
        value: String,
        max: u32,
    },
}

impl std::str::FromStr for MapSizes {
    type Err = MapSizesError;

    /// `services=65536,conntrack=262144` — the maps named change, the others keep the default.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The kernel caps a hash map far below u32::MAX; this keeps a typo from asking for it.
        const MAX: u32 = 1 << 24;
        let mut sizes = MapSizes::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (map, value) = item
                .split_once('=')
                .ok_or_else(|| MapSizesError::Syntax(item.to_string()))?;
            let slot = match map.trim() {
                "services" => &mut sizes.services,
                "backends" => &mut sizes.backends,
                "conntrack" => &mut sizes.conntrack,
                "affinity" => &mut sizes.affinity,
                "sock-revnat" => &mut sizes.sock_revnat,
                other => return Err(MapSizesError::UnknownMap(other.to_string())),
            };
            *slot = value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX).contains(n))
                .ok_or_else(|| MapSizesError::Entries {
                    map: map.trim().to_string(),
                    value: value.trim().to_string(),
                    max: MAX,
                })?;
        }
        Ok(sizes)
    }
}

#[derive(Clone, Debug)]
pub struct DataplaneConfig {
    /// bpffs directory of this node (`<root-dir>/bpf`): `maps/` and `links/` below it.
    pub bpffs: PathBuf,
    /// The object built by `cargo xtask build-ebpf`.
    pub object: PathBuf,
    /// Node interface for NodePort (tc ingress + egress). None: not attached.
    pub interface: Option<String>,
    /// cgroup v2 directory for socket load balancing. None: not attached.
    pub cgroup: Option<PathBuf>,
    pub sizes: MapSizes,
    /// SNAT source ports (host order), outside the node's ephemeral range.
    pub snat_ports: (u16, u16),
}

impl DataplaneConfig {
    pub fn new(bpffs: impl Into<PathBuf>, object: impl Into<PathBuf>) -> Self {
        DataplaneConfig {
            bpffs: bpffs.into(),
            object: object.into(),
            interface: None,
            cgroup: None,
            sizes: MapSizes::default(),
            snat_ports: (61000, 65535),
        }
    }
}

/// Where the object is when nobody says: `$KETCH_EBPF_OBJECT`, else `ketch-ebpf.o` in the
/// first of the current executable's parent directories that has one (`target/debug/ketch-node`
/// → `target/ketch-ebpf.o`; test binaries live one level deeper), else `<exe dir>/../ketch-ebpf.o`.
pub fn default_object_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KETCH_EBPF_OBJECT") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut candidates = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("ketch-ebpf.o"));
    let first = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("ketch-ebpf.o"))
        .unwrap_or_else(|| PathBuf::from("ketch-ebpf.o"));
    candidates.find(|p| p.exists()).unwrap_or(first)
}

/// The loaded programs and the maps, with the one writer of the Service maps.
pub struct Dataplane {
    ebpf: Ebpf,
    services: HashMap<MapData, abi::ServiceKey, abi::ServiceValue>,
    backends: HashMap<MapData, u32, abi::Backend>,
    ct: HashMap<MapData, abi::CtKey, abi::CtValue>,
    affinity: HashMap<MapData, abi::AffinityKey, abi::AffinityValue>,
    node_addrs: HashMap<MapData, u32, u32>,
    config: Array<MapData, abi::NodeConfig>,
    stats: PerCpuArray<MapData, u64>,
    next_svc_id: u32,
    next_backend_id: u32,
    links: PathBuf,
    maps_dir: PathBuf,
}

/// Key and value sizes each map must have (a pinned map with others is from another ABI).
fn expected_sizes(name: &str) -> (u32, u32) {
    use std::mem::size_of;
    let s = |k: usize, v: usize| (k as u32, v as u32);
    match name {
        maps::SERVICES => s(size_of::<abi::ServiceKey>(), size_of::<abi::ServiceValue>()),
        maps::BACKENDS => s(4, size_of::<abi::Backend>()),
        maps::CONNTRACK => s(size_of::<abi::CtKey>(), size_of::<abi::CtValue>()),
        maps::AFFINITY => s(
            size_of::<abi::AffinityKey>(),
            size_of::<abi::AffinityValue>(),
        ),
        maps::SOCK_REVNAT => s(size_of::<abi::SockRevKey>(), size_of::<abi::SockRevValue>()),
        maps::NODE_ADDRS => s(4, 4),
        maps::CONFIG => s(4, size_of::<abi::NodeConfig>()),
        _ => s(4, 8), // STATS
    }
}

const TC_PROGRAMS: [(&str, TcAttachType); 2] = [
    (programs::TC_INGRESS, TcAttachType::Ingress),
    (programs::TC_EGRESS, TcAttachType::Egress),
];
const CGROUP_PROGRAMS: [&str; 4] = [
    programs::CONNECT4,
    programs::SENDMSG4,
    programs::RECVMSG4,
    programs::GETPEERNAME4,
];

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, DataplaneError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let m = ebpf
        .take_map(name)
        .ok_or(DataplaneError::MapMissing(name))?;
    T::try_from(m).map_err(|e| DataplaneError::map(name, e))
}

impl Dataplane {
    pub fn open(cfg: DataplaneConfig) -> Result<Dataplane, DataplaneError> {
        if !cfg.object.exists() {
            return Err(DataplaneError::ObjectMissing(cfg.object.clone()));
        }
        bpffs::ensure_mounted(&cfg.bpffs)?;
        let maps_dir = cfg.bpffs.join("maps");
        let links = cfg.bpffs.join("links");
        for d in [&maps_dir, &links] {
            std::fs::create_dir_all(d).map_err(|source| DataplaneError::Bpffs {
                path: d.clone(),
                source,
            })?;
        }
        drop_incompatible_pins(&maps_dir, &cfg.sizes)?;
        let mut loader = EbpfLoader::new();
        for name in maps::ALL {
            loader.map_pin_path(name, maps_dir.join(name));
        }
        loader
            .map_max_entries(maps::SERVICES, cfg.sizes.services)
            .map_max_entries(maps::BACKENDS, cfg.sizes.backends)
            .map_max_entries(maps::CONNTRACK, cfg.sizes.conntrack)
            .map_max_entries(maps::AFFINITY, cfg.sizes.affinity)
            .map_max_entries(maps::SOCK_REVNAT, cfg.sizes.sock_revnat);
        let mut ebpf = loader
            .load_file(&cfg.object)
            .map_err(|e| DataplaneError::Load {
                path: cfg.object.clone(),
                source: Box::new(e),
            })?;
        for (name, dir) in TC_PROGRAMS {
            let prog: &mut SchedClassifier = program(&mut ebpf, name)?;
            prog.load().map_err(|e| DataplaneError::program(name, e))?;
            if let Some(iface) = &cfg.interface {
                attach::attach_tc(prog, name, iface, dir, &links)?;
            }
        }
        for name in CGROUP_PROGRAMS {
            let prog: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            prog.load().map_err(|e| DataplaneError::program(name, e))?;
            if let Some(cg) = &cfg.cgroup {
                attach::attach_cgroup(prog, name, cg, &links)?;
            }
        }
        let mut dp = Dataplane {
            services: take(&mut ebpf, maps::SERVICES)?,
            backends: take(&mut ebpf, maps::BACKENDS)?,
            ct: take(&mut ebpf, maps::CONNTRACK)?,
            affinity: take(&mut ebpf, maps::AFFINITY)?,
            node_addrs: take(&mut ebpf, maps::NODE_ADDRS)?,
            config: take(&mut ebpf, maps::CONFIG)?,
            stats: take(&mut ebpf, maps::STATS)?,
            ebpf,
            next_svc_id: 1,
            next_backend_id: 1,
            links,
            maps_dir,
        };
        let mut c = dp.node_config()?;
        c.abi_version = abi::ABI_VERSION;
        c.snat_port_min = cfg.snat_ports.0;
        c.snat_port_max = cfg.snat_ports.1;
        dp.write_config(c)?;
        dp.recover()?;
        Ok(dp)
    }

    /// The loaded programs, for `BPF_PROG_TEST_RUN` in tests and benches.
    pub fn ebpf(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Where the maps are pinned.
    pub fn maps_dir(&self) -> &Path {
        &self.maps_dir
    }

    /// Removes the link pins: the programs are detached once this process lets go of them.
    pub fn detach(&self) -> Result<(), DataplaneError> {
        attach::detach_all(&self.links)
    }

    /// Removes everything pinned under `bpffs` (links and maps) — teardown of a node.
    pub fn remove_pins(bpffs: &Path) -> Result<(), DataplaneError> {
        attach::detach_all(&bpffs.join("links"))?;
        attach::detach_all(&bpffs.join("maps"))
    }

    /// Rebuilds the id allocators from the maps and drops backends no slot refers to (left by
    /// a writer that died between writing backends and the master entry).
    fn recover(&mut self) -> Result<(), DataplaneError> {
        let mut referenced = BTreeSet::new();
        let mut max_svc = 0;
        for item in self.services.iter() {
            let (k, v) = item.map_err(|e| DataplaneError::map(maps::SERVICES, e))?;
            max_svc = max_svc.max(v.svc_id);
            if k.slot != 0 {
                referenced.insert(v.backend_id);
            }
        }
        let mut orphans = Vec::new();
        let mut max_backend = 0;
        for k in self.backends.keys() {
            let k = k.map_err(|e| DataplaneError::map(maps::BACKENDS, e))?;
            max_backend = max_backend.max(k);
            if !referenced.contains(&k) {
                orphans.push(k);
            }
        }
        for k in &orphans {
            let _ = self.backends.remove(k);
        }
        self.next_svc_id = max_svc.wrapping_add(1).max(1);
        self.next_backend_id = max_backend.wrapping_add(1).max(1);
        tracing::info!(
            frontends = max_svc,
            orphans = orphans.len(),
            "dataplane maps recovered"
        );
        Ok(())
    }

    fn node_config(&self) -> Result<abi::NodeConfig, DataplaneError> {
        self.config
            .get(&0, 0)
            .map_err(|e| DataplaneError::map(maps::CONFIG, e))
    }

    fn write_config(&mut self, c: abi::NodeConfig) -> Result<(), DataplaneError> {
        self.config
            .set(0, c, 0)
            .map_err(|e| DataplaneError::map(maps::CONFIG, e))
    }

    /// Sets the node's addresses (NodePort frontends answer on each) and the SNAT address used
    /// towards backends on other nodes (default: the first address).
    pub fn set_node_addresses(
        &mut self,
        addrs: &[Ipv4Addr],
        snat: Option<Ipv4Addr>,
    ) -> Result<(), DataplaneError> {
        let want: BTreeSet<u32> = addrs.iter().map(|a| abi::ip4(a.octets())).collect();
        for a in &want {
            self.node_addrs
                .insert(a, 1, 0)
                .map_err(|e| DataplaneError::map(maps::NODE_ADDRS, e))?;
        }
        let stale: Vec<u32> = self
            .node_addrs
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !want.contains(k))
            .collect();
        for k in stale {
            let _ = self.node_addrs.remove(&k);
        }
        let mut c = self.node_config()?;
        c.snat_addr = snat
            .or_else(|| addrs.first().copied())
            .map(|a| abi::ip4(a.octets()))
            .unwrap_or(0);
        self.write_config(c)
    }

    /// Creates or replaces a frontend. The new backend set becomes visible at once and whole:
    /// backends and slots are written first (in the slot half not in use), the master entry
    /// last, and only then are the old slots and backends removed.
    pub fn upsert_service(&mut self, svc: &Service) -> Result<ServiceId, DataplaneError> {
        let frontend = svc.stored_frontend();
        if frontend.port == 0 {
            return Err(DataplaneError::InvalidService("port 0".into()));
        }
        if svc.kind != ServiceKind::NodePort && frontend.addr.is_unspecified() {
            return Err(DataplaneError::InvalidService(format!(
                "{:?} frontend without an address",
                svc.kind
            )));
        }
        let backends = svc.effective_backends();
        if backends.len() > abi::MAX_BACKENDS_PER_SERVICE as usize {
            return Err(DataplaneError::InvalidService(format!(
                "{} backends (at most {})",
                backends.len(),
                abi::MAX_BACKENDS_PER_SERVICE
            )));
        }
        let mkey = service::master_key(&frontend);
        let old = self.services.get(&mkey, 0).ok();
        let svc_id = match &old {
            Some(o) => o.svc_id,
            None => self.alloc_svc_id(),
        };
        // Current backends of this frontend, by address, to keep their ids (affinity survives).
        let mut old_ids: StdHashMap<(u32, u16), u32> = StdHashMap::new();
        let mut old_slots = Vec::new();
        if let Some(o) = &old {
            for i in 1..=o.count {
                let k = abi::ServiceKey {
                    slot: o.slot_base + i,
                    ..mkey
                };
                old_slots.push(k);
                if let Ok(v) = self.services.get(&k, 0)
                    && let Ok(b) = self.backends.get(&v.backend_id, 0)
                {
                    old_ids.insert((b.addr, b.port), v.backend_id);
                }
            }
        }
        let base = match &old {
            Some(o) if o.slot_base == 0 => abi::SLOT_HALF,
            _ => 0,
        };
        let mut kept = BTreeSet::new();
        for (i, b) in backends.iter().enumerate() {
            let value = service::to_abi_backend(b, frontend.proto, svc_id);
            let id = match old_ids.get(&(value.addr, value.port)) {
                Some(id) => *id,
                None => self.alloc_backend_id(),
            };
            kept.insert(id);
            self.backends
                .insert(id, value, 0)
                .map_err(|e| full_or(maps::BACKENDS, e))?;
            let slot = abi::ServiceKey {
                slot: base + 1 + i as u16,
                ..mkey
            };
            let v = abi::ServiceValue {
                backend_id: id,
                svc_id,
                ..Default::default()
            };
            self.services
                .insert(slot, v, 0)
                .map_err(|e| full_or(maps::SERVICES, e))?;
        }
        // Leftovers in the new half (a writer that died mid-way) would never be read; drop them.
        let mut extra = base + 1 + backends.len() as u16;
        while extra < base.wrapping_add(abi::MAX_BACKENDS_PER_SERVICE)
            && self
                .services
                .remove(&abi::ServiceKey {
                    slot: extra,
                    ..mkey
                })
                .is_ok()
        {
            extra += 1;
        }
        let master = abi::ServiceValue {
            backend_id: 0,
            svc_id,
            count: backends.len() as u16,
            slot_base: base,
            flags: svc.flags(),
            _pad: 0,
            affinity_timeout: svc.affinity_timeout.unwrap_or(0),
        };
        self.services
            .insert(mkey, master, 0)
            .map_err(|e| full_or(maps::SERVICES, e))?;
        for k in old_slots {
            let _ = self.services.remove(&k);
        }
        for id in old_ids.values().filter(|id| !kept.contains(id)) {
            let _ = self.backends.remove(id);
        }
        tracing::debug!(
            ?frontend,
            svc_id,
            backends = backends.len(),
            "service written"
        );
        Ok(ServiceId(svc_id))
    }

    /// Removes a frontend: the master entry first (lookups miss from then on), then its slots
    /// and backends. Connections already translated keep working (socket LB translated once;
    /// NodePort connections have their conntrack entries). Returns whether it existed.
    pub fn delete_service(&mut self, frontend: &Frontend) -> Result<bool, DataplaneError> {
        let mkey = service::master_key(frontend);
        let Ok(old) = self.services.get(&mkey, 0) else {
            return Ok(false);
        };
        self.services
            .remove(&mkey)
            .map_err(|e| DataplaneError::map(maps::SERVICES, e))?;
        for i in 1..=old.count {
            let k = abi::ServiceKey {
                slot: old.slot_base + i,
                ..mkey
            };
            if let Ok(v) = self.services.get(&k, 0) {
                let _ = self.backends.remove(&v.backend_id);
            }
            let _ = self.services.remove(&k);
        }
        Ok(true)
    }

    /// Every frontend in the maps with its current backends.
    pub fn list_services(&self) -> Result<Vec<ServiceEntry>, DataplaneError> {
        read_services(&self.services, &self.backends)
    }

    fn alloc_svc_id(&mut self) -> u32 {
        let id = self.next_svc_id;
        self.next_svc_id = self.next_svc_id.wrapping_add(1).max(1);
        id
    }

    fn alloc_backend_id(&mut self) -> u32 {
        // Ids only grow (u32: ~4e9 backend changes before wrapping), so a freed id is not
        // handed to another frontend while an affinity entry may still name it.
        loop {
            let id = self.next_backend_id;
            self.next_backend_id = self.next_backend_id.wrapping_add(1).max(1);
            if self.backends.get(&id, 0).is_err() {
                return id;
            }
        }
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, DataplaneError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p = ebpf
        .program_mut(name)
        .ok_or_else(|| DataplaneError::program(name, aya::programs::ProgramError::NotLoaded))?;
    p.try_into().map_err(|e| DataplaneError::program(name, e))
}

fn full_or(name: &str, e: aya::maps::MapError) -> DataplaneError {
    if let aya::maps::MapError::SyscallError(s) = &e
        && s.io_error.raw_os_error() == Some(nix::libc::E2BIG)
    {
        return DataplaneError::Full(name.to_string());
    }
    DataplaneError::map(name, e)
}

/// A pinned map whose key or value size differs from this build's is from another ABI: it is
/// removed (its state cannot be read by these programs) and created anew by the loader.
fn drop_incompatible_pins(dir: &Path, sizes: &MapSizes) -> Result<(), DataplaneError> {
    for name in maps::ALL {
        let path = dir.join(name);
        let Ok(info) = MapInfo::from_pin(&path) else {
            continue;
        };
        let found = (info.key_size(), info.value_size());
        let want = expected_sizes(name);
        let configured = match name {
            maps::SERVICES => Some(sizes.services),
            maps::BACKENDS => Some(sizes.backends),
            maps::CONNTRACK => Some(sizes.conntrack),
            maps::AFFINITY => Some(sizes.affinity),
            maps::SOCK_REVNAT => Some(sizes.sock_revnat),
            _ => None,
        };
        if let Some(entries) = configured
            && entries != info.max_entries()
        {
            // Resizing would drop every connection the map tracks; say so instead.
            tracing::warn!(
                map = name,
                pinned = info.max_entries(),
                configured = entries,
                "the pinned map keeps its size; the configured one applies once the node's maps are removed"
            );
        }
        if found != want {
            tracing::warn!(
                map = name,
                ?found,
                ?want,
                "pinned map from another ABI; replacing it"
            );
            std::fs::remove_file(&path).map_err(|source| DataplaneError::Bpffs {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Every frontend with its backends, read back from the maps.
fn read_services(
    services: &HashMap<MapData, abi::ServiceKey, abi::ServiceValue>,
    backend_map: &HashMap<MapData, u32, abi::Backend>,
) -> Result<Vec<ServiceEntry>, DataplaneError> {
    let mut out = Vec::new();
    for item in services.iter() {
        let (k, v) = item.map_err(|e| DataplaneError::map(maps::SERVICES, e))?;
        if k.slot != 0 {
            continue;
        }
        let Some(frontend) = service::frontend_of(&k) else {
            continue;
        };
        let mut backends = Vec::with_capacity(v.count as usize);
        for i in 1..=v.count {
            let sk = abi::ServiceKey {
                slot: v.slot_base + i,
                ..k
            };
            if let Ok(s) = services.get(&sk, 0)
                && let Ok(b) = backend_map.get(&s.backend_id, 0)
            {
                backends.push(service::from_abi_backend(&b));
            }
        }
        out.push(ServiceEntry {
            id: ServiceId(v.svc_id),
            frontend,
            kind: service::kind_from_flags(v.flags),
            backends,
            affinity_timeout: (v.flags & abi::svc_flags::AFFINITY != 0)
                .then_some(v.affinity_timeout),
            external_traffic_local: v.flags & abi::svc_flags::EXT_LOCAL != 0,
            internal_traffic_local: v.flags & abi::svc_flags::INT_LOCAL != 0,
        });
    }
    out.sort_by_key(|e| e.frontend);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_sizes_parse_named_maps_and_keep_the_rest() {
        let s: MapSizes = "services=1000, conntrack=262144".parse().expect("valid");
        assert_eq!(
            s,
            MapSizes {
                services: 1000,
                conntrack: 262144,
                ..MapSizes::default()
            }
        );
        assert_eq!("".parse::<MapSizes>(), Ok(MapSizes::default()));
    }

    #[test]
    fn map_sizes_name_what_is_wrong() {
        assert_eq!(
            "services".parse::<MapSizes>(),
            Err(MapSizesError::Syntax("services".into()))
        );
        assert_eq!(
            "routes=10".parse::<MapSizes>(),
            Err(MapSizesError::UnknownMap("routes".into()))
        );
        for bad in [
            "backends=0",
            "backends=-1",
            "backends=lots",
            "backends=99999999999",
        ] {
            let err = bad.parse::<MapSizes>().expect_err(bad);
            assert!(
                matches!(&err, MapSizesError::Entries { map, .. } if map == "backends"),
                "{bad}: {err}"
            );
        }
    }
}
