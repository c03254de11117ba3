//! The Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`): raw contents
//! both ways, typed contents accepted, the same core as REST.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::app::{App, InferRequest};
use crate::error::ServeError;
use crate::tensor::{self, Datatype, NamedTensor};

/// Generated messages and services of package `inference`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("inference");
}

use pb::grpc_inference_service_server::GrpcInferenceService;

/// The gRPC service over the shared [`App`].
pub struct Service(pub Arc<App>);

/// The service with message limits raised to the body limit.
pub fn server(
    app: Arc<App>,
) -> pb::grpc_inference_service_server::GrpcInferenceServiceServer<Service> {
    let max = app.max_body();
    pb::grpc_inference_service_server::GrpcInferenceServiceServer::new(Service(app))
        // tritonclient compresses requests with gzip when asked to.
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max.max(64 << 20))
}

fn authorize<T>(app: &App, r: &Request<T>) -> Result<(), Status> {
    app.authorize(
        r.metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
    )
    .map_err(Status::from)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Typed contents as raw little-endian bytes, checked against the datatype.
pub(crate) fn contents_to_raw(
    name: &str,
    dt: Datatype,
    c: &pb::InferTensorContents,
) -> Result<Vec<u8>, ServeError> {
    let wrong = || {
        ServeError::BadRequest(format!(
            "input {name:?}: contents do not match datatype {}",
            dt.name()
        ))
    };
    Ok(match dt {
        Datatype::Bool => c.bool_contents.iter().map(|b| u8::from(*b)).collect(),
        Datatype::I8 => c
            .int_contents
            .iter()
            .map(|x| i8::try_from(*x).map(|v| v.to_le_bytes().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| wrong())?
            .concat(),
        Datatype::I16 => c
            .int_contents
            .iter()
            .map(|x| i16::try_from(*x).map(|v| v.to_le_bytes().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| wrong())?
            .concat(),
        Datatype::I32 => c
            .int_contents
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Datatype::I64 => c
            .int64_contents
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Datatype::U8 => c
            .uint_contents
            .iter()
            .map(|x| u8::try_from(*x).map(|v| vec![v]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| wrong())?
            .concat(),
        Datatype::U16 => c
            .uint_contents
            .iter()
            .map(|x| u16::try_from(*x).map(|v| v.to_le_bytes().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| wrong())?
            .concat(),
        Datatype::U32 => c
            .uint_contents
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Datatype::U64 => c
            .uint64_contents
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Datatype::F32 => c
            .fp32_contents
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Datatype::F64 => c
            .fp64_contents
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Datatype::Bytes => c
            .bytes_contents
            .iter()
            .flat_map(|b| {
                (b.len() as u32)
                    .to_le_bytes()
                    .into_iter()
                    .chain(b.iter().copied())
            })
            .collect(),
        Datatype::F16 => {
            return Err(ServeError::BadRequest(format!(
                "input {name:?}: FP16 must be sent as raw_input_contents"
            )))
        }
    })
}

/// Decodes a request's input tensors, raw or typed contents, checking every declared shape
/// against the bytes present before anything is allocated. Public for the fuzz target.
pub fn decode_inputs(req: &pb::ModelInferRequest) -> Result<Vec<NamedTensor>, ServeError> {
    if !req.raw_input_contents.is_empty() && req.raw_input_contents.len() != req.inputs.len() {
        return Err(ServeError::BadRequest(format!(
            "raw_input_contents has {} entries for {} inputs",
            req.raw_input_contents.len(),
            req.inputs.len()
        )));
    }
    let mut inputs = Vec::with_capacity(req.inputs.len());
    for (i, input) in req.inputs.iter().enumerate() {
        let dt = Datatype::parse(&input.datatype)
            .map_err(|e| ServeError::BadRequest(format!("input {:?}: {e}", input.name)))?;
        let tensor = match req.raw_input_contents.get(i) {
            Some(raw) => tensor::from_raw(&input.name, dt, &input.shape, raw)?,
            None => match &input.contents {
                Some(c) => {
                    let raw = contents_to_raw(&input.name, dt, c)?;
                    tensor::from_raw(&input.name, dt, &input.shape, &raw)?
                }
                None => {
                    return Err(ServeError::BadRequest(format!(
                        "input {:?} has no contents: set raw_input_contents or contents",
                        input.name
                    )))
                }
            },
        };
        inputs.push(NamedTensor {
            name: input.name.clone(),
            tensor,
        });
    }
    Ok(inputs)
}

fn authorize_admin<T>(app: &App, r: &Request<T>) -> Result<(), Status> {
    app.authorize_admin(
        r.metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
    )
    .map_err(Status::from)
}

fn pb_type(oip: &str) -> i32 {
    use pb::DataType as D;
    (match oip {
        "BOOL" => D::TypeBool,
        "UINT8" => D::TypeUint8,
        "UINT16" => D::TypeUint16,
        "UINT32" => D::TypeUint32,
        "UINT64" => D::TypeUint64,
        "INT8" => D::TypeInt8,
        "INT16" => D::TypeInt16,
        "INT32" => D::TypeInt32,
        "INT64" => D::TypeInt64,
        "FP16" => D::TypeFp16,
        "FP32" => D::TypeFp32,
        "FP64" => D::TypeFp64,
        "BYTES" => D::TypeString,
        "BF16" => D::TypeBf16,
        _ => D::TypeInvalid,
    }) as i32
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn model_config(
        &self,
        r: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        authorize(&self.0, &r)?;
        let r = r.into_inner();
        let view = self
            .0
            .model_config(&r.name, non_empty(&r.version).as_deref())
            .await?;
        let sig = &view.model.signature;
        Ok(Response::new(pb::ModelConfigResponse {
            config: Some(pb::ModelConfig {
                name: view.name.clone(),
                platform: "onnx_onnxv1".into(),
                backend: "tract".into(),
                max_batch_size: view.max_batch_size.min(i32::MAX as usize) as i32,
                input: sig
                    .inputs
                    .iter()
                    .map(|s| pb::ModelInput {
                        name: s.name.clone(),
                        data_type: pb_type(&s.datatype),
                        dims: view.dims(&s.shape),
                    })
                    .collect(),
                output: sig
                    .outputs
                    .iter()
                    .map(|s| pb::ModelOutput {
                        name: s.name.clone(),
                        data_type: pb_type(&s.datatype),
                        dims: view.dims(&s.shape),
                    })
                    .collect(),
                dynamic_batching: (view.max_batch_size > 0).then(|| pb::ModelDynamicBatching {
                    preferred_batch_size: vec![],
                    max_queue_delay_microseconds: view.max_queue_delay_us,
                }),
            }),
        }))
    }

    async fn model_statistics(
        &self,
        r: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        authorize(&self.0, &r)?;
        let r = r.into_inner();
        let models = self.0.stats_of(
            non_empty(&r.name).as_deref(),
            non_empty(&r.version).as_deref(),
        )?;
        Ok(Response::new(pb::ModelStatisticsResponse {
            model_stats: models
                .iter()
                .map(|m| m.stats.to_pb(&m.name, &m.version))
                .collect(),
        }))
    }

    async fn repository_index(
        &self,
        r: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        authorize_admin(&self.0, &r)?;
        let ready = r.get_ref().ready;
        Ok(Response::new(pb::RepositoryIndexResponse {
            models: self
                .0
                .repository_index(ready)
                .into_iter()
                .map(|e| pb::repository_index_response::ModelIndex {
                    name: e.name,
                    version: e.version,
                    state: e.state.into(),
                    reason: e.reason,
                })
                .collect(),
        }))
    }

    async fn repository_model_load(
        &self,
        r: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        authorize_admin(&self.0, &r)?;
        self.0.load_named(&r.get_ref().model_name).await?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        r: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        authorize_admin(&self.0, &r)?;
        self.0.unload_named(&r.get_ref().model_name).await?;
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }

    async fn server_live(
        &self,
        _r: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _r: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse {
            ready: self.0.is_ready(),
        }))
    }

    async fn model_ready(
        &self,
        r: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        authorize(&self.0, &r)?;
        let r = r.into_inner();
        let ready =
            match crate::rest::model_is_ready(&self.0, &r.name, non_empty(&r.version).as_deref()) {
                Ok(r) => r,
                // Not ready, as tritonclient's REST client reads a 404: a model that is not
                // loaded (or was unloaded) is simply not ready.
                Err(ServeError::Unavailable(_) | ServeError::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            };
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _r: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "modelplane-serve".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: crate::rest::EXTENSIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        authorize(&self.0, &r)?;
        let r = r.into_inner();
        let m = crate::rest::metadata(&self.0, &r.name, non_empty(&r.version).as_deref()).await?;
        let tensors = |k: &str| -> Vec<pb::model_metadata_response::TensorMetadata> {
            m[k].as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| pb::model_metadata_response::TensorMetadata {
                            name: t["name"].as_str().unwrap_or_default().into(),
                            datatype: t["datatype"].as_str().unwrap_or_default().into(),
                            shape: t["shape"]
                                .as_array()
                                .map(|s| s.iter().filter_map(|d| d.as_i64()).collect())
                                .unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Response::new(pb::ModelMetadataResponse {
            name: r.name,
            versions: m["versions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            platform: m["platform"].as_str().unwrap_or_default().into(),
            inputs: tensors("inputs"),
            outputs: tensors("outputs"),
        }))
    }

    async fn model_infer(
        &self,
        r: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        authorize(&self.0, &r)?;
        let pin_header = r
            .metadata()
            .get(crate::rest::VARIANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let snapshot = self.0.snapshot();
        let sticky_name = snapshot
            .endpoints
            .get(&r.get_ref().model_name)
            .and_then(|e| e.sticky_header.clone());
        let sticky = sticky_name.and_then(|h| {
            r.metadata()
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        });
        let req = r.into_inner();
        let inputs = decode_inputs(&req)?;
        let pin = pin_header.or_else(|| {
            req.parameters
                .get("variant")
                .and_then(|p| match &p.parameter_choice {
                    Some(pb::infer_parameter::ParameterChoice::StringParam(s)) => Some(s.clone()),
                    _ => None,
                })
        });
        let outputs =
            (!req.outputs.is_empty()).then(|| req.outputs.iter().map(|o| o.name.clone()).collect());
        let resp = self
            .0
            .infer(InferRequest {
                model: req.model_name,
                version: non_empty(&req.model_version),
                id: non_empty(&req.id),
                pin,
                sticky,
                inputs,
                outputs,
                protocol: "grpc",
            })
            .await?;
        let mut out = pb::ModelInferResponse {
            model_name: resp.model_name,
            model_version: resp.model_version,
            id: resp.id,
            ..Default::default()
        };
        out.parameters.insert(
            "variant".into(),
            pb::InferParameter {
                parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(
                    resp.variant,
                )),
            },
        );
        for o in &resp.outputs {
            out.outputs
                .push(pb::model_infer_response::InferOutputTensor {
                    name: o.name.clone(),
                    datatype: o.datatype().name().into(),
                    shape: o.shape_i64(),
                    ..Default::default()
                });
            out.raw_output_contents.push(tensor::to_raw(&o.tensor));
        }
        Ok(Response::new(out))
    }
}
