//! The real kubectl 1.37 against a real API server on a real etcd: every command of the
//! "Control plane I" user story, checking what kubectl prints and what the server stores.

mod common;

use common::{Cluster, wait_for};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: localhost/busybox:latest
        command: ["httpd", "-f", "-p", "80"]
        ports:
        - containerPort: 80
        env:
        - {name: MODE, value: blue}
      - name: sidecar
        image: localhost/busybox:latest
        command: ["sleep", "3600"]
"#;

#[test]
fn kubectl_user_story() {
    let c = Cluster::start();

    // create namespace (kubectl sends this one as protobuf)
    assert_eq!(
        c.ok(&["create", "namespace", "shop"]).trim(),
        "namespace/shop created"
    );
    let ns = c.json(&["get", "namespace", "shop"]);
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "shop"
    );

    // apply: create, then apply an edit (strategic merge patch)
    assert_eq!(
        c.ok_in(&["apply", "-f", "-"], DEPLOY).trim(),
        "deployment.apps/web created"
    );
    let d = c.json(&["get", "deploy", "web", "-n", "shop"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(
        d["spec"]["strategy"]["type"], "RollingUpdate",
        "defaults applied"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    let edited = DEPLOY
        .replace("replicas: 2", "replicas: 3")
        .replace("value: blue", "value: green");
    assert_eq!(
        c.ok_in(&["apply", "-f", "-"], &edited).trim(),
        "deployment.apps/web configured"
    );
    let d = c.json(&["get", "deploy", "web", "-n", "shop"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 2);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 2, "the sidecar survives the merge");
    assert_eq!(containers[0]["env"][0]["value"], "green");
    // applying the same file again changes nothing
    assert_eq!(
        c.ok_in(&["apply", "-f", "-"], &edited).trim(),
        "deployment.apps/web unchanged"
    );

    // a pod, to see pods in the listing
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"lone","namespace":"shop","labels":{"app":"lone"}},
        "spec":{"containers":[{"name":"c","image":"localhost/busybox:latest"}]}}"#;
    c.ok_in(&["create", "-f", "-"], pod);

    // get -A -o wide: the usual columns
    let out = c.ok(&["get", "deploy,pods", "-A", "-o", "wide"]);
    let header = out.lines().next().expect("a header line");
    for col in [
        "NAMESPACE",
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ] {
        assert!(
            header.contains(col),
            "deployment column {col} missing in {header:?}"
        );
    }
    assert!(out.contains("deployment.apps/web"), "{out}");
    assert!(out.contains("0/3"), "{out}");
    assert!(out.contains("web,sidecar"), "{out}");
    let pod_header = out
        .lines()
        .find(|l| l.contains("RESTARTS"))
        .expect("pod header");
    for col in [
        "READY",
        "STATUS",
        "RESTARTS",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ] {
        assert!(
            pod_header.contains(col),
            "pod column {col} missing in {pod_header:?}"
        );
    }
    let lone = out
        .lines()
        .find(|l| l.contains("pod/lone"))
        .expect("pod row");
    assert!(lone.contains("0/1") && lone.contains("Pending"), "{lone}");

    // get -w: a live stream of changes
    let mut watch = Command::new(common::kubectl_path())
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .args([
            &format!("--server={}", c.url()),
            "get",
            "deploy",
            "-n",
            "shop",
            "-w",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = rx
        .recv_timeout(common::WAIT)
        .expect("the watch prints the current state");
    assert!(first.starts_with("NAME"), "{first}");
    let row = rx.recv_timeout(common::WAIT).expect("initial row");
    assert!(row.contains("0/3"), "{row}");

    // scale (scale subresource) shows up in the stream
    assert_eq!(
        c.ok(&["scale", "deploy", "web", "-n", "shop", "--replicas=5"])
            .trim(),
        "deployment.apps/web scaled"
    );
    let seen = wait_for("the scaled deployment in the watch", || {
        rx.recv_timeout(std::time::Duration::from_millis(200))
            .ok()
            .filter(|l| l.contains("0/5"))
    });
    assert!(seen.starts_with("web"), "{seen}");
    let _ = watch.kill();
    let _ = watch.wait();

    // patch: json, merge, strategic
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    assert_eq!(
        c.json(&["get", "deploy", "web", "-n", "shop"])["spec"]["replicas"],
        4
    );
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":7}}"#,
    ]);
    assert_eq!(
        c.json(&["get", "deploy", "web", "-n", "shop"])["spec"]["minReadySeconds"],
        7
    );
    c.ok(&["patch", "deploy", "web", "-n", "shop", "--type=strategic", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"localhost/busybox:v2"}]}}}}"#]);
    let d = c.json(&["get", "deploy", "web", "-n", "shop"]);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "localhost/busybox:v2");
    assert_eq!(containers[1]["image"], "localhost/busybox:latest");
    let bad = c.fails(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/nope"}]"#,
    ]);
    assert!(
        bad.contains("Invalid") || bad.contains("invalid") || bad.contains("rejected"),
        "{bad}"
    );

    // label / annotate
    c.ok(&["label", "deploy", "web", "-n", "shop", "tier=frontend"]);
    c.ok(&["annotate", "deploy", "web", "-n", "shop", "owner=team-a"]);
    let out = c.ok(&[
        "get",
        "deploy",
        "-n",
        "shop",
        "-l",
        "tier=frontend",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "deployment.apps/web");
    assert_eq!(
        c.ok(&["get", "deploy", "-n", "shop", "-l", "tier in (backend)"])
            .trim(),
        ""
    );
    let d = c.json(&["get", "deploy", "web", "-n", "shop"]);
    assert_eq!(d["metadata"]["annotations"]["owner"], "team-a");
    c.ok(&["label", "deploy", "web", "-n", "shop", "tier-"]);
    assert!(
        c.json(&["get", "deploy", "web", "-n", "shop"])["metadata"]["labels"]
            .get("tier")
            .is_none()
    );

    // edit through an editor script
    let editor = c.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/minReadySeconds: 7/minReadySeconds: 9/' \"$1\"\n",
    )
    .expect("editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = Command::new(common::kubectl_path())
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .env("KUBE_EDITOR", &editor)
        .args([
            &format!("--server={}", c.url()),
            "edit",
            "deploy",
            "web",
            "-n",
            "shop",
        ])
        .output()
        .expect("kubectl edit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.json(&["get", "deploy", "web", "-n", "shop"])["spec"]["minReadySeconds"],
        9
    );

    // server-side apply: ownership and conflicts
    let ssa = DEPLOY.replace("replicas: 2", "replicas: 6");
    let err = String::from_utf8_lossy(
        &c.kubectl_in(&["apply", "--server-side", "-f", "-"], &ssa)
            .stderr,
    )
    .into_owned();
    assert!(
        err.contains("conflict"),
        "a field owned by another manager conflicts: {err}"
    );
    let out = c.ok_in(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &ssa,
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let d = c.json(&[
        "get",
        "deploy",
        "web",
        "-n",
        "shop",
        "--show-managed-fields",
    ]);
    assert_eq!(d["spec"]["replicas"], 6);
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");

    // auth can-i (a SelfSubjectAccessReview)
    assert_eq!(
        c.ok(&["auth", "can-i", "create", "pods", "-n", "shop"])
            .trim(),
        "yes"
    );

    // bad input: an unknown field is refused by name
    let typo = DEPLOY
        .replace("replicas: 2", "replicaz: 2")
        .replace("name: web\n  namespace", "name: web2\n  namespace");
    let err =
        String::from_utf8_lossy(&c.kubectl_in(&["create", "-f", "-"], &typo).stderr).into_owned();
    assert!(err.contains("unknown field \"spec.replicaz\""), "{err}");
    assert!(
        c.kubectl(&["get", "deploy", "web2", "-n", "shop"])
            .status
            .code()
            != Some(0),
        "nothing written"
    );

    // explain reads the OpenAPI v3 schemas
    let out = c.ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        out.contains("KIND:") && out.contains("Deployment") && out.contains("replicas"),
        "{out}"
    );

    // delete
    let out = c.ok(&["delete", "deploy", "web", "-n", "shop"]);
    assert!(out.contains("deleted"), "{out}");
    let err = c.fails(&["get", "deploy", "web", "-n", "shop"]);
    assert!(
        err.contains("NotFound") && err.contains("\"web\" not found"),
        "{err}"
    );
    c.ok(&["delete", "pod", "lone", "-n", "shop"]);
    assert_eq!(
        c.ok(&["get", "pods", "-n", "shop", "-o", "name"]).trim(),
        ""
    );
}
