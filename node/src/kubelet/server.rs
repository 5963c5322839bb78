//! The kubelet API on the node (HTTPS, client certificates of the cluster CA): container logs,
//! and exec/attach/port-forward handed through to the runtime's streaming server. The API server
//! reaches it for `pods/log` and `pods/exec`.

use super::cri::Cri;
use super::logs::{self, LogOptions};
use super::pods::Registry;
use super::spec::{CONTAINER_NAME, POD_UID};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

type Body = BoxBody<Bytes, Infallible>;

pub struct Server {
    pub cri: Cri,
    pub registry: Registry,
}

fn text(code: StatusCode, s: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(s.into())).boxed());
    *r.status_mut() = code;
    r
}

fn query(req: &Request<Incoming>) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_pairs(req.uri().query().unwrap_or("")) {
        m.entry(k).or_default().push(v);
    }
    m
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn flag(q: &HashMap<String, Vec<String>>, k: &str) -> bool {
    q.get(k)
        .and_then(|v| v.first())
        .is_some_and(|v| v == "1" || v == "true")
}

impl Server {
    /// The runtime containers of a pod's container: (latest, previous).
    async fn containers(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Result<(Option<cri::ContainerStatus>, Option<cri::ContainerStatus>), Response<Body>> {
        let Some(p) = self.registry.get(ns, pod) else {
            return Err(text(
                StatusCode::NOT_FOUND,
                format!("pod {ns}/{pod} is not on this node"),
            ));
        };
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let all = self
            .cri
            .list_containers(None)
            .await
            .map_err(|e| text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let mut mine: Vec<cri::Container> = all
            .into_iter()
            .filter(|c| {
                c.labels.get(POD_UID) == Some(&uid)
                    && c.labels.get(CONTAINER_NAME).map(String::as_str) == Some(container)
            })
            .collect();
        if mine.is_empty() {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!(
                    "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
                ),
            ));
        }
        mine.sort_by_key(|c| {
            (
                c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                c.created_at,
            )
        });
        let latest = match mine.last() {
            Some(c) => self.cri.container_status(&c.id).await.ok(),
            None => None,
        };
        let previous = match mine.len().checked_sub(2).and_then(|i| mine.get(i)) {
            Some(c) => self.cri.container_status(&c.id).await.ok(),
            None => None,
        };
        Ok((latest, previous))
    }

