//! The service account controller (upstream `pkg/controller/serviceaccount`): every active
//! namespace has a `default` ServiceAccount, created again if deleted.

use super::{Context, ControllerError};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "serviceaccount";
const IDENTITY: &str = "service-account-controller";
/// The accounts every namespace gets.
const ACCOUNTS: &[&str] = &["default"];

pub fn run(
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<(), ControllerError>> {
    Box::pin(async move {
        // Watches and reads go through the shared-informer identity, writes through our own.
        let informers = ctx.clients.client("system:kube-controller-manager")?;
        let state = Arc::new(State {
            reader: informers.clone(),
            writer: ctx.client_for(IDENTITY)?,
        });
        let deleted_accounts = watcher::Config::default().fields("metadata.name=default");
        Controller::new(
            Api::<Namespace>::all(informers.clone()),
            watcher::Config::default(),
        )
        .watches(
            Api::<ServiceAccount>::all(informers),
            deleted_accounts,
            |sa| {
                sa.metadata
                    .namespace
                    .map(|ns| ObjectRef::<Namespace>::new(&ns))
            },
        )
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
}

async fn reconcile(ns: Arc<Namespace>, state: Arc<State>) -> Result<Action, kube::Error> {
    let active = ns.metadata.deletion_timestamp.is_none()
        && ns
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Active");
    let Some(name) = ns.metadata.name.as_deref().filter(|_| active) else {
        return Ok(Action::await_change());
    };
    let existing: Api<ServiceAccount> = Api::namespaced(state.reader.clone(), name);
    let create: Api<ServiceAccount> = Api::namespaced(state.writer.clone(), name);
    for account in ACCOUNTS {
        if existing.get_opt(account).await?.is_some() {
            continue;
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(account.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match create.create(&PostParams::default(), &sa).await {
            Ok(_) => tracing::info!(namespace = name, account, "created service account"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            // The namespace went away or started terminating meanwhile.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 403 => {
                tracing::debug!(namespace = name, error = %e.message, "not creating service account");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Action::await_change())
}

fn error_policy(ns: Arc<Namespace>, err: &kube::Error, _: Arc<State>) -> Action {
    tracing::info!(namespace = ?ns.metadata.name, error = %err, "service account sync failed");
    Action::requeue(Duration::from_secs(1))
}
