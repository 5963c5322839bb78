//! RBAC authorization (upstream `plugin/pkg/auth/authorizer/rbac`,
//! `pkg/registry/rbac/validation` and `pkg/apis/rbac/v1/evaluation_helpers.go`).
//!
//! [`RbacIndex`] holds a snapshot of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings
//! (wire-form JSON) with bindings indexed by subject, and answers:
//! - [`RbacIndex::authorize`]: the per-request decision, with upstream's reason strings;
//! - [`RbacIndex::rules_for`]: the rules a user holds in a namespace (SelfSubjectRulesReview);
//! - [`RbacIndex::check_role_escalation`] / [`RbacIndex::check_binding_escalation`]: the
//!   privilege-escalation guards upstream runs when Roles/ClusterRoles/bindings are written.
//!
//! The free functions [`covers`] / [`covers_rules`] are upstream's `validation.Covers`.
//! Nothing here does I/O.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::ops::ControlFlow;

use serde_json::{Map, Value};
use thiserror::Error;

/// Members of this group bypass authorization entirely (upstream's privileged-groups authorizer).
pub const SUPERUSER_GROUP: &str = "system:masters";
/// API group of the RBAC resources.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Prefix of the user names service accounts authenticate as.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

pub use super::authn::UserInfo;

/// What a request wants (upstream `authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    /// Kubernetes verb (get list watch create update patch delete deletecollection, or a
    /// special verb such as bind/escalate/impersonate) for resource requests; the lower-cased
    /// HTTP verb (get post put ...) for non-resource requests.
    pub verb: String,
    pub resource_request: bool,
    pub namespace: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Request path, for non-resource requests.
    pub path: String,
}

impl Attributes {
    /// Attributes of a resource request.
    #[allow(clippy::too_many_arguments)]
    pub fn resource(
        user: UserInfo,
        verb: &str,
        namespace: &str,
        api_group: &str,
        resource: &str,
        subresource: &str,
        name: &str,
    ) -> Self {
        Attributes {
            user,
            verb: verb.to_string(),
            resource_request: true,
            namespace: namespace.to_string(),
            api_group: api_group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            name: name.to_string(),
            path: String::new(),
        }
    }

    /// Attributes of a non-resource request (`/healthz`, `/api`, ...).
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Attributes {
            user,
            verb: verb.to_string(),
            resource_request: false,
            path: path.to_string(),
            ..Attributes::default()
        }
    }
}

/// Outcome of [`RbacIndex::authorize`].
///
/// Upstream RBAC answers "no opinion" rather than "deny" so that later authorizers may still
/// allow; with RBAC as the last authorizer that is a denial, which is what `Deny` means here.
/// The deny reason is empty unless rule resolution hit errors (e.g. a binding names a missing
/// role), exactly as upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { reason: String },
    Deny { reason: String },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::Deny { reason } => reason,
        }
    }
}

/// Errors from [`RbacIndex::upsert`] / [`RbacIndex::remove`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RbacError {
    #[error(
        "unsupported RBAC kind {0:?} (want Role, ClusterRole, RoleBinding or ClusterRoleBinding)"
    )]
    UnsupportedKind(String),
    #[error("{kind} has no metadata.name")]
    MissingName { kind: String },
    #[error("{kind} {name:?} has no metadata.namespace")]
    MissingNamespace { kind: String, name: String },
}

/// A write that would grant permissions the writer does not hold. `message` is upstream's
/// text; the API layer wraps it as `403 Forbidden`:
/// `<resource>.rbac.authorization.k8s.io "<name>" is forbidden: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct EscalationError {
    pub message: String,
}

/// A parsed `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// Reads a JSON string array; non-string entries are skipped (validation rejects them anyway).
fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings_value(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

impl PolicyRule {
    /// Parses a wire-form rule (`{"verbs":[..],"apiGroups":[..],...}`).
    pub fn from_value(v: &Value) -> Self {
        PolicyRule {
            verbs: string_list(v.get("verbs")),
            api_groups: string_list(v.get("apiGroups")),
            resources: string_list(v.get("resources")),
            resource_names: string_list(v.get("resourceNames")),
            non_resource_urls: string_list(v.get("nonResourceURLs")),
        }
    }

    /// Parses the `rules` array of a Role/ClusterRole (absent or null means no rules).
    pub fn list_from_value(rules: Option<&Value>) -> Vec<PolicyRule> {
        rules
            .and_then(Value::as_array)
            .map(|a| a.iter().map(PolicyRule::from_value).collect())
            .unwrap_or_default()
    }

    /// Wire form, in Go field order; `verbs` is always present, the rest are omitempty.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), strings_value(&self.verbs));
        let optional = [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ];
        for (key, items) in optional {
            if !items.is_empty() {
                m.insert(key.into(), strings_value(items));
            }
        }
        Value::Object(m)
    }

    /// Upstream `RuleAllows`: does this rule grant the request?
    pub fn allows(&self, a: &Attributes) -> bool {
        if a.resource_request {
            verb_matches(self, &a.verb)
                && api_group_matches(self, &a.api_group)
                && resource_matches(self, &a.resource, &a.subresource)
                && resource_name_matches(self, &a.name)
        } else {
            verb_matches(self, &a.verb) && non_resource_url_matches(self, &a.path)
        }
    }

    /// Upstream `rbacv1helpers.CompactString`, used in escalation messages:
    /// `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let parts = [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ];
        let shown: Vec<String> = parts
            .iter()
            .filter(|(_, items)| !items.is_empty())
            .map(|(label, items)| format!("{label}:{}", go_quote_list(items)))
            .collect();
        format!("{{{}}}", shown.join(", "))
    }
}

/// Upstream `VerbMatches`.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// Upstream `APIGroupMatches`.
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

/// Upstream `ResourceMatches`: `*`, an exact `resource` / `resource/subresource`, or
/// `*/subresource`. Like upstream, `resource/*` is NOT a wildcard (it only matches a
/// subresource literally named `*`).
pub fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        if r == "*" {
            return true;
        }
        if subresource.is_empty() {
            return r == resource;
        }
        // Exact "resource/subresource", compared without allocating.
        let combined = r.len() == resource.len() + 1 + subresource.len()
            && r.starts_with(resource)
            && r.as_bytes().get(resource.len()) == Some(&b'/')
            && r.ends_with(subresource);
        combined
            || (r.len() == subresource.len() + 2 && r.starts_with("*/") && r.ends_with(subresource))
    })
}

/// Upstream `ResourceNameMatches`: a rule with resourceNames only matches requests naming one
/// of them, so it never grants list/watch/create/deletecollection (which carry no name).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

