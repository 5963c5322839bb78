//! Expected cells are what `kubectl get` shows against a real kube-apiserver for the same
//! objects (printers.go semantics, server-side printing with Wide=true).

use super::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const NOW: &str = "2024-05-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// RFC 3339 time `secs` seconds before NOW.
fn ago(secs: i64) -> String {
    now()
        .checked_sub(SignedDuration::from_secs(secs))
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn row(group: &str, kind: &str, obj: &Value) -> Vec<Value> {
    let cells = cells(group, kind, obj, now());
    assert_eq!(
        cells.len(),
        columns(group, kind).len(),
        "{group}/{kind}: one cell per column"
    );
    cells
}

fn names(group: &str, kind: &str) -> Vec<&'static str> {
    columns(group, kind).iter().map(|c| c.name).collect()
}

/// Column names kubectl shows without `-o wide` (priority 0).
fn normal_names(group: &str, kind: &str) -> Vec<&'static str> {
    columns(group, kind)
        .iter()
        .filter(|c| c.priority == 0)
        .map(|c| c.name)
        .collect()
}

fn meta(name: &str, age_secs: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_secs)})
}

// --- human_duration ------------------------------------------------------------------

#[test]
fn human_duration_matches_apimachinery() {
    let cases: &[(i64, &str)] = &[
        (-3, "<invalid>"),
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (123, "2m3s"),
        (599, "9m59s"),
        (600, "10m"),
        (12 * 60 + 59, "12m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 4 * 60, "3h4m"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600 + 30 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (5 * 86400 + 3 * 3600, "5d3h"),
        (5 * 86400, "5d"),
        (8 * 86400 + 5 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (733 * 86400, "2y3d"),
        (365 * 8 * 86400, "8y"),
        (365 * 11 * 86400 + 40 * 86400, "11y"),
    ];
    for (secs, want) in cases {
        assert_eq!(
            human_duration(SignedDuration::from_secs(*secs)),
            *want,
            "{secs}s"
        );
    }
    // Sub-second skew in the future still reads as now.
    assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
}

// --- columns -------------------------------------------------------------------------

#[test]
fn pod_columns_names_priorities_and_types() {
    assert_eq!(
        names("", "Pod"),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    let cols = columns("", "Pod");
    assert_eq!(cols[0].format, "name");
    assert_eq!(cols[0].type_, "string");
    assert!(cols[1..].iter().all(|c| c.format.is_empty()));
    assert_eq!(
        cols.iter().map(|c| c.priority).collect::<Vec<_>>(),
        [0, 0, 0, 0, 0, 1, 1, 1, 1]
    );
    // Restarts became a string column when "(5m ago)" was added.
    assert_eq!(cols[3].type_, "string");
    assert!(
        cols[0]
            .description
            .starts_with("Name must be unique within a namespace.")
    );
    assert!(
        cols[4]
            .description
            .starts_with("CreationTimestamp is a timestamp")
    );
}

#[test]
fn column_headers_for_listed_kinds() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("", "Namespace", &["Name", "Status", "Age"]),
        ("", "Node", &["Name", "Status", "Roles", "Age", "Version"]),
        (
            "",
            "Service",
            &[
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
            ],
        ),
        ("", "Endpoints", &["Name", "Endpoints", "Age"]),
        ("", "ConfigMap", &["Name", "Data", "Age"]),
        ("", "Secret", &["Name", "Type", "Data", "Age"]),
        ("", "ServiceAccount", &["Name", "Secrets", "Age"]),
        (
            "",
            "Event",
            &["Last Seen", "Type", "Reason", "Object", "Message"],
        ),
        (
            "events.k8s.io",
            "Event",
            &["Last Seen", "Type", "Reason", "Object", "Message"],
        ),
        (
            "",
            "PersistentVolume",
            &[
                "Name",
                "Capacity",
                "Access Modes",
                "Reclaim Policy",
                "Status",
                "Claim",
                "StorageClass",
                "VolumeAttributesClass",
                "Reason",
                "Age",
            ],
        ),
        (
            "",
            "PersistentVolumeClaim",
            &[
                "Name",
                "Status",
                "Volume",
                "Capacity",
                "Access Modes",
                "StorageClass",
                "VolumeAttributesClass",
                "Age",
            ],
        ),
        ("", "LimitRange", &["Name", "Created At"]),
        ("", "ResourceQuota", &["Name", "Request", "Limit", "Age"]),
        (
            "",
            "ReplicationController",
            &["Name", "Desired", "Current", "Ready", "Age"],
        ),
        (
            "apps",
            "Deployment",
            &["Name", "Ready", "Up-to-date", "Available", "Age"],
        ),
        (
            "apps",
            "ReplicaSet",
            &["Name", "Desired", "Current", "Ready", "Age"],
        ),
        ("apps", "StatefulSet", &["Name", "Ready", "Age"]),
        (
            "apps",
            "DaemonSet",
            &[
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age",
            ],
        ),
        (
            "apps",
            "ControllerRevision",
            &["Name", "Controller", "Revision", "Age"],
        ),
        (
            "batch",
            "Job",
            &["Name", "Status", "Completions", "Duration", "Age"],
        ),
        (
            "batch",
            "CronJob",
            &[
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
            ],
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            &["Name", "AddressType", "Ports", "Endpoints", "Age"],
        ),
        (
            "networking.k8s.io",
            "NetworkPolicy",
            &["Name", "Pod-Selector", "Age"],
        ),
        ("rbac.authorization.k8s.io", "Role", &["Name", "Created At"]),
        (
            "rbac.authorization.k8s.io",
            "ClusterRole",
            &["Name", "Created At"],
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            &["Name", "Role", "Age"],
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            &["Name", "Role", "Age"],
        ),
        ("coordination.k8s.io", "Lease", &["Name", "Holder", "Age"]),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            &[
                "Name",
                "Reference",
                "Targets",
                "MinPods",
                "MaxPods",
                "Replicas",
                "Age",
            ],
        ),
        (
            "policy",
            "PodDisruptionBudget",
            &[
                "Name",
                "Min Available",
                "Max Unavailable",
                "Allowed Disruptions",
                "Age",
            ],
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            &["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"],
        ),
        (
            "storage.k8s.io",
            "StorageClass",
            &[
                "Name",
                "Provisioner",
                "ReclaimPolicy",
                "VolumeBindingMode",
                "AllowVolumeExpansion",
                "Age",
            ],
        ),
        (
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &["Name", "Created At"],
        ),
        ("example.com", "Widget", &["Name", "Created At"]),
    ];
    for (group, kind, want) in cases {
        assert_eq!(normal_names(group, kind), *want, "{group}/{kind}");
    }
}

#[test]
fn wide_columns() {
    let wide = |g: &str, k: &str| -> Vec<&'static str> {
        columns(g, k)
            .iter()
            .filter(|c| c.priority == 1)
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(
        wide("", "Node"),
        [
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ]
    );
    assert_eq!(wide("", "Service"), ["Selector"]);
    assert_eq!(
        wide("apps", "Deployment"),
        ["Containers", "Images", "Selector"]
    );
    assert_eq!(wide("batch", "Job"), ["Containers", "Images", "Selector"]);
    assert_eq!(wide("apps", "StatefulSet"), ["Containers", "Images"]);
    assert_eq!(
        wide("", "Event"),
        ["Subobject", "Source", "First Seen", "Count", "Name"]
    );
    assert_eq!(
        wide("rbac.authorization.k8s.io", "RoleBinding"),
        ["Users", "Groups", "ServiceAccounts"]
    );
    assert_eq!(wide("", "PersistentVolume"), ["VolumeMode"]);
}

