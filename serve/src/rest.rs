//! The Open Inference Protocol v2 over REST (axum), with the binary tensor extension, plus
//! `/metrics` and the admin API.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::app::{App, InferRequest, InferResponse};
use crate::error::ServeError;
use crate::tensor::{self, Datatype, NamedTensor};

/// The header that carries the JSON header's length in binary-extension bodies.
pub const HEADER_LENGTH: &str = "inference-header-content-length";
/// Pins a request to an endpoint variant.
pub const VARIANT_HEADER: &str = "x-modelplane-variant";

/// The REST application; `main` serves it and tests call it in process.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/v2/health/live",
            get(|| async { Json(json!({ "live": true })) }),
        )
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{model}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_metadata_v),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}/infer", post(infer_v))
        .route("/v2/models/{model}/feedback", post(feedback))
        .route("/v2/models/stats", get(stats_all))
        .route("/v2/models/{model}/stats", get(stats_model))
        .route(
            "/v2/models/{model}/versions/{version}/stats",
            get(stats_version),
        )
        .route("/v2/models/{model}/config", get(model_config))
        .route(
            "/v2/models/{model}/versions/{version}/config",
            get(model_config_v),
        )
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/repository/models/{model}/load", post(repository_load))
        .route(
            "/v2/repository/models/{model}/unload",
            post(repository_unload),
        )
        .route("/v2/admin/reload", post(reload))
        .route("/v2/admin/config", get(admin_config))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ServeError::NotFound(
                "no such route; see the Open Inference Protocol v2 paths under /v2".into(),
            )
        })
        .with_state(app)
        // Requests may come compressed (`Content-Encoding: gzip` or `deflate`), as
        // tritonclient sends them; the body limit applies to the decompressed bytes.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
}

/// Server name and extensions, shared with gRPC.
pub const EXTENSIONS: &[&str] = &[
    "binary_tensor_data",
    "statistics",
    "model_configuration",
    "model_repository",
    "modelplane_traffic_split",
];

async fn ready(State(app): State<Arc<App>>) -> Response {
    let r = app.is_ready();
    let code = if r {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({ "ready": r }))).into_response()
}

async fn server_metadata() -> Json<Value> {
    Json(
        json!({ "name": "modelplane-serve", "version": env!("CARGO_PKG_VERSION"), "extensions": EXTENSIONS }),
    )
}

