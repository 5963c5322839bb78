//! Service ClusterIP and NodePort allocation.
//!
//! Each allocated address or port is a key in storage, written in the same transaction as the
//! Service that holds it (create-if-absent), and deleted in the same transaction as the Service.
//! So two API servers never hand out one address twice, and nothing leaks.

use crate::api::status::{ApiError, ApiResult};
use crate::registry::meta;
use crate::registry::resources::Resource;
use crate::registry::store::{Extra, Store};
use crate::storage::{Condition, Op};
use ipnetwork::Ipv4Network;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const IP_PREFIX: &str = "/registry/ranges/serviceips/";
const PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

#[derive(Debug, Clone)]
pub struct Allocators {
    pub service_cidr: Ipv4Network,
    pub node_port_first: u16,
    pub node_port_last: u16,
}

impl Default for Allocators {
    fn default() -> Self {
        Allocators {
            service_cidr: Ipv4Network::new(Ipv4Addr::new(10, 96, 0, 0), 12)
                .unwrap_or_else(|_| unreachable!("valid")),
            node_port_first: 30000,
            node_port_last: 32767,
        }
    }
}

fn ip_key(ip: Ipv4Addr) -> String {
    format!("{IP_PREFIX}{ip}")
}

fn port_key(port: i64) -> String {
    format!("{PORT_PREFIX}{port}")
}

fn owner(svc: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"service": format!("{}/{}", meta::namespace(svc), meta::name(svc))}))
        .unwrap_or_default()
}

fn uses_node_ports(svc: &Value) -> bool {
    matches!(
        svc.pointer("/spec/type").and_then(Value::as_str),
        Some("NodePort" | "LoadBalancer")
    )
}

fn node_ports(svc: &Value) -> BTreeSet<i64> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_default()
}

fn cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

impl Allocators {
    /// The first usable address: the `kubernetes` Service's.
    pub fn api_service_ip(&self) -> Ipv4Addr {
        let n = u32::from(self.service_cidr.network());
        Ipv4Addr::from(n + 1)
    }

