//! What the maps should hold for one Kubernetes Service and its EndpointSlices, as kube-proxy
//! computes it: one frontend per ClusterIP × port, NodePort × port and external IP × port;
//! backends are the ready endpoints, or the serving-and-terminating ones when none is ready;
//! a named `targetPort` is resolved per endpoint through the slice's ports.

use crate::dataplane::{BackendAddr, Frontend, Protocol, Service, ServiceKind};
use k8s_openapi::api::core::v1::{Service as KubeService, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::net::Ipv4Addr;

/// sessionAffinityConfig.clientIP.timeoutSeconds when unset (3 hours, as the API defaults it).
const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

fn protocol(p: Option<&str>) -> Option<Protocol> {
    match p.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        // SCTP is not load-balanced by these programs.
        _ => None,
    }
}

/// Backends of one service port from the slices of its Service.
fn backends(port: &ServicePort, slices: &[&EndpointSlice], node: &str) -> Vec<BackendAddr> {
    let name = port.name.clone().unwrap_or_default();
    let proto = port.protocol.as_deref().unwrap_or("TCP");
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for s in slices {
        if s.address_type != "IPv4" {
            continue;
        }
        let Some(target) = s.ports.iter().flatten().find(|p| {
            p.name.clone().unwrap_or_default() == name
                && p.protocol.as_deref().unwrap_or("TCP") == proto
        }) else {
            continue;
        };
        let Some(tport) = target.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for e in s.endpoints.iter().flatten() {
            let c = e.conditions.as_ref();
            // Unset conditions mean ready (and so serving), not terminating.
            let is_ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving).unwrap_or(is_ready);
            let is_terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            let local = e.node_name.as_deref() == Some(node);
            for a in &e.addresses {
                let Ok(addr) = a.parse::<Ipv4Addr>() else {
                    continue;
                };
                let b = BackendAddr {
                    addr,
                    port: tport,
                    local,
                };
                if is_ready && !is_terminating {
                    ready.push(b);
                } else if serving && is_terminating {
                    terminating.push(b);
                }
            }
        }
    }
    let mut out = if ready.is_empty() { terminating } else { ready };
    out.sort_by_key(|b| (b.addr, b.port));
    out.dedup();
    out
}

