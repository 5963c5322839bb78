//! The commands: ADD, DEL, CHECK (async, over netlink), VERSION; GC and STATUS are refused.

use std::io;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use netlink_packet_route::neighbour::NeighbourState;
use netlink_packet_route::route::RouteScope;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::config::{self, Command, Env, LATEST_VERSION, NetConf};
use super::error::{CniError, ErrorCode};
use super::ipam::{Ipam, IpamError};
use super::netlink::{self, Netlink, NetlinkError, Netns};
use super::result::{CniResult, Interface, IpConfig, Route, VersionResult};

/// The pods' gateway: an address no one owns, answered by a permanent neighbour entry holding the
/// host veth's MAC, so every packet a pod routes lands on its host veth.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// Name of the host end of the veth pair for an attachment: `lxc` + the first 11 hex digits of
/// SHA-256(`<container id>/<ifname>`), 14 characters (Linux allows 15). Stable across plugin
/// versions, so DEL finds what an older ADD made; the dataplane may use it to find a pod's veth.
pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    let digest = Sha256::digest(format!("{container_id}/{ifname}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("lxc{}", &hex[..11])
}

/// What the plugin prints on stdout and whether it exits with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub stdout: String,
    pub success: bool,
}

impl Response {
    fn ok(stdout: String) -> Self {
        Self {
            stdout,
            success: true,
        }
    }

    fn error(e: &CniError, version: &str) -> Self {
        Self {
            stdout: e.to_json(version),
            success: false,
        }
    }
}

/// Runs one invocation: `var` reads the environment, `stdin` is what was read from stdin.
pub fn handle(var: impl Fn(&str) -> Option<String>, stdin: io::Result<Vec<u8>>) -> Response {
    // Errors carry the request's version when it is one we speak.
    let request_version = stdin
        .as_ref()
        .ok()
        .and_then(|s| config::decode_version(s).ok())
        .filter(|v| config::is_supported(v));
    let err_version = request_version.as_deref().unwrap_or(LATEST_VERSION);

    let env = match Env::from_vars(var) {
        Ok(env) => env,
        Err(e) => return Response::error(&e, err_version),
    };
    let stdin = match stdin {
        Ok(s) => s,
        Err(e) => {
            let e = CniError::new(
                ErrorCode::IoFailure,
                "error reading from stdin",
                e.to_string(),
            );
            return Response::error(&e, err_version);
        }
    };
    match dispatch(&env, &stdin) {
        Ok(out) => Response::ok(out),
        Err(e) => {
            warn!(command = ?env.command, container = %env.container_id, error = %e, "failed");
            Response::error(&e, err_version)
        }
    }
}

fn dispatch(env: &Env, stdin: &[u8]) -> Result<String, CniError> {
    match env.command {
        Command::Version => {
            // Like libcni's skel, a missing or odd stdin does not fail VERSION.
            let requested = config::decode_version(stdin).ok();
            Ok(VersionResult::new(requested.as_deref()).to_json())
        }
        Command::Gc | Command::Status => {
            let version = config::decode_version(stdin)?;
            let name = if env.command == Command::Gc {
                "GC"
            } else {
                "STATUS"
            };
            Err(CniError::new(
                ErrorCode::IncompatibleVersion,
                format!("{name} is not supported"),
                format!(
                    "{name} needs CNI 1.1.0; config is {version:?}, plugin supports {:?}",
                    config::SUPPORTED_VERSIONS
                ),
            ))
        }
        Command::Add | Command::Del | Command::Check => {
            let conf = NetConf::parse(stdin)?;
            if env.command == Command::Check && conf.cni_version.starts_with("0.3.") {
                return Err(CniError::new(
                    ErrorCode::IncompatibleVersion,
                    "config version does not allow CHECK",
                    format!(
                        "CHECK needs 0.4.0 or later, config is {:?}",
                        conf.cni_version
                    ),
                ));
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CniError::internal("starting the async runtime", e))?;
            rt.block_on(async {
                match env.command {
                    Command::Add => add(&conf, env).await.map(|r| r.to_json()),
                    Command::Del => del(&conf, env).await.map(|()| String::new()),
                    _ => check(&conf, env).await.map(|()| String::new()),
                }
            })
        }
    }
}

fn nl_err(e: NetlinkError) -> CniError {
    CniError::internal("netlink", e)
}

