//! IP address and CIDR checks (`apimachinery/pkg/util/validation/ip.go`):
//! a "sloppy" parse that tolerates legacy forms, then strict/canonical rules.

use super::Errs;
use crate::admission::field::{self, Path, go_quote};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `netutils.ParseIPSloppy`: like the strict parser but accepts IPv4 octets
/// with leading zeros (read as decimal).
pub(crate) fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

fn is_4in6(ip: &Ipv6Addr) -> bool {
    ip.to_ipv4_mapped().is_some()
}

/// `validation.IsValidIP`: strict and canonical.
pub(crate) fn is_valid_ip(path: &Path, value: &str) -> Errs {
    let mut errs = Vec::new();
    let Some(ip) = parse_ip_sloppy(value) else {
        errs.push(field::invalid(
            path,
            value,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
        return errs;
    };
    match value.parse::<IpAddr>() {
        Err(_) => errs.push(field::invalid(path, value, "must not have leading 0s")),
        Ok(IpAddr::V6(v6)) if is_4in6(&v6) => errs.push(field::invalid(
            path,
            value,
            "must not be an IPv4-mapped IPv6 address",
        )),
        Ok(_) => {}
    }
    if !errs.is_empty() {
        return errs;
    }
    let canonical = ip.to_string();
    if value != canonical {
        errs.push(field::invalid(
            path,
            value,
            &format!("must be in canonical form ({})", go_quote(&canonical)),
        ));
    }
    errs
}

/// The network address of `ip/bits`.
fn masked(ip: IpAddr, bits: u32) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            IpAddr::V4(Ipv4Addr::from(n & mask))
        }
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            IpAddr::V6(Ipv6Addr::from(n & mask))
        }
    }
}

/// Parses `ip/bits` sloppily; returns the address, prefix length and whether
/// the text was strictly well-formed.
pub(crate) fn parse_cidr_sloppy(s: &str) -> Option<(IpAddr, u32, bool)> {
    let (ip_s, bits_s) = s.split_once('/')?;
    let ip = parse_ip_sloppy(ip_s)?;
    if bits_s.is_empty() || !bits_s.bytes().all(|c| c.is_ascii_digit()) || bits_s.len() > 3 {
        return None;
    }
    let bits: u32 = bits_s.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return None;
    }
    let strict = ip_s.parse::<IpAddr>().is_ok() && (bits_s == "0" || !bits_s.starts_with('0'));
    Some((ip, bits, strict))
}

/// `validation.IsValidCIDR`: strict and canonical.
pub(crate) fn is_valid_cidr(path: &Path, value: &str) -> Errs {
    let mut errs = Vec::new();
    let Some((ip, bits, strict)) = parse_cidr_sloppy(value) else {
        errs.push(field::invalid(
            path,
            value,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ));
        return errs;
    };
    if !strict {
        errs.push(field::invalid(
            path,
            value,
            "must not have leading 0s in IP or prefix length",
        ));
    } else if matches!(ip, IpAddr::V6(v6) if is_4in6(&v6)) {
        errs.push(field::invalid(
            path,
            value,
            "must not have an IPv4-mapped IPv6 address",
        ));
    } else if masked(ip, bits) != ip {
        errs.push(field::invalid(
            path,
            value,
            "must not have bits set beyond the prefix length",
        ));
    }
    if !errs.is_empty() {
        return errs;
    }
    let canonical = format!("{}/{}", masked(ip, bits), bits);
    if value != canonical {
        errs.push(field::invalid(
            path,
            value,
            &format!("must be in canonical form ({})", go_quote(&canonical)),
        ));
    }
    errs
}

/// Whether `inner` lies strictly inside `outer` (used by NetworkPolicy
/// `ipBlock.except`).
pub(crate) fn cidr_strict_subset(outer: &str, inner: &str) -> Option<bool> {
    let (oip, obits, _) = parse_cidr_sloppy(outer)?;
    let (iip, ibits, _) = parse_cidr_sloppy(inner)?;
    if oip.is_ipv4() != iip.is_ipv4() {
        return Some(false);
    }
    Some(masked(iip, obits) == masked(oip, obits) && obits < ibits)
}

