//! Floors for benchmarks: the same runtime and HTTP/gRPC stacks as `serve`, answering a
//! fixed response with no work. `cargo xtask bench serve` measures the server's own time per
//! request as modelplane-serve's latency minus a floor's, in the same run.

use std::net::SocketAddr;

use tonic::{Request, Response, Status};

use crate::grpc::pb;
use crate::grpc::pb::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};

/// What the floors answer.
pub struct Floor {
    /// REST: this body as `application/json` to every request.
    pub http: Option<(SocketAddr, bytes::Bytes)>,
    /// gRPC: this response to every `ModelInfer`.
    pub grpc: Option<(SocketAddr, pb::ModelInferResponse)>,
}

/// Asks a real server once over gRPC and returns its answer, so the gRPC floor answers
/// exactly what the server answers (same size on the wire).
pub async fn grpc_answer(
    url: &str,
    model: &str,
    payload: &serde_json::Value,
) -> Result<pb::ModelInferResponse, String> {
    let req = crate::bench::grpc_request(model, None, payload).map_err(|e| e.to_string())?;
    let mut c =
        pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(url.to_string())
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .max_decoding_message_size(256 << 20);
    c.model_infer(req)
        .await
        .map(|r| r.into_inner())
        .map_err(|e| format!("{url}: {}", e.message()))
}

struct Fixed(pb::ModelInferResponse);

fn none<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented(
        "a benchmark floor answers ModelInfer only",
    ))
}

#[tonic::async_trait]
impl GrpcInferenceService for Fixed {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }
    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse { ready: true }))
    }
    async fn model_ready(
        &self,
        _: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        Ok(Response::new(pb::ModelReadyResponse { ready: true }))
    }
    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        none()
    }
    async fn model_metadata(
        &self,
        _: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        none()
    }
    async fn model_infer(
        &self,
        r: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        // Decoding the request is the transport's work and happened already; answering
        // costs one clone of the fixed response, as encoding a real one costs a build.
        drop(r);
        Ok(Response::new(self.0.clone()))
    }
    async fn model_config(
        &self,
        _: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        none()
    }
    async fn model_statistics(
        &self,
        _: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        none()
    }
    async fn repository_index(
        &self,
        _: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        none()
    }
    async fn repository_model_load(
        &self,
        _: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        none()
    }
    async fn repository_model_unload(
        &self,
        _: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        none()
    }
}

/// Serves the floors until the process is stopped.
pub async fn run(floor: Floor) -> Result<(), String> {
    let mut tasks = tokio::task::JoinSet::new();
    if let Some((addr, body)) = floor.http {
        // The request body is read whole, as `serve` reads it, then the fixed answer sent.
        let answer = move |req: axum::extract::Request| {
            let body = body.clone();
            async move {
                let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        };
        let app = axum::Router::new().fallback(answer);
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        tasks.spawn(async move { axum::serve(l, app).await.map_err(|e| e.to_string()) });
    }
    if let Some((addr, answer)) = floor.grpc {
        let svc = GrpcInferenceServiceServer::new(Fixed(answer))
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        // accepted the way `serve` accepts (TCP_NODELAY on each connection)
        let incoming = crate::server::tokio_stream_listener(l);
        tasks.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(incoming)
                .await
                .map_err(|e| e.to_string())
        });
    }
    match tasks.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(e.to_string()),
        None => Err("give --http, --grpc or both".into()),
    }
}
