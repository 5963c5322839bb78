//! Container images without a registry: build OCI image archives from a folder (or from files in
//! memory) and import them into each node's containerd.
//!
//! An archive is an OCI image layout packed in a tar (what `ctr images import` and
//! `docker load`-style tools read):
//!
//! ```text
//! oci-layout                  {"imageLayoutVersion":"1.0.0"}
//! index.json                  one manifest, annotated with the image's full name
//! blobs/sha256/<layer>        the folder as one gzip-compressed tar layer
//! blobs/sha256/<config>       architecture, os, rootfs.diff_ids, Entrypoint/Cmd/Env/WorkingDir
//! blobs/sha256/<manifest>     points at the config and the layer
//! ```
//!
//! Archives are deterministic: the same files and settings give the same bytes (entries sorted,
//! mtimes 0, owner root, gzip header without time or name), so the same image keeps its digest
//! across builds and nodes.

pub mod builtin;
pub mod cli;
pub mod load;

use flate2::Compression;
use flate2::GzBuilder;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation `ctr images import` names an image by (it ignores a full name in
/// `org.opencontainers.image.ref.name` unless `--base-name` matches it).
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Added to an image's environment when it sets no `PATH` (as Docker's builders do), so that
/// commands like `sh` resolve under every runtime.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid path {path:?} in the image: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{path:?} appears more than once in the image")]
    Duplicate { path: String },
    #[error("{}: a {kind} cannot go into an image", path.display())]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("{}: the name is not UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("invalid environment entry {0:?}: expected KEY=VALUE")]
    InvalidEnv(String),
    #[error("{}: not a statically linked executable, so it cannot run alone in an image", path.display())]
    NotStatic { path: PathBuf },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{program} failed: {detail}")]
    Command { program: String, detail: String },
    #[error("{program} not found in PATH ({hint})")]
    ProgramNotFound {
        program: &'static str,
        hint: &'static str,
    },
    #[error("no node runs: {detail}")]
    NoNodeRuns { detail: String },
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Wraps an I/O error with what was being done.
pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Io { context, source }
}

/// The runtime settings of an image (the `config` object of the OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries; [`DEFAULT_PATH`] is added when none sets `PATH`.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
}

/// What a file in an image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// Read from the host when the layer is written (one file in memory at a time).
    HostFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Content),
    Symlink(String),
}

/// One file, directory or symlink of an image, at `path` relative to the image's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    /// Permission bits including setuid/setgid/sticky (`0o7777`); ignored for symlinks.
    pub mode: u32,
    pub kind: EntryKind,
}

impl Entry {
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Self {
            path: path.into(),
            mode,
            kind: EntryKind::Dir,
        }
    }

    pub fn file(path: impl Into<String>, mode: u32, data: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            mode,
            kind: EntryKind::File(Content::Bytes(data.into())),
        }
    }

    pub fn host_file(path: impl Into<String>, mode: u32, host: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            mode,
            kind: EntryKind::File(Content::HostFile(host.into())),
        }
    }

    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            mode: 0o777,
            kind: EntryKind::Symlink(target.into()),
        }
    }
}

/// A built image archive.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The full, normalized image name (`localhost/x:tag`).
    pub name: String,
    /// `sha256:…` of the manifest: the image's identity in containerd.
    pub manifest_digest: String,
    /// The tar holding the OCI image layout.
    pub bytes: Vec<u8>,
}

