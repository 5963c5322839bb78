//! Pod spec → CRI configs: the sandbox (DNS, cgroup parent, namespaces, ports) and containers
//! (command, env, mounts, resources to cgroups, security context), with the labels and
//! annotations that let a restarted agent recognise what it made.

use super::config::KubeletConfig;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
/// Marks a container as an init container (value "true").
pub const INIT_CONTAINER: &str = "io.ketch.container.init";

fn meta(pod: &Pod) -> (String, String, String) {
    (
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// A stable hash of a container's spec: a changed hash means the container must be replaced.
pub fn container_hash(c: &Container) -> String {
    let text = serde_json::to_string(c).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:x}", h.finish())
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The sandbox of attempt `attempt` of `pod`.
pub fn sandbox_config(cfg: &KubeletConfig, pod: &Pod, attempt: u32) -> cri::PodSandboxConfig {
    let (name, namespace, uid) = meta(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let mut labels: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.insert(POD_NAME.into(), name.clone());
    labels.insert(POD_NAMESPACE.into(), namespace.clone());
    labels.insert(POD_UID.into(), uid.clone());
    let mut annotations: HashMap<String, String> = pod
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    annotations.insert(
        GRACE_PERIOD.into(),
        spec.termination_grace_period_seconds
            .unwrap_or(30)
            .to_string(),
    );
    let hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
    let hostname = if host_network(pod) {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or(hostname)
    } else {
        hostname
    };
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| cri::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => cri::Protocol::Udp as i32,
                Some("SCTP") => cri::Protocol::Sctp as i32,
                _ => cri::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let network = if host_network(pod) {
        cri::NamespaceMode::Node
    } else {
        cri::NamespaceMode::Pod
    };
    let sysctls: HashMap<String, String> = spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_ref())
        .map(|s| {
            s.iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name,
            uid: uid.clone(),
            namespace: namespace.clone(),
            attempt,
        }),
        hostname,
        log_directory: cfg
            .log_dir(
                &namespace,
                &pod.metadata.name.clone().unwrap_or_default(),
                &uid,
            )
            .display()
            .to_string(),
        dns_config: dns_config(cfg, pod),
        port_mappings,
        labels,
        annotations,
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cfg.pod_cgroup(&uid),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: network as i32,
                    pid: if spec.share_process_namespace == Some(true) {
                        cri::NamespaceMode::Pod as i32
                    } else {
                        cri::NamespaceMode::Container as i32
                    },
                    ipc: if spec.host_ipc == Some(true) {
                        cri::NamespaceMode::Node as i32
                    } else {
                        cri::NamespaceMode::Pod as i32
                    },
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

/// resolv.conf of the pod, per its dnsPolicy.
fn dns_config(cfg: &KubeletConfig, pod: &Pod) -> Option<cri::DnsConfig> {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network(pod),
        _ => false,
    };
    let mut out = if policy == "None" {
        cri::DnsConfig::default()
    } else if cluster_first && !cfg.cluster_dns.is_empty() {
        let d = &cfg.cluster_domain;
        cri::DnsConfig {
            servers: cfg.cluster_dns.iter().map(|s| s.to_string()).collect(),
            searches: vec![
                format!("{namespace}.svc.{d}"),
                format!("svc.{d}"),
                d.clone(),
            ],
            options: vec!["ndots:5".into()],
        }
    } else {
        host_resolv_conf()
    };
    if let Some(extra) = spec.dns_config {
        out.servers.extend(extra.nameservers.unwrap_or_default());
        out.searches.extend(extra.searches.unwrap_or_default());
        for o in extra.options.unwrap_or_default() {
            out.options.push(match o.value {
                Some(v) => format!("{}:{v}", o.name.unwrap_or_default()),
                None => o.name.unwrap_or_default(),
            });
        }
    }
    Some(out)
}

fn host_resolv_conf() -> cri::DnsConfig {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut c = cri::DnsConfig::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => c.servers.extend(f.next().map(String::from)),
            Some("search") => c.searches.extend(f.map(String::from)),
            Some("options") => c.options.extend(f.map(String::from)),
            _ => {}
        }
    }
    c
}

/// CPU shares for a request, as the kubelet computes them (milli-CPU * 1024 / 1000, at least 2).
pub fn cpu_shares(request_milli: i64) -> i64 {
    if request_milli <= 0 {
        2
    } else {
        (request_milli * 1024 / 1000).max(2)
    }
}

/// The OOM score adjustment by QoS class.
pub fn oom_score_adj(qos: &str, memory_request: i64, memory_capacity: i64) -> i64 {
    match qos {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            if memory_capacity <= 0 {
                return 999;
            }
            (1000 - 1000 * memory_request / memory_capacity).clamp(2, 999)
        }
    }
}

/// Everything a container config needs that is not in the spec itself.
pub struct ContainerContext<'a> {
    pub attempt: u32,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<cri::Mount>,
    pub qos: &'a str,
    pub memory_capacity: i64,
    pub init: bool,
}

