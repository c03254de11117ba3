//! Data sources, one file each.

pub mod gpu_inventory;
pub mod model_signature;
pub mod models;
