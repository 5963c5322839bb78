//! The Priority admission plugin (`plugin/pkg/admission/priority`): a new pod's
//! `priorityClassName` is resolved to `spec.priority` and `spec.preemptionPolicy` (the global
//! default class when none is named, priority 0 when there is no default either); an unknown
//! class is refused. PriorityClasses themselves: at most one may be the global default.

use crate::api::status::{ApiError, ApiResult};
use crate::registry::meta;
use crate::registry::resources::{self, Resource};
use crate::registry::store::Store;
use crate::storage::cache::WatchCache;
use serde_json::{Value, json};

pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
pub const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";
/// `scheduling.DefaultPriorityWhenNoDefaultClassExists`.
const DEFAULT_PRIORITY: i64 = 0;
const PREEMPT_LOWER: &str = "PreemptLowerPriority";

/// The classes kube-apiserver creates at start (`scheduling.SystemPriorityClasses`).
pub fn system_priority_classes() -> Vec<Value> {
    [
        (
            SYSTEM_NODE_CRITICAL,
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            SYSTEM_CLUSTER_CRITICAL,
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ]
    .into_iter()
    .map(|(name, value, description)| {
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "description": description})
    })
    .collect()
}

/// What a class resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    class: String,
    value: i64,
    policy: Option<String>,
}

impl Resolved {
    fn of(pc: &Value) -> Resolved {
        Resolved {
            class: meta::name(pc).to_string(),
            value: pc.get("value").and_then(Value::as_i64).unwrap_or(0),
            policy: pc
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

fn priority_classes() -> ApiResult<&'static Resource> {
    resources::find("scheduling.k8s.io", "v1", "priorityclasses")
        .ok_or_else(|| ApiError::internal("priorityclasses are not served"))
}

/// The global default class: the lowest value among those marked default, as upstream picks
/// when (against the rules, e.g. written before this check) several are. Read from the watch
/// cache when there is one (upstream reads its informer).
async fn default_class(store: &Store, cache: Option<&WatchCache>) -> ApiResult<Option<Value>> {
    let r = priority_classes()?;
    let is_default = |pc: &Value| pc.get("globalDefault").and_then(Value::as_bool) == Some(true);
    let value = |pc: &Value| pc.get("value").and_then(Value::as_i64).unwrap_or(0);
    if let Some(cache) = cache {
        let (all, _) = cache.list(&r.key_prefix());
        return Ok(all
            .into_iter()
            .filter(|pc| is_default(pc))
            .min_by_key(|pc| value(pc))
            .map(|pc| (*pc).clone()));
    }
    let page = store.list(r, "", 0, None, 0, &is_default).await?;
    Ok(page.items.into_iter().min_by_key(|pc| value(pc)))
}

/// A class by name: from the watch cache, else from storage (a class created a moment ago
/// may not be in the cache yet; an unknown one costs the storage read).
async fn class(store: &Store, cache: Option<&WatchCache>, name: &str) -> ApiResult<Option<Value>> {
    let r = priority_classes()?;
    if let Some(pc) = cache.and_then(|c| c.get(&r.key("", name))) {
        return Ok(Some((*pc).clone()));
    }
    store.get(r, "", name).await
}

/// The built-in classes always resolve, even before bootstrap has written them.
fn builtin(name: &str) -> Option<Value> {
    system_priority_classes()
        .into_iter()
        .find(|pc| meta::name(pc) == name)
        .map(|mut pc| {
            pc["preemptionPolicy"] = json!(PREEMPT_LOWER);
            pc
        })
}

/// Pod create: fills `priority`, `preemptionPolicy` (and the default class's name); refuses
/// unknown classes and explicit values that contradict the class.
pub async fn admit_pod(
    store: &Store,
    cache: Option<&WatchCache>,
    pods: &Resource,
    pod: &mut Value,
) -> ApiResult<()> {
    let name = meta::name(pod).to_string();
    let named = meta::str_at(pod, "/spec/priorityClassName")
        .unwrap_or_default()
        .to_string();
    let resolved = if named.is_empty() {
        match default_class(store, cache).await? {
            Some(pc) => Resolved::of(&pc),
            None => Resolved {
                class: String::new(),
                value: DEFAULT_PRIORITY,
                policy: Some(PREEMPT_LOWER.into()),
            },
        }
    } else {
        let found = class(store, cache, &named).await?;
        match found.or_else(|| builtin(&named)) {
            Some(pc) => Resolved::of(&pc),
            None => {
                return Err(ApiError::forbidden(
                    pods,
                    &name,
                    &format!("no PriorityClass with name {named} was found"),
                ));
            }
        }
    };
    apply(pods, &name, pod, &resolved)
}

fn apply(pods: &Resource, name: &str, pod: &mut Value, r: &Resolved) -> ApiResult<()> {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != r.value
    {
        return Err(ApiError::forbidden(
            pods,
            name,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {} from the given PriorityClass name",
                r.value
            ),
        ));
    }
    if let Some(policy) = &r.policy
        && let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
        && given != policy
    {
        return Err(ApiError::forbidden(
            pods,
            name,
            &format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ),
        ));
    }
    if !r.class.is_empty() {
        spec.insert("priorityClassName".into(), json!(r.class));
    }
    spec.insert("priority".into(), json!(r.value));
    if let Some(policy) = &r.policy {
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

/// Pod update: the values set at create stay when a client sends the pod without them
/// (validation refuses any other change to them).
pub fn keep_on_update(pod: &mut Value, old: &Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["priority", "preemptionPolicy"] {
        if spec.get(field).is_none_or(Value::is_null)
            && let Some(v) = old
                .pointer(&format!("/spec/{field}"))
                .filter(|v| !v.is_null())
        {
            spec.insert(field.into(), v.clone());
        }
    }
}

/// PriorityClass create/update: only one class may be the global default.
pub async fn validate_class(
    store: &Store,
    r: &Resource,
    pc: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if pc.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let name = meta::name(pc);
    if let Some(current) = default_class(store, None).await?
        && (old.is_none() || meta::name(&current) != name)
    {
        return Err(ApiError::forbidden(
            r,
            name,
            &format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                meta::name(&current)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> &'static Resource {
        resources::find("", "v1", "pods").expect("pods")
    }

    fn resolved(class: &str, value: i64, policy: &str) -> Resolved {
        Resolved {
            class: class.into(),
            value,
            policy: Some(policy.into()),
        }
    }

    #[test]
    fn the_class_fills_priority_and_policy() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "high"}});
        apply(pods(), "p", &mut pod, &resolved("high", 1000, "Never")).expect("admitted");
        assert_eq!(pod["spec"]["priority"], 1000);
        assert_eq!(pod["spec"]["preemptionPolicy"], "Never");
        // No class and no default: 0, PreemptLowerPriority, no class name written.
        let mut plain = json!({"metadata": {"name": "p"}, "spec": {}});
        apply(pods(), "p", &mut plain, &resolved("", 0, PREEMPT_LOWER)).expect("admitted");
        assert_eq!(plain["spec"]["priority"], 0);
        assert!(plain["spec"].get("priorityClassName").is_none());
    }

