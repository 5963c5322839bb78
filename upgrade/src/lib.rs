//! Passing an HTTP upgrade (WebSocket or SPDY, as exec, attach and port-forward use) on to
//! another server and splicing the two connections once both sides switched protocols.
//! The API server does this towards a node's kubelet API, the kubelet towards the runtime's
//! streaming server.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Headers that belong to one hop and are not passed on.
const HOP: &[&str] = &[
    "host",
    "authorization",
    "impersonate-user",
    "impersonate-group",
    "impersonate-uid",
];

fn respond(code: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = code;
    r
}

/// Sends the upgrade request (`method`, `path`, the client's `headers`) over `stream` and, if
/// the server switches protocols, answers 101 and splices `client` with it. Any other answer is
/// returned as it is.
pub async fn proxy<S>(
    stream: S,
    host: &str,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    client: OnUpgrade,
) -> Response<Full<Bytes>>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => {
                return respond(
                    StatusCode::BAD_GATEWAY,
                    format!("upgrade: handshake with {host}: {e}"),
                );
            }
        };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upgrade connection ended");
        }
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host);
    for (k, v) in headers {
        if !HOP.contains(&k.as_str()) {
            req = req.header(k, v);
        }
    }
    let req = match req.body(Full::new(Bytes::new())) {
        Ok(r) => r,
        Err(e) => return respond(StatusCode::INTERNAL_SERVER_ERROR, format!("upgrade: {e}")),
    };
    let mut resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => {
            return respond(
                StatusCode::BAD_GATEWAY,
                format!("upgrade: request to {host}: {e}"),
            );
        }
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        *r.headers_mut() = headers;
        return r;
    }
    let mut out = Response::new(Full::new(Bytes::new()));
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *out.headers_mut() = resp.headers().clone();
    let server = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (a, b) = match (client.await, server.await) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                tracing::debug!(
                    client = a.is_ok(),
                    server = b.is_ok(),
                    "an upgrade did not complete"
                );
                return;
            }
        };
        let mut a = TokioIo::new(a);
        let mut b = TokioIo::new(b);
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
    out
}
