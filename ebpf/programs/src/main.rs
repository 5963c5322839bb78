//! Ketch's kernel programs: Service load balancing without kube-proxy.
//!
//! - `lb`: the maps and backend selection shared by both paths;
//! - `sock`: east-west, once per connection at the socket (cgroup `connect4`, `sendmsg4`,
//!   `recvmsg4`, `getpeername4`);
//! - `nodeport`: north-south, per packet in tc on the node interface (DNAT, SNAT towards other
//!   nodes, reverse NAT from connection tracking).
//!
//! Map layouts live in `ketch-ebpf-common`; the kernel programs know no Kubernetes.
#![no_std]
#![no_main]
// The eBPF side is all raw helpers and context pointers; every `unsafe` block is a helper call
// or a read/write of the kernel-provided context.
#![allow(unsafe_code)]

mod lb;
mod nodeport;
mod sock;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
