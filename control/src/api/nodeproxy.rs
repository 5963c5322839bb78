//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`, served by the kubelet API of
//! the pod's node: the API server connects to it with its kubelet-client certificate, streams
//! logs back and splices upgraded (WebSocket/SPDY) connections.

use super::status::{ApiError, ApiResult};
use super::{ApiServer, Body, Ctx};
use crate::registry::meta;
use crate::registry::resources::{self, Sub};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The kubelet's address and port of a node.
fn kubelet_endpoint(node: &Value) -> Option<(IpAddr, u16)> {
    let ip = node
        .pointer("/status/addresses")?
        .as_array()?
        .iter()
        .find(|a| a["type"] == "InternalIP")?
        .get("address")?
        .as_str()?
        .parse()
        .ok()?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .unwrap_or(10250) as u16;
    Some((ip, port))
}

/// The container a request means: the `container` parameter, or the pod's only container.
fn container(pod: &Value, asked: Option<&str>) -> ApiResult<String> {
    let names: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => Ok(c.to_string()),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {}, choose one of: [{}]",
            meta::name(pod),
            names.join(" ")
        ))),
    }
}

pub async fn serve(api: &Arc<ApiServer>, ctx: &Ctx, sub: Sub) -> ApiResult<Response<Body>> {
    let pods = ctx.resource();
    let pod = api
        .store
        .get_existing(pods, &ctx.path.namespace, &ctx.path.name)
        .await?;
    let node_name = meta::str_at(&pod, "/spec/nodeName")
        .unwrap_or_default()
        .to_string();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            ctx.path.name
        )));
    }
    let nodes = resources::find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("no nodes resource"))?;
    let node = api.store.get(nodes, "", &node_name).await?.ok_or_else(|| {
        ApiError::bad_request(format!("node {node_name} of pod {} is gone", ctx.path.name))
    })?;
    let (ip, port) = kubelet_endpoint(&node).ok_or_else(|| {
        ApiError::unavailable(format!(
            "node {node_name} reports no InternalIP for its kubelet"
        ))
    })?;
    let tls = api.kubelet_tls.get().cloned().ok_or_else(|| {
        ApiError::unavailable("this API server has no kubelet client credentials")
    })?;
    let rest: Vec<(String, String)> = form_urlencoded::parse(ctx.query.raw_query().as_bytes())
        .filter(|(k, _)| k != "container")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let rest = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(rest)
        .finish();
    let (ns, name) = (&ctx.path.namespace, &ctx.path.name);
    let path = match sub {
        Sub::Log => format!(
            "/containerLogs/{ns}/{name}/{}?{rest}",
            container(&pod, ctx.query.get("container"))?
        ),
        Sub::Exec => format!(
            "/exec/{ns}/{name}/{}?{rest}",
            container(&pod, ctx.query.get("container"))?
        ),
        Sub::Attach => format!(
            "/attach/{ns}/{name}/{}?{rest}",
            container(&pod, ctx.query.get("container"))?
        ),
        Sub::PortForward => format!("/portForward/{ns}/{name}?{rest}"),
        _ => return Err(ApiError::method_not_allowed()),
    };
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((ip, port)),
    )
    .await
    .map_err(|_| {
        ApiError::unavailable(format!(
            "connecting to the kubelet of {node_name} timed out"
        ))
    })?
    .map_err(|e| {
        ApiError::unavailable(format!(
            "connecting to the kubelet of {node_name} ({ip}:{port}): {e}"
        ))
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| ApiError::unavailable(format!("TLS to the kubelet of {node_name}: {e}")))?;
    let host = format!("{ip}:{port}");
    if sub == Sub::Log {
        return logs(stream, &host, &path).await;
    }
    let Some(upgrade) = ctx.upgrade.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let resp = ketch_upgrade::proxy(
        stream,
        &host,
        ctx.method.clone(),
        &path,
        &ctx.headers,
        upgrade,
    )
    .await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        return Err(kubelet_error(code, &body));
    }
    Ok(resp.map(|b| b.boxed()))
}

fn kubelet_error(code: u16, body: &[u8]) -> ApiError {
    let text = String::from_utf8_lossy(body).trim().to_string();
    match code {
        404 => ApiError::new(404, "NotFound", text),
        400 => ApiError::bad_request(text),
        _ => ApiError::new(code, "InternalError", text),
    }
}

async fn logs<S>(stream: S, host: &str, path: &str) -> ApiResult<Response<Body>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<
        _,
        http_body_util::Empty<bytes::Bytes>,
    >(TokioIo::new(stream))
    .await
    .map_err(|e| ApiError::unavailable(format!("kubelet: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(http_body_util::Empty::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| ApiError::unavailable(format!("kubelet: {e}")))?;
    if resp.status() != StatusCode::OK {
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        return Err(kubelet_error(code, &body));
    }
    // Stream the log through as it comes; a broken upstream simply ends the body.
    let mut incoming = resp.into_body();
    let (tx, rx) = tokio::sync::mpsc::channel::<
        Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>,
    >(16);
    tokio::spawn(async move {
        while let Some(Ok(frame)) = incoming.frame().await {
            if let Ok(data) = frame.into_data()
                && tx.send(Ok(hyper::body::Frame::data(data))).await.is_err()
            {
                return;
            }
        }
    });
    let body =
        http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(r)
}
