//! Validation of a model against a hold-out dataset: runs every row through the model and
//! computes a metric, compared with a threshold. The provider's validation hook calls this.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tract_onnx::prelude::{DatumType, Tensor};

use crate::dataset::Table;
use crate::model::Model;
use crate::tensor::{self, Datatype};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    F1,
    Precision,
    Recall,
    Mae,
    Rmse,
    MaxAbsDiff,
}

impl Metric {
    pub fn is_classification(self) -> bool {
        matches!(
            self,
            Metric::Accuracy | Metric::F1 | Metric::Precision | Metric::Recall
        )
    }
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Mae => "mae",
            Metric::Rmse => "rmse",
            Metric::MaxAbsDiff => "max_abs_diff",
        }
    }
    pub fn parse(s: &str) -> Option<Metric> {
        [
            Metric::Accuracy,
            Metric::F1,
            Metric::Precision,
            Metric::Recall,
            Metric::Mae,
            Metric::Rmse,
            Metric::MaxAbsDiff,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }
}

/// What to validate.
#[derive(Clone, Debug)]
pub struct Spec {
    pub model: PathBuf,
    pub expected_sha256: Option<String>,
    pub dataset: PathBuf,
    /// The column with the true labels or values.
    pub target: String,
    /// Feature columns in the model's order (default: every other column).
    pub features: Option<Vec<String>>,
    pub metric: Metric,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Output to score (default: the label output for classification, the first otherwise).
    pub output: Option<String>,
    pub batch_size: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Confusion {
    pub labels: Vec<i64>,
    /// rows: true label, columns: predicted label
    pub matrix: Vec<Vec<u64>>,
}

/// The outcome, as the JSON report carries it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub passed: bool,
    pub metric: String,
    pub value: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub n: usize,
    pub model_sha256: String,
    pub dataset_sha256: String,
    pub output: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion_matrix: Option<Confusion>,
}

