//! # tfplugin
//!
//! The Terraform plugin protocol (version 6) as a library, in the spirit of HashiCorp's
//! terraform-plugin-framework: the go-plugin handshake with AutoMTLS, the cty value model
//! with its msgpack and JSON encodings, a schema builder checked against Terraform core's
//! rules, typed models, and traits for providers, resources, data sources and functions.
//! The framework applies the protocol's planning and apply rules for you.
//!
//! It knows nothing of any particular provider.
//!
//! ```ignore
//! fn main() {
//!     let code = tfplugin::plugin::run(Arc::new(MyProvider::default()), opts, debug);
//!     std::process::exit(code);
//! }
//! ```

pub mod codec;
pub mod diag;
pub mod docs;
pub mod framework;
pub mod json;
pub mod logging;
pub mod model;
pub mod msgpack;
pub mod plugin;
pub mod release;
pub mod schema;
pub mod server;
pub mod validators;
pub mod value;

#[cfg(feature = "acctest")]
pub mod acctest;

/// Generated protocol messages and services (`tfplugin6`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("tfplugin6");
}

/// Generated go-plugin side services (`plugin`).
#[allow(clippy::all, missing_docs)]
pub mod plugin_proto {
    tonic::include_proto!("plugin");
}

pub use async_trait::async_trait;
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use framework::{
    data_source, resource, Config, Ctx, DataSource, Function, Parameter, Private, Provider,
    Resource,
};
pub use model::{from_value, to_value, Attr};
pub use schema::{Attribute, Block, NestedBlock, Nesting, Schema, SchemaKind};
pub use validators::Validator;
pub use value::{AttributePath, Number, PathStep, Type, Value};