#[test]
fn column_types() {
    let ty = |g: &str, k: &str, name: &str| {
        columns(g, k)
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.type_)
            .unwrap()
    };
    assert_eq!(ty("", "LimitRange", "Created At"), "date");
    assert_eq!(ty("", "ReplicationController", "Desired"), "integer");
    assert_eq!(ty("apps", "DaemonSet", "Up-to-date"), "integer");
    assert_eq!(ty("batch", "CronJob", "Suspend"), "boolean");
    assert_eq!(
        ty("scheduling.k8s.io", "PriorityClass", "Global-Default"),
        "boolean"
    );
    assert_eq!(
        ty("policy", "PodDisruptionBudget", "Allowed Disruptions"),
        "integer"
    );
    assert_eq!(ty("apps", "Deployment", "Up-to-date"), "string");
}

#[test]
fn column_json_shape() {
    let json = column_definitions_json("", "Namespace");
    assert_eq!(json[0]["name"], "Name");
    assert_eq!(json[0]["format"], "name");
    assert_eq!(json[0]["priority"], 0);
    assert_eq!(
        json[1],
        json!({
            "name": "Status",
            "type": "string",
            "format": "",
            "description": "The status of the namespace",
            "priority": 0
        })
    );
    assert_eq!(
        columns("", "Pod")[5].to_json()["priority"],
        json!(1),
        "wide column"
    );
}

// --- Pod -----------------------------------------------------------------------------

fn running_container(name: &str, ready: bool, restarts: i64) -> Value {
    json!({
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "started": true,
        "state": {"running": {"startedAt": ago(3600)}}
    })
}

#[test]
fn pod_running_one_of_two_ready_with_restarts() {
    let pod = json!({
        "metadata": meta("web-7d4b9c8f5-x2x9z", 3 * 3600 + 4 * 60),
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": "nginx"}, {"name": "sidecar", "image": "envoy"}]
        },
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.5",
            "podIPs": [{"ip": "10.244.1.5"}],
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                running_container("app", true, 0),
                {
                    "name": "sidecar",
                    "ready": false,
                    "restartCount": 3,
                    "state": {"running": {"startedAt": ago(60)}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(5 * 60)}}
                }
            ]
        }
    });
    assert_eq!(
        row("", "Pod", &pod),
        [
            json!("web-7d4b9c8f5-x2x9z"),
            json!("1/2"),
            json!("Running"),
            json!("3 (5m ago)"),
            json!("3h4m"),
            json!("10.244.1.5"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
    assert!(row_conditions("", "Pod", &pod).is_empty());
}

#[test]
fn pod_restarts_without_last_termination_time_are_plain() {
    let pod = json!({
        "metadata": meta("p", 60),
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running", "containerStatuses": [running_container("a", true, 2)]}
    });
    assert_eq!(row("", "Pod", &pod)[3], json!("2"));
}

#[test]
fn pod_pending_container_creating() {
    let pod = json!({
        "metadata": meta("p", 10),
        "spec": {"containers": [{"name": "a", "image": "busybox"}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{
                "name": "a", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}
            }]
        }
    });
    let cells = row("", "Pod", &pod);
    assert_eq!(
        cells[1..5],
        [
            json!("0/1"),
            json!("ContainerCreating"),
            json!("0"),
            json!("10s")
        ]
    );
}

#[test]
fn pod_crash_loop_back_off() {
    let pod = json!({
        "metadata": meta("crashy", 20 * 60),
        "spec": {"containers": [{"name": "a"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{
                "name": "a", "ready": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(90)}}
            }]
        }
    });
    let cells = row("", "Pod", &pod);
    assert_eq!(
        cells[1..5],
        [
            json!("0/1"),
            json!("CrashLoopBackOff"),
            json!("7 (90s ago)"),
            json!("20m")
        ]
    );
}

#[test]
fn pod_completed_and_failed() {
    let completed = json!({
        "metadata": meta("job-abc", 2 * 86400),
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{
                "name": "main", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            }]
        }
    });
    assert_eq!(
        row("", "Pod", &completed)[1..5],
        [json!("0/1"), json!("Completed"), json!("0"), json!("2d")]
    );
    assert_eq!(
        row_conditions("", "Pod", &completed),
        [
            json!({"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."})
        ]
    );

    let oom = json!({
        "metadata": meta("oom", 60),
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]
        }
    });
    assert_eq!(row("", "Pod", &oom)[2], json!("OOMKilled"));
    assert_eq!(
        row_conditions("", "Pod", &oom)[0]["reason"],
        json!("Failed")
    );
    assert_eq!(
        row_conditions("", "Pod", &oom)[0]["message"],
        json!("The pod failed.")
    );
}

#[test]
fn pod_terminated_without_reason_shows_signal_or_exit_code() {
    let with = |terminated: Value| {
        json!({
            "metadata": meta("p", 60),
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "a", "state": {"terminated": terminated}}]}
        })
    };
    assert_eq!(
        row("", "Pod", &with(json!({"exitCode": 2})))[2],
        json!("ExitCode:2")
    );
    assert_eq!(
        row("", "Pod", &with(json!({"exitCode": 137, "signal": 9})))[2],
        json!("Signal:9")
    );
}

#[test]
fn pod_status_reason_overrides_phase() {
    let pod = json!({
        "metadata": meta("evicted", 600),
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}
    });
    assert_eq!(row("", "Pod", &pod)[1..3], [json!("0/1"), json!("Evicted")]);
}

#[test]
fn pod_scheduling_gated() {
    let pod = json!({
        "metadata": meta("gated", 5),
        "spec": {"containers": [{"name": "a"}], "schedulingGates": [{"name": "example.com/gate"}]},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
        }
    });
    assert_eq!(row("", "Pod", &pod)[2], json!("SchedulingGated"));
}

fn init_pod(init_statuses: Value, conditions: Value) -> Value {
    json!({
        "metadata": meta("init-pod", 30),
        "spec": {
            "initContainers": [{"name": "init-a"}, {"name": "init-b"}],
            "containers": [{"name": "main"}]
        },
        "status": {
            "phase": "Pending",
            "conditions": conditions,
            "initContainerStatuses": init_statuses,
            "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0,
                                   "state": {"waiting": {"reason": "PodInitializing"}}}]
        }
    })
}

