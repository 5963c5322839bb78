//! What `ketch up` started, recorded in `<state-dir>/state.json` so that `ketch down` stops
//! exactly those processes and nothing else (a pid is only trusted together with its start time).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    pub name: String,
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
    pub log: PathBuf,
    /// How it was started, so that `ketch up` can start it again after it died.
    #[serde(default)]
    pub program: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
}

/// One local node: a network namespace on the bridge, with its own containerd and ketch-node
/// (their processes are in [`State::processes`] as `containerd-<name>` and `ketch-node-<name>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeState {
    pub name: String,
    pub ip: Ipv4Addr,
    pub netns: String,
    /// The host end of the node's link to the bridge.
    pub veth: String,
    /// containerd's root and state, the kubelet's root, credentials, CNI config and IPAM.
    pub dir: PathBuf,
    /// Routed to from the root namespace once the node has it.
    #[serde(default)]
    pub pod_cidr: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub processes: Vec<Proc>,
    pub api_url: String,
    pub etcd_servers: Vec<String>,
    pub kubeconfig: PathBuf,
    /// Recorded before each is made, so teardown after a crash finds half-made ones too.
    #[serde(default)]
    pub nodes: Vec<NodeState>,
    /// The bridge `ketch up` made (and so `down` removes).
    #[serde(default)]
    pub bridge: Option<String>,
    /// Shared folders the runtime writes to that did not exist before `up` (removed by `down`).
    #[serde(default)]
    pub created_dirs: Vec<PathBuf>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

pub fn load(dir: &Path) -> anyhow::Result<Option<State>> {
    let p = path(dir);
    match std::fs::read_to_string(&p) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", p.display())),
    }
}

pub fn save(dir: &Path, state: &State) -> anyhow::Result<()> {
    let p = path(dir);
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(state)?)?;
    std::fs::rename(&tmp, &p)?;
    Ok(())
}

pub fn remove(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path(dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The start time of a live process, or `None` if there is no such process.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are space-separated.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so starttime (field 22) is index 19 here.
    let state = fields.first()?;
    if *state == "Z" || *state == "X" {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Proc {
    /// The process we started is still the one running under this pid.
    pub fn alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_recycled_pid_is_not() {
        let pid = std::process::id() as i32;
        let ticks = start_ticks(pid).expect("own stat");
        let me = Proc {
            name: "me".into(),
            pid,
            start_ticks: ticks,
            log: PathBuf::new(),
            program: PathBuf::new(),
            args: Vec::new(),
        };
        assert!(me.alive());
        let imposter = Proc {
            start_ticks: ticks + 1,
            ..me.clone()
        };
        assert!(!imposter.alive());
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(dir.path()).expect("load").is_none());
        let s = State {
            api_url: "https://127.0.0.1:6443".into(),
            ..State::default()
        };
        save(dir.path(), &s).expect("save");
        assert_eq!(
            load(dir.path()).expect("load").expect("some").api_url,
            s.api_url
        );
        remove(dir.path()).expect("remove");
        assert!(load(dir.path()).expect("load").is_none());
    }
}
