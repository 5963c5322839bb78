//! Tests of server-side apply and managedFields with the real Kubernetes schemas, mirroring what
//! kube-apiserver records for the same requests.

use super::typeinfo::Types;
use super::*;
use crate::schema::{KindSchema, register};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use serde_json::json;
use std::sync::OnceLock;

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T10:05:00Z";
const T3: &str = "2024-05-01T10:10:00Z";

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        Catalog::build(&[
            KindSchema {
                group: "apps",
                version: "v1",
                kind: "Deployment",
                register: register::<Deployment>,
            },
            KindSchema {
                group: "",
                version: "v1",
                kind: "Pod",
                register: register::<Pod>,
            },
            KindSchema {
                group: "",
                version: "v1",
                kind: "Service",
                register: register::<Service>,
            },
            KindSchema {
                group: "",
                version: "v1",
                kind: "ConfigMap",
                register: register::<ConfigMap>,
            },
        ])
    })
}

fn deploy_schema() -> Option<&'static Value> {
    catalog().kind("apps", "v1", "Deployment")
}

fn apply_deploy(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply(
        catalog(),
        deploy_schema(),
        live,
        config,
        manager,
        "apps/v1",
        None,
        force,
        now,
    )
}

fn update_deploy(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) -> Value {
    let mut new = new.clone();
    record_update(
        catalog(),
        deploy_schema(),
        old,
        &mut new,
        manager,
        "apps/v1",
        subresource,
        now,
    )
    .unwrap();
    new
}

/// A Deployment configuration as `kubectl apply --server-side` sends it.
fn deploy(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry<'v>(obj: &'v Value, manager: &str, operation: &str) -> Option<&'v Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields(obj: &Value, manager: &str, operation: &str) -> Value {
    entry(obj, manager, operation)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn conflicts(r: Result<Value, ApplyError>) -> Vec<Conflict> {
    match r {
        Err(ApplyError::Conflicts(c)) => c,
        other => panic!("expected conflicts, got {other:?}"),
    }
}

#[test]
fn first_apply_creates_the_object_and_owns_what_it_set() {
    let obj = apply_deploy(None, &deploy(2, "nginx:1.25"), "kubectl", false, T1).unwrap();
    assert_eq!(obj["spec"], deploy(2, "nginx:1.25")["spec"]);
    assert_eq!(obj["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        entries(&obj),
        vec![json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            }
        })]
    );
    let text = serde_json::to_string(&obj["metadata"]["managedFields"][0]).unwrap();
    assert!(
        text.starts_with(
            r#"{"manager":"kubectl","operation":"Apply","apiVersion":"apps/v1","time":"#
        ),
        "{text}"
    );
}

#[test]
fn reapplying_the_same_configuration_changes_nothing_and_keeps_the_time() {
    let first = apply_deploy(None, &deploy(2, "nginx"), "kubectl", false, T1).unwrap();
    let again = apply_deploy(Some(&first), &deploy(2, "nginx"), "kubectl", false, T2).unwrap();
    assert_eq!(again, first);
    assert_eq!(entry(&again, "kubectl", "Apply").unwrap()["time"], T1);
}

#[test]
fn two_appliers_owning_different_fields_both_keep_them() {
    let a = apply_deploy(None, &deploy(2, "nginx"), "team-a", false, T1).unwrap();
    let b_config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"owner": "team-b"}}
    });
    let b = apply_deploy(Some(&a), &b_config, "team-b", false, T2).unwrap();
    assert_eq!(b["metadata"]["annotations"], json!({"owner": "team-b"}));
    assert_eq!(b["spec"], a["spec"]);
    assert_eq!(
        fields(&b, "team-b", "Apply"),
        json!({"f:metadata": {"f:annotations": {"f:owner": {}}}})
    );
    assert_eq!(fields(&b, "team-a", "Apply"), fields(&a, "team-a", "Apply"));
    // Applier entries sort by time.
    let managers: Vec<&str> = b["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["team-a", "team-b"]);
}

#[test]
fn changing_a_field_another_applier_owns_conflicts_and_force_takes_it_over() {
    let a = apply_deploy(None, &deploy(2, "nginx"), "team-a", false, T1).unwrap();
    let b_config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3}
    });
    let err = apply_deploy(Some(&a), &b_config, "team-b", false, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "team-a": .spec.replicas"#
    );
    let ApplyError::Conflicts(c) = err else {
        panic!()
    };
    assert_eq!(
        c,
        vec![Conflict {
            manager: "team-a".into(),
            operation: "Apply".into(),
            api_version: "apps/v1".into(),
            subresource: None,
            field: ".spec.replicas".into()
        }]
    );
    assert_eq!(c[0].cause_message(), r#"conflict with "team-a""#);

    let forced = apply_deploy(Some(&a), &b_config, "team-b", true, T2).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(
        fields(&forced, "team-b", "Apply"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    let a_fields = fields(&forced, "team-a", "Apply");
    assert!(a_fields["f:spec"].get("f:replicas").is_none(), "{a_fields}");
    assert!(a_fields["f:spec"].get("f:selector").is_some());

    // Now team-a is the one that conflicts.
    let c = conflicts(apply_deploy(
        Some(&forced),
        &deploy(2, "nginx"),
        "team-a",
        false,
        T3,
    ));
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].to_string(),
        r#"conflict with "team-b": .spec.replicas"#
    );
}

