//! The RBAC objects kube-apiserver creates at start (upstream
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`: `policy.go`, `controller_policy.go`,
//! `namespace_policy.go`), as wire-form JSON, with the feature gates at their 1.37 defaults
//! (DynamicResourceAllocation, KubeletFineGrainedAuthz,
//! KubeletServiceAccountTokenForCredentialProviders, MultiCIDRServiceAllocator and
//! SELinuxChangePolicy on; ClusterTrustBundle, PodCertificateRequest, GenericWorkload,
//! DRAExtendedResource, DRADeviceTaints(Rules), StorageVersionMigrator and the zpages off).
//!
//! Aggregation is not implemented by Ketch, so `admin`, `edit` and `view` carry both their
//! `aggregationRule` and the rules the aggregation controller would have filled in from the
//! `system:aggregate-to-*` roles.
//!
//! Every object is labelled `kubernetes.io/bootstrapping: rbac-defaults` and annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"`. Lists inside rules are sorted and
//! de-duplicated, as upstream's rule builder does.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// Label key/value on every bootstrap object.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// Annotation key/value on every bootstrap object (reconciled at start unless set to "false").
pub const AUTOUPDATE_ANNOTATION: (&str, &str) =
    ("rbac.authorization.kubernetes.io/autoupdate", "true");

const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const READ_UPDATE: &[&str] = &["get", "list", "watch", "update", "patch"];

const LEGACY: &str = "";
const APPS: &str = "apps";
const AUTHN: &str = "authentication.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const CERTIFICATES: &str = "certificates.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EXTENSIONS: &str = "extensions";
const POLICY: &str = "policy";
const RBAC: &str = "rbac.authorization.k8s.io";
const RESOURCE: &str = "resource.k8s.io";
const STORAGE: &str = "storage.k8s.io";
const RES_METRICS: &str = "metrics.k8s.io";
const CUSTOM_METRICS: &str = "custom.metrics.k8s.io";
const EXTERNAL_METRICS: &str = "external.metrics.k8s.io";
const NETWORKING: &str = "networking.k8s.io";
const EVENTS: &str = "events.k8s.io";
const ADMISSION: &str = "admissionregistration.k8s.io";
const CHECKPOINT: &str = "checkpoint.k8s.io";
const NODE: &str = "node.k8s.io";

const SA_ROLE_PREFIX: &str = "system:controller:";

fn sorted(items: &[&str]) -> Value {
    let set: BTreeSet<&str> = items.iter().copied().collect();
    Value::Array(
        set.into_iter()
            .map(|s| Value::String(s.to_string()))
            .collect(),
    )
}

/// A PolicyRule in Go field order (verbs, apiGroups, resources, resourceNames,
/// nonResourceURLs), omitting empty optional lists.
fn rule_full(
    verbs: &[&str],
    groups: &[&str],
    resources: &[&str],
    names: &[&str],
    urls: &[&str],
) -> Value {
    let mut m = Map::new();
    m.insert("verbs".into(), sorted(verbs));
    for (key, items) in [
        ("apiGroups", groups),
        ("resources", resources),
        ("resourceNames", names),
        ("nonResourceURLs", urls),
    ] {
        if !items.is_empty() {
            m.insert(key.into(), sorted(items));
        }
    }
    Value::Object(m)
}

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    rule_full(verbs, groups, resources, &[], &[])
}

fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    rule_full(verbs, groups, resources, names, &[])
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    rule_full(verbs, &[], &[], &[], urls)
}

fn events_rule() -> Value {
    rule(
        &["create", "update", "patch"],
        &[LEGACY, EVENTS],
        &["events"],
    )
}

fn metadata(name: &str, namespace: Option<&str>, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels: Vec<(&str, &str)> = vec![BOOTSTRAP_LABEL];
    labels.extend_from_slice(extra_labels);
    labels.sort();
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    }
    m.insert(
        "labels".into(),
        Value::Object(
            labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
        ),
    );
    m.insert(
        "annotations".into(),
        json!({ AUTOUPDATE_ANNOTATION.0: AUTOUPDATE_ANNOTATION.1 }),
    );
    Value::Object(m)
}

fn cluster_role(name: &str, rules: Vec<Value>) -> Value {
    json!({ "apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": metadata(name, None, &[]), "rules": rules })
}

/// An aggregated role: its selector plus the rules aggregation would have produced.
fn aggregated_role(
    name: &str,
    labels: &[(&str, &str)],
    selector_label: &str,
    rules: Vec<Value>,
) -> Value {
    json!({
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": metadata(name, None, labels),
        "rules": rules,
        "aggregationRule": { "clusterRoleSelectors": [{ "matchLabels": { selector_label: "true" } }] }
    })
}

fn labeled_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({ "apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": metadata(name, None, labels), "rules": rules })
}

fn user(name: &str) -> Value {
    json!({ "kind": "User", "apiGroup": RBAC, "name": name })
}

fn group(name: &str) -> Value {
    json!({ "kind": "Group", "apiGroup": RBAC, "name": name })
}

fn service_account(namespace: &str, name: &str) -> Value {
    json!({ "kind": "ServiceAccount", "name": name, "namespace": namespace })
}

/// A binding of the same-named role; `subjects` is omitted when empty (omitempty upstream).
fn binding(
    kind: &str,
    role_kind: &str,
    name: &str,
    role: &str,
    namespace: Option<&str>,
    subjects: Vec<Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!(RBAC_API_VERSION));
    m.insert("kind".into(), json!(kind));
    m.insert("metadata".into(), metadata(name, namespace, &[]));
    if !subjects.is_empty() {
        m.insert("subjects".into(), Value::Array(subjects));
    }
    m.insert(
        "roleRef".into(),
        json!({ "apiGroup": RBAC, "kind": role_kind, "name": role }),
    );
    Value::Object(m)
}

fn cluster_binding(name: &str, subjects: Vec<Value>) -> Value {
    binding(
        "ClusterRoleBinding",
        "ClusterRole",
        name,
        name,
        None,
        subjects,
    )
}

/// What the ClusterRole aggregation controller does: concatenate the source roles' rules (in
/// source-role name order) dropping exact duplicates.
fn aggregate(sources: &[&[Value]]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for rules in sources {
        for r in rules.iter() {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[LEGACY],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[LEGACY],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // Read access to namespaces at namespace scope means reading *this* namespace.
        rule(READ, &[LEGACY], &["namespaces"]),
        rule(READ, &[LEGACY, EVENTS], &["events"]),
        rule(READ, &[DISCOVERY], &["endpointslices"]),
        rule(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            &[AUTOSCALING],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &[BATCH],
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            READ,
            &[POLICY],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &[NETWORKING],
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
        // DynamicResourceAllocation (GA, on).
        rule(
            READ,
            &[RESOURCE],
            &[
                "resourceclaims",
                "resourceclaims/status",
                "resourceclaimtemplates",
            ],
        ),
    ]
}

fn edit_rules() -> Vec<Value> {
    vec![
        // Read on escalating resources.
        rule(
            READ,
            &[LEGACY],
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[LEGACY], &["serviceaccounts"]),
        rule(
            WRITE,
            &[LEGACY],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], &[LEGACY], &["pods/eviction"]),
        rule(
            WRITE,
            &[LEGACY],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
            ],
        ),
        rule(&["create"], &[LEGACY], &["serviceaccounts/token"]),
        rule(WRITE, &[LEGACY, EVENTS], &["events"]),
        rule(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        rule(
            WRITE,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        rule(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
        rule(READ_WRITE, &[COORDINATION], &["leases"]),
        // DynamicResourceAllocation (GA, on).
        rule(
            WRITE,
            &[RESOURCE],
            &["resourceclaims", "resourceclaimtemplates"],
        ),
    ]
}

fn admin_extra_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &[AUTHZ], &["localsubjectaccessreviews"]),
        rule(READ_WRITE, &[RBAC], &["roles", "rolebindings"]),
    ]
}