    async fn logs(
        &self,
        req: &Request<Incoming>,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Response<Body> {
        let q = query(req);
        let (latest, previous) = match self.containers(ns, pod, container).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        let chosen = if flag(&q, "previous") {
            match previous {
                Some(p) => p,
                None => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                        ),
                    );
                }
            }
        } else {
            match latest {
                Some(l) => l,
                None => return text(StatusCode::BAD_REQUEST, "container not found"),
            }
        };
        let get = |k: &str| q.get(k).and_then(|v| v.first()).cloned();
        let since = get("sinceTime").and_then(|t| t.parse().ok()).or_else(|| {
            get("sinceSeconds")
                .and_then(|s| s.parse::<i64>().ok())
                .map(|s| jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s))
        });
        let opts = LogOptions {
            follow: flag(&q, "follow"),
            tail_lines: get("tailLines").and_then(|t| t.parse().ok()),
            timestamps: flag(&q, "timestamps"),
            since,
            limit_bytes: get("limitBytes").and_then(|t| t.parse().ok()),
        };
        let id = chosen.id.clone();
        let cri = self.cri.clone();
        let running = Arc::new(std::sync::atomic::AtomicBool::new(
            chosen.state == cri::ContainerState::ContainerRunning as i32,
        ));
        if opts.follow {
            // Watch the container so that following ends when it stops.
            let flag = running.clone();
            tokio::spawn(async move {
                while flag.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    let alive = cri
                        .container_status(&id)
                        .await
                        .is_ok_and(|s| s.state == cri::ContainerState::ContainerRunning as i32);
                    if !alive {
                        flag.store(false, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
        let flag = running.clone();
        let rx = logs::stream(chosen.log_path.clone().into(), opts, move || {
            flag.load(std::sync::atomic::Ordering::SeqCst)
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let body = StreamBody::new(futures::StreamExt::map(stream, |b| {
            Ok::<_, Infallible>(Frame::data(b))
        }));
        let mut r = Response::new(BodyExt::boxed(body));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        r
    }

    async fn stream_url(
        &self,
        req: &Request<Incoming>,
        kind: &str,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Result<String, Response<Body>> {
        let q = query(req);
        if kind == "portForward" {
            let Some(p) = self.registry.get(ns, pod) else {
                return Err(text(
                    StatusCode::NOT_FOUND,
                    format!("pod {ns}/{pod} is not on this node"),
                ));
            };
            let uid = p.metadata.uid.clone().unwrap_or_default();
            let sandbox = self
                .cri
                .list_pod_sandboxes()
                .await
                .ok()
                .and_then(|b| {
                    b.into_iter().find(|s| {
                        s.metadata.as_ref().map(|m| m.uid.as_str()) == Some(uid.as_str())
                            && s.state == cri::PodSandboxState::SandboxReady as i32
                    })
                })
                .ok_or_else(|| text(StatusCode::NOT_FOUND, "pod sandbox not found"))?;
            let ports = q
                .get("port")
                .into_iter()
                .flatten()
                .filter_map(|p| p.parse().ok())
                .collect();
            return self
                .cri
                .port_forward(cri::PortForwardRequest {
                    pod_sandbox_id: sandbox.id,
                    port: ports,
                })
                .await
                .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
        }
        let (latest, _) = self.containers(ns, pod, container).await?;
        let Some(c) = latest.filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
        else {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("container {container} is not running"),
            ));
        };
        let result = if kind == "exec" {
            self.cri
                .exec(cri::ExecRequest {
                    container_id: c.id,
                    cmd: q.get("command").cloned().unwrap_or_default(),
                    tty: flag(&q, "tty"),
                    stdin: flag(&q, "stdin") || flag(&q, "input"),
                    stdout: flag(&q, "stdout") || flag(&q, "output"),
                    stderr: flag(&q, "stderr") || flag(&q, "error"),
                })
                .await
        } else {
            self.cri
                .attach(cri::AttachRequest {
                    container_id: c.id,
                    stdin: flag(&q, "stdin"),
                    tty: flag(&q, "tty"),
                    stdout: flag(&q, "stdout"),
                    stderr: flag(&q, "stderr"),
                })
                .await
        };
        result.map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match parts.as_slice() {
            ["healthz"] => text(StatusCode::OK, "ok"),
            ["pods"] => text(
                StatusCode::OK,
                format!(
                    "{{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[],\"metadata\":{{}},\"count\":{}}}",
                    self.registry.len()
                ),
            ),
            ["containerLogs", ns, pod, container] => self.logs(&req, ns, pod, container).await,
            [kind @ ("exec" | "attach"), ns, pod, container] => {
                match self.stream_url(&req, kind, ns, pod, container).await {
                    Ok(url) => proxy_upgrade(req, &url).await,
                    Err(r) => r,
                }
            }
            ["portForward", ns, pod] => {
                match self.stream_url(&req, "portForward", ns, pod, "").await {
                    Ok(url) => proxy_upgrade(req, &url).await,
                    Err(r) => r,
                }
            }
            _ => text(StatusCode::NOT_FOUND, "404 page not found"),
        }
    }
}

/// Hands an upgrade request (WebSocket or SPDY) to the runtime's streaming `url`.
pub async fn proxy_upgrade(mut req: Request<Incoming>, url: &str) -> Response<Body> {
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("bad stream URL {url}: {e}"),
            );
        }
    };
    let host = uri.host().unwrap_or("127.0.0.1").to_string();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(t) => t,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("connect to the runtime's streaming server: {e}"),
            );
        }
    };
    let client = hyper::upgrade::on(&mut req);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let resp = ketch_upgrade::proxy(
        tcp,
        &format!("{host}:{port}"),
        req.method().clone(),
        &path,
        req.headers(),
        client,
    )
    .await;
    resp.map(|b| b.boxed())
}

/// Serves the kubelet API on `listener` with mutual TLS.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    server: Arc<Server>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            // Only the API server (the kubelet-client identity or a cluster admin) may come in.
            let allowed = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| client_identity(c.as_ref()))
                .is_some_and(|(cn, orgs)| {
                    cn == "kube-apiserver-kubelet-client"
                        || orgs.iter().any(|o| o == "system:masters")
                });
            let svc = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move {
                    if !allowed {
                        return Ok::<_, Infallible>(text(StatusCode::FORBIDDEN, "Forbidden"));
                    }
                    Ok::<_, Infallible>(server.handle(req).await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// (CN, O…) of a certificate the TLS layer already verified.
fn client_identity(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let orgs = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(String::from)
        .collect();
    Some((cn, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_repeated_commands() {
        let pairs = form_pairs("command=sh&command=-c&command=echo%20hi&stdout=1");
        assert_eq!(pairs[2], ("command".to_string(), "echo hi".to_string()));
        assert_eq!(pairs.len(), 4);
    }
}
