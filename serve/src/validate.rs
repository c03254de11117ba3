//! Validation of a model against a hold-out dataset: runs every row through the model and
//! computes a metric, compared with a threshold. The provider's validation hook calls this.

use std::collections::BTreeMap;
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
    /// The metric judged per slice of the rows as well (fairness by group); none: overall only.
    pub slices: Option<Slices>,
}

/// The metric per group of rows: the rows that share the values of the `by` columns form a
/// slice, named `col=value` (several columns joined by `,`, e.g. `region=2,sex=1`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slices {
    /// Dataset columns (numeric codes) whose values define the slices; they are not features.
    pub by: Vec<String>,
    /// Every judged slice must reach this (accuracy, f1, precision, recall)…
    pub min: Option<f64>,
    /// …or stay under this (mae, rmse, max_abs_diff).
    pub max: Option<f64>,
    /// Thresholds of named slices instead of `min`/`max` for them, in the metric's direction
    /// (a minimum for accuracy, f1, precision and recall; a maximum for the error metrics).
    pub named: BTreeMap<String, f64>,
    /// The largest gap of the metric allowed between judged slices.
    pub max_disparity: Option<f64>,
    /// Slices with fewer rows are reported but not judged (too few to say anything).
    pub min_rows: usize,
}

/// One slice's outcome.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SliceReport {
    pub name: String,
    pub rows: usize,
    pub value: f64,
    /// False when the slice has fewer than `min_rows` rows: reported, not judged.
    pub judged: bool,
    pub passed: bool,
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
    /// The metric per slice, when slices were asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<SliceReport>,
    /// The largest gap of the metric between judged slices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disparity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disparity: Option<f64>,
    /// Why the model failed beyond the overall metric: the slices and the disparity missed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
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
        let mut s = format!(
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
        );
        if !self.slices.is_empty() {
            let judged = self.slices.iter().filter(|s| s.judged).count();
            s.push_str(&format!("; {} slices ({judged} judged)", self.slices.len()));
            if let Some(d) = self.disparity {
                s.push_str(&format!(", disparity {d:.6}"));
            }
        }
        for f in &self.failures {
            s.push_str(&format!("\n  {f}"));
        }
        s
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
    // Slice columns describe the rows, they are not features.
    let slice_cols = match &spec.slices {
        Some(sl) => sl
            .by
            .iter()
            .map(|c| {
                table.column_index(c).ok_or_else(|| {
                    mismatch(format!(
                        "{}: no slice column {c:?}; columns are {:?}",
                        spec.dataset.display(),
                        table.columns
                    ))
                })
            })
            .collect::<Result<Vec<usize>, _>>()?,
        None => Vec::new(),
    };
    let default_features = (spec.features.is_none() && !slice_cols.is_empty()).then(|| {
        table
            .columns
            .iter()
            .enumerate()
            .filter(|(i, c)| !slice_cols.contains(i) && **c != spec.target)
            .map(|(_, c)| c.clone())
            .collect::<Vec<_>>()
    });
    let features = spec.features.as_deref().or(default_features.as_deref());
    let (names, x, y) = table.split(Some(&spec.target), features, &spec.dataset)?;
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
    let mut passed = spec.min.is_none_or(|m| value >= m) && spec.max.is_none_or(|m| value <= m);
    let (slices, disparity, failures) = match &spec.slices {
        Some(sl) => {
            let keys: Vec<String> = table
                .rows
                .iter()
                .map(|r| slice_key(&sl.by, &slice_cols, r))
                .collect();
            judge_slices(spec.metric, sl, &keys, &y, &preds)?
        }
        None => (Vec::new(), None, Vec::new()),
    };
    passed &= failures.is_empty();
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
        slices,
        disparity,
        max_disparity: spec.slices.as_ref().and_then(|s| s.max_disparity),
        failures,
    })
}

