//! `modelplane_model_signature`: reads an ONNX file and reports its digest, opset, inputs
//! and outputs, so configurations can check what a model takes before serving it.

use serde::{Deserialize, Serialize};
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, Nesting, Schema, Type,
};

use modelplane_serve::signature::{self, SignatureError};

pub struct ModelSignature;

#[derive(Debug, Serialize, Deserialize)]
pub struct Tensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub path: String,
    pub sha256: Attr<String>,
    pub size_bytes: Attr<i64>,
    pub opset: Attr<i64>,
    pub inputs: Attr<Vec<Tensor>>,
    pub outputs: Attr<Vec<Tensor>>,
}

/// An unreadable model as a diagnostic on the attribute `attr` that names the file, with
/// what to do about it. Shared with `modelplane_model`.
pub fn signature_error(diags: &mut Diagnostics, attr: &str, e: SignatureError) {
    let (summary, hint) = match &e {
        SignatureError::NotFound { .. } => ("Model file not found", "Check the path; relative paths are resolved from the directory where terraform runs, so prefer \"${path.module}/…\"."),
        SignatureError::IsDirectory { .. } => ("Model path is a directory", "Point it at the .onnx file inside it."),
        SignatureError::Unreadable { .. } => ("Model file cannot be read", "Check the file's permissions."),
        SignatureError::NotOnnx { .. } => ("Not an ONNX model", "Export the model to ONNX (e.g. with skl2onnx, torch.onnx or tf2onnx) and point at the .onnx file."),
    };
    diags.error_at(AttributePath::attr(attr), summary, format!("{e}. {hint}"));
}

/// A signature's tensors in the schema's shape.
pub fn tensors(v: Vec<signature::TensorSpec>) -> Vec<Tensor> {
    v.into_iter()
        .map(|t| Tensor {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
        })
        .collect()
}

/// Schema of one tensor in a signature, shared with `modelplane_model`.
pub fn tensor_attrs() -> Vec<Attribute> {
    vec![
        Attribute::new("name", Type::String).computed().description("Tensor name, as requests must use it."),
        Attribute::new("datatype", Type::String)
            .computed()
            .description("Open Inference Protocol datatype: `BOOL`, `UINT8`…`UINT64`, `INT8`…`INT64`, `FP16`, `FP32`, `FP64`, `BF16` or `BYTES`."),
        Attribute::new("shape", Type::list(Type::Number))
            .computed()
            .description("Dimensions; `-1` marks a symbolic dimension such as the batch size."),
    ]
}

#[tfplugin::async_trait]
impl tfplugin::DataSource for ModelSignature {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_model_signature"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .description(
                    "Reads an ONNX model file and reports its sha256, size, opset and the signature of its inputs \
                     and outputs (names, Open Inference Protocol datatypes and shapes, `-1` for symbolic \
                     dimensions). Use it to check a model before registering or serving it.",
                )
                .attribute(
                    Attribute::new("path", Type::String)
                        .required()
                        .description("Path to the `.onnx` file, relative to the working directory or absolute (use `${path.module}/…`)."),
                )
                .attribute(Attribute::new("sha256", Type::String).computed().description("sha256 of the file, lowercase hex."))
                .attribute(Attribute::new("size_bytes", Type::Number).computed().description("Size of the file in bytes."))
                .attribute(Attribute::new("opset", Type::Number).computed().description("Version of the default (`ai.onnx`) operator set the model imports; 0 when it imports only other domains."))
                .attribute(Attribute::nested("inputs", Nesting::List, tensor_attrs()).computed().description("The model's inputs, in order."))
                .attribute(Attribute::nested("outputs", Nesting::List, tensor_attrs()).computed().description("The model's outputs, in order.")),
        )
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        if let Attr::Known(p) = config.get::<String>("path", diags) {
            if p.trim().is_empty() {
                diags.error_at(
                    AttributePath::attr("path"),
                    "Empty model path",
                    "Set `path` to an .onnx file, e.g. \"${path.module}/model.onnx\".",
                );
            }
        }
    }

    async fn read(&self, mut m: Model, ctx: &mut Ctx) -> Option<Model> {
        let path = std::path::PathBuf::from(&m.path);
        let sig = match tokio::task::spawn_blocking(move || signature::read(&path)).await {
            Ok(Ok(sig)) => sig,
            Ok(Err(e)) => {
                signature_error(&mut ctx.diags, "path", e);
                return None;
            }
            Err(e) => {
                ctx.diags.error_at(
                    AttributePath::attr("path"),
                    "Reading the model failed",
                    e.to_string(),
                );
                return None;
            }
        };
        m.sha256 = Attr::Known(sig.sha256);
        m.size_bytes = Attr::Known(sig.size_bytes as i64);
        m.opset = Attr::Known(sig.opset);
        m.inputs = Attr::Known(tensors(sig.inputs));
        m.outputs = Attr::Known(tensors(sig.outputs));
        Some(m)
    }
}
