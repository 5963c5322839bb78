//! The CRI v1 client (containerd's `RuntimeService` and `ImageService`) over its unix socket.

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("connect to the container runtime at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("{op}: {status}")]
    Call {
        op: &'static str,
        status: tonic::Status,
    },
}

impl CriError {
    /// The runtime says the object does not exist.
    pub fn not_found(&self) -> bool {
        matches!(self, CriError::Call { status, .. } if status.code() == tonic::Code::NotFound
            || status.message().contains("not found"))
    }

    /// The runtime is not reachable (restarting?).
    pub fn unavailable(&self) -> bool {
        match self {
            CriError::Connect { .. } => true,
            CriError::Call { status, .. } => status.code() == tonic::Code::Unavailable,
        }
    }
}

#[derive(Clone)]
pub struct Cri {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

fn call(op: &'static str) -> impl FnOnce(tonic::Status) -> CriError {
    move |status| CriError::Call { op, status }
}

impl Cri {
    /// A client for the socket; the connection is made lazily and re-made after failures, so a
    /// restarted containerd is picked up again.
    pub fn new(socket: &Path) -> Result<Cri, CriError> {
        let path = socket.to_path_buf();
        let p = path.clone();
        let channel = Endpoint::try_from("http://[::]:50051")
            .map_err(|source| CriError::Connect {
                path: path.clone(),
                source,
            })?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let p = p.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
                }
            }));
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            images: ImageServiceClient::new(channel),
        })
    }

    pub async fn version(&self) -> Result<cri::VersionResponse, CriError> {
        let mut c = self.runtime.clone();
        Ok(c.version(cri::VersionRequest {
            version: "v1".into(),
        })
        .await
        .map_err(call("Version"))?
        .into_inner())
    }

    pub async fn run_pod_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String, CriError> {
        let mut c = self.runtime.clone();
        let r = c
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
            .map_err(call("RunPodSandbox"))?;
        Ok(r.into_inner().pod_sandbox_id)
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let mut c = self.runtime.clone();
        c.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
        .map_err(call("StopPodSandbox"))?;
        Ok(())
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let mut c = self.runtime.clone();
        c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
        .map_err(call("RemovePodSandbox"))?;
        Ok(())
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus, CriError> {
        let mut c = self.runtime.clone();
        let r = c
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            })
            .await
            .map_err(call("PodSandboxStatus"))?;
        r.into_inner().status.ok_or_else(|| CriError::Call {
            op: "PodSandboxStatus",
            status: tonic::Status::not_found("no status"),
        })
    }

    pub async fn list_pod_sandboxes(&self) -> Result<Vec<cri::PodSandbox>, CriError> {
        let mut c = self.runtime.clone();
        let r = c
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(call("ListPodSandbox"))?;
        Ok(r.into_inner().items)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, CriError> {
        let mut c = self.runtime.clone();
        let r = c
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .map_err(call("CreateContainer"))?;
        Ok(r.into_inner().container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), CriError> {
        let mut c = self.runtime.clone();
        c.start_container(cri::StartContainerRequest {
            container_id: id.into(),
        })
        .await
        .map_err(call("StartContainer"))?;
        Ok(())
    }

    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<(), CriError> {
        let mut c = self.runtime.clone();
        c.stop_container(cri::StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_secs,
        })
        .await
        .map_err(call("StopContainer"))?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let mut c = self.runtime.clone();
        c.remove_container(cri::RemoveContainerRequest {
            container_id: id.into(),
        })
        .await
        .map_err(call("RemoveContainer"))?;
        Ok(())
    }

    pub async fn list_containers(
        &self,
        sandbox_id: Option<&str>,
    ) -> Result<Vec<cri::Container>, CriError> {
        let mut c = self.runtime.clone();
        let filter = sandbox_id.map(|s| cri::ContainerFilter {
            pod_sandbox_id: s.into(),
            ..Default::default()
        });
        let r = c
            .list_containers(cri::ListContainersRequest { filter })
            .await
            .map_err(call("ListContainers"))?;
        Ok(r.into_inner().containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, CriError> {
        let mut c = self.runtime.clone();
        let r = c
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .map_err(call("ContainerStatus"))?;
        r.into_inner().status.ok_or_else(|| CriError::Call {
            op: "ContainerStatus",
            status: tonic::Status::not_found("no status"),
        })
    }

    /// Runs a command in a container to completion (exec probes, non-interactive exec).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_secs: i64,
    ) -> Result<cri::ExecSyncResponse, CriError> {
        let mut c = self.runtime.clone();
        let r = c
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.into(),
                cmd,
                timeout: timeout_secs,
            })
            .await
            .map_err(call("ExecSync"))?;
        Ok(r.into_inner())
    }

    /// A URL on the runtime's streaming server for an interactive exec.
    pub async fn exec(&self, req: cri::ExecRequest) -> Result<String, CriError> {
        let mut c = self.runtime.clone();
        Ok(c.exec(req).await.map_err(call("Exec"))?.into_inner().url)
    }

    pub async fn attach(&self, req: cri::AttachRequest) -> Result<String, CriError> {
        let mut c = self.runtime.clone();
        Ok(c.attach(req)
            .await
            .map_err(call("Attach"))?
            .into_inner()
            .url)
    }

    pub async fn port_forward(&self, req: cri::PortForwardRequest) -> Result<String, CriError> {
        let mut c = self.runtime.clone();
        Ok(c.port_forward(req)
            .await
            .map_err(call("PortForward"))?
            .into_inner()
            .url)
    }

    pub async fn container_stats(&self, id: &str) -> Result<Option<cri::ContainerStats>, CriError> {
        let mut c = self.runtime.clone();
        let r = c
            .container_stats(cri::ContainerStatsRequest {
                container_id: id.into(),
            })
            .await
            .map_err(call("ContainerStats"))?;
        Ok(r.into_inner().stats)
    }

    /// The image's id if the runtime has it (images are imported locally, never pulled).
    pub async fn image_present(&self, image: &str) -> Result<Option<String>, CriError> {
        let mut c = self.images.clone();
        let r = c
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .map_err(call("ImageStatus"))?;
        Ok(r.into_inner().image.map(|i| i.id))
    }

    pub async fn pull_image(&self, image: &str) -> Result<String, CriError> {
        let mut c = self.images.clone();
        let r = c
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                auth: None,
                sandbox_config: None,
            })
            .await
            .map_err(call("PullImage"))?;
        Ok(r.into_inner().image_ref)
    }
}
