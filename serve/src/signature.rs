//! The signature of an ONNX model: content digest, opset, and its inputs and outputs as the
//! Open Inference Protocol names datatypes, with `-1` for symbolic dimensions.

use std::io::Read;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tract_onnx::pb;

/// One input or output tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    /// OIP datatype: BOOL, UINT8 … UINT64, INT8 … INT64, FP16, FP32, FP64, BF16, BYTES.
    pub datatype: String,
    /// Dimensions; -1 where the model leaves a dimension symbolic (e.g. the batch).
    pub shape: Vec<i64>,
    /// The names the file gives its free dimensions (`batch`, `height`), one per dimension,
    /// empty where a dimension is fixed or unnamed; empty when the file names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dim_params: Vec<String>,
}

/// What a model file is and what it takes and returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub sha256: String,
    pub size_bytes: u64,
    /// The default-domain (`ai.onnx`) opset version; 0 when the model imports only other
    /// domains.
    pub opset: i64,
    /// Every operator set the model imports, as `DOMAIN vVERSION` (`ai.onnx v17`,
    /// `com.microsoft v1`), for messages about operators tract does not know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opset_imports: Vec<String>,
    /// Operator settings tract would silently ignore, giving wrong answers: the server
    /// refuses such a model instead (see [`ignored_settings`]).
    #[serde(skip)]
    pub refusals: Vec<String>,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// Why a signature could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: is a directory, not a model file")]
    IsDirectory { path: PathBuf },
    #[error("{path}: cannot be read: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is not an ONNX model ({reason})")]
    NotOnnx { path: PathBuf, reason: String },
}

/// The OIP datatype for an ONNX `TensorProto.DataType` code.
pub fn oip_datatype(onnx_elem_type: i32) -> Option<&'static str> {
    Some(match onnx_elem_type {
        1 => "FP32",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "BYTES",
        9 => "BOOL",
        10 => "FP16",
        11 => "FP64",
        12 => "UINT32",
        13 => "UINT64",
        16 => "BF16",
        _ => return None,
    })
}

/// sha256 (hex) and size of a file, read in chunks (never whole in memory).
/// [`file_digest`] on a blocking thread.
pub async fn file_digest_async(path: &Path) -> std::io::Result<(String, u64)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || file_digest(&p))
        .await
        .map_err(std::io::Error::other)?
}

