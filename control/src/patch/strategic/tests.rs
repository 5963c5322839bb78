//! Strategic merge patch against the real Deployment, Pod and Service schemas, mirroring the
//! upstream `strategicpatch` cases and the patches `kubectl apply` / `kubectl patch` send.

use super::*;
use crate::schema::{KindSchema, register};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::json;
use std::sync::OnceLock;

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
        ])
    })
}

fn patch_kind(
    group: &str,
    kind: &str,
    original: &Value,
    patch: &Value,
) -> Result<Value, StrategicPatchError> {
    let c = catalog();
    let schema = c.kind(group, "v1", kind);
    assert!(schema.is_some(), "{kind} schema in catalog");
    apply(c, schema, original, patch)
}

fn deployment(original: &Value, patch: &Value) -> Result<Value, StrategicPatchError> {
    patch_kind("apps", "Deployment", original, patch)
}

fn pod(original: &Value, patch: &Value) -> Result<Value, StrategicPatchError> {
    patch_kind("", "Pod", original, patch)
}

fn service(original: &Value, patch: &Value) -> Result<Value, StrategicPatchError> {
    patch_kind("", "Service", original, patch)
}

/// Fails if any key of the value starts with `$` (a directive leaked into the result).
fn assert_no_directives(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                assert!(!k.starts_with('$'), "directive {k} left in {v}");
                assert_no_directives(child);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_no_directives),
        _ => {}
    }
}

fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "0b5e",
            "resourceVersion": "41",
            "generation": 1,
            "labels": {"app": "web"},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}"
            }
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.1",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log"
                        },
                        {"name": "sidecar", "image": "envoy:1", "resources": {}}
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst"
                }
            }
        },
        "status": {"replicas": 2}
    })
}

/// The live deployment with `f` applied: the expected result of a patch.
fn live_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = live_deployment();
    f(&mut v);
    v
}

// ---------------------------------------------------------------------------------------------
// What kubectl apply sends

#[test]
fn kubectl_apply_update_changes_only_the_container_image() {
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"image": "nginx:1.2", "name": "web"}]
        }}}
    });
    let got = deployment(&live_deployment(), &patch).unwrap();
    let want = live_with(|v| {
        v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!("{\"new\":true}");
        v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.2");
    });
    assert_eq!(got, want);
    // Key order of the live object is kept, so the stored JSON does not churn.
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&want).unwrap()
    );
}

#[test]
fn kubectl_apply_adds_a_container_where_set_element_order_says() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "cache"}],
        "containers": [{"image": "redis:7", "name": "cache"}]
    }}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    let names: Vec<&str> = got["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The server-only sidecar goes after the items the patch orders (upstream mergeSortedSlice).
    assert_eq!(names, ["web", "cache", "sidecar"]);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][1],
        json!({"name": "cache", "image": "redis:7"})
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0],
        live_deployment()["spec"]["template"]["spec"]["containers"][0]
    );
}

#[test]
fn env_merges_by_name_in_set_element_order() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
            "env": [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}],
            "name": "web"
        }]
    }}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "10"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][1]["name"],
        "sidecar"
    );
}

#[test]
fn env_item_deleted_and_value_switched_to_value_from() {
    // What kubectl apply sends when B is dropped and A moves from value to valueFrom.
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "A"}],
            "env": [
                {"name": "A", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"$patch": "delete", "name": "B"}
            ],
            "name": "web"
        }]
    }}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    );
}

#[test]
fn container_ports_merge_by_container_port() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "ports": [{"containerPort": 80, "name": "web"}]}
    ]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "name": "web", "protocol": "TCP"}])
    );
}

#[test]
fn new_list_items_without_set_element_order_go_first_like_upstream() {
    // `kubectl patch` without $setElementOrder: upstream puts items the server has not seen
    // before the server-only ones.
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "ports": [{"containerPort": 443, "name": "https"}]}
    ]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 443, "name": "https"}, {"containerPort": 80, "name": "http", "protocol": "TCP"}])
    );
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "debug", "image": "busybox"}]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    let names: Vec<&str> = got["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["debug", "web", "sidecar"]);
}

