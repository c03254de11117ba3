//! The `local` platform: this machine. Inventory comes from the OS and NVML (loaded at run
//! time: no driver means no GPUs, not an error); endpoints run as supervised server
//! processes (see [`super::process`]).

use serde::{Deserialize, Serialize};
use tfplugin::{Attribute, Nesting, Type};

/// One GPU, as NVML reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Gpu {
    pub index: i64,
    pub name: String,
    pub uuid: String,
    pub memory_bytes: i64,
    pub driver_version: String,
    pub cuda_version: String,
    pub mig_enabled: Option<bool>,
}

/// What this machine has.
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    pub hostname: String,
    pub cpus: i64,
    pub memory_bytes: i64,
    pub gpus: Vec<Gpu>,
}

/// Reads the inventory (blocking: NVML initialisation takes a moment on GPU hosts).
pub fn inventory() -> Inventory {
    let gpus = modelplane_serve::gpu::inventory()
        .into_iter()
        .map(|g| Gpu {
            index: i64::from(g.index),
            name: g.name,
            uuid: g.uuid,
            memory_bytes: g.memory_total_bytes as i64,
            driver_version: g.driver_version,
            cuda_version: g.cuda_version,
            mig_enabled: g.mig_enabled,
        })
        .collect();
    Inventory {
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1),
        memory_bytes: mem_total().unwrap_or(0),
        gpus,
    }
}

fn mem_total() -> Option<i64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Schema of the computed inventory attributes, shared by the cluster and the data source.
pub fn inventory_attributes() -> Vec<Attribute> {
    let gpu = vec![
        Attribute::new("index", Type::Number)
            .computed()
            .description("NVML device index."),
        Attribute::new("name", Type::String)
            .computed()
            .description("Product name, e.g. `NVIDIA A10G`."),
        Attribute::new("uuid", Type::String)
            .computed()
            .description("Device UUID (`GPU-…`)."),
        Attribute::new("memory_bytes", Type::Number)
            .computed()
            .description("Total device memory in bytes."),
        Attribute::new("driver_version", Type::String)
            .computed()
            .description("NVIDIA driver version."),
        Attribute::new("cuda_version", Type::String)
            .computed()
            .description("Highest CUDA version the driver supports, e.g. `12.4`."),
        Attribute::new("mig_enabled", Type::Bool)
            .computed()
            .description("Whether MIG mode is on; null on GPUs without MIG."),
    ];
    vec![
        Attribute::new("hostname", Type::String)
            .computed()
            .description("This machine's host name."),
        Attribute::new("cpus", Type::Number)
            .computed()
            .description("Logical CPUs available to the provider."),
        Attribute::new("memory_bytes", Type::Number)
            .computed()
            .description("Total memory in bytes."),
        Attribute::nested("gpus", Nesting::List, gpu)
            .computed()
            .description(
                "NVIDIA GPUs found through NVML; empty where there is no driver or no GPU.",
            ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn inventory_reads_this_machine() {
        let inv = super::inventory();
        assert!(inv.cpus >= 1);
        assert!(inv.memory_bytes > 0, "MemTotal read from /proc/meminfo");
        // No NVIDIA driver here means an empty list, not an error; with one, every GPU has a UUID.
        assert!(inv
            .gpus
            .iter()
            .all(|g| g.uuid.starts_with("GPU-") || g.uuid.starts_with("MIG-")));
    }
}
