//! `modelplane_gpu_inventory`: what this machine has (CPUs, memory, GPUs through NVML).

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Block, Ctx, Schema};

use crate::platforms::local::{self, Gpu};

pub struct GpuInventory;

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub hostname: Attr<String>,
    pub cpus: Attr<i64>,
    pub memory_bytes: Attr<i64>,
    pub gpus: Attr<Vec<Gpu>>,
}

#[tfplugin::async_trait]
impl tfplugin::DataSource for GpuInventory {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_gpu_inventory"
    }

    fn schema(&self) -> Schema {
        let mut b = Block::new().description(
            "The compute of the machine Terraform runs on: CPUs, memory and NVIDIA GPUs (name, UUID, memory, driver \
             and CUDA version, MIG mode) through NVML, loaded at run time. Without a driver `gpus` is empty; that is \
             not an error. The same facts as a local `modelplane_gpu_cluster`, without managing anything.",
        );
        for a in local::inventory_attributes() {
            b = b.attribute(a);
        }
        Schema::new(b)
    }

    async fn read(&self, _config: Model, _ctx: &mut Ctx) -> Option<Model> {
        let inv = tokio::task::spawn_blocking(local::inventory).await.ok()?;
        Some(Model {
            hostname: Attr::Known(inv.hostname),
            cpus: Attr::Known(inv.cpus),
            memory_bytes: Attr::Known(inv.memory_bytes),
            gpus: Attr::Known(inv.gpus),
        })
    }
}
