//! Server-side Table printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
//!
//! Mirrors kube-apiserver's `pkg/printers/internalversion/printers.go`: for each built-in
//! kind, the column definitions and the cells of one row. Objects arrive in their versioned
//! JSON wire form; every printer reads the fields its upstream counterpart reads on the
//! internal type, so a missing field behaves like the Go zero value (never a panic).
//!
//! The apiserver always prints with `Wide: true`, so rows carry a cell for every column,
//! priority-1 columns included; kubectl hides those unless `-o wide`.
//!
//! Kinds without a print handler upstream (Role, ClusterRole, LimitRange,
//! CustomResourceDefinition, CSIStorageCapacity, anything unknown) use the default table
//! convertor from `k8s.io/apiserver/pkg/registry/rest/table.go`: `Name` and `Created At`.

mod descriptions;
#[cfg(test)]
mod tests;

use descriptions as d;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// One `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// OpenAPI type: "string", "integer", "boolean", "date", ...
    pub type_: &'static str,
    /// "name" for the column holding the object name, "" otherwise.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = always shown, 1 = only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The column as it appears in a Table's `columnDefinitions` (every field is emitted,
    /// as upstream's struct has no `omitempty`).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Columns for a kind (`group` is "" for the core group), e.g. `("", "Pod")`,
/// `("apps", "Deployment")`. Unknown kinds get the default `Name`, `Created At`.
pub fn columns(group: &str, kind: &str) -> Vec<Column> {
    column_slice(printer_for(group, kind)).to_vec()
}

/// `columns` rendered as a Table's `columnDefinitions` array.
pub fn column_definitions_json(group: &str, kind: &str) -> Value {
    Value::Array(
        column_slice(printer_for(group, kind))
            .iter()
            .map(Column::to_json)
            .collect(),
    )
}

/// One row's cells for an object of that kind, in column order (wide columns included).
/// `now` stands in for upstream's `time.Now()` in AGE-like columns. One upstream quirk is
/// kept: networking.k8s.io IPAddress rows carry an age cell beyond their two columns.
pub fn cells(group: &str, kind: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    let p = Printer { obj, now };
    match printer_for(group, kind) {
        Kind::Pod => p.pod(),
        Kind::PodTemplate => p.pod_template(),
        Kind::PodDisruptionBudget => p.pod_disruption_budget(),
        Kind::ReplicationController => p.replication_controller(),
        Kind::ReplicaSet => p.replica_set(),
        Kind::DaemonSet => p.daemon_set(),
        Kind::Job => p.job(),
        Kind::CronJob => p.cron_job(),
        Kind::Service => p.service(),
        Kind::Ingress => p.ingress(),
        Kind::IngressClass => p.ingress_class(),
        Kind::StatefulSet => p.stateful_set(),
        Kind::Endpoints => p.endpoints(),
        Kind::Node => p.node(),
        Kind::CoreEvent => p.event(&EventFields::CORE),
        Kind::EventsEvent => p.event(&EventFields::EVENTS_V1),
        Kind::Namespace => p.namespace(),
        Kind::Secret => p.secret(),
        Kind::ServiceAccount => p.service_account(),
        Kind::PersistentVolume => p.persistent_volume(),
        Kind::PersistentVolumeClaim => p.persistent_volume_claim(),
        Kind::ComponentStatus => p.component_status(),
        Kind::Deployment => p.deployment(),
        Kind::HorizontalPodAutoscaler => p.horizontal_pod_autoscaler(),
        Kind::ConfigMap => p.config_map(),
        Kind::NetworkPolicy => p.network_policy(),
        Kind::RoleBinding | Kind::ClusterRoleBinding => p.role_binding(),
        Kind::CertificateSigningRequest => p.certificate_signing_request(),
        Kind::Lease => p.lease(),
        Kind::StorageClass => p.storage_class(),
        Kind::ControllerRevision => p.controller_revision(),
        Kind::ResourceQuota => p.resource_quota(),
        Kind::PriorityClass => p.priority_class(),
        Kind::RuntimeClass => p.runtime_class(),
        Kind::VolumeAttachment => p.volume_attachment(),
        Kind::EndpointSlice => p.endpoint_slice(),
        Kind::CsiNode => p.csi_node(),
        Kind::CsiDriver => p.csi_driver(),
        Kind::MutatingWebhookConfiguration | Kind::ValidatingWebhookConfiguration => {
            p.webhook_configuration()
        }
        Kind::FlowSchema => p.flow_schema(),
        Kind::PriorityLevelConfiguration => p.priority_level_configuration(),
        Kind::ServiceCidr => p.service_cidr(),
        Kind::IpAddress => p.ip_address(),
        Kind::ApiService => p.api_service(),
        Kind::Default => p.default_row(),
    }
}

/// Row conditions upstream attaches to a row (only pods have any: a `Completed`
/// condition once the pod has succeeded or failed). Empty for everything else.
pub fn row_conditions(group: &str, kind: &str, obj: &Value) -> Vec<Value> {
    if printer_for(group, kind) != Kind::Pod {
        return Vec::new();
    }
    let (reason, message) = match str_at(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

/// The StorageClass kube-apiserver marks "(default)": among the classes carrying the
/// is-default-class annotation, the newest (then the alphabetically first name).
/// Upstream computes this over all StorageClasses, for lists and single gets alike.
pub fn effective_default_storage_class(classes: &[Value]) -> Option<String> {
    classes
        .iter()
        .filter(|sc| is_default_storage_class(sc))
        .map(|sc| {
            let created = time_at(sc, &["metadata", "creationTimestamp"]);
            (created, str_at(sc, &["metadata", "name"]))
        })
        // Newest first; a missing timestamp is Go's zero time, older than any other.
        .min_by(|(ta, na), (tb, nb)| tb.cmp(ta).then_with(|| na.cmp(nb)))
        .map(|(_, name)| name.to_string())
}

/// Rewrites a StorageClass row's NAME cell so that only `effective_default` carries the
/// " (default)" suffix (upstream's list-aware table convertor does the same).
pub fn mark_default_storage_class(row: &mut [Value], effective_default: Option<&str>) {
    const SUFFIX: &str = " (default)";
    let Some(Value::String(cell)) = row.first_mut() else {
        return;
    };
    let clean = match cell.strip_suffix(SUFFIX) {
        Some(base) if !base.is_empty() => base.to_string(),
        _ => cell.clone(),
    };
    *cell = if Some(clean.as_str()) == effective_default {
        format!("{clean}{SUFFIX}")
    } else {
        clean
    };
}

// ---------------------------------------------------------------------------------------
// Kind dispatch and column tables.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pod,
    PodTemplate,
    PodDisruptionBudget,
    ReplicationController,
    ReplicaSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Ingress,
    IngressClass,
    StatefulSet,
    Endpoints,
    Node,
    CoreEvent,
    EventsEvent,
    Namespace,
    Secret,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    ComponentStatus,
    Deployment,
    HorizontalPodAutoscaler,
    ConfigMap,
    NetworkPolicy,
    RoleBinding,
    ClusterRoleBinding,
    CertificateSigningRequest,
    Lease,
    StorageClass,
    ControllerRevision,
    ResourceQuota,
    PriorityClass,
    RuntimeClass,
    VolumeAttachment,
    EndpointSlice,
    CsiNode,
    CsiDriver,
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
    FlowSchema,
    PriorityLevelConfiguration,
    ServiceCidr,
    IpAddress,
    ApiService,
    Default,
}

fn printer_for(group: &str, kind: &str) -> Kind {
    match (group, kind) {
        ("", "Pod") => Kind::Pod,
        ("", "PodTemplate") => Kind::PodTemplate,
        ("", "ReplicationController") => Kind::ReplicationController,
        ("", "Service") => Kind::Service,
        ("", "Endpoints") => Kind::Endpoints,
        ("", "Node") => Kind::Node,
        ("", "Event") => Kind::CoreEvent,
        ("", "Namespace") => Kind::Namespace,
        ("", "Secret") => Kind::Secret,
        ("", "ServiceAccount") => Kind::ServiceAccount,
        ("", "PersistentVolume") => Kind::PersistentVolume,
        ("", "PersistentVolumeClaim") => Kind::PersistentVolumeClaim,
        ("", "ComponentStatus") => Kind::ComponentStatus,
        ("", "ConfigMap") => Kind::ConfigMap,
        ("", "ResourceQuota") => Kind::ResourceQuota,
        ("events.k8s.io", "Event") => Kind::EventsEvent,
        ("policy", "PodDisruptionBudget") => Kind::PodDisruptionBudget,
        ("apps", "ReplicaSet") => Kind::ReplicaSet,
        ("apps", "DaemonSet") => Kind::DaemonSet,
        ("apps", "StatefulSet") => Kind::StatefulSet,
        ("apps", "Deployment") => Kind::Deployment,
        ("apps", "ControllerRevision") => Kind::ControllerRevision,
        ("batch", "Job") => Kind::Job,
        ("batch", "CronJob") => Kind::CronJob,
        ("networking.k8s.io", "Ingress") => Kind::Ingress,
        ("networking.k8s.io", "IngressClass") => Kind::IngressClass,
        ("networking.k8s.io", "NetworkPolicy") => Kind::NetworkPolicy,
        ("networking.k8s.io", "ServiceCIDR") => Kind::ServiceCidr,
        ("networking.k8s.io", "IPAddress") => Kind::IpAddress,
        ("autoscaling", "HorizontalPodAutoscaler") => Kind::HorizontalPodAutoscaler,
        ("rbac.authorization.k8s.io", "RoleBinding") => Kind::RoleBinding,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => Kind::ClusterRoleBinding,
        ("certificates.k8s.io", "CertificateSigningRequest") => Kind::CertificateSigningRequest,
        ("coordination.k8s.io", "Lease") => Kind::Lease,
        ("storage.k8s.io", "StorageClass") => Kind::StorageClass,
        ("storage.k8s.io", "VolumeAttachment") => Kind::VolumeAttachment,
        ("storage.k8s.io", "CSINode") => Kind::CsiNode,
        ("storage.k8s.io", "CSIDriver") => Kind::CsiDriver,
        ("scheduling.k8s.io", "PriorityClass") => Kind::PriorityClass,
        ("node.k8s.io", "RuntimeClass") => Kind::RuntimeClass,
        ("discovery.k8s.io", "EndpointSlice") => Kind::EndpointSlice,
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            Kind::MutatingWebhookConfiguration
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            Kind::ValidatingWebhookConfiguration
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => Kind::FlowSchema,
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            Kind::PriorityLevelConfiguration
        }
        ("apiregistration.k8s.io", "APIService") => Kind::ApiService,
        _ => Kind::Default,
    }
}

