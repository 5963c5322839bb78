//! End-to-end checks: objects are defaulted like the apiserver does on decode,
//! then validated; expected errors are upstream's `field.Error.Error()` text.

use crate::admission::{
    FieldErrorType, aggregate_message, apply_defaults, invalid_status_message, validate,
};
use serde_json::{Value, json};

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn defaulted(group: &str, kind: &str, mut v: Value) -> Value {
    apply_defaults(group, kind, &mut v);
    v
}

fn create(group: &str, kind: &str, v: Value) -> Vec<String> {
    let v = defaulted(group, kind, v);
    validate(group, kind, true, &v, None)
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

fn update(group: &str, kind: &str, old: Value, new: Value) -> Vec<String> {
    let old = defaulted(group, kind, old);
    let new = defaulted(group, kind, new);
    validate(group, kind, true, &new, Some(&old))
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn container() -> Value {
    json!({"name": "c", "image": "nginx:1.25"})
}

fn deployment(spec_patch: Value) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [container()]}}
        }
    });
    merge(&mut d["spec"], spec_patch);
    d
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

// ---------------------------------------------------------------- metadata

#[test]
fn valid_pod_has_no_errors() {
    assert_eq!(
        create("", "Pod", pod(json!({"containers": [container()]}))),
        Vec::<String>::new()
    );
}

#[test]
fn object_name_and_namespace_rules() {
    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["name"] = json!("Web");
    assert_eq!(
        create("", "Pod", p),
        vec![format!(
            r#"metadata.name: Invalid value: "Web": {SUBDOMAIN}"#
        )]
    );
    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"] = json!({"name": "web"});
    assert_eq!(
        create("", "Pod", p),
        vec!["metadata.namespace: Required value"]
    );
    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"] = json!({"namespace": "default"});
    assert_eq!(
        create("", "Pod", p),
        vec!["metadata.name: Required value: name or generateName is required"]
    );
    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["namespace"] = json!("Bad_NS");
    assert_eq!(
        create("", "Pod", p),
        vec![format!(
            r#"metadata.namespace: Invalid value: "Bad_NS": {LABEL}"#
        )]
    );
    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["generateName"] = json!("Web-");
    let errs = create("", "Pod", p);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        r#"metadata.generateName: Invalid value: "Web-": a lowercase RFC 1123 subdomain"#
    ));
}

#[test]
fn namespace_names_are_labels_and_cluster_scoped() {
    let errs = create("", "Namespace", json!({"metadata": {"name": "a.b"}}));
    assert_eq!(
        errs,
        vec![r#"metadata.name: Invalid value: "a.b": must not contain dots"#]
    );
    let errs = create(
        "",
        "Namespace",
        json!({"metadata": {"name": "ok", "namespace": "x"}}),
    );
    assert_eq!(
        errs,
        vec!["metadata.namespace: Forbidden: not allowed on this type"]
    );
    assert!(create("", "Namespace", json!({"metadata": {"name": "team-a"}})).is_empty());
    let errs = create(
        "",
        "Namespace",
        json!({"metadata": {"name": "ok"}, "spec": {"finalizers": ["foo"]}}),
    );
    assert_eq!(
        errs,
        vec![
            r#"spec.finalizers: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified"#
        ]
    );
}

#[test]
fn labels_annotations_and_finalizers() {
    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["labels"] = json!({"app": "-bad", "bad key!": "x"});
    let errs = create("", "Pod", p);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0],
        r#"metadata.labels: Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#
    );
    assert!(errs[1].starts_with(r#"metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric characters"#));

    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["annotations"] = json!({"Example.COM/Key": "v", "a/b/c": "x"});
    let errs = create("", "Pod", p);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with(
        r#"metadata.annotations: Invalid value: "a/b/c": a valid label key must consist of"#
    ));

    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["annotations"] = json!({"big": "x".repeat(256 * 1024)});
    assert_eq!(
        create("", "Pod", p),
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );

    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["finalizers"] = json!(["foo", "example.com/ok", "orphan", "foregroundDeletion"]);
    assert_eq!(
        create("", "Pod", p),
        vec![
            r#"metadata.finalizers: Invalid value: ["foo","example.com/ok","orphan","foregroundDeletion"]: finalizer orphan and foregroundDeletion cannot be both set"#,
            r#"metadata.finalizers[0]: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified"#,
        ]
    );
}

