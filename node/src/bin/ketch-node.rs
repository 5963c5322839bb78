//! `ketch-node`: the node agent.

fn main() {}
