//! What the runtime hands the plugin: the `CNI_*` environment and the network configuration on stdin.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnetwork::Ipv4Network;
use serde::Deserialize;

use super::error::{CniError, ErrorCode};
use super::result::Dns;

/// The spec versions we speak, oldest first. 0.3.0 is the first with the result type we produce;
/// GC and STATUS arrived with 1.1.0, which we do not claim.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// The newest version we speak: used for VERSION and for errors when the request's is unknown.
pub const LATEST_VERSION: &str = "1.0.0";

/// Linux's IFNAMSIZ minus the terminating NUL.
const MAX_IFNAME_LEN: usize = 15;

/// The value of `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "VERSION" => Self::Version,
            "GC" => Self::Gc,
            "STATUS" => Self::Status,
            _ => return None,
        })
    }
}

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`. containerd's CRI passes `IgnoreUnknown=1`,
/// `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_INFRA_CONTAINER_ID` and `K8S_POD_UID`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs(pub Vec<(String, String)>);

impl CniArgs {
    pub fn parse(s: &str) -> Result<Self, CniError> {
        let mut pairs = Vec::new();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CniError::new(
                    ErrorCode::InvalidEnvironment,
                    "invalid CNI_ARGS",
                    format!("{pair:?} is not KEY=VALUE"),
                ));
            };
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(Self(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn pod_namespace(&self) -> Option<&str> {
        self.get("K8S_POD_NAMESPACE")
    }

    pub fn pod_name(&self) -> Option<&str> {
        self.get("K8S_POD_NAME")
    }

    pub fn pod_uid(&self) -> Option<&str> {
        self.get("K8S_POD_UID")
    }
}

/// The invocation's parameters from the environment, validated for the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for VERSION, GC, STATUS).
    pub container_id: String,
    /// `CNI_NETNS`: required for ADD and CHECK, optional for DEL.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME` (empty for VERSION, GC, STATUS).
    pub ifname: String,
    pub args: CniArgs,
    /// `CNI_PATH`: unused, we delegate to no plugin.
    pub path: Option<String>,
}

impl Env {
    /// Reads the `CNI_*` variables through `var` (so tests need not touch the process environment).
    /// An empty value counts as unset, as in libcni's skel.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, CniError> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let command_str = get("CNI_COMMAND").ok_or_else(|| {
            CniError::new(
                ErrorCode::InvalidEnvironment,
                "required env variables [CNI_COMMAND] missing",
                "",
            )
        })?;
        let command = Command::parse(&command_str).ok_or_else(|| {
            CniError::new(
                ErrorCode::InvalidEnvironment,
                format!("unknown CNI_COMMAND: {command_str}"),
                "",
            )
        })?;
        let attachment = matches!(command, Command::Add | Command::Del | Command::Check);
        let needs_netns = matches!(command, Command::Add | Command::Check);

        let container_id = get("CNI_CONTAINERID").unwrap_or_default();
        let ifname = get("CNI_IFNAME").unwrap_or_default();
        let netns = get("CNI_NETNS").map(PathBuf::from);

        let mut missing = Vec::new();
        if attachment && container_id.is_empty() {
            missing.push("CNI_CONTAINERID");
        }
        if needs_netns && netns.is_none() {
            missing.push("CNI_NETNS");
        }
        if attachment && ifname.is_empty() {
            missing.push("CNI_IFNAME");
        }
        if !missing.is_empty() {
            return Err(CniError::new(
                ErrorCode::InvalidEnvironment,
                format!("required env variables [{}] missing", missing.join(",")),
                "",
            ));
        }
        if attachment {
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
        }
        let args = match get("CNI_ARGS") {
            Some(a) => CniArgs::parse(&a)?,
            None => CniArgs::default(),
        };
        Ok(Self {
            command,
            container_id,
            netns,
            ifname,
            args,
            path: get("CNI_PATH"),
        })
    }
}

/// The spec's identifier rule (container ids, network names): an alphanumeric first character,
/// then alphanumerics, `_`, `.` or `-`.
fn is_cni_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn validate_container_id(id: &str) -> Result<(), CniError> {
    if is_cni_identifier(id) {
        Ok(())
    } else {
        Err(CniError::new(
            ErrorCode::InvalidEnvironment,
            "invalid characters in CNI_CONTAINERID",
            id,
        ))
    }
}

