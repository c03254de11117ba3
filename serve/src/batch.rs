//! Dynamic batching: requests for one model queue up (bounded), a collector gathers them
//! into batches of up to `max_batch_size` rows within `max_delay`, and a worker pool sized to
//! the cores computes them; outputs are split back by rows.
//!
//! The inline fast path: when batching cannot help — nothing is queued, a worker is free,
//! `max_delay_ms` is 0 and the model computes in under [`INLINE_MAX`] — a request runs on the
//! task that received it, without the hand-off to the collector, a blocking thread and back
//! (three thread wake-ups, most of the server's own time per request when idle). Under load
//! the queue fills or the workers are busy, and requests batch as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tract_onnx::prelude::Tensor;

use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::model::Model;

/// Batching settings of one model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Most rows in one batch; 1 turns batching off.
    #[serde(default = "default_max_batch")]
    pub max_batch_size: usize,
    /// Longest a partial batch is held back while a worker is free, waiting for more
    /// requests (0: go at once; requests still batch up while every worker is busy).
    #[serde(default = "default_delay")]
    pub max_delay_ms: u64,
    /// Requests that may wait; more are refused with 429 / RESOURCE_EXHAUSTED.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
}

fn default_max_batch() -> usize {
    32
}
fn default_delay() -> u64 {
    0
}
fn default_queue() -> usize {
    1024
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch_size: default_max_batch(),
            max_delay_ms: default_delay(),
            queue_capacity: default_queue(),
        }
    }
}

struct Job {
    inputs: Vec<Tensor>,
    rows: usize,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Vec<Tensor>, ServeError>>,
}

/// The longest mean compute (per execution) of a model that may run inline.
pub const INLINE_MAX: Duration = Duration::from_micros(200);

/// The queue in front of one model.
pub struct Batcher {
    tx: mpsc::Sender<Job>,
    model: Arc<Model>,
    pool: Arc<Semaphore>,
    metrics: Metrics,
    /// `max_delay_ms` is 0: a request never waits for company when a worker is free.
    inline: bool,
    /// The longest mean compute that runs inline ([`INLINE_MAX`] unless set).
    inline_max: Duration,
}

impl Batcher {
    /// Starts the collector; `pool` bounds concurrent computations across all models.
    pub fn start(
        model: Arc<Model>,
        cfg: BatchConfig,
        pool: Arc<Semaphore>,
        metrics: Metrics,
    ) -> Batcher {
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let inline = cfg.max_delay_ms == 0;
        tokio::spawn(collect(
            model.clone(),
            cfg,
            pool.clone(),
            metrics.clone(),
            rx,
        ));
        Batcher {
            tx,
            model,
            pool,
            metrics,
            inline,
            inline_max: INLINE_MAX,
        }
    }

    /// Sets the longest mean compute of a model that may run inline (default [`INLINE_MAX`]).
    pub fn with_inline_max(mut self, max: Duration) -> Batcher {
        self.inline_max = max;
        self
    }

    /// Whether a request may run inline now (see the module's documentation): the model is
    /// known to be small (it ran at least once), nothing waits in the queue, and a worker
    /// permit is free, which is returned.
    fn inline_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if !self.inline || self.tx.capacity() != self.tx.max_capacity() {
            return None;
        }
        let (runs, ns) = self.model.stats.compute_infer.get();
        if runs == 0 || ns / runs > self.inline_max.as_nanos() as u64 {
            return None;
        }
        self.pool.clone().try_acquire_owned().ok()
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Queues prepared inputs and waits for the outputs, at most `timeout`.
    pub async fn infer(
        &self,
        inputs: Vec<Tensor>,
        timeout: Duration,
    ) -> Result<Vec<Tensor>, ServeError> {
        let rows = inputs
            .first()
            .and_then(|t| t.shape().first().copied())
            .unwrap_or(1);
        if let Some(_permit) = self.inline_permit() {
            self.metrics
                .inline_requests
                .with_label_values(&[self.model.name.as_str(), self.model.version.as_str()])
                .inc();
            return run_one(&self.model, inputs, rows, Duration::ZERO, &self.metrics);
        }
        let (reply, rx) = oneshot::channel();
        let job = Job {
            inputs,
            rows,
            enqueued: Instant::now(),
            reply,
        };
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ServeError::Overloaded(format!(
                "model {} v{} has a full queue; retry later",
                self.model.name, self.model.version
            )),
            mpsc::error::TrySendError::Closed(_) => {
                ServeError::Unavailable(format!("model {} is being unloaded", self.model.name))
            }
        })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ServeError::Internal("the batch worker stopped".into())),
            Err(_) => Err(ServeError::Timeout(format!(
                "no answer from model {} within {} ms",
                self.model.name,
                timeout.as_millis()
            ))),
        }
    }
}

/// Can `job` join a batch started by `first`: same datatypes and trailing dimensions.
fn compatible(first: &Job, job: &Job) -> bool {
    first.inputs.len() == job.inputs.len()
        && first.inputs.iter().zip(&job.inputs).all(|(a, b)| {
            a.datum_type() == b.datum_type()
                && a.rank() == b.rank()
                && a.rank() > 0
                && a.shape()[1..] == b.shape()[1..]
        })
}

