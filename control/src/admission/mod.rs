//! Admission, in Kubernetes order: defaults (at decode), mutating plugins (allocations, service
//! accounts, default tolerations, pod priority, job selectors), then validation and namespace
//! lifecycle.

pub mod allocators;
pub mod defaults;
pub mod field;
mod json;
pub mod names;
pub mod priority;
pub(crate) mod quantity;
pub mod serviceaccount;
pub mod strategy;
pub mod validation;
#[cfg(test)]
mod validation_tests;

pub use defaults::apply_defaults;
pub use field::{FieldError, FieldErrorType, aggregate_message, invalid_status_message};
pub use names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value};
pub use strategy::{before_update, prepare_service_update};
pub use validation::validate;

use crate::api::status::{ApiError, ApiResult, Cause};
use crate::registry::meta;
use crate::registry::resources::{self, Resource};
use crate::registry::store::{Extra, Store};
use crate::storage::cache::WatchCache;
use serde_json::{Value, json};
use std::sync::Arc;

/// Namespaces that always exist and cannot be deleted.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

#[derive(Debug, Clone)]
pub struct Admission {
    pub allocators: allocators::Allocators,
    /// DefaultTolerationSeconds for the not-ready and unreachable taints.
    pub not_ready_toleration_seconds: i64,
    pub unreachable_toleration_seconds: i64,
    /// The API server's watch cache of PriorityClasses (set when the server starts): every pod
    /// create resolves its class, which must not cost a storage read each time.
    pub priority_classes: Option<Arc<WatchCache>>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            allocators: allocators::Allocators::default(),
            not_ready_toleration_seconds: 300,
            unreachable_toleration_seconds: 300,
            priority_classes: None,
        }
    }
}

impl Admission {
    /// Defaults as Kubernetes applies them while decoding.
    pub fn defaults(&self, r: &Resource, obj: &mut Value) {
        defaults::apply_defaults(r.group, r.kind, obj);
    }

    /// Mutating admission. Returns the storage operations to commit with the object.
    pub async fn mutate(
        &self,
        store: &Store,
        r: &Resource,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<Extra> {
        match (r.group, r.kind) {
            ("", "Service") => {
                if let Some(old) = old {
                    prepare_service_update(obj, old);
                }
                self.allocators.service(store, r, obj, old).await
            }
            ("", "Pod") if old.is_none() => {
                pod_service_account(obj);
                // NamespaceLifecycle comes first upstream: no waiting for the service account
                // of a namespace that is going away.
                namespace_accepts(store, meta::namespace(obj)).await?;
                serviceaccount::admit_pod(store, obj).await?;
                default_tolerations(
                    obj,
                    self.not_ready_toleration_seconds,
                    self.unreachable_toleration_seconds,
                );
                priority::admit_pod(store, self.priority_classes.as_deref(), r, obj).await?;
                Ok(Extra::default())
            }
            ("", "Pod") => {
                if let Some(old) = old {
                    priority::keep_on_update(obj, old);
                }
                Ok(Extra::default())
            }
            ("batch", "Job") if old.is_none() => {
                job_selector(obj);
                Ok(Extra::default())
            }
            _ => Ok(Extra::default()),
        }
    }

    /// Validating admission: the kind's rules, then namespace lifecycle.
    pub async fn validate(
        &self,
        store: &Store,
        r: &Resource,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let errors = validation::validate(r.group, r.kind, r.namespaced, obj, old);
        if !errors.is_empty() {
            let causes = errors
                .into_iter()
                .map(|e| Cause {
                    reason: e.reason.as_str().to_string(),
                    message: e.message,
                    field: e.field,
                })
                .collect();
            return Err(ApiError::invalid(r, meta::name(obj), causes));
        }
        if (r.group, r.kind) == ("scheduling.k8s.io", "PriorityClass") {
            priority::validate_class(store, r, obj, old).await?;
        }
        if old.is_none() && r.namespaced {
            namespace_accepts(store, meta::namespace(obj)).await?;
        }
        Ok(())
    }

    /// What deleting an object frees in the same transaction.
    pub fn on_delete(&self, r: &Resource, obj: &Value) -> Extra {
        match (r.group, r.kind) {
            ("", "Service") => self.allocators.release(obj),
            _ => Extra::default(),
        }
    }

    /// Deletion rules: immortal namespaces.
    pub fn validate_delete(&self, r: &Resource, name: &str) -> ApiResult<()> {
        if r.group.is_empty() && r.kind == "Namespace" && IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden_message(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        Ok(())
    }
}

/// New content may be created only in a namespace that exists and is not terminating.
async fn namespace_accepts(store: &Store, namespace: &str) -> ApiResult<()> {
    let Some(ns_res) = resources::find("", "v1", "namespaces") else {
        return Ok(());
    };
    match store.get(ns_res, "", namespace).await? {
        None => Err(ApiError::not_found(ns_res, namespace)),
        Some(ns)
            if meta::deletion_timestamp(&ns).is_some()
                || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") =>
        {
            Err(ApiError::forbidden_message(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            )))
        }
        Some(_) => Ok(()),
    }
}

/// ServiceAccount admission: every pod runs as a service account, `default` unless named.
fn pod_service_account(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
}

/// DefaultTolerationSeconds: tolerate not-ready and unreachable nodes for 300 s.
fn default_tolerations(pod: &mut Value, not_ready: i64, unreachable: i64) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Value::Array(list) = tolerations else {
        return;
    };
    for (key, seconds) in [
        ("node.kubernetes.io/not-ready", not_ready),
        ("node.kubernetes.io/unreachable", unreachable),
    ] {
        let covered = list.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str);
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            (k == Some(key) || (k.is_none() && op == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !covered {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
}

/// Jobs select their pods by the job's uid unless `manualSelector` is set.
fn job_selector(job: &mut Value) {
    if job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let uid = meta::uid(job).to_string();
    let name = meta::name(job).to_string();
    let labels = json!({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    });
    if let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        let tmeta = spec
            .entry("template")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|t| t.entry("metadata").or_insert_with(|| json!({})));
        if let Some(Value::Object(tm)) = tmeta {
            let l = tm.entry("labels").or_insert_with(|| json!({}));
            if let (Value::Object(l), Value::Object(add)) = (l, labels) {
                for (k, v) in add {
                    l.insert(k, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_a_service_account_and_default_tolerations() {
        let mut pod = json!({"spec": {"containers": [], "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]}});
        pod_service_account(&mut pod);
        default_tolerations(&mut pod, 300, 300);
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        let t = pod["spec"]["tolerations"].as_array().expect("tolerations");
        assert_eq!(
            t.len(),
            2,
            "the user's unreachable toleration is kept, not-ready added"
        );
        assert_eq!(t[0]["tolerationSeconds"], 10);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
    }

    #[test]
    fn jobs_select_by_uid() {
        let mut job =
            json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {"spec": {}}}});
        job_selector(&mut job);
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "pi"
        );
    }
}