fn node_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &[AUTHN], &["tokenreviews"]),
        rule(
            &["create"],
            &[AUTHZ],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        rule(READ, &[LEGACY], &["services"]),
        rule(&["create", "get", "list", "watch"], &[LEGACY], &["nodes"]),
        rule(&["update", "patch"], &[LEGACY], &["nodes/status"]),
        rule(&["update", "patch"], &[LEGACY], &["nodes"]),
        rule(
            &["create", "update", "patch"],
            &[LEGACY, EVENTS],
            &["events"],
        ),
        rule(READ, &[LEGACY], &["pods"]),
        rule(&["create", "delete"], &[LEGACY], &["pods"]),
        rule(&["update", "patch"], &[LEGACY], &["pods/status"]),
        rule(&["create"], &[LEGACY], &["pods/eviction"]),
        rule(
            &["get", "list", "watch"],
            &[LEGACY],
            &["secrets", "configmaps"],
        ),
        rule(
            &["get"],
            &[LEGACY],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[LEGACY], &["endpoints"]),
        rule(
            &["create", "get", "list", "watch"],
            &[CERTIFICATES],
            &["certificatesigningrequests"],
        ),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[COORDINATION],
            &["leases"],
        ),
        rule(&["get"], &[STORAGE], &["volumeattachments"]),
        rule(&["create"], &[LEGACY], &["serviceaccounts/token"]),
        rule(
            &["get", "update", "patch"],
            &[LEGACY],
            &["persistentvolumeclaims/status"],
        ),
        rule(&["get", "watch", "list"], &[STORAGE], &["csidrivers"]),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[STORAGE],
            &["csinodes"],
        ),
        rule(&["get", "list", "watch"], &[NODE], &["runtimeclasses"]),
        // DynamicResourceAllocation (GA, on).
        rule(&["get"], &[RESOURCE], &["resourceclaims"]),
        rule(&["deletecollection"], &[RESOURCE], &["resourceslices"]),
        // KubeletServiceAccountTokenForCredentialProviders (beta, on).
        rule(&["get"], &[LEGACY], &["serviceaccounts"]),
    ]
}