const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(c: Column) -> Column {
    Column { priority: 1, ..c }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: d::META_NAME,
    priority: 0,
};
const AGE: Column = col("Age", "string", d::META_CREATION);
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";
const WIDE_CONTAINERS: Column = wide(col("Containers", "string", CONTAINERS_DESC));
const WIDE_IMAGES: Column = wide(col("Images", "string", IMAGES_DESC));

const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Created At", "date", d::META_CREATION)];

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(col("IP", "string", d::POD_IP)),
    wide(col("Node", "string", d::POD_NODE_NAME)),
    wide(col("Nominated Node", "string", d::POD_NOMINATED)),
    wide(col("Readiness Gates", "string", d::POD_READINESS_GATES)),
];

const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    col("Containers", "string", CONTAINERS_DESC),
    col("Images", "string", IMAGES_DESC),
    col("Pod Labels", "string", "The labels for the pod template."),
];

const PDB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

const RC_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", d::RC_SPEC_REPLICAS),
    col("Current", "integer", d::RC_STATUS_REPLICAS),
    col("Ready", "integer", d::RC_STATUS_READY),
    AGE,
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    wide(col("Selector", "string", d::RC_SPEC_SELECTOR)),
];

const RS_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", d::RS_SPEC_REPLICAS),
    col("Current", "integer", d::RS_STATUS_REPLICAS),
    col("Ready", "integer", d::RS_STATUS_READY),
    AGE,
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    wide(col("Selector", "string", d::RS_SPEC_SELECTOR)),
];

const DS_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", d::DS_DESIRED),
    col("Current", "integer", d::DS_CURRENT),
    col("Ready", "integer", d::DS_READY),
    col("Up-to-date", "integer", d::DS_UPDATED),
    col("Available", "integer", d::DS_AVAILABLE),
    col("Node Selector", "string", d::POD_NODE_SELECTOR),
    AGE,
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    wide(col("Selector", "string", d::DS_SELECTOR)),
];

const JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", d::JOB_SUCCEEDED),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    wide(col("Selector", "string", d::JOB_SELECTOR)),
];

const CRONJOB_COLUMNS: &[Column] = &[
    NAME,
    col("Schedule", "string", d::CJ_SCHEDULE),
    col("Timezone", "string", d::CJ_TIMEZONE),
    col("Suspend", "boolean", d::CJ_SUSPEND),
    col("Active", "integer", d::CJ_ACTIVE),
    col("Last Schedule", "string", d::CJ_LAST_SCHEDULE),
    AGE,
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    wide(col("Selector", "string", d::JOB_SELECTOR)),
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", d::SVC_TYPE),
    col("Cluster-IP", "string", d::SVC_CLUSTER_IP),
    col("External-IP", "string", d::SVC_EXTERNAL_IPS),
    col("Port(s)", "string", d::SVC_PORTS),
    AGE,
    wide(col("Selector", "string", d::SVC_SELECTOR)),
];

const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

const STATEFULSET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    WIDE_CONTAINERS,
    WIDE_IMAGES,
];

const ENDPOINTS_COLUMNS: &[Column] = &[NAME, col("Endpoints", "string", d::EP_SUBSETS), AGE];

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", d::NODE_KUBELET_VERSION),
    wide(col("Internal-IP", "string", d::NODE_ADDRESSES)),
    wide(col("External-IP", "string", d::NODE_ADDRESSES)),
    wide(col("OS-Image", "string", d::NODE_OS_IMAGE)),
    wide(col("Kernel-Version", "string", d::NODE_KERNEL)),
    wide(col("Container-Runtime", "string", d::NODE_CRI)),
];

const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", d::EV_LAST_TS),
    col("Type", "string", d::EV_TYPE),
    col("Reason", "string", d::EV_REASON),
    col("Object", "string", d::EV_INVOLVED),
    wide(col("Subobject", "string", d::EV_FIELD_PATH)),
    wide(col("Source", "string", d::EV_SOURCE)),
    col("Message", "string", d::EV_MESSAGE),
    wide(col("First Seen", "string", d::EV_FIRST_TS)),
    wide(col("Count", "string", d::EV_COUNT)),
    wide(NAME),
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", d::SECRET_TYPE),
    col("Data", "string", d::SECRET_DATA),
    AGE,
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[NAME, col("Secrets", "string", d::SA_SECRETS), AGE];

const PV_COLUMNS: &[Column] = &[
    NAME,
    col("Capacity", "string", d::PV_CAPACITY),
    col("Access Modes", "string", d::PV_ACCESS_MODES),
    col("Reclaim Policy", "string", d::PV_RECLAIM),
    col("Status", "string", d::PV_PHASE),
    col("Claim", "string", d::PV_CLAIM_REF),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col("Reason", "string", d::PV_REASON),
    AGE,
    wide(col("VolumeMode", "string", d::PV_VOLUME_MODE)),
];

const PVC_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", d::PVC_PHASE),
    col("Volume", "string", d::PVC_VOLUME_NAME),
    col("Capacity", "string", d::PVC_CAPACITY),
    col("Access Modes", "string", d::PVC_ACCESS_MODES),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(col("VolumeMode", "string", d::PVC_VOLUME_MODE)),
];

const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", d::DEP_UPDATED),
    col("Available", "string", d::DEP_AVAILABLE),
    AGE,
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    wide(col("Selector", "string", d::DEP_SELECTOR)),
];

const HPA_COLUMNS: &[Column] = &[
    NAME,
    col("Reference", "string", d::HPA_SCALE_TARGET),
    col("Targets", "string", d::HPA_METRICS),
    col("MinPods", "string", d::HPA_MIN),
    col("MaxPods", "string", d::HPA_MAX),
    col("Replicas", "string", d::HPA_CURRENT),
    AGE,
];

const CONFIG_MAP_COLUMNS: &[Column] = &[NAME, col("Data", "string", d::CM_DATA), AGE];

const NETWORK_POLICY_COLUMNS: &[Column] =
    &[NAME, col("Pod-Selector", "string", d::NP_POD_SELECTOR), AGE];

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col("Role", "string", d::RB_ROLE_REF),
    AGE,
    wide(col("Users", "string", "Users in the roleBinding")),
    wide(col("Groups", "string", "Groups in the roleBinding")),
    wide(col(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    )),
];

const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col("Role", "string", d::CRB_ROLE_REF),
    AGE,
    wide(col("Users", "string", "Users in the clusterRoleBinding")),
    wide(col("Groups", "string", "Groups in the clusterRoleBinding")),
    wide(col(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    )),
];

const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col("SignerName", "string", d::CSR_SIGNER),
    col("Requestor", "string", d::CSR_REQUEST),
    col("RequestedDuration", "string", d::CSR_EXPIRATION),
    col("Condition", "string", d::CSR_CONDITIONS),
];

const LEASE_COLUMNS: &[Column] = &[NAME, col("Holder", "string", d::LEASE_HOLDER), AGE];

const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col("Provisioner", "string", d::SC_PROVISIONER),
    col("ReclaimPolicy", "string", d::SC_RECLAIM),
    col("VolumeBindingMode", "string", d::SC_BINDING_MODE),
    col("AllowVolumeExpansion", "string", d::SC_EXPANSION),
    AGE,
];

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col("Revision", "string", d::CR_REVISION),
    AGE,
];

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