async fn collect(
    model: Arc<Model>,
    cfg: BatchConfig,
    pool: Arc<Semaphore>,
    metrics: Metrics,
    mut rx: mpsc::Receiver<Job>,
) {
    let max_rows = if model.batchable {
        cfg.max_batch_size.max(1)
    } else {
        1
    };
    let delay = Duration::from_millis(cfg.max_delay_ms);
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        let mut rows = first.rows;
        let mut batch = vec![first];
        // Take whatever is already waiting.
        while rows < max_rows && carry.is_none() {
            match rx.try_recv() {
                Ok(job) if compatible(&batch[0], &job) && rows + job.rows <= max_rows => {
                    rows += job.rows;
                    batch.push(job);
                }
                Ok(job) => carry = Some(job),
                Err(_) => break,
            }
        }
        // Opportunistic batching: while every worker is busy, keep gathering requests (up to
        // max_batch_size rows); once a worker is free, go. `max_delay_ms` > 0 additionally
        // holds a partial batch back that long even when a worker is free.
        let deadline = tokio::time::Instant::now() + delay;
        let permit = loop {
            if rows >= max_rows || carry.is_some() {
                break pool.clone().acquire_owned().await;
            }
            let wait_more = !delay.is_zero() && tokio::time::Instant::now() < deadline;
            tokio::select! {
                biased;
                p = pool.clone().acquire_owned(), if !wait_more => break p,
                job = rx.recv() => match job {
                    Some(job) if compatible(&batch[0], &job) && rows + job.rows <= max_rows => {
                        rows += job.rows;
                        batch.push(job);
                    }
                    Some(job) => carry = Some(job),
                    None => break pool.clone().acquire_owned().await,
                },
                _ = tokio::time::sleep_until(deadline), if wait_more => {}
            }
        };
        let Ok(permit) = permit else { return };
        let (model, metrics) = (model.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            execute(&model, batch, &metrics);
        });
    }
}

/// Runs one request's inputs alone, with its metrics.
fn run_one(
    model: &Model,
    inputs: Vec<Tensor>,
    rows: usize,
    waited: Duration,
    metrics: &Metrics,
) -> Result<Vec<Tensor>, ServeError> {
    let labels = [model.name.as_str(), model.version.as_str()];
    metrics
        .queue_seconds
        .with_label_values(&labels)
        .observe(waited.as_secs_f64());
    model.stats.queue.add(waited);
    metrics
        .batch_size
        .with_label_values(&labels)
        .observe(rows as f64);
    let t = Instant::now();
    let r = model.run(inputs);
    let took = t.elapsed();
    metrics
        .compute_seconds
        .with_label_values(&labels)
        .observe(took.as_secs_f64());
    model.stats.executed(rows, took);
    r
}

fn execute(model: &Model, batch: Vec<Job>, metrics: &Metrics) {
    if batch.len() == 1 {
        let job = batch.into_iter().next().expect("one job");
        let waited = job.enqueued.elapsed();
        let _ = job
            .reply
            .send(run_one(model, job.inputs, job.rows, waited, metrics));
        return;
    }
    let labels = [model.name.as_str(), model.version.as_str()];
    let now = Instant::now();
    for j in &batch {
        let waited = now.duration_since(j.enqueued);
        metrics
            .queue_seconds
            .with_label_values(&labels)
            .observe(waited.as_secs_f64());
        model.stats.queue.add(waited);
    }
    let rows: usize = batch.iter().map(|j| j.rows).sum();
    metrics
        .batch_size
        .with_label_values(&labels)
        .observe(rows as f64);
    // Stack each input along the batch axis.
    let n_inputs = batch[0].inputs.len();
    let stacked: Result<Vec<Tensor>, _> = (0..n_inputs)
        .map(|i| {
            let parts: Vec<Tensor> = batch.iter().map(|j| j.inputs[i].clone()).collect();
            Tensor::stack_tensors(0, &parts)
        })
        .collect();
    let t = Instant::now();
    let result = stacked
        .map_err(|e| ServeError::Internal(format!("batching inputs: {e}")))
        .and_then(|inputs| model.run(inputs));
    let took = t.elapsed();
    metrics
        .compute_seconds
        .with_label_values(&labels)
        .observe(took.as_secs_f64());
    model.stats.executed(rows, took);
    match result {
        Ok(outputs) if outputs.iter().all(|o| o.rank() > 0 && o.shape()[0] == rows) => {
            let mut start = 0;
            for job in batch {
                let part: Result<Vec<Tensor>, _> = outputs
                    .iter()
                    .map(|o| o.slice(0, start, start + job.rows))
                    .collect();
                start += job.rows;
                let _ = job.reply.send(
                    part.map_err(|e| ServeError::Internal(format!("splitting outputs: {e}"))),
                );
            }
        }
        Ok(_) => {
            // An output without one row per input row cannot be split: run each alone.
            for job in batch {
                let _ = job.reply.send(model.run(job.inputs));
            }
        }
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}
