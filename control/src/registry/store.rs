//! Objects over storage: encoding, and get/list/create/update/delete with resourceVersion
//! semantics. Every write is one storage transaction, so nothing is ever half-written.

use super::convert;
use super::meta;
use super::resources::Resource;
use crate::api::status::{ApiError, ApiResult};
use crate::storage::{Condition, Kv, Op, Storage, Txn, TxnOutcome};
use base64::Engine;
use serde_json::Value;
use std::sync::Arc;

/// Stored form: the object without `resourceVersion` (the revision is the version).
pub fn encode(obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&o).unwrap_or_default()
}

pub fn decode(kv: &Kv) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value).ok()?;
    meta::set_resource_version(&mut v, kv.mod_revision);
    Some(v)
}

/// Extra keys written in the same transaction as an object (allocations of ClusterIPs and
/// NodePorts live beside the Service that holds them).
#[derive(Debug, Default, Clone)]
pub struct Extra {
    pub conditions: Vec<Condition>,
    pub ops: Vec<Op>,
}

#[derive(Clone)]
pub struct Store {
    pub storage: Arc<dyn Storage>,
}

/// One page of a list.
pub struct Page {
    pub items: Vec<Value>,
    pub revision: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// Where a paged list resumes.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

impl Store {
    pub async fn get(&self, r: &Resource, namespace: &str, name: &str) -> ApiResult<Option<Value>> {
        let (kv, _) = self.storage.get(&r.key(namespace, name)).await?;
        Ok(kv
            .as_ref()
            .and_then(decode)
            .map(|o| convert::from_stored(r, o)))
    }

    pub async fn get_existing(
        &self,
        r: &Resource,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Value> {
        self.get(r, namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(r, name))
    }

    /// A page of objects in `namespace` ("" = all) that `keep` accepts. Keeps reading storage
    /// pages until `limit` matching objects are found, as kube-apiserver does.
    pub async fn list(
        &self,
        r: &Resource,
        namespace: &str,
        limit: i64,
        continue_token: Option<&str>,
        revision: i64,
        keep: &(dyn Fn(&Value) -> bool + Send + Sync),
    ) -> ApiResult<Page> {
        let prefix = r.namespace_prefix(namespace);
        let (mut start, mut revision) = match continue_token {
            Some(t) => {
                let tok = parse_continue(t)?;
                (format!("{prefix}{}", tok.start), tok.rv)
            }
            None => (String::new(), revision),
        };
        let mut items = Vec::new();
        loop {
            let want = if limit > 0 {
                (limit - items.len() as i64).max(1)
            } else {
                0
            };
            let page = self.storage.list(&prefix, &start, want, revision).await.map_err(|e| match e {
                crate::storage::StorageError::Compacted { .. } if continue_token.is_some() => ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ),
                e => e.into(),
            })?;
            revision = page.revision;
            let last_key = page.kvs.last().map(|kv| kv.key.clone());
            for kv in &page.kvs {
                if let Some(obj) = decode(kv).map(|o| convert::from_stored(r, o))
                    && keep(&obj)
                {
                    items.push(obj);
                }
            }
            let full = limit > 0 && items.len() as i64 >= limit;
            match (page.more, last_key) {
                (true, Some(last)) if full => {
                    let token = ContinueToken {
                        v: "meta.k8s.io/v1".into(),
                        rv: revision,
                        start: format!("{}\u{0}", last.strip_prefix(&prefix).unwrap_or(&last)),
                    };
                    let json = serde_json::to_vec(&token).unwrap_or_default();
                    return Ok(Page {
                        items,
                        revision,
                        continue_token: Some(
                            base64::engine::general_purpose::STANDARD.encode(json),
                        ),
                        remaining: None,
                    });
                }
                (true, Some(last)) => start = format!("{last}\u{0}"),
                _ => {
                    return Ok(Page {
                        items,
                        revision,
                        continue_token: None,
                        remaining: None,
                    });
                }
            }
        }
    }

    /// Creates `obj` (already complete: name, uid, timestamps) and returns it with its version.
    pub async fn create(&self, r: &Resource, mut obj: Value, extra: Extra) -> ApiResult<Value> {
        let key = r.key(meta::namespace(&obj), meta::name(&obj));
        let mut txn = Txn {
            conditions: vec![Condition::Absent(key.clone())],
            ops: vec![Op::Put(key, encode(&convert::to_stored(r, obj.clone())))],
        };
        txn.conditions.extend(extra.conditions);
        txn.ops.extend(extra.ops);
        match self.storage.txn(txn).await? {
            TxnOutcome::Committed { revision } => {
                meta::set_resource_version(&mut obj, revision);
                Ok(obj)
            }
            TxnOutcome::Failed { current } => {
                if current.first().is_some_and(Option::is_some) {
                    Err(ApiError::already_exists(r, meta::name(&obj)))
                } else {
                    Err(ApiError::conflict(
                        r,
                        meta::name(&obj),
                        "a resource it depends on changed; try again",
                    ))
                }
            }
        }
    }

    /// Replaces the object if it is still at `expected` revision.
    pub async fn update(
        &self,
        r: &Resource,
        mut obj: Value,
        expected: i64,
        extra: Extra,
    ) -> ApiResult<Value> {
        let key = r.key(meta::namespace(&obj), meta::name(&obj));
        let mut txn = Txn {
            conditions: vec![Condition::ModRevision(key.clone(), expected)],
            ops: vec![Op::Put(key, encode(&convert::to_stored(r, obj.clone())))],
        };
        txn.conditions.extend(extra.conditions);
        txn.ops.extend(extra.ops);
        match self.storage.txn(txn).await? {
            TxnOutcome::Committed { revision } => {
                meta::set_resource_version(&mut obj, revision);
                Ok(obj)
            }
            TxnOutcome::Failed { current } => match current.first() {
                Some(None) => Err(ApiError::not_found(r, meta::name(&obj))),
                _ => Err(ApiError::stale(r, meta::name(&obj))),
            },
        }
    }

    /// Deletes the object if it is still at `expected` revision; returns the deletion revision.
    pub async fn delete(
        &self,
        r: &Resource,
        namespace: &str,
        name: &str,
        expected: i64,
        extra: Extra,
    ) -> ApiResult<i64> {
        let key = r.key(namespace, name);
        let mut txn = Txn {
            conditions: vec![Condition::ModRevision(key.clone(), expected)],
            ops: vec![Op::Delete(key)],
        };
        txn.conditions.extend(extra.conditions);
        txn.ops.extend(extra.ops);
        match self.storage.txn(txn).await? {
            TxnOutcome::Committed { revision } => Ok(revision),
            TxnOutcome::Failed { current } => match current.first() {
                Some(None) => Err(ApiError::not_found(r, name)),
                _ => Err(ApiError::stale(r, name)),
            },
        }
    }
}

fn parse_continue(token: &str) -> ApiResult<ContinueToken> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(token))
        .map_err(|_| bad())?;
    let tok: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if tok.v != "meta.k8s.io/v1" || tok.rv <= 0 || tok.start.contains("..") {
        return Err(bad());
    }
    Ok(tok)
}
