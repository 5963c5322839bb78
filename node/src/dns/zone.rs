//! The cluster's names as the Kubernetes DNS specification defines them, built from Services and
//! EndpointSlices, and the answer to one question:
//!
//! - `<svc>.<ns>.svc.<domain>` A: the ClusterIP; headless: the ready endpoints' addresses;
//!   ExternalName: a CNAME.
//! - `<hostname>.<svc>.<ns>.svc.<domain>` A: the endpoint with that hostname (StatefulSet pods).
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV: the named port (headless: one per endpoint).
//! - `<a-b-c-d>.<ns>.pod.<domain>` A: that address.
//! - anything else in the domain: NXDOMAIN; names outside it: SERVFAIL at once (nothing
//!   upstream is reachable from a local cluster).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Records answer with this TTL (CoreDNS's kubernetes plugin default).
pub const TTL: u32 = 5;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub cluster_ip: Option<Ipv4Addr>,
    pub external_name: Option<String>,
    /// (name, protocol lower-case, port) of the Service's named ports.
    pub ports: Vec<(String, String, u16)>,
    /// Ready endpoints: address and hostname.
    pub endpoints: Vec<(Ipv4Addr, Option<String>)>,
}

/// (namespace, service) → entry.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub domain: String,
    pub services: HashMap<(String, String), Entry>,
}

/// The answer to a question, independent of the wire format.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    A(Vec<Ipv4Addr>),
    Cname(String),
    /// (port, target name).
    Srv(Vec<(u16, String)>),
    /// The name exists but has no record of this type.
    NoData,
    NxDomain,
    /// Not ours to answer.
    ServFail,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    A,
    Srv,
    Other,
}

