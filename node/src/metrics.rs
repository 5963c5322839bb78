//! The agent's Prometheus metrics, named as kube-proxy names them where it has the same thing,
//! and their plain-HTTP endpoint (`--metrics-bind-address`, kube-proxy's 127.0.0.1:10249).

use crate::dataplane::Pinned;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Seconds; finer at the low end than kube-proxy's buckets because map writes take
/// micro- to milliseconds, not the seconds an iptables-restore takes.
fn duration_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
        60.0, 120.0, 300.0,
    ]
    .into_iter()
}

/// What the Service programming loop records.
#[derive(Debug)]
pub struct ProxyMetrics {
    /// From the object change (an EndpointSlice's `last-change-trigger-time`) to the maps
    /// holding it: kube-proxy's `network_programming_duration_seconds`.
    pub network_programming: Histogram,
    /// One pass of the loop (recompute what is wanted, write what differs).
    pub sync_duration: Histogram,
    pub last_sync: Gauge<f64, AtomicU64>,
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        ProxyMetrics {
            network_programming: Histogram::new(duration_buckets()),
            sync_duration: Histogram::new(duration_buckets()),
            last_sync: Gauge::default(),
        }
    }
}

impl ProxyMetrics {
    pub fn observe_sync(&self, took: Duration) {
        self.sync_duration.observe(took.as_secs_f64());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_sync.set(now.as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

/// The eBPF programs' counters, read from the pinned stats map at each scrape.
#[derive(Debug)]
struct DataplaneCounters {
    bpffs: PathBuf,
}

impl Collector for DataplaneCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A scrape while the maps are not there yet (or gone) shows no counters, not an error.
        let Ok(stats) = Pinned::open(&self.bpffs).and_then(|p| p.stats()) else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "ketch_dataplane_events",
            "What the Service programs did (NodePort translations, socket translations, refusals)",
            None,
            MetricType::Counter,
        )?;
        for (name, value) in stats {
            let labels = EventLabels {
                event: name.to_string(),
            };
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    pub proxy: Arc<ProxyMetrics>,
}

impl Metrics {
    /// `bpffs`: the node's bpffs directory, where the programs' counters are pinned.
    pub fn new(bpffs: PathBuf) -> Metrics {
        let mut registry = Registry::default();
        let proxy = Arc::new(ProxyMetrics::default());
        let kubeproxy = registry.sub_registry_with_prefix("kubeproxy");
        kubeproxy.register(
            "network_programming_duration_seconds",
            "From a Service or EndpointSlice change to the eBPF maps holding it",
            proxy.network_programming.clone(),
        );
        kubeproxy.register(
            "sync_proxy_rules_duration_seconds",
            "One pass of writing the Service maps",
            proxy.sync_duration.clone(),
        );
        kubeproxy.register(
            "sync_proxy_rules_last_timestamp_seconds",
            "When the Service maps were last written",
            proxy.last_sync.clone(),
        );
        registry.register_collector(Box::new(DataplaneCounters { bpffs }));
        Metrics { registry, proxy }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (code, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, metrics.render()),
        "/healthz" => (StatusCode::OK, "ok".to_string()),
        p => (StatusCode::NOT_FOUND, format!("{p}: not found\n")),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    if code == StatusCode::OK {
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
    }
    r
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let r = respond(&metrics, &req);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
