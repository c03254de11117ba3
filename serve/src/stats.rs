//! Per-model statistics as Triton's statistics extension reports them (`GET
//! /v2/models/{m}/stats`, gRPC `ModelStatistics`): counts and cumulative nanoseconds of
//! successful and failed requests, queueing and compute, per batch size too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A count and the total time it took.
#[derive(Default)]
pub struct Timed {
    count: AtomicU64,
    ns: AtomicU64,
}

impl Timed {
    pub fn add(&self, d: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.ns.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }
    pub fn get(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.ns.load(Ordering::Relaxed),
        )
    }
}

/// The statistics of one loaded model version.
#[derive(Default)]
pub struct ModelStats {
    pub success: Timed,
    pub fail: Timed,
    pub queue: Timed,
    pub compute_infer: Timed,
    /// Rows inferred (Triton's inference_count).
    pub inference_count: AtomicU64,
    /// Model executions: batches (Triton's execution_count).
    pub execution_count: AtomicU64,
    /// Milliseconds since the epoch of the last successful request.
    pub last_inference_ms: AtomicU64,
    /// Compute per batch size: (count, ns).
    pub batches: Mutex<BTreeMap<u64, (u64, u64)>>,
}

impl ModelStats {
    pub fn executed(&self, rows: usize, compute: Duration) {
        self.execution_count.fetch_add(1, Ordering::Relaxed);
        self.inference_count
            .fetch_add(rows as u64, Ordering::Relaxed);
        self.compute_infer.add(compute);
        let mut b = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        let e = b.entry(rows as u64).or_default();
        e.0 += 1;
        e.1 += compute.as_nanos().min(u128::from(u64::MAX)) as u64;
    }

    pub fn finished(&self, ok: bool, took: Duration) {
        if ok {
            self.success.add(took);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default();
            self.last_inference_ms.store(now, Ordering::Relaxed);
        } else {
            self.fail.add(took);
        }
    }

    /// Triton's JSON for one model version.
    pub fn to_json(&self, name: &str, version: &str) -> serde_json::Value {
        let d = |x: (u64, u64)| serde_json::json!({ "count": x.0, "ns": x.1 });
        let zero = d((0, 0));
        let batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::json!({
            "name": name,
            "version": version,
            "last_inference": self.last_inference_ms.load(Ordering::Relaxed),
            "inference_count": self.inference_count.load(Ordering::Relaxed),
            "execution_count": self.execution_count.load(Ordering::Relaxed),
            "inference_stats": {
                "success": d(self.success.get()),
                "fail": d(self.fail.get()),
                "queue": d(self.queue.get()),
                "compute_input": zero,
                "compute_infer": d(self.compute_infer.get()),
                "compute_output": zero,
                "cache_hit": zero,
                "cache_miss": zero,
            },
            "batch_stats": batches.iter().map(|(size, (count, ns))| serde_json::json!({
                "batch_size": size,
                "compute_input": zero,
                "compute_infer": d((*count, *ns)),
                "compute_output": zero,
            })).collect::<Vec<_>>(),
        })
    }

    /// The same as a gRPC message.
    pub fn to_pb(&self, name: &str, version: &str) -> crate::grpc::pb::ModelStatistics {
        use crate::grpc::pb;
        let d = |x: (u64, u64)| {
            Some(pb::StatisticDuration {
                count: x.0,
                ns: x.1,
            })
        };
        let zero = || Some(pb::StatisticDuration::default());
        let batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        pb::ModelStatistics {
            name: name.into(),
            version: version.into(),
            last_inference: self.last_inference_ms.load(Ordering::Relaxed),
            inference_count: self.inference_count.load(Ordering::Relaxed),
            execution_count: self.execution_count.load(Ordering::Relaxed),
            inference_stats: Some(pb::InferStatistics {
                success: d(self.success.get()),
                fail: d(self.fail.get()),
                queue: d(self.queue.get()),
                compute_input: zero(),
                compute_infer: d(self.compute_infer.get()),
                compute_output: zero(),
                cache_hit: zero(),
                cache_miss: zero(),
            }),
            batch_stats: batches
                .iter()
                .map(|(size, (count, ns))| pb::InferBatchStatistics {
                    batch_size: *size,
                    compute_input: zero(),
                    compute_infer: d((*count, *ns)),
                    compute_output: zero(),
                })
                .collect(),
        }
    }
}
