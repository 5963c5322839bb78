//! Pod volumes on the node: emptyDir (disk or tmpfs), configMap, secret (always tmpfs),
//! downwardAPI, projected (incl. the ServiceAccount token), hostPath, and PVCs bound to hostPath
//! PVs. Files are written as the kubelet's atomic writer does (`..data` symlink swap), so a
//! reader never sees half an update.

use super::config::KubeletConfig;
use base64::Engine;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume,
};
use kube::api::{Api, PostParams};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A problem the user must fix (shown in a `FailedMount` event and the container's waiting reason).
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("mount {path}: {source}")]
    Mount { path: String, source: nix::Error },
    #[error("API: {0}")]
    Api(#[from] kube::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.display().to_string(),
        source,
    }
}

type Token = (String, jiff::Timestamp, jiff::Timestamp);

/// ServiceAccount tokens handed to pods, refreshed well before they expire.
#[derive(Default)]
pub struct TokenCache {
    /// (namespace, service account) → (token, issued, expires).
    tokens: Mutex<HashMap<(String, String), Token>>,
}

impl TokenCache {
    async fn get(
        &self,
        client: &kube::Client,
        pod: &Pod,
        audience: &str,
        seconds: i64,
    ) -> Result<String, VolumeError> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (uid.clone(), audience.to_string());
        let now = jiff::Timestamp::now();
        if let Some((token, issued, expires)) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
        {
            // Renew at 80% of the lifetime, as the kubelet does.
            let life = expires.duration_since(issued).as_secs_f64();
            if now.duration_since(issued).as_secs_f64() < life * 0.8 {
                return Ok(token);
            }
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let mut spec = serde_json::json!({"expirationSeconds": seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": uid}});
        if !audience.is_empty() {
            spec["audiences"] = serde_json::json!([audience]);
        }
        let req = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
        let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &ns);
        let resp: serde_json::Value = api
            .create_subresource::<serde_json::Value, serde_json::Value>(
                "token",
                &sa,
                &PostParams::default(),
                &req,
            )
            .await?;
        let token = resp
            .pointer("/status/token")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        let expires = resp
            .pointer("/status/expirationTimestamp")
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse().ok())
            .unwrap_or(now + jiff::SignedDuration::from_secs(seconds));
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (token.clone(), now, expires));
        Ok(token)
    }

    pub fn forget(&self, uid: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(u, _), _| u != uid);
    }
}

fn volume_dir(cfg: &KubeletConfig, uid: &str, plugin: &str, name: &str) -> PathBuf {
    cfg.pod_dir(uid)
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
        .join(name)
}

fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(m), Some(Ok(p))) => m.dev() != p.dev(),
        _ => false,
    }
}

fn mount_tmpfs(path: &Path, size: Option<&str>) -> Result<(), VolumeError> {
    std::fs::create_dir_all(path).map_err(io(path))?;
    if is_mount_point(path) {
        return Ok(());
    }
    let opts = match size {
        Some(s) => format!("mode=0755,size={s}"),
        None => "mode=0755".to_string(),
    };
    nix::mount::mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|source| VolumeError::Mount {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `files` into `dir` atomically: a new timestamped directory, then `..data` swapped to
/// it, with one symlink per top-level entry. Unchanged content is left alone.
pub fn atomic_write(
    dir: &Path,
    files: &BTreeMap<String, (Vec<u8>, u32)>,
) -> Result<(), VolumeError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        files.hash(&mut h);
        format!("{:x}", h.finish())
    };
    let marker = dir.join("..digest");
    if std::fs::read_to_string(&marker).is_ok_and(|d| d == digest) {
        return Ok(());
    }
    let stamp = format!("..{}", jiff::Timestamp::now().as_nanosecond());
    let staging = dir.join(&stamp);
    for (name, (bytes, mode)) in files {
        let path = staging.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
            .map_err(io(&path))?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&stamp, &tmp_link).map_err(io(&tmp_link))?;
    let data = dir.join("..data");
    let previous = std::fs::read_link(&data).ok();
    std::fs::rename(&tmp_link, &data).map_err(io(&data))?;
    let tops: std::collections::BTreeSet<String> = files
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &link).map_err(io(&link))?;
        }
    }
    // Entries that disappeared lose their link; the old generation goes.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !tops.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Some(old) = previous {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    std::fs::write(&marker, digest).map_err(io(&marker))
}