fn kube_scheduler_rules() -> Vec<Value> {
    vec![
        events_rule(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named(
            &["get", "update", "list", "watch"],
            &[COORDINATION],
            &["leases"],
            &["kube-scheduler"],
        ),
        rule(READ_WRITE, &[COORDINATION], &["leasecandidates"]),
        rule(READ, &[LEGACY], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[LEGACY], &["pods"]),
        rule(&["create"], &[LEGACY], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[LEGACY], &["pods/status"]),
        rule(READ, &[LEGACY], &["services", "replicationcontrollers"]),
        rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        rule(READ, &[APPS], &["statefulsets"]),
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(
            READ,
            &[LEGACY],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["create"], &[AUTHN], &["tokenreviews"]),
        rule(&["create"], &[AUTHZ], &["subjectaccessreviews"]),
        rule(READ, &[STORAGE], &["csinodes"]),
        rule(
            &["get", "list", "watch"],
            &[STORAGE],
            &["volumeattachments"],
        ),
        rule(READ, &[LEGACY], &["namespaces"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(READ, &[STORAGE], &["csistoragecapacities"]),
        // DynamicResourceAllocation (GA, on).
        rule(READ, &[RESOURCE], &["deviceclasses"]),
        rule(READ_UPDATE, &[RESOURCE], &["resourceclaims"]),
        rule(READ_UPDATE, &[RESOURCE], &["resourceclaims/status"]),
        rule(&["update"], &[LEGACY], &["pods/finalizers"]),
        rule(READ, &[RESOURCE], &["resourceslices"]),
    ]
}

/// The ClusterRoles of `policy.go`, in upstream's order.
fn policy_cluster_roles() -> Vec<Value> {
    let view = view_rules();
    let agg_edit = edit_rules();
    let agg_admin = admin_extra_rules();
    // "edit" aggregates system:aggregate-to-edit and view; "admin" aggregates edit and
    // system:aggregate-to-admin (source roles are taken in name order).
    let edit = aggregate(&[&agg_edit, &view]);
    let admin = aggregate(&[&edit, &agg_admin]);
    const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
    const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
    const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

    vec![
        cluster_role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            vec![urls(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:monitoring",
            vec![
                urls(
                    &["get"],
                    &[
                        "/metrics",
                        "/metrics/slis",
                        "/livez",
                        "/readyz",
                        "/healthz",
                        "/livez/*",
                        "/readyz/*",
                        "/healthz/*",
                    ],
                ),
                rule(&["get"], &[LEGACY], &["nodes/metrics"]),
            ],
        ),
        cluster_role(
            "system:basic-user",
            vec![
                rule(
                    &["create"],
                    &[AUTHZ],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(&["create"], &[AUTHN], &["selfsubjectreviews"]),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![urls(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        aggregated_role("admin", &[], TO_ADMIN, admin),
        aggregated_role("edit", &[(TO_ADMIN, "true")], TO_EDIT, edit),
        aggregated_role("view", &[(TO_EDIT, "true")], TO_VIEW, view.clone()),
        labeled_role(
            "system:aggregate-to-admin",
            &[(TO_ADMIN, "true")],
            agg_admin,
        ),
        labeled_role("system:aggregate-to-edit", &[(TO_EDIT, "true")], agg_edit),
        labeled_role("system:aggregate-to-view", &[(TO_VIEW, "true")], view),
        cluster_role(
            "system:heapster",
            vec![
                rule(READ, &[LEGACY], &["events", "pods", "nodes", "namespaces"]),
                rule(READ, &[EXTENSIONS], &["deployments"]),
            ],
        ),
        cluster_role("system:node", node_rules()),
        cluster_role(
            "system:node-problem-detector",
            vec![
                rule(&["get"], &[LEGACY], &["nodes"]),
                rule(&["patch"], &[LEGACY], &["nodes/status"]),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            vec![rule(
                &["create", "get", "list", "watch"],
                &[CERTIFICATES],
                &["certificatesigningrequests"],
            )],
        ),
        cluster_role(
            "system:auth-delegator",
            vec![
                rule(&["create"], &[AUTHN], &["tokenreviews"]),
                rule(&["create"], &[AUTHZ], &["subjectaccessreviews"]),
            ],
        ),
        cluster_role(
            "system:kube-aggregator",
            vec![rule(READ, &[LEGACY], &["services", "endpoints"])],
        ),
        cluster_role(
            "system:kube-controller-manager",
            vec![
                events_rule(),
                rule(&["create"], &[COORDINATION], &["leases"]),
                named(
                    &["get", "update"],
                    &[COORDINATION],
                    &["leases"],
                    &["kube-controller-manager"],
                ),
                rule(&["create"], &[LEGACY], &["secrets", "serviceaccounts"]),
                rule(&["delete"], &[LEGACY], &["secrets"]),
                rule(
                    &["get"],
                    &[LEGACY],
                    &["namespaces", "secrets", "serviceaccounts", "configmaps"],
                ),
                rule(&["update"], &[LEGACY], &["secrets", "serviceaccounts"]),
                rule(&["create"], &[AUTHN], &["tokenreviews"]),
                rule(&["create"], &[AUTHZ], &["subjectaccessreviews"]),
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["create"], &[LEGACY], &["serviceaccounts/token"]),
            ],
        ),
        cluster_role(
            "system:kube-dns",
            vec![rule(
                &["list", "watch"],
                &[LEGACY],
                &["endpoints", "services"],
            )],
        ),
        cluster_role(
            "system:persistent-volume-provisioner",
            vec![
                rule(
                    &["get", "list", "watch", "create", "delete"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                rule(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(&["watch"], &[LEGACY], &["events"]),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![rule(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![rule(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        cluster_role(
            "system:volume-scheduler",
            vec![
                rule(READ_UPDATE, &[LEGACY], &["persistentvolumes"]),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(READ_UPDATE, &[LEGACY], &["persistentvolumeclaims"]),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:legacy-unknown-approver",
            vec![named(
                &["approve"],
                &[CERTIFICATES],
                &["signers"],
                &["kubernetes.io/legacy-unknown"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:kubelet-serving-approver",
            vec![named(
                &["approve"],
                &[CERTIFICATES],
                &["signers"],
                &["kubernetes.io/kubelet-serving"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            vec![named(
                &["approve"],
                &[CERTIFICATES],
                &["signers"],
                &["kubernetes.io/kube-apiserver-client"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            vec![named(
                &["approve"],
                &[CERTIFICATES],
                &["signers"],
                &["kubernetes.io/kube-apiserver-client-kubelet"],
            )],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            vec![urls(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            vec![
                rule(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                rule(&["proxy"], &[LEGACY], &["nodes"]),
                rule(
                    &["*"],
                    &[LEGACY],
                    &["nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log"],
                ),
                // KubeletFineGrainedAuthz (beta, on).
                rule(
                    &["*"],
                    &[LEGACY],
                    &["nodes/pods", "nodes/healthz", "nodes/configz"],
                ),
            ],
        ),
        cluster_role(
            "system:node-proxier",
            vec![
                rule(&["list", "watch"], &[LEGACY], &["services", "endpoints"]),
                rule(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                events_rule(),
                // MultiCIDRServiceAllocator (GA).
                rule(&["list", "watch"], &[NETWORKING], &["servicecidrs"]),
                rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
            ],
        ),
        cluster_role("system:kube-scheduler", kube_scheduler_rules()),
    ]
}

/// The `system:controller:*` roles of `controller_policy.go` (name suffix, rules), in name
/// order; each is bound to the kube-system ServiceAccount of the same suffix.
fn controller_roles() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "attachdetach-controller",
            vec![
                rule(
                    &["list", "watch"],
                    &[LEGACY],
                    &["persistentvolumes", "persistentvolumeclaims"],
                ),
                rule(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                rule(&["patch", "update"], &[LEGACY], &["nodes/status"]),
                rule(&["list", "watch"], &[LEGACY], &["pods"]),
                events_rule(),
                rule(
                    &["get", "create", "delete", "list", "watch"],
                    &[STORAGE],
                    &["volumeattachments"],
                ),
                rule(&["get", "watch", "list"], &[STORAGE], &["csidrivers"]),
                rule(&["get", "watch", "list"], &[STORAGE], &["csinodes"]),
            ],
        ),
        (
            "certificate-controller",
            vec![
                rule(
                    &["get", "list", "watch", "delete"],
                    &[CERTIFICATES],
                    &["certificatesigningrequests"],
                ),
                rule(
                    &["update"],
                    &[CERTIFICATES],
                    &[
                        "certificatesigningrequests/status",
                        "certificatesigningrequests/approval",
                    ],
                ),
                named(
                    &["approve"],
                    &[CERTIFICATES],
                    &["signers"],
                    &["kubernetes.io/kube-apiserver-client-kubelet"],
                ),
                named(
                    &["sign"],
                    &[CERTIFICATES],
                    &["signers"],
                    &[
                        "kubernetes.io/legacy-unknown",
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                    ],
                ),
                rule(&["create"], &[AUTHZ], &["subjectaccessreviews"]),
                events_rule(),
            ],
        ),
        (
            "clusterrole-aggregation-controller",
            vec![rule(
                &["escalate", "get", "list", "watch", "update", "patch"],
                &[RBAC],
                &["clusterroles"],
            )],
        ),
        (
            "cronjob-controller",
            vec![
                rule(&["get", "list", "watch", "update"], &[BATCH], &["cronjobs"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "delete", "patch",
                    ],
                    &[BATCH],
                    &["jobs"],
                ),
                rule(&["update"], &[BATCH], &["cronjobs/status"]),
                rule(&["update"], &[BATCH], &["cronjobs/finalizers"]),
                rule(&["list", "watch", "delete"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "daemon-set-controller",
            vec![
                rule(
                    &["get", "list", "watch"],
                    &[EXTENSIONS, APPS],
                    &["daemonsets"],
                ),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/status"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/finalizers"]),
                rule(&["list", "watch"], &[LEGACY], &["nodes"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[LEGACY],
                    &["pods"],
                ),
                rule(&["create"], &[LEGACY], &["pods/binding"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "delete", "update", "patch",
                    ],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                events_rule(),
            ],
        ),
        (
            "deployment-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[EXTENSIONS, APPS],
                    &["deployments"],
                ),
                rule(&["update"], &[EXTENSIONS, APPS], &["deployments/status"]),
                rule(
                    &["update"],
                    &[EXTENSIONS, APPS],
                    &["deployments/finalizers"],
                ),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                // "update" pods is kept upstream for kubernetes/kubernetes#36897.
                rule(&["get", "list", "watch", "update"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "disruption-controller",
            vec![
                rule(
                    &["get", "list", "watch"],
                    &[EXTENSIONS, APPS],
                    &["deployments"],
                ),
                rule(
                    &["get", "list", "watch"],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                rule(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["replicationcontrollers"],
                ),
                rule(
                    &["get", "list", "watch"],
                    &[POLICY],
                    &["poddisruptionbudgets"],
                ),
                rule(&["get", "list", "watch"], &[APPS], &["statefulsets"]),
                rule(&["update"], &[POLICY], &["poddisruptionbudgets/status"]),
                rule(&["patch", "update"], &[LEGACY], &["pods/status"]),
                rule(&["get"], &["*"], &["*/scale"]),
                events_rule(),
            ],
        ),
        (
            "endpoint-controller",
            vec![
                rule(&["get", "list", "watch"], &[LEGACY], &["services", "pods"]),
                rule(
                    &["get", "list", "watch", "create", "update", "delete"],
                    &[LEGACY],
                    &["endpoints"],
                ),
                rule(&["create"], &[LEGACY], &["endpoints/restricted"]),
                events_rule(),
            ],
        ),
        (
            "endpointslice-controller",
            vec![
                rule(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["services", "pods", "nodes"],
                ),
                rule(&["update"], &[LEGACY], &["services/finalizers"]),
                rule(
                    &["get", "list", "watch", "create", "update", "delete"],
                    &[DISCOVERY],
                    &["endpointslices"],
                ),
                events_rule(),
            ],
        ),
        (
            "endpointslicemirroring-controller",
            vec![
                rule(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["services", "endpoints"],
                ),
                rule(&["update"], &[LEGACY], &["services/finalizers"]),
                rule(&["update"], &[LEGACY], &["endpoints/finalizers"]),
                rule(
                    &["get", "list", "watch", "create", "update", "delete"],
                    &[DISCOVERY],
                    &["endpointslices"],
                ),
                events_rule(),
            ],
        ),
        (
            "ephemeral-volume-controller",
            vec![
                rule(&["get", "list", "watch"], &[LEGACY], &["pods"]),
                rule(&["update"], &[LEGACY], &["pods/finalizers"]),
                rule(
                    &["get", "list", "watch", "create"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                events_rule(),
            ],
        ),
        (
            "expand-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                rule(
                    &["update", "patch"],
                    &[LEGACY],
                    &["persistentvolumeclaims/status"],
                ),
                rule(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                events_rule(),
            ],
        ),
        (
            "generic-garbage-collector",
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update", "delete"],
                    &["*"],
                    &["*"],
                ),
                events_rule(),
            ],
        ),
        (
            "horizontal-pod-autoscaler",
            vec![
                rule(
                    &["get", "list", "watch"],
                    &[AUTOSCALING],
                    &["horizontalpodautoscalers"],
                ),
                rule(
                    &["update"],
                    &[AUTOSCALING],
                    &["horizontalpodautoscalers/status"],
                ),
                rule(&["get", "update"], &["*"], &["*/scale"]),
                rule(&["list", "watch"], &[LEGACY], &["pods"]),
                rule(&["list", "watch"], &[RES_METRICS], &["pods"]),
                rule(&["get", "list", "watch"], &[CUSTOM_METRICS], &["*"]),
                rule(&["get", "list", "watch"], &[EXTERNAL_METRICS], &["*"]),
                events_rule(),
            ],
        ),
        (
            "job-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[BATCH],
                    &["jobs"],
                ),
                rule(&["update"], &[BATCH], &["jobs/status"]),
                rule(&["update"], &[BATCH], &["jobs/finalizers"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[LEGACY],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        (
            "legacy-service-account-token-cleaner",
            vec![
                named(
                    &["get"],
                    &[LEGACY],
                    &["configmaps"],
                    &["kube-apiserver-legacy-service-account-token-tracking"],
                ),
                rule(&["patch", "delete"], &[LEGACY], &["secrets"]),
            ],
        ),
        (
            "namespace-controller",
            vec![
                rule(
                    &["get", "list", "watch", "delete"],
                    &[LEGACY],
                    &["namespaces"],
                ),
                rule(
                    &["update"],
                    &[LEGACY],
                    &["namespaces/finalize", "namespaces/status"],
                ),
                rule(
                    &["get", "list", "watch", "delete", "deletecollection"],
                    &["*"],
                    &["*"],
                ),
            ],
        ),
        (
            "node-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "delete", "patch"],
                    &[LEGACY],
                    &["nodes"],
                ),
                rule(&["patch", "update"], &[LEGACY], &["nodes/status"]),
                rule(&["patch", "update"], &[LEGACY], &["pods/status"]),
                rule(&["list", "watch", "get", "delete"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "persistent-volume-binder",
            vec![
                rule(
                    &["get", "list", "watch", "update", "create", "delete"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                rule(&["update"], &[LEGACY], &["persistentvolumes/status"]),
                rule(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                rule(&["update"], &[LEGACY], &["persistentvolumeclaims/status"]),
                rule(
                    &["list", "watch", "get", "create", "delete"],
                    &[LEGACY],
                    &["pods"],
                ),
                rule(&["get", "list", "watch"], &[STORAGE], &["storageclasses"]),
                rule(&["list", "watch"], &[LEGACY], &["nodes"]),
                events_rule(),
                // recyclerClient.WatchPod
                rule(&["watch"], &[LEGACY], &["events"]),
            ],
        ),
        (
            "pod-garbage-collector",
            vec![
                rule(&["list", "watch", "delete"], &[LEGACY], &["pods"]),
                rule(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                rule(&["patch"], &[LEGACY], &["pods/status"]),
            ],
        ),
        (
            "podcheckpoint-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[CHECKPOINT],
                    &["podcheckpoints"],
                ),
                rule(
                    &["update", "patch"],
                    &[CHECKPOINT],
                    &["podcheckpoints/status"],
                ),
                rule(&["get", "list", "watch"], &[LEGACY], &["pods"]),
                rule(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                rule(&["get", "create"], &[LEGACY], &["nodes/proxy"]),
                rule(&["create"], &[LEGACY], &["nodes/checkpointpod"]),
            ],
        ),
        (
            "pv-protection-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                events_rule(),
            ],
        ),
        (
            "pvc-protection-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                rule(&["list", "watch", "get"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                rule(&["update"], &[APPS, EXTENSIONS], &["replicasets/status"]),
                rule(
                    &["update"],
                    &[APPS, EXTENSIONS],
                    &["replicasets/finalizers"],
                ),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    &[LEGACY],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        (
            "replication-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["replicationcontrollers"],
                ),
                rule(&["update"], &[LEGACY], &["replicationcontrollers/status"]),
                rule(
                    &["update"],
                    &[LEGACY],
                    &["replicationcontrollers/finalizers"],
                ),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    &[LEGACY],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        (
            "resource-claim-controller",
            vec![
                rule(&["get", "list", "watch"], &[LEGACY], &["pods"]),
                rule(&["update"], &[LEGACY], &["pods/finalizers"]),
                rule(
                    &["get", "list", "watch", "create", "delete"],
                    &[RESOURCE],
                    &["resourceclaims"],
                ),
                rule(
                    &["update", "patch"],
                    &[RESOURCE],
                    &["resourceclaims", "resourceclaims/status"],
                ),
                rule(&["update", "patch"], &[LEGACY], &["pods/status"]),
                events_rule(),
            ],
        ),
        (
            "resourcequota-controller",
            vec![
                // Quota can count anything, so it needs full viewing powers.
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["update"], &[LEGACY], &["resourcequotas/status"]),
                events_rule(),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![
                rule(&["create", "update"], &[LEGACY], &["configmaps"]),
                events_rule(),
            ],
        ),
        (
            "route-controller",
            vec![
                rule(&["list", "watch"], &[LEGACY], &["nodes"]),
                rule(&["patch"], &[LEGACY], &["nodes/status"]),
                events_rule(),
            ],
        ),
        (
            "selinux-warning-controller",
            vec![
                events_rule(),
                rule(&["get", "list", "watch"], &[LEGACY], &["persistentvolumes"]),
                rule(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                rule(&["get", "list", "watch"], &[LEGACY], &["pods"]),
                rule(&["get", "list", "watch"], &[STORAGE], &["csidrivers"]),
            ],
        ),
        (
            "service-account-controller",
            vec![
                rule(&["create"], &[LEGACY], &["serviceaccounts"]),
                events_rule(),
            ],
        ),
        (
            "service-cidrs-controller",
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update"],
                    &[NETWORKING],
                    &["servicecidrs"],
                ),
                rule(
                    &["patch", "update"],
                    &[NETWORKING],
                    &["servicecidrs/finalizers"],
                ),
                rule(
                    &["patch", "update"],
                    &[NETWORKING],
                    &["servicecidrs/status"],
                ),
                rule(&["get", "list", "watch"], &[NETWORKING], &["ipaddresses"]),
                events_rule(),
            ],
        ),
        (
            "service-controller",
            vec![
                rule(&["get", "list", "watch"], &[LEGACY], &["services"]),
                rule(&["patch", "update"], &[LEGACY], &["services/status"]),
                rule(&["list", "watch"], &[LEGACY], &["nodes"]),
                events_rule(),
            ],
        ),
        (
            "statefulset-controller",
            vec![
                rule(&["list", "watch"], &[LEGACY], &["pods"]),
                rule(&["get", "list", "watch"], &[APPS], &["statefulsets"]),
                rule(&["update"], &[APPS], &["statefulsets/status"]),
                rule(&["update"], &[APPS], &["statefulsets/finalizers"]),
                rule(
                    &["get", "create", "delete", "update", "patch"],
                    &[LEGACY],
                    &["pods"],
                ),
                rule(
                    &[
                        "get", "create", "delete", "update", "patch", "list", "watch",
                    ],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                rule(
                    &["get", "create", "list", "watch"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                rule(
                    &["update", "delete"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                rule(&["update"], &[LEGACY], &["pods/finalizers"]),
                events_rule(),
            ],
        ),
        (
            "ttl-after-finished-controller",
            vec![
                rule(&["get", "list", "watch", "delete"], &[BATCH], &["jobs"]),
                events_rule(),
            ],
        ),
        (
            "ttl-controller",
            vec![
                rule(&["update", "patch", "list", "watch"], &[LEGACY], &["nodes"]),
                events_rule(),
            ],
        ),
        (
            "validatingadmissionpolicy-status-controller",
            vec![
                rule(
                    &["get", "list", "watch"],
                    &[ADMISSION],
                    &["validatingadmissionpolicies"],
                ),
                rule(
                    &["get", "patch", "update"],
                    &[ADMISSION],
                    &["validatingadmissionpolicies/status"],
                ),
                events_rule(),
            ],
        ),
        (
            "volumeattributesclass-protection-controller",
            vec![
                rule(
                    &["list", "watch", "get"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                rule(&["list", "watch", "get"], &[LEGACY], &["persistentvolumes"]),
                rule(
                    &["get", "list", "watch", "update"],
                    &[STORAGE],
                    &["volumeattributesclasses"],
                ),
                events_rule(),
            ],
        ),
    ]
}

/// All bootstrap ClusterRoles: the `policy.go` roles, then the `system:controller:*` roles.
pub fn bootstrap_cluster_roles() -> Vec<Value> {
    let mut roles = policy_cluster_roles();
    roles.extend(
        controller_roles()
            .into_iter()
            .map(|(suffix, rules)| cluster_role(&format!("{SA_ROLE_PREFIX}{suffix}"), rules)),
    );
    roles
}

/// All bootstrap ClusterRoleBindings.
///
/// As upstream, `system:node` is bound to no one (the Node authorizer grants kubelets their
/// access); it exists so that reconciliation can strip the old `system:nodes` subject.
pub fn bootstrap_cluster_role_bindings() -> Vec<Value> {
    let mut bindings = vec![
        cluster_binding("cluster-admin", vec![group("system:masters")]),
        cluster_binding("system:monitoring", vec![group("system:monitoring")]),
        cluster_binding("system:discovery", vec![group("system:authenticated")]),
        cluster_binding("system:basic-user", vec![group("system:authenticated")]),
        cluster_binding(
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        // ketch-node replaces kube-proxy with the node's own credentials.
        cluster_binding(
            "system:node-proxier",
            vec![user("system:kube-proxy"), group("system:nodes")],
        ),
        cluster_binding(
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        cluster_binding(
            "system:kube-dns",
            vec![service_account("kube-system", "kube-dns")],
        ),
        cluster_binding("system:kube-scheduler", vec![user("system:kube-scheduler")]),
        cluster_binding(
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        cluster_binding("system:node", vec![]),
        cluster_binding(
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
    ];
    bindings.extend(controller_roles().into_iter().map(|(suffix, _)| {
        cluster_binding(
            &format!("{SA_ROLE_PREFIX}{suffix}"),
            vec![service_account("kube-system", suffix)],
        )
    }));
    bindings
}

/// The cluster-scoped objects kube-apiserver creates at start: every bootstrap ClusterRole,
/// then every ClusterRoleBinding (so roles exist before the bindings naming them).
pub fn bootstrap_objects() -> Vec<Value> {
    let mut objs = bootstrap_cluster_roles();
    objs.extend(bootstrap_cluster_role_bindings());
    objs
}

fn namespaced_role(namespace: &str, name: &str, rules: Vec<Value>) -> Value {
    json!({ "apiVersion": RBAC_API_VERSION, "kind": "Role", "metadata": metadata(name, Some(namespace), &[]), "rules": rules })
}

fn role_binding(namespace: &str, name: &str, role: &str, subjects: Vec<Value>) -> Value {
    binding("RoleBinding", "Role", name, role, Some(namespace), subjects)
}

/// The Roles and RoleBindings of `namespace_policy.go` (in `kube-system` and `kube-public`;
/// the namespaces must exist before these are stored).
pub fn bootstrap_namespaced_objects() -> Vec<Value> {
    const KS: &str = "kube-system";
    const KP: &str = "kube-public";
    let leader_locking = || {
        vec![
            rule(
                &["watch", "list", "get", "create", "update"],
                &[COORDINATION],
                &["leases"],
            ),
            rule(
                &["watch", "list", "get", "create", "update"],
                &[COORDINATION],
                &["leasecandidates"],
            ),
        ]
    };
    vec![
        namespaced_role(
            KP,
            "system:controller:bootstrap-signer",
            vec![
                rule(READ, &[LEGACY], &["configmaps"]),
                named(&["update"], &[LEGACY], &["configmaps"], &["cluster-info"]),
                events_rule(),
            ],
        ),
        namespaced_role(
            KS,
            "extension-apiserver-authentication-reader",
            vec![named(
                READ,
                &[LEGACY],
                &["configmaps"],
                &["extension-apiserver-authentication"],
            )],
        ),
        namespaced_role(
            KS,
            "system::leader-locking-kube-controller-manager",
            leader_locking(),
        ),
        namespaced_role(
            KS,
            "system::leader-locking-kube-scheduler",
            leader_locking(),
        ),
        namespaced_role(
            KS,
            "system:controller:bootstrap-signer",
            vec![rule(READ, &[LEGACY], &["secrets"])],
        ),
        namespaced_role(
            KS,
            "system:controller:cloud-provider",
            vec![rule(
                &["create", "get", "list", "watch"],
                &[LEGACY],
                &["configmaps"],
            )],
        ),
        namespaced_role(
            KS,
            "system:controller:token-cleaner",
            vec![
                rule(&["delete", "get", "list", "watch"], &[LEGACY], &["secrets"]),
                events_rule(),
            ],
        ),
        role_binding(
            KP,
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![service_account(KS, "bootstrap-signer")],
        ),
        role_binding(
            KS,
            "system::extension-apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            vec![
                user("system:kube-controller-manager"),
                user("system:kube-scheduler"),
            ],
        ),
        role_binding(
            KS,
            "system::leader-locking-kube-controller-manager",
            "system::leader-locking-kube-controller-manager",
            vec![
                user("system:kube-controller-manager"),
                service_account(KS, "kube-controller-manager"),
                service_account(KS, "leader-election-controller"),
            ],
        ),
        role_binding(
            KS,
            "system::leader-locking-kube-scheduler",
            "system::leader-locking-kube-scheduler",
            vec![
                user("system:kube-scheduler"),
                service_account(KS, "kube-scheduler"),
            ],
        ),
        role_binding(
            KS,
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![service_account(KS, "bootstrap-signer")],
        ),
        role_binding(
            KS,
            "system:controller:cloud-provider",
            "system:controller:cloud-provider",
            vec![service_account(KS, "cloud-provider")],
        ),
        role_binding(
            KS,
            "system:controller:token-cleaner",
            "system:controller:token-cleaner",
            vec![service_account(KS, "token-cleaner")],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rbac::{Attributes, Decision, RbacIndex, UserInfo, covers};

    fn idx() -> RbacIndex {
        let mut objs = bootstrap_objects();
        objs.extend(bootstrap_namespaced_objects());
        RbacIndex::from_objects(objs.iter()).unwrap()
    }

    fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} missing"))
    }

    fn rules_of(objs: &[Value], name: &str) -> Vec<Value> {
        find(objs, "ClusterRole", name)["rules"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn authenticated(name: &str) -> UserInfo {
        UserInfo::new(name, &["system:authenticated"])
    }

    fn anonymous() -> UserInfo {
        UserInfo::new("system:anonymous", &["system:unauthenticated"])
    }

    fn get_url(idx: &RbacIndex, u: &UserInfo, path: &str) -> bool {
        idx.authorize(&Attributes::non_resource(u.clone(), "get", path))
            .is_allowed()
    }

    #[allow(clippy::too_many_arguments)]
    fn can(
        idx: &RbacIndex,
        u: &UserInfo,
        verb: &str,
        ns: &str,
        group: &str,
        resource: &str,
        sub: &str,
        name: &str,
    ) -> bool {
        idx.authorize(&Attributes::resource(
            u.clone(),
            verb,
            ns,
            group,
            resource,
            sub,
            name,
        ))
        .is_allowed()
    }

    #[test]
    fn expected_roles_and_bindings_exist() {
        let objs = bootstrap_objects();
        for name in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
            "system:monitoring",
            "system:node",
            "system:node-proxier",
            "system:kube-scheduler",
            "system:kube-controller-manager",
            "system:volume-scheduler",
            "system:controller:deployment-controller",
            "system:controller:replicaset-controller",
            "system:controller:endpointslice-controller",
            "system:controller:endpoint-controller",
            "system:controller:namespace-controller",
            "system:controller:node-controller",
            "system:controller:service-account-controller",
            "system:controller:generic-garbage-collector",
            "system:controller:job-controller",
            "system:controller:cronjob-controller",
            "system:controller:statefulset-controller",
            "system:controller:daemon-set-controller",
            "system:controller:horizontal-pod-autoscaler",
            "system:controller:disruption-controller",
            "system:controller:ttl-controller",
            "system:controller:ttl-after-finished-controller",
        ] {
            find(&objs, "ClusterRole", name);
        }
        for name in [
            "cluster-admin",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
            "system:node",
            "system:kube-scheduler",
            "system:kube-controller-manager",
            "system:controller:deployment-controller",
        ] {
            find(&objs, "ClusterRoleBinding", name);
        }
        assert_eq!(
            objs.iter().filter(|o| o["kind"] == "ClusterRole").count(),
            31 + 38
        );
        assert_eq!(
            objs.iter()
                .filter(|o| o["kind"] == "ClusterRoleBinding")
                .count(),
            12 + 38
        );
    }

    #[test]
    fn names_are_unique_and_every_object_is_labelled_and_annotated() {
        let mut objs = bootstrap_objects();
        objs.extend(bootstrap_namespaced_objects());
        let mut seen = BTreeSet::new();
        for o in &objs {
            let key = format!(
                "{}/{}/{}",
                o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]
            );
            assert!(seen.insert(key.clone()), "duplicate {key}");
            assert_eq!(o["apiVersion"], "rbac.authorization.k8s.io/v1");
            assert_eq!(
                o["metadata"]["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults",
                "{key}"
            );
            assert_eq!(
                o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"], "true",
                "{key}"
            );
        }
    }

    #[test]
    fn every_binding_names_an_existing_role() {
        let mut objs = bootstrap_objects();
        objs.extend(bootstrap_namespaced_objects());
        for b in objs
            .iter()
            .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
        {
            let role_kind = b["roleRef"]["kind"].as_str().unwrap();
            let role = b["roleRef"]["name"].as_str().unwrap();
            let exists = objs.iter().any(|o| {
                o["kind"] == role_kind
                    && o["metadata"]["name"] == role
                    && (role_kind == "ClusterRole"
                        || o["metadata"]["namespace"] == b["metadata"]["namespace"])
            });
            assert!(exists, "{} -> {role_kind} {role}", b["metadata"]["name"]);
            assert_eq!(b["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        }
    }

    #[test]
    fn wire_shape_of_discovery_role_and_binding() {
        let objs = bootstrap_objects();
        assert_eq!(
            serde_json::to_string(find(&objs, "ClusterRole", "system:public-info-viewer")).unwrap(),
            r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"system:public-info-viewer","labels":{"kubernetes.io/bootstrapping":"rbac-defaults"},"annotations":{"rbac.authorization.kubernetes.io/autoupdate":"true"}},"rules":[{"verbs":["get"],"nonResourceURLs":["/healthz","/livez","/readyz","/version","/version/"]}]}"#
        );
        assert_eq!(
            serde_json::to_string(find(
                &objs,
                "ClusterRoleBinding",
                "system:public-info-viewer"
            ))
            .unwrap(),
            r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"system:public-info-viewer","labels":{"kubernetes.io/bootstrapping":"rbac-defaults"},"annotations":{"rbac.authorization.kubernetes.io/autoupdate":"true"}},"subjects":[{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"system:authenticated"},{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"system:unauthenticated"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:public-info-viewer"}}"#
        );
        assert_eq!(
            find(
                &objs,
                "ClusterRoleBinding",
                "system:controller:job-controller"
            )["subjects"],
            json!([{ "kind": "ServiceAccount", "name": "job-controller", "namespace": "kube-system" }])
        );
        // system:node is bound to nobody.
        assert!(
            find(&objs, "ClusterRoleBinding", "system:node")
                .get("subjects")
                .is_none()
        );
    }

    #[test]
    fn rule_lists_are_sorted_like_upstream() {
        let objs = bootstrap_objects();
        assert_eq!(
            rules_of(&objs, "system:discovery"),
            vec![json!({ "verbs": ["get"], "nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"
            ] })]
        );
        assert_eq!(
            rules_of(&objs, "system:controller:deployment-controller")[0],
            json!({ "verbs": ["get", "list", "update", "watch"], "apiGroups": ["apps", "extensions"], "resources": ["deployments"] })
        );
        assert_eq!(
            rules_of(&objs, "system:kube-controller-manager")[0],
            json!({ "verbs": ["create", "patch", "update"], "apiGroups": ["", "events.k8s.io"], "resources": ["events"] })
        );
    }

    #[test]
    fn authenticated_users_can_discover() {
        let idx = idx();
        let u = authenticated("alice");
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/version",
            "/version/",
            "/healthz",
            "/livez",
            "/readyz",
            "/openapi/v2",
            "/openapi/v3/apis/apps/v1",
        ] {
            assert!(get_url(&idx, &u, path), "{path}");
        }
        assert!(!get_url(&idx, &u, "/metrics"));
        assert!(!get_url(&idx, &u, "/healthz/etcd"));
        assert!(!get_url(&idx, &u, "/.well-known/openid-configuration"));
        assert!(
            !idx.authorize(&Attributes::non_resource(u.clone(), "post", "/api"))
                .is_allowed()
        );
        assert_eq!(
            idx.authorize(&Attributes::non_resource(u.clone(), "get", "/api")),
            Decision::Allow {
                reason: r#"RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated""#.into()
            }
        );
        assert_eq!(
            idx.authorize(&Attributes::non_resource(u.clone(), "get", "/version"))
                .reason(),
            r#"RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated""#
        );
        // basic-user: self reviews, nothing else.
        assert!(can(
            &idx,
            &u,
            "create",
            "",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &u,
            "create",
            "",
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &u,
            "create",
            "",
            "authentication.k8s.io",
            "selfsubjectreviews",
            "",
            ""
        ));
        assert!(!can(
            &idx,
            &u,
            "create",
            "",
            "authorization.k8s.io",
            "subjectaccessreviews",
            "",
            ""
        ));
        assert!(!can(&idx, &u, "list", "default", "", "pods", "", ""));
        assert!(!can(&idx, &u, "list", "", "", "namespaces", "", ""));
    }

    #[test]
    fn anonymous_users_see_only_public_info() {
        let idx = idx();
        let anon = anonymous();
        for path in ["/version", "/version/", "/healthz", "/livez", "/readyz"] {
            assert!(get_url(&idx, &anon, path), "{path}");
        }
        assert_eq!(
            idx.authorize(&Attributes::non_resource(anon.clone(), "get", "/version"))
                .reason(),
            r#"RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated""#
        );
        for path in ["/api", "/apis", "/openapi/v2", "/metrics"] {
            assert!(!get_url(&idx, &anon, path), "{path}");
        }
        assert!(!can(
            &idx,
            &anon,
            "create",
            "",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            ""
        ));
    }

    #[test]
    fn monitoring_and_issuer_discovery_groups() {
        let idx = idx();
        let prom = UserInfo::new("prom", &["system:monitoring", "system:authenticated"]);
        assert!(get_url(&idx, &prom, "/metrics"));
        assert!(get_url(&idx, &prom, "/healthz/etcd"));
        assert!(can(&idx, &prom, "get", "", "", "nodes", "metrics", "n1"));
        let sa = UserInfo::new(
            "system:serviceaccount:default:default",
            &["system:serviceaccounts", "system:authenticated"],
        );
        assert!(get_url(&idx, &sa, "/.well-known/openid-configuration"));
        assert!(get_url(&idx, &sa, "/openid/v1/jwks"));
    }

    fn bind_in(idx: &mut RbacIndex, ns: &str, role: &str, user: &str) {
        idx.upsert(
            "RoleBinding",
            &json!({
                "metadata": { "name": format!("{user}-{role}"), "namespace": ns },
                "subjects": [{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user }],
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role }
            }),
        )
        .unwrap();
    }

    #[test]
    fn namespaced_view_binding() {
        let mut idx = idx();
        bind_in(&mut idx, "team-a", "view", "viewer");
        let u = authenticated("viewer");
        for verb in ["get", "list", "watch"] {
            assert!(can(&idx, &u, verb, "team-a", "", "pods", "", ""), "{verb}");
        }
        assert_eq!(
            idx.authorize(&Attributes::resource(
                u.clone(),
                "list",
                "team-a",
                "",
                "pods",
                "",
                ""
            ))
            .reason(),
            r#"RBAC: allowed by RoleBinding "viewer-view/team-a" of ClusterRole "view" to User "viewer""#
        );
        assert!(can(&idx, &u, "get", "team-a", "", "pods", "log", "p"));
        assert!(can(
            &idx,
            &u,
            "list",
            "team-a",
            "apps",
            "deployments",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &u,
            "get",
            "team-a",
            "apps",
            "deployments",
            "scale",
            "d"
        ));
        assert!(can(
            &idx,
            &u,
            "list",
            "team-a",
            "events.k8s.io",
            "events",
            "",
            ""
        ));
        assert!(can(&idx, &u, "list", "team-a", "", "events", "", ""));
        assert!(can(
            &idx,
            &u,
            "get",
            "team-a",
            "",
            "namespaces",
            "",
            "team-a"
        ));
        assert!(can(
            &idx,
            &u,
            "list",
            "team-a",
            "resource.k8s.io",
            "resourceclaims",
            "",
            ""
        ));
        // Not in another namespace, not cluster-wide.
        assert!(!can(&idx, &u, "get", "team-b", "", "pods", "", "p"));
        assert!(!can(&idx, &u, "list", "", "", "pods", "", ""));
        // Read-only, and no secrets or escalating subresources.
        assert!(!can(&idx, &u, "create", "team-a", "", "pods", "", ""));
        assert!(!can(&idx, &u, "delete", "team-a", "", "pods", "", "p"));
        assert!(!can(&idx, &u, "get", "team-a", "", "secrets", "", "s"));
        assert!(!can(&idx, &u, "list", "team-a", "", "secrets", "", ""));
        assert!(!can(&idx, &u, "create", "team-a", "", "pods", "exec", "p"));
        assert!(!can(&idx, &u, "get", "team-a", "", "pods", "exec", "p"));
        assert!(!can(
            &idx,
            &u,
            "list",
            "team-a",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            ""
        ));
    }

    #[test]
    fn namespaced_edit_and_admin_bindings() {
        let mut idx = idx();
        bind_in(&mut idx, "team-a", "edit", "editor");
        bind_in(&mut idx, "team-a", "admin", "boss");
        let editor = authenticated("editor");
        assert!(can(&idx, &editor, "create", "team-a", "", "pods", "", ""));
        assert!(can(
            &idx, &editor, "create", "team-a", "", "pods", "exec", "p"
        ));
        assert!(can(&idx, &editor, "get", "team-a", "", "secrets", "", "s"));
        assert!(can(
            &idx, &editor, "delete", "team-a", "", "secrets", "", "s"
        ));
        assert!(can(
            &idx,
            &editor,
            "patch",
            "team-a",
            "apps",
            "deployments",
            "",
            "d"
        ));
        assert!(can(
            &idx,
            &editor,
            "update",
            "team-a",
            "apps",
            "deployments",
            "scale",
            "d"
        ));
        assert!(can(
            &idx, &editor, "create", "team-a", "batch", "cronjobs", "", ""
        ));
        assert!(can(
            &idx,
            &editor,
            "create",
            "team-a",
            "",
            "serviceaccounts",
            "token",
            "sa"
        ));
        assert!(can(
            &idx,
            &editor,
            "impersonate",
            "team-a",
            "",
            "serviceaccounts",
            "",
            "sa"
        ));
        assert!(can(
            &idx,
            &editor,
            "update",
            "team-a",
            "coordination.k8s.io",
            "leases",
            "",
            "l"
        ));
        // edit writes neither quota nor endpoints nor RBAC.
        assert!(!can(
            &idx,
            &editor,
            "update",
            "team-a",
            "",
            "resourcequotas",
            "",
            "q"
        ));
        assert!(!can(
            &idx,
            &editor,
            "create",
            "team-a",
            "",
            "endpoints",
            "",
            ""
        ));
        assert!(!can(
            &idx,
            &editor,
            "create",
            "team-a",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            ""
        ));
        let boss = authenticated("boss");
        assert!(can(
            &idx,
            &boss,
            "create",
            "team-a",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &boss,
            "delete",
            "team-a",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            "rb"
        ));
        assert!(can(
            &idx,
            &boss,
            "create",
            "team-a",
            "authorization.k8s.io",
            "localsubjectaccessreviews",
            "",
            ""
        ));
        assert!(can(&idx, &boss, "get", "team-a", "", "pods", "log", "p"));
        assert!(!can(&idx, &boss, "create", "team-b", "", "pods", "", ""));
    }

    #[test]
    fn aggregated_roles_nest_view_in_edit_in_admin() {
        let objs = bootstrap_objects();
        let view = rules_of(&objs, "view");
        let edit = rules_of(&objs, "edit");
        let admin = rules_of(&objs, "admin");
        assert_eq!(view, rules_of(&objs, "system:aggregate-to-view"));
        assert_eq!(view.len(), 12);
        assert_eq!(edit.len(), 15 + 12);
        assert_eq!(admin.len(), 15 + 12 + 2);
        assert_eq!(covers(&edit, &view), Ok(()));
        assert_eq!(covers(&admin, &edit), Ok(()));
        assert!(covers(&view, &edit).is_err());
        assert_eq!(
            covers(&edit, &admin),
            Err(vec![
                r#"{APIGroups:["authorization.k8s.io"], Resources:["localsubjectaccessreviews"], Verbs:["create"]}"#.to_string(),
                r#"{APIGroups:["rbac.authorization.k8s.io"], Resources:["rolebindings"], Verbs:["create" "delete" "deletecollection" "get" "list" "patch" "update" "watch"]}"#.to_string(),
                r#"{APIGroups:["rbac.authorization.k8s.io"], Resources:["roles"], Verbs:["create" "delete" "deletecollection" "get" "list" "patch" "update" "watch"]}"#.to_string(),
            ])
        );
        let admin_obj = find(&objs, "ClusterRole", "admin");
        assert_eq!(
            admin_obj["aggregationRule"],
            json!({ "clusterRoleSelectors": [{ "matchLabels": { "rbac.authorization.k8s.io/aggregate-to-admin": "true" } }] })
        );
        assert_eq!(
            find(&objs, "ClusterRole", "edit")["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
            "true"
        );
        assert_eq!(
            find(&objs, "ClusterRole", "view")["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
            "true"
        );
        // cluster-admin covers everything.
        assert_eq!(covers(&rules_of(&objs, "cluster-admin"), &admin), Ok(()));
    }

    #[test]
    fn superuser_and_cluster_admin_binding() {
        let idx = idx();
        let root = UserInfo::new(
            "kubernetes-admin",
            &["system:masters", "system:authenticated"],
        );
        assert_eq!(
            idx.authorize(&Attributes::resource(
                root.clone(),
                "delete",
                "kube-system",
                "",
                "secrets",
                "",
                "x"
            )),
            Decision::Allow {
                reason: String::new()
            }
        );
        // Via the binding alone (what SelfSubjectRulesReview reports for such a user).
        let (resource, non_resource) = idx.rules_for(&root, "default");
        assert!(
            resource.contains(&json!({ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }))
        );
        assert!(non_resource.contains(&json!({ "verbs": ["*"], "nonResourceURLs": ["*"] })));
    }

    #[test]
    fn control_plane_identities() {
        let idx = idx();
        let scheduler = UserInfo::new("system:kube-scheduler", &["system:authenticated"]);
        assert!(can(
            &idx, &scheduler, "create", "default", "", "pods", "binding", "p"
        ));
        assert!(can(
            &idx,
            &scheduler,
            "update",
            "kube-system",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-scheduler"
        ));
        // Any lease in kube-system comes from the leader-locking Role there; elsewhere only its own.
        assert!(can(
            &idx,
            &scheduler,
            "update",
            "kube-system",
            "coordination.k8s.io",
            "leases",
            "",
            "other"
        ));
        assert!(can(
            &idx,
            &scheduler,
            "update",
            "default",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-scheduler"
        ));
        assert!(!can(
            &idx,
            &scheduler,
            "update",
            "default",
            "coordination.k8s.io",
            "leases",
            "",
            "other"
        ));
        assert!(can(
            &idx,
            &scheduler,
            "update",
            "",
            "",
            "persistentvolumes",
            "",
            "pv"
        ));
        assert!(can(
            &idx,
            &scheduler,
            "get",
            "kube-system",
            "",
            "configmaps",
            "",
            "extension-apiserver-authentication"
        ));
        assert!(!can(
            &idx,
            &scheduler,
            "get",
            "kube-system",
            "",
            "configmaps",
            "",
            "other"
        ));
        let kcm = UserInfo::new("system:kube-controller-manager", &["system:authenticated"]);
        assert!(can(&idx, &kcm, "list", "", "apps", "deployments", "", ""));
        assert!(can(
            &idx,
            &kcm,
            "watch",
            "",
            "anything.example.com",
            "widgets",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &kcm,
            "create",
            "ns",
            "",
            "serviceaccounts",
            "token",
            "sa"
        ));
        assert!(!can(&idx, &kcm, "delete", "ns", "", "pods", "", "p"));
        assert!(can(
            &idx,
            &kcm,
            "update",
            "kube-system",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-controller-manager"
        ));
        let proxy = UserInfo::new("system:kube-proxy", &["system:authenticated"]);
        assert!(can(
            &idx,
            &proxy,
            "watch",
            "",
            "discovery.k8s.io",
            "endpointslices",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &proxy,
            "list",
            "",
            "networking.k8s.io",
            "servicecidrs",
            "",
            ""
        ));
        assert!(!can(&idx, &proxy, "get", "default", "", "secrets", "", "s"));
        // The system:node binding has no subjects: kubelets rely on the Node authorizer.
        let node = UserInfo::new("system:node:n1", &["system:nodes", "system:authenticated"]);
        assert!(!can(&idx, &node, "get", "default", "", "pods", "", "p"));
        let dns = UserInfo::new(
            "system:serviceaccount:kube-system:kube-dns",
            &["system:serviceaccounts"],
        );
        assert!(can(&idx, &dns, "watch", "", "", "services", "", ""));
    }

    #[test]
    fn controller_service_accounts() {
        let idx = idx();
        let sa = |name: &str| {
            UserInfo::new(
                format!("system:serviceaccount:kube-system:{name}"),
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
            )
        };
        let deploy = sa("deployment-controller");
        assert!(can(
            &idx,
            &deploy,
            "update",
            "ns",
            "apps",
            "deployments",
            "status",
            "d"
        ));
        assert!(can(
            &idx,
            &deploy,
            "create",
            "ns",
            "apps",
            "replicasets",
            "",
            ""
        ));
        assert!(!can(&idx, &deploy, "create", "ns", "", "pods", "", ""));
        assert_eq!(
            idx.authorize(&Attributes::resource(
                deploy,
                "update",
                "ns",
                "apps",
                "deployments",
                "status",
                "d"
            ))
            .reason(),
            r#"RBAC: allowed by ClusterRoleBinding "system:controller:deployment-controller" of ClusterRole "system:controller:deployment-controller" to ServiceAccount "deployment-controller/kube-system""#
        );
        assert!(can(
            &idx,
            &sa("replicaset-controller"),
            "create",
            "ns",
            "",
            "pods",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &sa("job-controller"),
            "update",
            "ns",
            "batch",
            "jobs",
            "status",
            "j"
        ));
        assert!(can(
            &idx,
            &sa("cronjob-controller"),
            "create",
            "ns",
            "batch",
            "jobs",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &sa("statefulset-controller"),
            "create",
            "ns",
            "apps",
            "controllerrevisions",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &sa("daemon-set-controller"),
            "create",
            "ns",
            "",
            "pods",
            "binding",
            "p"
        ));
        assert!(can(
            &idx,
            &sa("endpointslice-controller"),
            "create",
            "ns",
            "discovery.k8s.io",
            "endpointslices",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &sa("endpoint-controller"),
            "create",
            "ns",
            "",
            "endpoints",
            "restricted",
            ""
        ));
        assert!(can(
            &idx,
            &sa("namespace-controller"),
            "deletecollection",
            "ns",
            "example.com",
            "widgets",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &sa("namespace-controller"),
            "update",
            "",
            "",
            "namespaces",
            "finalize",
            "ns"
        ));
        assert!(can(
            &idx,
            &sa("generic-garbage-collector"),
            "patch",
            "ns",
            "apps",
            "replicasets",
            "",
            "rs"
        ));
        assert!(!can(
            &idx,
            &sa("generic-garbage-collector"),
            "create",
            "ns",
            "apps",
            "replicasets",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &sa("horizontal-pod-autoscaler"),
            "update",
            "ns",
            "apps",
            "deployments",
            "scale",
            "d"
        ));
        assert!(can(
            &idx,
            &sa("disruption-controller"),
            "get",
            "ns",
            "apps",
            "statefulsets",
            "scale",
            "s"
        ));
        assert!(can(
            &idx,
            &sa("node-controller"),
            "delete",
            "",
            "",
            "nodes",
            "",
            "n"
        ));
        assert!(can(
            &idx,
            &sa("service-account-controller"),
            "create",
            "ns",
            "",
            "serviceaccounts",
            "",
            ""
        ));
        assert!(can(
            &idx,
            &sa("ttl-after-finished-controller"),
            "delete",
            "ns",
            "batch",
            "jobs",
            "",
            "j"
        ));
        assert!(can(
            &idx,
            &sa("ttl-controller"),
            "patch",
            "",
            "",
            "nodes",
            "",
            "n"
        ));
        assert!(can(
            &idx,
            &sa("token-cleaner"),
            "delete",
            "kube-system",
            "",
            "secrets",
            "",
            "s"
        ));
        assert!(!can(
            &idx,
            &sa("token-cleaner"),
            "delete",
            "default",
            "",
            "secrets",
            "",
            "s"
        ));
        assert!(can(
            &idx,
            &sa("bootstrap-signer"),
            "update",
            "kube-public",
            "",
            "configmaps",
            "",
            "cluster-info"
        ));
        // An SA of the same name in another namespace gets nothing.
        let impostor = UserInfo::new(
            "system:serviceaccount:default:deployment-controller",
            &["system:serviceaccounts"],
        );
        assert!(!can(
            &idx,
            &impostor,
            "update",
            "ns",
            "apps",
            "deployments",
            "status",
            "d"
        ));
    }

    #[test]
    fn rules_review_for_authenticated_user() {
        let idx = idx();
        let (resource, non_resource) = idx.rules_for(&authenticated("alice"), "default");
        assert_eq!(
            resource,
            vec![
                json!({ "verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"] }),
                json!({ "verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"] }),
            ]
        );
        assert_eq!(
            non_resource,
            vec![
                json!({ "verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"] }),
                json!({ "verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"] }),
            ]
        );
    }
}
