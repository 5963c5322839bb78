//! What every cluster has from its first start: the system namespaces, the bootstrap RBAC
//! policy, the system PriorityClasses, and the `kubernetes` Service in `default` pointing at
//! the API servers.
//! Written through the same pipeline as API writes; objects that exist are left alone.

use crate::api::ApiServer;
use crate::api::status::ApiResult;
use crate::registry::resources::{self, Resource};
use crate::registry::{meta, strategy};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates `obj` unless an object of that name exists.
pub async fn ensure(api: &Arc<ApiServer>, r: &'static Resource, mut obj: Value) -> ApiResult<()> {
    if api
        .store
        .get(r, meta::namespace(&obj), meta::name(&obj))
        .await?
        .is_some()
    {
        return Ok(());
    }
    strategy::prepare_create(r, &mut obj);
    api.admission.defaults(r, &mut obj);
    let extra = api.admission.mutate(&api.store, r, &mut obj, None).await?;
    match api.store.create(r, obj, extra).await {
        Ok(_) => Ok(()),
        // Another API server bootstrapping at the same moment.
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

fn find(group: &str, plural: &str) -> &'static Resource {
    match resources::find(group, "v1", plural) {
        Some(r) => r,
        None => unreachable!("{group}/{plural} is in the resource table"),
    }
}

pub async fn run(api: &Arc<ApiServer>, advertise: IpAddr, port: u16) -> ApiResult<()> {
    let namespaces = find("", "namespaces");
    for ns in SYSTEM_NAMESPACES {
        ensure(
            api,
            namespaces,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    for obj in crate::auth::bootstrap::bootstrap_objects()
        .into_iter()
        .chain(crate::auth::bootstrap::bootstrap_namespaced_objects())
    {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(r) = resources::find_kind("rbac.authorization.k8s.io", &kind) else {
            continue;
        };
        ensure(api, r, obj).await?;
    }
    let pcs = match resources::find("scheduling.k8s.io", "v1", "priorityclasses") {
        Some(r) => r,
        None => unreachable!("priorityclasses are in the resource table"),
    };
    for pc in crate::admission::priority::system_priority_classes() {
        ensure(api, pcs, pc).await?;
    }
    // Kubelets have no Node authorizer here: RBAC grants the system:nodes group the node role.
    ensure(
        api,
        find("rbac.authorization.k8s.io", "clusterrolebindings"),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "ketch:nodes", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}],
        }),
    )
    .await?;
    let ip = api.admission.allocators.api_service_ip().to_string();
    ensure(
        api,
        find("", "services"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        }),
    )
    .await?;
    let address = advertise.to_string();
    ensure(
        api,
        find("", "endpoints"),
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    ensure(
        api,
        find("discovery.k8s.io", "endpointslices"),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
    )
    .await?;
    Ok(())
}
