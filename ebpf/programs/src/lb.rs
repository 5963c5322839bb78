//! Maps and backend selection shared by the socket and the NodePort paths.

use aya_ebpf::{
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
    macros::btf_map,
};
use ketch_ebpf_common::{
    AffinityKey, AffinityValue, Backend, CtKey, CtValue, NodeConfig, ServiceKey, ServiceValue,
    SockRevKey, SockRevValue, stats, svc_flags,
};

// Sizes here are defaults: the loader sets the real ones (DataplaneConfig).
#[btf_map]
pub static KETCH_SERVICES: HashMap<ServiceKey, ServiceValue, 65536> = HashMap::new();
#[btf_map]
pub static KETCH_BACKENDS: HashMap<u32, Backend, 65536> = HashMap::new();
#[btf_map]
pub static KETCH_CT: LruHashMap<CtKey, CtValue, 131072> = LruHashMap::new();
#[btf_map]
pub static KETCH_AFFINITY: LruHashMap<AffinityKey, AffinityValue, 65536> = LruHashMap::new();
#[btf_map]
pub static KETCH_SOCK_REVNAT: LruHashMap<SockRevKey, SockRevValue, 65536> = LruHashMap::new();
/// The node's own addresses (value unused): NodePort frontends match any of them.
#[btf_map]
pub static KETCH_NODE_ADDRS: HashMap<u32, u32, 64> = HashMap::new();
#[btf_map]
pub static KETCH_CONFIG: Array<NodeConfig, 1> = Array::new();
#[btf_map]
pub static KETCH_STATS: PerCpuArray<u64, { stats::COUNT as usize }> = PerCpuArray::new();

#[inline(always)]
pub fn count(idx: u32) {
    if let Some(p) = KETCH_STATS.get_ptr_mut(idx) {
        // Per-CPU slot: no other writer, no atomics needed (the BPF target has no CAS).
        unsafe { *p += 1 };
    }
}

#[inline(always)]
pub fn config() -> NodeConfig {
    match KETCH_CONFIG.get(0) {
        Some(c) => *c,
        None => NodeConfig::default(),
    }
}

#[inline(always)]
pub fn is_node_addr(addr: u32) -> bool {
    KETCH_NODE_ADDRS.get_ptr(addr).is_some()
}

/// The master entry of a frontend: first the exact address, then (for a node address) the
/// NodePort wildcard `addr == 0`. Two lookups at most, whatever the number of services.
#[inline(always)]
pub fn lookup_service(addr: u32, port: u16, proto: u8) -> Option<(ServiceKey, ServiceValue)> {
    let mut key = ServiceKey {
        addr,
        port,
        proto,
        scope: 0,
        slot: 0,
        _pad: 0,
    };
    if let Some(v) = KETCH_SERVICES.get_ptr(key) {
        return Some((key, unsafe { *v }));
    }
    if !is_node_addr(addr) {
        return None;
    }
    key.addr = 0;
    let v = unsafe { *KETCH_SERVICES.get_ptr(key)? };
    if v.flags & svc_flags::NODE_PORT == 0 {
        return None;
    }
    Some((key, v))
}

/// Picks a backend of the frontend: the affine one if session affinity holds and it still
/// belongs to this frontend, else a random slot. `client` is the affinity identity.
#[inline(always)]
pub fn select_backend(key: &ServiceKey, svc: &ServiceValue, client: u64) -> Option<(u32, Backend)> {
    if svc.count == 0 {
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let aff_key = AffinityKey {
        client,
        svc_id: svc.svc_id,
        _pad: 0,
    };
    let affinity = svc.flags & svc_flags::AFFINITY != 0;
    if affinity && let Some(a) = KETCH_AFFINITY.get_ptr_mut(aff_key) {
        let a = unsafe { &mut *a };
        let timeout_ns = svc.affinity_timeout as u64 * 1_000_000_000;
        if now.wrapping_sub(a.last_used_ns) <= timeout_ns
            && let Some(b) = KETCH_BACKENDS.get_ptr(a.backend_id)
        {
            let b = unsafe { *b };
            if b.svc_id == svc.svc_id {
                a.last_used_ns = now;
                return Some((a.backend_id, b));
            }
        }
    }
    let pick = unsafe { bpf_get_prandom_u32() } % svc.count as u32;
    let slot_key = ServiceKey {
        slot: svc.slot_base.wrapping_add(1).wrapping_add(pick as u16),
        ..*key
    };
    let id = unsafe { (*KETCH_SERVICES.get_ptr(slot_key)?).backend_id };
    let b = unsafe { *KETCH_BACKENDS.get_ptr(id)? };
    if affinity {
        let v = AffinityValue {
            backend_id: id,
            _pad: 0,
            last_used_ns: now,
        };
        let _ = KETCH_AFFINITY.insert(aff_key, v, 0);
    }
    Some((id, b))
}

#[inline(always)]
pub fn remember_socket(cookie: u64, b: &Backend, frontend_addr: u32, frontend_port: u16, svc_id: u32) {
    let k = SockRevKey {
        cookie,
        addr: b.addr,
        port: b.port,
        proto: b.proto,
        _pad: 0,
    };
    let v = SockRevValue {
        addr: frontend_addr,
        port: frontend_port,
        _pad: 0,
        svc_id,
    };
    let _ = KETCH_SOCK_REVNAT.insert(k, v, 0);
}

#[inline(always)]
pub fn socket_frontend(cookie: u64, addr: u32, port: u16, proto: u8) -> Option<SockRevValue> {
    let k = SockRevKey {
        cookie,
        addr,
        port,
        proto,
        _pad: 0,
    };
    KETCH_SOCK_REVNAT.get_ptr(k).map(|v| unsafe { *v })
}
