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

/// Stored form: the object in `r`'s storage form, without `resourceVersion` (the revision is
/// the version). Written without copying the object: every write goes through here.
pub fn encode(r: &Resource, obj: &Value) -> Vec<u8> {
    if convert::converts(r) {
        return encode_stored(&convert::to_stored(r, obj.clone()));
    }
    encode_stored(obj)
}

fn encode_stored(obj: &Value) -> Vec<u8> {
    serde_json::to_vec(&WithoutVersion(obj)).unwrap_or_default()
}

/// An object serialized with `metadata.resourceVersion` left out.
struct WithoutVersion<'a>(&'a Value);

/// A metadata map serialized without its `resourceVersion`.
struct MetadataWithoutVersion<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for WithoutVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(m) = self.0 else {
            return self.0.serialize(s);
        };
        let mut out = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            match (k.as_str(), v) {
                ("metadata", Value::Object(meta)) => {
                    out.serialize_entry(k, &MetadataWithoutVersion(meta))?
                }
                _ => out.serialize_entry(k, v)?,
            }
        }
        out.end()
    }
}

impl serde::Serialize for MetadataWithoutVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if k != "resourceVersion" {
                out.serialize_entry(k, v)?;
            }
        }
        out.end()
    }
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
            ops: vec![Op::Put(key, encode(r, &obj))],
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
            ops: vec![Op::Put(key, encode(r, &obj))],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::resources::find;
    use serde_json::json;

    fn kv(value: Vec<u8>, rev: i64) -> Kv {
        Kv {
            key: "/registry/pods/default/p".into(),
            value,
            create_revision: rev,
            mod_revision: rev,
        }
    }

    #[test]
    fn the_stored_form_leaves_out_only_the_resource_version() {
        let pods = find("", "v1", "pods").expect("pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "resourceVersion": "7", "labels": {"resourceVersion": "kept"}, "uid": "u"},
            "spec": {"nodeName": "n1", "metadata": {"resourceVersion": "kept too"}}});
        let bytes = encode(pods, &pod);
        let stored: Value = serde_json::from_slice(&bytes).expect("json");
        let mut want = pod.clone();
        want["metadata"]
            .as_object_mut()
            .expect("metadata")
            .shift_remove("resourceVersion");
        assert_eq!(stored, want);
        // Keys keep their order, so the stored bytes read as the object was written.
        assert_eq!(
            String::from_utf8(bytes.clone()).expect("utf8"),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"resourceVersion":"kept"},"uid":"u"},"spec":{"nodeName":"n1","metadata":{"resourceVersion":"kept too"}}}"#
        );
        // Reading it back stamps the revision as the version.
        assert_eq!(
            decode(&kv(bytes, 42)).expect("decodes")["metadata"]["resourceVersion"],
            "42"
        );
    }

    #[test]
    fn events_are_stored_in_the_core_form() {
        let r = find("events.k8s.io", "v1", "events").expect("events.k8s.io");
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "resourceVersion": "3"}, "note": "hi"});
        let stored: Value = serde_json::from_slice(&encode(r, &ev)).expect("json");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["message"], "hi");
        assert!(stored["metadata"].get("resourceVersion").is_none());
    }
}
