//! `apps/v1` kinds (`pkg/apis/apps/validation`, plus the selector
//! immutability the apps registry strategies enforce on update).

use super::meta::{
    FIELD_IMMUTABLE, Finalizers, Selector, labels_of, nonnegative, selector_bad,
    validate_annotations, validate_label_selector, validate_labels, validate_object_meta,
    validate_object_meta_update,
};
use super::pod::{validate_pod_specific_annotations, validate_pod_template_spec};
use super::{Errs, semantic_eq};
use crate::admission::field::{self, Bad, Path};
use crate::admission::json::{arr, has, i, obj, opt_i, s};
use crate::admission::names::{is_valid_percent, name_is_dns_label, name_is_dns_subdomain};
use serde_json::{Value, json};

fn spec_of(v: &Value) -> &Value {
    static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    v.get("spec")
        .filter(|s| !s.is_null())
        .unwrap_or_else(|| EMPTY.get_or_init(|| json!({})))
}

fn meta_create_or_update(
    obj: &Value,
    old: Option<&Value>,
    name_fn: crate::admission::names::NameFn,
    errs: &mut Errs,
) {
    let mp = Path::new("metadata");
    match old {
        None => validate_object_meta(
            obj.get("metadata"),
            true,
            name_fn,
            Finalizers::Kube,
            &mp,
            errs,
        ),
        Some(o) => validate_object_meta_update(
            obj.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &mp,
            errs,
        ),
    }
}

/// `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    match v {
        Some(Value::String(sv)) => {
            for m in is_valid_percent(sv) {
                errs.push(field::invalid(
                    path,
                    Bad::Json(Value::String(sv.clone())),
                    &m,
                ));
            }
        }
        Some(Value::Number(n)) => nonnegative(n.as_i64().unwrap_or(0), path, errs),
        _ => {}
    }
}

/// `getIntOrPercentValue`: percent strings give their number; other strings 0.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(sv)) => {
            if is_valid_percent(sv).is_empty() {
                sv.trim_end_matches('%').parse().unwrap_or(0)
            } else {
                sv.parse().unwrap_or(0)
            }
        }
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// `IsNotMoreThan100Percent`.
fn not_more_than_100_percent(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    if let Some(Value::String(sv)) = v
        && is_valid_percent(sv).is_empty()
        && int_or_percent_value(v) > 100
    {
        errs.push(field::invalid(
            path,
            Bad::Json(Value::String(sv.clone())),
            "must not be greater than 100%",
        ));
    }
}

/// An internal rolling-update struct as Go's JSON encoder prints it (the
/// internal types carry no JSON tags, so Go field names appear).
fn go_rolling_update(ru: Option<&Value>, stateful: bool) -> Value {
    let Some(ru) = ru.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    let get = |k: &str| ru.get(k).cloned().unwrap_or(Value::Null);
    if stateful {
        json!({"Partition": ru.get("partition").cloned().unwrap_or(json!(0)), "MaxUnavailable": get("maxUnavailable")})
    } else {
        json!({"MaxUnavailable": get("maxUnavailable"), "MaxSurge": get("maxSurge")})
    }
}

fn int_or_string_bad(v: Option<&Value>) -> Bad {
    Bad::Json(v.cloned().unwrap_or(json!(0)))
}