fn ipam_err(e: IpamError) -> CniError {
    match e {
        IpamError::Exhausted(_) => CniError::new(
            ErrorCode::AddressesExhausted,
            "no free pod address",
            e.to_string(),
        ),
        IpamError::TooSmall(_) => {
            CniError::new(ErrorCode::InvalidConfig, "invalid podCIDR", e.to_string())
        }
        IpamError::Io { .. } | IpamError::Lock { .. } => {
            CniError::new(ErrorCode::IoFailure, "IPAM state", e.to_string())
        }
    }
}

/// Opens `CNI_NETNS` for ADD and CHECK: missing means the container is gone (3); our own
/// namespace is refused (8), or we would configure the node itself.
fn open_container_netns(env: &Env) -> Result<Netns, CniError> {
    let Some(path) = env.netns.as_deref() else {
        return Err(CniError::new(
            ErrorCode::InvalidEnvironment,
            "required env variables [CNI_NETNS] missing",
            "",
        ));
    };
    let ns = Netns::open(path).map_err(|e| {
        let code = if e.kind() == io::ErrorKind::NotFound {
            ErrorCode::UnknownContainer
        } else {
            ErrorCode::IoFailure
        };
        CniError::new(
            code,
            format!("failed to open netns {}", path.display()),
            e.to_string(),
        )
    })?;
    match ns.is_current() {
        Ok(false) => Ok(ns),
        Ok(true) => Err(CniError::new(
            ErrorCode::InvalidNetns,
            "plugin's netns and netns from CNI_NETNS should not be the same",
            path.display().to_string(),
        )),
        Err(e) => Err(CniError::new(
            ErrorCode::IoFailure,
            "comparing network namespaces",
            e.to_string(),
        )),
    }
}

fn pod_label(env: &Env) -> String {
    match (env.args.pod_namespace(), env.args.pod_name()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        _ => String::new(),
    }
}

async fn add(conf: &NetConf, env: &Env) -> Result<CniResult, CniError> {
    let ns = open_container_netns(env)?;
    let prev = match &conf.prev_result {
        Some(v) => Some(serde_json::from_value::<CniResult>(v.clone()).map_err(|e| {
            CniError::new(
                ErrorCode::DecodingFailure,
                "invalid prevResult",
                e.to_string(),
            )
        })?),
        None => None,
    };
    let ipam = Ipam::new(&conf.data_dir, conf.pod_cidr).map_err(ipam_err)?;
    let ip = ipam
        .allocate(&env.container_id, &env.ifname)
        .map_err(ipam_err)?;
    let host_name = host_veth_name(&env.container_id, &env.ifname);
    match wire(conf, env, &ns, &host_name, ip).await {
        Ok((host, pod)) => {
            info!(pod = %pod_label(env), container = %env.container_id, %ip, host_veth = %host_name, "added");
            let ours = CniResult {
                cni_version: conf.cni_version.clone(),
                interfaces: vec![
                    Interface {
                        mac: host.mac_string(),
                        name: host.name,
                        sandbox: String::new(),
                    },
                    Interface {
                        mac: pod.mac_string(),
                        name: pod.name,
                        sandbox: ns.path().display().to_string(),
                    },
                ],
                ips: vec![IpConfig {
                    version: None,
                    address: format!("{ip}/32"),
                    gateway: Some(GATEWAY.to_string()),
                    interface: Some(1),
                }],
                routes: vec![Route {
                    dst: "0.0.0.0/0".into(),
                    gw: Some(GATEWAY.to_string()),
                }],
                dns: conf.dns.clone(),
            };
            let result = match prev {
                Some(prev) => ours.appended_to(prev),
                None => ours,
            };
            Ok(result.for_version(&conf.cni_version))
        }
        Err(e) => {
            // Leave nothing behind: the pair (deleting one end deletes both) and the address.
            if let Ok(host) = Netlink::connect()
                && let Err(del) = host.delete_link(&host_name).await
            {
                warn!(error = %del, host_veth = %host_name, "rollback: deleting veth");
            }
            if let Err(rel) = ipam.release(&env.container_id, &env.ifname) {
                warn!(error = %rel, %ip, "rollback: releasing address");
            }
            Err(e)
        }
    }
}