#[test]
fn owner_references() {
    let mut p = pod(json!({"containers": [container()]}));
    p["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": true},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs2", "uid": "2", "controller": true},
        {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "3"},
        {"apiVersion": "a/b/c", "kind": "", "name": "", "uid": ""}
    ]);
    let errs = create("", "Pod", p);
    assert_eq!(errs.len(), 6, "{errs:?}");
    assert!(errs[0].starts_with("metadata.ownerReferences: Invalid value: [{"));
    assert!(errs[0].ends_with(r#"Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/rs and ReplicaSet/rs2"#));
    assert_eq!(
        errs[1],
        r#"metadata.ownerReferences[2]: Invalid value: {"apiVersion":"v1","kind":"Event","name":"e","uid":"3"}: /v1, Kind=Event is disallowed from being an owner"#
    );
    assert_eq!(
        errs[2],
        r#"metadata.ownerReferences[3].apiVersion: Invalid value: "a/b/c": must be <group>/<version> or <version>"#
    );
    assert_eq!(
        errs[3],
        "metadata.ownerReferences[3].kind: Required value: must not be empty"
    );
    assert_eq!(
        errs[4],
        "metadata.ownerReferences[3].name: Required value: must not be empty"
    );
    assert_eq!(
        errs[5],
        "metadata.ownerReferences[3].uid: Required value: must not be empty"
    );
}

#[test]
fn metadata_immutability_on_update() {
    let old = json!({"metadata": {"name": "a", "namespace": "default", "uid": "u1",
                                  "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "1"},
                     "data": {"k": "v"}});
    let mut new = old.clone();
    new["metadata"]["name"] = json!("b");
    new["metadata"]["uid"] = json!("u2");
    new["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    let errs = update("", "ConfigMap", old.clone(), new);
    assert_eq!(
        errs,
        vec![
            r#"metadata.name: Invalid value: "b": field is immutable"#,
            r#"metadata.uid: Invalid value: "u2": field is immutable"#,
            r#"metadata.creationTimestamp: Invalid value: "2025-01-01T00:00:00Z": field is immutable"#,
        ]
    );
    let mut deleting = old.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2024-02-01T00:00:00Z");
    let mut new = deleting.clone();
    new["metadata"]["finalizers"] = json!(["example.com/b", "example.com/a"]);
    assert_eq!(
        update("", "ConfigMap", deleting, new),
        vec![
            r#"metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/a", "example.com/b"}"#
        ]
    );
    let mut gen_old = old.clone();
    gen_old["metadata"]["generation"] = json!(3);
    let mut new = gen_old.clone();
    new["metadata"]["generation"] = json!(2);
    assert_eq!(
        update("", "ConfigMap", gen_old, new),
        vec!["metadata.generation: Invalid value: 2: must not be decremented"]
    );
}

// ---------------------------------------------------------------- pods

#[test]
fn pod_container_rules() {
    assert_eq!(
        create("", "Pod", pod(json!({"containers": []}))),
        vec!["spec.containers: Required value"]
    );
    assert_eq!(
        create("", "Pod", pod(json!({"containers": [{"name": "c"}]}))),
        vec!["spec.containers[0].image: Required value"]
    );
    assert_eq!(
        create(
            "",
            "Pod",
            pod(json!({"containers": [container(), container()]}))
        ),
        vec![r#"spec.containers[1].name: Duplicate value: "c""#]
    );
    assert_eq!(
        create(
            "",
            "Pod",
            pod(json!({"containers": [{"name": "Bad", "image": "i"}]}))
        ),
        vec![format!(
            r#"spec.containers[0].name: Invalid value: "Bad": {LABEL}"#
        )]
    );
    assert_eq!(
        create(
            "",
            "Pod",
            pod(json!({"initContainers": [container()], "containers": [container()]}))
        ),
        vec![r#"spec.initContainers[0].name: Duplicate value: "c""#]
    );
    assert_eq!(
        create(
            "",
            "Pod",
            pod(json!({"containers": [{"name": "c", "image": " nginx"}]}))
        ),
        vec![
            r#"spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace"#
        ]
    );
}

#[test]
fn pod_ports_env_and_mounts() {
    let c = json!({"name": "c", "image": "i", "ports": [
        {"containerPort": 70000}, {"containerPort": 80, "name": "HTTP"},
        {"containerPort": 81, "protocol": "ICMP", "hostPort": 8080},
        {"containerPort": 82, "hostPort": 8080, "protocol": "ICMP"}
    ]});
    assert_eq!(
        create("", "Pod", pod(json!({"containers": [c]}))),
        vec![
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            r#"spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
            r#"spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain at least one letter (a-z)"#,
            r#"spec.containers[0].ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
            r#"spec.containers[0].ports[3].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
            r#"spec.containers[0].ports[3].hostPort: Duplicate value: "ICMP//8080""#,
        ]
    );
    let c = json!({"name": "c", "image": "i",
        "env": [{"name": "A=B"}, {"name": ""}, {"name": "X", "valueFrom": {}},
                {"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "data", "mountPath": "/data"}]});
    assert_eq!(
        create("", "Pod", pod(json!({"containers": [c]}))),
        vec![
            r#"spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='"#,
            "spec.containers[0].env[1].name: Required value",
            r#"spec.containers[0].env[2].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"#,
            r#"spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: Invalid value: "spec.bogus": error converting fieldPath: field label not supported: spec.bogus"#,
            r#"spec.containers[0].volumeMounts[0].name: Not found: "data""#,
            r#"spec.containers[0].volumeMounts[1].name: Not found: "data""#,
            r#"spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique"#,
        ]
    );
}

#[test]
fn pod_spec_policies_and_probes() {
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"restartPolicy": "Sometimes", "dnsPolicy": "Magic", "containers": [container()]}),
        ),
    );
    assert_eq!(
        errs,
        vec![
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            r#"spec.dnsPolicy: Unsupported value: "Magic": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None""#,
        ]
    );
    let c = json!({"name": "c", "image": "i",
        "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
        "readinessProbe": {"httpGet": {"port": "HTTP"}, "terminationGracePeriodSeconds": 5},
        "startupProbe": {}});
    assert_eq!(
        create("", "Pod", pod(json!({"containers": [c]}))),
        vec![
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            r#"spec.containers[0].readinessProbe.httpGet.port: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
            r#"spec.containers[0].readinessProbe.httpGet.port: Invalid value: "HTTP": must contain at least one letter (a-z)"#,
            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes",
            "spec.containers[0].startupProbe: Required value: must specify a handler type",
        ]
    );
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"containers": [container()], "activeDeadlineSeconds": 0,
        "tolerations": [{"operator": "Exists", "value": "x"}, {"key": "k", "operator": "Equal", "effect": "Bogus"}]}),
        ),
    );
    assert_eq!(
        errs,
        vec![
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            r#"spec.tolerations[0].operator: Invalid value: "x": value must be empty when `operator` is 'Exists'"#,
            r#"spec.tolerations[1].effect: Unsupported value: "Bogus": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#,
        ]
    );
}

#[test]
fn pod_resources_and_volumes() {
    let c = json!({"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}});
    assert_eq!(
        create("", "Pod", pod(json!({"containers": [c]}))),
        vec![
            r#"spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1"#
        ]
    );
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [container()], "volumes": [
            {"name": "a", "secret": {"secretName": "s"}}, {"name": "a", "configMap": {"name": "x", "defaultMode": 1000}},
            {"name": "b", "hostPath": {"path": "/x"}, "emptyDir": {}}, {"name": "c", "secret": {}}
        ]})),
    );
    assert_eq!(
        errs,
        vec![
            "spec.volumes[1].configMap.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
            r#"spec.volumes[1].name: Duplicate value: "a""#,
            "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
            "spec.volumes[3].secret.secretName: Required value",
        ]
    );
}

#[test]
fn pod_create_forbids_ephemeral_containers() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [container()],
        "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "c"}]})),
    );
    assert_eq!(
        errs,
        vec!["spec.ephemeralContainers: Forbidden: cannot be set on create"]
    );
}

