//! Part (3): how long the agent's proxy loop (`ketch_node::proxy::run`, unchanged) takes to
//! program N Services into fresh maps, and to apply one endpoint change among them.
//!
//! A private etcd and a release `ketch-control --components apiserver` (no controllers, so the
//! EndpointSlices written here are the only ones and nothing rewrites them) hold N ClusterIP
//! Services without selectors, each with one EndpointSlice of one ready endpoint. Per round:
//! a fresh bpffs and `Dataplane` (nothing attached), `proxy::run` started, and the pinned
//! services map polled from another thread until it holds every frontend; then single
//! EndpointSlice patches, each timed from the request until the map shows the new backend.

use super::socket::IptablesTimes;
use super::sys::{self, Bpffs};
use anyhow::{Context, Result, bail};
use aya::maps::{HashMap, Map, MapData};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service as KubeService;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use ketch_bench::harness::{client, start_control, start_etcd};
use ketch_ebpf_common::{self as abi, maps};
use ketch_node::dataplane::{Dataplane, DataplaneConfig};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone)]
pub struct ProgArgs {
    /// Part (3): Services (and EndpointSlices) in the API.
    #[arg(long, default_value_t = 10_000)]
    pub prog_services: u32,
    /// Part (3): rounds, each a fresh dataplane and proxy.
    #[arg(long, default_value_t = 3)]
    pub prog_rounds: usize,
    /// Part (3): single endpoint changes timed per round.
    #[arg(long, default_value_t = 5)]
    pub prog_changes: usize,
    /// Part (3): concurrent requests while creating the objects.
    #[arg(long, default_value_t = 16)]
    pub prog_clients: usize,
}

const NS: &str = "packet-bench";
const PORT: u16 = 80;

/// The endpoint address of Service `i` after `version` changes (10.244/16 at first, then
/// 10.245+/16: always new).
fn endpoint(i: u32, version: u32) -> Ipv4Addr {
    let [_, _, a, b] = i.to_be_bytes();
    Ipv4Addr::new(10, 244 + version as u8, a, b)
}

fn slice_body(i: u32, version: u32) -> serde_json::Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("svc-{i}-1"),
            "namespace": NS,
            "labels": {
                "kubernetes.io/service-name": format!("svc-{i}"),
                "endpointslice.kubernetes.io/managed-by": "packet-bench",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [endpoint(i, version).to_string()],
            "conditions": {"ready": true},
        }],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    })
}

/// Opens a pinned map of the dataplane for reading (the proxy owns the writer).
fn pinned<K: aya::Pod, V: aya::Pod>(
    bpffs: &Path,
    name: &'static str,
) -> Result<HashMap<MapData, K, V>> {
    let data = MapData::from_pin(bpffs.join("maps").join(name))
        .with_context(|| format!("open pinned {name}"))?;
    let map = Map::from_map_data(data)?;
    Ok(HashMap::try_from(map)?)
}

fn key(vip: Ipv4Addr) -> abi::ServiceKey {
    abi::ServiceKey {
        addr: abi::ip4(vip.octets()),
        port: abi::port(PORT),
        proto: abi::PROTO_TCP,
        ..Default::default()
    }
}

