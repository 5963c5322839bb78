//! Readers of the kernel's state for a CLI: conntrack, affinity and counters.

use super::{Dataplane, DataplaneError, Protocol};
use aya::maps::{HashMap, MapData, PerCpuArray};
use ketch_ebpf_common::{self as abi, maps};
use std::net::{Ipv4Addr, SocketAddrV4};

fn sa(addr: u32, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(addr.to_ne_bytes()),
        u16::from_be_bytes(port.to_ne_bytes()),
    )
}

/// One connection-tracking entry: the tuple it matches and what it rewrites it to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtEntry {
    pub proto: Option<Protocol>,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    /// Rewritten source and destination (unchanged parts as in the tuple).
    pub nat_src: SocketAddrV4,
    pub nat_dst: SocketAddrV4,
    pub service_id: u32,
    pub backend_id: u32,
    /// `ct_flags` of ebpf/common.
    pub flags: u16,
    pub last_seen_ns: u64,
}

impl CtEntry {
    pub fn is_reply(&self) -> bool {
        self.flags & abi::ct_flags::REPLY != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityEntry {
    /// Client address (NodePort) or network-namespace cookie (socket LB).
    pub client: u64,
    pub service_id: u32,
    pub backend_id: u32,
    pub last_used_ns: u64,
}

/// One entry of the backends map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendEntry {
    pub id: u32,
    pub addr: super::BackendAddr,
}

type CtMap = HashMap<MapData, abi::CtKey, abi::CtValue>;
type AffinityMap = HashMap<MapData, abi::AffinityKey, abi::AffinityValue>;

pub(super) fn read_backends(
    backends: &HashMap<MapData, u32, abi::Backend>,
) -> Result<Vec<BackendEntry>, DataplaneError> {
    let mut out = Vec::new();
    for item in backends.iter() {
        let (id, b) = item.map_err(|e| DataplaneError::map(maps::BACKENDS, e))?;
        out.push(BackendEntry {
            id,
            addr: super::service::from_abi_backend(&b),
        });
    }
    out.sort_by_key(|b| b.id);
    Ok(out)
}

pub(super) fn read_conntrack(ct: &CtMap) -> Result<Vec<CtEntry>, DataplaneError> {
    let mut out = Vec::new();
    for item in ct.iter() {
        let (k, v) = item.map_err(|e| DataplaneError::map(maps::CONNTRACK, e))?;
        let pick = |new: u32, old: u32| if new != 0 { new } else { old };
        let pickp = |new: u16, old: u16| if new != 0 { new } else { old };
        out.push(CtEntry {
            proto: Protocol::from_number(k.proto),
            src: sa(k.saddr, k.sport),
            dst: sa(k.daddr, k.dport),
            nat_src: sa(pick(v.nat_saddr, k.saddr), pickp(v.nat_sport, k.sport)),
            nat_dst: sa(pick(v.nat_daddr, k.daddr), pickp(v.nat_dport, k.dport)),
            service_id: v.svc_id,
            backend_id: v.backend_id,
            flags: v.flags,
            last_seen_ns: v.last_seen_ns,
        });
    }
    Ok(out)
}

pub(super) fn read_affinity(affinity: &AffinityMap) -> Result<Vec<AffinityEntry>, DataplaneError> {
    let mut out = Vec::new();
    for item in affinity.iter() {
        let (k, v) = item.map_err(|e| DataplaneError::map(maps::AFFINITY, e))?;
        out.push(AffinityEntry {
            client: k.client,
            service_id: k.svc_id,
            backend_id: v.backend_id,
            last_used_ns: v.last_used_ns,
        });
    }
    Ok(out)
}

pub(super) fn read_stats(
    stats: &PerCpuArray<MapData, u64>,
) -> Result<Vec<(&'static str, u64)>, DataplaneError> {
    let mut out = Vec::new();
    for (i, name) in abi::stats::NAMES.iter().enumerate() {
        let v = stats
            .get(&(i as u32), 0)
            .map_err(|e| DataplaneError::map(maps::STATS, e))?;
        out.push((*name, v.iter().sum()));
    }
    Ok(out)
}

impl Dataplane {
    pub fn conntrack(&self) -> Result<Vec<CtEntry>, DataplaneError> {
        read_conntrack(&self.ct)
    }

    pub fn affinity(&self) -> Result<Vec<AffinityEntry>, DataplaneError> {
        read_affinity(&self.affinity)
    }

    pub fn backends(&self) -> Result<Vec<BackendEntry>, DataplaneError> {
        read_backends(&self.backends)
    }

    /// Counters summed over CPUs, by name (`stats::NAMES` of ebpf/common).
    pub fn stats(&self) -> Result<Vec<(&'static str, u64)>, DataplaneError> {
        read_stats(&self.stats)
    }

    /// One counter, summed over CPUs.
    pub fn stat(&self, index: u32) -> Result<u64, DataplaneError> {
        let v = self
            .stats
            .get(&index, 0)
            .map_err(|e| DataplaneError::map(maps::STATS, e))?;
        Ok(v.iter().sum())
    }
}
