//! Node-pressure eviction, as the kubelet's eviction manager does it: every monitoring period the
//! node's memory signal is compared with the hard threshold (`--eviction-hard`, kubelet syntax);
//! under pressure one pod is evicted per period, chosen by QoS class (BestEffort, then
//! Burstable, then Guaranteed), then by whether it uses more memory than it requested, its
//! priority and how far above its request it is.
//!
//! The node's memory is its cgroup's: `memory.available` is the limit of the pods' cgroup parent
//! (or the host's MemTotal without one) minus its working set (usage minus inactive file pages),
//! the same formula the kubelet applies to its root cgroup. A local node is a namespace on a
//! shared machine, so its own cgroup, not the machine, is what it has.

use super::config::KubeletConfig;
use super::pods::Registry;
use super::worker::Shared;
use k8s_openapi::api::core::v1::Pod;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum EvictionError {
    #[error("eviction threshold {0:?}: expected <signal><<quantity or percentage>")]
    Syntax(String),
    #[error(
        "eviction threshold {0:?}: only hard thresholds on memory.available and nodefs.available are supported"
    )]
    Signal(String),
    #[error("eviction threshold {0:?}: bad quantity")]
    Quantity(String),
}

/// A threshold's amount: absolute bytes or a share of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Bytes(u64),
    Percent(f64),
}

impl Amount {
    pub fn bytes_of(self, capacity: u64) -> u64 {
        match self {
            Amount::Bytes(b) => b,
            Amount::Percent(p) => (capacity as f64 * p / 100.0) as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub memory_available: Option<Amount>,
    pub nodefs_available: Option<Amount>,
}

impl Default for Thresholds {
    /// The kubelet's defaults on Linux (imagefs is nodefs here).
    fn default() -> Self {
        Thresholds {
            memory_available: Some(Amount::Bytes(100 << 20)),
            nodefs_available: Some(Amount::Percent(10.0)),
        }
    }
}

fn quantity(s: &str) -> Option<u64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => (1u64 << 20) as f64,
        "Gi" => (1u64 << 30) as f64,
        "Ti" => (1u64 << 40) as f64,
        _ => return None,
    };
    (n >= 0.0).then_some((n * mult) as u64)
}

/// Parses `memory.available<100Mi,nodefs.available<10%` (an empty string: no thresholds).
pub fn parse_thresholds(s: &str) -> Result<Thresholds, EvictionError> {
    let mut t = Thresholds {
        memory_available: None,
        nodefs_available: None,
    };
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (signal, value) = item
            .split_once('<')
            .ok_or_else(|| EvictionError::Syntax(item.into()))?;
        let amount = match value.strip_suffix('%') {
            Some(p) => p
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .map(Amount::Percent),
            None => quantity(value).map(Amount::Bytes),
        }
        .ok_or_else(|| EvictionError::Quantity(item.into()))?;
        match signal.trim() {
            "memory.available" => t.memory_available = Some(amount),
            "nodefs.available" | "imagefs.available" => t.nodefs_available = Some(amount),
            _ => return Err(EvictionError::Signal(item.into())),
        }
    }
    Ok(t)
}

/// The memory controller's directory of a cgroup (v1 layout; v2 when that is all there is).
fn memory_cgroup(rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    let v1 = PathBuf::from("/sys/fs/cgroup/memory");
    if v1.is_dir() {
        v1.join(rel)
    } else {
        PathBuf::from("/sys/fs/cgroup").join(rel)
    }
}

fn read_u64(p: PathBuf) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(dir: &std::path::Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Usage minus inactive file pages, as the kubelet computes a cgroup's working set.
pub fn working_set(rel: &str) -> Option<u64> {
    let dir = memory_cgroup(rel);
    let (usage, inactive) = match read_u64(dir.join("memory.usage_in_bytes")) {
        Some(u) => (u, stat_field(&dir, "total_inactive_file").unwrap_or(0)),
        None => (
            read_u64(dir.join("memory.current"))?,
            stat_field(&dir, "inactive_file").unwrap_or(0),
        ),
    };
    Some(usage.saturating_sub(inactive))
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

/// The node's memory: its pods' cgroup parent's limit when it has one below the host's.
pub fn memory_capacity(cfg: &KubeletConfig) -> u64 {
    let host = host_memory();
    let dir = memory_cgroup(&cfg.cgroup_parent);
    let limit = read_u64(dir.join("memory.limit_in_bytes"))
        .or_else(|| read_u64(dir.join("memory.max")))
        .unwrap_or(u64::MAX);
    host.min(limit)
}

/// `memory.available` in bytes.
pub fn memory_available(cfg: &KubeletConfig) -> u64 {
    let capacity = memory_capacity(cfg);
    if capacity < host_memory() {
        capacity.saturating_sub(working_set(&cfg.cgroup_parent).unwrap_or(0))
    } else {
        // No limit of its own: the host's view, as the kubelet on a real machine has it.
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("MemAvailable:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .map(|kib| kib * 1024)
            .unwrap_or(capacity)
    }
}

pub fn memory_pressure(cfg: &KubeletConfig, t: &Thresholds) -> Option<(u64, u64)> {
    let threshold = t.memory_available?.bytes_of(memory_capacity(cfg));
    let available = memory_available(cfg);
    (available < threshold).then_some((available, threshold))
}

/// One pod as the ranking sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub uid: String,
    pub qos: String,
    pub priority: i32,
    pub usage: u64,
    pub request: u64,
}

fn qos_rank(q: &str) -> u8 {
    match q {
        "BestEffort" => 0,
        "Burstable" => 1,
        _ => 2,
    }
}

/// Orders candidates so that the first is evicted first.
pub fn rank(c: &mut [Candidate]) {
    c.sort_by(|a, b| {
        qos_rank(&a.qos)
            .cmp(&qos_rank(&b.qos))
            .then_with(|| (b.usage > b.request).cmp(&(a.usage > a.request)))
            .then_with(|| a.priority.cmp(&b.priority))
            .then_with(|| {
                let over = |x: &Candidate| x.usage as i128 - x.request as i128;
                over(b).cmp(&over(a))
            })
    });
}

fn memory_request(pod: &Pod) -> u64 {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get("memory"))
                .filter_map(|q| quantity(&q.0))
                .sum()
        })
        .unwrap_or(0)
}

