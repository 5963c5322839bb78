//! StatefulSets and DaemonSets against a real API server, scheduler and controllers, with
//! test kubelets running the pods and the real kubectl where a user would use it.

mod common;

use common::kubelet::{FakeNodes, FateFn, PodFate};
use common::{ApiClient, Cluster, wait_for_async};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

const WEB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: nginx}
  ports: [{port: 80, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 3
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.21
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

/// One observed pod state, in watch order.
#[derive(Debug, Clone)]
struct Seen {
    kind: String,
    name: String,
    ready: bool,
    deleting: bool,
    image: String,
}

/// Records every pod event matching `selector` in order.
async fn record_pods(api: &ApiClient, selector: &str) -> Arc<Mutex<Vec<Seen>>> {
    let mut rx = api
        .watch(&format!(
            "/api/v1/namespaces/default/pods?watch=1&labelSelector={selector}"
        ))
        .await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let out = log.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let o = &ev["object"];
            let ready = o["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            out.lock().expect("lock").push(Seen {
                kind: ev["type"].as_str().unwrap_or("").to_string(),
                name: o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                ready,
                deleting: !o["metadata"]["deletionTimestamp"].is_null(),
                image: o["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            });
        }
    });
    log
}

fn first(log: &[Seen], from: usize, f: impl Fn(&Seen) -> bool) -> Option<usize> {
    log.iter()
        .enumerate()
        .skip(from)
        .find(|(_, s)| f(s))
        .map(|(i, _)| i)
}

async fn pod_names(pods: &Api<Pod>, selector: &str) -> Vec<String> {
    let mut names: Vec<String> = pods
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    names
}

/// Waits until the pods matching `selector` are exactly `want`, Running and Ready, not
/// terminating, and (if given) all on `image`.
async fn wait_pods_ready(pods: &Api<Pod>, selector: &str, want: &[&str], image: Option<&str>) {
    wait_for_async(&format!("pods {want:?} ready"), || async {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .ok()?;
        let mut names: Vec<String> = Vec::new();
        for p in &list.items {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let img = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone());
            if !ready
                || p.metadata.deletion_timestamp.is_some()
                || image.is_some_and(|i| img.as_deref() != Some(i))
            {
                return None;
            }
            names.push(p.metadata.name.clone()?);
        }
        names.sort();
        (names == want).then_some(())
    })
    .await;
}

async fn sts_status(sets: &Api<StatefulSet>, name: &str) -> Value {
    serde_json::to_value(sets.get(name).await.expect("get sts").status).expect("status")
}

