//! The Node object: registration with capacity, addresses and system info; the Lease renewed
//! every few seconds; and the status conditions (Ready and the pressure conditions).

use super::config::KubeletConfig;
use super::cri::Cri;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Bytes (total, available) of the filesystem holding `path`.
fn disk(path: &Path) -> Option<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let block = s.fragment_size() as u64;
    Some((
        s.blocks() as u64 * block,
        s.blocks_available() as u64 * block,
    ))
}

/// What the node offers: CPUs and memory of the host (or its cgroup limit), pods, disk.
pub fn capacity(cfg: &KubeletConfig) -> BTreeMap<String, String> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib = super::eviction::memory_capacity(cfg) / 1024;
    let (disk_total, _) = disk(&cfg.root_dir).unwrap_or((0, 0));
    BTreeMap::from([
        ("cpu".to_string(), cpus.to_string()),
        ("memory".to_string(), format!("{mem_kib}Ki")),
        ("pods".to_string(), "110".to_string()),
        ("ephemeral-storage".to_string(), disk_total.to_string()),
    ])
}

/// Capacity minus what the node keeps for itself (the eviction threshold's memory).
pub fn allocatable(cfg: &KubeletConfig) -> BTreeMap<String, String> {
    let mut a = capacity(cfg);
    let total = super::eviction::memory_capacity(cfg);
    let reserved = cfg
        .eviction_hard
        .memory_available
        .map(|t| t.bytes_of(total))
        .unwrap_or(0);
    a.insert(
        "memory".into(),
        format!("{}Ki", total.saturating_sub(reserved) / 1024),
    );
    a
}

/// Memory, disk and PID pressure, as the kubelet's eviction manager judges them: the hard
/// thresholds (default memory.available < 100Mi, nodefs.available < 10%) and pids > 90% of
/// pid_max.
pub fn pressures(cfg: &KubeletConfig) -> [(&'static str, bool, &'static str); 3] {
    let mem = super::eviction::memory_pressure(cfg, &cfg.eviction_hard).is_some();
    let disk = cfg.eviction_hard.nodefs_available.is_some_and(|t| {
        disk(&cfg.root_dir).is_some_and(|(total, avail)| total > 0 && avail < t.bytes_of(total))
    });
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4194304);
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .chars()
                        .all(|c| c.is_ascii_digit())
                })
                .count() as u64
        })
        .unwrap_or(0);
    let pid = procs * 10 > pid_max * 9;
    [
        (
            "MemoryPressure",
            mem,
            if mem {
                "KubeletHasInsufficientMemory"
            } else {
                "KubeletHasSufficientMemory"
            },
        ),
        (
            "DiskPressure",
            disk,
            if disk {
                "KubeletHasDiskPressure"
            } else {
                "KubeletHasNoDiskPressure"
            },
        ),
        (
            "PIDPressure",
            pid,
            if pid {
                "KubeletHasInsufficientPID"
            } else {
                "KubeletHasSufficientPID"
            },
        ),
    ]
}

fn node_info(cri_version: &str) -> Value {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let os_image = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_else(|| "Linux".into());
    json!({
        "machineID": read("/etc/machine-id"),
        "systemUUID": read("/sys/class/dmi/id/product_uuid"),
        "bootID": read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": read("/proc/sys/kernel/osrelease"),
        "osImage": os_image,
        "containerRuntimeVersion": cri_version,
        "kubeletVersion": "v1.37.0-ketch",
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": "amd64",
        "swap": {},
    })
}