#[test]
fn pod_updates() {
    let old = pod(json!({"containers": [container()], "activeDeadlineSeconds": 100}));
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    new["spec"]["activeDeadlineSeconds"] = json!(50);
    new["spec"]["tolerations"] =
        json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]);
    assert_eq!(update("", "Pod", old.clone(), new), Vec::<String>::new());

    let mut new = old.clone();
    new["spec"]["activeDeadlineSeconds"] = json!(200);
    assert_eq!(
        update("", "Pod", old.clone(), new),
        vec![
            "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
        ]
    );

    let mut new = old.clone();
    new["spec"]["containers"] = json!([container(), {"name": "d", "image": "x"}]);
    assert_eq!(
        update("", "Pod", old.clone(), new),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );

    let mut new = old.clone();
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
    let errs = update("", "Pod", old.clone(), new);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
    ));

    let with_tol = pod(
        json!({"containers": [container()], "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}),
    );
    let mut new = with_tol.clone();
    new["spec"]["tolerations"][0]["tolerationSeconds"] = json!(10);
    assert!(update("", "Pod", with_tol.clone(), new).is_empty());
    let mut new = with_tol.clone();
    new["spec"]["tolerations"] = json!([]);
    assert_eq!(
        update("", "Pod", with_tol, new),
        vec![
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        ]
    );
}

// ---------------------------------------------------------------- apps

#[test]
fn deployment_rules() {
    assert!(create("apps", "Deployment", deployment(json!({}))).is_empty());
    assert_eq!(
        create("apps", "Deployment", deployment(json!({"replicas": -1}))),
        vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
    );
    assert_eq!(
        create("apps", "Deployment", deployment(json!({"selector": null}))),
        vec![
            "spec.selector: Required value",
            r#"spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`"#,
        ]
    );
    assert_eq!(
        create(
            "apps",
            "Deployment",
            deployment(json!({"selector": {"matchLabels": {"app": "other"}}}))
        ),
        vec![
            r#"spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`"#
        ]
    );
    let mut empty_sel = deployment(json!({}));
    empty_sel["spec"]["selector"] = json!({});
    assert_eq!(
        create("apps", "Deployment", empty_sel),
        vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
    );
    assert_eq!(
        create(
            "apps",
            "Deployment",
            deployment(json!({"template": {"spec": {"restartPolicy": "Never"}}}))
        ),
        vec![
            r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#
        ]
    );
    assert_eq!(
        create(
            "apps",
            "Deployment",
            deployment(
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}})
            )
        ),
        vec![
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
        ]
    );
    assert_eq!(
        create(
            "apps",
            "Deployment",
            deployment(
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%", "maxSurge": "x"}}})
            )
        ),
        vec![
            r#"spec.strategy.rollingUpdate.maxSurge: Invalid value: "x": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"#,
            r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%"#,
        ]
    );
    assert_eq!(
        create(
            "apps",
            "Deployment",
            deployment(json!({"strategy": {"type": "Recreate", "rollingUpdate": {}}}))
        ),
        vec![
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
        ]
    );
    assert_eq!(
        create(
            "apps",
            "Deployment",
            deployment(json!({"minReadySeconds": 700}))
        ),
        vec![
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
        ]
    );
    let errs = create(
        "apps",
        "Deployment",
        deployment(json!({"template": {"spec": {"containers": [{"name": "c"}]}}})),
    );
    assert_eq!(
        errs,
        vec!["spec.template.spec.containers[0].image: Required value"]
    );
}

#[test]
fn deployment_selector_is_immutable() {
    let old = deployment(json!({}));
    let new = deployment(
        json!({"selector": {"matchLabels": {"app": "web", "tier": "x"}},
                                "template": {"metadata": {"labels": {"app": "web", "tier": "x"}}}}),
    );
    assert_eq!(
        update("apps", "Deployment", old.clone(), new),
        vec![
            r#"spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: field is immutable"#
        ]
    );
    let new = deployment(json!({"replicas": 5}));
    assert!(update("apps", "Deployment", old, new).is_empty());
}

#[test]
fn replica_set_and_daemon_set() {
    let rs = json!({"metadata": {"name": "rs", "namespace": "d"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container()], "activeDeadlineSeconds": 5}}}});
    assert_eq!(
        create("apps", "ReplicaSet", rs),
        vec![
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"
        ]
    );
    let ds = json!({"metadata": {"name": "ds", "namespace": "d"}, "spec": {
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container()]}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}}});
    assert_eq!(
        create("apps", "DaemonSet", ds),
        vec![
            r#"spec.template.metadata.labels: Invalid value: {"a":"b"}: `selector` does not match template `labels`"#,
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
        ]
    );
}

