//! The horizontal pod autoscaler (upstream `pkg/controller/podautoscaler`, autoscaling/v2):
//! every 15 seconds it reads the target's scale subresource, keeps the replica count within
//! `minReplicas`..`maxReplicas`, and otherwise sizes the target from CPU utilization read from
//! the resource metrics API (`metrics.k8s.io`). With no metrics API serving, it says so exactly
//! as kube-controller-manager does: `ScalingActive=False` with reason `FailedGetResourceMetric`
//! and the `FailedGetResourceMetric`/`FailedComputeMetricsReplicas` events.
//!
//! Also home of the scale-subresource lookup the disruption controller shares.

use super::reconcile_loop::Recorder;
use super::reconcile_loop::{self, Queue, informer};
use super::util::pod_ready;
use super::{Context, ControllerError};
use crate::admission::quantity::Quantity as Q;
use crate::api::selectors::LabelSelector;
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricSpec, MetricStatus, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `--horizontal-pod-autoscaler-sync-period`.
const RESYNC: Duration = Duration::from_secs(15);
/// `--horizontal-pod-autoscaler-downscale-stabilization`.
const DOWNSCALE_STABILIZATION: Duration = Duration::from_secs(300);
/// `--horizontal-pod-autoscaler-tolerance`.
const TOLERANCE: f64 = 0.1;

pub fn runner(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(run(ctx, stop))
}

struct Ctrl {
    client: kube::Client,
    events: Recorder,
    pods: Store<Pod>,
    /// Recent recommendations per HPA, for downscale stabilization.
    recommendations: Mutex<HashMap<String, Vec<(i32, Instant)>>>,
}

async fn run(ctx: Arc<Context>, stop: CancellationToken) -> Result<(), ControllerError> {
    let client = ctx.client_for("horizontal-pod-autoscaler")?;
    let informer_client = ctx.clients.client("system:kube-controller-manager")?;
    let hpas = informer(Api::<HorizontalPodAutoscaler>::all(informer_client.clone()));
    let pods = informer(Api::<Pod>::all(informer_client));
    let c = Arc::new(Ctrl {
        client: client.clone(),
        events: Recorder::new(&ctx, client, "horizontal-pod-autoscaler"),
        pods: pods.store.clone(),
        recommendations: Mutex::new(HashMap::new()),
    });
    let mut queue = Queue::<HorizontalPodAutoscaler>::default();
    queue.add_self(hpas.events);
    // Pods only keep the store current; the HPA resyncs on its own clock.
    queue.add_mapped(pods.events, |_: Pod| None);
    let ready = vec![
        reconcile_loop::ready(&hpas.store),
        reconcile_loop::ready(&pods.store),
    ];
    reconcile_loop::run(
        "horizontalpodautoscaling",
        hpas.store,
        queue,
        ready,
        c,
        |hpa, c| async move {
            let key = format!(
                "{}/{}",
                hpa.metadata.namespace.as_deref().unwrap_or(""),
                hpa.metadata.name.as_deref().unwrap_or("")
            );
            if let Err(e) = reconcile(&c, &hpa).await {
                tracing::info!(hpa = key, error = %e, "reconciling autoscaler");
            }
            Ok::<_, ControllerError>(Action::requeue(RESYNC))
        },
        (Duration::from_secs(1), RESYNC),
        stop,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// The scale subresource of any kind

/// A target's `autoscaling/v1` Scale, as fetched.
#[derive(Debug, Clone)]
pub struct Scale {
    pub uid: String,
    pub replicas: i32,
    pub status_replicas: i32,
    pub selector: String,
    pub path: String,
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// The kind is not served (a RESTMapper "no matches").
    #[error("{0}")]
    NoMatch(String),
    /// The kind is served but has no scale subresource.
    #[error("{0}")]
    NotScalable(String),
    #[error("{0}")]
    Api(String),
    #[error("{0}")]
    NotFound(String),
}

fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Finds the resource for (apiVersion, kind) and fetches `<name>/scale` in `ns`.
pub async fn get_scale(
    client: &kube::Client,
    ns: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<Scale, ScaleError> {
    let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [v] => (String::new(), v.to_string()),
        [g, v] => (g.to_string(), v.to_string()),
        _ => {
            return Err(ScaleError::NoMatch(format!(
                "unexpected GroupVersion string: {api_version}"
            )));
        }
    };
    let gvk = GroupVersionKind::gvk(&group, &version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|_| {
            ScaleError::NoMatch(format!(
                "no matches for kind \"{kind}\" in group \"{group}\""
            ))
        })?;
    let path = scale_path(&ar, ns, name);
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| ScaleError::Api(e.to_string()))?;
    match client.request::<Value>(req).await {
        Ok(body) => Ok(Scale {
            uid: body
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            replicas: body
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0) as i32,
            status_replicas: body
                .pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0) as i32,
            selector: body
                .pointer("/status/selector")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            path,
            body,
        }),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let scalable = caps
                .subresources
                .iter()
                .any(|(sub, _)| sub.plural == "scale")
                || caps
                    .subresources
                    .iter()
                    .any(|(sub, _)| sub.plural.ends_with("/scale"));
            let gr = if ar.group.is_empty() {
                ar.plural.clone()
            } else {
                format!("{}.{}", ar.plural, ar.group)
            };
            if !scalable {
                return Err(ScaleError::NotScalable(format!(
                    "{gr} does not implement the scale subresource"
                )));
            }
            Err(ScaleError::NotFound(e.message))
        }
        Err(e) => Err(ScaleError::Api(api_error(&e))),
    }
}

