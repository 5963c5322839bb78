//! `ketch image load`: import an image archive into the containerd of every node.

use super::{ImageError, Result, io_err};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The containerd namespace the CRI plugin (and so the kubelet side) sees images in.
pub const CONTAINERD_NAMESPACE: &str = "k8s.io";

/// One node's containerd endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub socket: PathBuf,
}

/// What importing into one node came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ctr` imported it; `output` is what it said (`unpacking <name> (<digest>)...done`).
    Imported { output: String },
    /// Nothing answers on the node's socket (the node is down, or its socket is stale).
    NotRunning { reason: String },
    /// The node's containerd answered but the import failed.
    Failed { detail: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    pub node: Node,
    pub outcome: Outcome,
}

/// The nodes of the cluster whose state is in `state_dir`: every
/// `<state_dir>/nodes/<node>/containerd/containerd.sock` that exists, sorted by node name (the
/// directory name). Whether its containerd answers is checked by [`load`], not here.
pub fn node_sockets(state_dir: &Path) -> Result<Vec<Node>> {
    let nodes_dir = state_dir.join("nodes");
    let rd = match std::fs::read_dir(&nodes_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("read {}", nodes_dir.display()))(e)),
    };
    let mut nodes = Vec::new();
    for item in rd {
        let item = item.map_err(io_err(format!("read {}", nodes_dir.display())))?;
        let socket = item.path().join("containerd/containerd.sock");
        if socket.exists() {
            nodes.push(Node {
                name: item.file_name().to_string_lossy().into_owned(),
                socket,
            });
        }
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// Imports `archive` into the `k8s.io` namespace of every node's containerd (see
/// [`node_sockets`]) with `ctr --address <sock> -n k8s.io images import --all-platforms <archive>`,
/// and says how it went per node. Nodes whose socket does not answer are reported as
/// [`Outcome::NotRunning`] and skipped; it is an error when no node answers at all.
pub fn load(archive: &Path, state_dir: &Path) -> Result<Vec<NodeLoad>> {
    let archive = archive
        .canonicalize()
        .map_err(io_err(format!("open {}", archive.display())))?;
    let nodes = node_sockets(state_dir)?;
    if nodes.is_empty() {
        return Err(ImageError::NoNodeRuns {
            detail: format!(
                "no {}/nodes/*/containerd/containerd.sock (is the cluster up?)",
                state_dir.display()
            ),
        });
    }
    let ctr = which("ctr").ok_or(ImageError::ProgramNotFound {
        program: "ctr",
        hint: "it comes with containerd",
    })?;
    let mut results = Vec::new();
    for node in nodes {
        let outcome = match UnixStream::connect(&node.socket) {
            Err(e) => Outcome::NotRunning {
                reason: format!("{}: {e}", node.socket.display()),
            },
            Ok(_) => import(&ctr, &node.socket, &archive),
        };
        results.push(NodeLoad { node, outcome });
    }
    if results
        .iter()
        .all(|r| matches!(r.outcome, Outcome::NotRunning { .. }))
    {
        let detail = results
            .iter()
            .map(|r| match &r.outcome {
                Outcome::NotRunning { reason } => format!("{}: {reason}", r.node.name),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ImageError::NoNodeRuns { detail });
    }
    Ok(results)
}

fn import(ctr: &Path, socket: &Path, archive: &Path) -> Outcome {
    let out = Command::new(ctr)
        .arg("--address")
        .arg(socket)
        // Bounded so a wedged containerd fails the node instead of hanging the command.
        .args(["--connect-timeout", "10s", "-n", CONTAINERD_NAMESPACE])
        .args(["images", "import", "--all-platforms"])
        .arg(archive)
        .output();
    match out {
        Err(e) => Outcome::Failed {
            detail: format!("run {}: {e}", ctr.display()),
        },
        Ok(out) if out.status.success() => Outcome::Imported {
            output: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        },
        Ok(out) => Outcome::Failed {
            detail: format!(
                "ctr {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}