#[test]
fn merge_key_numbers_compare_by_value() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "ports": [{"containerPort": 80.0, "hostPort": 8080}]}
    ]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    let ports = got["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ports[0]["name"], "http");
    assert_eq!(ports[0]["hostPort"], 8080);
}

#[test]
fn volume_mounts_merge_by_mount_path() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "web",
        "volumeMounts": [{"mountPath": "/data", "readOnly": true}, {"mountPath": "/cfg", "name": "cfg"}]
    }]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["volumeMounts"],
        json!([
            {"name": "data", "mountPath": "/data", "readOnly": true},
            {"mountPath": "/cfg", "name": "cfg"}
        ])
    );
}

#[test]
fn kubectl_apply_switching_a_volume_source_drops_the_old_one() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "data"}, {"name": "cfg"}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "data-cm"}, "emptyDir": null, "name": "data"}]
    }}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["volumes"],
        json!([
            {"name": "data", "configMap": {"name": "data-cm"}},
            {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}
        ])
    );
}

#[test]
fn retain_keys_alone_clears_unlisted_fields() {
    // Without the explicit null, $retainKeys still clears emptyDir.
    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["name", "secret"], "name": "data", "secret": {"secretName": "s"}}
    ]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["volumes"][0],
        json!({"name": "data", "secret": {"secretName": "s"}})
    );
    // Fields that stay listed merge as usual.
    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["configMap", "name"], "name": "cfg", "configMap": {"name": "cfg2"}}
    ]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["volumes"][1],
        json!({"name": "cfg", "configMap": {"name": "cfg2", "defaultMode": 420}})
    );
}

#[test]
fn deployment_strategy_switch_to_recreate_drops_rolling_update() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_must_list_every_patched_field() {
    let patch =
        json!({"spec": {"strategy": {"$retainKeys": ["rollingUpdate"], "type": "Recreate"}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::NotInRetainKeys {
            path: "spec.strategy".into(),
            field: "type".into()
        }
    );
    assert_eq!(err.upstream_status(), 400);
    assert_eq!(
        err.to_string(),
        "spec.strategy: field \"type\" is present in the patch but not in the $retainKeys list"
    );
}

#[test]
fn retain_keys_must_be_a_list_of_names() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert!(
        matches!(&err, StrategicPatchError::BadDirective { path, directive: "$retainKeys", .. } if path == "spec.strategy"),
        "{err:?}"
    );
    let patch = json!({"spec": {"strategy": {"$retainKeys": [1], "type": "Recreate"}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert!(
        matches!(
            err,
            StrategicPatchError::BadDirective {
                directive: "$retainKeys",
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Primitive lists: finalizers

fn with_finalizers(finalizers: Value) -> Value {
    json!({"metadata": {"name": "p", "finalizers": finalizers}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
}

#[test]
fn finalizers_are_a_union() {
    let got = pod(
        &with_finalizers(json!(["a", "b"])),
        &json!({"metadata": {"finalizers": ["b"]}}),
    )
    .unwrap();
    assert_eq!(got["metadata"]["finalizers"], json!(["a", "b"]));
    // New values go first, existing ones keep their place (upstream ordering).
    let got = pod(
        &with_finalizers(json!(["a", "b"])),
        &json!({"metadata": {"finalizers": ["c", "a"]}}),
    )
    .unwrap();
    assert_eq!(got["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn finalizers_as_kubectl_apply_sends_them() {
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["a", "c"],
        "$deleteFromPrimitiveList/finalizers": ["b"],
        "finalizers": ["c"]
    }});
    let got = pod(&with_finalizers(json!(["a", "b", "x"])), &patch).unwrap();
    assert_eq!(got["metadata"]["finalizers"], json!(["a", "c", "x"]));
    assert_no_directives(&got);
}

#[test]
fn delete_from_primitive_list_removes_every_occurrence() {
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}});
    let got = pod(&with_finalizers(json!(["a", "b", "c", "b"])), &patch).unwrap();
    assert_eq!(got["metadata"]["finalizers"], json!(["a", "c"]));
}

#[test]
fn delete_from_primitive_list_never_adds_the_list() {
    let original = json!({"metadata": {"name": "p"}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}});
    assert_eq!(pod(&original, &patch).unwrap(), original);
    let original = with_finalizers(json!([]));
    assert_eq!(pod(&original, &patch).unwrap(), original);
}

#[test]
fn delete_from_primitive_list_works_on_lists_without_merge_strategy() {
    let original = json!({"spec": {"containers": [{"name": "c", "args": ["-a", "-b", "-c"]}]}});
    let patch =
        json!({"spec": {"containers": [{"name": "c", "$deleteFromPrimitiveList/args": ["-b"]}]}});
    let got = pod(&original, &patch).unwrap();
    assert_eq!(got["spec"]["containers"][0]["args"], json!(["-a", "-c"]));
}

#[test]
fn delete_from_primitive_list_must_be_a_list_of_primitives() {
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "b"}});
    let err = pod(&with_finalizers(json!(["b"])), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::BadDirective {
            path: "metadata.$deleteFromPrimitiveList/finalizers".into(),
            directive: "$deleteFromPrimitiveList",
            reason: "expected a list".into()
        }
    );
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [{"a": 1}]}});
    assert!(matches!(
        pod(&with_finalizers(json!(["b"])), &patch),
        Err(StrategicPatchError::BadDirective { .. })
    ));
}

