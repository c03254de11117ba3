//! Approvals of model versions. One approval is one file `approval.ID.json` in the version's
//! folder, beside `model.json`. It records who approved (the credential chain's identity, and
//! the approver the configuration names), why (a reference: a ticket, a change request), until
//! when, and the sha256 of the version's artifact; its `digest` covers every field, so an
//! approval edited after the fact, copied to another version, or left behind when the
//! artifact was replaced is not valid.
//!
//! The digest makes tampering visible; it is not a signature against someone who may write to
//! the store (they could recompute it). Who may write approvals is the store's access policy:
//! give the approving team write access to `*/approval.*.json` only, and the serving team none.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::stores::{Store, StoreError};

/// An approval as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub name: String,
    pub version: String,
    /// sha256 of the version's `model.onnx` when it was approved.
    pub model_sha256: String,
    /// The identity that made the approval (credential chain).
    pub approved_by: String,
    /// Who approves, as the configuration names them (a person, a board); `approved_by` when
    /// unset.
    pub approver: String,
    /// The identity that registered the version, as model.json recorded it.
    pub registered_by: Option<String>,
    /// A ticket or change reference.
    pub reference: String,
    pub approved_at: String,
    pub expires_at: Option<String>,
    /// `sha256:HEX` of every other field.
    pub digest: String,
}

impl Approval {
    /// The digest of the approval's fields (all but `digest`), in a fixed order.
    pub fn compute_digest(&self) -> String {
        let fields = serde_json::json!([
            "modelplane-approval-v1",
            self.id,
            self.name,
            self.version,
            self.model_sha256,
            self.approved_by,
            self.approver,
            self.registered_by,
            self.reference,
            self.approved_at,
            self.expires_at,
        ]);
        format!("sha256:{}", hex::encode(Sha256::digest(fields.to_string())))
    }

    pub fn sealed(mut self) -> Self {
        self.digest = self.compute_digest();
        self
    }

    pub fn file_name(&self) -> String {
        file_name(&self.id)
    }
}

pub fn file_name(id: &str) -> String {
    format!("approval.{id}.json")
}

/// A new approval ID: time-ordered and unique.
pub fn new_id(now: time::OffsetDateTime) -> String {
    use rand::RngCore;
    let mut b = [0u8; 4];
    rand::rng().fill_bytes(&mut b);
    format!(
        "{}-{}",
        now.unix_timestamp_nanos() / 1_000_000,
        hex::encode(b)
    )
}

/// What the version's folder says about it: its recorded sha256 and who registered it.
#[derive(Clone, Debug, Default)]
pub struct VersionFacts {
    pub recorded_sha256: String,
    pub actual_sha256: Option<String>,
    pub registered_by: Option<String>,
}

pub async fn facts(
    store: &dyn Store,
    name: &str,
    version: &str,
) -> Result<Option<VersionFacts>, StoreError> {
    let Some(meta) = store.get(name, version, "model.json").await? else {
        return Ok(None);
    };
    let j: serde_json::Value = serde_json::from_slice(&meta).unwrap_or_default();
    let actual = store
        .digest(name, version, "model.onnx")
        .await?
        .map(|(sha, _)| sha);
    Ok(Some(VersionFacts {
        recorded_sha256: j["sha256"].as_str().unwrap_or_default().to_string(),
        actual_sha256: actual,
        registered_by: j["registered_by"].as_str().map(String::from),
    }))
}

/// Why one approval does not count, or `None` when it does.
pub fn problem(
    a: &Approval,
    name: &str,
    version: &str,
    facts: &VersionFacts,
    separation_of_duties: bool,
    now: time::OffsetDateTime,
) -> Option<String> {
    let who = format!("approval {} ({})", a.id, a.reference);
    if a.digest != a.compute_digest() {
        return Some(format!(
            "{who} was edited after it was made (its digest does not match its fields)"
        ));
    }
    if a.name != name || a.version != version {
        return Some(format!(
            "{who} was made for {}/{} and copied here",
            a.name, a.version
        ));
    }
    if a.model_sha256 != facts.recorded_sha256 {
        return Some(format!(
            "{who} approved sha256 {}, but model.json records {}",
            a.model_sha256, facts.recorded_sha256
        ));
    }
    match &facts.actual_sha256 {
        Some(actual) if actual != &a.model_sha256 => {
            return Some(format!(
                "{who} approved sha256 {}, but the artifact in the store now has sha256 {actual}: it was replaced after approval",
                a.model_sha256
            ))
        }
        None => return Some(format!("{who}: the version's model.onnx is missing")),
        _ => {}
    }
    if let Some(exp) = &a.expires_at {
        match super::parse_time(exp) {
            Ok(t) if t <= now => return Some(format!("{who} expired at {exp}")),
            Ok(_) => {}
            Err(e) => return Some(format!("{who} has an unreadable expiry: {e}")),
        }
    }
    let registered_by = facts.registered_by.as_ref().or(a.registered_by.as_ref());
    if separation_of_duties && registered_by == Some(&a.approved_by) {
        return Some(format!(
            "{who} was made by {}, the identity that registered the version; separation of duties asks for another",
            a.approved_by
        ));
    }
    None
}

