//! `modelplane_model`: an immutable model version in a store. Uploads `source` to
//! `STORE/NAME/VERSION/` with `model.json` (sha256, size, signature, lineage, validation
//! report) and, with a `baseline` block, `baseline.json` for drift. The `validation` hook
//! runs the version against a hold-out dataset at apply: a failure registers nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, NestedBlock, Nesting,
    PathStep, Schema, Type,
};

use crate::data_sources::model_signature::{signature_error, tensor_attrs, tensors, Tensor};
use crate::stores::{self, Source, Store, Upload};

pub struct ModelVersion {
    pub config: std::sync::Arc<std::sync::OnceLock<crate::ProviderConfig>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lineage {
    pub code_commit: Attr<String>,
    pub dataset_digest: Attr<String>,
    pub metrics: Attr<BTreeMap<String, f64>>,
    pub tags: Attr<BTreeMap<String, String>>,
    pub description: Attr<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BaselineSpec {
    pub dataset: Attr<String>,
    pub target: Attr<String>,
    pub features: Attr<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ValidationSpec {
    pub dataset: Attr<String>,
    pub target: Attr<String>,
    pub metric: Attr<String>,
    pub min: Attr<f64>,
    pub max: Attr<f64>,
    pub features: Attr<Vec<String>>,
    pub output: Attr<String>,
    pub slice_by: Attr<Vec<String>>,
    pub slice_min: Attr<f64>,
    pub slice_max: Attr<f64>,
    pub slice_thresholds: Attr<BTreeMap<String, f64>>,
    pub max_disparity: Attr<f64>,
    pub min_slice_rows: Attr<i64>,
}

/// Rows a slice needs to be judged when `min_slice_rows` is not given.
const MIN_SLICE_ROWS: i64 = 30;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ValidationReport {
    pub passed: bool,
    pub metric: String,
    pub value: f64,
    pub rows: i64,
    pub dataset_sha256: String,
    pub summary: String,
    /// Reports written before slices existed have none.
    #[serde(default)]
    pub slices: Vec<SliceOutcome>,
    #[serde(default)]
    pub disparity: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SliceOutcome {
    pub name: String,
    pub rows: i64,
    pub value: f64,
    pub judged: bool,
    pub passed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub store: Attr<String>,
    pub name: String,
    pub version: String,
    pub source: Attr<String>,
    pub lineage: Option<Lineage>,
    pub baseline: Option<BaselineSpec>,
    pub validation: Option<ValidationSpec>,
    pub input_shapes: Attr<BTreeMap<String, Vec<String>>>,
    pub uri: Attr<String>,
    pub sha256: Attr<String>,
    pub size_bytes: Attr<i64>,
    pub opset: Attr<i64>,
    pub inputs: Attr<Vec<Tensor>>,
    pub outputs: Attr<Vec<Tensor>>,
    pub created_at: Attr<String>,
    pub registered_by: Attr<String>,
    pub baseline_sha256: Attr<String>,
    pub validation_report: Attr<ValidationReport>,
    pub copied_from: Attr<String>,
}

fn at(block: &str, attr: &str) -> AttributePath {
    AttributePath(vec![
        PathStep::Attr(block.into()),
        PathStep::Attr(attr.into()),
    ])
}

fn schema() -> Schema {
    let report = vec![
        Attribute::new("passed", Type::Bool).computed().description("Whether the metric met the threshold (always true in state: a failure registers nothing)."),
        Attribute::new("metric", Type::String).computed().description("The metric computed."),
        Attribute::new("value", Type::Number).computed().description("Its value on the hold-out dataset."),
        Attribute::new("rows", Type::Number).computed().description("Rows scored."),
        Attribute::new("dataset_sha256", Type::String).computed().description("sha256 of the dataset validated against; a change re-runs validation."),
        Attribute::new("summary", Type::String).computed().description("One line for humans."),
        Attribute::nested(
            "slices",
            Nesting::List,
            vec![
                Attribute::new("name", Type::String).computed().description("`col=value` (several columns joined by `,`)."),
                Attribute::new("rows", Type::Number).computed().description("Rows in the slice."),
                Attribute::new("value", Type::Number).computed().description("The metric on the slice."),
                Attribute::new("judged", Type::Bool).computed().description("False when the slice has fewer than `min_slice_rows` rows: reported, not judged."),
                Attribute::new("passed", Type::Bool).computed().description("Whether the slice met its threshold (true when not judged)."),
            ],
        )
        .computed()
        .description("The metric per slice, with `slice_by`; empty otherwise."),
        Attribute::new("disparity", Type::Number).computed().description("The largest gap of the metric between judged slices; null without two judged slices."),
    ];
    Schema::new(
        Block::new()
            .description(
                "An immutable model version in a `modelplane_model_store`. Apply uploads `source` (an ONNX file) to \
                 `STORE/NAME/VERSION/` beside `model.json`, which records its sha256, size, signature, lineage, creation \
                 time and validation report.\n\n\
                 * **Immutable**: a change of the source's content (its sha256, read at plan time) replaces the version, \
                 and the plan says so. Give a new model a new `version`.\n\
                 * **Validation hook**: with a `validation` block, apply runs the model on a hold-out dataset and compares \
                 a metric with a threshold, on create and whenever the model, the dataset (its sha256, read at plan time) \
                 or the thresholds change. A failure is an apply error that shows the report, and nothing is registered.\n\
                 * **Baseline**: with a `baseline` block, apply computes the drift baseline (per-feature bins and \
                 moments, and the model's prediction distribution) that endpoints compare live traffic with.\n\
                 * **Drift**: refresh checks the artifact is still in the store with the same sha256; if not, the plan \
                 re-creates it.\n\nImport with `STORE_ID/NAME/VERSION`.",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("`STORE_ID/NAME/VERSION`: what endpoint variants name."))
            .attribute(Attribute::new("store", Type::String).required().requires_replace().description("The `id` of the `modelplane_model_store`."))
            .attribute(Attribute::new("name", Type::String).required().requires_replace().description("Model name: letters, digits, `.`, `_`, `-`."))
            .attribute(Attribute::new("version", Type::String).required().requires_replace().description("Version: letters, digits, `.`, `_`, `-`. Numeric versions sort as numbers."))
            .attribute(Attribute::new("source", Type::String).required().description("Path to the `.onnx` file (use `${path.module}/…`), or another version to copy: its `uri` or `id` in any store (`file://`, `s3://`, `az://`), e.g. `modelplane_model.onprem[\"3\"].uri`. A copy is the same version: streamed store to store with its sha256 checked end to end, the same signature, its lineage (with `copied_from`), baseline and validation report carried; validation runs again only when this resource has a `validation` block. Moving the file, or copying from another replica of the same bytes, is not a change."))
            .attribute(Attribute::new("copied_from", Type::String).computed().description("The URI of the version this one was copied from; null for a file source."))
            .attribute(Attribute::new("input_shapes", Type::map(Type::list(Type::String))).optional().description("Shapes that pin what the file leaves free, per input name: each dimension a size (`3`), a name (`\"height\"`: free, equal wherever the same name appears) or -1 (free). E.g. `{ x = [1, 3, 640, 640] }` for a detector that takes any size but is served at one. Recorded in model.json, where every server of this version reads it; changes update the metadata in place."))
            .attribute(Attribute::new("uri", Type::String).computed().stable().description("URI of the version's folder in the store."))
            .attribute(Attribute::new("sha256", Type::String).computed().description("sha256 of the model file, read at plan time; a change replaces the version."))
            .attribute(Attribute::new("size_bytes", Type::Number).computed().description("Size of the model file."))
            .attribute(Attribute::new("opset", Type::Number).computed().description("The model's default (`ai.onnx`) opset; 0 when it imports only other domains."))
            .attribute(Attribute::nested("inputs", Nesting::List, tensor_attrs()).computed().description("The model's inputs."))
            .attribute(Attribute::nested("outputs", Nesting::List, tensor_attrs()).computed().description("The model's outputs."))
            .attribute(Attribute::new("created_at", Type::String).computed().stable().description("When the version was registered (RFC 3339, UTC)."))
            .attribute(Attribute::new("registered_by", Type::String).computed().stable().description("The identity that registered the version: the store's credential chain (`aws:ARN`, `azure:NAME (OBJECT_ID)`), or the operating-system user (`os:USER@HOST`) for a local store. Recorded in model.json; a copy keeps the original's. The provider's `governance.separation_of_duties` compares approvals against it."))
            .attribute(Attribute::new("baseline_sha256", Type::String).computed().stable().description("sha256 of the baseline dataset; a change recomputes the baseline."))
            .attribute(Attribute::nested("validation_report", Nesting::Single, report).computed().stable().description("The last validation's outcome."))
            .block(
                NestedBlock::new(
                    "lineage",
                    Nesting::Single,
                    Block::new()
                        .description("Where the model comes from, recorded in model.json. Changes update the metadata in place.")
                        .attribute(Attribute::new("code_commit", Type::String).optional().description("Commit of the training code."))
                        .attribute(Attribute::new("dataset_digest", Type::String).optional().description("Digest of the training data."))
                        .attribute(Attribute::new("metrics", Type::map(Type::Number)).optional().description("Training metrics, e.g. `{ accuracy = 0.97 }`."))
                        .attribute(Attribute::new("tags", Type::map(Type::String)).optional().description("Free-form labels."))
                        .attribute(Attribute::new("description", Type::String).optional().description("What the model is.")),
                ),
            )
            .block(
                NestedBlock::new(
                    "baseline",
                    Nesting::Single,
                    Block::new()
                        .description("Reference (training) data for drift statistics: stored as baseline.json beside the model; endpoints serving the version report PSI and KS against it.")
                        .attribute(Attribute::new("dataset", Type::String).required().description("Dataset: `.csv` (with a header), `.jsonl`, `.npy` or `.npz`."))
                        .attribute(Attribute::new("target", Type::String).optional().description("Target column to leave out of the features."))
                        .attribute(Attribute::new("features", Type::list(Type::String)).optional().description("Feature columns in the model's input order (default: every column but the target).")),
                ),
            )
            .block(
                NestedBlock::new(
                    "validation",
                    Nesting::Single,
                    Block::new()
                        .description("The validation hook: the model must reach a metric on a hold-out dataset before it is registered.")
                        .attribute(Attribute::new("dataset", Type::String).required().description("Hold-out dataset: `.csv` (with a header), `.jsonl`, `.npy` or `.npz`."))
                        .attribute(Attribute::new("target", Type::String).required().description("Column with the true labels (classification) or values (regression)."))
                        .attribute(Attribute::new("metric", Type::String).required().description("`accuracy`, `f1`, `precision`, `recall` (macro-averaged), `mae`, `rmse` or `max_abs_diff`."))
                        .attribute(Attribute::new("min", Type::Number).optional().description("Pass when the metric is at least this (accuracy, f1, precision, recall)."))
                        .attribute(Attribute::new("max", Type::Number).optional().description("Pass when the metric is at most this (mae, rmse, max_abs_diff)."))
                        .attribute(Attribute::new("features", Type::list(Type::String)).optional().description("Feature columns in the model's input order (default: every other column)."))
                        .attribute(Attribute::new("output", Type::String).optional().description("Model output to score (default: the label output of a classifier, else the first)."))
                        .attribute(Attribute::new("slice_by", Type::list(Type::String)).optional().description("Judge the metric per slice too: dataset columns (numeric codes, not features) whose values group the rows, e.g. `[\"region\"]` makes slices `region=0`, `region=1`, … A fairness gate: the model must be good for every group it serves, not only on average."))
                        .attribute(Attribute::new("slice_min", Type::Number).optional().description("Every judged slice must reach this (accuracy, f1, precision, recall)."))
                        .attribute(Attribute::new("slice_max", Type::Number).optional().description("Every judged slice must stay under this (mae, rmse, max_abs_diff)."))
                        .attribute(Attribute::new("slice_thresholds", Type::map(Type::Number)).optional().description("Thresholds of named slices instead of `slice_min`/`slice_max`, in the metric's direction, e.g. `{ \"region=2\" = 0.85 }`. A name the dataset does not have fails validation (a typo is not a pass)."))
                        .attribute(Attribute::new("max_disparity", Type::Number).optional().description("The largest gap of the metric allowed between the best and the worst judged slice, e.g. `0.05`."))
                        .attribute(Attribute::new("min_slice_rows", Type::Number).optional().description("Slices with fewer rows are reported but not judged (default 30).")),
                ),
            ),
    )
}

impl ModelVersion {
    fn conn(&self) -> stores::Connection {
        crate::ProviderConfig::of(&self.config).stores()
    }
}

fn open_store(
    id: &str,
    conn: &stores::Connection,
    diags: &mut Diagnostics,
) -> Option<Box<dyn Store>> {
    match stores::open(id, conn) {
        Ok(s) => Some(s),
        Err(e) => {
            diags.error_at(AttributePath::attr("store"), "Invalid store", e.to_string());
            None
        }
    }
}

async fn digest(path: &str) -> std::io::Result<String> {
    let p = PathBuf::from(path);
    tokio::task::spawn_blocking(move || modelplane_serve::signature::file_digest(&p).map(|d| d.0))
        .await
        .map_err(std::io::Error::other)?
}

async fn signature(
    path: &str,
) -> Result<modelplane_serve::signature::Signature, modelplane_serve::signature::SignatureError> {
    let p = PathBuf::from(path);
    tokio::task::spawn_blocking(move || modelplane_serve::signature::read(&p))
        .await
        .unwrap_or_else(|e| {
            Err(modelplane_serve::signature::SignatureError::Unreadable {
                path: path.into(),
                source: std::io::Error::other(e.to_string()),
            })
        })
}

fn json_attr<T: Serialize>(a: &Attr<T>) -> serde_json::Value {
    a.known()
        .map(|v| serde_json::to_value(v).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null)
}

fn attr_from<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Attr<T> {
    if v.is_null() {
        return Attr::Null;
    }
    serde_json::from_value(v.clone())
        .map(Attr::Known)
        .unwrap_or(Attr::Null)
}

/// The model.json the store keeps (and import reads back).
fn model_json(m: &Model) -> serde_json::Value {
    json!({
        "name": m.name,
        "version": m.version,
        "sha256": json_attr(&m.sha256),
        "size_bytes": json_attr(&m.size_bytes),
        "opset": json_attr(&m.opset),
        "inputs": json_attr(&m.inputs),
        "outputs": json_attr(&m.outputs),
        "source": json_attr(&m.source),
        "input_shapes": declared_shapes(m),
        "created_at": json_attr(&m.created_at),
        "registered_by": json_attr(&m.registered_by),
        "lineage": m.lineage.as_ref().map(|l| json!({
            "code_commit": json_attr(&l.code_commit),
            "dataset_digest": json_attr(&l.dataset_digest),
            "metrics": json_attr(&l.metrics),
            "tags": json_attr(&l.tags),
            "description": json_attr(&l.description),
        })),
        "baseline": m.baseline.as_ref().map(|b| json!({
            "dataset": json_attr(&b.dataset),
            "target": json_attr(&b.target),
            "features": json_attr(&b.features),
            "dataset_sha256": json_attr(&m.baseline_sha256),
        })),
        "validation": m.validation.as_ref().map(|v| json!({
            "dataset": json_attr(&v.dataset),
            "target": json_attr(&v.target),
            "metric": json_attr(&v.metric),
            "min": json_attr(&v.min),
            "max": json_attr(&v.max),
            "features": json_attr(&v.features),
            "output": json_attr(&v.output),
            "slice_by": json_attr(&v.slice_by),
            "slice_min": json_attr(&v.slice_min),
            "slice_max": json_attr(&v.slice_max),
            "slice_thresholds": json_attr(&v.slice_thresholds),
            "max_disparity": json_attr(&v.max_disparity),
            "min_slice_rows": json_attr(&v.min_slice_rows),
            "report": json_attr(&m.validation_report),
        })),
    })
}

/// `input_shapes` as the server reads it from model.json: `[{"name", "shape": [3, "h"]}]`;
/// null when none is declared.
fn declared_shapes(m: &Model) -> serde_json::Value {
    match m.input_shapes.known() {
        Some(map) if !map.is_empty() => {
            serde_json::to_value(input_shapes(map)).unwrap_or(serde_json::Value::Null)
        }
        _ => serde_json::Value::Null,
    }
}

/// Terraform's `list(string)` dimensions (`"3"`, `"height"`, `"-1"`) as the server's.
fn input_shapes(map: &BTreeMap<String, Vec<String>>) -> Vec<modelplane_serve::config::InputShape> {
    use modelplane_serve::config::Dim;
    map.iter()
        .map(|(name, dims)| modelplane_serve::config::InputShape {
            name: name.clone(),
            shape: dims
                .iter()
                .map(|d| match d.trim().parse::<i64>() {
                    Ok(n) => Dim::Size(n),
                    Err(_) => Dim::Named(d.trim().to_string()),
                })
                .collect(),
        })
        .collect()
}

/// model.json's `input_shapes` back as the attribute's map (import).
fn shapes_from(v: &serde_json::Value) -> Attr<BTreeMap<String, Vec<String>>> {
    let Ok(shapes) = serde_json::from_value::<Vec<modelplane_serve::config::InputShape>>(v.clone())
    else {
        return Attr::Null;
    };
    if shapes.is_empty() {
        return Attr::Null;
    }
    Attr::Known(
        shapes
            .into_iter()
            .map(|s| {
                let dims = s
                    .shape
                    .into_iter()
                    .map(|d| match d {
                        modelplane_serve::config::Dim::Size(n) => n.to_string(),
                        modelplane_serve::config::Dim::Named(n) => n,
                    })
                    .collect();
                (s.name, dims)
            })
            .collect(),
    )
}

fn known_str(a: &Attr<String>) -> Option<String> {
    a.known().cloned()
}

/// Runs the validation hook; an error diagnostic (with the report) when it fails.
async fn run_validation(
    model_path: &str,
    sha256: &str,
    v: &ValidationSpec,
    diags: &mut Diagnostics,
) -> Option<ValidationReport> {
    let metric = v
        .metric
        .known()
        .and_then(|m| modelplane_serve::validate::Metric::parse(m))?;
    let spec = modelplane_serve::validate::Spec {
        model: PathBuf::from(model_path),
        expected_sha256: Some(sha256.to_string()),
        dataset: PathBuf::from(v.dataset.known()?),
        target: v.target.known()?.clone(),
        features: v.features.known().cloned(),
        metric,
        min: v.min.known().copied(),
        max: v.max.known().copied(),
        output: known_str(&v.output),
        batch_size: 256,
        slices: v.slice_by.known().filter(|b| !b.is_empty()).map(|by| {
            modelplane_serve::validate::Slices {
                by: by.clone(),
                min: v.slice_min.known().copied(),
                max: v.slice_max.known().copied(),
                named: v.slice_thresholds.known().cloned().unwrap_or_default(),
                max_disparity: v.max_disparity.known().copied(),
                min_rows: v
                    .min_slice_rows
                    .known()
                    .copied()
                    .unwrap_or(MIN_SLICE_ROWS)
                    .max(1) as usize,
            }
        }),
    };
    let r = match tokio::task::spawn_blocking(move || modelplane_serve::validate::run(&spec)).await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            diags.error_at(
                AttributePath::attr("validation"),
                "Validation could not run",
                format!("{e}. Check the validation block (dataset, target, features, output)."),
            );
            return None;
        }
        Err(e) => {
            diags.error_at(
                AttributePath::attr("validation"),
                "Validation could not run",
                e.to_string(),
            );
            return None;
        }
    };
    if !r.passed {
        let mut detail = format!(
            "{}\nmodel sha256 {}\ndataset sha256 {}\noutput scored: {}",
            r.summary(),
            r.model_sha256,
            r.dataset_sha256,
            r.output
        );
        if let Some(c) = &r.confusion_matrix {
            detail.push_str(&format!(
                "\nconfusion matrix (rows: true label, columns: predicted), labels {:?}:",
                c.labels
            ));
            for row in &c.matrix {
                detail.push_str(&format!("\n  {row:?}"));
            }
        }
        detail.push_str(
            "\nNothing was registered. Improve the model, or revisit the threshold if it is wrong.",
        );
        diags.error_at(
            AttributePath::attr("validation"),
            "Model failed validation",
            detail,
        );
        return None;
    }
    Some(ValidationReport {
        passed: true,
        metric: r.metric.clone(),
        value: r.value,
        rows: r.n as i64,
        dataset_sha256: r.dataset_sha256.clone(),
        summary: r.summary(),
        slices: r
            .slices
            .iter()
            .map(|s| SliceOutcome {
                name: s.name.clone(),
                rows: s.rows as i64,
                value: s.value,
                judged: s.judged,
                passed: s.passed,
            })
            .collect(),
        disparity: r.disparity,
    })
}

/// The slice settings of a `validation` block: thresholds need `slice_by`, and go the metric's
/// way.
fn validate_slices(
    v: &tfplugin::framework::Config,
    metric: modelplane_serve::validate::Metric,
    m: &str,
    diags: &mut Diagnostics,
) {
    let by = v.get::<Vec<String>>("slice_by", diags);
    let has_by = match &by {
        Attr::Known(b) => !b.is_empty(),
        Attr::Unknown => true,
        Attr::Null => false,
    };
    let set: Vec<&str> = [
        "slice_min",
        "slice_max",
        "slice_thresholds",
        "max_disparity",
        "min_slice_rows",
    ]
    .into_iter()
    .filter(|a| !v.is_null(a))
    .collect();
    if !has_by && !set.is_empty() {
        diags.error_at(
            at("validation", set[0]),
            "Slice threshold without slices",
            format!("{} need `slice_by`: the dataset columns whose values make the slices, e.g. `slice_by = [\"region\"]`.", set.join(", ")),
        );
    }
    let wrong = if metric.is_classification() {
        "slice_max"
    } else {
        "slice_min"
    };
    if !v.is_null(wrong) {
        let right = if metric.is_classification() {
            "slice_min"
        } else {
            "slice_max"
        };
        diags.error_at(
            at("validation", wrong),
            "Threshold in the wrong direction",
            format!("{m} is judged with `{right}` (higher is {}); `{wrong}` would never fail a bad slice.", if metric.is_classification() { "better" } else { "worse" }),
        );
    }
    if let Attr::Known(d) = v.get::<f64>("max_disparity", diags) {
        if d < 0.0 {
            diags.error_at(
                at("validation", "max_disparity"),
                "Invalid max_disparity",
                format!("max_disparity is a gap between slices, 0 or more; got {d}."),
            );
        }
    }
    if let Attr::Known(n) = v.get::<i64>("min_slice_rows", diags) {
        if n < 1 {
            diags.error_at(
                at("validation", "min_slice_rows"),
                "Invalid min_slice_rows",
                format!("min_slice_rows must be 1 or more; got {n}."),
            );
        }
    }
    if has_by && set.is_empty() {
        diags.warning_at(
            at("validation", "slice_by"),
            "Slices without thresholds",
            "slice_by reports the metric per slice, but nothing judges it: add `slice_min` (or `slice_max`), `slice_thresholds` or `max_disparity`.",
        );
    }
}

async fn compute_baseline(
    model_path: &str,
    b: &BaselineSpec,
    diags: &mut Diagnostics,
) -> Option<Vec<u8>> {
    let (dataset, target, features, model) = (
        PathBuf::from(b.dataset.known()?),
        known_str(&b.target),
        b.features.known().cloned(),
        PathBuf::from(model_path),
    );
    match tokio::task::spawn_blocking(move || {
        modelplane_serve::baseline::compute(
            &dataset,
            target.as_deref(),
            features.as_deref(),
            Some(&model),
        )
    })
    .await
    {
        Ok(Ok(base)) => serde_json::to_vec_pretty(&base).ok(),
        Ok(Err(e)) => {
            diags.error_at(
                at("baseline", "dataset"),
                "Baseline could not be computed",
                format!("{e}. Check the baseline block (dataset, target, features)."),
            );
            None
        }
        Err(e) => {
            diags.error_at(
                at("baseline", "dataset"),
                "Baseline could not be computed",
                e.to_string(),
            );
            None
        }
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The version a copy comes from, as read at plan time.
struct Origin {
    /// Its canonical URI.
    uri: String,
    id: crate::ids::VersionId,
    sha256: String,
    meta: serde_json::Value,
    /// Its baseline.json, read at apply.
    baseline: Option<Vec<u8>>,
}

/// Why a source version could not be read: `Missing` may be made by this apply.
enum OriginError {
    Missing(String),
    Other(String),
}

impl From<String> for OriginError {
    fn from(e: String) -> Self {
        OriginError::Other(e)
    }
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginError::Missing(e) | OriginError::Other(e) => f.write_str(e),
        }
    }
}

/// Reads the model.json of the version a `source` URI names.
async fn read_origin(source: &str, conn: &stores::Connection) -> Result<Origin, OriginError> {
    let id = stores::parse_version(source).map_err(|e| e.to_string())?;
    let store = stores::open(&id.store, conn).map_err(|e| e.to_string())?;
    let bytes = store
        .get(&id.name, &id.version, "model.json")
        .await
        .map_err(|e| format!("{source}: {e}"))?
        .ok_or_else(|| {
            OriginError::Missing(format!(
                "{source}: no model version {}/{} in the store {}; register it there first",
                id.name, id.version, id.store
            ))
        })?;
    let meta: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{source}: model.json: {e}"))?;
    let sha256 = meta["sha256"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{source}: model.json records no sha256"))?
        .to_string();
    Ok(Origin {
        uri: store.version_uri(&id.name, &id.version),
        id,
        sha256,
        meta,
        baseline: None,
    })
}

/// The model file a version is registered from: the source file, or a copy's file
/// downloaded (streamed, sha256 checked) into a temporary folder that lives as long as this.
struct Artifact {
    path: PathBuf,
    copy: Option<Origin>,
    _dir: Option<tempfile::TempDir>,
}

impl ModelVersion {
    async fn artifact(&self, plan: &mut Model, diags: &mut Diagnostics) -> Option<Artifact> {
        let source = plan.source.known().cloned().unwrap_or_default();
        let planned = plan.sha256.known().cloned();
        if !source.contains("://") {
            let sig = match signature(&source).await {
                Ok(s) => s,
                Err(e) => {
                    signature_error(diags, "source", e);
                    return None;
                }
            };
            if planned.as_ref().is_some_and(|p| p != &sig.sha256) {
                diags.error_at(
                    AttributePath::attr("source"),
                    "Model file changed during apply",
                    format!(
                        "{source} had sha256 {} at plan time and {} now. Run terraform apply again.",
                        planned.unwrap_or_default(),
                        sig.sha256
                    ),
                );
                return None;
            }
            if planned.is_none() {
                // Known only now (a source another resource made in this apply).
                plan.sha256 = Attr::Known(sig.sha256.clone());
                plan.size_bytes = Attr::Known(sig.size_bytes as i64);
                plan.opset = Attr::Known(sig.opset);
                plan.inputs = Attr::Known(tensors(sig.inputs));
                plan.outputs = Attr::Known(tensors(sig.outputs));
                plan.copied_from = Attr::Null;
            }
            return Some(Artifact {
                path: PathBuf::from(source),
                copy: None,
                _dir: None,
            });
        }
        let fail = |diags: &mut Diagnostics, e: String| {
            diags.error_at(
                AttributePath::attr("source"),
                "Cannot copy the model version",
                e,
            );
        };
        let mut o = match read_origin(&source, &self.conn()).await {
            Ok(o) => o,
            Err(e) => {
                fail(diags, e.to_string());
                return None;
            }
        };
        if planned.as_ref().is_some_and(|p| p != &o.sha256) {
            fail(diags, format!("{source} holds sha256 {} now, but {} at plan time; versions are immutable, so it was replaced in its store. Run terraform apply again.", o.sha256, planned.unwrap_or_default()));
            return None;
        }
        let from = match stores::open(&o.id.store, &self.conn()) {
            Ok(s) => s,
            Err(e) => {
                fail(diags, e.to_string());
                return None;
            }
        };
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => {
                fail(diags, format!("a temporary folder: {e}"));
                return None;
            }
        };
        let path = dir.path().join("model.onnx");
        match from
            .download(
                &o.id.name,
                &o.id.version,
                "model.onnx",
                &path,
                Some(&o.sha256),
            )
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                fail(
                    diags,
                    format!("{source}: model.onnx is missing from the version"),
                );
                return None;
            }
            Err(e) => {
                fail(diags, format!("{source}: {e}"));
                return None;
            }
        }
        o.baseline = match from.get(&o.id.name, &o.id.version, "baseline.json").await {
            Ok(b) => b,
            Err(e) => {
                fail(diags, format!("{source}: baseline.json: {e}"));
                return None;
            }
        };
        if planned.is_none() {
            plan.sha256 = Attr::Known(o.sha256.clone());
            plan.size_bytes = attr_from(&o.meta["size_bytes"]);
            plan.opset = attr_from(&o.meta["opset"]);
            plan.inputs = attr_from(&o.meta["inputs"]);
            plan.outputs = attr_from(&o.meta["outputs"]);
        }
        plan.copied_from = Attr::Known(o.uri.clone());
        Some(Artifact {
            path,
            copy: Some(o),
            _dir: Some(dir),
        })
    }
}