/// The files of a ConfigMap/Secret-like source (`items` select and rename keys).
fn project(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    what: &str,
    optional: bool,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, VolumeError> {
    let mut out = BTreeMap::new();
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        out.insert(
                            it.path.clone(),
                            (v.clone(), it.mode.map(|m| m as u32).unwrap_or(default_mode)),
                        );
                    }
                    None if optional => {}
                    None => {
                        return Err(VolumeError::Config(format!(
                            "configmap references non-existent config key: {} ({what})",
                            it.key
                        )));
                    }
                }
            }
        }
        _ => {
            for (k, v) in data {
                out.insert(k, (v, default_mode));
            }
        }
    }
    Ok(out)
}

fn configmap_data(cm: ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut d: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.unwrap_or_default() {
        d.insert(k, v.0);
    }
    d
}

fn secret_data(s: Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn downward_files(
    pod: &Pod,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    default_mode: u32,
) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let map_text = |m: Option<&BTreeMap<String, String>>| {
        m.map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
    };
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            match f.field_path.as_str() {
                "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
                "metadata.namespace" => pod.metadata.namespace.clone().unwrap_or_default(),
                "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
                "metadata.labels" => map_text(pod.metadata.labels.as_ref()),
                "metadata.annotations" => map_text(pod.metadata.annotations.as_ref()),
                p => p
                    .strip_prefix("metadata.labels['")
                    .and_then(|k| k.strip_suffix("']"))
                    .and_then(|k| pod.metadata.labels.as_ref()?.get(k).cloned())
                    .or_else(|| {
                        p.strip_prefix("metadata.annotations['")
                            .and_then(|k| k.strip_suffix("']"))
                            .and_then(|k| pod.metadata.annotations.as_ref()?.get(k).cloned())
                    })
                    .unwrap_or_default(),
            }
        } else if let Some(r) = &it.resource_field_ref {
            let c = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .find(|c| Some(&c.name) == r.container_name.as_ref())
                .or_else(|| pod.spec.as_ref().and_then(|s| s.containers.first()));
            let node = super::env::NodeFacts {
                host_ip: String::new(),
                allocatable_cpu_milli: 0,
                allocatable_memory: 0,
            };
            c.and_then(|c| {
                super::env::resource_value(
                    c,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    &node,
                )
            })
            .unwrap_or_default()
        } else {
            continue;
        };
        out.insert(
            it.path.clone(),
            (
                value.into_bytes(),
                it.mode.map(|m| m as u32).unwrap_or(default_mode),
            ),
        );
    }
    out
}