/// Makes the veth pair and configures both ends; returns (host link, pod link).
async fn wire(
    conf: &NetConf,
    env: &Env,
    ns: &Netns,
    host_name: &str,
    ip: Ipv4Addr,
) -> Result<(netlink::Link, netlink::Link), CniError> {
    let host = Netlink::connect().map_err(nl_err)?;
    let pod = Netlink::connect_in(ns).map_err(nl_err)?;

    // Only an earlier ADD of this very attachment makes this name: its leftovers go.
    if host.delete_link(host_name).await.map_err(nl_err)? {
        warn!(host_veth = %host_name, "removed a leftover veth of this attachment");
    }
    if let Err(e) = host.create_veth(host_name, &env.ifname, ns, conf.mtu).await {
        if e.is_exists() {
            return Err(CniError::internal(
                format!(
                    "interface {} already exists in {}",
                    env.ifname,
                    ns.path().display()
                ),
                e,
            ));
        }
        return Err(nl_err(e));
    }
    let host_link = host
        .link_by_name(host_name)
        .await
        .map_err(nl_err)?
        .ok_or_else(|| CniError::internal("veth vanished", host_name))?;
    // forwarding: pods' packets arrive here and must be routed on (to other pods, the node's
    // uplink), whatever ip_forward is. rp_filter=1 (strict): the only route to the pod's address
    // is this veth, so its own traffic passes and traffic with another source is dropped.
    netlink::set_ipv4_conf(host_name, "forwarding", "1").map_err(nl_err)?;
    netlink::set_ipv4_conf(host_name, "rp_filter", "1").map_err(nl_err)?;
    host.set_up(host_link.index).await.map_err(nl_err)?;

    let pod_link = pod
        .link_by_name(&env.ifname)
        .await
        .map_err(nl_err)?
        .ok_or_else(|| CniError::internal("veth peer not found in the pod", &env.ifname))?;
    pod.set_up(pod_link.index).await.map_err(nl_err)?;
    let host_net = Ipv4Network::new(ip, 32).map_err(|e| CniError::internal("address", e))?;
    let gw_net = Ipv4Network::new(GATEWAY, 32).map_err(|e| CniError::internal("address", e))?;
    let default =
        Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).map_err(|e| CniError::internal("address", e))?;
    pod.add_address(pod_link.index, host_net)
        .await
        .map_err(nl_err)?;
    pod.add_route(gw_net, None, pod_link.index)
        .await
        .map_err(nl_err)?;
    pod.add_route(default, Some(GATEWAY), pod_link.index)
        .await
        .map_err(nl_err)?;
    pod.add_permanent_neighbour(pod_link.index, GATEWAY, &host_link.mac)
        .await
        .map_err(nl_err)?;

    host.add_route(host_net, None, host_link.index)
        .await
        .map_err(nl_err)?;
    Ok((host_link, pod_link))
}

