//! A read-only look at a node's pinned maps, for `ketch bpf …`: opens the pins without loading
//! or attaching anything, so it never disturbs the running agent.

use super::tables::{BackendEntry, CtEntry, read_backends, read_conntrack, read_stats};
use super::{DataplaneError, ServiceEntry, read_services};
use aya::maps::{HashMap, Map, MapData, PerCpuArray};
use ketch_ebpf_common::{self as abi, maps};
use std::path::Path;

pub struct Pinned {
    services: HashMap<MapData, abi::ServiceKey, abi::ServiceValue>,
    backends: HashMap<MapData, u32, abi::Backend>,
    ct: HashMap<MapData, abi::CtKey, abi::CtValue>,
    stats: PerCpuArray<MapData, u64>,
}

fn pinned<T>(dir: &Path, name: &'static str) -> Result<T, DataplaneError>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let data = MapData::from_pin(dir.join(name)).map_err(|e| DataplaneError::map(name, e))?;
    let map = Map::from_map_data(data).map_err(|e| DataplaneError::map(name, e))?;
    T::try_from(map).map_err(|e| DataplaneError::map(name, e))
}

impl Pinned {
    /// Opens the maps pinned under `<bpffs>/maps`.
    pub fn open(bpffs: &Path) -> Result<Pinned, DataplaneError> {
        let dir = bpffs.join("maps");
        Ok(Pinned {
            services: pinned(&dir, maps::SERVICES)?,
            backends: pinned(&dir, maps::BACKENDS)?,
            ct: pinned(&dir, maps::CONNTRACK)?,
            stats: pinned(&dir, maps::STATS)?,
        })
    }

    pub fn services(&self) -> Result<Vec<ServiceEntry>, DataplaneError> {
        read_services(&self.services, &self.backends)
    }

    pub fn backends(&self) -> Result<Vec<BackendEntry>, DataplaneError> {
        read_backends(&self.backends)
    }

    pub fn conntrack(&self) -> Result<Vec<CtEntry>, DataplaneError> {
        read_conntrack(&self.ct)
    }

    /// The programs' counters summed over CPUs, by name.
    pub fn stats(&self) -> Result<Vec<(&'static str, u64)>, DataplaneError> {
        read_stats(&self.stats)
    }
}
