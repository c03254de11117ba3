//! Data sources, one file each.

pub mod audit;
pub mod cost_estimate;
pub mod gpu_inventory;
pub mod model_signature;
pub mod models;
