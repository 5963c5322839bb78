//! The contract between Ketch's eBPF programs and the node agent: every map key and value, the
//! map names, the flags and the counters. `#[repr(C)]`, padding spelled out (the kernel compares
//! keys byte by byte, so no byte may be left undefined), no pointers.
//!
//! Addresses and ports are stored in **network byte order** exactly as they sit in a packet or in
//! `struct bpf_sock_addr`: a `u32` address is `u32::from_ne_bytes(ip.octets())`, a port is
//! `u16::from_ne_bytes(port.to_be_bytes())`. The helpers [`ip4`] and [`port`] do that.
//!
//! Layout version: [`ABI_VERSION`]. A change to any struct here bumps it; the loader refuses to
//! reuse pinned maps written under another version (see `node/src/dataplane`).
#![no_std]

/// Bumped on any change of a key or value layout below.
pub const ABI_VERSION: u32 = 1;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Map names, as they appear in the object file and under the bpffs pin directory.
pub mod maps {
    pub const SERVICES: &str = "KETCH_SERVICES";
    pub const BACKENDS: &str = "KETCH_BACKENDS";
    pub const CONNTRACK: &str = "KETCH_CT";
    pub const AFFINITY: &str = "KETCH_AFFINITY";
    pub const SOCK_REVNAT: &str = "KETCH_SOCK_REVNAT";
    pub const NODE_ADDRS: &str = "KETCH_NODE_ADDRS";
    pub const CONFIG: &str = "KETCH_CONFIG";
    pub const STATS: &str = "KETCH_STATS";
    /// Every map that is pinned (all of them: none holds per-process state).
    pub const ALL: [&str; 8] = [
        SERVICES,
        BACKENDS,
        CONNTRACK,
        AFFINITY,
        SOCK_REVNAT,
        NODE_ADDRS,
        CONFIG,
        STATS,
    ];
}

/// Program names (function names in the object).
pub mod programs {
    pub const TC_INGRESS: &str = "ketch_tc_ingress";
    pub const TC_EGRESS: &str = "ketch_tc_egress";
    pub const CONNECT4: &str = "ketch_connect4";
    pub const SENDMSG4: &str = "ketch_sendmsg4";
    pub const RECVMSG4: &str = "ketch_recvmsg4";
    pub const GETPEERNAME4: &str = "ketch_getpeername4";
}

/// Converts an address to the stored form (network byte order in memory).
#[inline(always)]
pub const fn ip4(octets: [u8; 4]) -> u32 {
    u32::from_ne_bytes(octets)
}

/// Converts a port to the stored form (network byte order in memory).
#[inline(always)]
pub const fn port(p: u16) -> u16 {
    u16::from_ne_bytes(p.to_be_bytes())
}

/// Key of the services map. One frontend (address, port, protocol) has a master entry at
/// `slot == 0` and its backends at `slot_base + 1 ..= slot_base + count` (see
/// [`ServiceValue::slot_base`]), so picking a backend is one lookup whatever the number of
/// services or backends. A NodePort frontend has `addr == 0` (it matches every node address,
/// see [`maps::NODE_ADDRS`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    /// Reserved (0): room for a second entry of one frontend with another backend scope.
    pub scope: u8,
    pub slot: u16,
    pub _pad: u16,
}

/// Service flags ([`ServiceValue::flags`]).
pub mod svc_flags {
    pub const CLUSTER_IP: u16 = 1 << 0;
    pub const NODE_PORT: u16 = 1 << 1;
    pub const EXTERNAL_IP: u16 = 1 << 2;
    /// externalTrafficPolicy: Local — never SNAT (the client address is kept); the agent writes
    /// only node-local backends.
    pub const EXT_LOCAL: u16 = 1 << 3;
    /// internalTrafficPolicy: Local (informational: the agent writes only node-local backends).
    pub const INT_LOCAL: u16 = 1 << 4;
    /// sessionAffinity: ClientIP ([`super::ServiceValue::affinity_timeout`] seconds).
    pub const AFFINITY: u16 = 1 << 5;
}

/// Value of the services map. In the master entry (`slot == 0`): `count`, `slot_base`, `flags`,
/// `svc_id`, `affinity_timeout`; in a backend slot: `backend_id` (and `svc_id`).
///
/// A backend set is replaced by writing the new slots in the half not in use
/// (`slot_base` 0 ↔ [`SLOT_HALF`]) and then the master entry: a reader sees either the old or
/// the new set, never a half-written one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceValue {
    pub backend_id: u32,
    /// Number of the frontend, unique on this node (affinity and reverse NAT refer to it).
    pub svc_id: u32,
    pub count: u16,
    pub slot_base: u16,
    pub flags: u16,
    pub _pad: u16,
    pub affinity_timeout: u32,
}

/// The second half of the slot space; a frontend has at most `SLOT_HALF - 1` backends.
pub const SLOT_HALF: u16 = 0x8000;
pub const MAX_BACKENDS_PER_SERVICE: u16 = SLOT_HALF - 1;

/// Value of the backends map, keyed by a `u32` backend id (owned by one frontend).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backend {
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    pub flags: u8,
    /// The frontend this backend belongs to (an affinity entry is honoured only if it matches).
    pub svc_id: u32,
}

pub mod backend_flags {
    /// The backend runs on this node (no SNAT needed for NodePort).
    pub const LOCAL: u8 = 1 << 0;
}

/// Key of the connection-tracking map: a packet's tuple as seen at the hook that handles it.
/// One connection has a forward entry and a reply entry; each says how to rewrite packets that
/// match it. Policy (later) uses the same map with `scope` = [`CT_SCOPE_POLICY`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub scope: u8,
    pub _pad: u16,
}

