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

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::framework::{Config, Ctx, DynDataSource, DynResource, Function, Private, Provider};
use crate::proto;
use crate::schema::{AttrType, Attribute, Block, Nesting, Schema, SchemaKind};
use crate::value::{AttributePath, PathStep, Type, Value};
use crate::{json, msgpack};

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

fn decode_dv(
    dv: Option<&proto::DynamicValue>,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let Some(dv) = dv else {
        return Some(Value::Null);
    };
    let res = if !dv.msgpack.is_empty() {
        msgpack::decode(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        json::decode(&dv.json, ty)
    } else {
        Ok(Value::Null)
    };
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error(format!("Invalid {what} from Terraform"), e.to_string());
            None
        }
    }
}

fn encode_dv(v: &Value, ty: &Type, diags: &mut Diagnostics) -> Option<proto::DynamicValue> {
    match msgpack::encode(v, ty) {
        Ok(b) => Some(proto::DynamicValue {
            msgpack: b,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.error(
                "Provider produced a value it cannot encode",
                format!("{e}. This is a bug in the provider."),
            );
            None
        }
    }
}

pub(crate) fn path_to_proto(p: &AttributePath) -> proto::AttributePath {
    use proto::attribute_path::{step::Selector, Step};
    proto::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| Step {
                selector: Some(match s {
                    PathStep::Attr(a) => Selector::AttributeName(a.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

fn diags_to_proto(d: &Diagnostics) -> Vec<proto::Diagnostic> {
    d.iter()
        .map(|d: &Diagnostic| proto::Diagnostic {
            severity: match d.severity {
                Severity::Error => proto::diagnostic::Severity::Error as i32,
                Severity::Warning => proto::diagnostic::Severity::Warning as i32,
            },
            summary: d.summary.clone(),
            detail: d.detail.clone(),
            attribute: d
                .attribute
                .as_ref()
                .filter(|p| !p.is_root())
                .map(path_to_proto),
        })
        .collect()
}

fn type_bytes(t: &Type) -> Vec<u8> {
    serde_json::to_vec(&json::type_to_json(t)).expect("type JSON")
}

fn attr_to_proto(a: &Attribute) -> proto::schema::Attribute {
    use proto::schema::object::NestingMode as N;
    let (ty, nested) = match &a.ty {
        AttrType::Type(t) => (type_bytes(t), None),
        AttrType::Nested {
            nesting,
            attributes,
        } => (
            Vec::new(),
            Some(proto::schema::Object {
                attributes: attributes.iter().map(attr_to_proto).collect(),
                nesting: match nesting {
                    Nesting::Single | Nesting::Group => N::Single,
                    Nesting::List => N::List,
                    Nesting::Set => N::Set,
                    Nesting::Map => N::Map,
                } as i32,
            }),
        ),
    };
    proto::schema::Attribute {
        name: a.name.clone(),
        r#type: ty,
        nested_type: nested,
        description: a.description.clone(),
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind: proto::StringKind::Markdown as i32,
        deprecated: a.deprecated,
        write_only: a.write_only,
    }
}

fn block_to_proto(b: &Block, version: i64) -> proto::schema::Block {
    use proto::schema::nested_block::NestingMode as N;
    proto::schema::Block {
        version,
        attributes: b.attributes.iter().map(attr_to_proto).collect(),
        block_types: b
            .blocks
            .iter()
            .map(|nb| proto::schema::NestedBlock {
                type_name: nb.type_name.clone(),
                block: Some(block_to_proto(&nb.block, 0)),
                nesting: match nb.nesting {
                    Nesting::Single => N::Single,
                    Nesting::List => N::List,
                    Nesting::Set => N::Set,
                    Nesting::Map => N::Map,
                    Nesting::Group => N::Group,
                } as i32,
                min_items: nb.min_items,
                max_items: nb.max_items,
            })
            .collect(),
        description: b.description.clone(),
        description_kind: proto::StringKind::Markdown as i32,
        deprecated: b.deprecated,
    }
}

/// The protocol form of a schema.
pub fn schema_to_proto(s: &Schema) -> proto::Schema {
    proto::Schema {
        version: s.version,
        block: Some(block_to_proto(&s.block, s.version)),
    }
}

fn function_to_proto(f: &dyn Function) -> proto::Function {
    proto::Function {
        parameters: f
            .parameters()
            .into_iter()
            .map(|p| proto::function::Parameter {
                name: p.name,
                r#type: type_bytes(&p.ty),
                allow_null_value: p.allow_null,
                allow_unknown_values: false,
                description: p.description,
                description_kind: proto::StringKind::Markdown as i32,
            })
            .collect(),
        variadic_parameter: None,
        r#return: Some(proto::function::Return {
            r#type: type_bytes(&f.return_type()),
        }),
        summary: f.summary(),
        description: f.description(),
        description_kind: proto::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

// ---- planning helpers -------------------------------------------------------------------

fn obj_get<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get_attr(k).unwrap_or(&Value::Null)
}

/// Marks computed attributes without a configured value unknown where apply may change them.
fn mark_computed(block: &Block, planned: &mut Value, config: &Value, prior: &Value, changed: bool) {
    let creating = prior.is_null();
    let Value::Object(pm) = planned else { return };
    for a in &block.attributes {
        let cfg = obj_get(config, &a.name);
        let pri = obj_get(prior, &a.name);
        if a.computed && cfg.is_null() && (creating || (changed && !a.stable)) {
            pm.insert(a.name.clone(), Value::unknown());
            continue;
        }
        if a.computed && cfg.is_null() {
            // A stable computed value the configuration does not set is kept whole.
            continue;
        }
        if let (
            AttrType::Nested {
                nesting,
                attributes,
            },
            Some(pv),
        ) = (&a.ty, pm.get_mut(&a.name))
        {
            let inner = Block {
                attributes: attributes.clone(),
                ..Block::default()
            };
            mark_nested(&inner, *nesting, pv, cfg, pri, changed);
        }
    }
    for nb in &block.blocks {
        if let Some(pv) = pm.get_mut(&nb.type_name) {
            mark_nested(
                &nb.block,
                nb.nesting,
                pv,
                obj_get(config, &nb.type_name),
                obj_get(prior, &nb.type_name),
                changed,
            );
        }
    }
}

fn mark_nested(
    block: &Block,
    nesting: Nesting,
    planned: &mut Value,
    config: &Value,
    prior: &Value,
    changed: bool,
) {
    match (nesting, planned) {
        (Nesting::Single | Nesting::Group, v @ Value::Object(_)) => {
            mark_computed(block, v, config, prior, changed)
        }
        (Nesting::List, Value::List(items)) => {
            for (i, it) in items.iter_mut().enumerate() {
                let c = config
                    .elements()
                    .and_then(|e| e.get(i))
                    .unwrap_or(&Value::Null);
                let p = prior
                    .elements()
                    .and_then(|e| e.get(i))
                    .unwrap_or(&Value::Null);
                mark_computed(block, it, c, p, changed);
            }
        }
        (Nesting::Map, Value::Map(items)) => {
            for (k, it) in items.iter_mut() {
                let c = match config {
                    Value::Map(m) => m.get(k).unwrap_or(&Value::Null),
                    _ => &Value::Null,
                };
                let p = match prior {
                    Value::Map(m) => m.get(k).unwrap_or(&Value::Null),
                    _ => &Value::Null,
                };
                mark_computed(block, it, c, p, changed);
            }
        }
        // Set elements have no identity across plans; their computed parts stay as proposed.
        _ => {}
    }
}

/// Nulls write-only attributes everywhere in `v`.
fn null_write_only(block: &Block, v: &mut Value) {
    let Value::Object(m) = v else { return };
    for a in &block.attributes {
        if a.write_only {
            m.insert(a.name.clone(), Value::Null);
        }
    }
    for nb in &block.blocks {
        match m.get_mut(&nb.type_name) {
            Some(o @ Value::Object(_)) => null_write_only(&nb.block, o),
            Some(Value::List(items) | Value::Set(items)) => {
                items.iter_mut().for_each(|i| null_write_only(&nb.block, i))
            }
            Some(Value::Map(items)) => items
                .values_mut()
                .for_each(|i| null_write_only(&nb.block, i)),
            _ => {}
        }
    }
}

/// Copies configured write-only values into `plan` so apply handlers can use them.
fn with_write_only(block: &Block, plan: &mut Value, config: &Value) {
    let Value::Object(m) = plan else { return };
    for a in block.attributes.iter().filter(|a| a.write_only) {
        m.insert(a.name.clone(), obj_get(config, &a.name).clone());
    }
}

fn replace_paths(
    block: &Block,
    prior: &Value,
    planned: &Value,
    at: &AttributePath,
    out: &mut Vec<AttributePath>,
) {
    for a in &block.attributes {
        if a.requires_replace && obj_get(prior, &a.name) != obj_get(planned, &a.name) {
            out.push(at.clone().then_attr(&a.name));
        }
    }
    for nb in &block.blocks {
        let (p, n) = (
            obj_get(prior, &nb.type_name),
            obj_get(planned, &nb.type_name),
        );
        let path = at.clone().then_attr(&nb.type_name);
        if nb.requires_replace && p != n {
            out.push(path);
            continue;
        }
        match (nb.nesting, p, n) {
            (Nesting::Single | Nesting::Group, p, n) => replace_paths(&nb.block, p, n, &path, out),
            (Nesting::List, Value::List(pi), Value::List(ni)) => {
                for (i, (pe, ne)) in pi.iter().zip(ni).enumerate() {
                    replace_paths(&nb.block, pe, ne, &path.clone().then_index(i as i64), out);
                }
            }
            _ => {}
        }
    }
}

fn first_unknown(v: &Value, at: AttributePath) -> Option<AttributePath> {
    match v {
        Value::Unknown(_) => Some(at),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, e)| first_unknown(e, at.clone().then_attr(k))),
        Value::Map(m) => m
            .iter()
            .find_map(|(k, e)| first_unknown(e, at.clone().then_key(k))),
        Value::List(v) | Value::Tuple(v) | Value::Set(v) => v
            .iter()
            .enumerate()
            .find_map(|(i, e)| first_unknown(e, at.clone().then_index(i as i64))),
        Value::Dynamic(_, v) => first_unknown(v, at),
        _ => None,
    }
}

fn same_set(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// Every value known in `planned` must be equal in `actual`; returns the mismatches.
fn inconsistencies(
    planned: &Value,
    actual: &Value,
    at: AttributePath,
    out: &mut Vec<(AttributePath, String, String)>,
) {
    match (planned, actual) {
        (Value::Unknown(_), _) => {}
        (Value::Object(p), Value::Object(a)) => {
            for (k, pv) in p {
                inconsistencies(
                    pv,
                    a.get(k).unwrap_or(&Value::Null),
                    at.clone().then_attr(k),
                    out,
                );
            }
        }
        (Value::Map(p), Value::Map(a)) if p.len() == a.len() => {
            for (k, pv) in p {
                inconsistencies(
                    pv,
                    a.get(k).unwrap_or(&Value::Null),
                    at.clone().then_key(k),
                    out,
                );
            }
        }
        (Value::List(p), Value::List(a)) | (Value::Tuple(p), Value::Tuple(a))
            if p.len() == a.len() =>
        {
            for (i, (pv, av)) in p.iter().zip(a).enumerate() {
                inconsistencies(pv, av, at.clone().then_index(i as i64), out);
            }
        }
        (Value::Set(p), Value::Set(a)) => {
            if planned.is_wholly_known() && !same_set(p, a) {
                out.push((at, planned.to_string(), actual.to_string()));
            } else if p.len() != a.len() {
                out.push((
                    at,
                    format!("{} elements", p.len()),
                    format!("{} elements", a.len()),
                ));
            }
        }
        (Value::Dynamic(_, p), Value::Dynamic(_, a)) => inconsistencies(p, a, at, out),
        (p, a) => {
            if p != a {
                out.push((at, p.to_string(), a.to_string()));
            }
        }
    }
}

fn check_apply_result(planned: &Value, new: &Value, diags: &mut Diagnostics, type_name: &str) {
    let mut bad = Vec::new();
    inconsistencies(planned, new, AttributePath::root(), &mut bad);
    for (path, want, got) in bad {
        diags.error_at(
            path.clone(),
            "Provider produced inconsistent result after apply",
            format!("{type_name}: {path} was planned as {want} but apply produced {got}. This is a bug in the provider."),
        );
    }
    if let Some(path) = first_unknown(new, AttributePath::root()) {
        diags.error_at(
            path.clone(),
            "Provider returned an unknown value after apply",
            format!(
                "{type_name}: {path} is still unknown after apply. This is a bug in the provider."
            ),
        );
    }
}

fn check_config_kept(
    block: &Block,
    config: &Value,
    planned: &Value,
    diags: &mut Diagnostics,
    what: &str,
) {
    for a in block
        .attributes
        .iter()
        .filter(|a| !a.computed && !a.write_only)
    {
        let (c, p) = (obj_get(config, &a.name), obj_get(planned, &a.name));
        if c.is_wholly_known() && c != p {
            diags.error_at(
                AttributePath::attr(&a.name),
                "Provider changed a configured value",
                format!("{what} set {} to {p}, but the configuration says {c}. This is a bug in the provider.", a.name),
            );
        }
    }
}

// ---- the gRPC service ---------------------------------------------------------------------

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl proto::provider_server::Provider for ProviderServer {
    async fn get_metadata(
        &self,
        _r: Request<proto::get_metadata::Request>,
    ) -> R<proto::get_metadata::Response> {
        use proto::get_metadata::{DataSourceMetadata, FunctionMetadata, ResourceMetadata};
        Ok(Response::new(proto::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: self
                .data_sources
                .keys()
                .map(|k| DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|k| ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            functions: self
                .functions
                .keys()
                .map(|k| FunctionMetadata { name: k.clone() })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _r: Request<proto::get_provider_schema::Request>,
    ) -> R<proto::get_provider_schema::Response> {
        Ok(Response::new(proto::get_provider_schema::Response {
            provider: Some(schema_to_proto(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, (_, s, _))| (k.clone(), schema_to_proto(s)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, (_, s, _))| (k.clone(), schema_to_proto(s)))
                .collect(),
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.clone(), function_to_proto(f.as_ref())))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        r: Request<proto::validate_provider_config::Request>,
    ) -> R<proto::validate_provider_config::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(
            r.config.as_ref(),
            &self.provider_type,
            "provider configuration",
            &mut diags,
        ) {
            crate::validators::check(&self.provider_schema.block, &cfg, &mut diags);
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ValidateProviderConfig",
                &mut diags,
                self.provider.validate(&c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(proto::validate_provider_config::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn validate_resource_config(
        &self,
        r: Request<proto::validate_resource_config::Request>,
    ) -> R<proto::validate_resource_config::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(r.config.as_ref(), ty, "configuration", &mut diags) {
            crate::validators::check(&schema.block, &cfg, &mut diags);
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ValidateResourceConfig",
                &mut diags,
                res.validate(&c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(proto::validate_resource_config::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<proto::validate_data_resource_config::Request>,
    ) -> R<proto::validate_data_resource_config::Response> {
        let r = r.into_inner();
        let (ds, schema, ty) = self.data_source(&r.type_name)?;
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(r.config.as_ref(), ty, "configuration", &mut diags) {
            crate::validators::check(&schema.block, &cfg, &mut diags);
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ValidateDataResourceConfig",
                &mut diags,
                ds.validate(&c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(
            proto::validate_data_resource_config::Response {
                diagnostics: diags_to_proto(&diags),
            },
        ))
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<proto::upgrade_resource_state::Request>,
    ) -> R<proto::upgrade_resource_state::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let raw = r.raw_state.unwrap_or_default();
        let mut upgraded = None;
        if raw.json.is_empty() && !raw.flatmap.is_empty() {
            diags.error(
                "Unsupported state format",
                "this provider cannot read legacy flatmap state; re-import the resource",
            );
        } else if r.version > schema.version {
            diags.error(
                "State written by a newer provider",
                format!(
                    "{} state has schema version {}, but this provider knows versions up to {}. Use the provider version that wrote it.",
                    r.type_name, r.version, schema.version
                ),
            );
        } else {
            let json_bytes = if r.version < schema.version {
                match serde_json::from_slice::<serde_json::Value>(&raw.json)
                    .map_err(|e| e.to_string())
                    .and_then(|j| res.upgrade_state(r.version, j))
                {
                    Ok(j) => Some(serde_json::to_vec(&j).unwrap_or_default()),
                    Err(e) => {
                        diags.error("Cannot upgrade resource state", e);
                        None
                    }
                }
            } else {
                Some(raw.json)
            };
            if let Some(b) = json_bytes {
                match json::decode(&b, ty) {
                    Ok(v) => {
                        let mut v = v;
                        null_write_only(&schema.block, &mut v);
                        upgraded = encode_dv(&v, ty, &mut diags);
                    }
                    Err(e) => diags.error(
                        "Cannot read resource state",
                        format!("{}: {e}", r.type_name),
                    ),
                }
            }
        }
        Ok(Response::new(proto::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn configure_provider(
        &self,
        r: Request<proto::configure_provider::Request>,
    ) -> R<proto::configure_provider::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(
            r.config.as_ref(),
            &self.provider_type,
            "provider configuration",
            &mut diags,
        ) {
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ConfigureProvider",
                &mut diags,
                self.provider.configure(&r.terraform_version, &c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(proto::configure_provider::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn read_resource(
        &self,
        r: Request<proto::read_resource::Request>,
    ) -> R<proto::read_resource::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut new_state = None;
        let mut private = r.private.clone();
        if let Some(state) = decode_dv(r.current_state.as_ref(), ty, "state", &mut diags) {
            let mut ctx = self.ctx(&r.private);
            let out = guarded("ReadResource", &mut diags, res.read(state, &mut ctx))
                .await
                .flatten();
            diags.extend(ctx.diags);
            let mut v = out.unwrap_or(Value::Null);
            null_write_only(&schema.block, &mut v);
            if let Some(p) = first_unknown(&v, AttributePath::root()) {
                diags.error_at(
                    p.clone(),
                    "Provider returned an unknown value on read",
                    format!("{}: {p}. This is a bug in the provider.", r.type_name),
                );
            }
            new_state = encode_dv(&v, ty, &mut diags);
            private = ctx.private.to_bytes();
        }
        Ok(Response::new(proto::read_resource::Response {
            new_state,
            diagnostics: diags_to_proto(&diags),
            private,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        r: Request<proto::plan_resource_change::Request>,
    ) -> R<proto::plan_resource_change::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut resp = proto::plan_resource_change::Response::default();
        let (Some(prior), Some(proposed), Some(config)) = (
            decode_dv(r.prior_state.as_ref(), ty, "prior state", &mut diags),
            decode_dv(
                r.proposed_new_state.as_ref(),
                ty,
                "proposed state",
                &mut diags,
            ),
            decode_dv(r.config.as_ref(), ty, "configuration", &mut diags),
        ) else {
            resp.diagnostics = diags_to_proto(&diags);
            return Ok(Response::new(resp));
        };
        if proposed.is_null() {
            // Destroy: nothing to plan.
            resp.planned_state = encode_dv(&Value::Null, ty, &mut diags);
            resp.planned_private = r.prior_private;
            resp.diagnostics = diags_to_proto(&diags);
            return Ok(Response::new(resp));
        }
        let mut planned = proposed.clone();
        null_write_only(&schema.block, &mut planned);
        let changed = !prior.is_null() && {
            let mut p = prior.clone();
            null_write_only(&schema.block, &mut p);
            p != planned
        };
        mark_computed(&schema.block, &mut planned, &config, &prior, changed);
        let mut ctx = self.ctx(&r.prior_private);
        let cfg = Config::new(config.clone());
        let modified = guarded(
            "PlanResourceChange",
            &mut diags,
            res.modify_plan(&prior, planned.clone(), &cfg, &mut ctx),
        )
        .await;
        diags.extend(std::mem::take(&mut ctx.diags));
        if let Some(mut m) = modified {
            null_write_only(&schema.block, &mut m);
            planned = m;
        }
        check_config_kept(&schema.block, &config, &planned, &mut diags, "the plan");
        if !prior.is_null() {
            let mut paths = Vec::new();
            replace_paths(
                &schema.block,
                &prior,
                &planned,
                &AttributePath::root(),
                &mut paths,
            );
            for p in ctx.replace.drain(..) {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
            resp.requires_replace = paths.iter().map(path_to_proto).collect();
        }
        resp.planned_state = encode_dv(&planned, ty, &mut diags);
        resp.planned_private = ctx.private.to_bytes();
        resp.diagnostics = diags_to_proto(&diags);
        Ok(Response::new(resp))
    }

    async fn apply_resource_change(
        &self,
        r: Request<proto::apply_resource_change::Request>,
    ) -> R<proto::apply_resource_change::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut resp = proto::apply_resource_change::Response::default();
        let (Some(prior), Some(planned), Some(config)) = (
            decode_dv(r.prior_state.as_ref(), ty, "prior state", &mut diags),
            decode_dv(r.planned_state.as_ref(), ty, "planned state", &mut diags),
            decode_dv(r.config.as_ref(), ty, "configuration", &mut diags),
        ) else {
            resp.diagnostics = diags_to_proto(&diags);
            return Ok(Response::new(resp));
        };
        let mut ctx = self.ctx(&r.planned_private);
        let new_state = if planned.is_null() {
            guarded(
                "ApplyResourceChange (delete)",
                &mut diags,
                res.delete(prior.clone(), &mut ctx),
            )
            .await;
            // A failed delete keeps the object in state.
            if ctx.diags.has_errors() || diags.has_errors() {
                prior.clone()
            } else {
                Value::Null
            }
        } else {
            let mut plan_in = planned.clone();
            with_write_only(&schema.block, &mut plan_in, &config);
            let out = if prior.is_null() {
                guarded(
                    "ApplyResourceChange (create)",
                    &mut diags,
                    res.create(plan_in, &mut ctx),
                )
                .await
                .flatten()
            } else {
                guarded(
                    "ApplyResourceChange (update)",
                    &mut diags,
                    res.update(prior.clone(), plan_in, &mut ctx),
                )
                .await
                .flatten()
            };
            let failed = ctx.diags.has_errors() || diags.has_errors();
            match out {
                Some(mut v) => {
                    null_write_only(&schema.block, &mut v);
                    if !failed {
                        check_apply_result(&planned, &v, &mut ctx.diags, &r.type_name);
                    }
                    v
                }
                None if failed => prior.clone(),
                None => {
                    ctx.diags.error(
                        "Provider returned no state",
                        format!("{}: apply returned nothing without an error. This is a bug in the provider.", r.type_name),
                    );
                    prior.clone()
                }
            }
        };
        diags.extend(std::mem::take(&mut ctx.diags));
        // Never hand Terraform an unknown value: on failure replace leftovers by null.
        let new_state =
            if first_unknown(&new_state, AttributePath::root()).is_some() && diags.has_errors() {
                strip_unknown(new_state)
            } else {
                new_state
            };
        resp.new_state = encode_dv(&new_state, ty, &mut diags);
        resp.private = ctx.private.to_bytes();
        resp.diagnostics = diags_to_proto(&diags);
        Ok(Response::new(resp))
    }

    async fn import_resource_state(
        &self,
        r: Request<proto::import_resource_state::Request>,
    ) -> R<proto::import_resource_state::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut ctx = self.ctx(&[]);
        let out = guarded(
            "ImportResourceState",
            &mut diags,
            res.import(&r.id, &mut ctx),
        )
        .await
        .flatten();
        diags.extend(std::mem::take(&mut ctx.diags));
        let mut imported = Vec::new();
        if let Some(mut v) = out {
            null_write_only(&schema.block, &mut v);
            if let Some(state) = encode_dv(&v, ty, &mut diags) {
                imported.push(proto::import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(state),
                    private: ctx.private.to_bytes(),
                });
            }
        } else if !diags.has_errors() {
            diags.error(
                "Cannot import non-existent remote object",
                format!("{}: nothing found for import ID {:?}", r.type_name, r.id),
            );
        }
        Ok(Response::new(proto::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diags_to_proto(&diags),
            deferred: None,
        }))
    }

    async fn read_data_source(
        &self,
        r: Request<proto::read_data_source::Request>,
    ) -> R<proto::read_data_source::Response> {
        let r = r.into_inner();
        let (ds, schema, ty) = self.data_source(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut state = None;
        if let Some(config) = decode_dv(r.config.as_ref(), ty, "configuration", &mut diags) {
            let mut ctx = self.ctx(&[]);
            let out = guarded(
                "ReadDataSource",
                &mut diags,
                ds.read(config.clone(), &mut ctx),
            )
            .await
            .flatten();
            diags.extend(std::mem::take(&mut ctx.diags));
            if let Some(v) = out {
                check_config_kept(&schema.block, &config, &v, &mut diags, "the data source");
                if let Some(p) = first_unknown(&v, AttributePath::root()) {
                    diags.error_at(
                        p.clone(),
                        "Provider returned an unknown value",
                        format!(
                            "{}: {p} is unknown after read. This is a bug in the provider.",
                            r.type_name
                        ),
                    );
                }
                if !diags.has_errors() {
                    state = encode_dv(&v, ty, &mut diags);
                }
            } else if !diags.has_errors() {
                diags.error("Data source returned nothing", format!("{}: read returned no data without an error. This is a bug in the provider.", r.type_name));
            }
        }
        Ok(Response::new(proto::read_data_source::Response {
            state,
            diagnostics: diags_to_proto(&diags),
            deferred: None,
        }))
    }

    async fn get_functions(
        &self,
        _r: Request<proto::get_functions::Request>,
    ) -> R<proto::get_functions::Response> {
        Ok(Response::new(proto::get_functions::Response {
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.clone(), function_to_proto(f.as_ref())))
                .collect(),
            diagnostics: vec![],
        }))
    }

    async fn call_function(
        &self,
        r: Request<proto::call_function::Request>,
    ) -> R<proto::call_function::Response> {
        let r = r.into_inner();
        let f = self
            .functions
            .get(&r.name)
            .ok_or_else(|| Status::not_found(format!("unknown function {}", r.name)))?;
        let params = f.parameters();
        let mut args = Vec::with_capacity(r.arguments.len());
        for (i, a) in r.arguments.iter().enumerate() {
            let ty = params.get(i).map_or(Type::Dynamic, |p| p.ty.clone());
            let mut d = Diagnostics::new();
            match decode_dv(Some(a), &ty, "argument", &mut d) {
                Some(v) => args.push(v),
                None => {
                    let text = d
                        .iter()
                        .map(|x| x.detail.clone())
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Ok(Response::new(proto::call_function::Response {
                        result: None,
                        error: Some(proto::FunctionError {
                            text,
                            function_argument: Some(i as i64),
                        }),
                    }));
                }
            }
        }
        let f2 = f.clone();
        let out = std::panic::catch_unwind(AssertUnwindSafe(move || f2.call(args))).unwrap_or_else(
            |_| {
                Err((
                    format!(
                        "the function {} panicked; this is a bug in the provider",
                        r.name
                    ),
                    None,
                ))
            },
        );
        let ret = f.return_type();
        Ok(Response::new(match out {
            Ok(v) => {
                let mut d = Diagnostics::new();
                match encode_dv(&v, &ret, &mut d) {
                    Some(dv) => proto::call_function::Response {
                        result: Some(dv),
                        error: None,
                    },
                    None => proto::call_function::Response {
                        result: None,
                        error: Some(proto::FunctionError {
                            text: d.iter().map(|x| x.detail.clone()).collect(),
                            function_argument: None,
                        }),
                    },
                }
            }
            Err((text, arg)) => proto::call_function::Response {
                result: None,
                error: Some(proto::FunctionError {
                    text,
                    function_argument: arg,
                }),
            },
        }))
    }

    async fn stop_provider(
        &self,
        _r: Request<proto::stop_provider::Request>,
    ) -> R<proto::stop_provider::Response> {
        tracing::info!("Terraform asked the provider to stop");
        let _ = self.stop.send(true);
        Ok(Response::new(proto::stop_provider::Response {
            error: String::new(),
        }))
    }
}

fn strip_unknown(v: Value) -> Value {
    match v {
        Value::Unknown(_) => Value::Null,
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, strip_unknown(v))).collect())
        }
        Value::Map(m) => Value::Map(m.into_iter().map(|(k, v)| (k, strip_unknown(v))).collect()),
        Value::List(v) => Value::List(v.into_iter().map(strip_unknown).collect()),
        Value::Set(v) => Value::Set(v.into_iter().map(strip_unknown).collect()),
        Value::Tuple(v) => Value::Tuple(v.into_iter().map(strip_unknown).collect()),
        Value::Dynamic(t, v) => Value::Dynamic(t, Box::new(strip_unknown(*v))),
        v => v,
    }
}

fn capabilities() -> proto::ServerCapabilities {
    proto::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}
