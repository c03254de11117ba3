//! `modelplane-serve device-check`: on a machine with an NVIDIA GPU, the NVML inventory and
//! each given model run on `cuda` and on the CPU side by side: outputs compared (rtol 1e-3,
//! atol 1e-4) and latencies reported. Where no GPU is present it fails at once, saying so.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

use crate::model::{Device, LoadOptions, Model};
use crate::tensor::Datatype;

/// One model to check, and the size every free non-batch dimension gets.
pub struct Check {
    pub model: PathBuf,
    pub free_size: usize,
    pub runs: usize,
}

/// A model's outcome.
pub struct Outcome {
    pub model: String,
    pub shapes: Vec<Vec<usize>>,
    pub max_abs_diff: f64,
    pub cpu_median: Duration,
    pub cuda_median: Duration,
}

/// Deterministic inputs for a model: batch 1, `free` for other free dimensions, values in
/// [0, 1) for floats and zeros for the rest.
fn inputs(m: &Model, free: usize) -> Result<Vec<Tensor>, String> {
    m.signature
        .inputs
        .iter()
        .map(|s| {
            let shape: Vec<usize> = s
                .shape
                .iter()
                .enumerate()
                .map(|(j, d)| match (*d, j) {
                    (d, _) if d >= 0 => d as usize,
                    (_, 0) => 1,
                    _ => free,
                })
                .collect();
            let dt = Datatype::parse(&s.datatype)
                .map_err(|e| e.to_string())?
                .to_tract();
            let n: usize = shape.iter().product();
            if dt == DatumType::F32 {
                let v: Vec<f32> = (0..n)
                    .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
                    .collect();
                Tensor::from_shape(&shape, &v).map_err(|e| e.to_string())
            } else {
                Tensor::zero_dt(dt, &shape).map_err(|e| e.to_string())
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn timed(m: &Model, x: &[Tensor], runs: usize) -> Result<(Vec<Tensor>, Duration), String> {
    let out = m.run(x.to_vec()).map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        m.run(x.to_vec()).map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    Ok((out, median(times)))
}

/// Runs one check: the model on both devices, compared.
pub fn check(c: &Check) -> Result<Outcome, String> {
    let name = c.model.display().to_string();
    let load = |device| {
        let o = LoadOptions {
            device,
            ..LoadOptions::default()
        };
        Model::load_with("check", "1", &c.model, None, &o)
            .map_err(|e| format!("{name} on {device:?}: {e}"))
    };
    let cpu = load(Device::Cpu)?;
    let cuda = load(Device::Cuda)?;
    let x = inputs(&cpu, c.free_size)?;
    let (want, cpu_median) = timed(&cpu, &x, c.runs)?;
    let (got, cuda_median) = timed(&cuda, &x, c.runs)?;
    let mut max_abs_diff = 0f64;
    for ((w, g), spec) in want.iter().zip(&got).zip(&cpu.signature.outputs) {
        if w.shape() != g.shape() {
            return Err(format!(
                "{name}: output {} has shape {:?} on cuda, {:?} on the CPU",
                spec.name,
                g.shape(),
                w.shape()
            ));
        }
        let (Ok(w), Ok(g)) = (w.cast_to::<f64>(), g.cast_to::<f64>()) else {
            continue;
        };
        let (Some(w), Some(g)) = (
            w.as_plain_ram().and_then(|v| v.as_slice::<f64>().ok()),
            g.as_plain_ram().and_then(|v| v.as_slice::<f64>().ok()),
        ) else {
            continue;
        };
        for (a, b) in w.iter().zip(g) {
            let d = (a - b).abs();
            max_abs_diff = max_abs_diff.max(d);
            if d > 1e-4 + 1e-3 * a.abs() {
                return Err(format!(
                    "{name}: output {} differs between cuda ({b}) and the CPU ({a})",
                    spec.name
                ));
            }
        }
    }
    Ok(Outcome {
        model: name,
        shapes: x.iter().map(|t| t.shape().to_vec()).collect(),
        max_abs_diff,
        cpu_median,
        cuda_median,
    })
}

/// The whole check: inventory first (no GPU: an error, at once), then every model.
pub fn run(checks: &[Check]) -> Result<(), String> {
    let Some(gpus) = crate::gpu::Gpus::open() else {
        return Err("no NVIDIA GPU here: NVML did not load (no driver, or no GPU); run device-check on a machine with an NVIDIA GPU and driver".into());
    };
    let list = gpus.list();
    if list.is_empty() {
        return Err("NVML loaded but reports no GPU".into());
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&list).unwrap_or_default()
    );
    let mut failed = 0;
    println!(
        "{:<60} {:>12} {:>12} {:>8} {:>10}  shapes",
        "model", "cpu p50", "cuda p50", "ratio", "max|diff|"
    );
    for c in checks {
        match check(c) {
            Ok(o) => println!(
                "{:<60} {:>10.3}ms {:>10.3}ms {:>7.2}x {:>10.2e}  {:?}",
                o.model,
                o.cpu_median.as_secs_f64() * 1e3,
                o.cuda_median.as_secs_f64() * 1e3,
                o.cpu_median.as_secs_f64() / o.cuda_median.as_secs_f64().max(1e-9),
                o.max_abs_diff,
                o.shapes
            ),
            Err(e) => {
                failed += 1;
                println!("FAILED {e}");
            }
        }
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {} models failed on cuda",
            checks.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_gpu_the_check_fails_at_once_saying_so() {
        if crate::gpu::Gpus::open().is_some() {
            eprintln!("skipped: this machine has NVML (a GPU); `cargo xtask device-check` runs the real check");
            return;
        }
        let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/models/repo/iris/1/model.onnx");
        let e = run(&[Check {
            model,
            free_size: 8,
            runs: 1,
        }])
        .unwrap_err();
        assert!(e.contains("no NVIDIA GPU here"), "{e}");
    }
}
