//! The authorizer: an RBAC index kept current from the watch caches of the four RBAC kinds.

use super::rbac::RbacIndex;
pub use super::rbac::{Attributes, Decision};
use crate::registry::meta;
use crate::registry::resources;
use crate::registry::store::Store;
use crate::storage::StorageError;
use crate::storage::cache::{EventKind, WatchCache};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const RBAC_KINDS: &[(&str, &str)] = &[
    ("roles", "Role"),
    ("clusterroles", "ClusterRole"),
    ("rolebindings", "RoleBinding"),
    ("clusterrolebindings", "ClusterRoleBinding"),
];

fn upsert(idx: &mut RbacIndex, kind: &str, obj: &serde_json::Value) {
    if let Err(e) = idx.upsert(kind, obj) {
        tracing::warn!(kind, name = meta::name(obj), error = %e, "ignoring an RBAC object");
    }
}

pub struct Authorizer {
    index: RwLock<RbacIndex>,
}

impl Authorizer {
    /// Loads every RBAC object and follows their changes.
    pub async fn start(
        store: &Store,
        caches: &HashMap<String, Arc<WatchCache>>,
    ) -> Result<Arc<Authorizer>, StorageError> {
        let authorizer = Arc::new(Authorizer {
            index: RwLock::new(RbacIndex::new()),
        });
        for (plural, kind) in RBAC_KINDS {
            let Some(r) = resources::find("rbac.authorization.k8s.io", "v1", plural) else {
                continue;
            };
            let Some(cache) = caches.get(&r.key_prefix()) else {
                continue;
            };
            let from = cache.latest();
            let page = store
                .list(r, "", 0, None, from, &|_| true)
                .await
                .map_err(|e| StorageError::Other(e.message))?;
            {
                let mut idx = authorizer.write();
                for obj in &page.items {
                    upsert(&mut idx, kind, obj);
                }
            }
            let Ok(mut watcher) = cache.subscribe(page.revision) else {
                return Err(StorageError::Other(
                    "RBAC cache moved on during start".into(),
                ));
            };
            let weak = Arc::downgrade(&authorizer);
            let kind = *kind;
            let cache = cache.clone();
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let batch = match watcher.next().await {
                        Ok(b) => b,
                        Err(_) => {
                            // Fell out of the cache window: reload this kind from scratch.
                            tracing::warn!(kind, "RBAC watch fell behind; resynchronising");
                            let from = cache.latest();
                            let Ok(page) = store.list(r, "", 0, None, from, &|_| true).await else {
                                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                                continue;
                            };
                            let Some(a) = weak.upgrade() else { return };
                            let mut idx = a.write();
                            idx.clear_kind(kind);
                            for obj in &page.items {
                                upsert(&mut idx, kind, obj);
                            }
                            drop(idx);
                            if let Ok(w) = cache.subscribe(page.revision) {
                                watcher = w;
                            }
                            continue;
                        }
                    };
                    let Some(a) = weak.upgrade() else { return };
                    let mut idx = a.write();
                    for ev in batch {
                        match ev.kind {
                            EventKind::Deleted => {
                                let _ = idx.remove(
                                    kind,
                                    meta::namespace(&ev.object),
                                    meta::name(&ev.object),
                                );
                            }
                            _ => upsert(&mut idx, kind, &ev.object),
                        }
                    }
                }
            });
        }
        Ok(authorizer)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RbacIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        // The superuser group needs no lookup (and works before any RBAC object exists).
        if a.user.in_group("system:masters") {
            return Decision::Allow {
                reason: "system:masters".into(),
            };
        }
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .authorize(a)
    }

    pub fn rules_for(
        &self,
        user: &super::authn::UserInfo,
        namespace: &str,
    ) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .rules_for(user, namespace)
    }
}
