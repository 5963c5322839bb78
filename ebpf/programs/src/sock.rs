//! East-west load balancing at the socket: the destination is translated once, when a socket
//! connects (TCP, connected UDP) or sends a datagram (unconnected UDP). recvmsg/getpeername show
//! the frontend again, so the application never sees a backend address.
//!
//! Return values: 1 lets the call proceed; 0 makes connect/sendmsg fail with EPERM, which is
//! how a frontend without backends refuses at once.

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use ketch_ebpf_common::{PROTO_TCP, PROTO_UDP, stats};

use crate::lb;

const ALLOW: i32 = 1;
const REFUSE: i32 = 0;

#[cgroup_sock_addr(connect4)]
pub fn ketch_connect4(ctx: SockAddrContext) -> i32 {
    translate(&ctx)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn ketch_sendmsg4(ctx: SockAddrContext) -> i32 {
    translate(&ctx)
}

#[cgroup_sock_addr(recvmsg4)]
pub fn ketch_recvmsg4(ctx: SockAddrContext) -> i32 {
    reverse(&ctx);
    ALLOW
}

#[cgroup_sock_addr(getpeername4)]
pub fn ketch_getpeername4(ctx: SockAddrContext) -> i32 {
    reverse(&ctx);
    ALLOW
}

#[inline(always)]
fn proto(sa: *mut bpf_sock_addr) -> Option<u8> {
    match unsafe { (*sa).protocol } {
        p if p == PROTO_TCP as u32 => Some(PROTO_TCP),
        p if p == PROTO_UDP as u32 => Some(PROTO_UDP),
        _ => None,
    }
}

#[inline(always)]
fn translate(ctx: &SockAddrContext) -> i32 {
    let sa = ctx.sock_addr;
    let Some(proto) = proto(sa) else {
        return ALLOW;
    };
    let addr = unsafe { (*sa).user_ip4 };
    let port = unsafe { (*sa).user_port } as u16;
    let Some((key, svc)) = lb::lookup_service(addr, port, proto) else {
        return ALLOW;
    };
    // Affinity per client network namespace: that is one pod, or the node itself.
    let client = unsafe { bpf_get_netns_cookie(ctx.sock_addr.cast()) };
    let Some((_, b)) = lb::select_backend(&key, &svc, client) else {
        lb::count(stats::SOCK_NO_BACKEND);
        return REFUSE;
    };
    unsafe {
        (*sa).user_ip4 = b.addr;
        (*sa).user_port = b.port as u32;
    }
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    lb::remember_socket(cookie, &b, addr, port, svc.svc_id);
    lb::count(stats::SOCK_TRANSLATED);
    ALLOW
}

#[inline(always)]
fn reverse(ctx: &SockAddrContext) {
    let sa = ctx.sock_addr;
    let Some(proto) = proto(sa) else {
        return;
    };
    let addr = unsafe { (*sa).user_ip4 };
    let port = unsafe { (*sa).user_port } as u16;
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    if let Some(f) = lb::socket_frontend(cookie, addr, port, proto) {
        unsafe {
            (*sa).user_ip4 = f.addr;
            (*sa).user_port = f.port as u32;
        }
        lb::count(stats::SOCK_REVNAT);
    }
}
