//! # modelplane-serve
//!
//! Modelplane's inference server as a library; the `modelplane-serve` binary and the
//! provider's hooks use it, so there is one implementation of each part.
//!
//! | module | what |
//! |---|---|
//! | [`signature`] | what an ONNX model takes and returns |
//! | [`tensor`] | OIP tensors ⇄ tract tensors (JSON, raw, typed) |
//! | [`model`] | loading (sha256 check, tract optimisation, symbolic batch, warm-up) and running |
//! | [`remote`] | variants served by another Open Inference Protocol server |
//! | [`repository`] | where model versions live (`NAME/VERSION/model.onnx` + `model.json`) |
//! | [`objects`] | S3 and Azure Blob locations, their credential chains, streaming transfers |
//! | [`batch`] | dynamic batching and the worker pool |
//! | [`app`] | what is served, traffic split, reload, the one inference path |
//! | [`rest`], [`grpc`] | the Open Inference Protocol v2 over REST and gRPC |
//! | [`metrics`] | Prometheus metrics |
//! | [`server`] | listeners, signals, graceful shutdown |
//! | [`image`] | the bundled container image, as an OCI image layout built without an engine |
//! | [`floor`] | benchmark floors: the same REST and gRPC stacks answering a fixed response |
//! | [`cli`] | the `modelplane-serve` command line |

pub mod app;
pub mod baseline;
pub mod batch;
pub mod bench;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod device_check;
pub mod drift;
pub mod error;
pub mod feedback;
pub mod floor;
pub mod gpu;
pub mod grpc;
pub mod image;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod remote;
pub mod repository;
pub mod rest;
pub mod server;
pub mod shared;
pub mod signature;
pub mod stats;
pub mod tensor;
pub mod tls;
pub mod validate;
