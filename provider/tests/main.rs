//! The provider's integration tests, in one binary: one link, and one copy of the dependencies
//! on disk, instead of one per file. Each file in this folder is a module; a resource's tests
//! are in the file named after it. One file's tests: a filter on the module's path, e.g.
//! `cargo test -p terraform-provider-modelplane --test integration endpoint::`.

mod aws;
mod azure;
mod common;
mod container;
mod cost;
mod docs;
mod endpoint;
mod endpoint_model;
mod governance;
mod gpu_cluster;
mod handshake;
mod hybrid_migration;
mod kubernetes;
mod kubernetes_terraform;
mod model;
mod model_signature;
mod model_store;
mod model_store_cloud;
mod modules;
mod monitor;
mod provider_schema;
mod release;
mod scenarios;
mod terraform_test;
