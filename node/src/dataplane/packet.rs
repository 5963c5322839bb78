//! IPv4 TCP/UDP frames for `BPF_PROG_TEST_RUN` (tests and the packet-path bench), and an
//! independent checksum check of what the programs produce.

use std::net::{Ipv4Addr, SocketAddrV4};

const ETH: usize = 14;

/// TCP flag bits for [`tcp_frame`].
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// An Ethernet + IPv4 + TCP (SYN) or UDP frame with correct checksums.
pub fn frame(
    proto: super::Protocol,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload: &[u8],
) -> Vec<u8> {
    build(proto, src, dst, TCP_SYN, payload)
}

/// A TCP frame with the given flags (e.g. `TCP_FIN | TCP_ACK`) and correct checksums.
pub fn tcp_frame(src: SocketAddrV4, dst: SocketAddrV4, flags: u8, payload: &[u8]) -> Vec<u8> {
    build(super::Protocol::Tcp, src, dst, flags, payload)
}

fn build(
    proto: super::Protocol,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    tcp_flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l4_len = match proto {
        super::Protocol::Tcp => 20,
        super::Protocol::Udp => 8,
    } + payload.len();
    let mut f = vec![0u8; ETH + 20 + l4_len];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[ETH..ETH + 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto.number();
    ip[12..16].copy_from_slice(&src.ip().octets());
    ip[16..20].copy_from_slice(&dst.ip().octets());
    let c = fold(sum(ip));
    ip[10..12].copy_from_slice(&(!c).to_be_bytes());
    let l4 = &mut f[ETH + 20..];
    l4[0..2].copy_from_slice(&src.port().to_be_bytes());
    l4[2..4].copy_from_slice(&dst.port().to_be_bytes());
    let csum_at = match proto {
        super::Protocol::Tcp => {
            l4[4..8].copy_from_slice(&1000u32.to_be_bytes());
            l4[12] = 5 << 4;
            l4[13] = tcp_flags;
            l4[14..16].copy_from_slice(&64240u16.to_be_bytes());
            l4[20..].copy_from_slice(payload);
            16
        }
        super::Protocol::Udp => {
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            l4[8..].copy_from_slice(payload);
            6
        }
    };
    let c = !fold(pseudo(*src.ip(), *dst.ip(), proto.number(), l4_len) + sum(l4));
    let c = if c == 0 && proto == super::Protocol::Udp {
        0xffff
    } else {
        c
    };
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// What a frame says, after checking its IPv4 and TCP/UDP checksums from scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub proto: u8,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

/// Parses a frame and verifies both checksums (a UDP checksum of 0 means "none").
pub fn parse_checked(f: &[u8]) -> Result<Parsed, String> {
    if f.len() < ETH + 20 || f[12..14] != [0x08, 0x00] {
        return Err("not IPv4".into());
    }
    let ihl = ((f[ETH] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([f[ETH + 2], f[ETH + 3]]) as usize;
    if ihl < 20 || f.len() < ETH + total || total < ihl + 8 {
        return Err("truncated".into());
    }
    let ip = &f[ETH..ETH + ihl];
    if fold(sum(ip)) != 0xffff {
        return Err(format!(
            "bad IPv4 header checksum {:#06x}",
            u16::from_be_bytes([ip[10], ip[11]])
        ));
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4 = &f[ETH + ihl..ETH + total];
    let proto = ip[9];
    let csum_at = if proto == 6 { 16 } else { 6 };
    let stored = u16::from_be_bytes([l4[csum_at], l4[csum_at + 1]]);
    if !(proto == 17 && stored == 0)
        && fold(pseudo(src_ip, dst_ip, proto, l4.len()) + sum(l4)) != 0xffff
    {
        return Err(format!("bad L4 checksum {stored:#06x}"));
    }
    Ok(Parsed {
        proto,
        src: SocketAddrV4::new(src_ip, u16::from_be_bytes([l4[0], l4[1]])),
        dst: SocketAddrV4::new(dst_ip, u16::from_be_bytes([l4[2], l4[3]])),
    })
}

fn sum(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    sum(&src.octets()) + sum(&dst.octets()) + proto as u32 + len as u32
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::Protocol;

    #[test]
    fn frames_have_valid_checksums_and_corruption_is_seen() {
        let s: SocketAddrV4 = "192.168.1.2:40000".parse().expect("addr");
        let d: SocketAddrV4 = "10.0.0.1:80".parse().expect("addr");
        for p in [Protocol::Tcp, Protocol::Udp] {
            let mut f = frame(p, s, d, b"hello");
            let got = parse_checked(&f).expect("valid");
            assert_eq!((got.src, got.dst), (s, d));
            let last = f.len() - 1;
            f[last] ^= 1;
            assert!(parse_checked(&f).is_err());
        }
    }
}
