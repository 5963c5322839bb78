//! API semantics against a real etcd: lists, watches, writes, deletes, bad input, allocation.

mod common;

use common::{ApiClient, Cluster, next_event};
use serde_json::{Value, json};

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": name}})
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// Without the root CA publisher, whose `kube-root-ca.crt` would join the configmaps these
/// tests count.
const NO_ROOT_CA: &[&str] = &["--controllers", "*,-root-ca-cert-publisher"];

#[tokio::test(flavor = "multi_thread")]
async fn lists_page_with_continue_and_filter_by_selectors() {
    let c = Cluster::start_with(NO_ROOT_CA);
    let api = ApiClient::new(&c).await;
    for i in 0..25 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        let (code, _) = api
            .post(
                CMS,
                cm(
                    &format!("cm-{i:02}"),
                    json!({"tier": tier, "n": i.to_string()}),
                ),
            )
            .await;
        assert_eq!(code, 201);
    }
    let mut names = Vec::new();
    let mut path = format!("{CMS}?limit=10");
    let mut rv = None;
    loop {
        let (code, list) = api.get(&path).await;
        assert_eq!(code, 200, "{list}");
        let items = list["items"].as_array().expect("items");
        assert!(items.len() <= 10);
        names.extend(
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().expect("name").to_string()),
        );
        let page_rv = list["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .to_string();
        // Every page is read at the revision of the first.
        assert_eq!(*rv.get_or_insert(page_rv.clone()), page_rv);
        match list["metadata"]["continue"].as_str() {
            Some(tok) => path = format!("{CMS}?limit=10&continue={tok}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(names, expected);

    let (_, odd) = api.get(&format!("{CMS}?labelSelector=tier%3Dodd")).await;
    assert_eq!(odd["items"].as_array().expect("items").len(), 12);
    let (_, set) = api
        .get(&format!(
            "{CMS}?labelSelector=n%20in%20(1,2,3),tier!%3Deven"
        ))
        .await;
    let got: Vec<&str> = set["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(got, vec!["cm-01", "cm-03"]);
    let (_, by_name) = api
        .get(&format!("{CMS}?fieldSelector=metadata.name%3Dcm-07"))
        .await;
    assert_eq!(by_name["items"][0]["data"]["k"], "cm-07");
    let (code, err) = api
        .get(&format!("{CMS}?fieldSelector=spec.nonsense%3D1"))
        .await;
    assert_eq!(code, 400, "{err}");
    // A filtered page is still filled up to the limit.
    let (_, page) = api
        .get(&format!("{CMS}?labelSelector=tier%3Deven&limit=5"))
        .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 5);
    // "Any version" comes from the watch cache, whole.
    let (_, any) = api
        .get(&format!(
            "{CMS}?resourceVersion=0&limit=5&labelSelector=tier%3Dodd"
        ))
        .await;
    assert_eq!(any["items"].as_array().expect("items").len(), 12);
    let (code, one) = api.get(&format!("{CMS}/cm-03?resourceVersion=0")).await;
    assert_eq!((code, one["data"]["k"].as_str()), (200, Some("cm-03")));
    // Old resourceVersion, exactly: the state at that revision.
    let (_, exact) = api
        .get(&format!(
            "{CMS}?resourceVersion={}&resourceVersionMatch=Exact",
            rv.expect("rv")
        ))
        .await;
    assert_eq!(exact["items"].as_array().expect("items").len(), 25);
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_follow_kubernetes_rules() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let (code, created) = api.post(CMS, cm("a", json!({}))).await;
    assert_eq!(code, 201);
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(created["metadata"]["creationTimestamp"].is_string());
    // Same name again: 409 AlreadyExists.
    let (code, st) = api.post(CMS, cm("a", json!({}))).await;
    assert_eq!((code, st["reason"].as_str()), (409, Some("AlreadyExists")));
    // Update with the right version, then with the stale one: 409 Conflict.
    let mut upd = created.clone();
    upd["data"]["k"] = json!("v2");
    let (code, updated) = api
        .req(
            "PUT",
            &format!("{CMS}/a"),
            Some(upd.clone()),
            "application/json",
        )
        .await;
    assert_eq!(code, 200, "{updated}");
    assert_ne!(
        updated["metadata"]["resourceVersion"].as_str(),
        Some(rv.as_str())
    );
    let (code, st) = api
        .req("PUT", &format!("{CMS}/a"), Some(upd), "application/json")
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (409, Some("Conflict")),
        "{st}"
    );
    // generateName
    let (code, g) = api
        .post(
            CMS,
            json!({"metadata": {"generateName": "gen-"}, "data": {}}),
        )
        .await;
    assert_eq!(code, 201);
    let name = g["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    // dryRun writes nothing
    let (code, _) = api
        .post(&format!("{CMS}?dryRun=All"), cm("dry", json!({})))
        .await;
    assert_eq!(code, 201);
    assert_eq!(api.get(&format!("{CMS}/dry")).await.0, 404);
    // fieldValidation=Strict: unknown and duplicate fields are named
    let (code, st) = api
        .post(
            &format!("{CMS}?fieldValidation=Strict"),
            json!({"metadata": {"name": "s"}, "datta": {}}),
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        st["message"]
            .as_str()
            .expect("message")
            .contains("unknown field \"datta\""),
        "{st}"
    );
    let dup = br#"{"metadata":{"name":"d","name":"d"},"data":{}}"#.to_vec();
    let (code, st) = api
        .req_bytes(
            "POST",
            &format!("{CMS}?fieldValidation=Strict"),
            dup,
            "application/json",
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        st["message"]
            .as_str()
            .expect("message")
            .contains("duplicate field \"metadata.name\""),
        "{st}"
    );
    // Malformed, wrong kind, too large, unknown resource
    let (code, st) = api
        .req_bytes("POST", CMS, b"{not json".to_vec(), "application/json")
        .await;
    assert_eq!((code, st["kind"].as_str()), (400, Some("Status")));
    let (code, _) = api
        .post(
            CMS,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(code, 400);
    let big = serde_json::to_vec(
        &json!({"metadata": {"name": "big"}, "data": {"k": "x".repeat(4 << 20)}}),
    )
    .expect("json");
    let (code, st) = api.req_bytes("POST", CMS, big, "application/json").await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );
    assert_eq!(
        api.get(&format!("{CMS}/big")).await.0,
        404,
        "nothing half-written"
    );
    let (code, st) = api.get("/api/v1/namespaces/default/widgets").await;
    assert_eq!((code, st["reason"].as_str()), (404, Some("NotFound")));
    // A wrong type is a 400 naming the kind.
    let (code, st) = api
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"metadata": {"name": "t"}, "spec": {"replicas": "three"}}),
        )
        .await;
    assert_eq!(code, 400, "{st}");
    // Validation: 422 with a cause per field.
    let (code, st) = api
        .post(CMS, json!({"metadata": {"name": "Bad_Name"}}))
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (422, Some("Invalid")),
        "{st}"
    );
    assert_eq!(st["details"]["causes"][0]["field"], "metadata.name");
    // Prometheus metrics count requests by verb and resource.
    let metrics = api
        .client
        .request_text(
            http::Request::get("/metrics")
                .body(Vec::new())
                .expect("req"),
        )
        .await
        .expect("metrics");
    assert!(
        metrics.contains(
            "apiserver_request_total{verb=\"POST\",resource=\"configmaps\",code=\"201\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("etcd_request_duration_seconds_bucket"),
        "{metrics}"
    );
    // The namespace must exist.
    let (code, st) = api
        .post("/api/v1/namespaces/nowhere/configmaps", cm("x", json!({})))
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (404, Some("NotFound")),
        "{st}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generation_counts_spec_changes_and_status_is_a_subresource() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let (code, d) = api.post(deploys, d).await;
    assert_eq!(code, 201, "{d}");
    assert_eq!(d["metadata"]["generation"], 1);
    let merge = "application/merge-patch+json";
    let (_, d) = api
        .req(
            "PATCH",
            &format!("{deploys}/web"),
            Some(json!({"metadata": {"labels": {"x": "y"}}})),
            merge,
        )
        .await;
    assert_eq!(d["metadata"]["generation"], 1, "labels are not spec");
    let (_, d) = api
        .req(
            "PATCH",
            &format!("{deploys}/web"),
            Some(json!({"spec": {"replicas": 2}, "status": {"replicas": 9}})),
            merge,
        )
        .await;
    assert_eq!(d["metadata"]["generation"], 2);
    assert!(
        d["status"].get("replicas").is_none(),
        "status changes only through /status: {}",
        d["status"]
    );
    let (code, d) = api
        .req(
            "PATCH",
            &format!("{deploys}/web/status"),
            Some(json!({"status": {"replicas": 2}, "spec": {"replicas": 7}})),
            merge,
        )
        .await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(
        (
            d["status"]["replicas"].as_i64(),
            d["spec"]["replicas"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(d["metadata"]["generation"], 2);
    let (code, scale) = api.get(&format!("{deploys}/web/scale")).await;
    assert_eq!(code, 200);
    assert_eq!(
        (
            scale["kind"].as_str(),
            scale["spec"]["replicas"].as_i64(),
            scale["status"]["selector"].as_str()
        ),
        (Some("Scale"), Some(2), Some("app=web"))
    );
    let (code, scale) = api
        .req(
            "PATCH",
            &format!("{deploys}/web/scale"),
            Some(json!({"spec": {"replicas": 4}})),
            merge,
        )
        .await;
    assert_eq!((code, scale["spec"]["replicas"].as_i64()), (200, Some(4)));
    let (code, st) = api
        .req(
            "PATCH",
            &format!("{deploys}/web/scale"),
            Some(json!({"spec": {"replicas": -1}})),
            merge,
        )
        .await;
    assert_eq!(code, 422, "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_waits_for_finalizers_and_checks_preconditions() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let mut obj = cm("held", json!({}));
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let (_, created) = api.post(CMS, obj).await;
    let (code, st) = api
        .req(
            "DELETE",
            &format!("{CMS}/held"),
            Some(json!({"preconditions": {"uid": "not-the-uid"}})),
            "application/json",
        )
        .await;
    assert_eq!(code, 409, "{st}");
    let (code, pending) = api
        .req("DELETE", &format!("{CMS}/held"), None, "application/json")
        .await;
    assert_eq!(code, 202, "{pending}");
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    let (code, still) = api.get(&format!("{CMS}/held")).await;
    assert_eq!(code, 200);
    assert_eq!(still["metadata"]["uid"], created["metadata"]["uid"]);
    let (code, done) = api
        .req(
            "PATCH",
            &format!("{CMS}/held"),
            Some(json!({"metadata": {"finalizers": null}})),
            "application/merge-patch+json",
        )
        .await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(
        api.get(&format!("{CMS}/held")).await.0,
        404,
        "the last finalizer removed deletes it"
    );

    // Foreground deletion leaves the object with the foregroundDeletion finalizer.
    api.post(CMS, cm("fg", json!({}))).await;
    let (code, fg) = api
        .req(
            "DELETE",
            &format!("{CMS}/fg"),
            Some(json!({"propagationPolicy": "Foreground"})),
            "application/json",
        )
        .await;
    assert_eq!(code, 202);
    assert_eq!(fg["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    // deletecollection by label
    for i in 0..3 {
        api.post(CMS, cm(&format!("gone-{i}"), json!({"batch": "x"})))
            .await;
    }
    let (code, _) = api
        .req(
            "DELETE",
            &format!("{CMS}?labelSelector=batch%3Dx"),
            None,
            "application/json",
        )
        .await;
    assert_eq!(code, 200);
    let (_, left) = api.get(&format!("{CMS}?labelSelector=batch%3Dx")).await;
    assert_eq!(left["items"].as_array().map(Vec::len), Some(0));
    // A bound, running pod is deleted gracefully; an unbound one at once.
    let pods = "/api/v1/namespaces/default/pods";
    let pod = |name: &str, node: Option<&str>| {
        let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        p
    };
    api.post(pods, pod("free", None)).await;
    let (code, _) = api
        .req("DELETE", &format!("{pods}/free"), None, "application/json")
        .await;
    assert_eq!(code, 200);
    api.post(pods, pod("bound", Some("n1"))).await;
    let (code, p) = api
        .req("DELETE", &format!("{pods}/bound"), None, "application/json")
        .await;
    assert_eq!(code, 202);
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, _) = api
        .req(
            "DELETE",
            &format!("{pods}/bound"),
            Some(json!({"gracePeriodSeconds": 0})),
            "application/json",
        )
        .await;
    assert_eq!(code, 200, "the kubelet's final delete");
    assert_eq!(api.get(&format!("{pods}/bound")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn services_get_unique_cluster_ips_and_node_ports_released_on_delete() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let svcs = "/api/v1/namespaces/default/services";
    let mut ips = std::collections::HashSet::new();
    for i in 0..20 {
        let ty = if i % 4 == 0 { "NodePort" } else { "ClusterIP" };
        let (code, s) = api
            .post(svcs, json!({"metadata": {"name": format!("s{i}")}, "spec": {"type": ty, "selector": {"app": "x"}, "ports": [{"port": 80}]}}))
            .await;
        assert_eq!(code, 201, "{s}");
        let ip = s["spec"]["clusterIP"]
            .as_str()
            .expect("clusterIP")
            .to_string();
        assert!(ip.starts_with("10."), "{ip}");
        assert_eq!(s["spec"]["clusterIPs"][0], json!(ip));
        assert!(ips.insert(ip), "duplicate ClusterIP");
        assert_eq!(
            s["spec"]["ports"][0]["targetPort"], 80,
            "targetPort defaults to port"
        );
        if ty == "NodePort" {
            let np = s["spec"]["ports"][0]["nodePort"]
                .as_i64()
                .expect("nodePort");
            assert!((30000..=32767).contains(&np));
        }
    }
    let (_, s0) = api.get(&format!("{svcs}/s0")).await;
    let taken = s0["spec"]["clusterIP"].as_str().expect("ip").to_string();
    let np = s0["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    let (code, st) = api
        .post(svcs, json!({"metadata": {"name": "dup"}, "spec": {"clusterIP": taken, "ports": [{"port": 80}]}}))
        .await;
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .expect("msg")
            .contains("already allocated")
    );
    // Changing the ClusterIP is refused.
    let (code, _) = api
        .req(
            "PATCH",
            &format!("{svcs}/s1"),
            Some(json!({"spec": {"clusterIP": "10.96.0.77"}})),
            "application/merge-patch+json",
        )
        .await;
    assert_eq!(code, 422);
    // Deleting frees the address and the port for the next taker.
    assert_eq!(
        api.req("DELETE", &format!("{svcs}/s0"), None, "application/json")
            .await
            .0,
        200
    );
    let (code, s) = api
        .post(svcs, json!({"metadata": {"name": "again"}, "spec": {"type": "NodePort", "clusterIP": taken, "ports": [{"port": 80, "nodePort": np}]}}))
        .await;
    assert_eq!(code, 201, "{s}");
    // Headless services get no address.
    let (_, h) = api.post(svcs, json!({"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}})).await;
    assert_eq!(h["spec"]["clusterIP"], "None");
    // The API's own service exists from the start.
    let (code, k) = api.get(&format!("{svcs}/kubernetes")).await;
    assert_eq!(
        (code, k["spec"]["clusterIP"].as_str()),
        (200, Some("10.96.0.1"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_written_through_events_k8s_io_are_core_events_too() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.1"},
        "eventTime": "2026-11-22T03:00:00.000000Z", "reportingController": "ketch.dev/test", "reportingInstance": "t1",
        "action": "Testing", "reason": "Tested", "type": "Normal", "note": "a note",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"}});
    let (code, created) = api
        .post("/apis/events.k8s.io/v1/namespaces/default/events", ev)
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["note"], "a note");
    let (code, core) = api.get("/api/v1/namespaces/default/events/web.1").await;
    assert_eq!(code, 200);
    assert_eq!(
        (
            core["message"].as_str(),
            core["involvedObject"]["name"].as_str()
        ),
        (Some("a note"), Some("web"))
    );
    assert_eq!(core["reportingComponent"], "ketch.dev/test");
    let out = c.ok(&["get", "events", "-n", "default"]);
    assert!(
        out.contains("Tested") && out.contains("pod/web") && out.contains("a note"),
        "{out}"
    );
    let (_, list) = api
        .get("/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dweb")
        .await;
    assert_eq!(list["items"][0]["regarding"]["name"], "web");
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_terminate_and_refuse_new_content() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let (code, _) = api
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "doomed"}}),
        )
        .await;
    assert_eq!(code, 201);
    let (code, ns) = api
        .req(
            "DELETE",
            "/api/v1/namespaces/doomed",
            None,
            "application/json",
        )
        .await;
    assert!(code == 200 || code == 202, "{code} {ns}");
    let (_, ns) = api.get("/api/v1/namespaces/doomed").await;
    assert_eq!(ns["status"]["phase"], "Terminating");
    let (code, st) = api
        .post(
            "/api/v1/namespaces/doomed/configmaps",
            cm("late", json!({})),
        )
        .await;
    assert_eq!(code, 403, "{st}");
    assert!(
        st["message"]
            .as_str()
            .expect("msg")
            .contains("being terminated")
    );
    let (code, _) = api
        .req(
            "DELETE",
            "/api/v1/namespaces/default",
            None,
            "application/json",
        )
        .await;
    assert_eq!(code, 403, "default may not be deleted");
}

/// Creates ConfigMap `name` labelled `app=<app>`; returns its resourceVersion.
async fn create_cm(api: &ApiClient, name: &str, app: &str) -> String {
    let (_, made) = api.post(CMS, cm(name, json!({"app": app}))).await;
    made["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string()
}

/// The next `n` watch events as "TYPE name".
async fn events(w: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let ev = next_event(w).await;
        seen.push(format!(
            "{} {}",
            ev["type"].as_str().expect("type"),
            ev["object"]["metadata"]["name"].as_str().expect("name")
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_resume_bookmark_and_send_initial_events() {
    let c = Cluster::start_with(&[
        "--watch-bookmark-interval",
        "1",
        "--controllers",
        "*,-root-ca-cert-publisher",
    ]);
    let api = ApiClient::new(&c).await;
    let rv0 = create_cm(&api, "w0", "w").await;
    // From a resourceVersion: only later changes, in order, with the right types.
    let mut w = api
        .watch(&format!(
            "{CMS}?watch=true&resourceVersion={rv0}&labelSelector=app%3Dw"
        ))
        .await;
    api.post(CMS, cm("w1", json!({"app": "w"}))).await;
    api.req(
        "PATCH",
        &format!("{CMS}/w1"),
        Some(json!({"data": {"k": "changed"}})),
        "application/merge-patch+json",
    )
    .await;
    api.req(
        "PATCH",
        &format!("{CMS}/w0"),
        Some(json!({"metadata": {"labels": {"app": "other"}}})),
        "application/merge-patch+json",
    )
    .await;
    api.req("DELETE", &format!("{CMS}/w1"), None, "application/json")
        .await;
    let seen = events(&mut w, 4).await;
    assert_eq!(
        seen,
        vec!["ADDED w1", "MODIFIED w1", "DELETED w0", "DELETED w1"],
        "leaving the selection is a DELETED"
    );

    // sendInitialEvents: the current state, then the initial-events-end bookmark.
    let mut w = api
        .watch(&format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"))
        .await;
    let ev = next_event(&mut w).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("w0"))
    );
    let ev = next_event(&mut w).await;
    assert_eq!(ev["type"], "BOOKMARK");
    assert_eq!(
        ev["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // Periodic bookmarks (interval 1s here) carry a resourceVersion.
    let ev = next_event(&mut w).await;
    assert_eq!(ev["type"], "BOOKMARK", "{ev}");
    assert!(
        ev["object"]["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|r| r.parse::<i64>().is_ok())
    );
    // sendInitialEvents without its requirements is refused.
    let (code, _) = api
        .get(&format!("{CMS}?watch=true&sendInitialEvents=true"))
        .await;
    assert_eq!(code, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_older_than_the_cache_window_still_sees_deletions() {
    let c = Cluster::start_with(&[
        "--watch-cache-size",
        "2",
        "--controllers",
        "*,-root-ca-cert-publisher",
    ]);
    let api = ApiClient::new(&c).await;
    let rv0 = create_cm(&api, "old0", "old").await;
    for i in 1..=4 {
        api.post(CMS, cm(&format!("old{i}"), json!({"app": "old"})))
            .await;
    }
    let (code, _) = api
        .req("DELETE", &format!("{CMS}/old0"), None, "application/json")
        .await;
    assert_eq!(code, 200);
    // Five events after rv0 and a cache of two: this watch is served from storage.
    let mut w = api
        .watch(&format!(
            "{CMS}?watch=true&resourceVersion={rv0}&labelSelector=app%3Dold"
        ))
        .await;
    let seen = events(&mut w, 5).await;
    assert_eq!(
        seen,
        vec![
            "ADDED old1",
            "ADDED old2",
            "ADDED old3",
            "ADDED old4",
            "DELETED old0"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_gives_an_old_watch_410_gone() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let (_, a) = api.post(CMS, cm("c0", json!({}))).await;
    let old_rv = a["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    for i in 1..5 {
        api.post(CMS, cm(&format!("c{i}"), json!({}))).await;
    }
    let (_, list) = api.get(CMS).await;
    let now = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let out = common::etcdctl(&c.etcd.url, &["compact", &now]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut w = api
        .watch(&format!("{CMS}?watch=true&resourceVersion={old_rv}"))
        .await;
    let ev = next_event(&mut w).await;
    assert_eq!(ev["type"], "ERROR", "{ev}");
    assert_eq!(
        (
            ev["object"]["code"].as_i64(),
            ev["object"]["reason"].as_str()
        ),
        (Some(410), Some("Expired"))
    );
    // A paged list continuing at a compacted revision is gone too.
    let (code, _) = api
        .get(&format!(
            "{CMS}?resourceVersion={old_rv}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(code, 410);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_sees_every_write_and_a_restart_loses_nothing() {
    let mut c = Cluster::start_with(NO_ROOT_CA);
    let dir2 = tempfile::tempdir().expect("tempdir");
    // The second instance shares the PKI, as servers of one cluster do.
    std::fs::create_dir_all(dir2.path().join("pki")).expect("pki dir");
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(
            c.dir.path().join("pki").join(f),
            dir2.path().join("pki").join(f),
        )
        .expect("copy CA");
    }
    let second = common::Control::start(&c.etcd.url, dir2.path(), NO_ROOT_CA);
    let a = ApiClient::new(&c).await;
    let b = ApiClient::new(&second).await;
    let mut wb = b
        .watch(&format!("{CMS}?watch=true&resourceVersion=0"))
        .await;
    // skip the initial state of the namespace (the bootstrap objects are not configmaps)
    for i in 0..10 {
        let (code, _) = a.post(CMS, cm(&format!("x{i}"), json!({}))).await;
        assert_eq!(code, 201);
    }
    let mut names = Vec::new();
    while names.len() < 10 {
        let ev = next_event(&mut wb).await;
        names.push(
            ev["object"]["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_string(),
        );
    }
    assert_eq!(
        names,
        (0..10).map(|i| format!("x{i}")).collect::<Vec<_>>(),
        "the other server's watch sees every write"
    );
    let (code, got) = b.get(&format!("{CMS}/x3")).await;
    assert_eq!((code, got["data"]["k"].as_str()), (200, Some("x3")));
    // A write through B is read through A with the same resourceVersion.
    let (_, made) = b.post(CMS, cm("from-b", json!({}))).await;
    let (_, seen) = a.get(&format!("{CMS}/from-b")).await;
    assert_eq!(
        seen["metadata"]["resourceVersion"],
        made["metadata"]["resourceVersion"]
    );

    // Kill A hard and start it again: everything is still there.
    c.control.restart();
    let a = ApiClient::new(&c).await;
    let (_, list) = a.get(CMS).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(11));
    let (code, _) = a.get(&format!("{CMS}/from-b")).await;
    assert_eq!(code, 200);
}