fn active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

fn human(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// Runs until `stop`: measures, and under pressure marks one pod for eviction per period.
pub async fn run(
    shared: Arc<Shared>,
    registry: Registry,
    pressure: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let cfg = shared.cfg.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.eviction_period) => {}
            _ = stop.cancelled() => return,
        }
        let measured = memory_pressure(&cfg, &cfg.eviction_hard);
        pressure
            .send_if_modified(|p| std::mem::replace(p, measured.is_some()) != measured.is_some());
        let Some((available, threshold)) = measured else {
            continue;
        };
        let pods: Vec<Arc<Pod>> = registry.all().into_iter().filter(|p| active(p)).collect();
        let already = shared.evictions.lock().map(|e| e.len()).unwrap_or(0);
        let mut candidates: Vec<Candidate> = pods
            .iter()
            .filter_map(|p| {
                let uid = p.metadata.uid.clone()?;
                Some(Candidate {
                    usage: working_set(&cfg.pod_cgroup(&uid)).unwrap_or(0),
                    qos: p
                        .status
                        .as_ref()
                        .and_then(|s| s.qos_class.clone())
                        .unwrap_or_else(|| "BestEffort".into()),
                    priority: p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
                    request: memory_request(p),
                    uid,
                })
            })
            .filter(|c| {
                shared
                    .evictions
                    .lock()
                    .map(|e| !e.contains_key(&c.uid))
                    .unwrap_or(false)
            })
            .collect();
        rank(&mut candidates);
        let Some(victim) = candidates.first() else {
            tracing::warn!(
                available,
                threshold,
                already,
                "memory pressure and no pod left to evict"
            );
            continue;
        };
        let message = format!(
            "The node was low on resource: memory. Threshold quantity: {}, available: {}. \
             Pod was using {}, request is {}.",
            human(threshold),
            human(available),
            human(victim.usage),
            human(victim.request)
        );
        tracing::info!(pod = %victim.uid, qos = %victim.qos, usage = victim.usage, available, threshold, "evicting a pod under memory pressure");
        if let Ok(mut e) = shared.evictions.lock() {
            e.insert(victim.uid.clone(), message);
        }
        shared.evicted.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_like_the_kubelet_flag() {
        let t = parse_thresholds("memory.available<100Mi, nodefs.available<10%").expect("parse");
        assert_eq!(t.memory_available, Some(Amount::Bytes(100 << 20)));
        assert_eq!(t.nodefs_available, Some(Amount::Percent(10.0)));
        assert_eq!(t, Thresholds::default());
        assert_eq!(
            parse_thresholds("memory.available<1.5Gi")
                .expect("parse")
                .memory_available,
            Some(Amount::Bytes(3 << 29))
        );
        assert!(
            parse_thresholds("")
                .expect("empty")
                .memory_available
                .is_none()
        );
        assert!(matches!(
            parse_thresholds("memory.available=1Gi"),
            Err(EvictionError::Syntax(_))
        ));
        assert!(matches!(
            parse_thresholds("pid.available<10"),
            Err(EvictionError::Signal(_))
        ));
        assert!(matches!(
            parse_thresholds("memory.available<lots"),
            Err(EvictionError::Quantity(_))
        ));
        assert!(matches!(
            parse_thresholds("memory.available<120%"),
            Err(EvictionError::Quantity(_))
        ));
        assert_eq!(Amount::Percent(10.0).bytes_of(1000), 100);
    }

    fn c(uid: &str, qos: &str, priority: i32, usage: u64, request: u64) -> Candidate {
        Candidate {
            uid: uid.into(),
            qos: qos.into(),
            priority,
            usage,
            request,
        }
    }

    #[test]
    fn best_effort_goes_first_then_burstable_over_its_request_then_guaranteed() {
        let mut v = vec![
            c("guaranteed-hog", "Guaranteed", 0, 900, 1000),
            c("burstable-within", "Burstable", 0, 10, 100),
            c("burstable-hog", "Burstable", 0, 500, 100),
            c("besteffort-small", "BestEffort", 0, 1, 0),
            c("besteffort-big", "BestEffort", 0, 50, 0),
            c("burstable-hog-important", "Burstable", 1000, 800, 100),
        ];
        rank(&mut v);
        let order: Vec<&str> = v.iter().map(|c| c.uid.as_str()).collect();
        assert_eq!(
            order,
            [
                "besteffort-big",
                "besteffort-small",
                "burstable-hog",
                "burstable-hog-important",
                "burstable-within",
                "guaranteed-hog"
            ]
        );
    }
}
