//! The CNI plugin: veth pairs over rtnetlink, IPAM from the node's podCIDR.
