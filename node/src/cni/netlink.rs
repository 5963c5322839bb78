//! Kernel operations over rtnetlink: links, addresses, routes, neighbours, in the plugin's own
//! network namespace or in a container's, plus the per-interface sysctls.
//!
//! A netlink socket belongs to the namespace it was created in, whatever its user's namespace is
//! later; so [`Netlink::connect_in`] creates the socket on a short-lived thread that has joined the
//! container's namespace, and every later request on it acts there. The process itself never
//! leaves its namespace.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteScope};
use nix::sched::CloneFlags;
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{op}: {source}")]
    Request {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("opening a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("joining network namespace {path}: {source}")]
    Setns {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("no tokio runtime to drive the netlink socket")]
    NoRuntime,
    #[error("writing {path}: {source}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl NetlinkError {
    /// The kernel's errno for a refused request (positive), if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Request {
                source: rtnetlink::Error::NetlinkError(m),
                ..
            } => Some(-m.raw_code()),
            _ => None,
        }
    }

    /// "It is already there": EEXIST.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(EEXIST)
    }

    /// "It is not there": ENODEV for links, ESRCH/ENOENT for routes, addresses, neighbours.
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(ENODEV | ESRCH | ENOENT))
    }
}

fn req(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let op = op.into();
    move |source| NetlinkError::Request { op, source }
}

/// An open network namespace file (e.g. `/var/run/netns/cni-…`).
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is the calling thread's own namespace (then it is no container's).
    pub fn is_current(&self) -> io::Result<bool> {
        let ours = std::fs::metadata("/proc/thread-self/ns/net")?;
        let theirs = self.file.metadata()?;
        Ok(ours.dev() == theirs.dev() && ours.ino() == theirs.ino())
    }
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Vec<u8>,
    pub up: bool,
    pub mtu: u32,
}

impl Link {
    fn from_message(m: &LinkMessage) -> Self {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            mac: Vec::new(),
            up: m.header.flags.contains(LinkFlags::Up),
            mtu: 0,
        };
        for attr in &m.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name.clone_from(n),
                LinkAttribute::Address(a) => link.mac.clone_from(a),
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                _ => {}
            }
        }
        link
    }

    /// `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route4 {
    pub dst: Ipv4Network,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
    pub scope: RouteScope,
}

/// An IPv4 neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour4 {
    pub ifindex: u32,
    pub ip: Ipv4Addr,
    pub mac: Vec<u8>,
    pub state: NeighbourState,
}

