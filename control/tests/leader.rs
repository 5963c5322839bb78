//! Two ketch-control processes on one etcd: each of the scheduler and the controller manager
//! runs in exactly one of them (the Lease holder), and the other takes over when it dies.

mod common;

use common::kubelet::FakeNodes;
use common::{ApiClient, Cluster, Control, wait_for_async};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

async fn holder(leases: &Api<Lease>, name: &str) -> String {
    wait_for_async(&format!("a holder of {name}"), || async {
        leases
            .get(name)
            .await
            .ok()?
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    })
    .await
}

fn logs_identity(dir: &std::path::Path, identity: &str) -> bool {
    std::fs::read_to_string(dir.join("control.log")).is_ok_and(|l| l.contains(identity))
}

async fn create_pod(pods: &Api<Pod>, name: &str) {
    let p: Pod = serde_json::from_value(
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .expect("pod");
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create pod");
}

async fn scheduled_by(client: &kube::Client, pod: &str) -> String {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    wait_for_async(&format!("a Scheduled event for {pod}"), || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("Scheduled")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
            })
            .and_then(|e| e.reporting_instance)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_lease_holder_schedules_and_the_other_takes_over() {
    let mut a = Cluster::start();
    let dir_b = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir_b.path().join("pki")).expect("pki");
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(
            a.dir.path().join("pki").join(f),
            dir_b.path().join("pki").join(f),
        )
        .expect("copy CA");
    }
    let mut b = Control::start(&a.etcd.url, dir_b.path(), &[]);
    let client = ApiClient::new(&a).await.client;
    let _nodes = FakeNodes::start(client.clone(), &[("n1", &[], "4", "8Gi")], None).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let sched = holder(&leases, "kube-scheduler").await;
    let ctrl = holder(&leases, "kube-controller-manager").await;
    let a_leads = logs_identity(a.dir.path(), &sched);
    let b_leads = logs_identity(dir_b.path(), &sched);
    assert!(
        a_leads ^ b_leads,
        "exactly one process holds the scheduler lease ({sched})"
    );
    assert!(logs_identity(a.dir.path(), &ctrl) ^ logs_identity(dir_b.path(), &ctrl));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        create_pod(&pods, &format!("first-{i}")).await;
    }
    for i in 0..5 {
        assert_eq!(
            scheduled_by(&client, &format!("first-{i}")).await,
            sched,
            "only the leader schedules"
        );
    }
    // Kill the leader; the other process takes the lease over and schedules.
    let survivor_client = if a_leads {
        a.control.kill();
        ApiClient::new(&b).await.client
    } else {
        b.kill();
        client.clone()
    };
    let leases: Api<Lease> = Api::namespaced(survivor_client.clone(), "kube-system");
    let new_holder = wait_for_async("a new scheduler leader", || async {
        let h = leases
            .get("kube-scheduler")
            .await
            .ok()?
            .spec?
            .holder_identity?;
        (h != sched).then_some(h)
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(survivor_client.clone(), "default");
    create_pod(&pods, "second").await;
    assert_eq!(scheduled_by(&survivor_client, "second").await, new_holder);
    let lease = leases.get("kube-scheduler").await.expect("lease");
    assert!(lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0) >= 1);
}
