//! Resource arithmetic: what a pod requests and what a node can hold.

use crate::admission::quantity::Quantity as Q;
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// CPU in millicores, the rest in their base units; `pods` counts pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_milli: i64,
    pub memory: i64,
    pub ephemeral: i64,
    pub pods: i64,
    /// Extended resources (`example.com/gpu`), counted as integers.
    pub scalar: BTreeMap<String, i64>,
}

fn milli(q: &Quantity) -> i64 {
    Q::parse(&q.0).map(|q| q.milli_value()).unwrap_or(0)
}

fn value(q: &Quantity) -> i64 {
    Q::parse(&q.0).map(|q| q.value()).unwrap_or(0)
}

impl Resources {
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (k, q) in list.into_iter().flatten() {
            match k.as_str() {
                "cpu" => r.cpu_milli = milli(q),
                "memory" => r.memory = value(q),
                "ephemeral-storage" => r.ephemeral = value(q),
                "pods" => r.pods = value(q),
                k if k.contains('/') || k.starts_with("hugepages-") => {
                    r.scalar.insert(k.to_string(), value(q));
                }
                _ => {}
            }
        }
        r
    }

    pub fn add(&mut self, o: &Resources) {
        self.cpu_milli += o.cpu_milli;
        self.memory += o.memory;
        self.ephemeral += o.ephemeral;
        self.pods += o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.cpu_milli -= o.cpu_milli;
        self.memory -= o.memory;
        self.ephemeral -= o.ephemeral;
        self.pods -= o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    fn max_with(&mut self, o: &Resources) {
        self.cpu_milli = self.cpu_milli.max(o.cpu_milli);
        self.memory = self.memory.max(o.memory);
        self.ephemeral = self.ephemeral.max(o.ephemeral);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }
}

fn container_requests(c: &Container) -> Resources {
    let res = c.resources.as_ref();
    // A limit without a request is the request (API defaulting does the same).
    let mut r = Resources::from_list(res.and_then(|r| r.limits.as_ref()));
    let req = Resources::from_list(res.and_then(|r| r.requests.as_ref()));
    let set = |k: &str| {
        res.and_then(|r| r.requests.as_ref())
            .is_some_and(|m| m.contains_key(k))
    };
    if set("cpu") {
        r.cpu_milli = req.cpu_milli;
    }
    if set("memory") {
        r.memory = req.memory;
    }
    if set("ephemeral-storage") {
        r.ephemeral = req.ephemeral;
    }
    for (k, v) in req.scalar {
        r.scalar.insert(k, v);
    }
    r
}

/// What the scheduler reserves for a pod: the sum of its containers (and restartable init
/// containers), or the largest init container if that is more, plus overhead, plus one pod.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources {
            pods: 1,
            ..Default::default()
        };
    };
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&container_requests(c));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
        } else {
            let mut with_sidecars = r.clone();
            with_sidecars.add(&sidecars);
            init_peak.max_with(&with_sidecars);
        }
    }
    total.add(&sidecars);
    total.max_with(&init_peak);
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total.pods = 1;
    total
}

/// The node's allocatable resources (capacity if allocatable is not reported).
pub fn node_allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or(status.and_then(|s| s.capacity.as_ref()));
    let mut r = Resources::from_list(list);
    if !list.is_some_and(|l| l.contains_key("pods")) {
        r.pods = 110;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    fn container(cpu: &str, mem: &str) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity(cpu.into())),
                    ("memory".to_string(), Quantity(mem.into())),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sums_containers_and_takes_the_init_peak() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![container("250m", "64Mi"), container("0.5", "1Gi")],
                init_containers: Some(vec![container("2", "10Mi")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = pod_requests(&pod);
        assert_eq!(
            r.cpu_milli, 2000,
            "the init container needs more CPU than the sum"
        );
        assert_eq!(r.memory, 64 * 1024 * 1024 + 1024 * 1024 * 1024);
        assert_eq!(r.pods, 1);
    }
}
