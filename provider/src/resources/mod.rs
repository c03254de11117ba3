//! Managed resources, one file each.

pub mod endpoint;
pub mod endpoint_model;
pub mod gpu_cluster;
pub mod model;
pub mod model_approval;
pub mod model_store;
pub mod monitor;
pub mod serving_image;
