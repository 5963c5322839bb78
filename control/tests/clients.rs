//! Client libraries users already have: kube-rs (typed API and the runtime watcher) and the
//! Python `kubernetes` client, each doing a list-watch-create-patch-delete round trip.

mod common;

use common::{ApiClient, Cluster, WAIT};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use std::collections::BTreeMap;

async fn round_trip(config: watcher::Config) {
    // Without the root CA publisher: its `kube-root-ca.crt` would show in the watch.
    let c = Cluster::start_with(&["--controllers", "*,-root-ca-cert-publisher"]);
    let client = ApiClient::new(&c).await.client;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut seed = ConfigMap::default();
    seed.metadata.name = Some("seed".into());
    cms.create(&PostParams::default(), &seed)
        .await
        .expect("create seed");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(cms.clone(), config);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(watcher::Event::Init) => "Init".to_string(),
                Ok(watcher::Event::InitApply(o)) => {
                    format!("InitApply {}", o.metadata.name.unwrap_or_default())
                }
                Ok(watcher::Event::InitDone) => "InitDone".to_string(),
                Ok(watcher::Event::Apply(o)) => format!(
                    "Apply {} {}",
                    o.metadata.name.unwrap_or_default(),
                    o.data.and_then(|d| d.get("k").cloned()).unwrap_or_default()
                ),
                Ok(watcher::Event::Delete(o)) => {
                    format!("Delete {}", o.metadata.name.unwrap_or_default())
                }
                Err(e) => format!("Error {e}"),
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an event in time")
            .expect("stream open")
    };
    assert_eq!(next().await, "Init");
    assert_eq!(next().await, "InitApply seed");
    assert_eq!(next().await, "InitDone");

    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("rt".into());
    cm.data = Some(BTreeMap::from([("k".to_string(), "v1".to_string())]));
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(next().await, "Apply rt v1");
    let patch = serde_json::json!({"data": {"k": "v2"}});
    let patched = cms
        .patch("rt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    assert_eq!(
        patched.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("v2")
    );
    assert_eq!(next().await, "Apply rt v2");
    let ssa = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rt"}, "data": {"k": "v3"}});
    cms.patch(
        "rt",
        &PatchParams::apply("rt-test").force(),
        &Patch::Apply(&ssa),
    )
    .await
    .expect("apply");
    assert_eq!(next().await, "Apply rt v3");
    cms.delete("rt", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(next().await, "Delete rt");
    let list = cms.list(&Default::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_watcher_list_then_watch() {
    round_trip(watcher::Config::default()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_watcher_streaming_list() {
    round_trip(watcher::Config::default().streaming_lists()).await;
}

const PYTHON: &str = r#"
import sys, threading, queue
from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
cfg = client.Configuration.get_default_copy()
cfg.host = sys.argv[2]
api = client.CoreV1Api(client.ApiClient(cfg))

listed = api.list_namespaced_config_map("default")
rv = listed.metadata.resource_version
events = queue.Queue()

def run():
    w = watch.Watch()
    for ev in w.stream(api.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=60):
        events.put((ev["type"], ev["object"].metadata.name, (ev["object"].data or {}).get("k")))

threading.Thread(target=run, daemon=True).start()

api.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py"), data={"k": "one"}))
api.patch_namespaced_config_map("py", "default", {"data": {"k": "two"}})
got = api.read_namespaced_config_map("py", "default")
assert got.data["k"] == "two", got.data
api.delete_namespaced_config_map("py", "default")
try:
    api.read_namespaced_config_map("py", "default")
    raise SystemExit("still there")
except client.exceptions.ApiException as e:
    assert e.status == 404, e.status

seen = [events.get(timeout=60) for _ in range(3)]
print(seen)
assert seen == [("ADDED", "py", "one"), ("MODIFIED", "py", "two"), ("DELETED", "py", "two")], seen
print("ok")
"#;

#[test]
fn python_client_round_trip() {
    let c = Cluster::start();
    let script = c.dir.path().join("roundtrip.py");
    std::fs::write(&script, PYTHON).expect("script");
    let out = std::process::Command::new(common::python_path())
        .arg(&script)
        .arg(&c.kubeconfig)
        .arg(c.url())
        .output()
        .expect("python from the test venv (cargo xtask setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
}