async fn del(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let host_name = host_veth_name(&env.container_id, &env.ifname);
    let host = Netlink::connect().map_err(nl_err)?;
    // First the veth (its routes go with it), then the address, so the address is never
    // handed out while the old pair still routes it.
    let mut first_error = None;
    match host.delete_link(&host_name).await {
        Ok(true) => info!(host_veth = %host_name, "deleted veth"),
        Ok(false) => {}
        Err(e) => first_error = Some(nl_err(e)),
    }
    // The pod end too, should it have lost its peer some other way; a gone netns is fine.
    if let Some(path) = env.netns.as_deref() {
        match Netns::open(path) {
            Ok(ns) if !ns.is_current().unwrap_or(true) => match Netlink::connect_in(&ns) {
                Ok(pod) => {
                    if let Err(e) = pod.delete_link(&env.ifname).await {
                        warn!(error = %e, "deleting the pod's interface");
                    }
                }
                Err(e) => warn!(error = %e, "entering the pod's netns"),
            },
            Ok(_) => {}
            Err(e) => {
                info!(netns = %path.display(), error = %e, "netns is gone; nothing to delete there")
            }
        }
    }
    let ipam = Ipam::new(&conf.data_dir, conf.pod_cidr).map_err(ipam_err)?;
    let freed = ipam
        .release(&env.container_id, &env.ifname)
        .map_err(ipam_err)?;
    info!(pod = %pod_label(env), container = %env.container_id, ?freed, "deleted");
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check_failed(msg: impl Into<String>) -> CniError {
    CniError::new(ErrorCode::CheckFailed, msg, "")
}

/// The pod address the previous ADD reported for our interface.
fn expected_address(conf: &NetConf, env: &Env) -> Result<Option<Ipv4Addr>, CniError> {
    let Some(prev) = &conf.prev_result else {
        return Ok(None);
    };
    let prev: CniResult = serde_json::from_value(prev.clone()).map_err(|e| {
        CniError::new(
            ErrorCode::DecodingFailure,
            "invalid prevResult",
            e.to_string(),
        )
    })?;
    let Some(index) = prev
        .interfaces
        .iter()
        .position(|i| i.name == env.ifname && !i.sandbox.is_empty())
    else {
        return Err(check_failed(format!(
            "prevResult lists no interface {}",
            env.ifname
        )));
    };
    let Some(ip) = prev.ips.iter().find(|ip| ip.interface == Some(index)) else {
        return Err(check_failed(format!(
            "prevResult lists no address for {}",
            env.ifname
        )));
    };
    let net: Ipv4Network = ip.address.parse().map_err(|e| {
        CniError::new(
            ErrorCode::DecodingFailure,
            "invalid prevResult address",
            format!("{}: {e}", ip.address),
        )
    })?;
    Ok(Some(net.ip()))
}

async fn check(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let ns = open_container_netns(env)?;
    let ipam = Ipam::new(&conf.data_dir, conf.pod_cidr).map_err(ipam_err)?;
    let reserved = ipam
        .lookup(&env.container_id, &env.ifname)
        .map_err(ipam_err)?;
    let ip = match (expected_address(conf, env)?, reserved) {
        (Some(want), Some(have)) if want == have => want,
        (Some(want), Some(have)) => {
            return Err(check_failed(format!(
                "address reservation is {have}, prevResult says {want}"
            )));
        }
        (Some(want), None) => {
            return Err(check_failed(format!("no address reservation for {want}")));
        }
        (None, Some(have)) => have,
        (None, None) => return Err(check_failed("no address reservation")),
    };

    let host_name = host_veth_name(&env.container_id, &env.ifname);
    let host = Netlink::connect().map_err(nl_err)?;
    let pod = Netlink::connect_in(&ns).map_err(nl_err)?;

    let host_link = host
        .link_by_name(&host_name)
        .await
        .map_err(nl_err)?
        .ok_or_else(|| check_failed(format!("host veth {host_name} is missing")))?;
    if !host_link.up {
        return Err(check_failed(format!("host veth {host_name} is down")));
    }
    let host_routes = host.routes().await.map_err(nl_err)?;
    if !host_routes.iter().any(|r| {
        r.dst.ip() == ip
            && r.dst.prefix() == 32
            && r.oif == Some(host_link.index)
            && r.gateway.is_none()
    }) {
        return Err(check_failed(format!(
            "route {ip}/32 dev {host_name} is missing"
        )));
    }
    if netlink::get_ipv4_conf(&host_name, "forwarding").map_err(nl_err)? != "1" {
        return Err(check_failed(format!("forwarding is off on {host_name}")));
    }

    let pod_link = pod
        .link_by_name(&env.ifname)
        .await
        .map_err(nl_err)?
        .ok_or_else(|| check_failed(format!("{} is missing in the pod", env.ifname)))?;
    if !pod_link.up {
        return Err(check_failed(format!("{} is down in the pod", env.ifname)));
    }
    let addrs = pod.addresses(pod_link.index).await.map_err(nl_err)?;
    if !addrs.iter().any(|a| a.ip() == ip && a.prefix() == 32) {
        return Err(check_failed(format!(
            "{ip}/32 is not on {} (has {addrs:?})",
            env.ifname
        )));
    }
    let routes = pod.routes().await.map_err(nl_err)?;
    let on_link = |r: &&netlink::Route4| r.oif == Some(pod_link.index);
    if !routes
        .iter()
        .filter(on_link)
        .any(|r| r.dst.ip() == GATEWAY && r.dst.prefix() == 32 && r.scope == RouteScope::Link)
    {
        return Err(check_failed(format!(
            "route {GATEWAY} dev {} scope link is missing in the pod",
            env.ifname
        )));
    }
    if !routes
        .iter()
        .filter(on_link)
        .any(|r| r.dst.prefix() == 0 && r.gateway == Some(GATEWAY))
    {
        return Err(check_failed(format!(
            "default route via {GATEWAY} is missing in the pod"
        )));
    }
    let neighbours = pod.neighbours(pod_link.index).await.map_err(nl_err)?;
    if !neighbours
        .iter()
        .any(|n| n.ip == GATEWAY && n.state == NeighbourState::Permanent && n.mac == host_link.mac)
    {
        return Err(check_failed(format!(
            "permanent neighbour {GATEWAY} lladdr {} is missing in the pod",
            host_link.mac_string()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(vars: &[(&str, &str)], stdin: &str) -> (serde_json::Value, bool) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = handle(|k| map.get(k).cloned(), Ok(stdin.as_bytes().to_vec()));
        let v = if r.stdout.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&r.stdout).expect("stdout is JSON")
        };
        (v, r.success)
    }

    const CONF: &str = r#"{"cniVersion":"0.4.0","name":"ketch","type":"ketch-cni","podCIDR":"10.244.1.0/24","dataDir":"/nonexistent/ipam"}"#;

    #[test]
    fn host_veth_names_are_stable_and_short() {
        let a = host_veth_name("0123456789abcdef", "eth0");
        assert_eq!(a.len(), 14);
        assert!(a.starts_with("lxc"));
        assert!(a[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, host_veth_name("0123456789abcdef", "eth0"));
        assert_ne!(a, host_veth_name("0123456789abcdef", "eth1"));
        assert_ne!(a, host_veth_name("0123456789abcdee", "eth0"));
        // Pinned: DEL after a plugin upgrade must find what an older ADD made.
        assert_eq!(host_veth_name("c1", "eth0"), "lxcd72e032fedd");
    }

    #[test]
    fn version_answers_without_stdin() {
        let (v, ok) = run(&[("CNI_COMMAND", "VERSION")], "");
        assert!(ok);
        assert_eq!(
            v,
            serde_json::json!({"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]})
        );
        let (v, _) = run(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"0.3.1"}"#);
        assert_eq!(v["cniVersion"], "0.3.1");
    }

    #[test]
    fn errors_carry_the_request_version() {
        let (v, ok) = run(&[("CNI_COMMAND", "ADD")], CONF);
        assert!(!ok);
        assert_eq!(v["code"], 4);
        assert_eq!(v["cniVersion"], "0.4.0");
        let (v, _) = run(&[], "garbage");
        assert_eq!(
            (v["code"].as_u64(), v["cniVersion"].as_str()),
            (Some(4), Some("1.0.0"))
        );
    }

    #[test]
    fn gc_and_status_are_refused_as_incompatible() {
        for cmd in ["GC", "STATUS"] {
            let (v, ok) = run(
                &[("CNI_COMMAND", cmd), ("CNI_PATH", "/opt/cni/bin")],
                &CONF.replace("0.4.0", "1.1.0"),
            );
            assert!(!ok);
            assert_eq!(v["code"], 1, "{cmd}: {v}");
            let (v, _) = run(&[("CNI_COMMAND", cmd)], "{");
            assert_eq!(v["code"], 6);
        }
    }

    #[test]
    fn check_needs_0_4_0() {
        let (v, ok) = run(
            &[
                ("CNI_COMMAND", "CHECK"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_NETNS", "/nonexistent"),
                ("CNI_IFNAME", "eth0"),
            ],
            &CONF.replace("0.4.0", "0.3.1"),
        );
        assert!(!ok);
        assert_eq!(v["code"], 1);
    }

    #[test]
    fn add_with_a_missing_netns_is_unknown_container() {
        let (v, ok) = run(
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_NETNS", "/nonexistent/netns/x"),
                ("CNI_IFNAME", "eth0"),
            ],
            CONF,
        );
        assert!(!ok);
        assert_eq!(v["code"], 3, "{v}");
    }

    #[test]
    fn add_into_our_own_netns_is_refused() {
        let (v, ok) = run(
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_NETNS", "/proc/self/ns/net"),
                ("CNI_IFNAME", "eth0"),
            ],
            CONF,
        );
        assert!(!ok);
        assert_eq!(v["code"], 8, "{v}");
    }

    #[test]
    fn stdin_read_failure_is_io() {
        let r = handle(
            |k| (k == "CNI_COMMAND").then(|| "DEL".to_string()),
            Err(io::Error::other("boom")),
        );
        // The environment is checked first (as in libcni), so this is about CNI_CONTAINERID.
        assert!(!r.success);
        let r = handle(
            |k| match k {
                "CNI_COMMAND" => Some("DEL".into()),
                "CNI_CONTAINERID" => Some("c".into()),
                "CNI_IFNAME" => Some("eth0".into()),
                _ => None,
            },
            Err(io::Error::other("boom")),
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
        assert_eq!(v["code"], 5);
    }
}