/// The model.json of a copy: the source's (signature, sha256, lineage, baseline, validation),
/// with `copied_from` in the lineage and what this resource declares itself on top.
fn copy_json(base: &serde_json::Value, m: &Model) -> serde_json::Value {
    let own = model_json(m);
    let mut j = base.clone();
    let from = json_attr(&m.copied_from);
    j["name"] = json!(m.name);
    j["version"] = json!(m.version);
    j["source"] = own["source"].clone();
    j["copied_from"] = from.clone();
    if j.get("copied_at").is_none_or(|v| v.is_null()) || base["copied_from"] != from {
        j["copied_at"] = json!(now());
    }
    for k in ["lineage", "baseline", "validation"] {
        if !own[k].is_null() {
            j[k] = own[k].clone();
        }
    }
    if !own["input_shapes"].is_null() {
        j["input_shapes"] = own["input_shapes"].clone();
    }
    // Who registered the version stays who registered the original.
    if j["registered_by"].is_null() {
        j["registered_by"] = own["registered_by"].clone();
    }
    if !j["lineage"].is_object() {
        j["lineage"] = json!({});
    }
    j["lineage"]["copied_from"] = from;
    j
}

/// Registers the version: the artifact, baseline and model.json.
async fn register(
    m: &mut Model,
    store: &dyn Store,
    artifact: &Artifact,
    diags: &mut Diagnostics,
) -> bool {
    let sha = m.sha256.known().cloned().unwrap_or_default();
    // A version already there: the same bytes are taken over (an interrupted apply); other
    // bytes are refused, versions being immutable; a broken folder is replaced.
    if let Ok(Some(meta)) = store.get(&m.name, &m.version, "model.json").await {
        let recorded = serde_json::from_slice::<serde_json::Value>(&meta)
            .ok()
            .and_then(|j| j["sha256"].as_str().map(String::from));
        let actual = store
            .digest(&m.name, &m.version, "model.onnx")
            .await
            .ok()
            .flatten()
            .map(|d| d.0);
        match (recorded, actual) {
            (Some(r), Some(a)) if r == a && a != sha => {
                diags.error_at(
                    AttributePath::attr("version"),
                    "Model version already exists",
                    format!(
                        "{}/{} is already in the store with sha256 {a}, and versions are immutable. Give this model a new `version`, or import the existing one.",
                        m.name, m.version
                    ),
                );
                return false;
            }
            (Some(r), Some(a)) if r == a => {}
            _ => {
                if let Err(e) = store.delete_version(&m.name, &m.version).await {
                    diags.error("Cannot replace a broken model version", e.to_string());
                    return false;
                }
            }
        }
    }
    m.created_at = Attr::Known(now());
    m.id = Attr::Known(crate::ids::VersionId::new(&store.uri(), &m.name, &m.version).to_string());
    m.uri = Attr::Known(store.version_uri(&m.name, &m.version));
    let mut files = vec![Upload {
        name: "model.onnx".into(),
        from: Source::File(artifact.path.clone()),
    }];
    let path = artifact.path.display().to_string();
    if let Some(b) = &m.baseline {
        let Some(bytes) = compute_baseline(&path, b, diags).await else {
            return false;
        };
        files.push(Upload {
            name: "baseline.json".into(),
            from: Source::Bytes(bytes),
        });
    } else if let Some(bytes) = artifact.copy.as_ref().and_then(|o| o.baseline.clone()) {
        files.push(Upload {
            name: "baseline.json".into(),
            from: Source::Bytes(bytes),
        });
    }
    let meta = match &artifact.copy {
        Some(o) => copy_json(&o.meta, m),
        None => model_json(m),
    };
    files.push(Upload {
        name: "model.json".into(),
        from: Source::Bytes(serde_json::to_vec_pretty(&meta).unwrap_or_default()),
    });
    let put = store.put_version(&m.name, &m.version, files).await;
    // End to end: what the store now holds is the bytes planned.
    if put.is_ok() {
        match store.digest(&m.name, &m.version, "model.onnx").await {
            Ok(Some((got, _))) if got == sha => {}
            got => {
                let _ = store.delete_version(&m.name, &m.version).await;
                diags.error_at(
                    AttributePath::attr("source"),
                    "Model version damaged in transit",
                    format!(
                        "{}/{} was uploaded, but the store holds sha256 {:?} where {sha} was sent; the version was removed. Apply again.",
                        m.name,
                        m.version,
                        got.ok().flatten().map(|d| d.0)
                    ),
                );
                return false;
            }
        }
    }
    match put {
        Ok(()) => true,
        Err(stores::StoreError::Conflict(_)) => {
            // Registered meanwhile with the same bytes (checked above): rewrite the metadata.
            store
                .put_file(
                    &m.name,
                    &m.version,
                    "model.json",
                    serde_json::to_vec_pretty(&meta).unwrap_or_default(),
                )
                .await
                .is_ok()
        }
        Err(e) => {
            diags.error("Cannot upload the model version", e.to_string());
            false
        }
    }
}