#[test]
fn stateful_set_rules() {
    let ss = json!({"metadata": {"name": "db", "namespace": "d"}, "spec": {
        "serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [container()]}}}});
    assert!(create("apps", "StatefulSet", ss.clone()).is_empty());
    let mut dotted = ss.clone();
    dotted["metadata"]["name"] = json!("db.v1");
    assert_eq!(
        create("apps", "StatefulSet", dotted),
        vec![r#"metadata.name: Invalid value: "db.v1": must not contain dots"#]
    );
    let mut bad = ss.clone();
    bad["spec"]["podManagementPolicy"] = json!("Random");
    assert_eq!(
        create("apps", "StatefulSet", bad),
        vec![
            r#"spec.podManagementPolicy: Invalid value: "Random": must be 'OrderedReady' or 'Parallel'"#
        ]
    );
    let mut new = ss.clone();
    new["spec"]["replicas"] = json!(3);
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert!(update("apps", "StatefulSet", ss.clone(), new).is_empty());
    let mut new = ss.clone();
    new["spec"]["serviceName"] = json!("other");
    assert_eq!(
        update("apps", "StatefulSet", ss, new),
        vec![
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        ]
    );
}

// ---------------------------------------------------------------- batch

fn job(uid: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": uid},
        "spec": {
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "template": {"metadata": {"labels": {
                "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
                "controller-uid": uid, "job-name": "pi"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}})
}

#[test]
fn job_rules() {
    assert!(create("batch", "Job", job("u1")).is_empty());
    let mut j = job("u1");
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    assert_eq!(
        create("batch", "Job", j),
        vec![
            r#"spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#
        ]
    );
    let mut j = job("u1");
    j["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicy");
    assert_eq!(
        create("batch", "Job", j),
        vec![
            r#"spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#
        ]
    );
    let mut j = job("u1");
    j["spec"]["backoffLimit"] = json!(-1);
    j["spec"]["completionMode"] = json!("Sometimes");
    assert_eq!(
        create("batch", "Job", j),
        vec![
            "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
            r#"spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed""#,
        ]
    );
    // A nil selector also matches nothing, so the template check fires too.
    let mut j = job("u1");
    j["spec"].as_object_mut().unwrap().remove("selector");
    assert_eq!(
        create("batch", "Job", j),
        vec![
            "spec.selector: Required value",
            r#"spec.template.metadata.labels: Invalid value: {"batch.kubernetes.io/controller-uid":"u1","batch.kubernetes.io/job-name":"pi","controller-uid":"u1","job-name":"pi"}: `selector` does not match template `labels`"#,
        ]
    );
    let mut j = job("u1");
    j["spec"]["template"]["metadata"]["labels"]["job-name"] = json!("other");
    let errs = create("batch", "Job", j);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec.template.metadata.labels[job-name]: Invalid value: {"));
    assert!(errs[0].ends_with(": must be 'pi'"));
}

#[test]
fn job_updates() {
    // Updates start from the stored (defaulted) object, as clients GET then PUT.
    let old = defaulted("batch", "Job", job("u1"));
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
    let errs = update("batch", "Job", old.clone(), new);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec.template: Invalid value: {"));
    assert!(errs[0].ends_with(": field is immutable"));
    let mut new = old.clone();
    new["spec"]["completions"] = json!(3);
    assert_eq!(
        update("batch", "Job", old.clone(), new),
        vec!["spec.completions: Invalid value: 3: field is immutable"]
    );
    let mut new = old.clone();
    new["spec"]["parallelism"] = json!(4);
    assert_eq!(
        update("batch", "Job", old.clone(), new),
        Vec::<String>::new()
    );
    // Suspended, never-started jobs may change scheduling directives.
    let mut suspended = old.clone();
    suspended["spec"]["suspend"] = json!(true);
    let mut new = suspended.clone();
    new["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
    assert!(update("batch", "Job", suspended, new).is_empty());
}

#[test]
fn cron_job_rules() {
    let cj = |schedule: &str| {
        json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": schedule,
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [container()]}}}}}})
    };
    assert!(create("batch", "CronJob", cj("*/5 * * * *")).is_empty());
    assert_eq!(
        create("batch", "CronJob", cj("foo")),
        vec![r#"spec.schedule: Invalid value: "foo": expected exactly 5 fields, found 1: [foo]"#]
    );
    assert_eq!(
        create("batch", "CronJob", cj("61 * * * *")),
        vec![
            r#"spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61"#
        ]
    );
    assert_eq!(
        create("batch", "CronJob", cj("TZ=UTC * * * * *")),
        vec![
            r#"spec.schedule: Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"#
        ]
    );
    let mut bad = cj("@daily");
    bad["spec"]["concurrencyPolicy"] = json!("Sometimes");
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    bad["metadata"]["name"] = json!("x".repeat(53));
    assert_eq!(
        create("batch", "CronJob", bad),
        vec![
            r#"spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace""#,
            r#"spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#,
            &format!(
                r#"metadata.name: Invalid value: "{}": must be no more than 52 bytes"#,
                "x".repeat(53)
            ),
        ]
    );
    let mut tz = cj("0 0 * * *");
    tz["spec"]["timeZone"] = json!("Mars/Olympus");
    assert_eq!(
        create("batch", "CronJob", tz),
        vec![r#"spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus"#]
    );
}

// ---------------------------------------------------------------- services

fn service(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn service_rules() {
    assert!(
        create(
            "",
            "Service",
            service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}))
        )
        .is_empty()
    );
    let mut s = service(json!({"ports": [{"port": 80}]}));
    s["metadata"]["name"] = json!("1web");
    let errs = create("", "Service", s);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(r#"metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"#));
    assert_eq!(
        create(
            "",
            "Service",
            service(json!({"ports": [{"port": 80}, {"port": 0, "protocol": "ICMP"}]}))
        ),
        vec![
            "spec.ports[0].name: Required value",
            "spec.ports[1].name: Required value",
            "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            r#"spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
            // targetPort defaults to port, so it is reported too.
            "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ]
    );
    assert_eq!(
        create(
            "",
            "Service",
            service(json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 80}]}))
        ),
        vec![
            r#"spec.ports[1].name: Duplicate value: "a""#,
            r#"spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,"NodePort":0}"#,
        ]
    );
    assert_eq!(
        create(
            "",
            "Service",
            service(json!({"type": "Magic", "ports": [{"port": 80}]}))
        ),
        vec![
            r#"spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#
        ]
    );
    assert_eq!(
        create("", "Service", service(json!({}))),
        vec!["spec.ports: Required value"]
    );
    assert_eq!(
        create(
            "",
            "Service",
            service(json!({"type": "ExternalName", "externalName": "Bad_Name"}))
        ),
        vec![format!(
            r#"spec.externalName: Invalid value: "Bad_Name": {SUBDOMAIN}"#
        )]
    );
    assert_eq!(
        create(
            "",
            "Service",
            service(json!({"ports": [{"port": 80, "nodePort": 30000}]}))
        ),
        vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    );
    assert_eq!(
        create(
            "",
            "Service",
            service(json!({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]}))
        ),
        vec![
            r#"spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#
        ]
    );
    assert!(create("", "Service", service(json!({"clusterIP": "None"}))).is_empty());
}