#[test]
fn pod_init_container_progress() {
    let done = json!({"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let running = json!({"name": "init-b", "restartCount": 0, "state": {"running": {}}});
    let pod = init_pod(json!([done, running]), json!([]));
    assert_eq!(
        row("", "Pod", &pod)[1..4],
        [json!("0/1"), json!("Init:1/2"), json!("0")]
    );

    let waiting_init =
        json!({"name": "init-a", "state": {"waiting": {"reason": "PodInitializing"}}});
    assert_eq!(
        row("", "Pod", &init_pod(json!([waiting_init]), json!([])))[2],
        json!("Init:0/2")
    );
}

#[test]
fn pod_init_container_failures() {
    let crash = json!({
        "name": "init-a", "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}
    });
    let cells = row("", "Pod", &init_pod(json!([crash]), json!([])));
    assert_eq!(cells[2], json!("Init:CrashLoopBackOff"));
    // While initializing, restarts count the init containers.
    assert_eq!(cells[3], json!("4 (30s ago)"));

    let error =
        json!({"name": "init-a", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
    assert_eq!(
        row("", "Pod", &init_pod(json!([error]), json!([])))[2],
        json!("Init:Error")
    );
    let exit = json!({"name": "init-a", "state": {"terminated": {"exitCode": 3}}});
    assert_eq!(
        row("", "Pod", &init_pod(json!([exit]), json!([])))[2],
        json!("Init:ExitCode:3")
    );
    let signal = json!({"name": "init-a", "state": {"terminated": {"exitCode": 137, "signal": 9}}});
    assert_eq!(
        row("", "Pod", &init_pod(json!([signal]), json!([])))[2],
        json!("Init:Signal:9")
    );
}

#[test]
fn pod_initialized_condition_overrides_init_status() {
    let crash = json!({"name": "init-a", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}});
    let pod = init_pod(
        json!([crash]),
        json!([{"type": "Initialized", "status": "True"}]),
    );
    // Main containers decide the status once the pod is initialized.
    assert_eq!(
        row("", "Pod", &pod)[2..4],
        [json!("PodInitializing"), json!("0")]
    );
}

#[test]
fn pod_sidecar_init_container_counts_as_container() {
    let pod = json!({
        "metadata": meta("with-sidecar", 600),
        "spec": {
            "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{
                "name": "proxy", "ready": true, "started": true, "restartCount": 1,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}}
            }],
            "containerStatuses": [running_container("app", true, 0)]
        }
    });
    assert_eq!(
        row("", "Pod", &pod)[1..4],
        [json!("2/2"), json!("Running"), json!("1 (2m ago)")]
    );
}

#[test]
fn pod_completed_container_with_running_sibling() {
    let pod = |ready_condition: &str| {
        json!({
            "metadata": meta("p", 60),
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": ready_condition}],
                "containerStatuses": [
                    {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    running_container("b", true, 0)
                ]
            }
        })
    };
    // Statuses are walked last to first, so "a" decides the reason.
    assert_eq!(
        row("", "Pod", &pod("True"))[1..3],
        [json!("1/2"), json!("Running")]
    );
    assert_eq!(
        row("", "Pod", &pod("False"))[1..3],
        [json!("1/2"), json!("NotReady")]
    );
}

#[test]
fn pod_terminating_and_node_lost() {
    let mut pod = json!({
        "metadata": meta("bye", 600),
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running", "containerStatuses": [running_container("a", true, 0)]}
    });
    pod["metadata"]["deletionTimestamp"] = json!(ago(-30));
    assert_eq!(row("", "Pod", &pod)[2], json!("Terminating"));

    pod["status"]["reason"] = json!("NodeLost");
    assert_eq!(row("", "Pod", &pod)[2], json!("Unknown"));

    // Terminal pods keep their phase while being deleted.
    let mut done = json!({
        "metadata": meta("done", 600),
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Succeeded"}
    });
    done["metadata"]["deletionTimestamp"] = json!(ago(-30));
    assert_eq!(row("", "Pod", &done)[2], json!("Succeeded"));
}

#[test]
fn pod_wide_columns() {
    let pod = json!({
        "metadata": meta("p", 60),
        "spec": {
            "nodeName": "worker-2",
            "containers": [{"name": "a"}],
            "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.9",
            "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}],
            "nominatedNodeName": "worker-3",
            "conditions": [
                {"type": "example.com/lb", "status": "True"},
                {"type": "example.com/dns", "status": "False"}
            ]
        }
    });
    assert_eq!(
        row("", "Pod", &pod)[5..],
        [
            json!("10.0.0.9"),
            json!("worker-2"),
            json!("worker-3"),
            json!("1/2")
        ]
    );
    // Legacy objects with only status.podIP still show it.
    let legacy = json!({"metadata": meta("p", 1), "status": {"podIP": "10.1.1.1"}});
    assert_eq!(row("", "Pod", &legacy)[5], json!("10.1.1.1"));
}

#[test]
fn pod_empty_object_does_not_panic() {
    assert_eq!(
        row("", "Pod", &json!({})),
        [
            json!(""),
            json!("0/0"),
            json!(""),
            json!("0"),
            json!("<unknown>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

// --- apps ------------------------------------------------------------------------------

fn pod_template(containers: Value) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}})
}

#[test]
fn deployment_row() {
    let deploy = json!({
        "metadata": meta("web", 5 * 86400),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template(json!([
                {"name": "nginx", "image": "nginx:1.25"},
                {"name": "logger", "image": "fluent-bit:2"}
            ]))
        },
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}
    });
    assert_eq!(
        row("apps", "Deployment", &deploy),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("5d"),
            json!("nginx,logger"),
            json!("nginx:1.25,fluent-bit:2"),
            json!("app=web"),
        ]
    );
}

#[test]
fn deployment_defaults_and_empty_selector() {
    let deploy = json!({"metadata": meta("d", 30), "spec": {"selector": {}}});
    assert_eq!(
        row("apps", "Deployment", &deploy),
        [
            json!("d"),
            json!("0/1"),
            json!(0),
            json!(0),
            json!("30s"),
            json!(""),
            json!(""),
            json!("")
        ]
    );
    let bad = json!({"metadata": meta("d", 30), "spec": {"selector": {
        "matchExpressions": [{"key": "app", "operator": "Bogus"}]
    }}});
    assert_eq!(row("apps", "Deployment", &bad)[7], json!("<invalid>"));
}

#[test]
fn replica_set_and_replication_controller_rows() {
    let rs = json!({
        "metadata": meta("web-7d4b9c8f5", 3600),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c8f5"}},
            "template": pod_template(json!([{"name": "nginx", "image": "nginx"}]))
        },
        "status": {"replicas": 3, "readyReplicas": 1}
    });
    assert_eq!(
        row("apps", "ReplicaSet", &rs),
        [
            json!("web-7d4b9c8f5"),
            json!(3),
            json!(3),
            json!(1),
            json!("60m"),
            json!("nginx"),
            json!("nginx"),
            json!("app=web,pod-template-hash=7d4b9c8f5"),
        ]
    );

    let rc = json!({
        "metadata": meta("legacy", 3600),
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": pod_template(json!([{"name": "c", "image": "i"}]))},
        "status": {"replicas": 2, "readyReplicas": 2}
    });
    assert_eq!(
        row("", "ReplicationController", &rc),
        [
            json!("legacy"),
            json!(2),
            json!(2),
            json!(2),
            json!("60m"),
            json!("c"),
            json!("i"),
            json!("app=legacy")
        ]
    );
    // No template at all is allowed for an RC.
    let bare = json!({"metadata": meta("bare", 1), "spec": {}});
    assert_eq!(
        row("", "ReplicationController", &bare)[5..],
        [json!(""), json!(""), json!("<none>")]
    );
}

