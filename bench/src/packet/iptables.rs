//! The baseline users know: kube-proxy's iptables mode, written by this bench into a network
//! namespace of its own (the rules vanish with the namespace).
//!
//! The `nat` table has the shape kube-proxy (iptables mode, `--cluster-cidr` set) writes for
//! ClusterIP Services: `OUTPUT`/`PREROUTING` jump to `KUBE-SERVICES`, which has one rule per
//! Service port (`-d <vip>/32 -p tcp --dport <p> -j KUBE-SVC-…`) in the order given, then the
//! `KUBE-NODEPORTS` jump; each `KUBE-SVC-…` marks off-cluster sources for masquerade and picks
//! a `KUBE-SEP-…` with `-m statistic --mode random` where there are several endpoints; each
//! `KUBE-SEP-…` marks hairpin traffic and DNATs. The filter-table rules kube-proxy also writes
//! (KUBE-FORWARD, rejects for Services without endpoints) are left out: the measured traffic
//! would not match them.

use super::sys::{Netns, sh};
use anyhow::{Context, Result};
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// One Service port as the rules see it.
#[derive(Clone, Debug)]
pub struct SvcPort {
    /// `namespace/name:port-name`, in comments and chain-name hashes as kube-proxy does.
    pub name: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub endpoints: Vec<SocketAddrV4>,
}

/// Which iptables: `legacy` (x_tables) or `nft` (nf_tables through the iptables-nft shim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Legacy,
    Nft,
}

impl Flavor {
    pub fn parse(s: &str) -> Result<Flavor> {
        match s {
            "legacy" => Ok(Flavor::Legacy),
            "nft" => Ok(Flavor::Nft),
            _ => anyhow::bail!("--iptables: legacy or nft, not {s:?}"),
        }
    }
    pub fn restore(self) -> &'static str {
        match self {
            Flavor::Legacy => "iptables-legacy-restore",
            Flavor::Nft => "iptables-nft-restore",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Legacy => "legacy",
            Flavor::Nft => "nft",
        }
    }
}

/// A stable 16-character chain suffix (kube-proxy uses base32 of a SHA-256; any stable
/// distinct name does here).
fn chain_hash(s: &str) -> String {
    // FNV-1a, 64 bits: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

fn svc_chain(p: &SvcPort) -> String {
    format!("KUBE-SVC-{}", chain_hash(&format!("{}/tcp", p.name)))
}

fn sep_chain(p: &SvcPort, ep: &SocketAddrV4) -> String {
    format!("KUBE-SEP-{}", chain_hash(&format!("{}/tcp/{ep}", p.name)))
}

/// The chains and rules of one Service port (its KUBE-SVC and KUBE-SEP chains), as
/// `(chain declarations, rules)`.
fn service_chains(p: &SvcPort, cluster_cidr: &str, decl: &mut String, rules: &mut String) {
    let svc = svc_chain(p);
    let _ = writeln!(decl, ":{svc} - [0:0]");
    let _ = writeln!(
        rules,
        "-A {svc} ! -s {cluster_cidr} -d {}/32 -p tcp -m comment --comment \"{} cluster IP\" -m tcp --dport {} -j KUBE-MARK-MASQ",
        p.vip, p.name, p.port
    );
    let n = p.endpoints.len();
    for (i, ep) in p.endpoints.iter().enumerate() {
        let sep = sep_chain(p, ep);
        let _ = writeln!(decl, ":{sep} - [0:0]");
        let left = n - i;
        if left > 1 {
            let _ = writeln!(
                rules,
                "-A {svc} -m comment --comment \"{} -> {ep}\" -m statistic --mode random --probability {:.10} -j {sep}",
                p.name,
                1.0 / left as f64
            );
        } else {
            let _ = writeln!(
                rules,
                "-A {svc} -m comment --comment \"{} -> {ep}\" -j {sep}",
                p.name
            );
        }
        let _ = writeln!(
            rules,
            "-A {sep} -s {}/32 -m comment --comment \"{}\" -j KUBE-MARK-MASQ",
            ep.ip(),
            p.name
        );
        let _ = writeln!(
            rules,
            "-A {sep} -p tcp -m comment --comment \"{}\" -m tcp -j DNAT --to-destination {ep}",
            p.name
        );
    }
}

/// The whole `nat` table for `ports`, in `iptables-restore` format; `ports`' order is the
/// order of the `KUBE-SERVICES` rules.
pub fn ruleset(ports: &[SvcPort], cluster_cidr: &str) -> String {
    let mut decl = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n\
         :KUBE-MARK-MASQ - [0:0]\n:KUBE-POSTROUTING - [0:0]\n",
    );
    let mut rules = String::from(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
         -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n\
         -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
    );
    for p in ports {
        let _ = writeln!(
            rules,
            "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{} cluster IP\" -m tcp --dport {} -j {}",
            p.vip,
            p.name,
            p.port,
            svc_chain(p)
        );
    }
    let _ = writeln!(
        rules,
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
    );
    for p in ports {
        service_chains(p, cluster_cidr, &mut decl, &mut rules);
    }
    format!("{decl}{rules}COMMIT\n")
}

