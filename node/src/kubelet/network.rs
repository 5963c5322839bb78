//! Pod networking on the node side: the CNI config containerd reads (written once the node has
//! its podCIDR), and routes to every other node's podCIDR via that node's address.

use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::RouteMessageBuilder;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

/// Routes this agent installs carry this protocol number, so they can be told from others.
const KETCH_ROUTE_PROTOCOL: u8 = 200;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("netlink: {0}")]
    Netlink(String),
}

/// The CNI network config for containerd (a conflist with our plugin).
pub fn cni_config(pod_cidr: &str, data_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "ketch",
        "plugins": [{
            "type": "ketch-cni",
            "podCIDR": pod_cidr,
            "dataDir": data_dir,
            "mtu": 1500,
        }],
    })
}

pub fn write_cni_config(
    conf_dir: &Path,
    pod_cidr: &str,
    data_dir: &Path,
) -> Result<(), NetworkError> {
    let err = |source| NetworkError::Write {
        path: conf_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(conf_dir).map_err(err)?;
    let path = conf_dir.join("10-ketch.conflist");
    let tmp = conf_dir.join(".10-ketch.conflist.tmp");
    let text = serde_json::to_string_pretty(&cni_config(pod_cidr, data_dir)).unwrap_or_default();
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

/// Keeps this node's routes to other nodes' pod ranges equal to `want` (podCIDR → node IP).
pub async fn sync_routes(want: &BTreeMap<Ipv4Network, Ipv4Addr>) -> Result<(), NetworkError> {
    let nl = |e: rtnetlink::Error| NetworkError::Netlink(e.to_string());
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| NetworkError::Netlink(e.to_string()))?;
    let task = tokio::spawn(conn);
    let result = async {
        let mut existing: Vec<RouteMessage> = Vec::new();
        let mut routes = handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        while let Some(r) = routes.try_next().await.map_err(nl)? {
            if r.header.protocol == RouteProtocol::Other(KETCH_ROUTE_PROTOCOL) {
                existing.push(r);
            }
        }
        let dest_of = |r: &RouteMessage| -> Option<(Ipv4Network, Option<Ipv4Addr>)> {
            let mut dst = None;
            let mut gw = None;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(*ip),
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gw = Some(*ip),
                    _ => {}
                }
            }
            Some((
                Ipv4Network::new(dst?, r.header.destination_prefix_length).ok()?,
                gw,
            ))
        };
        for r in &existing {
            if let Some((net, gw)) = dest_of(r)
                && want.get(&net).copied() != gw
            {
                handle.route().del(r.clone()).execute().await.map_err(nl)?;
            }
        }
        for (net, gw) in want {
            let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(net.network(), net.prefix())
                .gateway(*gw)
                .protocol(RouteProtocol::Other(KETCH_ROUTE_PROTOCOL))
                .build();
            handle
                .route()
                .add(msg)
                .replace()
                .execute()
                .await
                .map_err(nl)?;
        }
        Ok(())
    }
    .await;
    task.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cni_config_names_our_plugin_and_the_pod_range() {
        let c = cni_config("10.244.3.0/24", Path::new("/var/lib/ketch/nodes/n1/ipam"));
        assert_eq!(c["plugins"][0]["type"], "ketch-cni");
        assert_eq!(c["plugins"][0]["podCIDR"], "10.244.3.0/24");
        let dir = tempfile::tempdir().expect("tempdir");
        write_cni_config(dir.path(), "10.244.3.0/24", Path::new("/x")).expect("write");
        let text = std::fs::read_to_string(dir.path().join("10-ketch.conflist")).expect("read");
        assert!(text.contains("ketch-cni"));
    }
}
