//! The Deployment and ReplicaSet controllers against a real API server, with simulated kubelets
//! that make pods Ready, driven the way users drive them: kubectl apply/scale/set image and
//! `kubectl rollout status|history|undo|pause|resume|restart`.

mod common;

use common::kubelet::{FakeNodes, FateFn, PodFate};
use common::{ApiClient, Cluster, Task, wait_for_async};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A simulated node: name, labels, cpu, memory.
type Node = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

const NODES: &[Node] = &[
    ("n1", &[], "4", "8Gi"),
    ("n2", &[], "4", "8Gi"),
    ("n3", &[], "4", "8Gi"),
];

fn deployment_yaml(name: &str, replicas: i32, image: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
{extra_spec}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: c
        image: {image}
"
    )
}

/// Runs kubectl off the async workers (rollout status blocks until the rollout is done).
fn kubectl(c: &Cluster, args: &[&str]) -> String {
    tokio::task::block_in_place(|| c.ok(args))
}

async fn deployment(api: &Api<Deployment>, name: &str) -> Deployment {
    api.get(name).await.expect("deployment")
}

/// Waits until the Deployment's status says `n` replicas, all updated, ready and available,
/// for its current generation.
async fn wait_rolled_out(api: &Api<Deployment>, name: &str, n: i32) -> Deployment {
    wait_for_async(
        &format!("{name} to have {n} available replicas"),
        || async {
            let d = api.get(name).await.ok()?;
            let s = d.status.clone()?;
            let done = s.observed_generation >= d.metadata.generation
                && s.replicas.unwrap_or(0) == n
                && s.updated_replicas.unwrap_or(0) == n
                && s.ready_replicas.unwrap_or(0) == n
                && s.available_replicas.unwrap_or(0) == n
                && s.unavailable_replicas.unwrap_or(0) == 0;
            done.then_some(d)
        },
    )
    .await
}

fn annotation(meta: &kube::api::ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

fn condition(d: &Deployment, type_: &str) -> Option<(String, String)> {
    let c = d
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))?;
    Some((c.status.clone()?, c.reason.clone()?))
}

async fn replica_sets(api: &Api<ReplicaSet>, app: &str) -> Vec<ReplicaSet> {
    let mut l = api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list replicasets")
        .items;
    l.sort_by_key(|rs| {
        annotation(&rs.metadata, "deployment.kubernetes.io/revision")
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    });
    l
}

/// Pods of `app` not being deleted.
async fn live_pods(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What a rollout looked like from the outside, event by event.
#[derive(Debug, Default)]
struct Sample {
    armed: bool,
    /// Lowest sum of the ReplicaSets' readyReplicas seen while armed.
    min_rs_ready: Option<i32>,
    /// Highest sum of the ReplicaSets' spec.replicas seen while armed.
    max_rs_size: Option<i32>,
    /// Lowest number of Ready pods not being deleted seen while armed.
    min_pods_ready: Option<i32>,
    rs_events: usize,
    pod_events: usize,
}

/// Watches the ReplicaSets and pods of `app` and records, at every change while armed, how
/// many are ready and how large the ReplicaSets are together.
fn sample_rollouts(client: kube::Client, app: &str) -> (Arc<Mutex<Sample>>, [Task; 2]) {
    let sample = Arc::new(Mutex::new(Sample::default()));
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let s = sample.clone();
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs_cfg = cfg.clone();
    let rs_task = tokio::spawn(async move {
        let mut rss: HashMap<String, (i32, i32)> = HashMap::new();
        let mut stream = watcher(rs_api, rs_cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let (rs, gone) = match ev {
                Ok(watcher::Event::Apply(rs) | watcher::Event::InitApply(rs)) => (rs, false),
                Ok(watcher::Event::Delete(rs)) => (rs, true),
                _ => continue,
            };
            let name = rs.metadata.name.clone().unwrap_or_default();
            if gone {
                rss.remove(&name);
            } else {
                let size = rs.spec.replicas.unwrap_or(0);
                let ready = rs
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                rss.insert(name, (size, ready));
            }
            let size: i32 = rss.values().map(|v| v.0).sum();
            let ready: i32 = rss.values().map(|v| v.1).sum();
            let mut st = s.lock().expect("lock");
            if st.armed {
                st.rs_events += 1;
                st.min_rs_ready = Some(st.min_rs_ready.map_or(ready, |m| m.min(ready)));
                st.max_rs_size = Some(st.max_rs_size.map_or(size, |m| m.max(size)));
            }
        }
    });
    let s = sample.clone();
    let pod_api: Api<Pod> = Api::namespaced(client, "default");
    let pod_task = tokio::spawn(async move {
        let mut pods: HashMap<String, bool> = HashMap::new();
        let mut stream = watcher(pod_api, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let (p, gone) = match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => (p, false),
                Ok(watcher::Event::Delete(p)) => (p, true),
                _ => continue,
            };
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if gone {
                pods.remove(&uid);
            } else {
                pods.insert(
                    uid,
                    pod_ready(&p) && p.metadata.deletion_timestamp.is_none(),
                );
            }
            let ready = pods.values().filter(|r| **r).count() as i32;
            let mut st = s.lock().expect("lock");
            if st.armed {
                st.pod_events += 1;
                st.min_pods_ready = Some(st.min_pods_ready.map_or(ready, |m| m.min(ready)));
            }
        }
    });
    (sample, [Task(rs_task), Task(pod_task)])
}

