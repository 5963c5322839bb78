//! The table of served resources: one row per resource, everything the generic handlers need.

use crate::schema::{KindSchema, register};
use k8s_openapi::api;
use serde_json::Value;

/// Subresources a resource may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Status,
    Scale,
    Binding,
    Eviction,
    Log,
    Exec,
    Attach,
    PortForward,
    Proxy,
    Finalize,
    Token,
    EphemeralContainers,
}

impl Sub {
    pub fn name(self) -> &'static str {
        match self {
            Sub::Status => "status",
            Sub::Scale => "scale",
            Sub::Binding => "binding",
            Sub::Eviction => "eviction",
            Sub::Log => "log",
            Sub::Exec => "exec",
            Sub::Attach => "attach",
            Sub::PortForward => "portforward",
            Sub::Proxy => "proxy",
            Sub::Finalize => "finalize",
            Sub::Token => "token",
            Sub::EphemeralContainers => "ephemeralcontainers",
        }
    }

    pub fn parse(s: &str) -> Option<Sub> {
        Some(match s {
            "status" => Sub::Status,
            "scale" => Sub::Scale,
            "binding" => Sub::Binding,
            "eviction" => Sub::Eviction,
            "log" => Sub::Log,
            "exec" => Sub::Exec,
            "attach" => Sub::Attach,
            "portforward" => Sub::PortForward,
            "proxy" => Sub::Proxy,
            "finalize" => Sub::Finalize,
            "token" => Sub::Token,
            "ephemeralcontainers" => Sub::EphemeralContainers,
            _ => return None,
        })
    }

    /// (group, version, kind) of what the subresource takes and returns.
    pub fn response_kind(self, r: &Resource) -> (&'static str, &'static str, &'static str) {
        match self {
            Sub::Scale => ("autoscaling", "v1", "Scale"),
            Sub::Binding => ("", "v1", "Binding"),
            Sub::Eviction => ("policy", "v1", "Eviction"),
            Sub::Token => ("authentication.k8s.io", "v1", "TokenRequest"),
            Sub::Log | Sub::Exec | Sub::Attach | Sub::PortForward | Sub::Proxy => ("", "", ""),
            Sub::Status | Sub::Finalize | Sub::EphemeralContainers => (r.group, r.version, r.kind),
        }
    }

    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Sub::Status | Sub::Scale => &["get", "patch", "update"],
            Sub::Finalize => &["update"],
            Sub::EphemeralContainers => &["get", "patch", "update"],
            Sub::Binding | Sub::Eviction | Sub::Token => &["create"],
            Sub::Log => &["get"],
            Sub::Exec | Sub::Attach | Sub::PortForward => &["create", "get"],
            Sub::Proxy => &["create", "delete", "get", "patch", "update"],
        }
    }
}

/// How objects of a resource live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Stored in etcd with every verb.
    Stored,
    /// Create-only requests answered at once and never stored (access reviews, token reviews).
    Virtual,
}

pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Sub],
    pub storage: Storage,
    /// Decodes into the k8s-openapi type and back: rejects wrong types, drops unknown fields,
    /// gives every object of the kind one canonical shape.
    pub normalize: fn(Value) -> Result<Value, serde_json::Error>,
    pub schema: fn(&mut schemars::generate::SchemaGenerator) -> String,
    /// Field selectors beyond `metadata.name` and `metadata.namespace`: (field, JSON pointer).
    pub field_selectors: &'static [(&'static str, &'static str)],
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has(&self, sub: Sub) -> bool {
        self.subresources.contains(&sub)
    }

    /// Objects of this kind track spec changes in `metadata.generation`.
    pub fn tracks_generation(&self) -> bool {
        !matches!(
            self.kind,
            "ConfigMap"
                | "Secret"
                | "Endpoints"
                | "Event"
                | "Lease"
                | "Role"
                | "ClusterRole"
                | "RoleBinding"
                | "ClusterRoleBinding"
                | "ServiceAccount"
                | "ControllerRevision"
        )
    }

    /// The etcd key prefix of this resource (`/registry/<group>/<plural>/` style, as Kubernetes).
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.storage_name())
    }

    fn storage_name(&self) -> &'static str {
        // Kubernetes' own etcd layout: some resources use historical names.
        match (self.group, self.plural) {
            ("", "services") => "services/specs",
            ("", "endpoints") => "services/endpoints",
            ("", "nodes") => "minions",
            ("", "replicationcontrollers") => "controllers",
            ("", "persistentvolumes") => "persistentvolumes",
            // One store for both event APIs, in the core/v1 shape (see `convert`).
            ("events.k8s.io", "events") => "events",

            ("discovery.k8s.io", "endpointslices") => "endpointslices",
            ("rbac.authorization.k8s.io", p) => match p {
                "roles" => "roles",
                "clusterroles" => "clusterroles",
                "rolebindings" => "rolebindings",
                _ => "clusterrolebindings",
            },
            ("coordination.k8s.io", "leases") => "leases",
            ("autoscaling", "horizontalpodautoscalers") => "horizontalpodautoscalers",
            ("policy", "poddisruptionbudgets") => "poddisruptionbudgets",
            ("batch", "jobs") => "jobs",
            ("batch", "cronjobs") => "cronjobs",
            ("networking.k8s.io", "networkpolicies") => "networkpolicies",
            ("apps", "controllerrevisions") => "controllerrevisions",
            ("scheduling.k8s.io", "priorityclasses") => "priorityclasses",
            ("storage.k8s.io", "storageclasses") => "storageclasses",
            (_, p) => p,
        }
    }

    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{}/{}", self.key_prefix(), namespace, name)
        } else {
            format!("{}{}", self.key_prefix(), name)
        }
    }

    /// Prefix of every key of this resource in a namespace (or all, for `""`).
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("{}{}/", self.key_prefix(), namespace)
        } else {
            self.key_prefix()
        }
    }

    pub fn kind_schema(&self) -> KindSchema {
        KindSchema {
            group: self.group,
            version: self.version,
            kind: self.kind,
            register: self.schema,
        }
    }
}

