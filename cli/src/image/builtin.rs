//! The images every cluster has without a registry, built from the host's busybox-static.
//!
//! - [`BUSYBOX`]: `/bin/busybox` with a symlink for every applet it lists (`sh`, `httpd`, `nc`,
//!   `wget`, `sleep`, `ifconfig`, …) where `busybox --list-full` puts it and in `/bin`, `/etc/passwd` and `/etc/group` with root and nobody, `/tmp`
//!   (1777), `/var/www` (for `httpd -h /var/www`). Default command `sh`.
//! - [`PAUSE`]: the pod sandbox image (containerd's `sandbox_image`). It holds the same binary and
//!   runs `busybox sleep 2147483647`.
//!
//! # Why `sleep` is enough for a pod sandbox
//!
//! A sandbox's init process only has to exist: it holds the pod's namespaces (network, IPC, UTS)
//! open for the application containers that join them. What the real `pause` adds is not needed
//! under containerd and runc:
//!
//! - **Signals.** `pause` handles SIGTERM/SIGINT to exit cleanly. As PID 1 of its PID namespace,
//!   `sleep` has no handlers, so the kernel drops those signals; but containerd's CRI stops a
//!   sandbox with SIGKILL, which the kernel always delivers from the parent namespace. The sandbox
//!   therefore lives until the pod is stopped, and then dies at once.
//! - **Reaping.** `pause` reaps zombies when the pod shares one PID namespace
//!   (`shareProcessNamespace: true`). With the default (a PID namespace per container) every
//!   container's own init reaps its children and nothing is ever re-parented to the sandbox.
//!   In a shared namespace, orphans re-parented to `sleep` stay zombies until the pod ends
//!   (the kernel reaps the whole namespace when its init dies); that is the one difference.
//!
//! The entrypoint names `/bin/busybox` rather than a `/pause` copy because busybox picks the
//! applet from the file name it is run as (`argv[0]`): as `/pause` it answers
//! "pause: applet not found", while names starting with `busybox` take the applet from `argv[1]`.

use super::{Entry, ImageConfig, ImageError, Result, archive_file_name, build_archive, io_err};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BUSYBOX: &str = "localhost/busybox:latest";
pub const PAUSE: &str = "localhost/pause:3.10";
/// Where Debian's busybox-static puts its binary.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// Longest a sleep can be on every busybox build (fits a signed 32-bit int).
const FOREVER_SECONDS: &str = "2147483647";

/// Builds the built-in images from the host's `/bin/busybox` into `dest_dir` and returns
/// `(image name, archive path)` for each, ready for `ctr images import`.
pub fn builtin_images(dest_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    builtin_images_from(Path::new(HOST_BUSYBOX), dest_dir)
}

/// [`builtin_images`] with another static busybox binary.
pub fn builtin_images_from(busybox: &Path, dest_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let binary = std::fs::read(busybox).map_err(io_err(format!("read {}", busybox.display())))?;
    if !is_static_elf(&binary) {
        return Err(ImageError::NotStatic {
            path: busybox.to_path_buf(),
        });
    }
    let applets = applets(busybox)?;
    std::fs::create_dir_all(dest_dir).map_err(io_err(format!("create {}", dest_dir.display())))?;
    let mut out = Vec::new();
    for (name, entries, config) in [busybox_image(&binary, &applets), pause_image(&binary)] {
        let archive = build_archive(name, entries, &config)?;
        let path = dest_dir.join(archive_file_name(&archive.name));
        super::write_archive(&archive, &path)?;
        out.push((archive.name, path));
    }
    Ok(out)
}

/// The applet paths busybox installs itself as (`bin/sh`, `usr/bin/wget`, …), without its own.
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(io_err(format!("run {} --list-full", busybox.display())))?;
    if !out.status.success() {
        return Err(ImageError::Command {
            program: format!("{} --list-full", busybox.display()),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty() && l != "bin/busybox")
        .collect())
}

fn busybox_image<'a>(binary: &[u8], applets: &[String]) -> (&'a str, Vec<Entry>, ImageConfig) {
    let mut entries = vec![
        Entry::file("bin/busybox", 0o755, binary.to_vec()),
        Entry::file(
            "etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        Entry::file("etc/group", 0o644, "root:x:0:\nnobody:x:65534:\n"),
        Entry::dir("root", 0o700),
        Entry::dir("tmp", 0o1777),
        Entry::dir("var/www", 0o755),
    ];
    // Each applet where busybox installs it (`/usr/bin/env` for shebangs, `/sbin/ifconfig`) and
    // also in /bin, as the Docker busybox image has them, so `/bin/wget` works too.
    let mut links = std::collections::BTreeSet::new();
    for path in applets {
        let base = path.rsplit('/').next().unwrap_or(path);
        links.insert(path.clone());
        links.insert(format!("bin/{base}"));
    }
    links.remove("bin/busybox");
    entries.extend(
        links
            .into_iter()
            .map(|path| Entry::symlink(path, "/bin/busybox")),
    );
    let config = ImageConfig {
        cmd: vec!["sh".into()],
        working_dir: Some("/".into()),
        ..ImageConfig::default()
    };
    (BUSYBOX, entries, config)
}

fn pause_image<'a>(binary: &[u8]) -> (&'a str, Vec<Entry>, ImageConfig) {
    let entries = vec![Entry::file("bin/busybox", 0o755, binary.to_vec())];
    let config = ImageConfig {
        entrypoint: vec![
            "/bin/busybox".into(),
            "sleep".into(),
            FOREVER_SECONDS.into(),
        ],
        working_dir: Some("/".into()),
        ..ImageConfig::default()
    };
    (PAUSE, entries, config)
}

/// True for an ELF executable without a program interpreter (no dynamic loader needed).
fn is_static_elf(bin: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| bin.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        bin.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bin.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // 64-bit little-endian ELF only: what this project runs on.
    if bin.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff + i * usize::from(phentsize);
        u32_at(at).is_some_and(|t| t != PT_INTERP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_busybox_is_static_and_shells_are_not() {
        let busybox = std::fs::read(HOST_BUSYBOX).expect("busybox-static is installed");
        assert!(is_static_elf(&busybox));
        let sh = std::fs::read("/bin/bash").expect("bash");
        assert!(!is_static_elf(&sh));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }
}