#[test]
fn service_updates() {
    let old = service(json!({"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}));
    let new = service(json!({"clusterIP": "10.0.0.2", "ports": [{"port": 80}]}));
    assert_eq!(
        update("", "Service", old.clone(), new),
        vec![r#"spec.clusterIPs[0]: Invalid value: ["10.0.0.2"]: may not change once set"#]
    );
    let new =
        service(json!({"clusterIP": "10.0.0.1", "type": "NodePort", "ports": [{"port": 80}]}));
    assert!(update("", "Service", old.clone(), new).is_empty());
    let new = service(json!({"type": "ExternalName", "externalName": "example.com"}));
    assert!(update("", "Service", old, new).is_empty());
}

// ---------------------------------------------------------------- config & storage

#[test]
fn config_map_and_secret() {
    let cm =
        json!({"metadata": {"name": "cm", "namespace": "d"}, "data": {"a b": "x", "ok.key": "y"}});
    assert_eq!(
        create("", "ConfigMap", cm),
        vec![
            r#"data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#
        ]
    );
    let old = json!({"metadata": {"name": "cm", "namespace": "d"}, "data": {"a": "1"}, "immutable": true});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(
        update("", "ConfigMap", old.clone(), new),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    let mut new = old.clone();
    new["immutable"] = json!(false);
    assert_eq!(
        update("", "ConfigMap", old, new),
        vec!["immutable: Forbidden: field is immutable when `immutable` is set"]
    );
    let sec = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
    assert_eq!(
        create("", "Secret", sec),
        vec!["data[tls.key]: Required value"]
    );
    let sec = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{nope"}});
    let errs = create("", "Secret", sec);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            r#"data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": "#
        )
    );
    let old = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"});
    let mut new = old.clone();
    new["type"] = json!("kubernetes.io/basic-auth");
    new["data"] = json!({"username": "dQ=="});
    assert_eq!(
        update("", "Secret", old, new),
        vec![r#"type: Invalid value: "kubernetes.io/basic-auth": field is immutable"#]
    );
}

#[test]
fn persistent_volume_claims() {
    let pvc = |storage: &str| {
        json!({"metadata": {"name": "data", "namespace": "d"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}})
    };
    assert!(create("", "PersistentVolumeClaim", pvc("1Gi")).is_empty());
    assert_eq!(
        create(
            "",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "data", "namespace": "d"}, "spec": {}})
        ),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value",
        ]
    );
    assert_eq!(
        create("", "PersistentVolumeClaim", pvc("0")),
        vec![r#"spec.resources[storage]: Invalid value: "0": must be greater than zero"#]
    );
    let mut bound = pvc("1Gi");
    bound["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
    let mut grown = bound.clone();
    grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    assert!(update("", "PersistentVolumeClaim", bound.clone(), grown).is_empty());
    let mut shrunk = bound.clone();
    shrunk["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
    assert_eq!(
        update("", "PersistentVolumeClaim", bound.clone(), shrunk),
        vec![
            "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
        ]
    );
    let mut changed = bound.clone();
    changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let errs = update("", "PersistentVolumeClaim", bound, changed);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"));
}

#[test]
fn limit_range_and_quota() {
    let lr = json!({"metadata": {"name": "lr", "namespace": "d"}, "spec": {"limits": [
        {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}});
    let errs = create("", "LimitRange", lr);
    assert!(errs.contains(&r#"spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1"#.to_string()), "{errs:?}");
    let rq = json!({"metadata": {"name": "q", "namespace": "d"}, "spec": {"hard": {"pods": "-1", "foo": "1", "cpu": "1.5"}}});
    assert_eq!(
        create("", "ResourceQuota", rq),
        vec![
            r#"spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0"#,
            r#"spec.hard[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
            r#"spec.hard[foo]: Invalid value: "foo": must be a standard resource for quota"#,
        ]
    );
}

// ---------------------------------------------------------------- other groups

#[test]
fn rbac_rules() {
    let role = json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
    assert_eq!(
        create("rbac.authorization.k8s.io", "Role", role),
        vec![
            "rules[0].verbs: Required value: verbs must contain at least one value",
            r#"rules[1].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs"#,
        ]
    );
    let cr = json!({"metadata": {"name": "system:controller:x"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]});
    assert!(validate("rbac.authorization.k8s.io", "ClusterRole", false, &cr, None).is_empty());
    let bad = json!({"metadata": {"name": "a/b"}, "rules": []});
    let errs: Vec<String> = validate(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        false,
        &bad,
        None,
    )
    .into_iter()
    .map(|e| e.to_string())
    .collect();
    assert_eq!(
        errs,
        vec![r#"metadata.name: Invalid value: "a/b": may not contain '/'"#]
    );
    let rb = json!({"metadata": {"name": "rb", "namespace": "d"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Robot", "name": "r2d2"}]});
    assert_eq!(
        create("rbac.authorization.k8s.io", "RoleBinding", rb.clone()),
        vec![
            r#"subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group""#
        ]
    );
    let mut new = rb.clone();
    new["roleRef"]["name"] = json!("other");
    new["subjects"] = json!([]);
    let mut old = rb;
    old["subjects"] = json!([]);
    assert_eq!(
        update("rbac.authorization.k8s.io", "RoleBinding", old, new),
        vec![
            r#"roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"other"}: cannot change roleRef"#
        ]
    );
    let crb = json!({"metadata": {"name": "crb"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa"}]});
    let mut crb = defaulted("rbac.authorization.k8s.io", "ClusterRoleBinding", crb);
    crb["metadata"]["namespace"] = json!("");
    let errs: Vec<String> = validate(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        false,
        &crb,
        None,
    )
    .into_iter()
    .map(|e| e.to_string())
    .collect();
    assert_eq!(
        errs,
        vec![
            r#"roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole""#,
            "subjects[0].namespace: Required value",
        ]
    );
}

#[test]
fn network_policy_rules() {
    let np = json!({"metadata": {"name": "np", "namespace": "d"}, "spec": {"podSelector": {},
        "ingress": [{"from": [{}], "ports": [{"port": 70000}, {"port": "http", "endPort": 90}]}],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}, "podSelector": {}}]}]}});
    assert_eq!(
        create("networking.k8s.io", "NetworkPolicy", np),
        vec![
            "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
            "spec.ingress[0].from[0]: Required value: must specify a peer",
            r#"spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`"#,
            "spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer",
        ]
    );
}

#[test]
fn ingress_rules() {
    let ing = json!({"metadata": {"name": "i", "namespace": "d"}, "spec": {"rules": [{"host": "*.example.com",
        "http": {"paths": [{"path": "/a", "backend": {"service": {"name": "svc", "port": {"number": 80}}}},
                           {"path": "b", "pathType": "Prefix", "backend": {"service": {"name": "svc"}}}]}}]}});
    assert_eq!(
        create("networking.k8s.io", "Ingress", ing),
        vec![
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
            r#"spec.rules[0].http.paths[1].path: Invalid value: "b": must be an absolute path"#,
            "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
        ]
    );
}

#[test]
fn pdb_hpa_endpointslice() {
    let pdb = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"minAvailable": 1, "maxUnavailable": "120%"}});
    assert_eq!(
        create("policy", "PodDisruptionBudget", pdb),
        vec![
            r#"spec: Invalid value: {"MinAvailable":1,"Selector":null,"MaxUnavailable":"120%","UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set"#,
            r#"spec.maxUnavailable: Invalid value: "120%": must not be greater than 100%"#,
        ]
    );
    let hpa = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "h", "namespace": "d"},
        "spec": {"minReplicas": 5, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]}});
    assert_eq!(
        create("autoscaling", "HorizontalPodAutoscaler", hpa),
        vec![
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
        ]
    );
    let eps = json!({"metadata": {"name": "e", "namespace": "d"}, "addressType": "IPv5",
        "endpoints": [{"addresses": []}], "ports": [{"port": 80, "protocol": "ICMP"}]});
    assert_eq!(
        create("discovery.k8s.io", "EndpointSlice", eps),
        vec![
            r#"addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6""#,
            "endpoints[0].addresses: Required value: must contain at least 1 address",
            r#"ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
        ]
    );
}

#[test]
fn nodes_and_events() {
    let node = json!({"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}, {"key": "k2", "effect": ""}]}});
    let errs: Vec<String> = validate("", "Node", false, &defaulted("", "Node", node), None)
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        errs,
        vec![
            r#"metadata.taints[1]: Duplicate value: {"Key":"k","Value":"","Effect":"NoSchedule","TimeAdded":null}: taints must be unique by key and effect pair"#,
            "metadata.taints[2].effect: Required value",
        ]
    );
    let ev = json!({"metadata": {"name": "e.1", "namespace": "d"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}});
    assert_eq!(
        create("", "Event", ev),
        vec![r#"involvedObject.namespace: Invalid value: "other": does not match event.namespace"#]
    );
}

#[test]
fn unknown_kinds_get_metadata_validation() {
    let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "d", "finalizers": ["custom"]}});
    assert!(validate("example.com", "Widget", true, &cr, None).is_empty());
    let errs: Vec<String> = validate("example.com", "Widget", false, &cr, None)
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        errs,
        vec!["metadata.namespace: Forbidden: not allowed on this type"]
    );
}

#[test]
fn error_types_and_status_message() {
    let errs = validate(
        "apps",
        "Deployment",
        true,
        &defaulted(
            "apps",
            "Deployment",
            deployment(
                json!({"replicas": -1, "template": {"spec": {"containers": [{"name": "c"}]}}}),
            ),
        ),
        None,
    );
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0].reason, FieldErrorType::FieldValueInvalid);
    assert_eq!(errs[0].field, "spec.replicas");
    assert_eq!(
        errs[0].message,
        "Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(errs[1].reason, FieldErrorType::FieldValueRequired);
    assert_eq!(errs[1].reason.as_str(), "FieldValueRequired");
    assert_eq!(
        aggregate_message(&errs),
        "[spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers[0].image: Required value]"
    );
    assert_eq!(
        invalid_status_message("apps", "Deployment", "web", &errs),
        r#"Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers[0].image: Required value]"#
    );
}

