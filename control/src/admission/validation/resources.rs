//! Resource names and quantities: container resource requirements, quota and
//! limit-range resource names (`pkg/apis/core/helper` + core validation).

use super::Errs;
use crate::admission::field::{self, Bad, Path};
use crate::admission::json::{arr, entries, s};
use crate::admission::names::is_qualified_name;
use crate::admission::quantity::Quantity;
use serde_json::Value;
use std::cmp::Ordering;

const STANDARD_RESOURCES: [&str; 20] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

const STANDARD_QUOTA_RESOURCES: [&str; 19] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

const INTEGER_RESOURCES: [&str; 9] = [
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

pub(crate) fn is_huge_page(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_quota_huge_page(name: &str) -> bool {
    is_huge_page(name)
        || name.starts_with("requests.hugepages-")
        || name.starts_with("limits.hugepages-")
}

pub(crate) fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

pub(crate) fn is_extended(name: &str) -> bool {
    if is_native(name) || name.starts_with("requests.") {
        return false;
    }
    is_qualified_name(&format!("requests.{name}")).is_empty()
}

pub(crate) fn is_overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_huge_page(name)
}

fn is_integer_resource(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended(name) || name.starts_with("count/")
}

pub(crate) fn is_standard_quota_resource(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name) || is_quota_huge_page(name)
}