/// The approvals stored beside a version, with the ones that cannot be read as problems.
pub async fn list(
    store: &dyn Store,
    name: &str,
    version: &str,
) -> Result<(Vec<Approval>, Vec<String>), StoreError> {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for f in store.list_files(name, version).await? {
        if !(f.starts_with("approval.") && f.ends_with(".json")) {
            continue;
        }
        match store.get(name, version, &f).await? {
            None => {}
            Some(bytes) => match serde_json::from_slice::<Approval>(&bytes) {
                Ok(a) => found.push(a),
                Err(e) => unreadable.push(format!("{f} cannot be read ({e})")),
            },
        }
    }
    Ok((found, unreadable))
}

/// The verdict on a version: the approval that makes it valid, or every reason none does.
pub async fn verify(
    store: &dyn Store,
    name: &str,
    version: &str,
    separation_of_duties: bool,
    now: time::OffsetDateTime,
) -> Result<Result<Approval, Vec<String>>, StoreError> {
    let Some(facts) = facts(store, name, version).await? else {
        return Ok(Err(vec![format!("{name}/{version} is not in the store")]));
    };
    let (approvals, mut problems) = list(store, name, version).await?;
    if approvals.is_empty() && problems.is_empty() {
        return Ok(Err(vec!["no approval is recorded for it".into()]));
    }
    for a in approvals {
        match problem(&a, name, version, &facts, separation_of_duties, now) {
            None => return Ok(Ok(a)),
            Some(p) => problems.push(p),
        }
    }
    Ok(Err(problems))
}

/// Checks that every served variant's version has a valid approval: `(path of its model
/// attribute, variant name, model id)`; an error at the path for each that has none.
pub async fn require(
    served: &[(tfplugin::AttributePath, &str, &tfplugin::Attr<String>)],
    conn: &crate::stores::Connection,
    separation_of_duties: bool,
    diags: &mut tfplugin::Diagnostics,
) {
    let now = super::now();
    for (at, variant, model) in served {
        let tfplugin::Attr::Known(id) = model else {
            continue;
        };
        let Ok(vid) = id.parse::<crate::ids::VersionId>() else {
            continue;
        };
        let Ok(store) = crate::stores::open(&vid.store, conn) else {
            continue;
        };
        match verify(store.as_ref(), &vid.name, &vid.version, separation_of_duties, now).await {
            Ok(Ok(_)) => {}
            Ok(Err(problems)) => diags.error_at(
                at.clone(),
                "Model version not approved",
                format!(
                    "variant {variant} serves {}/{}, which may only be served approved (require_approval): {}. Approve it with a modelplane_model_approval (model = its id; in the same configuration, serve its `approved_model` so the endpoint waits for it), or give the variant weight 0.",
                    vid.name,
                    vid.version,
                    problems.join("; ")
                ),
            ),
            Err(e) => diags.error_at(
                at.clone(),
                "Cannot check the approval",
                format!("variant {variant}: {e}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval() -> Approval {
        Approval {
            id: "1-ab".into(),
            name: "iris".into(),
            version: "2".into(),
            model_sha256: "aa".into(),
            approved_by: "os:bob@h".into(),
            approver: "risk board".into(),
            registered_by: Some("os:ann@h".into()),
            reference: "CHG-1".into(),
            approved_at: "2026-12-01T00:00:00Z".into(),
            expires_at: Some("2027-01-01T00:00:00Z".into()),
            digest: String::new(),
        }
        .sealed()
    }

    fn facts(actual: &str) -> VersionFacts {
        VersionFacts {
            recorded_sha256: "aa".into(),
            actual_sha256: Some(actual.into()),
            registered_by: Some("os:ann@h".into()),
        }
    }

    fn at(s: &str) -> time::OffsetDateTime {
        crate::governance::parse_time(s).unwrap()
    }

    #[test]
    fn a_sealed_approval_counts_until_it_expires() {
        let a = approval();
        let now = at("2026-12-15T00:00:00Z");
        assert_eq!(problem(&a, "iris", "2", &facts("aa"), true, now), None);
        let late = problem(
            &a,
            "iris",
            "2",
            &facts("aa"),
            true,
            at("2027-01-01T00:00:00Z"),
        );
        assert!(late.unwrap().contains("expired at 2027-01-01T00:00:00Z"));
    }

    #[test]
    fn edits_moves_and_replaced_artifacts_are_refused() {
        let now = at("2026-12-15T00:00:00Z");
        let mut edited = approval();
        edited.expires_at = Some("2099-01-01T00:00:00Z".into());
        assert!(problem(&edited, "iris", "2", &facts("aa"), false, now)
            .unwrap()
            .contains("edited"));
        assert!(problem(&approval(), "iris", "3", &facts("aa"), false, now)
            .unwrap()
            .contains("made for iris/2 and copied here"));
        assert!(problem(&approval(), "iris", "2", &facts("bb"), false, now)
            .unwrap()
            .contains("replaced after approval"));
    }

    #[test]
    fn separation_of_duties_compares_identities() {
        let now = at("2026-12-15T00:00:00Z");
        let mut own = approval();
        own.approved_by = "os:ann@h".into();
        let own = own.sealed();
        assert_eq!(problem(&own, "iris", "2", &facts("aa"), false, now), None);
        assert!(problem(&own, "iris", "2", &facts("aa"), true, now)
            .unwrap()
            .contains("separation of duties"));
    }
}