#[test]
fn pod_scheduling_and_security() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [container()],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []},
                                       "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]},
                     "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"a": "b"}}}]}},
        "topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}],
        "dnsPolicy": "None"})),
    );
    assert_eq!(
        errs,
        vec![
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
            "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
            r#"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": name part must be non-empty"#,
            r#"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
            "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None",
            "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
            r#"spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": supported values: "DoNotSchedule", "ScheduleAnyway""#,
        ]
    );
    let c = json!({"name": "c", "image": "i", "securityContext": {"runAsUser": -1, "allowPrivilegeEscalation": false, "privileged": true,
                                                                   "seccompProfile": {"type": "Localhost"}}});
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"containers": [c], "securityContext": {"fsGroup": -5, "sysctls": [{"name": "Bad!"}]}}),
        ),
    );
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
            "spec.containers[0].securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost",
            r#"spec.containers[0].securityContext: Invalid value: {"runAsUser":-1,"allowPrivilegeEscalation":false,"privileged":true,"seccompProfile":{"type":"Localhost"}}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true"#,
            "spec.securityContext.fsGroup: Invalid value: -5: must be between 0 and 2147483647, inclusive",
            r#"spec.securityContext.sysctls[0].name: Invalid value: "Bad!": must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"#,
        ]
    );
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "i",
        "ports": [{"containerPort": 80, "hostPort": 81}]}]}),
        ),
    );
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true"
        ]
    );
}

#[test]
fn init_containers_and_sidecars() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [container()], "initContainers": [
            {"name": "init", "image": "i", "readinessProbe": {"exec": {"command": ["x"]}}},
            {"name": "side", "image": "i", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["x"]}}},
            {"name": "bad", "image": "i", "restartPolicy": "OnFailure"}
        ]})),
    );
    assert_eq!(
        errs,
        vec![
            "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            r#"spec.initContainers[2].restartPolicy: Unsupported value: "OnFailure": supported values: "Always""#,
        ]
    );
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [{"name": "c", "image": "i", "restartPolicy": "Always"}]})),
    );
    assert_eq!(
        errs,
        vec!["spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"]
    );
}

#[test]
fn replication_controller_and_pod_template() {
    let rc = json!({"metadata": {"name": "rc", "namespace": "d"}, "spec": {"selector": {"app": "x"},
        "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [container()]}}}});
    assert_eq!(
        create("", "ReplicationController", rc),
        vec![
            r#"spec.template.metadata.labels: Invalid value: {"app":"y"}: `selector` does not match template `labels`"#
        ]
    );
    let pt = json!({"metadata": {"name": "pt", "namespace": "d"}, "template": {"metadata": {"labels": {"k": "-"}},
        "spec": {"containers": [container()]}}});
    let errs = create("", "PodTemplate", pt);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        r#"template.labels: Invalid value: "-": a valid label must be an empty string"#
    ));
}

#[test]
fn persistent_volumes_and_endpoints() {
    let pv = json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadWriteOncePod"]}});
    let errs: Vec<String> = validate(
        "",
        "PersistentVolume",
        false,
        &defaulted("", "PersistentVolume", pv),
        None,
    )
    .into_iter()
    .map(|e| e.to_string())
    .collect();
    assert_eq!(
        errs,
        vec![
            "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
            "spec: Required value: must specify a volume type",
        ]
    );
    let old = json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/a"}}});
    let mut new = old.clone();
    new["spec"]["hostPath"]["path"] = json!("/b");
    let (old, new) = (
        defaulted("", "PersistentVolume", old),
        defaulted("", "PersistentVolume", new),
    );
    let errs: Vec<String> = validate("", "PersistentVolume", false, &new, Some(&old))
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n"));
    let ep = json!({"metadata": {"name": "e", "namespace": "d"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}]});
    assert_eq!(
        create("", "Endpoints", ep),
        vec![
            r#"subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#
        ]
    );
}

#[test]
fn scheduling_storage_and_ingress_classes() {
    let pc = json!({"metadata": {"name": "high"}, "value": 2000000000});
    let errs: Vec<String> = validate(
        "scheduling.k8s.io",
        "PriorityClass",
        false,
        &defaulted("scheduling.k8s.io", "PriorityClass", pc),
        None,
    )
    .into_iter()
    .map(|e| e.to_string())
    .collect();
    assert_eq!(
        errs,
        vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    );
    let sc = json!({"metadata": {"name": "fast"}, "provisioner": "", "reclaimPolicy": "Recycle"});
    let errs: Vec<String> = validate(
        "storage.k8s.io",
        "StorageClass",
        false,
        &defaulted("storage.k8s.io", "StorageClass", sc),
        None,
    )
    .into_iter()
    .map(|e| e.to_string())
    .collect();
    assert_eq!(
        errs,
        vec![
            "provisioner: Required value",
            r#"reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain""#,
        ]
    );
    let ic = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "nginx"}});
    let errs: Vec<String> = validate("networking.k8s.io", "IngressClass", false, &ic, None)
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        errs,
        vec![
            r#"spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")"#
        ]
    );
}