fn scale_path(ar: &ApiResource, ns: &str, name: &str) -> String {
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    format!("{base}/namespaces/{ns}/{}/{name}/scale", ar.plural)
}

/// Writes `replicas` through the scale subresource.
async fn update_scale(client: &kube::Client, scale: &Scale, replicas: i32) -> Result<(), String> {
    let mut body = scale.body.clone();
    if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), Value::from(replicas));
    } else if let Some(o) = body.as_object_mut() {
        o.insert("spec".into(), serde_json::json!({"replicas": replicas}));
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let req = http::Request::put(&scale.path)
        .header("content-type", "application/json")
        .body(bytes)
        .map_err(|e| e.to_string())?;
    client
        .request::<Value>(req)
        .await
        .map(|_| ())
        .map_err(|e| api_error(&e))
}

// ---------------------------------------------------------------------------------------------
// Conditions and status

fn set_condition(
    hpa: &mut HorizontalPodAutoscaler,
    ty: &str,
    status: &str,
    reason: &str,
    msg: String,
) {
    let conds = hpa
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    let idx = match conds.iter().position(|c| c.type_ == ty) {
        Some(i) => i,
        None => {
            conds.push(HorizontalPodAutoscalerCondition {
                type_: ty.into(),
                status: String::new(),
                ..Default::default()
            });
            conds.len() - 1
        }
    };
    let c = &mut conds[idx];
    if c.status != status {
        c.last_transition_time = Some(Time(jiff::Timestamp::now()));
    }
    c.status = status.into();
    c.reason = Some(reason.into());
    c.message = Some(msg);
}

fn set_status(
    hpa: &mut HorizontalPodAutoscaler,
    current: i32,
    desired: i32,
    metrics: Option<Vec<MetricStatus>>,
    rescale: bool,
) {
    let old = hpa.status.take().unwrap_or_default();
    hpa.status = Some(HorizontalPodAutoscalerStatus {
        current_replicas: (current != 0).then_some(current),
        desired_replicas: desired,
        last_scale_time: if rescale {
            Some(Time(jiff::Timestamp::now()))
        } else {
            old.last_scale_time
        },
        current_metrics: metrics,
        conditions: old.conditions,
        observed_generation: old.observed_generation,
    });
}

