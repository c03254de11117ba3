//! The server's integration tests, in one binary: one link, and one copy of the dependencies
//! on disk, instead of one per file. Each file in this folder is a module; a resource's tests
//! are in the file named after it. One file's tests: a filter on the module's path, e.g.
//! `cargo test -p modelplane-serve --test integration oip::`.

mod bench;
mod clients;
mod common;
mod conformance;
mod decode;
mod drift;
mod hostile;
mod oip;
mod real_models;
mod remote;
mod shapes;
mod shared;
mod shutdown;
mod tls;
mod traffic;
mod validate;
