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

/// How a model is loaded, beyond its file.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub device: Device,
    /// Declared input shapes that pin what the file leaves free.
    pub inputs: Vec<crate::config::InputShape>,
    /// Plans kept for a model that tract can only optimise for concrete shapes.
    pub plan_cache_size: usize,
    /// Optimise per concrete input shape even when tract can plan with free dimensions.
    pub plan_per_shape: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            inputs: Vec::new(),
            plan_cache_size: 16,
            plan_per_shape: false,
        }
    }
}

/// The most elements any tensor of a run may have (see [`crate::tensor::MAX_ELEMENTS`]).
pub use crate::tensor::MAX_ELEMENTS;

/// One dimension of an input as the server checks it.
#[derive(Clone, Debug)]
enum InputDim {
    Fixed(usize),
    /// Free: its symbol, and the name messages use.
    Free(Symbol, String),
}

/// A plan optimised with symbolic dimensions (one for every shape), or, for a model tract
/// can only optimise for concrete shapes, one plan per distinct set of input shapes.
enum Plan {
    Symbolic {
        plan: Arc<TypedRunnableModel>,
        /// Shapes in the plan that depend on the free dimensions, checked per request so that
        /// no shape runs that would make a dimension negative or a tensor absurdly large.
        guarded: Vec<(String, TVec<TDim>)>,
    },
    PerShape {
        source: Box<InferenceModel>,
        device: Device,
        cache: std::sync::Mutex<PlanCache>,
    },
}

/// A plan, or why these shapes cannot be planned.
type Planned = Result<Arc<TypedRunnableModel>, String>;

/// Least-recently-used plans by input shapes, with failures remembered too (a shape that
/// cannot be planned is refused at once the next time).
pub struct PlanCache {
    capacity: usize,
    tick: u64,
    entries: std::collections::HashMap<Vec<Vec<usize>>, (u64, Planned)>,
    pub hits: u64,
    pub misses: u64,
}

impl PlanCache {
    fn new(capacity: usize) -> Self {
        PlanCache {
            capacity: capacity.max(1),
            tick: 0,
            entries: Default::default(),
            hits: 0,
            misses: 0,
        }
    }
    fn get(&mut self, key: &[Vec<usize>]) -> Option<Planned> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.get_mut(key)?;
        e.0 = tick;
        Some(e.1.clone())
    }
    fn put(&mut self, key: Vec<Vec<usize>>, v: Planned) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(key, (self.tick, v));
    }
}

/// A model ready to run.
pub struct Model {
    pub name: String,
    pub version: String,
    pub signature: Signature,
    plan: Plan,
    /// Each input's dimensions: fixed sizes and free symbols.
    dims: Vec<Vec<InputDim>>,
    /// Every input and output has a symbolic leading dimension: requests can be batched.
    pub batchable: bool,
    pub load_time: Duration,
    /// Drift statistics against the model's baseline, when it has one.
    pub drift: Option<crate::drift::DriftMonitor>,
    /// Plan-cache counters, when the model plans per shape: (hits, misses).
    pub plan_cache_metrics: Option<(prometheus::IntCounter, prometheus::IntCounter)>,
    /// Request and compute statistics (Triton's statistics extension).
    pub stats: crate::stats::ModelStats,
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

/// Runs `f`, turning a panic inside tract into an error with its message.
fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "no message".into());
            Err(format!("{what}: tract panicked: {msg}"))
        }
    }
}

/// The element count of a shape, saturating (an absurd shape compares as absurd).
fn volume(shape: impl IntoIterator<Item = u64>) -> u64 {
    shape.into_iter().fold(1u64, |a, d| a.saturating_mul(d))
}

impl Model {
    /// Loads on the CPU; see [`Model::load_with`].
    pub fn load(
        name: &str,
        version: &str,
        path: &Path,
        expected_sha256: Option<&str>,
    ) -> Result<Model, LoadError> {
        Model::load_with(
            name,
            version,
            path,
            expected_sha256,
            &LoadOptions::default(),
        )
    }

    /// Loads on `device`; see [`Model::load_with`].
    pub fn load_on(
        name: &str,
        version: &str,
        path: &Path,
        expected_sha256: Option<&str>,
        device: Device,
    ) -> Result<Model, LoadError> {
        let o = LoadOptions {
            device,
            ..LoadOptions::default()
        };
        Model::load_with(name, version, path, expected_sha256, &o)
    }

