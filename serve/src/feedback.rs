//! Ground-truth feedback: predictions are remembered by inference id (bounded), labels or
//! values sent later are matched to them, and rolling accuracy (classification) and MAE
//! (regression) per variant are kept over a time window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One piece of feedback: the inference id and the truth for its row(s).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    /// The true class of a one-row request.
    #[serde(default)]
    pub label: Option<f64>,
    /// The true value of a one-row regression request.
    #[serde(default)]
    pub value: Option<f64>,
    /// The truth per row of a multi-row request.
    #[serde(default)]
    pub labels: Option<Vec<f64>>,
}

impl Item {
    fn truth(&self) -> Option<Vec<f64>> {
        self.labels
            .clone()
            .or_else(|| self.label.or(self.value).map(|v| vec![v]))
    }
}

struct Pending {
    /// (model, version, variant), shared by every request of that variant.
    key: std::sync::Arc<(String, String, String)>,
    predictions: Box<[f64]>,
    classification: bool,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    slot: u64,
    n: u64,
    correct: u64,
    abs_err: f64,
}

/// Rolling quality of one (model, version, variant).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    pub n: u64,
    /// Share of correct predictions (classification).
    pub accuracy: Option<f64>,
    /// Mean absolute error (regression).
    pub mae: Option<f64>,
}

/// What came of a feedback batch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    pub matched: usize,
    pub unknown_ids: Vec<String>,
    pub invalid: Vec<String>,
}

/// The store.
pub struct Feedback {
    capacity: usize,
    slot_seconds: u64,
    pending: Mutex<(HashMap<String, Pending>, VecDeque<String>)>,
    /// Predictions not yet in `pending`: a request only pushes here (one short lock, no
    /// map insert); every [`INBOX`]th push, and every feedback submission, moves them over.
    inbox: Mutex<Inbox>,
    scores: Mutex<HashMap<SeriesKey, (bool, Vec<Slot>)>>,
}

/// (model, version, variant): one rolling-quality series.
type SeriesKey = (String, String, String);

/// How many remembered predictions wait in the inbox before they are moved to the map.
const INBOX: usize = 64;

#[derive(Default)]
struct Inbox {
    /// Series keys by a hash of (model, version, variant), shared by every request of that
    /// variant (so a request allocates no key).
    keys: HashMap<u64, Vec<std::sync::Arc<SeriesKey>>>,
    items: Vec<(String, Pending)>,
}