/// Upstream `NonResourceURLMatches`: `*`, an exact path, or a trailing-`*` prefix.
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// Go's `%q` for a string (strconv.Quote), as used in upstream's reason strings.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` for a `[]string`: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Upstream `utilerrors.NewAggregate(errs).Error()`: one message as is, several de-duplicated
/// in `[a, b]`.
fn aggregate_errors(errors: &[String]) -> String {
    match errors {
        [] => String::new(),
        [one] => one.clone(),
        many => {
            let mut seen = BTreeSet::new();
            let unique: Vec<&str> = many
                .iter()
                .filter(|e| seen.insert(e.as_str()))
                .map(String::as_str)
                .collect();
            if unique.len() == 1 {
                unique[0].to_string()
            } else {
                format!("[{}]", unique.join(", "))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RoleRef {
    kind: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    name: String,
    /// Empty for ClusterRoleBindings.
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_value(name: &str, namespace: &str, obj: &Value) -> Self {
        let role_ref = obj.get("roleRef").unwrap_or(&Value::Null);
        let subjects = obj
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| Subject {
                        kind: str_field(s, "kind").to_string(),
                        name: str_field(s, "name").to_string(),
                        namespace: str_field(s, "namespace").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Binding {
            name: name.to_string(),
            namespace: namespace.to_string(),
            role_ref: RoleRef {
                kind: str_field(role_ref, "kind").to_string(),
                name: str_field(role_ref, "name").to_string(),
            },
            subjects,
        }
    }
}

/// The index key a subject is reachable under.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SubjectKey {
    /// A user name: User subjects, and ServiceAccount subjects as the
    /// `system:serviceaccount:<ns>:<name>` user they stand for.
    User(String),
    Group(String),
}

/// Upstream `appliesToUser`, expressed as the key under which the subject matches; `None` for
/// subjects that can match nobody (unknown kind, or a ServiceAccount without any namespace).
fn subject_key(subject: &Subject, binding_namespace: &str) -> Option<SubjectKey> {
    match subject.kind.as_str() {
        "User" => Some(SubjectKey::User(subject.name.clone())),
        "Group" => Some(SubjectKey::Group(subject.name.clone())),
        "ServiceAccount" => {
            // An unqualified SA in a RoleBinding means an SA of the binding's namespace.
            let ns = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                &subject.namespace
            };
            if ns.is_empty() {
                return None;
            }
            Some(SubjectKey::User(format!(
                "{SERVICE_ACCOUNT_USER_PREFIX}{ns}:{}",
                subject.name
            )))
        }
        _ => None,
    }
}

fn subject_applies(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject_key(subject, binding_namespace) {
        Some(SubjectKey::User(name)) => user.name == name,
        Some(SubjectKey::Group(group)) => user.groups.contains(&group),
        None => false,
    }
}

/// Bindings of one scope (the cluster, or one namespace), indexed by subject so that a request
/// only looks at the bindings naming its user or one of its groups.
#[derive(Debug, Clone, Default)]
struct BindingSet {
    bindings: HashMap<String, Binding>,
    /// user name (User subjects, and the user ServiceAccount subjects stand for) -> binding names
    by_user: HashMap<String, BTreeSet<String>>,
    /// group name -> binding names
    by_group: HashMap<String, BTreeSet<String>>,
}

impl BindingSet {
    fn slot(&mut self, key: SubjectKey) -> (&mut HashMap<String, BTreeSet<String>>, String) {
        match key {
            SubjectKey::User(u) => (&mut self.by_user, u),
            SubjectKey::Group(g) => (&mut self.by_group, g),
        }
    }

    fn insert(&mut self, binding: Binding) {
        self.remove(&binding.name);
        for subject in &binding.subjects {
            if let Some(key) = subject_key(subject, &binding.namespace) {
                let (map, k) = self.slot(key);
                map.entry(k).or_default().insert(binding.name.clone());
            }
        }
        self.bindings.insert(binding.name.clone(), binding);
    }

    fn remove(&mut self, name: &str) -> bool {
        let Some(old) = self.bindings.remove(name) else {
            return false;
        };
        for subject in &old.subjects {
            if let Some(key) = subject_key(subject, &old.namespace) {
                let (map, k) = self.slot(key);
                if let Some(names) = map.get_mut(&k) {
                    names.remove(name);
                    if names.is_empty() {
                        map.remove(&k);
                    }
                }
            }
        }
        true
    }

    /// Bindings that may apply to `user`, in name order (upstream's lister order is arbitrary;
    /// a fixed order keeps reasons deterministic).
    fn candidates(&self, user: &UserInfo) -> Vec<&Binding> {
        let mut names: BTreeSet<&str> = BTreeSet::new();
        if let Some(set) = self.by_user.get(&user.name) {
            names.extend(set.iter().map(String::as_str));
        }
        for g in &user.groups {
            if let Some(set) = self.by_group.get(g) {
                names.extend(set.iter().map(String::as_str));
            }
        }
        names
            .into_iter()
            .filter_map(|n| self.bindings.get(n))
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
}

/// Where a visited rule came from (upstream's binding describers).
struct RuleSource<'a> {
    binding: &'a Binding,
    subject: &'a Subject,
}

impl RuleSource<'_> {
    fn describe(&self) -> String {
        let subject = if self.subject.kind == "ServiceAccount" {
            let ns = if self.subject.namespace.is_empty() {
                &self.binding.namespace
            } else {
                &self.subject.namespace
            };
            format!(
                "{} {}",
                self.subject.kind,
                go_quote(&format!("{}/{}", self.subject.name, ns))
            )
        } else {
            format!("{} {}", self.subject.kind, go_quote(&self.subject.name))
        };
        if self.binding.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {} of {} {} to {}",
                go_quote(&self.binding.name),
                self.binding.role_ref.kind,
                go_quote(&self.binding.role_ref.name),
                subject
            )
        } else {
            format!(
                "RoleBinding {} of {} {} to {}",
                go_quote(&format!("{}/{}", self.binding.name, self.binding.namespace)),
                self.binding.role_ref.kind,
                go_quote(&self.binding.role_ref.name),
                subject
            )
        }
    }
}

enum Visit<'a> {
    Rule(RuleSource<'a>, &'a PolicyRule),
    Error(String),
}

/// SelfSubjectRulesReview material: wire-form `ResourceRule`s and `NonResourceRule`s plus the
/// rule-resolution error text upstream reports as `status.evaluationError`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesReview {
    pub resource_rules: Vec<Value>,
    pub non_resource_rules: Vec<Value>,
    pub evaluation_error: Option<String>,
}

/// Snapshot of the RBAC objects, indexed for [`RbacIndex::authorize`].
#[derive(Debug, Clone, Default)]
pub struct RbacIndex {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// namespace -> name -> rules
    roles: HashMap<String, HashMap<String, Vec<PolicyRule>>>,
    cluster_role_bindings: BindingSet,
    /// namespace -> bindings of that namespace
    role_bindings: HashMap<String, BindingSet>,
}

/// Normalises a kind or a plural resource name to the kind.
fn rbac_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "Role" | "roles" => Some("Role"),
        "ClusterRole" | "clusterroles" => Some("ClusterRole"),
        "RoleBinding" | "rolebindings" => Some("RoleBinding"),
        "ClusterRoleBinding" | "clusterrolebindings" => Some("ClusterRoleBinding"),
        _ => None,
    }
}