#[test]
fn stateful_set_and_daemon_set_rows() {
    let sts = json!({
        "metadata": meta("db", 600),
        "spec": {"replicas": 3, "template": pod_template(json!([{"name": "pg", "image": "postgres:16"}]))},
        "status": {"replicas": 2, "readyReplicas": 1}
    });
    assert_eq!(
        row("apps", "StatefulSet", &sts),
        [
            json!("db"),
            json!("1/3"),
            json!("10m"),
            json!("pg"),
            json!("postgres:16")
        ]
    );

    let ds = json!({
        "metadata": meta("kube-proxy", 30 * 86400),
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {"spec": {
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.30.0"}]
            }}
        },
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2}
    });
    assert_eq!(
        row("apps", "DaemonSet", &ds),
        [
            json!("kube-proxy"),
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux"),
            json!("30d"),
            json!("kube-proxy"),
            json!("registry.k8s.io/kube-proxy:v1.30.0"),
            json!("k8s-app=kube-proxy"),
        ]
    );
    assert_eq!(row("apps", "DaemonSet", &json!({}))[6], json!("<none>"));
}

#[test]
fn controller_revision_row() {
    let cr = json!({
        "metadata": {
            "name": "db-5d9c7b6f4", "creationTimestamp": ago(3600),
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "other", "controller": false},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}
            ]
        },
        "revision": 2
    });
    assert_eq!(
        row("apps", "ControllerRevision", &cr),
        [
            json!("db-5d9c7b6f4"),
            json!("statefulset.apps/db"),
            json!(2),
            json!("60m")
        ]
    );
    let core_owner = json!({"metadata": {"name": "x", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": true}
    ]}});
    assert_eq!(
        row("apps", "ControllerRevision", &core_owner)[1],
        json!("pod/p")
    );
    let orphan = json!({"metadata": {"name": "x"}});
    assert_eq!(
        row("apps", "ControllerRevision", &orphan)[1..3],
        [json!("<none>"), json!(0)]
    );
}

// --- batch -----------------------------------------------------------------------------

fn job(spec: Value, status: Value) -> Value {
    let mut spec = spec;
    spec["template"] = pod_template(json!([{"name": "pi", "image": "perl:5.34"}]));
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1f2e"}});
    json!({"metadata": meta("pi", 10 * 60), "spec": spec, "status": status})
}

#[test]
fn job_running_one_of_three() {
    let j = job(
        json!({"completions": 3, "parallelism": 1}),
        json!({"startTime": ago(9 * 60 + 30), "active": 1, "succeeded": 1}),
    );
    assert_eq!(
        row("batch", "Job", &j),
        [
            json!("pi"),
            json!("Running"),
            json!("1/3"),
            json!("9m30s"),
            json!("10m"),
            json!("pi"),
            json!("perl:5.34"),
            json!("batch.kubernetes.io/controller-uid=1f2e"),
        ]
    );
}

#[test]
fn job_complete_failed_suspended() {
    let complete = job(
        json!({"completions": 1}),
        json!({
            "startTime": ago(600), "completionTime": ago(600 - 42), "succeeded": 1,
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]
        }),
    );
    assert_eq!(
        row("batch", "Job", &complete)[1..4],
        [json!("Complete"), json!("1/1"), json!("42s")]
    );

    let failed = job(
        json!({"completions": 1}),
        json!({"startTime": ago(300), "failed": 6,
               "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}),
    );
    assert_eq!(
        row("batch", "Job", &failed)[1..4],
        [json!("Failed"), json!("0/1"), json!("5m")]
    );

    let suspended = job(
        json!({"completions": 2, "suspend": true}),
        json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
    );
    assert_eq!(
        row("batch", "Job", &suspended)[1..4],
        [json!("Suspended"), json!("0/2"), json!("")]
    );

    let target = job(
        json!({}),
        json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
    );
    assert_eq!(row("batch", "Job", &target)[1], json!("FailureTarget"));

    let mut deleting = job(json!({}), json!({}));
    deleting["metadata"]["deletionTimestamp"] = json!(ago(0));
    assert_eq!(row("batch", "Job", &deleting)[1], json!("Terminating"));
}

#[test]
fn job_completions_without_count() {
    let work_queue = job(json!({"parallelism": 3}), json!({"succeeded": 0}));
    assert_eq!(row("batch", "Job", &work_queue)[2], json!("0/1 of 3"));
    let single = job(json!({"parallelism": 1}), json!({"succeeded": 1}));
    assert_eq!(row("batch", "Job", &single)[2], json!("1/1"));
}

#[test]
fn cron_job_row() {
    let cj = json!({
        "metadata": meta("backup", 3 * 86400),
        "spec": {
            "schedule": "*/5 * * * *",
            "suspend": false,
            "jobTemplate": {"spec": {"template": pod_template(json!([{"name": "backup", "image": "restic"}]))}}
        },
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(4 * 60)}
    });
    assert_eq!(
        row("batch", "CronJob", &cj),
        [
            json!("backup"),
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("4m"),
            json!("3d"),
            json!("backup"),
            json!("restic"),
            json!("<none>"),
        ]
    );
    let tz = json!({"spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}});
    assert_eq!(
        row("batch", "CronJob", &tz)[1..6],
        [
            json!("@daily"),
            json!("Etc/UTC"),
            json!("<unset>"),
            json!(0),
            json!("<none>")
        ]
    );
}

// --- core/v1 networking ------------------------------------------------------------------

fn service(spec: Value, status: Value) -> Value {
    json!({"metadata": meta("web", 2 * 3600), "spec": spec, "status": status})
}

#[test]
fn service_cluster_ip() {
    let svc = service(
        json!({
            "type": "ClusterIP", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                      {"name": "dns", "port": 53, "protocol": "UDP"}],
            "selector": {"app": "web", "tier": "frontend"}
        }),
        json!({}),
    );
    assert_eq!(
        row("", "Service", &svc),
        [
            json!("web"),
            json!("ClusterIP"),
            json!("10.96.12.34"),
            json!("<none>"),
            json!("80/TCP,53/UDP"),
            // Under three hours, ages stay in minutes.
            json!("120m"),
            json!("app=web,tier=frontend"),
        ]
    );
}

#[test]
fn service_node_port() {
    let svc = service(
        json!({
            "type": "NodePort", "clusterIPs": ["10.96.0.50"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
            "externalIPs": ["192.0.2.10"]
        }),
        json!({}),
    );
    assert_eq!(
        row("", "Service", &svc)[1..5],
        [
            json!("NodePort"),
            json!("10.96.0.50"),
            json!("192.0.2.10"),
            json!("80:30080/TCP")
        ]
    );
}

#[test]
fn service_load_balancer() {
    let pending = service(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.7"],
               "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(
        row("", "Service", &pending)[3..5],
        [json!("<pending>"), json!("443:31443/TCP")]
    );

    let ready = service(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.7"], "externalIPs": ["198.51.100.9"],
               "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
        json!({"loadBalancer": {"ingress": [
            {"ip": "203.0.113.20"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}
        ]}}),
    );
    // Ingress points are sorted (a string set upstream) and never truncated server-side.
    assert_eq!(
        row("", "Service", &ready)[3],
        json!("203.0.113.10,203.0.113.20,lb.example.com,198.51.100.9")
    );
}

#[test]
fn service_external_name_and_headless() {
    let ext = service(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    assert_eq!(
        row("", "Service", &ext)[1..7],
        [
            json!("ExternalName"),
            json!("<none>"),
            json!("db.example.com"),
            json!("<none>"),
            json!("120m"),
            json!("<none>")
        ]
    );
    let headless = service(
        json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
               "ports": [{"port": 5432, "protocol": "TCP"}], "selector": {"app": "db"}}),
        json!({}),
    );
    assert_eq!(
        row("", "Service", &headless)[2..5],
        [json!("None"), json!("<none>"), json!("5432/TCP")]
    );
}

#[test]
fn endpoints_rows() {
    let ep = json!({
        "metadata": meta("web", 60),
        "subsets": [
            {"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.1.6"}], "ports": [{"port": 8080}]},
            {"addresses": [{"ip": "10.244.2.7"}, {"ip": "10.244.3.8"}], "ports": [{"port": 8080}]}
        ]
    });
    assert_eq!(
        row("", "Endpoints", &ep),
        [
            json!("web"),
            json!("10.244.0.5:8080,10.244.1.6:8080,10.244.2.7:8080 + 1 more..."),
            json!("60s")
        ]
    );
    let headless =
        json!({"metadata": meta("h", 60), "subsets": [{"addresses": [{"ip": "fd00::1"}]}]});
    assert_eq!(row("", "Endpoints", &headless)[1], json!("fd00::1"));
    let v6 = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 443}]}]});
    assert_eq!(row("", "Endpoints", &v6)[1], json!("[fd00::1]:443"));
    assert_eq!(
        row("", "Endpoints", &json!({"metadata": meta("e", 1)}))[1],
        json!("<none>")
    );
}

