//! The traits a provider implements: [`Provider`], [`Resource`], [`DataSource`] and
//! [`Function`]. Handlers work with typed models; the framework (see `server`) does the
//! protocol's bookkeeping around them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::diag::Diagnostics;
use crate::model::{from_value, Attr};
use crate::schema::Schema;
use crate::value::{AttributePath, PathStep, Type, Value};

/// A configuration as Terraform sends it for validation and planning: values may still be
/// unknown, so attributes are read one at a time as [`Attr`]s.
#[derive(Clone, Debug)]
pub struct Config {
    value: Value,
}

impl Config {
    pub fn new(value: Value) -> Self {
        Config { value }
    }
    pub fn value(&self) -> &Value {
        &self.value
    }
    /// The value at a top-level attribute, decoded. A type mismatch is reported against
    /// the attribute in `diags` and read as unknown.
    pub fn get<T: DeserializeOwned>(&self, name: &str, diags: &mut Diagnostics) -> Attr<T> {
        self.get_path(&AttributePath::attr(name), diags)
    }
    /// The value at any path, decoded.
    pub fn get_path<T: DeserializeOwned>(
        &self,
        path: &AttributePath,
        diags: &mut Diagnostics,
    ) -> Attr<T> {
        match self.value.at(path) {
            None | Some(Value::Null) => Attr::Null,
            Some(Value::Unknown(_)) => Attr::Unknown,
            Some(v) => match from_value::<T>(v.clone()) {
                Ok(t) => Attr::Known(t),
                Err(e) => {
                    diags.error_at(path.clone(), "Invalid value", e.to_string());
                    Attr::Unknown
                }
            },
        }
    }
    /// Whether a top-level attribute is null (not set). Unknown is not null.
    pub fn is_null(&self, name: &str) -> bool {
        matches!(self.value.get_attr(name), None | Some(Value::Null))
    }
    /// Elements of a block or nested attribute list at `name` (empty when null or unknown).
    pub fn elements(&self, name: &str) -> Vec<Config> {
        match self.value.get_attr(name) {
            Some(Value::List(v)) | Some(Value::Set(v)) => {
                v.iter().cloned().map(Config::new).collect()
            }
            Some(Value::Map(m)) => m.values().cloned().map(Config::new).collect(),
            Some(Value::Object(_)) => vec![Config::new(
                self.value.get_attr(name).cloned().unwrap_or(Value::Null),
            )],
            _ => Vec::new(),
        }
    }
}

/// Provider-private data stored beside a resource's state (not shown to users).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Private(pub BTreeMap<String, serde_json::Value>);

impl Private {
    pub fn from_bytes(b: &[u8]) -> Self {
        if b.is_empty() {
            return Private::default();
        }
        serde_json::from_slice(b).unwrap_or_default()
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            return Vec::new();
        }
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.0
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    pub fn set<T: Serialize>(&mut self, key: &str, v: &T) {
        if let Ok(j) = serde_json::to_value(v) {
            self.0.insert(key.to_string(), j);
        }
    }
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// What a handler gets besides its model: diagnostics to add to, private state, and
/// whether Terraform asked the provider to stop.
pub struct Ctx {
    pub diags: Diagnostics,
    pub private: Private,
    pub(crate) stop: tokio::sync::watch::Receiver<bool>,
    pub(crate) replace: Vec<AttributePath>,
}

impl Ctx {
    pub(crate) fn new(private: Private, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        Ctx {
            diags: Diagnostics::new(),
            private,
            stop,
            replace: Vec::new(),
        }
    }
    /// For tests of handlers.
    pub fn detached() -> Self {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        Ctx::new(Private::default(), rx)
    }
    /// True once Terraform has called StopProvider (e.g. the user pressed Ctrl-C).
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
    /// Resolves when Terraform asks the provider to stop. Where nothing can ask any more (a
    /// detached context), it never resolves.
    pub async fn stopped(&mut self) {
        if self.stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    /// During planning: marks `path` as forcing replacement of the resource.
    pub fn require_replace(&mut self, path: AttributePath) {
        if !self.replace.contains(&path) {
            self.replace.push(path);
        }
    }
}

/// The provider itself: its configuration schema, configuration, and what it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's local name, the prefix of its resource types (`modelplane`).
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _config: &Config, _diags: &mut Diagnostics) {}
    /// Called once per run with the wholly known provider configuration.
    async fn configure(&self, terraform_version: &str, config: &Config, diags: &mut Diagnostics);
    fn resources(&self) -> Vec<Arc<dyn DynResource>> {
        Vec::new()
    }
    fn data_sources(&self) -> Vec<Arc<dyn DynDataSource>> {
        Vec::new()
    }
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        Vec::new()
    }
}

