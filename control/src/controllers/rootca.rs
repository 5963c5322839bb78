//! The root CA publisher (upstream `pkg/controller/certificates/rootcacertpublisher`): a
//! ConfigMap `kube-root-ca.crt` in every namespace holds the cluster CA, so pods can verify the
//! API server (the projected service account volume mounts it).

use super::{Context, ControllerError};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "root-ca-cert-publisher";
const IDENTITY: &str = "root-ca-cert-publisher";
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(async move {
        let Some(ca) = ctx.config.root_ca.clone() else {
            tracing::warn!("no root CA configured; not publishing {CONFIG_MAP}");
            return Ok(());
        };
        let informers = ctx.clients.client("system:kube-controller-manager")?;
        let state = Arc::new(State {
            reader: informers.clone(),
            writer: ctx.client_for(IDENTITY)?,
            ca,
        });
        let ours = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP}"));
        Controller::new(
            Api::<Namespace>::all(informers.clone()),
            watcher::Config::default(),
        )
        .watches(Api::<ConfigMap>::all(informers), ours, |cm| {
            cm.metadata
                .namespace
                .map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile, error_policy, state)
        .for_each(|_| async {})
        .await;
        Ok(())
    })
}

struct State {
    reader: kube::Client,
    writer: kube::Client,
    ca: String,
}

async fn reconcile(ns: Arc<Namespace>, state: Arc<State>) -> Result<Action, kube::Error> {
    // Nothing can be created in a namespace being deleted.
    let Some(name) = ns
        .metadata
        .name
        .as_deref()
        .filter(|_| ns.metadata.deletion_timestamp.is_none())
    else {
        return Ok(Action::await_change());
    };
    let data = BTreeMap::from([("ca.crt".to_string(), state.ca.clone())]);
    let existing = Api::<ConfigMap>::namespaced(state.reader.clone(), name)
        .get_opt(CONFIG_MAP)
        .await?;
    let write: Api<ConfigMap> = Api::namespaced(state.writer.clone(), name);
    let result = match existing {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(CONFIG_MAP.into()),
                    annotations: Some(BTreeMap::from([(
                        DESCRIPTION_ANNOTATION.to_string(),
                        DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            write.create(&PostParams::default(), &cm).await.map(|_| ())
        }
        Some(mut cm) => {
            let described = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
                .is_some_and(|d| !d.is_empty());
            if cm.data.as_ref() == Some(&data) && described {
                return Ok(Action::await_change());
            }
            cm.data = Some(data);
            cm.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string());
            write
                .replace(CONFIG_MAP, &PostParams::default(), &cm)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => {
            tracing::debug!(namespace = name, "published {CONFIG_MAP}");
            Ok(Action::await_change())
        }
        // Gone or terminating meanwhile: nothing to publish there.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 403 => Ok(Action::await_change()),
        Err(e) => Err(e),
    }
}

fn error_policy(ns: Arc<Namespace>, err: &kube::Error, _: Arc<State>) -> Action {
    tracing::info!(namespace = ?ns.metadata.name, error = %err, "publishing the root CA failed");
    Action::requeue(Duration::from_secs(1))
}
