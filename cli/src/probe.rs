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
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        let (Some(chunk), Some(next)) = (after.get(..n), after.get(n..)) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(chunk);
        rest = next.trim_start_matches("\r\n");
    }
    out
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

/// `GET path` as the admin: the status code and body, or `None` if the server did not answer.
pub async fn api_get(
    host: &str,
    port: u16,
    pki: &Path,
    path: &str,
) -> Result<Option<(u16, String)>> {
    if !pki.join("admin.crt").exists() {
        return Ok(None);
    }
    let cfg = tls_config(pki)?;
    let attempt = async {
        let tcp = TcpStream::connect((host, port)).await?;
        let name = ServerName::try_from(host.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await?;
        http_get(tls, path).await
    };
    match tokio::time::timeout(TIMEOUT, attempt).await {
        Ok(Ok(answer)) => Ok(Some(answer)),
        _ => Ok(None),
    }
}

/// `GET /readyz` as the admin; Ok(true) when the server says it is ready.
pub async fn api_ready(host: &str, port: u16, pki: &Path) -> Result<bool> {
    Ok(matches!(
        api_get(host, port, pki, "/readyz").await?,
        Some((200, _))
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            super::dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
        assert_eq!(super::dechunk("zz\r\n"), "");
    }
}