#[test]
fn setting_the_same_value_shares_ownership_and_the_field_survives_one_owner_leaving() {
    let a = apply_deploy(None, &deploy(2, "nginx"), "team-a", false, T1).unwrap();
    let b_config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2}
    });
    let b = apply_deploy(Some(&a), &b_config, "team-b", false, T2).unwrap();
    assert_eq!(
        fields(&b, "team-b", "Apply"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields(&b, "team-a", "Apply")["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    // Nothing changed in the object, so team-b's entry carries no time (as upstream).
    assert!(entry(&b, "team-b", "Apply").unwrap().get("time").is_none());

    let mut without = deploy(2, "nginx");
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let a2 = apply_deploy(Some(&b), &without, "team-a", false, T3).unwrap();
    assert_eq!(a2["spec"]["replicas"], 2, "team-b still owns it");
    assert!(
        fields(&a2, "team-a", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}

#[test]
fn fields_dropped_from_the_applied_configuration_are_removed() {
    let mut config = deploy(2, "nginx");
    config["metadata"]["annotations"] = json!({"keep": "1", "drop": "2"});
    config["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "web", "image": "nginx", "args": ["--a"]},
        {"name": "sidecar", "image": "envoy"}
    ]);
    let first = apply_deploy(None, &config, "kubectl", false, T1).unwrap();
    assert_eq!(
        first["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    config["metadata"]["annotations"] = json!({"keep": "1"});
    config["spec"]["template"]["spec"]["containers"] = json!([{"name": "web", "image": "nginx"}]);
    config["spec"].as_object_mut().unwrap().remove("replicas");
    let second = apply_deploy(Some(&first), &config, "kubectl", false, T2).unwrap();
    assert_eq!(second["metadata"]["annotations"], json!({"keep": "1"}));
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx"}])
    );
    assert!(second["spec"].get("replicas").is_none());
    assert_eq!(entry(&second, "kubectl", "Apply").unwrap()["time"], T2);
    let f = fields(&second, "kubectl", "Apply");
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );

    // Dropping the last annotation removes the whole map.
    config["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let third = apply_deploy(Some(&second), &config, "kubectl", false, T3).unwrap();
    assert!(
        third["metadata"].get("annotations").is_none(),
        "{}",
        third["metadata"]
    );
}

#[test]
fn a_dropped_field_another_manager_changed_since_is_kept() {
    let first = apply_deploy(None, &deploy(2, "nginx"), "kubectl", false, T1).unwrap();
    // `kubectl scale` (an update by "kubectl") takes replicas.
    let mut scaled = first.clone();
    scaled["spec"]["replicas"] = json!(5);
    let scaled = update_deploy(Some(&first), &scaled, "kubectl", None, T2);
    let mut without = deploy(2, "nginx");
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let next = apply_deploy(Some(&scaled), &without, "kubectl", false, T3).unwrap();
    assert_eq!(next["spec"]["replicas"], 5);
    assert_eq!(
        fields(&next, "kubectl", "Update"),
        json!({"f:spec": {"f:replicas": {}}})
    );
}

#[test]
fn an_update_takes_ownership_so_the_next_apply_conflicts() {
    let applied = apply_deploy(None, &deploy(2, "nginx"), "kubectl", false, T1).unwrap();
    let mut scaled = applied.clone();
    scaled["spec"]["replicas"] = json!(5);
    let scaled = update_deploy(Some(&applied), &scaled, "kubectl", None, T2);
    assert_eq!(
        entry(&scaled, "kubectl", "Update").unwrap(),
        &json!({
            "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": T2,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}
        })
    );
    assert!(
        fields(&scaled, "kubectl", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    let err = apply_deploy(Some(&scaled), &deploy(2, "nginx"), "kubectl", false, T3).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas"#
    );
    let ok = apply_deploy(Some(&scaled), &deploy(2, "nginx"), "kubectl", true, T3).unwrap();
    assert_eq!(ok["spec"]["replicas"], 2);
    assert!(
        entry(&ok, "kubectl", "Update").is_none(),
        "the emptied update entry is dropped"
    );
}

#[test]
fn conflict_with_client_side_apply_reads_like_upstream() {
    let created = update_deploy(
        None,
        &deploy(2, "nginx"),
        "kubectl-client-side-apply",
        None,
        T1,
    );
    let cfg = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
    });
    let err = apply_deploy(Some(&created), &cfg, "ci", false, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    let ApplyError::Conflicts(c) = err else {
        panic!()
    };
    assert_eq!(
        c[0].cause_message(),
        r#"conflict with "kubectl-client-side-apply" using apps/v1"#
    );
    assert_eq!(
        c[1].field,
        r#".spec.template.spec.containers[name="web"].image"#
    );
}

#[test]
fn kubectl_takes_over_from_client_side_apply_through_the_last_applied_annotation() {
    let mut csa = deploy(2, "nginx");
    let mut last = deploy(2, "nginx");
    last["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    csa["metadata"]["annotations"] =
        json!({LAST_APPLIED_ANNOTATION: serde_json::to_string(&last).unwrap()});
    let csa = update_deploy(None, &csa, "kubectl-client-side-apply", None, T1);

    let ssa = apply_deploy(Some(&csa), &deploy(4, "nginx"), "kubectl", false, T2).unwrap();
    assert_eq!(ssa["spec"]["replicas"], 4);
    assert!(
        fields(&ssa, "kubectl-client-side-apply", "Update")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // The annotation now holds what kubectl applied, as encoding/json writes it.
    let annotation = ssa["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(annotation.ends_with('\n'));
    assert!(annotation.starts_with(r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"replicas":4,"#), "{annotation}");

    // Another manager gets no such pass.
    let c = conflicts(apply_deploy(
        Some(&csa),
        &deploy(4, "nginx"),
        "other",
        false,
        T2,
    ));
    assert_eq!(c[0].owner(), r#""kubectl-client-side-apply" using apps/v1"#);
    // Nor does kubectl for a field whose live value no longer matches the annotation.
    let mut drifted = csa.clone();
    drifted["spec"]["replicas"] = json!(7);
    let drifted = update_deploy(Some(&csa), &drifted, "hpa", None, T2);
    let c = conflicts(apply_deploy(
        Some(&drifted),
        &deploy(4, "nginx"),
        "kubectl",
        false,
        T3,
    ));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].owner(), r#""hpa" using apps/v1"#);
}

#[test]
fn list_map_items_are_owned_separately_by_two_managers() {
    let a = apply_deploy(None, &deploy(1, "nginx"), "team-a", false, T1).unwrap();
    let b_config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "ports": [{"containerPort": 53, "protocol": "UDP"}]},
            {"name": "sidecar", "image": "envoy"}
        ]}}}
    });
    let b = apply_deploy(Some(&a), &b_config, "team-b", false, T2).unwrap();
    assert_eq!(
        b["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]},
            {"name": "sidecar", "image": "envoy"}
        ])
    );
    assert_eq!(
        fields(&b, "team-b", "Apply"),
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:name": {}},
            "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:ports": {
                "k:{\"containerPort\":53,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}
            }}
        }}}}})
    );
    // team-a dropping its port removes only its port, and the shared container stays.
    let mut a2 = deploy(1, "nginx");
    a2["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("ports");
    let after = apply_deploy(Some(&b), &a2, "team-a", false, T3).unwrap();
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0],
        json!({"name": "web", "image": "nginx", "ports": [{"containerPort": 53, "protocol": "UDP"}]})
    );
    // team-b dropping the sidecar removes it.
    let b2 = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "ports": [{"containerPort": 53, "protocol": "UDP"}]}
        ]}}}
    });
    let after = apply_deploy(Some(&after), &b2, "team-b", false, T3).unwrap();
    let names: Vec<&str> = after["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
}