fn validate_ifname(name: &str) -> Result<(), CniError> {
    let problem = if name.len() > MAX_IFNAME_LEN {
        Some(format!("longer than {MAX_IFNAME_LEN} bytes"))
    } else if name == "." || name == ".." {
        Some("is . or ..".to_string())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("contains / or : or whitespace".to_string())
    } else {
        None
    };
    match problem {
        Some(p) => Err(CniError::new(
            ErrorCode::InvalidEnvironment,
            format!("invalid CNI_IFNAME {name:?}"),
            p,
        )),
        None => Ok(()),
    }
}

/// Reads only `cniVersion` (the first thing checked, so later errors can carry it).
/// A missing `cniVersion` means 0.1.0 in the spec, which we do not speak.
pub fn decode_version(stdin: &[u8]) -> Result<String, CniError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        #[serde(rename = "cniVersion", default)]
        cni_version: Option<String>,
    }
    let v: VersionOnly = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            ErrorCode::DecodingFailure,
            "error decoding network config",
            e.to_string(),
        )
    })?;
    Ok(v.cni_version.unwrap_or_else(|| "0.1.0".to_string()))
}

/// Whether we speak `version`.
pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// The error for a version we do not speak, worded like libcni's.
pub fn incompatible(version: &str) -> CniError {
    CniError::new(
        ErrorCode::IncompatibleVersion,
        "incompatible CNI versions",
        format!("config is {version:?}, plugin supports {SUPPORTED_VERSIONS:?}"),
    )
}

/// Our network configuration, as ketch-node writes it (one per node):
///
/// ```json
/// {"cniVersion":"1.0.0","name":"ketch","type":"ketch-cni",
///  "podCIDR":"10.244.1.0/24","dataDir":"/var/lib/ketch/nodes/n1/ipam","mtu":1500}
/// ```
///
/// See the [module docs](super) for each field.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    /// The node's pod subnet (IPv4); addresses are handed out from it.
    pub pod_cidr: Ipv4Network,
    /// Where the IPAM state lives (one file per allocated address, a lock file, the last address).
    pub data_dir: PathBuf,
    /// MTU of both veth ends.
    pub mtu: u32,
    /// Passed through into the ADD result.
    pub dns: Dns,
    /// The previous result (DEL, CHECK; ADD when chained after another plugin).
    pub prev_result: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNetConf {
    cni_version: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    plugin_type: Option<String>,
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
    data_dir: Option<String>,
    mtu: Option<u32>,
    ipam: Option<serde_json::Value>,
    dns: Option<Dns>,
    prev_result: Option<serde_json::Value>,
}

pub const DEFAULT_MTU: u32 = 1500;

fn invalid(msg: impl Into<String>, details: impl Into<String>) -> CniError {
    CniError::new(ErrorCode::InvalidConfig, msg, details)
}

impl NetConf {
    /// Decodes and validates the configuration (version checked first, see [`decode_version`]).
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let version = decode_version(stdin)?;
        if !is_supported(&version) {
            return Err(incompatible(&version));
        }
        let raw: RawNetConf = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                ErrorCode::DecodingFailure,
                "error decoding network config",
                e.to_string(),
            )
        })?;
        let name = raw.name.unwrap_or_default();
        if name.is_empty() {
            return Err(invalid("missing network name", ""));
        }
        if !is_cni_identifier(&name) {
            return Err(invalid("invalid characters found in network name", name));
        }
        if raw.plugin_type.as_deref().is_none_or(str::is_empty) {
            return Err(invalid("missing type", ""));
        }
        if let Some(ipam) = raw.ipam {
            // We do our own IPAM; silently ignoring a delegated one would hide a mistake.
            return Err(CniError::new(
                ErrorCode::UnsupportedField,
                format!("unsupported field ipam={ipam}"),
                "ketch-cni allocates from podCIDR itself",
            ));
        }
        let pod_cidr = parse_pod_cidr(raw.pod_cidr.as_deref())?;
        let data_dir = match raw.data_dir.as_deref() {
            None | Some("") => return Err(invalid("missing dataDir", "")),
            Some(d) if !d.starts_with('/') => {
                return Err(invalid("dataDir must be an absolute path", d));
            }
            Some(d) => PathBuf::from(d),
        };
        let mtu = raw.mtu.unwrap_or(DEFAULT_MTU);
        if !(68..=65535).contains(&mtu) {
            return Err(invalid(
                format!("invalid mtu {mtu}"),
                "IPv4 needs 68 to 65535",
            ));
        }
        Ok(Self {
            cni_version: raw.cni_version.unwrap_or(version),
            name,
            pod_cidr,
            data_dir,
            mtu,
            dns: raw.dns.unwrap_or_default(),
            prev_result: raw.prev_result,
        })
    }
}