/// Polls the map until every frontend of `vips` has its master entry; returns (time to the
/// first one, time to all), measured from `t0`.
fn wait_programmed(bpffs: &Path, vips: &HashSet<u32>, t0: Instant) -> Result<(Duration, Duration)> {
    let services: HashMap<MapData, abi::ServiceKey, abi::ServiceValue> =
        pinned(bpffs, maps::SERVICES)?;
    let deadline = Duration::from_secs(600);
    // First a cheap probe (one syscall): has anything been written?
    let first = loop {
        sys::check_stop()?;
        if services.keys().next().is_some() {
            break t0.elapsed();
        }
        if t0.elapsed() > deadline {
            bail!("no frontend programmed after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    loop {
        sys::check_stop()?;
        let mut n = 0;
        for k in services.keys() {
            let k = k?;
            if k.slot == 0 && k.port == abi::port(PORT) && vips.contains(&k.addr) {
                n += 1;
            }
        }
        if n == vips.len() {
            return Ok((first, t0.elapsed()));
        }
        if t0.elapsed() > deadline {
            bail!(
                "{n} of {} frontends programmed after {deadline:?}",
                vips.len()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls the frontend `vip` until its (single) backend is `want`; returns the time from `t0`.
fn wait_backend(bpffs: &Path, vip: Ipv4Addr, want: Ipv4Addr, t0: Instant) -> Result<Duration> {
    let services: HashMap<MapData, abi::ServiceKey, abi::ServiceValue> =
        pinned(bpffs, maps::SERVICES)?;
    let backends: HashMap<MapData, u32, abi::Backend> = pinned(bpffs, maps::BACKENDS)?;
    let master = key(vip);
    let want = abi::ip4(want.octets());
    loop {
        sys::check_stop()?;
        if let Ok(m) = services.get(&master, 0)
            && m.count == 1
            && let Ok(slot) = services.get(
                &abi::ServiceKey {
                    slot: m.slot_base + 1,
                    ..master
                },
                0,
            )
            && let Ok(b) = backends.get(&slot.backend_id, 0)
            && b.addr == want
        {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("the endpoint change of {vip} did not reach the map in 120 s");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Paginated LIST (what a reflector's initial list does), returning the number of items.
async fn list_all_pages<K>(api: Api<K>, limit: u32) -> Result<usize>
where
    K: Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut n = 0;
    let mut lp = ListParams::default().limit(limit);
    loop {
        let page = api.list(&lp).await?;
        n += page.items.len();
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => return Ok(n),
        }
    }
}

/// Runs part (3) and prints its table.
pub async fn run(a: &ProgArgs, object: &Path, ipt: &[IptablesTimes]) -> Result<()> {
    let n = a.prog_services.max(1);
    println!("\n## (3) programming {n} Services through the agent's proxy loop");
    let dir = tempfile::Builder::new()
        .prefix("ketch-packet-bench-api")
        .tempdir()?;
    let (_etcd, etcd_url) = start_etcd(dir.path())?;
    let (_control, admin, port) =
        start_control(dir.path(), &etcd_url, &["--components", "apiserver"]).await?;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await
        .context("create namespace")?;

    // Services (ClusterIPs allocated by the API server) and their slices, concurrently.
    let svcs: Api<KubeService> = Api::namespaced(admin.clone(), NS);
    let started = Instant::now();
    let mut vips: Vec<(u32, Ipv4Addr)> = futures::stream::iter(0..n)
        .map(|i| {
            let svcs = svcs.clone();
            async move {
                let body: KubeService = serde_json::from_value(json!({
                    "metadata": {"name": format!("svc-{i}")},
                    "spec": {"ports": [{"port": PORT, "targetPort": 8080, "protocol": "TCP"}]},
                }))?;
                let s = svcs.create(&PostParams::default(), &body).await?;
                let ip = s
                    .spec
                    .and_then(|s| s.cluster_ip)
                    .context("no ClusterIP allocated")?
                    .parse::<Ipv4Addr>()?;
                if i > 0 && i % 2000 == 0 {
                    println!("  {i} Services created");
                }
                Ok::<_, anyhow::Error>((i, ip))
            }
        })
        .buffer_unordered(a.prog_clients)
        .try_collect()
        .await?;
    vips.sort();
    let slices: Api<EndpointSlice> = Api::namespaced(admin.clone(), NS);
    futures::stream::iter(0..n)
        .map(|i| {
            let slices = slices.clone();
            async move {
                let body: EndpointSlice = serde_json::from_value(slice_body(i, 0))?;
                slices.create(&PostParams::default(), &body).await?;
                if i > 0 && i % 2000 == 0 {
                    println!("  {i} EndpointSlices created");
                }
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(a.prog_clients)
        .try_collect::<Vec<()>>()
        .await?;
    println!(
        "created {n} Services + {n} EndpointSlices in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The floor under the proxy's start: a LIST of each kind in pages of 500, as its watches
    // begin (kube-runtime's default page size; one unpaginated LIST of 10k Services fails in
    // ketch-control: the etcd response exceeds the client's 4 MiB gRPC message limit).
    let mut lists = Vec::new();
    for _ in 0..3 {
        let c = client(dir.path(), port).await?;
        let t = Instant::now();
        let s = list_all_pages(Api::<KubeService>::all(c.clone()), 500).await?;
        let e = list_all_pages(Api::<EndpointSlice>::all(c), 500).await?;
        lists.push(t.elapsed().as_secs_f64());
        if s < n as usize || e < n as usize {
            bail!("LIST returned {s} Services, {e} slices");
        }
    }

    let vip_set: HashSet<u32> = vips.iter().map(|(_, ip)| abi::ip4(ip.octets())).collect();
    let mut versions = vec![0u32; n as usize];
    let (mut firsts, mut alls, mut changes, mut patches) = (vec![], vec![], vec![], vec![]);
    for round in 0..a.prog_rounds {
        sys::check_stop()?;
        let bpf = Bpffs::new()?;
        let dp =
            Dataplane::open(DataplaneConfig::new(bpf.path(), object)).context("open dataplane")?;
        let names = bpf.dir().join("names.json");
        let stop = CancellationToken::new();
        let c = client(dir.path(), port).await?;
        let t0 = Instant::now();
        let proxy = tokio::spawn(ketch_node::proxy::run(
            c,
            dp,
            "packet-bench-node".into(),
            names,
            stop.clone(),
        ));
        let (p, set) = (bpf.path(), vip_set.clone());
        let waited = tokio::task::spawn_blocking(move || wait_programmed(&p, &set, t0)).await?;
        let (first, all) = match waited {
            Ok(x) => x,
            Err(e) => {
                stop.cancel();
                let _ = proxy.await;
                return Err(e);
            }
        };
        println!(
            "round {}/{}: first frontend after {:.2} s, all {n} after {:.2} s",
            round + 1,
            a.prog_rounds,
            first.as_secs_f64(),
            all.as_secs_f64()
        );
        firsts.push(first.as_secs_f64());
        alls.push(all.as_secs_f64());
        for c in 0..a.prog_changes {
            // Services spread over the set, different in every round.
            let i = ((c as u64 * 7919 + round as u64 * 104_729 + 17) % u64::from(n)) as u32;
            versions[i as usize] += 1;
            let want = endpoint(i, versions[i as usize]);
            let vip = vips[i as usize].1;
            let t = Instant::now();
            slices
                .patch(
                    &format!("svc-{i}-1"),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"endpoints": [{
                        "addresses": [want.to_string()],
                        "conditions": {"ready": true},
                    }]})),
                )
                .await?;
            patches.push(t.elapsed().as_secs_f64());
            let p = bpf.path();
            let d = tokio::task::spawn_blocking(move || wait_backend(&p, vip, want, t)).await??;
            changes.push(d.as_secs_f64());
            println!(
                "  change {}: svc-{i} endpoint → {want} in the map after {:.1} ms",
                c + 1,
                d.as_secs_f64() * 1e3
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.cancel();
        proxy.await?;
    }

    let (all, change) = (median(alls.clone()), median(changes.clone()));
    println!();
    println!("| measure | median | runs |");
    println!("|---|---|---|");
    let runs = |v: &[f64], scale: f64| {
        v.iter()
            .map(|x| format!("{:.1}", x * scale))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "| proxy start → all {n} frontends in the maps, ms | {:.0} | {} |",
        all * 1e3,
        runs(&alls, 1e3)
    );
    println!(
        "| proxy start → first frontend in the maps (both watches listed), ms | {:.0} | {} |",
        median(firsts.clone()) * 1e3,
        runs(&firsts, 1e3)
    );
    println!(
        "| floor: one LIST of all Services + one of all EndpointSlices, ms | {:.0} | {} |",
        median(lists.clone()) * 1e3,
        runs(&lists, 1e3)
    );
    println!(
        "| one endpoint change: PATCH sent → new backend in the map, ms | {:.2} | {} |",
        change * 1e3,
        runs(&changes, 1e3)
    );
    println!(
        "| of which the PATCH request itself, ms | {:.2} | {} |",
        median(patches.clone()) * 1e3,
        runs(&patches, 1e3)
    );
    for t in ipt {
        println!(
            "| reference: iptables-{}-restore of {} Services ({} rules, part 2), ms | {:.0} | — |",
            t.flavor.name(),
            t.services,
            t.rules,
            t.full_restore.as_secs_f64() * 1e3
        );
        println!(
            "| reference: iptables-{}-restore --noflush of one endpoint change (changed chains only), ms | {:.2} | — |",
            t.flavor.name(),
            t.one_change.as_secs_f64() * 1e3
        );
    }
    println!();
    println!(
        "one endpoint change / full programming: {:.4} ({:.1} ms vs {:.0} ms)",
        change / all,
        change * 1e3,
        all * 1e3
    );
    Ok(())
}
