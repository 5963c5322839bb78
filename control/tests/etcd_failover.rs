//! Several etcd endpoints: when a member dies, the API server carries on through the others.

mod common;

use common::{Control, free_port, wait_for};
use std::process::{Child, Command, Stdio};

struct Member {
    child: Child,
    client: String,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn three_members(dir: &std::path::Path) -> Vec<Member> {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let cluster = ports
        .iter()
        .enumerate()
        .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    ports
        .iter()
        .enumerate()
        .map(|(i, (c, p))| {
            let client = format!("http://127.0.0.1:{c}");
            let peer = format!("http://127.0.0.1:{p}");
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}"), "--data-dir"])
                .arg(dir.join(format!("m{i}")))
                .args([
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                ])
                .args([
                    "--initial-cluster",
                    &cluster,
                    "--initial-cluster-state",
                    "new",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("etcd");
            Member { child, client }
        })
        .collect()
}

#[test]
fn writes_continue_when_an_etcd_member_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut members = three_members(dir.path());
    let endpoints = members
        .iter()
        .map(|m| m.client.clone())
        .collect::<Vec<_>>()
        .join(",");
    wait_for("a healthy three-member etcd", || {
        common::etcdctl(&endpoints, &["endpoint", "health"])
            .status
            .success()
            .then_some(())
    });
    let control_dir = dir.path().join("control");
    std::fs::create_dir_all(&control_dir).expect("dir");
    let c = Control::start(&endpoints, &control_dir, &[]);
    c.ok_in(&["create", "-f", "-"], r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"before","namespace":"default"}}"#);
    // Kill the first endpoint: the one the server talks to first.
    let first = members.remove(0);
    drop(first);
    // The cluster elects a leader among the two left; the API server moves to them.
    wait_for("a write after losing a member", || {
        c.kubectl_in(
            &["create", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after","namespace":"default"}}"#,
        )
        .status
        .success()
        .then_some(())
    });
    let names = c.ok(&["get", "configmaps", "-n", "default", "-o", "name"]);
    assert!(
        names.contains("configmap/before") && names.contains("configmap/after"),
        "{names}"
    );
    // Watches keep flowing through the remaining members too.
    c.ok_in(&["create", "-f", "-"], r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"later","namespace":"default"}}"#);
    assert!(
        c.ok(&["get", "configmap", "later", "-n", "default", "-o", "name"])
            .contains("later")
    );
}
