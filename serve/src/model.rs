//! A loaded model: an ONNX file turned by tract into an optimised, runnable plan, with
//! symbolic dimensions (such as the batch) kept symbolic, and warmed up before use.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

use crate::error::ServeError;
use crate::signature::{self, Signature, TensorSpec};
use crate::tensor::{Datatype, NamedTensor};

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error("{path}: sha256 is {actual}, but model.json records {expected}; the artifact was changed or corrupted, refusing to load it")]
    DigestMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: tract cannot load this model: {reason}")]
    Tract { path: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// Where a model computes.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Cpu,
    /// An NVIDIA GPU through tract's CUDA backend (build with `--features cuda`).
    Cuda,
}

/// A model ready to run.
pub struct Model {
    pub name: String,
    pub version: String,
    pub signature: Signature,
    plan: Arc<TypedRunnableModel>,
    /// Every input and output has a symbolic leading dimension: requests can be batched.
    pub batchable: bool,
    pub load_time: Duration,
    /// Drift statistics against the model's baseline, when it has one.
    pub drift: Option<crate::drift::DriftMonitor>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

fn tract_err(path: &Path, e: impl std::fmt::Display) -> LoadError {
    LoadError::Tract {
        path: path.display().to_string(),
        reason: format!("{e:#}"),
    }
}

impl Model {
    /// Loads on the CPU; see [`Model::load_on`].
    pub fn load(
        name: &str,
        version: &str,
        path: &Path,
        expected_sha256: Option<&str>,
    ) -> Result<Model, LoadError> {
        Model::load_on(name, version, path, expected_sha256, Device::Cpu)
    }

    /// Loads, checks the digest (when `expected_sha256` is given), optimises for `device`
    /// and warms up.
    pub fn load_on(
        name: &str,
        version: &str,
        path: &Path,
        expected_sha256: Option<&str>,
        device: Device,
    ) -> Result<Model, LoadError> {
        let started = Instant::now();
        let sig = signature::read(path)?;
        if let Some(want) = expected_sha256 {
            if !want.eq_ignore_ascii_case(&sig.sha256) {
                return Err(LoadError::DigestMismatch {
                    path: path.display().to_string(),
                    expected: want.to_string(),
                    actual: sig.sha256,
                });
            }
        }
        let mut model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| tract_err(path, e))?;
        for (i, spec) in sig.inputs.iter().enumerate() {
            let dt = Datatype::parse(&spec.datatype)
                .map_err(|e| LoadError::Other(e.to_string()))?
                .to_tract();
            let dims: TVec<TDim> = spec
                .shape
                .iter()
                .enumerate()
                .map(|(j, d)| {
                    if *d < 0 {
                        model.symbols.sym(if j == 0 { "N" } else { "S" }).to_dim()
                    } else {
                        (*d as usize).to_dim()
                    }
                })
                .collect();
            model
                .set_input_fact(i, InferenceFact::dt_shape(dt, dims))
                .map_err(|e| tract_err(path, e))?;
        }
        let typed = model.into_optimized().map_err(|e| tract_err(path, e))?;
        let typed = on_device(typed, device).map_err(|reason| LoadError::Tract {
            path: path.display().to_string(),
            reason,
        })?;
        let plan = typed.into_runnable().map_err(|e| tract_err(path, e))?;
        let batchable = !sig.inputs.is_empty()
            && sig
                .inputs
                .iter()
                .chain(sig.outputs.iter())
                .all(|s| s.shape.first() == Some(&-1));
        let m = Model {
            name: name.to_string(),
            version: version.to_string(),
            signature: sig,
            plan,
            batchable,
            load_time: Duration::ZERO,
            drift: None,
        };
        m.warm_up().map_err(|e| tract_err(path, e))?;
        Ok(Model {
            load_time: started.elapsed(),
            ..m
        })
    }