/// Validates a selector strictly and checks it matches the template labels.
/// Returns whether the "template" part was checked (selector convertible).
fn selector_and_template(
    spec: &Value,
    require: bool,
    kind_word: &str,
    invalid_detail: &str,
    errs: &mut Errs,
) -> Option<Selector> {
    let sp = Path::new("spec").child("selector");
    let sel = obj(spec, "selector");
    match sel {
        None if require => errs.push(field::required(&sp, "")),
        None => {}
        Some(sel) => {
            validate_label_selector(Some(sel), false, &sp, errs);
            let n = crate::admission::json::map_len(sel, "matchLabels")
                + arr(sel, "matchExpressions").len();
            if n == 0 {
                errs.push(field::invalid(
                    &sp,
                    selector_bad(Some(sel)),
                    &format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    match Selector::from_label_selector(sel) {
        Ok(s) => Some(s),
        Err(()) => {
            errs.push(field::invalid(&sp, selector_bad(sel), invalid_detail));
            None
        }
    }
}

fn template_labels_mismatch(template: &Value, selector: &Selector, path: &Path, errs: &mut Errs) {
    if !selector.is_empty() && !selector.matches(&labels_of(template.get("metadata"))) {
        errs.push(field::invalid(
            &path.child("metadata").child("labels"),
            Bad::Map(
                template
                    .get("metadata")
                    .and_then(|m| m.get("labels"))
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            "`selector` does not match template `labels`",
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn template_for_replica_set(spec: &Value, selector: &Selector, kind: &str, errs: &mut Errs) {
    let tp = Path::new("spec").child("template");
    let empty = json!({});
    let template = spec
        .get("template")
        .filter(|t| !t.is_null())
        .unwrap_or(&empty);
    template_labels_mismatch(template, selector, &tp, errs);
    validate_pod_template_spec(template, &tp, errs);
    let tspec = template.get("spec").unwrap_or(&empty);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(field::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if has(tspec, "activeDeadlineSeconds") {
        errs.push(field::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

fn selector_immutable(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        let (n, o) = (spec_of(obj).get("selector"), spec_of(old).get("selector"));
        if !semantic_eq(n.unwrap_or(&Value::Null), o.unwrap_or(&Value::Null)) {
            errs.push(field::invalid(
                &Path::new("spec").child("selector"),
                selector_bad(n),
                FIELD_IMMUTABLE,
            ));
        }
    }
}

pub(crate) fn validate_deployment(d: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_create_or_update(d, old, name_is_dns_subdomain, errs);
    let spec = spec_of(d);
    let sp = Path::new("spec");
    nonnegative(
        opt_i(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
        errs,
    );
    if let Some(sel) =
        selector_and_template(spec, true, "deployment", "invalid label selector", errs)
    {
        template_for_replica_set(spec, &sel, "ReplicaSet", errs);
    }
    let stp = sp.child("strategy");
    let empty = json!({});
    let strategy = spec.get("strategy").unwrap_or(&empty);
    match s(strategy, "type") {
        "Recreate" => {
            if has(strategy, "rollingUpdate") {
                errs.push(field::forbidden(
                    &stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match obj(strategy, "rollingUpdate") {
            None => errs.push(field::required(
                &stp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                positive_int_or_percent(mu, &rp.child("maxUnavailable"), errs);
                positive_int_or_percent(ms, &rp.child("maxSurge"), errs);
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(field::invalid(
                        &rp.child("maxUnavailable"),
                        int_or_string_bad(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(mu, &rp.child("maxUnavailable"), errs);
            }
        },
        other => {
            let bad = json!({"Type": other, "RollingUpdate": go_rolling_update(strategy.get("rollingUpdate"), false)});
            errs.push(field::not_supported(
                &stp,
                Bad::Json(bad),
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
    let mrs = i(spec, "minReadySeconds");
    nonnegative(mrs, &sp.child("minReadySeconds"), errs);
    if let Some(rhl) = opt_i(spec, "revisionHistoryLimit") {
        nonnegative(rhl, &sp.child("revisionHistoryLimit"), errs);
    }
    if let Some(pds) = opt_i(spec, "progressDeadlineSeconds") {
        nonnegative(pds, &sp.child("progressDeadlineSeconds"), errs);
        if pds <= mrs {
            errs.push(field::invalid(
                &sp.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    selector_immutable(d, old, errs);
}

pub(crate) fn validate_replica_set(rs: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_create_or_update(rs, old, name_is_dns_subdomain, errs);
    let spec = spec_of(rs);
    let sp = Path::new("spec");
    nonnegative(
        opt_i(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
        errs,
    );
    nonnegative(
        i(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
        errs,
    );
    // Upstream reuses the Deployment wording here.
    if let Some(sel) =
        selector_and_template(spec, true, "deployment", "invalid label selector", errs)
    {
        template_for_replica_set(spec, &sel, "ReplicaSet", errs);
    }
    selector_immutable(rs, old, errs);
}

pub(crate) fn validate_daemon_set(ds: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_create_or_update(ds, old, name_is_dns_subdomain, errs);
    let spec = spec_of(ds);
    let sp = Path::new("spec");
    let sel = obj(spec, "selector");
    validate_label_selector(sel, false, &sp.child("selector"), errs);
    let empty = json!({});
    let template = spec
        .get("template")
        .filter(|t| !t.is_null())
        .unwrap_or(&empty);
    if let Ok(selector) = Selector::from_label_selector(sel)
        && !selector.matches(&labels_of(template.get("metadata")))
    {
        errs.push(field::invalid(
            &sp.child("template").child("metadata").child("labels"),
            Bad::Map(
                template
                    .get("metadata")
                    .and_then(|m| m.get("labels"))
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(sel) = sel
        && crate::admission::json::map_len(sel, "matchLabels") + arr(sel, "matchExpressions").len()
            == 0
    {
        errs.push(field::invalid(
            &sp.child("selector"),
            selector_bad(Some(sel)),
            "empty selector is invalid for daemonset",
        ));
    }
    let tp = sp.child("template");
    validate_pod_template_spec(template, &tp, errs);
    let tspec = template.get("spec").unwrap_or(&empty);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(field::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if has(tspec, "activeDeadlineSeconds") {
        errs.push(field::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonnegative(
        i(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
        errs,
    );
    let up = sp.child("updateStrategy");
    let us = spec.get("updateStrategy").unwrap_or(&empty);
    match s(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match obj(us, "rollingUpdate") {
            None => errs.push(field::required(&up.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = up.child("rollingUpdate");
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                positive_int_or_percent(mu, &rp.child("maxUnavailable"), errs);
                positive_int_or_percent(ms, &rp.child("maxSurge"), errs);
                not_more_than_100_percent(mu, &rp.child("maxUnavailable"), errs);
                not_more_than_100_percent(ms, &rp.child("maxSurge"), errs);
                let (hu, hs) = (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0);
                if hu && hs {
                    errs.push(field::invalid(
                        &rp.child("maxSurge"),
                        int_or_string_bad(ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !hu && !hs {
                    errs.push(field::required(
                        &rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        other => {
            let bad = json!({"Type": other, "RollingUpdate": go_rolling_update(us.get("rollingUpdate"), false)});
            errs.push(field::not_supported(
                &up,
                Bad::Json(bad),
                &["RollingUpdate", "OnDelete"],
            ));
        }
    }
    if let Some(rhl) = opt_i(spec, "revisionHistoryLimit") {
        nonnegative(rhl, &sp.child("revisionHistoryLimit"), errs);
    }
    selector_immutable(ds, old, errs);
}

pub(crate) fn validate_stateful_set(ss: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_create_or_update(ss, old, name_is_dns_label, errs);
    let spec = spec_of(ss);
    let sp = Path::new("spec");
    match s(spec, "podManagementPolicy") {
        "" => errs.push(field::required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(field::invalid(
            &sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let up = sp.child("updateStrategy");
    let empty = json!({});
    let us = spec.get("updateStrategy").unwrap_or(&empty);
    match s(us, "type") {
        "" => errs.push(field::required(&up, "")),
        "OnDelete" => {
            if let Some(ru) = obj(us, "rollingUpdate") {
                errs.push(field::invalid(
                    &up.child("rollingUpdate"),
                    Bad::Json(go_rolling_update(Some(ru), true)),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = obj(us, "rollingUpdate") {
                let rp = up.child("rollingUpdate");
                nonnegative(i(ru, "partition"), &rp.child("partition"), errs);
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let mp = rp.child("maxUnavailable");
                    positive_int_or_percent(Some(mu), &mp, errs);
                    if int_or_percent_value(Some(mu)) == 0 {
                        errs.push(field::invalid(&mp, Bad::Json(mu.clone()), "cannot be 0"));
                    }
                    not_more_than_100_percent(Some(mu), &mp, errs);
                }
            }
        }
        _ => errs.push(field::invalid(
            &up,
            Bad::Json(json!({"Type": s(us, "type"), "RollingUpdate": go_rolling_update(us.get("rollingUpdate"), true)})),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(p) = obj(spec, "persistentVolumeClaimRetentionPolicy") {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for k in ["whenDeleted", "whenScaled"] {
            let v = s(p, k);
            if !matches!(v, "Retain" | "Delete") {
                errs.push(field::not_supported(&pp.child(k), v, &["Retain", "Delete"]));
            }
        }
    }
    nonnegative(
        opt_i(spec, "replicas").unwrap_or(0),
        &sp.child("replicas"),
        errs,
    );
    nonnegative(
        i(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
        errs,
    );
    if let Some(o) = obj(spec, "ordinals") {
        nonnegative(i(o, "start"), &sp.child("ordinals.start"), errs);
    }
    if let Some(sel) = selector_and_template(spec, true, "statefulset", "", errs) {
        let tp = sp.child("template");
        let template = spec
            .get("template")
            .filter(|t| !t.is_null())
            .unwrap_or(&empty);
        template_labels_mismatch(template, &sel, &tp, errs);
        // Upstream deliberately skips PodSpec validation here (volume mounts
        // may refer to volumeClaimTemplates); only template metadata is checked.
        let tmeta = template.get("metadata");
        validate_labels(
            tmeta.and_then(|m| m.get("labels")),
            &tp.child("labels"),
            errs,
        );
        validate_annotations(
            tmeta.and_then(|m| m.get("annotations")),
            &tp.child("annotations"),
            errs,
        );
        let tspec = template.get("spec").unwrap_or(&empty);
        validate_pod_specific_annotations(tmeta, tspec, &tp.child("annotations"), errs);
    }
    let tspec = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .unwrap_or(&empty);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(field::not_supported(
            &sp.child("template").child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if has(tspec, "activeDeadlineSeconds") {
        errs.push(field::forbidden(
            &sp.child("template")
                .child("spec")
                .child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    if let Some(old) = old {
        let mut n = spec.clone();
        let o = spec_of(old);
        if let Some(m) = n.as_object_mut() {
            for k in [
                "replicas",
                "template",
                "updateStrategy",
                "minReadySeconds",
                "ordinals",
                "persistentVolumeClaimRetentionPolicy",
            ] {
                match o.get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
        if !semantic_eq(&n, o) {
            errs.push(field::forbidden(
                &sp,
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
}

pub(crate) fn validate_controller_revision(cr: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(o) = old {
        validate_object_meta_update(
            cr.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &Path::new("metadata"),
            errs,
        );
    }
    validate_object_meta(
        cr.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &Path::new("metadata"),
        errs,
    );
    if !has(cr, "data") {
        errs.push(field::required(&Path::new("data"), "data is mandatory"));
    }
    nonnegative(i(cr, "revision"), &Path::new("revision"), errs);
    if let Some(o) = old
        && !semantic_eq(
            cr.get("data").unwrap_or(&Value::Null),
            o.get("data").unwrap_or(&Value::Null),
        )
    {
        errs.push(field::invalid(
            &Path::new("data"),
            Bad::Json(cr.get("data").cloned().unwrap_or(Value::Null)),
            FIELD_IMMUTABLE,
        ));
    }
}