async fn update_status_if_needed(
    c: &Ctrl,
    original: &Option<HorizontalPodAutoscalerStatus>,
    hpa: &HorizontalPodAutoscaler,
) -> Result<(), ControllerError> {
    if original == &hpa.status {
        return Ok(());
    }
    let ns = hpa.metadata.namespace.clone().unwrap_or_default();
    let name = hpa.metadata.name.clone().unwrap_or_default();
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), &ns);
    if let Err(e) = api.replace_status(&name, &PostParams::default(), hpa).await {
        c.events
            .warning(
                &hpa.object_ref(&()),
                "FailedUpdateStatus",
                "Update",
                api_error(&e),
            )
            .await;
        return Err(ControllerError::Invalid(format!(
            "failed to update status for {name}: {}",
            api_error(&e)
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The reconcile

async fn reconcile(c: &Ctrl, shared: &HorizontalPodAutoscaler) -> Result<(), ControllerError> {
    let mut hpa = shared.clone();
    let original = hpa.status.clone();
    let ns = hpa.metadata.namespace.clone().unwrap_or_default();
    let key = format!("{ns}/{}", hpa.metadata.name.as_deref().unwrap_or(""));
    let href = hpa.object_ref(&());
    let spec = hpa.spec.clone();
    let target = &spec.scale_target_ref;
    let reference = format!("{}/{ns}/{}", target.kind, target.name);
    let api_version = target.api_version.clone().unwrap_or_default();
    let scale = match get_scale(&c.client, &ns, &api_version, &target.kind, &target.name).await {
        Ok(s) => s,
        Err(e) => {
            c.events
                .warning(&href, "FailedGetScale", "GetScale", e.to_string())
                .await;
            set_condition(
                &mut hpa,
                "AbleToScale",
                "False",
                "FailedGetScale",
                format!("the HPA controller was unable to get the target's current scale: {e}"),
            );
            update_status_if_needed(c, &original, &hpa).await?;
            return Err(ControllerError::Invalid(format!(
                "failed to query scale subresource for {reference}: {e}"
            )));
        }
    };
    set_condition(
        &mut hpa,
        "AbleToScale",
        "True",
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".into(),
    );
    let current = scale.replicas;
    c.recommendations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_insert_with(|| vec![(current, Instant::now())]);
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let mut desired = 0;
    let mut reason = String::new();
    let mut rescale = true;
    let mut statuses: Option<Vec<MetricStatus>> = None;
    if current == 0 && min != 0 {
        rescale = false;
        set_condition(
            &mut hpa,
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
        );
    } else if current > max {
        reason = "Current number of replicas above Spec.MaxReplicas".into();
        desired = max;
    } else if current < min {
        reason = "Current number of replicas below Spec.MinReplicas".into();
        desired = min;
    } else {
        let metrics = spec.metrics.clone().unwrap_or_default();
        let (proposal, metric_name, st, err) =
            compute_replicas_for_metrics(c, &mut hpa, &scale, &metrics).await;
        statuses = Some(st);
        if let Some(e) = &err
            && proposal == -1
        {
            let d = hpa.status.as_ref().map_or(0, |s| s.desired_replicas);
            set_status(&mut hpa, current, d, statuses, false);
            update_status_if_needed(c, &original, &hpa).await?;
            c.events
                .warning(
                    &href,
                    "FailedComputeMetricsReplicas",
                    "ComputeReplicas",
                    e.clone(),
                )
                .await;
            return Err(ControllerError::Invalid(format!(
                "failed to compute desired number of replicas based on listed metrics for {reference}: {e}"
            )));
        }
        if proposal > desired {
            desired = proposal;
        }
        if desired > current {
            reason = format!("{metric_name} above target");
        }
        if desired < current {
            reason = "All metrics below target".into();
        }
        desired = normalize_desired(c, &key, &mut hpa, current, desired, min, max);
        rescale = desired != current;
    }
    if rescale {
        if let Err(e) = update_scale(&c.client, &scale, desired).await {
            c.events
                .warning(
                    &href,
                    "FailedRescale",
                    "Rescale",
                    format!("New size: {desired}; reason: {reason}; error: {e}"),
                )
                .await;
            set_condition(
                &mut hpa,
                "AbleToScale",
                "False",
                "FailedUpdateScale",
                format!("the HPA controller was unable to update the target scale: {e}"),
            );
            let d = hpa.status.as_ref().map_or(0, |s| s.desired_replicas);
            set_status(&mut hpa, current, d, statuses, false);
            update_status_if_needed(c, &original, &hpa).await?;
            return Err(ControllerError::Invalid(format!(
                "failed to rescale {reference}: {e}"
            )));
        }
        set_condition(
            &mut hpa,
            "AbleToScale",
            "True",
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
        );
        c.events
            .normal(
                &href,
                "SuccessfulRescale",
                "Rescale",
                format!("New size: {desired}; reason: {reason}"),
            )
            .await;
        tracing::info!(hpa = key, current, desired, reason, "rescaled");
    } else {
        desired = current;
    }
    set_status(&mut hpa, current, desired, statuses, rescale);
    update_status_if_needed(c, &original, &hpa).await
}

/// (replicas or -1, metric name, statuses, first error) over all metrics.
async fn compute_replicas_for_metrics(
    c: &Ctrl,
    hpa: &mut HorizontalPodAutoscaler,
    scale: &Scale,
    metrics: &[MetricSpec],
) -> (i32, String, Vec<MetricStatus>, Option<String>) {
    let href = hpa.object_ref(&());
    let mut statuses = vec![MetricStatus::default(); metrics.len()];
    if scale.selector.is_empty() {
        c.events
            .warning(
                &href,
                "SelectorRequired",
                "ComputeReplicas",
                "selector is required".into(),
            )
            .await;
        set_condition(
            hpa,
            "ScalingActive",
            "False",
            "InvalidSelector",
            "the HPA target's scale is missing a selector".into(),
        );
        return (
            -1,
            String::new(),
            Vec::new(),
            Some("selector is required".into()),
        );
    }
    let selector = match LabelSelector::parse(&scale.selector) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!(
                "couldn't convert selector into a corresponding internal selector object: {e}"
            );
            c.events
                .warning(&href, "InvalidSelector", "ComputeReplicas", msg.clone())
                .await;
            set_condition(
                hpa,
                "ScalingActive",
                "False",
                "InvalidSelector",
                msg.clone(),
            );
            return (-1, String::new(), Vec::new(), Some(msg));
        }
    };
    let mut replicas = 0;
    let mut name = String::new();
    let mut invalid = 0;
    let mut first: Option<(String, String, String)> = None;
    for (i, m) in metrics.iter().enumerate() {
        match compute_replicas_for_metric(c, hpa, m, scale, &selector).await {
            Ok((r, n, st)) => {
                statuses[i] = st;
                if replicas == 0 || r > replicas {
                    replicas = r;
                    name = n;
                }
            }
            Err((reason, cond_msg, err)) => {
                if first.is_none() {
                    first = Some((reason, cond_msg, err));
                }
                invalid += 1;
            }
        }
    }
    let err = first.as_ref().map(|(_, _, e)| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {e}",
            metrics.len()
        )
    });
    if invalid >= metrics.len() || (invalid > 0 && replicas < scale.replicas) {
        if let Some((reason, msg, _)) = &first {
            set_condition(hpa, "ScalingActive", "False", reason, msg.clone());
        }
        return (-1, String::new(), statuses, err);
    }
    set_condition(
        hpa,
        "ScalingActive",
        "True",
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {name}"),
    );
    (replicas, name, statuses, err)
}