/// A managed resource with a typed state model.
///
/// The model is the whole object: config, plan and state all decode into it. Fields a plan
/// may hold unknown must be [`Attr`]s.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    type Model: Serialize + DeserializeOwned + Send + Sync + 'static;

    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// Checks a configuration; values may be unknown.
    async fn validate(&self, _config: &Config, _diags: &mut Diagnostics) {}

    /// Adjusts the plan the framework made (`plan`, with computed values already unknown
    /// where they will change). `prior` is `None` on create. Call
    /// [`Ctx::require_replace`] for changes that need a new resource.
    async fn modify_plan(
        &self,
        _prior: Option<&Self::Model>,
        _plan: &mut Self::Model,
        _config: &Config,
        _ctx: &mut Ctx,
    ) {
    }

    /// Creates the resource. Return the state to record; on a partial failure return what
    /// exists together with the error, so nothing created goes unrecorded.
    async fn create(&self, plan: Self::Model, ctx: &mut Ctx) -> Option<Self::Model>;

    /// Refreshes the state; `None` when the object is gone (Terraform will plan to create it).
    async fn read(&self, state: Self::Model, ctx: &mut Ctx) -> Option<Self::Model>;

    /// Applies an in-place update.
    async fn update(
        &self,
        prior: Self::Model,
        plan: Self::Model,
        ctx: &mut Ctx,
    ) -> Option<Self::Model>;

    /// Deletes the resource; an object that is already gone is success.
    async fn delete(&self, state: Self::Model, ctx: &mut Ctx);

    /// Builds a state from an import ID. The default says the resource cannot be imported.
    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Self::Model> {
        ctx.diags.error(
            "Resource import not supported",
            format!(
                "{} cannot be imported (ID {id:?}); declare it in configuration instead.",
                self.type_name()
            ),
        );
        None
    }

    /// Converts state JSON written by schema `version` to the current schema's JSON.
    /// Called only for older versions; the default refuses them.
    fn upgrade_state(
        &self,
        version: i64,
        _state: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        Err(format!(
            "state was written with schema version {version}, which this provider version cannot read; \
             current version is {}",
            self.schema().version
        ))
    }
}

/// A data source with a typed model.
#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    type Model: Serialize + DeserializeOwned + Send + Sync + 'static;

    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _config: &Config, _diags: &mut Diagnostics) {}
    /// Reads the data. `config` is wholly known; return it with computed attributes set.
    async fn read(&self, config: Self::Model, ctx: &mut Ctx) -> Option<Self::Model>;
}

/// A parameter of a provider function.
#[derive(Clone, Debug)]
pub struct Parameter {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub allow_null: bool,
}

/// A provider-defined function (`provider::modelplane::name(...)`).
pub trait Function: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn summary(&self) -> String;
    fn description(&self) -> String {
        self.summary()
    }
    fn parameters(&self) -> Vec<Parameter>;
    fn return_type(&self) -> Type;
    /// Runs the function; an error names the argument (by index) when one is at fault.
    fn call(&self, args: Vec<Value>) -> Result<Value, (String, Option<i64>)>;
}

/// Object-safe form of [`Resource`], implemented for every `Resource` by the framework.
#[async_trait]
pub trait DynResource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, config: &Config, diags: &mut Diagnostics);
    async fn modify_plan(
        &self,
        prior: &Value,
        plan: Value,
        config: &Config,
        ctx: &mut Ctx,
    ) -> Value;
    async fn create(&self, plan: Value, ctx: &mut Ctx) -> Option<Value>;
    async fn read(&self, state: Value, ctx: &mut Ctx) -> Option<Value>;
    async fn update(&self, prior: Value, plan: Value, ctx: &mut Ctx) -> Option<Value>;
    async fn delete(&self, state: Value, ctx: &mut Ctx);
    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Value>;
    fn upgrade_state(
        &self,
        version: i64,
        state: serde_json::Value,
    ) -> Result<serde_json::Value, String>;
}

/// Object-safe form of [`DataSource`].
#[async_trait]
pub trait DynDataSource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, config: &Config, diags: &mut Diagnostics);
    async fn read(&self, config: Value, ctx: &mut Ctx) -> Option<Value>;
}

fn model_err(diags: &mut Diagnostics, what: &str, e: crate::model::ModelError) {
    let path = if e.path.is_empty() || e.path == "." {
        None
    } else {
        Some(AttributePath(
            e.path
                .split('.')
                .flat_map(|seg| {
                    let mut steps = Vec::new();
                    let (name, rest) = seg.split_once('[').map_or((seg, ""), |(a, b)| (a, b));
                    if !name.is_empty() {
                        steps.push(PathStep::Attr(name.to_string()));
                    }
                    for idx in rest.split('[').filter(|s| !s.is_empty()) {
                        let idx = idx.trim_end_matches(']');
                        if let Ok(i) = idx.parse::<i64>() {
                            steps.push(PathStep::Index(i));
                        } else {
                            steps.push(PathStep::Key(idx.trim_matches('"').to_string()));
                        }
                    }
                    steps
                })
                .collect(),
        ))
    };
    let summary = format!("Invalid {what}");
    match path {
        Some(p) => diags.error_at(p, summary, e.msg),
        None => diags.error(summary, e.msg),
    }
}