fn parse_pod_cidr(s: Option<&str>) -> Result<Ipv4Network, CniError> {
    let s = match s {
        None | Some("") => return Err(invalid("missing podCIDR", "")),
        Some(s) => s,
    };
    let net: ipnetwork::IpNetwork = s
        .parse()
        .map_err(|e| invalid(format!("invalid podCIDR {s:?}"), format!("{e}")))?;
    let ipnetwork::IpNetwork::V4(net) = net else {
        return Err(CniError::new(
            ErrorCode::UnsupportedField,
            format!("unsupported field podCIDR={s}"),
            "only IPv4 pod networks are supported",
        ));
    };
    if net.ip() != net.network() {
        return Err(invalid(
            format!("invalid podCIDR {s:?}"),
            format!(
                "host bits set; did you mean {}/{}?",
                net.network(),
                net.prefix()
            ),
        ));
    }
    // Network, .1 (the node's) and broadcast are never handed out: a /30 leaves one address.
    if net.prefix() > 30 {
        return Err(invalid(
            format!("invalid podCIDR {s:?}"),
            "too small to allocate from (need /30 or larger)",
        ));
    }
    if net.network() == Ipv4Addr::UNSPECIFIED {
        return Err(invalid(format!("invalid podCIDR {s:?}"), "0.0.0.0/n"));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const GOOD: &str = r#"{"cniVersion":"1.0.0","name":"ketch","type":"ketch-cni","podCIDR":"10.244.1.0/24","dataDir":"/var/lib/ketch/nodes/n1/ipam","mtu":1400}"#;

    fn env(vars: &[(&str, &str)]) -> Result<Env, CniError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn parses_the_documented_config() {
        let c = NetConf::parse(GOOD.as_bytes()).expect("valid");
        assert_eq!(c.cni_version, "1.0.0");
        assert_eq!(c.name, "ketch");
        assert_eq!(
            c.pod_cidr,
            "10.244.1.0/24".parse::<Ipv4Network>().expect("net")
        );
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/ketch/nodes/n1/ipam"));
        assert_eq!(c.mtu, 1400);
        assert!(c.prev_result.is_none());
    }

    #[test]
    fn mtu_defaults_and_unknown_fields_pass() {
        let c = NetConf::parse(
            br#"{"cniVersion":"0.4.0","name":"k","type":"ketch-cni","podCIDR":"10.0.0.0/30","dataDir":"/d","runtimeConfig":{},"args":{"x":1},"prevResult":{"cniVersion":"0.4.0"}}"#,
        )
        .expect("valid");
        assert_eq!(c.mtu, DEFAULT_MTU);
        assert!(c.prev_result.is_some());
    }

    fn code_of(json: &str) -> u32 {
        NetConf::parse(json.as_bytes())
            .expect_err("must fail")
            .code
            .code()
    }

    #[test]
    fn config_errors_have_the_right_codes() {
        assert_eq!(code_of("not json"), 6);
        assert_eq!(code_of(r#"["1.0.0"]"#), 6);
        assert_eq!(code_of(r#"{"name":"k"}"#), 1, "no cniVersion means 0.1.0");
        assert_eq!(code_of(&GOOD.replace("1.0.0", "1.1.0")), 1);
        assert_eq!(code_of(&GOOD.replace("\"mtu\":1400", "\"mtu\":\"big\"")), 6);
        assert_eq!(
            code_of(&GOOD.replace("\"name\":\"ketch\"", "\"name\":\"\"")),
            7
        );
        assert_eq!(
            code_of(&GOOD.replace("\"name\":\"ketch\"", "\"name\":\"a/b\"")),
            7
        );
        assert_eq!(code_of(&GOOD.replace("10.244.1.0/24", "10.244.1.7/24")), 7);
        assert_eq!(code_of(&GOOD.replace("10.244.1.0/24", "10.244.1.0/31")), 7);
        assert_eq!(code_of(&GOOD.replace("10.244.1.0/24", "banana")), 7);
        assert_eq!(code_of(&GOOD.replace("10.244.1.0/24", "fd00::/64")), 2);
        assert_eq!(code_of(&GOOD.replace("/var/lib", "var/lib")), 7);
        assert_eq!(code_of(&GOOD.replace("1400", "20")), 7);
        assert_eq!(
            code_of(&GOOD.replace("\"mtu\":1400", "\"ipam\":{\"type\":\"host-local\"}")),
            2
        );
        let e =
            NetConf::parse(GOOD.replace("10.244.1.0/24", "fd00::/64").as_bytes()).expect_err("v6");
        assert!(e.msg.contains("podCIDR=fd00::/64"), "{e}");
    }

    #[test]
    fn env_for_add_needs_id_netns_ifname() {
        let e = env(&[("CNI_COMMAND", "ADD")]).expect_err("missing");
        assert_eq!(e.code, ErrorCode::InvalidEnvironment);
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing"
        );
        let ok = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc123"),
            ("CNI_NETNS", "/var/run/netns/cni-1"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u-1",
            ),
            ("CNI_PATH", "/opt/cni/bin"),
        ])
        .expect("valid");
        assert_eq!(ok.command, Command::Add);
        assert_eq!(ok.netns, Some(PathBuf::from("/var/run/netns/cni-1")));
        assert_eq!(ok.args.pod_namespace(), Some("default"));
        assert_eq!(ok.args.pod_name(), Some("web-0"));
        assert_eq!(ok.args.pod_uid(), Some("u-1"));
    }

    #[test]
    fn env_for_del_does_not_need_netns_and_version_needs_nothing() {
        let del = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ""),
        ])
        .expect("valid");
        assert_eq!(del.netns, None);
        assert_eq!(
            env(&[("CNI_COMMAND", "VERSION")]).expect("ok").command,
            Command::Version
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let base = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
        ];
        let with = |k: &str, v: &str| {
            let mut vars: Vec<(&str, &str)> =
                base.iter().filter(|(bk, _)| *bk != k).copied().collect();
            let (k, v) = (k.to_string(), v.to_string());
            let owned: Vec<(String, String)> = vars
                .drain(..)
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .chain([(k, v)])
                .collect();
            Env::from_vars(|name| {
                owned
                    .iter()
                    .find(|(a, _)| a == name)
                    .map(|(_, b)| b.clone())
            })
        };
        let e = with("CNI_COMMAND", "FROB").expect_err("bad command");
        assert_eq!(
            (e.code.code(), e.msg.as_str()),
            (4, "unknown CNI_COMMAND: FROB")
        );
        for bad in ["-abc", "a b", "a/b"] {
            let e = with("CNI_CONTAINERID", bad).expect_err("bad id");
            assert_eq!(e.code.code(), 4);
            assert!(e.msg.contains("CNI_CONTAINERID"));
        }
        for bad in ["abcdefghijklmnop", "..", "a:b", "a b"] {
            let e = with("CNI_IFNAME", bad).expect_err("bad ifname");
            assert_eq!(e.code.code(), 4);
            assert!(e.msg.contains("CNI_IFNAME"));
        }
        let e = with("CNI_ARGS", "K8S_POD_NAME").expect_err("bad args");
        assert!(e.msg.contains("CNI_ARGS"));
        let e = env(&[]).expect_err("no command");
        assert_eq!(e.msg, "required env variables [CNI_COMMAND] missing");
    }
}