/// A netlink connection bound to one network namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// A connection in the caller's namespace. Must be called inside a tokio runtime, which then
    /// drives the socket.
    pub fn connect() -> Result<Self, NetlinkError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        rt.spawn(conn);
        Ok(Self { handle })
    }

    /// A connection in `ns`: the socket is made on a thread that joined `ns` (and then ends).
    pub fn connect_in(ns: &Netns) -> Result<Self, NetlinkError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        let made = std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns.file, CloneFlags::CLONE_NEWNET).map_err(|source| {
                    NetlinkError::Setns {
                        path: ns.path.clone(),
                        source,
                    }
                })?;
                // The socket registers with the runtime's reactor on creation.
                let _guard = rt.enter();
                rtnetlink::new_connection().map_err(NetlinkError::Socket)
            })
            .join()
        });
        let (conn, handle, _) = match made {
            Ok(result) => result?,
            Err(_) => {
                return Err(NetlinkError::Socket(io::Error::other(
                    "namespace thread panicked",
                )));
            }
        };
        rt.spawn(conn);
        Ok(Self { handle })
    }

    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(Some(m)) => Ok(Some(Link::from_message(&m))),
            Ok(None) => Ok(None),
            Err(e) => {
                let e = req(format!("looking up link {name}"))(e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// A veth pair: `host` here, `peer` created directly inside `peer_ns` (so its name never
    /// collides with one of ours), both with `mtu`.
    pub async fn create_veth(
        &self,
        host: &str,
        peer: &str,
        peer_ns: &Netns,
        mtu: u32,
    ) -> Result<(), NetlinkError> {
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer)
            .mtu(mtu)
            .setns_by_fd(peer_ns.file.as_raw_fd())
            .build();
        let msg = LinkVeth::new(host, peer)
            .mtu(mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(req(format!("creating veth {host} / {peer}")))
    }

    pub async fn set_up(&self, index: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(req(format!("setting link {index} up")))
    }

    /// Deletes a link; a missing one is fine. Deleting one end of a veth pair deletes both.
    pub async fn delete_link(&self, name: &str) -> Result<bool, NetlinkError> {
        let Some(link) = self.link_by_name(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) => {
                let e = req(format!("deleting link {name}"))(e);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }

    pub async fn add_address(&self, index: u32, net: Ipv4Network) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(index, IpAddr::V4(net.ip()), net.prefix())
            .execute()
            .await
            .map_err(req(format!("adding address {net} to link {index}")))
    }

    /// The IPv4 addresses of a link.
    pub async fn addresses(&self, index: u32) -> Result<Vec<Ipv4Network>, NetlinkError> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(req(format!("listing addresses of link {index}")))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.index == index && m.header.family == AddressFamily::Inet)
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(ip))
                    | AddressAttribute::Address(IpAddr::V4(ip)) => {
                        Ipv4Network::new(*ip, m.header.prefix_len).ok()
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// Adds a main-table route: link-scoped without a gateway, universe-scoped with one.
    pub async fn add_route(
        &self,
        dst: Ipv4Network,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> Result<(), NetlinkError> {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst.ip(), dst.prefix())
            .output_interface(oif);
        b = match gateway {
            Some(gw) => b.gateway(gw),
            None => b.scope(RouteScope::Link),
        };
        let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        self.handle
            .route()
            .add(b.build())
            .execute()
            .await
            .map_err(req(format!("adding route {dst}{via} dev {oif}")))
    }

    /// The IPv4 routes of the main table.
    pub async fn routes(&self) -> Result<Vec<Route4>, NetlinkError> {
        let msgs: Vec<_> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(req("listing routes"))?;
        let mut out = Vec::new();
        for m in msgs {
            let mut table = u32::from(m.header.table);
            let mut dst = Ipv4Addr::UNSPECIFIED;
            let mut gateway = None;
            let mut oif = None;
            for attr in &m.attributes {
                match attr {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN)
                || m.header.address_family != AddressFamily::Inet
            {
                continue;
            }
            if let Ok(dst) = Ipv4Network::new(dst, m.header.destination_prefix_length) {
                out.push(Route4 {
                    dst,
                    gateway,
                    oif,
                    scope: m.header.scope,
                });
            }
        }
        Ok(out)
    }

    /// A PERMANENT neighbour entry (replacing any other for `ip` on the link).
    pub async fn add_permanent_neighbour(
        &self,
        index: u32,
        ip: Ipv4Addr,
        mac: &[u8],
    ) -> Result<(), NetlinkError> {
        self.handle
            .neighbours()
            .add(index, IpAddr::V4(ip))
            .link_layer_address(mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(req(format!(
                "adding neighbour {ip} lladdr {} on link {index}",
                format_mac(mac)
            )))
    }

    /// The IPv4 neighbour entries of a link.
    pub async fn neighbours(&self, index: u32) -> Result<Vec<Neighbour4>, NetlinkError> {
        let msgs: Vec<_> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Inet)
            .execute()
            .try_collect()
            .await
            .map_err(req("listing neighbours"))?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.ifindex == index)
            .filter_map(|m| {
                let mut ip = None;
                let mut mac = Vec::new();
                for attr in &m.attributes {
                    match attr {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(*a),
                        NeighbourAttribute::LinkLayerAddress(l) => mac.clone_from(l),
                        _ => {}
                    }
                }
                Some(Neighbour4 {
                    ifindex: m.header.ifindex,
                    ip: ip?,
                    mac,
                    state: m.header.state,
                })
            })
            .collect())
    }
}

/// Writes `/proc/sys/net/ipv4/conf/<ifname>/<key>` for the calling thread's namespace.
pub fn set_ipv4_conf(ifname: &str, key: &str, value: &str) -> Result<(), NetlinkError> {
    let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"));
    std::fs::write(&path, value).map_err(|source| NetlinkError::Sysctl { path, source })
}

/// Reads `/proc/sys/net/ipv4/conf/<ifname>/<key>`.
pub fn get_ipv4_conf(ifname: &str, key: &str) -> Result<String, NetlinkError> {
    let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"));
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|source| NetlinkError::Sysctl { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_formatting() {
        assert_eq!(
            format_mac(&[0xaa, 0x0b, 0, 1, 0xff, 0x10]),
            "aa:0b:00:01:ff:10"
        );
    }
}
