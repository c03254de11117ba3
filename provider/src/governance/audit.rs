//! The audit trail: one JSON object per record under `.modelplane/audit/` in the model store
//! (a name no model can have), keyed by time and a random suffix, so concurrent writers on S3
//! or Azure never overwrite each other and the keys sort in time order. Records are only ever
//! added; nothing here rewrites or deletes one. A record holds who, what, when and the outcome:
//! the split before and after, the names of the settings that changed (with their values for
//! the settings that cannot hold a secret), benchmark figures; never a token, a key or an
//! environment value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::platforms::rollout::BenchResult;
use crate::stores::{Store, StoreError};

/// Where the log lives, as the (name, version) folder of the store's file API.
const FOLDER: (&str, &str) = (".modelplane", "audit");

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, UTC.
    pub time: String,
    /// `create`, `update`, `rollback`, `delete` (endpoints); `approve`, `revoke` (approvals).
    pub action: String,
    /// The resource type: `modelplane_endpoint`, `modelplane_endpoint_model` or
    /// `modelplane_model_approval`.
    pub resource: String,
    /// The endpoint's ID, when the record is an endpoint's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Model versions involved, by role: a variant's name, `shadow`, or `approved`.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
    /// The identity that made the change.
    pub actor: String,
    /// `applied`, `rolled back` or `failed`.
    pub outcome: String,
    #[serde(default)]
    pub split_before: BTreeMap<String, i64>,
    #[serde(default)]
    pub split_after: BTreeMap<String, i64>,
    /// Names of the settings that changed.
    #[serde(default)]
    pub changed: Vec<String>,
    /// Before and after of the changed settings that cannot hold a secret.
    #[serde(default)]
    pub change: serde_json::Value,
    #[serde(default)]
    pub benchmark: Option<BenchResult>,
    /// The approval's ID and reference, for approval records.
    #[serde(default)]
    pub approval: Option<String>,
    /// Why it failed or was rolled back.
    #[serde(default)]
    pub detail: String,
}

/// The settings that differ between two views (setting name → value), in name order, and
/// their before and after, leaving out the values of the `opaque` ones (they may hold secrets:
/// only their names are recorded). A missing view (create, delete) is all nulls.
pub fn diff(
    before: Option<&BTreeMap<&'static str, serde_json::Value>>,
    after: Option<&BTreeMap<&'static str, serde_json::Value>>,
    opaque: &[&str],
) -> (Vec<String>, serde_json::Value) {
    let null = serde_json::Value::Null;
    let keys: std::collections::BTreeSet<&str> = before
        .into_iter()
        .chain(after)
        .flat_map(|m| m.keys().copied())
        .collect();
    let mut changed = Vec::new();
    let mut change = serde_json::Map::new();
    for k in keys {
        let x = before.and_then(|m| m.get(k)).unwrap_or(&null);
        let y = after.and_then(|m| m.get(k)).unwrap_or(&null);
        if x == y {
            continue;
        }
        changed.push(k.to_string());
        if !opaque.contains(&k) {
            change.insert(k.into(), serde_json::json!({ "before": x, "after": y }));
        }
    }
    (changed, serde_json::Value::Object(change))
}

/// Stamps a record with the time and, unless it names one already, the caller's identity
/// against `store` (the OS user when the chain names no one), and appends it. A record that cannot be written is logged, never an
/// error: the change it describes is already made.
pub async fn write(store: &dyn Store, conn: &crate::stores::Connection, mut r: Record) {
    r.time = super::rfc3339(super::now());
    if r.actor.is_empty() {
        r.actor = super::identity::caller(&store.uri(), conn)
            .await
            .unwrap_or_else(|_| super::identity::os_user());
    }
    if let Err(e) = append(store, &r).await {
        tracing::warn!("audit record of {} not written: {e}", r.action);
    }
}

