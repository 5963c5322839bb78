//! Request paths: which resource, namespace, name and subresource a URL names.

use crate::registry::resources::{self, Resource, Sub};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    ResourceList(String, String),
    Version,
    Health(String),
    Metrics,
    OpenApiV3Index,
    OpenApiV3(String),
    OpenApiV2,
    Resource(ResourcePath),
    /// A path that names no resource (404 `NotFound`).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub resource: &'static Resource,
    pub namespace: String,
    pub name: String,
    pub sub: Option<Sub>,
    /// The legacy `/watch/` prefix.
    pub legacy_watch: bool,
    /// A subresource path segment that is not a known subresource.
    pub bad_sub: Option<String>,
}

pub fn parse(path: &str) -> Route {
    let parts: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::ResourceList(String::new(), v.to_string()),
        ["apis", g, v] => Route::ResourceList(g.to_string(), v.to_string()),
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health(p.join("/")),
        ["metrics"] => Route::Metrics,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["api", v, rest @ ..] => resource_route("", v, rest),
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        _ => Route::Unknown,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (legacy_watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let mut namespace = String::new();
    let mut rest = rest;
    // `/namespaces/<ns>/<resource>…`, except the namespace's own subresources.
    if let ["namespaces", ns, third, ..] = rest
        && !matches!(*third, "status" | "finalize")
    {
        namespace = ns.to_string();
        rest = &rest[2..];
    }
    let (plural, name, sub) = match rest {
        [plural] => (*plural, "", None),
        [plural, name] => (*plural, *name, None),
        [plural, name, sub] => (*plural, *name, Some(*sub)),
        // Proxy paths carry the remainder after the subresource.
        [plural, name, sub, ..] if *sub == "proxy" => (*plural, *name, Some(*sub)),
        _ => return Route::Unknown,
    };
    let Some(resource) = resources::find(group, version, plural) else {
        return Route::Unknown;
    };
    if !resource.namespaced && !namespace.is_empty() {
        return Route::Unknown;
    }
    let (sub, bad_sub) = match sub {
        None => (None, None),
        Some(s) => match Sub::parse(s).filter(|s| resource.has(*s)) {
            Some(s) => (Some(s), None),
            None => (None, Some(s.to_string())),
        },
    };
    Route::Resource(ResourcePath {
        resource,
        namespace,
        name: name.to_string(),
        sub,
        legacy_watch,
        bad_sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(path: &str) -> ResourcePath {
        match parse(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let r = rp("/api/v1/namespaces/shop/pods/web-1/log");
        assert_eq!(
            (
                r.resource.plural,
                r.namespace.as_str(),
                r.name.as_str(),
                r.sub
            ),
            ("pods", "shop", "web-1", Some(Sub::Log))
        );
        let r = rp("/api/v1/namespaces/shop");
        assert_eq!(
            (r.resource.plural, r.namespace.as_str(), r.name.as_str()),
            ("namespaces", "", "shop")
        );
        let r = rp("/api/v1/namespaces/shop/status");
        assert_eq!(
            (r.resource.plural, r.name.as_str(), r.sub),
            ("namespaces", "shop", Some(Sub::Status))
        );
        let r = rp("/apis/apps/v1/namespaces/shop/deployments/web/scale");
        assert_eq!(r.sub, Some(Sub::Scale));
        let r = rp("/apis/apps/v1/deployments");
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("", ""));
        let r = rp("/api/v1/watch/namespaces/shop/pods");
        assert!(r.legacy_watch);
        assert_eq!(parse("/api/v1/namespaces/shop/widgets"), Route::Unknown);
        assert_eq!(parse("/api/v1/namespaces/shop/nodes"), Route::Unknown);
        let r = rp("/api/v1/namespaces/shop/configmaps/x/status");
        assert_eq!(r.bad_sub.as_deref(), Some("status"));
    }
}
