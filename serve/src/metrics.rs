//! Prometheus metrics, in the text format `promtool check metrics` accepts.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric the server exports.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Requests by model, version, variant, protocol, status and site (where the variant
    /// ran: `local`, or a remote variant's site).
    pub requests: IntCounterVec,
    /// End-to-end latency by model, version, variant, protocol and site.
    pub request_seconds: HistogramVec,
    /// State of each remote variant's circuit: 0 closed, 1 open, 2 half-open (probing).
    pub remote_circuit: GaugeVec,
    /// Requests a failed remote variant handed to a local one.
    pub remote_fallbacks: IntCounterVec,
    /// Time a request waited for its batch.
    pub queue_seconds: HistogramVec,
    /// Time the model computed a batch.
    pub compute_seconds: HistogramVec,
    /// Rows per executed batch.
    pub batch_size: HistogramVec,
    /// Requests computed on the task that received them (the inline path: no queue, no
    /// batch), by model and version; the rest went through the batching queue.
    pub inline_requests: IntCounterVec,
    pub inflight: IntGauge,
    /// Seconds it took to load and warm up each model.
    pub model_load_seconds: GaugeVec,
    /// PSI per feature against the baseline, over the drift window.
    pub drift_psi: GaugeVec,
    /// KS distance per feature against the baseline, over the drift window.
    pub drift_ks: GaugeVec,
    /// PSI and KS of the predictions against the baseline's.
    pub prediction_psi: GaugeVec,
    pub prediction_ks: GaugeVec,
    /// Rows in the drift window.
    pub drift_samples: GaugeVec,
    /// Rolling accuracy and MAE from feedback, per variant.
    pub feedback_accuracy: GaugeVec,
    pub feedback_mae: GaugeVec,
    pub feedback_samples: GaugeVec,
    /// Feedback items, by outcome (matched, unknown_id, invalid).
    pub feedback_total: IntCounterVec,
    /// Models that failed to load, by model and version (a counter per attempt).
    pub model_load_failures: IntCounterVec,
    /// Plan-cache lookups of models planned per input shape, by model, version and result
    /// (hit, miss).
    pub plan_cache: IntCounterVec,
    /// Registered only when NVML loads.
    pub gpu: Option<GpuGauges>,
    /// Loads and evictions of a shared endpoint's models, and the memory they take.
    pub shared: SharedGauges,
}

/// Loads and evictions of a shared endpoint's models. Per-model series exist only for the
/// models loaded now, so `/metrics` stays bounded by the memory budget, not by how many
/// models are attached.
#[derive(Clone)]
pub struct SharedGauges {
    pub loads: prometheus::IntCounter,
    pub evictions: prometheus::IntCounter,
    pub cold_start_seconds: prometheus::Histogram,
    pub resident_bytes: GaugeVec,
    pub budget_bytes: prometheus::IntGauge,
    pub used_bytes: prometheus::IntGauge,
    pub registered: prometheus::IntGauge,
    pub resident: prometheus::IntGauge,
    /// Reloads done (of the configuration file and the shared endpoint's registry).
    pub reloads: prometheus::IntCounter,
}

