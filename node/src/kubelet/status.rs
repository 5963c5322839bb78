//! Pod status as the kubelet reports it: phase, conditions, and a status per container with
//! state, last state and restart count, computed from what the runtime says.

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Container;
use serde_json::{Value, json};

/// One container as the worker sees it.
pub struct ContainerView<'a> {
    pub spec: &'a Container,
    /// The newest runtime container and the one before it.
    pub latest: Option<&'a cri::ContainerStatus>,
    pub previous: Option<&'a cri::ContainerStatus>,
    /// Why it is not running, when the worker knows better than the runtime (back-off, config).
    pub waiting: Option<(String, String)>,
    pub ready: bool,
    pub started: bool,
    /// A restartable init container (sidecar).
    pub sidecar: bool,
}

pub struct PodView<'a> {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: String,
    pub qos: String,
    pub restart_policy: String,
    pub init: Vec<ContainerView<'a>>,
    pub main: Vec<ContainerView<'a>>,
    pub readiness_gates_ok: bool,
}

pub fn rfc3339_nanos(ns: i64) -> Option<String> {
    if ns <= 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(ns as i128)
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn terminated(s: &cri::ContainerStatus) -> Value {
    let reason = if !s.reason.is_empty() {
        s.reason.clone()
    } else if s.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let mut t = json!({
        "exitCode": s.exit_code,
        "reason": reason,
        "startedAt": rfc3339_nanos(s.started_at),
        "finishedAt": rfc3339_nanos(s.finished_at),
        "containerID": format!("containerd://{}", s.id),
    });
    if !s.message.is_empty() {
        t["message"] = json!(s.message);
    }
    json!({"terminated": t})
}

fn exited(s: &cri::ContainerStatus) -> bool {
    s.state == cri::ContainerState::ContainerExited as i32
}

fn running(s: &cri::ContainerStatus) -> bool {
    s.state == cri::ContainerState::ContainerRunning as i32
}

/// The status entry of one container.
pub fn container_status(v: &ContainerView<'_>, pod_initializing: bool) -> Value {
    let restart_count = v
        .latest
        .map(|s| s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0))
        .unwrap_or(0);
    let state = match (v.latest, &v.waiting) {
        (_, Some((reason, message))) => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        (Some(s), None) if running(s) => {
            json!({"running": {"startedAt": rfc3339_nanos(s.started_at)}})
        }
        (Some(s), None) if exited(s) => terminated(s),
        _ => {
            json!({"waiting": {"reason": if pod_initializing { "PodInitializing" } else { "ContainerCreating" }}})
        }
    };
    // The previous run, or the latest one if the container is waiting to restart after it.
    let last = match (v.latest, &v.waiting) {
        (Some(s), Some(_)) if exited(s) => terminated(s),
        _ => v
            .previous
            .filter(|p| exited(p))
            .map(terminated)
            .unwrap_or(json!({})),
    };
    let mut out = json!({
        "name": v.spec.name,
        "image": v.spec.image,
        "imageID": v.latest.map(|s| s.image_ref.clone()).unwrap_or_default(),
        "ready": v.ready,
        "started": v.started,
        "restartCount": restart_count,
        "state": state,
        "lastState": last,
    });
    if let Some(s) = v.latest {
        out["containerID"] = json!(format!("containerd://{}", s.id));
    }
    out
}

