//! Governance as code: approvals of model versions, bound to their content and enforced at
//! plan ([`approval`]), and an append-only audit trail of every change to an endpoint or an
//! approval, kept in the model store ([`audit`]). Who did what is the credential chain's
//! identity ([`identity`]).

pub mod approval;
pub mod audit;
pub mod identity;

use tfplugin::{Attribute, AttributePath, Block, Config, Diagnostics, NestedBlock, Nesting, Type};

/// The provider's `governance` block.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Every endpoint variant must serve an approved version (an endpoint's own
    /// `require_approval` overrides it).
    pub require_approval: bool,
    /// An approval made by the identity that registered the version does not count, and
    /// cannot be made.
    pub separation_of_duties: bool,
    /// `audit = false`: no audit records are written.
    pub audit_off: bool,
}

pub fn provider_block() -> NestedBlock {
    NestedBlock::new(
        "governance",
        Nesting::Single,
        Block::new()
            .description("Promotion policy for every endpoint and approval this provider manages.")
            .attribute(Attribute::new("require_approval", Type::Bool).optional().description(
                "Every `modelplane_endpoint` variant and `modelplane_endpoint_model` attachment with traffic must serve a version with a valid `modelplane_model_approval` \
                 (not expired, made for the version's sha256), checked at plan. An endpoint's own \
                 `require_approval` takes precedence. Default false.",
            ))
            .attribute(Attribute::new("separation_of_duties", Type::Bool).optional().description(
                "An approval must come from another identity than the one that registered the version \
                 (`registered_by` in model.json: the credential chain's identity of the workspace that created \
                 the `modelplane_model`). Such an approval cannot be created, and one made before the policy does \
                 not count. Default false.",
            ))
            .attribute(Attribute::new("audit", Type::Bool).optional().description(
                "Append a record of every create, update, rollback and delete of an endpoint or approval to the \
                 model store's audit log (read it with `data.modelplane_audit`). Default true.",
            )),
    )
}

pub fn configure(config: &Config, diags: &mut Diagnostics) -> Policy {
    let flag = |attr: &str, diags: &mut Diagnostics| {
        config
            .get_path::<bool>(&AttributePath::attr("governance").then_attr(attr), diags)
            .into_known()
    };
    Policy {
        require_approval: flag("require_approval", diags).unwrap_or(false),
        separation_of_duties: flag("separation_of_duties", diags).unwrap_or(false),
        audit_off: flag("audit", diags) == Some(false),
    }
}

/// Now, RFC 3339 in UTC with nanoseconds.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!("{s:?} is not an RFC 3339 time ({e}); write it like 2027-03-31T00:00:00Z")
    })
}
