//! The HTTP surface of the API server: one generic path over the resource table.

pub mod decode;
pub mod delete;
pub mod discovery;
pub mod negotiate;
pub mod nodeproxy;
pub mod openapi;
pub mod path;
pub mod query;
pub mod read;
pub mod reviews;
pub mod selectors;
pub mod server;
pub mod status;
pub mod subresources;
pub mod table;
pub mod watch;
pub mod write;

use crate::admission::Admission;
use crate::auth::authn::{TokenFile, UserInfo};
use crate::auth::authz::{Attributes, Authorizer, Decision};
use crate::auth::serviceaccount::{self as sa_tokens, Invalid, TokenKeys};
use crate::metrics::Metrics;
use crate::registry::resources::{self, Resource, Storage as StorageKind, Sub};
use crate::registry::store::{self, Store};
use crate::schema::Catalog;
use crate::storage::Storage;
use crate::storage::cache::WatchCache;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use negotiate::Output;
use path::{ResourcePath, Route};
use query::Query;
use serde_json::Value;
use status::{ApiError, ApiResult};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted (kube-apiserver's limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Settings of the API surface.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Events kept per resource in the watch cache.
    pub watch_cache_size: usize,
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Default and maximum watch duration when the client gives no `timeoutSeconds`.
    pub min_request_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            watch_cache_size: 2048,
            bookmark_interval: Duration::from_secs(60),
            min_request_timeout: Duration::from_secs(1800),
        }
    }
}

pub struct ApiServer {
    pub config: ApiConfig,
    pub store: Store,
    pub caches: HashMap<String, Arc<WatchCache>>,
    pub catalog: Catalog,
    pub metrics: Arc<Metrics>,
    pub tokens: TokenFile,
    /// Signs and verifies service account tokens.
    pub sa_keys: TokenKeys,
    pub authorizer: Arc<Authorizer>,
    pub admission: Admission,
    pub openapi: openapi::Documents,
    pub ready: AtomicBool,
    /// TLS with the kubelet-client certificate, for reaching nodes' kubelet APIs.
    pub kubelet_tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
}

/// Everything a resource handler needs to know about the request.
pub struct Ctx {
    pub user: UserInfo,
    pub verb: &'static str,
    pub path: ResourcePath,
    pub query: Query,
    pub output: Output,
    pub headers: HeaderMap,
    pub method: Method,
    /// The connection upgrade of an exec/attach/port-forward request, taken by the proxy.
    pub upgrade: std::sync::Mutex<Option<hyper::upgrade::OnUpgrade>>,
}

impl Ctx {
    pub fn resource(&self) -> &'static Resource {
        self.path.resource
    }

    /// The field manager of a write: `fieldManager`, else the user agent's program name.
    pub fn manager(&self) -> String {
        if let Some(m) = &self.query.field_manager {
            return m.clone();
        }
        let ua = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        ua.split('/').next().unwrap_or("unknown").to_string()
    }
}

impl ApiServer {
    /// Builds the server over `storage`, starting a watch cache for every stored resource.
    pub async fn new(
        config: ApiConfig,
        storage: Arc<dyn Storage>,
        metrics: Arc<Metrics>,
        tokens: TokenFile,
        sa_keys: TokenKeys,
        mut admission: Admission,
    ) -> Result<Arc<ApiServer>, crate::storage::StorageError> {
        let catalog = Catalog::build(
            &resources::RESOURCES
                .iter()
                .map(Resource::kind_schema)
                .collect::<Vec<_>>(),
        );
        let mut caches = HashMap::new();
        for r in resources::RESOURCES
            .iter()
            .filter(|r| r.storage == StorageKind::Stored)
        {
            let prefix = r.key_prefix();
            if caches.contains_key(&prefix) {
                continue;
            }
            let cache = WatchCache::start(
                storage.clone(),
                prefix.clone(),
                config.watch_cache_size,
                store::decode,
            )
            .await?;
            caches.insert(prefix, cache);
        }
        admission.priority_classes = resources::find("scheduling.k8s.io", "v1", "priorityclasses")
            .and_then(|r| caches.get(&r.key_prefix()).cloned());
        let openapi = openapi::Documents::build(&catalog);
        let store = Store { storage };
        let authorizer = Authorizer::start(&store, &caches).await?;
        Ok(Arc::new(ApiServer {
            config,
            store,
            caches,
            catalog,
            metrics,
            tokens,
            sa_keys,
            authorizer,
            admission,
            openapi,
            ready: AtomicBool::new(false),
            kubelet_tls: std::sync::OnceLock::new(),
        }))
    }