/// Normalizes an image reference the way the kubelet and containerd's CRI look names up:
/// `x` → `docker.io/library/x:latest`, `localhost/x` → `localhost/x:latest`. A name with a digest
/// is refused: the digest of what we build is not known in advance.
pub fn normalize_name(name: &str) -> Result<String> {
    let bad = |reason| ImageError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.contains('@') {
        return Err(bad("a built image cannot be named by digest"));
    }
    let last_slash = name.rfind('/');
    let (repo, tag) = match name.rfind(':') {
        Some(colon) if last_slash.is_none_or(|s| colon > s) => (&name[..colon], &name[colon + 1..]),
        _ => (name, "latest"),
    };
    let valid_tag = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid_tag {
        return Err(bad(
            "the tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
        ));
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    let domain = match parts.first() {
        Some(first)
            if parts.len() > 1
                && (first.contains(['.', ':'])
                    || *first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase())) =>
        {
            parts.remove(0)
        }
        _ => "docker.io",
    };
    let valid_domain = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !valid_domain {
        return Err(bad("invalid registry host"));
    }
    for part in &parts {
        let valid = !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !valid {
            return Err(bad(
                "each path component must be lowercase letters, digits and . _ - between them",
            ));
        }
    }
    if domain == "docker.io" && parts.len() == 1 {
        parts.insert(0, "library");
    }
    Ok(format!("{domain}/{}:{tag}", parts.join("/")))
}

/// `localhost/x:tag` → `localhost_x_tag.tar`: the default file name of an archive.
pub fn archive_file_name(name: &str) -> String {
    format!("{}.tar", name.replace(['/', ':', '@'], "_"))
}

