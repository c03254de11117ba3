//! `modelplane_serving_image`: pushes the bundled inference image (an OCI image layout, as
//! `cargo xtask image` writes and each release ships) into a registry of the user's, and
//! outputs the digest-pinned reference endpoints run. With an `ecr` block the repository is
//! an ECR repository the resource creates ([`crate::platforms::aws::ecr`]) and the login
//! comes from `GetAuthorizationToken`. With an `acr` block it is an Azure Container Registry
//! ([`crate::platforms::azure::acr`]) with the token-exchange login and `AcrPull` for the
//! clusters that run the image.

use serde::{Deserialize, Serialize};
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, NestedBlock, Nesting, Schema,
    Type, Validator,
};

use crate::platforms::aws::{ecr, Clients};
use crate::platforms::azure::acr;
use crate::registry::{self, Access};
use modelplane_serve::image::Layout;

pub struct ServingImage {
    pub config: std::sync::Arc<std::sync::OnceLock<crate::ProviderConfig>>,
}

/// The `ecr` block.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EcrBlock {
    pub scan_on_push: Option<bool>,
    pub keep_images: Option<i64>,
    pub untagged_days: Option<i64>,
    pub force_delete: Option<bool>,
}

/// The `acr` block.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AcrBlock {
    pub registry: String,
    pub sku: Option<String>,
    pub attach_clusters: Option<Vec<String>>,
    pub force_delete: Option<bool>,
}

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
    pub ecr: Option<EcrBlock>,
    pub repository_url: Attr<String>,
    pub repository_arn: Attr<String>,
    pub acr: Option<AcrBlock>,
    pub registry_id: Attr<String>,
}

