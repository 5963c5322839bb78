//! Ketch node agent: the kubelet's duties on containerd (`kubelet`), the CNI plugin (`cni`).

pub mod cni;
pub mod kubelet;