pub fn file_digest(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

fn spec(v: &pb::ValueInfoProto, path: &Path) -> Result<TensorSpec, SignatureError> {
    use pb::tensor_shape_proto::dimension::Value as Dim;
    use pb::type_proto::Value as T;
    let not_onnx = |reason: String| SignatureError::NotOnnx {
        path: path.to_path_buf(),
        reason,
    };
    let Some(T::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(not_onnx(format!(
            "{:?} is not a tensor (sequences and maps are not served)",
            v.name
        )));
    };
    let datatype = oip_datatype(t.elem_type).ok_or_else(|| {
        not_onnx(format!(
            "{:?} has unsupported element type {}",
            v.name, t.elem_type
        ))
    })?;
    let dims = t
        .shape
        .as_ref()
        .map(|s| s.dim.as_slice())
        .unwrap_or_default();
    let shape = dims
        .iter()
        .map(|d| match d.value {
            Some(Dim::DimValue(n)) if n >= 0 => n,
            _ => -1,
        })
        .collect();
    let mut dim_params: Vec<String> = dims
        .iter()
        .map(|d| match &d.value {
            Some(Dim::DimParam(p)) if is_identifier(p) => p.clone(),
            _ => String::new(),
        })
        .collect();
    if dim_params.iter().all(String::is_empty) {
        dim_params.clear();
    }
    Ok(TensorSpec {
        name: v.name.clone(),
        datatype: datatype.to_string(),
        shape,
        dim_params,
    })
}

/// Operator settings that tract 0.23 accepts but does not implement, so that the model
/// would load and answer wrongly (found by the ONNX backend node tests,
/// serve/tests/conformance): RNN, GRU and LSTM `direction = "reverse"` (computed forward),
/// SpaceToDepth `mode = "CRD"` (computed as DCR), Attention windows
/// (`left_window_size`/`right_window_size`) and a causal Attention with a past key (the mask
/// is not shifted), Swish `alpha` other than 1. Subgraphs are searched too.
pub fn ignored_settings(graph: &pb::GraphProto, out: &mut Vec<String>) {
    for node in &graph.node {
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        let text = |name: &str| attr(name).map(|a| String::from_utf8_lossy(&a.s).into_owned());
        let int = |name: &str| attr(name).map(|a| a.i);
        let what = |setting: String| {
            format!(
                "node {:?} ({}): {setting}, which tract does not implement (it would answer wrongly)",
                node.name, node.op_type
            )
        };
        match node.op_type.as_str() {
            "RNN" | "GRU" | "LSTM" if text("direction").as_deref() == Some("reverse") => {
                out.push(what("direction = \"reverse\"".into()))
            }
            "SpaceToDepth" if text("mode").as_deref() == Some("CRD") => {
                out.push(what("mode = \"CRD\"".into()))
            }
            "Attention" => {
                for w in ["left_window_size", "right_window_size"] {
                    if int(w).is_some_and(|v| v >= 0) {
                        out.push(what(format!("{w} = {}", int(w).unwrap_or_default())));
                    }
                }
                let past = node.input.get(4).is_some_and(|i| !i.is_empty());
                if past && int("is_causal") == Some(1) {
                    out.push(what("is_causal = 1 with a past_key input".into()));
                }
            }
            "Swish" => {
                if let Some(a) = attr("alpha").filter(|a| a.f != 1.0) {
                    out.push(what(format!("alpha = {}", a.f)));
                }
            }
            _ => {}
        }
        for a in &node.attribute {
            if let Some(g) = &a.g {
                ignored_settings(g, out);
            }
            for g in &a.graphs {
                ignored_settings(g, out);
            }
        }
    }
}

/// A dimension name usable as a symbol: `batch`, `height`, `seq_len` (not `2*N`).
fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Reads the signature of the ONNX model at `path`.
pub fn read(path: &Path) -> Result<Signature, SignatureError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SignatureError::NotFound {
            path: path.to_path_buf(),
        },
        _ => SignatureError::Unreadable {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if meta.is_dir() {
        return Err(SignatureError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let (sha256, size_bytes) = file_digest(path).map_err(|e| SignatureError::Unreadable {
        path: path.to_path_buf(),
        source: e,
    })?;
    let not_onnx = |reason: String| SignatureError::NotOnnx {
        path: path.to_path_buf(),
        reason,
    };
    // Only the protobuf is needed for a signature: decode it with tract-onnx's ONNX
    // message types, without building tract's operator registry or the model.
    let bytes = std::fs::read(path).map_err(|e| SignatureError::Unreadable {
        path: path.to_path_buf(),
        source: e,
    })?;
    let proto = pb::ModelProto::decode(bytes.as_slice())
        .map_err(|e| not_onnx(format!("protobuf decoding failed: {e}")))?;
    if proto.ir_version <= 0 {
        return Err(not_onnx("no ONNX IR version".into()));
    }
    let Some(graph) = proto.graph.as_ref() else {
        return Err(not_onnx("no graph".into()));
    };
    if graph.output.is_empty() {
        return Err(not_onnx("the graph has no outputs".into()));
    }
    if proto.opset_import.is_empty() {
        return Err(not_onnx("it imports no opset".into()));
    }
    // A model made only of operators from other domains (com.microsoft, ai.onnx.ml) is
    // still a model; whether tract runs those operators is told when it loads.
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .map(|i| spec(i, path))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = graph
        .output
        .iter()
        .map(|o| spec(o, path))
        .collect::<Result<Vec<_>, _>>()?;
    let opset_imports = proto
        .opset_import
        .iter()
        .map(|o| {
            let domain = if o.domain.is_empty() {
                "ai.onnx"
            } else {
                &o.domain
            };
            format!("{domain} v{}", o.version)
        })
        .collect();
    let mut refusals = Vec::new();
    ignored_settings(graph, &mut refusals);
    Ok(Signature {
        sha256,
        size_bytes,
        opset,
        opset_imports,
        refusals,
        inputs,
        outputs,
    })
}