// PreemptionPolicy has no priority upstream, so it shows without -o wide.
const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col("Value", "integer", d::PC_VALUE),
    col("Global-Default", "boolean", d::PC_GLOBAL_DEFAULT),
    AGE,
    col("PreemptionPolicy", "string", d::PC_PREEMPTION),
];

// Upstream looks "handler" up in ObjectMeta's swagger docs, which has no such key.
const RUNTIME_CLASS_COLUMNS: &[Column] = &[NAME, col("Handler", "string", ""), AGE];

const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        // Upstream marks this column with format "name" as well.
        format: "name",
        ..col("Attacher", "string", d::VA_ATTACHER)
    },
    col("PV", "string", d::VA_PV),
    col("Node", "string", d::VA_NODE),
    col("Attached", "boolean", d::VA_ATTACHED),
    AGE,
];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col("AddressType", "string", d::EPS_ADDRESS_TYPE),
    col("Ports", "string", d::EPS_PORTS),
    col("Endpoints", "string", d::EPS_ENDPOINTS),
    AGE,
];

const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    col("AttachRequired", "boolean", d::CSID_ATTACH),
    col("PodInfoOnMount", "boolean", d::CSID_POD_INFO),
    col("StorageCapacity", "boolean", d::CSID_CAPACITY),
    col("TokenRequests", "string", d::CSID_TOKEN),
    col("RequiresRepublish", "boolean", d::CSID_REPUBLISH),
    col("Modes", "string", d::CSID_MODES),
    AGE,
];

const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

const FLOW_SCHEMA_COLUMNS: &[Column] = &[
    NAME,
    col("PriorityLevel", "string", d::FS_PL_NAME),
    col("MatchingPrecedence", "string", d::FS_PRECEDENCE),
    col("DistinguisherMethod", "string", d::FS_DISTINGUISHER),
    AGE,
    col(
        "MissingPL",
        "string",
        "references a broken or non-existent PriorityLevelConfiguration",
    ),
];

const PRIORITY_LEVEL_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", d::PL_TYPE),
    col("NominalConcurrencyShares", "string", d::PL_NCS),
    col("Queues", "string", d::PL_QUEUES),
    col("HandSize", "string", d::PL_HAND_SIZE),
    col("QueueLengthLimit", "string", d::PL_QUEUE_LENGTH),
    AGE,
];

const SERVICE_CIDR_COLUMNS: &[Column] = &[NAME, col("CIDRs", "string", d::SVCCIDR_CIDRS), AGE];

// Upstream declares no Age column here, yet its rows carry an age cell; kubectl shows
// only as many cells as there are columns.
const IP_ADDRESS_COLUMNS: &[Column] = &[NAME, col("ParentRef", "string", d::IPADDR_PARENT)];

const API_SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    col("Available", "string", "Whether this service is available."),
    AGE,
];

fn column_slice(kind: Kind) -> &'static [Column] {
    match kind {
        Kind::Pod => POD_COLUMNS,
        Kind::PodTemplate => POD_TEMPLATE_COLUMNS,
        Kind::PodDisruptionBudget => PDB_COLUMNS,
        Kind::ReplicationController => RC_COLUMNS,
        Kind::ReplicaSet => RS_COLUMNS,
        Kind::DaemonSet => DS_COLUMNS,
        Kind::Job => JOB_COLUMNS,
        Kind::CronJob => CRONJOB_COLUMNS,
        Kind::Service => SERVICE_COLUMNS,
        Kind::Ingress => INGRESS_COLUMNS,
        Kind::IngressClass => INGRESS_CLASS_COLUMNS,
        Kind::StatefulSet => STATEFULSET_COLUMNS,
        Kind::Endpoints => ENDPOINTS_COLUMNS,
        Kind::Node => NODE_COLUMNS,
        Kind::CoreEvent | Kind::EventsEvent => EVENT_COLUMNS,
        Kind::Namespace => NAMESPACE_COLUMNS,
        Kind::Secret => SECRET_COLUMNS,
        Kind::ServiceAccount => SERVICE_ACCOUNT_COLUMNS,
        Kind::PersistentVolume => PV_COLUMNS,
        Kind::PersistentVolumeClaim => PVC_COLUMNS,
        Kind::ComponentStatus => COMPONENT_STATUS_COLUMNS,
        Kind::Deployment => DEPLOYMENT_COLUMNS,
        Kind::HorizontalPodAutoscaler => HPA_COLUMNS,
        Kind::ConfigMap => CONFIG_MAP_COLUMNS,
        Kind::NetworkPolicy => NETWORK_POLICY_COLUMNS,
        Kind::RoleBinding => ROLE_BINDING_COLUMNS,
        Kind::ClusterRoleBinding => CLUSTER_ROLE_BINDING_COLUMNS,
        Kind::CertificateSigningRequest => CSR_COLUMNS,
        Kind::Lease => LEASE_COLUMNS,
        Kind::StorageClass => STORAGE_CLASS_COLUMNS,
        Kind::ControllerRevision => CONTROLLER_REVISION_COLUMNS,
        Kind::ResourceQuota => RESOURCE_QUOTA_COLUMNS,
        Kind::PriorityClass => PRIORITY_CLASS_COLUMNS,
        Kind::RuntimeClass => RUNTIME_CLASS_COLUMNS,
        Kind::VolumeAttachment => VOLUME_ATTACHMENT_COLUMNS,
        Kind::EndpointSlice => ENDPOINT_SLICE_COLUMNS,
        Kind::CsiNode => CSI_NODE_COLUMNS,
        Kind::CsiDriver => CSI_DRIVER_COLUMNS,
        Kind::MutatingWebhookConfiguration | Kind::ValidatingWebhookConfiguration => {
            WEBHOOK_COLUMNS
        }
        Kind::FlowSchema => FLOW_SCHEMA_COLUMNS,
        Kind::PriorityLevelConfiguration => PRIORITY_LEVEL_COLUMNS,
        Kind::ServiceCidr => SERVICE_CIDR_COLUMNS,
        Kind::IpAddress => IP_ADDRESS_COLUMNS,
        Kind::ApiService => API_SERVICE_COLUMNS,
        Kind::Default => DEFAULT_COLUMNS,
    }
}

// ---------------------------------------------------------------------------------------
// Row printers.

/// Field names of the two wire forms of Event (core/v1 and events.k8s.io/v1), which
/// upstream prints through the same internal type.
struct EventFields {
    involved: &'static str,
    message: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
}

impl EventFields {
    const CORE: EventFields = EventFields {
        involved: "involvedObject",
        message: "message",
        source: "source",
        first: "firstTimestamp",
        last: "lastTimestamp",
        count: "count",
    };
    const EVENTS_V1: EventFields = EventFields {
        involved: "regarding",
        message: "note",
        source: "deprecatedSource",
        first: "deprecatedFirstTimestamp",
        last: "deprecatedLastTimestamp",
        count: "deprecatedCount",
    };
}

struct Printer<'a> {
    obj: &'a Value,
    now: Timestamp,
}

