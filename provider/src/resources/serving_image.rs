//! `modelplane_serving_image`: pushes the bundled inference image (an OCI image layout, as
//! `cargo xtask image` writes and each release ships) into a registry of the user's, and
//! outputs the digest-pinned reference endpoints run.

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, Schema, Type};

use crate::registry::{self, Access};
use modelplane_serve::image::Layout;

pub struct ServingImage;

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub source: String,
    pub repository: String,
    pub tag: Attr<String>,
    pub insecure: Option<bool>,
    pub username: Option<String>,
    pub password_wo: Attr<String>,
    pub digest: Attr<String>,
    pub reference: Attr<String>,
    pub tagged_reference: Attr<String>,
    pub version: Attr<String>,
}

impl Model {
    fn access(&self) -> Access {
        Access {
            insecure: self.insecure.unwrap_or(false),
            username: self.username.clone(),
            password: self.password_wo.known().cloned(),
        }
    }
}

fn open(source: &str) -> Result<Layout, String> {
    Layout::open(std::path::Path::new(&crate::absolute(source))).map_err(|e| e.to_string())
}

#[tfplugin::async_trait]
impl tfplugin::Resource for ServingImage {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_serving_image"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .description(
                    "The bundled inference image (`modelplane-serve`: no shell, no distribution, non-root), pushed into \
                     a registry of yours through the OCI distribution API — an air-gapped on-prem registry, Harbor, \
                     ECR, ACR. No container engine is needed. `reference` is pinned by digest, so what an endpoint \
                     runs cannot change under it.\n\n\
                     The digest is known at plan time (it is read from `source`), so endpoints plan against it. \
                     Refresh checks the registry still has the image (with the stored login; with `username` and the \
                     write-only `password_wo` there is nothing to authenticate with, and the state is kept); when it \
                     does not, the plan pushes it again. \
                     Destroy leaves the image in the registry (registries keep images for whoever still runs them, \
                     and most refuse deletes); remove it with the registry's own retention or garbage collection.",
                )
                .attribute(Attribute::new("id", Type::String).computed().stable().description("The digest-pinned reference."))
                .attribute(
                    Attribute::new("source", Type::String)
                        .required()
                        .description("The image as an OCI image layout folder: `cargo xtask image` writes one to `target/image/modelplane-serve`; each release ships one."),
                )
                .attribute(
                    Attribute::new("repository", Type::String)
                        .required()
                        .requires_replace()
                        .description("Where to push: `HOST[:PORT]/PATH`, e.g. `registry.example.com/ml/modelplane-serve`. The host is required."),
                )
                .attribute(Attribute::new("tag", Type::String).optional_computed().description("Tag to push under (default: the image's version)."))
                .attribute(Attribute::new("insecure", Type::Bool).optional().description("Talk to the registry over plain HTTP (a loopback or lab registry). Default false."))
                .attribute(Attribute::new("username", Type::String).optional().description("Registry user for basic auth. Without it, the credentials `podman login` or `docker login` stored are used (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json` and its credential helpers), else none."))
                .attribute(
                    Attribute::new("password_wo", Type::String)
                        .optional()
                        .sensitive()
                        .write_only()
                        .description("Password or token for `username` (write-only: never stored in state; Terraform 1.11 or later)."),
                )
                .attribute(Attribute::new("digest", Type::String).computed().description("`sha256:…` of the image manifest."))
                .attribute(Attribute::new("reference", Type::String).computed().description("`REPOSITORY@sha256:…`: give this to endpoints."))
                .attribute(Attribute::new("tagged_reference", Type::String).computed().description("`REPOSITORY:TAG`, for people."))
                .attribute(Attribute::new("version", Type::String).computed().description("The server version in the image (its `org.opencontainers.image.version` label).")),
        )
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        if let Attr::Known(r) = config.get::<String>("repository", diags) {
            if r.contains('@') || r.rsplit('/').next().is_some_and(|last| last.contains(':')) {
                diags.error_at(
                    AttributePath::attr("repository"),
                    "Invalid repository",
                    format!("{r:?} holds a tag or digest; give the repository alone and the tag in `tag`."),
                );
            } else if let Err(e) = registry::parse(&r) {
                diags.error_at(AttributePath::attr("repository"), "Invalid repository", e);
            }
        }
        if let (Attr::Null, Attr::Known(_)) = (
            config.get::<String>("username", diags),
            config.get::<String>("password_wo", diags),
        ) {
            diags.error_at(
                AttributePath::attr("username"),
                "Missing username",
                "password_wo is set but username is not; give both, or neither to use the stored login.",
            );
        }
    }

    async fn modify_plan(
        &self,
        _prior: Option<&Model>,
        plan: &mut Model,
        _config: &Config,
        ctx: &mut Ctx,
    ) {
        let layout = match open(&plan.source) {
            Ok(l) => l,
            Err(e) => {
                ctx.diags
                    .error_at(AttributePath::attr("source"), "Invalid image source", e);
                return;
            }
        };
        if !plan.tag.is_known() {
            plan.tag = Attr::Known(layout.tag.clone().unwrap_or_else(|| "latest".into()));
        }
        plan.digest = Attr::Known(layout.digest.clone());
        plan.reference = Attr::Known(format!("{}@{}", plan.repository, layout.digest));
        plan.id = plan.reference.clone();
        if let Attr::Known(t) = &plan.tag {
            plan.tagged_reference = Attr::Known(format!("{}:{t}", plan.repository));
        }
        plan.version = Attr::Known(
            layout
                .labels
                .get("org.opencontainers.image.version")
                .cloned()
                .unwrap_or_default(),
        );
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let layout = match open(&plan.source) {
            Ok(l) => l,
            Err(e) => {
                ctx.diags
                    .error_at(AttributePath::attr("source"), "Invalid image source", e);
                return None;
            }
        };
        let tag = plan.tag.known().cloned().unwrap_or_else(|| "latest".into());
        let access = plan.access();
        let pushed = tokio::select! {
            r = registry::push(&layout, &plan.repository, &tag, &access) => r,
            _ = ctx.stopped() => Err("interrupted: Terraform was asked to stop during the push".into()),
        };
        match pushed {
            Ok(digest) => {
                plan.password_wo = Attr::Null;
                plan.digest = Attr::Known(digest.clone());
                plan.reference = Attr::Known(format!("{}@{digest}", plan.repository));
                plan.id = plan.reference.clone();
                plan.tagged_reference = Attr::Known(format!("{}:{tag}", plan.repository));
                Some(plan)
            }
            Err(e) => {
                ctx.diags.error_at(
                    AttributePath::attr("repository"),
                    "Cannot push the image",
                    e,
                );
                None
            }
        }
    }

    async fn read(&self, state: Model, ctx: &mut Ctx) -> Option<Model> {
        let Attr::Known(reference) = &state.reference else {
            return Some(state);
        };
        // The password is write-only: refresh has none to authenticate with, so an image pushed
        // with username and password_wo is kept as recorded.
        if state.username.is_some() {
            return Some(state);
        }
        match registry::resolve(reference, &state.access()).await {
            Ok(Some(_)) => Some(state),
            Ok(None) => None,
            Err(e) => {
                ctx.diags.warning(
                    "Cannot check the image in its registry",
                    format!("{e}. The state is kept as it was."),
                );
                Some(state)
            }
        }
    }

    async fn update(&self, prior: Model, plan: Model, ctx: &mut Ctx) -> Option<Model> {
        // Blobs the registry has are sent again (oci-client has no existence check per blob);
        // the push is idempotent. A failed push leaves the state as it was.
        match self.create(plan, ctx).await {
            Some(m) => Some(m),
            None => Some(prior),
        }
    }

    async fn delete(&self, _state: Model, _ctx: &mut Ctx) {}
}
