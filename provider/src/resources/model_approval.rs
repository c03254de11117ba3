//! `modelplane_model_approval`: an approval of one model version, stored beside it in its
//! store (see [`crate::governance::approval`]). Endpoints with `require_approval` refuse, at
//! plan, a version without a valid one. Deleting the resource revokes the approval.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, Schema, Type};

use crate::governance::{self, approval, approval::Approval, audit, identity};
use crate::ids::VersionId;
use crate::{stores, ProviderConfig};

pub struct ModelApproval {
    pub config: Arc<OnceLock<ProviderConfig>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub model: Attr<String>,
    pub reference: Attr<String>,
    pub approver: Attr<String>,
    pub expires_at: Attr<String>,
    pub approval_id: Attr<String>,
    pub approved_model: Attr<String>,
    pub approved_by: Attr<String>,
    pub approved_at: Attr<String>,
    pub registered_by: Attr<String>,
    pub model_sha256: Attr<String>,
    pub digest: Attr<String>,
    pub status: Attr<String>,
}

fn schema() -> Schema {
    Schema::new(
        Block::new()
            .description(
                "An approval of one model version: who approved it (the credential chain's identity, and the \
                 approver you name), the reference it was approved under (a ticket, a change request) and until \
                 when. It is stored beside the version in its store (`NAME/VERSION/approval.ID.json`), bound to the \
                 version's sha256 by a digest over every field: an approval edited afterwards, copied to another \
                 version, or left behind when the artifact was replaced does not count. Another team's workspace may \
                 own it; the endpoint's workspace only reads it.\n\n\
                 An endpoint with `require_approval = true` (or the provider's `governance.require_approval`) \
                 refuses at plan any variant whose version has no valid approval. Destroying this resource revokes \
                 the approval, which the endpoint's next plan shows. With the provider's \
                 `governance.separation_of_duties`, the identity that registered the version cannot approve it. \
                 Every approval and revocation is a record in the store's audit log (`data.modelplane_audit`).\n\n\
                 Every argument forces a new approval (the old one is revoked): an approval is a fact, not a setting.",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("`VERSION_ID/approval.APPROVAL_ID`; the import ID."))
            .attribute(Attribute::new("model", Type::String).required().requires_replace().description("The version approved: its `id` or `uri` (`modelplane_model.X.id`, or `modelplane_models`' `versions[*].id` from another workspace)."))
            .attribute(Attribute::new("reference", Type::String).required().requires_replace().description("What the approval was given under: a ticket, a change request, a review (e.g. `CHG-2291`)."))
            .attribute(Attribute::new("approver", Type::String).optional().computed().requires_replace().description("Who approves, as your organisation names them (a person, a review board). Default: `approved_by`."))
            .attribute(Attribute::new("expires_at", Type::String).optional().requires_replace().description("When the approval stops counting (RFC 3339, e.g. `2027-03-31T00:00:00Z`); must be in the future. Without it, it lasts until revoked."))
            .attribute(Attribute::new("approved_model", Type::String).computed().stable().description("The approved version's `id`, known once the approval is made. Refer to it from an endpoint variant (`model = modelplane_model_approval.X.approved_model`) when the approval and the endpoint are in one configuration: the endpoint then waits for the approval, and its approval check runs once the approval exists."))
            .attribute(Attribute::new("approval_id", Type::String).computed().stable().description("The approval's own ID (time-ordered)."))
            .attribute(Attribute::new("approved_by", Type::String).computed().stable().description("The identity that made it: the store's credential chain (`aws:ARN`, `azure:NAME (OBJECT_ID)`), or `os:USER@HOST` for a local store."))
            .attribute(Attribute::new("approved_at", Type::String).computed().stable().description("When (RFC 3339, UTC)."))
            .attribute(Attribute::new("registered_by", Type::String).computed().stable().description("Who registered the version, from its model.json (null for versions registered before this was recorded)."))
            .attribute(Attribute::new("model_sha256", Type::String).computed().stable().description("The sha256 of the artifact approved."))
            .attribute(Attribute::new("digest", Type::String).computed().stable().description("`sha256:…` over every field of the approval."))
            .attribute(Attribute::new("status", Type::String).computed().description("`valid`, or why the approval does not count now (expired, artifact replaced, edited, separation of duties); read on every refresh.")),
    )
}

impl ModelApproval {
    fn provider(&self) -> ProviderConfig {
        ProviderConfig::of(&self.config)
    }

    fn open(
        &self,
        model: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Box<dyn stores::Store>, VersionId)> {
        let id = match stores::parse_version(model) {
            Ok(id) => id,
            Err(e) => {
                diags.error_at(
                    AttributePath::attr("model"),
                    "Invalid model reference",
                    e.to_string(),
                );
                return None;
            }
        };
        match stores::open(&id.store, &self.provider().stores()) {
            Ok(s) => Some((s, id)),
            Err(e) => {
                diags.error_at(
                    AttributePath::attr("model"),
                    "Invalid model reference",
                    e.to_string(),
                );
                None
            }
        }
    }