#[tfplugin::async_trait]
impl tfplugin::Resource for ModelVersion {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_model"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        for a in ["name", "version"] {
            if let Attr::Known(v) = config.get::<String>(a, diags) {
                if let Err(e) = stores::check_segment(&v) {
                    diags.error_at(
                        AttributePath::attr(a),
                        format!("Invalid {a}"),
                        format!("{a} {v:?} {e}."),
                    );
                }
            }
        }
        if let Attr::Known(s) = config.get::<String>("store", diags) {
            if let Err(e) = stores::open(&s, &self.conn()) {
                diags.error_at(AttributePath::attr("store"), "Invalid store", e.to_string());
            }
        }
        if let Attr::Known(s) = config.get::<String>("source", diags) {
            if s.contains("://") {
                if let Err(e) = stores::parse_version(&s) {
                    diags.error_at(
                        AttributePath::attr("source"),
                        "Invalid model source",
                        e.to_string(),
                    );
                }
            } else if s.trim().is_empty() {
                diags.error_at(
                    AttributePath::attr("source"),
                    "Empty model source",
                    "Set `source` to an .onnx file, e.g. \"${path.module}/model.onnx\".",
                );
            }
        }
        if let Some(v) = config.elements("validation").first() {
            if let Attr::Known(m) = v.get::<String>("metric", diags) {
                match modelplane_serve::validate::Metric::parse(&m) {
                    None => diags.error_at(
                        at("validation", "metric"),
                        "Unknown metric",
                        format!("metric {m:?} must be one of accuracy, f1, precision, recall, mae, rmse, max_abs_diff."),
                    ),
                    Some(metric) => {
                        let (min, max) = (v.get::<f64>("min", diags), v.get::<f64>("max", diags));
                        if min.is_null() && max.is_null() {
                            let hint = if metric.is_classification() { "min = 0.9" } else { "max = 0.5" };
                            diags.error_at(at("validation", "metric"), "No threshold", format!("give a threshold for {m}, e.g. `{hint}`; without one validation cannot fail."));
                        }
                        if let Attr::Known(lo) = &min {
                            if metric.is_classification() && *lo > 1.0 {
                                diags.error_at(at("validation", "min"), "Impossible threshold", format!("{m} is at most 1, so min = {lo} can never be met."));
                            }
                        }
                        if let (Attr::Known(lo), Attr::Known(hi)) = (min, max) {
                            if lo > hi {
                                diags.error_at(at("validation", "min"), "Impossible threshold", format!("min ({lo}) is above max ({hi}); no value can pass."));
                            }
                        }
                        validate_slices(v, metric, &m, diags);
                    }
                }
            }
        }
    }

    async fn modify_plan(
        &self,
        prior: Option<&Model>,
        plan: &mut Model,
        _config: &Config,
        ctx: &mut Ctx,
    ) {
        let Attr::Known(source) = plan.source.clone() else {
            // A source another resource makes in this apply: what is read from it is unknown.
            for a in [&mut plan.sha256, &mut plan.copied_from] {
                *a = Attr::Unknown;
            }
            plan.size_bytes = Attr::Unknown;
            plan.opset = Attr::Unknown;
            plan.inputs = Attr::Unknown;
            plan.outputs = Attr::Unknown;
            plan.baseline_sha256 = Attr::Unknown;
            plan.validation_report = Attr::Unknown;
            return;
        };
        // The artifact: read at plan time (a copy's from its model.json), so content changes
        // replace the version.
        let copy = match source.contains("://") {
            false => None,
            true => match read_origin(&source, &self.conn()).await {
                Ok(o) => Some(o),
                // Not there yet: another resource of this apply may register it; it is read
                // at apply.
                Err(OriginError::Missing(_)) => {
                    plan.sha256 = Attr::Unknown;
                    plan.copied_from = Attr::Unknown;
                    plan.size_bytes = Attr::Unknown;
                    plan.opset = Attr::Unknown;
                    plan.inputs = Attr::Unknown;
                    plan.outputs = Attr::Unknown;
                    plan.baseline_sha256 = Attr::Unknown;
                    plan.validation_report = Attr::Unknown;
                    return;
                }
                Err(e) => {
                    ctx.diags.error_at(
                        AttributePath::attr("source"),
                        "Cannot read the source version",
                        e.to_string(),
                    );
                    return;
                }
            },
        };
        let (sha, plan_inputs) = match &copy {
            Some(o) => {
                plan.size_bytes = attr_from(&o.meta["size_bytes"]);
                plan.opset = attr_from(&o.meta["opset"]);
                plan.inputs = attr_from(&o.meta["inputs"]);
                plan.outputs = attr_from(&o.meta["outputs"]);
                plan.copied_from = Attr::Known(o.uri.clone());
                (o.sha256.clone(), None)
            }
            None => {
                let sig = match signature(&source).await {
                    Ok(s) => s,
                    Err(e) => {
                        signature_error(&mut ctx.diags, "source", e);
                        return;
                    }
                };
                plan.size_bytes = Attr::Known(sig.size_bytes as i64);
                plan.opset = Attr::Known(sig.opset);
                plan.inputs = Attr::Known(tensors(sig.inputs.clone()));
                plan.outputs = Attr::Known(tensors(sig.outputs));
                plan.copied_from = Attr::Null;
                (sig.sha256, Some(sig.inputs))
            }
        };
        let model_changed = prior.and_then(|p| p.sha256.known()) != Some(&sha);
        if model_changed && prior.is_some() {
            ctx.require_replace(AttributePath::attr("sha256"));
        }
        plan.sha256 = Attr::Known(sha);
        if let (Some(map), Some(plan_inputs)) = (plan.input_shapes.known(), plan_inputs) {
            let declared = input_shapes(map);
            let mut pinned = plan_inputs.clone();
            let checked = modelplane_serve::config::check_input_shapes(&plan.name, &declared)
                .and_then(|()| {
                    modelplane_serve::model::apply_declared_shapes(&mut pinned, &declared)
                });
            if let Err(e) = checked {
                ctx.diags.error_at(
                    AttributePath::attr("input_shapes"),
                    "Invalid input shapes",
                    format!(
                        "{e}; the model's inputs are {}",
                        plan_inputs
                            .iter()
                            .map(|i| format!("{} {:?}", i.name, i.shape))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return;
            }
        }
        // The baseline: its dataset's digest, planned, decides whether it is recomputed.
        match plan.baseline.clone() {
            None => plan.baseline_sha256 = Attr::Null,
            Some(b) => match &b.dataset {
                Attr::Known(d) => match digest(d).await {
                    Ok(sha) => plan.baseline_sha256 = Attr::Known(sha),
                    Err(e) => {
                        ctx.diags.error_at(
                            at("baseline", "dataset"),
                            "Baseline dataset not readable",
                            format!("{d}: {e}"),
                        );
                        return;
                    }
                },
                _ => plan.baseline_sha256 = Attr::Unknown,
            },
        }
        // The validation: re-run when the model, the dataset or the settings change.
        match plan.validation.clone() {
            None => plan.validation_report = Attr::Null,
            Some(v) => {
                let rerun = match &v.dataset {
                    Attr::Known(d) => match digest(d).await {
                        Ok(sha) => match prior {
                            None => true,
                            Some(p) => {
                                model_changed
                                    || p.validation != plan.validation
                                    || p.validation_report.known().map(|r| &r.dataset_sha256)
                                        != Some(&sha)
                            }
                        },
                        Err(e) => {
                            ctx.diags.error_at(
                                at("validation", "dataset"),
                                "Validation dataset not readable",
                                format!("{d}: {e}"),
                            );
                            return;
                        }
                    },
                    _ => true,
                };
                if rerun {
                    plan.validation_report = Attr::Unknown;
                }
            }
        }
        // A copy without its own blocks carries the source's baseline and validation report.
        if let Some(o) = &copy {
            if plan.baseline.is_none() {
                plan.baseline_sha256 = attr_from(&o.meta["baseline"]["dataset_sha256"]);
            }
            if plan.validation.is_none() {
                plan.validation_report = attr_from(&o.meta["validation"]["report"]);
            }
        }
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let store = open_store(plan.store.known()?, &self.conn(), &mut ctx.diags)?;
        match store.exists().await {
            Ok(true) => {}
            Ok(false) => {
                ctx.diags.error_at(
                    AttributePath::attr("store"),
                    "Model store not found",
                    format!(
                        "{} does not exist; create it with modelplane_model_store.",
                        plan.store.known().cloned().unwrap_or_default()
                    ),
                );
                return None;
            }
            Err(e) => {
                ctx.diags.error_at(
                    AttributePath::attr("store"),
                    "Cannot read the model store",
                    e.to_string(),
                );
                return None;
            }
        }
        let artifact = self.artifact(&mut plan, &mut ctx.diags).await?;
        let sha = plan.sha256.known().cloned().unwrap_or_default();
        let path = artifact.path.display().to_string();
        if let Some(v) = plan.validation.clone() {
            plan.validation_report =
                Attr::Known(run_validation(&path, &sha, &v, &mut ctx.diags).await?);
        } else if let Some(o) = &artifact.copy {
            plan.validation_report = attr_from(&o.meta["validation"]["report"]);
        } else {
            plan.validation_report = Attr::Null;
        }
        plan.baseline_sha256 = match plan
            .baseline
            .as_ref()
            .and_then(|b| b.dataset.known().cloned())
        {
            Some(d) => match digest(&d).await {
                Ok(s) => Attr::Known(s),
                Err(e) => {
                    ctx.diags.error_at(
                        at("baseline", "dataset"),
                        "Baseline dataset not readable",
                        format!("{d}: {e}"),
                    );
                    return None;
                }
            },
            None => match &artifact.copy {
                Some(o) => attr_from(&o.meta["baseline"]["dataset_sha256"]),
                None => Attr::Null,
            },
        };
        plan.registered_by = Attr::Known(
            crate::governance::identity::caller(&store.uri(), &self.conn())
                .await
                .unwrap_or_else(|_| crate::governance::identity::os_user()),
        );
        if let Some(o) = &artifact.copy {
            if let Some(r) = o.meta["registered_by"].as_str() {
                plan.registered_by = Attr::Known(r.to_string());
            }
        }
        if !register(&mut plan, store.as_ref(), &artifact, &mut ctx.diags).await {
            return None;
        }
        Some(plan)
    }

    async fn read(&self, state: Model, ctx: &mut Ctx) -> Option<Model> {
        let store = open_store(state.store.known()?, &self.conn(), &mut ctx.diags)?;
        match store
            .digest(&state.name, &state.version, "model.onnx")
            .await
        {
            Ok(Some((sha, _))) if Some(&sha) == state.sha256.known() => {}
            Ok(_) => return None,
            Err(e) => {
                ctx.diags.warning(
                    "Cannot read the model version",
                    format!("{e}; keeping the recorded state."),
                );
                return Some(state);
            }
        }
        match store.get(&state.name, &state.version, "model.json").await {
            Ok(Some(_)) => Some(state),
            Ok(None) => None,
            Err(e) => {
                ctx.diags.warning(
                    "Cannot read the model version",
                    format!("{e}; keeping the recorded state."),
                );
                Some(state)
            }
        }
    }

    async fn update(&self, prior: Model, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let store = open_store(plan.store.known()?, &self.conn(), &mut ctx.diags)?;
        let sha = plan.sha256.known().cloned().unwrap_or_default();
        let needs_file = plan.validation_report.is_unknown()
            || ((plan.baseline_sha256 != prior.baseline_sha256 || plan.baseline != prior.baseline)
                && plan.baseline.is_some());
        let artifact = match needs_file {
            true => match self.artifact(&mut plan, &mut ctx.diags).await {
                Some(a) => Some(a),
                None => return Some(prior),
            },
            false => None,
        };
        let path = artifact
            .as_ref()
            .map(|a| a.path.display().to_string())
            .unwrap_or_default();
        if plan.validation_report.is_unknown() {
            let v = plan.validation.clone()?;
            match run_validation(&path, &sha, &v, &mut ctx.diags).await {
                Some(r) => plan.validation_report = Attr::Known(r),
                None => return Some(prior),
            }
        }
        if plan.baseline_sha256 != prior.baseline_sha256 || plan.baseline != prior.baseline {
            match &plan.baseline {
                Some(b) => {
                    let bytes = compute_baseline(&path, b, &mut ctx.diags).await;
                    let Some(bytes) = bytes else {
                        return Some(prior);
                    };
                    if let Err(e) = store
                        .put_file(&plan.name, &plan.version, "baseline.json", bytes)
                        .await
                    {
                        ctx.diags.error("Cannot write the baseline", e.to_string());
                        return Some(prior);
                    }
                }
                None => {
                    if let Err(e) = store
                        .delete_file(&plan.name, &plan.version, "baseline.json")
                        .await
                    {
                        ctx.diags.error("Cannot remove the baseline", e.to_string());
                        return Some(prior);
                    }
                }
            }
        }
        let meta = match plan.copied_from.known() {
            // A copy keeps what it carries: its model.json in this store is the base.
            Some(_) => match store.get(&plan.name, &plan.version, "model.json").await {
                Ok(Some(b)) => copy_json(&serde_json::from_slice(&b).unwrap_or_default(), &plan),
                _ => model_json(&plan),
            },
            None => model_json(&plan),
        };
        if let Err(e) = store
            .put_file(
                &plan.name,
                &plan.version,
                "model.json",
                serde_json::to_vec_pretty(&meta).unwrap_or_default(),
            )
            .await
        {
            ctx.diags.error("Cannot update model.json", e.to_string());
            return Some(prior);
        }
        Some(plan)
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        let conn = self.conn();
        let Some(store) = state
            .store
            .known()
            .and_then(|s| open_store(s, &conn, &mut ctx.diags))
        else {
            return;
        };
        if let Err(e) = store.delete_version(&state.name, &state.version).await {
            ctx.diags
                .error("Cannot delete the model version", e.to_string());
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let Ok(crate::ids::VersionId {
            store: store_id,
            name,
            version,
        }) = id.parse::<crate::ids::VersionId>()
        else {
            ctx.diags.error(
                "Invalid import ID",
                format!(
                    "{id:?} is not STORE_ID/NAME/VERSION (e.g. file:///var/lib/models/iris/2)."
                ),
            );
            return None;
        };
        let store = open_store(&store_id, &self.conn(), &mut ctx.diags)?;
        let meta = match store.get(&name, &version, "model.json").await {
            Ok(Some(b)) => b,
            Ok(None) => {
                ctx.diags.error(
                    "Cannot import the model version",
                    format!("{name}/{version} is not in the store {store_id}."),
                );
                return None;
            }
            Err(e) => {
                ctx.diags
                    .error("Cannot import the model version", e.to_string());
                return None;
            }
        };
        let j: serde_json::Value = match serde_json::from_slice(&meta) {
            Ok(j) => j,
            Err(e) => {
                ctx.diags.error(
                    "Cannot import the model version",
                    format!("model.json: {e}"),
                );
                return None;
            }
        };
        let lineage = (!j["lineage"].is_null()).then(|| Lineage {
            code_commit: attr_from(&j["lineage"]["code_commit"]),
            dataset_digest: attr_from(&j["lineage"]["dataset_digest"]),
            metrics: attr_from(&j["lineage"]["metrics"]),
            tags: attr_from(&j["lineage"]["tags"]),
            description: attr_from(&j["lineage"]["description"]),
        });
        let baseline = (!j["baseline"].is_null()).then(|| BaselineSpec {
            dataset: attr_from(&j["baseline"]["dataset"]),
            target: attr_from(&j["baseline"]["target"]),
            features: attr_from(&j["baseline"]["features"]),
        });
        let validation = (!j["validation"].is_null()).then(|| ValidationSpec {
            dataset: attr_from(&j["validation"]["dataset"]),
            target: attr_from(&j["validation"]["target"]),
            metric: attr_from(&j["validation"]["metric"]),
            min: attr_from(&j["validation"]["min"]),
            max: attr_from(&j["validation"]["max"]),
            features: attr_from(&j["validation"]["features"]),
            output: attr_from(&j["validation"]["output"]),
            slice_by: attr_from(&j["validation"]["slice_by"]),
            slice_min: attr_from(&j["validation"]["slice_min"]),
            slice_max: attr_from(&j["validation"]["slice_max"]),
            slice_thresholds: attr_from(&j["validation"]["slice_thresholds"]),
            max_disparity: attr_from(&j["validation"]["max_disparity"]),
            min_slice_rows: attr_from(&j["validation"]["min_slice_rows"]),
        });
        Some(Model {
            id: Attr::Known(crate::ids::VersionId::new(&store.uri(), &name, &version).to_string()),
            store: Attr::Known(store.uri()),
            uri: Attr::Known(store.version_uri(&name, &version)),
            sha256: attr_from(&j["sha256"]),
            size_bytes: attr_from(&j["size_bytes"]),
            opset: attr_from(&j["opset"]),
            inputs: attr_from(&j["inputs"]),
            outputs: attr_from(&j["outputs"]),
            source: Attr::Known(j["source"].as_str().unwrap_or_default().to_string()),
            copied_from: attr_from(&j["copied_from"]),
            registered_by: attr_from(&j["registered_by"]),
            input_shapes: shapes_from(&j["input_shapes"]),
            created_at: attr_from(&j["created_at"]),
            baseline_sha256: attr_from(&j["baseline"]["dataset_sha256"]),
            validation_report: attr_from(&j["validation"]["report"]),
            name,
            version,
            lineage,
            baseline,
            validation,
        })
    }
}