#[test]
fn ports_with_the_same_number_and_different_protocols_are_different_items() {
    let svc_schema = catalog().kind("", "v1", "Service");
    let cfg = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "dns", "namespace": "kube-system"},
        "spec": {"selector": {"k8s-app": "dns"}, "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}
        ]}
    });
    let obj = apply(
        catalog(),
        svc_schema,
        None,
        &cfg,
        "kubectl",
        "v1",
        None,
        false,
        T1,
    )
    .unwrap();
    assert_eq!(
        fields(&obj, "kubectl", "Apply")["f:spec"],
        json!({
            "f:ports": {
                "k:{\"port\":53,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}},
                "k:{\"port\":53,\"protocol\":\"UDP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}
            },
            "f:selector": {}
        })
    );
    // A port without protocol is the TCP one.
    let cfg2 = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "dns", "namespace": "kube-system"},
        "spec": {"ports": [{"port": 53, "targetPort": 5353}]}
    });
    let obj2 = apply(
        catalog(),
        svc_schema,
        Some(&obj),
        &cfg2,
        "other",
        "v1",
        None,
        false,
        T2,
    )
    .unwrap();
    assert_eq!(
        obj2["spec"]["ports"][1],
        json!({"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353})
    );
    assert_eq!(obj2["spec"]["ports"].as_array().unwrap().len(), 2);
}

#[test]
fn sets_merge_by_value_and_atomic_lists_are_replaced() {
    let mut a_cfg = deploy(1, "nginx");
    a_cfg["metadata"]["finalizers"] = json!(["example.com/a"]);
    a_cfg["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--a", "--b"]);
    let a = apply_deploy(None, &a_cfg, "team-a", false, T1).unwrap();
    let a_fields = fields(&a, "team-a", "Apply");
    assert_eq!(
        a_fields["f:metadata"]["f:finalizers"],
        json!({"v:\"example.com/a\"": {}})
    );
    assert_eq!(
        a_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:args"],
        json!({})
    );

    let b_cfg = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "finalizers": ["example.com/b"]},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["--c"]}]}}}
    });
    let c = conflicts(apply_deploy(Some(&a), &b_cfg, "team-b", false, T2));
    assert_eq!(c.len(), 1, "only the atomic list conflicts: {c:?}");
    assert_eq!(
        c[0].field,
        r#".spec.template.spec.containers[name="web"].args"#
    );
    let b = apply_deploy(Some(&a), &b_cfg, "team-b", true, T2).unwrap();
    assert_eq!(
        b["metadata"]["finalizers"],
        json!(["example.com/a", "example.com/b"])
    );
    assert_eq!(
        b["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["--c"])
    );
}

#[test]
fn atomic_maps_and_structs_are_one_field() {
    let pod_schema = catalog().kind("", "v1", "Pod");
    let cfg = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1"}]},
        "spec": {
            "nodeSelector": {"disk": "ssd"},
            "containers": [{"name": "c", "image": "i",
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}}]}]
        }
    });
    let obj = apply(
        catalog(),
        pod_schema,
        None,
        &cfg,
        "ctl",
        "v1",
        None,
        false,
        T1,
    )
    .unwrap();
    assert_eq!(
        fields(&obj, "ctl", "Apply"),
        json!({
            "f:metadata": {"f:ownerReferences": {"k:{\"uid\":\"u-1\"}": {}}},
            "f:spec": {
                "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:env": {"k:{\"name\":\"A\"}": {".": {},
                    "f:name": {}, "f:valueFrom": {"f:configMapKeyRef": {}}}}, "f:image": {}, "f:name": {}}},
                "f:nodeSelector": {}
            }
        })
    );
    // Changing one key of an atomic map replaces the map.
    let mut cfg2 = cfg.clone();
    cfg2["spec"]["nodeSelector"] = json!({"zone": "a"});
    let obj2 = apply(
        catalog(),
        pod_schema,
        Some(&obj),
        &cfg2,
        "ctl",
        "v1",
        None,
        false,
        T2,
    )
    .unwrap();
    assert_eq!(obj2["spec"]["nodeSelector"], json!({"zone": "a"}));
}

#[test]
fn malformed_configurations_are_rejected_like_upstream() {
    let mut no_name = deploy(1, "nginx");
    no_name["spec"]["template"]["spec"]["containers"] = json!([{"image": "nginx"}]);
    assert_eq!(
        apply_deploy(None, &no_name, "m", false, T1)
            .unwrap_err()
            .to_string(),
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"
    );
    let mut dup = deploy(1, "nginx");
    dup["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]);
    let err = apply_deploy(None, &dup, "m", false, T1).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#),
        "{err}"
    );
    let mut unknown = deploy(1, "nginx");
    unknown["spec"]["replicaz"] = json!(1);
    assert!(
        matches!(apply_deploy(None, &unknown, "m", false, T1), Err(ApplyError::InvalidConfig { ref message, .. }) if message == ".spec.replicaz: field not declared in schema")
    );
    let mut wrong_type = deploy(1, "nginx");
    wrong_type["spec"]["replicas"] = json!("3");
    assert!(
        matches!(apply_deploy(None, &wrong_type, "m", false, T1), Err(ApplyError::InvalidConfig { ref message, .. }) if message == ".spec.replicas: expected numeric (int or float), got string")
    );
    let mut with_managed = deploy(1, "nginx");
    with_managed["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        apply_deploy(None, &with_managed, "m", false, T1)
            .unwrap_err()
            .to_string(),
        "metadata.managedFields must be nil"
    );
    let mut old_version = deploy(1, "nginx");
    old_version["apiVersion"] = json!("apps/v1beta1");
    assert_eq!(
        apply_deploy(None, &old_version, "m", false, T1)
            .unwrap_err()
            .to_string(),
        "invalid object type: apps/v1beta1, Kind=Deployment"
    );
    let mut other_kind = deploy(1, "nginx");
    other_kind["kind"] = json!("StatefulSet");
    assert!(matches!(
        apply_deploy(None, &other_kind, "m", false, T1),
        Err(ApplyError::BadRequest(_))
    ));
    let mut dup_finalizers = deploy(1, "nginx");
    dup_finalizers["metadata"]["finalizers"] = json!(["a", "a"]);
    assert!(matches!(
        apply_deploy(None, &dup_finalizers, "m", false, T1),
        Err(ApplyError::InvalidConfig { .. })
    ));
}

/// The object `kubectl create deployment web --image=nginx` stores after defaulting.
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "1",
            "generation": 1, "creationTimestamp": T1, "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "nginx", "image": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                        "imagePullPolicy": "Always"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "securityContext": {}, "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

