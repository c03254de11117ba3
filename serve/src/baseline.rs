//! Drift baselines computed from reference (training) data: the feature distributions of a
//! dataset and, when a model is given, the distribution of its predictions on that data.
//! The statistics themselves are in [`crate::drift`], which knows nothing of models.

use std::path::Path;

use crate::dataset::Table;
use crate::drift::Baseline;
use crate::model::Model;
use crate::tensor::{self, Datatype};

/// Computes a baseline from a dataset, with the predictions of `model` on it when given.
pub fn compute(
    dataset: &Path,
    target: Option<&str>,
    features: Option<&[String]>,
    model: Option<&Path>,
) -> Result<Baseline, String> {
    let table = Table::read(dataset).map_err(|e| e.to_string())?;
    let predictions = match model {
        None => None,
        Some(mp) => {
            let m = Model::load("baseline", "0", mp, None).map_err(|e| e.to_string())?;
            let (_, x, _) = table
                .split(target, features, dataset)
                .map_err(|e| e.to_string())?;
            let input = m
                .signature
                .inputs
                .first()
                .ok_or("the model has no inputs")?;
            let dt = Datatype::parse(&input.datatype).map_err(|e| e.to_string())?;
            let mut preds = Vec::with_capacity(x.len());
            for chunk in x.chunks(256) {
                let t = tensor::from_rows(dt, chunk).map_err(|e| e.to_string())?;
                let out = m.run(vec![t]).map_err(|e| e.to_string())?;
                preds.extend(
                    m.predictions(&out)
                        .ok_or("the model's outputs give no per-row prediction")?,
                );
            }
            Some(preds)
        }
    };
    Baseline::from_table(&table, target, features, predictions.as_deref(), dataset)
        .map_err(|e| e.to_string())
}