/// `ValidateNonSpecialIP` (endpoints, external IPs).
pub(crate) fn validate_non_special_ip(value: &str, path: &Path, errs: &mut Errs) {
    let Some(ip) = parse_ip_sloppy(value) else {
        errs.push(field::invalid(path, value, "must be a valid IP address"));
        return;
    };
    if ip.is_unspecified() {
        errs.push(field::invalid(
            path,
            value,
            &format!("may not be unspecified ({value})"),
        ));
    }
    let (loopback, link_local, ll_multicast) = match ip {
        IpAddr::V4(v4) => (
            v4.is_loopback(),
            v4.is_link_local(),
            v4.octets()[..3] == [224, 0, 0],
        ),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            match v6.to_ipv4_mapped() {
                Some(v4) => (
                    v4.is_loopback(),
                    v4.is_link_local(),
                    v4.octets()[..3] == [224, 0, 0],
                ),
                None => (
                    v6.is_loopback(),
                    seg[0] & 0xffc0 == 0xfe80,
                    seg[0] & 0xff0f == 0xff02,
                ),
            }
        }
    };
    if loopback {
        errs.push(field::invalid(
            path,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(field::invalid(
            path,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if ll_multicast {
        errs.push(field::invalid(
            path,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(e: Errs) -> Vec<String> {
        e.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn ips() {
        let p = Path::new("ip");
        assert!(is_valid_ip(&p, "10.0.0.1").is_empty());
        assert!(is_valid_ip(&p, "2001:db8::1").is_empty());
        assert_eq!(
            msgs(is_valid_ip(&p, "010.0.0.1")),
            vec![r#"ip: Invalid value: "010.0.0.1": must not have leading 0s"#]
        );
        assert_eq!(
            msgs(is_valid_ip(&p, "2001:DB8::1")),
            vec![r#"ip: Invalid value: "2001:DB8::1": must be in canonical form ("2001:db8::1")"#]
        );
        assert_eq!(
            msgs(is_valid_ip(&p, "::ffff:1.2.3.4")),
            vec![r#"ip: Invalid value: "::ffff:1.2.3.4": must not be an IPv4-mapped IPv6 address"#]
        );
        assert_eq!(
            msgs(is_valid_ip(&p, "nope")),
            vec![
                r#"ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#
            ]
        );
    }

    #[test]
    fn cidrs() {
        let p = Path::new("c");
        assert!(is_valid_cidr(&p, "10.0.0.0/8").is_empty());
        assert!(is_valid_cidr(&p, "2001:db8::/64").is_empty());
        assert_eq!(
            msgs(is_valid_cidr(&p, "10.0.0.1/8")),
            vec![
                r#"c: Invalid value: "10.0.0.1/8": must not have bits set beyond the prefix length"#
            ]
        );
        assert_eq!(msgs(is_valid_cidr(&p, "10.0.0.0/33")).len(), 1);
        assert_eq!(
            msgs(is_valid_cidr(&p, "10.0.0.0/08")),
            vec![
                r#"c: Invalid value: "10.0.0.0/08": must not have leading 0s in IP or prefix length"#
            ]
        );
        assert_eq!(cidr_strict_subset("10.0.0.0/8", "10.1.0.0/16"), Some(true));
        assert_eq!(cidr_strict_subset("10.0.0.0/8", "11.0.0.0/16"), Some(false));
        assert_eq!(cidr_strict_subset("10.0.0.0/8", "10.0.0.0/8"), Some(false));
    }

    #[test]
    fn special_ips() {
        let mut errs = Vec::new();
        validate_non_special_ip("127.0.0.1", &Path::new("ip"), &mut errs);
        assert_eq!(
            msgs(errs),
            vec![
                r#"ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#
            ]
        );
        let mut errs = Vec::new();
        validate_non_special_ip("10.1.2.3", &Path::new("ip"), &mut errs);
        assert!(errs.is_empty());
    }
}