    /// Appends the audit record of an approval or revocation; `actor` when already known.
    async fn record(
        &self,
        store: &dyn stores::Store,
        action: &str,
        a: &Approval,
        actor: Option<String>,
    ) {
        if self.provider().governance.audit_off {
            return;
        }
        let r = audit::Record {
            action: action.into(),
            resource: "modelplane_model_approval".into(),
            models: [(
                "approved".to_string(),
                VersionId::new(&store.uri(), &a.name, &a.version).to_string(),
            )]
            .into(),
            actor: actor.unwrap_or_default(),
            outcome: "applied".into(),
            approval: Some(format!("{} ({})", a.id, a.reference)),
            ..Default::default()
        };
        audit::write(store, &self.provider().stores(), r).await;
    }
}

fn fill(m: &mut Model, store: &str, a: &Approval, status: String) {
    m.approval_id = Attr::Known(a.id.clone());
    m.approved_model = Attr::Known(VersionId::new(store, &a.name, &a.version).to_string());
    m.approved_by = Attr::Known(a.approved_by.clone());
    m.approver = Attr::Known(a.approver.clone());
    m.approved_at = Attr::Known(a.approved_at.clone());
    m.registered_by = a.registered_by.clone().into();
    m.model_sha256 = Attr::Known(a.model_sha256.clone());
    m.digest = Attr::Known(a.digest.clone());
    m.status = Attr::Known(status);
}