pub const CT_SCOPE_SERVICE: u8 = 0;
pub const CT_SCOPE_POLICY: u8 = 1;

/// Value of the connection-tracking map. The `nat_*` fields are what a matching packet is
/// rewritten to (0 = unchanged). `policy`/`reason`/`identity` are for NetworkPolicy and flow
/// events (unused by the load balancer).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtValue {
    pub nat_saddr: u32,
    pub nat_daddr: u32,
    pub nat_sport: u16,
    pub nat_dport: u16,
    pub svc_id: u32,
    pub backend_id: u32,
    pub flags: u16,
    /// NetworkPolicy verdict of the connection (0 none, 1 allowed, 2 denied).
    pub policy: u8,
    /// Why it was dropped or allowed (flow events).
    pub reason: u8,
    /// Security identity of the peer (NetworkPolicy).
    pub identity: u32,
    pub _pad: u32,
    pub created_ns: u64,
    pub last_seen_ns: u64,
}

pub mod ct_flags {
    /// Forward direction (the client's packets).
    pub const FORWARD: u16 = 1 << 0;
    /// Reply direction (the backend's packets).
    pub const REPLY: u16 = 1 << 1;
    pub const DNAT: u16 = 1 << 2;
    pub const SNAT: u16 = 1 << 3;
    /// The entry is handled on egress of the node interface (replies of local backends).
    pub const EGRESS: u16 = 1 << 4;
    /// A TCP FIN or RST went through this entry: the connection is ending, and the agent's
    /// garbage collection expires it after a short idle time instead of the established one.
    pub const CLOSING: u16 = 1 << 5;
}

/// Key of the session-affinity map. `client` is the client's IPv4 address (NodePort) or the
/// client socket's network-namespace cookie (socket load balancing).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AffinityKey {
    pub client: u64,
    pub svc_id: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AffinityValue {
    pub backend_id: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_ns` at the last use.
    pub last_used_ns: u64,
}

/// Key of the socket reverse-translation map: which socket talked to which backend.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockRevKey {
    pub cookie: u64,
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// The frontend to show in place of the backend (recvmsg, getpeername).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockRevValue {
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
    pub svc_id: u32,
}

/// The single entry of the config array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeConfig {
    /// Source address for SNAT towards backends on other nodes (0: never SNAT).
    pub snat_addr: u32,
    /// SNAT ports are taken from `[snat_port_min, snat_port_max]` (host order), outside the
    /// node's ephemeral range.
    pub snat_port_min: u16,
    pub snat_port_max: u16,
    pub abi_version: u32,
    pub _pad: u32,
}

/// Counter indices of the per-CPU stats array.
pub mod stats {
    pub const NP_NEW: u32 = 0;
    pub const NP_TRANSLATED: u32 = 1;
    /// Passed to the stack, which refuses it (RST / ICMP port unreachable).
    pub const NP_NO_BACKEND_REFUSED: u32 = 2;
    pub const NP_SNAT_NO_PORT_DROP: u32 = 3;
    pub const NP_REVNAT: u32 = 4;
    pub const SOCK_TRANSLATED: u32 = 5;
    pub const SOCK_NO_BACKEND: u32 = 6;
    pub const SOCK_REVNAT: u32 = 7;
    pub const CT_INSERT_FAIL: u32 = 8;
    /// externalTrafficPolicy Local without a backend on this node.
    pub const NP_NO_LOCAL_BACKEND_DROP: u32 = 9;
    pub const COUNT: u32 = 16;
    pub const NAMES: [&str; 10] = [
        "nodeport_new",
        "nodeport_translated",
        "nodeport_no_backend_refused",
        "nodeport_snat_no_port_drop",
        "nodeport_revnat",
        "sock_translated",
        "sock_no_backend",
        "sock_revnat",
        "ct_insert_fail",
        "nodeport_no_local_backend_drop",
    ];
}

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY (for every impl below): plain #[repr(C)] structs of integers with explicit padding
    // fields, so every byte is initialised and any bit pattern is valid.
    #[allow(unsafe_code)]
    mod pod {
        use super::*;
        unsafe impl aya::Pod for ServiceKey {}
        unsafe impl aya::Pod for ServiceValue {}
        unsafe impl aya::Pod for Backend {}
        unsafe impl aya::Pod for CtKey {}
        unsafe impl aya::Pod for CtValue {}
        unsafe impl aya::Pod for AffinityKey {}
        unsafe impl aya::Pod for AffinityValue {}
        unsafe impl aya::Pod for SockRevKey {}
        unsafe impl aya::Pod for SockRevValue {}
        unsafe impl aya::Pod for NodeConfig {}
    }
}

// Sizes are part of the ABI: a change here is a change of ABI_VERSION.
const _: () = {
    assert!(core::mem::size_of::<ServiceKey>() == 12);
    assert!(core::mem::size_of::<ServiceValue>() == 20);
    assert!(core::mem::size_of::<Backend>() == 12);
    assert!(core::mem::size_of::<CtKey>() == 16);
    assert!(core::mem::size_of::<CtValue>() == 48);
    assert!(core::mem::size_of::<AffinityKey>() == 16);
    assert!(core::mem::size_of::<AffinityValue>() == 16);
    assert!(core::mem::size_of::<SockRevKey>() == 16);
    assert!(core::mem::size_of::<SockRevValue>() == 12);
    assert!(core::mem::size_of::<NodeConfig>() == 16);
};