#[test]
fn create_records_an_update_entry_shaped_like_upstream() {
    let obj = update_deploy(None, &created_deployment(), "kubectl-create", None, T1);
    assert_eq!(
        entries(&obj),
        vec![json!({
            "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:progressDeadlineSeconds": {},
                    "f:replicas": {},
                    "f:revisionHistoryLimit": {},
                    "f:selector": {},
                    "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {
                            "f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {},
                                "f:name": {}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                            "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {},
                            "f:terminationGracePeriodSeconds": {}
                        }
                    }
                }
            }
        })]
    );
}

#[test]
fn status_writes_through_the_subresource_get_their_own_entry() {
    let created = update_deploy(None, &created_deployment(), "kubectl-create", None, T1);
    let mut with_status = created.clone();
    with_status["status"] = json!({
        "observedGeneration": 1, "replicas": 1,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]
    });
    // The controller also tried to change spec, which the status strategy resets: not owned.
    with_status["spec"]["paused"] = json!(true);
    let updated = update_deploy(
        Some(&created),
        &with_status,
        "kube-controller-manager",
        Some("status"),
        T2,
    );
    let e = entry(&updated, "kube-controller-manager", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {
            "f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {".": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
            "f:observedGeneration": {}, "f:replicas": {}
        }})
    );
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "manager",
            "operation",
            "apiVersion",
            "time",
            "fieldsType",
            "fieldsV1",
            "subresource"
        ]
    );
    // Entries sort Update after Apply, then by time.
    let order: Vec<String> = entries(&updated)
        .iter()
        .map(|e| e["manager"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, ["kubectl-create", "kube-controller-manager"]);

    // Conflicts name the subresource.
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "status": {"replicas": 3}});
    let err = apply(
        catalog(),
        deploy_schema(),
        Some(&updated),
        &cfg,
        "other",
        "apps/v1",
        Some("status"),
        false,
        T3,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kube-controller-manager" with subresource "status" using apps/v1: .status.replicas"#
    );
}

#[test]
fn applying_status_to_the_main_resource_owns_no_status_field() {
    let mut cfg = deploy(1, "nginx");
    cfg["status"] = json!({"replicas": 9});
    let obj = apply_deploy(None, &cfg, "kubectl", false, T1).unwrap();
    assert!(fields(&obj, "kubectl", "Apply").get("f:status").is_none());
    // The merged object carries it; the strategy resets it as upstream's does.
    assert_eq!(obj["status"]["replicas"], 9);
}

#[test]
fn updates_drop_removed_fields_from_every_set_and_merge_entries_of_one_manager() {
    let created = update_deploy(None, &created_deployment(), "kubectl-create", None, T1);
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["tier"] = json!("front");
    let labelled = update_deploy(Some(&created), &labelled, "kubectl-label", None, T2);
    assert_eq!(
        fields(&labelled, "kubectl-label", "Update"),
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
    );

    let mut again = labelled.clone();
    again["metadata"]["labels"]["env"] = json!("prod");
    let again = update_deploy(Some(&labelled), &again, "kubectl-label", None, T3);
    let e = entry(&again, "kubectl-label", "Update").unwrap();
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:env": {}, "f:tier": {}}}})
    );
    assert_eq!(e["time"], T3);
    assert_eq!(entries(&again).len(), 2);

    // Removing labels (owned by two managers) takes them out of both sets; an emptied entry goes.
    let mut unlabelled = again.clone();
    unlabelled["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    let unlabelled = update_deploy(Some(&again), &unlabelled, "someone", None, T3);
    assert!(entry(&unlabelled, "kubectl-label", "Update").is_none());
    assert!(
        entry(&unlabelled, "someone", "Update").is_none(),
        "removing gives no ownership"
    );
    assert!(
        fields(&unlabelled, "kubectl-create", "Update")
            .get("f:metadata")
            .is_none()
    );
}

#[test]
fn an_update_that_changes_nothing_leaves_managed_fields_alone() {
    let created = update_deploy(None, &created_deployment(), "kubectl-create", None, T1);
    let mut same = created.clone();
    same["metadata"]["resourceVersion"] = json!("2");
    let same = update_deploy(Some(&created), &same, "kubectl-edit", None, T2);
    assert_eq!(
        same["metadata"]["managedFields"],
        created["metadata"]["managedFields"]
    );
}

#[test]
fn managed_fields_sent_with_an_update_are_kept_reset_or_ignored() {
    let created = update_deploy(None, &created_deployment(), "kubectl-create", None, T1);
    // Sending [] (or one empty entry) clears them, and an existing object without managedFields
    // stays untracked: the documented way to strip managedFields.
    for sent in [json!([]), json!([{}])] {
        let mut reset = created.clone();
        reset["metadata"]["managedFields"] = sent;
        reset["spec"]["replicas"] = json!(3);
        let reset = update_deploy(Some(&created), &reset, "editor", None, T2);
        assert!(
            reset["metadata"].get("managedFields").is_none(),
            "{}",
            reset["metadata"]
        );
    }
    // On create, a reset still tracks the creator.
    let mut fresh = created_deployment();
    fresh["metadata"]["managedFields"] = json!([]);
    let fresh = update_deploy(None, &fresh, "creator", None, T1);
    assert_eq!(entries(&fresh).len(), 1);
    assert_eq!(entry(&fresh, "creator", "Update").unwrap()["time"], T1);

    // Sending different (valid) entries replaces them.
    let mut replaced = created.clone();
    replaced["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}}]);
    let replaced = update_deploy(Some(&created), &replaced, "editor", None, T2);
    assert_eq!(entries(&replaced).len(), 1);
    assert_eq!(
        fields(&replaced, "x", "Apply"),
        json!({"f:spec": {"f:paused": {}}})
    );

    // Invalid ones are ignored in favour of the live ones.
    let mut invalid = created.clone();
    invalid["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Delete"}]);
    let invalid = update_deploy(Some(&created), &invalid, "editor", None, T2);
    assert_eq!(
        invalid["metadata"]["managedFields"],
        created["metadata"]["managedFields"]
    );

    // Through a subresource the live ones always count.
    let mut sub = created.clone();
    sub["metadata"]["managedFields"] = json!([]);
    let sub = update_deploy(Some(&created), &sub, "kcm", Some("status"), T2);
    assert_eq!(
        sub["metadata"]["managedFields"],
        created["metadata"]["managedFields"]
    );
}