fn conditions(
    cfg: &KubeletConfig,
    ready: Result<(), String>,
    previous: Option<&Node>,
) -> Vec<Value> {
    let now = now();
    let prior = |ty: &str| {
        previous
            .and_then(|n| n.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == ty))
            .map(|c| {
                (
                    c.status.clone(),
                    c.last_transition_time.as_ref().map(|t| t.0.to_string()),
                )
            })
    };
    let cond = |ty: &str, status: &str, reason: &str, message: &str| {
        let since = match prior(ty) {
            Some((s, Some(t))) if s == status => t,
            _ => now.clone(),
        };
        json!({"type": ty, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    let mut out: Vec<Value> = pressures(cfg)
        .iter()
        .map(|(ty, on, reason)| {
            let msg = match (*ty, *on) {
                ("MemoryPressure", false) => "kubelet has sufficient memory available",
                ("MemoryPressure", true) => "kubelet has insufficient memory available",
                ("DiskPressure", false) => "kubelet has no disk pressure",
                ("DiskPressure", true) => "kubelet has disk pressure",
                (_, false) => "kubelet has sufficient PID available",
                (_, true) => "kubelet has insufficient PID available",
            };
            cond(ty, if *on { "True" } else { "False" }, reason, msg)
        })
        .collect();
    out.push(match ready {
        Ok(()) => cond(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        Err(why) => cond("Ready", "False", "KubeletNotReady", &why),
    });
    out
}

/// Creates the Node, or brings an existing one's status up to date.
pub async fn register(
    client: &kube::Client,
    cfg: &KubeletConfig,
    cri: &Cri,
) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let version = cri
        .version()
        .await
        .map(|v| format!("{}://{}", v.runtime_name, v.runtime_version))
        .unwrap_or_default();
    let mut labels = json!({
        "kubernetes.io/hostname": cfg.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    });
    for (k, v) in &cfg.labels {
        labels[k] = json!(v);
    }
    let status = json!({
        "capacity": capacity(cfg),
        "allocatable": allocatable(cfg),
        "addresses": [{"type": "InternalIP", "address": cfg.node_ip.to_string()}, {"type": "Hostname", "address": cfg.node_name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": node_info(&version),
        "conditions": conditions(cfg, Err("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized".into()), None),
    });
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": cfg.node_name, "labels": labels},
        "spec": {},
        "status": status.clone(),
    }))
    .map_err(kube::Error::SerdeError)?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(n) => return Ok(n),
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e),
    }
    // Already registered (a restart): refresh labels and status, keep the rest.
    nodes
        .patch(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": labels}})),
        )
        .await?;
    let existing = nodes.get(&cfg.node_name).await?;
    let mut status = status;
    status["conditions"] = json!(conditions(
        cfg,
        Err("kubelet is starting".into()),
        Some(&existing)
    ));
    nodes
        .patch_status(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
}

/// Writes the current conditions (heartbeat).
pub async fn update_status(
    client: &kube::Client,
    cfg: &KubeletConfig,
    ready: Result<(), String>,
) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let current = nodes.get(&cfg.node_name).await?;
    let patch = json!({"status": {"conditions": conditions(cfg, ready, Some(&current)), "allocatable": allocatable(cfg)}});
    nodes
        .patch_status(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
}

/// Renews (or creates) the node's Lease in kube-node-lease.
pub async fn renew_lease(
    client: &kube::Client,
    cfg: &KubeletConfig,
    node_uid: &str,
) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": cfg.node_name, "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": cfg.node_name, "uid": node_uid}]},
        "spec": {"holderIdentity": cfg.node_name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
    });
    match leases
        .patch(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(&lease),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let l: Lease = serde_json::from_value(lease).map_err(kube::Error::SerdeError)?;
            leases.create(&PostParams::default(), &l).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_reads_the_host() {
        let cfg = KubeletConfig {
            node_name: "n".into(),
            node_ip: "10.0.0.1".parse().expect("ip"),
            cri_socket: "/nonexistent".into(),
            root_dir: std::env::temp_dir(),
            cni_conf_dir: "/nonexistent".into(),
            cni_data_dir: "/nonexistent".into(),
            cgroup_parent: "/ketch-n".into(),
            port: 10250,
            tls_cert: "/nonexistent".into(),
            tls_key: "/nonexistent".into(),
            client_ca: "/nonexistent".into(),
            cluster_dns: vec![],
            cluster_domain: "cluster.local".into(),
            lease_interval: std::time::Duration::from_secs(10),
            status_interval: std::time::Duration::from_secs(10),
            pause_image: "localhost/pause:3.10".into(),
            labels: vec![],
            eviction_hard: Default::default(),
            eviction_period: std::time::Duration::from_secs(10),
        };
        let c = capacity(&cfg);
        assert!(c["cpu"].parse::<u32>().expect("cpus") >= 1);
        assert!(c["memory"].ends_with("Ki"));
        let conds = conditions(&cfg, Ok(()), None);
        assert_eq!(
            conds.last().map(|c| c["type"].clone()),
            Some(json!("Ready"))
        );
        assert_eq!(conds.len(), 4);
    }
}