#[test]
fn set_element_order_reorders_a_primitive_list_without_a_patch_list() {
    // Upstream: "$setElementOrder contains item that is not present in the int list".
    let patch = json!({"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"]}});
    let got = pod(&with_finalizers(json!(["a", "c"])), &patch).unwrap();
    assert_eq!(got["metadata"]["finalizers"], json!(["c", "a"]));
}

#[test]
fn primitive_list_element_types_must_agree() {
    let err = pod(
        &with_finalizers(json!(["a"])),
        &json!({"metadata": {"finalizers": [1]}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::MixedElementTypes {
            path: "metadata.finalizers".into()
        }
    );
    let err = pod(
        &with_finalizers(json!(["a"])),
        &json!({"metadata": {"finalizers": [["b"]]}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::ListOfLists {
            path: "metadata.finalizers".into()
        }
    );
    assert_eq!(err.upstream_status(), 422);
}

// ---------------------------------------------------------------------------------------------
// Keyed lists: $patch delete / replace, $setElementOrder

#[test]
fn patch_delete_removes_a_container() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "sidecar"}]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    let want = live_with(|v| {
        v["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert_eq!(got, want);
}

#[test]
fn patch_delete_of_a_missing_item_changes_nothing() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "nope"}]}}}});
    assert_eq!(
        deployment(&live_deployment(), &patch).unwrap(),
        live_deployment()
    );
}

#[test]
fn patch_delete_needs_the_merge_key() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "image": "envoy:1"}]}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::MissingMergeKey {
            path: "spec.template.spec.containers[0]".into(),
            key: "name".into()
        }
    );
}

#[test]
fn patch_replace_element_replaces_the_whole_list() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "busybox", "command": null},
        {"$patch": "replace"}
    ]}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"],
        json!([{"name": "only", "image": "busybox"}])
    );
}

#[test]
fn patch_replace_of_a_keyed_list_still_needs_keys() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"image": "busybox"}]}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::MissingMergeKey {
            path: "spec.template.spec.containers[1]".into(),
            key: "name".into()
        }
    );
}

