//! `modelplane_model_store`: where model versions live. `local` is a directory.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, Schema, Type};

use crate::stores::{self, Store};
use crate::ProviderConfig;

pub struct ModelStore {
    pub config: Arc<OnceLock<ProviderConfig>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub name: String,
    pub backend: String,
    pub path: Attr<String>,
    pub force_destroy: Option<bool>,
    pub uri: Attr<String>,
}

impl ModelStore {
    fn resolve_path(&self, m: &Model) -> Attr<String> {
        match &m.path {
            Attr::Known(p) => Attr::Known(crate::absolute(p)),
            Attr::Unknown => Attr::Unknown,
            Attr::Null => {
                let cfg = self.config.get().cloned().unwrap_or_default();
                Attr::Known(
                    cfg.state_dir()
                        .join("stores")
                        .join(&m.name)
                        .display()
                        .to_string(),
                )
            }
        }
    }
}

fn open(m: &Model, diags: &mut Diagnostics) -> Option<Box<dyn Store>> {
    let uri = m.uri.known()?;
    match stores::open(uri) {
        Ok(s) => Some(s),
        Err(e) => {
            diags.error("Invalid model store", e.to_string());
            None
        }
    }
}

#[tfplugin::async_trait]
impl tfplugin::Resource for ModelStore {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_model_store"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .description(
                    "A model store: where immutable model versions live, as `NAME/VERSION/` folders with `model.onnx`, \
                     `model.json` (sha256, signature, lineage, validation report) and `baseline.json` (drift \
                     baseline). With `backend = \"local\"` it is a directory on this machine, created on apply. \
                     Models and endpoints name the store by its `id`, the store's URI.\n\nLike `aws_s3_bucket`, \
                     destroy refuses a store that still holds versions unless `force_destroy` is set.",
                )
                .attribute(Attribute::new("id", Type::String).computed().stable().description("The store's URI (same as `uri`)."))
                .attribute(Attribute::new("name", Type::String).required().requires_replace().description("Store name: letters, digits, `.`, `_`, `-`."))
                .attribute(
                    Attribute::new("backend", Type::String)
                        .required()
                        .requires_replace()
                        .description("`local` (a directory). `s3`, `s3_compatible` and `azure_blob` are refused by this version."),
                )
                .attribute(
                    Attribute::new("path", Type::String)
                        .optional()
                        .requires_replace()
                        .description("For `local`: the directory. Defaults to `STATE_DIR/stores/NAME`, where `STATE_DIR` is the provider's `local.state_dir`. Relative paths are resolved from where terraform runs."),
                )
                .attribute(
                    Attribute::new("force_destroy", Type::Bool)
                        .optional()
                        .description("Delete the model versions in the store when the store is destroyed. Default `false`: destroy fails while versions remain."),
                )
                .attribute(Attribute::new("uri", Type::String).computed().stable().description("The store's URI, e.g. `file:///var/lib/modelplane/stores/acme-models`.")),
        )
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        crate::check_name(config, diags);
        if let Attr::Known(b) = config.get::<String>("backend", diags) {
            if !stores::BACKENDS.contains(&b.as_str()) {
                let detail = if ["s3", "s3_compatible", "azure_blob"].contains(&b.as_str()) {
                    format!("backend {b:?} is not available in this version of the provider; use \"local\".")
                } else {
                    format!("unknown backend {b:?}; use \"local\".")
                };
                diags.error_at(
                    AttributePath::attr("backend"),
                    "Unsupported backend",
                    detail,
                );
            }
        }
        if let Attr::Known(p) = config.get::<String>("path", diags) {
            if p.trim().is_empty() {
                diags.error_at(
                    AttributePath::attr("path"),
                    "Empty path",
                    "Set `path` to a directory, or leave it out for the default.",
                );
            }
        }
    }

    async fn modify_plan(
        &self,
        prior: Option<&Model>,
        plan: &mut Model,
        _config: &Config,
        _ctx: &mut Ctx,
    ) {
        if prior.is_some() {
            return;
        }
        // The URI is known at plan time, so models can be planned against a new store.
        if let Attr::Known(p) = self.resolve_path(plan) {
            let uri = format!("file://{p}");
            plan.uri = Attr::Known(uri.clone());
            plan.id = Attr::Known(uri);
        }
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let Attr::Known(p) = self.resolve_path(&plan) else {
            ctx.diags.error_at(
                AttributePath::attr("path"),
                "Unknown path",
                "`path` must be known at apply.",
            );
            return None;
        };
        let uri = format!("file://{p}");
        plan.uri = Attr::Known(uri.clone());
        plan.id = Attr::Known(uri);
        let store = open(&plan, &mut ctx.diags)?;
        if let Err(e) = store.create().await {
            ctx.diags
                .error("Cannot create the model store", e.to_string());
            return None;
        }
        Some(plan)
    }

    async fn read(&self, state: Model, ctx: &mut Ctx) -> Option<Model> {
        let store = open(&state, &mut ctx.diags)?;
        match store.exists().await {
            Ok(true) => Some(state),
            Ok(false) => None,
            Err(e) => {
                ctx.diags
                    .error("Cannot read the model store", e.to_string());
                Some(state)
            }
        }
    }

    async fn update(&self, _prior: Model, plan: Model, _ctx: &mut Ctx) -> Option<Model> {
        // Only force_destroy can change in place; it matters at destroy.
        Some(plan)
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        let Some(store) = open(&state, &mut ctx.diags) else {
            return;
        };
        if let Err(e) = store.destroy(state.force_destroy.unwrap_or(false)).await {
            ctx.diags
                .error("Cannot destroy the model store", e.to_string());
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let store = match stores::open(id) {
            Ok(s) => s,
            Err(e) => {
                ctx.diags.error(
                    "Invalid import ID",
                    format!("{e}. Import a local store by its URI: file:///ABSOLUTE/PATH."),
                );
                return None;
            }
        };
        let path = store.repository();
        let name = std::path::Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A store at the default place was declared without `path`.
        let default = self.resolve_path(&Model {
            id: Attr::Null,
            name: name.clone(),
            backend: "local".into(),
            path: Attr::Null,
            force_destroy: None,
            uri: Attr::Null,
        });
        let path = if default.known() == Some(&path) {
            Attr::Null
        } else {
            Attr::Known(path)
        };
        Some(Model {
            id: Attr::Known(store.uri()),
            name,
            backend: "local".into(),
            path,
            force_destroy: None,
            uri: Attr::Known(store.uri()),
        })
    }
}
