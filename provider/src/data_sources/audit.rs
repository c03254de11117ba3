//! `modelplane_audit`: the audit trail of a model store, filtered, oldest first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Ctx, Nesting, Schema, Type};

use crate::governance::{self, audit};
use crate::stores;

pub struct Audit {
    pub config: std::sync::Arc<std::sync::OnceLock<crate::ProviderConfig>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Bench {
    pub requests: i64,
    pub errors: i64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub action: String,
    pub resource: String,
    pub endpoint: Option<String>,
    pub models: BTreeMap<String, String>,
    pub actor: String,
    pub outcome: String,
    pub split_before: BTreeMap<String, i64>,
    pub split_after: BTreeMap<String, i64>,
    pub changed: Vec<String>,
    pub change: String,
    pub benchmark: Option<Bench>,
    pub approval: Option<String>,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub store: String,
    pub endpoint: Option<String>,
    pub model: Option<String>,
    pub since: Option<String>,
    pub action: Option<String>,
    pub records: Attr<Vec<Entry>>,
}

impl From<audit::Record> for Entry {
    fn from(r: audit::Record) -> Self {
        Entry {
            time: r.time,
            action: r.action,
            resource: r.resource,
            endpoint: r.endpoint,
            models: r.models,
            actor: r.actor,
            outcome: r.outcome,
            split_before: r.split_before,
            split_after: r.split_after,
            changed: r.changed,
            change: if r.change.is_null() {
                "{}".into()
            } else {
                r.change.to_string()
            },
            benchmark: r.benchmark.map(|b| Bench {
                requests: b.requests,
                errors: b.errors,
                rps: b.rps,
                p50_ms: b.p50_ms,
                p99_ms: b.p99_ms,
            }),
            approval: r.approval,
            detail: r.detail,
        }
    }
}

pub const ACTIONS: &[&str] = &[
    "create", "update", "rollback", "delete", "approve", "revoke",
];

#[tfplugin::async_trait]
impl tfplugin::DataSource for Audit {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_audit"
    }

    fn schema(&self) -> Schema {
        let s = |n: &str, d: &str| Attribute::new(n, Type::String).computed().description(d);
        let bench = vec![
            Attribute::new("requests", Type::Number)
                .computed()
                .description("Requests sent."),
            Attribute::new("errors", Type::Number)
                .computed()
                .description("Requests that failed."),
            Attribute::new("rps", Type::Number)
                .computed()
                .description("Requests per second."),
            Attribute::new("p50_ms", Type::Number)
                .computed()
                .description("Median latency, ms."),
            Attribute::new("p99_ms", Type::Number)
                .computed()
                .description("99th percentile latency, ms."),
        ];
        let record = vec![
            s("time", "When (RFC 3339, UTC)."),
            s("action", "`create`, `update`, `rollback` (an update whose benchmark missed its SLO and was put back), `delete` (endpoints); `approve`, `revoke` (approvals)."),
            s("resource", "`modelplane_endpoint`, `modelplane_endpoint_model` (an attachment to a shared endpoint) or `modelplane_model_approval`."),
            s("endpoint", "The endpoint's ID (`CLUSTER_ID/NAME`; an attachment's is `ENDPOINT_ID/NAME`), for endpoint records."),
            Attribute::new("models", Type::map(Type::String)).computed().description("The versions involved, by role: each variant's name (the split after the change; before it for a delete), `shadow`, or `approved`."),
            s("actor", "Who: the credential chain's identity (`aws:ARN`, `azure:NAME (OBJECT_ID)`), or `os:USER@HOST`."),
            s("outcome", "`applied`, `rolled back` or `failed`."),
            Attribute::new("split_before", Type::map(Type::Number)).computed().description("Weights per variant before the change."),
            Attribute::new("split_after", Type::map(Type::Number)).computed().description("Weights per variant after it (what was tried, for a rollback or failure)."),
            Attribute::new("changed", Type::list(Type::String)).computed().description("The names of the settings that changed (`variant`, `batching`, `token`, `kubernetes`, …)."),
            s("change", "JSON: before and after of each changed setting that cannot hold a secret (settings that can, such as `kubernetes`, `container` and the token, are named in `changed` only)."),
            Attribute::nested("benchmark", Nesting::Single, bench).computed().description("The benchmark hook's figures after the change, when one ran and passed."),
            s("approval", "`ID (REFERENCE)` of the approval, for approval records."),
            s("detail", "Why it failed or was rolled back."),
        ];
        Schema::new(
            Block::new()
                .description("The audit trail of a model store: every create, update, rollback and delete of an endpoint serving from it (and of an attachment to a shared endpoint), and every approval and revocation of its versions, oldest first. Each record is one object in the store (`.modelplane/audit/`), written once and never rewritten; it holds who, when, the split before and after, what settings changed, the benchmark figures and the outcome, and never a secret.")
                .attribute(Attribute::new("store", Type::String).required().description("The `id` of a `modelplane_model_store`."))
                .attribute(Attribute::new("endpoint", Type::String).optional().description("Only records of this endpoint or attachment: its `id`, or the last part of it (its name)."))
                .attribute(Attribute::new("model", Type::String).optional().description("Only records involving this model: a name, `NAME/VERSION`, or a version's `id`."))
                .attribute(Attribute::new("since", Type::String).optional().description("Only records at or after this time (RFC 3339)."))
                .attribute(Attribute::new("action", Type::String).optional().description("Only this action: `create`, `update`, `rollback`, `delete`, `approve` or `revoke`."))
                .attribute(Attribute::nested("records", Nesting::List, record).computed().description("The records, oldest first.")),
        )
    }

    async fn read(&self, mut m: Model, ctx: &mut Ctx) -> Option<Model> {
        let mut filter = audit::Filter {
            endpoint: m.endpoint.clone(),
            model: m.model.clone(),
            since: None,
            action: m.action.clone(),
        };
        if let Some(s) = &m.since {
            match governance::parse_time(s) {
                Ok(t) => filter.since = Some(t),
                Err(e) => {
                    ctx.diags
                        .error_at(AttributePath::attr("since"), "Invalid time", e);
                    return None;
                }
            }
        }
        if let Some(a) = &m.action {
            if !ACTIONS.contains(&a.as_str()) {
                ctx.diags.error_at(
                    AttributePath::attr("action"),
                    "Unknown action",
                    format!("action {a:?} is none of {}.", ACTIONS.join(", ")),
                );
                return None;
            }
        }
        let store = match stores::open(&m.store, &crate::ProviderConfig::of(&self.config).stores())
        {
            Ok(s) => s,
            Err(e) => {
                ctx.diags
                    .error_at(AttributePath::attr("store"), "Invalid store", e.to_string());
                return None;
            }
        };
        match audit::read(store.as_ref(), &filter).await {
            Ok(records) => {
                m.records = Attr::Known(records.into_iter().map(Entry::from).collect());
                Some(m)
            }
            Err(e) => {
                ctx.diags.error("Cannot read the audit log", e.to_string());
                None
            }
        }
    }
}
