//! Result types: the ADD success result (also read back as `prevResult`) and the VERSION result.

use serde::{Deserialize, Serialize};

use super::config::{LATEST_VERSION, SUPPORTED_VERSIONS};

/// The ADD success result. The same shape is 0.3.0 through 1.0.0 except for `ips[].version`,
/// which 0.3.x/0.4.0 require and 1.0.0 dropped ([`CniResult::for_version`] sets it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The netns path for interfaces inside the container; empty for host interfaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// "4" or "6"; only in results before 1.0.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// CIDR notation, e.g. `10.244.1.2/32`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl CniResult {
    /// Shapes the result for the request's `cniVersion`.
    pub fn for_version(mut self, version: &str) -> Self {
        let pre_1 = version.starts_with("0.");
        for ip in &mut self.ips {
            ip.version = if pre_1 {
                Some(if ip.address.contains(':') { "6" } else { "4" }.to_string())
            } else {
                None
            };
        }
        self.cni_version = version.to_string();
        self
    }

    /// Appends our attachment to a chained plugin's `prevResult`, renumbering our interface
    /// indexes; DNS settings of `prev` win where it has some.
    pub fn appended_to(self, prev: CniResult) -> Self {
        let offset = prev.interfaces.len();
        let mut out = prev;
        out.interfaces.extend(self.interfaces);
        out.ips.extend(self.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        out.routes.extend(self.routes);
        if out.dns == Dns::default() {
            out.dns = self.dns;
        }
        out.cni_version = self.cni_version;
        out
    }

    pub fn to_json(&self) -> String {
        // Strings, numbers and vectors of them always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The VERSION result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionResult {
    pub cni_version: String,
    pub supported_versions: Vec<String>,
}

impl VersionResult {
    /// Echoes the caller's `cniVersion` when we speak it (as the spec asks), else our latest.
    pub fn new(requested: Option<&str>) -> Self {
        let cni_version = requested
            .filter(|v| SUPPORTED_VERSIONS.contains(v))
            .unwrap_or(LATEST_VERSION)
            .to_string();
        Self {
            cni_version,
            supported_versions: SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours() -> CniResult {
        CniResult {
            cni_version: "1.0.0".into(),
            interfaces: vec![
                Interface {
                    name: "lxc0123456789a".into(),
                    mac: "aa:bb:cc:dd:ee:01".into(),
                    sandbox: String::new(),
                },
                Interface {
                    name: "eth0".into(),
                    mac: "aa:bb:cc:dd:ee:02".into(),
                    sandbox: "/var/run/netns/cni-1".into(),
                },
            ],
            ips: vec![IpConfig {
                version: None,
                address: "10.244.1.2/32".into(),
                gateway: Some("169.254.1.1".into()),
                interface: Some(1),
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".into(),
                gw: Some("169.254.1.1".into()),
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn result_json_is_the_spec_shape() {
        let v: serde_json::Value = serde_json::from_str(&ours().to_json()).expect("json");
        assert_eq!(
            v,
            json!({
                "cniVersion": "1.0.0",
                "interfaces": [
                    {"name": "lxc0123456789a", "mac": "aa:bb:cc:dd:ee:01"},
                    {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/var/run/netns/cni-1"}
                ],
                "ips": [{"address": "10.244.1.2/32", "gateway": "169.254.1.1", "interface": 1}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}],
                "dns": {}
            })
        );
    }

    #[test]
    fn old_versions_carry_ip_version() {
        let r = ours().for_version("0.4.0");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["ips"][0]["version"], "4");
        let back = r.for_version("1.0.0");
        assert_eq!(back.ips[0].version, None);
    }

    #[test]
    fn result_round_trips_and_reads_foreign_fields() {
        let r = ours();
        let back: CniResult = serde_json::from_str(&r.to_json()).expect("parse");
        assert_eq!(back, r);
        // A 1.1.0-style prevResult with fields we do not model still parses.
        let foreign: CniResult = serde_json::from_value(json!({
            "cniVersion": "1.1.0",
            "interfaces": [{"name": "lo", "mtu": 65536, "sandbox": "/x"}],
            "ips": [{"address": "127.0.0.1/8", "interface": 0}],
        }))
        .expect("parse");
        assert_eq!(foreign.interfaces[0].name, "lo");
    }

    #[test]
    fn appending_renumbers_interfaces() {
        let prev = CniResult {
            cni_version: "1.0.0".into(),
            interfaces: vec![Interface {
                name: "lo".into(),
                mac: String::new(),
                sandbox: "/x".into(),
            }],
            ips: vec![],
            routes: vec![],
            dns: Dns {
                nameservers: vec!["10.96.0.10".into()],
                ..Dns::default()
            },
        };
        let merged = ours().appended_to(prev);
        assert_eq!(merged.interfaces.len(), 3);
        assert_eq!(merged.ips[0].interface, Some(2));
        assert_eq!(merged.dns.nameservers, vec!["10.96.0.10".to_string()]);
    }

    #[test]
    fn version_result() {
        assert_eq!(
            VersionResult::new(None).to_json(),
            r#"{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}"#
        );
        assert_eq!(VersionResult::new(Some("0.4.0")).cni_version, "0.4.0");
        assert_eq!(VersionResult::new(Some("9.9.9")).cni_version, "1.0.0");
    }
}