#[test]
fn objects_without_managed_fields_stay_untracked_on_update_but_not_on_apply() {
    let mut untracked = created_deployment();
    let mut edited = untracked.clone();
    edited["spec"]["replicas"] = json!(4);
    let edited = update_deploy(Some(&untracked), &edited, "editor", None, T2);
    assert!(edited["metadata"].get("managedFields").is_none());

    // Applying to it first hands what exists to "before-first-apply".
    untracked["spec"]["replicas"] = json!(1);
    let c = conflicts(apply_deploy(
        Some(&untracked),
        &deploy(3, "nginx"),
        "kubectl",
        false,
        T2,
    ));
    assert!(
        c.iter()
            .all(|c| c.manager == "before-first-apply" && c.operation == "Update"),
        "{c:?}"
    );
    assert!(c.iter().any(|c| c.field == ".spec.replicas"));
    let mut same = deploy(1, "nginx");
    same["spec"]["template"]["spec"]["containers"] = json!([{"name": "nginx", "image": "nginx"}]);
    let applied = apply_deploy(Some(&untracked), &same, "kubectl", false, T2).unwrap();
    let before = entry(&applied, "before-first-apply", "Update").unwrap();
    assert_eq!(before["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert_eq!(before["time"], T2);
    assert_eq!(
        fields(&applied, "kubectl", "Apply")["f:spec"]["f:replicas"],
        json!({})
    );
}

#[test]
fn fields_v1_round_trips_a_realistic_deployment() {
    let mut obj = created_deployment();
    obj["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    obj["status"] = json!({
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "lastUpdateTime": T1, "lastTransitionTime": T1,
                "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "lastUpdateTime": T1, "lastTransitionTime": T1,
                "reason": "NewReplicaSetAvailable", "message": "ReplicaSet \"web-5d\" has successfully progressed."}
        ]
    });
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP", "name": "dns"}]);
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
    obj["spec"]["template"]["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    obj["spec"]["template"]["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    let set = field_set(catalog(), deploy_schema(), &obj);
    let v1 = set.to_fields_v1();
    assert_eq!(FieldSet::from_fields_v1(&v1).unwrap(), set);
    let text = serde_json::to_string(&v1).unwrap();
    let reparsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_string(&FieldSet::from_fields_v1(&reparsed).unwrap().to_fields_v1())
            .unwrap(),
        text
    );

    assert!(v1.get("f:apiVersion").is_none() && v1.get("f:kind").is_none());
    assert_eq!(
        v1["f:metadata"],
        json!({"f:annotations": {"f:deployment.kubernetes.io/revision": {}}, "f:labels": {"f:app": {}}})
    );
    assert_eq!(
        v1["f:status"]["f:conditions"]["k:{\"type\":\"Available\"}"],
        json!({".": {}, "f:lastTransitionTime": {}, "f:lastUpdateTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}})
    );
    let pod = &v1["f:spec"]["f:template"]["f:spec"];
    assert_eq!(
        pod["f:containers"]["k:{\"name\":\"nginx\"}"]["f:ports"],
        json!({
            "k:{\"containerPort\":53,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}},
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}
        })
    );
    assert_eq!(
        pod["f:volumes"],
        json!({"k:{\"name\":\"data\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}})
    );
    assert_eq!(pod["f:tolerations"], json!({}));
    assert_eq!(pod["f:securityContext"], json!({}));
    assert_eq!(v1["f:spec"]["f:selector"], json!({}));
    assert_eq!(set.len(), set.paths().len());
    assert!(set.has(&[PathElement::field("spec"), PathElement::field("replicas")]));
}

#[test]
fn schemaless_objects_merge_maps_per_key_and_lists_whole() {
    let live = apply(
        catalog(),
        None,
        None,
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1, "tags": ["a"], "nested": {"x": 1}}}),
        "a",
        "example.com/v1",
        None,
        false,
        T1,
    )
    .unwrap();
    // Keys of a schema-less map are not declared fields, so upstream marks them members too.
    assert_eq!(
        fields(&live, "a", "Apply"),
        json!({"f:spec": {".": {}, "f:nested": {".": {}, "f:x": {}}, "f:size": {}, "f:tags": {}}})
    );
    let b = apply(
        catalog(),
        None,
        Some(&live),
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"nested": {"y": 2}, "tags": ["b"]}}),
        "b",
        "example.com/v1",
        None,
        true,
        T2,
    )
    .unwrap();
    assert_eq!(
        b["spec"],
        json!({"size": 1, "tags": ["b"], "nested": {"x": 1, "y": 2}})
    );
    assert_eq!(
        fields(&b, "a", "Apply"),
        json!({"f:spec": {".": {}, "f:nested": {".": {}, "f:x": {}}, "f:size": {}}})
    );
}

#[test]
fn null_in_the_configuration_clears_a_typed_field() {
    let first = apply_deploy(None, &deploy(2, "nginx"), "kubectl", false, T1).unwrap();
    let mut cfg = deploy(2, "nginx");
    cfg["spec"]["replicas"] = Value::Null;
    cfg["metadata"]["creationTimestamp"] = Value::Null;
    let next = apply_deploy(Some(&first), &cfg, "kubectl", false, T2).unwrap();
    assert!(next["spec"].get("replicas").is_none());
    assert!(next["metadata"].get("creationTimestamp").is_none());
    assert_eq!(
        fields(&next, "kubectl", "Apply")["f:spec"]["f:replicas"],
        json!({})
    );
}

#[test]
fn configmap_data_keys_are_owned_one_by_one() {
    let cm = catalog().kind("", "v1", "ConfigMap");
    let a = apply(catalog(), cm, None,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}),
        "a", "v1", None, false, T1).unwrap();
    let b = apply(catalog(), cm, Some(&a),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"c": "3"}}),
        "b", "v1", None, false, T2).unwrap();
    assert_eq!(b["data"], json!({"a": "1", "b": "2", "c": "3"}));
    let err = apply(catalog(), cm, Some(&b),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "x", "b": "y"}}),
        "b", "v1", None, false, T3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .data.a\n- .data.b"
    );
}

#[test]
fn field_set_strips_what_nobody_owns() {
    let obj = created_deployment();
    let set = field_set(catalog(), deploy_schema(), &obj);
    let v1 = set.to_fields_v1();
    assert_eq!(v1["f:metadata"], json!({"f:labels": {"f:app": {}}}));
    assert_eq!(v1["f:status"], json!({}));
    assert!(set.has(&[PathElement::field("status")]));
}

/// The schema of structured-merge-diff's own merge and compare tests, as OpenAPI.
fn smd_schema() -> Value {
    json!({"type": "object", "properties": {
        "list": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key", "id"],
            "items": {"type": "object", "properties": {
                "key": {"type": "string"}, "id": {"type": "integer"},
                "value": {"type": "object", "additionalProperties": {"type": "string"}},
                "bv": {"type": "boolean"}, "nv": {"type": "integer"}
            }}},
        "atomicList": {"type": "array", "items": {"type": "string"}},
        "setStr": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "setBool": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "boolean"}},
        "setNumeric": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "number"}}
    }})
}