/// GPU gauges, per GPU.
#[derive(Clone)]
pub struct GpuGauges {
    pub utilization: GaugeVec,
    pub memory_used: GaugeVec,
    pub memory_total: GaugeVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "modelplane_requests_total",
                "Inference requests by model, version, variant, protocol, status and site.",
            ),
            &["model", "version", "variant", "protocol", "status", "site"],
        )
        .expect("metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "modelplane_request_duration_seconds",
                "End-to-end inference latency.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["model", "version", "variant", "protocol", "site"],
        )
        .expect("metric");
        let remote_circuit = GaugeVec::new(
            Opts::new(
                "modelplane_remote_circuit_state",
                "Circuit of a remote variant: 0 closed, 1 open (failing fast), 2 half-open (probing).",
            ),
            &["endpoint", "variant", "site"],
        )
        .expect("metric");
        let remote_fallbacks = IntCounterVec::new(
            Opts::new(
                "modelplane_remote_fallbacks_total",
                "Requests a failed remote variant handed to a local variant.",
            ),
            &["variant", "site"],
        )
        .expect("metric");
        let queue_seconds = HistogramVec::new(
            HistogramOpts::new(
                "modelplane_queue_duration_seconds",
                "Time requests waited to be batched.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["model", "version"],
        )
        .expect("metric");
        let compute_seconds = HistogramVec::new(
            HistogramOpts::new(
                "modelplane_compute_duration_seconds",
                "Model compute time per batch.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["model", "version"],
        )
        .expect("metric");
        let batch_size = HistogramVec::new(
            HistogramOpts::new("modelplane_batch_size", "Rows per executed batch.")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            &["model", "version"],
        )
        .expect("metric");
        let inline_requests = IntCounterVec::new(
            Opts::new(
                "modelplane_inline_requests_total",
                "Requests computed on the task that received them, without the batching queue.",
            ),
            &["model", "version"],
        )
        .expect("metric");
        let inflight = IntGauge::new(
            "modelplane_inflight_requests",
            "Inference requests being handled.",
        )
        .expect("metric");
        let model_load_seconds = GaugeVec::new(
            Opts::new(
                "modelplane_model_load_seconds",
                "Time to load, optimise and warm up each model.",
            ),
            &["model", "version"],
        )
        .expect("metric");
        let g = |name: &str, help: &str, labels: &[&str]| {
            GaugeVec::new(Opts::new(name, help), labels).expect("metric")
        };
        let drift_psi = g(
            "modelplane_drift_psi",
            "Population stability index of a feature against the training baseline.",
            &["model", "version", "feature"],
        );
        let drift_ks = g(
            "modelplane_drift_ks",
            "Kolmogorov-Smirnov distance of a feature against the training baseline.",
            &["model", "version", "feature"],
        );
        let prediction_psi = g(
            "modelplane_prediction_drift_psi",
            "Population stability index of the predictions against the baseline.",
            &["model", "version"],
        );
        let prediction_ks = g(
            "modelplane_prediction_drift_ks",
            "Kolmogorov-Smirnov distance of the predictions against the baseline.",
            &["model", "version"],
        );
        let drift_samples = g(
            "modelplane_drift_window_rows",
            "Rows in the drift window.",
            &["model", "version"],
        );
        let feedback_accuracy = g(
            "modelplane_feedback_accuracy",
            "Rolling accuracy from ground-truth feedback.",
            &["model", "version", "variant"],
        );
        let feedback_mae = g(
            "modelplane_feedback_mae",
            "Rolling mean absolute error from ground-truth feedback.",
            &["model", "version", "variant"],
        );
        let feedback_samples = g(
            "modelplane_feedback_window_rows",
            "Rows with feedback in the quality window.",
            &["model", "version", "variant"],
        );
        let feedback_total = IntCounterVec::new(
            Opts::new("modelplane_feedback_total", "Feedback items by outcome."),
            &["outcome"],
        )
        .expect("metric");
        let model_load_failures = IntCounterVec::new(
            Opts::new(
                "modelplane_model_load_failures_total",
                "Attempts to load a model that failed (the reason is in the log and the model's metadata).",
            ),
            &["model", "version"],
        )
        .expect("metric");
        let plan_cache = IntCounterVec::new(
            Opts::new(
                "modelplane_plan_cache_lookups_total",
                "Plan-cache lookups of models optimised per input shape, by result (hit, miss).",
            ),
            &["model", "version", "result"],
        )
        .expect("metric");
        let ic = |n: &str, h: &str| prometheus::IntCounter::new(n, h).expect("metric");
        let ig = |n: &str, h: &str| IntGauge::new(n, h).expect("metric");
        let shared = SharedGauges {
            loads: ic(
                "modelplane_model_loads_total",
                "Models of a shared endpoint loaded (on their first request, or pinned when attached).",
            ),
            evictions: ic(
                "modelplane_model_evictions_total",
                "Models of a shared endpoint unloaded to make room within the memory budget.",
            ),
            cold_start_seconds: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "modelplane_model_cold_start_seconds",
                    "Time a request waited for its model to load (shared endpoints).",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )
            .expect("metric"),
            resident_bytes: GaugeVec::new(
                Opts::new(
                    "modelplane_model_resident_bytes",
                    "Memory a loaded model of a shared endpoint takes (its planned weights), by model and version; only loaded models have a series.",
                ),
                &["model", "version"],
            )
            .expect("metric"),
            budget_bytes: ig(
                "modelplane_memory_budget_bytes",
                "The shared endpoint's memory budget (0: unlimited).",
            ),
            used_bytes: ig(
                "modelplane_memory_resident_bytes",
                "Memory the loaded models of the shared endpoint take together.",
            ),
            registered: ig(
                "modelplane_models_registered",
                "Model versions attached to the shared endpoint.",
            ),
            resident: ig(
                "modelplane_models_resident",
                "Model versions of the shared endpoint loaded now.",
            ),
            reloads: ic(
                "modelplane_reloads_total",
                "Reloads done (of the configuration and the shared endpoint's registry); callers asking at once share one.",
            ),
        };
        for c in [
            Box::new(shared.loads.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(shared.evictions.clone()),
            Box::new(shared.cold_start_seconds.clone()),
            Box::new(shared.resident_bytes.clone()),
            Box::new(shared.budget_bytes.clone()),
            Box::new(shared.used_bytes.clone()),
            Box::new(shared.registered.clone()),
            Box::new(shared.resident.clone()),
            Box::new(shared.reloads.clone()),
            Box::new(model_load_failures.clone()),
            Box::new(plan_cache.clone()),
            Box::new(requests.clone()),
            Box::new(request_seconds.clone()),
            Box::new(remote_circuit.clone()),
            Box::new(remote_fallbacks.clone()),
            Box::new(queue_seconds.clone()),
            Box::new(compute_seconds.clone()),
            Box::new(batch_size.clone()),
            Box::new(inline_requests.clone()),
            Box::new(inflight.clone()),
            Box::new(model_load_seconds.clone()),
            Box::new(drift_psi.clone()),
            Box::new(drift_ks.clone()),
            Box::new(prediction_psi.clone()),
            Box::new(prediction_ks.clone()),
            Box::new(drift_samples.clone()),
            Box::new(feedback_accuracy.clone()),
            Box::new(feedback_mae.clone()),
            Box::new(feedback_samples.clone()),
            Box::new(feedback_total.clone()),
        ] {
            registry.register(c).expect("register metric");
        }
        let gpu = crate::gpu::Gpus::open().map(|_| {
            let l = &["gpu", "uuid", "name"];
            let gg = GpuGauges {
                utilization: g(
                    "modelplane_gpu_utilization_ratio",
                    "GPU utilisation (0-1) from NVML.",
                    l,
                ),
                memory_used: g(
                    "modelplane_gpu_memory_used_bytes",
                    "GPU memory in use, from NVML.",
                    l,
                ),
                memory_total: g(
                    "modelplane_gpu_memory_total_bytes",
                    "GPU memory, from NVML.",
                    l,
                ),
            };
            for c in [&gg.utilization, &gg.memory_used, &gg.memory_total] {
                registry
                    .register(Box::new(c.clone()))
                    .expect("register metric");
            }
            gg
        });
        Metrics {
            gpu,
            shared,
            model_load_failures,
            plan_cache,
            registry,
            requests,
            request_seconds,
            remote_circuit,
            remote_fallbacks,
            queue_seconds,
            compute_seconds,
            batch_size,
            inline_requests,
            inflight,
            model_load_seconds,
            drift_psi,
            drift_ks,
            prediction_psi,
            prediction_ks,
            drift_samples,
            feedback_accuracy,
            feedback_mae,
            feedback_samples,
            feedback_total,
        }
    }

    /// Removes every series of the model versions `gone` says are gone (unloaded or
    /// detached), so that the exposition holds only models that are served. One pass over
    /// the series, however many versions go.
    pub fn forget(&self, gone: &dyn Fn(&str, &str) -> bool) {
        fn drop_from<T: prometheus::core::MetricVecBuilder>(
            v: &prometheus::core::MetricVec<T>,
            gone: &dyn Fn(&str, &str) -> bool,
        ) {
            use prometheus::core::Collector;
            for mf in v.collect() {
                for m in mf.get_metric() {
                    let labels: std::collections::HashMap<&str, &str> = m
                        .get_label()
                        .iter()
                        .map(|l| (l.name(), l.value()))
                        .collect();
                    let (Some(m), Some(ver)) = (labels.get("model"), labels.get("version")) else {
                        continue;
                    };
                    if gone(m, ver) {
                        let _ = v.remove(&labels);
                    }
                }
            }
        }
        drop_from(&self.requests, gone);
        drop_from(&self.request_seconds, gone);
        drop_from(&self.queue_seconds, gone);
        drop_from(&self.compute_seconds, gone);
        drop_from(&self.batch_size, gone);
        drop_from(&self.inline_requests, gone);
        drop_from(&self.model_load_seconds, gone);
        drop_from(&self.drift_psi, gone);
        drop_from(&self.drift_ks, gone);
        drop_from(&self.prediction_psi, gone);
        drop_from(&self.prediction_ks, gone);
        drop_from(&self.drift_samples, gone);
        drop_from(&self.feedback_accuracy, gone);
        drop_from(&self.feedback_mae, gone);
        drop_from(&self.feedback_samples, gone);
        drop_from(&self.plan_cache, gone);
        drop_from(&self.shared.resident_bytes, gone);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
