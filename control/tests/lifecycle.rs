//! Object lifecycle against a real API server and controller manager: namespace deletion,
//! default service accounts and the root CA, the garbage collector's three propagation
//! policies, and service account tokens (TokenRequest, authentication, the pod token volume).

mod common;

use common::kubelet::FakeNodes;
use common::{ApiClient, Cluster, Control, wait_for_async};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Creates a namespace and waits for its `default` service account (pods need it).
async fn namespace(c: &Cluster, api: &ApiClient, name: &str) {
    c.ok(&["create", "namespace", name]);
    wait_for_async(
        &format!("the default service account of {name}"),
        || async {
            let (code, _) = api
                .get(&format!(
                    "/api/v1/namespaces/{name}/serviceaccounts/default"
                ))
                .await;
            (code == 200).then_some(())
        },
    )
    .await;
}

async fn gone(api: &ApiClient, path: &str) {
    wait_for_async(&format!("{path} to be gone"), || async {
        let (code, _) = api.get(path).await;
        (code == 404).then_some(())
    })
    .await;
}

async fn exists(api: &ApiClient, path: &str) -> Value {
    wait_for_async(&format!("{path} to exist"), || async {
        let (code, v) = api.get(path).await;
        (code == 200).then_some(v)
    })
    .await
}

fn condition<'a>(ns: &'a Value, ty: &str) -> Option<&'a Value> {
    ns.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

const WORKLOAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  terminationGracePeriodSeconds: 3
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_namespace_empties_it_then_removes_it() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    let _nodes = FakeNodes::start(api.client.clone(), &[("n1", &[], "4", "8Gi")], None).await;
    namespace(&c, &api, "shop").await;
    c.ok_in(&["apply", "-n", "shop", "-f", "-"], WORKLOAD);
    // A configmap held by someone else's finalizer keeps the namespace until released.
    c.ok_in(
        &["create", "-n", "shop", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}"#,
    );
    // The pod runs on the node, so its deletion is graceful.
    wait_for_async("solo to run", || async {
        let (_, p) = api.get("/api/v1/namespaces/shop/pods/solo").await;
        (p.pointer("/status/phase") == Some(&json!("Running"))).then_some(())
    })
    .await;

    c.ok(&["delete", "namespace", "shop", "--wait=false"]);
    let ns = exists(&api, "/api/v1/namespaces/shop").await;
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    // Everything but the held configmap goes; the conditions say what is left and why.
    let only_held = "Some resources are remaining: configmaps. has 1 resource instances";
    let ns = wait_for_async("the conditions to name only the held configmap", || async {
        let (_, ns) = api.get("/api/v1/namespaces/shop").await;
        let remaining = condition(&ns, "NamespaceContentRemaining")?;
        (remaining["message"] == only_held).then_some(ns.clone())
    })
    .await;
    let remaining = condition(&ns, "NamespaceContentRemaining").expect("content condition");
    assert_eq!(remaining["status"], "True");
    assert_eq!(remaining["reason"], "SomeResourcesRemain");
    let fin = condition(&ns, "NamespaceFinalizersRemaining").expect("finalizers condition");
    assert_eq!(fin["reason"], "SomeFinalizersRemain");
    assert_eq!(
        fin["message"],
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    let discovery = condition(&ns, "NamespaceDeletionDiscoveryFailure").expect("discovery");
    assert_eq!(discovery["status"], "False");
    assert_eq!(discovery["reason"], "ResourcesDiscovered");
    for path in [
        "/apis/apps/v1/namespaces/shop/deployments/web",
        "/api/v1/namespaces/shop/pods/solo",
        "/api/v1/namespaces/shop/configmaps/settings",
        "/api/v1/namespaces/shop/services/web",
        "/api/v1/namespaces/shop/serviceaccounts/default",
        "/api/v1/namespaces/shop/configmaps/kube-root-ca.crt",
    ] {
        gone(&api, path).await;
    }
    let held = exists(&api, "/api/v1/namespaces/shop/configmaps/held").await;
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    // Nothing new may be created meanwhile.
    let err = c.fails(&["create", "configmap", "late", "-n", "shop"]);
    assert!(err.contains("because it is being terminated"), "{err}");
    let err = c.fails(&["run", "late", "-n", "shop", "--image", "nginx"]);
    assert!(err.contains("because it is being terminated"), "{err}");

    c.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    gone(&api, "/api/v1/namespaces/shop").await;
    let err = c.fails(&["get", "namespace", "shop"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // `kubectl delete namespace` waits until it is gone.
    namespace(&c, &api, "cafe").await;
    c.ok_in(&["apply", "-n", "cafe", "-f", "-"], WORKLOAD);
    let out = c.ok(&["delete", "namespace", "cafe"]);
    assert!(out.contains("namespace \"cafe\" deleted"), "{out}");
    let err = c.fails(&["get", "namespace", "cafe"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let (code, _) = api.get("/api/v1/namespaces/cafe/pods/solo").await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_namespaces_get_a_default_service_account_and_the_root_ca() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    c.ok(&["create", "namespace", "team"]);
    let sa = exists(&api, "/api/v1/namespaces/team/serviceaccounts/default").await;
    let cm = exists(&api, "/api/v1/namespaces/team/configmaps/kube-root-ca.crt").await;
    let ca = std::fs::read_to_string(c.control.dir.join("pki/ca.crt")).expect("ca");
    assert_eq!(cm["data"]["ca.crt"], json!(ca));
    assert!(
        cm["metadata"]["annotations"]["kubernetes.io/description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Contains a CA bundle"))
    );
    // The system namespaces have them too.
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        exists(
            &api,
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/default"),
        )
        .await;
        exists(
            &api,
            &format!("/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"),
        )
        .await;
    }
    // Deleted, they come back (a new object).
    c.ok(&["delete", "serviceaccount", "default", "-n", "team"]);
    let uid = sa["metadata"]["uid"].clone();
    wait_for_async("the default service account to come back", || async {
        let (code, v) = api
            .get("/api/v1/namespaces/team/serviceaccounts/default")
            .await;
        (code == 200 && v["metadata"]["uid"] != uid).then_some(())
    })
    .await;
    c.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    wait_for_async("the root CA to be restored", || async {
        let (_, v) = api
            .get("/api/v1/namespaces/team/configmaps/kube-root-ca.crt")
            .await;
        (v["data"]["ca.crt"] == json!(ca)).then_some(())
    })
    .await;
}

fn owner_ref(kind: &str, api_version: &str, obj: &Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true})
}

