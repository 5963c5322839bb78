//! `ketch-cni`: the CNI plugin containerd runs for every pod sandbox.

fn main() {}
