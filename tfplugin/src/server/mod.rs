//! The `tfplugin6.Provider` gRPC service: decodes requests, applies the protocol's rules
//! around the provider's handlers, and encodes responses.
//!
//! Rules applied for every resource, so providers cannot get them wrong:
//! - computed attributes with no configured value are unknown in a plan when the resource
//!   is created or changes (unless marked `stable`), so apply may set them;
//! - `requires_replace` is derived from the per-attribute flags and [`Ctx::require_replace`];
//! - non-computed attributes in a plan equal the configuration;
//! - after apply, every value that was known in the plan must come back unchanged and
//!   nothing may stay unknown, otherwise the provider's own error names the attribute
//!   (instead of Terraform's "inconsistent result after apply");
//! - write-only attributes are null in every plan and state;
//! - attribute [`crate::Validator`]s are checked before a handler's own `validate`;
//! - a panic in a handler becomes an error diagnostic; Terraform never hangs.

mod convert;
mod planning;
mod service;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::watch;
use tonic::Status;

use crate::diag::Diagnostics;
use crate::framework::{Ctx, DynDataSource, DynResource, Function, Private, Provider};
use crate::schema::{Schema, SchemaKind};
use crate::value::Type;

pub use convert::schema_to_proto;

/// The provider behind the gRPC service, with its schemas checked.
pub struct ProviderServer {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    provider_type: Type,
    resources: BTreeMap<String, (Arc<dyn DynResource>, Schema, Type)>,
    data_sources: BTreeMap<String, (Arc<dyn DynDataSource>, Schema, Type)>,
    functions: BTreeMap<String, Arc<dyn Function>>,
    stop: watch::Sender<bool>,
}

impl ProviderServer {
    /// Collects the provider's resources, data sources and functions and checks every
    /// schema against Terraform's rules. Each problem is one line.
    pub fn new(provider: Arc<dyn Provider>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let provider_schema = provider.schema();
        if let Err(p) = provider_schema.check(SchemaKind::Provider) {
            problems.extend(p.into_iter().map(|l| format!("provider: {l}")));
        }
        let prefix = format!("{}_", provider.type_name());
        let mut resources = BTreeMap::new();
        for r in provider.resources() {
            let s = r.schema();
            let name = r.type_name().to_string();
            if !name.starts_with(&prefix) {
                problems.push(format!(
                    "resource {name}: type names must start with {prefix}"
                ));
            }
            if let Err(p) = s.check(SchemaKind::Resource) {
                problems.extend(p.into_iter().map(|l| format!("resource {name}: {l}")));
            }
            let t = s.value_type();
            if resources.insert(name.clone(), (r, s, t)).is_some() {
                problems.push(format!("resource {name}: registered twice"));
            }
        }
        let mut data_sources = BTreeMap::new();
        for d in provider.data_sources() {
            let s = d.schema();
            let name = d.type_name().to_string();
            if !name.starts_with(&prefix) {
                problems.push(format!(
                    "data source {name}: type names must start with {prefix}"
                ));
            }
            if let Err(p) = s.check(SchemaKind::DataSource) {
                problems.extend(p.into_iter().map(|l| format!("data source {name}: {l}")));
            }
            let t = s.value_type();
            if data_sources.insert(name.clone(), (d, s, t)).is_some() {
                problems.push(format!("data source {name}: registered twice"));
            }
        }
        let mut functions = BTreeMap::new();
        for f in provider.functions() {
            functions.insert(f.name().to_string(), f);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let (stop, _) = watch::channel(false);
        let provider_type = provider_schema.value_type();
        Ok(ProviderServer {
            provider,
            provider_schema,
            provider_type,
            resources,
            data_sources,
            functions,
            stop,
        })
    }

    pub fn provider_schema(&self) -> &Schema {
        &self.provider_schema
    }
    pub fn resource_schemas(&self) -> impl Iterator<Item = (&str, &Schema)> {
        self.resources.iter().map(|(k, (_, s, _))| (k.as_str(), s))
    }
    pub fn data_source_schemas(&self) -> impl Iterator<Item = (&str, &Schema)> {
        self.data_sources
            .iter()
            .map(|(k, (_, s, _))| (k.as_str(), s))
    }
    pub fn function_list(&self) -> impl Iterator<Item = &Arc<dyn Function>> {
        self.functions.values()
    }

    fn ctx(&self, private: &[u8]) -> Ctx {
        Ctx::new(Private::from_bytes(private), self.stop.subscribe())
    }

    fn resource(&self, name: &str) -> Result<&(Arc<dyn DynResource>, Schema, Type), Status> {
        self.resources
            .get(name)
            .ok_or_else(|| Status::not_found(format!("unknown resource type {name}")))
    }
    fn data_source(&self, name: &str) -> Result<&(Arc<dyn DynDataSource>, Schema, Type), Status> {
        self.data_sources
            .get(name)
            .ok_or_else(|| Status::not_found(format!("unknown data source type {name}")))
    }
}

/// Runs a handler future, turning a panic into an error diagnostic.
async fn guarded<T>(
    what: &str,
    diags: &mut Diagnostics,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(v) => Some(v),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(handler = what, panic = %msg, "provider handler panicked");
            diags.error(
                "Provider internal error",
                format!("The provider panicked while handling {what}: {msg}. This is a bug in the provider; please report it."),
            );
            None
        }
    }
}