#[test]
fn patch_replace_on_a_map_replaces_it() {
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "tier": "fe"}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(got["metadata"]["labels"], json!({"tier": "fe"}));
    let patch = json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn patch_delete_on_a_map_empties_it() {
    let patch = json!({"metadata": {"annotations": {"$patch": "delete"}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(got["metadata"]["annotations"], json!({}));
    assert_eq!(got["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn patch_replace_at_the_top_level() {
    let original = json!({"a": 1, "b": {"c": 2}});
    let patch = json!({"$patch": "replace", "b": {"d": 3}});
    assert_eq!(
        apply(catalog(), None, &original, &patch).unwrap(),
        json!({"b": {"d": 3}})
    );
}

#[test]
fn set_element_order_with_server_only_items() {
    // Upstream "set elements order in a list with server-only items 2" and "… 3".
    let live = |names: &[&str]| -> Value {
        let containers: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "image": "i"}))
            .collect();
        json!({"spec": {"containers": containers}})
    };
    let order = json!({"spec": {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}]}});
    let names = |v: &Value| -> Vec<String> {
        v["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let got = pod(&live(&["1", "2", "9", "3", "4"]), &order).unwrap();
    assert_eq!(names(&got), ["2", "1", "9", "4", "3"]);
    let got = pod(&live(&["1", "2", "7", "9", "8", "3", "4"]), &order).unwrap();
    assert_eq!(names(&got), ["2", "1", "7", "9", "8", "4", "3"]);
    // "set elements order in a list with server-only items": trailing server-only item stays last.
    let order = json!({"spec": {"$setElementOrder/containers": [{"name": "4"}, {"name": "2"}, {"name": "3"}, {"name": "1"}]}});
    let got = pod(&live(&["1", "3", "4", "2", "9"]), &order).unwrap();
    assert_eq!(names(&got), ["4", "2", "3", "1", "9"]);
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let original = json!({"spec": {"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}]
    }});
    let err = pod(&original, &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::SetElementOrderMismatch {
            path: "spec.containers".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "spec.containers: the order in the patch list doesn't match the $setElementOrder list"
    );
}

#[test]
fn set_element_order_items_need_the_merge_key() {
    let original = json!({"spec": {"containers": [{"name": "1"}]}});
    let patch = json!({"spec": {"$setElementOrder/containers": [{"image": "x"}]}});
    let err = pod(&original, &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::MissingMergeKey {
            path: "spec.$setElementOrder/containers[0]".into(),
            key: "name".into()
        }
    );
}

#[test]
fn set_element_order_on_a_new_list_cleans_and_orders_it() {
    let original = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
    let patch = json!({"spec": {
        "$setElementOrder/initContainers": [{"name": "a"}, {"name": "b"}],
        "initContainers": [{"name": "a", "image": "x"}, {"$patch": "delete", "name": "zz"}, {"name": "b", "image": "y"}]
    }});
    let got = pod(&original, &patch).unwrap();
    assert_eq!(
        got["spec"]["initContainers"],
        json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    );
    assert_no_directives(&got);
}

#[test]
fn set_element_order_on_a_scalar_is_an_error() {
    let patch = json!({"spec": {"$setElementOrder/replicas": [1]}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::BadDirective {
            path: "spec.$setElementOrder/replicas".into(),
            directive: "$setElementOrder",
            reason: "replicas is a number, not a list".into()
        }
    );
    let patch = json!({"spec": {"$setElementOrder/template": {"name": "x"}}});
    assert!(matches!(
        deployment(&live_deployment(), &patch),
        Err(StrategicPatchError::BadDirective {
            directive: "$setElementOrder",
            ..
        })
    ));
}

#[test]
fn malformed_directive_keys_are_errors() {
    let patch = json!({"metadata": {"$setElementOrder": ["a"]}});
    let err = pod(&with_finalizers(json!(["a"])), &patch).unwrap_err();
    assert!(
        matches!(&err, StrategicPatchError::BadDirective { path, directive: "$setElementOrder", .. } if path == "metadata"),
        "{err:?}"
    );
    let patch = json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}});
    let err = pod(&with_finalizers(json!(["a"])), &patch).unwrap_err();
    assert!(
        matches!(
            err,
            StrategicPatchError::BadDirective {
                directive: "$deleteFromPrimitiveList",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn keyed_list_item_without_merge_key_is_an_error() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx:1.2"}]}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::MissingMergeKey {
            path: "spec.template.spec.containers[0]".into(),
            key: "name".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "spec.template.spec.containers[0]: map does not contain declared merge key: name"
    );
    assert_eq!(err.upstream_status(), 500);
}

#[test]
fn keyed_list_item_that_is_not_an_object_is_an_error() {
    let patch = json!({"spec": {"template": {"spec": {"containers": ["web"]}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::MixedElementTypes {
            path: "spec.template.spec.containers".into()
        }
    );
}

#[test]
fn owner_references_merge_by_uid() {
    let original = json!({"metadata": {"name": "p", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}
    ]}});
    let patch = json!({"metadata": {"ownerReferences": [
        {"uid": "u1", "blockOwnerDeletion": true},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u2"}
    ]}});
    let got = pod(&original, &patch).unwrap();
    assert_eq!(
        got["metadata"]["ownerReferences"],
        json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true, "blockOwnerDeletion": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u2"}
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Maps, nulls, replacement

#[test]
fn null_deletes_keys_and_absent_nulls_are_ignored() {
    let patch = json!({
        "metadata": {"labels": {"app": null, "tier": "fe"}, "annotations": {"nope": null}},
        "spec": {"replicas": null, "paused": null}
    });
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(got["metadata"]["labels"], json!({"tier": "fe"}));
    assert_eq!(
        got["metadata"]["annotations"],
        live_deployment()["metadata"]["annotations"]
    );
    assert!(got["spec"].get("replicas").is_none());
    assert!(got["spec"].get("paused").is_none());
    // Deleting keeps the order of the remaining keys.
    let keys: Vec<&String> = got["spec"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["selector", "strategy", "template"]);
}

#[test]
fn new_keys_are_appended_and_cleaned() {
    let patch =
        json!({"spec": {"minReadySeconds": 5, "paused": false, "revisionHistoryLimit": null}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    let keys: Vec<&String> = got["spec"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "replicas",
            "selector",
            "strategy",
            "template",
            "minReadySeconds",
            "paused"
        ]
    );
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    let patch = json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "b", "operator": "Equal", "value": "x"}],
        "containers": [{"name": "web", "args": ["--two"], "command": ["/bin/app"]}]
    }}}});
    let mut live = live_deployment();
    live["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--one", "--verbose"]);
    let got = deployment(&live, &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Equal", "value": "x"}])
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["--two"])
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["/bin/app"])
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.1"
    );
}