#[tokio::test(flavor = "multi_thread")]
async fn statefulset_orders_pods_claims_scaling_and_rolling_updates() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let client = api.client.clone();
    // web-0 starts out NotReady: nothing else may be created until it is Ready.
    let not_ready = Arc::new(Mutex::new(HashSet::from(["web-0".to_string()])));
    let nr = not_ready.clone();
    let fate: FateFn = Arc::new(move |p: &Pod| {
        let name = p.metadata.name.clone().unwrap_or_default();
        if nr.lock().expect("lock").contains(&name) {
            PodFate::NotReady
        } else {
            PodFate::Ready
        }
    });
    let _nodes = FakeNodes::start(
        client.clone(),
        &[("n1", &[], "4", "8Gi"), ("n2", &[], "4", "8Gi")],
        Some(fate),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let log = record_pods(&api, "app%3Dnginx").await;

    c.ok_in(&["apply", "-f", "-"], WEB);
    wait_for_async("web-0 running but not ready", || async {
        let p = pods.get("web-0").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    // A second set going through the controller proves it has been busy since web-0 ran.
    c.ok_in(
        &["apply", "-f", "-"],
        &WEB.split("---")
            .nth(1)
            .expect("sts part")
            .replace("name: web", "name: probe")
            .replace("app: nginx", "app: probe")
            .replace("replicas: 3", "replicas: 1"),
    );
    wait_pods_ready(&pods, "app=probe", &["probe-0"], None).await;
    assert_eq!(pod_names(&pods, "app=nginx").await, vec!["web-0"]);
    let st = sts_status(&sets, "web").await;
    assert_eq!(
        (st["replicas"].as_i64(), st["readyReplicas"].as_i64()),
        (Some(1), Some(0)),
        "{st}"
    );

    // web-0 turns Ready (the kubelet sees the change on the pod's next event).
    not_ready.lock().expect("lock").clear();
    c.ok(&["annotate", "pod", "web-0", "test/poke=1"]);
    wait_pods_ready(&pods, "app=nginx", &["web-0", "web-1", "web-2"], None).await;
    {
        let log = log.lock().expect("lock").clone();
        for (prev, next) in [("web-0", "web-1"), ("web-1", "web-2")] {
            let ready = first(&log, 0, |s| s.name == prev && s.ready).expect("ready seen");
            let added = first(&log, 0, |s| s.name == next && s.kind == "ADDED").expect("added");
            assert!(
                ready < added,
                "{next} created before {prev} was Ready: {log:?}"
            );
        }
    }
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    // kubectl reports any set with rollingUpdate (defaulted) as partitioned.
    assert!(out.contains("roll out complete: 3 new pods"), "{out}");

    // Identity, storage and revision of each pod.
    let st = sts_status(&sets, "web").await;
    let revision = st["updateRevision"]
        .as_str()
        .expect("updateRevision")
        .to_string();
    assert_eq!(
        st["currentRevision"].as_str(),
        Some(revision.as_str()),
        "{st}"
    );
    for i in 0..3 {
        let name = format!("web-{i}");
        let p = pods.get(&name).await.expect("pod");
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("statefulset.kubernetes.io/pod-name"),
            Some(&name)
        );
        assert_eq!(
            labels.get("apps.kubernetes.io/pod-index"),
            Some(&i.to_string())
        );
        assert_eq!(labels.get("controller-revision-hash"), Some(&revision));
        let spec = p.spec.expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some(name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let claim = format!("www-web-{i}");
        let vol = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "www")
            .and_then(|v| v.persistent_volume_claim.clone())
            .expect("www volume");
        assert_eq!(vol.claim_name, claim);
        let pvc = claims.get(&claim).await.expect("claim exists");
        assert_eq!(
            pvc.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("nginx")
        );
        // Retain (the default): the claim outlives pods and set.
        assert!(pvc.metadata.owner_references.is_none_or(|r| r.is_empty()));
    }
    let revs = c.json(&["get", "controllerrevisions", "-l", "app=nginx"]);
    assert_eq!(revs["items"].as_array().map(Vec::len), Some(1), "{revs}");
    assert_eq!(
        revs["items"][0]["metadata"]["name"].as_str(),
        Some(revision.as_str())
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains("SuccessfulCreate: create Pod web-0 in StatefulSet web successful"),
        "{events}"
    );
    assert!(
        events.contains(
            "SuccessfulCreate: create Claim www-web-2 Pod web-2 in StatefulSet web success"
        ),
        "{events}"
    );

    // Scale down: web-2 goes first, and web-1 only once web-2 is gone.
    let mark = log.lock().expect("lock").len();
    c.ok(&["scale", "statefulset", "web", "--replicas=1"]);
    wait_pods_ready(&pods, "app=nginx", &["web-0"], None).await;
    {
        let log = log.lock().expect("lock").clone();
        let gone2 =
            first(&log, mark, |s| s.name == "web-2" && s.kind == "DELETED").expect("web-2 deleted");
        let del1 = first(&log, mark, |s| s.name == "web-1" && s.deleting).expect("web-1 deleting");
        assert!(
            gone2 < del1,
            "web-1 deleted before web-2 was gone: {:?}",
            &log[mark..]
        );
    }
    // The claims stay (Retain).
    for i in 0..3 {
        claims
            .get(&format!("www-web-{i}"))
            .await
            .expect("claim kept");
    }
    c.ok(&["scale", "statefulset", "web", "--replicas=3"]);
    wait_pods_ready(&pods, "app=nginx", &["web-0", "web-1", "web-2"], None).await;

    // Rolling update: replaced from the highest ordinal down, each after the previous is Ready.
    let mark = log.lock().expect("lock").len();
    c.ok(&[
        "set",
        "image",
        "statefulset/web",
        "nginx=registry.k8s.io/nginx-slim:0.22",
    ]);
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert!(out.contains("roll out complete: 3 new pods"), "{out}");
    wait_pods_ready(
        &pods,
        "app=nginx",
        &["web-0", "web-1", "web-2"],
        Some("registry.k8s.io/nginx-slim:0.22"),
    )
    .await;
    {
        let log = log.lock().expect("lock").clone();
        let del =
            |n: &str| first(&log, mark, |s| s.name == n && s.deleting).expect("deleted for update");
        let ready_new = |n: &str| {
            first(&log, mark, |s| {
                s.name == n && s.ready && s.image.ends_with("0.22")
            })
            .expect("new pod ready")
        };
        assert!(
            del("web-2") < del("web-1") && del("web-1") < del("web-0"),
            "{:?}",
            &log[mark..]
        );
        assert!(ready_new("web-2") < del("web-1"), "{:?}", &log[mark..]);
        assert!(ready_new("web-1") < del("web-0"), "{:?}", &log[mark..]);
    }
    let st = sts_status(&sets, "web").await;
    assert_eq!(st["currentRevision"], st["updateRevision"], "{st}");
    assert_eq!(st["updatedReplicas"].as_i64(), Some(3), "{st}");
    let revs = c.json(&["get", "controllerrevisions", "-l", "app=nginx"]);
    assert_eq!(revs["items"].as_array().map(Vec::len), Some(2), "{revs}");

    // A partition stops the update above it: only web-2 moves to the new template.
    c.ok(&[
        "patch",
        "statefulset",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}"#,
    ]);
    c.ok(&[
        "set",
        "image",
        "statefulset/web",
        "nginx=registry.k8s.io/nginx-slim:0.23",
    ]);
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert!(
        out.contains("partitioned roll out complete: 1 new pods"),
        "{out}"
    );
    wait_for_async("web-2 on the new image", || async {
        let p = pods.get("web-2").await.ok()?;
        let img = p.spec?.containers.first()?.image.clone()?;
        (img.ends_with("0.23") && p.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    let st = sts_status(&sets, "web").await;
    assert_ne!(st["currentRevision"], st["updateRevision"], "{st}");
    assert_eq!(st["updatedReplicas"].as_i64(), Some(1), "{st}");
    for name in ["web-0", "web-1"] {
        let p = pods.get(name).await.expect("pod");
        let img = p
            .spec
            .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
        assert_eq!(
            img.as_deref(),
            Some("registry.k8s.io/nginx-slim:0.22"),
            "{name}"
        );
    }
    // Lowering the partition lets the rest follow.
    c.ok(&[
        "patch",
        "statefulset",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert!(out.contains("roll out complete: 3 new pods"), "{out}");
    wait_pods_ready(
        &pods,
        "app=nginx",
        &["web-0", "web-1", "web-2"],
        Some("registry.k8s.io/nginx-slim:0.23"),
    )
    .await;

    // The revisions serve kubectl's history and undo.
    let history = c.ok(&["rollout", "history", "statefulset/web"]);
    for rev in ["1", "2", "3"] {
        assert!(
            history.lines().any(|l| l.trim_start().starts_with(rev)),
            "{history}"
        );
    }
    c.ok(&["rollout", "undo", "statefulset/web"]);
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert!(out.contains("roll out complete: 3 new pods"), "{out}");
    wait_pods_ready(
        &pods,
        "app=nginx",
        &["web-0", "web-1", "web-2"],
        Some("registry.k8s.io/nginx-slim:0.22"),
    )
    .await;
    // Rolling back reuses revision 2 as revision 4 rather than recording a copy.
    let revs = c.json(&[
        "get",
        "controllerrevisions",
        "-l",
        "app=nginx",
        "--sort-by=.revision",
    ]);
    let numbers: Vec<i64> = revs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .collect();
    assert_eq!(numbers, vec![1, 3, 4], "{revs}");
    let st = sts_status(&sets, "web").await;
    let newest = revs["items"][2]["metadata"]["name"].as_str().expect("name");
    assert_eq!(st["updateRevision"].as_str(), Some(newest), "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn statefulset_parallel_management_and_claim_retention() {
    let mut c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let client = api.client.clone();
    let _nodes = FakeNodes::start(client.clone(), &[("n1", &[], "4", "8Gi")], None).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    c.ok_in(
        &["apply", "-f", "-"],
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Delete}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:17}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#,
    );
    wait_pods_ready(&pods, "app=db", &["db-0", "db-1", "db-2"], None).await;
    let set_uid = c.ok(&["get", "sts", "db", "-o", "jsonpath={.metadata.uid}"]);
    // Delete with the set: each claim is owned by the set.
    for i in 0..3 {
        let pvc = claims.get(&format!("data-db-{i}")).await.expect("claim");
        let refs = pvc.metadata.owner_references.unwrap_or_default();
        assert_eq!(refs.len(), 1, "{refs:?}");
        assert_eq!(
            (refs[0].kind.as_str(), refs[0].uid.as_str()),
            ("StatefulSet", set_uid.as_str())
        );
        assert_eq!(refs[0].controller, Some(true));
    }
    // Delete on scale-down: the claim of a removed pod passes to the pod, so it goes with it.
    let pod2_uid = pods
        .get("db-2")
        .await
        .expect("db-2")
        .metadata
        .uid
        .expect("uid");
    c.ok(&["scale", "statefulset", "db", "--replicas=2"]);
    wait_pods_ready(&pods, "app=db", &["db-0", "db-1"], None).await;
    // The garbage collector then removes the claim with its owner, db-2.
    wait_for_async("data-db-2 collected with its pod", || async {
        claims
            .get_opt("data-db-2")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let _ = pod2_uid;
    let out = c.ok(&["rollout", "status", "statefulset/db", "--timeout=60s"]);
    assert!(out.contains("complete"), "{out}");

    // An orphan that looks like a member is adopted, then removed as beyond the replicas.
    c.ok_in(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: db-9, labels: {app: db}}\nspec:\n  containers: [{name: db, image: postgres:17}]\n",
    );
    wait_for_async("db-9 adopted and removed", || async {
        pods.get_opt("db-9").await.ok()?.is_none().then_some(())
    })
    .await;
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=db",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains("delete Pod db-9 in StatefulSet db successful"),
        "{events}"
    );
    wait_pods_ready(&pods, "app=db", &["db-0", "db-1"], None).await;

    // A restarted controller manager takes the existing set and its revision as they are.
    // (The server comes back on another port: the test kubelet follows.)
    drop(_nodes);
    c.control.restart();
    let client = ApiClient::new(&c).await.client;
    let _nodes = FakeNodes::start(client.clone(), &[("n1", &[], "4", "8Gi")], None).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    c.ok(&["scale", "statefulset", "db", "--replicas=3"]);
    // db-2 comes back with a fresh claim owned by the set.
    wait_pods_ready(&pods, "app=db", &["db-0", "db-1", "db-2"], None).await;
    let pvc = claims.get("data-db-2").await.expect("new claim");
    let refs = pvc.metadata.owner_references.unwrap_or_default();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0].kind, "StatefulSet");
    let revs = c.json(&["get", "controllerrevisions", "-l", "app=db"]);
    assert_eq!(revs["items"].as_array().map(Vec::len), Some(1), "{revs}");
}

const NODE_LABELS: &[(&str, &str)] = &[];

fn ds_yaml(name: &str, image: &str, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: {image}}}]
{extra_spec}
"#
    )
}

