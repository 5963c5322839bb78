//! Node IPAM: every Node gets its own `spec.podCIDR` from the cluster CIDR (upstream's range
//! allocator). Which ranges are taken is read back from the nodes themselves at start, so a new
//! leader continues where the last one stopped; a deleted node's range is free again.

use super::{Context, ControllerError};
use futures::StreamExt;
use ipnetwork::Ipv4Network;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "nodeipam";

/// The ranges of one cluster CIDR, handed out lowest first.
pub struct RangeAllocator {
    cluster: Ipv4Network,
    mask: u8,
    used: BTreeSet<u32>,
}

impl RangeAllocator {
    pub fn new(cluster: Ipv4Network, mask: u8) -> Result<RangeAllocator, ControllerError> {
        if mask < cluster.prefix() || mask > 30 {
            return Err(ControllerError::Invalid(format!(
                "node CIDR mask /{mask} does not fit the cluster CIDR {cluster}"
            )));
        }
        Ok(RangeAllocator {
            cluster,
            mask,
            used: BTreeSet::new(),
        })
    }

    fn count(&self) -> u32 {
        1u32 << (self.mask - self.cluster.prefix())
    }

    fn index_of(&self, cidr: &Ipv4Network) -> Option<u32> {
        if cidr.prefix() != self.mask || !self.cluster.contains(cidr.network()) {
            return None;
        }
        let offset = u32::from(cidr.network()) - u32::from(self.cluster.network());
        Some(offset >> (32 - self.mask))
    }

    fn cidr(&self, index: u32) -> Option<Ipv4Network> {
        let base = u32::from(self.cluster.network()) + (index << (32 - self.mask));
        Ipv4Network::new(Ipv4Addr::from(base), self.mask).ok()
    }

    /// Marks a range taken (one a node already has).
    pub fn occupy(&mut self, cidr: &Ipv4Network) -> bool {
        match self.index_of(cidr) {
            Some(i) => self.used.insert(i),
            None => false,
        }
    }

    pub fn release(&mut self, cidr: &Ipv4Network) {
        if let Some(i) = self.index_of(cidr) {
            self.used.remove(&i);
        }
    }

    /// The lowest free range.
    pub fn allocate(&mut self) -> Option<Ipv4Network> {
        let i = (0..self.count()).find(|i| !self.used.contains(i))?;
        self.used.insert(i);
        self.cidr(i)
    }
}

fn pod_cidr(node: &Node) -> Option<Ipv4Network> {
    node.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok()
}

pub async fn run(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let Some(cluster) = ctx.config.cluster_cidr else {
        tracing::info!("no cluster CIDR configured: node IPAM is off");
        stop.cancelled().await;
        return Ok(());
    };
    let client = ctx.client_for("node-controller")?;
    let events = ctx.recorder(client.clone(), "node-ipam-controller");
    let nodes: Api<Node> = Api::all(client);
    let mut alloc = RangeAllocator::new(cluster, ctx.config.node_cidr_mask_size)?;
    // Node name → its range, for releasing on delete.
    let mut assigned: HashMap<String, Ipv4Network> = HashMap::new();
    let mut waiting: Vec<Node> = Vec::new();
    let mut synced = false;
    let mut stream = watcher(nodes.clone(), watcher::Config::default()).boxed();
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = stop.cancelled() => return Ok(()),
        };
        let ev = match ev {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "node watch failed");
                continue;
            }
            None => return Ok(()),
        };
        match ev {
            watcher::Event::Init => {
                synced = false;
                alloc = RangeAllocator::new(cluster, ctx.config.node_cidr_mask_size)?;
                assigned.clear();
                waiting.clear();
            }
            watcher::Event::InitApply(n) | watcher::Event::Apply(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                match pod_cidr(&n) {
                    Some(c) => {
                        if assigned.get(&name) != Some(&c) {
                            if let Some(old) = assigned.insert(name, c) {
                                alloc.release(&old);
                            }
                            alloc.occupy(&c);
                        }
                    }
                    None => waiting.push(n),
                }
            }
            watcher::Event::Delete(n) => {
                if let Some(c) = assigned.remove(n.metadata.name.as_deref().unwrap_or_default()) {
                    alloc.release(&c);
                }
            }
            watcher::Event::InitDone => synced = true,
        }
        // Only hand out ranges once every existing assignment is known.
        if !synced {
            continue;
        }
        for n in std::mem::take(&mut waiting) {
            let name = n.metadata.name.clone().unwrap_or_default();
            if assigned.contains_key(&name) {
                continue;
            }
            let Some(cidr) = alloc.allocate() else {
                let r = kube::Resource::object_ref(&n, &());
                events
                    .warning(
                        &r,
                        "CIDRNotAvailable",
                        "Allocating",
                        format!("Node {name} status is now: CIDRNotAvailable"),
                    )
                    .await;
                continue;
            };
            let patch = serde_json::json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
            match nodes
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(node = %name, cidr = %cidr, "assigned podCIDR");
                    assigned.insert(name, cidr);
                }
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "assigning podCIDR failed");
                    alloc.release(&cidr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_each_range_once_and_reuses_released_ones() {
        let mut a = RangeAllocator::new("10.244.0.0/16".parse().expect("cidr"), 24).expect("alloc");
        assert!(a.occupy(&"10.244.1.0/24".parse().expect("cidr")));
        assert_eq!(
            a.allocate().map(|c| c.to_string()).as_deref(),
            Some("10.244.0.0/24")
        );
        assert_eq!(
            a.allocate().map(|c| c.to_string()).as_deref(),
            Some("10.244.2.0/24")
        );
        a.release(&"10.244.0.0/24".parse().expect("cidr"));
        assert_eq!(
            a.allocate().map(|c| c.to_string()).as_deref(),
            Some("10.244.0.0/24")
        );
        let mut tiny =
            RangeAllocator::new("10.0.0.0/23".parse().expect("cidr"), 24).expect("alloc");
        assert!(tiny.allocate().is_some() && tiny.allocate().is_some());
        assert!(tiny.allocate().is_none(), "exhausted");
        assert!(RangeAllocator::new("10.0.0.0/24".parse().expect("cidr"), 16).is_err());
    }
}
