//! North-south load balancing per packet in tc on the node interface: NodePort (on every node
//! address) and external IPs, with connection tracking.
//!
//! Ingress: a packet that matches a connection-tracking entry of the ingress side is rewritten as
//! the entry says (the client's later packets; replies from backends on other nodes, which come
//! back to the SNAT address). Otherwise, a packet to a frontend picks a backend, creates the
//! forward and the reply entries and is DNAT-ed (and SNAT-ed to the node address when the backend
//! is on another node and externalTrafficPolicy is Cluster, so the reply returns through us).
//!
//! Egress: replies of backends on this node (not SNAT-ed) get the frontend back as source.
//!
//! Return values: `TC_ACT_UNSPEC` for packets that are not ours (the next program, or the
//! stack, decides), `TC_ACT_OK` for translated ones. A frontend without backends is refused at
//! once, as kube-proxy's REJECT does: the packet goes on to the stack untouched, which has no
//! socket on the node port and answers with a TCP RST or an ICMP port unreachable (counted).
//! With externalTrafficPolicy Local and no backend on this node the packet is dropped
//! (`TC_ACT_SHOT`, counted), as kube-proxy drops it, so that load balancers' health checks and
//! not clients see the difference.

use aya_ebpf::{
    bindings::{BPF_NOEXIST, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_UNSPEC},
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns, bpf_redirect_neigh},
    macros::classifier,
    programs::TcContext,
};
use ketch_ebpf_common::{
    CT_SCOPE_SERVICE, CtKey, CtValue, PROTO_TCP, PROTO_UDP, backend_flags, ct_flags, stats,
    svc_flags,
};

use crate::lb::{self, KETCH_CT};

const ETH_HLEN: usize = 14;
const ETH_P_IP_BE: u16 = u16::from_ne_bytes([0x08, 0x00]);
const IP_CSUM_OFF: usize = ETH_HLEN + 10;
const IP_SRC_OFF: usize = ETH_HLEN + 12;
const IP_DST_OFF: usize = ETH_HLEN + 16;
const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
/// Ports for SNAT when the config gives none: above Linux's default ephemeral range.
const SNAT_PORT_MIN: u16 = 61000;
const SNAT_PORT_MAX: u16 = 65535;
const SNAT_TRIES: u32 = 8;
const TCP_FIN: u8 = 0x01;
const TCP_RST: u8 = 0x04;

#[classifier]
pub fn ketch_tc_ingress(ctx: TcContext) -> i32 {
    handle(&ctx, true).unwrap_or(TC_ACT_UNSPEC)
}

#[classifier]
pub fn ketch_tc_egress(ctx: TcContext) -> i32 {
    handle(&ctx, false).unwrap_or(TC_ACT_UNSPEC)
}

/// The parts of a packet the load balancer reads.
struct Packet {
    saddr: u32,
    daddr: u32,
    sport: u16,
    dport: u16,
    proto: u8,
    /// TCP flags byte (0 for UDP).
    tcp_flags: u8,
    l4: usize,
}

#[inline(always)]
fn parse(ctx: &TcContext) -> Result<Option<Packet>, i64> {
    let eth_proto: u16 = ctx.load(12)?;
    if eth_proto != ETH_P_IP_BE {
        return Ok(None);
    }
    let vihl: u8 = ctx.load(ETH_HLEN)?;
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Ok(None);
    }
    // Only the first fragment carries ports; later ones are left alone.
    let frag: u16 = ctx.load(ETH_HLEN + 6)?;
    if u16::from_be(frag) & 0x1fff != 0 {
        return Ok(None);
    }
    let proto: u8 = ctx.load(ETH_HLEN + 9)?;
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return Ok(None);
    }
    let l4 = ETH_HLEN + ihl;
    Ok(Some(Packet {
        saddr: ctx.load(IP_SRC_OFF)?,
        daddr: ctx.load(IP_DST_OFF)?,
        sport: ctx.load(l4)?,
        dport: ctx.load(l4 + 2)?,
        proto,
        tcp_flags: if proto == PROTO_TCP {
            ctx.load(l4 + 13)?
        } else {
            0
        },
        l4,
    }))
}