/// The host's architecture in OCI terms (what the binaries copied into an image run on).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Cleans an in-image path: no leading `/` or `./`, no `..`, no empty or `.` components.
/// The root itself becomes `""`.
fn clean_path(path: &str) -> Result<String> {
    let bad = |reason| ImageError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.contains('\0') {
        return Err(bad("contains NUL"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("contains ..")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Sorts entries by path, adds missing parent directories (mode 0755) and refuses duplicates.
/// Sorting by the path string puts every directory before what it holds.
fn arrange(entries: Vec<Entry>) -> Result<BTreeMap<String, Entry>> {
    let mut map = BTreeMap::new();
    for mut e in entries {
        let path = clean_path(&e.path)?;
        if path.is_empty() {
            if e.kind == EntryKind::Dir {
                // The root belongs to the snapshotter; its mode is not ours to set.
                continue;
            }
            return Err(ImageError::InvalidPath {
                path: e.path,
                reason: "the root can only be a directory",
            });
        }
        e.path = path.clone();
        if map.insert(path.clone(), e).is_some() {
            return Err(ImageError::Duplicate { path });
        }
    }
    let paths: Vec<String> = map.keys().cloned().collect();
    for path in paths {
        let mut at = path.as_str();
        while let Some(slash) = at.rfind('/') {
            at = &at[..slash];
            match map.get(at) {
                Some(parent) if parent.kind == EntryKind::Dir => break,
                Some(_) => {
                    return Err(ImageError::InvalidPath {
                        path,
                        reason: "a parent is not a directory",
                    });
                }
                None => {
                    map.insert(at.to_string(), Entry::dir(at, 0o755));
                }
            }
        }
    }
    Ok(map)
}

/// Passes bytes through while hashing them: the layer's diff_id is the digest of the
/// uncompressed tar.
struct HashingWriter<W> {
    hasher: Sha256,
    inner: W,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A tar header that says nothing about when or by whom the archive was made.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Appends one entry to a tar; `tar` writes GNU long-name records for paths over 100 bytes.
fn append_entry<W: Write>(tar: &mut tar::Builder<W>, e: &Entry) -> Result<()> {
    let ctx = || format!("write {} into the layer", e.path);
    match &e.kind {
        EntryKind::Dir => {
            let mut h = header(tar::EntryType::Directory, e.mode, 0);
            tar.append_data(&mut h, format!("{}/", e.path), std::io::empty())
                .map_err(io_err(ctx()))?;
        }
        EntryKind::File(Content::Bytes(data)) => {
            let mut h = header(tar::EntryType::Regular, e.mode, data.len() as u64);
            tar.append_data(&mut h, &e.path, data.as_slice())
                .map_err(io_err(ctx()))?;
        }
        EntryKind::File(Content::HostFile(host)) => {
            // Read whole so the size in the header cannot disagree with what follows it.
            let data = std::fs::read(host).map_err(io_err(format!("read {}", host.display())))?;
            let mut h = header(tar::EntryType::Regular, e.mode, data.len() as u64);
            tar.append_data(&mut h, &e.path, data.as_slice())
                .map_err(io_err(ctx()))?;
        }
        EntryKind::Symlink(target) => {
            let mut h = header(tar::EntryType::Symlink, 0o777, 0);
            tar.append_link(&mut h, &e.path, target)
                .map_err(io_err(ctx()))?;
        }
    }
    Ok(())
}

/// The layer: gzip of a tar of `entries`, with the digest of the uncompressed tar (diff_id).
fn build_layer(entries: &BTreeMap<String, Entry>) -> Result<(Vec<u8>, String)> {
    // No file name and mtime 0 in the gzip header, "unknown" OS: same input, same bytes.
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(HashingWriter {
        hasher: Sha256::new(),
        inner: gz,
    });
    for e in entries.values() {
        append_entry(&mut tar, e)?;
    }
    let hw = tar.into_inner().map_err(io_err("finish the layer"))?;
    let diff_id = format!("sha256:{:x}", hw.hasher.finalize());
    let gz = hw.inner.finish().map_err(io_err("compress the layer"))?;
    Ok((gz, diff_id))
}

/// Builds an image archive from files given in memory (or as host paths).
///
/// `name` is normalized with [`normalize_name`]; missing parent directories are added with mode
/// 0755.
pub fn build_archive(name: &str, entries: Vec<Entry>, config: &ImageConfig) -> Result<Archive> {
    let name = normalize_name(name)?;
    for kv in &config.env {
        if kv.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(ImageError::InvalidEnv(kv.clone()));
        }
    }
    let entries = arrange(entries)?;
    let (layer, diff_id) = build_layer(&entries)?;
    let layer_digest = sha256_digest(&layer);

    let mut env = config.env.clone();
    if !env.iter().any(|kv| kv.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let mut run = serde_json::Map::new();
    if !config.entrypoint.is_empty() {
        run.insert("Entrypoint".into(), json!(config.entrypoint));
    }
    if !config.cmd.is_empty() {
        run.insert("Cmd".into(), json!(config.cmd));
    }
    run.insert("Env".into(), json!(env));
    if let Some(wd) = &config.working_dir {
        run.insert("WorkingDir".into(), json!(wd));
    }
    let arch = host_arch();
    let image_config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": run,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created_by": "ketch image build" }],
    }))?;
    let config_digest = sha256_digest(&image_config);

    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": config_digest,
            "size": image_config.len(),
        },
        "layers": [{
            "mediaType": MEDIA_LAYER_GZIP,
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))?;
    let manifest_digest = sha256_digest(&manifest);

    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": { "architecture": arch, "os": "linux" },
            "annotations": {
                ANNOTATION_CONTAINERD_NAME: name,
                ANNOTATION_REF_NAME: name,
            },
        }],
    }))?;

    let mut blobs = BTreeMap::new();
    for (digest, bytes) in [
        (&layer_digest, &layer),
        (&config_digest, &image_config),
        (&manifest_digest, &manifest),
    ] {
        let hex = digest.trim_start_matches("sha256:");
        blobs.insert(format!("blobs/sha256/{hex}"), bytes.as_slice());
    }
    let mut out = tar::Builder::new(Vec::new());
    for e in [
        Entry::file(
            "oci-layout",
            0o644,
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        Entry::file("index.json", 0o644, index),
        Entry::dir("blobs", 0o755),
        Entry::dir("blobs/sha256", 0o755),
    ] {
        append_entry(&mut out, &e)?;
    }
    for (path, bytes) in blobs {
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        out.append_data(&mut h, &path, bytes)
            .map_err(io_err(format!("write {path}")))?;
    }
    let bytes = out.into_inner().map_err(io_err("finish the archive"))?;
    Ok(Archive {
        name,
        manifest_digest,
        bytes,
    })
}

