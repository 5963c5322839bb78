//! Content negotiation: what the client wants back (`Accept`) and what it sent (`Content-Type`).

/// The form of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// A `meta.k8s.io/v1` Table (`kubectl get`).
    Table,
    /// `PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
    /// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`).
    Discovery,
}

struct MediaRange<'a> {
    mime: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .map(|part| {
            let mut it = part.split(';').map(str::trim);
            let mime = it.next().unwrap_or_default();
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            MediaRange { mime, params }
        })
        .filter(|m| !m.mime.is_empty())
        .collect()
}

/// No media range of `Accept` is one this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAcceptable;

/// Picks the first acceptable media range of `Accept`, in the client's order.
pub fn output(accept: Option<&str>) -> Result<Output, NotAcceptable> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for m in parse_accept(accept) {
        let param = |k: &str| m.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        match m.mime {
            "application/json" | "*/*" | "application/*" => {
                match (param("as"), param("g"), param("v")) {
                    (None, _, _) => return Ok(Output::Json),
                    (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                        return Ok(Output::Table);
                    }
                    (
                        Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                        Some("meta.k8s.io"),
                        Some("v1" | "v1beta1"),
                    ) => {
                        return Ok(Output::Metadata);
                    }
                    (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                        return Ok(Output::Discovery);
                    }
                    _ => continue,
                }
            }
            "application/yaml" => return Ok(Output::Yaml),
            _ => continue,
        }
    }
    Err(NotAcceptable)
}

/// What a request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
    /// `application/vnd.kubernetes.protobuf` (kubectl and client-go send built-in kinds so).
    Protobuf,
}

pub fn body_type(content_type: Option<&str>) -> Option<BodyType> {
    let ct = content_type.unwrap_or("application/json");
    let mime = ct.split(';').next().unwrap_or_default().trim();
    Some(match mime {
        "application/json" | "" => BodyType::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" => BodyType::ApplyPatch,
        "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table_first() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output(Some(a)), Ok(Output::Table));
        assert_eq!(output(None), Ok(Output::Json));
        assert_eq!(output(Some("application/yaml")), Ok(Output::Yaml));
        assert_eq!(
            output(Some(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            )),
            Ok(Output::Discovery)
        );
        assert_eq!(
            output(Some("application/vnd.kubernetes.protobuf")),
            Err(NotAcceptable)
        );
        assert_eq!(
            output(Some("application/vnd.kubernetes.protobuf, */*")),
            Ok(Output::Json)
        );
        assert_eq!(
            output(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Ok(Output::Metadata)
        );
    }

    #[test]
    fn patch_content_types() {
        assert_eq!(
            body_type(Some("application/strategic-merge-patch+json")),
            Some(BodyType::StrategicMergePatch)
        );
        assert_eq!(
            body_type(Some("application/apply-patch+yaml; charset=utf-8")),
            Some(BodyType::ApplyPatch)
        );
        assert_eq!(body_type(Some("text/plain")), None);
    }
}
