//! `ketch-cni`: the CNI plugin containerd runs for every pod sandbox (see `ketch_node::cni`).
//!
//! Reads `CNI_*` from the environment and the network configuration from stdin, prints the result
//! or the error JSON on stdout, and exits 0 or 1. Logs go to stderr (`KETCH_CNI_LOG`, default
//! `info`), which containerd keeps in its own log.

use std::io::{Read, Write};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_env("KETCH_CNI_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin).map(|_| stdin);
    let response = ketch_node::cni::handle(|k| std::env::var(k).ok(), read);

    let mut out = std::io::stdout().lock();
    let written = if response.stdout.is_empty() {
        Ok(())
    } else {
        writeln!(out, "{}", response.stdout).and_then(|()| out.flush())
    };
    if let Err(e) = written {
        tracing::error!(error = %e, "writing the result to stdout");
        return ExitCode::FAILURE;
    }
    if response.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