async fn create(api: &ApiClient, path: &str, body: Value) -> Value {
    let (code, v) = api.post(path, body).await;
    assert_eq!(code, 201, "create at {path}: {v}");
    v
}

fn pod(name: &str, owner: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": [owner]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_collector_follows_the_propagation_policy() {
    // The ownership here is made by hand: the workload controllers stay out of it.
    let c = Cluster::start_with(&["--controllers", "*,-deployment,-replicaset"]);
    let api = ApiClient::new(&c).await;
    namespace(&c, &api, "gc").await;
    let ns = "/api/v1/namespaces/gc";
    let apps = "/apis/apps/v1/namespaces/gc";

    // Background (kubectl's default): the owner goes at once, its dependents after it.
    let deploy = create(
        &api,
        &format!("{apps}/deployments"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    let rs = create(
        &api,
        &format!("{apps}/replicasets"),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "ownerReferences": [owner_ref("Deployment", "apps/v1", &deploy)]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    for p in ["web-1-a", "web-1-b"] {
        create(
            &api,
            &format!("{ns}/pods"),
            pod(p, owner_ref("ReplicaSet", "apps/v1", &rs)),
        )
        .await;
    }
    c.ok(&["delete", "deployment", "web", "-n", "gc"]);
    gone(&api, &format!("{apps}/replicasets/web-1")).await;
    gone(&api, &format!("{ns}/pods/web-1-a")).await;
    gone(&api, &format!("{ns}/pods/web-1-b")).await;

    // An object whose owner never existed is collected too.
    create(
        &api,
        &format!("{ns}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "2b1d6a4e-0000-4000-8000-000000000000"}]}}),
    )
    .await;
    gone(&api, &format!("{ns}/configmaps/stray")).await;
    // ... but not one with a live owner among its owners.
    let keeper = create(
        &api,
        &format!("{ns}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keeper"}}),
    )
    .await;
    create(
        &api,
        &format!("{ns}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept",
            "ownerReferences": [owner_ref("ConfigMap", "v1", &keeper),
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "2b1d6a4e-0000-4000-8000-000000000001"}]}}),
    )
    .await;
    // The dangling reference is dropped, the object stays.
    wait_for_async("the dangling owner reference to be dropped", || async {
        let (_, v) = api.get(&format!("{ns}/configmaps/kept")).await;
        (v.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(Vec::len)
            == Some(1))
        .then_some(())
    })
    .await;

    // Foreground: the owner stays, marked, until its blocking dependents are gone.
    let parent = create(
        &api,
        &format!("{ns}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "parent"}}),
    )
    .await;
    create(
        &api,
        &format!("{ns}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "child",
            "finalizers": ["example.com/hold"],
            "ownerReferences": [owner_ref("ConfigMap", "v1", &parent)]}}),
    )
    .await;
    // A dependent that does not block its owner's deletion.
    let mut loose = owner_ref("ConfigMap", "v1", &parent);
    loose["blockOwnerDeletion"] = json!(false);
    loose["controller"] = json!(false);
    create(
        &api,
        &format!("{ns}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "loose",
            "finalizers": ["example.com/hold"], "ownerReferences": [loose]}}),
    )
    .await;
    c.ok(&[
        "delete",
        "configmap",
        "parent",
        "-n",
        "gc",
        "--cascade=foreground",
        "--wait=false",
    ]);
    wait_for_async("the child to be deleted", || async {
        let (_, v) = api.get(&format!("{ns}/secrets/child")).await;
        v["metadata"]["deletionTimestamp"].as_str().map(|_| ())
    })
    .await;
    let p = exists(&api, &format!("{ns}/configmaps/parent")).await;
    assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p}");
    assert_eq!(p["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    c.ok(&[
        "patch",
        "secret",
        "child",
        "-n",
        "gc",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    gone(&api, &format!("{ns}/secrets/child")).await;
    gone(&api, &format!("{ns}/configmaps/parent")).await;
    // The non-blocking dependent was deleted too, but did not hold the owner.
    let l = exists(&api, &format!("{ns}/secrets/loose")).await;
    assert!(l["metadata"]["deletionTimestamp"].is_string(), "{l}");
    c.ok(&[
        "patch",
        "secret",
        "loose",
        "-n",
        "gc",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    gone(&api, &format!("{ns}/secrets/loose")).await;

    // Foreground through two levels: the middle owner is deleted in the foreground as well,
    // so the top one goes last.
    let top = create(
        &api,
        &format!("{apps}/deployments"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    let middle = create(
        &api,
        &format!("{apps}/replicasets"),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "api-1", "ownerReferences": [owner_ref("Deployment", "apps/v1", &top)]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    let mut leaf = pod("api-1-a", owner_ref("ReplicaSet", "apps/v1", &middle));
    leaf["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create(&api, &format!("{ns}/pods"), leaf).await;
    c.ok(&[
        "delete",
        "deployment",
        "api",
        "-n",
        "gc",
        "--cascade=foreground",
        "--wait=false",
    ]);
    wait_for_async("the pod to be deleted", || async {
        let (_, v) = api.get(&format!("{ns}/pods/api-1-a")).await;
        v["metadata"]["deletionTimestamp"].as_str().map(|_| ())
    })
    .await;
    let rs = exists(&api, &format!("{apps}/replicasets/api-1")).await;
    assert_eq!(rs["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    let d = exists(&api, &format!("{apps}/deployments/api")).await;
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    c.ok(&[
        "patch",
        "pod",
        "api-1-a",
        "-n",
        "gc",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    gone(&api, &format!("{ns}/pods/api-1-a")).await;
    gone(&api, &format!("{apps}/replicasets/api-1")).await;
    gone(&api, &format!("{apps}/deployments/api")).await;

    // Orphan: the owner goes, its dependents stay without the reference.
    let rs = create(
        &api,
        &format!("{apps}/replicasets"),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "lonely"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "lonely"}},
                "template": {"metadata": {"labels": {"app": "lonely"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    for p in ["lonely-a", "lonely-b"] {
        create(
            &api,
            &format!("{ns}/pods"),
            pod(p, owner_ref("ReplicaSet", "apps/v1", &rs)),
        )
        .await;
    }
    c.ok(&[
        "delete",
        "replicaset",
        "lonely",
        "-n",
        "gc",
        "--cascade=orphan",
    ]);
    gone(&api, &format!("{apps}/replicasets/lonely")).await;
    for p in ["lonely-a", "lonely-b"] {
        let v = exists(&api, &format!("{ns}/pods/{p}")).await;
        // (the API server keeps an emptied list where upstream drops the field)
        assert!(
            v["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "{v}"
        );
        assert!(v["metadata"]["deletionTimestamp"].is_null(), "{v}");
    }
}

/// A kubeconfig for `server` authenticating with `token` only.
fn token_kubeconfig(server: &Control, name: &str, token: &str) -> PathBuf {
    let path = server.dir.join(format!("{name}.kubeconfig"));
    let ca = server.dir.join("pki/ca.crt");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ketch\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context: {{cluster: ketch, user: {name}, namespace: shop}}\ncurrent-context: {name}\n",
        server.url(),
        ca.display()
    );
    std::fs::write(&path, text).expect("kubeconfig");
    path
}

/// `kubectl auth whoami -o json` with a token, or the error.
fn whoami(c: &Control, kubeconfig: &Path) -> Result<Value, String> {
    let out = c.kubectl_as(kubeconfig, &["auth", "whoami", "-o", "json"], None);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("json"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("claims")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_account_tokens_authenticate_until_the_account_is_gone() {
    let mut c = Cluster::start();
    let api = ApiClient::new(&c).await;
    namespace(&c, &api, "shop").await;
    let token = c.ok(&["create", "token", "default", "-n", "shop"]);
    let token = token.trim();
    let body = claims(token);
    assert_eq!(body["iss"], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(body["sub"], "system:serviceaccount:shop:default");
    assert_eq!(
        body["aud"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(
        body["exp"].as_i64().expect("exp") - body["iat"].as_i64().expect("iat"),
        3600
    );
    assert_eq!(body["nbf"], body["iat"]);
    assert!(body["jti"].is_string());
    let sa = exists(&api, "/api/v1/namespaces/shop/serviceaccounts/default").await;
    assert_eq!(
        body["kubernetes.io"],
        json!({"namespace": "shop", "serviceaccount": {"name": "default", "uid": sa["metadata"]["uid"]}})
    );

    let kc = token_kubeconfig(&c, "default", token);
    let me = whoami(&c, &kc).expect("the token authenticates");
    let user = &me["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:shop:default");
    assert_eq!(user["uid"], sa["metadata"]["uid"]);
    assert_eq!(
        user["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:shop",
            "system:authenticated"
        ])
    );
    // The account has no rights beyond discovery and reviews.
    let out = c.kubectl_as(&kc, &["get", "pods"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("User \"system:serviceaccount:shop:default\" cannot list resource \"pods\""),
        "{err}"
    );

    // TokenReview answers for it too, with the audiences it is good for.
    let (code, review) = api
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(review["status"]["authenticated"], true);
    assert_eq!(
        review["status"]["user"]["username"],
        "system:serviceaccount:shop:default"
    );
    assert_eq!(
        review["status"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );

    // Another audience: not for this API, but a TokenReview for that audience accepts it.
    let vault = c.ok(&[
        "create",
        "token",
        "default",
        "-n",
        "shop",
        "--audience",
        "vault",
    ]);
    let vkc = token_kubeconfig(&c, "vault", vault.trim());
    let err = whoami(&c, &vkc).expect_err("wrong audience");
    assert!(err.contains("Unauthorized"), "{err}");
    let (_, review) = api
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": vault.trim(), "audiences": ["vault"]}}),
        )
        .await;
    assert_eq!(review["status"]["authenticated"], true);
    assert_eq!(review["status"]["audiences"], json!(["vault"]));

    // Validation of the request.
    let err = c.fails(&[
        "create",
        "token",
        "default",
        "-n",
        "shop",
        "--duration",
        "5m",
    ]);
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let err = c.fails(&["create", "token", "nobody", "-n", "shop"]);
    assert!(
        err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );
    let long = c.ok(&[
        "create",
        "token",
        "default",
        "-n",
        "shop",
        "--duration",
        "2h",
    ]);
    let b = claims(long.trim());
    assert_eq!(
        b["exp"].as_i64().expect("exp") - b["iat"].as_i64().expect("iat"),
        7200
    );

    // A token bound to a pod names it, and dies with it.
    c.ok(&["run", "web", "-n", "shop", "--image", "nginx"]);
    let pod = exists(&api, "/api/v1/namespaces/shop/pods/web").await;
    let bound = c.ok(&[
        "create",
        "token",
        "default",
        "-n",
        "shop",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "web",
    ]);
    let b = claims(bound.trim());
    assert_eq!(
        b["kubernetes.io"]["pod"],
        json!({"name": "web", "uid": pod["metadata"]["uid"]})
    );
    let bkc = token_kubeconfig(&c, "bound", bound.trim());
    let me = whoami(&c, &bkc).expect("bound token authenticates");
    assert_eq!(
        me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["web"])
    );
    assert_eq!(
        me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([pod["metadata"]["uid"]])
    );
    c.ok(&["create", "serviceaccount", "robot", "-n", "shop"]);
    let err = c.fails(&[
        "create",
        "token",
        "robot",
        "-n",
        "shop",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "web",
    ]);
    assert!(
        err.contains("cannot bind token for serviceaccount \"robot\" to pod running with different serviceaccount name."),
        "{err}"
    );
    c.ok(&["delete", "pod", "web", "-n", "shop"]);
    wait_for_async("the pod-bound token to stop working", || async {
        whoami(&c, &bkc).err().map(|_| ())
    })
    .await;

    // The signing key is kept: tokens survive an API server restart.
    let key = std::fs::read(c.control.dir.join("pki/sa.key")).expect("sa.key");
    assert!(c.control.dir.join("pki/sa.pub").exists());
    c.control.restart();
    assert_eq!(
        std::fs::read(c.control.dir.join("pki/sa.key")).expect("sa.key"),
        key
    );
    let api = ApiClient::new(&c).await;
    let kc = token_kubeconfig(&c, "default", token);
    whoami(&c, &kc).expect("the token still authenticates after a restart");

    // Deleting the account ends its tokens.
    let robot = c.ok(&["create", "token", "robot", "-n", "shop"]);
    let rkc = token_kubeconfig(&c, "robot", robot.trim());
    let me = whoami(&c, &rkc).expect("robot authenticates");
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:shop:robot"
    );
    c.ok(&["delete", "serviceaccount", "robot", "-n", "shop"]);
    let err = wait_for_async("the robot's token to stop working", || async {
        whoami(&c, &rkc).err()
    })
    .await;
    assert!(err.contains("Unauthorized"), "{err}");
    // Recreated under the same name, it is another account: the old token stays dead.
    c.ok(&["create", "serviceaccount", "robot", "-n", "shop"]);
    exists(&api, "/api/v1/namespaces/shop/serviceaccounts/robot").await;
    assert!(whoami(&c, &rkc).is_err());
    // The default account, deleted, comes back as a new account; its old tokens are dead.
    c.ok(&["delete", "serviceaccount", "default", "-n", "shop"]);
    wait_for_async("the default token to stop working", || async {
        whoami(&c, &kc).err().map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_servers_sharing_the_key_accept_each_others_tokens() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    namespace(&c, &api, "shop").await;
    let token = c.ok(&["create", "token", "default", "-n", "shop"]);
    let token = token.trim();
    // A second server of the cluster, with the cluster's PKI including the signing key.
    let shared = tempfile::tempdir().expect("tempdir");
    let alone = tempfile::tempdir().expect("tempdir");
    for (dir, files) in [
        (&shared, &["ca.crt", "ca.key", "sa.key", "sa.pub"][..]),
        (&alone, &["ca.crt", "ca.key"][..]),
    ] {
        std::fs::create_dir_all(dir.path().join("pki")).expect("pki dir");
        for f in files {
            std::fs::copy(
                c.control.dir.join("pki").join(f),
                dir.path().join("pki").join(f),
            )
            .expect("copy");
        }
    }
    let second = Control::start(&c.etcd.url, shared.path(), &["--components", "apiserver"]);
    let kc = token_kubeconfig(&second, "default", token);
    let me = whoami(&second, &kc).expect("accepted by the second server");
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:shop:default"
    );
    // Tokens it issues work on the first one too.
    let other = second.ok(&["create", "token", "default", "-n", "shop"]);
    let kc1 = token_kubeconfig(&c, "from-second", other.trim());
    whoami(&c, &kc1).expect("accepted by the first server");
    // A server with a key of its own refuses them.
    let third = Control::start(&c.etcd.url, alone.path(), &["--components", "apiserver"]);
    assert_ne!(
        std::fs::read(alone.path().join("pki/sa.key")).expect("own key"),
        std::fs::read(c.control.dir.join("pki/sa.key")).expect("key")
    );
    let kc3 = token_kubeconfig(&third, "default", token);
    let err = whoami(&third, &kc3).expect_err("another key");
    assert!(err.contains("Unauthorized"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_get_the_projected_service_account_token() {
    let c = Cluster::start();
    let api = ApiClient::new(&c).await;
    namespace(&c, &api, "shop").await;
    c.ok_in(
        &["create", "-n", "shop", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx"}]}}"#,
    );
    let pod = c.json(&["get", "pod", "web", "-n", "shop"]);
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let vols = pod["spec"]["volumes"].as_array().expect("volumes");
    assert_eq!(vols.len(), 1);
    let name = vols[0]["name"].as_str().expect("name");
    assert!(
        name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5,
        "{name}"
    );
    assert_eq!(
        vols[0]["projected"],
        json!({"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ], "defaultMode": 420})
    );
    let mount = json!([{"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]);
    assert_eq!(pod["spec"]["initContainers"][0]["volumeMounts"], mount);
    assert_eq!(pod["spec"]["containers"][0]["volumeMounts"], mount);
    assert_eq!(pod["spec"]["containers"][1]["volumeMounts"], mount);

    // A kubelet's token request for the pod: bound to it, extended, warning after 3607 s.
    let (code, tr) = api
        .post(
            "/api/v1/namespaces/shop/serviceaccounts/default/token",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
                "expirationSeconds": 3607,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": pod["metadata"]["uid"]}}}),
        )
        .await;
    assert_eq!(code, 201, "{tr}");
    let b = claims(tr["status"]["token"].as_str().expect("token"));
    assert_eq!(
        b["exp"].as_i64().expect("exp") - b["iat"].as_i64().expect("iat"),
        365 * 24 * 3600
    );
    assert_eq!(
        b["kubernetes.io"]["warnafter"].as_i64().expect("warnafter")
            - b["iat"].as_i64().expect("iat"),
        3607
    );
    // A stale uid in the reference is a conflict.
    let (code, err) = api
        .post(
            "/api/v1/namespaces/shop/serviceaccounts/default/token",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "0000"}}}),
        )
        .await;
    assert_eq!(code, 409, "{err}");

    // No token where the pod or its account says so.
    c.ok_in(
        &["create", "-n", "shop", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quiet"}, "spec": {
            "automountServiceAccountToken": false, "containers": [{"name": "a", "image": "nginx"}]}}"#,
    );
    let quiet = c.json(&["get", "pod", "quiet", "-n", "shop"]);
    assert!(quiet["spec"].get("volumes").is_none(), "{quiet}");
    c.ok_in(
        &["create", "-n", "shop", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "mute"}, "automountServiceAccountToken": false}"#,
    );
    c.ok_in(
        &["create", "-n", "shop", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "muted"}, "spec": {
            "serviceAccountName": "mute", "containers": [{"name": "a", "image": "nginx"}]}}"#,
    );
    let muted = c.json(&["get", "pod", "muted", "-n", "shop"]);
    assert!(muted["spec"].get("volumes").is_none(), "{muted}");
    // A pod of a missing account is refused.
    let err = c.fails(&[
        "run",
        "lost",
        "-n",
        "shop",
        "--image",
        "nginx",
        "--overrides",
        r#"{"apiVersion": "v1", "spec": {"serviceAccountName": "nope"}}"#,
    ]);
    assert!(
        err.contains(
            "error looking up service account shop/nope: serviceaccount \"nope\" not found"
        ),
        "{err}"
    );
}
