//! Expiry of connection-tracking entries. The kernel programs create entries and refresh
//! `last_seen_ns` (and mark a TCP connection `CLOSING` when a FIN or RST passes); the agent
//! deletes the ones idle for longer than their state allows. The LRU map alone would keep
//! dead connections until it fills, and then evict live ones first as readily as dead ones.

use super::{Dataplane, DataplaneError};
use ketch_ebpf_common::{self as abi, CT_SCOPE_SERVICE, PROTO_TCP, ct_flags, maps};
use std::time::Duration;

/// Idle times after which an entry goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtTimeouts {
    /// An open TCP connection (Cilium's service TCP lifetime).
    pub tcp: Duration,
    /// A TCP connection a FIN or RST went through (Cilium's TCP FIN timeout).
    pub tcp_closing: Duration,
    /// UDP (Linux conntrack's `udp_timeout_stream`).
    pub udp: Duration,
}

impl Default for CtTimeouts {
    fn default() -> Self {
        CtTimeouts {
            tcp: Duration::from_secs(6 * 3600),
            tcp_closing: Duration::from_secs(10),
            udp: Duration::from_secs(120),
        }
    }
}

impl CtTimeouts {
    fn for_entry(&self, k: &abi::CtKey, v: &abi::CtValue) -> Duration {
        if k.proto != PROTO_TCP {
            self.udp
        } else if v.flags & ct_flags::CLOSING != 0 {
            self.tcp_closing
        } else {
            self.tcp
        }
    }
}

/// Whether an entry last seen at `v.last_seen_ns` is over its idle time at `now_ns`
/// (both CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`).
pub(super) fn expired(k: &abi::CtKey, v: &abi::CtValue, now_ns: u64, t: &CtTimeouts) -> bool {
    let idle = now_ns.saturating_sub(v.last_seen_ns);
    u128::from(idle) > t.for_entry(k, v).as_nanos()
}

/// The other entry of the same load-balanced connection (forward ↔ reply), as the NodePort
/// program writes them.
pub(super) fn partner(k: &abi::CtKey, v: &abi::CtValue) -> abi::CtKey {
    let or = |nat: u32, orig: u32| if nat != 0 { nat } else { orig };
    let orp = |nat: u16, orig: u16| if nat != 0 { nat } else { orig };
    if v.flags & ct_flags::REPLY != 0 {
        // Reply of (client → frontend): from the backend to the client (or to the SNAT
        // address, with the client in nat_daddr); nat_saddr is the frontend.
        abi::CtKey {
            saddr: or(v.nat_daddr, k.daddr),
            daddr: v.nat_saddr,
            sport: orp(v.nat_dport, k.dport),
            dport: v.nat_sport,
            ..*k
        }
    } else {
        // Forward: the backend answers the SNAT address if there is one, else the client.
        abi::CtKey {
            saddr: v.nat_daddr,
            daddr: or(v.nat_saddr, k.saddr),
            sport: v.nat_dport,
            dport: orp(v.nat_sport, k.sport),
            ..*k
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

impl Dataplane {
    /// Deletes the Service connection-tracking entries idle past their timeout at `now_ns`,
    /// with their partner entries; returns how many went.
    pub fn expire_conntrack(
        &mut self,
        now_ns: u64,
        timeouts: &CtTimeouts,
    ) -> Result<usize, DataplaneError> {
        let mut doomed = Vec::new();
        for item in self.ct.iter() {
            let (k, v) = item.map_err(|e| DataplaneError::map(maps::CONNTRACK, e))?;
            if k.scope == CT_SCOPE_SERVICE && expired(&k, &v, now_ns, timeouts) {
                doomed.push(k);
                doomed.push(partner(&k, &v));
            }
        }
        let mut gone = 0;
        for k in doomed {
            // The partner may be gone already (LRU, or listed twice): not an error.
            if self.ct.remove(&k).is_ok() {
                gone += 1;
            }
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ketch_ebpf_common::{PROTO_UDP, ip4, port};

    const SEC: u64 = 1_000_000_000;

    fn key(s: [u8; 4], sp: u16, d: [u8; 4], dp: u16, proto: u8) -> abi::CtKey {
        abi::CtKey {
            saddr: ip4(s),
            daddr: ip4(d),
            sport: port(sp),
            dport: port(dp),
            proto,
            scope: CT_SCOPE_SERVICE,
            _pad: 0,
        }
    }

    #[test]
    fn idle_time_depends_on_protocol_and_tcp_state() {
        let t = CtTimeouts::default();
        let tcp = key([1, 1, 1, 1], 4000, [10, 0, 0, 1], 30080, PROTO_TCP);
        let udp = abi::CtKey {
            proto: PROTO_UDP,
            ..tcp
        };
        let v = abi::CtValue {
            last_seen_ns: 100 * SEC,
            ..Default::default()
        };
        let closing = abi::CtValue {
            flags: ct_flags::CLOSING,
            ..v
        };
        let at = |secs: u64| 100 * SEC + secs * SEC;
        assert!(!expired(&tcp, &v, at(3600), &t));
        assert!(expired(&tcp, &v, at(6 * 3600 + 1), &t));
        assert!(!expired(&tcp, &closing, at(9), &t));
        assert!(expired(&tcp, &closing, at(11), &t));
        assert!(!expired(&udp, &v, at(119), &t));
        assert!(expired(&udp, &v, at(121), &t));
        // A clock reading from before the entry (another CPU's later timestamp) is not idle.
        assert!(!expired(&tcp, &closing, 50 * SEC, &t));
    }

    #[test]
    fn partners_pair_up_with_and_without_snat() {
        let client = ([192, 168, 7, 9], 40000);
        let node = ([10, 239, 0, 11], 30080);
        let backend = ([10, 244, 1, 5], 8080);
        // DNAT only: the backend answers the client.
        let fwd_k = key(client.0, client.1, node.0, node.1, PROTO_TCP);
        let fwd_v = abi::CtValue {
            nat_daddr: ip4(backend.0),
            nat_dport: port(backend.1),
            flags: ct_flags::FORWARD | ct_flags::DNAT,
            ..Default::default()
        };
        let rep_k = key(backend.0, backend.1, client.0, client.1, PROTO_TCP);
        let rep_v = abi::CtValue {
            nat_saddr: ip4(node.0),
            nat_sport: port(node.1),
            flags: ct_flags::REPLY | ct_flags::DNAT | ct_flags::EGRESS,
            ..Default::default()
        };
        assert_eq!(partner(&fwd_k, &fwd_v), rep_k);
        assert_eq!(partner(&rep_k, &rep_v), fwd_k);
        // DNAT + SNAT: the backend answers the node's SNAT address and port.
        let snat = ([10, 239, 0, 11], 61005);
        let fwd_v = abi::CtValue {
            nat_saddr: ip4(snat.0),
            nat_sport: port(snat.1),
            flags: fwd_v.flags | ct_flags::SNAT,
            ..fwd_v
        };
        let rep_k = key(backend.0, backend.1, snat.0, snat.1, PROTO_TCP);
        let rep_v = abi::CtValue {
            nat_saddr: ip4(node.0),
            nat_sport: port(node.1),
            nat_daddr: ip4(client.0),
            nat_dport: port(client.1),
            flags: ct_flags::REPLY | ct_flags::DNAT,
            ..Default::default()
        };
        assert_eq!(partner(&fwd_k, &fwd_v), rep_k);
        assert_eq!(partner(&rep_k, &rep_v), fwd_k);
    }
}