    /// Runs the model once on zeros (batch 1) so the first request pays no set-up cost.
    fn warm_up(&self) -> Result<(), ServeError> {
        let inputs = self
            .signature
            .inputs
            .iter()
            .map(|s| {
                let shape: Vec<usize> = s
                    .shape
                    .iter()
                    .map(|d| if *d < 0 { 1 } else { *d as usize })
                    .collect();
                let dt = Datatype::parse(&s.datatype)?.to_tract();
                Tensor::zero_dt(dt, &shape).map_err(|e| ServeError::Internal(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.run(inputs).map(|_| ())
    }

    /// Orders and checks request tensors against the signature.
    pub fn prepare(&self, named: Vec<NamedTensor>) -> Result<Vec<Tensor>, ServeError> {
        let mut slots: Vec<Option<Tensor>> = vec![None; self.signature.inputs.len()];
        for nt in named {
            let Some(i) = self.signature.inputs.iter().position(|s| s.name == nt.name) else {
                let known: Vec<&str> = self
                    .signature
                    .inputs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                return Err(ServeError::BadRequest(format!(
                    "model {} has no input {:?}; its inputs are {known:?}",
                    self.name, nt.name
                )));
            };
            let spec = &self.signature.inputs[i];
            check_tensor(spec, &nt)?;
            if slots[i].replace(nt.tensor).is_some() {
                return Err(ServeError::BadRequest(format!(
                    "input {:?} is given twice",
                    spec.name
                )));
            }
        }
        slots
            .into_iter()
            .zip(&self.signature.inputs)
            .map(|(t, s)| {
                t.ok_or_else(|| ServeError::BadRequest(format!("input {:?} is missing", s.name)))
            })
            .collect()
    }

    /// Runs the plan; outputs come in signature order.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ServeError> {
        let out = self
            .plan
            .run(inputs.into_iter().map(|t| t.into_tvalue()).collect())
            .map_err(|e| {
                ServeError::Internal(format!("model {} v{}: {e:#}", self.name, self.version))
            })?;
        // tract may compute an output in another representation (an INT64 index as a
        // symbolic dimension, say): hand back what the signature declares.
        out.into_iter()
            .zip(&self.signature.outputs)
            .map(|(v, spec)| {
                let t = v.into_tensor();
                let want = Datatype::parse(&spec.datatype)?.to_tract();
                if t.datum_type() == want {
                    Ok(t)
                } else {
                    t.cast_to_dt(want).map(|c| c.into_owned()).map_err(|e| {
                        ServeError::Internal(format!(
                            "model {}: output {} as {}: {e}",
                            self.name, spec.name, spec.datatype
                        ))
                    })
                }
            })
            .collect()
    }
}

impl Model {
    /// True when the model is a classifier: it has an integer label output.
    pub fn is_classifier(&self) -> bool {
        self.signature
            .outputs
            .iter()
            .any(|o| o.datatype.starts_with("INT") && o.shape.len() == 1)
    }

    /// One prediction per row: the label output of a classifier (or the argmax of its
    /// scores), else the first output's value per row.
    pub fn predictions(&self, outputs: &[Tensor]) -> Option<Vec<f64>> {
        let as_f64 = |t: &Tensor| -> Option<Vec<f64>> {
            let c = t.cast_to_dt(DatumType::F64).ok()?;
            c.as_plain_ram()?.as_slice::<f64>().ok().map(|s| s.to_vec())
        };
        if let Some(i) = self
            .signature
            .outputs
            .iter()
            .position(|o| o.datatype.starts_with("INT") && o.shape.len() == 1)
        {
            return as_f64(outputs.get(i)?);
        }
        let o = outputs.first()?;
        let v = as_f64(o)?;
        match o.shape() {
            [_] => Some(v),
            [_, 1] => Some(v),
            [_, k] => Some(
                v.chunks(*k)
                    .map(|r| {
                        r.iter()
                            .enumerate()
                            .fold(
                                (0usize, f64::MIN),
                                |b, (i, x)| if *x > b.1 { (i, *x) } else { b },
                            )
                            .0 as f64
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Feeds the drift monitor with a request's rows and predictions.
    pub fn observe(&self, first_input: &Tensor, predictions: Option<&[f64]>) {
        let Some(d) = &self.drift else { return };
        if first_input.rank() != 2 || first_input.shape()[1] != d.features() {
            return;
        }
        let Ok(c) = first_input.cast_to_dt(DatumType::F64) else {
            return;
        };
        if let Some(rows) = c.as_plain_ram().and_then(|v| v.as_slice::<f64>().ok()) {
            d.record(rows, predictions);
        }
    }
}

#[cfg(feature = "cuda")]
fn on_device(mut m: TypedModel, device: Device) -> Result<TypedModel, String> {
    if device == Device::Cpu {
        return Ok(m);
    }
    // tract-cuda panics when no CUDA driver or GPU is there: turn that into an error.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tract_onnx::tract_core::transform::ModelTransform::transform(
            &tract_cuda::CudaTransform,
            &mut m,
        )
    }));
    match r {
        Ok(Ok(())) => Ok(m),
        Ok(Err(e)) => Err(format!("moving the model to CUDA: {e:#}")),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("device = \"cuda\" but CUDA is not available here ({msg}); use device = \"cpu\" or run on a machine with an NVIDIA driver"))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn on_device(m: TypedModel, device: Device) -> Result<TypedModel, String> {
    match device {
        Device::Cpu => Ok(m),
        Device::Cuda => Err("device = \"cuda\" but this build of modelplane-serve has no CUDA support; build it with `--features cuda`, or use device = \"cpu\"".into()),
    }
}

fn check_tensor(spec: &TensorSpec, nt: &NamedTensor) -> Result<(), ServeError> {
    let dt = nt.datatype();
    if dt.name() != spec.datatype {
        return Err(ServeError::BadRequest(format!(
            "input {:?} has datatype {}, the model expects {}",
            spec.name,
            dt.name(),
            spec.datatype
        )));
    }
    let shape = nt.shape_i64();
    let fits = shape.len() == spec.shape.len()
        && shape.iter().zip(&spec.shape).all(|(g, w)| *w < 0 || g == w);
    if !fits {
        return Err(ServeError::BadRequest(format!(
            "input {:?} has shape {shape:?}, the model expects {:?} (-1: any size)",
            spec.name, spec.shape
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/models/repo")
            .join(name)
            .join("1/model.onnx")
    }

    #[test]
    fn loads_with_a_symbolic_batch_and_runs_any_batch_size() {
        let m = Model::load("iris", "1", &fixture("iris"), None).unwrap();
        assert!(m.batchable);
        for n in [1usize, 3, 17] {
            let x = Tensor::zero::<f32>(&[n, 4]).unwrap();
            let out = m.run(vec![x]).unwrap();
            assert_eq!(out[0].shape(), &[n]);
            assert_eq!(out[1].shape(), &[n, 3]);
        }
    }

    #[test]
    fn cuda_without_support_or_gpu_is_a_clear_error() {
        // Without the feature: the build lacks CUDA. With it, on a machine without a GPU:
        // CUDA is not available. On a GPU machine, the model loads.
        match Model::load_on("iris", "1", &fixture("iris"), None, Device::Cuda) {
            Ok(m) => assert_eq!(
                m.run(vec![Tensor::zero::<f32>(&[2, 4]).unwrap()]).unwrap()[1].shape(),
                &[2, 3]
            ),
            Err(e) => {
                let s = e.to_string();
                assert!(s.contains("device = \"cuda\""), "{s}");
            }
        }
    }

    #[test]
    fn a_digest_mismatch_is_refused() {
        let e = Model::load("iris", "1", &fixture("iris"), Some("00")).unwrap_err();
        assert!(e.to_string().contains("refusing to load"), "{e}");
    }

    #[test]
    fn an_unsupported_operator_is_a_clear_load_error() {
        let e = Model::load("u", "1", &fixture("unsupported"), None).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("tract cannot load this model"), "{s}");
        assert!(s.contains("NoSuchOperator"), "{s}");
    }
}