/// One metric: Ok((replicas, name, status)) or Err((condition reason, condition message, error)).
async fn compute_replicas_for_metric(
    c: &Ctrl,
    hpa: &HorizontalPodAutoscaler,
    m: &MetricSpec,
    scale: &Scale,
    selector: &LabelSelector,
) -> Result<(i32, String, MetricStatus), (String, String, String)> {
    let fail = |reason: &'static str, e: String| fail_metric(c, hpa, reason, e);
    match m.type_.as_str() {
        "Resource" => {
            let Some(res) = &m.resource else {
                return Err(fail(
                    "FailedGetResourceMetric",
                    "missing resource metric source".into(),
                )
                .await);
            };
            let rname = res.name.clone();
            let Some(target) = res.target.average_utilization else {
                let e = if res.target.average_value.is_some() {
                    // Raw usage targets need the same metrics API.
                    format!(
                        "failed to get {rname} usage: unable to get metrics for resource {rname}: {}",
                        metrics_unavailable_or("")
                    )
                } else {
                    "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into()
                };
                let (r, msg, e) = fail("FailedGetResourceMetric", e).await;
                return Err((
                    r,
                    msg,
                    format!("failed to get {rname} resource metric value: {e}"),
                ));
            };
            let ns = hpa.metadata.namespace.clone().unwrap_or_default();
            match resource_replicas(c, &ns, scale, selector, &rname, target).await {
                Ok((replicas, utilization, raw_milli)) => Ok((
                    replicas,
                    format!("{rname} resource utilization (percentage of request)"),
                    MetricStatus {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricStatus {
                            name: rname,
                            current: MetricValueStatus {
                                average_utilization: Some(utilization),
                                average_value: Some(Quantity(format!("{raw_milli}m"))),
                                value: None,
                            },
                        }),
                        ..Default::default()
                    },
                )),
                Err(e) => {
                    let e = format!("failed to get {rname} utilization: {e}");
                    let (r, msg, e) = fail("FailedGetResourceMetric", e).await;
                    Err((
                        r,
                        msg,
                        format!("failed to get {rname} resource metric value: {e}"),
                    ))
                }
            }
        }
        "ContainerResource" => {
            let (container, rname) = m
                .container_resource
                .as_ref()
                .map(|r| (r.container.clone(), r.name.clone()))
                .unwrap_or_default();
            let e = format!(
                "failed to get {rname} utilization: unable to get metrics for resource {rname}: {}",
                metrics_unavailable_or("")
            );
            let (r, msg, e) = fail("FailedGetContainerResourceMetric", e).await;
            Err((
                r,
                msg,
                format!("failed to get {container} container metric value: {e}"),
            ))
        }
        "Pods" => {
            let name = m
                .pods
                .as_ref()
                .map(|p| p.metric.name.clone())
                .unwrap_or_default();
            let e = format!(
                "unable to get metric {name}: unable to fetch metrics from custom metrics API: the server could not find the requested resource (get pods.custom.metrics.k8s.io *)"
            );
            let (r, msg, e) = fail("FailedGetPodsMetric", e).await;
            Err((r, msg, format!("failed to get pods metric value: {e}")))
        }
        "Object" => {
            let name = m
                .object
                .as_ref()
                .map(|p| p.metric.name.clone())
                .unwrap_or_default();
            let e = format!(
                "unable to get metric {name}: unable to fetch metrics from custom metrics API: the server could not find the requested resource"
            );
            let (r, msg, e) = fail("FailedGetObjectMetric", e).await;
            Err((r, msg, format!("failed to get object metric value: {e}")))
        }
        "External" => {
            let name = m
                .external
                .as_ref()
                .map(|p| p.metric.name.clone())
                .unwrap_or_default();
            let e = format!(
                "unable to get external metric {}/{name}/nil: unable to fetch metrics from external metrics API: the server could not find the requested resource (get {name}.external.metrics.k8s.io)",
                hpa.metadata.namespace.as_deref().unwrap_or("")
            );
            let (r, msg, e) = fail("FailedGetExternalMetric", e).await;
            Err((
                r,
                msg,
                format!("failed to get {name} external metric value: {e}"),
            ))
        }
        other => {
            let e = format!("unknown metric source type {other:?}");
            Err(fail("InvalidMetricSourceType", e).await)
        }
    }
}