fn arm(sample: &Arc<Mutex<Sample>>) {
    let mut s = sample.lock().expect("lock");
    *s = Sample {
        armed: true,
        ..Default::default()
    };
}

fn disarm(sample: &Arc<Mutex<Sample>>) -> Sample {
    let mut s = sample.lock().expect("lock");
    s.armed = false;
    std::mem::take(&mut *s)
}

/// Checks a rollout of 6 replicas kept at least `min_ready` ready and at most `max_size` pods
/// at every step.
fn assert_bounds(what: &str, s: &Sample, min_ready: i32, max_size: i32) {
    assert!(
        s.rs_events > 0 && s.pod_events > 0,
        "{what}: nothing observed: {s:?}"
    );
    assert!(
        s.min_rs_ready.is_some_and(|m| m >= min_ready),
        "{what}: ReplicaSets dropped below {min_ready} ready: {s:?}"
    );
    assert!(
        s.min_pods_ready.is_some_and(|m| m >= min_ready),
        "{what}: fewer than {min_ready} ready pods: {s:?}"
    );
    assert!(
        s.max_rs_size.is_some_and(|m| m <= max_size),
        "{what}: ReplicaSets grew past {max_size}: {s:?}"
    );
}

/// Waits until every live pod of `app` runs `img` from the newest ReplicaSet, `n` of them.
async fn wait_pods_on(pods: &Api<Pod>, rss: &Api<ReplicaSet>, app: &str, img: &str, n: usize) {
    wait_for_async(&format!("{n} pods of {app} on {img}"), || async {
        let newest = replica_sets(rss, app).await.pop()?;
        let hash = newest
            .metadata
            .labels
            .as_ref()?
            .get("pod-template-hash")?
            .clone();
        let live = live_pods(pods, app).await;
        let all_new = live.iter().all(|p| {
            image(p) == img
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("pod-template-hash"))
                    == Some(&hash)
        });
        (live.len() == n && all_new).then_some(())
    })
    .await;
}