#[test]
fn merge_orders_items_like_structured_merge_diff() {
    let schema = smd_schema();
    let types = Types::new(catalog(), Some(&schema));
    // (live, applied, merged) triplets from structured-merge-diff's typed/merge_test.go.
    let triplets = [
        (
            r#"{"setStr":["a","b","c"]}"#,
            r#"{"setStr":["a","b"]}"#,
            r#"{"setStr":["a","b","c"]}"#,
        ),
        (
            r#"{"setStr":["a","b"]}"#,
            r#"{"setStr":["a","b","c"]}"#,
            r#"{"setStr":["a","b","c"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c"]}"#,
            r#"{"setStr":[]}"#,
            r#"{"setStr":["a","b","c"]}"#,
        ),
        (
            r#"{"setStr":[]}"#,
            r#"{"setStr":["a","b","c"]}"#,
            r#"{"setStr":["a","b","c"]}"#,
        ),
        (
            r#"{"setStr":["a","b"]}"#,
            r#"{"setStr":["b","a"]}"#,
            r#"{"setStr":["b","a"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c"]}"#,
            r#"{"setStr":["d","e","f"]}"#,
            r#"{"setStr":["a","b","c","d","e","f"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c"]}"#,
            r#"{"setStr":["c","d","e","f"]}"#,
            r#"{"setStr":["a","b","c","d","e","f"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c","g","f"]}"#,
            r#"{"setStr":["c","d","e","f"]}"#,
            r#"{"setStr":["a","b","c","g","d","e","f"]}"#,
        ),
        (
            r#"{"setStr":["c","d","e","f"]}"#,
            r#"{"setStr":["a","c","e"]}"#,
            r#"{"setStr":["a","c","d","e","f"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c","x","y","z"]}"#,
            r#"{"setStr":["d","e","f"]}"#,
            r#"{"setStr":["a","b","c","x","y","z","d","e","f"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c","x","y","z"]}"#,
            r#"{"setStr":["d","e","f","x","y","z"]}"#,
            r#"{"setStr":["a","b","c","d","e","f","x","y","z"]}"#,
        ),
        (
            r#"{"setStr":["c","a","g","f"]}"#,
            r#"{"setStr":["c","f","a","g"]}"#,
            r#"{"setStr":["c","f","a","g"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c","d"]}"#,
            r#"{"setStr":["d","e","f","a"]}"#,
            r#"{"setStr":["b","c","d","e","f","a"]}"#,
        ),
        (
            r#"{"setStr":["c","d","e","f","g","h","i","j"]}"#,
            r#"{"setStr":["2","h","3","e","4","k","l"]}"#,
            r#"{"setStr":["c","d","f","g","2","h","i","j","3","e","4","k","l"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c","d","e","f","g","h","i","j"]}"#,
            r#"{"setStr":["1","b","2","h","3","e","4","k","l"]}"#,
            r#"{"setStr":["a","1","b","c","d","f","g","2","h","i","j","3","e","4","k","l"]}"#,
        ),
        (
            r#"{"setStr":["a","b","b"]}"#,
            r#"{"setStr":["c"]}"#,
            r#"{"setStr":["a","b","b","c"]}"#,
        ),
        (
            r#"{"setStr":["a","b","b"]}"#,
            r#"{"setStr":["b"]}"#,
            r#"{"setStr":["a","b"]}"#,
        ),
        (
            r#"{"setStr":["a","b","b"]}"#,
            r#"{"setStr":["a"]}"#,
            r#"{"setStr":["a","b","b"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c","d","e","c"]}"#,
            r#"{"setStr":["1","b","2","e","d"]}"#,
            r#"{"setStr":["a","1","b","c","2","e","c","d"]}"#,
        ),
        (
            r#"{"setStr":["a","b","c","d","e","c"]}"#,
            r#"{"setStr":["1","b","2","c","e","d"]}"#,
            r#"{"setStr":["a","1","b","2","c","e","d"]}"#,
        ),
        (
            r#"{"setStr":["a","a","b","b"]}"#,
            r#"{"setStr":["b","c","d"]}"#,
            r#"{"setStr":["a","a","b","c","d"]}"#,
        ),
        (
            r#"{"setStr":["a","a","b","b"]}"#,
            r#"{"setStr":[]}"#,
            r#"{"setStr":["a","a","b","b"]}"#,
        ),
        (
            r#"{"setBool":[true]}"#,
            r#"{"setBool":[false]}"#,
            r#"{"setBool":[true,false]}"#,
        ),
        (
            r#"{"setNumeric":[1,2,3.14159]}"#,
            r#"{"setNumeric":[1,2,3]}"#,
            r#"{"setNumeric":[1,2,3.14159,3]}"#,
        ),
        (
            r#"{"setStr":["c","a","g","f","c","a"]}"#,
            r#"{"setStr":["c","f","a","g"]}"#,
            r#"{"setStr":["c","f","a","g"]}"#,
        ),
        (
            r#"{"setNumeric":[1,2,3.14159,1,2]}"#,
            r#"{"setNumeric":[1,2,3]}"#,
            r#"{"setNumeric":[1,2,3.14159,3]}"#,
        ),
        (
            r#"{"setBool":[true,false,true]}"#,
            r#"{"setBool":[false]}"#,
            r#"{"setBool":[true,false,true]}"#,
        ),
        (
            r#"{"setBool":[true,false,true]}"#,
            r#"{"setBool":[true]}"#,
            r#"{"setBool":[true,false]}"#,
        ),
        (
            r#"{"list":[{"key":"a","id":1,"value":{"a":"a"}}]}"#,
            r#"{"list":[{"key":"a","id":2,"value":{"a":"a"}}]}"#,
            r#"{"list":[{"key":"a","id":1,"value":{"a":"a"}},{"key":"a","id":2,"value":{"a":"a"}}]}"#,
        ),
        (
            r#"{"list":[{"key":"a","id":1},{"key":"b","id":1}]}"#,
            r#"{"list":[{"key":"a","id":1},{"key":"a","id":2}]}"#,
            r#"{"list":[{"key":"a","id":1},{"key":"b","id":1},{"key":"a","id":2}]}"#,
        ),
        (
            r#"{"list":[{"key":"b","id":2}]}"#,
            r#"{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}"#,
            r#"{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}"#,
        ),
        (
            r#"{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}"#,
            r#"{"list":[{"key":"c","id":3},{"key":"b","id":2}]}"#,
            r#"{"list":[{"key":"a","id":1},{"key":"c","id":3},{"key":"b","id":2}]}"#,
        ),
        (
            r#"{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}"#,
            r#"{"list":[{"key":"c","id":3},{"key":"a","id":1}]}"#,
            r#"{"list":[{"key":"b","id":2},{"key":"c","id":3},{"key":"a","id":1}]}"#,
        ),
        (
            r#"{"atomicList":["a","b","c"]}"#,
            r#"{"atomicList":[]}"#,
            r#"{"atomicList":[]}"#,
        ),
        (
            r#"{"atomicList":["a","a","a"]}"#,
            r#"{"atomicList":["a","a"]}"#,
            r#"{"atomicList":["a","a"]}"#,
        ),
        (
            r#"{"list":[{"key":"a","id":1,"bv":true},{"key":"b","id":2},{"key":"a","id":1,"bv":false,"nv":2}]}"#,
            r#"{"list":[{"key":"a","id":1,"nv":3},{"key":"c","id":3},{"key":"b","id":2}]}"#,
            r#"{"list":[{"key":"a","id":1,"nv":3},{"key":"c","id":3},{"key":"b","id":2}]}"#,
        ),
        (
            r#"{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}"#,
            r#"{"list":[]}"#,
            r#"{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}"#,
        ),
        (
            r#"{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}"#,
            r#"{}"#,
            r#"{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}"#,
        ),
        (
            r#"{"string":"aoeu"}"#,
            r#"{"bool":true}"#,
            r#"{"string":"aoeu","bool":true}"#,
        ),
    ];
    for (live, applied, want) in triplets {
        let live: Value = serde_json::from_str(live).unwrap();
        let applied: Value = serde_json::from_str(applied).unwrap();
        let want: Value = serde_json::from_str(want).unwrap();
        let got = types.merge(&live, &applied).unwrap();
        assert!(
            value::equal(&got, &want),
            "{live} + {applied}: got {got}, want {want}"
        );
    }
}

