//! Where the socket programs attach: the node's cgroup v2 directory.
//!
//! Verified on the development machine (Debian containerd 1.6.20 + runc, hybrid layout, cgroup
//! v2 at `/sys/fs/cgroup/unified` with no controllers enabled), with a one-node `ketch up`
//! (`--cluster-name ke`) and a busybox pod:
//!
//! - runc puts every pod process in the cgroup2 tree too, below the sandbox's cgroup parent:
//!   the pause process and the container process were listed in
//!   `/sys/fs/cgroup/unified/ke-n1/pod<uid>/<container id>/cgroup.procs`, and their
//!   `/proc/<pid>/cgroup` said `0::/ke-n1/pod<uid>/<container id>` (and the same path in every
//!   v1 hierarchy). So a program attached at `/sys/fs/cgroup/unified/<node name>` covers the
//!   node's pods and nothing of other nodes or clusters.
//! - The node's own processes are **not** there: `ketch-node`, its containerd and the shims
//!   were all in `0::/` (the v2 root, i.e. the whole machine), because `ketch up` starts them
//!   with nsenter from wherever it runs. Attaching at the root is not an option (other clusters
//!   share the machine).
//! - Fix: the agent moves itself into a leaf of the node's directory before it starts anything
//!   ([`join_node_cgroup`]); everything it starts afterwards inherits it. Writing a pid to
//!   `/sys/fs/cgroup/unified/ke-n1/<leaf>/cgroup.procs` worked and changed only the `0::` line
//!   (v1 memberships, e.g. the memory cgroup, stayed), and the leaf is removable once empty, so
//!   the existing teardown (`rmdir` deepest first) still leaves nothing.

use super::DataplaneError;
use std::path::{Path, PathBuf};

/// The cgroup2 mount point (`/sys/fs/cgroup/unified` in the hybrid layout,
/// `/sys/fs/cgroup` on a pure v2 host), read from `/proc/self/mountinfo`.
pub fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ")
            .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

/// The attach point for a node whose pods live under `cgroup_parent` (`/ketch-n1`).
pub fn node_cgroup(cgroup_parent: &str) -> Option<PathBuf> {
    Some(cgroup2_root()?.join(cgroup_parent.trim_start_matches('/')))
}

/// Moves the calling process (all its threads) into `<node cgroup>/<leaf>`, creating both, so
/// that the agent and what it starts are load-balanced like the node's pods.
pub fn join_node_cgroup(node_cgroup: &Path, leaf: &str) -> Result<PathBuf, DataplaneError> {
    let dir = node_cgroup.join(leaf);
    let err = |source| DataplaneError::Cgroup {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    // "0" means the writing process.
    std::fs::write(dir.join("cgroup.procs"), "0").map_err(err)?;
    tracing::info!(cgroup = %dir.display(), "joined the node cgroup");
    Ok(dir)
}