impl RbacIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index from wire-form objects, each carrying its own `kind`; objects of other
    /// kinds are skipped, malformed RBAC objects are reported.
    pub fn from_objects<'a>(objs: impl IntoIterator<Item = &'a Value>) -> Result<Self, RbacError> {
        let mut index = Self::new();
        for obj in objs {
            let kind = str_field(obj, "kind");
            if rbac_kind(kind).is_some() {
                index.upsert(kind, obj)?;
            }
        }
        Ok(index)
    }

    /// Adds or replaces one object. `kind` is the kind (`ClusterRole`) or plural resource
    /// (`clusterroles`).
    pub fn upsert(&mut self, kind: &str, obj: &Value) -> Result<(), RbacError> {
        let kind = rbac_kind(kind).ok_or_else(|| RbacError::UnsupportedKind(kind.to_string()))?;
        let meta = obj.get("metadata").unwrap_or(&Value::Null);
        let name = str_field(meta, "name");
        if name.is_empty() {
            return Err(RbacError::MissingName {
                kind: kind.to_string(),
            });
        }
        let namespace = str_field(meta, "namespace");
        let namespaced = matches!(kind, "Role" | "RoleBinding");
        if namespaced && namespace.is_empty() {
            return Err(RbacError::MissingNamespace {
                kind: kind.to_string(),
                name: name.to_string(),
            });
        }
        match kind {
            "ClusterRole" => {
                self.cluster_roles.insert(
                    name.to_string(),
                    PolicyRule::list_from_value(obj.get("rules")),
                );
            }
            "Role" => {
                self.roles.entry(namespace.to_string()).or_default().insert(
                    name.to_string(),
                    PolicyRule::list_from_value(obj.get("rules")),
                );
            }
            "ClusterRoleBinding" => self
                .cluster_role_bindings
                .insert(Binding::from_value(name, "", obj)),
            _ => self
                .role_bindings
                .entry(namespace.to_string())
                .or_default()
                .insert(Binding::from_value(name, namespace, obj)),
        }
        Ok(())
    }

    /// Forgets every object of one kind (before reloading it).
    pub fn clear_kind(&mut self, kind: &str) {
        match rbac_kind(kind) {
            Some("ClusterRole") => self.cluster_roles.clear(),
            Some("Role") => self.roles.clear(),
            Some("ClusterRoleBinding") => self.cluster_role_bindings = BindingSet::default(),
            Some(_) => self.role_bindings.clear(),
            None => {}
        }
    }

    /// Removes one object (`namespace` is ignored for cluster-scoped kinds). Returns whether it
    /// was present.
    pub fn remove(&mut self, kind: &str, namespace: &str, name: &str) -> Result<bool, RbacError> {
        let kind = rbac_kind(kind).ok_or_else(|| RbacError::UnsupportedKind(kind.to_string()))?;
        Ok(match kind {
            "ClusterRole" => self.cluster_roles.remove(name).is_some(),
            "Role" => {
                let Some(roles) = self.roles.get_mut(namespace) else {
                    return Ok(false);
                };
                let removed = roles.remove(name).is_some();
                if roles.is_empty() {
                    self.roles.remove(namespace);
                }
                removed
            }
            "ClusterRoleBinding" => self.cluster_role_bindings.remove(name),
            _ => {
                let Some(set) = self.role_bindings.get_mut(namespace) else {
                    return Ok(false);
                };
                let removed = set.remove(name);
                if set.is_empty() {
                    self.role_bindings.remove(namespace);
                }
                removed
            }
        })
    }

    /// Upstream `GetRoleReferenceRules`, with the listers' NotFound messages.
    fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(binding_namespace)
                .and_then(|roles| roles.get(&role_ref.name))
                .map(Vec::as_slice)
                .ok_or_else(|| format!("role.{RBAC_GROUP} {} not found", go_quote(&role_ref.name))),
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(Vec::as_slice)
                .ok_or_else(|| {
                    format!(
                        "clusterrole.{RBAC_GROUP} {} not found",
                        go_quote(&role_ref.name)
                    )
                }),
            other => Err(format!(
                "unsupported role reference kind: {}",
                go_quote(other)
            )),
        }
    }

    /// Upstream `VisitRulesFor`: every rule of every ClusterRoleBinding naming the user, then
    /// (if `namespace` is set) of every RoleBinding in that namespace naming the user.
    fn visit_rules_for<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        visitor: &mut dyn FnMut(Visit<'a>) -> ControlFlow<()>,
    ) {
        let mut scopes: Vec<&'a BindingSet> = vec![&self.cluster_role_bindings];
        if !namespace.is_empty()
            && let Some(set) = self.role_bindings.get(namespace)
        {
            scopes.push(set);
        }
        for set in scopes {
            for binding in set.candidates(user) {
                let Some(subject) = binding
                    .subjects
                    .iter()
                    .find(|s| subject_applies(user, s, &binding.namespace))
                else {
                    continue;
                };
                match self.role_ref_rules(&binding.role_ref, &binding.namespace) {
                    Err(e) => {
                        if visitor(Visit::Error(e)).is_break() {
                            return;
                        }
                    }
                    Ok(rules) => {
                        for rule in rules {
                            if visitor(Visit::Rule(RuleSource { binding, subject }, rule))
                                .is_break()
                            {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Authorizes one request: members of `system:masters` always (reason empty, as upstream's
    /// privileged-groups authorizer); otherwise the first RBAC rule that allows it, with reason
    /// `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"`.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        if a.user.is_superuser() {
            return Decision::Allow {
                reason: String::new(),
            };
        }
        let mut allowed: Option<String> = None;
        let mut errors: Vec<String> = Vec::new();
        self.visit_rules_for(&a.user, &a.namespace, &mut |visit| match visit {
            Visit::Rule(source, rule) => {
                if rule.allows(a) {
                    allowed = Some(format!("RBAC: allowed by {}", source.describe()));
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            Visit::Error(e) => {
                errors.push(e);
                ControlFlow::Continue(())
            }
        });
        match allowed {
            Some(reason) => Decision::Allow { reason },
            None if errors.is_empty() => Decision::Deny {
                reason: String::new(),
            },
            None => Decision::Deny {
                reason: format!("RBAC: {}", aggregate_errors(&errors)),
            },
        }
    }

    /// Upstream `RulesFor`: all rules the user holds in `namespace` (cluster-wide ones included),
    /// plus the resolution errors met on the way (the rules are still usable: RBAC is additive).
    pub fn policy_rules_for(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit_rules_for(user, namespace, &mut |visit| {
            match visit {
                Visit::Rule(_, rule) => rules.push(rule.clone()),
                Visit::Error(e) => errors.push(e),
            }
            ControlFlow::Continue(())
        });
        (rules, errors)
    }

    /// For SelfSubjectRulesReview: the wire-form `ResourceRule`s and `NonResourceRule`s that
    /// apply to the user in `namespace`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Value>, Vec<Value>) {
        let review = self.rules_review(user, namespace);
        (review.resource_rules, review.non_resource_rules)
    }

    /// [`RbacIndex::rules_for`] plus the `evaluationError` text.
    pub fn rules_review(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        let (rules, errors) = self.policy_rules_for(user, namespace);
        let mut review = RulesReview::default();
        for rule in &rules {
            if !rule.resources.is_empty() {
                let mut m = Map::new();
                m.insert("verbs".into(), strings_value(&rule.verbs));
                for (key, items) in [
                    ("apiGroups", &rule.api_groups),
                    ("resources", &rule.resources),
                    ("resourceNames", &rule.resource_names),
                ] {
                    if !items.is_empty() {
                        m.insert(key.into(), strings_value(items));
                    }
                }
                review.resource_rules.push(Value::Object(m));
            }
            if !rule.non_resource_urls.is_empty() {
                let mut m = Map::new();
                m.insert("verbs".into(), strings_value(&rule.verbs));
                m.insert(
                    "nonResourceURLs".into(),
                    strings_value(&rule.non_resource_urls),
                );
                review.non_resource_rules.push(Value::Object(m));
            }
        }
        if !errors.is_empty() {
            review.evaluation_error = Some(aggregate_errors(&errors));
        }
        review
    }

    /// Upstream `ConfirmNoEscalation`: the rules the user holds in `namespace` ("" for
    /// cluster-wide only) must cover `rules`.
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<(), EscalationError> {
        let (owner_rules, errors) = self.policy_rules_for(user, namespace);
        let (covered, missing) = covers_rules(&owner_rules, rules);
        if covered {
            return Ok(());
        }
        let descriptions: BTreeSet<String> = compact_rules(&missing)
            .iter()
            .map(PolicyRule::compact_string)
            .collect();
        let mut message = format!(
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            go_quote(&user.name),
            go_quote_list(&user.groups),
            descriptions.into_iter().collect::<Vec<_>>().join("\n")
        );
        if !errors.is_empty() {
            let _ = write!(
                message,
                "; resolution errors: [{}]",
                aggregate_errors(&errors)
            );
        }
        Err(EscalationError { message })
    }

    /// The guard upstream runs when a Role or ClusterRole is created (`old` = None) or updated
    /// (`old` = the stored object): allowed for `system:masters`, for holders of the `escalate`
    /// verb on the role, for updates that only touch GC fields (ownerReferences, finalizers),
    /// and otherwise only if the writer already holds every rule. A ClusterRole with an
    /// aggregationRule (now or before) further needs full authority.
    pub fn check_role_escalation(
        &self,
        user: &UserInfo,
        kind: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), EscalationError> {
        if user.is_superuser() {
            return Ok(());
        }
        let cluster = matches!(rbac_kind(kind), Some("ClusterRole"));
        let meta = obj.get("metadata").unwrap_or(&Value::Null);
        let namespace = if cluster {
            ""
        } else {
            str_field(meta, "namespace")
        };
        // On create the request path carries no name, so a resourceNames-limited `escalate`
        // grant cannot authorize it (upstream uses RequestInfo.Name).
        let request_name = if old.is_some() {
            str_field(meta, "name")
        } else {
            ""
        };
        let escalate = Attributes::resource(
            user.clone(),
            "escalate",
            namespace,
            RBAC_GROUP,
            if cluster { "clusterroles" } else { "roles" },
            "",
            request_name,
        );
        if self.authorize(&escalate).is_allowed() {
            return Ok(());
        }
        if let Some(old) = old
            && only_gc_fields_changed(obj, old)
        {
            return Ok(());
        }
        let rules = PolicyRule::list_from_value(obj.get("rules"));
        self.confirm_no_escalation(user, namespace, &rules)?;
        let has_aggregation = |v: &Value| v.get("aggregationRule").is_some_and(|r| !r.is_null());
        if cluster && (has_aggregation(obj) || old.is_some_and(has_aggregation)) {
            let full = [
                PolicyRule {
                    verbs: vec!["*".into()],
                    api_groups: vec!["*".into()],
                    resources: vec!["*".into()],
                    ..PolicyRule::default()
                },
                PolicyRule {
                    verbs: vec!["*".into()],
                    non_resource_urls: vec!["*".into()],
                    ..PolicyRule::default()
                },
            ];
            if self.confirm_no_escalation(user, "", &full).is_err() {
                return Err(EscalationError {
                    message: "must have cluster-admin privileges to use the aggregationRule".into(),
                });
            }
        }
        Ok(())
    }

    /// The guard upstream runs when a RoleBinding or ClusterRoleBinding is created (`old` =
    /// None) or updated: allowed for `system:masters`, for updates that only touch GC fields,
    /// for holders of the `bind` verb on the referenced role (checked in the binding's
    /// namespace), and otherwise only if the writer already holds every rule of that role.
    pub fn check_binding_escalation(
        &self,
        user: &UserInfo,
        kind: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), EscalationError> {
        if user.is_superuser() {
            return Ok(());
        }
        if let Some(old) = old
            && only_gc_fields_changed(obj, old)
        {
            return Ok(());
        }
        let cluster = matches!(rbac_kind(kind), Some("ClusterRoleBinding"));
        let meta = obj.get("metadata").unwrap_or(&Value::Null);
        let namespace = if cluster {
            ""
        } else {
            str_field(meta, "namespace")
        };
        let role_ref_value = obj.get("roleRef").unwrap_or(&Value::Null);
        let role_ref = RoleRef {
            kind: str_field(role_ref_value, "kind").to_string(),
            name: str_field(role_ref_value, "name").to_string(),
        };
        let bind_resource = match role_ref.kind.as_str() {
            "ClusterRole" => Some("clusterroles"),
            "Role" => Some("roles"),
            _ => None,
        };
        if let Some(resource) = bind_resource {
            let bind = Attributes::resource(
                user.clone(),
                "bind",
                namespace,
                str_field(role_ref_value, "apiGroup"),
                resource,
                "",
                &role_ref.name,
            );
            if self.authorize(&bind).is_allowed() {
                return Ok(());
            }
        }
        let rules = self
            .role_ref_rules(&role_ref, namespace)
            .map_err(|message| EscalationError { message })?;
        self.confirm_no_escalation(user, namespace, rules)
    }
}

/// Drops nulls and empty arrays/objects from object fields so that JSON comparison matches Go's
/// semantic equality (nil and empty are the same there).
fn semantic_normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter_map(|(k, v)| {
                    let n = semantic_normalize(v);
                    let empty = match &n {
                        Value::Null => true,
                        Value::Array(a) => a.is_empty(),
                        Value::Object(o) => o.is_empty(),
                        _ => false,
                    };
                    (!empty).then(|| (k.clone(), n))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(semantic_normalize).collect()),
        other => other.clone(),
    }
}

/// Upstream `IsOnlyMutatingGCFields`: the update changes nothing but ownerReferences,
/// finalizers, selfLink and managedFields.
pub fn only_gc_fields_changed(new: &Value, old: &Value) -> bool {
    let mut copied = new.clone();
    let old_meta = old.get("metadata").and_then(Value::as_object);
    if let Some(meta) = copied.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["ownerReferences", "finalizers", "selfLink", "managedFields"] {
            match old_meta.and_then(|m| m.get(key)) {
                Some(v) => {
                    meta.insert(key.to_string(), v.clone());
                }
                None => {
                    meta.remove(key);
                }
            }
        }
    }
    semantic_normalize(&copied) == semantic_normalize(old)
}

/// Upstream `BreakdownRule`: one rule per (group, resource, verb[, name]) and per (url, verb).
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    verbs: vec![verb.clone()],
                    api_groups: vec![group.clone()],
                    resources: vec![resource.clone()],
                    ..PolicyRule::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(base);
                } else {
                    for name in &rule.resource_names {
                        out.push(PolicyRule {
                            resource_names: vec![name.clone()],
                            ..base.clone()
                        });
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                verbs: vec![verb.clone()],
                non_resource_urls: vec![url.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resource_covers_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn non_resource_url_covers(owner: &str, wanted: &str) -> bool {
    owner == wanted || (owner.ends_with('*') && wanted.starts_with(owner.trim_end_matches('*')))
}

/// Upstream `ruleCovers`: does `owner` grant everything the broken-down `sub` rule does?
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = sub.non_resource_urls.iter().all(|w| {
        owner
            .non_resource_urls
            .iter()
            .any(|o| non_resource_url_covers(o, w))
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && names && urls
}

/// Upstream `validation.Covers`: whether `owner` grants everything `servant` does, and the
/// broken-down servant rules it does not.
pub fn covers_rules(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let uncovered: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (uncovered.is_empty(), uncovered)
}

/// (group, resource, resource name) of a simple rule.
type SimpleKey = (String, String, Option<String>);

/// Upstream `CompactRules`: merges the verbs of simple rules (one group, one resource, at most
/// one name, no URLs) that share group/resource/name.
pub fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    let mut simple: Vec<(SimpleKey, PolicyRule)> = Vec::new();
    for rule in rules {
        let is_simple = rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        if !is_simple {
            compacted.push(rule.clone());
            continue;
        }
        let key = (
            rule.api_groups[0].clone(),
            rule.resources[0].clone(),
            rule.resource_names.first().cloned(),
        );
        match simple.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => {
                for verb in &rule.verbs {
                    if !has(&existing.verbs, verb) {
                        existing.verbs.push(verb.clone());
                    }
                }
            }
            None => simple.push((key, rule.clone())),
        }
    }
    compacted.extend(simple.into_iter().map(|(_, r)| r));
    compacted
}

/// The escalation check on wire-form rules: `Ok` if `owner_rules` cover `requested_rules`,
/// else the uncovered rules as upstream lists them in its Forbidden message (compacted,
/// `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`, sorted).
pub fn covers(owner_rules: &[Value], requested_rules: &[Value]) -> Result<(), Vec<String>> {
    let owner: Vec<PolicyRule> = owner_rules.iter().map(PolicyRule::from_value).collect();
    let requested: Vec<PolicyRule> = requested_rules.iter().map(PolicyRule::from_value).collect();
    let (covered, missing) = covers_rules(&owner, &requested);
    if covered {
        return Ok(());
    }
    let set: BTreeSet<String> = compact_rules(&missing)
        .iter()
        .map(PolicyRule::compact_string)
        .collect();
    Err(set.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(kind: &str, ns: &str, name: &str, rules: Value) -> Value {
        let mut meta = json!({ "name": name });
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules })
    }

    fn binding(
        kind: &str,
        ns: &str,
        name: &str,
        role_kind: &str,
        role_name: &str,
        subjects: Value,
    ) -> Value {
        let mut meta = json!({ "name": name });
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "subjects": subjects,
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name }
        })
    }

    fn user_subject(name: &str) -> Value {
        json!({ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name })
    }

    fn group_subject(name: &str) -> Value {
        json!({ "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name })
    }

    fn index(objs: &[Value]) -> RbacIndex {
        RbacIndex::from_objects(objs.iter()).unwrap()
    }

    fn alice() -> UserInfo {
        UserInfo::new("alice", &["system:authenticated"])
    }

    fn res(
        user: UserInfo,
        verb: &str,
        ns: &str,
        group: &str,
        resource: &str,
        sub: &str,
        name: &str,
    ) -> Attributes {
        Attributes::resource(user, verb, ns, group, resource, sub, name)
    }

    fn allowed(idx: &RbacIndex, a: &Attributes) -> bool {
        idx.authorize(a).is_allowed()
    }

    fn pod_reader() -> Value {
        role(
            "ClusterRole",
            "",
            "pod-reader",
            json!([{ "verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"] }]),
        )
    }

    #[test]
    fn rolebinding_to_clusterrole_applies_only_in_its_namespace() {
        let idx = index(&[
            pod_reader(),
            binding(
                "RoleBinding",
                "dev",
                "read-pods",
                "ClusterRole",
                "pod-reader",
                json!([user_subject("alice")]),
            ),
        ]);
        for verb in ["get", "list", "watch"] {
            assert!(
                allowed(&idx, &res(alice(), verb, "dev", "", "pods", "", "")),
                "{verb}"
            );
        }
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "prod", "", "pods", "", "p")
        ));
        // Cluster-wide list (no namespace) is not granted by a RoleBinding.
        assert!(!allowed(
            &idx,
            &res(alice(), "list", "", "", "pods", "", "")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "create", "dev", "", "pods", "", "")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "delete", "dev", "", "pods", "", "p")
        ));
        // Other users get nothing from it.
        assert!(!allowed(
            &idx,
            &res(UserInfo::new("bob", &[]), "get", "dev", "", "pods", "", "p")
        ));
    }

    #[test]
    fn allow_reason_names_the_binding_like_upstream() {
        let idx = index(&[
            pod_reader(),
            binding(
                "RoleBinding",
                "dev",
                "read-pods",
                "ClusterRole",
                "pod-reader",
                json!([user_subject("alice")]),
            ),
            binding(
                "ClusterRoleBinding",
                "",
                "readers",
                "ClusterRole",
                "pod-reader",
                json!([group_subject("readers")]),
            ),
        ]);
        assert_eq!(
            idx.authorize(&res(alice(), "get", "dev", "", "pods", "", "p")),
            Decision::Allow {
                reason: r#"RBAC: allowed by RoleBinding "read-pods/dev" of ClusterRole "pod-reader" to User "alice""#.into()
            }
        );
        let carol = UserInfo::new("carol", &["readers"]);
        assert_eq!(
            idx.authorize(&res(carol, "list", "", "", "pods", "", ""))
                .reason(),
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "readers""#
        );
        // A plain denial carries no reason.
        assert_eq!(
            idx.authorize(&res(alice(), "delete", "dev", "", "pods", "", "p")),
            Decision::Deny {
                reason: String::new()
            }
        );
    }

    #[test]
    fn cluster_rolebinding_applies_everywhere() {
        let idx = index(&[
            pod_reader(),
            binding(
                "ClusterRoleBinding",
                "",
                "ops",
                "ClusterRole",
                "pod-reader",
                json!([group_subject("ops")]),
            ),
        ]);
        let op = UserInfo::new("dave", &["ops", "system:authenticated"]);
        assert!(allowed(
            &idx,
            &res(op.clone(), "list", "", "", "pods", "", "")
        ));
        assert!(allowed(
            &idx,
            &res(op.clone(), "get", "any-ns", "", "pods", "", "x")
        ));
        assert!(!allowed(
            &idx,
            &res(op.clone(), "get", "any-ns", "apps", "pods", "", "x")
        ));
        assert!(!allowed(
            &idx,
            &res(op, "get", "any-ns", "", "secrets", "", "x")
        ));
    }

    #[test]
    fn role_binding_to_role_uses_the_role_of_the_binding_namespace() {
        let idx = index(&[
            role(
                "Role",
                "dev",
                "cm",
                json!([{ "verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"] }]),
            ),
            role(
                "Role",
                "prod",
                "cm",
                json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"] }]),
            ),
            binding(
                "RoleBinding",
                "prod",
                "cm",
                "Role",
                "cm",
                json!([user_subject("alice")]),
            ),
        ]);
        assert!(allowed(
            &idx,
            &res(alice(), "get", "prod", "", "configmaps", "", "c")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "delete", "prod", "", "configmaps", "", "c")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "", "configmaps", "", "c")
        ));
        assert_eq!(
            idx.authorize(&res(alice(), "get", "prod", "", "configmaps", "", "c"))
                .reason(),
            r#"RBAC: allowed by RoleBinding "cm/prod" of Role "cm" to User "alice""#
        );
    }

    #[test]
    fn superuser_group_is_always_allowed() {
        let idx = RbacIndex::new();
        let admin = UserInfo::new(
            "kubernetes-admin",
            &["system:masters", "system:authenticated"],
        );
        assert_eq!(
            idx.authorize(&res(
                admin.clone(),
                "delete",
                "kube-system",
                "",
                "secrets",
                "",
                "x"
            )),
            Decision::Allow {
                reason: String::new()
            }
        );
        assert!(allowed(
            &idx,
            &Attributes::non_resource(admin, "get", "/metrics")
        ));
        assert!(!allowed(
            &idx,
            &Attributes::non_resource(alice(), "get", "/metrics")
        ));
    }

    #[test]
    fn cluster_admin_via_group_binding() {
        let idx = index(&[
            role(
                "ClusterRole",
                "",
                "cluster-admin",
                json!([
                    { "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] },
                    { "verbs": ["*"], "nonResourceURLs": ["*"] }
                ]),
            ),
            binding(
                "ClusterRoleBinding",
                "",
                "admins",
                "ClusterRole",
                "cluster-admin",
                json!([group_subject("admins")]),
            ),
        ]);
        let eve = UserInfo::new("eve", &["admins"]);
        assert!(allowed(
            &idx,
            &res(
                eve.clone(),
                "deletecollection",
                "x",
                "apps",
                "deployments",
                "",
                ""
            )
        ));
        assert!(allowed(
            &idx,
            &res(eve.clone(), "update", "", "", "nodes", "status", "n1")
        ));
        assert!(allowed(
            &idx,
            &res(eve.clone(), "impersonate", "", "", "users", "", "bob")
        ));
        assert!(allowed(
            &idx,
            &Attributes::non_resource(eve.clone(), "post", "/anything/at/all")
        ));
        assert_eq!(
            idx.authorize(&res(eve, "get", "", "", "nodes", "", "n1"))
                .reason(),
            r#"RBAC: allowed by ClusterRoleBinding "admins" of ClusterRole "cluster-admin" to Group "admins""#
        );
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "", "", "nodes", "", "n1")
        ));
    }

    #[test]
    fn resource_names_only_match_named_requests() {
        let idx = index(&[
            role(
                "Role",
                "dev",
                "one-cm",
                json!([{ "verbs": ["get", "update", "delete", "list", "watch", "create", "deletecollection"],
                         "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-config"] }]),
            ),
            binding(
                "RoleBinding",
                "dev",
                "one-cm",
                "Role",
                "one-cm",
                json!([user_subject("alice")]),
            ),
        ]);
        for verb in ["get", "update", "delete", "watch"] {
            assert!(
                allowed(
                    &idx,
                    &res(alice(), verb, "dev", "", "configmaps", "", "app-config")
                ),
                "{verb}"
            );
        }
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "", "configmaps", "", "other")
        ));
        // Requests without a name never match a rule restricted by resourceNames.
        for verb in ["list", "watch", "create", "deletecollection"] {
            assert!(
                !allowed(&idx, &res(alice(), verb, "dev", "", "configmaps", "", "")),
                "{verb}"
            );
        }
    }

    #[test]
    fn subresources_need_their_own_rule() {
        let idx = index(&[
            role(
                "Role",
                "dev",
                "logs",
                json!([
                    { "verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"] },
                    { "verbs": ["get", "update"], "apiGroups": ["apps"], "resources": ["*/scale"] },
                    { "verbs": ["get"], "apiGroups": [""], "resources": ["services/*"] }
                ]),
            ),
            binding(
                "RoleBinding",
                "dev",
                "logs",
                "Role",
                "logs",
                json!([user_subject("alice")]),
            ),
        ]);
        assert!(allowed(
            &idx,
            &res(alice(), "get", "dev", "", "pods", "log", "p")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "", "pods", "", "p")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "", "pods", "exec", "p")
        ));
        assert!(allowed(
            &idx,
            &res(
                alice(),
                "update",
                "dev",
                "apps",
                "deployments",
                "scale",
                "d"
            )
        ));
        assert!(allowed(
            &idx,
            &res(alice(), "get", "dev", "apps", "statefulsets", "scale", "s")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "apps", "deployments", "", "d")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "apps", "deployments", "status", "d")
        ));
        // As upstream, "services/*" is not a wildcard over subresources.
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "", "services", "proxy", "s")
        ));
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "", "services", "", "s")
        ));
    }

    #[test]
    fn rule_on_resource_does_not_grant_subresources_but_star_does() {
        let pods = PolicyRule::from_value(
            &json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }),
        );
        let star = PolicyRule::from_value(
            &json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["*"] }),
        );
        let a = res(alice(), "get", "dev", "", "pods", "log", "p");
        assert!(!pods.allows(&a));
        assert!(star.allows(&a));
        assert!(resource_matches(&pods, "pods", ""));
        assert!(!resource_matches(&pods, "pod", ""));
        assert!(!resource_matches(&pods, "podsx", ""));
        // "*/log" needs a subresource and must match it entirely.
        let any_log = PolicyRule::from_value(
            &json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["*/log"] }),
        );
        assert!(resource_matches(&any_log, "pods", "log"));
        assert!(!resource_matches(&any_log, "pods", "logs"));
        assert!(!resource_matches(&any_log, "log", ""));
    }

    #[test]
    fn service_account_subjects() {
        let idx = index(&[
            pod_reader(),
            // Explicit namespace, in a binding of another namespace.
            binding(
                "RoleBinding",
                "dev",
                "ci",
                "ClusterRole",
                "pod-reader",
                json!([{ "kind": "ServiceAccount", "name": "builder", "namespace": "ci" }]),
            ),
            // Unqualified SA: defaults to the binding's namespace.
            binding(
                "RoleBinding",
                "web",
                "local",
                "ClusterRole",
                "pod-reader",
                json!([{ "kind": "ServiceAccount", "name": "default" }]),
            ),
            // Unqualified SA in a ClusterRoleBinding matches nobody.
            binding(
                "ClusterRoleBinding",
                "",
                "bad",
                "ClusterRole",
                "pod-reader",
                json!([{ "kind": "ServiceAccount", "name": "default" }]),
            ),
        ]);
        let builder = UserInfo::new(
            "system:serviceaccount:ci:builder",
            &["system:serviceaccounts", "system:serviceaccounts:ci"],
        );
        assert!(allowed(
            &idx,
            &res(builder.clone(), "list", "dev", "", "pods", "", "")
        ));
        assert!(!allowed(
            &idx,
            &res(builder.clone(), "list", "ci", "", "pods", "", "")
        ));
        assert_eq!(
            idx.authorize(&res(builder, "get", "dev", "", "pods", "", "p"))
                .reason(),
            r#"RBAC: allowed by RoleBinding "ci/dev" of ClusterRole "pod-reader" to ServiceAccount "builder/ci""#
        );
        let web_default = UserInfo::new(
            "system:serviceaccount:web:default",
            &["system:serviceaccounts"],
        );
        assert_eq!(
            idx.authorize(&res(web_default.clone(), "get", "web", "", "pods", "", "p"))
                .reason(),
            r#"RBAC: allowed by RoleBinding "local/web" of ClusterRole "pod-reader" to ServiceAccount "default/web""#
        );
        assert!(!allowed(
            &idx,
            &res(web_default, "list", "", "", "pods", "", "")
        ));
        let other_default = UserInfo::new("system:serviceaccount:dev:default", &[]);
        assert!(!allowed(
            &idx,
            &res(other_default, "get", "web", "", "pods", "", "p")
        ));
        // A User subject with the SA's user name also matches that SA.
        let idx2 = index(&[
            pod_reader(),
            binding(
                "ClusterRoleBinding",
                "",
                "u",
                "ClusterRole",
                "pod-reader",
                json!([user_subject("system:serviceaccount:ci:builder")]),
            ),
        ]);
        assert!(allowed(
            &idx2,
            &res(
                UserInfo::new("system:serviceaccount:ci:builder", &[]),
                "get",
                "x",
                "",
                "pods",
                "",
                "p"
            )
        ));
    }

    #[test]
    fn first_matching_subject_is_reported() {
        let idx = index(&[
            pod_reader(),
            binding(
                "ClusterRoleBinding",
                "",
                "multi",
                "ClusterRole",
                "pod-reader",
                json!([
                    user_subject("nobody"),
                    group_subject("system:authenticated"),
                    user_subject("alice")
                ]),
            ),
        ]);
        assert_eq!(
            idx.authorize(&res(alice(), "get", "x", "", "pods", "", "p"))
                .reason(),
            r#"RBAC: allowed by ClusterRoleBinding "multi" of ClusterRole "pod-reader" to Group "system:authenticated""#
        );
    }

    #[test]
    fn non_resource_urls() {
        let idx = index(&[
            role(
                "ClusterRole",
                "",
                "urls",
                json!([
                    { "verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"] },
                    { "verbs": ["post"], "nonResourceURLs": ["/logs*"] }
                ]),
            ),
            binding(
                "ClusterRoleBinding",
                "",
                "urls",
                "ClusterRole",
                "urls",
                json!([user_subject("alice")]),
            ),
        ]);
        let get = |p: &str| allowed(&idx, &Attributes::non_resource(alice(), "get", p));
        assert!(get("/healthz"));
        assert!(!get("/healthz/etcd"));
        assert!(get("/api/v1"));
        assert!(get("/api/"));
        assert!(get("/api/v1/namespaces"));
        assert!(!get("/api"));
        assert!(!get("/apis/apps"));
        assert!(!allowed(
            &idx,
            &Attributes::non_resource(alice(), "post", "/healthz")
        ));
        assert!(allowed(
            &idx,
            &Attributes::non_resource(alice(), "post", "/logs")
        ));
        assert!(allowed(
            &idx,
            &Attributes::non_resource(alice(), "post", "/logsfoo/x")
        ));
        // Non-resource rules never grant resource requests, nor the reverse.
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "", "", "healthz", "", "")
        ));
    }

    #[test]
    fn missing_role_denies_with_resolution_error() {
        let idx = index(&[
            binding(
                "ClusterRoleBinding",
                "",
                "dangling",
                "ClusterRole",
                "nope",
                json!([user_subject("alice")]),
            ),
            binding(
                "RoleBinding",
                "dev",
                "dangling-role",
                "Role",
                "gone",
                json!([user_subject("alice")]),
            ),
        ]);
        assert_eq!(
            idx.authorize(&res(alice(), "get", "", "", "pods", "", "")),
            Decision::Deny {
                reason: r#"RBAC: clusterrole.rbac.authorization.k8s.io "nope" not found"#.into()
            }
        );
        assert_eq!(
            idx.authorize(&res(alice(), "get", "dev", "", "pods", "", "")),
            Decision::Deny {
                reason: r#"RBAC: [clusterrole.rbac.authorization.k8s.io "nope" not found, role.rbac.authorization.k8s.io "gone" not found]"#
                    .into()
            }
        );
        // Missing role of a binding that does not name the user is not even looked at.
        assert_eq!(
            idx.authorize(&res(
                UserInfo::new("bob", &[]),
                "get",
                "dev",
                "",
                "pods",
                "",
                ""
            )),
            Decision::Deny {
                reason: String::new()
            }
        );
    }

    #[test]
    fn missing_role_does_not_hide_other_grants() {
        let idx = index(&[
            pod_reader(),
            binding(
                "ClusterRoleBinding",
                "",
                "a-dangling",
                "ClusterRole",
                "nope",
                json!([user_subject("alice")]),
            ),
            binding(
                "ClusterRoleBinding",
                "",
                "b-ok",
                "ClusterRole",
                "pod-reader",
                json!([user_subject("alice")]),
            ),
        ]);
        assert!(allowed(
            &idx,
            &res(alice(), "get", "x", "", "pods", "", "p")
        ));
    }

    #[test]
    fn unsupported_role_ref_kind() {
        let idx = index(&[binding(
            "ClusterRoleBinding",
            "",
            "weird",
            "Thing",
            "x",
            json!([user_subject("alice")]),
        )]);
        assert_eq!(
            idx.authorize(&res(alice(), "get", "", "", "pods", "", ""))
                .reason(),
            r#"RBAC: unsupported role reference kind: "Thing""#
        );
    }

    #[test]
    fn upsert_replaces_and_remove_forgets() {
        let mut idx = index(&[
            pod_reader(),
            binding(
                "RoleBinding",
                "dev",
                "rb",
                "ClusterRole",
                "pod-reader",
                json!([user_subject("alice")]),
            ),
        ]);
        let bob = UserInfo::new("bob", &[]);
        assert!(allowed(
            &idx,
            &res(alice(), "get", "dev", "", "pods", "", "p")
        ));
        // Re-point the binding at bob: alice loses access, bob gains it.
        idx.upsert(
            "RoleBinding",
            &binding(
                "RoleBinding",
                "dev",
                "rb",
                "ClusterRole",
                "pod-reader",
                json!([user_subject("bob")]),
            ),
        )
        .unwrap();
        assert!(!allowed(
            &idx,
            &res(alice(), "get", "dev", "", "pods", "", "p")
        ));
        assert!(allowed(
            &idx,
            &res(bob.clone(), "get", "dev", "", "pods", "", "p")
        ));
        // Changing the role's rules takes effect for existing bindings.
        idx.upsert(
            "clusterroles",
            &role(
                "ClusterRole",
                "",
                "pod-reader",
                json!([{ "verbs": ["list"], "apiGroups": [""], "resources": ["pods"] }]),
            ),
        )
        .unwrap();
        assert!(!allowed(
            &idx,
            &res(bob.clone(), "get", "dev", "", "pods", "", "p")
        ));
        assert!(allowed(
            &idx,
            &res(bob.clone(), "list", "dev", "", "pods", "", "")
        ));
        // Removing the role leaves a dangling binding.
        assert_eq!(idx.remove("ClusterRole", "", "pod-reader"), Ok(true));
        assert_eq!(
            idx.authorize(&res(bob.clone(), "list", "dev", "", "pods", "", ""))
                .reason(),
            r#"RBAC: clusterrole.rbac.authorization.k8s.io "pod-reader" not found"#
        );
        assert_eq!(idx.remove("RoleBinding", "dev", "rb"), Ok(true));
        assert_eq!(idx.remove("RoleBinding", "dev", "rb"), Ok(false));
        assert_eq!(
            idx.authorize(&res(bob, "list", "dev", "", "pods", "", ""))
                .reason(),
            ""
        );
        assert_eq!(idx.remove("Role", "nowhere", "x"), Ok(false));
    }

    #[test]
    fn upsert_rejects_malformed_objects() {
        let mut idx = RbacIndex::new();
        assert_eq!(
            idx.upsert("Pod", &json!({})),
            Err(RbacError::UnsupportedKind("Pod".into()))
        );
        assert_eq!(
            idx.upsert("ClusterRole", &json!({ "metadata": {} })),
            Err(RbacError::MissingName {
                kind: "ClusterRole".into()
            })
        );
        assert_eq!(
            idx.upsert("RoleBinding", &json!({ "metadata": { "name": "x" } })),
            Err(RbacError::MissingNamespace {
                kind: "RoleBinding".into(),
                name: "x".into()
            })
        );
        assert_eq!(
            idx.remove("Pod", "", "x"),
            Err(RbacError::UnsupportedKind("Pod".into()))
        );
        // A role without rules (e.g. an aggregated role not yet filled in) grants nothing.
        idx.upsert(
            "ClusterRole",
            &json!({ "metadata": { "name": "empty" }, "rules": null }),
        )
        .unwrap();
        idx.upsert(
            "ClusterRoleBinding",
            &binding(
                "ClusterRoleBinding",
                "",
                "e",
                "ClusterRole",
                "empty",
                json!([user_subject("alice")]),
            ),
        )
        .unwrap();
        assert_eq!(
            idx.authorize(&res(alice(), "get", "", "", "pods", "", "")),
            Decision::Deny {
                reason: String::new()
            }
        );
    }

    #[test]
    fn binding_without_subjects_grants_nothing() {
        let idx = index(&[
            pod_reader(),
            json!({ "kind": "ClusterRoleBinding", "metadata": { "name": "x" },
                    "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader" } }),
        ]);
        assert!(!allowed(&idx, &res(alice(), "get", "", "", "pods", "", "")));
    }

    #[test]
    fn many_bindings_only_the_users_apply() {
        let mut objs = vec![pod_reader()];
        for i in 0..3000 {
            objs.push(binding(
                "RoleBinding",
                &format!("ns{}", i % 50),
                &format!("rb{i}"),
                "ClusterRole",
                "pod-reader",
                json!([user_subject(&format!("user{i}"))]),
            ));
            objs.push(binding(
                "ClusterRoleBinding",
                "",
                &format!("crb{i}"),
                "ClusterRole",
                "missing",
                json!([group_subject(&format!("group{i}"))]),
            ));
        }
        let idx = index(&objs);
        let u = UserInfo::new("user1234", &["system:authenticated"]);
        assert_eq!(
            idx.authorize(&res(u.clone(), "get", "ns34", "", "pods", "", "p"))
                .reason(),
            r#"RBAC: allowed by RoleBinding "rb1234/ns34" of ClusterRole "pod-reader" to User "user1234""#
        );
        assert!(!allowed(
            &idx,
            &res(u.clone(), "get", "ns35", "", "pods", "", "p")
        ));
        // Only the dangling binding of the user's own group is consulted.
        let g = UserInfo::new("x", &["group7"]);
        assert_eq!(
            idx.authorize(&res(g, "get", "ns1", "", "pods", "", "p"))
                .reason(),
            r#"RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found"#
        );
    }

    #[test]
    fn go_quoting_of_odd_names() {
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
        assert_eq!(go_quote_list(&[]), "[]");
        assert_eq!(go_quote_list(&["a".into(), "b".into()]), r#"["a" "b"]"#);
    }

    #[test]
    fn rules_for_lists_resource_and_non_resource_rules() {
        let idx = index(&[
            pod_reader(),
            role(
                "ClusterRole",
                "",
                "disc",
                json!([{ "verbs": ["get"], "nonResourceURLs": ["/api", "/api/*"] }]),
            ),
            role(
                "Role",
                "dev",
                "named",
                json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"] }]),
            ),
            binding(
                "ClusterRoleBinding",
                "",
                "disc",
                "ClusterRole",
                "disc",
                json!([group_subject("system:authenticated")]),
            ),
            binding(
                "RoleBinding",
                "dev",
                "read",
                "ClusterRole",
                "pod-reader",
                json!([user_subject("alice")]),
            ),
            binding(
                "RoleBinding",
                "dev",
                "named",
                "Role",
                "named",
                json!([user_subject("alice")]),
            ),
            binding(
                "RoleBinding",
                "dev",
                "broken",
                "Role",
                "absent",
                json!([user_subject("alice")]),
            ),
        ]);
        let (resource, non_resource) = idx.rules_for(&alice(), "dev");
        assert_eq!(
            resource,
            vec![
                json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"] }),
                json!({ "verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"] }),
            ]
        );
        assert_eq!(
            non_resource,
            vec![json!({ "verbs": ["get"], "nonResourceURLs": ["/api", "/api/*"] })]
        );
        let review = idx.rules_review(&alice(), "dev");
        assert_eq!(
            review.evaluation_error.as_deref(),
            Some(r#"role.rbac.authorization.k8s.io "absent" not found"#)
        );
        // In another namespace only the cluster-wide rules remain.
        let (resource, non_resource) = idx.rules_for(&alice(), "prod");
        assert!(resource.is_empty());
        assert_eq!(non_resource.len(), 1);
        assert_eq!(idx.rules_review(&alice(), "prod").evaluation_error, None);
    }

    #[test]
    fn policy_rule_round_trip() {
        let v = json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"] });
        assert_eq!(PolicyRule::from_value(&v).to_value(), v);
        let urls = json!({ "verbs": ["get"], "nonResourceURLs": ["/x"] });
        assert_eq!(PolicyRule::from_value(&urls).to_value(), urls);
        assert_eq!(PolicyRule::default().to_value(), json!({ "verbs": [] }));
        assert_eq!(
            PolicyRule::from_value(&v).compact_string(),
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}"#
        );
        assert_eq!(
            PolicyRule::from_value(&urls).compact_string(),
            r#"{NonResourceURLs:["/x"], Verbs:["get"]}"#
        );
    }

    // --- covers (upstream policy_comparator_test.go cases) ---

    fn rules(v: Value) -> Vec<Value> {
        v.as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn covers_exact_and_star() {
        let owner = rules(
            json!([{ "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "services"] }]),
        );
        assert_eq!(
            covers(
                &owner,
                &rules(json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }]))
            ),
            Ok(())
        );
        let star = rules(json!([{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }]));
        assert_eq!(
            covers(
                &star,
                &rules(
                    json!([{ "verbs": ["delete", "bind"], "apiGroups": ["apps", "x.io"], "resources": ["a", "b/c"], "resourceNames": ["n"] }])
                )
            ),
            Ok(())
        );
        // Star resources do not cover non-resource URLs.
        assert_eq!(
            covers(
                &star,
                &rules(json!([{ "verbs": ["get"], "nonResourceURLs": ["/healthz"] }]))
            ),
            Err(vec![
                r#"{NonResourceURLs:["/healthz"], Verbs:["get"]}"#.to_string()
            ])
        );
    }

    #[test]
    fn covers_reports_missing_verbs_compacted() {
        let owner = rules(json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }]));
        let wanted = rules(json!([
            { "verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"] },
            { "verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"] }
        ]));
        assert_eq!(
            covers(&owner, &wanted),
            Err(vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["list" "watch"]}"#.to_string(),
                r#"{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}"#.to_string(),
            ])
        );
    }

    #[test]
    fn covers_resource_names() {
        let named = rules(
            json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a", "b"] }]),
        );
        let unnamed =
            rules(json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"] }]));
        // Unrestricted owner covers a named request; a named owner does not cover all names.
        assert_eq!(covers(&unnamed, &named), Ok(()));
        assert_eq!(
            covers(&named, &unnamed),
            Err(vec![
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#.to_string()
            ])
        );
        assert_eq!(
            covers(
                &named,
                &rules(
                    json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"] }])
                )
            ),
            Ok(())
        );
        assert_eq!(
            covers(
                &named,
                &rules(
                    json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a", "c"] }])
                )
            ),
            Err(vec![
                r#"{APIGroups:[""], Resources:["secrets"], ResourceNames:["c"], Verbs:["get"]}"#
                    .to_string()
            ])
        );
    }

    #[test]
    fn covers_subresource_star_and_urls() {
        let owner = rules(json!([
            { "verbs": ["get"], "apiGroups": ["apps"], "resources": ["*/scale"] },
            { "verbs": ["get"], "nonResourceURLs": ["/api/*", "/healthz"] }
        ]));
        assert_eq!(
            covers(
                &owner,
                &rules(
                    json!([{ "verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments/scale"] }])
                )
            ),
            Ok(())
        );
        assert!(covers(&owner, &rules(json!([{ "verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"] }]))).is_err());
        assert_eq!(
            covers(
                &owner,
                &rules(
                    json!([{ "verbs": ["get"], "nonResourceURLs": ["/api/v1", "/api/*", "/healthz"] }])
                )
            ),
            Ok(())
        );
        assert_eq!(
            covers(
                &owner,
                &rules(json!([{ "verbs": ["get"], "nonResourceURLs": ["/api", "/healthz/ping"] }]))
            ),
            Err(vec![
                r#"{NonResourceURLs:["/api"], Verbs:["get"]}"#.to_string(),
                r#"{NonResourceURLs:["/healthz/ping"], Verbs:["get"]}"#.to_string(),
            ])
        );
        // A rule with no groups breaks down to nothing, so it is trivially covered (upstream too).
        assert_eq!(
            covers(
                &[],
                &rules(json!([{ "verbs": ["get"], "resources": ["pods"] }]))
            ),
            Ok(())
        );
    }

    #[test]
    fn breakdown_expands_every_combination() {
        let rule = PolicyRule::from_value(&json!({
            "verbs": ["get", "list"], "apiGroups": ["", "apps"], "resources": ["pods"], "resourceNames": ["a", "b"]
        }));
        assert_eq!(breakdown_rule(&rule).len(), 8);
        let urls = PolicyRule::from_value(
            &json!({ "verbs": ["get", "post"], "nonResourceURLs": ["/a", "/b"] }),
        );
        assert_eq!(breakdown_rule(&urls).len(), 4);
    }

    // --- escalation guards ---

    fn escalation_fixture() -> RbacIndex {
        index(&[
            role(
                "ClusterRole",
                "",
                "editor",
                json!([
                    { "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"], "apiGroups": [""], "resources": ["pods", "configmaps"] },
                    { "verbs": ["create", "get", "list"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"] }
                ]),
            ),
            role(
                "ClusterRole",
                "",
                "secret-admin",
                json!([{ "verbs": ["*"], "apiGroups": [""], "resources": ["secrets"] }]),
            ),
            binding(
                "RoleBinding",
                "dev",
                "alice-edit",
                "ClusterRole",
                "editor",
                json!([user_subject("alice")]),
            ),
        ])
    }

    #[test]
    fn role_creation_within_own_rights_is_allowed() {
        let idx = escalation_fixture();
        let ok = role(
            "Role",
            "dev",
            "r",
            json!([{ "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"] }]),
        );
        assert_eq!(
            idx.check_role_escalation(&alice(), "Role", &ok, None),
            Ok(())
        );
    }

    #[test]
    fn role_creation_beyond_own_rights_is_refused_with_upstream_message() {
        let idx = escalation_fixture();
        let bad = role(
            "Role",
            "dev",
            "r",
            json!([{ "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "secrets"] }]),
        );
        let err = idx
            .check_role_escalation(&alice(), "Role", &bad, None)
            .unwrap_err();
        assert_eq!(
            err.message,
            "user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}"
        );
        // The same rules in another namespace: alice holds nothing there.
        let elsewhere = role(
            "Role",
            "prod",
            "r",
            json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }]),
        );
        assert!(
            idx.check_role_escalation(&alice(), "Role", &elsewhere, None)
                .is_err()
        );
        // Superusers skip the check.
        let root = UserInfo::new("root", &["system:masters"]);
        assert_eq!(idx.check_role_escalation(&root, "Role", &bad, None), Ok(()));
    }

    #[test]
    fn escalate_verb_bypasses_the_check() {
        let mut idx = escalation_fixture();
        idx.upsert(
            "ClusterRole",
            &role("ClusterRole", "", "escalator", json!([{ "verbs": ["escalate"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"] }])),
        )
        .unwrap();
        idx.upsert(
            "RoleBinding",
            &binding(
                "RoleBinding",
                "dev",
                "esc",
                "ClusterRole",
                "escalator",
                json!([user_subject("alice")]),
            ),
        )
        .unwrap();
        let bad = role(
            "Role",
            "dev",
            "r",
            json!([{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }]),
        );
        assert_eq!(
            idx.check_role_escalation(&alice(), "Role", &bad, None),
            Ok(())
        );
        // ... but only in the namespace where escalate was granted.
        let bad_prod = role(
            "Role",
            "prod",
            "r",
            json!([{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }]),
        );
        assert!(
            idx.check_role_escalation(&alice(), "Role", &bad_prod, None)
                .is_err()
        );
    }

    #[test]
    fn escalate_limited_by_name_only_applies_to_updates() {
        let mut idx = escalation_fixture();
        idx.upsert(
            "ClusterRole",
            &role(
                "ClusterRole",
                "",
                "escalate-r",
                json!([{ "verbs": ["escalate"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "resourceNames": ["r"] }]),
            ),
        )
        .unwrap();
        idx.upsert(
            "RoleBinding",
            &binding(
                "RoleBinding",
                "dev",
                "esc",
                "ClusterRole",
                "escalate-r",
                json!([user_subject("alice")]),
            ),
        )
        .unwrap();
        let bad = role(
            "Role",
            "dev",
            "r",
            json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"] }]),
        );
        assert!(
            idx.check_role_escalation(&alice(), "Role", &bad, None)
                .is_err()
        );
        let old = role("Role", "dev", "r", json!([]));
        assert_eq!(
            idx.check_role_escalation(&alice(), "Role", &bad, Some(&old)),
            Ok(())
        );
    }

    #[test]
    fn gc_only_updates_skip_the_check() {
        let idx = escalation_fixture();
        let old = role(
            "Role",
            "dev",
            "r",
            json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"] }]),
        );
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        new["metadata"]["ownerReferences"] =
            json!([{ "apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u" }]);
        assert_eq!(
            idx.check_role_escalation(&alice(), "Role", &new, Some(&old)),
            Ok(())
        );
        let mut changed = new.clone();
        changed["metadata"]["labels"] = json!({ "a": "b" });
        assert!(
            idx.check_role_escalation(&alice(), "Role", &changed, Some(&old))
                .is_err()
        );
        assert!(only_gc_fields_changed(
            &json!({ "metadata": { "name": "x", "labels": {} } }),
            &json!({ "metadata": { "name": "x" } })
        ));
    }

    #[test]
    fn cluster_role_checks_only_cluster_wide_rights_and_aggregation_needs_full_authority() {
        let mut idx = escalation_fixture();
        let pods = json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }]);
        // alice's rights are namespaced, so even a small ClusterRole escalates.
        assert!(
            idx.check_role_escalation(
                &alice(),
                "ClusterRole",
                &role("ClusterRole", "", "c", pods.clone()),
                None
            )
            .is_err()
        );
        idx.upsert(
            "ClusterRoleBinding",
            &binding(
                "ClusterRoleBinding",
                "",
                "alice-edit",
                "ClusterRole",
                "editor",
                json!([user_subject("alice")]),
            ),
        )
        .unwrap();
        assert_eq!(
            idx.check_role_escalation(
                &alice(),
                "ClusterRole",
                &role("ClusterRole", "", "c", pods.clone()),
                None
            ),
            Ok(())
        );
        let mut aggregated = role("ClusterRole", "", "c", pods);
        aggregated["aggregationRule"] =
            json!({ "clusterRoleSelectors": [{ "matchLabels": { "x": "y" } }] });
        assert_eq!(
            idx.check_role_escalation(&alice(), "ClusterRole", &aggregated, None),
            Err(EscalationError {
                message: "must have cluster-admin privileges to use the aggregationRule".into()
            })
        );
    }

    #[test]
    fn binding_escalation() {
        let mut idx = escalation_fixture();
        // Binding a role whose rules alice holds in dev: fine.
        let rb = binding(
            "RoleBinding",
            "dev",
            "b",
            "ClusterRole",
            "editor",
            json!([user_subject("bob")]),
        );
        assert_eq!(
            idx.check_binding_escalation(&alice(), "RoleBinding", &rb, None),
            Ok(())
        );
        // Binding secret-admin: alice lacks those rights.
        let rb_secret = binding(
            "RoleBinding",
            "dev",
            "b",
            "ClusterRole",
            "secret-admin",
            json!([user_subject("bob")]),
        );
        let err = idx
            .check_binding_escalation(&alice(), "RoleBinding", &rb_secret, None)
            .unwrap_err();
        assert_eq!(
            err.message,
            "user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"*\"]}"
        );
        // A missing role is reported as such.
        let rb_missing = binding(
            "RoleBinding",
            "dev",
            "b",
            "Role",
            "ghost",
            json!([user_subject("bob")]),
        );
        assert_eq!(
            idx.check_binding_escalation(&alice(), "RoleBinding", &rb_missing, None),
            Err(EscalationError {
                message: r#"role.rbac.authorization.k8s.io "ghost" not found"#.into()
            })
        );
        // The bind verb on that specific role allows it regardless of held rights.
        idx.upsert(
            "ClusterRole",
            &role(
                "ClusterRole",
                "",
                "binder",
                json!([{ "verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["secret-admin"] }]),
            ),
        )
        .unwrap();
        idx.upsert(
            "RoleBinding",
            &binding(
                "RoleBinding",
                "dev",
                "binder",
                "ClusterRole",
                "binder",
                json!([user_subject("alice")]),
            ),
        )
        .unwrap();
        assert_eq!(
            idx.check_binding_escalation(&alice(), "RoleBinding", &rb_secret, None),
            Ok(())
        );
        // ... but not in a ClusterRoleBinding (checked cluster-wide, where alice has no bind).
        let crb_secret = binding(
            "ClusterRoleBinding",
            "",
            "b",
            "ClusterRole",
            "secret-admin",
            json!([user_subject("bob")]),
        );
        assert!(
            idx.check_binding_escalation(&alice(), "ClusterRoleBinding", &crb_secret, None)
                .is_err()
        );
    }

    #[test]
    fn escalation_message_includes_resolution_errors() {
        let idx = index(&[binding(
            "RoleBinding",
            "dev",
            "x",
            "Role",
            "ghost",
            json!([user_subject("alice")]),
        )]);
        let err = idx
            .confirm_no_escalation(
                &alice(),
                "dev",
                &[PolicyRule::from_value(
                    &json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }),
                )],
            )
            .unwrap_err();
        assert_eq!(
            err.message,
            "user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}; resolution errors: [role.rbac.authorization.k8s.io \"ghost\" not found]"
        );
    }
}