    pub fn cache(&self, r: &Resource) -> ApiResult<&Arc<WatchCache>> {
        self.caches
            .get(&r.key_prefix())
            .ok_or_else(ApiError::method_not_allowed)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Serves one request.
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        client: Option<UserInfo>,
    ) -> Response<Body> {
        let start = Instant::now();
        let (parts, body) = req.into_parts();
        let route = path::parse(parts.uri.path());
        let (verb_label, resource_label) = metric_labels(&parts.method, &route, parts.uri.query());
        let pretty = parts.uri.query().is_some_and(|q| q.contains("pretty=true"));
        let resp = match self.route(parts, body, route, client).await {
            Ok(r) => r,
            Err(e) => error_response(&e, pretty),
        };
        self.metrics.request(
            &verb_label,
            &resource_label,
            resp.status().as_u16(),
            start.elapsed(),
        );
        resp
    }

    async fn route(
        self: &Arc<Self>,
        mut parts: http::request::Parts,
        body: Incoming,
        route: Route,
        client: Option<UserInfo>,
    ) -> ApiResult<Response<Body>> {
        let user = self.authenticate(&parts.headers, client).await?;
        let user = self.impersonate(&parts.headers, user)?;
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let output = negotiate::output(accept).map_err(|_| ApiError::not_acceptable())?;
        let rp = match route {
            Route::Resource(rp) => rp,
            Route::Unknown => {
                self.authorize_path(&user, &parts)?;
                return Err(ApiError::no_route());
            }
            other => {
                self.authorize_path(&user, &parts)?;
                return self.serve_non_resource(other, &parts, output);
            }
        };
        if let Some(bad) = &rp.bad_sub {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({bad})"),
            ));
        }
        let query = Query::parse(parts.uri.query())?;
        let verb = resource_verb(&parts.method, &rp, &query)?;
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let ctx = Ctx {
            user,
            verb,
            path: rp,
            query,
            output,
            headers: parts.headers,
            method: parts.method,
            upgrade: std::sync::Mutex::new(upgrade),
        };
        self.authorize_resource(&ctx)?;
        let body = if matches!(
            ctx.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            read_body(body).await?
        } else {
            Bytes::new()
        };
        self.dispatch(ctx, body).await
    }

    async fn dispatch(self: &Arc<Self>, ctx: Ctx, body: Bytes) -> ApiResult<Response<Body>> {
        let r = ctx.resource();
        if r.storage == StorageKind::Virtual {
            return match ctx.verb {
                "create" => reviews::create(self, &ctx, &body).await,
                _ => Err(ApiError::method_not_allowed()),
            };
        }
        match (ctx.path.sub, ctx.verb) {
            (None, "get") => read::get(self, &ctx).await,
            (None, "list") => read::list(self, &ctx).await,
            (_, "watch") => watch::watch(self, &ctx).await,
            (None, "create") => write::create(self, &ctx, &body).await,
            (None | Some(Sub::Status), "update") => write::update(self, &ctx, &body).await,
            (None | Some(Sub::Status), "patch") => write::patch(self, &ctx, &body).await,
            (None, "delete") => delete::delete(self, &ctx, &body).await,
            (None, "deletecollection") => delete::delete_collection(self, &ctx, &body).await,
            (Some(Sub::Status), "get") => read::get(self, &ctx).await,
            (Some(sub), _) => subresources::handle(self, &ctx, sub, &body).await,
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    async fn authenticate(
        &self,
        headers: &HeaderMap,
        client: Option<UserInfo>,
    ) -> ApiResult<UserInfo> {
        if let Some(auth) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            && let Some(token) = auth.strip_prefix("Bearer ").map(str::trim)
        {
            // A presented token must be valid even if a certificate is present too.
            return match self.authenticate_token(token, &[]).await {
                Some(Ok((user, _))) => Ok(user),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "bearer token refused");
                    Err(ApiError::unauthorized())
                }
                None => Err(ApiError::unauthorized()),
            };
        }
        client
            .map(UserInfo::authenticated)
            .ok_or_else(ApiError::unauthorized)
    }

    /// A bearer token's user and the audiences it is good for among `audiences` (the API's own
    /// when empty): static tokens, then service account JWTs. `None`: no authenticator knows it.
    pub async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Option<Result<(UserInfo, Vec<String>), Invalid>> {
        let audiences: Vec<String> = if audiences.is_empty() {
            vec![sa_tokens::ISSUER.to_string()]
        } else {
            audiences.to_vec()
        };
        if let Some(u) = self.tokens.authenticate(token) {
            return Some(Ok((u.authenticated(), audiences)));
        }
        let now = jiff::Timestamp::now().as_second();
        let (claims, good) = match self.sa_keys.verify(token, &audiences, now)? {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let mut current = Vec::new();
        for (plural, ns, name) in sa_tokens::bound_objects(&claims) {
            current.push(self.current_object(plural, &ns, &name).await);
        }
        let checked = sa_tokens::check_bindings(&claims, now, &current);
        Some(checked.map(|()| (claims.user_info(), good)))
    }

    /// A core/v1 object from the watch cache, or from etcd if the cache has not seen it yet.
    async fn current_object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let r = resources::find("", "v1", plural)?;
        if let Ok(cache) = self.cache(r)
            && let Some(v) = cache.get(&r.key(namespace, name))
        {
            return Some(v.as_ref().clone());
        }
        self.store.get(r, namespace, name).await.ok().flatten()
    }

    /// `Impersonate-User` / `-Group` / `-Uid` headers (`kubectl --as`), each authorized.
    fn impersonate(&self, headers: &HeaderMap, user: UserInfo) -> ApiResult<UserInfo> {
        let Some(name) = headers
            .get("impersonate-user")
            .and_then(|v| v.to_str().ok())
        else {
            if headers.contains_key("impersonate-group") {
                return Err(ApiError::bad_request(
                    "requested impersonation of groups without impersonating a user",
                ));
            }
            return Ok(user);
        };
        let groups: Vec<String> = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(String::from)
            .collect();
        let check = |resource: &str, group: &str, object: &str| -> ApiResult<()> {
            let a = Attributes {
                user: user.clone(),
                verb: "impersonate".into(),
                resource_request: true,
                namespace: String::new(),
                api_group: group.into(),
                resource: resource.into(),
                subresource: String::new(),
                name: object.into(),
                path: String::new(),
            };
            match self.authorizer.authorize(&a) {
                Decision::Allow { .. } => Ok(()),
                Decision::Deny { .. } => Err(ApiError::forbidden_message(format!(
                    "{resource} \"{object}\" is forbidden: User \"{}\" cannot impersonate resource \"{resource}\" in API group \"{group}\" at the cluster scope",
                    user.name
                ))),
            }
        };
        if let Some(sa) = name.strip_prefix("system:serviceaccount:") {
            let (ns, n) = sa.split_once(':').unwrap_or(("", sa));
            let a = Attributes {
                user: user.clone(),
                verb: "impersonate".into(),
                resource_request: true,
                namespace: ns.into(),
                api_group: String::new(),
                resource: "serviceaccounts".into(),
                subresource: String::new(),
                name: n.into(),
                path: String::new(),
            };
            if !matches!(self.authorizer.authorize(&a), Decision::Allow { .. }) {
                return Err(ApiError::forbidden_message(format!(
                    "serviceaccounts \"{n}\" is forbidden: User \"{}\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"{ns}\"",
                    user.name
                )));
            }
        } else {
            check("users", "", name)?;
        }
        for g in &groups {
            check("groups", "", g)?;
        }
        let uid = headers
            .get("impersonate-uid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !uid.is_empty() {
            check("uids", "authentication.k8s.io", &uid)?;
        }
        let mut extra = std::collections::BTreeMap::new();
        for (k, v) in headers {
            if let Some(key) = k.as_str().strip_prefix("impersonate-extra-")
                && let Ok(v) = v.to_str()
            {
                check(&format!("userextras/{key}"), "authentication.k8s.io", v)?;
                extra
                    .entry(key.to_string())
                    .or_insert_with(Vec::new)
                    .push(v.to_string());
            }
        }
        let mut impersonated = UserInfo {
            name: name.to_string(),
            uid,
            groups,
            extra,
        };
        if name.starts_with("system:serviceaccount:") {
            let ns = name
                .trim_start_matches("system:serviceaccount:")
                .split(':')
                .next()
                .unwrap_or_default();
            impersonated.groups.push("system:serviceaccounts".into());
            impersonated
                .groups
                .push(format!("system:serviceaccounts:{ns}"));
        }
        Ok(impersonated.authenticated())
    }

    fn authorize_path(&self, user: &UserInfo, parts: &http::request::Parts) -> ApiResult<()> {
        let a = Attributes {
            user: user.clone(),
            verb: parts.method.as_str().to_lowercase(),
            resource_request: false,
            namespace: String::new(),
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            name: String::new(),
            path: parts.uri.path().to_string(),
        };
        match self.authorizer.authorize(&a) {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny { .. } => Err(ApiError::forbidden_message(format!(
                "forbidden: User \"{}\" cannot {} path \"{}\"",
                user.name,
                a.verb,
                parts.uri.path()
            ))),
        }
    }

    fn authorize_resource(&self, ctx: &Ctx) -> ApiResult<()> {
        let r = ctx.resource();
        let name = if ctx.verb == "watch" || ctx.verb == "list" {
            ctx.query
                .field_selector
                .exact("metadata.name")
                .unwrap_or(&ctx.path.name)
                .to_string()
        } else {
            ctx.path.name.clone()
        };
        // A namespace is authorized within itself (`get namespaces/x` in namespace x).
        let namespace = if r.group.is_empty() && r.plural == "namespaces" {
            ctx.path.name.clone()
        } else {
            ctx.path.namespace.clone()
        };
        let a = Attributes {
            user: ctx.user.clone(),
            verb: ctx.verb.to_string(),
            resource_request: true,
            namespace,
            api_group: r.group.to_string(),
            resource: r.plural.to_string(),
            subresource: ctx
                .path
                .sub
                .map(|s| s.name().to_string())
                .unwrap_or_default(),
            name: name.clone(),
            path: String::new(),
        };
        match self.authorizer.authorize(&a) {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny { .. } => Err(forbidden(ctx, &a)),
        }
    }

    fn serve_non_resource(
        &self,
        route: Route,
        parts: &http::request::Parts,
        output: Output,
    ) -> ApiResult<Response<Body>> {
        match route {
            Route::CoreVersions => discovery::core_versions(output),
            Route::Groups => discovery::groups(output),
            Route::Group(g) => discovery::group(&g),
            Route::ResourceList(g, v) => discovery::resource_list(&g, &v),
            Route::Version => Ok(json_response(StatusCode::OK, &version(), false)),
            Route::Health(path) => {
                let ready = self.ready.load(Ordering::SeqCst);
                let verbose = parts.uri.query().is_some_and(|q| q.contains("verbose"));
                health(&path, ready, verbose)
            }
            Route::Metrics => Ok(text_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            )),
            Route::OpenApiV3Index => Ok(json_response(StatusCode::OK, self.openapi.index(), false)),
            Route::OpenApiV3(path) => self.openapi.document(&path).map(|d| {
                let mut r = bytes_response(StatusCode::OK, "application/json", d);
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, immutable"),
                );
                r
            }),
            Route::OpenApiV2 => Err(ApiError::no_route()),
            Route::Resource(_) | Route::Unknown => Err(ApiError::no_route()),
        }
    }
}