#[test]
fn exported_name_validators() {
    assert!(crate::admission::is_dns1123_label("web-1").is_empty());
    assert_eq!(
        crate::admission::is_dns1123_label("web.1"),
        vec!["must not contain dots"]
    );
    assert!(crate::admission::is_dns1123_subdomain("web.example.com").is_empty());
    assert_eq!(
        crate::admission::is_dns1123_subdomain("Web"),
        vec![SUBDOMAIN.to_string()]
    );
    assert!(crate::admission::is_qualified_name("app.kubernetes.io/name").is_empty());
    assert_eq!(
        crate::admission::is_qualified_name("/x"),
        vec!["prefix part must be non-empty"]
    );
    assert!(crate::admission::is_valid_label_value("").is_empty());
    assert_eq!(
        crate::admission::is_valid_label_value(&"a".repeat(64)),
        vec!["must be no more than 63 bytes"]
    );
}

#[test]
fn service_type_changes_with_strategy() {
    let old = defaulted(
        "",
        "Service",
        service(json!({"clusterIP": "10.0.0.1", "ports": [{"port": 80}]})),
    );
    let mut new = old.clone();
    new["spec"]["type"] = json!("ExternalName");
    new["spec"]["externalName"] = json!("db.example.com");
    // Without the strategy fix-ups the allocated fields are still present.
    let raw: Vec<String> = validate("", "Service", true, &new, Some(&old))
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        raw,
        vec![
            "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
            "spec.ipFamilies: Forbidden: may not be set for ExternalName services",
            "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services",
        ]
    );
    crate::admission::prepare_service_update(&mut new, &old);
    assert!(validate("", "Service", true, &new, Some(&old)).is_empty());
    // Changing to NodePort keeps the cluster IP; omitting it in the update is patched back.
    let mut np = json!({"metadata": old["metadata"].clone(), "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    crate::admission::prepare_service_update(&mut np, &old);
    apply_defaults("", "Service", &mut np);
    assert_eq!(np["spec"]["clusterIPs"], json!(["10.0.0.1"]));
    assert!(validate("", "Service", true, &np, Some(&old)).is_empty());
}

#[test]
fn node_updates() {
    let old = json!({"metadata": {"name": "n1"}, "spec": {"providerID": "aws://1", "podCIDRs": ["10.0.1.0/24"]}});
    let mut new = old.clone();
    new["spec"]["providerID"] = json!("aws://2");
    new["spec"]["podCIDRs"] = json!(["10.0.2.0/24"]);
    new["status"] = json!({"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "InternalIP", "address": "10.0.0.1"}]});
    let errs: Vec<String> = validate("", "Node", false, &new, Some(&old))
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        errs,
        vec![
            r#"status.addresses[1]: Duplicate value: {"Type":"InternalIP","Address":"10.0.0.1"}"#,
            r#"spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid"#,
            r#"spec.providerID: Forbidden: node updates may not change providerID except from "" to valid"#,
        ]
    );
}

/// Realistic manifests (as `kubectl apply` sends them) must pass cleanly.
#[test]
fn realistic_manifests_have_no_false_positives() {
    let manifests = vec![
        (
            "apps",
            "Deployment",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "prod", "labels": {"app.kubernetes.io/name": "api"},
                             "annotations": {"deployment.kubernetes.io/revision": "3", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
                "spec": {
                    "replicas": 3, "revisionHistoryLimit": 5,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]}]},
                    "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "api", "tier": "backend"}, "annotations": {"prometheus.io/scrape": "true"}},
                        "spec": {
                            "serviceAccountName": "api",
                            "initContainers": [{"name": "migrate", "image": "registry.example.com/api:v1.2.3", "command": ["/migrate"],
                                                "envFrom": [{"secretRef": {"name": "db"}}]},
                                               {"name": "proxy", "image": "envoy:v1", "restartPolicy": "Always",
                                                "readinessProbe": {"tcpSocket": {"port": 9901}}}],
                            "containers": [{
                                "name": "api", "image": "registry.example.com/api:v1.2.3",
                                "args": ["--port=8080"],
                                "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                        {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
                                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                                        {"name": "DB_PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                                        {"name": "MODE", "value": "prod"}],
                                "envFrom": [{"configMapRef": {"name": "api-config"}, "prefix": "CFG_"}],
                                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": 1, "memory": "512Mi"}},
                                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 10},
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
                                "startupProbe": {"grpc": {"port": 9090}, "failureThreshold": 30},
                                "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/api", "readOnly": true},
                                                 {"name": "cache", "mountPath": "/cache"},
                                                 {"name": "token", "mountPath": "/var/run/token"},
                                                 {"name": "podinfo", "mountPath": "/etc/podinfo"},
                                                 {"name": "data", "mountPath": "/data", "subPath": "api"}],
                                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
                                                    "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true,
                                                    "seccompProfile": {"type": "RuntimeDefault"}}
                            }],
                            "volumes": [
                                {"name": "config", "configMap": {"name": "api-config", "items": [{"key": "app.yaml", "path": "app.yaml"}]}},
                                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi", "medium": "Memory"}},
                                {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600, "audience": "api"}},
                                                                          {"configMap": {"name": "ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}},
                                {"name": "podinfo", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                                             {"path": "cpu", "resourceFieldRef": {"containerName": "api", "resource": "requests.cpu"}}]}},
                                {"name": "data", "persistentVolumeClaim": {"claimName": "api-data"}}
                            ],
                            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                                "podAffinityTerm": {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "api"}}, "topologyKey": "kubernetes.io/hostname"}}]},
                                         "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                                             {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}]}}},
                            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"},
                                            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                                                           "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "api"}}, "matchLabelKeys": ["pod-template-hash"]}],
                            "securityContext": {"fsGroup": 2000, "runAsNonRoot": true, "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]},
                            "dnsConfig": {"options": [{"name": "ndots", "value": "2"}], "searches": ["svc.cluster.local", "_tcp.example.com."]},
                            "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["db.local"]}],
                            "priorityClassName": "high", "terminationGracePeriodSeconds": 45,
                            "imagePullSecrets": [{"name": "regcred"}],
                            "nodeSelector": {"kubernetes.io/os": "linux"}
                        }
                    }
                }
            }),
        ),
        (
            "apps",
            "StatefulSet",
            json!({
                "metadata": {"name": "pg", "namespace": "db"},
                "spec": {"serviceName": "pg", "replicas": 3, "podManagementPolicy": "Parallel",
                         "selector": {"matchLabels": {"app": "pg"}},
                         "template": {"metadata": {"labels": {"app": "pg"}}, "spec": {"containers": [{"name": "pg", "image": "postgres:16",
                             "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]}]}},
                         "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                             "storageClassName": "fast", "resources": {"requests": {"storage": "10Gi"}}}}]}
            }),
        ),
        (
            "apps",
            "DaemonSet",
            json!({
                "metadata": {"name": "agent", "namespace": "kube-system"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"hostNetwork": true, "hostPID": true,
                             "dnsPolicy": "ClusterFirstWithHostNet",
                             "containers": [{"name": "agent", "image": "agent:1", "ports": [{"containerPort": 9100, "hostPort": 9100}],
                                             "securityContext": {"privileged": true},
                                             "volumeMounts": [{"name": "root", "mountPath": "/host", "mountPropagation": "HostToContainer", "readOnly": true}]}],
                             "volumes": [{"name": "root", "hostPath": {"path": "/", "type": "Directory"}}]}}}
            }),
        ),
        (
            "batch",
            "CronJob",
            json!({
                "metadata": {"name": "backup", "namespace": "db"},
                "spec": {"schedule": "30 2 * * 1-5", "timeZone": "Europe/Berlin", "concurrencyPolicy": "Forbid",
                         "jobTemplate": {"spec": {"backoffLimit": 2, "ttlSecondsAfterFinished": 3600,
                             "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "b", "image": "backup:1"}]}}}}}
            }),
        ),
        (
            "",
            "Service",
            json!({
                "metadata": {"name": "api", "namespace": "prod"},
                "spec": {"type": "LoadBalancer", "selector": {"app.kubernetes.io/name": "api"}, "externalTrafficPolicy": "Local",
                         "healthCheckNodePort": 32000, "loadBalancerSourceRanges": ["10.0.0.0/8"],
                         "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "appProtocol": "http"},
                                   {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}
            }),
        ),
        (
            "",
            "Service",
            json!({
                "metadata": {"name": "pg", "namespace": "db"},
                "spec": {"clusterIP": "None", "selector": {"app": "pg"}, "ports": [{"port": 5432}], "publishNotReadyAddresses": true}
            }),
        ),
        (
            "",
            "Secret",
            json!({
                "metadata": {"name": "tls", "namespace": "prod"}, "type": "kubernetes.io/tls",
                "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
            }),
        ),
        (
            "",
            "Secret",
            json!({
                "metadata": {"name": "regcred", "namespace": "prod"}, "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}
            }),
        ),
        (
            "",
            "ConfigMap",
            json!({"metadata": {"name": "api-config", "namespace": "prod"},
            "data": {"app.yaml": "port: 8080\n", "LOG_LEVEL": "info"}, "binaryData": {"logo.png": "iVBORw0KGgo="}}),
        ),
        (
            "networking.k8s.io",
            "Ingress",
            json!({
                "metadata": {"name": "api", "namespace": "prod", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
                "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["api.example.com"], "secretName": "tls"}],
                         "rules": [{"host": "api.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                             "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}]}
            }),
        ),
        (
            "networking.k8s.io",
            "NetworkPolicy",
            json!({
                "metadata": {"name": "allow", "namespace": "prod"},
                "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"],
                         "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}}, "podSelector": {}},
                                               {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                      "ports": [{"protocol": "TCP", "port": 8080}, {"port": 30000, "endPort": 32767}]}],
                         "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]}]}
            }),
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({
                "apiVersion": "autoscaling/v2", "metadata": {"name": "api", "namespace": "prod"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}, "minReplicas": 2, "maxReplicas": 10,
                         "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}}],
                         "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}}
            }),
        ),
        (
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "api", "namespace": "prod"},
            "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "api"}}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "Role",
            json!({"metadata": {"name": "reader", "namespace": "prod"},
            "rules": [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments/scale"], "verbs": ["get", "list", "watch"], "resourceNames": ["x"]}]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"metadata": {"name": "reader", "namespace": "prod"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": "prod"}, {"kind": "Group", "name": "system:authenticated"}]}),
        ),
        (
            "",
            "ServiceAccount",
            json!({"metadata": {"name": "api", "namespace": "prod"}, "automountServiceAccountToken": false}),
        ),
        (
            "",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "api-data", "namespace": "prod"},
            "spec": {"accessModes": ["ReadWriteOncePod"], "resources": {"requests": {"storage": "5Gi"}}, "storageClassName": "standard",
                     "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "seed"}}}),
        ),
        (
            "",
            "ResourceQuota",
            json!({"metadata": {"name": "q", "namespace": "prod"},
            "spec": {"hard": {"requests.cpu": "10", "limits.memory": "20Gi", "pods": "50", "count/deployments.apps": "5"},
                     "scopes": ["NotBestEffort"]}}),
        ),
        (
            "",
            "LimitRange",
            json!({"metadata": {"name": "lr", "namespace": "prod"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "2"}, "min": {"cpu": "50m"}}]}}),
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"metadata": {"name": "api-abc", "namespace": "prod"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": true}, "nodeName": "node-1"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
        ),
    ];
    for (group, kind, obj) in manifests {
        let errs = create(group, kind, obj);
        assert!(errs.is_empty(), "{group}/{kind}: {errs:#?}");
    }
}