#[test]
fn endpoint_slice_row() {
    let eps = json!({
        "metadata": meta("web-abc12", 60),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics"}, {}],
        "endpoints": [
            {"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]},
            {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4", "10.0.0.5"]}
        ]
    });
    assert_eq!(
        row("discovery.k8s.io", "EndpointSlice", &eps),
        [
            json!("web-abc12"),
            json!("IPv4"),
            json!("8080,metrics,*"),
            json!("10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."),
            json!("60s"),
        ]
    );
    let empty = json!({"addressType": "IPv6"});
    assert_eq!(
        row("discovery.k8s.io", "EndpointSlice", &empty)[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
}

#[test]
fn network_policy_selector() {
    let all = json!({"metadata": meta("deny-all", 60), "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    assert_eq!(
        row("networking.k8s.io", "NetworkPolicy", &all),
        [json!("deny-all"), json!("<none>"), json!("60s")]
    );
    let web = json!({"metadata": meta("web", 60), "spec": {"podSelector": {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["frontend", "cache"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"}
        ]
    }}});
    // Requirements come out sorted by key, In/NotIn values sorted.
    assert_eq!(
        row("networking.k8s.io", "NetworkPolicy", &web)[1],
        json!("app=web,env notin (dev),!legacy,team,tier in (cache,frontend)")
    );
    let bad = json!({"spec": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}}});
    assert_eq!(
        row("networking.k8s.io", "NetworkPolicy", &bad)[1],
        json!("<error>")
    );
    let bad_key = json!({"spec": {"podSelector": {"matchLabels": {"bad key": "x"}}}});
    assert_eq!(
        row("networking.k8s.io", "NetworkPolicy", &bad_key)[1],
        json!("<error>")
    );
}

#[test]
fn ingress_rows() {
    let ing = json!({
        "metadata": meta("web", 60),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}],
            "tls": [{"hosts": ["a.example.com"]}]
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    });
    assert_eq!(
        row("networking.k8s.io", "Ingress", &ing),
        [
            json!("web"),
            json!("nginx"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("192.0.2.1"),
            json!("80, 443"),
            json!("60s"),
        ]
    );
    let bare = json!({"metadata": meta("bare", 60), "spec": {"defaultBackend": {}}});
    assert_eq!(
        row("networking.k8s.io", "Ingress", &bare)[1..5],
        [json!("<none>"), json!("*"), json!(""), json!("80")]
    );
}

// --- nodes, namespaces, config ---------------------------------------------------------

#[test]
fn node_ready_control_plane() {
    let node = json!({
        "metadata": {
            "name": "cp-1", "creationTimestamp": ago(40 * 86400),
            "labels": {
                "kubernetes.io/hostname": "cp-1",
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/master": "",
                "node-role.kubernetes.io/": "",
                "kubernetes.io/role": "etcd"
            }
        },
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"}
            ],
            "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "172.18.0.2"}],
            "nodeInfo": {
                "kubeletVersion": "v1.37.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"
            }
        }
    });
    assert_eq!(
        row("", "Node", &node),
        [
            json!("cp-1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,etcd,master"),
            json!("40d"),
            json!("v1.37.0"),
            json!("172.18.0.2"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("containerd://1.7.13"),
        ]
    );
}

#[test]
fn node_not_ready_and_unknown() {
    let not_ready = json!({
        "metadata": meta("w", 60),
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}
    });
    assert_eq!(
        row("", "Node", &not_ready)[1..3],
        [json!("NotReady"), json!("<none>")]
    );
    assert_eq!(
        row("", "Node", &json!({"metadata": {"name": "fresh"}})),
        [
            json!("fresh"),
            json!("Unknown"),
            json!("<none>"),
            json!("<unknown>"),
            json!(""),
            json!("<none>"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>"),
        ]
    );
}

#[test]
fn namespace_configmap_secret_serviceaccount() {
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(10 * 86400)}, "status": {"phase": "Active"}});
    assert_eq!(
        row("", "Namespace", &ns),
        [json!("kube-system"), json!("Active"), json!("10d")]
    );

    let mut ns_del = ns.clone();
    ns_del["status"]["phase"] = json!("Terminating");
    assert_eq!(row("", "Namespace", &ns_del)[1], json!("Terminating"));

    let cm = json!({"metadata": meta("cfg", 90), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(
        row("", "ConfigMap", &cm),
        [json!("cfg"), json!(3), json!("90s")]
    );
    assert_eq!(
        row("", "ConfigMap", &json!({"metadata": meta("empty", 1)}))[1],
        json!(0)
    );

    let secret = json!({"metadata": meta("creds", 60), "type": "Opaque", "data": {"user": "YQ==", "pass": "Yg=="}});
    assert_eq!(
        row("", "Secret", &secret),
        [json!("creds"), json!("Opaque"), json!(2), json!("60s")]
    );
    let tls = json!({"metadata": meta("tls", 60), "type": "kubernetes.io/tls"});
    assert_eq!(
        row("", "Secret", &tls)[1..3],
        [json!("kubernetes.io/tls"), json!(0)]
    );

    let sa = json!({"metadata": meta("default", 60), "secrets": [{"name": "default-token"}]});
    assert_eq!(
        row("", "ServiceAccount", &sa),
        [json!("default"), json!(1), json!("60s")]
    );
    assert_eq!(
        row("", "ServiceAccount", &json!({"metadata": meta("b", 1)}))[1],
        json!(0)
    );
}

// --- events ------------------------------------------------------------------------------

#[test]
fn core_event_row() {
    let ev = json!({
        "metadata": meta("web-1.17c3a5f6a1b2c3d4", 600),
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container app in pod web-1_default(uid)\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600),
        "lastTimestamp": ago(30),
        "count": 12,
        "type": "Warning"
    });
    assert_eq!(
        row("", "Event", &ev),
        [
            json!("30s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web-1"),
            json!("spec.containers{app}"),
            json!("kubelet, node-1"),
            json!("Back-off restarting failed container app in pod web-1_default(uid)"),
            json!("10m"),
            json!(12),
            json!("web-1.17c3a5f6a1b2c3d4"),
        ]
    );
}

