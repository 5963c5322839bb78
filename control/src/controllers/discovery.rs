//! What the API serves, from its discovery documents (client-go's
//! `ServerPreferredResources`): the namespace controller and the garbage collector act on every
//! resource the server has, not on a list compiled in.

use kube::discovery::ApiResource;
use std::collections::BTreeSet;

/// One served resource at its group's preferred version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Served {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub verbs: BTreeSet<String>,
}

impl Served {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs.iter().all(|v| self.verbs.contains(*v))
    }

    /// `pods` or `deployments.apps`.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The served resources, and the group versions whose discovery failed (with why).
#[derive(Debug, Default, Clone)]
pub struct Discovered {
    pub resources: Vec<Served>,
    pub failed: Vec<(String, String)>,
}

impl Discovered {
    /// The resource of `apiVersion`/`kind` (a RESTMapper lookup at that exact version).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Served> {
        let (group, version) = split_api_version(api_version);
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// The error message client-go gives for failed groups.
    pub fn failure_message(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .failed
            .iter()
            .map(|(gv, e)| format!("{gv}: {e}"))
            .collect();
        Some(format!(
            "Discovery failed for some groups, {} failing: unable to retrieve the complete list of server APIs: {}",
            self.failed.len(),
            list.join(", ")
        ))
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Reads `/api`, `/apis` and each preferred group version; subresources are left out.
pub async fn discover(client: &kube::Client) -> Result<Discovered, kube::Error> {
    let mut out = Discovered::default();
    let mut versions: Vec<String> = Vec::new();
    let core = client.list_core_api_versions().await?;
    if let Some(v) = core
        .versions
        .iter()
        .find(|v| *v == "v1")
        .or(core.versions.first())
    {
        versions.push(v.clone());
    }
    for g in client.list_api_groups().await?.groups {
        let preferred = g
            .preferred_version
            .map(|p| p.group_version)
            .or_else(|| g.versions.first().map(|v| v.group_version.clone()));
        if let Some(gv) = preferred {
            versions.push(gv);
        }
    }
    for gv in versions {
        let list = if gv.contains('/') {
            client.list_api_group_resources(&gv).await
        } else {
            client.list_core_api_resources(&gv).await
        };
        let list = match list {
            Ok(l) => l,
            Err(e) => {
                out.failed.push((gv, e.to_string()));
                continue;
            }
        };
        let (group, version) = split_api_version(&gv);
        for r in list.resources {
            if r.name.contains('/') {
                continue;
            }
            out.resources.push(Served {
                group: group.to_string(),
                version: version.to_string(),
                kind: r.kind,
                plural: r.name,
                namespaced: r.namespaced,
                verbs: r.verbs.into_iter().collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_resources_at_their_version() {
        let d = Discovered {
            resources: vec![Served {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
                namespaced: true,
                verbs: ["delete", "list"].iter().map(|s| s.to_string()).collect(),
            }],
            failed: vec![],
        };
        let r = d.by_kind("apps/v1", "Deployment").expect("found");
        assert_eq!(r.group_resource(), "deployments.apps");
        assert!(r.supports(&["delete", "list"]) && !r.supports(&["watch"]));
        assert!(d.by_kind("extensions/v1beta1", "Deployment").is_none());
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert!(d.failure_message().is_none());
    }
}