/// Records a metric failure: the event and condition carry the error; the caller wraps it.
async fn fail_metric(
    c: &Ctrl,
    hpa: &HorizontalPodAutoscaler,
    reason: &'static str,
    e: String,
) -> (String, String, String) {
    c.events
        .warning(&hpa.object_ref(&()), reason, "ComputeReplicas", e.clone())
        .await;
    (
        reason.to_string(),
        format!("the HPA was unable to compute the replica count: {e}"),
        e,
    )
}

/// The error client-go gives when `metrics.k8s.io` is not served.
fn metrics_unavailable_or(msg: &str) -> String {
    if msg.is_empty() {
        "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)".into()
    } else {
        format!("unable to fetch metrics from resource metrics API: {msg}")
    }
}

/// Lists pod metrics from `metrics.k8s.io`: pod name -> summed usage (milli) of `resource`.
async fn pod_metrics(
    c: &Ctrl,
    ns: &str,
    selector: &LabelSelector,
    resource: &str,
) -> Result<HashMap<String, i64>, String> {
    let path = format!(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector={}",
        percent_encoding::utf8_percent_encode(
            &selector.to_string_form(),
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let list: Value = match c.client.request(req).await {
        Ok(v) => v,
        Err(kube::Error::Api(e)) if e.code == 404 => return Err(metrics_unavailable_or("")),
        Err(e) => return Err(metrics_unavailable_or(&api_error(&e))),
    };
    let items = list["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    let mut out = HashMap::new();
    for it in items {
        let name = it
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut sum = 0;
        for ctr in it["containers"].as_array().into_iter().flatten() {
            if let Some(q) = ctr
                .pointer(&format!("/usage/{resource}"))
                .and_then(Value::as_str)
            {
                sum += Q::parse(q).map(|q| q.milli_value()).unwrap_or(0);
            }
        }
        out.insert(name.to_string(), sum);
    }
    Ok(out)
}

/// Replicas for a utilization target: (replicas, current utilization %, average usage milli).
async fn resource_replicas(
    c: &Ctrl,
    ns: &str,
    scale: &Scale,
    selector: &LabelSelector,
    resource: &str,
    target: i32,
) -> Result<(i32, i32, i64), String> {
    let metrics = pod_metrics(c, ns, selector, resource)
        .await
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))?;
    let pods: Vec<Arc<Pod>> = c
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns)
                && p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed")
                && selector.matches(p.metadata.labels.as_ref().unwrap_or(&Default::default()))
        })
        .collect();
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let (mut usage, mut requests, mut counted) = (0i64, 0i64, 0i32);
    for p in &pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let Some(u) = metrics.get(&name) else {
            continue;
        };
        if !pod_ready(p) {
            continue;
        }
        let mut req = 0;
        for ctr in p.spec.iter().flat_map(|s| s.containers.iter()) {
            let r = ctr
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource));
            match r {
                Some(q) => req += Q::parse(&q.0).map(|q| q.milli_value()).unwrap_or(0),
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {name}",
                        ctr.name
                    ));
                }
            }
        }
        usage += u;
        requests += req;
        counted += 1;
    }
    if counted == 0 || requests == 0 {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let utilization = (usage * 100 / requests) as i32;
    let ratio = f64::from(utilization) / f64::from(target);
    let replicas = if (1.0 - ratio).abs() <= TOLERANCE {
        scale.replicas
    } else {
        (ratio * f64::from(counted)).ceil() as i32
    };
    Ok((replicas, utilization, usage / i64::from(counted)))
}