/// Every frontend of `svc` with its backends; nothing for headless and ExternalName Services.
pub fn frontends(svc: &KubeService, slices: &[&EndpointSlice], node: &str) -> Vec<Service> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let Some(cluster_ip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        // Headless ("None") or not allocated yet.
        return Vec::new();
    };
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
    });
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
    let externals: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let mut out = Vec::new();
    for port in spec.ports.iter().flatten() {
        let Some(proto) = protocol(port.protocol.as_deref()) else {
            continue;
        };
        let Ok(p) = u16::try_from(port.port) else {
            continue;
        };
        let backends = backends(port, slices, node);
        let service = |addr: Ipv4Addr, port: u16, kind: ServiceKind| Service {
            frontend: Frontend { addr, port, proto },
            kind,
            backends: backends.clone(),
            affinity_timeout,
            external_traffic_local: external_local,
            internal_traffic_local: internal_local,
        };
        out.push(service(cluster_ip, p, ServiceKind::ClusterIp));
        if node_ports && let Some(np) = port.node_port.and_then(|n| u16::try_from(n).ok()) {
            out.push(service(Ipv4Addr::UNSPECIFIED, np, ServiceKind::NodePort));
        }
        for ip in &externals {
            out.push(service(*ip, p, ServiceKind::ExternalIp));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> KubeService {
        serde_json::from_value(v).expect("service")
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).expect("slice")
    }

    #[test]
    fn ports_names_readiness_and_node_ports() {
        let s = svc(
            json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {
            "type": "NodePort", "clusterIP": "10.96.0.20",
            "sessionAffinity": "ClientIP",
            "externalTrafficPolicy": "Local",
            "ports": [{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080},
                      {"name": "dns", "port": 53, "protocol": "UDP"}]}}),
        );
        let a = slice(json!({"metadata": {"name": "web-a"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [
                {"addresses": ["10.244.0.5"], "conditions": {"ready": true}, "nodeName": "n1"},
                {"addresses": ["10.244.1.5"], "conditions": {"ready": false, "serving": false}, "nodeName": "n2"},
                {"addresses": ["10.244.1.6"], "nodeName": "n2"}]}));
        // Another slice of the same Service whose pods name the port differently.
        let b = slice(json!({"metadata": {"name": "web-b"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.1.7"], "conditions": {"ready": true}, "nodeName": "n2"}]}));
        let got = frontends(&s, &[&a, &b], "n1");
        assert_eq!(got.len(), 3);
        let http = &got[0];
        assert_eq!(http.kind, ServiceKind::ClusterIp);
        assert_eq!(http.frontend.addr, Ipv4Addr::new(10, 96, 0, 20));
        assert_eq!(
            http.backends,
            vec![
                BackendAddr {
                    addr: Ipv4Addr::new(10, 244, 0, 5),
                    port: 8080,
                    local: true
                },
                BackendAddr {
                    addr: Ipv4Addr::new(10, 244, 1, 6),
                    port: 8080,
                    local: false
                },
                BackendAddr {
                    addr: Ipv4Addr::new(10, 244, 1, 7),
                    port: 9090,
                    local: false
                },
            ]
        );
        assert_eq!(http.affinity_timeout, Some(10800));
        assert!(http.external_traffic_local);
        assert_eq!(got[1].kind, ServiceKind::NodePort);
        assert_eq!(got[1].frontend.port, 30080);
        assert_eq!(got[2].frontend.proto, Protocol::Udp);
        assert_eq!(got[2].backends.len(), 2, "{:?}", got[2].backends);
        assert!(got[2].backends.iter().all(|b| b.port == 5353));
    }

    #[test]
    fn terminating_serving_endpoints_only_when_none_is_ready() {
        let s = svc(json!({"spec": {"clusterIP": "10.96.0.21", "ports": [{"port": 80}]}}));
        let only_terminating = slice(json!({"metadata": {"name": "x"}, "addressType": "IPv4",
            "ports": [{"port": 80}],
            "endpoints": [
                {"addresses": ["10.244.0.8"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["10.244.0.9"], "conditions": {"ready": false, "serving": false, "terminating": true}}]}));
        let got = frontends(&s, &[&only_terminating], "n1");
        assert_eq!(got[0].backends.len(), 1);
        assert_eq!(got[0].backends[0].addr, Ipv4Addr::new(10, 244, 0, 8));
        let with_ready = slice(json!({"metadata": {"name": "y"}, "addressType": "IPv4",
            "ports": [{"port": 80}],
            "endpoints": [{"addresses": ["10.244.0.10"], "conditions": {"ready": true}}]}));
        let got = frontends(&s, &[&only_terminating, &with_ready], "n1");
        assert_eq!(got[0].backends.len(), 1);
        assert_eq!(got[0].backends[0].addr, Ipv4Addr::new(10, 244, 0, 10));
    }

    #[test]
    fn headless_and_external_name_services_get_nothing() {
        let headless = svc(json!({"spec": {"clusterIP": "None", "ports": [{"port": 80}]}}));
        assert!(frontends(&headless, &[], "n1").is_empty());
        let ext = svc(json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}));
        assert!(frontends(&ext, &[], "n1").is_empty());
        // A Service without endpoints keeps its frontend (it refuses at once).
        let lonely = svc(json!({"spec": {"clusterIP": "10.96.0.22", "ports": [{"port": 80}]}}));
        let got = frontends(&lonely, &[], "n1");
        assert_eq!(got.len(), 1);
        assert!(got[0].backends.is_empty());
    }
}