#[inline(always)]
fn handle(ctx: &TcContext, ingress: bool) -> Result<i32, i64> {
    let Some(p) = parse(ctx)? else {
        return Ok(TC_ACT_UNSPEC);
    };
    let key = CtKey {
        saddr: p.saddr,
        daddr: p.daddr,
        sport: p.sport,
        dport: p.dport,
        proto: p.proto,
        scope: CT_SCOPE_SERVICE,
        _pad: 0,
    };
    if let Some(ct) = KETCH_CT.get_ptr_mut(key) {
        let ct = unsafe { &mut *ct };
        // An entry belongs to one hook; the other one leaves the packet alone.
        if (ct.flags & ct_flags::EGRESS == 0) == ingress {
            ct.last_seen_ns = unsafe { bpf_ktime_get_ns() };
            if p.tcp_flags & (TCP_FIN | TCP_RST) != 0 {
                ct.flags |= ct_flags::CLOSING;
            }
            let v = *ct;
            rewrite(ctx, &p, &v)?;
            lb::count(if v.flags & ct_flags::REPLY != 0 {
                stats::NP_REVNAT
            } else {
                stats::NP_TRANSLATED
            });
            if ingress && v.flags & ct_flags::SNAT != 0 {
                return Ok(forward_out(ctx));
            }
            return Ok(TC_ACT_OK);
        }
        return Ok(TC_ACT_UNSPEC);
    }
    if !ingress {
        return Ok(TC_ACT_UNSPEC);
    }
    let Some((skey, svc)) = lb::lookup_service(p.daddr, p.dport, p.proto) else {
        return Ok(TC_ACT_UNSPEC);
    };
    let Some((backend_id, b)) = lb::select_backend(&skey, &svc, p.saddr as u64) else {
        if svc.flags & svc_flags::EXT_LOCAL != 0 {
            lb::count(stats::NP_NO_LOCAL_BACKEND_DROP);
            return Ok(TC_ACT_SHOT);
        }
        lb::count(stats::NP_NO_BACKEND_REFUSED);
        return Ok(TC_ACT_UNSPEC);
    };
    let cfg = lb::config();
    let snat = b.flags & backend_flags::LOCAL == 0
        && svc.flags & svc_flags::EXT_LOCAL == 0
        && cfg.snat_addr != 0;
    let now = unsafe { bpf_ktime_get_ns() };
    let base = CtValue {
        svc_id: svc.svc_id,
        backend_id,
        created_ns: now,
        last_seen_ns: now,
        ..CtValue::default()
    };
    let mut fwd = CtValue {
        nat_daddr: b.addr,
        nat_dport: b.port,
        flags: ct_flags::FORWARD | ct_flags::DNAT,
        ..base
    };
    let mut reply = CtValue {
        nat_saddr: p.daddr,
        nat_sport: p.dport,
        flags: ct_flags::REPLY | ct_flags::DNAT,
        ..base
    };
    if snat {
        let Some(port) = reserve_snat_port(&p, &b, cfg.snat_addr, &mut reply, cfg.snat_port_min, cfg.snat_port_max) else {
            lb::count(stats::NP_SNAT_NO_PORT_DROP);
            return Ok(TC_ACT_SHOT);
        };
        fwd.nat_saddr = cfg.snat_addr;
        fwd.nat_sport = port;
        fwd.flags |= ct_flags::SNAT;
    } else {
        // The backend answers the client directly; its reply leaves through our egress.
        reply.flags |= ct_flags::EGRESS;
        let rkey = CtKey {
            saddr: b.addr,
            daddr: p.saddr,
            sport: b.port,
            dport: p.sport,
            proto: p.proto,
            scope: CT_SCOPE_SERVICE,
            _pad: 0,
        };
        if KETCH_CT.insert(rkey, reply, 0).is_err() {
            lb::count(stats::CT_INSERT_FAIL);
        }
    }
    if KETCH_CT.insert(key, fwd, 0).is_err() {
        lb::count(stats::CT_INSERT_FAIL);
    }
    rewrite(ctx, &p, &fwd)?;
    lb::count(stats::NP_NEW);
    if snat {
        return Ok(forward_out(ctx));
    }
    Ok(TC_ACT_OK)
}