/// Downscale stabilization and the min/max/scale-up limits (no `behavior` policies).
fn normalize_desired(
    c: &Ctrl,
    key: &str,
    hpa: &mut HorizontalPodAutoscaler,
    current: i32,
    proposed: i32,
    min: i32,
    max: i32,
) -> i32 {
    let stabilized = {
        let mut recs = c.recommendations.lock().unwrap_or_else(|p| p.into_inner());
        let list = recs.entry(key.to_string()).or_default();
        let cutoff = Instant::now().checked_sub(DOWNSCALE_STABILIZATION);
        let mut best = proposed;
        let mut old = None;
        for (i, (r, t)) in list.iter().enumerate() {
            if cutoff.is_some_and(|c| *t < c) {
                old = Some(i);
            } else if *r > best {
                best = *r;
            }
        }
        match old {
            Some(i) => list[i] = (proposed, Instant::now()),
            None => list.push((proposed, Instant::now())),
        }
        best
    };
    if stabilized != proposed {
        set_condition(
            hpa,
            "AbleToScale",
            "True",
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation".into(),
        );
    } else {
        set_condition(
            hpa,
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size".into(),
        );
    }
    let (desired, reason, msg) = convert_with_rules(current, stabilized, min, max);
    let status = if desired == stabilized {
        "False"
    } else {
        "True"
    };
    set_condition(hpa, "ScalingLimited", status, reason, msg.into());
    desired
}

/// Clamps a recommendation (upstream convertDesiredReplicasWithRules).
pub fn convert_with_rules(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
) -> (i32, &'static str, &'static str) {
    let scale_up_limit = (current * 2).max(4);
    let (maximum, max_reason, max_msg) = if max > scale_up_limit {
        (
            scale_up_limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    };
    if desired < min {
        return (
            min,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        );
    }
    if desired > maximum {
        return (maximum, max_reason, max_msg);
    }
    (
        desired,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommendations_are_clamped_like_upstream() {
        assert_eq!(convert_with_rules(2, 1, 2, 10).0, 2);
        assert_eq!(convert_with_rules(2, 1, 2, 10).1, "TooFewReplicas");
        // Scale up at most to max(2*current, 4).
        assert_eq!(
            convert_with_rules(1, 20, 1, 10),
            (
                4,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate"
            )
        );
        assert_eq!(convert_with_rules(5, 20, 1, 8).0, 8);
        assert_eq!(convert_with_rules(5, 20, 1, 8).1, "TooManyReplicas");
        assert_eq!(convert_with_rules(3, 5, 1, 8).1, "DesiredWithinRange");
    }

    #[test]
    fn scale_paths_for_core_and_grouped_kinds() {
        let deploy = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "Deployment"),
            "deployments",
        );
        assert_eq!(
            scale_path(&deploy, "ns", "web"),
            "/apis/apps/v1/namespaces/ns/deployments/web/scale"
        );
        let rc = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", "v1", "ReplicationController"),
            "replicationcontrollers",
        );
        assert_eq!(
            scale_path(&rc, "ns", "old"),
            "/api/v1/namespaces/ns/replicationcontrollers/old/scale"
        );
    }

    #[test]
    fn conditions_keep_transition_times_unless_status_changes() {
        let mut hpa = HorizontalPodAutoscaler::default();
        set_condition(
            &mut hpa,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "m".into(),
        );
        let t0 = hpa
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| c[0].last_transition_time.clone());
        set_condition(
            &mut hpa,
            "AbleToScale",
            "True",
            "SucceededRescale",
            "n".into(),
        );
        let conds = hpa
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].reason.as_deref(), Some("SucceededRescale"));
        assert_eq!(Some(conds[0].last_transition_time.clone()), t0);
    }
}