fn events(c: &Cluster, reason: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("reason={reason}"),
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deployment_scales_rolls_out_and_rolls_back_with_kubectl() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let _nodes = FakeNodes::start(client.clone(), NODES, None).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (sample, _sampling) = sample_rollouts(client.clone(), "web");

    // 6 replicas over 3 nodes become 6/6 Ready through one ReplicaSet.
    c.ok_in(
        &["apply", "-f", "-"],
        &deployment_yaml("web", 6, "registry.local/web:v1", ""),
    );
    let d = wait_rolled_out(&deploys, "web", 6).await;
    assert_eq!(
        condition(&d, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    let progressing = wait_for_async("Progressing to say the rollout is done", || async {
        let d = deploys.get("web").await.ok()?;
        condition(&d, "Progressing").filter(|(_, r)| r == "NewReplicaSetAvailable")
    })
    .await;
    assert_eq!(progressing.0, "True");
    let message = deployment(&deploys, "web")
        .await
        .status
        .and_then(|s| s.conditions)
        .and_then(|cs| {
            cs.into_iter()
                .find(|c| c.type_.as_deref() == Some("Progressing"))
        })
        .and_then(|c| c.message)
        .unwrap_or_default();
    assert!(
        message.starts_with("ReplicaSet \"web-")
            && message.ends_with("\" has successfully progressed."),
        "{message}"
    );
    assert_eq!(
        annotation(
            &deployment(&deploys, "web").await.metadata,
            "deployment.kubernetes.io/revision"
        ),
        Some("1".into())
    );
    let first = replica_sets(&rss, "web").await;
    assert_eq!(first.len(), 1);
    let rs1 = &first[0];
    let hash1 = rs1
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .expect("hash label");
    assert_eq!(
        rs1.metadata.name.as_deref(),
        Some(format!("web-{hash1}").as_str())
    );
    assert_eq!(
        rs1.spec
            .selector
            .match_labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash")),
        Some(&hash1)
    );
    assert_eq!(
        annotation(&rs1.metadata, "deployment.kubernetes.io/revision"),
        Some("1".into())
    );
    assert_eq!(
        annotation(&rs1.metadata, "deployment.kubernetes.io/desired-replicas"),
        Some("6".into())
    );
    assert_eq!(
        annotation(&rs1.metadata, "deployment.kubernetes.io/max-replicas"),
        Some("8".into())
    );
    let owner = rs1
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .expect("owner");
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Deployment", Some(true))
    );
    let live = live_pods(&pods, "web").await;
    assert_eq!(live.len(), 6);
    for p in &live {
        assert!(
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&format!("web-{hash1}-")))
        );
        let o = p
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.first())
            .expect("owner");
        assert_eq!(
            (o.kind.as_str(), o.name.as_str()),
            ("ReplicaSet", rs1.metadata.name.as_deref().unwrap_or(""))
        );
    }
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    );
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
    let ev = events(&c, "ScalingReplicaSet");
    assert!(
        ev.contains(&format!("Scaled up replica set web-{hash1} from 0 to 6")),
        "{ev}"
    );

    // Scaling up and down changes the one ReplicaSet.
    c.ok(&["scale", "deployment/web", "--replicas=9"]);
    wait_rolled_out(&deploys, "web", 9).await;
    c.ok(&["scale", "deployment/web", "--replicas=4"]);
    wait_rolled_out(&deploys, "web", 4).await;
    wait_for_async("4 live pods", || async {
        (live_pods(&pods, "web").await.len() == 4).then_some(())
    })
    .await;
    let ev = events(&c, "ScalingReplicaSet");
    assert!(
        ev.contains(&format!("Scaled up replica set web-{hash1} from 6 to 9")),
        "{ev}"
    );
    assert!(
        ev.contains(&format!("Scaled down replica set web-{hash1} from 9 to 4")),
        "{ev}"
    );
    assert_eq!(
        replica_sets(&rss, "web").await.len(),
        1,
        "scaling is no new revision"
    );
    c.ok(&["scale", "deployment/web", "--replicas=6"]);
    wait_rolled_out(&deploys, "web", 6).await;

    // A rolling update to v2 keeps 5 of 6 available and at most 8 pods at every step.
    arm(&sample);
    c.ok(&["set", "image", "deployment/web", "c=registry.local/web:v2"]);
    // Recorded after the template changed: it goes to the new revision only.
    c.ok(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=image v2",
    ]);
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_pods_on(&pods, &rss, "web", "registry.local/web:v2", 6).await;
    // 25% of 6: one unavailable, two surging.
    assert_bounds("v1 -> v2", &disarm(&sample), 5, 8);
    let d = wait_rolled_out(&deploys, "web", 6).await;
    assert_eq!(
        annotation(&d.metadata, "deployment.kubernetes.io/revision"),
        Some("2".into())
    );
    let two = replica_sets(&rss, "web").await;
    assert_eq!(two.len(), 2);
    assert_eq!(
        two[0].spec.replicas,
        Some(0),
        "the old ReplicaSet is scaled down"
    );
    assert_eq!(two[1].spec.replicas, Some(6));
    assert_eq!(
        annotation(&two[1].metadata, "kubernetes.io/change-cause"),
        Some("image v2".into())
    );
    let ev = events(&c, "ScalingReplicaSet");
    assert!(
        ev.contains(&format!("Scaled down replica set web-{hash1} from 6 to")),
        "{ev}"
    );

    // History lists both revisions; undo brings v1 back as revision 3 on the old ReplicaSet.
    let out = c.ok(&["rollout", "history", "deployment/web"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.contains(&vec!["REVISION", "CHANGE-CAUSE"]), "{out}");
    assert!(lines.contains(&vec!["1", "<none>"]), "{out}");
    assert!(lines.contains(&vec!["2", "image", "v2"]), "{out}");
    let out = c.ok(&["rollout", "history", "deployment/web", "--revision=1"]);
    assert!(out.contains("registry.local/web:v1"), "{out}");
    arm(&sample);
    let out = c.ok(&["rollout", "undo", "deployment/web"]);
    assert!(out.contains("rolled back"), "{out}");
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_pods_on(&pods, &rss, "web", "registry.local/web:v1", 6).await;
    assert_bounds("undo", &disarm(&sample), 5, 8);
    let d = wait_rolled_out(&deploys, "web", 6).await;
    assert_eq!(
        annotation(&d.metadata, "deployment.kubernetes.io/revision"),
        Some("3".into())
    );
    let after = replica_sets(&rss, "web").await;
    assert_eq!(after.len(), 2, "undo reuses the old ReplicaSet");
    let back = after
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(&format!("web-{hash1}")))
        .expect("rs1");
    assert_eq!(
        back.spec.replicas,
        Some(6),
        "the old ReplicaSet is scaled up again"
    );
    assert_eq!(
        annotation(&back.metadata, "deployment.kubernetes.io/revision"),
        Some("3".into())
    );
    assert_eq!(
        annotation(&back.metadata, "deployment.kubernetes.io/revision-history"),
        Some("1".into())
    );
    let out = c.ok(&["rollout", "history", "deployment/web"]);
    let revs: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, vec!["2", "3"], "{out}");

    // Paused: template changes wait; resumed: they roll out.
    let out = c.ok(&["rollout", "pause", "deployment/web"]);
    assert!(out.contains("paused"), "{out}");
    c.ok(&["set", "image", "deployment/web", "c=registry.local/web:v3"]);
    let d = wait_for_async("the paused deployment to be observed", || async {
        let d = deploys.get("web").await.ok()?;
        let observed = d.status.as_ref()?.observed_generation >= d.metadata.generation;
        (observed && condition(&d, "Progressing").is_some_and(|(_, r)| r == "DeploymentPaused"))
            .then_some(d)
    })
    .await;
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("Unknown".into(), "DeploymentPaused".into()))
    );
    assert_eq!(
        replica_sets(&rss, "web").await.len(),
        2,
        "no rollout while paused"
    );
    assert!(
        live_pods(&pods, "web")
            .await
            .iter()
            .all(|p| image(p) == "registry.local/web:v1")
    );
    arm(&sample);
    let out = c.ok(&["rollout", "resume", "deployment/web"]);
    assert!(out.contains("resumed"), "{out}");
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_pods_on(&pods, &rss, "web", "registry.local/web:v3", 6).await;
    assert_bounds("resume to v3", &disarm(&sample), 5, 8);

    // Restart: a new ReplicaSet with the same image, every pod replaced.
    let before: Vec<String> = live_pods(&pods, "web")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    arm(&sample);
    let out = c.ok(&["rollout", "restart", "deployment/web"]);
    assert!(out.contains("restarted"), "{out}");
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_pods_on(&pods, &rss, "web", "registry.local/web:v3", 6).await;
    assert_bounds("restart", &disarm(&sample), 5, 8);
    let now: Vec<String> = live_pods(&pods, "web")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert!(
        now.iter().all(|u| !before.contains(u)),
        "every pod was replaced"
    );
    let d = wait_rolled_out(&deploys, "web", 6).await;
    assert_eq!(
        annotation(&d.metadata, "deployment.kubernetes.io/revision"),
        Some("5".into())
    );
    assert!(
        d.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"))
    );
    assert_eq!(replica_sets(&rss, "web").await.len(), 4);

    // maxUnavailable 0: never fewer than 6 ready, one surging pod at a time.
    c.ok(&[
        "patch",
        "deployment/web",
        "-p",
        r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}"#,
    ]);
    arm(&sample);
    c.ok(&["set", "image", "deployment/web", "c=registry.local/web:v4"]);
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_pods_on(&pods, &rss, "web", "registry.local/web:v4", 6).await;
    assert_bounds("surge only", &disarm(&sample), 6, 7);
    let newest = replica_sets(&rss, "web")
        .await
        .pop()
        .and_then(|rs| rs.metadata.name)
        .expect("newest");
    let out = c.ok(&["describe", "deployment", "web"]);
    assert!(
        out.contains(&format!("NewReplicaSet:   {newest} (6/6 replicas created)")),
        "{out}"
    );
    assert!(
        out.contains("StrategyType:           RollingUpdate"),
        "{out}"
    );
    assert!(out.contains("ScalingReplicaSet"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recreate_history_limit_and_progress_deadline() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    // Pods labelled fate=stuck run but never become Ready.
    let fate: FateFn = Arc::new(|p: &Pod| {
        let stuck = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("fate"))
            .map(String::as_str)
            == Some("stuck");
        if stuck {
            PodFate::NotReady
        } else {
            PodFate::Ready
        }
    });
    let _nodes = FakeNodes::start(client.clone(), NODES, Some(fate)).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Recreate: every old pod is gone before the first new one exists.
    c.ok_in(
        &["apply", "-f", "-"],
        &deployment_yaml(
            "batch",
            3,
            "registry.local/batch:v1",
            "  strategy:\n    type: Recreate",
        ),
    );
    wait_rolled_out(&deploys, "batch", 3).await;
    let overlap = Arc::new(Mutex::new((0usize, 0usize)));
    let seen = overlap.clone();
    let watch_api = pods.clone();
    let watch = Task(tokio::spawn(async move {
        let mut live: HashMap<String, String> = HashMap::new();
        let mut stream = watcher(watch_api, watcher::Config::default().labels("app=batch"))
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                    live.insert(p.metadata.uid.clone().unwrap_or_default(), image(&p));
                }
                Ok(watcher::Event::Delete(p)) => {
                    live.remove(&p.metadata.uid.clone().unwrap_or_default());
                }
                _ => continue,
            }
            let v2 = live.values().filter(|i| i.ends_with(":v2")).count();
            let v1 = live.len() - v2;
            let mut o = seen.lock().expect("lock");
            if v2 > 0 {
                o.0 = o.0.max(v1);
            }
            o.1 = o.1.max(v2);
        }
    }));
    c.ok(&[
        "set",
        "image",
        "deployment/batch",
        "c=registry.local/batch:v2",
    ]);
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/batch", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_pods_on(&pods, &rss, "batch", "registry.local/batch:v2", 3).await;
    drop(watch);
    let (old_with_new, new_seen) = *overlap.lock().expect("lock");
    assert_eq!(new_seen, 3);
    assert_eq!(old_with_new, 0, "an old pod existed next to a new one");
    let ev = events(&c, "ScalingReplicaSet");
    assert!(
        ev.lines()
            .any(|l| l.starts_with("Scaled down replica set batch-") && l.ends_with("from 3 to 0")),
        "{ev}"
    );

    // revisionHistoryLimit 2: of 5 revisions, the current one and 2 old ones stay.
    c.ok_in(
        &["apply", "-f", "-"],
        &deployment_yaml(
            "hist",
            1,
            "registry.local/hist:v1",
            "  revisionHistoryLimit: 2",
        ),
    );
    wait_rolled_out(&deploys, "hist", 1).await;
    for v in 2..=5 {
        c.ok(&[
            "set",
            "image",
            "deployment/hist",
            &format!("c=registry.local/hist:v{v}"),
        ]);
        let out = kubectl(
            &c,
            &["rollout", "status", "deployment/hist", "--timeout=90s"],
        );
        assert!(out.contains("successfully rolled out"), "{out}");
    }
    let revs = wait_for_async("old revisions to be cleaned up", || async {
        let l = replica_sets(&rss, "hist").await;
        let revs: Vec<String> = l
            .iter()
            .filter_map(|rs| annotation(&rs.metadata, "deployment.kubernetes.io/revision"))
            .collect();
        (revs.len() == 3).then_some(revs)
    })
    .await;
    assert_eq!(revs, vec!["3", "4", "5"]);
    let out = c.ok(&["rollout", "history", "deployment/hist"]);
    let listed: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, vec!["3", "4", "5"], "{out}");

    // Pods that never become Ready: the rollout times out after progressDeadlineSeconds.
    let yaml = deployment_yaml(
        "stuck",
        2,
        "registry.local/stuck:v1",
        "  progressDeadlineSeconds: 3",
    )
    .replace(
        "        app: stuck\n    spec:",
        "        app: stuck\n        fate: stuck\n    spec:",
    );
    c.ok_in(&["apply", "-f", "-"], &yaml);
    let d = wait_for_async("the progress deadline to pass", || async {
        let d = deploys.get("stuck").await.ok()?;
        condition(&d, "Progressing")
            .filter(|(_, r)| r == "ProgressDeadlineExceeded")
            .map(|_| d)
    })
    .await;
    assert_eq!(
        condition(&d, "Progressing").map(|c| c.0),
        Some("False".into())
    );
    assert_eq!(
        condition(&d, "Available").map(|c| c.1),
        Some("MinimumReplicasUnavailable".into())
    );
    let s = d.status.clone().unwrap_or_default();
    assert_eq!(
        (
            s.replicas,
            s.ready_replicas.unwrap_or(0),
            s.unavailable_replicas
        ),
        (Some(2), 0, Some(2))
    );
    let out = tokio::task::block_in_place(|| {
        c.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=30s"])
    });
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{err}"
    );
}

