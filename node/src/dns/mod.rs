//! Cluster DNS served by every node agent on its node address (UDP and TCP port 53), which pods
//! get as their nameserver through the CRI DNS config (`--cluster-dns`), with the usual search
//! list. Names come from Services and EndpointSlices ([`zone`]); the wire format is
//! hickory-proto's.

pub mod zone;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use zone::{Answer, Kind, TTL, Zone};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The response to one wire-format query; None for what is not a parseable query.
pub fn respond(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(query).ok()?;
    if req.message_type() != MessageType::Query {
        return None;
    }
    let mut resp = Message::new();
    resp.set_id(req.id())
        .set_message_type(MessageType::Response)
        .set_op_code(req.op_code())
        .set_recursion_desired(req.recursion_desired())
        .set_recursion_available(false);
    resp.add_queries(req.queries().to_vec());
    let Some(q) = req.queries().first() else {
        resp.set_response_code(ResponseCode::FormErr);
        return resp.to_vec().ok();
    };
    let kind = match q.query_type() {
        RecordType::A | RecordType::ANY => Kind::A,
        RecordType::SRV => Kind::Srv,
        _ => Kind::Other,
    };
    let name = q.name().clone();
    let answer = zone.answer(&name.to_ascii(), kind);
    resp.set_authoritative(!matches!(answer, Answer::ServFail));
    match answer {
        Answer::A(ips) => {
            for ip in ips {
                resp.add_answer(Record::from_rdata(name.clone(), TTL, RData::A(A(ip))));
            }
        }
        Answer::Cname(target) => {
            if let Ok(t) = Name::from_ascii(format!("{}.", target.trim_end_matches('.'))) {
                resp.add_answer(Record::from_rdata(
                    name.clone(),
                    TTL,
                    RData::CNAME(CNAME(t)),
                ));
            }
        }
        Answer::Srv(targets) => {
            let weight = (100 / targets.len().max(1)) as u16;
            for (port, target) in targets {
                if let Ok(t) = Name::from_ascii(format!("{target}.")) {
                    resp.add_answer(Record::from_rdata(
                        name.clone(),
                        TTL,
                        RData::SRV(SRV::new(0, weight, port, t)),
                    ));
                }
            }
        }
        Answer::NoData => {}
        Answer::NxDomain => {
            resp.set_response_code(ResponseCode::NXDomain);
        }
        Answer::ServFail => {
            resp.set_response_code(ResponseCode::ServFail);
        }
    }
    resp.to_vec().ok()
}

fn rebuild(zone: &RwLock<Zone>, domain: &str, svcs: &Store<Service>, eps: &Store<EndpointSlice>) {
    let services = svcs.state();
    let slices = eps.state();
    let s: Vec<&Service> = services.iter().map(|s| s.as_ref()).collect();
    let e: Vec<&EndpointSlice> = slices.iter().map(|s| s.as_ref()).collect();
    let z = Zone::build(domain, &s, &e);
    if let Ok(mut w) = zone.write() {
        *w = z;
    }
}

async fn serve_udp(sock: UdpSocket, zone: Arc<RwLock<Zone>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let reply = match zone.read() {
            Ok(z) => respond(&z, &buf[..n]),
            Err(_) => None,
        };
        if let Some(r) = reply {
            let _ = sock.send_to(&r, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<RwLock<Zone>>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let zone = zone.clone();
        tokio::spawn(async move {
            // Two-byte length prefix per message (RFC 1035 4.2.2); several queries per connection.
            loop {
                let Ok(len) = conn.read_u16().await else {
                    return;
                };
                let mut q = vec![0u8; len as usize];
                if conn.read_exact(&mut q).await.is_err() {
                    return;
                }
                let reply = match zone.read() {
                    Ok(z) => respond(&z, &q),
                    Err(_) => None,
                };
                let Some(r) = reply else { return };
                let Ok(l) = u16::try_from(r.len()) else {
                    return;
                };
                if conn.write_u16(l).await.is_err() || conn.write_all(&r).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Serves until `stop` on `addr` (UDP and TCP).
pub async fn run(
    client: kube::Client,
    addr: SocketAddr,
    domain: String,
    stop: CancellationToken,
) -> Result<(), DnsError> {
    let err = |source| DnsError::Listen { addr, source };
    let udp = UdpSocket::bind(addr).await.map_err(err)?;
    let tcp = TcpListener::bind(addr).await.map_err(err)?;
    let zone = Arc::new(RwLock::new(Zone::build(&domain, &[], &[])));
    let changed = Arc::new(Notify::new());
    let (svcs, svc_writer) = reflector::store::<Service>();
    let (eps, eps_writer) = reflector::store::<EndpointSlice>();
    let tasks = [
        tokio::spawn(crate::proxy::follow(
            Api::<Service>::all(client.clone()),
            svc_writer,
            changed.clone(),
        )),
        tokio::spawn(crate::proxy::follow(
            Api::<EndpointSlice>::all(client),
            eps_writer,
            changed.clone(),
        )),
        tokio::spawn(serve_udp(udp, zone.clone())),
        tokio::spawn(serve_tcp(tcp, zone.clone())),
    ];
    tracing::info!(%addr, %domain, "cluster DNS listening");
    loop {
        tokio::select! {
            _ = changed.notified() => rebuild(&zone, &domain, &svcs, &eps),
            _ = stop.cancelled() => break,
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use serde_json::json;

    fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(4242).set_message_type(MessageType::Query);
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
        m.to_vec().expect("encode")
    }

    #[test]
    fn wire_answers_a_nxdomain_and_servfail() {
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "d"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}))
            .expect("svc");
        let z = Zone::build("cluster.local", &[&svc], &[]);
        let r = Message::from_vec(
            &respond(&z, &query("web.d.svc.cluster.local.", RecordType::A)).expect("reply"),
        )
        .expect("decode");
        assert_eq!(r.id(), 4242);
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.answers().len(), 1);
        assert_eq!(
            r.answers()[0].data(),
            &RData::A(A(std::net::Ipv4Addr::new(10, 96, 0, 20)))
        );
        let r = Message::from_vec(
            &respond(&z, &query("nope.d.svc.cluster.local.", RecordType::A)).expect("reply"),
        )
        .expect("decode");
        assert_eq!(r.response_code(), ResponseCode::NXDomain);
        let r =
            Message::from_vec(&respond(&z, &query("example.com.", RecordType::A)).expect("reply"))
                .expect("decode");
        assert_eq!(r.response_code(), ResponseCode::ServFail);
        let r = Message::from_vec(
            &respond(
                &z,
                &query("_http._tcp.web.d.svc.cluster.local.", RecordType::SRV),
            )
            .expect("reply"),
        )
        .expect("decode");
        assert_eq!(r.answers().len(), 1);
        assert!(respond(&z, b"garbage").is_none());
    }
}
