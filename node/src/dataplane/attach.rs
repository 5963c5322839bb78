//! Attaching the programs with pinned links, so programs stay attached while the agent is down
//! and a restart replaces them without a moment where no program runs.
//!
//! - tc (TCX): the link pinned at `links/tc-<ifname>-<dir>` is reused and its program replaced
//!   atomically (`BPF_LINK_UPDATE` through aya's `attach_to_link`); without one (first start,
//!   or the interface was recreated) a new link is attached and pinned.
//! - cgroup sock_addr: links to cgroups cannot be updated through aya, so the new program is
//!   attached *beside* the old one (cgroup links always allow several programs), pinned under a
//!   temporary name, renamed over the old pin, and only then is the old link released. While
//!   both run, the second sees an already translated backend address, which is no frontend, so
//!   it does nothing: no gap, no double translation.

use super::DataplaneError;
use aya::programs::{
    CgroupAttachMode, CgroupSockAddr, LinkOrder, SchedClassifier, TcAttachType,
    links::{FdLink, PinnedLink},
    tc::{SchedClassifierLink, TcAttachOptions},
};
use std::path::{Path, PathBuf};

fn link_err(path: &Path, e: impl std::error::Error) -> DataplaneError {
    // aya's pin errors keep the errno in their source; show the whole chain.
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        message.push_str(&format!(": {s}"));
        src = s.source();
    }
    DataplaneError::Link {
        path: path.to_path_buf(),
        message,
    }
}

/// Attaches `prog` (loaded) to `iface` in `dir` through TCX, reusing the pinned link.
pub fn attach_tc(
    prog: &mut SchedClassifier,
    name: &str,
    iface: &str,
    dir: TcAttachType,
    links: &Path,
) -> Result<PathBuf, DataplaneError> {
    let dir_name = match dir {
        TcAttachType::Ingress => "ingress",
        TcAttachType::Egress => "egress",
        _ => "custom",
    };
    let pin = links.join(format!("tc-{iface}-{dir_name}"));
    if let Ok(old) = PinnedLink::from_pin(&pin) {
        let replaced = SchedClassifierLink::try_from(FdLink::from(old))
            .map_err(|e| e.to_string())
            .and_then(|l| prog.attach_to_link(l).map_err(|e| e.to_string()));
        match replaced {
            Ok(id) => {
                // The pin still names the same kernel link; our handle may go.
                let link = prog
                    .take_link(id)
                    .map_err(|e| DataplaneError::program(name, e))?;
                drop(link);
                tracing::info!(%iface, dir = dir_name, "tc program replaced in pinned link");
                return Ok(pin);
            }
            Err(e) => {
                // Typically: the interface was deleted and the link is defunct.
                tracing::warn!(pin = %pin.display(), error = %e, "pinned tc link unusable; re-attaching");
                let _ = std::fs::remove_file(&pin);
            }
        }
    }
    let id = prog
        .attach_with_options(iface, dir, TcAttachOptions::TcxOrder(LinkOrder::default()))
        .map_err(|e| DataplaneError::program(name, e))?;
    let link = prog
        .take_link(id)
        .map_err(|e| DataplaneError::program(name, e))?;
    let fd: FdLink = link.try_into().map_err(|e| link_err(&pin, e))?;
    fd.pin(&pin).map_err(|e| link_err(&pin, e))?;
    tracing::info!(%iface, dir = dir_name, "tc program attached (TCX)");
    Ok(pin)
}

/// Attaches `prog` (loaded) to the cgroup v2 directory `cgroup`, then releases the link an
/// earlier agent pinned for the same hook.
pub fn attach_cgroup(
    prog: &mut CgroupSockAddr,
    name: &str,
    cgroup: &Path,
    links: &Path,
) -> Result<PathBuf, DataplaneError> {
    let pin = links.join(format!("cgroup-{name}"));
    // bpffs refuses names with a dot.
    let tmp = links.join(format!("cgroup-{name}-new"));
    let file = std::fs::File::open(cgroup).map_err(|source| DataplaneError::Cgroup {
        path: cgroup.to_path_buf(),
        source,
    })?;
    let old = PinnedLink::from_pin(&pin).ok();
    // Through bpf_link (kernel >= 5.7) the kernel takes no flags and always allows several
    // programs per hook; `Single` is the mode that passes flags = 0.
    let id = prog
        .attach(&file, CgroupAttachMode::Single)
        .map_err(|e| DataplaneError::program(name, e))?;
    let link = prog
        .take_link(id)
        .map_err(|e| DataplaneError::program(name, e))?;
    let fd: FdLink = link.try_into().map_err(|e| link_err(&pin, e))?;
    let _ = std::fs::remove_file(&tmp);
    let pinned = fd.pin(&tmp).map_err(|e| link_err(&tmp, e))?;
    std::fs::rename(&tmp, &pin).map_err(|e| link_err(&pin, e))?;
    drop(pinned);
    // The old link lost its last pin with the rename; closing our fd detaches it.
    drop(old);
    tracing::info!(cgroup = %cgroup.display(), hook = name, "cgroup program attached");
    Ok(pin)
}

/// Detaches everything pinned under `links` (links go when their last pin and fd go).
pub fn detach_all(links: &Path) -> Result<(), DataplaneError> {
    let Ok(entries) = std::fs::read_dir(links) else {
        return Ok(());
    };
    for e in entries.flatten() {
        std::fs::remove_file(e.path()).map_err(|err| link_err(&e.path(), err))?;
    }
    Ok(())
}