#[test]
fn replaced_lists_are_cleaned_of_directives() {
    let patch = json!({"spec": {"template": {"spec": {
        "tolerations": [{"$patch": "delete", "key": "a"}, {"key": "b", "operator": "Exists", "value": null}]
    }}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn map_labels_and_selectors_merge() {
    let patch = json!({"spec": {"selector": {"matchLabels": {"tier": "fe"}}, "template": {"metadata": {"labels": {"tier": "fe"}}}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_eq!(
        got["spec"]["selector"],
        json!({"matchLabels": {"app": "web", "tier": "fe"}})
    );
    assert_eq!(
        got["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web", "tier": "fe"})
    );
}

#[test]
fn type_changes_replace_the_value() {
    // A list where the live object has a map (and vice versa) replaces it; validation of the
    // result is the caller's business.
    let patch = json!({"spec": {"template": {"spec": {"nodeSelector": ["x"], "containers": [{"name": "web", "env": {"A": "1"}}]}}}});
    let mut live = live_deployment();
    live["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    let got = deployment(&live, &patch).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["nodeSelector"],
        json!(["x"])
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["env"],
        json!({"A": "1"})
    );
    let got = deployment(&live, &json!({"spec": {"replicas": "3"}})).unwrap();
    assert_eq!(got["spec"]["replicas"], "3");
}

#[test]
fn patch_directive_on_a_non_object_is_an_error() {
    let patch = json!({"spec": {"replicas": {"$patch": "delete"}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::DirectiveOnNonObject {
            path: "spec.replicas".into(),
            found: "number"
        }
    );
    let patch =
        json!({"spec": {"template": {"spec": {"containers": {"$patch": "replace", "name": "x"}}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::DirectiveOnNonObject {
            path: "spec.template.spec.containers".into(),
            found: "list"
        }
    );
}

#[test]
fn unknown_patch_values_are_errors() {
    let patch =
        json!({"spec": {"template": {"metadata": {"$patch": "bogus", "labels": {"a": "b"}}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::UnknownPatchType {
            path: "spec.template.metadata".into(),
            value: "bogus".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "spec.template.metadata: unknown patch type: bogus"
    );

    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": 1, "name": "web"}]}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::UnknownPatchType {
            path: "spec.template.spec.containers[0]".into(),
            value: "1".into()
        }
    );

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::MergeDirectiveInList {
            path: "spec.template.spec.containers[0]".into()
        }
    );

    // Also inside values that are taken as they are (a new field).
    let patch =
        json!({"spec": {"template": {"spec": {"securityContext": {"$patch": "sideways"}}}}});
    let err = deployment(&live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        StrategicPatchError::UnknownPatchType {
            path: "spec.template.spec.securityContext".into(),
            value: "sideways".into()
        }
    );
}

#[test]
fn directives_never_reach_the_result() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "new"}],
        "containers": [{
            "name": "new",
            "image": "busybox",
            "resources": null,
            "$setElementOrder/env": [{"name": "X"}],
            "env": [{"name": "X", "value": "1"}, {"$patch": "delete", "name": "Y"}],
            "$deleteFromPrimitiveList/args": ["a"],
            "securityContext": {"$patch": "replace", "runAsUser": 1000, "capabilities": {"$patch": "delete"}}
        }],
        "affinity": {"$retainKeys": ["nodeAffinity"], "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": null}}
    }}}});
    let got = deployment(&live_deployment(), &patch).unwrap();
    assert_no_directives(&got);
    let spec = &got["spec"]["template"]["spec"];
    assert_eq!(
        spec["containers"][1],
        json!({"name": "new", "image": "busybox", "env": [{"name": "X", "value": "1"}], "securityContext": {"runAsUser": 1000}})
    );
    assert_eq!(spec["containers"][2]["name"], "sidecar");
    assert_eq!(spec["affinity"], json!({"nodeAffinity": {}}));
}

#[test]
fn patch_delete_on_a_new_field_adds_nothing() {
    let patch = json!({"spec": {"template": {"spec": {"securityContext": {"$patch": "delete"}}}}});
    assert_eq!(
        deployment(&live_deployment(), &patch).unwrap(),
        live_deployment()
    );
}

// ---------------------------------------------------------------------------------------------
// Service

fn live_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.0.0.10",
            "clusterIPs": ["10.0.0.10"],
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}
            ]
        }
    })
}