pub fn container_config(
    pod: &Pod,
    c: &Container,
    ctx: ContainerContext<'_>,
) -> cri::ContainerConfig {
    let (pod_name, namespace, uid) = meta(pod);
    let requests = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default();
    let limits = c
        .resources
        .as_ref()
        .and_then(|r| r.limits.clone())
        .unwrap_or_default();
    let q = |m: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
             k: &str,
             milli: bool| { m.get(k).and_then(|q| quantity(&q.0, milli)) };
    let cpu_req = q(&requests, "cpu", true)
        .or(q(&limits, "cpu", true))
        .unwrap_or(0);
    let cpu_lim = q(&limits, "cpu", true).unwrap_or(0);
    let mem_req = q(&requests, "memory", false)
        .or(q(&limits, "memory", false))
        .unwrap_or(0);
    let mem_lim = q(&limits, "memory", false).unwrap_or(0);
    let period = 100_000;
    let sc = c.security_context.clone().unwrap_or_default();
    let pod_sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let mut labels = HashMap::from([
        (CONTAINER_NAME.to_string(), c.name.clone()),
        (POD_NAME.to_string(), pod_name.clone()),
        (POD_NAMESPACE.to_string(), namespace.clone()),
        (POD_UID.to_string(), uid.clone()),
    ]);
    if ctx.init {
        labels.insert(INIT_CONTAINER.to_string(), "true".into());
    }
    let annotations = HashMap::from([
        (CONTAINER_HASH.to_string(), container_hash(c)),
        (RESTART_COUNT.to_string(), ctx.attempt.to_string()),
        (
            TERMINATION_MESSAGE_PATH.to_string(),
            c.termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
    ]);
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt: ctx.attempt,
        }),
        image: Some(cri::ImageSpec {
            image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: ctx
            .env
            .into_iter()
            .map(|(key, value)| cri::KeyValue { key, value })
            .collect(),
        mounts: ctx.mounts,
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, ctx.attempt),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                cpu_period: if cpu_lim > 0 { period } else { 0 },
                cpu_quota: if cpu_lim > 0 {
                    (cpu_lim * period / 1000).max(1000)
                } else {
                    0
                },
                cpu_shares: cpu_shares(cpu_req),
                memory_limit_in_bytes: mem_lim,
                oom_score_adj: oom_score_adj(ctx.qos, mem_req, ctx.memory_capacity),
                ..Default::default()
            }),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities: Some(cri::Capability {
                    add_capabilities: caps.add.unwrap_or_default(),
                    drop_capabilities: caps.drop.unwrap_or_default(),
                    ..Default::default()
                }),
                privileged: sc.privileged.unwrap_or(false),
                namespace_options: Some(cri::NamespaceOption {
                    network: if host_network(pod) {
                        cri::NamespaceMode::Node as i32
                    } else {
                        cri::NamespaceMode::Pod as i32
                    },
                    pid: if pod.spec.as_ref().and_then(|s| s.share_process_namespace) == Some(true)
                    {
                        cri::NamespaceMode::Pod as i32
                    } else {
                        cri::NamespaceMode::Container as i32
                    },
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                run_as_user: sc
                    .run_as_user
                    .or(pod_sc.run_as_user)
                    .map(|value| cri::Int64Value { value }),
                run_as_group: sc
                    .run_as_group
                    .or(pod_sc.run_as_group)
                    .map(|value| cri::Int64Value { value }),
                readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
                supplemental_groups: pod_sc.supplemental_groups.clone().unwrap_or_default(),
                no_new_privs: sc.allow_privilege_escalation == Some(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// A resource quantity as milli-units (CPU) or units (memory), rounded up.
pub fn quantity(s: &str, milli: bool) -> Option<i64> {
    let s = s.trim();
    let (num, mult): (&str, f64) = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ]
    .iter()
    .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, *m)))
    .unwrap_or((s, 1.0));
    let v: f64 = num.parse().ok()?;
    let v = v * mult * if milli { 1000.0 } else { 1.0 };
    Some(v.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_cgroup_values() {
        assert_eq!(quantity("250m", true), Some(250));
        assert_eq!(quantity("1.5", true), Some(1500));
        assert_eq!(quantity("64Mi", false), Some(64 * 1024 * 1024));
        assert_eq!(quantity("1G", false), Some(1_000_000_000));
        assert_eq!(cpu_shares(250), 256);
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(oom_score_adj("Guaranteed", 0, 0), -997);
        assert_eq!(oom_score_adj("BestEffort", 0, 0), 1000);
        assert_eq!(oom_score_adj("Burstable", 1 << 30, 4 << 30), 750);
    }

    #[test]
    fn container_configs_carry_what_adoption_needs() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "image": "localhost/busybox:latest", "command": ["httpd"],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]}
        }))
        .expect("pod");
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        let cfg = container_config(
            &pod,
            c,
            ContainerContext {
                attempt: 2,
                env: vec![],
                mounts: vec![],
                qos: "Guaranteed",
                memory_capacity: 0,
                init: false,
            },
        );
        assert_eq!(cfg.labels[POD_UID], "u1");
        assert_eq!(cfg.annotations[RESTART_COUNT], "2");
        assert_eq!(cfg.log_path, "c/2.log");
        let r = cfg.linux.expect("linux").resources.expect("resources");
        assert_eq!(
            (r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes),
            (50_000, 100_000, 64 * 1024 * 1024)
        );
    }
}