/// The name of a row's slice: `col=value` for each slicing column, joined by `,`; integral
/// codes without a decimal point.
fn slice_key(by: &[String], cols: &[usize], row: &[f64]) -> String {
    by.iter()
        .zip(cols)
        .map(|(name, i)| {
            let v = row[*i];
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{name}={}", v as i64)
            } else {
                format!("{name}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

type Judged = (Vec<SliceReport>, Option<f64>, Vec<String>);

/// The metric per slice (`keys[i]` is row i's slice), each judged slice against its threshold,
/// and the largest gap between judged slices against `max_disparity`; the failures named.
pub fn judge_slices(
    metric: Metric,
    sl: &Slices,
    keys: &[String],
    truth: &[f64],
    pred: &[f64],
) -> Result<Judged, ValidateError> {
    let mut groups: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for ((k, t), p) in keys.iter().zip(truth).zip(pred) {
        let g = groups.entry(k.as_str()).or_default();
        g.0.push(*t);
        g.1.push(*p);
    }
    // A threshold for a slice the data does not have is a typo, not a pass.
    for name in sl.named.keys() {
        if !groups.contains_key(name.as_str()) {
            return Err(mismatch(format!(
                "a threshold names the slice {name:?}, which the dataset does not have; its slices are {:?}",
                groups.keys().collect::<Vec<_>>()
            )));
        }
    }
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for (name, (t, p)) in &groups {
        let value = score(metric, t, p).0;
        let judged = t.len() >= sl.min_rows;
        let (min, max) = match sl.named.get(*name) {
            Some(v) if metric.is_classification() => (Some(*v), None),
            Some(v) => (None, Some(*v)),
            None => (sl.min, sl.max),
        };
        let passed = !judged || (min.is_none_or(|m| value >= m) && max.is_none_or(|m| value <= m));
        if !passed {
            let bound = match (min, max) {
                (Some(m), _) if value < m => format!("below its minimum {m}"),
                (_, Some(m)) => format!("above its maximum {m}"),
                _ => "outside its bounds".into(),
            };
            failures.push(format!(
                "slice {name}: {} = {value:.6} on {} rows, {bound}",
                metric.name(),
                t.len()
            ));
        }
        reports.push(SliceReport {
            name: name.to_string(),
            rows: t.len(),
            value,
            judged,
            passed,
        });
    }
    let judged: Vec<&SliceReport> = reports.iter().filter(|r| r.judged).collect();
    let lo = judged.iter().min_by(|a, b| a.value.total_cmp(&b.value));
    // The first of equals on either side (`max_by` alone would give the last).
    let hi = judged
        .iter()
        .rev()
        .max_by(|a, b| a.value.total_cmp(&b.value));
    let disparity = match (lo, hi) {
        (Some(lo), Some(hi)) if judged.len() > 1 => Some(hi.value - lo.value),
        _ => None,
    };
    if let (Some(d), Some(limit), Some(lo), Some(hi)) = (disparity, sl.max_disparity, lo, hi) {
        if d > limit {
            failures.push(format!(
                "disparity {d:.6} between {} ({:.6}) and {} ({:.6}) is over its maximum {limit}",
                hi.name, hi.value, lo.name, lo.value
            ));
        }
    }
    if sl.max_disparity.is_some() && judged.len() < 2 {
        failures.push(format!(
            "max_disparity needs two judged slices; {} of {} slices have {} rows or more (lower the minimum slice size, or add rows)",
            judged.len(),
            reports.len(),
            sl.min_rows
        ));
    }
    Ok((reports, disparity, failures))
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

    fn slices(min: Option<f64>, max_disparity: Option<f64>, min_rows: usize) -> Slices {
        Slices {
            by: vec!["site".into()],
            min,
            max: None,
            named: BTreeMap::new(),
            max_disparity,
            min_rows,
        }
    }

    /// Site 0: 4 of 4 right; site 1: 2 of 4 right; site 2: 1 row, wrong (too small to judge).
    fn sample() -> (Vec<String>, Vec<f64>, Vec<f64>) {
        let keys = [
            "site=0", "site=0", "site=0", "site=0", "site=1", "site=1", "site=1", "site=1",
            "site=2",
        ]
        .map(String::from)
        .to_vec();
        let t = vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let p = vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        (keys, t, p)
    }

    #[test]
    fn a_slice_under_its_minimum_fails_and_small_slices_are_not_judged() {
        let (k, t, p) = sample();
        let (r, d, f) =
            judge_slices(Metric::Accuracy, &slices(Some(0.75), None, 2), &k, &t, &p).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].value, r[0].passed), (1.0, true));
        assert_eq!((r[1].value, r[1].passed, r[1].rows), (0.5, false, 4));
        assert_eq!((r[2].judged, r[2].passed, r[2].value), (false, true, 0.0));
        assert_eq!(d, Some(0.5));
        assert_eq!(
            f,
            vec!["slice site=1: accuracy = 0.500000 on 4 rows, below its minimum 0.75".to_string()]
        );
        // A named threshold replaces the common one for that slice.
        let mut s = slices(Some(0.75), None, 2);
        s.named.insert("site=1".into(), 0.5);
        assert!(judge_slices(Metric::Accuracy, &s, &k, &t, &p)
            .unwrap()
            .2
            .is_empty());
        // …and a name the data does not have is an error, not a silent pass.
        s.named.insert("site=9".into(), 0.5);
        let e = judge_slices(Metric::Accuracy, &s, &k, &t, &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"site=9\", which the dataset does not have"),
            "{e}"
        );
    }

    #[test]
    fn disparity_over_its_maximum_fails() {
        let (k, t, p) = sample();
        let (_, d, f) =
            judge_slices(Metric::Accuracy, &slices(None, Some(0.4), 2), &k, &t, &p).unwrap();
        assert_eq!(d, Some(0.5));
        assert_eq!(f, vec!["disparity 0.500000 between site=0 (1.000000) and site=1 (0.500000) is over its maximum 0.4".to_string()]);
        assert!(
            judge_slices(Metric::Accuracy, &slices(None, Some(0.5), 2), &k, &t, &p)
                .unwrap()
                .2
                .is_empty()
        );
        // Fewer than two judged slices cannot show a disparity: said, not passed.
        let f = judge_slices(Metric::Accuracy, &slices(None, Some(0.5), 5), &k, &t, &p)
            .unwrap()
            .2;
        assert!(
            f[0].starts_with("max_disparity needs two judged slices; 0 of 3"),
            "{f:?}"
        );
    }

    #[test]
    fn slice_names_use_integral_codes() {
        let by = ["region".to_string(), "sex".to_string()];
        assert_eq!(slice_key(&by, &[0, 2], &[3.0, 9.9, 1.0]), "region=3,sex=1");
        assert_eq!(slice_key(&by[..1], &[0], &[0.5]), "region=0.5");
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