/// Sets up every volume of `pod`; returns volume name → host path. Idempotent: called on every
/// sync, it also refreshes ConfigMap, Secret and token contents.
pub async fn setup(
    client: &kube::Client,
    cfg: &KubeletConfig,
    pod: &Pod,
    tokens: &TokenCache,
) -> Result<HashMap<String, PathBuf>, VolumeError> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut out = HashMap::new();
    let volumes: Vec<Volume> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in volumes {
        let path = if let Some(e) = &v.empty_dir {
            let dir = volume_dir(cfg, &uid, "empty-dir", &v.name);
            if e.medium.as_deref() == Some("Memory") {
                mount_tmpfs(&dir, e.size_limit.as_ref().map(|q| q.0.as_str()))?;
            } else {
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            }
            dir
        } else if let Some(src) = &v.config_map {
            let dir = volume_dir(cfg, &uid, "configmap", &v.name);
            let optional = src.optional == Some(true);
            let data = match cms.get_opt(&src.name).await? {
                Some(cm) => configmap_data(cm),
                None if optional => BTreeMap::new(),
                None => {
                    return Err(VolumeError::Config(format!(
                        "configmap \"{}\" not found",
                        src.name
                    )));
                }
            };
            let files = project(
                data,
                src.items.as_ref(),
                src.default_mode.unwrap_or(0o644) as u32,
                &src.name,
                optional,
            )?;
            atomic_write(&dir, &files)?;
            dir
        } else if let Some(src) = &v.secret {
            let dir = volume_dir(cfg, &uid, "secret", &v.name);
            // Secrets never touch the disk.
            mount_tmpfs(&dir, None)?;
            let name = src.secret_name.clone().unwrap_or_default();
            let optional = src.optional == Some(true);
            let data = match secrets.get_opt(&name).await? {
                Some(s) => secret_data(s),
                None if optional => BTreeMap::new(),
                None => return Err(VolumeError::Config(format!("secret \"{name}\" not found"))),
            };
            let files = project(
                data,
                src.items.as_ref(),
                src.default_mode.unwrap_or(0o644) as u32,
                &name,
                optional,
            )?;
            atomic_write(&dir, &files)?;
            dir
        } else if let Some(src) = &v.downward_api {
            let dir = volume_dir(cfg, &uid, "downward-api", &v.name);
            let files = downward_files(
                pod,
                src.items.as_deref().unwrap_or_default(),
                src.default_mode.unwrap_or(0o644) as u32,
            );
            atomic_write(&dir, &files)?;
            dir
        } else if let Some(src) = &v.projected {
            let dir = volume_dir(cfg, &uid, "projected", &v.name);
            mount_tmpfs(&dir, None)?;
            let mode = src.default_mode.unwrap_or(0o644) as u32;
            let mut files = BTreeMap::new();
            for s in src.sources.iter().flatten() {
                if let Some(t) = &s.service_account_token {
                    let token = tokens
                        .get(
                            client,
                            pod,
                            t.audience.as_deref().unwrap_or(""),
                            t.expiration_seconds.unwrap_or(3607),
                        )
                        .await?;
                    files.insert(t.path.clone(), (token.into_bytes(), mode));
                }
                if let Some(c) = &s.config_map {
                    let optional = c.optional == Some(true);
                    match cms.get_opt(&c.name).await? {
                        Some(cm) => files.extend(project(
                            configmap_data(cm),
                            c.items.as_ref(),
                            mode,
                            &c.name,
                            optional,
                        )?),
                        None if optional => {}
                        None => {
                            return Err(VolumeError::Config(format!(
                                "configmap \"{}\" not found",
                                c.name
                            )));
                        }
                    }
                }
                if let Some(sec) = &s.secret {
                    let optional = sec.optional == Some(true);
                    match secrets.get_opt(&sec.name).await? {
                        Some(x) => files.extend(project(
                            secret_data(x),
                            sec.items.as_ref(),
                            mode,
                            &sec.name,
                            optional,
                        )?),
                        None if optional => {}
                        None => {
                            return Err(VolumeError::Config(format!(
                                "secret \"{}\" not found",
                                sec.name
                            )));
                        }
                    }
                }
                if let Some(d) = &s.downward_api {
                    files.extend(downward_files(
                        pod,
                        d.items.as_deref().unwrap_or_default(),
                        mode,
                    ));
                }
            }
            atomic_write(&dir, &files)?;
            dir
        } else if let Some(h) = &v.host_path {
            let p = PathBuf::from(&h.path);
            match h.type_.as_deref().unwrap_or("") {
                "DirectoryOrCreate" => std::fs::create_dir_all(&p).map_err(io(&p))?,
                "FileOrCreate" if !p.exists() => {
                    if let Some(parent) = p.parent() {
                        std::fs::create_dir_all(parent).map_err(io(parent))?;
                    }
                    std::fs::write(&p, b"").map_err(io(&p))?;
                }
                "Directory" if !p.is_dir() => {
                    return Err(VolumeError::Config(format!(
                        "hostPath type check failed: {} is not a directory",
                        h.path
                    )));
                }
                "File" if !p.is_file() => {
                    return Err(VolumeError::Config(format!(
                        "hostPath type check failed: {} is not a file",
                        h.path
                    )));
                }
                _ => {}
            }
            p
        } else if let Some(claim) = &v.persistent_volume_claim {
            let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
            let pvc = pvcs.get_opt(&claim.claim_name).await?.ok_or_else(|| {
                VolumeError::Config(format!(
                    "persistentvolumeclaim \"{}\" not found",
                    claim.claim_name
                ))
            })?;
            let pv_name = pvc
                .spec
                .and_then(|s| s.volume_name)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    VolumeError::Config(format!(
                        "persistentvolumeclaim \"{}\" is not bound",
                        claim.claim_name
                    ))
                })?;
            let pvs: Api<PersistentVolume> = Api::all(client.clone());
            let pv = pvs.get(&pv_name).await?;
            let spec = pv.spec.unwrap_or_default();
            let path = spec
                .host_path
                .map(|h| h.path)
                .or(spec.local.map(|l| l.path))
                .ok_or_else(|| {
                    VolumeError::Config(format!(
                        "persistentvolume \"{pv_name}\" is neither hostPath nor local"
                    ))
                })?;
            let p = PathBuf::from(path);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
            p
        } else {
            return Err(VolumeError::Config(format!(
                "volume \"{}\": this volume type is not supported on ketch nodes",
                v.name
            )));
        };
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