#[test]
fn core_event_new_style_fields() {
    // Events written through events.k8s.io and read as core/v1: no first/last timestamps.
    let ev = json!({
        "metadata": meta("e1", 60),
        "involvedObject": {"kind": "Node"},
        "reason": "Starting",
        "message": "Starting kubelet.",
        "eventTime": "2024-05-01T11:59:00.123456Z",
        "reportingComponent": "kubelet",
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "type": "Normal"
    });
    // 59.876544s ago: Go truncates toward zero.
    assert_eq!(
        row("", "Event", &ev)[..9],
        [
            json!("59s"),
            json!("Normal"),
            json!("Starting"),
            json!("node"),
            json!(""),
            json!("kubelet, node-1"),
            json!("Starting kubelet."),
            json!("59s"),
            json!(1),
        ]
    );
}

#[test]
fn events_k8s_io_event_row() {
    let ev = json!({
        "metadata": meta("web.17c", 300),
        "eventTime": "2024-05-01T11:55:00.000000Z",
        "series": {"count": 5, "lastObservedTime": "2024-05-01T11:59:15.000000Z"},
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-cp-1",
        "action": "Scheduling",
        "reason": "FailedScheduling",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "note": "0/3 nodes are available: 3 Insufficient cpu.",
        "type": "Warning"
    });
    assert_eq!(
        row("events.k8s.io", "Event", &ev),
        [
            json!("45s"),
            json!("Warning"),
            json!("FailedScheduling"),
            json!("pod/web"),
            json!(""),
            json!("default-scheduler, default-scheduler-cp-1"),
            json!("0/3 nodes are available: 3 Insufficient cpu."),
            json!("5m"),
            json!(5),
            json!("web.17c"),
        ]
    );
    let legacy = json!({
        "metadata": meta("old", 60),
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up replica set web-1 to 3",
        "deprecatedSource": {"component": "deployment-controller"},
        "deprecatedFirstTimestamp": ago(3600),
        "deprecatedLastTimestamp": ago(120),
        "deprecatedCount": 4,
        "type": "Normal",
        "reason": "ScalingReplicaSet"
    });
    assert_eq!(
        row("events.k8s.io", "Event", &legacy)[..9],
        [
            json!("2m"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up replica set web-1 to 3"),
            json!("60m"),
            json!(4),
        ]
    );
}

// --- storage -------------------------------------------------------------------------

#[test]
fn persistent_volume_rows() {
    let pv = json!({
        "metadata": {"name": "pv-1", "creationTimestamp": ago(86400),
                     "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
            "claimRef": {"namespace": "default", "name": "data-db-0"}
        },
        "status": {"phase": "Bound"}
    });
    assert_eq!(
        row("", "PersistentVolume", &pv),
        [
            json!("pv-1"),
            json!("10Gi"),
            json!("RWO,RWX"),
            json!("Delete"),
            json!("Bound"),
            json!("default/data-db-0"),
            json!("standard"),
            json!("<unset>"),
            json!(""),
            json!("24h"),
            json!("Filesystem"),
        ]
    );
    let mut released = pv.clone();
    released["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"] =
        json!("legacy");
    released["metadata"]["deletionTimestamp"] = json!(ago(0));
    released["spec"]["volumeAttributesClassName"] = json!("gold");
    let cells = row("", "PersistentVolume", &released);
    assert_eq!(cells[4], json!("Terminating"));
    assert_eq!(cells[6..8], [json!("legacy"), json!("gold")]);
    assert_eq!(
        row("", "PersistentVolume", &json!({}))[1..8],
        [
            json!("0"),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!("<unset>")
        ]
    );
}

#[test]
fn persistent_volume_claim_rows() {
    let bound = json!({
        "metadata": meta("data-db-0", 3600),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "standard", "volumeName": "pvc-123", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "2Gi"}}
    });
    assert_eq!(
        row("", "PersistentVolumeClaim", &bound),
        [
            json!("data-db-0"),
            json!("Bound"),
            json!("pvc-123"),
            json!("2Gi"),
            json!("RWO"),
            json!("standard"),
            json!("<unset>"),
            json!("60m"),
            json!("Filesystem"),
        ]
    );
    let pending = json!({
        "metadata": meta("claim", 30),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}
    });
    assert_eq!(
        row("", "PersistentVolumeClaim", &pending),
        [
            json!("claim"),
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!("<unset>"),
            json!("30s"),
            json!("<unset>"),
        ]
    );
}

