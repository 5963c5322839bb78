//! Kinds outside core/apps/batch: networking (NetworkPolicy, Ingress,
//! IngressClass), RBAC, PodDisruptionBudget, HorizontalPodAutoscaler,
//! EndpointSlice, PriorityClass and StorageClass.

use super::meta::{
    FIELD_IMMUTABLE, Finalizers, Selector, nonnegative, validate_label_selector,
    validate_object_meta, validate_object_meta_update,
};
use super::net::{cidr_strict_subset, is_valid_cidr, is_valid_ip, parse_ip_sloppy};
use super::{Errs, semantic_eq};
use crate::admission::field::{self, Bad, Path};
use crate::admission::json::{arr, has, i, obj, opt_i, opt_s, s, strings};
use crate::admission::names::{
    NameFn, is_dns1123_label, is_dns1123_subdomain, is_path_segment_name, is_qualified_name,
    is_valid_percent, is_valid_port_name, is_valid_port_num, is_wildcard_dns1123_subdomain,
    name_is_dns_label, name_is_dns_subdomain, name_is_dns1035_label, name_is_path_segment,
};
use crate::admission::quantity::Quantity;
use serde_json::{Value, json};

fn meta(obj: &Value, old: Option<&Value>, namespaced: bool, name_fn: NameFn, errs: &mut Errs) {
    let mp = Path::new("metadata");
    match old {
        None => validate_object_meta(
            obj.get("metadata"),
            namespaced,
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

fn spec_of(v: &Value) -> Value {
    v.get("spec")
        .filter(|s| !s.is_null())
        .cloned()
        .unwrap_or(json!({}))
}

// ---------------------------------------------------------------- networking

fn validate_np_port(port: &Value, path: &Path, errs: &mut Errs) {
    if let Some(proto) = opt_s(port, "protocol")
        && !matches!(proto, "TCP" | "UDP" | "SCTP")
    {
        errs.push(field::not_supported(
            &path.child("protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let end_port = opt_i(port, "endPort");
    match port.get("port") {
        Some(Value::Number(n)) => {
            let p = n.as_i64().unwrap_or(0);
            for m in is_valid_port_num(p) {
                errs.push(field::invalid(&path.child("port"), p, &m));
            }
            if let Some(e) = end_port {
                if e < p {
                    errs.push(field::invalid(
                        &path.child("endPort"),
                        p,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in is_valid_port_num(e) {
                    errs.push(field::invalid(&path.child("endPort"), e, &m));
                }
            }
        }
        Some(Value::String(name)) => {
            if let Some(e) = end_port {
                errs.push(field::invalid(
                    &path.child("endPort"),
                    e,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for m in is_valid_port_name(name) {
                errs.push(field::invalid(&path.child("port"), name.as_str(), &m));
            }
        }
        _ => {
            if let Some(e) = end_port {
                errs.push(field::invalid(
                    &path.child("endPort"),
                    e,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

fn validate_np_peer(peer: &Value, path: &Path, errs: &mut Errs) {
    let mut num = 0;
    for k in ["podSelector", "namespaceSelector"] {
        if let Some(sel) = obj(peer, k) {
            num += 1;
            validate_label_selector(Some(sel), false, &path.child(k), errs);
        }
    }
    if let Some(ipb) = obj(peer, "ipBlock") {
        num += 1;
        let bp = path.child("ipBlock");
        let cidr = s(ipb, "cidr");
        if cidr.is_empty() {
            errs.push(field::required(&bp.child("cidr"), ""));
        } else {
            errs.extend(is_valid_cidr(&bp.child("cidr"), cidr));
            if super::net::parse_cidr_sloppy(cidr).is_some() {
                for (ei, ex) in strings(ipb, "except").iter().enumerate() {
                    let ep = bp.child("except").index(ei);
                    errs.extend(is_valid_cidr(&ep, ex));
                    if let Some(false) = cidr_strict_subset(cidr, ex) {
                        errs.push(field::invalid(
                            &ep,
                            *ex,
                            "must be a strict subset of `cidr`",
                        ));
                    }
                }
            }
        }
    }
    if num == 0 {
        errs.push(field::required(path, "must specify a peer"));
    } else if num > 1 && has(peer, "ipBlock") {
        errs.push(field::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
}

pub(crate) fn validate_network_policy(np: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta(np, old, true, name_is_dns_subdomain, errs);
    let spec = spec_of(np);
    let sp = Path::new("spec");
    validate_label_selector(
        Some(spec.get("podSelector").unwrap_or(&json!({}))),
        false,
        &sp.child("podSelector"),
        errs,
    );
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (ri, rule) in arr(&spec, dir).iter().enumerate() {
            let rp = sp.child(dir).index(ri);
            for (pi, port) in arr(rule, "ports").iter().enumerate() {
                validate_np_port(port, &rp.child("ports").index(pi), errs);
            }
            for (pi, peer) in arr(rule, peers).iter().enumerate() {
                validate_np_peer(peer, &rp.child(peers).index(pi), errs);
            }
        }
    }
    let types = strings(&spec, "policyTypes");
    if types.len() > 2 {
        errs.push(field::invalid(
            &sp.child("policyTypes"),
            Bad::Json(Value::Array(arr(&spec, "policyTypes").to_vec())),
            "may not specify more than two policyTypes",
        ));
        return;
    }
    for (idx, t) in types.iter().enumerate() {
        if !matches!(*t, "Ingress" | "Egress") {
            errs.push(field::not_supported(
                &sp.child("policyTypes").index(idx),
                *t,
                &["Ingress", "Egress"],
            ));
        }
    }
}

fn validate_ingress_backend(backend: &Value, path: &Path, errs: &mut Errs) {
    match (obj(backend, "resource"), obj(backend, "service")) {
        (Some(_), Some(_)) => errs.push(field::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => validate_typed_ref(r, &path.child("resource"), errs),
        (None, Some(svc)) => {
            let name = s(svc, "name");
            let np = path.child("service").child("name");
            if name.is_empty() {
                errs.push(field::required(&np, ""));
            } else {
                for m in name_is_dns1035_label(name, false) {
                    errs.push(field::invalid(&np, name, &m));
                }
            }
            let port = svc.get("port").cloned().unwrap_or(json!({}));
            let pname = s(&port, "name");
            let pnum = i(&port, "number");
            if !pname.is_empty() && pnum != 0 {
                errs.push(field::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                for m in is_valid_port_name(pname) {
                    errs.push(field::invalid(
                        &path.child("service").child("port").child("name"),
                        pname,
                        &m,
                    ));
                }
            } else if pnum != 0 {
                for m in is_valid_port_num(pnum) {
                    errs.push(field::invalid(
                        &path.child("service").child("port").child("number"),
                        pnum,
                        &m,
                    ));
                }
            } else {
                errs.push(field::required(path, "port name or number is required"));
            }
        }
        (None, None) => errs.push(field::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
}

fn validate_typed_ref(r: &Value, path: &Path, errs: &mut Errs) {
    if let Some(g) = opt_s(r, "apiGroup") {
        for m in is_dns1123_subdomain(g) {
            errs.push(field::invalid(&path.child("apiGroup"), g, &m));
        }
    }
    for (k, what) in [("kind", "kind is required"), ("name", "name is required")] {
        let v = s(r, k);
        if v.is_empty() {
            errs.push(field::required(&path.child(k), what));
        } else {
            for m in is_path_segment_name(v) {
                errs.push(field::invalid(&path.child(k), v, &m));
            }
        }
    }
}

pub(crate) fn validate_ingress(ing: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(o) = old {
        validate_object_meta_update(
            ing.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &Path::new("metadata"),
            errs,
        );
    }
    validate_object_meta(
        ing.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &Path::new("metadata"),
        errs,
    );
    let spec = spec_of(ing);
    let sp = Path::new("spec");
    let rules = arr(&spec, "rules");
    if rules.is_empty() && !has(&spec, "defaultBackend") {
        errs.push(field::invalid(
            &sp,
            Bad::Json(Value::Null),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(db) = obj(&spec, "defaultBackend") {
        validate_ingress_backend(db, &sp.child("defaultBackend"), errs);
    }
    for (ri, rule) in rules.iter().enumerate() {
        let rp = sp.child("rules").index(ri);
        let host = s(rule, "host");
        if !host.is_empty() {
            if host.contains('*') {
                for m in is_wildcard_dns1123_subdomain(host) {
                    errs.push(field::invalid(&rp.child("host"), host, &m));
                }
            } else {
                for m in is_dns1123_subdomain(host) {
                    errs.push(field::invalid(&rp.child("host"), host, &m));
                }
                if parse_ip_sloppy(host).is_some() {
                    errs.push(field::invalid(
                        &rp.child("host"),
                        host,
                        "must be a DNS name, not an IP address",
                    ));
                }
            }
        }
        if let Some(http) = obj(rule, "http") {
            let hp = rp.child("http");
            let paths = arr(http, "paths");
            if paths.is_empty() {
                errs.push(field::required(&hp.child("paths"), ""));
            }
            for (pi, p) in paths.iter().enumerate() {
                let pp = hp.child("paths").index(pi);
                let path_str = s(p, "path");
                match opt_s(p, "pathType") {
                    None => {
                        errs.push(field::required(
                            &pp.child("pathType"),
                            "pathType must be specified",
                        ));
                        continue;
                    }
                    Some("Exact" | "Prefix") => {
                        if !path_str.starts_with('/') {
                            errs.push(field::invalid(
                                &pp.child("path"),
                                path_str,
                                "must be an absolute path",
                            ));
                        }
                        if !path_str.is_empty() {
                            for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                                if path_str.contains(seq) {
                                    errs.push(field::invalid(
                                        &pp.child("path"),
                                        path_str,
                                        &format!("must not contain '{seq}'"),
                                    ));
                                }
                            }
                            for suf in ["/..", "/."] {
                                if path_str.ends_with(suf) {
                                    errs.push(field::invalid(
                                        &pp.child("path"),
                                        path_str,
                                        &format!("cannot end with '{suf}'"),
                                    ));
                                }
                            }
                        }
                    }
                    Some("ImplementationSpecific") => {
                        if !path_str.is_empty() && !path_str.starts_with('/') {
                            errs.push(field::invalid(
                                &pp.child("path"),
                                path_str,
                                "must be an absolute path",
                            ));
                        }
                    }
                    Some(other) => errs.push(field::not_supported(
                        &pp.child("pathType"),
                        other,
                        &["Exact", "ImplementationSpecific", "Prefix"],
                    )),
                }
                validate_ingress_backend(
                    p.get("backend").unwrap_or(&json!({})),
                    &pp.child("backend"),
                    errs,
                );
            }
        }
    }
    for (ti, tls) in arr(&spec, "tls").iter().enumerate() {
        let tp = sp.child("tls").index(ti);
        for (hi, h) in strings(tls, "hosts").iter().enumerate() {
            let msgs = if h.contains('*') {
                is_wildcard_dns1123_subdomain(h)
            } else {
                is_dns1123_subdomain(h)
            };
            for m in msgs {
                errs.push(field::invalid(&tp.child("hosts").index(hi), *h, &m));
            }
        }
        let sn = s(tls, "secretName");
        if !sn.is_empty() {
            for m in name_is_dns_subdomain(sn, false) {
                errs.push(field::invalid(&tp.child("secretName"), sn, &m));
            }
        }
    }
    if let Some(cn) = opt_s(&spec, "ingressClassName") {
        for m in name_is_dns_subdomain(cn, false) {
            errs.push(field::invalid(&sp.child("ingressClassName"), cn, &m));
        }
    }
    if old.is_none() {
        let ann = ing.get("metadata").and_then(|m| m.get("annotations"));
        if let (Some(a), Some(cn)) = (
            ann.and_then(|a| opt_s(a, "kubernetes.io/ingress.class")),
            opt_s(&spec, "ingressClassName"),
        ) && a != cn
        {
            errs.push(field::invalid(
                &Path::new("annotations").child("kubernetes.io/ingress.class"),
                a,
                "must match `ingressClassName` when both are specified",
            ));
        }
    }
}

pub(crate) fn validate_ingress_class(ic: &Value, old: Option<&Value>, errs: &mut Errs) {
    let spec = spec_of(ic);
    let sp = Path::new("spec");
    if let Some(o) = old {
        validate_object_meta_update(
            ic.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &Path::new("metadata"),
            errs,
        );
        let (n, oc) = (
            s(&spec, "controller"),
            s(&spec_of(o), "controller").to_string(),
        );
        if n != oc {
            errs.push(field::invalid(&sp.child("controller"), n, FIELD_IMMUTABLE));
        }
    }
    validate_object_meta(
        ic.get("metadata"),
        false,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &Path::new("metadata"),
        errs,
    );
    let ctrl = s(&spec, "controller");
    let cp = sp.child("controller");
    if ctrl.len() > 250 {
        errs.push(field::too_long(&cp, 250));
    }
    if ctrl.is_empty() {
        errs.push(field::required(&cp, ""));
    } else {
        match ctrl
            .split_once('/')
            .filter(|(h, r)| !h.is_empty() && !r.is_empty())
        {
            None => errs.push(field::invalid(
                &cp,
                ctrl,
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
            Some((host, _)) => {
                for m in is_dns1123_subdomain(host) {
                    errs.push(field::invalid(&cp, host, &m));
                }
            }
        }
    }
    if let Some(params) = obj(&spec, "parameters") {
        let pp = sp.child("parameters");
        validate_typed_ref(params, &pp, errs);
        match opt_s(params, "scope") {
            None => errs.push(field::required(&pp.child("scope"), "")),
            Some("Namespace") => match opt_s(params, "namespace") {
                None => errs.push(field::required(
                    &pp.child("namespace"),
                    "`parameters.scope` is set to 'Namespace'",
                )),
                Some(ns) => {
                    for m in name_is_dns_label(ns, false) {
                        errs.push(field::invalid(&pp.child("namespace"), ns, &m));
                    }
                }
            },
            Some("Cluster") => {
                if has(params, "namespace") {
                    errs.push(field::forbidden(
                        &pp.child("namespace"),
                        "`parameters.scope` is set to 'Cluster'",
                    ));
                }
            }
            Some(other) => errs.push(field::not_supported(
                &pp.child("scope"),
                other,
                &["Cluster", "Namespace"],
            )),
        }
    }
}

// ---------------------------------------------------------------- rbac

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn validate_policy_rule(rule: &Value, namespaced: bool, path: &Path, errs: &mut Errs) {
    if arr(rule, "verbs").is_empty() {
        errs.push(field::required(
            &path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = arr(rule, "nonResourceURLs");
    if !urls.is_empty() {
        let bad = || Bad::Json(Value::Array(urls.to_vec()));
        if namespaced {
            errs.push(field::invalid(
                &path.child("nonResourceURLs"),
                bad(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !arr(rule, "apiGroups").is_empty()
            || !arr(rule, "resources").is_empty()
            || !arr(rule, "resourceNames").is_empty()
        {
            errs.push(field::invalid(
                &path.child("nonResourceURLs"),
                bad(),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if arr(rule, "apiGroups").is_empty() {
        errs.push(field::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if arr(rule, "resources").is_empty() {
        errs.push(field::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

pub(crate) fn validate_role(role: &Value, old: Option<&Value>, namespaced: bool, errs: &mut Errs) {
    validate_object_meta(
        role.get("metadata"),
        namespaced,
        name_is_path_segment,
        Finalizers::Kube,
        &Path::new("metadata"),
        errs,
    );
    for (idx, rule) in arr(role, "rules").iter().enumerate() {
        validate_policy_rule(rule, namespaced, &Path::new("rules").index(idx), errs);
    }
    if !namespaced && let Some(agg) = obj(role, "aggregationRule") {
        let ap = Path::new("aggregationRule").child("clusterRoleSelectors");
        let sels = arr(agg, "clusterRoleSelectors");
        if sels.is_empty() {
            errs.push(field::required(
                &ap,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (idx, sel) in sels.iter().enumerate() {
            validate_label_selector(Some(sel), false, &ap.index(idx), errs);
            if Selector::from_label_selector(Some(sel)).is_err() {
                errs.push(field::invalid(
                    &ap.index(idx),
                    Bad::Json(sel.clone()),
                    "invalid label selector.",
                ));
            }
        }
    }
    if let Some(o) = old {
        validate_object_meta_update(
            role.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &Path::new("metadata"),
            errs,
        );
    }
}

fn validate_subject(subject: &Value, namespaced: bool, path: &Path, errs: &mut Errs) {
    let name = s(subject, "name");
    if name.is_empty() {
        errs.push(field::required(&path.child("name"), ""));
    }
    let group = s(subject, "apiGroup");
    match s(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for m in name_is_dns_subdomain(name, false) {
                    errs.push(field::invalid(&path.child("name"), name, &m));
                }
            }
            if !group.is_empty() {
                errs.push(field::not_supported(&path.child("apiGroup"), group, &[""]));
            }
            if !namespaced && s(subject, "namespace").is_empty() {
                errs.push(field::required(&path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                errs.push(field::not_supported(
                    &path.child("apiGroup"),
                    group,
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(field::not_supported(
            &path.child("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

pub(crate) fn validate_role_binding(
    rb: &Value,
    old: Option<&Value>,
    namespaced: bool,
    errs: &mut Errs,
) {
    validate_object_meta(
        rb.get("metadata"),
        namespaced,
        name_is_path_segment,
        Finalizers::Kube,
        &Path::new("metadata"),
        errs,
    );
    let rr = rb.get("roleRef").cloned().unwrap_or(json!({}));
    let rp = Path::new("roleRef");
    let group = s(&rr, "apiGroup");
    if group != RBAC_GROUP {
        errs.push(field::not_supported(
            &rp.child("apiGroup"),
            group,
            &[RBAC_GROUP],
        ));
    }
    let kind = s(&rr, "kind");
    if namespaced {
        if !matches!(kind, "Role" | "ClusterRole") {
            errs.push(field::not_supported(
                &rp.child("kind"),
                kind,
                &["Role", "ClusterRole"],
            ));
        }
    } else if kind != "ClusterRole" {
        errs.push(field::not_supported(
            &rp.child("kind"),
            kind,
            &["ClusterRole"],
        ));
    }
    let name = s(&rr, "name");
    if name.is_empty() {
        errs.push(field::required(&rp.child("name"), ""));
    } else {
        for m in is_path_segment_name(name) {
            errs.push(field::invalid(&rp.child("name"), name, &m));
        }
    }
    for (idx, subj) in arr(rb, "subjects").iter().enumerate() {
        validate_subject(subj, namespaced, &Path::new("subjects").index(idx), errs);
    }
    if let Some(o) = old {
        validate_object_meta_update(
            rb.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &Path::new("metadata"),
            errs,
        );
        let orr = o.get("roleRef").cloned().unwrap_or(json!({}));
        let changed = ["apiGroup", "kind", "name"]
            .iter()
            .any(|k| s(&rr, k) != s(&orr, k));
        if changed {
            // Internal rbac.RoleRef has no JSON tags: Go field names are printed.
            let bad = json!({"APIGroup": group, "Kind": kind, "Name": name});
            errs.push(field::invalid(&rp, Bad::Json(bad), "cannot change roleRef"));
        }
    }
}

// ---------------------------------------------------------------- policy

fn int_or_percent(v: &Value, path: &Path, errs: &mut Errs) {
    match v {
        Value::String(sv) => {
            for m in is_valid_percent(sv) {
                errs.push(field::invalid(path, Bad::Json(v.clone()), &m));
            }
            if is_valid_percent(sv).is_empty()
                && sv
                    .trim_end_matches('%')
                    .parse::<i64>()
                    .is_ok_and(|n| n > 100)
            {
                errs.push(field::invalid(
                    path,
                    Bad::Json(v.clone()),
                    "must not be greater than 100%",
                ));
            }
        }
        Value::Number(n) => nonnegative(n.as_i64().unwrap_or(0), path, errs),
        _ => {}
    }
}

pub(crate) fn validate_pdb(pdb: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta(pdb, old, true, name_is_dns_subdomain, errs);
    let spec = spec_of(pdb);
    let sp = Path::new("spec");
    let (min, max) = (obj(&spec, "minAvailable"), obj(&spec, "maxUnavailable"));
    if min.is_some() && max.is_some() {
        // Internal PodDisruptionBudgetSpec has no JSON tags: Go field names.
        let get = |k: &str| spec.get(k).cloned().unwrap_or(Value::Null);
        let bad = json!({"MinAvailable": get("minAvailable"), "Selector": get("selector"),
                         "MaxUnavailable": get("maxUnavailable"), "UnhealthyPodEvictionPolicy": get("unhealthyPodEvictionPolicy")});
        errs.push(field::invalid(
            &sp,
            Bad::Json(bad),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    if let Some(m) = min {
        int_or_percent(m, &sp.child("minAvailable"), errs);
    }
    if let Some(m) = max {
        int_or_percent(m, &sp.child("maxUnavailable"), errs);
    }
    validate_label_selector(obj(&spec, "selector"), false, &sp.child("selector"), errs);
    if let Some(p) = opt_s(&spec, "unhealthyPodEvictionPolicy")
        && !matches!(p, "AlwaysAllow" | "IfHealthyBudget")
    {
        errs.push(field::not_supported(
            &sp.child("unhealthyPodEvictionPolicy"),
            p,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
}

// ---------------------------------------------------------------- autoscaling

fn validate_cross_version_ref(r: &Value, path: &Path, errs: &mut Errs) {
    for k in ["kind", "name"] {
        let v = s(r, k);
        if v.is_empty() {
            errs.push(field::required(&path.child(k), ""));
        } else {
            for m in is_path_segment_name(v) {
                errs.push(field::invalid(&path.child(k), v, &m));
            }
        }
    }
}

fn positive_quantity(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        let raw = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        if let Some(q) = Quantity::parse(&raw)
            && q.sign() != std::cmp::Ordering::Greater
        {
            errs.push(field::invalid(
                path,
                Bad::Json(Value::String(q.canonical())),
                "must be positive",
            ));
        }
    }
}

fn validate_metric_target(t: &Value, path: &Path, errs: &mut Errs) {
    let ty = s(t, "type");
    if ty.is_empty() {
        errs.push(field::required(
            &path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(ty, "Utilization" | "Value" | "AverageValue") {
        errs.push(field::invalid(
            &path.child("type"),
            ty,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    positive_quantity(t.get("value"), &path.child("value"), errs);
    positive_quantity(t.get("averageValue"), &path.child("averageValue"), errs);
    if let Some(u) = opt_i(t, "averageUtilization")
        && u < 1
    {
        errs.push(field::invalid(
            &path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
}

fn validate_metric_identifier(id: Option<&Value>, path: &Path, errs: &mut Errs) {
    let empty = json!({});
    let id = id.unwrap_or(&empty);
    let name = s(id, "name");
    if name.is_empty() {
        errs.push(field::required(
            &path.child("name"),
            "must specify a metric name",
        ));
    } else {
        for m in is_path_segment_name(name) {
            errs.push(field::invalid(&path.child("name"), name, &m));
        }
    }
    if let Some(sel) = obj(id, "selector") {
        validate_label_selector(Some(sel), false, &path.child("selector"), errs);
    }
}

fn validate_metric(spec: &Value, path: &Path, errs: &mut Errs) {
    const TYPES: [&str; 5] = [
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    let ty = s(spec, "type");
    if ty.is_empty() {
        errs.push(field::required(
            &path.child("type"),
            "must specify a metric source type",
        ));
    }
    if !TYPES.contains(&ty) {
        errs.push(field::not_supported(&path.child("type"), ty, &TYPES));
    }
    let sources = [
        ("object", "Object"),
        ("pods", "Pods"),
        ("resource", "Resource"),
        ("external", "External"),
        ("containerResource", "ContainerResource"),
    ];
    let mut present: Vec<&str> = Vec::new();
    for (key, _) in sources {
        let Some(src) = obj(spec, key) else {
            continue;
        };
        present.push(key);
        if present.len() != 1 {
            continue;
        }
        let p = path.child(key);
        let empty = json!({});
        let target = src.get("target").unwrap_or(&empty);
        match key {
            "object" => {
                validate_cross_version_ref(
                    src.get("describedObject").unwrap_or(&empty),
                    &p.child("describedObject"),
                    errs,
                );
                validate_metric_identifier(src.get("metric"), &p.child("metric"), errs);
                validate_metric_target(target, &p.child("target"), errs);
                if !has(target, "value") && !has(target, "averageValue") {
                    errs.push(field::required(
                        &p.child("target").child("averageValue"),
                        "must set either a target value or averageValue",
                    ));
                }
            }
            "pods" | "external" => {
                validate_metric_identifier(src.get("metric"), &p.child("metric"), errs);
                validate_metric_target(target, &p.child("target"), errs);
                if key == "pods" && !has(target, "averageValue") {
                    errs.push(field::required(
                        &p.child("target").child("averageValue"),
                        "must specify a positive target averageValue",
                    ));
                }
                if key == "external" && !has(target, "value") && !has(target, "averageValue") {
                    errs.push(field::required(
                        &p.child("target").child("averageValue"),
                        "must set either a target value for metric or a per-pod target",
                    ));
                }
                if key == "external" && has(target, "value") && has(target, "averageValue") {
                    errs.push(field::forbidden(
                        &p.child("target").child("value"),
                        "may not set both a target value for metric and a per-pod target",
                    ));
                }
            }
            _ => {
                if s(src, "name").is_empty() {
                    errs.push(field::required(
                        &p.child("name"),
                        "must specify a resource name",
                    ));
                }
                if key == "containerResource" {
                    let c = s(src, "container");
                    if c.is_empty() {
                        errs.push(field::required(
                            &p.child("container"),
                            "must specify a container",
                        ));
                    } else {
                        for m in is_dns1123_label(c) {
                            errs.push(field::invalid(&p.child("container"), c, &m));
                        }
                    }
                }
                validate_metric_target(target, &p.child("target"), errs);
                let (u, av) = (
                    has(target, "averageUtilization"),
                    has(target, "averageValue"),
                );
                if !u && !av {
                    errs.push(field::required(
                        &p.child("target").child("averageUtilization"),
                        "must set either a target raw value or a target utilization",
                    ));
                }
                if u && av {
                    errs.push(field::forbidden(
                        &p.child("target").child("averageValue"),
                        "may not set both a target raw value and a target utilization",
                    ));
                }
            }
        }
    }
    let expected = sources.iter().find(|(_, t)| *t == ty).map(|(k, _)| *k);
    match expected {
        Some(k) if obj(spec, k).is_none() => {
            errs.push(field::required(
                &path.child(k),
                "must populate information for the given metric source",
            ));
        }
        None if !ty.is_empty() && TYPES.contains(&ty) => {}
        _ => {}
    }
    if present.len() != 1 {
        for k in present.iter().filter(|k| Some(**k) != expected) {
            errs.push(field::forbidden(
                &path.child(k),
                "must populate the given metric source only",
            ));
        }
    }
}

fn validate_scaling_rules(rules: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(rules) = rules.filter(|r| !r.is_null()) else {
        return;
    };
    if let Some(w) = opt_i(rules, "stabilizationWindowSeconds") {
        if w < 0 {
            errs.push(field::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > 3600 {
            errs.push(field::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                "must be less than or equal to 3600",
            ));
        }
    }
    if let Some(sp) = opt_s(rules, "selectPolicy")
        && !matches!(sp, "Disabled" | "Max" | "Min")
    {
        errs.push(field::not_supported(
            &path.child("selectPolicy"),
            sp,
            &["Disabled", "Max", "Min"],
        ));
    }
    let pp = path.child("policies");
    let policies = arr(rules, "policies");
    if policies.is_empty() {
        errs.push(field::required(&pp, "must specify at least one Policy"));
    }
    for (idx, p) in policies.iter().enumerate() {
        let ip = pp.index(idx);
        let ty = s(p, "type");
        if !matches!(ty, "Pods" | "Percent") {
            errs.push(field::not_supported(
                &ip.child("type"),
                ty,
                &["Percent", "Pods"],
            ));
        }
        let v = i(p, "value");
        if v <= 0 {
            errs.push(field::invalid(
                &ip.child("value"),
                v,
                "must be greater than zero",
            ));
        }
        let per = i(p, "periodSeconds");
        if per <= 0 {
            errs.push(field::invalid(
                &ip.child("periodSeconds"),
                per,
                "must be greater than zero",
            ));
        }
        if per > 1800 {
            errs.push(field::invalid(
                &ip.child("periodSeconds"),
                per,
                "must be less than or equal to 1800",
            ));
        }
    }
}

pub(crate) fn validate_hpa(hpa: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta(hpa, old, true, name_is_dns_subdomain, errs);
    let spec = spec_of(hpa);
    let sp = Path::new("spec");
    let min = opt_i(&spec, "minReplicas");
    let max = i(&spec, "maxReplicas");
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(field::invalid(
            &sp.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(field::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(field::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    validate_cross_version_ref(
        spec.get("scaleTargetRef").unwrap_or(&json!({})),
        &sp.child("scaleTargetRef"),
        errs,
    );
    if s(hpa, "apiVersion") == "autoscaling/v1" {
        if let Some(t) = opt_i(&spec, "targetCPUUtilizationPercentage")
            && t < 1
        {
            errs.push(field::invalid(
                &sp.child("targetCPUUtilizationPercentage"),
                t,
                "must be greater than 0",
            ));
        }
        return;
    }
    for (idx, m) in arr(&spec, "metrics").iter().enumerate() {
        validate_metric(m, &sp.child("metrics").index(idx), errs);
    }
    if let Some(b) = obj(&spec, "behavior") {
        validate_scaling_rules(
            b.get("scaleUp"),
            &sp.child("behavior").child("scaleUp"),
            errs,
        );
        validate_scaling_rules(
            b.get("scaleDown"),
            &sp.child("behavior").child("scaleDown"),
            errs,
        );
    }
}

// ---------------------------------------------------------------- discovery

pub(crate) fn validate_endpoint_slice(eps: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(o) = old {
        validate_object_meta_update(
            eps.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &Path::new("metadata"),
            errs,
        );
    }
    validate_object_meta(
        eps.get("metadata"),
        true,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &Path::new("metadata"),
        errs,
    );
    let at = s(eps, "addressType");
    let atp = Path::new("addressType");
    if at.is_empty() {
        errs.push(field::required(&atp, ""));
    } else if !matches!(at, "FQDN" | "IPv4" | "IPv6") {
        errs.push(field::not_supported(&atp, at, &["FQDN", "IPv4", "IPv6"]));
    }
    let ep = Path::new("endpoints");
    let endpoints = arr(eps, "endpoints");
    if endpoints.len() > 1000 {
        errs.push(field::too_many(&ep, endpoints.len() as i64, 1000));
    }
    for (idx, e) in endpoints.iter().enumerate() {
        let p = ep.index(idx);
        let ap = p.child("addresses");
        let addrs = strings(e, "addresses");
        if addrs.is_empty() {
            errs.push(field::required(&ap, "must contain at least 1 address"));
        } else if addrs.len() > 100 {
            errs.push(field::too_many(&ap, addrs.len() as i64, 100));
        }
        for (ai, a) in addrs.iter().enumerate() {
            let aip = ap.index(ai);
            match at {
                "IPv4" => {
                    let e = is_valid_ip(&aip, a);
                    if e.is_empty() && a.contains(':') {
                        errs.push(field::invalid(&aip, *a, "must be a valid IPv4 address"));
                    }
                    errs.extend(e);
                }
                "IPv6" => {
                    let e = is_valid_ip(&aip, a);
                    if e.is_empty() && !a.contains(':') {
                        errs.push(field::invalid(&aip, *a, "must be a valid IPv6 address"));
                    }
                    errs.extend(e);
                }
                "FQDN" => {
                    let name = a.strip_suffix('.').unwrap_or(a);
                    if name.is_empty() {
                        errs.push(field::required(&aip, ""));
                    } else {
                        let subdomain = is_dns1123_subdomain(name);
                        if !subdomain.is_empty() {
                            errs.push(field::invalid(&aip, name, &subdomain.join(",")));
                        } else if name.split('.').count() < 2 {
                            errs.push(field::invalid(
                                &aip,
                                name,
                                "should be a domain with at least two segments separated by dots",
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(nn) = opt_s(e, "nodeName") {
            for m in name_is_dns_subdomain(nn, false) {
                errs.push(field::invalid(&p.child("nodeName"), nn, &m));
            }
        }
        if let Some(hn) = opt_s(e, "hostname") {
            for m in is_dns1123_label(hn) {
                errs.push(field::invalid(&p.child("hostname"), hn, &m));
            }
        }
    }
    let pp = Path::new("ports");
    let ports = arr(eps, "ports");
    if ports.len() > 20000 {
        errs.push(field::too_many(&pp, ports.len() as i64, 20000));
    }
    let mut names: Vec<&str> = Vec::new();
    for (idx, port) in ports.iter().enumerate() {
        let p = pp.index(idx);
        let name = s(port, "name");
        if !name.is_empty() {
            for m in is_dns1123_label(name) {
                errs.push(field::invalid(&p.child("name"), name, &m));
            }
        }
        if names.contains(&name) {
            errs.push(field::duplicate(&p.child("name"), name));
        } else {
            names.push(name);
        }
        match opt_s(port, "protocol") {
            None => errs.push(field::required(&p.child("protocol"), "")),
            Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => errs.push(field::not_supported(
                &p.child("protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
        if let Some(ap) = opt_s(port, "appProtocol") {
            for m in is_qualified_name(ap) {
                errs.push(field::invalid(&p.child("appProtocol"), ap, &m));
            }
        }
    }
    if let Some(o) = old {
        let oat = s(o, "addressType");
        if at != oat {
            errs.push(field::invalid(&atp, at, FIELD_IMMUTABLE));
        }
    }
}

// ---------------------------------------------------------------- scheduling, storage

pub(crate) fn validate_priority_class(pc: &Value, old: Option<&Value>, errs: &mut Errs) {
    let name = pc.get("metadata").map(|m| s(m, "name")).unwrap_or("");
    let value = i(pc, "value");
    match old {
        None => {
            validate_object_meta(
                pc.get("metadata"),
                false,
                name_is_dns_subdomain,
                Finalizers::Kube,
                &Path::new("metadata"),
                errs,
            );
            if let Some(rest) = name.strip_prefix("system-") {
                let known = match rest {
                    "node-critical" => Some(2_000_001_000),
                    "cluster-critical" => Some(2_000_000_000),
                    _ => None,
                };
                let detail = match known {
                    None => format!("{name} is not a known system priority class"),
                    Some(v) if v != value => format!("value of {name} PriorityClass must be {v}"),
                    Some(_) => String::new(),
                };
                if !detail.is_empty() {
                    errs.push(field::forbidden(
                        &Path::new("metadata").child("name"),
                        &format!("priority class names with 'system-' prefix are reserved for system use only. error: {detail}"),
                    ));
                }
            } else if value > 1_000_000_000 {
                errs.push(field::forbidden(
                    &Path::new("value"),
                    "maximum allowed value of a user defined priority is 1000000000",
                ));
            }
            if let Some(pp) = opt_s(pc, "preemptionPolicy")
                && !matches!(pp, "PreemptLowerPriority" | "Never")
            {
                errs.push(field::not_supported(
                    &Path::new("preemptionPolicy"),
                    pp,
                    &["PreemptLowerPriority", "Never"],
                ));
            }
        }
        Some(o) => {
            validate_object_meta_update(
                pc.get("metadata"),
                o.get("metadata"),
                Finalizers::Kube,
                &Path::new("metadata"),
                errs,
            );
            if value != i(o, "value") {
                errs.push(field::forbidden(
                    &Path::new("value"),
                    "may not be changed in an update.",
                ));
            }
            if opt_s(pc, "preemptionPolicy") != opt_s(o, "preemptionPolicy") {
                let bad = pc.get("preemptionPolicy").cloned().unwrap_or(Value::Null);
                errs.push(field::invalid(
                    &Path::new("preemptionPolicy"),
                    Bad::Json(bad),
                    FIELD_IMMUTABLE,
                ));
            }
        }
    }
}

pub(crate) fn validate_storage_class(sc: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(o) = old {
        validate_object_meta_update(
            sc.get("metadata"),
            o.get("metadata"),
            Finalizers::Kube,
            &Path::new("metadata"),
            errs,
        );
        if !semantic_eq(
            sc.get("parameters").unwrap_or(&Value::Null),
            o.get("parameters").unwrap_or(&Value::Null),
        ) {
            errs.push(field::forbidden(
                &Path::new("parameters"),
                "updates to parameters are forbidden.",
            ));
        }
        if s(sc, "provisioner") != s(o, "provisioner") {
            errs.push(field::forbidden(
                &Path::new("provisioner"),
                "updates to provisioner are forbidden.",
            ));
        }
        if opt_s(sc, "reclaimPolicy") != opt_s(o, "reclaimPolicy") {
            errs.push(field::forbidden(
                &Path::new("reclaimPolicy"),
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        if opt_s(sc, "volumeBindingMode") != opt_s(o, "volumeBindingMode") {
            let bad = sc.get("volumeBindingMode").cloned().unwrap_or(Value::Null);
            errs.push(field::invalid(
                &Path::new("volumeBindingMode"),
                Bad::Json(bad),
                FIELD_IMMUTABLE,
            ));
        }
    }
    validate_object_meta(
        sc.get("metadata"),
        false,
        name_is_dns_subdomain,
        Finalizers::Kube,
        &Path::new("metadata"),
        errs,
    );
    let prov = s(sc, "provisioner");
    if prov.is_empty() {
        errs.push(field::required(&Path::new("provisioner"), ""));
    } else {
        for m in is_qualified_name(&prov.to_lowercase()) {
            errs.push(field::invalid(
                &Path::new("provisioner"),
                prov.to_lowercase(),
                &m,
            ));
        }
    }
    if let Some(rp) = opt_s(sc, "reclaimPolicy")
        && !matches!(rp, "Delete" | "Retain")
    {
        errs.push(field::not_supported(
            &Path::new("reclaimPolicy"),
            rp,
            &["Delete", "Retain"],
        ));
    }
    match opt_s(sc, "volumeBindingMode") {
        None => errs.push(field::required(&Path::new("volumeBindingMode"), "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(other) => errs.push(field::not_supported(
            &Path::new("volumeBindingMode"),
            other,
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
}
