//! API server benchmark: create and get latency (p50/p99) and throughput with 1, 8 and 64
//! concurrent clients, and watch delivery latency with 1,000 concurrent watchers.
//!
//! It starts its own etcd and a release `ketch-control` on free loopback ports, and measures
//! raw etcd writes and reads in the same run as the baseline the API server builds on.
//! Run with `cargo xtask bench`; results go to stdout as a Markdown table.

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use ketch_bench::harness::{client, start_control, start_etcd};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Requests per client per measurement.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Concurrent client counts.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    clients: Vec<usize>,
    /// Concurrent watchers for the delivery-latency measurement.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Writes observed by every watcher.
    #[arg(long, default_value_t = 50)]
    watch_events: usize,
}

#[derive(Default)]
struct Stats {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

fn stats(mut lat: Vec<Duration>, wall: Duration) -> Stats {
    lat.sort();
    let at = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Stats {
        p50: at(0.5),
        p99: at(0.99),
        per_sec: lat.len() as f64 / wall.as_secs_f64(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Runs `op(client_index, request_index)` from `n` clients concurrently.
async fn measure<F, Fut>(
    clients: &[kube::Client],
    n: usize,
    requests: usize,
    op: F,
) -> Result<Stats>
where
    F: Fn(kube::Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().take(n).enumerate() {
        let c = c.clone();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(requests);
            for r in 0..requests {
                let t = Instant::now();
                op(c.clone(), i, r).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(stats(all, start.elapsed()))
}

fn cm_body(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let (_etcd, etcd_url) = start_etcd(dir.path())?;
    let (_control, _admin, port) = start_control(dir.path(), &etcd_url, &[]).await?;
    let max = args.clients.iter().copied().max().unwrap_or(1);
    let mut clients = Vec::new();
    for _ in 0..max {
        clients.push(client(dir.path(), port).await?);
    }
    let mut etcd_clients = Vec::new();
    for _ in 0..max {
        etcd_clients.push(etcd_client::Client::connect([etcd_url.as_str()], None).await?);
    }

    println!(
        "| clients | op | p50 ms | p99 ms | req/s | etcd p50 ms | etcd p99 ms | etcd req/s | p99 / SLO (1 s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &args.clients {
        // create
        let run = format!("c{n}");
        let run2 = run.clone();
        let create = measure(&clients, n, args.requests, move |c, i, r| {
            let name = format!("{run}-{i}-{r}");
            async move {
                let req = http::Request::post("/api/v1/namespaces/default/configmaps")
                    .header("content-type", "application/json")
                    .body(cm_body(&name))?;
                c.request_text(req).await?;
                Ok(())
            }
        })
        .await?;
        let etcd_put = measure_etcd(&etcd_clients, n, args.requests, true).await?;
        row(n, "create", &create, &etcd_put);
        // get
        let get = measure(&clients, n, args.requests, move |c, i, r| {
            let name = format!("{run2}-{i}-{r}");
            async move {
                let req =
                    http::Request::get(format!("/api/v1/namespaces/default/configmaps/{name}"))
                        .body(Vec::new())?;
                c.request_text(req).await?;
                Ok(())
            }
        })
        .await?;
        let etcd_get = measure_etcd(&etcd_clients, n, args.requests, false).await?;
        row(n, "get", &get, &etcd_get);
    }

    // Watch delivery: N watchers (spread over connections), then timestamped writes.
    let conns = (args.watchers / 100).max(1);
    let mut wclients = Vec::new();
    for _ in 0..conns {
        wclients.push(client(dir.path(), port).await?);
    }
    // Watch from "now": the delivery of new events is what is measured, not an initial list.
    let list: serde_json::Value = clients[0]
        .request(
            http::Request::get("/api/v1/namespaces/default/configmaps?limit=1").body(Vec::new())?,
        )
        .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("list resourceVersion")?
        .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let origin = Arc::new(Instant::now());
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    for w in 0..args.watchers {
        let c = wclients[w % conns].clone();
        let tx = tx.clone();
        let origin = origin.clone();
        let ready = ready.clone();
        let rv = rv.clone();
        tokio::spawn(async move {
            let uri = format!(
                "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=bench%3Dwatch&resourceVersion={rv}"
            );
            let req = match http::Request::get(uri).body(Vec::new()) {
                Ok(r) => r,
                Err(_) => return,
            };
            let Ok(stream) = c.request_events::<serde_json::Value>(req).await else {
                return;
            };
            ready.add_permits(1);
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(ev)) = stream.next().await {
                let kube::api::WatchEvent::Added(obj) = ev else {
                    continue;
                };
                let Some(sent) = obj
                    .pointer("/data/sent")
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    continue;
                };
                let now = origin.elapsed();
                let _ = tx.send(now.saturating_sub(Duration::from_nanos(sent)));
            }
        });
    }
    drop(tx);
    let opened = tokio::time::timeout(
        Duration::from_secs(120),
        ready.acquire_many(args.watchers as u32),
    )
    .await;
    if opened.is_err() {
        bail!(
            "only {} of {} watchers opened",
            ready.available_permits(),
            args.watchers
        );
    }
    // Let every watch reach the server's cache before writing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let writer = &clients[0];
    let start = Instant::now();
    for i in 0..args.watch_events {
        let sent = origin.elapsed().as_nanos();
        let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("w-{i}"), "labels": {"bench": "watch"}}, "data": {"sent": sent.to_string()}});
        let req = http::Request::post("/api/v1/namespaces/default/configmaps")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body)?)?;
        writer.request_text(req).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let want = args.watchers * args.watch_events;
    let mut lat = Vec::with_capacity(want);
    while lat.len() < want {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(d)) => lat.push(d),
            _ => break,
        }
    }
    let delivered = lat.len();
    let s = stats(lat, start.elapsed());
    println!();
    println!("| watchers | events each | delivered | p50 ms | p99 ms | deliveries/s |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {delivered}/{want} | {} | {} | {:.0} |",
        args.watchers,
        args.watch_events,
        ms(s.p50),
        ms(s.p99),
        s.per_sec
    );
    Ok(())
}

fn row(n: usize, op: &str, api: &Stats, etcd: &Stats) {
    println!(
        "| {n} | {op} | {} | {} | {:.0} | {} | {} | {:.0} | {:.4} |",
        ms(api.p50),
        ms(api.p99),
        api.per_sec,
        ms(etcd.p50),
        ms(etcd.p99),
        etcd.per_sec,
        api.p99.as_secs_f64()
    );
}

/// The same number of raw etcd puts or gets (the floor under the API server).
async fn measure_etcd(
    clients: &[etcd_client::Client],
    n: usize,
    requests: usize,
    put: bool,
) -> Result<Stats> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().take(n).enumerate() {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(requests);
            for r in 0..requests {
                let key = format!("/bench/{i}/{r}");
                let t = Instant::now();
                if put {
                    c.put(key, vec![b'x'; 200], None).await?;
                } else {
                    c.get(key, None).await?;
                }
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(stats(all, start.elapsed()))
}