fn normalize<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: Value,
) -> Result<Value, serde_json::Error> {
    serde_json::from_value::<T>(v).and_then(serde_json::to_value)
}

macro_rules! resource {
    ($ty:ty, $group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: [$($short:expr),*], cat: [$($cat:expr),*], sub: [$($sub:expr),*], storage: $storage:expr,
     fields: [$(($f:expr, $p:expr)),*]) => {
        Resource {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$($sub),*],
            storage: $storage,
            normalize: normalize::<$ty>,
            schema: register::<$ty>,
            field_selectors: &[$(($f, $p)),*],
        }
    };
}

use Storage::{Stored, Virtual};
use Sub::*;

pub static RESOURCES: &[Resource] = &[
    // core/v1
    resource!(api::core::v1::Namespace, "", "v1", "Namespace", "namespaces", "namespace", false,
        short: ["ns"], cat: [], sub: [Status, Finalize], storage: Stored,
        fields: [("status.phase", "/status/phase")]),
    resource!(api::core::v1::Pod, "", "v1", "Pod", "pods", "pod", true,
        short: ["po"], cat: ["all"], sub: [Status, Binding, Eviction, Log, Exec, Attach, PortForward, Proxy, EphemeralContainers],
        storage: Stored,
        fields: [("spec.nodeName", "/spec/nodeName"), ("spec.restartPolicy", "/spec/restartPolicy"),
                 ("spec.schedulerName", "/spec/schedulerName"), ("spec.serviceAccountName", "/spec/serviceAccountName"),
                 ("spec.hostNetwork", "/spec/hostNetwork"), ("status.phase", "/status/phase"),
                 ("status.podIP", "/status/podIP"), ("status.nominatedNodeName", "/status/nominatedNodeName")]),
    resource!(api::core::v1::Service, "", "v1", "Service", "services", "service", true,
        short: ["svc"], cat: ["all"], sub: [Status, Proxy], storage: Stored,
        fields: [("spec.clusterIP", "/spec/clusterIP"), ("spec.type", "/spec/type")]),
    resource!(api::core::v1::Endpoints, "", "v1", "Endpoints", "endpoints", "endpoints", true,
        short: ["ep"], cat: [], sub: [], storage: Stored, fields: []),
    resource!(api::core::v1::ConfigMap, "", "v1", "ConfigMap", "configmaps", "configmap", true,
        short: ["cm"], cat: [], sub: [], storage: Stored, fields: []),
    resource!(api::core::v1::Secret, "", "v1", "Secret", "secrets", "secret", true,
        short: [], cat: [], sub: [], storage: Stored, fields: [("type", "/type")]),
    resource!(api::core::v1::ServiceAccount, "", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true,
        short: ["sa"], cat: [], sub: [Token], storage: Stored, fields: []),
    resource!(api::core::v1::Node, "", "v1", "Node", "nodes", "node", false,
        short: ["no"], cat: [], sub: [Status, Proxy], storage: Stored,
        fields: [("spec.unschedulable", "/spec/unschedulable")]),
    resource!(api::core::v1::Event, "", "v1", "Event", "events", "event", true,
        short: ["ev"], cat: [], sub: [], storage: Stored,
        fields: [("involvedObject.kind", "/involvedObject/kind"), ("involvedObject.namespace", "/involvedObject/namespace"),
                 ("involvedObject.name", "/involvedObject/name"), ("involvedObject.uid", "/involvedObject/uid"),
                 ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
                 ("involvedObject.resourceVersion", "/involvedObject/resourceVersion"),
                 ("involvedObject.fieldPath", "/involvedObject/fieldPath"), ("reason", "/reason"),
                 ("reportingComponent", "/reportingComponent"), ("source", "/source/component"), ("type", "/type")]),
    resource!(api::core::v1::PersistentVolume, "", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false,
        short: ["pv"], cat: [], sub: [Status], storage: Stored, fields: []),
    resource!(api::core::v1::PersistentVolumeClaim, "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
        "persistentvolumeclaim", true, short: ["pvc"], cat: [], sub: [Status], storage: Stored, fields: []),
    resource!(api::core::v1::LimitRange, "", "v1", "LimitRange", "limitranges", "limitrange", true,
        short: ["limits"], cat: [], sub: [], storage: Stored, fields: []),
    resource!(api::core::v1::ResourceQuota, "", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true,
        short: ["quota"], cat: [], sub: [Status], storage: Stored, fields: []),
    resource!(api::core::v1::ReplicationController, "", "v1", "ReplicationController", "replicationcontrollers",
        "replicationcontroller", true, short: ["rc"], cat: ["all"], sub: [Status, Scale], storage: Stored,
        fields: [("status.replicas", "/status/replicas")]),
    resource!(api::core::v1::PodTemplate, "", "v1", "PodTemplate", "podtemplates", "podtemplate", true,
        short: [], cat: [], sub: [], storage: Stored, fields: []),
    // apps/v1
    resource!(api::apps::v1::Deployment, "apps", "v1", "Deployment", "deployments", "deployment", true,
        short: ["deploy"], cat: ["all"], sub: [Status, Scale], storage: Stored, fields: []),
    resource!(api::apps::v1::ReplicaSet, "apps", "v1", "ReplicaSet", "replicasets", "replicaset", true,
        short: ["rs"], cat: ["all"], sub: [Status, Scale], storage: Stored,
        fields: [("status.replicas", "/status/replicas")]),
    resource!(api::apps::v1::StatefulSet, "apps", "v1", "StatefulSet", "statefulsets", "statefulset", true,
        short: ["sts"], cat: ["all"], sub: [Status, Scale], storage: Stored, fields: []),
    resource!(api::apps::v1::DaemonSet, "apps", "v1", "DaemonSet", "daemonsets", "daemonset", true,
        short: ["ds"], cat: ["all"], sub: [Status], storage: Stored, fields: []),
    resource!(api::apps::v1::ControllerRevision, "apps", "v1", "ControllerRevision", "controllerrevisions",
        "controllerrevision", true, short: [], cat: [], sub: [], storage: Stored, fields: []),
    // batch/v1
    resource!(api::batch::v1::Job, "batch", "v1", "Job", "jobs", "job", true,
        short: [], cat: ["all"], sub: [Status], storage: Stored,
        fields: [("status.successful", "/status/succeeded")]),
    resource!(api::batch::v1::CronJob, "batch", "v1", "CronJob", "cronjobs", "cronjob", true,
        short: ["cj"], cat: ["all"], sub: [Status], storage: Stored, fields: []),
    // discovery.k8s.io/v1
    resource!(api::discovery::v1::EndpointSlice, "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
        "endpointslice", true, short: [], cat: [], sub: [], storage: Stored, fields: []),
    // networking.k8s.io/v1
    resource!(api::networking::v1::NetworkPolicy, "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies",
        "networkpolicy", true, short: ["netpol"], cat: [], sub: [], storage: Stored, fields: []),
    // rbac.authorization.k8s.io/v1
    resource!(api::rbac::v1::Role, "rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true,
        short: [], cat: [], sub: [], storage: Stored, fields: []),
    resource!(api::rbac::v1::ClusterRole, "rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles",
        "clusterrole", false, short: [], cat: [], sub: [], storage: Stored, fields: []),
    resource!(api::rbac::v1::RoleBinding, "rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings",
        "rolebinding", true, short: [], cat: [], sub: [], storage: Stored, fields: []),
    resource!(api::rbac::v1::ClusterRoleBinding, "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding",
        "clusterrolebindings", "clusterrolebinding", false, short: [], cat: [], sub: [], storage: Stored, fields: []),
    // coordination.k8s.io/v1
    resource!(api::coordination::v1::Lease, "coordination.k8s.io", "v1", "Lease", "leases", "lease", true,
        short: [], cat: [], sub: [], storage: Stored, fields: []),
    // autoscaling/v2
    resource!(api::autoscaling::v2::HorizontalPodAutoscaler, "autoscaling", "v2", "HorizontalPodAutoscaler",
        "horizontalpodautoscalers", "horizontalpodautoscaler", true, short: ["hpa"], cat: ["all"], sub: [Status],
        storage: Stored, fields: []),
    // policy/v1
    resource!(api::policy::v1::PodDisruptionBudget, "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
        "poddisruptionbudget", true, short: ["pdb"], cat: [], sub: [Status], storage: Stored, fields: []),
    // events.k8s.io/v1
    resource!(api::events::v1::Event, "events.k8s.io", "v1", "Event", "events", "event", true,
        short: ["ev"], cat: [], sub: [], storage: Stored,
        fields: [("regarding.kind", "/regarding/kind"), ("regarding.name", "/regarding/name"),
                 ("regarding.namespace", "/regarding/namespace"), ("reason", "/reason"), ("type", "/type")]),
    // scheduling.k8s.io/v1, storage.k8s.io/v1: what pods and claims refer to
    resource!(api::scheduling::v1::PriorityClass, "scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses",
        "priorityclass", false, short: ["pc"], cat: [], sub: [], storage: Stored, fields: []),
    resource!(api::storage::v1::StorageClass, "storage.k8s.io", "v1", "StorageClass", "storageclasses",
        "storageclass", false, short: ["sc"], cat: [], sub: [], storage: Stored, fields: []),
    // authorization and authentication reviews: answered, never stored
    resource!(api::authorization::v1::SelfSubjectAccessReview, "authorization.k8s.io", "v1", "SelfSubjectAccessReview",
        "selfsubjectaccessreviews", "selfsubjectaccessreview", false, short: [], cat: [], sub: [], storage: Virtual, fields: []),
    resource!(api::authorization::v1::SelfSubjectRulesReview, "authorization.k8s.io", "v1", "SelfSubjectRulesReview",
        "selfsubjectrulesreviews", "selfsubjectrulesreview", false, short: [], cat: [], sub: [], storage: Virtual, fields: []),
    resource!(api::authorization::v1::SubjectAccessReview, "authorization.k8s.io", "v1", "SubjectAccessReview",
        "subjectaccessreviews", "subjectaccessreview", false, short: [], cat: [], sub: [], storage: Virtual, fields: []),
    resource!(api::authorization::v1::LocalSubjectAccessReview, "authorization.k8s.io", "v1", "LocalSubjectAccessReview",
        "localsubjectaccessreviews", "localsubjectaccessreview", true, short: [], cat: [], sub: [], storage: Virtual, fields: []),
    resource!(api::authentication::v1::SelfSubjectReview, "authentication.k8s.io", "v1", "SelfSubjectReview",
        "selfsubjectreviews", "selfsubjectreview", false, short: [], cat: [], sub: [], storage: Virtual, fields: []),
    resource!(api::authentication::v1::TokenReview, "authentication.k8s.io", "v1", "TokenReview",
        "tokenreviews", "tokenreview", false, short: [], cat: [], sub: [], storage: Virtual, fields: []),
];

/// Finds a resource by group, version and plural (or singular/short name, for convenience).
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn find_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// The group/versions served, in discovery order (core first, then groups by name).
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.group, self.version, self.plural)
    }
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        (self.group, self.version, self.plural) == (other.group, other.version, other.plural)
    }
}

impl Eq for Resource {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_and_normalizes_an_empty_object() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} twice",
                    a.plural
                );
            }
            let obj = serde_json::json!({"apiVersion": a.api_version(), "kind": a.kind, "metadata": {"name": "x"}});
            // Virtual reviews and a few kinds have required fields; they must fail cleanly, not panic.
            let _ = (a.normalize)(obj);
        }
    }

    #[test]
    fn keys_follow_the_kubernetes_layout() {
        let pods = find("", "v1", "pods").expect("pods");
        assert_eq!(pods.key("shop", "web-1"), "/registry/pods/shop/web-1");
        let ns = find("", "v1", "namespaces").expect("namespaces");
        assert_eq!(ns.key("", "shop"), "/registry/namespaces/shop");
        let svc = find("", "v1", "services").expect("services");
        assert_eq!(
            svc.namespace_prefix("shop"),
            "/registry/services/specs/shop/"
        );
    }
}