fn decode<M: DeserializeOwned>(v: Value, what: &str, diags: &mut Diagnostics) -> Option<M> {
    match from_value::<M>(v) {
        Ok(m) => Some(m),
        Err(e) => {
            model_err(diags, what, e);
            None
        }
    }
}

fn encode<M: Serialize>(m: &M, ty: &Type, diags: &mut Diagnostics) -> Option<Value> {
    match crate::model::to_value(m, ty) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error(
                "Provider produced a value that does not fit its schema",
                format!("{}: {}. This is a bug in the provider.", e.path, e.msg),
            );
            None
        }
    }
}

/// Wraps a typed [`Resource`] for the framework.
pub fn resource<R: Resource>(r: R) -> Arc<dyn DynResource> {
    Arc::new(ResourceAdapter {
        ty: r.schema().value_type(),
        inner: r,
    })
}

/// Wraps a typed [`DataSource`] for the framework.
pub fn data_source<D: DataSource>(d: D) -> Arc<dyn DynDataSource> {
    Arc::new(DataSourceAdapter {
        ty: d.schema().value_type(),
        inner: d,
    })
}

struct ResourceAdapter<R> {
    inner: R,
    ty: Type,
}

#[async_trait]
impl<R: Resource> DynResource for ResourceAdapter<R> {
    fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }
    fn schema(&self) -> Schema {
        self.inner.schema()
    }
    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        self.inner.validate(config, diags).await
    }
    async fn modify_plan(
        &self,
        prior: &Value,
        plan: Value,
        config: &Config,
        ctx: &mut Ctx,
    ) -> Value {
        let prior_m: Option<R::Model> = if prior.is_null() {
            None
        } else {
            decode(prior.clone(), "prior state", &mut ctx.diags)
        };
        if !prior.is_null() && prior_m.is_none() {
            return plan;
        }
        let Some(mut m) = decode::<R::Model>(plan.clone(), "plan", &mut ctx.diags) else {
            return plan;
        };
        self.inner
            .modify_plan(prior_m.as_ref(), &mut m, config, ctx)
            .await;
        encode(&m, &self.ty, &mut ctx.diags).unwrap_or(plan)
    }
    async fn create(&self, plan: Value, ctx: &mut Ctx) -> Option<Value> {
        let m = decode(plan, "plan", &mut ctx.diags)?;
        let out = self.inner.create(m, ctx).await?;
        encode(&out, &self.ty, &mut ctx.diags)
    }
    async fn read(&self, state: Value, ctx: &mut Ctx) -> Option<Value> {
        let m = decode(state, "state", &mut ctx.diags)?;
        let out = self.inner.read(m, ctx).await?;
        encode(&out, &self.ty, &mut ctx.diags)
    }
    async fn update(&self, prior: Value, plan: Value, ctx: &mut Ctx) -> Option<Value> {
        let p = decode(prior, "prior state", &mut ctx.diags)?;
        let m = decode(plan, "plan", &mut ctx.diags)?;
        let out = self.inner.update(p, m, ctx).await?;
        encode(&out, &self.ty, &mut ctx.diags)
    }
    async fn delete(&self, state: Value, ctx: &mut Ctx) {
        if let Some(m) = decode(state, "state", &mut ctx.diags) {
            self.inner.delete(m, ctx).await
        }
    }
    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Value> {
        let out = self.inner.import(id, ctx).await?;
        encode(&out, &self.ty, &mut ctx.diags)
    }
    fn upgrade_state(
        &self,
        version: i64,
        state: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        self.inner.upgrade_state(version, state)
    }
}

struct DataSourceAdapter<D> {
    inner: D,
    ty: Type,
}

#[async_trait]
impl<D: DataSource> DynDataSource for DataSourceAdapter<D> {
    fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }
    fn schema(&self) -> Schema {
        self.inner.schema()
    }
    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        self.inner.validate(config, diags).await
    }
    async fn read(&self, config: Value, ctx: &mut Ctx) -> Option<Value> {
        let m = decode(config, "configuration", &mut ctx.diags)?;
        let out = self.inner.read(m, ctx).await?;
        encode(&out, &self.ty, &mut ctx.diags)
    }
}

#[cfg(test)]
mod tests {
    use super::Ctx;
    use std::time::Duration;

    #[tokio::test]
    async fn a_detached_context_is_never_asked_to_stop() {
        let mut ctx = Ctx::detached();
        assert!(!ctx.stopping());
        let waited = tokio::time::timeout(Duration::from_millis(50), ctx.stopped()).await;
        assert!(waited.is_err(), "stopped() resolved without a stop request");
    }

    #[tokio::test]
    async fn a_stop_request_is_seen() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut ctx = Ctx::new(Default::default(), rx);
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), ctx.stopped())
            .await
            .expect("stopped() resolves after a stop request");
        assert!(ctx.stopping());
    }
}