#[test]
fn service_ports_merge_by_port() {
    let patch = json!({"spec": {
        "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
        "ports": [{"port": 80, "targetPort": 9090}]
    }});
    let got = service(&live_service(), &patch).unwrap();
    let mut want = live_service();
    want["spec"]["ports"][0]["targetPort"] = json!(9090);
    assert_eq!(got, want);
}

#[test]
fn service_port_added_deleted_and_ordered() {
    let patch = json!({"spec": {
        "$setElementOrder/ports": [{"port": 443}, {"port": 8443}],
        "ports": [{"$patch": "delete", "port": 80}, {"name": "alt", "port": 8443, "targetPort": "alt"}]
    }});
    let got = service(&live_service(), &patch).unwrap();
    assert_eq!(
        got["spec"]["ports"],
        json!([
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
            {"name": "alt", "port": 8443, "targetPort": "alt"}
        ])
    );
}

#[test]
fn service_selector_merges_under_strategic_merge_patch() {
    // SMP ignores x-kubernetes-map-type: atomic (that is server-side apply's business).
    let got = service(
        &live_service(),
        &json!({"spec": {"selector": {"tier": "fe"}}}),
    )
    .unwrap();
    assert_eq!(got["spec"]["selector"], json!({"app": "web", "tier": "fe"}));
    let got = service(
        &live_service(),
        &json!({"spec": {"clusterIPs": ["10.0.0.11"]}}),
    )
    .unwrap();
    assert_eq!(got["spec"]["clusterIPs"], json!(["10.0.0.11"]));
}