impl Zone {
    pub fn build(domain: &str, services: &[&Service], slices: &[&EndpointSlice]) -> Zone {
        let mut zone = Zone {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            services: HashMap::new(),
        };
        for svc in services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let spec = svc.spec.clone().unwrap_or_default();
            let entry = Entry {
                cluster_ip: spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()),
                external_name: (spec.type_.as_deref() == Some("ExternalName"))
                    .then(|| spec.external_name.clone())
                    .flatten(),
                ports: spec
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(|p| {
                        Some((
                            p.name.clone().filter(|n| !n.is_empty())?,
                            p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                            u16::try_from(p.port).ok()?,
                        ))
                    })
                    .collect(),
                endpoints: Vec::new(),
            };
            zone.services
                .insert((ns.to_ascii_lowercase(), name.to_ascii_lowercase()), entry);
        }
        for s in slices {
            let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            else {
                continue;
            };
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            let Some(entry) = zone
                .services
                .get_mut(&(ns.to_ascii_lowercase(), svc.to_ascii_lowercase()))
            else {
                continue;
            };
            for e in s.endpoints.iter().flatten() {
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for a in &e.addresses {
                    if let Ok(ip) = a.parse() {
                        entry.endpoints.push((ip, e.hostname.clone()));
                    }
                }
            }
        }
        for e in zone.services.values_mut() {
            e.endpoints.sort();
            e.endpoints.dedup();
        }
        zone
    }

    /// Answers `name` (any case, with or without the final dot).
    pub fn answer(&self, name: &str, kind: Kind) -> Answer {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(rest) = name
            .strip_suffix(&self.domain)
            .and_then(|r| r.strip_suffix('.').or((r.is_empty()).then_some(r)))
        else {
            return Answer::ServFail;
        };
        let labels: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').collect()
        };
        match labels.as_slice() {
            [] | ["svc"] | ["pod"] | [_, "svc"] | [_, "pod"] => Answer::NoData,
            [ip, _ns, "pod"] => match ip.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(ip) if kind == Kind::A => Answer::A(vec![ip]),
                Ok(_) => Answer::NoData,
                Err(_) => Answer::NxDomain,
            },
            [svc, ns, "svc"] => self.service(ns, svc, kind),
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                self.srv(ns, svc, &port[1..], &proto[1..], kind)
            }
            [host, svc, ns, "svc"] => {
                let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else {
                    return Answer::NxDomain;
                };
                let ips: Vec<Ipv4Addr> = e
                    .endpoints
                    .iter()
                    .filter(|(_, h)| {
                        h.as_deref().map(str::to_ascii_lowercase).as_deref() == Some(host)
                    })
                    .map(|(ip, _)| *ip)
                    .collect();
                match (ips.is_empty(), kind) {
                    (true, _) => Answer::NxDomain,
                    (false, Kind::A) => Answer::A(ips),
                    (false, _) => Answer::NoData,
                }
            }
            _ => Answer::NxDomain,
        }
    }

    fn service(&self, ns: &str, svc: &str, kind: Kind) -> Answer {
        let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else {
            return Answer::NxDomain;
        };
        if let Some(target) = &e.external_name {
            return Answer::Cname(target.clone());
        }
        match kind {
            Kind::A => match e.cluster_ip {
                Some(ip) => Answer::A(vec![ip]),
                // Headless: the ready pods themselves (none ready: the name exists, no record).
                None if e.endpoints.is_empty() => Answer::NoData,
                None => Answer::A(e.endpoints.iter().map(|(ip, _)| *ip).collect()),
            },
            Kind::Srv => {
                let target = format!("{svc}.{ns}.svc.{}", self.domain);
                let srv: Vec<(u16, String)> = e
                    .ports
                    .iter()
                    .map(|(_, _, p)| (*p, target.clone()))
                    .collect();
                if srv.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Srv(srv)
                }
            }
            Kind::Other => Answer::NoData,
        }
    }

    fn srv(&self, ns: &str, svc: &str, port: &str, proto: &str, kind: Kind) -> Answer {
        let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else {
            return Answer::NxDomain;
        };
        let Some((_, _, number)) = e
            .ports
            .iter()
            .find(|(n, p, _)| n.as_str() == port && p.as_str() == proto)
        else {
            return Answer::NxDomain;
        };
        if kind != Kind::Srv {
            return Answer::NoData;
        }
        let base = format!("{svc}.{ns}.svc.{}", self.domain);
        if e.cluster_ip.is_some() || e.endpoints.is_empty() {
            return Answer::Srv(vec![(*number, base)]);
        }
        // Headless: one target per endpoint (its hostname, or its dashed address).
        Answer::Srv(
            e.endpoints
                .iter()
                .map(|(ip, h)| {
                    let host = h
                        .clone()
                        .unwrap_or_else(|| ip.to_string().replace('.', "-"));
                    (*number, format!("{host}.{base}"))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zone() -> Zone {
        let web: Service =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}))
            .expect("svc");
        let db: Service =
            serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "shop"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}))
            .expect("svc");
        let ext: Service =
            serde_json::from_value(json!({"metadata": {"name": "out", "namespace": "shop"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}}))
            .expect("svc");
        let slice: EndpointSlice = serde_json::from_value(json!({"metadata": {"name": "db-1", "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "db"}}, "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.244.1.7"], "hostname": "db-1"},
                {"addresses": ["10.244.1.8"], "hostname": "db-2", "conditions": {"ready": false}}]}))
        .expect("slice");
        Zone::build("cluster.local.", &[&web, &db, &ext], &[&slice])
    }

    #[test]
    fn services_headless_hostnames_and_srv() {
        let z = zone();
        assert_eq!(
            z.answer("web.shop.svc.cluster.local.", Kind::A),
            Answer::A(vec![Ipv4Addr::new(10, 96, 0, 20)])
        );
        assert_eq!(
            z.answer("WEB.Shop.svc.cluster.local", Kind::A),
            Answer::A(vec![Ipv4Addr::new(10, 96, 0, 20)])
        );
        assert_eq!(
            z.answer("db.shop.svc.cluster.local", Kind::A),
            Answer::A(vec![
                Ipv4Addr::new(10, 244, 0, 7),
                Ipv4Addr::new(10, 244, 1, 7)
            ])
        );
        assert_eq!(
            z.answer("db-1.db.shop.svc.cluster.local", Kind::A),
            Answer::A(vec![Ipv4Addr::new(10, 244, 1, 7)])
        );
        // Not ready: not in DNS.
        assert_eq!(
            z.answer("db-2.db.shop.svc.cluster.local", Kind::A),
            Answer::NxDomain
        );
        assert_eq!(
            z.answer("_http._tcp.web.shop.svc.cluster.local", Kind::Srv),
            Answer::Srv(vec![(80, "web.shop.svc.cluster.local".into())])
        );
        assert_eq!(
            z.answer("_pg._tcp.db.shop.svc.cluster.local", Kind::Srv),
            Answer::Srv(vec![
                (5432, "db-0.db.shop.svc.cluster.local".into()),
                (5432, "db-1.db.shop.svc.cluster.local".into())
            ])
        );
        assert_eq!(
            z.answer("_pg._udp.db.shop.svc.cluster.local", Kind::Srv),
            Answer::NxDomain
        );
        assert_eq!(
            z.answer("out.shop.svc.cluster.local", Kind::A),
            Answer::Cname("example.com".into())
        );
        assert_eq!(
            z.answer("web.shop.svc.cluster.local", Kind::Other),
            Answer::NoData
        );
    }

    #[test]
    fn missing_names_pods_and_outside_names() {
        let z = zone();
        assert_eq!(
            z.answer("nope.shop.svc.cluster.local", Kind::A),
            Answer::NxDomain
        );
        assert_eq!(
            z.answer("web.other.svc.cluster.local", Kind::A),
            Answer::NxDomain
        );
        assert_eq!(
            z.answer("a.b.c.d.e.cluster.local", Kind::A),
            Answer::NxDomain
        );
        assert_eq!(z.answer("svc.cluster.local", Kind::A), Answer::NoData);
        assert_eq!(
            z.answer("10-244-0-9.shop.pod.cluster.local", Kind::A),
            Answer::A(vec![Ipv4Addr::new(10, 244, 0, 9)])
        );
        assert_eq!(z.answer("example.com.", Kind::A), Answer::ServFail);
        assert_eq!(z.answer("notcluster.local", Kind::A), Answer::ServFail);
    }
}
