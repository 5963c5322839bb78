//! Health probes: etcd's `/health` over plain HTTP and the API server's `/readyz` over TLS with
//! the admin client certificate.

use anyhow::{Context, Result, anyhow};
use rustls_pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(3);

async fn http_get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    path: &str,
) -> Result<(u16, String)> {
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP response"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// etcd answers `{"health":"true"}` on its client port.
pub async fn etcd_healthy(client_url: &str) -> bool {
    let Some(hostport) = client_url.strip_prefix("http://") else {
        return false;
    };
    let attempt = async {
        let s = TcpStream::connect(hostport.trim_end_matches('/')).await?;
        http_get(s, "/health").await
    };
    matches!(tokio::time::timeout(TIMEOUT, attempt).await, Ok(Ok((200, body))) if body.contains("true"))
}

fn tls_config(pki: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let read = |name: &str| {
        std::fs::read(pki.join(name)).with_context(|| format!("read {}", pki.join(name).display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut read("ca.crt")?.as_slice()) {
        roots.add(c?)?;
    }
    let certs =
        rustls_pemfile::certs(&mut read("admin.crt")?.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut read("admin.key")?.as_slice())?
        .ok_or_else(|| anyhow!("no key in admin.key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)?;
    Ok(Arc::new(cfg))
}

/// `GET /readyz` as the admin; Ok(true) when the server says it is ready.
pub async fn api_ready(host: &str, port: u16, pki: &Path) -> Result<bool> {
    if !pki.join("admin.crt").exists() {
        return Ok(false);
    }
    let cfg = tls_config(pki)?;
    let attempt = async {
        let tcp = TcpStream::connect((host, port)).await?;
        let name = ServerName::try_from(host.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await?;
        http_get(tls, "/readyz").await
    };
    match tokio::time::timeout(TIMEOUT, attempt).await {
        Ok(Ok((code, _))) => Ok(code == 200),
        _ => Ok(false),
    }
}