fn forbidden(ctx: &Ctx, a: &Attributes) -> ApiError {
    let r = ctx.resource();
    let what = if a.subresource.is_empty() {
        r.plural.to_string()
    } else {
        format!("{}/{}", r.plural, a.subresource)
    };
    let subject = if a.name.is_empty() {
        what.clone()
    } else {
        format!("{what} \"{}\"", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    let mut e = ApiError::forbidden_message(format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{what}\" in API group \"{}\" {scope}",
        a.user.name, a.verb, r.group
    ));
    let mut d = serde_json::json!({"name": a.name, "kind": r.plural});
    if !r.group.is_empty() {
        d["group"] = Value::String(r.group.into());
    }
    e.details = Some(d);
    e
}

/// The Kubernetes verb of a resource request.
fn resource_verb(method: &Method, rp: &ResourcePath, q: &Query) -> ApiResult<&'static str> {
    let named = !rp.name.is_empty();
    Ok(match (method.as_str(), rp.sub) {
        ("GET" | "HEAD", Some(Sub::Exec | Sub::Attach | Sub::PortForward)) => "create",
        ("GET" | "HEAD", _) if rp.legacy_watch || q.watch => "watch",
        ("GET" | "HEAD", _) if named => "get",
        ("GET" | "HEAD", _) => "list",
        ("POST", _) => "create",
        ("PUT", _) if named => "update",
        ("PATCH", _) if named => "patch",
        ("DELETE", None) if named => "delete",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(Sub::Proxy)) => "delete",
        _ => return Err(ApiError::method_not_allowed()),
    })
}

