//! The EndpointSlice and Endpoints controllers against a real API server: pods run on test
//! kubelets whose readiness the tests control, and users look with the real kubectl.

mod common;

use common::kubelet::{FakeNodes, FateFn, PodFate};
use common::{ApiClient, Cluster, wait_for_async};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const ZONE: &str = "topology.kubernetes.io/zone";

fn pod(name: &str, app: &str, node: &str, http_port: i32, extra: Value) -> Pod {
    let mut spec = json!({"nodeName": node, "containers": [{"name": "c", "image": "localhost/busybox:latest",
        "ports": [{"name": "http", "containerPort": http_port}]}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}}, "spec": spec}))
    .expect("pod")
}

fn service(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"tier": "front"}}, "spec": spec}))
    .expect("service")
}

fn web_spec(app: &str) -> Value {
    json!({"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]})
}

async fn slices_of(api: &Api<EndpointSlice>, svc: &str) -> Vec<EndpointSlice> {
    api.list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Endpoint facts by pod name: (address, ready, serving, terminating, node, zone, port numbers).
type Seen = BTreeMap<String, (String, bool, bool, bool, String, String, Vec<i32>)>;

fn endpoints_by_pod(slices: &[EndpointSlice]) -> Seen {
    let mut out = Seen::new();
    for s in slices {
        let ports: Vec<i32> = s.ports.iter().flatten().filter_map(|p| p.port).collect();
        for e in s.endpoints.iter().flatten() {
            let c = e.conditions.clone().unwrap_or_default();
            let name = e
                .target_ref
                .as_ref()
                .and_then(|t| t.name.clone())
                .unwrap_or_default();
            out.insert(
                name,
                (
                    e.addresses.first().cloned().unwrap_or_default(),
                    c.ready.unwrap_or(false),
                    c.serving.unwrap_or(false),
                    c.terminating.unwrap_or(false),
                    e.node_name.clone().unwrap_or_default(),
                    e.zone.clone().unwrap_or_default(),
                    ports.clone(),
                ),
            );
        }
    }
    out
}

/// (ready IPs, not-ready IPs, port numbers) per subset, sorted.
fn subsets(e: &Endpoints) -> Vec<(Vec<String>, Vec<String>, Vec<i32>)> {
    let ips = |v: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
        let mut ips: Vec<String> = v.iter().flatten().map(|a| a.ip.clone()).collect();
        ips.sort();
        ips
    };
    let mut out: Vec<_> = e
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            (
                ips(&s.addresses),
                ips(&s.not_ready_addresses),
                s.ports.iter().flatten().map(|p| p.port).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn pod_ip(pods: &Api<Pod>, name: &str) -> String {
    wait_for_async(&format!("{name} to get an IP"), || async {
        pods.get(name)
            .await
            .ok()?
            .status?
            .pod_ip
            .filter(|ip| !ip.is_empty())
    })
    .await
}

/// What the kubelet writes when a readiness probe starts failing.
async fn make_not_ready(pods: &Api<Pod>, name: &str) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": now});
    let patch = json!({"status": {"conditions": [cond("PodScheduled", "True"), cond("Initialized", "True"),
        cond("ContainersReady", "False"), cond("Ready", "False")]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("pod status");
}

#[tokio::test(flavor = "multi_thread")]
async fn slices_and_endpoints_follow_pods() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let fate: FateFn = Arc::new(|p: &Pod| {
        if p.metadata.name.as_deref() == Some("db-0") {
            PodFate::NotReady
        } else {
            PodFate::Ready
        }
    });
    let _nodes = FakeNodes::start(
        client.clone(),
        &[
            ("n1", &[(ZONE, "zone-a")], "4", "8Gi"),
            ("n2", &[(ZONE, "zone-b")], "4", "8Gi"),
        ],
        Some(fate),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    for (name, node) in [("web-0", "n1"), ("web-1", "n2"), ("web-2", "n1")] {
        pods.create(&pp, &pod(name, "web", node, 8080, json!({})))
            .await
            .expect("create pod");
    }
    let mut ips = BTreeMap::new();
    for name in ["web-0", "web-1", "web-2"] {
        ips.insert(name, pod_ip(&pods, name).await);
    }
    let svc = services
        .create(&pp, &service("web", web_spec("web")))
        .await
        .expect("create service");

    // Three ready pods: one slice, three ready endpoints on the pods' named port.
    let seen = wait_for_async("a slice with three ready endpoints", || async {
        let s = slices_of(&eps, "web").await;
        let seen = endpoints_by_pod(&s);
        (s.len() == 1 && seen.len() == 3 && seen.values().all(|e| e.1)).then_some(s)
    })
    .await;
    let slice = &seen[0];
    assert_eq!(slice.address_type, "IPv4");
    assert!(
        slice
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("web-"))
    );
    let labels = slice.metadata.labels.clone().expect("labels");
    assert_eq!(
        labels.get("kubernetes.io/service-name").map(String::as_str),
        Some("web")
    );
    assert_eq!(
        labels
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    assert_eq!(
        labels.get("tier").map(String::as_str),
        Some("front"),
        "service labels are copied"
    );
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Service", "web")
    );
    assert_eq!(Some(owner.uid.as_str()), svc.metadata.uid.as_deref());
    assert_eq!(owner.controller, Some(true));
    let port = &slice.ports.as_ref().expect("ports")[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), Some(8080), Some("TCP"))
    );
    assert!(
        slice
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("endpoints.kubernetes.io/last-change-trigger-time")),
        "{:?}",
        slice.metadata.annotations
    );
    let by_pod = endpoints_by_pod(&seen);
    assert_eq!(
        by_pod["web-1"],
        (
            ips["web-1"].clone(),
            true,
            true,
            false,
            "n2".to_string(),
            "zone-b".to_string(),
            vec![8080]
        )
    );
    assert_eq!(by_pod["web-0"].5, "zone-a");
    let target = slice.endpoints.as_ref().expect("endpoints")[0]
        .target_ref
        .clone()
        .expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert!(target.uid.is_some());

    // The legacy Endpoints: one subset with the three addresses.
    let mut all: Vec<String> = ips.values().cloned().collect();
    all.sort();
    let ep = wait_for_async("Endpoints with three addresses", || async {
        let e = endpoints.get("web").await.ok()?;
        (subsets(&e) == vec![(all.clone(), vec![], vec![8080])]).then_some(e)
    })
    .await;
    let ep_labels = ep.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        ep_labels
            .get("endpoints.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpoint-controller")
    );
    assert_eq!(ep_labels.get("tier").map(String::as_str), Some("front"));

    // What users see.
    let out = c.ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(row[0], slice.metadata.name.as_deref().unwrap_or(""));
    assert_eq!((row[1], row[2]), ("IPv4", "8080"));
    let shown: BTreeSet<&str> = row[3].split(',').collect();
    assert_eq!(
        shown,
        ips.values().map(String::as_str).collect::<BTreeSet<_>>(),
        "{out}"
    );
    let out = c.ok(&["get", "endpoints", "web"]);
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(row[0], "web");
    let shown: BTreeSet<&str> = row[1].split(',').collect();
    let want: BTreeSet<String> = ips.values().map(|ip| format!("{ip}:8080")).collect();
    assert_eq!(
        shown,
        want.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "{out}"
    );

    // A pod failing its readiness probe stays, not ready; it moves to notReadyAddresses.
    make_not_ready(&pods, "web-1").await;
    wait_for_async("web-1 not ready in its slice", || async {
        let seen = endpoints_by_pod(&slices_of(&eps, "web").await);
        let e = seen.get("web-1")?;
        (!e.1 && !e.2 && !e.3 && seen.len() == 3).then_some(())
    })
    .await;
    wait_for_async("web-1 in notReadyAddresses", || async {
        let e = endpoints.get("web").await.ok()?;
        let ready = vec![ips["web-0"].clone(), ips["web-2"].clone()];
        (subsets(&e) == vec![(ready, vec![ips["web-1"].clone()], vec![8080])]).then_some(())
    })
    .await;

    // A deleted pod disappears from both.
    pods.delete("web-2", &DeleteParams::default())
        .await
        .expect("delete pod");
    wait_for_async("web-2 gone from the slice", || async {
        let seen = endpoints_by_pod(&slices_of(&eps, "web").await);
        (seen.len() == 2 && !seen.contains_key("web-2")).then_some(())
    })
    .await;
    wait_for_async("web-2 gone from Endpoints", || async {
        let e = endpoints.get("web").await.ok()?;
        let want = vec![(
            vec![ips["web-0"].clone()],
            vec![ips["web-1"].clone()],
            vec![8080],
        )];
        (subsets(&e) == want).then_some(())
    })
    .await;

    // A pod naming its port differently (9090): a slice of its own, a subset of its own.
    pods.create(&pp, &pod("web-3", "web", "n2", 9090, json!({})))
        .await
        .expect("create pod");
    let ip3 = pod_ip(&pods, "web-3").await;
    let split = wait_for_async("a second slice for port 9090", || async {
        let s = slices_of(&eps, "web").await;
        let seen = endpoints_by_pod(&s);
        (s.len() == 2 && seen.len() == 3).then_some(seen)
    })
    .await;
    assert_eq!(split["web-3"].6, vec![9090]);
    assert_eq!(
        (split["web-0"].6.clone(), split["web-1"].6.clone()),
        (vec![8080], vec![8080])
    );
    wait_for_async("Endpoints with a subset per port", || async {
        let e = endpoints.get("web").await.ok()?;
        let want = vec![
            (
                vec![ips["web-0"].clone()],
                vec![ips["web-1"].clone()],
                vec![8080],
            ),
            (vec![ip3.clone()], vec![], vec![9090]),
        ];
        (subsets(&e) == want).then_some(())
    })
    .await;

    // A terminating pod (a finalizer holds it) stays in its slice, terminating and serving but
    // not ready; the Endpoints drop it.
    let mut held = pod("web-4", "web", "n1", 8080, json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    pods.create(&pp, &held).await.expect("create pod");
    let ip4 = pod_ip(&pods, "web-4").await;
    wait_for_async("web-4 ready in a slice", || async {
        endpoints_by_pod(&slices_of(&eps, "web").await)
            .get("web-4")
            .is_some_and(|e| e.1)
            .then_some(())
    })
    .await;
    pods.delete("web-4", &DeleteParams::default())
        .await
        .expect("delete pod");
    let terminating = wait_for_async("web-4 terminating", || async {
        let seen = endpoints_by_pod(&slices_of(&eps, "web").await);
        seen.get("web-4").filter(|e| e.3).cloned()
    })
    .await;
    assert_eq!(
        (terminating.0.as_str(), terminating.1, terminating.2),
        (ip4.as_str(), false, true),
        "terminating endpoints are not ready but still serving"
    );
    wait_for_async("web-4 out of the Endpoints", || async {
        let e = endpoints.get("web").await.ok()?;
        let all: Vec<String> = subsets(&e)
            .into_iter()
            .flat_map(|(r, n, _)| r.into_iter().chain(n))
            .collect();
        (all.len() == 3 && !all.contains(&ip4)).then_some(())
    })
    .await;
    pods.patch(
        "web-4",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release web-4");
    wait_for_async("web-4 gone", || async {
        let seen = endpoints_by_pod(&slices_of(&eps, "web").await);
        (seen.len() == 3 && !seen.contains_key("web-4")).then_some(())
    })
    .await;

    // What users delete, the controllers put back.
    let doomed = slices_of(&eps, "web")
        .await
        .into_iter()
        .find(|s| s.ports.iter().flatten().any(|p| p.port == Some(9090)))
        .expect("the 9090 slice");
    eps.delete(
        doomed.metadata.name.as_deref().unwrap_or(""),
        &DeleteParams::default(),
    )
    .await
    .expect("delete slice");
    wait_for_async("the 9090 slice back", || async {
        let s = slices_of(&eps, "web").await;
        let seen = endpoints_by_pod(&s);
        (s.len() == 2 && seen.get("web-3").is_some_and(|e| e.6 == vec![9090])).then_some(())
    })
    .await;
    endpoints
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete endpoints");
    wait_for_async("web's Endpoints back", || async {
        let e = endpoints.get("web").await.ok()?;
        (subsets(&e).len() == 2).then_some(())
    })
    .await;

    // Headless, publishing not-ready pods: hostnames for pods in its subdomain.
    pods.create(
        &pp,
        &pod(
            "db-0",
            "db",
            "n1",
            5432,
            json!({"hostname": "db-0", "subdomain": "db"}),
        ),
    )
    .await
    .expect("create pod");
    let db_ip = pod_ip(&pods, "db-0").await;
    services
        .create(
            &pp,
            &service(
                "db",
                json!({"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "db"},
                    "ports": [{"name": "pg", "port": 5432}]}),
            ),
        )
        .await
        .expect("create service");
    let db = wait_for_async("the db slice", || async {
        let s = slices_of(&eps, "db").await;
        (s.len() == 1 && s[0].endpoints.as_ref().is_some_and(|e| e.len() == 1)).then_some(s)
    })
    .await;
    let e = &db[0].endpoints.as_ref().expect("endpoints")[0];
    assert_eq!(e.hostname.as_deref(), Some("db-0"));
    let cond = e.conditions.clone().unwrap_or_default();
    assert_eq!(
        (cond.ready, cond.serving),
        (Some(true), Some(false)),
        "published though not ready"
    );
    assert_eq!(
        db[0]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("service.kubernetes.io/headless"))
            .map(String::as_str),
        Some("")
    );
    wait_for_async("db Endpoints with a hostname", || async {
        let e = endpoints.get("db").await.ok()?;
        let a = &e.subsets.as_ref()?.first()?.addresses.as_ref()?[0];
        (a.ip == db_ip && a.hostname.as_deref() == Some("db-0")).then_some(())
    })
    .await;

    // Services without a selector are somebody else's: no slices, their Endpoints untouched.
    services
        .create(&pp, &service("manual", json!({"ports": [{"port": 80}]})))
        .await
        .expect("create service");
    let manual: Endpoints = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "manual"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}))
    .expect("endpoints");
    let manual = endpoints
        .create(&pp, &manual)
        .await
        .expect("create endpoints");
    let kubernetes = endpoints
        .get("kubernetes")
        .await
        .expect("default/kubernetes");
    // A later service's slice shows the controller got past the selector-less one.
    pods.create(&pp, &pod("late-0", "late", "n1", 8080, json!({})))
        .await
        .expect("create pod");
    services
        .create(&pp, &service("late", web_spec("late")))
        .await
        .expect("create service");
    wait_for_async("the late service's slice", || async {
        (endpoints_by_pod(&slices_of(&eps, "late").await).len() == 1).then_some(())
    })
    .await;
    wait_for_async("the late service's Endpoints", || async {
        endpoints.get("late").await.ok().map(|_| ())
    })
    .await;
    assert!(slices_of(&eps, "manual").await.is_empty());
    let after = endpoints.get("manual").await.expect("manual endpoints");
    assert_eq!(
        after.metadata.resource_version,
        manual.metadata.resource_version
    );
    let k_after = endpoints
        .get("kubernetes")
        .await
        .expect("default/kubernetes");
    assert_eq!(
        k_after.metadata.resource_version,
        kubernetes.metadata.resource_version
    );
    let kubernetes_slices = slices_of(&eps, "kubernetes").await;
    assert_eq!(
        kubernetes_slices.len(),
        1,
        "only the API server's own slice"
    );
    assert_eq!(
        kubernetes_slices[0]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("endpointslice.kubernetes.io/managed-by"))
            .map(String::as_str),
        Some("endpointslicemirroring-controller.k8s.io")
    );

    // A service losing its selector loses its slices; its Endpoints are left to the user.
    services
        .patch(
            "late",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"selector": null}})),
        )
        .await
        .expect("drop selector");
    wait_for_async("the late service's slices to go", || async {
        slices_of(&eps, "late").await.is_empty().then_some(())
    })
    .await;
    assert!(endpoints.get("late").await.is_ok());

    // Deleting a service removes its slices and its Endpoints.
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    wait_for_async("web's slices to go", || async {
        slices_of(&eps, "web").await.is_empty().then_some(())
    })
    .await;
    wait_for_async("web's Endpoints to go", || async {
        endpoints.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        endpoints.get("manual").await.is_ok(),
        "Endpoints of a service still there stay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_pods_fill_slices_and_a_change_rewrites_one() {
    let c = Cluster::start();
    let client = ApiClient::new(&c).await.client;
    let _nodes = FakeNodes::start(
        client.clone(),
        &[("n1", &[(ZONE, "zone-a")], "64", "256Gi")],
        None,
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");

    let created: Vec<()> = futures::stream::iter(0..250)
        .map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(
                    &PostParams::default(),
                    &pod(&format!("big-{i}"), "big", "n1", 8080, json!({})),
                )
                .await
                .map(|_| ())
                .expect("create pod");
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(created.len(), 250);
    wait_for_async("250 pods with IPs", || async {
        let l = pods
            .list(&ListParams::default().labels("app=big"))
            .await
            .ok()?;
        let with_ip = l
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
            .count();
        (with_ip == 250).then_some(())
    })
    .await;
    services
        .create(&PostParams::default(), &service("big", web_spec("big")))
        .await
        .expect("create service");

    let slices = wait_for_async("250 endpoints in slices of at most 100", || async {
        let s = slices_of(&eps, "big").await;
        (endpoints_by_pod(&s).len() == 250).then_some(s)
    })
    .await;
    let mut sizes: Vec<usize> = slices
        .iter()
        .map(|s| s.endpoints.as_ref().map_or(0, Vec::len))
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 100, 100]);
    wait_for_async("Endpoints with 250 addresses", || async {
        let e = endpoints.get("big").await.ok()?;
        let s = subsets(&e);
        (s.len() == 1 && s[0].0.len() == 250).then_some(())
    })
    .await;

    // One pod turns not ready: its slice is rewritten, the other two are not.
    let rv = |s: &[EndpointSlice]| -> BTreeMap<String, String> {
        s.iter()
            .map(|s| {
                (
                    s.metadata.name.clone().unwrap_or_default(),
                    s.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    let before = rv(&slices);
    make_not_ready(&pods, "big-117").await;
    let after = wait_for_async("big-117 not ready", || async {
        let s = slices_of(&eps, "big").await;
        let seen = endpoints_by_pod(&s);
        (seen.len() == 250 && seen.get("big-117").is_some_and(|e| !e.1)).then_some(s)
    })
    .await;
    let after = rv(&after);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "same slices"
    );
    let changed: Vec<&String> = before
        .iter()
        .filter(|(name, v)| after.get(*name) != Some(*v))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(changed.len(), 1, "before {before:?} after {after:?}");
    wait_for_async("big-117 in notReadyAddresses", || async {
        let e = endpoints.get("big").await.ok()?;
        let s = subsets(&e);
        (s.len() == 1 && s[0].0.len() == 249 && s[0].1.len() == 1).then_some(())
    })
    .await;

    // kubectl shows three addresses and how many more.
    let out = c.ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=big",
        "--no-headers",
    ]);
    let mut more: Vec<&str> = out
        .lines()
        .map(|l| {
            let rest = l.split(" + ").nth(1).unwrap_or("");
            rest.split("...").next().unwrap_or("")
        })
        .collect();
    more.sort();
    assert_eq!(more, vec!["47 more", "97 more", "97 more"], "{out}");

    // Deleting the service removes all its slices.
    services
        .delete("big", &DeleteParams::default())
        .await
        .expect("delete service");
    wait_for_async("big's slices to go", || async {
        slices_of(&eps, "big").await.is_empty().then_some(())
    })
    .await;
    wait_for_async("big's Endpoints to go", || async {
        endpoints.get_opt("big").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slice_size_is_configurable_and_orphans_are_removed() {
    let c = Cluster::start_with(&["--max-endpoints-per-slice", "2"]);
    let client = ApiClient::new(&c).await.client;
    let _nodes = FakeNodes::start(client.clone(), &[("n1", &[], "4", "8Gi")], None).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    for i in 0..5 {
        pods.create(
            &pp,
            &pod(&format!("small-{i}"), "small", "n1", 8080, json!({})),
        )
        .await
        .expect("create pod");
    }
    for i in 0..5 {
        pod_ip(&pods, &format!("small-{i}")).await;
    }
    services
        .create(&pp, &service("small", web_spec("small")))
        .await
        .expect("create service");
    let slices = wait_for_async("five endpoints in slices of two", || async {
        let s = slices_of(&eps, "small").await;
        (endpoints_by_pod(&s).len() == 5).then_some(s)
    })
    .await;
    let mut sizes: Vec<usize> = slices
        .iter()
        .map(|s| s.endpoints.as_ref().map_or(0, Vec::len))
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 2, 2]);

    // Slices the controller manages for a service that no longer exists go; a hand-made one
    // without an owner stays, as the garbage collector would leave it.
    let slice = |name: &str, owned: bool| -> EndpointSlice {
        let mut meta = json!({"name": name, "labels": {
            "kubernetes.io/service-name": "ghost",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}});
        if owned {
            meta["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Service", "name": "ghost",
                "uid": "7c9c1d2e-0000-4000-8000-000000000001", "controller": true}]);
        }
        serde_json::from_value(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": meta, "addressType": "IPv4",
            "endpoints": [{"addresses": ["192.0.2.7"]}]}),
        )
        .expect("slice")
    };
    eps.create(&pp, &slice("ghost-owned", true))
        .await
        .expect("create slice");
    eps.create(&pp, &slice("ghost-handmade", false))
        .await
        .expect("create slice");
    wait_for_async("the orphaned slice to go", || async {
        eps.get_opt("ghost-owned")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(eps.get_opt("ghost-handmade").await.expect("get").is_some());
}