#[test]
fn compare_reports_like_structured_merge_diff() {
    let schema = smd_schema();
    let types = Types::new(catalog(), Some(&schema));
    let sets = |lhs: &str, rhs: &str| {
        let c = types.compare(
            &serde_json::from_str(lhs).unwrap(),
            &serde_json::from_str(rhs).unwrap(),
        );
        (
            c.added.to_fields_v1(),
            c.modified.to_fields_v1(),
            c.removed.to_fields_v1(),
        )
    };
    let (added, modified, removed) =
        sets("{}", r#"{"list":[{"key":"a","id":1,"value":{"a":"a"}}]}"#);
    assert_eq!(
        added,
        json!({"f:list": {".": {}, "k:{\"id\":1,\"key\":\"a\"}": {".": {}, "f:id": {}, "f:key": {}, "f:value": {".": {}, "f:a": {}}}}})
    );
    assert_eq!((modified, removed), (json!({}), json!({})));

    let (added, modified, removed) = sets(
        r#"{"list":[{"key":"a","id":1,"value":{"a":"a"}}]}"#,
        r#"{"list":[{"key":"a","id":1,"value":{"a":"b"}}]}"#,
    );
    assert_eq!(
        modified,
        json!({"f:list": {"k:{\"id\":1,\"key\":\"a\"}": {"f:value": {"f:a": {}}}}})
    );
    assert_eq!((added, removed), (json!({}), json!({})));

    // An atomic list is one field, whatever happens inside it.
    assert_eq!(
        sets(r#"{"atomicList":["a","a","a"]}"#, r#"{"atomicList":null}"#).1,
        json!({"f:atomicList": {}})
    );
    assert_eq!(
        sets(r#"{"atomicList":["a","b","c"]}"#, r#"{"atomicList":[]}"#).1,
        json!({"f:atomicList": {}})
    );

    // Duplicates collapsing into one item: the duplicate entry goes, the single item comes.
    let (added, modified, removed) = sets(
        r#"{"list":[{"key":"a","id":1,"nv":2},{"key":"b","id":1},{"key":"a","id":1,"bv":true}]}"#,
        r#"{"list":[{"key":"a","id":1},{"key":"a","id":2}]}"#,
    );
    assert_eq!(
        removed,
        json!({"f:list": {"k:{\"id\":1,\"key\":\"a\"}": {}, "k:{\"id\":1,\"key\":\"b\"}": {".": {}, "f:id": {}, "f:key": {}}}})
    );
    assert_eq!(
        added,
        json!({"f:list": {"k:{\"id\":1,\"key\":\"a\"}": {".": {}, "f:id": {}, "f:key": {}}, "k:{\"id\":2,\"key\":\"a\"}": {".": {}, "f:id": {}, "f:key": {}}}})
    );
    assert_eq!(modified, json!({}));
    // Duplicates on both sides compare as a whole.
    let (_, modified, _) = sets(
        r#"{"list":[{"key":"a","id":1},{"key":"b","id":1},{"key":"a","id":1,"bv":true}]}"#,
        r#"{"list":[{"key":"a","id":1},{"key":"b","id":1},{"key":"a","id":1,"bv":true,"nv":1}]}"#,
    );
    assert_eq!(
        modified,
        json!({"f:list": {"k:{\"id\":1,\"key\":\"a\"}": {}}})
    );
}

#[test]
fn nulls_the_live_object_holds_survive_a_reapply() {
    let mut cfg = deploy(1, "nginx");
    cfg["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
    let first = apply_deploy(None, &cfg, "kubectl", false, T1).unwrap();
    // As stored by a server that keeps what Go would write.
    let mut stored = first.clone();
    stored["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
    let again = apply_deploy(Some(&stored), &cfg, "kubectl", false, T2).unwrap();
    assert_eq!(again, stored);
    assert_eq!(entry(&again, "kubectl", "Apply").unwrap()["time"], T1);
}

#[test]
fn update_entries_beyond_ten_merge_into_ancient_changes() {
    let mut obj = update_deploy(
        None,
        &created_deployment(),
        "creator",
        None,
        "2024-05-01T09:00:00Z",
    );
    for i in 0..11 {
        let mut next = obj.clone();
        let mut merged_ann = obj["metadata"]
            .get("annotations")
            .cloned()
            .unwrap_or(json!({}));
        merged_ann[format!("k{i}")] = json!("v");
        next["metadata"]["annotations"] = merged_ann;
        obj = update_deploy(
            Some(&obj),
            &next,
            &format!("writer-{i:02}"),
            None,
            &format!("2024-05-01T10:00:{i:02}Z"),
        );
    }
    let managers: Vec<String> = entries(&obj)
        .iter()
        .map(|e| e["manager"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(managers.len(), 10, "{managers:?}");
    // At the 11th entry the creator and writer-00 went into the bucket, at the 12th writer-01
    // joined it; the bucket carries the time of the last entry merged in.
    assert_eq!(managers[0], "ancient-changes");
    assert_eq!(managers[1], "writer-02");
    assert_eq!(
        entry(&obj, "ancient-changes", "Update").unwrap()["time"],
        "2024-05-01T10:00:01Z"
    );
    assert!(
        !managers.contains(&"creator".to_string()) && !managers.contains(&"writer-01".to_string())
    );
    let ancient = fields(&obj, "ancient-changes", "Update");
    assert_eq!(
        ancient["f:metadata"]["f:annotations"],
        json!({".": {}, "f:k0": {}, "f:k1": {}})
    );
    assert!(ancient["f:spec"].get("f:replicas").is_some());
}

#[test]
fn empty_manager_names_become_unknown_on_update() {
    let obj = update_deploy(None, &created_deployment(), "", None, T1);
    assert_eq!(entries(&obj)[0]["manager"], "unknown");
}

#[test]
fn a_custom_reset_set_keeps_fields_out_of_ownership() {
    let created = update_deploy(None, &created_deployment(), "kubectl-create", None, T1);
    let mut next = created.clone();
    next["metadata"]["labels"]["x"] = json!("y");
    next["status"] = json!({"replicas": 1});
    // Deployment's status strategy also resets labels.
    let reset = FieldSet::from_field_paths(&[&["spec"], &["metadata", "labels"]]);
    let req = Request {
        catalog: catalog(),
        schema: deploy_schema(),
        manager: "kcm",
        api_version: "apps/v1",
        subresource: Some("status"),
        now: T2,
        reset: Some(&reset),
    };
    req.record_update(Some(&created), &mut next).unwrap();
    assert_eq!(
        fields(&next, "kcm", "Update"),
        json!({"f:status": {"f:replicas": {}}})
    );
}

#[test]
fn dropping_a_nested_struct_removes_it_with_its_unowned_defaults() {
    let mut cfg = deploy(1, "nginx");
    cfg["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 2}});
    let first = apply_deploy(None, &cfg, "kubectl", false, T1).unwrap();
    // Defaulting filled in the strategy type, which nobody owns.
    let mut defaulted = first.clone();
    defaulted["spec"]["strategy"]["type"] = json!("RollingUpdate");
    defaulted["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = json!("25%");
    let second = apply_deploy(Some(&defaulted), &deploy(1, "nginx"), "kubectl", false, T2).unwrap();
    assert!(
        second["spec"].get("strategy").is_none(),
        "{}",
        second["spec"]
    );
    assert_eq!(second["spec"]["replicas"], 1);
}

#[test]
fn a_live_object_with_unreadable_managed_fields_cannot_be_applied_to() {
    let mut live = apply_deploy(None, &deploy(1, "nginx"), "kubectl", false, T1).unwrap();
    live["metadata"]["managedFields"][0]["fieldsV1"] = json!({"f:spec": 3});
    let err = apply_deploy(Some(&live), &deploy(2, "nginx"), "kubectl", false, T2).unwrap_err();
    assert!(matches!(err, ApplyError::ManagedFields(_)));
    assert!(
        err.to_string()
            .starts_with("failed to decode managed fields: error decoding set:"),
        "{err}"
    );
}

#[test]
fn custom_resources_with_preserved_unknown_fields_merge_per_key() {
    let schema = json!({
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Widget"}],
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer"},
                "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                    "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "string"}}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }
    });
    let cfg = |body: Value| {
        let mut c =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        c["spec"] = body;
        c
    };
    let a = apply(
        catalog(),
        Some(&schema),
        None,
        &cfg(json!({"size": 1, "items": [{"id": "x", "v": "1"}], "extra": {"any": {"deep": 1}}})),
        "a",
        "example.com/v1",
        None,
        false,
        T1,
    )
    .unwrap();
    assert_eq!(
        fields(&a, "a", "Apply"),
        json!({"f:spec": {
            "f:extra": {"f:any": {".": {}, "f:deep": {}}},
            "f:items": {"k:{\"id\":\"x\"}": {".": {}, "f:id": {}, "f:v": {}}},
            "f:size": {}
        }})
    );
    let b = apply(
        catalog(),
        Some(&schema),
        Some(&a),
        &cfg(json!({"items": [{"id": "y", "v": "2"}], "extra": {"more": true}})),
        "b",
        "example.com/v1",
        None,
        false,
        T2,
    )
    .unwrap();
    assert_eq!(
        b["spec"]["items"],
        json!([{"id": "x", "v": "1"}, {"id": "y", "v": "2"}])
    );
    assert_eq!(
        b["spec"]["extra"],
        json!({"any": {"deep": 1}, "more": true})
    );
    // Unknown fields outside preserved parts are rejected.
    let err = apply(
        catalog(),
        Some(&schema),
        Some(&b),
        &cfg(json!({"sizee": 2})),
        "b",
        "example.com/v1",
        None,
        false,
        T3,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to create typed patch object (/w; example.com/v1, Kind=Widget): .spec.sizee: field not declared in schema"
    );
    // Without a status subresource, status is an ordinary field the caller says is not reset.
    let none = FieldSet::new();
    let req = Request {
        catalog: catalog(),
        schema: Some(&schema),
        manager: "c",
        api_version: "example.com/v1",
        subresource: None,
        now: T3,
        reset: Some(&none),
    };
    let mut with_status = cfg(json!({}));
    with_status.as_object_mut().unwrap().remove("spec");
    with_status["status"] = json!({"phase": "Ready"});
    let c = req.apply(Some(&b), &with_status, false).unwrap();
    assert_eq!(
        fields(&c, "c", "Apply"),
        json!({"f:status": {"f:phase": {}}})
    );
}

#[test]
fn int_or_string_and_quantity_fields_take_numbers_and_strings() {
    let mut cfg = deploy(1, "nginx");
    cfg["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}});
    cfg["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": 1, "memory": "1Gi"}});
    let obj = apply_deploy(None, &cfg, "kubectl", false, T1).unwrap();
    let f = fields(&obj, "kubectl", "Apply");
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:resources"],
        json!({"f:limits": {"f:cpu": {}, "f:memory": {}}})
    );
    let mut bad = cfg.clone();
    bad["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!({"a": 1});
    assert!(matches!(
        apply_deploy(None, &bad, "kubectl", false, T1),
        Err(ApplyError::InvalidConfig { .. })
    ));
}