    /// Loads, checks the digest (when `expected_sha256` is given), gives every free dimension
    /// its own symbol (named as the file names it, pinned where `options.inputs` declares
    /// it), optimises for `device` and warms up. A model tract cannot optimise with symbolic
    /// shapes is kept and optimised per concrete request shape instead. Nothing tract does
    /// here can panic the caller: a panic becomes a load error.
    pub fn load_with(
        name: &str,
        version: &str,
        path: &Path,
        expected_sha256: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Model, LoadError> {
        let started = Instant::now();
        let mut sig = signature::read(path)?;
        if let Some(want) = expected_sha256 {
            if !want.eq_ignore_ascii_case(&sig.sha256) {
                return Err(LoadError::DigestMismatch {
                    path: path.display().to_string(),
                    expected: want.to_string(),
                    actual: sig.sha256,
                });
            }
        }
        let tract_fail = |reason: String| LoadError::Tract {
            path: path.display().to_string(),
            reason,
        };
        if !sig.refusals.is_empty() {
            return Err(tract_fail(sig.refusals.join("; ")));
        }
        let mut model = no_panic("reading the model", || {
            tract_onnx::onnx()
                .model_for_path(path)
                .map_err(|e| format!("{e:#}"))
        })
        .map_err(|e| {
            tract_fail(format!(
                "{e} (the model imports {})",
                sig.opset_imports.join(", ")
            ))
        })?;
        let unknown: Vec<String> = model
            .nodes()
            .iter()
            .filter_map(|n| {
                let op = n.op.name();
                op.strip_prefix("Unimplemented(")
                    .and_then(|o| o.strip_suffix(')'))
                    .map(|o| format!("{o} (node {:?})", n.name))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(tract_fail(format!(
                "tract has no implementation of the operator{} {}; the model imports {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                sig.opset_imports.join(", ")
            )));
        }
        apply_declared_shapes(&mut sig.inputs, &options.inputs).map_err(LoadError::Other)?;
        // Symbols: one per free dimension, named as the file (or the declaration) names it;
        // an unnamed leading dimension is the batch, `N`, shared by every input.
        let mut dims = Vec::with_capacity(sig.inputs.len());
        for (i, spec) in sig.inputs.iter().enumerate() {
            let dt = Datatype::parse(&spec.datatype)
                .map_err(|e| LoadError::Other(format!("input {:?}: {e}", spec.name)))?
                .to_tract();
            let mut these = Vec::with_capacity(spec.shape.len());
            for (j, d) in spec.shape.iter().enumerate() {
                these.push(if *d >= 0 {
                    InputDim::Fixed(*d as usize)
                } else {
                    let named = spec.dim_params.get(j).filter(|p| !p.is_empty());
                    let label = match named {
                        Some(p) => p.clone(),
                        None if j == 0 => "N".to_string(),
                        None => format!("{}[{j}]", spec.name),
                    };
                    let sym = match named {
                        Some(p) => model.symbols.sym(p),
                        None if j == 0 => model.symbols.sym("N"),
                        None => model.symbols.new_with_prefix("free"),
                    };
                    InputDim::Free(sym, label)
                });
            }
            let facts: TVec<TDim> = these
                .iter()
                .map(|d| match d {
                    InputDim::Fixed(n) => n.to_dim(),
                    InputDim::Free(s, _) => s.to_dim(),
                })
                .collect();
            model
                .set_input_fact(i, InferenceFact::dt_shape(dt, facts))
                .map_err(|e| tract_err(path, e))?;
            dims.push(these);
        }
        let free_beyond_batch = dims
            .iter()
            .any(|d| d.iter().skip(1).any(|x| matches!(x, InputDim::Free(..))));
        // Optimised once with the free dimensions symbolic, when tract can; the device
        // transform comes after, so that its failure (no CUDA here) is the load's failure and
        // never mistaken for a model that needs per-shape plans.
        let symbolic = if options.plan_per_shape {
            Err("plan_per_shape is set".to_string())
        } else {
            let m = model.clone();
            no_panic("optimising the model", move || {
                m.into_optimized().map_err(|e| format!("{e:#}"))
            })
        };
        let plan = match symbolic {
            Ok(typed) => {
                let typed = on_device(typed, options.device).map_err(tract_fail)?;
                let plan = no_panic("preparing the plan", move || {
                    typed.into_runnable().map_err(|e| format!("{e:#}"))
                })
                .map_err(tract_fail)?;
                let guarded = guarded_shapes(&plan);
                Plan::Symbolic { plan, guarded }
            }
            Err(reason) => {
                tracing::info!(model = name, version, reason = %reason, "tract cannot optimise this model with free dimensions; it is planned per input shape");
                Plan::PerShape {
                    source: Box::new(model),
                    device: options.device,
                    cache: std::sync::Mutex::new(PlanCache::new(options.plan_cache_size)),
                }
            }
        };
        let batchable = matches!(plan, Plan::Symbolic { .. })
            && !sig.inputs.is_empty()
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
            dims,
            batchable,
            load_time: Duration::ZERO,
            drift: None,
            plan_cache_metrics: None,
            stats: Default::default(),
        };
        // Warm up with batch 1, unless a free dimension other than the batch has no size
        // that can be assumed (a 1x1 image is too small for most image models).
        // Synthetic inputs can be invalid for a model that is fine (a dropout ratio of 1, an
        // index out of range): a failed warm-up is logged, not a refusal; the model's first
        // real request tells.
        if !free_beyond_batch {
            if let Err(e) = m.warm_up() {
                tracing::warn!(model = name, version, reason = %e, "the warm-up run on ones failed; the model is served, its first request pays the set-up");
            }
        }
        Ok(Model {
            load_time: started.elapsed(),
            ..m
        })
    }

    /// What the loaded model takes in memory, for a shared endpoint's budget: the constant
    /// tensors (weights) of its plan plus a little for the graph. A model planned per input
    /// shape keeps its source and a plan per shape: twice its file is assumed.
    pub fn resident_bytes(&self) -> u64 {
        const GRAPH: u64 = crate::shared::OVERHEAD;
        match &self.plan {
            Plan::Symbolic { plan, .. } => {
                let weights: u64 = plan
                    .model()
                    .nodes()
                    .iter()
                    .filter_map(|n| n.op_as::<tract_onnx::tract_core::ops::konst::Const>())
                    .map(|c| c.val().len() as u64 * c.val().datum_type().size_of() as u64)
                    .sum();
                weights + GRAPH
            }
            Plan::PerShape { .. } => 2 * self.signature.size_bytes + GRAPH,
        }
    }

    /// True when tract plans this model per input shape (it could not optimise it with free
    /// dimensions).
    pub fn plans_per_shape(&self) -> bool {
        matches!(self.plan, Plan::PerShape { .. })
    }

    /// Plan-cache counters (hits, misses) when the model plans per shape.
    pub fn plan_cache_counts(&self) -> Option<(u64, u64)> {
        match &self.plan {
            Plan::PerShape { cache, .. } => {
                let c = cache.lock().unwrap_or_else(|p| p.into_inner());
                Some((c.hits, c.misses))
            }
            Plan::Symbolic { .. } => None,
        }
    }

    /// Runs the model once on ones (batch 1; empty strings for BYTES) so the first request
    /// pays no set-up cost. Ones, not zeros: an integer division by an input must not divide
    /// by zero.
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
                let internal = |e: TractError| ServeError::Internal(format!("{e:#}"));
                if dt == DatumType::String {
                    let n = shape.iter().product();
                    return tract_onnx::prelude::tract_ndarray::ArrayD::from_shape_vec(
                        shape,
                        vec![String::new(); n],
                    )
                    .map(|a| a.into_tensor())
                    .map_err(|e| ServeError::Internal(e.to_string()));
                }
                let n: usize = shape.iter().product();
                let ones = Tensor::from_shape(&shape, &vec![1.0f64; n]).map_err(internal)?;
                Ok(ones.cast_to_dt(dt).map_err(internal)?.into_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.check_dims(&inputs)?;
        self.run(inputs).map(|_| ())
    }

    /// Orders and checks request tensors against the signature: names, datatypes, ranks,
    /// fixed sizes, and free dimensions that must agree between inputs.
    pub fn prepare(&self, named: Vec<NamedTensor>) -> Result<Vec<Tensor>, ServeError> {
        if named.is_empty() && !self.signature.inputs.is_empty() {
            let names: Vec<&str> = self
                .signature
                .inputs
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            return Err(ServeError::BadRequest(format!(
                "the request has no inputs; model {} takes {names:?}",
                self.name
            )));
        }
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
        let inputs = slots
            .into_iter()
            .zip(&self.signature.inputs)
            .map(|(t, s)| {
                t.ok_or_else(|| ServeError::BadRequest(format!("input {:?} is missing", s.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.check_dims(&inputs)?;
        Ok(inputs)
    }

    /// The values of the free dimensions in `inputs`; a dimension given two different sizes
    /// is the client's mistake, as is a size the plan cannot take.
    fn check_dims(&self, inputs: &[Tensor]) -> Result<(), ServeError> {
        let mut values = SymbolValues::default();
        let mut seen: Vec<(&Symbol, usize, &str, &str)> = Vec::new();
        for ((t, dims), spec) in inputs.iter().zip(&self.dims).zip(&self.signature.inputs) {
            if volume(t.shape().iter().map(|d| *d.max(&1) as u64)) > MAX_ELEMENTS {
                return Err(ServeError::BadRequest(format!(
                    "input {:?} has shape {:?}: more than {MAX_ELEMENTS} elements",
                    spec.name,
                    t.shape()
                )));
            }
            for (d, given) in dims.iter().zip(t.shape()) {
                let InputDim::Free(sym, label) = d else {
                    continue;
                };
                if let Some((_, before, other, _)) = seen.iter().find(|(s, ..)| *s == sym) {
                    if *before != *given {
                        return Err(ServeError::BadRequest(format!(
                            "inputs {other:?} and {:?} disagree on dimension {label:?}: {before} vs {given}; the model needs the same size in both",
                            spec.name
                        )));
                    }
                    continue;
                }
                seen.push((sym, *given, &spec.name, label));
                values.set(sym, *given as i64);
            }
        }
        if let Plan::Symbolic { guarded, .. } = &self.plan {
            for (node, shape) in guarded {
                let concrete: Vec<i64> = shape
                    .iter()
                    .filter_map(|d| d.eval(&values).as_i64())
                    .collect();
                shape_fits(node, &concrete).map_err(|reason| {
                    ServeError::BadRequest(format!(
                        "input shapes {:?} are {reason}",
                        inputs
                            .iter()
                            .map(|t| t.shape().to_vec())
                            .collect::<Vec<_>>()
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// The plan for these inputs: the symbolic one, or the one for their shapes (built on
    /// first use and cached).
    fn plan_for(&self, inputs: &[Tensor]) -> Result<Arc<TypedRunnableModel>, ServeError> {
        let (source, device, cache) = match &self.plan {
            Plan::Symbolic { plan, .. } => return Ok(plan.clone()),
            Plan::PerShape {
                source,
                device,
                cache,
            } => (source, *device, cache),
        };
        let key: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        let cached = {
            let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
            let r = c.get(&key);
            if r.is_some() {
                c.hits += 1;
            }
            r
        };
        let built = match cached {
            Some(r) => {
                if let Some((hits, _)) = &self.plan_cache_metrics {
                    hits.inc();
                }
                r
            }
            None => {
                let started = Instant::now();
                let r = plan_concrete(source, inputs, device);
                tracing::info!(model = %self.name, version = %self.version, shapes = ?key, ms = started.elapsed().as_millis() as u64, ok = r.is_ok(), "planned for new input shapes");
                let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
                c.misses += 1;
                if let Some((_, misses)) = &self.plan_cache_metrics {
                    misses.inc();
                }
                c.put(key, r.clone());
                r
            }
        };
        built.map_err(|reason| {
            ServeError::BadRequest(format!(
                "model {} cannot run on input shapes {:?}: {reason}",
                self.name,
                inputs
                    .iter()
                    .map(|t| t.shape().to_vec())
                    .collect::<Vec<_>>()
            ))
        })
    }

    /// Runs the plan; outputs come in signature order.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ServeError> {
        let plan = self.plan_for(&inputs)?;
        let out = no_panic("running the model", || {
            plan.run(inputs.into_iter().map(|t| t.into_tvalue()).collect())
                .map_err(|e| format!("{e:#}"))
        })
        .map_err(|e| ServeError::Internal(format!("model {} v{}: {e}", self.name, self.version)))?;
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

/// Shapes of the optimised plan that depend on free dimensions (beyond a bare symbol, which
/// a request sets directly), one per distinct shape, labelled by a node that has it.
fn guarded_shapes(plan: &TypedRunnableModel) -> Vec<(String, TVec<TDim>)> {
    let mut out: Vec<(String, TVec<TDim>)> = Vec::new();
    let model = plan.model();
    for node in model.nodes() {
        for o in &node.outputs {
            let shape: TVec<TDim> = o.fact.shape.iter().cloned().collect();
            let symbolic = shape.iter().any(|d| d.as_i64().is_none());
            let only_bare = shape
                .iter()
                .all(|d| d.as_i64().is_some() || matches!(d, TDim::Sym(_)));
            if symbolic && !only_bare && !out.iter().any(|(_, s)| *s == shape) {
                out.push((format!("node {:?}", node.name), shape));
            }
        }
    }
    out
}

/// Whether a tensor of `dims` (the known ones) can exist: no negative dimension (an input
/// too small, say, for a convolution's window) and at most [`MAX_ELEMENTS`] elements.
fn shape_fits(node: &str, dims: &[i64]) -> Result<(), String> {
    if let Some(neg) = dims.iter().find(|d| **d < 0) {
        return Err(format!("too small: {node} would get a dimension of {neg}"));
    }
    if volume(dims.iter().map(|d| (*d as u64).max(1))) > MAX_ELEMENTS {
        return Err(format!(
            "too large: {node} would have shape {dims:?}, more than {MAX_ELEMENTS} elements"
        ));
    }
    Ok(())
}

/// Optimises `source` for the concrete shapes of `inputs`, refusing shapes that would make a
/// dimension negative or a tensor absurdly large.
fn plan_concrete(
    source: &InferenceModel,
    inputs: &[Tensor],
    device: Device,
) -> Result<Arc<TypedRunnableModel>, String> {
    no_panic("planning for these shapes", || {
        let mut m = source.clone();
        for (i, t) in inputs.iter().enumerate() {
            m.set_input_fact(i, InferenceFact::dt_shape(t.datum_type(), t.shape()))
                .map_err(|e| format!("{e:#}"))?;
        }
        let typed = m.into_typed().map_err(|e| format!("{e:#}"))?;
        for node in typed.nodes() {
            for o in &node.outputs {
                let dims: Vec<i64> = o.fact.shape.iter().filter_map(|d| d.as_i64()).collect();
                shape_fits(&format!("node {:?}", node.name), &dims)
                    .map_err(|reason| format!("they are {reason}"))?;
            }
        }
        let typed = typed.into_optimized().map_err(|e| format!("{e:#}"))?;
        let typed = on_device(typed, device)?;
        typed.into_runnable().map_err(|e| format!("{e:#}"))
    })
}

/// Applies declared input shapes to the signature: a size pins a free dimension, a name
/// makes it a named free dimension; a declaration that contradicts the file is refused.
pub fn apply_declared_shapes(
    inputs: &mut [TensorSpec],
    declared: &[crate::config::InputShape],
) -> Result<(), String> {
    use crate::config::Dim;
    for d in declared {
        let Some(spec) = inputs.iter_mut().find(|s| s.name == d.name) else {
            let names: Vec<&str> = inputs.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "inputs: the model has no input {:?}; its inputs are {names:?}",
                d.name
            ));
        };
        if d.shape.len() != spec.shape.len() {
            return Err(format!(
                "inputs: {:?} is declared with {} dimensions, but the model's input has {} ({:?})",
                d.name,
                d.shape.len(),
                spec.shape.len(),
                spec.shape
            ));
        }
        if spec.dim_params.len() != spec.shape.len() {
            spec.dim_params = vec![String::new(); spec.shape.len()];
        }
        for (j, want) in d.shape.iter().enumerate() {
            let file = spec.shape[j];
            match want {
                Dim::Size(-1) => {}
                Dim::Size(n) if file >= 0 && file != *n => {
                    return Err(format!(
                        "inputs: {:?} dimension {j} is declared {n}, but the model fixes it at {file}",
                        d.name
                    ))
                }
                Dim::Size(n) => {
                    spec.shape[j] = *n;
                    spec.dim_params[j].clear();
                }
                Dim::Named(name) if file >= 0 => {
                    return Err(format!(
                        "inputs: {:?} dimension {j} is declared free ({name:?}), but the model fixes it at {file}",
                        d.name
                    ))
                }
                Dim::Named(name) => spec.dim_params[j] = name.clone(),
            }
        }
        if spec.dim_params.iter().all(String::is_empty) {
            spec.dim_params.clear();
        }
    }
    Ok(())
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