fn storage_class(name: &str, age: i64, default: bool) -> Value {
    let mut sc = json!({
        "metadata": {"name": name, "creationTimestamp": ago(age)},
        "provisioner": "rancher.io/local-path"
    });
    if default {
        sc["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
    }
    sc
}

#[test]
fn storage_class_rows() {
    let mut sc = storage_class("standard", 86400 * 3, true);
    sc["reclaimPolicy"] = json!("Retain");
    sc["volumeBindingMode"] = json!("WaitForFirstConsumer");
    sc["allowVolumeExpansion"] = json!(true);
    assert_eq!(
        row("storage.k8s.io", "StorageClass", &sc),
        [
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Retain"),
            json!("WaitForFirstConsumer"),
            json!(true),
            json!("3d"),
        ]
    );
    let plain = storage_class("fast", 60, false);
    assert_eq!(
        row("storage.k8s.io", "StorageClass", &plain)[..5],
        [
            json!("fast"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("Immediate"),
            json!(false)
        ]
    );
}

#[test]
fn storage_class_effective_default() {
    let classes = [
        storage_class("old-default", 7200, true),
        storage_class("new-default", 60, true),
        storage_class("plain", 10, false),
    ];
    assert_eq!(
        effective_default_storage_class(&classes).as_deref(),
        Some("new-default")
    );
    let tie = [storage_class("b", 60, true), storage_class("a", 60, true)];
    assert_eq!(effective_default_storage_class(&tie).as_deref(), Some("a"));
    assert_eq!(effective_default_storage_class(&classes[2..]), None);

    let effective = effective_default_storage_class(&classes);
    let rows: Vec<Vec<Value>> = classes
        .iter()
        .map(|sc| {
            let mut r = cells("storage.k8s.io", "StorageClass", sc, now());
            mark_default_storage_class(&mut r, effective.as_deref());
            r
        })
        .collect();
    assert_eq!(rows[0][0], json!("old-default"));
    assert_eq!(rows[1][0], json!("new-default (default)"));
    assert_eq!(rows[2][0], json!("plain"));
}

// --- rbac, coordination, policy, scheduling, autoscaling, quota ---------------------------

#[test]
fn roles_use_default_columns() {
    let role = json!({"metadata": {"name": "pod-reader", "creationTimestamp": "2024-04-30T08:15:00Z"}, "rules": []});
    assert_eq!(
        row("rbac.authorization.k8s.io", "Role", &role),
        [json!("pod-reader"), json!("2024-04-30T08:15:00Z")]
    );
    let fractional =
        json!({"metadata": {"name": "x", "creationTimestamp": "2024-04-30T08:15:00.75+02:00"}});
    assert_eq!(
        row("rbac.authorization.k8s.io", "ClusterRole", &fractional)[1],
        json!("2024-04-30T06:15:00Z")
    );
    // Go formats the zero time when the field is missing.
    assert_eq!(
        row("", "LimitRange", &json!({"metadata": {"name": "limits"}})),
        [json!("limits"), json!("0001-01-01T00:00:00Z")]
    );
}

#[test]
fn role_binding_rows() {
    let rb = json!({
        "metadata": meta("read-pods", 3600),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [
            {"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "User", "name": "joe"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}
        ]
    });
    assert_eq!(
        row("rbac.authorization.k8s.io", "RoleBinding", &rb),
        [
            json!("read-pods"),
            json!("Role/pod-reader"),
            json!("60m"),
            json!("jane, joe"),
            json!("devs"),
            json!("ci/builder"),
        ]
    );
    let crb = json!({
        "metadata": meta("cluster-admin", 86400),
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:masters"}]
    });
    assert_eq!(
        row("rbac.authorization.k8s.io", "ClusterRoleBinding", &crb),
        [
            json!("cluster-admin"),
            json!("ClusterRole/cluster-admin"),
            json!("24h"),
            json!(""),
            json!("system:masters"),
            json!(""),
        ]
    );
}

#[test]
fn lease_pdb_priority_class() {
    let lease = json!({"metadata": meta("kube-scheduler", 3600), "spec": {"holderIdentity": "cp-1_abc", "leaseDurationSeconds": 15}});
    assert_eq!(
        row("coordination.k8s.io", "Lease", &lease),
        [json!("kube-scheduler"), json!("cp-1_abc"), json!("60m")]
    );
    assert_eq!(
        row("coordination.k8s.io", "Lease", &json!({}))[1],
        json!("")
    );

    let pdb = json!({
        "metadata": meta("web-pdb", 600),
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"disruptionsAllowed": 1}
    });
    assert_eq!(
        row("policy", "PodDisruptionBudget", &pdb),
        [
            json!("web-pdb"),
            json!("2"),
            json!("N/A"),
            json!(1),
            json!("10m")
        ]
    );
    let pct = json!({"metadata": meta("p", 1), "spec": {"maxUnavailable": "25%"}});
    assert_eq!(
        row("policy", "PodDisruptionBudget", &pct)[1..4],
        [json!("N/A"), json!("25%"), json!(0)]
    );

    let pc = json!({
        "metadata": meta("system-cluster-critical", 86400 * 100),
        "value": 2000000000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"
    });
    assert_eq!(
        row("scheduling.k8s.io", "PriorityClass", &pc),
        [
            json!("system-cluster-critical"),
            json!(2000000000),
            json!(false),
            json!("100d"),
            json!("PreemptLowerPriority"),
        ]
    );
}

fn hpa(metrics: Value, current: Value) -> Value {
    json!({
        "metadata": meta("web", 600),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10, "metrics": metrics
        },
        "status": {"currentReplicas": 3, "currentMetrics": current}
    })
}

#[test]
fn hpa_rows() {
    let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}});
    let h = hpa(
        json!([cpu.clone()]),
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50, "averageValue": "250m"}}}]),
    );
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &h),
        [
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 50%/80%"),
            json!("1"),
            json!(10),
            json!(3),
            json!("10m"),
        ]
    );
    let unknown = hpa(json!([cpu.clone()]), json!([]));
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &unknown)[2],
        json!("cpu: <unknown>/80%")
    );

    let mem = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}});
    let pods = json!({"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}});
    let many = hpa(
        json!([cpu, mem, pods]),
        json!([
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}},
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "300Mi"}}}
        ]),
    );
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &many)[2],
        json!("cpu: 12%/80%, memory: 300Mi/500Mi + 1 more...")
    );

    let external = hpa(
        json!([{"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}},
               {"type": "Object", "object": {"metric": {"name": "hits"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]),
        json!([{"type": "External", "external": {"current": {"value": "12"}}}]),
    );
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &external)[2],
        json!("12/30, <unknown>/10 (avg)")
    );

    let v1 = json!({
        "metadata": meta("legacy", 60),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "legacy"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
        "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 35}
    });
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &v1)[2..6],
        [json!("cpu: 35%/70%"), json!("<unset>"), json!(5), json!(1)]
    );
    let none = json!({"metadata": meta("none", 60), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}}});
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &none)[2],
        json!("<none>")
    );
}

#[test]
fn resource_quota_row() {
    let rq = json!({
        "metadata": meta("compute", 3600),
        "spec": {"hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi", "limits.cpu": "8"}},
        "status": {
            "hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi", "limits.cpu": "8"},
            "used": {"pods": "3", "requests.cpu": "1500m", "limits.cpu": "2"}
        }
    });
    assert_eq!(
        row("", "ResourceQuota", &rq),
        [
            json!("compute"),
            json!("pods: 3/10, requests.cpu: 1500m/4"),
            json!("limits.cpu: 2/8, limits.memory: 0/8Gi"),
            json!("60m"),
        ]
    );
    // Nothing in status yet (quota controller has not run).
    assert_eq!(
        row("", "ResourceQuota", &json!({"metadata": meta("q", 1)}))[1..3],
        [json!(""), json!("")]
    );
}

// --- extras ----------------------------------------------------------------------------

#[test]
fn api_service_rows() {
    let local = json!({
        "metadata": meta("v1.apps", 86400),
        "spec": {"group": "apps", "version": "v1"},
        "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}
    });
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &local),
        [
            json!("v1.apps"),
            json!("Local"),
            json!("True"),
            json!("24h")
        ]
    );
    let remote = json!({
        "metadata": meta("v1beta1.metrics.k8s.io", 60),
        "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}
    });
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &remote)[1..3],
        [
            json!("kube-system/metrics-server"),
            json!("False (MissingEndpoints)")
        ]
    );
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &json!({}))[2],
        json!("Unknown")
    );
}

