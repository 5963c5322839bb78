//! The bpffs the maps and links are pinned in (one per node: `<root-dir>/bpf`).

use super::DataplaneError;
use std::path::Path;

/// Mounts a bpffs at `dir` unless one is mounted there already.
pub fn ensure_mounted(dir: &Path) -> Result<(), DataplaneError> {
    let err = |source| DataplaneError::Bpffs {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    if is_bpffs(dir)? {
        return Ok(());
    }
    tracing::info!(dir = %dir.display(), "mounting bpffs");
    nix::mount::mount(
        Some("bpf"),
        dir,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        Some("mode=0700"),
    )
    .map_err(|e| err(std::io::Error::from(e)))
}

/// Whether `dir` is itself a bpffs mount point (statfs magic, so a bind mount counts too).
pub fn is_bpffs(dir: &Path) -> Result<bool, DataplaneError> {
    const BPF_FS_MAGIC: i64 = 0xcafe4a11;
    let st = nix::sys::statfs::statfs(dir).map_err(|e| DataplaneError::Bpffs {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    // A plain directory on another fs below a bpffs would also report the magic; the agent's
    // dir is never below one, so statfs of the directory itself is enough.
    Ok(st.filesystem_type().0 as i64 == BPF_FS_MAGIC)
}