#[tfplugin::async_trait]
impl tfplugin::Resource for ModelApproval {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_model_approval"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        if let Attr::Known(e) = config.get::<String>("expires_at", diags) {
            if let Err(why) = governance::parse_time(&e) {
                diags.error_at(AttributePath::attr("expires_at"), "Invalid expiry", why);
            }
        }
        if let Attr::Known(r) = config.get::<String>("reference", diags) {
            if r.trim().is_empty() {
                diags.error_at(
                    AttributePath::attr("reference"),
                    "Empty reference",
                    "reference names what the approval was given under (a ticket, a change request); it cannot be empty.",
                );
            }
        }
    }

    async fn modify_plan(
        &self,
        prior: Option<&Model>,
        plan: &mut Model,
        _config: &Config,
        ctx: &mut Ctx,
    ) {
        if prior.is_some() {
            return;
        }
        if let Attr::Known(e) = &plan.expires_at {
            if let Ok(t) = governance::parse_time(e) {
                if t <= governance::now() {
                    ctx.diags.error_at(
                        AttributePath::attr("expires_at"),
                        "Approval already expired",
                        format!("expires_at {e} is in the past; an approval must expire after it is made."),
                    );
                }
            }
        }
        plan.status = Attr::Known("valid".into());
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let (store, id) = self.open(plan.model.known()?, &mut ctx.diags)?;
        let facts = match approval::facts(store.as_ref(), &id.name, &id.version).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                ctx.diags.error_at(
                    AttributePath::attr("model"),
                    "Unknown model",
                    format!(
                        "{}/{} is not in the store {}; register it with a modelplane_model first.",
                        id.name, id.version, id.store
                    ),
                );
                return None;
            }
            Err(e) => {
                ctx.diags
                    .error("Cannot read the model version", e.to_string());
                return None;
            }
        };
        if facts.actual_sha256.as_deref() != Some(facts.recorded_sha256.as_str()) {
            ctx.diags.error_at(
                AttributePath::attr("model"),
                "Artifact does not match its record",
                format!(
                    "{}/{}: model.json records sha256 {}, but the store holds {}; the artifact was replaced or damaged. Nothing was approved: register the version again.",
                    id.name,
                    id.version,
                    facts.recorded_sha256,
                    facts.actual_sha256.as_deref().unwrap_or("no model.onnx")
                ),
            );
            return None;
        }
        let me = match identity::caller(&store.uri(), &self.provider().stores()).await {
            Ok(me) => me,
            Err(e) => {
                ctx.diags.error(
                    "Cannot tell who approves",
                    format!(
                        "{e}. An approval must name its approver's identity; nothing was approved."
                    ),
                );
                return None;
            }
        };
        let policy = self.provider().governance;
        if policy.separation_of_duties && facts.registered_by.as_deref() == Some(me.as_str()) {
            ctx.diags.error_at(
                AttributePath::attr("model"),
                "Separation of duties",
                format!(
                    "{}/{} was registered by {me}, the identity applying this approval; the provider's governance.separation_of_duties asks for another identity to approve it. Apply this approval from the approving team's workspace (its own credentials).",
                    id.name, id.version
                ),
            );
            return None;
        }
        let now = governance::now();
        let a = Approval {
            id: approval::new_id(now),
            name: id.name.clone(),
            version: id.version.clone(),
            model_sha256: facts.recorded_sha256.clone(),
            approver: plan.approver.known().cloned().unwrap_or_else(|| me.clone()),
            approved_by: me.clone(),
            registered_by: facts.registered_by.clone(),
            reference: plan.reference.known().cloned().unwrap_or_default(),
            approved_at: governance::rfc3339(now),
            expires_at: plan.expires_at.known().cloned(),
            digest: String::new(),
        }
        .sealed();
        let body = serde_json::to_vec_pretty(&a).unwrap_or_default();
        if let Err(e) = store
            .put_file(&id.name, &id.version, &a.file_name(), body)
            .await
        {
            ctx.diags.error("Cannot store the approval", e.to_string());
            return None;
        }
        plan.id = Attr::Known(format!(
            "{id}/{}",
            approval::file_name(&a.id).trim_end_matches(".json")
        ));
        fill(&mut plan, &store.uri(), &a, "valid".into());
        self.record(store.as_ref(), "approve", &a, Some(me)).await;
        Some(plan)
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        let (store, id) = self.open(state.model.known()?, &mut ctx.diags)?;
        let Some(aid) = state.approval_id.known().cloned() else {
            return Some(state);
        };
        let bytes = match store
            .get(&id.name, &id.version, &approval::file_name(&aid))
            .await
        {
            Ok(Some(b)) => b,
            // Revoked (or the version deleted) out of band.
            Ok(None) => return None,
            Err(e) => {
                ctx.diags.warning(
                    "Cannot read the approval",
                    format!("{e}; keeping the recorded state."),
                );
                return Some(state);
            }
        };
        let a: Approval = match serde_json::from_slice(&bytes) {
            Ok(a) => a,
            Err(e) => {
                state.status = Attr::Known(format!("unreadable: {e}"));
                return Some(state);
            }
        };
        let status = match approval::facts(store.as_ref(), &id.name, &id.version).await {
            Ok(Some(f)) => approval::problem(
                &a,
                &id.name,
                &id.version,
                &f,
                self.provider().governance.separation_of_duties,
                governance::now(),
            )
            .unwrap_or_else(|| "valid".into()),
            Ok(None) => return None,
            Err(_) => return Some(state),
        };
        fill(&mut state, &store.uri(), &a, status);
        Some(state)
    }

    async fn update(&self, _prior: Model, plan: Model, _ctx: &mut Ctx) -> Option<Model> {
        // Every argument forces a new approval: nothing changes in place.
        Some(plan)
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        let Some((store, id)) = state
            .model
            .known()
            .and_then(|m| self.open(m, &mut ctx.diags))
        else {
            return;
        };
        let Some(aid) = state.approval_id.known().cloned() else {
            return;
        };
        let file = approval::file_name(&aid);
        let found = store.get(&id.name, &id.version, &file).await.ok().flatten();
        if let Err(e) = store.delete_file(&id.name, &id.version, &file).await {
            ctx.diags.error("Cannot revoke the approval", e.to_string());
            return;
        }
        if let Some(a) = found.and_then(|b| serde_json::from_slice::<Approval>(&b).ok()) {
            self.record(store.as_ref(), "revoke", &a, None).await;
        }
    }

    async fn import(&self, import_id: &str, ctx: &mut Ctx) -> Option<Model> {
        let bad = |ctx: &mut Ctx| {
            ctx.diags.error(
                "Invalid import ID",
                format!("{import_id:?} is not an approval's ID; use VERSION_ID/approval.APPROVAL_ID (the `id` the approval's workspace shows)."),
            );
        };
        let Some((version, file)) = import_id.rsplit_once('/') else {
            bad(ctx);
            return None;
        };
        let Some(aid) = file.strip_prefix("approval.") else {
            bad(ctx);
            return None;
        };
        let (store, id) = self.open(version, &mut ctx.diags)?;
        let a = match store
            .get(&id.name, &id.version, &approval::file_name(aid))
            .await
        {
            Ok(Some(b)) => match serde_json::from_slice::<Approval>(&b) {
                Ok(a) => a,
                Err(e) => {
                    ctx.diags.error("Cannot read the approval", e.to_string());
                    return None;
                }
            },
            Ok(None) => {
                ctx.diags.error(
                    "Approval not found",
                    format!("{import_id}: no such approval in the store."),
                );
                return None;
            }
            Err(e) => {
                ctx.diags.error("Cannot read the approval", e.to_string());
                return None;
            }
        };
        let mut m = Model {
            id: Attr::Known(import_id.to_string()),
            model: Attr::Known(version.to_string()),
            reference: Attr::Known(a.reference.clone()),
            approver: Attr::Null,
            expires_at: a.expires_at.clone().into(),
            approval_id: Attr::Null,
            approved_model: Attr::Null,
            approved_by: Attr::Null,
            approved_at: Attr::Null,
            registered_by: Attr::Null,
            model_sha256: Attr::Null,
            digest: Attr::Null,
            status: Attr::Null,
        };
        fill(&mut m, &store.uri(), &a, "valid".into());
        self.read(m, ctx).await
    }
}