/// Sends a packet whose source is now this node's own address (SNAT-ed to a backend on another
/// node, or a reply translated back to the client) straight out through the FIB's next hop:
/// the stack would drop it on input as a martian (a local source arriving from outside).
fn forward_out(ctx: &TcContext) -> i32 {
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    unsafe { bpf_redirect_neigh(ifindex, core::ptr::null_mut(), 0, 0) as i32 }
}

/// Inserts the reply entry of a SNAT-ed connection under a free SNAT port and returns that port
/// (network order). The entry is created with NOEXIST, so two connections never share a tuple.
#[inline(always)]
fn reserve_snat_port(
    p: &Packet,
    b: &ketch_ebpf_common::Backend,
    snat_addr: u32,
    reply: &mut CtValue,
    min: u16,
    max: u16,
) -> Option<u16> {
    let (min, max) = if min == 0 || max < min {
        (SNAT_PORT_MIN, SNAT_PORT_MAX)
    } else {
        (min, max)
    };
    let span = (max - min) as u32 + 1;
    reply.nat_daddr = p.saddr;
    reply.nat_dport = p.sport;
    reply.flags |= ct_flags::SNAT;
    for _ in 0..SNAT_TRIES {
        let host = min as u32 + unsafe { bpf_get_prandom_u32() } % span;
        let port = (host as u16).to_be();
        let rkey = CtKey {
            saddr: b.addr,
            daddr: snat_addr,
            sport: b.port,
            dport: port,
            proto: p.proto,
            scope: CT_SCOPE_SERVICE,
            _pad: 0,
        };
        if KETCH_CT.insert(rkey, *reply, BPF_NOEXIST as u64).is_ok() {
            return Some(port);
        }
    }
    None
}

/// Applies the `nat_*` fields of `v` to the packet, fixing the IP and the TCP/UDP checksums
/// incrementally (addresses are part of the L4 pseudo-header).
#[inline(always)]
fn rewrite(ctx: &TcContext, p: &Packet, v: &CtValue) -> Result<(), i64> {
    let (csum_off, mangled) = if p.proto == PROTO_TCP {
        (p.l4 + 16, 0)
    } else {
        // UDP: a zero checksum means "none" and must stay zero.
        (p.l4 + 6, BPF_F_MARK_MANGLED_0)
    };
    if v.nat_saddr != 0 && v.nat_saddr != p.saddr {
        set_addr(ctx, IP_SRC_OFF, csum_off, mangled, p.saddr, v.nat_saddr)?;
    }
    if v.nat_daddr != 0 && v.nat_daddr != p.daddr {
        set_addr(ctx, IP_DST_OFF, csum_off, mangled, p.daddr, v.nat_daddr)?;
    }
    if v.nat_sport != 0 && v.nat_sport != p.sport {
        set_port(ctx, p.l4, csum_off, mangled, p.sport, v.nat_sport)?;
    }
    if v.nat_dport != 0 && v.nat_dport != p.dport {
        set_port(ctx, p.l4 + 2, csum_off, mangled, p.dport, v.nat_dport)?;
    }
    Ok(())
}

#[inline(always)]
fn set_addr(ctx: &TcContext, off: usize, csum_off: usize, mangled: u64, old: u32, new: u32) -> Result<(), i64> {
    ctx.l4_csum_replace(csum_off, old as u64, new as u64, BPF_F_PSEUDO_HDR | mangled | 4)?;
    ctx.l3_csum_replace(IP_CSUM_OFF, old as u64, new as u64, 4)?;
    ctx.store(off, &new, 0)
}

#[inline(always)]
fn set_port(ctx: &TcContext, off: usize, csum_off: usize, mangled: u64, old: u16, new: u16) -> Result<(), i64> {
    ctx.l4_csum_replace(csum_off, old as u64, new as u64, mangled | 2)?;
    ctx.store(off, &new, 0)
}