impl Inbox {
    fn key(&mut self, model: &str, version: &str, variant: &str) -> std::sync::Arc<SeriesKey> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (model, version, variant).hash(&mut h);
        let same = self.keys.entry(h.finish()).or_default();
        if let Some(k) = same
            .iter()
            .find(|k| k.0 == model && k.1 == version && k.2 == variant)
        {
            return k.clone();
        }
        let k = std::sync::Arc::new((model.into(), version.into(), variant.into()));
        same.push(k.clone());
        k
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const SLOTS: usize = 12;

impl Feedback {
    /// Remembers up to `capacity` predictions; quality is over `window_seconds`.
    pub fn new(capacity: usize, window_seconds: u64) -> Feedback {
        Feedback {
            capacity: capacity.max(1),
            slot_seconds: (window_seconds / SLOTS as u64).max(1),
            pending: Mutex::new((HashMap::new(), VecDeque::new())),
            inbox: Mutex::new(Inbox::default()),
            scores: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers a request's predictions under its inference id (the oldest are forgotten).
    pub fn remember(
        &self,
        id: &str,
        model: &str,
        version: &str,
        variant: &str,
        predictions: Vec<f64>,
        classification: bool,
    ) {
        let full = {
            let mut inbox = self.inbox.lock().expect("feedback lock");
            let key = inbox.key(model, version, variant);
            inbox.items.push((
                id.to_string(),
                Pending {
                    key,
                    predictions: predictions.into_boxed_slice(),
                    classification,
                },
            ));
            (inbox.items.len() >= INBOX)
                .then(|| std::mem::replace(&mut inbox.items, Vec::with_capacity(INBOX)))
        };
        if let Some(items) = full {
            self.file(items);
        }
    }

    /// Moves everything in the inbox to the map (before feedback is matched).
    fn drain(&self) {
        let items = std::mem::take(&mut self.inbox.lock().expect("feedback lock").items);
        if !items.is_empty() {
            self.file(items);
        }
    }

    /// Files remembered predictions by id, forgetting the oldest beyond the capacity.
    fn file(&self, items: Vec<(String, Pending)>) {
        let mut g = self.pending.lock().expect("feedback lock");
        let (map, order) = &mut *g;
        for (id, p) in items {
            match map.entry(id) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    // the same id again: the newer prediction replaces the older
                    e.insert(p);
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    order.push_back(e.key().clone());
                    e.insert(p);
                }
            }
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// Matches feedback to remembered predictions.
    pub fn submit(&self, items: &[Item]) -> Outcome {
        self.submit_at(now(), items)
    }

    pub fn submit_at(&self, t: u64, items: &[Item]) -> Outcome {
        let mut out = Outcome {
            matched: 0,
            unknown_ids: vec![],
            invalid: vec![],
        };
        let slot = t / self.slot_seconds;
        self.drain();
        for it in items {
            let Some(truth) = it.truth() else {
                out.invalid
                    .push(format!("{}: give label, value or labels", it.id));
                continue;
            };
            let p = self.pending.lock().expect("feedback lock").0.remove(&it.id);
            let Some(p) = p else {
                out.unknown_ids.push(it.id.clone());
                continue;
            };
            if truth.len() != p.predictions.len() {
                out.invalid.push(format!(
                    "{}: {} truths for {} predicted rows",
                    it.id,
                    truth.len(),
                    p.predictions.len()
                ));
                continue;
            }
            let mut scores = self.scores.lock().expect("feedback lock");
            let (cls, slots) = scores
                .entry((*p.key).clone())
                .or_insert_with(|| (p.classification, vec![Slot::default(); SLOTS]));
            *cls = p.classification;
            let s = &mut slots[(slot % SLOTS as u64) as usize];
            if s.slot != slot {
                *s = Slot {
                    slot,
                    ..Slot::default()
                };
            }
            for (t, pr) in truth.iter().zip(&p.predictions) {
                s.n += 1;
                if (t - pr).abs() < 1e-9 {
                    s.correct += 1;
                }
                s.abs_err += (t - pr).abs();
            }
            out.matched += 1;
        }
        out
    }

    /// Quality per (model, version, variant) over the window ending at `t`.
    pub fn quality_at(&self, t: u64) -> Vec<((String, String, String), Quality)> {
        let slot = t / self.slot_seconds;
        let scores = self.scores.lock().expect("feedback lock");
        scores
            .iter()
            .map(|(k, (cls, slots))| {
                let live = slots
                    .iter()
                    .filter(|s| s.n > 0 && s.slot + SLOTS as u64 > slot && s.slot <= slot);
                let (n, correct, err) = live.fold((0u64, 0u64, 0.0), |a, s| {
                    (a.0 + s.n, a.1 + s.correct, a.2 + s.abs_err)
                });
                let q = Quality {
                    n,
                    accuracy: (*cls && n > 0).then(|| correct as f64 / n as f64),
                    mae: (!*cls && n > 0).then(|| err / n as f64),
                };
                (k.clone(), q)
            })
            .collect()
    }

    pub fn quality(&self) -> Vec<((String, String, String), Quality)> {
        self.quality_at(now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, label: f64) -> Item {
        Item {
            id: id.into(),
            label: Some(label),
            value: None,
            labels: None,
        }
    }

    #[test]
    fn accuracy_per_variant_and_unknown_ids() {
        let f = Feedback::new(100, 3600);
        f.remember("a", "m", "1", "stable", vec![1.0], true);
        f.remember("b", "m", "1", "stable", vec![2.0], true);
        f.remember("c", "m", "2", "canary", vec![0.0, 1.0], true);
        let o = f.submit_at(
            1000,
            &[
                item("a", 1.0),
                item("b", 0.0),
                item("zzz", 1.0),
                Item {
                    id: "c".into(),
                    label: None,
                    value: None,
                    labels: Some(vec![0.0, 0.0]),
                },
            ],
        );
        assert_eq!(o.matched, 3);
        assert_eq!(o.unknown_ids, vec!["zzz".to_string()]);
        let q: HashMap<_, _> = f.quality_at(1000).into_iter().collect();
        assert_eq!(
            q[&("m".into(), "1".into(), "stable".into())].accuracy,
            Some(0.5)
        );
        assert_eq!(
            q[&("m".into(), "2".into(), "canary".into())].accuracy,
            Some(0.5)
        );
        // feedback for an id counts once
        assert_eq!(
            f.submit_at(1000, &[item("a", 1.0)]).unknown_ids,
            vec!["a".to_string()]
        );
        // after the window, quality is empty
        assert_eq!(f.quality_at(1000 + 7200)[0].1.n, 0);
    }

    #[test]
    fn mae_for_regression_and_bounded_memory() {
        let f = Feedback::new(2, 3600);
        f.remember("x", "r", "1", "default", vec![3.0], false);
        f.remember("y", "r", "1", "default", vec![5.0], false);
        f.remember("z", "r", "1", "default", vec![1.0], false);
        let o = f.submit_at(
            10,
            &[
                Item {
                    id: "x".into(),
                    label: None,
                    value: Some(1.0),
                    labels: None,
                },
                Item {
                    id: "y".into(),
                    label: None,
                    value: Some(4.0),
                    labels: None,
                },
            ],
        );
        assert_eq!(
            o.unknown_ids,
            vec!["x".to_string()],
            "the oldest prediction was forgotten"
        );
        let q = f.quality_at(10);
        assert_eq!(q[0].1.mae, Some(1.0));
        assert_eq!(q[0].1.accuracy, None);
    }

    #[test]
    fn predictions_remembered_in_batches_from_many_threads_are_all_matched() {
        // More than one inbox's worth from each of 4 threads, over 3 variants: every id is
        // found (batch moves and the drain before matching lose nothing), and each series
        // is scored under its own key.
        let f = std::sync::Arc::new(Feedback::new(10_000, 3600));
        let per = INBOX * 3 + 5;
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for i in 0..per {
                        let variant = ["stable", "canary", "shadow"][i % 3];
                        f.remember(&format!("{t}-{i}"), "m", "1", variant, vec![1.0], true);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let items: Vec<Item> = (0..4)
            .flat_map(|t| (0..per).map(move |i| item(&format!("{t}-{i}"), (i % 2) as f64)))
            .collect();
        let o = f.submit_at(100, &items);
        assert_eq!(o.matched, 4 * per);
        assert!(o.unknown_ids.is_empty());
        let q: HashMap<_, _> = f.quality_at(100).into_iter().collect();
        assert_eq!(q.len(), 3);
        let total: u64 = q.values().map(|q| q.n).sum();
        assert_eq!(total as usize, 4 * per);
    }

    #[test]
    fn the_capacity_holds_across_batches() {
        let f = Feedback::new(10, 3600);
        for i in 0..(INBOX * 2 + 3) {
            f.remember(&i.to_string(), "m", "1", "stable", vec![0.0], true);
        }
        let last = INBOX * 2 + 2;
        let o = f.submit_at(5, &[item("0", 0.0), item(&last.to_string(), 0.0)]);
        assert_eq!(o.matched, 1, "only the newest 10 are kept");
        assert_eq!(o.unknown_ids, vec!["0".to_string()]);
    }
}
