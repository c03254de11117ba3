//! Drift statistics: a baseline computed from reference (training) data, and streaming
//! per-feature histograms over a sliding window, compared with it by PSI and KS, for every
//! feature and for the predictions.
//!
//! Bins are the baseline's: deciles for continuous values, one bin per value for small
//! integer sets (class labels). KS is computed at bin resolution.
//!
//! Baselines that include a model's predictions are computed in the `baseline` module.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::dataset::Table;

/// The reference distribution of one feature (or of the predictions).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureBaseline {
    pub name: String,
    /// Bin boundaries; a value v falls in bin `edges.partition_point(|e| *e <= v)`.
    pub edges: Vec<f64>,
    /// Share of reference rows in each bin (`edges.len() + 1` bins).
    pub proportions: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// One bin per distinct (integer) value.
    pub categorical: bool,
}

/// What a model's inputs and predictions looked like on reference data; stored beside the
/// model as `baseline.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    pub rows: usize,
    pub features: Vec<FeatureBaseline>,
    #[serde(default)]
    pub prediction: Option<FeatureBaseline>,
}

impl FeatureBaseline {
    /// Builds bins and moments from values.
    pub fn from_values(name: &str, values: &[f64]) -> FeatureBaseline {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let (min, max) = (
            sorted.first().copied().unwrap_or(0.0),
            sorted.last().copied().unwrap_or(0.0),
        );
        let mut distinct = sorted.clone();
        distinct.dedup();
        let categorical = distinct.len() <= 20 && distinct.iter().all(|v| v.fract() == 0.0);
        let edges: Vec<f64> = if categorical {
            distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
        } else {
            // Each decile's edge lies halfway between the decile value and the distinct value
            // below it: the same split of the reference data as the value itself, but no
            // reference value sits on an edge, so a value served as FP32 (5.1 becomes
            // 5.0999999…) falls in the bin its reference twin fell in.
            let mut e: Vec<f64> = (1..10)
                .filter_map(|q| {
                    let v =
                        sorted[((q as f64 / 10.0) * (sorted.len() - 1) as f64).round() as usize];
                    let below = distinct[..distinct.partition_point(|d| *d < v)].last()?;
                    Some((below + v) / 2.0)
                })
                .collect();
            e.dedup();
            e
        };
        let mut counts = vec![0u64; edges.len() + 1];
        for v in values {
            counts[edges.partition_point(|e| *e <= *v)] += 1;
        }
        let proportions = counts.iter().map(|c| *c as f64 / n).collect();
        FeatureBaseline {
            name: name.to_string(),
            edges,
            proportions,
            mean,
            std,
            min,
            max,
            categorical,
        }
    }

    pub fn bin(&self, v: f64) -> usize {
        self.edges.partition_point(|e| *e <= v)
    }
}

impl Baseline {
    /// From a dataset's feature columns (every column but `target`, or `features`), and
    /// optionally the predictions a model made on it.
    pub fn from_table(
        table: &Table,
        target: Option<&str>,
        features: Option<&[String]>,
        predictions: Option<&[f64]>,
        path: &Path,
    ) -> Result<Baseline, crate::dataset::DatasetError> {
        let (names, x, _) = table.split(target, features, path)?;
        let feats = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                FeatureBaseline::from_values(n, &x.iter().map(|r| r[i]).collect::<Vec<_>>())
            })
            .collect();
        Ok(Baseline {
            rows: x.len(),
            features: feats,
            prediction: predictions.map(|p| FeatureBaseline::from_values("prediction", p)),
        })
    }

    pub fn read(path: &Path) -> Result<Baseline, String> {
        let t = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&t).map_err(|e| format!("{}: invalid baseline: {e}", path.display()))
    }

    /// A baseline from the bytes of a `baseline.json`.
    pub fn from_slice(bytes: &[u8]) -> Result<Baseline, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid baseline: {e}"))
    }
}

