//! The CNI plugin `ketch-cni`: routed (L3) pod networking over veth pairs made with rtnetlink,
//! and IPAM from the node's podCIDR. containerd's CRI runs it for every pod sandbox; it speaks
//! CNI 0.3.0, 0.3.1, 0.4.0 and 1.0.0.
//!
//! # Network configuration (stdin)
//!
//! ```json
//! {"cniVersion":"1.0.0","name":"ketch","type":"ketch-cni",
//!  "podCIDR":"10.244.1.0/24","dataDir":"/var/lib/ketch/nodes/n1/ipam","mtu":1500}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `cniVersion` | one of the supported versions (else error 1) |
//! | `name` | network name (the spec's identifier rule) |
//! | `type` | `ketch-cni`, the binary's name |
//! | `podCIDR` | the node's IPv4 pod subnet, network address and prefix (at most /30); its first address (`.1`) is the node's, network and broadcast are never used |
//! | `dataDir` | absolute directory of the IPAM state (see [`ipam`]); one per node |
//! | `mtu` | MTU of both veth ends; optional, default 1500 |
//! | `dns` | optional, the spec's DNS object, copied into the ADD result |
//!
//! `runtimeConfig`, `args` and other unknown keys are ignored; an `ipam` section is refused
//! (error 2), since this plugin does its own address management.
//!
//! # What ADD builds
//!
//! - A veth pair: the host end `lxc<11 hex>` ([`host_veth_name`], from the container id and
//!   interface name) stays in the plugin's namespace (the node's); the peer is created directly
//!   in `CNI_NETNS` under the name `CNI_IFNAME`.
//! - In the pod: `<podIP>/32` on the interface, `169.254.1.1 dev eth0 scope link`,
//!   `default via 169.254.1.1 dev eth0`, and a PERMANENT neighbour entry for 169.254.1.1 with the
//!   host veth's MAC, so the pod never needs ARP answers (no proxy ARP) for its gateway.
//! - On the node: the host veth up, `<podIP>/32 dev lxc… scope link`, and
//!   `net.ipv4.conf.lxc….forwarding=1` (the kernel checks forwarding on the interface a packet
//!   arrived on, so pod traffic is routed on even where `ip_forward` is 0; traffic arriving from
//!   outside still needs forwarding on the node's uplink), and `rp_filter=1` (strict: the only
//!   route to a pod's address is its veth, so a pod's own packets pass and packets with any other
//!   source are dropped; the kernel uses the larger of this and `conf.all.rp_filter`).
//! - `lo` inside the pod is left to containerd (its `loopback` plugin).
//!
//! The result lists the host veth (index 0) and the pod interface (index 1, with `sandbox`), the
//! address as `<podIP>/32` with gateway 169.254.1.1, and the default route.
//!
//! DEL deletes the host veth (which removes the pod end and the routes with it), then releases
//! the address; an unknown container, a missing veth or a missing netns is success. CHECK
//! verifies the reservation, both ends (up), the address, the pod's routes and neighbour entry,
//! the node's route and the forwarding sysctl. GC and STATUS belong to CNI 1.1.0 and are answered
//! with error 1.
//!
//! # Errors
//!
//! Errors are printed on stdout as `{"cniVersion","code","msg","details"}` and the process exits
//! with 1. Codes: see [`ErrorCode`]; beside the spec's, 8 (CNI_NETNS is the plugin's own
//! namespace, as libcni), 100 (no free address), 101 (CHECK found a difference), 999 (the kernel
//! refused an operation, as libcni's `ErrInternal`).
//!
//! The code is a library (this module); `src/bin/ketch-cni.rs` only wires stdin, stdout, the
//! environment and the exit code to [`handle`].

pub mod config;
pub mod error;
pub mod ipam;
pub mod netlink;
pub mod plugin;
pub mod result;

pub use config::{Command, Env, NetConf, SUPPORTED_VERSIONS};
pub use error::{CniError, ErrorCode};
pub use ipam::Ipam;
pub use plugin::{GATEWAY, Response, handle, host_veth_name};
pub use result::{CniResult, VersionResult};