/// Node of each live (not terminating) pod matching `selector`, once every one is Ready and
/// they are on exactly `want` nodes.
async fn wait_daemon_pods(
    pods: &Api<Pod>,
    selector: &str,
    want: &[&str],
    image: Option<&str>,
) -> BTreeMap<String, Pod> {
    wait_for_async(&format!("{selector} pods on {want:?}"), || async {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .ok()?;
        let mut by_node = BTreeMap::new();
        for p in list.items {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let node = p.spec.as_ref()?.node_name.clone().unwrap_or_default();
            let img = p.spec.as_ref()?.containers.first()?.image.clone();
            if !ready
                || p.metadata.deletion_timestamp.is_some()
                || image.is_some_and(|i| img.as_deref() != Some(i))
            {
                return None;
            }
            if by_node.insert(node, p).is_some() {
                return None;
            }
        }
        let nodes: Vec<&str> = by_node.keys().map(String::as_str).collect();
        (nodes == want).then_some(by_node)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn daemonset_runs_one_pod_per_eligible_node_and_rolls_updates() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let client = api.client.clone();
    let _nodes = FakeNodes::start(
        client.clone(),
        &[
            ("n1", NODE_LABELS, "2", "4Gi"),
            ("n2", NODE_LABELS, "2", "4Gi"),
            ("n3", NODE_LABELS, "2", "4Gi"),
        ],
        None,
    )
    .await;
    c.ok(&["taint", "node", "n3", "dedicated=db:NoSchedule"]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<DaemonSet> = Api::namespaced(client.clone(), "default");

    // The tainted node gets no pod...
    c.ok_in(&["apply", "-f", "-"], &ds_yaml("x", "agent:1", ""));
    let placed = wait_daemon_pods(&pods, "app=x", &["n1", "n2"], None).await;
    let out = c.ok(&["rollout", "status", "ds/x", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let pod = placed.get("n1").expect("pod on n1");
    let spec = pod.spec.clone().expect("spec");
    let terms = serde_json::to_value(&spec.affinity).expect("affinity");
    assert_eq!(
        terms["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])
    );
    let tolerations: Vec<String> = spec
        .tolerations
        .iter()
        .flatten()
        .map(|t| {
            format!(
                "{}:{}",
                t.key.clone().unwrap_or_default(),
                t.effect.clone().unwrap_or_default()
            )
        })
        .collect();
    for want in [
        "node.kubernetes.io/not-ready:NoExecute",
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/disk-pressure:NoSchedule",
        "node.kubernetes.io/memory-pressure:NoSchedule",
        "node.kubernetes.io/pid-pressure:NoSchedule",
        "node.kubernetes.io/unschedulable:NoSchedule",
    ] {
        assert!(
            tolerations.iter().any(|t| t == want),
            "{want} missing from {tolerations:?}"
        );
    }
    assert!(pod.metadata.generate_name.as_deref() == Some("x-"));
    let owner = pod.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(
        (
            owner[0].kind.as_str(),
            owner[0].name.as_str(),
            owner[0].controller
        ),
        ("DaemonSet", "x", Some(true))
    );
    let st = serde_json::to_value(sets.get("x").await.expect("ds").status).expect("status");
    assert_eq!(
        (
            st["desiredNumberScheduled"].as_i64(),
            st["currentNumberScheduled"].as_i64(),
            st["numberReady"].as_i64(),
            st["numberAvailable"].as_i64(),
            st["updatedNumberScheduled"].as_i64(),
            st["numberMisscheduled"].as_i64()
        ),
        (Some(2), Some(2), Some(2), Some(2), Some(2), Some(0)),
        "{st}"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=x",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains(&format!(
            "Created pod: {}",
            pod.metadata.name.clone().unwrap_or_default()
        )),
        "{events}"
    );

    // ...unless the template tolerates its taint.
    c.ok_in(
        &["apply", "-f", "-"],
        &ds_yaml(
            "tol",
            "agent:1",
            "      tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]",
        ),
    );
    wait_daemon_pods(&pods, "app=tol", &["n1", "n2", "n3"], None).await;

    // A node joining later gets its pod.
    let _more = FakeNodes::start(client.clone(), &[("n4", NODE_LABELS, "2", "4Gi")], None).await;
    wait_daemon_pods(&pods, "app=x", &["n1", "n2", "n4"], None).await;

    // A node selector: pods follow the label on and off nodes.
    c.ok_in(
        &["apply", "-f", "-"],
        &ds_yaml("edge", "agent:1", "      nodeSelector: {role: edge}"),
    );
    c.ok(&["label", "node", "n1", "n2", "role=edge"]);
    wait_daemon_pods(&pods, "app=edge", &["n1", "n2"], None).await;
    c.ok(&["label", "node", "n1", "role-"]);
    wait_daemon_pods(&pods, "app=edge", &["n2"], None).await;

    // Rolling update, one node at a time (maxUnavailable 1).
    let log = record_pods(&api, "app%3Dx").await;
    c.ok(&["set", "image", "ds/x", "c=agent:2"]);
    let out = c.ok(&["rollout", "status", "ds/x", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let placed = wait_daemon_pods(&pods, "app=x", &["n1", "n2", "n4"], Some("agent:2")).await;
    {
        let log = log.lock().expect("lock").clone();
        let mut terminating: HashSet<String> = HashSet::new();
        for s in &log {
            if s.kind == "DELETED" {
                terminating.remove(&s.name);
            } else if s.deleting {
                terminating.insert(s.name.clone());
            }
            assert!(terminating.len() <= 1, "two old pods down at once: {log:?}");
        }
    }
    let hashes: HashSet<String> = placed
        .values()
        .filter_map(|p| {
            p.metadata
                .labels
                .as_ref()?
                .get("controller-revision-hash")
                .cloned()
        })
        .collect();
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    let revs = c.json(&["get", "controllerrevisions", "-l", "app=x"]);
    assert_eq!(revs["items"].as_array().map(Vec::len), Some(2), "{revs}");
    let st = serde_json::to_value(sets.get("x").await.expect("ds").status).expect("status");
    assert_eq!(
        (
            st["updatedNumberScheduled"].as_i64(),
            st["numberAvailable"].as_i64()
        ),
        (Some(3), Some(3)),
        "{st}"
    );

    // maxSurge: the new pod starts before the old one goes.
    c.ok(&[
        "patch",
        "ds",
        "x",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}"#,
    ]);
    c.ok(&["set", "image", "ds/x", "c=agent:3"]);
    let out = c.ok(&["rollout", "status", "ds/x", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_daemon_pods(&pods, "app=x", &["n1", "n2", "n4"], Some("agent:3")).await;
    let history = c.ok(&["rollout", "history", "ds/x"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('3')),
        "{history}"
    );
    c.ok(&["rollout", "undo", "ds/x"]);
    let out = c.ok(&["rollout", "status", "ds/x", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_daemon_pods(&pods, "app=x", &["n1", "n2", "n4"], Some("agent:2")).await;

    // OnDelete: pods change only when deleted.
    c.ok(&[
        "patch",
        "ds",
        "tol",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}"#,
    ]);
    c.ok(&["set", "image", "ds/tol", "c=agent:2"]);
    let before =
        wait_daemon_pods(&pods, "app=tol", &["n1", "n2", "n3", "n4"], Some("agent:1")).await;
    let victim = before["n2"].metadata.name.clone().expect("name");
    pods.delete(&victim, &Default::default())
        .await
        .expect("delete");
    wait_for_async("a new pod on n2", || async {
        let list = pods
            .list(&ListParams::default().labels("app=tol"))
            .await
            .ok()?;
        list.items
            .iter()
            .any(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("n2")
                    && p.spec
                        .as_ref()
                        .and_then(|s| s.containers[0].image.as_deref())
                        == Some("agent:2")
            })
            .then_some(())
    })
    .await;
    let n1 = pods
        .get(before["n1"].metadata.name.as_deref().expect("name"))
        .await
        .expect("n1 pod kept");
    assert_eq!(
        n1.spec
            .and_then(|s| s.containers[0].image.clone())
            .as_deref(),
        Some("agent:1")
    );

    // Removing the taint's tolerance... a NoExecute taint evicts untolerating pods.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            "n2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": [{"key": "evict", "effect": "NoExecute"}]}})),
        )
        .await
        .expect("taint n2");
    wait_daemon_pods(&pods, "app=x", &["n1", "n4"], None).await;
}
