//! Tabular datasets for validation and drift baselines: CSV with a header, JSON Lines,
//! NPY (one 2-D array) and NPZ (a feature array and a target array). Every value is numeric.

use std::path::Path;

/// Columns and numeric rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {reason}")]
    Bad { path: String, reason: String },
    #[error("{path}: unsupported dataset format; use .csv (with a header), .jsonl, .npy or .npz")]
    Format { path: String },
}

fn bad(path: &Path, reason: impl Into<String>) -> DatasetError {
    DatasetError::Bad {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Feature names, feature rows and (when a target was named) the target column.
pub type Split = (Vec<String>, Vec<Vec<f64>>, Option<Vec<f64>>);

impl Table {
    /// Reads a dataset, choosing the format by extension.
    pub fn read(path: &Path) -> Result<Table, DatasetError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let t = match ext.as_str() {
            "csv" => read_csv(path)?,
            "jsonl" | "ndjson" => read_jsonl(path)?,
            "npy" => read_npy(path)?,
            "npz" => read_npz(path)?,
            _ => {
                return Err(DatasetError::Format {
                    path: path.display().to_string(),
                })
            }
        };
        if t.rows.is_empty() {
            return Err(bad(path, "no rows"));
        }
        Ok(t)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The values of one column.
    pub fn column(&self, i: usize) -> Vec<f64> {
        self.rows.iter().map(|r| r[i]).collect()
    }

    /// Splits into (feature names, feature rows, target) given the target column name and,
    /// optionally, the feature columns in model order (default: every other column, in file
    /// order).
    pub fn split(
        &self,
        target: Option<&str>,
        features: Option<&[String]>,
        path: &Path,
    ) -> Result<Split, DatasetError> {
        let ti = match target {
            Some(t) => Some(self.column_index(t).ok_or_else(|| {
                bad(
                    path,
                    format!("no target column {t:?}; columns are {:?}", self.columns),
                )
            })?),
            None => None,
        };
        let fi: Vec<usize> = match features {
            Some(fs) => fs
                .iter()
                .map(|f| {
                    self.column_index(f).ok_or_else(|| {
                        bad(
                            path,
                            format!("no feature column {f:?}; columns are {:?}", self.columns),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            None => (0..self.columns.len()).filter(|i| Some(*i) != ti).collect(),
        };
        let names = fi.iter().map(|i| self.columns[*i].clone()).collect();
        let x = self
            .rows
            .iter()
            .map(|r| fi.iter().map(|i| r[*i]).collect())
            .collect();
        Ok((names, x, ti.map(|i| self.column(i))))
    }
}

fn read_csv(path: &Path) -> Result<Table, DatasetError> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| bad(path, e.to_string()))?;
    let columns: Vec<String> = rdr
        .headers()
        .map_err(|e| bad(path, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if columns.iter().all(|c| c.parse::<f64>().is_ok()) {
        return Err(bad(
            path,
            "the first line must be a header naming the columns",
        ));
    }
    let mut rows = Vec::new();
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(path, e.to_string()))?;
        let row = rec
            .iter()
            .enumerate()
            .map(|(c, v)| {
                v.trim().parse::<f64>().map_err(|_| {
                    bad(path, format!("line {}: column {:?} has {v:?}, which is not a number (encode labels as numbers)", line + 2, columns.get(c).map_or("?", |s| s.as_str())))
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        if row.len() != columns.len() {
            return Err(bad(
                path,
                format!(
                    "line {}: {} values for {} columns",
                    line + 2,
                    row.len(),
                    columns.len()
                ),
            ));
        }
        rows.push(row);
    }
    Ok(Table { columns, rows })
}

fn read_jsonl(path: &Path) -> Result<Table, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()))?;
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).map_err(|e| bad(path, format!("line {}: {e}", n + 1)))?;
        if columns.is_empty() {
            columns = obj.keys().cloned().collect();
        }
        let row = columns
            .iter()
            .map(|c| {
                obj.get(c).and_then(|v| v.as_f64()).ok_or_else(|| {
                    bad(
                        path,
                        format!("line {}: {c:?} is missing or not a number", n + 1),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    Ok(Table { columns, rows })
}

fn npy_values(
    path: &Path,
    arr: npyz::NpyFile<impl std::io::Read>,
) -> Result<(Vec<u64>, Vec<f64>), DatasetError> {
    let shape = arr.shape().to_vec();
    let dt = arr.dtype();
    let descr = match &dt {
        npyz::DType::Plain(ts) => ts.to_string(),
        _ => return Err(bad(path, "structured arrays are not supported")),
    };
    let vals: Vec<f64> = match &descr[1..] {
        "f8" => arr
            .into_vec::<f64>()
            .map_err(|e| bad(path, e.to_string()))?,
        "f4" => arr
            .into_vec::<f32>()
            .map_err(|e| bad(path, e.to_string()))?
            .into_iter()
            .map(f64::from)
            .collect(),
        "i8" => arr
            .into_vec::<i64>()
            .map_err(|e| bad(path, e.to_string()))?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        "i4" => arr
            .into_vec::<i32>()
            .map_err(|e| bad(path, e.to_string()))?
            .into_iter()
            .map(f64::from)
            .collect(),
        other => {
            return Err(bad(
                path,
                format!("array dtype {other} is not supported; use float32/64 or int32/64"),
            ))
        }
    };
    Ok((shape, vals))
}

fn to_rows(shape: &[u64], vals: Vec<f64>, path: &Path) -> Result<Vec<Vec<f64>>, DatasetError> {
    match shape {
        [n, f] => Ok(vals
            .chunks(*f as usize)
            .take(*n as usize)
            .map(|c| c.to_vec())
            .collect()),
        [_] => Ok(vals.into_iter().map(|v| vec![v]).collect()),
        _ => Err(bad(
            path,
            format!("arrays must be 1-D or 2-D, this one is {shape:?}"),
        )),
    }
}

fn read_npy(path: &Path) -> Result<Table, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
    let arr = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(path, e.to_string()))?;
    let (shape, vals) = npy_values(path, arr)?;
    let rows = to_rows(&shape, vals, path)?;
    let width = rows.first().map_or(0, Vec::len);
    Ok(Table {
        columns: (0..width).map(|i| i.to_string()).collect(),
        rows,
    })
}

fn read_npz(path: &Path) -> Result<Table, DatasetError> {
    let mut npz = npyz::npz::NpzArchive::open(path).map_err(|e| bad(path, e.to_string()))?;
    let names: Vec<String> = npz.array_names().map(String::from).collect();
    let pick = |cands: &[&str]| {
        cands
            .iter()
            .find(|c| names.iter().any(|n| n == *c))
            .map(|s| s.to_string())
    };
    let xname = pick(&["x", "X", "features", "inputs"]).ok_or_else(|| {
        bad(
            path,
            format!("no feature array (x, X, features or inputs); arrays are {names:?}"),
        )
    })?;
    let x = npz
        .by_name(&xname)
        .map_err(|e| bad(path, e.to_string()))?
        .ok_or_else(|| bad(path, "feature array vanished"))?;
    let (xs, xv) = npy_values(path, x)?;
    let mut rows = to_rows(&xs, xv, path)?;
    let width = rows.first().map_or(0, Vec::len);
    let mut columns: Vec<String> = (0..width).map(|i| format!("x{i}")).collect();
    if let Some(yname) = pick(&["y", "Y", "target", "labels"]) {
        let y = npz
            .by_name(&yname)
            .map_err(|e| bad(path, e.to_string()))?
            .ok_or_else(|| bad(path, "target array vanished"))?;
        let (ys, yv) = npy_values(path, y)?;
        if ys.first() != xs.first() {
            return Err(bad(
                path,
                format!(
                    "{xname} has {} rows but {yname} has {}",
                    xs[0],
                    ys.first().copied().unwrap_or(0)
                ),
            ));
        }
        for (r, v) in rows.iter_mut().zip(yv) {
            r.push(v);
        }
        columns.push(yname);
    }
    Ok(Table { columns, rows })
}
