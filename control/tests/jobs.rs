//! The batch and availability controllers against a real API server: Jobs (parallelism,
//! backoff, indexes), CronJobs, PodDisruptionBudgets with eviction, and the HPA without metrics.

mod common;

use common::kubelet::{FakeNodes, FateFn, PodFate};
use common::{ApiClient, Cluster, Task, wait_for_async};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Pods of jobs named `ok*` succeed, `bad*` fail, everything else runs and is ready.
fn fates() -> Option<FateFn> {
    Some(Arc::new(|p: &Pod| {
        let job = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("job-name"))
            .cloned()
            .unwrap_or_default();
        if job.starts_with("ok") {
            PodFate::Succeed
        } else if job.starts_with("bad") {
            PodFate::Fail
        } else {
            PodFate::Ready
        }
    }))
}

async fn nodes(client: &kube::Client) -> FakeNodes {
    FakeNodes::start(
        client.clone(),
        &[("n1", &[], "8", "16Gi"), ("n2", &[], "8", "16Gi")],
        fates(),
    )
    .await
}

fn job_yaml(name: &str, spec: Value) -> String {
    let mut s = json!({
        "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "localhost/busybox:latest"}]}}
    });
    if let (Some(base), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s})
        .to_string()
}

fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// (reason, message, count) of the events about `name`.
fn events_for(c: &Cluster, name: &str) -> Vec<(String, String, i64)> {
    let ev = c.json(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
    ]);
    ev["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    (
                        e["reason"].as_str().unwrap_or_default().to_string(),
                        e["message"].as_str().unwrap_or_default().to_string(),
                        e["series"]["count"]
                            .as_i64()
                            .or(e["count"].as_i64())
                            .unwrap_or(1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tracks the most pods of a job that were running at once.
fn watch_concurrency(client: kube::Client, job: &str) -> (Arc<AtomicUsize>, Task) {
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    let max = Arc::new(AtomicUsize::new(0));
    let m = max.clone();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("job-name={job}"));
    let task = tokio::spawn(async move {
        let live = Mutex::new(HashSet::new());
        let mut s = watcher(pods, cfg).default_backoff().boxed();
        while let Some(ev) = s.next().await {
            let (pod, gone) = match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => (p, false),
                Ok(watcher::Event::Delete(p)) => (p, true),
                _ => continue,
            };
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            let mut l = live.lock().expect("lock");
            if gone || phase == "Succeeded" || phase == "Failed" {
                l.remove(&uid);
            } else {
                l.insert(uid);
            }
            m.fetch_max(l.len(), Ordering::SeqCst);
        }
    });
    (max, Task(task))
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_to_completion_fail_at_the_backoff_limit_and_index_their_pods() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let _nodes = nodes(&client).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // completions 3, parallelism 2: never more than two at once, then Complete.
    let (max, _watch) = watch_concurrency(client.clone(), "ok");
    c.ok_in(
        &["apply", "-f", "-"],
        &job_yaml("ok", json!({"completions": 3, "parallelism": 2})),
    );
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/ok",
        "--timeout=60s",
    ]);
    let job = c.json(&["get", "job", "ok"]);
    assert_eq!(job["status"]["succeeded"], 3, "{job}");
    assert_eq!(job["status"]["ready"], 0, "{job}");
    assert_eq!(job["status"]["terminating"], 0, "{job}");
    assert_eq!(job["status"]["uncountedTerminatedPods"], json!({}), "{job}");
    assert!(job["status"].get("active").is_none(), "{job}");
    assert!(job["status"]["completionTime"].is_string(), "{job}");
    assert!(job["status"]["startTime"].is_string(), "{job}");
    for ty in ["SuccessCriteriaMet", "Complete"] {
        let cond = condition(&job, ty).unwrap_or_else(|| panic!("{ty} in {job}"));
        assert_eq!(cond["status"], "True");
        assert_eq!(cond["reason"], "CompletionsReached");
        assert_eq!(cond["message"], "Reached expected number of succeeded pods");
    }
    assert!(max.load(Ordering::SeqCst) <= 2, "at most 2 ran at once");
    assert!(max.load(Ordering::SeqCst) >= 1);
    let ok_pods = pods
        .list(&ListParams::default().labels("job-name=ok"))
        .await
        .expect("pods");
    assert_eq!(ok_pods.items.len(), 3);
    for p in &ok_pods.items {
        // Counted pods lose the tracking finalizer.
        assert!(
            p.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty()),
            "{:?}",
            p.metadata.finalizers
        );
        assert!(
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("ok-"))
        );
    }
    let events = events_for(&c, "ok");
    // Three creations (kube-runtime's recorder folds same-reason events into one series).
    assert_eq!(
        events
            .iter()
            .filter(|(r, m, _)| r == "SuccessfulCreate" && m.starts_with("Created pod: ok-"))
            .map(|e| e.2)
            .sum::<i64>(),
        3,
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(r, m, _)| r == "Completed" && m == "Job completed"),
        "{events:?}"
    );
    let out = c.ok(&["get", "job", "ok"]);
    assert!(out.contains("Complete") && out.contains("3/3"), "{out}");

    // A failing job: backoffLimit 1 allows one retry, 10s after the first failure.
    c.ok_in(
        &["apply", "-f", "-"],
        &job_yaml("bad", json!({"backoffLimit": 1})),
    );
    let job = wait_for_async("bad to fail", || async {
        let j = jobs.get("bad").await.ok()?;
        let v = serde_json::to_value(&j).ok()?;
        condition(&v, "Failed").is_some().then_some(v)
    })
    .await;
    let failed = condition(&job, "Failed").expect("Failed");
    assert_eq!(failed["status"], "True");
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(
        condition(&job, "FailureTarget").expect("FailureTarget")["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(job["status"]["failed"], 2, "{job}");
    assert!(job["status"].get("completionTime").is_none(), "{job}");
    let mut bad_pods = pods
        .list(&ListParams::default().labels("job-name=bad"))
        .await
        .expect("pods")
        .items;
    assert_eq!(bad_pods.len(), 2);
    bad_pods.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let first_done = bad_pods[0].status.as_ref().and_then(|s| {
        s.container_statuses.as_ref()?[0]
            .state
            .as_ref()?
            .terminated
            .as_ref()?
            .finished_at
            .clone()
    });
    let second_created = bad_pods[1].metadata.creation_timestamp.clone();
    if let (Some(done), Some(created)) = (first_done, second_created) {
        // Re-created only after the 10s pod failure backoff (seconds precision).
        assert!(
            created.0.duration_since(done.0) >= jiff::SignedDuration::from_secs(9),
            "{} then {}",
            done.0,
            created.0
        );
    }
    let events = events_for(&c, "bad");
    assert!(
        events.iter().any(|(r, m, _)| r == "BackoffLimitExceeded"
            && m == "Job has reached the specified backoff limit"),
        "{events:?}"
    );

    // Indexed: one pod per index, named and hostnamed after it.
    c.ok_in(
        &["apply", "-f", "-"],
        &job_yaml(
            "ok-indexed",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
        ),
    );
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/ok-indexed",
        "--timeout=60s",
    ]);
    let job = c.json(&["get", "job", "ok-indexed"]);
    assert_eq!(job["status"]["completedIndexes"], "0-2", "{job}");
    assert_eq!(job["status"]["succeeded"], 3, "{job}");
    let ix_pods = pods
        .list(&ListParams::default().labels("job-name=ok-indexed"))
        .await
        .expect("pods")
        .items;
    let mut seen: Vec<(String, String, String)> = ix_pods
        .iter()
        .map(|p| {
            let ix = p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
                .cloned()
                .unwrap_or_default();
            let label = p
                .metadata
                .labels
                .as_ref()
                .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
                .cloned()
                .unwrap_or_default();
            assert_eq!(ix, label);
            let host = p
                .spec
                .as_ref()
                .and_then(|s| s.hostname.clone())
                .unwrap_or_default();
            let env = p.spec.as_ref().map(|s| {
                s.containers[0]
                    .env
                    .iter()
                    .flatten()
                    .any(|e| e.name == "JOB_COMPLETION_INDEX")
            });
            assert_eq!(env, Some(true));
            let name = p.metadata.name.clone().unwrap_or_default();
            assert!(name.starts_with(&format!("ok-indexed-{ix}-")), "{name}");
            (ix, host, name)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen.iter()
            .map(|(i, h, _)| (i.as_str(), h.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("0", "ok-indexed-0"),
            ("1", "ok-indexed-1"),
            ("2", "ok-indexed-2")
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cronjobs_start_missed_runs_track_them_and_keep_history_limits() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let _nodes = nodes(&client).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "ok-cron"},
        "spec": {"schedule": "0 * * * *", "timeZone": "Etc/UTC", "suspend": true, "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "localhost/busybox:latest"}]}}}}}});
    c.ok_in(&["apply", "-f", "-"], &cj.to_string());
    // The last run was two hours ago: the most recent missed hour is due now (and the next
    // one is far enough away not to disturb the test).
    let past = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    c.ok(&[
        "patch",
        "cronjob",
        "ok-cron",
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({"status": {"lastScheduleTime": past}}).to_string(),
    ]);
    c.ok(&[
        "patch",
        "cronjob",
        "ok-cron",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    let job = wait_for_async("the cronjob to start a job", || async {
        jobs.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|j| {
                j.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "CronJob" && o.name == "ok-cron")
            })
    })
    .await;
    let name = job.metadata.name.clone().expect("name");
    let scheduled: jiff::Timestamp = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("batch.kubernetes.io/cronjob-scheduled-timestamp"))
        .expect("scheduled annotation")
        .parse()
        .expect("RFC 3339");
    assert_eq!(scheduled.as_second() % 3600, 0, "{scheduled}");
    assert!(scheduled <= jiff::Timestamp::now());
    assert!(scheduled > jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1));
    assert_eq!(name, format!("ok-cron-{}", scheduled.as_second() / 60));
    let owner = &job.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    wait_for_async("lastScheduleTime", || async {
        let v = c.json(&["get", "cronjob", "ok-cron"]);
        let last: jiff::Timestamp = v["status"]["lastScheduleTime"].as_str()?.parse().ok()?;
        (last == scheduled).then_some(v)
    })
    .await;
    // The run finishes: it leaves the active list and becomes the last success.
    c.ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{name}"),
        "--timeout=60s",
    ]);
    let cronjob = wait_for_async("the completed run to be noticed", || async {
        let v = c.json(&["get", "cronjob", "ok-cron"]);
        (v["status"]
            .get("active")
            .is_none_or(|a| a.as_array().is_some_and(Vec::is_empty))
            && v["status"]["lastSuccessfulTime"].is_string())
        .then_some(v)
    })
    .await;
    assert!(cronjob["status"]["lastSuccessfulTime"].is_string());
    let events = events_for(&c, "ok-cron");
    assert!(
        events
            .iter()
            .any(|(r, m, _)| r == "SuccessfulCreate" && *m == format!("Created job {name}")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, m, _)| r == "SawCompletedJob"
            && *m == format!("Saw completed job: {name}, status: Complete")),
        "{events:?}"
    );

    // A manual run from the template; with successfulJobsHistoryLimit 1 the older run goes.
    c.ok(&["create", "job", "ok-manual", "--from=cronjob/ok-cron"]);
    let manual = c.json(&["get", "job", "ok-manual"]);
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(manual["metadata"]["ownerReferences"][0]["name"], "ok-cron");
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/ok-manual",
        "--timeout=60s",
    ]);
    wait_for_async("the older run to be deleted", || async {
        match jobs.get_opt(&name).await {
            Ok(None) => Some(()),
            Ok(Some(j)) if j.metadata.deletion_timestamp.is_some() => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(jobs.get_opt("ok-manual").await.expect("get").is_some());
    let events = events_for(&c, "ok-cron");
    assert!(
        events
            .iter()
            .any(|(r, m, _)| r == "SuccessfulDelete" && *m == format!("Deleted job {name}")),
        "{events:?}"
    );
}

fn pod_json(name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "localhost/busybox:latest"}]}})
}