impl Printer<'_> {
    fn name(&self) -> Value {
        Value::from(str_at(self.obj, &["metadata", "name"]))
    }

    fn age(&self) -> Value {
        Value::from(self.since(&["metadata", "creationTimestamp"]))
    }

    fn since(&self, path: &[&str]) -> String {
        translate_since(time_at(self.obj, path), self.now)
    }

    fn deleting(&self) -> bool {
        at(self.obj, &["metadata", "deletionTimestamp"]).is_some()
    }

    fn default_row(&self) -> Vec<Value> {
        let created = time_at(self.obj, &["metadata", "creationTimestamp"])
            .unwrap_or_else(go_zero_time)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        vec![self.name(), Value::from(created)]
    }

    fn pod(&self) -> Vec<Value> {
        let obj = self.obj;
        let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
        let status = at(obj, &["status"]).unwrap_or(&Value::Null);

        let mut restarts: i64 = 0;
        let mut restartable_restarts: i64 = 0;
        let mut total = arr_at(spec, &["containers"]).len();
        let mut ready = 0usize;
        let mut last_restart: Option<Timestamp> = None;
        let mut last_restartable_restart: Option<Timestamp> = None;

        let phase = str_at(status, &["phase"]);
        let mut reason = phase.to_string();
        let status_reason = str_at(status, &["reason"]);
        if !status_reason.is_empty() {
            reason = status_reason.to_string();
        }
        for cond in arr_at(status, &["conditions"]) {
            if str_at(cond, &["type"]) == "PodScheduled"
                && str_at(cond, &["reason"]) == "SchedulingGated"
            {
                reason = "SchedulingGated".to_string();
            }
        }

        let init_containers = arr_at(spec, &["initContainers"]);
        let restartable_init = |name: &str| {
            // Upstream keys init containers by name, so the last duplicate wins.
            init_containers
                .iter()
                .rev()
                .find(|c| str_at(c, &["name"]) == name)
                .is_some_and(is_restartable_init_container)
        };
        total += init_containers
            .iter()
            .filter(|c| is_restartable_init_container(c))
            .count();

        let mut initializing = false;
        for (i, cs) in arr_at(status, &["initContainerStatuses"])
            .iter()
            .enumerate()
        {
            let restart_count = int_at(cs, &["restartCount"]).unwrap_or(0);
            let finished = time_at(cs, &["lastState", "terminated", "finishedAt"]);
            restarts += restart_count;
            last_restart = later(last_restart, finished);
            let restartable = restartable_init(str_at(cs, &["name"]));
            if restartable {
                restartable_restarts += restart_count;
                last_restartable_restart = later(last_restartable_restart, finished);
            }
            let terminated = at(cs, &["state", "terminated"]);
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            if let Some(t) = terminated
                && int_at(t, &["exitCode"]).unwrap_or(0) == 0
            {
                continue;
            }
            if restartable && bool_at(cs, &["started"]) == Some(true) {
                if bool_at(cs, &["ready"]) == Some(true) {
                    ready += 1;
                }
                continue;
            }
            reason = if let Some(t) = terminated {
                terminated_reason(t, "Init:")
            } else if at(cs, &["state", "waiting"]).is_some()
                && !waiting_reason.is_empty()
                && waiting_reason != "PodInitializing"
            {
                format!("Init:{waiting_reason}")
            } else {
                format!("Init:{}/{}", i, init_containers.len())
            };
            initializing = true;
            break;
        }

        if !initializing || first_condition_true(status, "Initialized") {
            restarts = restartable_restarts;
            last_restart = last_restartable_restart;
            let mut has_running = false;
            for cs in arr_at(status, &["containerStatuses"]).iter().rev() {
                restarts += int_at(cs, &["restartCount"]).unwrap_or(0);
                last_restart = later(
                    last_restart,
                    time_at(cs, &["lastState", "terminated", "finishedAt"]),
                );
                let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
                let terminated = at(cs, &["state", "terminated"]);
                if at(cs, &["state", "waiting"]).is_some() && !waiting_reason.is_empty() {
                    reason = waiting_reason.to_string();
                } else if let Some(t) = terminated {
                    reason = terminated_reason(t, "");
                } else if bool_at(cs, &["ready"]) == Some(true)
                    && at(cs, &["state", "running"]).is_some()
                {
                    has_running = true;
                    ready += 1;
                }
            }
            // A pod whose last container completed while others still run is not done.
            if reason == "Completed" && has_running {
                reason = if condition_true(status, "Ready") {
                    "Running".to_string()
                } else {
                    "NotReady".to_string()
                };
            }
        }

        if self.deleting() && status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if self.deleting() && phase != "Failed" && phase != "Succeeded" {
            reason = "Terminating".to_string();
        }

        let restarts_cell = match last_restart {
            Some(t) if restarts != 0 => {
                format!("{restarts} ({} ago)", translate_since(Some(t), self.now))
            }
            _ => restarts.to_string(),
        };

        let mut pod_ip = arr_at(status, &["podIPs"])
            .first()
            .map(|ip| str_at(ip, &["ip"]))
            .unwrap_or("");
        if pod_ip.is_empty() {
            // The v1 -> internal conversion fills podIPs from the legacy podIP field.
            pod_ip = str_at(status, &["podIP"]);
        }
        let gates = arr_at(spec, &["readinessGates"]);
        let readiness_gates = if gates.is_empty() {
            "<none>".to_string()
        } else {
            let conditions = arr_at(status, &["conditions"]);
            let true_count = gates
                .iter()
                .filter(|gate| {
                    let ty = str_at(gate, &["conditionType"]);
                    conditions
                        .iter()
                        .find(|c| str_at(c, &["type"]) == ty)
                        .is_some_and(|c| str_at(c, &["status"]) == "True")
                })
                .count();
            format!("{true_count}/{}", gates.len())
        };

        vec![
            self.name(),
            Value::from(format!("{ready}/{total}")),
            Value::from(reason),
            Value::from(restarts_cell),
            self.age(),
            Value::from(or_none(pod_ip)),
            Value::from(or_none(str_at(spec, &["nodeName"]))),
            Value::from(or_none(str_at(status, &["nominatedNodeName"]))),
            Value::from(readiness_gates),
        ]
    }

    fn pod_template(&self) -> Vec<Value> {
        let (names, images) = container_cells(self.obj, &["template", "spec", "containers"]);
        vec![
            self.name(),
            names,
            images,
            Value::from(format_labels(at(
                self.obj,
                &["template", "metadata", "labels"],
            ))),
        ]
    }

    fn pod_disruption_budget(&self) -> Vec<Value> {
        let int_or_string = |field: &str| {
            at(self.obj, &["spec", field])
                .map(int_or_string_text)
                .unwrap_or_else(|| "N/A".to_string())
        };
        vec![
            self.name(),
            Value::from(int_or_string("minAvailable")),
            Value::from(int_or_string("maxUnavailable")),
            Value::from(int_at(self.obj, &["status", "disruptionsAllowed"]).unwrap_or(0)),
            self.age(),
        ]
    }

    fn replication_controller(&self) -> Vec<Value> {
        let (names, images) =
            container_cells(self.obj, &["spec", "template", "spec", "containers"]);
        vec![
            self.name(),
            Value::from(desired_replicas(self.obj)),
            Value::from(int_at(self.obj, &["status", "replicas"]).unwrap_or(0)),
            Value::from(int_at(self.obj, &["status", "readyReplicas"]).unwrap_or(0)),
            self.age(),
            names,
            images,
            Value::from(format_labels(at(self.obj, &["spec", "selector"]))),
        ]
    }

    fn replica_set(&self) -> Vec<Value> {
        let (names, images) =
            container_cells(self.obj, &["spec", "template", "spec", "containers"]);
        vec![
            self.name(),
            Value::from(desired_replicas(self.obj)),
            Value::from(int_at(self.obj, &["status", "replicas"]).unwrap_or(0)),
            Value::from(int_at(self.obj, &["status", "readyReplicas"]).unwrap_or(0)),
            self.age(),
            names,
            images,
            Value::from(format_label_selector(at(self.obj, &["spec", "selector"]))),
        ]
    }

    fn daemon_set(&self) -> Vec<Value> {
        let status = |field: &str| Value::from(int_at(self.obj, &["status", field]).unwrap_or(0));
        let (names, images) =
            container_cells(self.obj, &["spec", "template", "spec", "containers"]);
        vec![
            self.name(),
            status("desiredNumberScheduled"),
            status("currentNumberScheduled"),
            status("numberReady"),
            status("updatedNumberScheduled"),
            status("numberAvailable"),
            Value::from(format_labels(at(
                self.obj,
                &["spec", "template", "spec", "nodeSelector"],
            ))),
            self.age(),
            names,
            images,
            Value::from(format_label_selector(at(self.obj, &["spec", "selector"]))),
        ]
    }

    fn job(&self) -> Vec<Value> {
        let obj = self.obj;
        let succeeded = int_at(obj, &["status", "succeeded"]).unwrap_or(0);
        let completions = match int_at(obj, &["spec", "completions"]) {
            Some(c) => format!("{succeeded}/{c}"),
            None => match int_at(obj, &["spec", "parallelism"]).unwrap_or(0) {
                p if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let duration = match (
            time_at(obj, &["status", "startTime"]),
            time_at(obj, &["status", "completionTime"]),
        ) {
            (None, _) => String::new(),
            (Some(start), None) => human_duration(self.now.duration_since(start)),
            (Some(start), Some(end)) => human_duration(end.duration_since(start)),
        };
        let status = at(obj, &["status"]).unwrap_or(&Value::Null);
        let job_status = if first_condition_true(status, "Complete") {
            "Complete"
        } else if first_condition_true(status, "Failed") {
            "Failed"
        } else if self.deleting() {
            "Terminating"
        } else if first_condition_true(status, "Suspended") {
            "Suspended"
        } else if first_condition_true(status, "FailureTarget") {
            "FailureTarget"
        } else {
            "Running"
        };
        let (names, images) = container_cells(obj, &["spec", "template", "spec", "containers"]);
        vec![
            self.name(),
            Value::from(job_status),
            Value::from(completions),
            Value::from(duration),
            self.age(),
            names,
            images,
            Value::from(format_label_selector(at(obj, &["spec", "selector"]))),
        ]
    }

    fn cron_job(&self) -> Vec<Value> {
        let obj = self.obj;
        let last_schedule = if at(obj, &["status", "lastScheduleTime"]).is_some() {
            self.since(&["status", "lastScheduleTime"])
        } else {
            "<none>".to_string()
        };
        let time_zone = at(obj, &["spec", "timeZone"])
            .and_then(Value::as_str)
            .unwrap_or("<none>");
        let suspend = match bool_at(obj, &["spec", "suspend"]) {
            Some(true) => "True",
            Some(false) => "False",
            None => "<unset>",
        };
        let (names, images) = container_cells(
            obj,
            &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
            ],
        );
        vec![
            self.name(),
            Value::from(str_at(obj, &["spec", "schedule"])),
            Value::from(time_zone),
            Value::from(suspend),
            Value::from(arr_at(obj, &["status", "active"]).len()),
            Value::from(last_schedule),
            self.age(),
            names,
            images,
            Value::from(format_label_selector(at(
                obj,
                &["spec", "jobTemplate", "spec", "selector"],
            ))),
        ]
    }

    fn service(&self) -> Vec<Value> {
        let obj = self.obj;
        let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
        let mut cluster_ip = arr_at(spec, &["clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("");
        if cluster_ip.is_empty() {
            // Older objects (and partial ones) only carry the singular field.
            cluster_ip = str_at(spec, &["clusterIP"]);
        }
        // The API defaults type to ClusterIP; treat a missing one the same way.
        let svc_type = match str_at(spec, &["type"]) {
            "" => "ClusterIP",
            t => t,
        };
        let external_ips: Vec<&str> = arr_at(spec, &["externalIPs"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let external = match svc_type {
            "ClusterIP" | "NodePort" => {
                if external_ips.is_empty() {
                    "<none>".to_string()
                } else {
                    external_ips.join(",")
                }
            }
            "LoadBalancer" => {
                let mut all = load_balancer_ingress(at(obj, &["status", "loadBalancer"]));
                all.extend(external_ips.iter().map(|s| s.to_string()));
                if all.is_empty() {
                    "<pending>".to_string()
                } else {
                    all.join(",")
                }
            }
            "ExternalName" => str_at(spec, &["externalName"]).to_string(),
            _ => "<unknown>".to_string(),
        };
        let ports: Vec<String> = arr_at(spec, &["ports"])
            .iter()
            .map(|p| {
                let port = int_at(p, &["port"]).unwrap_or(0);
                let protocol = match str_at(p, &["protocol"]) {
                    "" => "TCP",
                    proto => proto,
                };
                match int_at(p, &["nodePort"]).unwrap_or(0) {
                    np if np > 0 => format!("{port}:{np}/{protocol}"),
                    _ => format!("{port}/{protocol}"),
                }
            })
            .collect();
        let ports = if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        };
        vec![
            self.name(),
            Value::from(svc_type),
            Value::from(or_none(cluster_ip)),
            Value::from(external),
            Value::from(ports),
            self.age(),
            Value::from(format_labels(at(spec, &["selector"]))),
        ]
    }

    fn ingress(&self) -> Vec<Value> {
        let obj = self.obj;
        let class = at(obj, &["spec", "ingressClassName"])
            .and_then(Value::as_str)
            .unwrap_or("<none>");
        let rules = arr_at(obj, &["spec", "rules"]);
        const MAX: usize = 3;
        let mut hosts: Vec<&str> = Vec::new();
        let mut more = false;
        for rule in rules {
            if hosts.len() == MAX {
                more = true;
            }
            let host = str_at(rule, &["host"]);
            if !more && !host.is_empty() {
                hosts.push(host);
            }
        }
        let hosts = if hosts.is_empty() {
            "*".to_string()
        } else if more {
            format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
        } else {
            hosts.join(",")
        };
        let address = load_balancer_ingress(at(obj, &["status", "loadBalancer"])).join(",");
        let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            self.name(),
            Value::from(class),
            Value::from(hosts),
            Value::from(address),
            Value::from(ports),
            self.age(),
        ]
    }

    fn ingress_class(&self) -> Vec<Value> {
        let parameters = match at(self.obj, &["spec", "parameters"]) {
            Some(p) => {
                let mut s = str_at(p, &["kind"]).to_string();
                if let Some(group) = at(p, &["apiGroup"]).and_then(Value::as_str) {
                    s.push('.');
                    s.push_str(group);
                }
                s.push('/');
                s.push_str(str_at(p, &["name"]));
                s
            }
            None => "<none>".to_string(),
        };
        vec![
            self.name(),
            Value::from(str_at(self.obj, &["spec", "controller"])),
            Value::from(parameters),
            self.age(),
        ]
    }

    fn stateful_set(&self) -> Vec<Value> {
        let ready = int_at(self.obj, &["status", "readyReplicas"]).unwrap_or(0);
        let (names, images) =
            container_cells(self.obj, &["spec", "template", "spec", "containers"]);
        vec![
            self.name(),
            Value::from(format!("{ready}/{}", desired_replicas(self.obj))),
            self.age(),
            names,
            images,
        ]
    }

    fn endpoints(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(format_endpoints(arr_at(self.obj, &["subsets"]))),
            self.age(),
        ]
    }

    fn node(&self) -> Vec<Value> {
        let obj = self.obj;
        let mut status: Vec<String> = Vec::new();
        // Upstream builds a type -> condition map, so the last Ready condition wins.
        if let Some(ready) = arr_at(obj, &["status", "conditions"])
            .iter()
            .rev()
            .find(|c| str_at(c, &["type"]) == "Ready")
        {
            if str_at(ready, &["status"]) == "True" {
                status.push("Ready".to_string());
            } else {
                status.push("NotReady".to_string());
            }
        }
        if status.is_empty() {
            status.push("Unknown".to_string());
        }
        if bool_at(obj, &["spec", "unschedulable"]) == Some(true) {
            status.push("SchedulingDisabled".to_string());
        }

        let mut roles: Vec<&str> = Vec::new();
        if let Some(labels) = at(obj, &["metadata", "labels"]).and_then(Value::as_object) {
            for (key, value) in labels {
                if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                    if !role.is_empty() {
                        roles.push(role);
                    }
                } else if key == "kubernetes.io/role" {
                    match value.as_str() {
                        Some(v) if !v.is_empty() => roles.push(v),
                        _ => {}
                    }
                }
            }
        }
        roles.sort_unstable();
        roles.dedup();
        let roles = if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        };

        let address = |ty: &str| {
            arr_at(obj, &["status", "addresses"])
                .iter()
                .find(|a| str_at(a, &["type"]) == ty)
                .map(|a| str_at(a, &["address"]))
                .unwrap_or("<none>")
        };
        let info = |field: &str| match str_at(obj, &["status", "nodeInfo", field]) {
            "" => "<unknown>",
            v => v,
        };
        vec![
            self.name(),
            Value::from(status.join(",")),
            Value::from(roles),
            self.age(),
            Value::from(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
            Value::from(address("InternalIP")),
            Value::from(address("ExternalIP")),
            Value::from(info("osImage")),
            Value::from(info("kernelVersion")),
            Value::from(info("containerRuntimeVersion")),
        ]
    }

    fn event(&self, f: &EventFields) -> Vec<Value> {
        let obj = self.obj;
        let first_seen = if time_present(obj, &[f.first]) {
            self.since(&[f.first])
        } else {
            self.since(&["eventTime"])
        };
        let mut last_seen = if time_present(obj, &[f.last]) {
            self.since(&[f.last])
        } else {
            first_seen.clone()
        };
        let mut count = int_at(obj, &[f.count]).unwrap_or(0);
        if let Some(series) = at(obj, &["series"]) {
            last_seen = translate_since(time_at(series, &["lastObservedTime"]), self.now);
            count = int_at(series, &["count"]).unwrap_or(0);
        } else if count == 0 {
            // Singleton events carry no count in the events.k8s.io API.
            count = 1;
        }
        let kind = str_at(obj, &[f.involved, "kind"]).to_lowercase();
        let involved_name = str_at(obj, &[f.involved, "name"]);
        let target = if involved_name.is_empty() {
            kind
        } else {
            format!("{kind}/{involved_name}")
        };
        let component = first_non_empty(
            str_at(obj, &[f.source, "component"]),
            str_at(obj, &["reportingController"]),
        );
        let instance = first_non_empty(
            str_at(obj, &[f.source, "host"]),
            str_at(obj, &["reportingInstance"]),
        );
        let source = if instance.is_empty() {
            component.to_string()
        } else {
            format!("{component}, {instance}")
        };
        vec![
            Value::from(last_seen),
            Value::from(str_at(obj, &["type"])),
            Value::from(str_at(obj, &["reason"])),
            Value::from(target),
            Value::from(str_at(obj, &[f.involved, "fieldPath"])),
            Value::from(source),
            Value::from(str_at(obj, &[f.message]).trim()),
            Value::from(first_seen),
            Value::from(count),
            self.name(),
        ]
    }

    fn namespace(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(str_at(self.obj, &["status", "phase"])),
            self.age(),
        ]
    }

    fn secret(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(str_at(self.obj, &["type"])),
            Value::from(map_len(self.obj, &["data"])),
            self.age(),
        ]
    }

    fn service_account(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(arr_at(self.obj, &["secrets"]).len()),
            self.age(),
        ]
    }

    fn persistent_volume(&self) -> Vec<Value> {
        let obj = self.obj;
        let claim = match at(obj, &["spec", "claimRef"]) {
            Some(r) => format!("{}/{}", str_at(r, &["namespace"]), str_at(r, &["name"])),
            None => String::new(),
        };
        let phase = if self.deleting() {
            "Terminating"
        } else {
            str_at(obj, &["status", "phase"])
        };
        let class = match annotation(obj, "volume.beta.kubernetes.io/storage-class") {
            Some(class) => class,
            None => str_at(obj, &["spec", "storageClassName"]),
        };
        vec![
            self.name(),
            Value::from(quantity_text(at(obj, &["spec", "capacity", "storage"]))),
            Value::from(access_modes(arr_at(obj, &["spec", "accessModes"]))),
            Value::from(str_at(obj, &["spec", "persistentVolumeReclaimPolicy"])),
            Value::from(phase),
            Value::from(claim),
            Value::from(class),
            Value::from(string_or_unset(obj, &["spec", "volumeAttributesClassName"])),
            Value::from(str_at(obj, &["status", "reason"])),
            self.age(),
            Value::from(string_or_unset(obj, &["spec", "volumeMode"])),
        ]
    }

    fn persistent_volume_claim(&self) -> Vec<Value> {
        let obj = self.obj;
        let phase = if self.deleting() {
            "Terminating"
        } else {
            str_at(obj, &["status", "phase"])
        };
        let volume = str_at(obj, &["spec", "volumeName"]);
        // Capacity and modes describe the bound volume, so they stay blank until bound.
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                quantity_text(at(obj, &["status", "capacity", "storage"])),
                access_modes(arr_at(obj, &["status", "accessModes"])),
            )
        };
        let class = match annotation(obj, "volume.beta.kubernetes.io/storage-class") {
            Some(class) => class,
            None => at(obj, &["spec", "storageClassName"])
                .and_then(Value::as_str)
                .unwrap_or(""),
        };
        vec![
            self.name(),
            Value::from(phase),
            Value::from(volume),
            Value::from(capacity),
            Value::from(modes),
            Value::from(class),
            Value::from(string_or_unset(obj, &["spec", "volumeAttributesClassName"])),
            self.age(),
            Value::from(string_or_unset(obj, &["spec", "volumeMode"])),
        ]
    }

    fn component_status(&self) -> Vec<Value> {
        let healthy = arr_at(self.obj, &["conditions"])
            .iter()
            .find(|c| str_at(c, &["type"]) == "Healthy");
        let (status, message, error) = match healthy {
            Some(c) => (
                if str_at(c, &["status"]) == "True" {
                    "Healthy"
                } else {
                    "Unhealthy"
                },
                str_at(c, &["message"]),
                str_at(c, &["error"]),
            ),
            None => ("Unknown", "", ""),
        };
        vec![
            self.name(),
            Value::from(status),
            Value::from(message),
            Value::from(error),
        ]
    }

    fn deployment(&self) -> Vec<Value> {
        let obj = self.obj;
        let ready = int_at(obj, &["status", "readyReplicas"]).unwrap_or(0);
        let (names, images) = container_cells(obj, &["spec", "template", "spec", "containers"]);
        // Unlike most printers, Deployment shows an empty selector as "" (not "<none>").
        let selector = match label_selector_string(at(obj, &["spec", "selector"])) {
            Ok(s) => s,
            Err(_) => "<invalid>".to_string(),
        };
        vec![
            self.name(),
            Value::from(format!("{ready}/{}", desired_replicas(obj))),
            Value::from(int_at(obj, &["status", "updatedReplicas"]).unwrap_or(0)),
            Value::from(int_at(obj, &["status", "availableReplicas"]).unwrap_or(0)),
            self.age(),
            names,
            images,
            Value::from(selector),
        ]
    }

    fn horizontal_pod_autoscaler(&self) -> Vec<Value> {
        let obj = self.obj;
        let reference = format!(
            "{}/{}",
            str_at(obj, &["spec", "scaleTargetRef", "kind"]),
            str_at(obj, &["spec", "scaleTargetRef", "name"])
        );
        let min_pods = match int_at(obj, &["spec", "minReplicas"]) {
            Some(n) => n.to_string(),
            None => "<unset>".to_string(),
        };
        vec![
            self.name(),
            Value::from(reference),
            Value::from(hpa_targets(obj)),
            Value::from(min_pods),
            Value::from(int_at(obj, &["spec", "maxReplicas"]).unwrap_or(0)),
            Value::from(int_at(obj, &["status", "currentReplicas"]).unwrap_or(0)),
            self.age(),
        ]
    }

    fn config_map(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(map_len(self.obj, &["data"]) + map_len(self.obj, &["binaryData"])),
            self.age(),
        ]
    }

    fn network_policy(&self) -> Vec<Value> {
        // podSelector is a struct, not a pointer, upstream: absent means empty.
        let empty = Value::Object(Map::new());
        let selector = at(self.obj, &["spec", "podSelector"]).unwrap_or(&empty);
        vec![
            self.name(),
            Value::from(format_label_selector(Some(selector))),
            self.age(),
        ]
    }

    fn role_binding(&self) -> Vec<Value> {
        let obj = self.obj;
        let role = format!(
            "{}/{}",
            str_at(obj, &["roleRef", "kind"]),
            str_at(obj, &["roleRef", "name"])
        );
        let mut users = Vec::new();
        let mut groups = Vec::new();
        let mut service_accounts = Vec::new();
        for subject in arr_at(obj, &["subjects"]) {
            let name = str_at(subject, &["name"]);
            match str_at(subject, &["kind"]) {
                "ServiceAccount" => {
                    service_accounts.push(format!("{}/{name}", str_at(subject, &["namespace"])))
                }
                "User" => users.push(name.to_string()),
                "Group" => groups.push(name.to_string()),
                _ => {}
            }
        }
        vec![
            self.name(),
            Value::from(role),
            self.age(),
            Value::from(users.join(", ")),
            Value::from(groups.join(", ")),
            Value::from(service_accounts.join(", ")),
        ]
    }

    fn certificate_signing_request(&self) -> Vec<Value> {
        let obj = self.obj;
        let signer = match str_at(obj, &["spec", "signerName"]) {
            "" => "<none>",
            s => s,
        };
        let requested = match int_at(obj, &["spec", "expirationSeconds"]) {
            Some(secs) => human_duration(jiff::SignedDuration::from_secs(secs)),
            None => "<none>".to_string(),
        };
        let (mut approved, mut denied, mut failed) = (false, false, false);
        for c in arr_at(obj, &["status", "conditions"]) {
            match str_at(c, &["type"]) {
                "Approved" => approved = true,
                "Denied" => denied = true,
                "Failed" => failed = true,
                _ => {}
            }
        }
        let mut condition = if denied {
            "Denied"
        } else if approved {
            "Approved"
        } else {
            "Pending"
        }
        .to_string();
        if failed {
            condition.push_str(",Failed");
        }
        if !str_at(obj, &["status", "certificate"]).is_empty() {
            condition.push_str(",Issued");
        }
        vec![
            self.name(),
            self.age(),
            Value::from(signer),
            Value::from(str_at(obj, &["spec", "username"])),
            Value::from(requested),
            Value::from(condition),
        ]
    }

    fn lease(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(str_at(self.obj, &["spec", "holderIdentity"])),
            self.age(),
        ]
    }

    fn storage_class(&self) -> Vec<Value> {
        let obj = self.obj;
        let mut name = str_at(obj, &["metadata", "name"]).to_string();
        if is_default_storage_class(obj) {
            name.push_str(" (default)");
        }
        let reclaim = at(obj, &["reclaimPolicy"])
            .and_then(Value::as_str)
            .unwrap_or("Delete");
        let binding = at(obj, &["volumeBindingMode"])
            .and_then(Value::as_str)
            .unwrap_or("Immediate");
        vec![
            Value::from(name),
            Value::from(str_at(obj, &["provisioner"])),
            Value::from(reclaim),
            Value::from(binding),
            Value::from(bool_at(obj, &["allowVolumeExpansion"]).unwrap_or(false)),
            self.age(),
        ]
    }

    fn controller_revision(&self) -> Vec<Value> {
        let obj = self.obj;
        let controller = arr_at(obj, &["metadata", "ownerReferences"])
            .iter()
            .find(|r| bool_at(r, &["controller"]) == Some(true));
        let controller = match controller {
            Some(r) => {
                let api_version = str_at(r, &["apiVersion"]);
                // "v1" is the core group; "group/version" otherwise.
                let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
                let kind = str_at(r, &["kind"]);
                let name = str_at(r, &["name"]);
                if kind.is_empty() && group.is_empty() {
                    name.to_string()
                } else if group.is_empty() {
                    format!("{}/{name}", kind.to_lowercase())
                } else {
                    format!("{}.{}/{name}", kind.to_lowercase(), group.to_lowercase())
                }
            }
            None => "<none>".to_string(),
        };
        vec![
            self.name(),
            Value::from(controller),
            Value::from(int_at(obj, &["revision"]).unwrap_or(0)),
            self.age(),
        ]
    }

    fn resource_quota(&self) -> Vec<Value> {
        let obj = self.obj;
        let mut requests: Vec<String> = Vec::new();
        let mut limits: Vec<String> = Vec::new();
        if let Some(hard) = at(obj, &["status", "hard"]).and_then(Value::as_object) {
            let mut names: Vec<&String> = hard.keys().collect();
            names.sort();
            for resource in names {
                let used = quantity_text(at(obj, &["status", "used", resource.as_str()]));
                let limit = quantity_text(hard.get(resource.as_str()));
                let entry = format!("{resource}: {used}/{limit}");
                let mut pieces = resource.split('.');
                let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
                if is_limit {
                    limits.push(entry);
                } else {
                    requests.push(entry);
                }
            }
        }
        vec![
            self.name(),
            Value::from(requests.join(", ")),
            Value::from(limits.join(", ")),
            self.age(),
        ]
    }

    fn priority_class(&self) -> Vec<Value> {
        let obj = self.obj;
        vec![
            self.name(),
            Value::from(int_at(obj, &["value"]).unwrap_or(0)),
            Value::from(bool_at(obj, &["globalDefault"]).unwrap_or(false)),
            self.age(),
            Value::from(str_at(obj, &["preemptionPolicy"])),
        ]
    }

    fn runtime_class(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(str_at(self.obj, &["handler"])),
            self.age(),
        ]
    }

    fn volume_attachment(&self) -> Vec<Value> {
        let obj = self.obj;
        vec![
            self.name(),
            Value::from(str_at(obj, &["spec", "attacher"])),
            Value::from(str_at(obj, &["spec", "source", "persistentVolumeName"])),
            Value::from(str_at(obj, &["spec", "nodeName"])),
            Value::from(bool_at(obj, &["status", "attached"]).unwrap_or(false)),
            self.age(),
        ]
    }

    fn endpoint_slice(&self) -> Vec<Value> {
        let obj = self.obj;
        let ports: Vec<String> = arr_at(obj, &["ports"])
            .iter()
            .map(|p| match int_at(p, &["port"]) {
                Some(port) => port.to_string(),
                None => at(p, &["name"])
                    .and_then(Value::as_str)
                    .unwrap_or("*")
                    .to_string(),
            })
            .collect();
        let addresses: Vec<String> = arr_at(obj, &["endpoints"])
            .iter()
            .flat_map(|e| arr_at(e, &["addresses"]))
            .map(|a| a.as_str().unwrap_or("").to_string())
            .collect();
        vec![
            self.name(),
            Value::from(str_at(obj, &["addressType"])),
            Value::from(list_with_more(&ports, 3)),
            Value::from(list_with_more(&addresses, 3)),
            self.age(),
        ]
    }

    fn csi_node(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(arr_at(self.obj, &["spec", "drivers"]).len()),
            self.age(),
        ]
    }

    fn csi_driver(&self) -> Vec<Value> {
        let obj = self.obj;
        let flag = |field: &str, default: bool| {
            Value::from(bool_at(obj, &["spec", field]).unwrap_or(default))
        };
        let token_requests = match at(obj, &["spec", "tokenRequests"]).and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .map(|t| str_at(t, &["audience"]))
                .collect::<Vec<_>>()
                .join(","),
            None => "<unset>".to_string(),
        };
        let modes: Vec<&str> = arr_at(obj, &["spec", "volumeLifecycleModes"])
            .iter()
            .map(|m| m.as_str().unwrap_or(""))
            .collect();
        let modes = match modes.join(",") {
            s if s.is_empty() => "<none>".to_string(),
            s => s,
        };
        vec![
            self.name(),
            flag("attachRequired", true),
            flag("podInfoOnMount", false),
            flag("storageCapacity", false),
            Value::from(token_requests),
            flag("requiresRepublish", false),
            Value::from(modes),
            self.age(),
        ]
    }

    fn webhook_configuration(&self) -> Vec<Value> {
        vec![
            self.name(),
            Value::from(arr_at(self.obj, &["webhooks"]).len()),
            self.age(),
        ]
    }

    fn flow_schema(&self) -> Vec<Value> {
        let obj = self.obj;
        let distinguisher = match at(obj, &["spec", "distinguisherMethod"]) {
            Some(m) => str_at(m, &["type"]),
            None => "<none>",
        };
        let missing_pl = arr_at(obj, &["status", "conditions"])
            .iter()
            .find(|c| str_at(c, &["type"]) == "Dangling")
            .map(|c| str_at(c, &["status"]))
            .unwrap_or("?");
        vec![
            self.name(),
            Value::from(str_at(obj, &["spec", "priorityLevelConfiguration", "name"])),
            Value::from(int_at(obj, &["spec", "matchingPrecedence"]).unwrap_or(0)),
            Value::from(distinguisher),
            self.age(),
            Value::from(missing_pl),
        ]
    }

    fn priority_level_configuration(&self) -> Vec<Value> {
        let obj = self.obj;
        let none = || Value::from("<none>");
        let (mut ncs, mut queues, mut hand_size, mut queue_length) =
            (none(), none(), none(), none());
        if let Some(limited) = at(obj, &["spec", "limited"]) {
            ncs = Value::from(int_at(limited, &["nominalConcurrencyShares"]).unwrap_or(0));
            if let Some(q) = at(limited, &["limitResponse", "queuing"]) {
                queues = Value::from(int_at(q, &["queues"]).unwrap_or(0));
                hand_size = Value::from(int_at(q, &["handSize"]).unwrap_or(0));
                queue_length = Value::from(int_at(q, &["queueLengthLimit"]).unwrap_or(0));
            }
        }
        vec![
            self.name(),
            Value::from(str_at(obj, &["spec", "type"])),
            ncs,
            queues,
            hand_size,
            queue_length,
            self.age(),
        ]
    }

    fn service_cidr(&self) -> Vec<Value> {
        let cidrs: Vec<&str> = arr_at(self.obj, &["spec", "cidrs"])
            .iter()
            .map(|c| c.as_str().unwrap_or(""))
            .collect();
        vec![self.name(), Value::from(cidrs.join(",")), self.age()]
    }

    fn ip_address(&self) -> Vec<Value> {
        let parent = match at(self.obj, &["spec", "parentRef"]) {
            Some(p) => {
                let resource = str_at(p, &["resource"]);
                let group = str_at(p, &["group"]);
                let mut s = if group.is_empty() {
                    resource.to_lowercase()
                } else {
                    format!("{resource}.{group}").to_lowercase()
                };
                let ns = str_at(p, &["namespace"]);
                if !ns.is_empty() {
                    s.push('/');
                    s.push_str(ns);
                }
                s.push('/');
                s.push_str(str_at(p, &["name"]));
                s
            }
            None => "<none>".to_string(),
        };
        vec![self.name(), Value::from(parent), self.age()]
    }

    fn api_service(&self) -> Vec<Value> {
        let obj = self.obj;
        let service = match at(obj, &["spec", "service"]) {
            Some(s) => format!("{}/{}", str_at(s, &["namespace"]), str_at(s, &["name"])),
            None => "Local".to_string(),
        };
        let available = match arr_at(obj, &["status", "conditions"])
            .iter()
            .find(|c| str_at(c, &["type"]) == "Available")
        {
            Some(c) => {
                let status = str_at(c, &["status"]);
                let reason = str_at(c, &["reason"]);
                if status != "True" && !reason.is_empty() {
                    format!("{status} ({reason})")
                } else {
                    status.to_string()
                }
            }
            None => "Unknown".to_string(),
        };
        vec![
            self.name(),
            Value::from(service),
            Value::from(available),
            self.age(),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// Shared formatting helpers (upstream's printers.go helpers and apimachinery utilities).

/// `duration.HumanDuration` from k8s.io/apimachinery: a compact, lossy rendering that
/// keeps two units at most for young objects and one for old ones.
pub fn human_duration(d: jiff::SignedDuration) -> String {
    // Go truncates toward zero; up to 2s of clock skew still reads as "now".
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `translateTimestampSince`: "<unknown>" for a zero (absent) time.
fn translate_since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z), which upstream treats as "unset".
fn go_zero_time() -> Timestamp {
    // In range for jiff, so the fallback is never taken.
    Timestamp::from_second(-62_135_596_800).unwrap_or(Timestamp::MIN)
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    let n = at(v, path)?;
    n.as_i64()
        .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        // Truncation mirrors a JSON float decoded into a Go integer field.
        .or_else(|| n.as_f64().map(|f| f as i64))
}

fn bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_len(v: &Value, path: &[&str]) -> usize {
    at(v, path)
        .and_then(Value::as_object)
        .map(Map::len)
        .unwrap_or(0)
}

/// A set, non-zero timestamp (unparsable values count as unset, like a zero `metav1.Time`).
fn time_at(v: &Value, path: &[&str]) -> Option<Timestamp> {
    let t: Timestamp = at(v, path)?.as_str()?.parse().ok()?;
    (t != go_zero_time()).then_some(t)
}

fn time_present(v: &Value, path: &[&str]) -> bool {
    time_at(v, path).is_some()
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

fn string_or_unset<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("<unset>")
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    at(obj, &["metadata", "annotations", key]).and_then(Value::as_str)
}

fn is_default_storage_class(obj: &Value) -> bool {
    annotation(obj, "storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation(obj, "storageclass.beta.kubernetes.io/is-default-class") == Some("true")
}

fn is_restartable_init_container(c: &Value) -> bool {
    str_at(c, &["restartPolicy"]) == "Always"
}

/// Whether a condition of that type exists with status True (any matching entry).
fn condition_true(status: &Value, ty: &str) -> bool {
    arr_at(status, &["conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == ty && str_at(c, &["status"]) == "True")
}

/// Whether the first condition of that type has status True (upstream's Job and
/// pod-Initialized lookups stop at the first match).
fn first_condition_true(status: &Value, ty: &str) -> bool {
    arr_at(status, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// STATUS text for a terminated container: its reason, else the signal or exit code.
fn terminated_reason(t: &Value, prefix: &str) -> String {
    let reason = str_at(t, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    match int_at(t, &["signal"]).unwrap_or(0) {
        0 => format!("{prefix}ExitCode:{}", int_at(t, &["exitCode"]).unwrap_or(0)),
        signal => format!("{prefix}Signal:{signal}"),
    }
}

/// `spec.replicas`, which the API defaults to 1 for every workload that has it.
fn desired_replicas(obj: &Value) -> i64 {
    int_at(obj, &["spec", "replicas"]).unwrap_or(1)
}

/// `layoutContainerCells`: comma-joined container names and images.
fn container_cells(obj: &Value, path: &[&str]) -> (Value, Value) {
    let containers = arr_at(obj, path);
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// `intstr.IntOrString.String()`.
fn int_or_string_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A quantity as text; absent means Go's zero `resource.Quantity`, printed "0".
fn quantity_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// A `*resource.Quantity` as text; a nil pointer prints "<nil>" upstream.
fn quantity_ptr_text(v: Option<&Value>) -> String {
    match v {
        None => "<nil>".to_string(),
        some => quantity_text(some),
    }
}

/// `helper.GetAccessModesAsString`: fixed order, duplicates dropped.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `labels.FormatLabels`: sorted `k=v` pairs, "<none>" when empty.
fn format_labels(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object) else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<(&str, &str)> = map
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: "<error>" for an invalid selector, "<none>" when it
/// selects nothing or everything.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(_) => "<error>".to_string(),
    }
}

/// Why a label selector cannot be converted (upstream `LabelSelectorAsSelector` errors).
#[derive(Debug, thiserror::Error)]
enum SelectorError {
    #[error("{0:?} is not a valid label selector operator")]
    Operator(String),
    #[error("operator {0} needs {1} values")]
    Values(String, &'static str),
    #[error("invalid label key {0:?}")]
    Key(String),
    #[error("invalid label value {0:?}")]
    Value(String),
    #[error("label selector is not an object")]
    Shape,
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key.
fn label_selector_string(selector: Option<&Value>) -> Result<String, SelectorError> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    let selector = selector.as_object().ok_or(SelectorError::Shape)?;
    let empty = Map::new();
    let match_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let expressions: &[Value] = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);

    let mut requirements: Vec<(String, String)> = Vec::new();
    for (key, value) in match_labels {
        let value = value.as_str().ok_or(SelectorError::Shape)?;
        validate_label_key(key)?;
        validate_label_value(value)?;
        requirements.push((key.clone(), format!("{key}={value}")));
    }
    for expr in expressions {
        let key = str_at(expr, &["key"]);
        let operator = str_at(expr, &["operator"]);
        let mut values: Vec<&str> = arr_at(expr, &["values"])
            .iter()
            .map(|v| v.as_str().ok_or(SelectorError::Shape))
            .collect::<Result<_, _>>()?;
        validate_label_key(key)?;
        let text = match operator {
            "In" | "NotIn" => {
                if values.is_empty() {
                    return Err(SelectorError::Values(operator.to_string(), "one or more"));
                }
                for v in &values {
                    validate_label_value(v)?;
                }
                values.sort_unstable();
                let op = if operator == "In" { "in" } else { "notin" };
                format!("{key} {op} ({})", values.join(","))
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(SelectorError::Values(operator.to_string(), "no"));
                }
                if operator == "Exists" {
                    key.to_string()
                } else {
                    format!("!{key}")
                }
            }
            other => return Err(SelectorError::Operator(other.to_string())),
        };
        requirements.push((key.to_string(), text));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// A qualified name: `[prefix/]name`, prefix a DNS subdomain, name <= 63 chars of
/// alphanumerics, '-', '_', '.', starting and ending alphanumeric.
fn validate_label_key(key: &str) -> Result<(), SelectorError> {
    let bad = || SelectorError::Key(key.to_string());
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(bad());
        }
    }
    if name.is_empty() || !is_label_token(name) {
        return Err(bad());
    }
    Ok(())
}

fn validate_label_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_label_token(value) {
        Ok(())
    } else {
        Err(SelectorError::Value(value.to_string()))
    }
}

fn is_label_token(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// IPs (else hostnames) of load-balancer ingress points, sorted and de-duplicated
/// (upstream collects them in a string set).
fn load_balancer_ingress(lb: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = lb
        .map(|lb| arr_at(lb, &["ingress"]))
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `formatEndpoints` with all ports: up to three `ip:port` entries, then "+ N more...".
fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may publish addresses without ports.
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            let port = int_at(port, &["port"]).unwrap_or(0);
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(addr, &["ip"]), port));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// `net.JoinHostPort`: brackets around hosts containing a colon (IPv6).
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `listWithMoreString`: the first `max` entries, "+ N more..." beyond, "<unset>" if none.
fn list_with_more(items: &[String], max: usize) -> String {
    let shown = &items[..items.len().min(max)];
    let joined = shown.join(",");
    if items.len() > max {
        format!("{joined} + {} more...", items.len() - max)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

/// `formatHPAMetrics` over autoscaling/v2 metrics (autoscaling/v1's CPU target is mapped
/// to the Resource metric it converts to).
fn hpa_targets(obj: &Value) -> String {
    let specs = arr_at(obj, &["spec", "metrics"]);
    if specs.is_empty() {
        return hpa_v1_cpu_target(obj).unwrap_or_else(|| "<none>".to_string());
    }
    let statuses = arr_at(obj, &["status", "currentMetrics"]);
    const MAX: usize = 2;
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = |source: &str| statuses.get(i).and_then(|s| at(s, &[source]));
        let entry = match str_at(spec, &["type"]) {
            ty @ ("External" | "Object") => {
                let source = if ty == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = at(spec, &[source, "target"]).unwrap_or(&Value::Null);
                let current = status(source);
                if let Some(avg) = at(target, &["averageValue"]) {
                    let cur = current
                        .and_then(|c| at(c, &["current", "averageValue"]))
                        .map(|q| quantity_text(Some(q)))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{cur}/{} (avg)", quantity_text(Some(avg)))
                } else {
                    let cur = current
                        .map(|c| quantity_ptr_text(at(c, &["current", "value"])))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{cur}/{}", quantity_ptr_text(at(target, &["value"])))
                }
            }
            "Pods" => {
                let cur = status("pods")
                    .map(|c| quantity_ptr_text(at(c, &["current", "averageValue"])))
                    .unwrap_or_else(|| "<unknown>".to_string());
                format!(
                    "{cur}/{}",
                    quantity_ptr_text(at(spec, &["pods", "target", "averageValue"]))
                )
            }
            ty @ ("Resource" | "ContainerResource") => {
                let source = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = str_at(spec, &[source, "name"]);
                let target = at(spec, &[source, "target"]).unwrap_or(&Value::Null);
                let current = status(source);
                if let Some(avg) = at(target, &["averageValue"]) {
                    let cur = current
                        .map(|c| quantity_ptr_text(at(c, &["current", "averageValue"])))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{name}: {cur}/{}", quantity_text(Some(avg)))
                } else {
                    let cur = current
                        .and_then(|c| int_at(c, &["current", "averageUtilization"]))
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    let tgt = int_at(target, &["averageUtilization"])
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{name}: {cur}/{tgt}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    if list.len() > MAX {
        let extra = list.len() - MAX;
        list.truncate(MAX);
        format!("{} + {extra} more...", list.join(", "))
    } else {
        list.join(", ")
    }
}

fn hpa_v1_cpu_target(obj: &Value) -> Option<String> {
    let target = int_at(obj, &["spec", "targetCPUUtilizationPercentage"])?;
    let current = int_at(obj, &["status", "currentCPUUtilizationPercentage"])
        .map(|c| format!("{c}%"))
        .unwrap_or_else(|| "<unknown>".to_string());
    Some(format!("cpu: {current}/{target}%"))
}