    /// Allocates what `svc` needs (given its previous state on update) and returns the storage
    /// operations that record it.
    pub async fn service(
        &self,
        store: &Store,
        r: &Resource,
        svc: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<Extra> {
        let mut extra = Extra::default();
        let name = meta::name(svc).to_string();
        let invalid = |field: &str, value: &str, msg: &str| {
            ApiError::invalid_field(
                r,
                &name,
                field,
                "FieldValueInvalid",
                format!("Invalid value: \"{value}\": {msg}"),
            )
        };
        let ty = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();

        // Allocated values survive an update that omits them (as kube-apiserver does).
        if let Some(old) = old {
            let spec = svc.get_mut("spec").and_then(Value::as_object_mut);
            if let Some(spec) = spec
                && spec
                    .get("clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                && ty != "ExternalName"
                && let Some(ip) = old.pointer("/spec/clusterIP")
            {
                spec.insert("clusterIP".into(), ip.clone());
                if let Some(ips) = old.pointer("/spec/clusterIPs") {
                    spec.insert("clusterIPs".into(), ips.clone());
                }
            }
            if uses_node_ports(svc) {
                let old_ports: Vec<Value> = old
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut() {
                        if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                            continue;
                        }
                        let same = old_ports.iter().find(|o| {
                            o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol")
                        });
                        if let (Some(o), Value::Object(pm)) = (same, p)
                            && let Some(np) = o.get("nodePort")
                        {
                            pm.insert("nodePort".into(), np.clone());
                        }
                    }
                }
            }
        }

        // ClusterIP
        let old_ip = old.and_then(cluster_ip);
        let wanted = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if ty == "ExternalName" {
            if let Some(ip) = old_ip {
                extra.ops.push(Op::Delete(ip_key(ip)));
            }
        } else if wanted == "None" {
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("clusterIPs".into(), json!(["None"]));
            }
        } else if wanted.is_empty() {
            let ip = self.free_ip(store).await?;
            extra.conditions.push(Condition::Absent(ip_key(ip)));
            extra.ops.push(Op::Put(ip_key(ip), owner(svc)));
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("clusterIP".into(), json!(ip.to_string()));
                spec.insert("clusterIPs".into(), json!([ip.to_string()]));
            }
        } else if old_ip.map(|o| o.to_string()) != Some(wanted.clone()) {
            let ip: Ipv4Addr = wanted.parse().map_err(|_| {
                invalid(
                    "spec.clusterIP",
                    &wanted,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )
            })?;
            if !self.service_cidr.contains(ip)
                || ip == self.service_cidr.network()
                || ip == self.service_cidr.broadcast()
            {
                return Err(invalid(
                    "spec.clusterIPs",
                    &wanted,
                    &format!(
                        "failed to allocate IP {wanted}: provided IP is not in the valid range. The range of valid IPs is {}",
                        self.service_cidr
                    ),
                ));
            }
            if store.storage.get(&ip_key(ip)).await?.0.is_some() {
                return Err(invalid(
                    "spec.clusterIPs",
                    &wanted,
                    &format!("failed to allocate IP {wanted}: provided IP is already allocated"),
                ));
            }
            extra.conditions.push(Condition::Absent(ip_key(ip)));
            extra.ops.push(Op::Put(ip_key(ip), owner(svc)));
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("clusterIPs".into(), json!([wanted]));
            }
        }

        // NodePorts
        let had: BTreeSet<i64> = old
            .filter(|o| uses_node_ports(o))
            .map(node_ports)
            .unwrap_or_default();
        if uses_node_ports(svc) {
            let mut taken: BTreeSet<i64> = BTreeSet::new();
            let count = svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            for i in 0..count {
                let ptr = format!("/spec/ports/{i}/nodePort");
                let np = svc.pointer(&ptr).and_then(Value::as_i64).unwrap_or(0);
                let port = if np == 0 {
                    let p = self.free_port(store, &taken).await?;
                    if let Some(Value::Object(pm)) = svc.pointer_mut(&format!("/spec/ports/{i}")) {
                        pm.insert("nodePort".into(), json!(p));
                    }
                    p
                } else {
                    if np < self.node_port_first as i64 || np > self.node_port_last as i64 {
                        return Err(ApiError::invalid_field(
                            r,
                            &name,
                            &format!("spec.ports[{i}].nodePort"),
                            "FieldValueInvalid",
                            format!(
                                "Invalid value: {np}: provided port is not in the valid range. The range of valid ports is {}-{}",
                                self.node_port_first, self.node_port_last
                            ),
                        ));
                    }
                    if !had.contains(&np)
                        && !taken.contains(&np)
                        && store.storage.get(&port_key(np)).await?.0.is_some()
                    {
                        return Err(ApiError::invalid_field(
                            r,
                            &name,
                            &format!("spec.ports[{i}].nodePort"),
                            "FieldValueInvalid",
                            format!("Invalid value: {np}: provided port is already allocated"),
                        ));
                    }
                    np
                };
                if !had.contains(&port) && taken.insert(port) {
                    extra.conditions.push(Condition::Absent(port_key(port)));
                    extra.ops.push(Op::Put(port_key(port), owner(svc)));
                }
                taken.insert(port);
            }
            for p in had.difference(&taken) {
                extra.ops.push(Op::Delete(port_key(*p)));
            }
        } else {
            for p in &had {
                extra.ops.push(Op::Delete(port_key(*p)));
            }
            if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if let Value::Object(pm) = p {
                        pm.remove("nodePort");
                    }
                }
            }
        }
        Ok(extra)
    }

    /// What deleting `svc` frees.
    pub fn release(&self, svc: &Value) -> Extra {
        let mut extra = Extra::default();
        if let Some(ip) = cluster_ip(svc) {
            extra.ops.push(Op::Delete(ip_key(ip)));
        }
        if uses_node_ports(svc) {
            for p in node_ports(svc) {
                extra.ops.push(Op::Delete(port_key(p)));
            }
        }
        extra
    }

    async fn free_ip(&self, store: &Store) -> ApiResult<Ipv4Addr> {
        let base = u32::from(self.service_cidr.network());
        let size = self.service_cidr.size();
        // Skip the network address, the kubernetes Service's address and the broadcast address.
        let usable = size.saturating_sub(3).max(1);
        for _ in 0..128 {
            let offset = 2 + rand::random::<u32>() % usable;
            let ip = Ipv4Addr::from(base + offset);
            if store.storage.get(&ip_key(ip)).await?.0.is_none() {
                return Ok(ip);
            }
        }
        Err(ApiError::internal(
            "failed to allocate a serviceIP: range is full",
        ))
    }

    async fn free_port(&self, store: &Store, taken: &BTreeSet<i64>) -> ApiResult<i64> {
        let span = (self.node_port_last - self.node_port_first) as u32 + 1;
        for _ in 0..128 {
            let p = self.node_port_first as i64 + (rand::random::<u32>() % span) as i64;
            if !taken.contains(&p) && store.storage.get(&port_key(p)).await?.0.is_none() {
                return Ok(p);
            }
        }
        Err(ApiError::internal(
            "failed to allocate a nodePort: range is full",
        ))
    }
}