// ---------------------------------------------------------------------------------------------
// Unknown schemas

#[test]
fn unknown_type_behaves_like_json_merge_patch() {
    let original = json!({"spec": {"items": [{"name": "a", "v": 1}], "m": {"a": 1, "b": 2}, "finalizers": ["x"]}});
    let patch =
        json!({"spec": {"items": [{"name": "b"}], "m": {"a": null, "c": 3}, "finalizers": ["y"]}});
    let got = apply(catalog(), None, &original, &patch).unwrap();
    assert_eq!(
        got,
        json!({"spec": {"items": [{"name": "b"}], "m": {"b": 2, "c": 3}, "finalizers": ["y"]}})
    );
}

#[test]
fn unknown_type_still_honours_map_directives() {
    let original = json!({"spec": {"m": {"a": 1}, "n": {"b": 2}, "u": {"x": 1, "y": 2}}});
    let patch = json!({"spec": {"m": {"$patch": "replace", "z": 1}, "n": {"$patch": "delete"}, "u": {"$retainKeys": ["y"], "y": 3}}});
    let got = apply(catalog(), None, &original, &patch).unwrap();
    assert_eq!(
        got,
        json!({"spec": {"m": {"z": 1}, "n": {}, "u": {"y": 3}}})
    );
}

#[test]
fn unknown_field_of_a_known_type_merges_maps_and_replaces_lists() {
    let mut live = live_deployment();
    live["spec"]["extra"] = json!({"a": 1, "list": [{"name": "a", "v": 1}]});
    let patch = json!({"spec": {"extra": {"b": 2, "list": [{"name": "a"}]}}});
    let got = deployment(&live, &patch).unwrap();
    assert_eq!(
        got["spec"]["extra"],
        json!({"a": 1, "list": [{"name": "a"}], "b": 2})
    );
}

#[test]
fn documents_must_be_objects() {
    let err = apply(catalog(), None, &json!([]), &json!({})).unwrap_err();
    assert_eq!(err, StrategicPatchError::NotAnObject("original object"));
    let err = apply(catalog(), None, &json!({}), &json!([{"a": 1}])).unwrap_err();
    assert_eq!(err, StrategicPatchError::NotAnObject("patch"));
    assert_eq!(err.upstream_status(), 400);
    assert_eq!(
        err.to_string(),
        "invalid JSON document: the patch must be a JSON object"
    );
}

#[test]
fn empty_patch_is_identity() {
    assert_eq!(
        deployment(&live_deployment(), &json!({})).unwrap(),
        live_deployment()
    );
    assert_eq!(
        service(&live_service(), &json!({"spec": {}})).unwrap(),
        live_service()
    );
}

#[test]
fn pod_spec_patch_from_kubectl_patch_docs() {
    // kubernetes.io "Update API Objects in Place Using kubectl patch": the new container is
    // listed first.
    let original = json!({"spec": {"containers": [{"name": "patch-demo-ctr", "image": "nginx"}]}});
    let patch = json!({"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}});
    let got = pod(&original, &patch).unwrap();
    assert_eq!(
        got["spec"]["containers"],
        json!([{"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}])
    );
    // Tolerations have no merge strategy: the patch replaces them (same docs page).
    let original = json!({"spec": {"tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}]}});
    let patch = json!({"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}});
    assert_eq!(
        pod(&original, &patch).unwrap()["spec"]["tolerations"],
        patch["spec"]["tolerations"]
    );
}