fn metric_labels(method: &Method, route: &Route, query: Option<&str>) -> (String, String) {
    match route {
        Route::Resource(rp) => {
            let watch = rp.legacy_watch
                || query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
            let verb = match method.as_str() {
                "GET" if watch => "WATCH",
                "GET" if rp.name.is_empty() => "LIST",
                "DELETE" if rp.name.is_empty() => "DELETECOLLECTION",
                "POST" => "POST",
                m => m,
            };
            let res = match rp.sub {
                Some(s) => format!("{}/{}", rp.resource.plural, s.name()),
                None => rp.resource.plural.to_string(),
            };
            (verb.to_string(), res)
        }
        _ => (method.as_str().to_string(), String::new()),
    }
}

async fn read_body(mut body: Incoming) -> ApiResult<Bytes> {
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    // A too-large body is still read to its end (up to a bound) so that the connection stays
    // usable for the client's next request.
    if total > MAX_BODY {
        return Err(ApiError::too_large());
    }
    Ok(buf.freeze())
}

/// How much of an oversized body is read and dropped before giving up on the connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

pub fn version() -> Value {
    serde_json::json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "gitVersion": concat!("v1.37.0-ketch.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "ketch",
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "rust1.95",
        "compiler": "rustc",
        "platform": "linux/amd64"
    })
}