#[test]
fn stateful_set_template_pod_spec_is_not_validated_upstream() {
    // Mounts of volumeClaimTemplates and even a missing image pass, as upstream
    // only checks the template's metadata for StatefulSets.
    let ss = json!({"metadata": {"name": "db", "namespace": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db", "bad": "-x"}}, "spec": {"containers": [
            {"name": "db", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}}]}});
    let errs = create("apps", "StatefulSet", ss);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with(
        r#"spec.template.labels: Invalid value: "-x": a valid label must be an empty string"#
    ));
}

#[test]
fn before_update_makes_replace_style_updates_valid() {
    let old = json!({"metadata": {"name": "cm", "namespace": "d", "uid": "u1", "resourceVersion": "5",
        "creationTimestamp": "2024-01-01T00:00:00Z"}, "data": {"a": "1"}});
    // `kubectl replace` of a file written by `create --dry-run -o yaml`.
    let mut new = json!({"metadata": {"name": "cm", "namespace": "d", "creationTimestamp": null}, "data": {"a": "2"}});
    assert_eq!(
        update("", "ConfigMap", old.clone(), new.clone()),
        vec![
            r#"metadata.uid: Invalid value: "": field is immutable"#,
            "metadata.creationTimestamp: Invalid value: null: field is immutable",
        ]
    );
    crate::admission::before_update(&mut new, &old);
    assert!(update("", "ConfigMap", old, new).is_empty());
}