impl Report {
    /// A short human summary.
    pub fn summary(&self) -> String {
        let bound = match (self.min, self.max) {
            (Some(mn), Some(mx)) => format!("between {mn} and {mx}"),
            (Some(mn), None) => format!(">= {mn}"),
            (None, Some(mx)) => format!("<= {mx}"),
            (None, None) => "no threshold".into(),
        };
        format!(
            "{}: {} = {:.6} on {} rows (required {bound}) — {}",
            if self.passed { "PASS" } else { "FAIL" },
            self.metric,
            self.value,
            self.n,
            if self.passed {
                "the model may serve"
            } else {
                "the model must not serve"
            }
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    #[error(transparent)]
    Load(#[from] crate::model::LoadError),
    #[error("{0}")]
    Mismatch(String),
}

fn mismatch(s: impl Into<String>) -> ValidateError {
    ValidateError::Mismatch(s.into())
}

fn as_f64(t: &Tensor) -> Result<Vec<f64>, ValidateError> {
    let c = t
        .cast_to_dt(DatumType::F64)
        .map_err(|e| mismatch(format!("output cannot be read as numbers: {e}")))?;
    Ok(c.as_plain_ram()
        .and_then(|v| v.as_slice::<f64>().ok().map(|s| s.to_vec()))
        .unwrap_or_default())
}

/// Runs the validation.
pub fn run(spec: &Spec) -> Result<Report, ValidateError> {
    let model = Model::load(
        "validate",
        "0",
        &spec.model,
        spec.expected_sha256.as_deref(),
    )?;
    let (dataset_sha256, _) = crate::signature::file_digest(&spec.dataset)
        .map_err(|e| mismatch(format!("{}: {e}", spec.dataset.display())))?;
    let table = Table::read(&spec.dataset)?;
    let (names, x, y) = table.split(Some(&spec.target), spec.features.as_deref(), &spec.dataset)?;
    let y = y.expect("target requested");
    let sig = &model.signature;
    if sig.inputs.len() != 1 {
        return Err(mismatch(format!(
            "the model has {} inputs; validation feeds models with one [N, features] input",
            sig.inputs.len()
        )));
    }
    let input = &sig.inputs[0];
    if input.shape.len() != 2 || (input.shape[1] >= 0 && input.shape[1] as usize != names.len()) {
        return Err(mismatch(format!(
            "the model's input {:?} has shape {:?}, but the dataset has {} feature columns ({names:?})",
            input.name,
            input.shape,
            names.len()
        )));
    }
    let dt = Datatype::parse(&input.datatype).map_err(|e| mismatch(e.to_string()))?;
    let (oi, out_name) = pick_output(&model, spec)?;
    let mut preds: Vec<f64> = Vec::with_capacity(x.len());
    for chunk in x.chunks(spec.batch_size.max(1)) {
        let outs = model
            .run(vec![
                tensor::from_rows(dt, chunk).map_err(|e| mismatch(e.to_string()))?
            ])
            .map_err(|e| mismatch(e.to_string()))?;
        let o = &outs[oi];
        if spec.metric.is_classification() && o.rank() == 2 && o.shape()[1] > 1 {
            // scores: argmax per row
            let v = as_f64(o)?;
            let k = o.shape()[1];
            preds.extend(v.chunks(k).map(|r| {
                r.iter()
                    .enumerate()
                    .fold(
                        (0, f64::MIN),
                        |b, (i, s)| if *s > b.1 { (i, *s) } else { b },
                    )
                    .0 as f64
            }));
        } else {
            let v = as_f64(o)?;
            if v.len() != chunk.len() {
                return Err(mismatch(format!("output {out_name:?} gave {} values for {} rows; choose a per-row output with --output", v.len(), chunk.len())));
            }
            preds.extend(v);
        }
    }
    let (value, confusion) = score(spec.metric, &y, &preds);
    let passed = spec.min.is_none_or(|m| value >= m) && spec.max.is_none_or(|m| value <= m);
    Ok(Report {
        passed,
        metric: spec.metric.name().into(),
        value,
        min: spec.min,
        max: spec.max,
        n: y.len(),
        model_sha256: sig.sha256.clone(),
        dataset_sha256,
        output: out_name,
        confusion_matrix: confusion,
    })
}

fn pick_output(model: &Model, spec: &Spec) -> Result<(usize, String), ValidateError> {
    let outs = &model.signature.outputs;
    if let Some(name) = &spec.output {
        return outs
            .iter()
            .position(|o| &o.name == name)
            .map(|i| (i, name.clone()))
            .ok_or_else(|| {
                mismatch(format!(
                    "the model has no output {name:?}; outputs are {:?}",
                    outs.iter().map(|o| &o.name).collect::<Vec<_>>()
                ))
            });
    }
    let i = if spec.metric.is_classification() {
        outs.iter()
            .position(|o| o.datatype.starts_with("INT") && o.shape.len() == 1)
            .or_else(|| outs.iter().position(|o| o.shape.len() == 2))
            .unwrap_or(0)
    } else {
        0
    };
    Ok((i, outs[i].name.clone()))
}

/// Computes the metric (macro-averaged for f1, precision and recall).
pub fn score(metric: Metric, truth: &[f64], pred: &[f64]) -> (f64, Option<Confusion>) {
    let n = truth.len().max(1) as f64;
    match metric {
        Metric::Mae => (
            truth
                .iter()
                .zip(pred)
                .map(|(t, p)| (t - p).abs())
                .sum::<f64>()
                / n,
            None,
        ),
        Metric::Rmse => (
            (truth
                .iter()
                .zip(pred)
                .map(|(t, p)| (t - p).powi(2))
                .sum::<f64>()
                / n)
                .sqrt(),
            None,
        ),
        Metric::MaxAbsDiff => (
            truth
                .iter()
                .zip(pred)
                .map(|(t, p)| (t - p).abs())
                .fold(0.0, f64::max),
            None,
        ),
        _ => {
            let t: Vec<i64> = truth.iter().map(|v| v.round() as i64).collect();
            let p: Vec<i64> = pred.iter().map(|v| v.round() as i64).collect();
            let mut labels: Vec<i64> = t.iter().chain(&p).copied().collect();
            labels.sort_unstable();
            labels.dedup();
            let idx = |l: i64| labels.binary_search(&l).unwrap_or(0);
            let mut m = vec![vec![0u64; labels.len()]; labels.len()];
            for (a, b) in t.iter().zip(&p) {
                m[idx(*a)][idx(*b)] += 1;
            }
            let k = labels.len();
            let tp = |i: usize| m[i][i] as f64;
            let col = |i: usize| (0..k).map(|r| m[r][i]).sum::<u64>() as f64;
            let row = |i: usize| m[i].iter().sum::<u64>() as f64;
            let prec = |i: usize| if col(i) > 0.0 { tp(i) / col(i) } else { 0.0 };
            let rec = |i: usize| if row(i) > 0.0 { tp(i) / row(i) } else { 0.0 };
            let present: Vec<usize> = (0..k).filter(|i| row(*i) > 0.0).collect();
            let avg = |f: &dyn Fn(usize) -> f64| {
                present.iter().map(|i| f(*i)).sum::<f64>() / present.len().max(1) as f64
            };
            let value = match metric {
                Metric::Accuracy => (0..k).map(tp).sum::<f64>() / n,
                Metric::Precision => avg(&prec),
                Metric::Recall => avg(&rec),
                _ => avg(&|i| {
                    let (p, r) = (prec(i), rec(i));
                    if p + r > 0.0 {
                        2.0 * p * r / (p + r)
                    } else {
                        0.0
                    }
                }),
            };
            (value, Some(Confusion { labels, matrix: m }))
        }
    }
}

/// Writes the report as JSON.
pub fn write_report(report: &Report, path: &Path) -> std::io::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(report).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics_match_hand_computed_values() {
        // truth 0,0,1,1,2 ; pred 0,1,1,1,2
        let t = [0.0, 0.0, 1.0, 1.0, 2.0];
        let p = [0.0, 1.0, 1.0, 1.0, 2.0];
        assert!((score(Metric::Accuracy, &t, &p).0 - 0.8).abs() < 1e-12);
        // precision per class: 1, 2/3, 1 → 0.8889 ; recall: 0.5, 1, 1 → 0.8333
        assert!((score(Metric::Precision, &t, &p).0 - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        assert!((score(Metric::Recall, &t, &p).0 - (0.5 + 1.0 + 1.0) / 3.0).abs() < 1e-12);
        let f1 = (2.0 * 0.5 / 1.5 + 2.0 * (2.0 / 3.0) / (5.0 / 3.0) + 1.0) / 3.0;
        assert!((score(Metric::F1, &t, &p).0 - f1).abs() < 1e-12);
        let c = score(Metric::Accuracy, &t, &p).1.unwrap();
        assert_eq!(c.labels, vec![0, 1, 2]);
        assert_eq!(c.matrix, vec![vec![1, 1, 0], vec![0, 2, 0], vec![0, 0, 1]]);
    }

    #[test]
    fn regression_metrics() {
        let t = [1.0, 2.0, 3.0];
        let p = [1.5, 2.0, 1.0];
        assert!((score(Metric::Mae, &t, &p).0 - 2.5 / 3.0).abs() < 1e-12);
        assert!((score(Metric::Rmse, &t, &p).0 - (4.25f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(score(Metric::MaxAbsDiff, &t, &p).0, 2.0);
    }
}
