//! Liveness, readiness and startup probes (exec, httpGet, tcpSocket), each running on its own
//! timer per container, reporting results the pod worker acts on.

use super::cri::Cri;
use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

/// The latest verdict of one probe: passing or not, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub message: String,
}

/// Results of all probes of one pod, keyed by (container id, kind).
#[derive(Clone, Default)]
pub struct Results {
    inner: Arc<Mutex<HashMap<(String, Kind), Verdict>>>,
}

impl Results {
    pub fn get(&self, container_id: &str, kind: Kind) -> Option<Verdict> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(container_id.to_string(), kind))
            .cloned()
    }

    fn set(&self, container_id: &str, kind: Kind, v: Verdict) -> bool {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (container_id.to_string(), kind);
        let changed = m.get(&key) != Some(&v);
        m.insert(key, v);
        changed
    }

    pub fn forget(&self, container_id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, _), _| c != container_id);
    }
}

/// Runs one check of a probe against a container.
pub async fn check(
    probe: &Probe,
    cri: &Cri,
    container_id: &str,
    pod_ip: &str,
    ports: &HashMap<String, i32>,
) -> Verdict {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let port = |p: &IntOrString| match p {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => ports.get(name).copied().or_else(|| name.parse().ok()),
    };
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match cri
            .exec_sync(container_id, cmd, timeout.as_secs() as i64)
            .await
        {
            Ok(r) if r.exit_code == 0 => Verdict {
                ok: true,
                message: String::new(),
            },
            Ok(r) => {
                let out = String::from_utf8_lossy(&r.stdout).to_string()
                    + &String::from_utf8_lossy(&r.stderr);
                Verdict {
                    ok: false,
                    message: format!(
                        "command {:?} exited with {}: {}",
                        exec.command.clone().unwrap_or_default(),
                        r.exit_code,
                        out.trim()
                    ),
                }
            }
            Err(e) => Verdict {
                ok: false,
                message: e.to_string(),
            },
        };
    }
    if let Some(h) = &probe.http_get {
        let host = h
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let Some(p) = port(&h.port) else {
            return Verdict {
                ok: false,
                message: format!("invalid port {:?}", h.port),
            };
        };
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let headers: String = h
            .http_headers
            .iter()
            .flatten()
            .map(|hd| format!("{}: {}\r\n", hd.name, hd.value))
            .collect();
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect((host.as_str(), p as u16)).await?;
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{p}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\n{headers}Connection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await?;
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).to_string())
        };
        return match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(resp)) => {
                let code: u16 = resp
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                if (200..400).contains(&code) {
                    Verdict {
                        ok: true,
                        message: String::new(),
                    }
                } else {
                    Verdict {
                        ok: false,
                        message: format!("HTTP probe failed with statuscode: {code}"),
                    }
                }
            }
            Ok(Err(e)) => Verdict {
                ok: false,
                message: format!("Get \"http://{host}:{p}{path}\": {e}"),
            },
            Err(_) => Verdict {
                ok: false,
                message: format!(
                    "Get \"http://{host}:{p}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                ),
            },
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let host = t
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let Some(p) = port(&t.port) else {
            return Verdict {
                ok: false,
                message: format!("invalid port {:?}", t.port),
            };
        };
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), p as u16)),
        )
        .await
        {
            Ok(Ok(_)) => Verdict {
                ok: true,
                message: String::new(),
            },
            Ok(Err(e)) => Verdict {
                ok: false,
                message: format!("dial tcp {host}:{p}: {e}"),
            },
            Err(_) => Verdict {
                ok: false,
                message: format!("dial tcp {host}:{p}: i/o timeout"),
            },
        };
    }
    Verdict {
        ok: true,
        message: String::new(),
    }
}

/// Runs a probe until `stop`: after `initialDelaySeconds`, every `periodSeconds`; the verdict
/// flips after `failureThreshold` failures or `successThreshold` successes in a row.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    probe: Probe,
    kind: Kind,
    cri: Cri,
    container_id: String,
    pod_ip: String,
    ports: HashMap<String, i32>,
    results: Results,
    changed: watch::Sender<u64>,
    stop: CancellationToken,
) {
    let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
    let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
    let fail_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    // Readiness starts as "not ready", liveness and startup as "fine until proven otherwise".
    let initial = Verdict {
        ok: kind != Kind::Readiness && kind != Kind::Startup,
        message: String::new(),
    };
    results.set(&container_id, kind, initial.clone());
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.cancelled() => return,
    }
    let (mut fails, mut successes) = (0, 0);
    let mut current = initial;
    loop {
        let v = check(&probe, &cri, &container_id, &pod_ip, &ports).await;
        if v.ok {
            successes += 1;
            fails = 0;
        } else {
            fails += 1;
            successes = 0;
        }
        let next = if v.ok && (successes >= success_threshold || current.ok) {
            Verdict {
                ok: true,
                message: String::new(),
            }
        } else if !v.ok && fails >= fail_threshold {
            v
        } else {
            current.clone()
        };
        if next != current {
            current = next.clone();
            if results.set(&container_id, kind, next) {
                changed.send_modify(|n| *n += 1);
            }
        }
        // A startup probe is done once it has passed.
        if kind == Kind::Startup && current.ok {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.cancelled() => return,
        }
    }
}