fn auth(app: &App, h: &HeaderMap) -> Result<(), ServeError> {
    app.authorize(h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

fn admin(app: &App, h: &HeaderMap) -> Result<(), ServeError> {
    app.authorize_admin(h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

/// Metadata of a model or endpoint, as OIP describes it.
pub async fn metadata(app: &App, model: &str, version: Option<&str>) -> Result<Value, ServeError> {
    let s = app.snapshot();
    let route = app.route(&s, model, version, None, None)?;
    let m = match app.describing_model(&s, model, &route.target).await? {
        Some(m) => m,
        // An endpoint served only remotely describes itself as its remote does.
        None => {
            let crate::app::Target::Remote(r) = &route.target else {
                return Err(ServeError::NotFound(format!("unknown model {model:?}")));
            };
            let mut meta = r.metadata.clone().ok_or_else(|| {
                ServeError::Unavailable(format!(
                    "{model}: its remote {} has not answered its metadata yet",
                    r.url
                ))
            })?;
            meta["name"] = json!(model);
            return Ok(meta);
        }
    };
    let versions: Vec<String> = match s.endpoints.get(model) {
        Some(ep) => ep
            .variants
            .iter()
            .filter_map(|v| v.target.version().map(String::from))
            .collect(),
        None => s
            .models
            .get(model)
            .map(|vs| vs.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let t = |specs: &[crate::signature::TensorSpec]| -> Vec<Value> {
        specs
            .iter()
            .map(|t| json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape }))
            .collect()
    };
    Ok(json!({
        "name": model,
        "versions": versions,
        "platform": "onnx_onnxv1",
        "inputs": t(&m.signature.inputs),
        "outputs": t(&m.signature.outputs),
    }))
}

async fn model_metadata(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path(model): Path<String>,
) -> Result<Json<Value>, ServeError> {
    auth(&app, &h)?;
    metadata(&app, &model, None).await.map(Json)
}

async fn model_metadata_v(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Result<Json<Value>, ServeError> {
    auth(&app, &h)?;
    metadata(&app, &model, Some(&version)).await.map(Json)
}

/// Whether a model or endpoint can take requests.
pub fn model_is_ready(app: &App, model: &str, version: Option<&str>) -> Result<bool, ServeError> {
    let s = app.snapshot();
    app.route(&s, model, version, None, None)
        .map(|_| app.is_ready())
}

async fn model_ready(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path(model): Path<String>,
) -> Result<Response, ServeError> {
    auth(&app, &h)?;
    ready_response(&app, &model, None)
}

async fn model_ready_v(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Result<Response, ServeError> {
    auth(&app, &h)?;
    ready_response(&app, &model, Some(&version))
}

/// 200 when ready; 503 with the reason when not (a model that failed to load says why).
fn ready_response(app: &App, model: &str, version: Option<&str>) -> Result<Response, ServeError> {
    let (ready, reason) = match model_is_ready(app, model, version) {
        Ok(r) => (r, None),
        Err(ServeError::Unavailable(reason)) => (false, Some(reason)),
        Err(e) => return Err(e),
    };
    let mut body = json!({ "name": model, "ready": ready });
    if let Some(r) = reason {
        body["error"] = json!(r);
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}

async fn stats_all(State(app): State<Arc<App>>, h: HeaderMap) -> Result<Json<Value>, ServeError> {
    auth(&app, &h)?;
    stats_json(&app, None, None)
}

async fn stats_model(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path(model): Path<String>,
) -> Result<Json<Value>, ServeError> {
    auth(&app, &h)?;
    stats_json(&app, Some(&model), None)
}

async fn stats_version(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Result<Json<Value>, ServeError> {
    auth(&app, &h)?;
    stats_json(&app, Some(&model), Some(&version))
}

/// Triton's statistics extension: `{"model_stats": [...]}`.
fn stats_json(
    app: &App,
    model: Option<&str>,
    version: Option<&str>,
) -> Result<Json<Value>, ServeError> {
    let models = app.stats_of(model, version)?;
    Ok(Json(json!({
        "model_stats": models.iter().map(|m| m.stats.to_json(&m.name, &m.version)).collect::<Vec<_>>()
    })))
}

async fn model_config(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path(model): Path<String>,
) -> Result<Json<Value>, ServeError> {
    auth(&app, &h)?;
    Ok(Json(app.model_config(&model, None).await?.to_json()))
}

async fn model_config_v(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Result<Json<Value>, ServeError> {
    auth(&app, &h)?;
    Ok(Json(
        app.model_config(&model, Some(&version)).await?.to_json(),
    ))
}

#[derive(Deserialize, Default)]
struct IndexBody {
    #[serde(default)]
    ready: bool,
}

/// `POST /v2/repository/index` (Triton): the models and their state. Needs the admin token.
async fn repository_index(
    State(app): State<Arc<App>>,
    req: Request,
) -> Result<Json<Value>, ServeError> {
    let (headers, body) = read_body(&app, req).await?;
    admin(&app, &headers)?;
    let b: IndexBody = if body.iter().all(u8::is_ascii_whitespace) {
        IndexBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ServeError::BadRequest(format!(
                "invalid repository index JSON: {e}; expected {{\"ready\": true|false}}"
            ))
        })?
    };
    Ok(Json(Value::Array(
        app.repository_index(b.ready)
            .into_iter()
            .map(|e| {
                let mut v = json!({ "name": e.name, "state": e.state });
                if !e.version.is_empty() {
                    v["version"] = json!(e.version);
                }
                if !e.reason.is_empty() {
                    v["reason"] = json!(e.reason);
                }
                v
            })
            .collect(),
    )))
}

/// `POST /v2/repository/models/{m}/load` (Triton): loads the newest version of `m`.
async fn repository_load(
    State(app): State<Arc<App>>,
    Path(model): Path<String>,
    req: Request,
) -> Result<Json<Value>, ServeError> {
    let (headers, _) = read_body(&app, req).await?;
    admin(&app, &headers)?;
    app.load_named(&model).await?;
    Ok(Json(json!({})))
}

/// `POST /v2/repository/models/{m}/unload` (Triton): stops serving `m`.
async fn repository_unload(
    State(app): State<Arc<App>>,
    Path(model): Path<String>,
    req: Request,
) -> Result<Json<Value>, ServeError> {
    let (headers, _) = read_body(&app, req).await?;
    admin(&app, &headers)?;
    app.unload_named(&model).await?;
    Ok(Json(json!({})))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.refresh_gauges();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn reload(State(app): State<Arc<App>>, h: HeaderMap) -> Result<Json<Value>, ServeError> {
    admin(&app, &h)?;
    app.reload(None).await.map_err(|e| {
        ServeError::BadRequest(format!(
            "reload failed, still serving the previous configuration: {e}"
        ))
    })?;
    Ok(Json(json!({ "reloaded": true })))
}

/// `GET /v2/admin/config`: the configuration being served (it holds no secrets: the token is
/// read from a file or the environment), so operators and the provider can see what runs.
async fn admin_config(
    State(app): State<Arc<App>>,
    h: HeaderMap,
) -> Result<Json<Value>, ServeError> {
    admin(&app, &h)?;
    Ok(Json(
        serde_json::to_value(&*app.config()).unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    feedback: Vec<crate::feedback::Item>,
}

/// `POST /v2/models/{m}/feedback` (Modelplane extension): `{"feedback": [{"id": "<inference
/// id>", "label": 2}, {"id": "…", "value": 3.5}, {"id": "…", "labels": [0, 1]}]}`.
async fn feedback(
    State(app): State<Arc<App>>,
    Path(model): Path<String>,
    req: Request,
) -> Result<Json<Value>, ServeError> {
    let (headers, body) = read_body(&app, req).await?;
    auth(&app, &headers)?;
    let s = app.snapshot();
    if !s.endpoints.contains_key(&model) && !s.models.contains_key(&model) {
        return Err(ServeError::NotFound(format!("unknown model {model:?}")));
    }
    let b: FeedbackBody = serde_json::from_slice(&body).map_err(|e| {
        ServeError::BadRequest(format!(
            "invalid feedback JSON: {e}; expected {{\"feedback\": [{{\"id\": …, \"label\": …}}]}}"
        ))
    })?;
    let o = app.submit_feedback(&b.feedback);
    Ok(Json(serde_json::to_value(o).unwrap_or_default()))
}

#[derive(Deserialize)]
struct JsonInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    /// Kept as text until the datatype is known, then read straight into a typed buffer.
    #[serde(default)]
    data: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct JsonOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// Unknown fields are ignored: clients add their own (kserve sends `model_name`).
#[derive(Deserialize)]
struct JsonRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<JsonInput>,
    #[serde(default)]
    outputs: Option<Vec<JsonOutput>>,
}

/// Parsed infer request body plus which outputs the client wants binary.
struct Parsed {
    req: JsonRequest,
    tensors: Vec<NamedTensor>,
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, ServeError> {
    let header_len = match headers.get(HEADER_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    ServeError::BadRequest("Inference-Header-Content-Length is not a number".into())
                })?,
        ),
        None => None,
    };
    decode(header_len, body)
}

/// Decodes an infer request body: JSON, or with `header_len` a JSON header followed by
/// binary tensor data. Public for the fuzz target.
pub fn decode_infer_body(
    header_len: Option<usize>,
    body: &[u8],
) -> Result<Vec<NamedTensor>, ServeError> {
    decode(header_len, body).map(|p| p.tensors)
}

fn decode(header_len: Option<usize>, body: &[u8]) -> Result<Parsed, ServeError> {
    let header_len = match header_len {
        Some(n) => {
            if n > body.len() {
                return Err(ServeError::BadRequest(format!(
                    "Inference-Header-Content-Length is {n}, but the body has only {} bytes",
                    body.len()
                )));
            }
            n
        }
        None => body.len(),
    };
    let (head, mut binary) = body.split_at(header_len);
    // The error names the field (`inputs[0].shape: invalid type …`), not only a column.
    let req: JsonRequest =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(head))
            .map_err(|e| ServeError::BadRequest(format!("invalid inference request JSON: {e}")))?;
    let mut tensors = Vec::with_capacity(req.inputs.len());
    for input in &req.inputs {
        let dt = Datatype::parse(&input.datatype)
            .map_err(|e| ServeError::BadRequest(format!("input {:?}: {e}", input.name)))?;
        let t = match input.parameters.get("binary_data_size") {
            Some(size) => {
                let n = size.as_u64().ok_or_else(|| {
                    ServeError::BadRequest(format!(
                        "input {:?}: binary_data_size must be a number",
                        input.name
                    ))
                })? as usize;
                if n > binary.len() {
                    return Err(ServeError::BadRequest(format!(
                        "input {:?}: binary_data_size {n} is more than the {} binary bytes left",
                        input.name,
                        binary.len()
                    )));
                }
                let (mine, rest) = binary.split_at(n);
                binary = rest;
                tensor::from_raw(&input.name, dt, &input.shape, mine)?
            }
            None => match &input.data {
                Some(d) => tensor::from_json_text(&input.name, dt, &input.shape, d)?,
                None => {
                    return Err(ServeError::BadRequest(format!(
                        "input {:?} has neither data nor binary_data_size",
                        input.name
                    )))
                }
            },
        };
        tensors.push(NamedTensor {
            name: input.name.clone(),
            tensor: t,
        });
    }
    if !binary.is_empty() {
        return Err(ServeError::BadRequest(format!(
            "{} binary bytes follow the inputs unclaimed",
            binary.len()
        )));
    }
    Ok(Parsed { req, tensors })
}

fn wants_binary(req: &JsonRequest, output: &str) -> bool {
    let all = req
        .parameters
        .get("binary_data_output")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    req.outputs
        .as_ref()
        .and_then(|os| os.iter().find(|o| o.name == output))
        .and_then(|o| o.parameters.get("binary_data").and_then(Value::as_bool))
        .unwrap_or(all)
}

/// One output of a response, serialized in field order (the spec's).
#[derive(serde::Serialize)]
struct OutputEntry<'a> {
    name: &'a str,
    datatype: &'a str,
    shape: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<tensor::JsonData<'a>>,
}

#[derive(serde::Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

#[derive(serde::Serialize)]
struct ResponseHead<'a> {
    model_name: &'a str,
    model_version: &'a str,
    id: &'a str,
    outputs: Vec<OutputEntry<'a>>,
}

fn respond(req: &JsonRequest, r: InferResponse) -> Response {
    let mut outputs = Vec::with_capacity(r.outputs.len());
    let mut binary: Vec<u8> = Vec::new();
    for o in &r.outputs {
        let mut entry = OutputEntry {
            name: &o.name,
            datatype: o.datatype().name(),
            shape: o.shape_i64(),
            parameters: None,
            data: None,
        };
        if wants_binary(req, &o.name) {
            let raw = tensor::to_raw(&o.tensor);
            entry.parameters = Some(BinarySize {
                binary_data_size: raw.len(),
            });
            binary.extend_from_slice(&raw);
        } else {
            entry.data = Some(tensor::JsonData(&o.tensor));
        }
        outputs.push(entry);
    }
    // Serializing these types cannot fail (string keys, no maps with other keys).
    let head = serde_json::to_string(&ResponseHead {
        model_name: &r.model_name,
        model_version: &r.model_version,
        id: &r.id,
        outputs,
    })
    .unwrap_or_default();
    let variant = HeaderValue::from_str(&r.variant).unwrap_or(HeaderValue::from_static("default"));
    if binary.is_empty() {
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(VARIANT_HEADER, variant)
            .body(Body::from(head))
            .expect("response");
    }
    let len = head.len();
    let mut body = head.into_bytes();
    body.extend_from_slice(&binary);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(HEADER_LENGTH, len.to_string())
        .header(VARIANT_HEADER, variant)
        .body(Body::from(body))
        .expect("response")
}

async fn read_body(app: &App, req: Request) -> Result<(HeaderMap, Bytes), ServeError> {
    let (parts, body) = req.into_parts();
    let max = app.max_body();
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        ServeError::TooLarge(format!(
            "the request body is over the limit of {max} bytes (limits.max_body_bytes)"
        ))
    })?;
    Ok((parts.headers, bytes))
}

async fn run_infer(
    app: Arc<App>,
    model: String,
    version: Option<String>,
    req: Request,
) -> Result<Response, ServeError> {
    let (headers, body) = read_body(&app, req).await?;
    auth(&app, &headers)?;
    let parsed = parse_body(&headers, &body)?;
    let pin = headers
        .get(VARIANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| {
            parsed
                .req
                .parameters
                .get("variant")
                .and_then(Value::as_str)
                .map(String::from)
        });
    let sticky = app
        .snapshot()
        .endpoints
        .get(&model)
        .and_then(|e| e.sticky_header.as_ref())
        .and_then(|h| headers.get(h.as_str()))
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let outputs = parsed
        .req
        .outputs
        .as_ref()
        .map(|os| os.iter().map(|o| o.name.clone()).collect());
    let r = app
        .infer(InferRequest {
            model,
            version,
            id: parsed.req.id.clone(),
            pin,
            sticky,
            inputs: parsed.tensors,
            outputs,
            protocol: "rest",
        })
        .await?;
    Ok(respond(&parsed.req, r))
}

async fn infer(
    State(app): State<Arc<App>>,
    Path(model): Path<String>,
    req: Request,
) -> Result<Response, ServeError> {
    run_infer(app, model, None, req).await
}

async fn infer_v(
    State(app): State<Arc<App>>,
    Path((model, version)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ServeError> {
    run_infer(app, model, Some(version), req).await
}
