//! The node agent's settings.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    /// The node's address other nodes and the API server reach it at.
    pub node_ip: IpAddr,
    /// containerd's CRI socket.
    pub cri_socket: PathBuf,
    /// Pod volumes, logs and other state: `<root>/pods/<uid>/…`.
    pub root_dir: PathBuf,
    /// Where the CNI network config is written for containerd to read.
    pub cni_conf_dir: PathBuf,
    /// Where ketch-cni keeps its address allocations.
    pub cni_data_dir: PathBuf,
    /// The cgroup parent of every pod (`/ketch-<node>`); pods go under `<parent>/pod<uid>`.
    pub cgroup_parent: String,
    /// HTTPS port of the kubelet API (logs, exec).
    pub port: u16,
    /// Serving certificate and key (PEM) and the CA that signs API server client certificates.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub client_ca: PathBuf,
    /// Nameservers pods with `dnsPolicy: ClusterFirst` get (empty: the host's resolv.conf).
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: String,
    pub lease_interval: Duration,
    pub status_interval: Duration,
    /// The image every pod sandbox runs.
    pub pause_image: String,
    pub labels: Vec<(String, String)>,
    /// Hard eviction thresholds and how often they are checked.
    pub eviction_hard: super::eviction::Thresholds,
    pub eviction_period: Duration,
}

impl KubeletConfig {
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root_dir.join("pods").join(uid)
    }

    /// Where the runtime writes a pod's container logs (`<ns>_<name>_<uid>`, as the kubelet).
    pub fn log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.root_dir
            .join("logs")
            .join(format!("{namespace}_{name}_{uid}"))
    }

    pub fn pod_cgroup(&self, uid: &str) -> String {
        format!("{}/pod{uid}", self.cgroup_parent)
    }
}