/// Writes an archive to `path` through a temporary file, so a reader never sees half of one.
pub fn write_archive(archive: &Archive, path: &Path) -> Result<()> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("image.tar");
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &archive.bytes).map_err(io_err(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(format!("rename {} to {}", tmp.display(), path.display()))(e)
    })
}

/// Lists a folder as image entries (its root becomes the image's root). Regular files are read
/// when the layer is written; hard links become separate copies; symlinks are kept as they are
/// (not followed). Sockets, FIFOs and device files are refused.
pub fn entries_from_dir(dir: &Path) -> Result<Vec<Entry>> {
    let meta = std::fs::metadata(dir).map_err(io_err(format!("read {}", dir.display())))?;
    if !meta.is_dir() {
        return Err(ImageError::Io {
            context: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    Ok(out)
}

fn walk(host: &Path, rel: &str, out: &mut Vec<Entry>) -> Result<()> {
    let rd = std::fs::read_dir(host).map_err(io_err(format!("read {}", host.display())))?;
    let mut children = Vec::new();
    for item in rd {
        let item = item.map_err(io_err(format!("read {}", host.display())))?;
        children.push(item.path());
    }
    children.sort();
    for path in children {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ImageError::NotUtf8 { path: path.clone() })?;
        let in_image = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta =
            std::fs::symlink_metadata(&path).map_err(io_err(format!("stat {}", path.display())))?;
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&path)
                .map_err(io_err(format!("read link {}", path.display())))?;
            let target = target
                .to_str()
                .ok_or_else(|| ImageError::NotUtf8 { path: path.clone() })?;
            out.push(Entry::symlink(in_image, target));
        } else if ft.is_dir() {
            out.push(Entry::dir(in_image.clone(), mode));
            walk(&path, &in_image, out)?;
        } else if ft.is_file() {
            out.push(Entry::host_file(in_image, mode, path));
        } else {
            let kind = if ft.is_fifo() {
                "FIFO"
            } else if ft.is_socket() {
                "socket"
            } else if ft.is_block_device() {
                "block device"
            } else if ft.is_char_device() {
                "character device"
            } else {
                "special file"
            };
            return Err(ImageError::Unsupported { path, kind });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_like_the_kubelet_does() {
        let n = |s| normalize_name(s).expect(s);
        assert_eq!(n("localhost/x:tag"), "localhost/x:tag");
        assert_eq!(n("localhost/x"), "localhost/x:latest");
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("me/app:1.2"), "docker.io/me/app:1.2");
        assert_eq!(n("reg.example:5000/a/b:v1"), "reg.example:5000/a/b:v1");
        assert_eq!(n("localhost:5000/a"), "localhost:5000/a:latest");
        for bad in [
            "",
            "x/Upper",
            "x:",
            "x@sha256:00",
            "a//b",
            "x:-t",
            "localhost/-x",
        ] {
            assert!(normalize_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn paths_are_cleaned_and_parents_added() {
        let m = arrange(vec![
            Entry::file("/usr/bin/x", 0o755, b"x".to_vec()),
            Entry::dir("./", 0o700),
        ])
        .expect("arrange");
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["usr", "usr/bin", "usr/bin/x"]);
        assert!(arrange(vec![Entry::dir("a/../b", 0o755)]).is_err());
        assert!(arrange(vec![Entry::dir("a", 0o755), Entry::dir("/a/", 0o700)]).is_err());
        assert!(
            arrange(vec![
                Entry::file("a", 0o644, Vec::new()),
                Entry::file("a/b", 0o644, Vec::new())
            ])
            .is_err()
        );
    }

    #[test]
    fn archive_names() {
        assert_eq!(archive_file_name("localhost/x:tag"), "localhost_x_tag.tar");
    }
}