/// What kube-proxy's partial sync writes at the least when one endpoint of `old` changes to
/// `new`'s: the Service's chain rewritten, the new endpoint chain, the old one deleted
/// (`--noflush`: every other chain stays). kube-proxy also rewrites its top-level chains, so
/// timing this is a lower bound of its cost.
pub fn endpoint_change(old: &SvcPort, new: &SvcPort, cluster_cidr: &str) -> String {
    let mut decl = String::from("*nat\n");
    let mut rules = String::new();
    service_chains(new, cluster_cidr, &mut decl, &mut rules);
    for ep in &old.endpoints {
        if !new.endpoints.contains(ep) {
            // Declared (which flushes it under --noflush) so that it is empty when deleted.
            let sep = sep_chain(old, ep);
            let _ = writeln!(decl, ":{sep} - [0:0]");
            let _ = writeln!(rules, "-X {sep}");
        }
    }
    format!("{decl}{rules}COMMIT\n")
}

/// Loads `rules` into `ns` with `flavor`'s restore (`--noflush` if asked); returns how long
/// the restore took.
pub fn restore(ns: &Netns, flavor: Flavor, rules: &str, noflush: bool) -> Result<Duration> {
    let file = tempfile::Builder::new()
        .prefix("ketch-packet-bench-rules")
        .tempfile()?;
    std::fs::write(file.path(), rules)?;
    let path = file.path().to_str().context("temp path")?;
    let mut args = vec!["netns", "exec", ns.name.as_str(), flavor.restore()];
    if noflush {
        args.push("--noflush");
    }
    args.push(path);
    let t = Instant::now();
    sh("ip", &args)?;
    Ok(t.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(i: u8, eps: usize) -> SvcPort {
        SvcPort {
            name: format!("ns/s{i}:http"),
            vip: Ipv4Addr::new(10, 96, 0, i),
            port: 80,
            endpoints: (0..eps)
                .map(|e| SocketAddrV4::new(Ipv4Addr::new(10, 244, i, e as u8 + 1), 8080))
                .collect(),
        }
    }

    #[test]
    fn ruleset_has_kube_proxy_shape_and_order() {
        let r = ruleset(&[port(1, 3), port(2, 1)], "10.250.0.0/16");
        let svc_rules: Vec<&str> = r
            .lines()
            .filter(|l| l.starts_with("-A KUBE-SERVICES"))
            .collect();
        assert_eq!(svc_rules.len(), 3);
        assert!(svc_rules[0].contains("-d 10.96.0.1/32"));
        assert!(svc_rules[1].contains("-d 10.96.0.2/32"));
        assert!(svc_rules[2].contains("KUBE-NODEPORTS"));
        // Three endpoints: probabilities 1/3, 1/2, then the last one unconditionally.
        assert!(r.contains("--probability 0.3333333333"));
        assert!(r.contains("--probability 0.5000000000"));
        assert_eq!(r.matches("-j DNAT").count(), 4);
        // Every chain used is declared once.
        let declared: std::collections::BTreeSet<&str> = r
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(
            declared.len(),
            r.lines().filter(|l| l.starts_with(':')).count()
        );
        for l in r.lines().filter(|l| l.starts_with("-A ")) {
            let chain = l.split_whitespace().nth(1).unwrap_or("");
            assert!(declared.contains(chain), "{chain} undeclared");
        }
        assert!(r.ends_with("COMMIT\n"));
    }

    #[test]
    fn endpoint_change_rewrites_one_service() {
        let old = port(1, 1);
        let mut new = old.clone();
        new.endpoints = vec![SocketAddrV4::new(Ipv4Addr::new(10, 245, 0, 9), 8080)];
        let d = endpoint_change(&old, &new, "10.250.0.0/16");
        assert!(d.contains(&format!(":{} - [0:0]", svc_chain(&old))));
        assert!(d.contains(&format!("-X {}", sep_chain(&old, &old.endpoints[0]))));
        assert!(d.contains("--to-destination 10.245.0.9:8080"));
        assert!(!d.contains("KUBE-SERVICES"));
    }
}
