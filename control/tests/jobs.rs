//! The batch and availability controllers against a real API server: Jobs (parallelism,
//! backoff, indexes), CronJobs, PodDisruptionBudgets with eviction, and the HPA without metrics.

mod common;

use common::kubelet::{FakeNodes, FateFn, PodFate};
use common::{ApiClient, Cluster, wait_for_async};
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
fn watch_concurrency(client: kube::Client, job: &str) -> Arc<AtomicUsize> {
    use futures::StreamExt;
    let max = Arc::new(AtomicUsize::new(0));
    let m = max.clone();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("job-name={job}"));
    tokio::spawn(async move {
        let live = Mutex::new(HashSet::new());
        let mut s = watcher(pods, cfg).boxed();
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
    max
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_to_completion_fail_at_the_backoff_limit_and_index_their_pods() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let _nodes = nodes(&client).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // completions 3, parallelism 2: never more than two at once, then Complete.
    let max = watch_concurrency(client.clone(), "ok");
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
    assert_eq!(failed["message"], "Job has reached the specified backoff limit");
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