    #[test]
    fn explicit_values_must_agree_with_the_class() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priority": 5}});
        let e = apply(pods(), "p", &mut pod, &resolved("", 0, PREEMPT_LOWER)).expect_err("refused");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"
        );
        let mut same = json!({"metadata": {"name": "p"}, "spec": {"priority": 1000, "preemptionPolicy": "Never"}});
        apply(pods(), "p", &mut same, &resolved("high", 1000, "Never")).expect("agrees");
        let mut other = json!({"metadata": {"name": "p"}, "spec": {"preemptionPolicy": "PreemptLowerPriority"}});
        assert!(apply(pods(), "p", &mut other, &resolved("high", 1000, "Never")).is_err());
    }

    #[test]
    fn system_classes_are_built_in_and_updates_keep_the_priority() {
        let node = builtin(SYSTEM_NODE_CRITICAL).expect("built in");
        assert_eq!(
            Resolved::of(&node),
            resolved(SYSTEM_NODE_CRITICAL, 2_000_001_000, PREEMPT_LOWER)
        );
        let cluster = builtin(SYSTEM_CLUSTER_CRITICAL).expect("built in");
        assert_eq!(cluster["value"], 2_000_000_000);
        assert!(builtin("high").is_none());
        let old = json!({"spec": {"priority": 7, "preemptionPolicy": "Never"}});
        let mut new = json!({"spec": {}});
        keep_on_update(&mut new, &old);
        assert_eq!(
            new["spec"],
            json!({"priority": 7, "preemptionPolicy": "Never"})
        );
    }
}