#[test]
fn csr_and_flowcontrol_rows() {
    let csr = json!({
        "metadata": meta("node-csr-abc", 120),
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:bootstrap:abcdef",
                 "expirationSeconds": 86400},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}
    });
    assert_eq!(
        row("certificates.k8s.io", "CertificateSigningRequest", &csr),
        [
            json!("node-csr-abc"),
            json!("2m"),
            json!("kubernetes.io/kube-apiserver-client-kubelet"),
            json!("system:bootstrap:abcdef"),
            json!("24h"),
            json!("Approved,Issued"),
        ]
    );
    assert_eq!(
        row(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            &json!({})
        )[2..6],
        [
            json!("<none>"),
            json!(""),
            json!("<none>"),
            json!("Pending")
        ]
    );

    let fs = json!({
        "metadata": meta("exempt", 600),
        "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1,
                 "distinguisherMethod": {"type": "ByUser"}},
        "status": {"conditions": [{"type": "Dangling", "status": "False"}]}
    });
    assert_eq!(
        row("flowcontrol.apiserver.k8s.io", "FlowSchema", &fs),
        [
            json!("exempt"),
            json!("exempt"),
            json!(1),
            json!("ByUser"),
            json!("10m"),
            json!("False")
        ]
    );
    let plc = json!({
        "metadata": meta("workload-low", 600),
        "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
                 "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}
    });
    assert_eq!(
        row(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            &plc
        ),
        [
            json!("workload-low"),
            json!("Limited"),
            json!(100),
            json!(128),
            json!(6),
            json!(50),
            json!("10m")
        ]
    );
    let exempt = json!({"metadata": meta("exempt", 600), "spec": {"type": "Exempt", "exempt": {}}});
    assert_eq!(
        row(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            &exempt
        )[2..6],
        [
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn storage_and_admission_extras() {
    let driver = json!({"metadata": meta("ebs.csi.aws.com", 60), "spec": {"podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
    assert_eq!(
        row("storage.k8s.io", "CSIDriver", &driver),
        [
            json!("ebs.csi.aws.com"),
            json!(true),
            json!(true),
            json!(false),
            json!("<unset>"),
            json!(false),
            json!("Persistent,Ephemeral"),
            json!("60s"),
        ]
    );
    let va = json!({"metadata": meta("csi-123", 60), "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "n1",
                    "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
    assert_eq!(
        row("storage.k8s.io", "VolumeAttachment", &va),
        [
            json!("csi-123"),
            json!("ebs.csi.aws.com"),
            json!("pv-1"),
            json!("n1"),
            json!(true),
            json!("60s")
        ]
    );
    let hook = json!({"metadata": meta("cert-manager-webhook", 60), "webhooks": [{"name": "a"}, {"name": "b"}]});
    assert_eq!(
        row(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            &hook
        ),
        [json!("cert-manager-webhook"), json!(2), json!("60s")]
    );
    let rc = json!({"metadata": meta("gvisor", 60), "handler": "runsc"});
    assert_eq!(
        row("node.k8s.io", "RuntimeClass", &rc),
        [json!("gvisor"), json!("runsc"), json!("60s")]
    );
}

// --- robustness --------------------------------------------------------------------------

const ALL_KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "Node"),
    ("", "Event"),
    ("", "Namespace"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "ComponentStatus"),
    ("", "ConfigMap"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("events.k8s.io", "Event"),
    ("policy", "PodDisruptionBudget"),
    ("apps", "ReplicaSet"),
    ("apps", "DaemonSet"),
    ("apps", "StatefulSet"),
    ("apps", "Deployment"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("coordination.k8s.io", "Lease"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "CSIDriver"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("discovery.k8s.io", "EndpointSlice"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("apiregistration.k8s.io", "APIService"),
    ("example.com", "Widget"),
];

#[test]
fn partial_and_malformed_objects_never_panic() {
    // Wrong types everywhere a printer looks: strings for objects, objects for arrays, ...
    let hostile = json!({
        "metadata": {"name": 5, "creationTimestamp": "not a time", "labels": "x",
                     "annotations": [], "deletionTimestamp": 7, "ownerReferences": {}},
        "spec": {"containers": {"a": 1}, "initContainers": "x", "replicas": "3", "selector": [],
                 "ports": [1, "x", null], "metrics": [{"type": "Resource"}, {"type": "External"}, {}],
                 "podSelector": "x", "readinessGates": [null], "claimRef": "x", "capacity": []},
        "status": {"containerStatuses": [null, 1, {"state": "x"}], "initContainerStatuses": [{}],
                   "conditions": "x", "hard": {"pods": {}}, "loadBalancer": {"ingress": [1]},
                   "currentMetrics": "x", "addresses": [{}]},
        "subsets": [{"addresses": [1], "ports": [{}]}],
        "endpoints": [{"addresses": [1, null]}],
        "subjects": [1], "series": {}, "data": [], "webhooks": {}
    });
    for value in [json!({}), json!(null), json!([]), json!("pod"), hostile] {
        for (group, kind) in ALL_KINDS {
            let cells = cells(group, kind, &value, now());
            assert_eq!(cells.len(), columns(group, kind).len(), "{group}/{kind}");
        }
    }
}

#[test]
fn every_kind_has_exactly_one_name_column() {
    for (group, kind) in ALL_KINDS {
        let cols = columns(group, kind);
        let names = cols.iter().filter(|c| c.format == "name").count();
        let expected = if *kind == "VolumeAttachment" { 2 } else { 1 };
        assert_eq!(names, expected, "{group}/{kind}");
    }
}

#[test]
fn future_creation_timestamps() {
    let skewed = json!({"metadata": {"name": "x", "creationTimestamp": ago(-1)}, "status": {"phase": "Active"}});
    assert_eq!(row("", "Namespace", &skewed)[2], json!("0s"));
    let future = json!({"metadata": {"name": "x", "creationTimestamp": ago(-60)}, "status": {"phase": "Active"}});
    assert_eq!(row("", "Namespace", &future)[2], json!("<invalid>"));
}

#[test]
fn group_must_match() {
    // A Deployment in some CRD group is not printed like apps/v1 Deployments.
    assert_eq!(names("example.com", "Deployment"), ["Name", "Created At"]);
    assert_eq!(names("", "Deployment"), ["Name", "Created At"]);
}

#[test]
fn small_core_and_networking_extras() {
    let tmpl = json!({
        "metadata": meta("tmpl", 60),
        "template": {"metadata": {"labels": {"run": "x", "app": "y"}},
                     "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "alpine"}]}}
    });
    assert_eq!(
        row("", "PodTemplate", &tmpl),
        [
            json!("tmpl"),
            json!("a,b"),
            json!("busybox,alpine"),
            json!("app=y,run=x")
        ]
    );

    let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [
        {"type": "Healthy", "status": "True", "message": "ok"}
    ]});
    assert_eq!(
        row("", "ComponentStatus", &cs),
        [json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
    );
    assert_eq!(row("", "ComponentStatus", &json!({}))[1], json!("Unknown"));

    let class = json!({"metadata": meta("nginx", 60), "spec": {"controller": "k8s.io/ingress-nginx",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    assert_eq!(
        row("networking.k8s.io", "IngressClass", &class),
        [
            json!("nginx"),
            json!("k8s.io/ingress-nginx"),
            json!("IngressParameters.k8s.example.com/external-lb"),
            json!("60s")
        ]
    );

    let cidr = json!({"metadata": meta("kubernetes", 60), "spec": {"cidrs": ["10.96.0.0/16", "fd00:10:96::/112"]}});
    assert_eq!(
        row("networking.k8s.io", "ServiceCIDR", &cidr),
        [
            json!("kubernetes"),
            json!("10.96.0.0/16,fd00:10:96::/112"),
            json!("60s")
        ]
    );

    // Upstream declares two columns but emits three cells for IPAddress; kubectl ignores
    // cells beyond the columns, and the row is reproduced as-is.
    let ip = json!({"metadata": meta("10.96.0.1", 60), "spec": {"parentRef": {
        "group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}});
    assert_eq!(
        names("networking.k8s.io", "IPAddress"),
        ["Name", "ParentRef"]
    );
    assert_eq!(
        cells("networking.k8s.io", "IPAddress", &ip, now()),
        [
            json!("10.96.0.1"),
            json!("services/default/kubernetes"),
            json!("60s")
        ]
    );
    let gw = json!({"metadata": {"name": "192.0.2.5"}, "spec": {"parentRef": {
        "group": "gateway.networking.k8s.io", "resource": "Gateways", "name": "gw"}}});
    assert_eq!(
        cells("networking.k8s.io", "IPAddress", &gw, now())[1],
        json!("gateways.gateway.networking.k8s.io/gw")
    );

    let node = json!({"metadata": meta("n1", 60), "spec": {"drivers": [{"name": "ebs"}]}});
    assert_eq!(
        row("storage.k8s.io", "CSINode", &node),
        [json!("n1"), json!(1), json!("60s")]
    );
}
