//! Authentication and RBAC through the real kubectl: bearer tokens, a namespaced `view` role,
//! impersonation, and no anonymous access.

mod common;

use common::Cluster;
use std::process::Command;

#[test]
fn a_namespaced_viewer_may_read_there_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "alice-token,alice,1001,\"dev\"\nbob-token,bob,1002\n",
    )
    .expect("tokens");
    let tokens_arg = tokens.display().to_string();
    let c = Cluster::start_with(&["--token-auth-file", &tokens_arg]);
    c.ok_in(
        &["apply", "-f", "-"],
        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"shop\"}}",
    );
    c.ok_in(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
            "metadata":{"name":"dev-view","namespace":"shop"},
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
            "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"dev"}]}"#,
    );
    c.ok_in(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"menu","namespace":"shop"},"data":{"soup":"yes"}}"#,
    );
    let ca = c.dir.path().join("pki/ca.crt");
    let as_user = |token: &str, args: &[&str]| {
        Command::new(common::kubectl_path())
            .env("HOME", c.dir.path())
            .args(["--kubeconfig=/dev/null", &format!("--server={}", c.url())])
            .arg(format!("--certificate-authority={}", ca.display()))
            .arg(format!("--token={token}"))
            .args(args)
            .output()
            .expect("kubectl")
    };
    // What the role grants.
    let out = as_user(
        "alice-token",
        &["get", "configmaps", "-n", "shop", "-o", "name"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (every namespace also has the cluster CA, published by the controller manager)
    let listed = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = listed
        .lines()
        .filter(|l| *l != "configmap/kube-root-ca.crt")
        .collect();
    assert_eq!(listed, vec!["configmap/menu"]);
    let out = as_user(
        "alice-token",
        &[
            "get",
            "configmap",
            "menu",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.soup}",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "yes");
    // What it does not: writes, secrets, other namespaces, cluster scope.
    let denied = |args: &[&str], what: &str| {
        let out = as_user("alice-token", args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} must be denied");
        assert!(
            err.to_lowercase().contains("forbidden")
                && err.contains("User \"alice\"")
                && err.contains(what),
            "{args:?}: {err}"
        );
    };
    denied(
        &[
            "create",
            "configmap",
            "x",
            "-n",
            "shop",
            "--from-literal=a=b",
        ],
        "cannot create resource \"configmaps\"",
    );
    denied(
        &["delete", "configmap", "menu", "-n", "shop"],
        "cannot delete resource \"configmaps\"",
    );
    denied(
        &["get", "secrets", "-n", "shop"],
        "cannot list resource \"secrets\"",
    );
    denied(
        &["get", "configmaps", "-n", "default"],
        "in the namespace \"default\"",
    );
    denied(&["get", "nodes"], "at the cluster scope");
    // can-i answers the same (a SelfSubjectAccessReview).
    let can = |args: &[&str]| {
        String::from_utf8_lossy(&as_user("alice-token", args).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(can(&["auth", "can-i", "list", "pods", "-n", "shop"]), "yes");
    assert_eq!(
        can(&["auth", "can-i", "create", "pods", "-n", "shop"]),
        "no"
    );
    assert_eq!(
        can(&["auth", "can-i", "get", "secrets", "-n", "shop"]),
        "no"
    );
    // The admin impersonating alice gets her answers.
    assert_eq!(
        c.ok(&[
            "auth",
            "can-i",
            "watch",
            "deployments",
            "-n",
            "shop",
            "--as=alice",
            "--as-group=dev"
        ])
        .trim(),
        "yes"
    );
    let out = c.kubectl(&[
        "auth",
        "can-i",
        "delete",
        "deployments",
        "-n",
        "shop",
        "--as=alice",
        "--as-group=dev",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    // bob is authenticated but bound to nothing; a bad token is 401.
    let out = as_user("bob-token", &["get", "configmaps", "-n", "shop"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Forbidden"));
    let out = as_user("wrong-token", &["get", "configmaps", "-n", "shop"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
    // bob may not impersonate alice.
    let out = as_user(
        "bob-token",
        &["get", "configmaps", "-n", "shop", "--as=alice"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot impersonate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_requests_are_refused() {
    let c = Cluster::start();
    let ca = std::fs::read(c.dir.path().join("pki/ca.crt")).expect("ca");
    let mut cfg = kube::Config::new(c.url().parse().expect("url"));
    cfg.root_cert = Some(vec![
        rustls_pemfile::certs(&mut ca.as_slice())
            .next()
            .expect("a cert")
            .expect("pem")
            .to_vec(),
    ]);
    let client = kube::Client::try_from(cfg).expect("client");
    for path in ["/version", "/api", "/api/v1/namespaces", "/readyz"] {
        let req = http::Request::builder()
            .uri(path)
            .body(kube::client::Body::empty())
            .expect("request");
        let resp = client.send(req).await.expect("send");
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
}