/// The admin's client without kube-rs's default retries, so a 429 comes back as it is
/// (clients such as kubectl drain decide themselves when to try again).
async fn no_retry_client(c: &Cluster) -> ApiClient {
    let kc = kube::config::Kubeconfig::read_from(&c.kubeconfig).expect("kubeconfig");
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    cfg.cluster_url = c.url().parse().expect("url");
    cfg.default_retry = false;
    ApiClient {
        client: kube::Client::try_from(cfg).expect("client"),
    }
}

async fn evict(api: &ApiClient, pod: &str) -> (u16, Value) {
    api.post(
        &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
        json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod, "namespace": "default"}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn disruption_budgets_allow_evictions_while_enough_pods_stay_healthy() {
    let c = Cluster::start();
    let api = no_retry_client(&c).await;
    let _nodes = nodes(&api.client).await;
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    for i in 0..3 {
        c.ok_in(
            &["apply", "-f", "-"],
            &pod_json(&format!("web-{i}"), "web").to_string(),
        );
    }
    c.ok_in(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
        .to_string(),
    );
    let status = |want_allowed: i64, want_healthy: i64| {
        let c = &c;
        async move {
            let v = c.json(&["get", "pdb", "web"]);
            (v["status"]["disruptionsAllowed"] == want_allowed
                && v["status"]["currentHealthy"] == want_healthy)
                .then_some(v)
        }
    };
    let pdb = wait_for_async("1 allowed disruption", || status(1, 3)).await;
    assert_eq!(pdb["status"]["desiredHealthy"], 2, "{pdb}");
    assert_eq!(pdb["status"]["expectedPods"], 3, "{pdb}");
    assert_eq!(pdb["status"]["observedGeneration"], 1, "{pdb}");
    let cond = condition(&pdb, "DisruptionAllowed").expect("condition");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "SufficientPods");
    let out = c.ok(&["get", "pdb", "web"]);
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(3) == Some("1")),
        "{out}"
    );

    // One eviction goes through; the next would break the budget.
    let (code, body) = evict(&api, "web-0").await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = evict(&api, "web-1").await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(
        body["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    // The evicted pod goes away; two healthy pods are just enough.
    let pdb = wait_for_async("web-0 gone and the budget exhausted", || async {
        let gone = pods.get_opt("web-0").await.ok()?.is_none();
        let v = status(0, 2).await?;
        (gone && v["status"].get("disruptedPods").is_none()).then_some(v)
    })
    .await;
    let cond = condition(&pdb, "DisruptionAllowed").expect("condition");
    assert_eq!(
        (cond["status"].as_str(), cond["reason"].as_str()),
        (Some("False"), Some("InsufficientPods"))
    );
    let (code, _) = evict(&api, "web-1").await;
    assert_eq!(code, 429);
    // A replacement becomes ready and the budget recovers.
    c.ok_in(&["apply", "-f", "-"], &pod_json("web-3", "web").to_string());
    wait_for_async("the budget to recover", || status(1, 3)).await;
    let (code, body) = evict(&api, "web-1").await;
    assert_eq!(code, 201, "{body}");

    // Percentages need the pods' controllers: bare pods make the budget fail safe.
    c.ok_in(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pct"},
            "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "web"}}}})
        .to_string(),
    );
    let pdb = wait_for_async("pct to be computed", || async {
        let v = c.json(&["get", "pdb", "pct"]);
        v["status"]["observedGeneration"].is_i64().then_some(v)
    })
    .await;
    assert_eq!(pdb["status"]["expectedPods"], 0, "{pdb}");
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0, "{pdb}");
    let events = events_for(&c, "pct");
    assert!(
        events.iter().any(|(r, _, _)| r == "UnmanagedPods"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn autoscalers_report_missing_metrics_and_keep_replicas_within_bounds() {
    let c = Cluster::start();
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hpa"}},
            "template": {"metadata": {"labels": {"app": "hpa"}}, "spec": {"containers": [
                {"name": "c", "image": "localhost/busybox:latest", "resources": {"requests": {"cpu": "100m"}}}]}}}});
    c.ok_in(&["apply", "-f", "-"], &deploy.to_string());
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}});
    c.ok_in(&["apply", "-f", "-"], &hpa.to_string());
    let replicas = || {
        let c = &c;
        async move { c.json(&["get", "deployment", "web"])["spec"]["replicas"].as_i64() }
    };
    wait_for_async("the minimum to be enforced", || async {
        (replicas().await? == 2).then_some(())
    })
    .await;
    let missing = "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)";
    let v = wait_for_async("ScalingActive=False", || async {
        let v = c.json(&["get", "hpa", "web"]);
        let cond = condition(&v, "ScalingActive")?;
        (cond["status"] == "False" && v["status"]["currentReplicas"] == 2).then_some(v)
    })
    .await;
    let cond = condition(&v, "ScalingActive").expect("ScalingActive");
    assert_eq!(cond["reason"], "FailedGetResourceMetric");
    assert_eq!(
        cond["message"],
        format!("the HPA was unable to compute the replica count: {missing}")
    );
    let able = condition(&v, "AbleToScale").expect("AbleToScale");
    assert_eq!(able["status"], "True");
    assert_eq!(v["status"]["currentMetrics"], json!([{"type": ""}]), "{v}");
    assert!(v["status"]["lastScaleTime"].is_string(), "{v}");
    let events = events_for(&c, "web");
    assert!(
        events.iter().any(|(r, m, _)| r == "SuccessfulRescale"
            && m == "New size: 2; reason: Current number of replicas below Spec.MinReplicas"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(r, m, _)| r == "FailedGetResourceMetric" && m == missing),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, m, _)| r == "FailedComputeMetricsReplicas"
            && *m == format!("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: {missing}")),
        "{events:?}"
    );
    let out = c.ok(&["get", "hpa", "web"]);
    assert!(out.contains("cpu: <unknown>/50%"), "{out}");

    // Scaled past the maximum by hand: the next sync brings it back to 4.
    c.ok(&["scale", "deployment", "web", "--replicas=10"]);
    wait_for_async("the maximum to be enforced", || async {
        (replicas().await? == 4).then_some(())
    })
    .await;
    let events = events_for(&c, "web");
    assert!(
        events.iter().any(|(r, m, _)| r == "SuccessfulRescale"
            && m == "New size: 4; reason: Current number of replicas above Spec.MaxReplicas"),
        "{events:?}"
    );
    // A target that does not exist cannot be scaled.
    c.ok_in(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "ghost"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost"},
                "maxReplicas": 3}})
        .to_string(),
    );
    let v = wait_for_async("AbleToScale=False", || async {
        let v = c.json(&["get", "hpa", "ghost"]);
        condition(&v, "AbleToScale").is_some().then_some(v)
    })
    .await;
    let able = condition(&v, "AbleToScale").expect("AbleToScale");
    assert_eq!(able["status"], "False");
    assert_eq!(able["reason"], "FailedGetScale");
    assert!(
        able["message"].as_str().is_some_and(|m| m
            .starts_with("the HPA controller was unable to get the target's current scale: ")
            && m.contains("not found")),
        "{able}"
    );
}