/// `validateResourceName`.
pub(crate) fn validate_resource_name(name: &str, path: &Path, errs: &mut Errs) -> bool {
    let before = errs.len();
    for m in is_qualified_name(name) {
        errs.push(field::invalid(path, name, &m));
    }
    if errs.len() != before {
        return false;
    }
    if !(name.contains('/') || STANDARD_RESOURCES.contains(&name) || is_quota_huge_page(name)) {
        errs.push(field::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
        return false;
    }
    true
}

/// `validateContainerResourceName`.
pub(crate) fn validate_container_resource_name(name: &str, path: &Path, errs: &mut Errs) {
    validate_resource_name(name, path, errs);
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_huge_page(name) {
            errs.push(field::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(field::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// `ValidateResourceQuotaResourceName`.
pub(crate) fn validate_quota_resource_name(name: &str, path: &Path, errs: &mut Errs) {
    validate_resource_name(name, path, errs);
    if !name.contains('/') && !is_standard_quota_resource(name) {
        errs.push(field::invalid(
            path,
            name,
            "must be a standard resource for quota",
        ));
    }
}

/// `ValidateResourceQuantityValue`: non-negative, integral for countables.
pub(crate) fn validate_quantity_value(
    name: &str,
    q: &Quantity,
    raw: &str,
    path: &Path,
    errs: &mut Errs,
) {
    if q.sign() == Ordering::Less {
        errs.push(field::invalid(
            path,
            q.canonical(),
            super::meta::IS_NEGATIVE,
        ));
    }
    if is_integer_resource(name) && !q.is_integer() {
        let _ = raw;
        errs.push(field::invalid(path, q.canonical(), "must be an integer"));
    }
}

/// Parses a quantity field; unparsable values are reported as invalid.
pub(crate) fn quantity_at(v: &Value, path: &Path, errs: &mut Errs) -> Option<Quantity> {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    match Quantity::parse(&raw) {
        Some(q) => Some(q),
        None => {
            errs.push(field::invalid(
                path,
                Bad::Str(raw),
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ));
            None
        }
    }
}

/// Huge page size of a `hugepages-<size>` resource name.
fn huge_page_size(name: &str) -> Option<Quantity> {
    name.strip_prefix("hugepages-").and_then(Quantity::parse)
}

fn divisible(q: &Quantity, size: &Quantity) -> bool {
    // Both are integral byte counts in practice; compare q mod size == 0.
    let (Ok(a), Ok(b)) = (
        q.canonical_bytes().ok_or(()),
        size.canonical_bytes().ok_or(()),
    ) else {
        return true;
    };
    b != 0 && a % b == 0
}

impl Quantity {
    /// The value as an integer when it is one and fits.
    pub(crate) fn canonical_bytes(&self) -> Option<i128> {
        if !self.is_integer() {
            return None;
        }
        Some(i128::from(self.value()))
    }
}

/// `ValidateContainerResourceRequirements` (`validateResourceRequirements`).
pub(crate) fn validate_resource_requirements(
    req: Option<&Value>,
    pod_claim_names: &[String],
    path: &Path,
    pod_level: bool,
    errs: &mut Errs,
) {
    let Some(req) = req else {
        return;
    };
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let mut lim_cpu_mem = false;
    let mut req_cpu_mem = false;
    let mut lim_huge = false;
    let mut req_huge = false;
    let mut limits: Vec<(String, Quantity)> = Vec::new();
    for (name, v) in entries(req, "limits") {
        let p = lim_path.key(name);
        name_check(name, &p, pod_level, errs);
        if let Some(q) = quantity_at(v, &p, errs) {
            validate_quantity_value(name, &q, "", &p, errs);
            if is_huge_page(name) {
                lim_huge = true;
                if let Some(size) = huge_page_size(name)
                    && !divisible(&q, &size)
                {
                    errs.push(field::invalid(
                        &p,
                        q.canonical(),
                        &format!(
                            "{} is not positive integer multiple of {name}",
                            q.canonical()
                        ),
                    ));
                }
            }
            if name == "cpu" || name == "memory" {
                lim_cpu_mem = true;
            }
            limits.push((name.clone(), q));
        }
    }
    for (name, v) in entries(req, "requests") {
        let p = req_path.key(name);
        name_check(name, &p, pod_level, errs);
        let Some(q) = quantity_at(v, &p, errs) else {
            continue;
        };
        validate_quantity_value(name, &q, "", &p, errs);
        match limits.iter().find(|(n, _)| n == name) {
            Some((_, lq)) => {
                let ord = q.cmp_value(lq);
                if ord != Ordering::Equal && !is_overcommit_allowed(name) {
                    errs.push(field::invalid(
                        &req_path,
                        q.canonical(),
                        &format!("must be equal to {name} limit of {}", lq.canonical()),
                    ));
                } else if ord == Ordering::Greater {
                    errs.push(field::invalid(
                        &req_path,
                        q.canonical(),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            lq.canonical()
                        ),
                    ));
                }
            }
            None => {
                if !is_overcommit_allowed(name) {
                    errs.push(field::required(
                        &lim_path,
                        "Limit must be set for non overcommitable resources",
                    ));
                }
            }
        }
        if is_huge_page(name) {
            req_huge = true;
            if let Some(size) = huge_page_size(name)
                && !divisible(&q, &size)
            {
                errs.push(field::invalid(
                    &p,
                    q.canonical(),
                    &format!(
                        "{} is not positive integer multiple of {name}",
                        q.canonical()
                    ),
                ));
            }
        }
        if name == "cpu" || name == "memory" {
            req_cpu_mem = true;
        }
    }
    if !lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge) {
        errs.push(field::forbidden(path, "HugePages require cpu or memory"));
    }
    validate_claim_names(
        arr(req, "claims"),
        pod_claim_names,
        &path.child("claims"),
        errs,
    );
}

fn name_check(name: &str, path: &Path, pod_level: bool, errs: &mut Errs) {
    if pod_level {
        let before = errs.len();
        validate_resource_name(name, path, errs);
        if errs.len() == before && !matches!(name, "cpu" | "memory") && !is_huge_page(name) {
            errs.push(field::not_supported(path, name, &["cpu", "memory"]));
        }
    } else {
        validate_container_resource_name(name, path, errs);
    }
}

/// `validateResourceClaimNames`.
fn validate_claim_names(
    claims: &[Value],
    pod_claim_names: &[String],
    path: &Path,
    errs: &mut Errs,
) {
    let mut names: Vec<String> = Vec::new();
    for (idx, c) in claims.iter().enumerate() {
        let name = s(c, "name");
        let p = path.index(idx);
        if name.is_empty() {
            errs.push(field::required(&p, ""));
            continue;
        }
        if names.iter().any(|n| n == name) {
            errs.push(field::duplicate(&p, name));
        } else {
            let request = s(c, "request");
            let mut key = name.to_string();
            if !request.is_empty() {
                for m in crate::admission::names::is_dns1123_label(request) {
                    errs.push(field::invalid(&p.child("request"), request, &m));
                }
                key = format!("{name}/{request}");
            }
            if names.contains(&key) {
                errs.push(field::duplicate(&p, key.as_str()));
            } else if request.is_empty() {
                for existing in &names {
                    if existing.split_once('/').is_some_and(|(n, _)| n == name) {
                        errs.push(field::duplicate(&p, name));
                    }
                }
            }
            names.push(key);
        }
        if !pod_claim_names.iter().any(|n| n == name) {
            let mut detail = "must be one of the names in pod.spec.resourceClaims".to_string();
            if pod_claim_names.is_empty() {
                detail.push_str(" which is empty");
            } else {
                let mut sorted = pod_claim_names.to_vec();
                sorted.sort();
                detail.push_str(&format!(": {}", sorted.join(", ")));
            }
            errs.push(field::not_found_detail(&p, name, &detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> Vec<String> {
        let mut errs = Vec::new();
        validate_resource_requirements(Some(&v), &[], &Path::new("r"), false, &mut errs);
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn requests_vs_limits() {
        assert!(run(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}})).is_empty());
        assert_eq!(
            run(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}})),
            vec![r#"r.requests: Invalid value: "2": must be less than or equal to cpu limit of 1"#]
        );
        assert_eq!(
            run(json!({"limits": {"memory": "-1"}})),
            vec![r#"r.limits[memory]: Invalid value: "-1": must be greater than or equal to 0"#]
        );
        assert_eq!(
            run(json!({"requests": {"example.com/gpu": "1"}})),
            vec!["r.limits: Required value: Limit must be set for non overcommitable resources"]
        );
        assert_eq!(
            run(json!({"limits": {"example.com/gpu": "1"}, "requests": {"example.com/gpu": "2"}})),
            vec![r#"r.requests: Invalid value: "2": must be equal to example.com/gpu limit of 1"#]
        );
        assert_eq!(
            run(json!({"limits": {"example.com/gpu": "500m"}})),
            vec![r#"r.limits[example.com/gpu]: Invalid value: "500m": must be an integer"#]
        );
        assert_eq!(
            run(json!({"limits": {"gpu": "1"}})),
            vec![
                r#"r.limits[gpu]: Invalid value: "gpu": must be a standard resource type or fully qualified"#,
                r#"r.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers"#
            ]
        );
        assert_eq!(
            run(json!({"limits": {"hugepages-2Mi": "3Mi"}})),
            vec![
                r#"r.limits[hugepages-2Mi]: Invalid value: "3Mi": 3Mi is not positive integer multiple of hugepages-2Mi"#,
                "r: Forbidden: HugePages require cpu or memory"
            ]
        );
    }
}
