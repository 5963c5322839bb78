//! ControllerRevisions: snapshots of a workload's pod template that StatefulSets and
//! DaemonSets roll between (upstream's `pkg/controller/history`). A revision's data is the
//! strategic merge patch that restores the template, so `kubectl rollout undo` can apply it.

use super::ControllerError;
use super::workload::{is_already_exists, is_conflict};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Label holding the hash of a revision's data.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// FNV-1 (not 1a), 32 bits, as Go's `hash/fnv.New32`.
pub fn fnv32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| {
        h.wrapping_mul(0x0100_0193) ^ u32::from(*b)
    })
}

/// FNV-1a, 32 bits, as Go's `hash/fnv.New32a`.
pub fn fnv32a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// apimachinery's `rand.SafeEncodeString`: no vowels, no confusable characters.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// `prefix-hash`, the prefix cut so the name stays within 253 characters.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut p = prefix;
    if p.len() > 223 {
        let mut end = 223;
        while !p.is_char_boundary(end) {
            end -= 1;
        }
        p = &p[..end];
    }
    format!("{p}-{hash}")
}

/// The patch that restores `template`: `{"spec":{"template":{..., "$patch":"replace"}}}`.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision restores, if its data is such a patch.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.0.get("spec")?.get("template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// Hash of a revision's data and the collision count (upstream's `HashControllerRevision`).
pub fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv32(&bytes).to_string())
}

/// A revision of the parent named `parent_name` holding `data` (not yet created).
pub fn new_revision(
    parent_name: &str,
    namespace: &str,
    controller_ref: OwnerReference,
    template_labels: Option<&BTreeMap<String, String>>,
    data: Value,
    revision: i64,
    collision_count: i32,
) -> ControllerRevision {
    let hash = hash_revision(&data, Some(collision_count));
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(parent_name, &hash)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref]),
            ..Default::default()
        },
        data: RawExtension(data),
        revision: Some(revision),
    }
}

/// Sorts by revision number, then creation time, then name.
pub fn sort_revisions(revs: &mut [Arc<ControllerRevision>]) {
    revs.sort_by(|a, b| {
        a.revision
            .unwrap_or(0)
            .cmp(&b.revision.unwrap_or(0))
            .then_with(|| {
                let t =
                    |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// Whether two revisions hold the same data (upstream's `EqualRevision`: differing numeric
/// hash labels decide at once; otherwise the data is compared).
pub fn equal_revision(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let hash = |r: &ControllerRevision| {
        r.metadata
            .labels
            .as_ref()?
            .get(HASH_LABEL)?
            .parse::<i32>()
            .ok()
    };
    if let (Some(x), Some(y)) = (hash(a), hash(b))
        && x != y
    {
        return false;
    }
    a.data.0 == b.data.0
}

/// The next revision number after `revs` (sorted).
pub fn next_revision(revs: &[Arc<ControllerRevision>]) -> i64 {
    revs.last().map_or(1, |r| r.revision.unwrap_or(0) + 1)
}

/// Creates `rev`, renaming it with a bumped collision count while its name is taken by a
/// revision with other data.
pub async fn create_revision(
    api: &Api<ControllerRevision>,
    parent_name: &str,
    rev: &ControllerRevision,
    collision_count: &mut i32,
) -> Result<ControllerRevision, ControllerError> {
    let data = rev.data.0.clone();
    loop {
        let hash = hash_revision(&data, Some(*collision_count));
        let mut clone = rev.clone();
        clone.metadata.name = Some(revision_name(parent_name, &hash));
        if let Some(l) = clone.metadata.labels.as_mut() {
            l.insert(HASH_LABEL.into(), hash);
        }
        let name = clone.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &clone).await {
            Ok(created) => return Ok(created),
            Err(e) if is_already_exists(&e) => {
                let existing = api.get(&name).await?;
                if existing.data.0 == data {
                    return Ok(existing);
                }
                *collision_count += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets a revision's number (a rollback to an older template makes it the newest again).
pub async fn renumber_revision(
    api: &Api<ControllerRevision>,
    rev: &ControllerRevision,
    revision: i64,
) -> Result<ControllerRevision, ControllerError> {
    let mut cur = rev.clone();
    for _ in 0..5 {
        if cur.revision == Some(revision) {
            return Ok(cur);
        }
        cur.revision = Some(revision);
        let name = cur.metadata.name.clone().unwrap_or_default();
        match api.replace(&name, &PostParams::default(), &cur).await {
            Ok(updated) => return Ok(updated),
            Err(e) if is_conflict(&e) => cur = api.get(&name).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ControllerError::Invalid(format!(
        "conflicts renumbering revision {:?}",
        rev.metadata.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_go() {
        // Go: fnv.New32().Write([]byte("hello")) -> 0xb6fa7167; New32a -> 0x4f9f2cab.
        assert_eq!(fnv32(b"hello"), 0xb6fa_7167);
        assert_eq!(fnv32a(b"hello"), 0x4f9f_2cab);
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
    }

    #[test]
    fn revisions_round_trip_templates_and_compare_by_data() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}
        }))
        .expect("template");
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let r1 = new_revision(
            "web",
            "default",
            OwnerReference::default(),
            t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            data.clone(),
            1,
            0,
        );
        assert_eq!(template_of(&r1), Some(t.clone()));
        assert!(
            r1.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("web-"))
        );
        assert_eq!(
            r1.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("web")
        );
        let r2 = new_revision(
            "web",
            "default",
            OwnerReference::default(),
            None,
            data,
            7,
            0,
        );
        assert!(equal_revision(&r1, &r2));
        assert_eq!(r1.metadata.name, r2.metadata.name);
        let r3 = new_revision(
            "web",
            "default",
            OwnerReference::default(),
            None,
            data_with(&t, "nginx:2"),
            2,
            0,
        );
        assert!(!equal_revision(&r1, &r3));
        assert_ne!(r1.metadata.name, r3.metadata.name);
        // A collision count changes the name, not the data.
        let r4 = new_revision(
            "web",
            "default",
            OwnerReference::default(),
            None,
            template_patch(&t),
            1,
            1,
        );
        assert_ne!(r1.metadata.name, r4.metadata.name);
        assert!(equal_revision(&r1, &r4));
    }

    fn data_with(t: &PodTemplateSpec, image: &str) -> Value {
        let mut t = t.clone();
        if let Some(s) = t.spec.as_mut() {
            s.containers[0].image = Some(image.into());
        }
        template_patch(&t)
    }
}
