//! What this agent has written into the Service maps, by Service, so that a change to one
//! Service or one of its EndpointSlices rewrites that Service's frontends only: the cost of an
//! endpoint change does not grow with the number of Services.

use super::desired;
use super::{SERVICE_NAME_LABEL, ServiceKey, frontend_label};
use crate::dataplane::{Dataplane, Frontend, Service};
use k8s_openapi::api::core::v1::Service as KubeService;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The `(namespace, name)` of the Service an EndpointSlice belongs to (by its label).
pub(super) fn slice_service(s: &EndpointSlice) -> Option<ServiceKey> {
    let name = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((
        s.metadata.namespace.clone().unwrap_or_default(),
        name.clone(),
    ))
}

/// The EndpointSlices of the Services `want` accepts, by Service.
pub(super) fn group_slices(
    slices: &Store<EndpointSlice>,
    want: impl Fn(&ServiceKey) -> bool,
) -> HashMap<ServiceKey, Vec<Arc<EndpointSlice>>> {
    let mut grouped: HashMap<ServiceKey, Vec<Arc<EndpointSlice>>> = HashMap::new();
    for s in slices.state() {
        if let Some(key) = slice_service(&s).filter(|k| want(k)) {
            grouped.entry(key).or_default().push(s);
        }
    }
    grouped
}

#[derive(Default)]
pub(super) struct Programmed {
    /// Every frontend in the maps (as far as this agent knows) and what it holds.
    applied: HashMap<Frontend, Service>,
    /// The frontends of each Service.
    by_service: HashMap<ServiceKey, Vec<Frontend>>,
    /// `ketch bpf` names: frontend label → `namespace/name`.
    names: BTreeMap<String, String>,
    names_changed: bool,
}

impl Programmed {
    /// Makes the maps hold what every Service and EndpointSlice (`grouped` by Service)
    /// describes. On the first call
    /// (`adopt`), the frontends an earlier agent pinned are the starting point: those no
    /// Service wants are deleted and the rest are rewritten once, nothing is flushed.
    /// Returns the number of map writes.
    pub(super) fn sync_all(
        &mut self,
        dp: &mut Dataplane,
        services: &Store<KubeService>,
        grouped: &HashMap<ServiceKey, Vec<Arc<EndpointSlice>>>,
        node: &str,
        adopt: bool,
    ) -> usize {
        let mut want: HashMap<ServiceKey, Vec<Service>> = HashMap::new();
        for svc in services.state() {
            let key = (
                svc.metadata.namespace.clone().unwrap_or_default(),
                svc.metadata.name.clone().unwrap_or_default(),
            );
            let mine: Vec<&EndpointSlice> = grouped
                .get(&key)
                .map(|v| v.iter().map(|s| s.as_ref()).collect())
                .unwrap_or_default();
            want.insert(key, desired::frontends(&svc, &mine, node));
        }
        let mut writes = 0;
        if adopt {
            let wanted: std::collections::HashSet<Frontend> = want
                .values()
                .flatten()
                .map(Service::stored_frontend)
                .collect();
            match dp.list_services() {
                Ok(existing) => {
                    for e in existing
                        .into_iter()
                        .filter(|e| !wanted.contains(&e.frontend))
                    {
                        if let Err(err) = dp.delete_service(&e.frontend) {
                            tracing::warn!(frontend = ?e.frontend, error = %err, "deleting a stale frontend failed");
                        }
                        writes += 1;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the pinned service map failed"),
            }
        }
        let gone: Vec<ServiceKey> = self
            .by_service
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            writes += self.apply(dp, &key, Vec::new());
        }
        for (key, frontends) in want {
            writes += self.apply(dp, &key, frontends);
        }
        writes
    }

    /// Makes the maps hold what the Services `keys` (present or deleted) and their
    /// EndpointSlices describe now; `slices` are those of these Services, by Service.
    /// Returns the number of map writes.
    pub(super) fn sync_some(
        &mut self,
        dp: &mut Dataplane,
        keys: &HashSet<ServiceKey>,
        services: &Store<KubeService>,
        slices: &HashMap<ServiceKey, Vec<Arc<EndpointSlice>>>,
        node: &str,
    ) -> usize {
        let mut writes = 0;
        for key in keys {
            let frontends = match services.get(&ObjectRef::new(&key.1).within(&key.0)) {
                Some(svc) => {
                    let mine: Vec<&EndpointSlice> = slices
                        .get(key)
                        .map(|v| v.iter().map(|s| s.as_ref()).collect())
                        .unwrap_or_default();
                    desired::frontends(&svc, &mine, node)
                }
                None => Vec::new(),
            };
            writes += self.apply(dp, key, frontends);
        }
        writes
    }

    /// Replaces Service `key`'s frontends with `want`, writing only what differs from what
    /// this agent wrote (after a start, everything: adopted pins are rewritten once).
    fn apply(&mut self, dp: &mut Dataplane, key: &ServiceKey, want: Vec<Service>) -> usize {
        let mut writes = 0;
        let new: Vec<Frontend> = want.iter().map(Service::stored_frontend).collect();
        for f in self.by_service.remove(key).unwrap_or_default() {
            if new.contains(&f) {
                continue;
            }
            if let Err(e) = dp.delete_service(&f) {
                tracing::warn!(frontend = ?f, error = %e, "deleting a frontend failed");
            }
            self.applied.remove(&f);
            self.names_changed |= self.names.remove(&frontend_label(&f)).is_some();
            writes += 1;
        }
        let owner = format!("{}/{}", key.0, key.1);
        for s in want {
            let f = s.stored_frontend();
            let label = frontend_label(&f);
            if self.names.get(&label) != Some(&owner) {
                self.names.insert(label, owner.clone());
                self.names_changed = true;
            }
            if self.applied.get(&f) == Some(&s) {
                continue;
            }
            match dp.upsert_service(&s) {
                Ok(_) => {
                    self.applied.insert(f, s);
                }
                Err(e) => tracing::warn!(frontend = ?f, error = %e, "writing a frontend failed"),
            }
            writes += 1;
        }
        if !new.is_empty() {
            self.by_service.insert(key.clone(), new);
        }
        writes
    }

    pub(super) fn frontends(&self) -> usize {
        self.applied.len()
    }

    /// The names, if they changed since the last call.
    pub(super) fn take_names(&mut self) -> Option<&BTreeMap<String, String>> {
        std::mem::take(&mut self.names_changed).then_some(&self.names)
    }
}
