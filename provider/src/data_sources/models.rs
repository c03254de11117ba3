//! `modelplane_models`: the catalogue of a store, what a user browses to see what can be
//! deployed.

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Ctx, Nesting, Schema, Type};

use crate::stores;

pub struct Models {
    pub config: std::sync::Arc<std::sync::OnceLock<crate::ProviderConfig>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Version {
    pub id: String,
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub created_at: Option<String>,
    pub description: Option<String>,
    pub tags: Option<std::collections::BTreeMap<String, String>>,
    pub validated: bool,
    pub validation_metric: Option<String>,
    pub validation_value: Option<f64>,
    pub has_baseline: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub latest: String,
    pub versions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub store: String,
    pub name: Option<String>,
    pub models: Attr<Vec<Entry>>,
    pub versions: Attr<Vec<Version>>,
}

#[tfplugin::async_trait]
impl tfplugin::DataSource for Models {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_models"
    }

    fn schema(&self) -> Schema {
        let version = vec![
            Attribute::new("id", Type::String).computed().description(
                "The version's id (`STORE_ID/NAME/VERSION`), what endpoint variants name.",
            ),
            Attribute::new("name", Type::String)
                .computed()
                .description("Model name."),
            Attribute::new("version", Type::String)
                .computed()
                .description("Version."),
            Attribute::new("sha256", Type::String)
                .computed()
                .description("sha256 of the model file."),
            Attribute::new("size_bytes", Type::Number)
                .computed()
                .description("Size of the model file."),
            Attribute::new("created_at", Type::String)
                .computed()
                .description("When it was registered (RFC 3339)."),
            Attribute::new("description", Type::String)
                .computed()
                .description("`lineage.description`."),
            Attribute::new("tags", Type::map(Type::String))
                .computed()
                .description("`lineage.tags`."),
            Attribute::new("validated", Type::Bool)
                .computed()
                .description("Whether it passed a validation hook."),
            Attribute::new("validation_metric", Type::String)
                .computed()
                .description("The validation metric, when validated."),
            Attribute::new("validation_value", Type::Number)
                .computed()
                .description("Its value on the hold-out dataset."),
            Attribute::new("has_baseline", Type::Bool)
                .computed()
                .description("Whether a drift baseline is stored with it."),
        ];
        let entry = vec![
            Attribute::new("name", Type::String)
                .computed()
                .description("Model name."),
            Attribute::new("latest", Type::String)
                .computed()
                .description("Newest version (numeric versions compare as numbers)."),
            Attribute::new("versions", Type::list(Type::String))
                .computed()
                .description("Every version, oldest first."),
        ];
        Schema::new(
            Block::new()
                .description("The catalogue of a model store: every model, its versions and their metadata (digest, size, creation time, lineage, validation). Use it to see what can be deployed, or to pick the newest version of a model.")
                .attribute(Attribute::new("store", Type::String).required().description("The `id` of a `modelplane_model_store`."))
                .attribute(Attribute::new("name", Type::String).optional().description("Only this model."))
                .attribute(Attribute::nested("models", Nesting::List, entry).computed().description("One entry per model, sorted by name."))
                .attribute(Attribute::nested("versions", Nesting::List, version).computed().description("Every version, sorted by name then version.")),
        )
    }

    async fn read(&self, mut m: Model, ctx: &mut Ctx) -> Option<Model> {
        let store = match stores::open(&m.store, &crate::ProviderConfig::of(&self.config).stores())
        {
            Ok(s) => s,
            Err(e) => {
                ctx.diags
                    .error_at(AttributePath::attr("store"), "Invalid store", e.to_string());
                return None;
            }
        };
        match store.exists().await {
            Ok(true) => {}
            _ => {
                ctx.diags.error_at(
                    AttributePath::attr("store"),
                    "Model store not found",
                    format!("{} does not exist.", m.store),
                );
                return None;
            }
        }
        let list = match store.list().await {
            Ok(l) => l,
            Err(e) => {
                ctx.diags
                    .error("Cannot list the model store", e.to_string());
                return None;
            }
        };
        let mut versions = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (name, version) in list {
            if m.name.as_ref().is_some_and(|n| n != &name) {
                continue;
            }
            let Ok(Some(bytes)) = store.get(&name, &version, "model.json").await else {
                continue;
            };
            let j: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let report = &j["validation"]["report"];
            versions.push(Version {
                id: crate::ids::VersionId::new(&store.uri(), &name, &version).to_string(),
                sha256: j["sha256"].as_str().unwrap_or_default().to_string(),
                size_bytes: j["size_bytes"].as_i64().unwrap_or(0),
                created_at: j["created_at"].as_str().map(String::from),
                description: j["lineage"]["description"].as_str().map(String::from),
                tags: serde_json::from_value(j["lineage"]["tags"].clone())
                    .ok()
                    .flatten(),
                validated: report["passed"].as_bool().unwrap_or(false),
                validation_metric: report["metric"].as_str().map(String::from),
                validation_value: report["value"].as_f64(),
                has_baseline: !j["baseline"].is_null(),
                name: name.clone(),
                version: version.clone(),
            });
            match entries.last_mut() {
                Some(e) if e.name == name => {
                    e.versions.push(version.clone());
                    e.latest = version;
                }
                _ => entries.push(Entry {
                    name,
                    latest: version.clone(),
                    versions: vec![version],
                }),
            }
        }
        m.models = Attr::Known(entries);
        m.versions = Attr::Known(versions);
        Some(m)
    }
}
