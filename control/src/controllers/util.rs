//! Helpers every controller needs: owner references, pod readiness, label selectors.

use crate::api::selectors::LabelSelector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as TypedSelector, ObjectMeta, OwnerReference,
};
use kube::Resource;
use std::collections::BTreeMap;

/// The controller owner reference an object of `owner` puts on what it creates.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    let meta = owner.meta();
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The owner reference marked `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

/// Whether `meta`'s controller is the object with this uid.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|o| o.uid == uid)
}

/// A typed `metav1.LabelSelector` as a matcher; `None` if it is malformed.
pub fn selector(sel: &TypedSelector) -> Option<LabelSelector> {
    let v = serde_json::to_value(sel).ok()?;
    LabelSelector::from_object(&v).ok()
}

pub fn matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    // An empty selector selects nothing for controllers (upstream treats `{}` as everything
    // only where the API says so; workloads always have a non-empty one).
    !sel.is_empty() && sel.matches(labels.unwrap_or(&BTreeMap::new()))
}

/// The pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// When the pod last became ready.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Ready for at least `min_ready_seconds`.
pub fn pod_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    if !pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod)
        .is_some_and(|t| t + jiff::SignedDuration::from_secs(min_ready_seconds as i64) <= now)
}

/// Not finished and not being deleted.
pub fn pod_active(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    #[test]
    fn readiness_and_availability() {
        let mut pod = Pod::default();
        assert!(!pod_ready(&pod));
        let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
        pod.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t)),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert!(pod_ready(&pod));
        assert!(pod_available(&pod, 5, jiff::Timestamp::now()));
        assert!(!pod_available(&pod, 60, jiff::Timestamp::now()));
        assert!(pod_active(&pod));
    }

    #[test]
    fn typed_selectors_match_labels() {
        let sel = TypedSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            ..Default::default()
        };
        let m = selector(&sel).expect("valid");
        assert!(matches(
            &m,
            Some(&BTreeMap::from([("app".to_string(), "web".to_string())]))
        ));
        assert!(!matches(&m, None));
        assert!(!matches(
            &selector(&TypedSelector::default()).expect("empty"),
            None
        ));
    }
}
