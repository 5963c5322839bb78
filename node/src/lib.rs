//! Ketch node agent: the kubelet's duties on containerd (`kubelet`), the CNI plugin (`cni`),
//! the eBPF Service load balancer (`dataplane`) and what programs it from the API (`proxy`), cluster DNS (`dns`), its Prometheus metrics (`metrics`).

pub mod cni;
pub mod dataplane;
pub mod dns;
pub mod kubelet;
pub mod metrics;
pub mod proxy;