/// ConfigMap, Secret, downward API and projected volumes are always mounted read-only (the
/// kubelet writes them; a container's write would be lost at the next update).
fn is_api_data(volume: &Path) -> bool {
    volume
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .is_some_and(|n| {
            ["configmap", "secret", "downward-api", "projected"]
                .iter()
                .any(|p| n == format!("kubernetes.io~{p}"))
        })
}

/// The CRI mounts of a container: its volumeMounts (with subPath) and its termination-log file.
pub fn mounts_for(
    c: &Container,
    volumes: &HashMap<String, PathBuf>,
    termination_log: &Path,
) -> Result<Vec<cri::Mount>, VolumeError> {
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let base = volumes.get(&m.name).ok_or_else(|| {
            VolumeError::Config(format!(
                "volume \"{}\" not found for mount {}",
                m.name, m.mount_path
            ))
        })?;
        let host = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) if sub.split('/').any(|p| p == "..") => {
                return Err(VolumeError::Config(format!(
                    "subPath {sub:?} must not contain '..'"
                )));
            }
            Some(sub) => {
                let p = base.join(sub);
                if !p.exists() {
                    std::fs::create_dir_all(&p).map_err(io(&p))?;
                }
                p
            }
            None => base.clone(),
        };
        out.push(cri::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: m.read_only.unwrap_or(false) || is_api_data(base),
            propagation: cri::MountPropagation::PropagationPrivate as i32,
            ..Default::default()
        });
    }
    let tm = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    if !out.iter().any(|m| m.container_path == tm) {
        out.push(cri::Mount {
            container_path: tm,
            host_path: termination_log.display().to_string(),
            readonly: false,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Removes a pod's volumes (unmounting tmpfs) and its directory.
pub fn teardown(cfg: &KubeletConfig, uid: &str) {
    let dir = cfg.pod_dir(uid);
    let vols = dir.join("volumes");
    if let Ok(plugins) = std::fs::read_dir(&vols) {
        for p in plugins.flatten() {
            if let Ok(vs) = std::fs::read_dir(p.path()) {
                for v in vs.flatten() {
                    if is_mount_point(&v.path())
                        && let Err(e) =
                            nix::mount::umount2(&v.path(), nix::mount::MntFlags::MNT_DETACH)
                    {
                        tracing::warn!(path = %v.path().display(), error = %e, "unmounting a volume failed");
                    }
                }
            }
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), error = %e, "removing the pod directory failed");
    }
}

/// Decodes base64 (for tests of secret contents).
pub fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_data_volumes_mount_read_only_and_others_as_asked() {
        let vols: HashMap<String, PathBuf> = [
            ("cm", "/k/pods/u/volumes/kubernetes.io~configmap/cm"),
            ("tok", "/k/pods/u/volumes/kubernetes.io~projected/tok"),
            (
                "scratch",
                "/k/pods/u/volumes/kubernetes.io~empty-dir/scratch",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
        .collect();
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "volumeMounts": [
                {"name": "cm", "mountPath": "/cfg"},
                {"name": "tok", "mountPath": "/tok", "readOnly": false},
                {"name": "scratch", "mountPath": "/s"},
                {"name": "scratch", "mountPath": "/s2", "readOnly": true},
            ]
        }))
        .expect("container");
        let m = mounts_for(&c, &vols, Path::new("/k/log")).expect("mounts");
        let ro: Vec<(&str, bool)> = m
            .iter()
            .map(|m| (m.container_path.as_str(), m.readonly))
            .collect();
        assert_eq!(
            ro,
            vec![
                ("/cfg", true),
                ("/tok", true),
                ("/s", false),
                ("/s2", true),
                ("/dev/termination-log", false)
            ]
        );
    }

    #[test]
    fn atomic_writes_swap_data_and_keep_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = BTreeMap::from([
            ("a".to_string(), (b"1".to_vec(), 0o644)),
            ("sub/b".to_string(), (b"2".to_vec(), 0o600)),
        ]);
        atomic_write(dir.path(), &files).expect("write");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a")).expect("a"),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/b")).expect("b"),
            "2"
        );
        let first = std::fs::read_link(dir.path().join("..data")).expect("link");
        files.insert("a".into(), (b"changed".to_vec(), 0o644));
        files.remove("sub/b");
        atomic_write(dir.path(), &files).expect("rewrite");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a")).expect("a"),
            "changed"
        );
        assert!(!dir.path().join("sub").exists(), "a removed key disappears");
        assert!(
            !dir.path().join(first).exists(),
            "the old generation is gone"
        );
    }
}
