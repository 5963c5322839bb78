//! Kubelet duties: node registration, pod workers over CRI, probes, status, logs and exec.
