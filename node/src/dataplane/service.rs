//! The agent-facing description of a load-balanced frontend and its conversion to map entries.

use ketch_ebpf_common as abi;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => abi::PROTO_TCP,
            Protocol::Udp => abi::PROTO_UDP,
        }
    }
    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            abi::PROTO_TCP => Some(Protocol::Tcp),
            abi::PROTO_UDP => Some(Protocol::Udp),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// Reached at the socket (pods and node processes) and, per packet, at the node interface.
    ClusterIp,
    /// Reached on every node address (`addr` is ignored and stored as 0.0.0.0).
    NodePort,
    /// An external IP or load-balancer IP, reached like a ClusterIP.
    ExternalIp,
}

/// One frontend: what clients connect to. This is the handle of a service in the maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frontend {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub proto: Protocol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendAddr {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// The backend runs on this node (NodePort traffic to it is not SNAT-ed; the *Local
    /// traffic policies keep only these).
    pub local: bool,
}

/// A frontend and the backends to spread it over. One Kubernetes Service becomes one of these
/// per (ClusterIP | NodePort | external IP) × port; the agent has already chosen the endpoints
/// (ready ones, or terminating-but-serving ones when no ready one is left).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub frontend: Frontend,
    pub kind: ServiceKind,
    pub backends: Vec<BackendAddr>,
    /// sessionAffinity: ClientIP with this timeout in seconds (None: no affinity).
    pub affinity_timeout: Option<u32>,
    /// externalTrafficPolicy: Local — NodePort/external traffic goes to local backends only and
    /// keeps the client address.
    pub external_traffic_local: bool,
    /// internalTrafficPolicy: Local — ClusterIP traffic goes to local backends only.
    pub internal_traffic_local: bool,
}

/// The stable number of a frontend in the maps (also in conntrack and affinity entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u32);

/// A frontend as read back from the maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub id: ServiceId,
    pub frontend: Frontend,
    pub kind: ServiceKind,
    pub backends: Vec<BackendAddr>,
    pub affinity_timeout: Option<u32>,
    pub external_traffic_local: bool,
    pub internal_traffic_local: bool,
}

impl Service {
    /// The frontend as stored (NodePort: address 0.0.0.0).
    pub fn stored_frontend(&self) -> Frontend {
        match self.kind {
            ServiceKind::NodePort => Frontend {
                addr: Ipv4Addr::UNSPECIFIED,
                ..self.frontend
            },
            _ => self.frontend,
        }
    }

    /// The backends the kernel gets: deduplicated, and only local ones where a Local traffic
    /// policy applies to this kind of frontend.
    pub fn effective_backends(&self) -> Vec<BackendAddr> {
        let local_only = match self.kind {
            ServiceKind::ClusterIp => self.internal_traffic_local,
            ServiceKind::NodePort | ServiceKind::ExternalIp => self.external_traffic_local,
        };
        let mut out: Vec<BackendAddr> = Vec::with_capacity(self.backends.len());
        for b in &self.backends {
            if local_only && !b.local {
                continue;
            }
            if !out.iter().any(|o| o.addr == b.addr && o.port == b.port) {
                out.push(*b);
            }
        }
        out
    }

    pub fn flags(&self) -> u16 {
        use abi::svc_flags::*;
        let mut f = match self.kind {
            ServiceKind::ClusterIp => CLUSTER_IP,
            ServiceKind::NodePort => NODE_PORT,
            ServiceKind::ExternalIp => EXTERNAL_IP,
        };
        if self.external_traffic_local {
            f |= EXT_LOCAL;
        }
        if self.internal_traffic_local {
            f |= INT_LOCAL;
        }
        if self.affinity_timeout.is_some() {
            f |= AFFINITY;
        }
        f
    }
}

pub fn kind_from_flags(flags: u16) -> ServiceKind {
    use abi::svc_flags::*;
    if flags & NODE_PORT != 0 {
        ServiceKind::NodePort
    } else if flags & EXTERNAL_IP != 0 {
        ServiceKind::ExternalIp
    } else {
        ServiceKind::ClusterIp
    }
}

pub fn master_key(f: &Frontend) -> abi::ServiceKey {
    abi::ServiceKey {
        addr: abi::ip4(f.addr.octets()),
        port: abi::port(f.port),
        proto: f.proto.number(),
        scope: 0,
        slot: 0,
        _pad: 0,
    }
}

pub fn frontend_of(k: &abi::ServiceKey) -> Option<Frontend> {
    Some(Frontend {
        addr: Ipv4Addr::from(k.addr.to_ne_bytes()),
        port: u16::from_be_bytes(k.port.to_ne_bytes()),
        proto: Protocol::from_number(k.proto)?,
    })
}

pub fn to_abi_backend(b: &BackendAddr, proto: Protocol, svc_id: u32) -> abi::Backend {
    abi::Backend {
        addr: abi::ip4(b.addr.octets()),
        port: abi::port(b.port),
        proto: proto.number(),
        flags: if b.local {
            abi::backend_flags::LOCAL
        } else {
            0
        },
        svc_id,
    }
}

pub fn from_abi_backend(b: &abi::Backend) -> BackendAddr {
    BackendAddr {
        addr: Ipv4Addr::from(b.addr.to_ne_bytes()),
        port: u16::from_be_bytes(b.port.to_ne_bytes()),
        local: b.flags & abi::backend_flags::LOCAL != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(last: u8, local: bool) -> BackendAddr {
        BackendAddr {
            addr: Ipv4Addr::new(10, 0, 0, last),
            port: 80,
            local,
        }
    }

    #[test]
    fn local_policies_filter_by_kind_and_dedup() {
        let mut s = Service {
            frontend: Frontend {
                addr: Ipv4Addr::new(10, 96, 0, 1),
                port: 80,
                proto: Protocol::Tcp,
            },
            kind: ServiceKind::ClusterIp,
            backends: vec![b(1, true), b(2, false), b(1, true)],
            affinity_timeout: None,
            external_traffic_local: true,
            internal_traffic_local: false,
        };
        assert_eq!(s.effective_backends(), vec![b(1, true), b(2, false)]);
        s.kind = ServiceKind::NodePort;
        assert_eq!(s.effective_backends(), vec![b(1, true)]);
        assert_eq!(s.stored_frontend().addr, Ipv4Addr::UNSPECIFIED);
        let k = master_key(&s.frontend);
        assert_eq!(frontend_of(&k), Some(s.frontend));
    }
}