fn counts(views: &[ContainerView<'_>]) -> (usize, usize, usize, usize, usize) {
    let (mut running_n, mut stopped, mut succeeded, mut waiting, mut unknown) = (0, 0, 0, 0, 0);
    for v in views {
        match (v.latest, &v.waiting) {
            (Some(s), None) if running(s) => running_n += 1,
            (Some(s), None) if exited(s) => {
                stopped += 1;
                if s.exit_code == 0 {
                    succeeded += 1;
                }
            }
            (Some(s), Some(_)) if exited(s) => stopped += 1,
            (None, _) | (Some(_), _) => {
                if v.previous.is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    let _ = &mut unknown;
    (running_n, stopped, succeeded, waiting, unknown)
}

/// Init containers done: every regular one exited 0, every sidecar started.
pub fn initialized(view: &PodView<'_>) -> bool {
    view.init.iter().all(|v| {
        if v.sidecar {
            v.started
        } else {
            v.latest.is_some_and(|s| exited(s) && s.exit_code == 0)
        }
    })
}

/// An init container failed and will not be retried.
fn init_failed(view: &PodView<'_>) -> bool {
    view.restart_policy == "Never"
        && view
            .init
            .iter()
            .any(|v| !v.sidecar && v.latest.is_some_and(|s| exited(s) && s.exit_code != 0))
}

/// The pod's phase, by the kubelet's rules.
pub fn phase(view: &PodView<'_>) -> &'static str {
    if init_failed(view) {
        return "Failed";
    }
    if !initialized(view) {
        return "Pending";
    }
    let (running_n, stopped, succeeded, waiting, unknown) = counts(&view.main);
    if waiting > 0 {
        return "Pending";
    }
    if running_n > 0 && unknown == 0 {
        return "Running";
    }
    if running_n == 0 && stopped > 0 && unknown == 0 {
        return match view.restart_policy.as_str() {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

/// The whole `status` of the pod; `previous` keeps condition transition times stable.
pub fn pod_status(view: &PodView<'_>, previous: Option<&Value>) -> Value {
    let phase = phase(view);
    let init_done = initialized(view);
    let containers_ready = init_done && !view.main.is_empty() && view.main.iter().all(|v| v.ready);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let prior = |ty: &str, status: &str| {
        previous
            .and_then(|p| p.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == status))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now))
    };
    let cond = |ty: &str, ok: bool, reason: Option<&str>| {
        let status = if ok { "True" } else { "False" };
        let mut c = json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": prior(ty, status)});
        if let Some(r) = reason.filter(|_| !ok) {
            c["reason"] = json!(r);
        }
        c
    };
    let not_ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let mut conditions = vec![
        cond(
            "PodReadyToStartContainers",
            view.sandbox_ready && !terminal,
            None,
        ),
        cond(
            "Initialized",
            init_done,
            Some(if terminal {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            }),
        ),
        cond(
            "Ready",
            containers_ready && view.readiness_gates_ok && !terminal,
            Some(not_ready_reason),
        ),
        cond(
            "ContainersReady",
            containers_ready && !terminal,
            Some(not_ready_reason),
        ),
        cond("PodScheduled", true, None),
    ];
    if !containers_ready && !terminal {
        let names: Vec<&str> = view
            .main
            .iter()
            .filter(|v| !v.ready)
            .map(|v| v.spec.name.as_str())
            .collect();
        let msg = format!("containers with unready status: [{}]", names.join(" "));
        conditions[2]["message"] = json!(msg);
        conditions[3]["message"] = json!(msg);
    }
    let mut s = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": view.start_time,
        "qosClass": view.qos,
        "containerStatuses": view.main.iter().map(|v| container_status(v, !init_done)).collect::<Vec<_>>(),
    });
    if !view.init.is_empty() {
        s["initContainerStatuses"] = json!(
            view.init
                .iter()
                .map(|v| container_status(v, false))
                .collect::<Vec<_>>()
        );
    }
    if let Some(ip) = view.pod_ip.as_ref().filter(|ip| !ip.is_empty()) {
        s["podIP"] = json!(ip);
        s["podIPs"] = json!([{"ip": ip}]);
    }
    s
}

/// What a pod the node evicted reports: `Failed`/`Evicted`, not ready, and the
/// `DisruptionTarget` condition that tells its controller why.
pub fn mark_evicted(status: &mut Value, message: &str) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    status["phase"] = json!("Failed");
    status["reason"] = json!("Evicted");
    status["message"] = json!(message);
    let Some(conds) = status["conditions"].as_array_mut() else {
        return;
    };
    for c in conds.iter_mut() {
        if (c["type"] == "Ready" || c["type"] == "ContainersReady") && c["status"] == "True" {
            c["status"] = json!("False");
            c["lastTransitionTime"] = json!(now);
        }
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            c["reason"] = json!("PodCompleted");
            if let Some(m) = c.as_object_mut() {
                m.remove("message");
            }
        }
    }
    if !conds.iter().any(|c| c["type"] == "DisruptionTarget") {
        conds.push(
            json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": now, "reason": "TerminationByKubelet", "message": message}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_pod_is_failed_not_ready_and_a_disruption_target() {
        let mut s = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"},
            {"type": "PodScheduled", "status": "True"}]});
        mark_evicted(&mut s, "The node was low on resource: memory.");
        assert_eq!(s["phase"], "Failed");
        assert_eq!(s["reason"], "Evicted");
        let cond = |t: &str| {
            s["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(cond("Ready")["status"], "False");
        assert_eq!(cond("ContainersReady")["status"], "False");
        assert_eq!(cond("DisruptionTarget")["reason"], "TerminationByKubelet");
        assert_eq!(cond("PodScheduled")["status"], "True");
    }

    fn cs(state: cri::ContainerState, exit: i32, attempt: u32) -> cri::ContainerStatus {
        cri::ContainerStatus {
            id: format!("id{attempt}"),
            metadata: Some(cri::ContainerMetadata {
                name: "c".into(),
                attempt,
            }),
            state: state as i32,
            exit_code: exit,
            started_at: 1_700_000_000_000_000_000,
            finished_at: if state == cri::ContainerState::ContainerExited {
                1_700_000_001_000_000_000
            } else {
                0
            },
            ..Default::default()
        }
    }

    fn view<'a>(
        c: &'a Container,
        latest: Option<&'a cri::ContainerStatus>,
        previous: Option<&'a cri::ContainerStatus>,
        waiting: Option<(String, String)>,
        ready: bool,
    ) -> ContainerView<'a> {
        ContainerView {
            spec: c,
            latest,
            previous,
            waiting,
            ready,
            started: ready,
            sidecar: false,
        }
    }

    fn pod<'a>(policy: &str, main: Vec<ContainerView<'a>>) -> PodView<'a> {
        PodView {
            sandbox_ready: true,
            pod_ip: Some("10.244.0.5".into()),
            host_ip: "10.0.0.1".into(),
            start_time: "2026-01-01T00:00:00Z".into(),
            qos: "BestEffort".into(),
            restart_policy: policy.into(),
            init: vec![],
            main,
            readiness_gates_ok: true,
        }
    }

    #[test]
    fn phases_follow_the_kubelet() {
        let c = Container {
            name: "c".into(),
            ..Default::default()
        };
        let run = cs(cri::ContainerState::ContainerRunning, 0, 0);
        let ok = cs(cri::ContainerState::ContainerExited, 0, 0);
        let bad = cs(cri::ContainerState::ContainerExited, 2, 3);
        assert_eq!(
            phase(&pod("Always", vec![view(&c, None, None, None, false)])),
            "Pending"
        );
        assert_eq!(
            phase(&pod("Always", vec![view(&c, Some(&run), None, None, true)])),
            "Running"
        );
        assert_eq!(
            phase(&pod("Never", vec![view(&c, Some(&ok), None, None, false)])),
            "Succeeded"
        );
        assert_eq!(
            phase(&pod("Never", vec![view(&c, Some(&bad), None, None, false)])),
            "Failed"
        );
        let backoff = Some(("CrashLoopBackOff".to_string(), "back-off".to_string()));
        assert_eq!(
            phase(&pod(
                "Always",
                vec![view(&c, Some(&bad), None, backoff.clone(), false)]
            )),
            "Running"
        );
        let s = pod_status(
            &pod("Always", vec![view(&c, Some(&bad), None, backoff, false)]),
            None,
        );
        let st = &s["containerStatuses"][0];
        assert_eq!(st["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(st["lastState"]["terminated"]["exitCode"], 2);
        assert_eq!(st["restartCount"], 3);
        assert_eq!(s["conditions"][2]["type"], "Ready");
        assert_eq!(s["conditions"][2]["status"], "False");
        assert_eq!(s["podIP"], "10.244.0.5");
    }
}