/// Whether `repository` starts with a registry host (`HOST[:PORT]/…`, `localhost/…`), by the
/// rule container engines use.
fn has_host(repository: &str) -> bool {
    match repository.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// The ECR repository name in `repository`: its path after the host, or all of it.
fn ecr_name(repository: &str) -> &str {
    if has_host(repository) {
        repository.split_once('/').map_or(repository, |(_, p)| p)
    } else {
        repository
    }
}

const ECR_NAME: &str = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$";

impl Model {
    fn ecr_spec(&self) -> Option<ecr::RepositorySpec> {
        self.ecr.as_ref().map(|e| ecr::RepositorySpec {
            name: ecr_name(&self.repository).to_string(),
            scan_on_push: e.scan_on_push.unwrap_or(true),
            keep_images: e.keep_images.unwrap_or(30).clamp(1, 10_000) as u32,
            untagged_days: e.untagged_days.unwrap_or(7).clamp(1, 3650) as u32,
        })
    }

    fn acr_spec(&self) -> Option<acr::RegistrySpec> {
        self.acr.as_ref().map(|a| acr::RegistrySpec {
            name: a.registry.clone(),
            sku: a.sku.clone().unwrap_or_else(|| "Standard".into()),
            attach: a
                .attach_clusters
                .iter()
                .flatten()
                .map(|c| c.strip_prefix("azure/").unwrap_or(c).to_string())
                .collect(),
        })
    }

    /// Whether the registry is a cloud's (`ecr` or `acr`).
    fn cloud(&self) -> bool {
        self.ecr.is_some() || self.acr.is_some()
    }

    /// Where the image goes, when known before the push: `repository` when it names a host,
    /// else the ECR repository's URI (known once created) or `NAME.azurecr.io/REPOSITORY`.
    fn target(&self) -> Option<String> {
        if !self.cloud() || has_host(&self.repository) {
            Some(self.repository.clone())
        } else {
            self.repository_url.known().cloned()
        }
    }

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

impl ServingImage {
    async fn clients(&self) -> Result<Clients, String> {
        Clients::load(&crate::ProviderConfig::of(&self.config).aws)
            .await
            .map_err(|e| e.to_string())
    }

    fn azure(&self) -> Result<crate::platforms::azure::Context, String> {
        crate::platforms::azure::Context::load(&crate::ProviderConfig::of(&self.config).azure)
            .map_err(|e| e.to_string())
    }

    /// With `acr`: the registry made (and attached), its login server and ID, and the login.
    async fn acr(
        &self,
        spec: &acr::RegistrySpec,
        insecure: bool,
    ) -> Result<(String, String, Access), String> {
        let ctx = self.azure()?;
        let reg = acr::ensure(&ctx, spec).await.map_err(|e| e.to_string())?;
        let server = reg
            .properties
            .login_server
            .clone()
            .unwrap_or_else(|| format!("{}.azurecr.io", spec.name));
        let (user, password) = acr::login(&ctx, &server).await.map_err(|e| e.to_string())?;
        Ok((
            server,
            reg.id.unwrap_or_else(|| acr::path(&ctx, &spec.name)),
            Access {
                insecure,
                username: Some(user),
                password: Some(password),
            },
        ))
    }

    /// With `ecr`: the repository made to match the block, and the registry login.
    async fn ecr(
        &self,
        spec: &ecr::RepositorySpec,
        insecure: bool,
    ) -> Result<(ecr::Repository, Access), String> {
        let c = self.clients().await?;
        let repo = ecr::ensure(&c.ecr, spec).await?;
        let (user, password) = ecr::login(&c.ecr, &repo.registry_id).await?;
        Ok((
            repo,
            Access {
                insecure,
                username: Some(user),
                password: Some(password),
            },
        ))
    }
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
                     and most refuse deletes); remove it with the registry's own retention or garbage collection.\n\n\
                     With an `ecr` block, the repository is an Amazon ECR repository that the resource creates (or takes, \
                     when one of that name exists) with immutable tags, scan on push and a lifecycle policy, and the login \
                     is the `GetAuthorizationToken` one from the AWS default chain (the provider's `aws` block) — no \
                     `docker login`, nothing secret in state. `repository` is then the ECR repository name \
                     (`ml/modelplane-serve`), and the image goes to `ACCOUNT.dkr.ecr.REGION.amazonaws.com/ml/modelplane-serve`.",
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
                        .description("Where to push: `HOST[:PORT]/PATH`, e.g. `registry.example.com/ml/modelplane-serve`. The host is required, except with `ecr`: there the name alone (`ml/modelplane-serve`) is the ECR repository, pushed to at its URI; a name with a host pushes to that host with the ECR login (a registry that mirrors ECR's)."),
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
                .attribute(Attribute::new("version", Type::String).computed().description("The server version in the image (its `org.opencontainers.image.version` label)."))
                .attribute(Attribute::new("repository_url", Type::String).computed().description("Where the image is: `repository`, or with `ecr` and a bare name the ECR repository's URI."))
                .attribute(Attribute::new("repository_arn", Type::String).computed().description("With `ecr`: the ECR repository's ARN (for IAM policies); null otherwise."))
                .attribute(Attribute::new("registry_id", Type::String).computed().description("With `acr`: the registry's Azure resource ID (for role assignments); null otherwise."))
                .block(
                    NestedBlock::new(
                        "acr",
                        Nesting::Single,
                        Block::new()
                            .description("Push to Azure Container Registry: the registry is created in the provider's `azure.resource_group` and `azure.location` (or taken when it exists) with the admin user off; the login is ACR's token exchange of the Azure credential chain's token (as `az acr login`), nothing secret in state. `repository` is then the repository name in the registry (`ml/modelplane-serve`), and the image goes to `REGISTRY.azurecr.io/ml/modelplane-serve`; a name with a host pushes to that host with the ACR login.")
                            .attribute(Attribute::new("registry", Type::String).required().requires_replace().validate(Validator::regex(r"^[a-zA-Z0-9]{5,50}$", "5 to 50 letters and digits").summary("Invalid registry name")).description("The registry's name (5 to 50 letters and digits, unique in Azure): its login server is `NAME.azurecr.io`."))
                            .attribute(Attribute::new("sku", Type::String).optional().validate(Validator::one_of(&["Basic", "Standard", "Premium"]).summary("Invalid registry SKU")).description("`Basic`, `Standard` (default) or `Premium`, for a registry the resource creates."))
                            .attribute(Attribute::new("attach_clusters", Type::list(Type::String)).optional().description("IDs of `azure` clusters (`modelplane_gpu_cluster.X.id`) whose kubelet identity gets `AcrPull` on the registry, so their nodes pull the image with no pull secret (as `az aks update --attach-acr`)."))
                            .attribute(Attribute::new("force_delete", Type::Bool).optional().description("Destroy deletes the registry and every image in it. Default false: destroy leaves the registry (and warns).")),
                    ),
                )
                .block(
                    NestedBlock::new(
                        "ecr",
                        Nesting::Single,
                        Block::new()
                            .description("Push to Amazon ECR: the repository is created with immutable tags (a tag is never moved to other content), scan on push and a lifecycle policy, and the login comes from `GetAuthorizationToken`.")
                            .attribute(Attribute::new("scan_on_push", Type::Bool).optional().description("Scan each pushed image for vulnerabilities (ECR basic scanning). Default true."))
                            .attribute(Attribute::new("keep_images", Type::Number).optional().validate(Validator::between(1.0, 10000.0).summary("Invalid lifecycle policy")).description("The lifecycle policy keeps the newest this many images and expires older ones. Default 30. An endpoint still running an expired image cannot start new replicas: keep more than the versions you run."))
                            .attribute(Attribute::new("untagged_days", Type::Number).optional().validate(Validator::between(1.0, 3650.0).summary("Invalid lifecycle policy")).description("Untagged images expire this many days after their push. Default 7."))
                            .attribute(Attribute::new("force_delete", Type::Bool).optional().description("Destroy deletes the ECR repository and every image in it. Default false: destroy leaves the repository (and warns), and a later apply takes it again.")),
                    ),
                ),
        )
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        let ecr = !config.elements("ecr").is_empty();
        let acr = !config.elements("acr").is_empty();
        if ecr && acr {
            diags.error_at(
                AttributePath::attr("acr"),
                "Conflicting registries",
                "an image goes to one registry: keep ecr or acr.",
            );
        }
        if acr && !config.is_null("username") {
            diags.error_at(
                AttributePath::attr("username"),
                "Conflicting registry login",
                "with `acr`, the login comes from ACR's token exchange; remove username and password_wo.",
            );
        }
        if let Some(a) = config.elements("acr").first() {
            // Cluster IDs are often unknown until the cluster is planned.
            if let Attr::Known(ids) = a.get::<Vec<Attr<String>>>("attach_clusters", diags) {
                for id in ids.into_iter().filter_map(Attr::into_known) {
                    if !id.starts_with("azure/") {
                        diags.error_at(
                            AttributePath::attr("acr").then_attr("attach_clusters"),
                            "Not an azure cluster",
                            format!("{id:?} is not the ID of an azure cluster; give modelplane_gpu_cluster.NAME.id of a cluster with platform = \"azure\"."),
                        );
                    }
                }
            }
        }
        if let Attr::Known(r) = config.get::<String>("repository", diags) {
            if r.contains('@') || r.rsplit('/').next().is_some_and(|last| last.contains(':')) {
                diags.error_at(
                    AttributePath::attr("repository"),
                    "Invalid repository",
                    format!("{r:?} holds a tag or digest; give the repository alone and the tag in `tag`."),
                );
            } else if acr {
                if let Err(e) = registry::parse(&format!("example.azurecr.io/{}", ecr_name(&r))) {
                    diags.error_at(AttributePath::attr("repository"), "Invalid repository", e);
                }
            } else if ecr {
                let name = ecr_name(&r);
                if name.len() < 2
                    || name.len() > 256
                    || !regex::Regex::new(ECR_NAME).is_ok_and(|re| re.is_match(name))
                {
                    diags.error_at(
                        AttributePath::attr("repository"),
                        "Invalid ECR repository name",
                        format!("{name:?} is not an ECR repository name: 2 to 256 lower-case letters, digits and `._-/`, each part starting and ending with a letter or digit, e.g. \"ml/modelplane-serve\"."),
                    );
                }
            } else if let Err(e) = registry::parse(&r) {
                diags.error_at(AttributePath::attr("repository"), "Invalid repository", e);
            }
        }
        if ecr && !config.is_null("username") {
            diags.error_at(
                AttributePath::attr("username"),
                "Conflicting registry login",
                "with `ecr`, the login comes from ECR's GetAuthorizationToken; remove username and password_wo.",
            );
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
        prior: Option<&Model>,
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
        // The ECR repository's URI and ARN are known once it exists.
        let same = prior
            .filter(|p| p.repository == plan.repository && p.ecr.is_some() == plan.ecr.is_some());
        plan.repository_arn = match (&plan.ecr, same) {
            (None, _) => Attr::Null,
            (Some(_), Some(p)) if p.repository_arn.is_known() => p.repository_arn.clone(),
            (Some(_), _) => Attr::Unknown,
        };
        let same_acr = prior.filter(|p| p.repository == plan.repository && p.acr == plan.acr);
        plan.registry_id = match (&plan.acr, same_acr) {
            (None, _) => Attr::Null,
            (Some(_), Some(p)) if p.registry_id.is_known() => p.registry_id.clone(),
            (Some(_), _) => Attr::Unknown,
        };
        let same = if plan.acr.is_some() { same_acr } else { same };
        plan.repository_url = match (plan.cloud() && !has_host(&plan.repository), same) {
            (false, _) => Attr::Known(plan.repository.clone()),
            (true, Some(p)) if p.repository_url.is_known() => p.repository_url.clone(),
            (true, _) => Attr::Unknown,
        };
        plan.digest = Attr::Known(layout.digest.clone());
        match (plan.target(), &plan.tag) {
            (Some(target), Attr::Known(t)) => {
                plan.reference = Attr::Known(format!("{target}@{}", layout.digest));
                plan.tagged_reference = Attr::Known(format!("{target}:{t}"));
            }
            _ => {
                plan.reference = Attr::Unknown;
                plan.tagged_reference = Attr::Unknown;
            }
        }
        plan.id = plan.reference.clone();
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
        let mut access = plan.access();
        let mut target = plan.repository.clone();
        let spec = plan.ecr_spec();
        if let Some(spec) = &spec {
            match self.ecr(spec, plan.insecure.unwrap_or(false)).await {
                Ok((repo, login)) => {
                    access = login;
                    if !has_host(&plan.repository) {
                        target = repo.uri;
                    }
                    plan.repository_arn = Attr::Known(repo.arn);
                }
                Err(e) => {
                    ctx.diags.error_at(
                        AttributePath::attr("ecr"),
                        "Cannot set up the ECR repository",
                        e,
                    );
                    return None;
                }
            }
        }
        let acr_spec = plan.acr_spec();
        if let Some(spec) = &acr_spec {
            match self.acr(spec, plan.insecure.unwrap_or(false)).await {
                Ok((server, id, login)) => {
                    access = login;
                    if !has_host(&plan.repository) {
                        target = format!("{server}/{}", plan.repository);
                    }
                    plan.registry_id = Attr::Known(id);
                }
                Err(e) => {
                    ctx.diags.error_at(
                        AttributePath::attr("acr"),
                        "Cannot set up the Azure container registry",
                        e,
                    );
                    return None;
                }
            }
        }
        plan.repository_url = Attr::Known(target.clone());
        plan.password_wo = Attr::Null;
        let pushed = tokio::select! {
            r = registry::push(&layout, &target, &tag, &access) => r,
            _ = ctx.stopped() => Err("interrupted: Terraform was asked to stop during the push".into()),
        };
        match pushed {
            Ok(digest) => {
                plan.digest = Attr::Known(digest.clone());
                plan.reference = Attr::Known(format!("{target}@{digest}"));
                plan.id = plan.reference.clone();
                plan.tagged_reference = Attr::Known(format!("{target}:{tag}"));
                Some(plan)
            }
            Err(mut e) => {
                if spec.is_some() {
                    e.push_str(&format!(
                        ". The ECR repository's tags are immutable: if {target}:{tag} already names another image, set a new `tag`."
                    ));
                }
                ctx.diags.error_at(
                    AttributePath::attr("repository"),
                    "Cannot push the image",
                    e,
                );
                // A repository created on ECR or ACR is recorded (the resource is tainted
                // and replaced by the next apply, which takes the repository again).
                (spec.is_some() || acr_spec.is_some()).then(|| {
                    plan.reference = Attr::Null;
                    plan.tagged_reference = Attr::Null;
                    plan.id = Attr::Known(target.clone());
                    plan
                })
            }
        }
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        let Attr::Known(reference) = state.reference.clone() else {
            return Some(state);
        };
        if let Some(spec) = state.acr_spec() {
            let found = async {
                let ctx = self.azure()?;
                let Some(reg) = acr::describe(&ctx, &spec.name)
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    return Ok(None);
                };
                let server = reg
                    .properties
                    .login_server
                    .clone()
                    .unwrap_or_else(|| format!("{}.azurecr.io", spec.name));
                let (user, password) =
                    acr::login(&ctx, &server).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(Some((user, password)))
            }
            .await;
            let access = match found {
                Ok(None) => return None,
                Ok(Some((user, password))) => Access {
                    insecure: state.insecure.unwrap_or(false),
                    username: Some(user),
                    password: Some(password),
                },
                Err(e) => {
                    ctx.diags.warning(
                        "Cannot check the Azure container registry",
                        format!("{e}. The state is kept as it was."),
                    );
                    return Some(state);
                }
            };
            return match registry::resolve(&reference, &access).await {
                Ok(Some(_)) => Some(state),
                Ok(None) => None,
                Err(e) => {
                    ctx.diags.warning(
                        "Cannot check the image in its registry",
                        format!("{e}. The state is kept as it was."),
                    );
                    Some(state)
                }
            };
        }
        let access = match state.ecr_spec() {
            // ECR: the repository must still be there, and a fresh login checks the image.
            Some(spec) => {
                let found = async {
                    let c = self.clients().await?;
                    let Some(repo) = ecr::describe(&c.ecr, &spec.name).await? else {
                        return Ok(None);
                    };
                    let (user, password) = ecr::login(&c.ecr, &repo.registry_id).await?;
                    Ok::<_, String>(Some((repo, user, password)))
                }
                .await;
                match found {
                    Ok(None) => return None,
                    Ok(Some((repo, user, password))) => {
                        state.repository_arn = Attr::Known(repo.arn);
                        Access {
                            insecure: state.insecure.unwrap_or(false),
                            username: Some(user),
                            password: Some(password),
                        }
                    }
                    Err(e) => {
                        ctx.diags.warning(
                            "Cannot check the ECR repository",
                            format!("{e}. The state is kept as it was."),
                        );
                        return Some(state);
                    }
                }
            }
            // The password is write-only: refresh has none to authenticate with, so an image
            // pushed with username and password_wo is kept as recorded.
            None if state.username.is_some() => return Some(state),
            None => state.access(),
        };
        match registry::resolve(&reference, &access).await {
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

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        if let Some(a) = &state.acr {
            if !a.force_delete.unwrap_or(false) {
                ctx.diags.warning(
                    "Azure container registry left in place",
                    format!("{} and its images stay (acr.force_delete is false); a later apply takes the registry again. Delete it with `az acr delete --name {}`, or set force_delete = true before destroying.", a.registry, a.registry),
                );
                return;
            }
            let deleted = async {
                let ctx = self.azure()?;
                acr::delete(&ctx, &a.registry)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = deleted {
                ctx.diags.error_at(
                    AttributePath::attr("acr"),
                    "Cannot delete the Azure container registry",
                    e,
                );
            }
            return;
        }
        let (Some(spec), Some(e)) = (state.ecr_spec(), &state.ecr) else {
            return;
        };
        if !e.force_delete.unwrap_or(false) {
            ctx.diags.warning(
                "ECR repository left in place",
                format!(
                    "{} and its images stay (ecr.force_delete is false); a later apply takes the repository again. Delete it with `aws ecr delete-repository --force --repository-name {}`, or set force_delete = true before destroying.",
                    state.repository_url.known().cloned().unwrap_or_else(|| spec.name.clone()),
                    spec.name
                ),
            );
            return;
        }
        let deleted = async {
            let c = self.clients().await?;
            ecr::delete(&c.ecr, &spec.name).await
        }
        .await;
        if let Err(e) = deleted {
            ctx.diags.error_at(
                AttributePath::attr("ecr"),
                "Cannot delete the ECR repository",
                e,
            );
        }
    }
}
