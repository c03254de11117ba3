//! # modelplane-serve
//!
//! Modelplane's inference server as a library. The provider calls the same code for its
//! hooks, so there is one implementation of each tool.
//!
//! - [`signature`]: what an ONNX model takes and returns (`modelplane-serve inspect`).

pub mod error;
pub mod model;
pub mod signature;
pub mod tensor;
