//! Data sources, one module each.

pub mod model_signature;