/// A time as the start of a record's key: `YYYYMMDDTHHMMSS.NNNNNNNNNZ`, which sorts as time.
fn time_key(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Appends a record; the key is its time (to the nanosecond) and a random suffix.
pub async fn append(store: &dyn Store, r: &Record) -> Result<(), StoreError> {
    // A store destroyed in the same apply is not brought back by its last record.
    if !store.exists().await? {
        return Err(StoreError::NotFound(format!(
            "{} no longer exists",
            store.uri()
        )));
    }
    use rand::RngCore;
    let t = super::parse_time(&r.time).unwrap_or_else(|_| super::now());
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    let key = format!("{}-{}.json", time_key(t), hex::encode(b));
    let body = serde_json::to_vec(r).unwrap_or_default();
    store.put_file(FOLDER.0, FOLDER.1, &key, body).await
}

/// What to read back.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub endpoint: Option<String>,
    /// A model name, `NAME/VERSION`, or a version's ID.
    pub model: Option<String>,
    pub since: Option<time::OffsetDateTime>,
    pub action: Option<String>,
}

impl Filter {
    fn keeps(&self, r: &Record) -> bool {
        if let Some(e) = &self.endpoint {
            let id = r.endpoint.as_deref().unwrap_or_default();
            // The endpoint's ID, or its name.
            if id != e && id.rsplit('/').next() != Some(e.as_str()) {
                return false;
            }
        }
        if let Some(m) = &self.model {
            let hit = r.models.values().any(|id| {
                id == m
                    || id.ends_with(&format!("/{m}"))
                    || id
                        .parse::<crate::ids::VersionId>()
                        .is_ok_and(|v| &v.name == m)
            });
            if !hit {
                return false;
            }
        }
        if let Some(a) = &self.action {
            if &r.action != a {
                return false;
            }
        }
        true
    }
}

/// The records that pass the filter, oldest first.
pub async fn read(store: &dyn Store, f: &Filter) -> Result<Vec<Record>, StoreError> {
    let keys = store.list_files(FOLDER.0, FOLDER.1).await?;
    let since_key = f.since.map(time_key);
    let mut out = Vec::new();
    for k in keys {
        if since_key.as_ref().is_some_and(|s| k.as_str() < s.as_str()) {
            continue;
        }
        let Some(bytes) = store.get(FOLDER.0, FOLDER.1, &k).await? else {
            continue;
        };
        let Ok(r) = serde_json::from_slice::<Record>(&bytes) else {
            continue;
        };
        if f.keeps(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_come_back_in_order_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::stores::local::LocalStore::new(dir.path().to_path_buf());
        let rec = |time: &str, action: &str, endpoint: &str, model: &str| Record {
            time: time.into(),
            action: action.into(),
            resource: "modelplane_endpoint".into(),
            endpoint: Some(format!("local/{endpoint}")),
            models: [("a".to_string(), format!("file:///m/{model}"))].into(),
            actor: "os:me@here".into(),
            outcome: "applied".into(),
            ..Default::default()
        };
        // Written out of order: read back by time.
        append(
            &store,
            &rec("2026-12-02T10:00:02Z", "update", "iris", "iris/2"),
        )
        .await
        .unwrap();
        append(
            &store,
            &rec("2026-12-02T10:00:01Z", "create", "iris", "iris/1"),
        )
        .await
        .unwrap();
        append(
            &store,
            &rec("2026-12-02T10:00:03Z", "create", "other", "wine/1"),
        )
        .await
        .unwrap();
        let all = read(&store, &Filter::default()).await.unwrap();
        let actions: Vec<_> = all.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["create", "update", "create"]);
        let iris = read(
            &store,
            &Filter {
                endpoint: Some("iris".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(iris.len(), 2);
        let v2 = read(
            &store,
            &Filter {
                model: Some("iris/2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(v2.len(), 1);
        let later = read(
            &store,
            &Filter {
                since: Some(crate::governance::parse_time("2026-12-02T10:00:02Z").unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(later.len(), 2);
        // The log is no model version.
        assert!(store.list().await.unwrap().is_empty());
    }
}