fn replica_set_yaml(name: &str, replicas: i32, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
{extra_spec}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
        tier: backend
    spec:
      containers:
      - name: c
        image: registry.local/{name}:v1
"
    )
}

fn controller_uid(p: &Pod) -> Option<String> {
    p.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_sets_adopt_release_and_never_double_create() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let _nodes = FakeNodes::start(client.clone(), NODES, None).await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Every pod the controllers create, counted as the watch reports them.
    let created: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let counts = created.clone();
    let watch_api = pods.clone();
    let _watch = Task(tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        let mut stream = watcher(watch_api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev
                && let Some(prefix) = p.metadata.generate_name.clone()
                && seen.insert(p.metadata.uid.clone())
            {
                *counts.lock().expect("lock").entry(prefix).or_default() += 1;
            }
        }
    }));

    // 10 replicas at once: exactly 10 creations, no surplus to delete.
    c.ok_in(&["apply", "-f", "-"], &replica_set_yaml("burst", 10, ""));
    let rs = wait_for_async("10 ready replicas", || async {
        let rs = rss.get("burst").await.ok()?;
        let s = rs.status.clone()?;
        (s.ready_replicas == Some(10) && s.available_replicas == Some(10)).then_some(rs)
    })
    .await;
    let s = rs.status.clone().unwrap_or_default();
    assert_eq!((s.replicas, s.fully_labeled_replicas), (10, Some(10)));
    assert_eq!(s.observed_generation, rs.metadata.generation);
    assert_eq!(s.terminating_replicas, Some(0));
    assert_eq!(live_pods(&pods, "burst").await.len(), 10);
    let creates = events(&c, "SuccessfulCreate");
    assert_eq!(
        creates
            .lines()
            .filter(|l| l.starts_with("Created pod: burst-"))
            .count(),
        10,
        "{creates}"
    );
    assert!(!events(&c, "SuccessfulDelete").contains("burst-"));
    assert_eq!(created.lock().expect("lock").get("burst-"), Some(&10));

    // Scaling down deletes, preferring nothing in particular among equals, and says so.
    c.ok(&["scale", "rs/burst", "--replicas=7"]);
    wait_for_async("7 replicas", || async {
        let s = rss.get("burst").await.ok()?.status?;
        (s.replicas == 7 && live_pods(&pods, "burst").await.len() == 7).then_some(())
    })
    .await;
    let deletes = events(&c, "SuccessfulDelete");
    assert_eq!(
        deletes
            .lines()
            .filter(|l| l.starts_with("Deleted pod: burst-"))
            .count(),
        3,
        "{deletes}"
    );

    // An orphan pod that matches is adopted, and counts: only one more pod is created.
    c.ok_in(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stray\n  labels:\n    app: solo\nspec:\n  containers:\n  - name: c\n    image: registry.local/stray:v1\n",
    );
    c.ok_in(
        &["apply", "-f", "-"],
        &replica_set_yaml("solo", 2, "  minReadySeconds: 2"),
    );
    let solo = rss.get("solo").await.expect("solo");
    let solo_uid = solo.metadata.uid.clone().expect("uid");
    wait_for_async("the orphan to be adopted", || async {
        let p = pods.get("stray").await.ok()?;
        (controller_uid(&p).as_deref() == Some(solo_uid.as_str())).then_some(())
    })
    .await;
    let rs = wait_for_async("2 available replicas", || async {
        let rs = rss.get("solo").await.ok()?;
        let s = rs.status.clone()?;
        (s.replicas == 2 && s.available_replicas == Some(2)).then_some(rs)
    })
    .await;
    let s = rs.status.clone().unwrap_or_default();
    assert_eq!(
        s.fully_labeled_replicas,
        Some(1),
        "the stray lacks tier=backend"
    );
    assert_eq!(created.lock().expect("lock").get("solo-"), Some(&1));
    // minReadySeconds: no pod counted available before being ready for 2 s.
    for p in live_pods(&pods, "solo").await {
        let ready_at = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == "Ready")
                    .and_then(|c| c.last_transition_time.clone())
            });
        let ready_at = ready_at.expect("ready time").0;
        assert!(jiff::Timestamp::now() >= ready_at + jiff::SignedDuration::from_secs(2));
    }

    // Relabelled, it no longer matches: released, and replaced.
    c.ok(&["label", "pod", "stray", "app=other", "--overwrite"]);
    wait_for_async("the relabelled pod to be released", || async {
        let p = pods.get("stray").await.ok()?;
        controller_uid(&p).is_none().then_some(())
    })
    .await;
    let owned = wait_for_async("a replacement pod", || async {
        let live = live_pods(&pods, "solo").await;
        let mine = live
            .iter()
            .filter(|p| controller_uid(p).as_deref() == Some(solo_uid.as_str()))
            .count();
        let s = rss.get("solo").await.ok()?.status?;
        (mine == 2 && live.len() == 2 && s.replicas == 2).then_some(mine)
    })
    .await;
    assert_eq!(owned, 2);
    assert_eq!(created.lock().expect("lock").get("solo-"), Some(&2));
    let stray = pods.get("stray").await.expect("stray stays");
    assert!(
        stray.metadata.deletion_timestamp.is_none(),
        "released, not deleted"
    );

    // Deleting pods out from under it: replaced, once each.
    let victim = live_pods(&pods, "solo")
        .await
        .into_iter()
        .find(|p| p.metadata.name.as_deref() != Some("stray"))
        .expect("pod");
    c.ok(&[
        "delete",
        "pod",
        victim.metadata.name.as_deref().unwrap_or(""),
        "--wait=false",
    ]);
    wait_for_async("the deleted pod to be replaced", || async {
        let live = live_pods(&pods, "solo").await;
        (live.len() == 2 && live.iter().all(|p| p.metadata.uid != victim.metadata.uid))
            .then_some(())
    })
    .await;
    assert_eq!(created.lock().expect("lock").get("solo-"), Some(&3));
}
