//! NVIDIA GPUs through NVML, loaded at run time: with no driver there are simply no GPUs
//! (no error, no gauges).

use serde::{Deserialize, Serialize};

/// One GPU as NVML reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    /// GPU utilisation over the last sample period, 0..=1.
    pub utilization: f64,
    pub driver_version: String,
    pub cuda_version: String,
    /// MIG mode when the GPU supports it.
    pub mig_enabled: Option<bool>,
}

/// An NVML session, when the driver's library loads.
pub struct Gpus(nvml_wrapper::Nvml);

impl Gpus {
    /// `None` when NVML is not available (no driver, no GPU).
    pub fn open() -> Option<Gpus> {
        nvml_wrapper::Nvml::init().ok().map(Gpus)
    }

    /// Every GPU; a device NVML cannot read is skipped.
    pub fn list(&self) -> Vec<GpuInfo> {
        let n = &self.0;
        let driver = n.sys_driver_version().unwrap_or_default();
        let cuda = n
            .sys_cuda_driver_version()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
            .unwrap_or_default();
        let count = n.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|i| {
                let d = n.device_by_index(i).ok()?;
                let mem = d.memory_info().ok();
                Some(GpuInfo {
                    index: i,
                    name: d.name().unwrap_or_default(),
                    uuid: d.uuid().unwrap_or_default(),
                    memory_total_bytes: mem.as_ref().map_or(0, |m| m.total),
                    memory_used_bytes: mem.as_ref().map_or(0, |m| m.used),
                    utilization: d
                        .utilization_rates()
                        .map(|u| f64::from(u.gpu) / 100.0)
                        .unwrap_or(0.0),
                    driver_version: driver.clone(),
                    cuda_version: cuda.clone(),
                    mig_enabled: d.mig_mode().ok().map(|m| m.current == 1),
                })
            })
            .collect()
    }
}

/// The GPUs of this machine (empty without a driver).
pub fn inventory() -> Vec<GpuInfo> {
    Gpus::open().map(|g| g.list()).unwrap_or_default()
}