fn health(path: &str, ready: bool, verbose: bool) -> ApiResult<Response<Body>> {
    let readyz = path.starts_with("readyz");
    let ok = !readyz || ready;
    let body = if verbose {
        let mut s = String::from("[+]ping ok\n[+]etcd ok\n");
        s.push_str(if ok {
            "[+]bootstrap ok\n"
        } else {
            "[-]bootstrap failed: not finished\n"
        });
        let what = path.split('/').next().unwrap_or(path);
        s.push_str(&format!(
            "{what} check {}\n",
            if ok { "passed" } else { "failed" }
        ));
        s
    } else if ok {
        "ok".to_string()
    } else {
        "[-]bootstrap failed: not finished\nreadyz check failed".to_string()
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok(text_response(code, "text/plain; charset=utf-8", body))
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn bytes_response(
    code: StatusCode,
    content_type: &'static str,
    b: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(full(b));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn text_response(code: StatusCode, content_type: &'static str, s: String) -> Response<Body> {
    bytes_response(code, content_type, s)
}

pub fn json_response(code: StatusCode, v: &Value, pretty: bool) -> Response<Body> {
    let bytes = if pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    }
    .unwrap_or_default();
    bytes_response(code, "application/json", bytes)
}

/// An object in the form the client asked for (JSON or YAML).
pub fn object_response(
    code: StatusCode,
    v: &Value,
    output: Output,
    pretty: bool,
) -> Response<Body> {
    match output {
        Output::Yaml => match serde_yaml_ng::to_string(v) {
            Ok(s) => bytes_response(code, "application/yaml", s),
            Err(_) => json_response(code, v, pretty),
        },
        _ => json_response(code, v, pretty),
    }
}

pub fn error_response(e: &ApiError, pretty: bool) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(code, &e.to_status(), pretty);
    if code == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"kubernetes-master\""),
        );
    }
    r
}

/// Adds `Warning` headers (`299 - "message"`), as Kubernetes reports field warnings.
pub fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "'"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}