/// Population stability index between reference proportions and observed counts.
pub fn psi(expected: &[f64], observed: &[u64]) -> f64 {
    let total: u64 = observed.iter().sum();
    if total == 0 {
        return 0.0;
    }
    const EPS: f64 = 1e-4;
    expected
        .iter()
        .zip(observed)
        .map(|(e, o)| {
            let a = (*o as f64 / total as f64).max(EPS);
            let e = e.max(EPS);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Kolmogorov–Smirnov distance between the two distributions at bin resolution.
pub fn ks(expected: &[f64], observed: &[u64]) -> f64 {
    let total: u64 = observed.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let (mut ce, mut co, mut d) = (0.0, 0.0, 0.0f64);
    for (e, o) in expected.iter().zip(observed) {
        ce += e;
        co += *o as f64 / total as f64;
        d = d.max((ce - co).abs());
    }
    d
}

/// One time slot's histograms. Counters are atomics, so recording a request takes no lock
/// (requests on every worker add to the same bins); only moving a bucket on to a new slot,
/// once per slot, takes `DriftMonitor::rotate`.
struct Bucket {
    slot: AtomicU64,
    /// per feature, per bin; the last entry is the predictions
    counts: Vec<Vec<AtomicU64>>,
}

/// Streaming histograms over a sliding window of `buckets` slots of `slot_seconds`.
pub struct DriftMonitor {
    pub baseline: Baseline,
    slot_seconds: u64,
    buckets: Vec<Bucket>,
    rotate: Mutex<()>,
}

/// Current drift numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftStats {
    pub samples: u64,
    /// (feature, psi, ks)
    pub features: Vec<(String, f64, f64)>,
    pub prediction: Option<(f64, f64)>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl DriftMonitor {
    /// A window of `window_seconds`, kept as 10 slots.
    pub fn new(baseline: Baseline, window_seconds: u64) -> DriftMonitor {
        let slots = 10;
        let bins: Vec<usize> = baseline
            .features
            .iter()
            .chain(baseline.prediction.iter())
            .map(|f| f.proportions.len())
            .collect();
        DriftMonitor {
            slot_seconds: (window_seconds / slots).max(1),
            buckets: (0..slots)
                .map(|_| Bucket {
                    slot: AtomicU64::new(u64::MAX),
                    counts: bins
                        .iter()
                        .map(|n| (0..*n).map(|_| AtomicU64::new(0)).collect())
                        .collect(),
                })
                .collect(),
            rotate: Mutex::new(()),
            baseline,
        }
    }

    pub fn features(&self) -> usize {
        self.baseline.features.len()
    }

    /// Records rows (row-major, `features()` values each) and their predictions.
    pub fn record(&self, rows: &[f64], predictions: Option<&[f64]>) {
        self.record_at(now_secs(), rows, predictions)
    }

    pub fn record_at(&self, now: u64, rows: &[f64], predictions: Option<&[f64]>) {
        let nf = self.features();
        if nf == 0 {
            return;
        }
        let slot = now / self.slot_seconds;
        let n = self.buckets.len() as u64;
        let b = &self.buckets[(slot % n) as usize];
        if b.slot.load(Ordering::Acquire) != slot {
            // A new slot: clear this bucket once. A request recording at the same instant
            // may land its counts either side of the clear; a histogram can take that.
            let _g = self.rotate.lock().unwrap_or_else(|p| p.into_inner());
            if b.slot.load(Ordering::Acquire) != slot {
                b.counts
                    .iter()
                    .for_each(|c| c.iter().for_each(|x| x.store(0, Ordering::Relaxed)));
                b.slot.store(slot, Ordering::Release);
            }
        }
        for row in rows.chunks_exact(nf) {
            for (i, v) in row.iter().enumerate() {
                let bin = self.baseline.features[i].bin(*v);
                b.counts[i][bin].fetch_add(1, Ordering::Relaxed);
            }
        }
        if let (Some(pb), Some(preds)) = (&self.baseline.prediction, predictions) {
            let last = b.counts.len() - 1;
            for p in preds {
                b.counts[last][pb.bin(*p)].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// PSI and KS per feature and for predictions over the window ending `now`.
    pub fn stats_at(&self, now: u64) -> DriftStats {
        let slot = now / self.slot_seconds;
        let n = self.buckets.len() as u64;
        let live: Vec<&Bucket> = self
            .buckets
            .iter()
            .filter(|b| {
                let s = b.slot.load(Ordering::Acquire);
                s != u64::MAX && s + n > slot && s <= slot
            })
            .collect();
        let sum = |i: usize| -> Vec<u64> {
            let mut acc = vec![0u64; live.first().map_or(0, |b| b.counts[i].len())];
            for b in &live {
                for (a, c) in acc.iter_mut().zip(&b.counts[i]) {
                    *a += c.load(Ordering::Relaxed);
                }
            }
            acc
        };
        let mut samples = 0;
        let features = self
            .baseline
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let obs = if live.is_empty() {
                    vec![0; f.proportions.len()]
                } else {
                    sum(i)
                };
                samples = obs.iter().sum();
                (
                    f.name.clone(),
                    psi(&f.proportions, &obs),
                    ks(&f.proportions, &obs),
                )
            })
            .collect();
        let prediction = self.baseline.prediction.as_ref().map(|p| {
            let obs = if live.is_empty() {
                vec![0; p.proportions.len()]
            } else {
                sum(self.baseline.features.len())
            };
            (psi(&p.proportions, &obs), ks(&p.proportions, &obs))
        });
        DriftStats {
            samples,
            features,
            prediction,
        }
    }

    pub fn stats(&self) -> DriftStats {
        self.stats_at(now_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(n: usize, mean: f64, seed: u64) -> Vec<f64> {
        // a deterministic, roughly normal sample (sum of uniforms)
        let mut s = seed;
        (0..n)
            .map(|_| {
                let mut acc = 0.0;
                for _ in 0..12 {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    acc += (s >> 11) as f64 / (1u64 << 53) as f64;
                }
                mean + acc - 6.0
            })
            .collect()
    }

    #[test]
    fn same_distribution_has_low_psi_shifted_has_high() {
        let base = FeatureBaseline::from_values("x", &normal(5000, 0.0, 1));
        assert_eq!(base.proportions.len(), 10);
        let m = DriftMonitor::new(
            Baseline {
                rows: 5000,
                features: vec![base],
                prediction: None,
            },
            300,
        );
        m.record_at(1000, &normal(2000, 0.0, 2), None);
        let s = m.stats_at(1000);
        assert_eq!(s.samples, 2000);
        assert!(s.features[0].1 < 0.05, "psi {}", s.features[0].1);
        assert!(s.features[0].2 < 0.05, "ks {}", s.features[0].2);
        let m2 = DriftMonitor::new(m.baseline.clone(), 300);
        m2.record_at(1000, &normal(2000, 1.0, 3), None);
        let s2 = m2.stats_at(1000);
        assert!(s2.features[0].1 > 0.2, "shifted psi {}", s2.features[0].1);
        assert!(s2.features[0].2 > 0.2, "shifted ks {}", s2.features[0].2);
    }

    #[test]
    fn reference_data_served_as_fp32_does_not_drift() {
        // Decimal values with many ties, as in most tabular data: served through an FP32
        // tensor they come back a hair off (5.1 → 5.0999999…).
        let values: Vec<f64> = (0..300)
            .map(|i| 4.0 + ((i * 7) % 23) as f64 / 10.0)
            .collect();
        let b = Baseline {
            rows: values.len(),
            features: vec![FeatureBaseline::from_values("x", &values)],
            prediction: None,
        };
        let m = DriftMonitor::new(b, 600);
        let served: Vec<f64> = values.iter().map(|v| *v as f32 as f64).collect();
        m.record_at(1000, &served, None);
        let s = m.stats_at(1000);
        assert!(
            s.features[0].1 < 1e-9,
            "psi of the reference data itself: {}",
            s.features[0].1
        );
        assert!(
            s.features[0].2 < 1e-9,
            "ks of the reference data itself: {}",
            s.features[0].2
        );
    }

    #[test]
    fn old_samples_leave_the_window() {
        let base = FeatureBaseline::from_values("x", &normal(1000, 0.0, 1));
        let m = DriftMonitor::new(
            Baseline {
                rows: 1000,
                features: vec![base],
                prediction: None,
            },
            100,
        );
        m.record_at(1000, &normal(100, 5.0, 2), None);
        assert_eq!(m.stats_at(1005).samples, 100);
        assert_eq!(
            m.stats_at(1200).samples,
            0,
            "a window later, nothing is left"
        );
    }

    #[test]
    fn concurrent_recorders_lose_no_sample_and_slots_move_on() {
        let base = FeatureBaseline::from_values("x", &normal(1000, 0.0, 1));
        let m = std::sync::Arc::new(DriftMonitor::new(
            Baseline {
                rows: 1000,
                features: vec![base],
                prediction: Some(FeatureBaseline::from_values("prediction", &[0.0, 1.0])),
            },
            100,
        ));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        m.record_at(1000, &[(t * 500 + i) as f64 / 1000.0], Some(&[1.0]));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let s = m.stats_at(1000);
        assert_eq!(s.samples, 2000);
        // the next slot (10 s later) clears its bucket once and keeps the earlier one
        m.record_at(1010, &[0.5], Some(&[0.0]));
        assert_eq!(m.stats_at(1010).samples, 2001);
        // a window later, the bucket of slot 100 is reused for slot 110 and starts at zero
        m.record_at(1100, &[0.5], None);
        assert_eq!(m.stats_at(1100).samples, 2);
    }

    #[test]
    fn labels_get_one_bin_each() {
        let b = FeatureBaseline::from_values("prediction", &[0.0, 1.0, 1.0, 2.0]);
        assert!(b.categorical);
        assert_eq!(b.edges, vec![0.5, 1.5]);
        assert_eq!(b.proportions, vec![0.25, 0.5, 0.25]);
    }
}
