//! Governance through real Terraform: approvals enforced at plan (missing, expired, copied to
//! another version, left behind by a replaced artifact, revoked), separation of duties, and the
//! audit trail of a canary rollout and a rollback, on a local store and an S3 store (moto,
//! with two IAM identities).

use crate::common;

use std::path::{Path, PathBuf};

use common::emulators::{self, AWS_PROFILE};
use common::{acc, check, cluster_and_store, qs, repo, Local};
use modelplane_provider::governance::approval::Approval;
use tfplugin::acctest::{attr_equals, attr_matches, ImportStep, Shown, Step, TestCase};

const ENDPOINT: &str = "modelplane_endpoint.e";
const AUDIT: &str = "data.modelplane_audit.log";
const REQUEST: &str = r#"{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}"#;
/// The endpoint's token: it must never reach the audit log or an approval.
const TOKEN: &str = "tok-governance-7f3a9c1e5b2d";

fn models() -> String {
    format!(
        r#"
resource "modelplane_model" "v" {{
  for_each = {{ "1" = {:?}, "2" = {:?} }}
  store    = modelplane_model_store.s.id
  name     = "iris"
  version  = each.key
  source   = each.value
}}
"#,
        qs("model/iris-v1.onnx"),
        qs("model/iris-v2.onnx")
    )
}

/// An endpoint that requires approvals, `stable` on version 1 and `canary` on version 2, with
/// the benchmark hook and its SLO.
fn endpoint(stable: i64, canary: i64, slo: &str) -> String {
    endpoint_of(
        (
            "modelplane_model.v[\"1\"].id",
            "modelplane_model.v[\"2\"].id",
        ),
        stable,
        canary,
        slo,
    )
}

/// The endpoint serving `models` (references to a version's id), the approvals' `approved_model`
/// where they are made in the same configuration.
fn endpoint_of(models: (&str, &str), stable: i64, canary: i64, slo: &str) -> String {
    let (m1, m2) = models;
    format!(
        r#"
resource "modelplane_endpoint" "e" {{
  name             = "iris"
  cluster          = modelplane_gpu_cluster.c.id
  require_approval = true
  token_wo         = {TOKEN:?}

  variant {{
    name   = "stable"
    model  = {m1}
    weight = {stable}
  }}

  variant {{
    name   = "canary"
    model  = {m2}
    weight = {canary}
  }}

  benchmark {{
    payload     = {REQUEST:?}
    concurrency = 2
    duration    = "500ms"
    warmup      = "100ms"
    slo {{
{slo}    }}
  }}
}}
"#
    )
}

/// Version 1 served through its approval (made in the same configuration), version 2 by id.
const E1: (&str, &str) = (
    "modelplane_model_approval.a1.approved_model",
    "modelplane_model.v[\"2\"].id",
);
/// Both versions served through their approvals.
const E12: (&str, &str) = (
    "modelplane_model_approval.a1.approved_model",
    "modelplane_model_approval.a2.approved_model",
);

const GOOD_SLO: &str = "      p99_ms  = 5000\n      min_rps = 1\n";
/// A change that is not a change of split.
const OTHER_SLO: &str = "      p99_ms  = 4000\n      min_rps = 1\n";
const BAD_SLO: &str = "      min_rps = 1000000000\n";

fn approval(key: &str, reference: &str, extra: &str) -> String {
    format!(
        "\nresource \"modelplane_model_approval\" \"a{key}\" {{\n  model     = modelplane_model.v[\"{key}\"].id\n  reference = {reference:?}\n{extra}}}\n"
    )
}

fn audit(filter: &str) -> String {
    format!(
        "\ndata \"modelplane_audit\" \"log\" {{\n  store = modelplane_model_store.s.id\n{filter}}}\n"
    )
}

/// The approval files in a local version's folder.
fn approvals_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        n.starts_with("approval.") && n.ends_with(".json")
    });
    v.sort();
    v
}

fn str_attr(s: &Shown, addr: &str, path: &str) -> String {
    s.attr(addr, path)
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The audit records' `field`s, in order.
fn column(s: &Shown, field: &str) -> Vec<String> {
    let n = s
        .attr(AUDIT, "records.#")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    (0..n)
        .map(|i| str_attr(s, AUDIT, &format!("records.{i}.{field}")))
        .collect()
}

/// Every file under `dir`, searched for the endpoint's token.
fn no_token_under(dir: &Path) -> Result<(), String> {
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                seen += 1;
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                if text.contains(TOKEN) {
                    return Err(format!("{} holds the endpoint's token", p.display()));
                }
            }
        }
    }
    if seen == 0 {
        return Err(format!("no records under {}", dir.display()));
    }
    Ok(())
}

/// On a local store: every way an approval can be missing or invalid is refused at plan, naming
/// the version and why; a canary, a rollback and a revocation leave the records in order; and
/// with separation of duties, the registering identity's approvals stop counting.
#[test]
fn approvals_gate_endpoints_and_the_audit_trail_records_changes() {
    let l = Local::new("governance");
    let store = l.path().join("stores/models");
    let (v1, v2) = (store.join("iris/1"), store.join("iris/2"));
    let base = format!("{}{}", cluster_and_store(&l), models());
    let a1 = approval("1", "CHG-1", "  approver  = \"risk board\"\n");
    let a2 = approval("2", "CHG-2", "");
    let separation_provider = l.provider().replacen(
        "\n}\n",
        "\n  governance {\n    separation_of_duties = true\n  }\n}\n",
        1,
    );
    let with_separation = base.replacen(&l.provider(), &separation_provider, 1);
    // An approval that expired yesterday, sealed like a real one.
    let expired = {
        let v2 = v2.clone();
        move |_: &Path| {
            let sha = modelplane_serve::signature::file_digest(&v2.join("model.onnx"))
                .unwrap()
                .0;
            let a = Approval {
                id: "1-expired".into(),
                name: "iris".into(),
                version: "2".into(),
                model_sha256: sha,
                approved_by: "os:someone@else".into(),
                approver: "os:someone@else".into(),
                registered_by: None,
                reference: "CHG-OLD".into(),
                approved_at: "2026-01-01T00:00:00Z".into(),
                expires_at: Some("2026-06-01T00:00:00Z".into()),
                digest: String::new(),
            }
            .sealed();
            std::fs::write(v2.join(a.file_name()), serde_json::to_vec(&a).unwrap()).unwrap();
        }
    };
    // Version 1's approval, copied into version 2's folder.
    let copied = {
        let (v1, v2) = (v1.clone(), v2.clone());
        move |_: &Path| {
            for f in approvals_in(&v2) {
                std::fs::remove_file(f).unwrap();
            }
            let from = approvals_in(&v1).pop().expect("version 1 has an approval");
            std::fs::copy(&from, v2.join(from.file_name().unwrap())).unwrap();
        }
    };
    let clean = {
        let v2 = v2.clone();
        move |_: &Path| {
            for f in approvals_in(&v2) {
                std::fs::remove_file(f).unwrap();
            }
        }
    };
    // Version 2's approval edited in the store (its expiry pushed out), then put back.
    let saved = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let edit = {
        let (v2, saved) = (v2.clone(), saved.clone());
        move |_: &Path| {
            let f = approvals_in(&v2).pop().expect("version 2 has an approval");
            let bytes = std::fs::read(&f).unwrap();
            let mut a: Approval = serde_json::from_slice(&bytes).unwrap();
            a.expires_at = Some("2099-01-01T00:00:00Z".into());
            std::fs::write(&f, serde_json::to_vec(&a).unwrap()).unwrap();
            *saved.lock().unwrap() = bytes;
        }
    };
    let restore = {
        let v2 = v2.clone();
        move |_: &Path| {
            let f = approvals_in(&v2).pop().expect("version 2 has an approval");
            std::fs::write(f, &*saved.lock().unwrap()).unwrap();
        }
    };
    // By id, through the store (so the store outlives them at destroy).
    let (id1, id2) = (
        "\"${modelplane_model_store.s.id}/iris/1\"".to_string(),
        "\"${modelplane_model_store.s.id}/iris/2\"".to_string(),
    );
    let unmanaged = format!(
        "{}\nremoved {{\n  from = modelplane_model.v\n  lifecycle {{\n    destroy = false\n  }}\n}}\n{}{}",
        cluster_and_store(&l),
        approval("1", "CHG-1", "  approver  = \"risk board\"\n").replace("modelplane_model.v[\"1\"].id", &id1),
        endpoint_of((&id1, &id2), 100, 0, GOOD_SLO)
    );
    let replace = {
        let (v1, other) = (
            v1.clone(),
            std::fs::read(repo().join("examples/quickstart/model/iris-v2.onnx")).unwrap(),
        );
        move |_: &Path| std::fs::write(v1.join("model.onnx"), &other).unwrap()
    };
    let restore_v1 = {
        let (v1, original) = (
            v1.clone(),
            std::fs::read(repo().join("examples/quickstart/model/iris-v1.onnx")).unwrap(),
        );
        move |_: &Path| std::fs::write(v1.join("model.onnx"), &original).unwrap()
    };
    // Unchanged but for a new approval by the identity that registered version 1.
    let self_approval = format!(
        "{}{}",
        unmanaged.replacen(&l.provider(), &separation_provider, 1),
        approval("9", "CHG-9", "").replace("modelplane_model.v[\"9\"].id", &id1)
    );
    let log = store.join(".modelplane/audit");
    acc(
        "governance_local",
        TestCase {
            steps: vec![
                Step::new(base.clone()).check(check(|s| {
                    let who = str_attr(s, "modelplane_model.v[\"1\"]", "registered_by");
                    if !who.starts_with("os:") || !who.contains('@') {
                        return Err(format!("registered_by {who:?}, want os:USER@HOST"));
                    }
                    Ok(())
                })),
                // No approval at all.
                Step::new(format!("{base}{}", endpoint(100, 0, GOOD_SLO))).expect_error(
                    "Model version not approved(.|\\n)*variant stable serves iris/1(.|\\n)*no approval is recorded for it",
                ),
                // An approval cannot be made already expired.
                Step::new(format!("{base}{}", approval("1", "CHG-1", "  expires_at = \"2020-01-01T00:00:00Z\"\n")))
                    .expect_error("Approval already expired(.|\\n)*expires_at 2020-01-01T00:00:00Z is in the past"),
                Step::new(format!("{base}{}", approval("1", "CHG-1", "  expires_at = \"next tuesday\"\n")))
                    .expect_error("Invalid expiry(.|\\n)*not an RFC 3339 time"),
                // Version 1 approved: the endpoint serves it; version 2 takes no traffic.
                Step::new(format!("{base}{a1}{}", endpoint_of(E1, 100, 0, GOOD_SLO)))
                    .check(attr_equals("modelplane_model_approval.a1", "status", "valid"))
                    .check(attr_equals("modelplane_model_approval.a1", "approver", "risk board"))
                    .check(attr_equals("modelplane_model_approval.a1", "reference", "CHG-1"))
                    .check(attr_matches("modelplane_model_approval.a1", "digest", "^sha256:[0-9a-f]{64}$"))
                    .check(check(|s| {
                        let (by, reg) = (
                            str_attr(s, "modelplane_model_approval.a1", "approved_by"),
                            str_attr(s, "modelplane_model_approval.a1", "registered_by"),
                        );
                        if by.is_empty() || by != reg {
                            return Err(format!("approved_by {by:?}, registered_by {reg:?}: both this OS user"));
                        }
                        Ok(())
                    }))
                    .check(attr_equals(ENDPOINT, "status", "running"))
                    .import(ImportStep {
                        address: "modelplane_model_approval.a1".into(),
                        id: None,
                        id_from: Some(std::sync::Arc::new(|s: &Shown| {
                            s.attr("modelplane_model_approval.a1", "id")
                                .and_then(|v| v.as_str().map(String::from))
                        })),
                        ignore: vec![],
                    }),
                // A canary of an unapproved version.
                Step::new(format!("{base}{a1}{}", endpoint_of(E1, 90, 10, GOOD_SLO))).expect_error(
                    "Model version not approved(.|\\n)*variant canary serves iris/2(.|\\n)*no approval is recorded",
                ),
                // An expired approval.
                Step::new(format!("{base}{a1}{}", endpoint_of(E1, 90, 10, GOOD_SLO)))
                    .pre(expired)
                    .expect_error("variant canary serves iris/2(.|\\n)*approval 1-expired \\(CHG-OLD\\) expired at 2026-06-01T00:00:00Z"),
                // Version 1's approval copied to version 2.
                Step::new(format!("{base}{a1}{}", endpoint_of(E1, 90, 10, GOOD_SLO)))
                    .pre(copied)
                    .expect_error("variant canary serves iris/2(.|\\n)*\\(CHG-1\\) was made for iris/1 and copied here"),
                // Approved: the canary rolls out.
                Step::new(format!("{base}{a1}{a2}{}", endpoint_of(E12, 90, 10, GOOD_SLO)))
                    .pre(clean)
                    .check(attr_equals("modelplane_model_approval.a2", "status", "valid"))
                    .check(attr_equals(ENDPOINT, "variant.1.weight", 10)),
                // The approval edited in the store after it was made.
                Step::new(format!("{base}{a1}{a2}{}", endpoint_of(E12, 80, 20, GOOD_SLO)))
                    .pre(edit)
                    .expect_error("variant canary serves iris/2(.|\\n)*\\(CHG-2\\) was edited after it was made"),
                // A change that misses its SLO is rolled back.
                Step::new(format!("{base}{a1}{a2}{}", endpoint_of(E12, 50, 50, BAD_SLO)))
                    .pre(restore)
                    .expect_error("SLO missed(.|\\n)*serves its previous configuration again"),
                // Revoking version 2's approval (with the canary taken down to 0).
                Step::new(format!("{base}{a1}{}", endpoint_of(E1, 100, 0, GOOD_SLO))),
                // ... shows in the endpoint's next plan.
                Step::new(format!("{base}{a1}{}", endpoint_of(E1, 90, 10, GOOD_SLO)))
                    .expect_error("variant canary serves iris/2(.|\\n)*no approval is recorded"),
                // The trail, oldest first.
                Step::new(format!("{base}{a1}{}{}", endpoint_of(E1, 100, 0, GOOD_SLO), audit("  endpoint = \"iris\"\n")))
                    .check(check(|s| {
                        let want = ["create", "update", "rollback", "update"];
                        let got = column(s, "action");
                        if got != want {
                            return Err(format!("endpoint actions {got:?}, want {want:?}"));
                        }
                        let outcomes = column(s, "outcome");
                        if outcomes != ["applied", "applied", "rolled back", "applied"] {
                            return Err(format!("outcomes {outcomes:?}"));
                        }
                        let split = |i: usize, when: &str, v: &str| {
                            s.attr(AUDIT, &format!("records.{i}.split_{when}.{v}")).and_then(|x| x.as_i64())
                        };
                        // The canary (0 -> 10), the rolled-back try (10 -> 50), the revocation (10 -> 0).
                        let seen = [
                            (split(1, "before", "canary"), split(1, "after", "canary")),
                            (split(2, "before", "canary"), split(2, "after", "canary")),
                            (split(3, "before", "canary"), split(3, "after", "canary")),
                        ];
                        if seen != [(Some(0), Some(10)), (Some(10), Some(50)), (Some(10), Some(0))] {
                            return Err(format!("splits {seen:?}"));
                        }
                        if str_attr(s, AUDIT, "records.0.changed.0").is_empty() {
                            return Err("the create names no settings".into());
                        }
                        if !str_attr(s, AUDIT, "records.2.detail").contains("SLO missed") {
                            return Err(format!("rollback detail {:?}", str_attr(s, AUDIT, "records.2.detail")));
                        }
                        match s.attr(AUDIT, "records.1.benchmark.requests").and_then(|v| v.as_i64()) {
                            Some(n) if n > 0 => {}
                            other => return Err(format!("the canary's benchmark requests {other:?}")),
                        }
                        let actors = column(s, "actor");
                        if actors.iter().any(|a| !a.starts_with("os:")) {
                            return Err(format!("actors {actors:?}"));
                        }
                        Ok(())
                    }))
                    .check(check(move |_| no_token_under(&log))),
                Step::new(format!("{base}{a1}{}{}", endpoint_of(E1, 100, 0, GOOD_SLO), audit("  action = \"approve\"\n")))
                    .check(check(|s| {
                        let refs = column(s, "approval");
                        if refs.len() != 2 || !refs[0].ends_with("(CHG-1)") || !refs[1].ends_with("(CHG-2)") {
                            return Err(format!("approvals {refs:?}"));
                        }
                        Ok(())
                    })),
                Step::new(format!("{base}{a1}{}{}", endpoint_of(E1, 100, 0, GOOD_SLO), audit("  model  = \"iris/2\"\n  action = \"revoke\"\n")))
                    .check(attr_equals(AUDIT, "records.#", 1))
                    .check(attr_matches(AUDIT, "records.0.approval", "\\(CHG-2\\)$")),
                // Separation of duties: this OS user registered version 1, so its approval stops
                // counting: a change to the endpoint is refused. (Unchanged, the endpoint is only
                // warned about: the final `terraform destroy` plans this configuration first.)
                Step::new(format!("{with_separation}{a1}{}", endpoint_of(E1, 100, 0, OTHER_SLO))).expect_error(
                    "variant stable serves iris/1(.|\\n)*\\(CHG-1\\) was made by os:[^ ]+, the identity that registered the version; separation of duties asks for another",
                ),
                // The serving workspace stops managing the versions (they stay in the store) and
                // names them by id, as a team that does not own the models would ...
                Step::new(unmanaged.clone()),
                // ... and the artifact approved is replaced in the store.
                Step::new(unmanaged.replace(GOOD_SLO, OTHER_SLO)).pre(replace).expect_error(
                    "variant stable serves iris/1(.|\\n)*\\(CHG-1\\) approved sha256 [0-9a-f]{64}, but the artifact in the store now has sha256 [0-9a-f]{64}: it was replaced after approval",
                ),
                // With the artifact put back, the identity that registered it cannot approve it.
                Step::new(self_approval).pre(restore_v1).expect_error(
                    "Separation of duties(.|\\n)*iris/1 was registered by os:[^ ]+, the identity applying this approval",
                ),
            ],
            ..Default::default()
        },
    );
}

/// The IAM user `name` in moto with an access key, as a profile in the tests' shared
/// credentials file: another identity for the same account.
fn moto_user(moto: &emulators::Emulator, name: &str) -> String {
    let profile = format!("{name}-{}", moto.port);
    let key = common::block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .profile_name(AWS_PROFILE)
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(moto.url())
            .load()
            .await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        iam.create_user().user_name(name).send().await.unwrap();
        let k = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .unwrap();
        let k = k.access_key().unwrap();
        (
            k.access_key_id().to_string(),
            k.secret_access_key().to_string(),
        )
    });
    let creds = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aws/credentials");
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(creds)
        .unwrap();
    // One write: other tests read this file at the same time.
    f.write_all(
        format!(
            "\n[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            key.0, key.1
        )
        .as_bytes(),
    )
    .unwrap();
    profile
}

/// On an S3 store (moto): the version registered by one IAM identity, approved by another (the
/// approving team's provider configuration); the registering identity cannot approve; a canary
/// and a rollback recorded in order, one object per record, each naming its identity.
#[test]
fn approvals_and_audit_on_s3_with_two_identities() {
    const TEST: &str = "approvals_and_audit_on_s3_with_two_identities";
    let Some(moto) = emulators::moto(TEST) else {
        return;
    };
    let l = Local::new("governance-s3");
    let approver = moto_user(&moto, "approver");
    let provider = |alias: &str, profile: &str| {
        format!(
            "provider \"modelplane\" {{\n{alias}  local {{\n    state_dir = {:?}\n  }}\n  aws {{\n    region       = \"us-east-1\"\n    profile      = {profile:?}\n    endpoint_url = {:?}\n  }}\n  governance {{\n    separation_of_duties = true\n  }}\n}}\n",
            l.path().display().to_string(),
            moto.url()
        )
    };
    let base = format!(
        "{}{}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name     = \"c\"\n  platform = \"local\"\n}}\n\nresource \"modelplane_model_store\" \"s\" {{\n  name          = \"governed-models\"\n  backend       = \"s3\"\n  force_destroy = true\n}}\n{}",
        provider("", AWS_PROFILE),
        provider("  alias = \"approvers\"\n", &approver),
        models()
    );
    let by_approvers = |key: &str, reference: &str| {
        approval(key, reference, "  provider  = modelplane.approvers\n")
    };
    let (a1, a2) = (by_approvers("1", "CHG-1"), by_approvers("2", "CHG-2"));
    acc(
        "governance_s3",
        TestCase {
            steps: vec![
                Step::new(format!("{base}{a1}{}", endpoint_of(E1, 100, 0, GOOD_SLO)))
                    .check(attr_matches("modelplane_model_approval.a1", "approved_by", "^aws:arn:aws:iam::\\d{12}:user/approver$"))
                    .check(check(|s| {
                        let reg = str_attr(s, "modelplane_model.v[\"1\"]", "registered_by");
                        let by = str_attr(s, "modelplane_model_approval.a1", "approved_by");
                        if !reg.starts_with("aws:arn:aws:") || reg == by {
                            return Err(format!("registered_by {reg:?}, approved_by {by:?}"));
                        }
                        Ok(())
                    }))
                    .check(attr_equals("modelplane_model_approval.a1", "status", "valid")),
                // The identity that registered version 2 cannot approve it.
                Step::new(format!("{base}{a1}{}{}", approval("2", "CHG-2", ""), endpoint_of(E1, 100, 0, GOOD_SLO)))
                    .expect_error("Separation of duties(.|\\n)*iris/2 was registered by aws:arn:aws:[^ ]+, the identity applying this approval"),
                Step::new(format!("{base}{a1}{a2}{}", endpoint_of(E12, 90, 10, GOOD_SLO))),
                Step::new(format!("{base}{a1}{a2}{}", endpoint_of(E12, 50, 50, BAD_SLO)))
                    .expect_error("SLO missed(.|\\n)*serves its previous configuration again"),
                Step::new(format!("{base}{a1}{a2}{}{}", endpoint_of(E12, 90, 10, GOOD_SLO), audit(""))).check(check(|s| {
                    let actions = column(s, "action");
                    let want = ["approve", "create", "approve", "update", "rollback"];
                    if actions != want {
                        return Err(format!("actions {actions:?}, want {want:?}"));
                    }
                    let actors = column(s, "actor");
                    let approver = &actors[0];
                    if !approver.ends_with(":user/approver") || actors[2] != *approver {
                        return Err(format!("approval actors {actors:?}"));
                    }
                    if actors[1] == *approver || actors[3] != actors[1] || actors[4] != actors[1] {
                        return Err(format!("endpoint actors {actors:?}"));
                    }
                    Ok(())
                })),
            ],
            ..Default::default()
        },
    );
}

/// The quickstart, as a module, governed by its variables alone: `require_approval` refuses
/// the unapproved canary, `approvals` lets it through, the audit trail shows the applies that
/// followed, and the fairness gate (`max_disparity`) refuses version 1 for one site.
#[test]
fn the_quickstart_is_governed_by_its_variables() {
    let l = Local::new("governance-quickstart");
    let qs_dir = repo().join("examples/quickstart");
    let mut files = std::collections::BTreeMap::new();
    for rel in [
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "versions.tf",
        "model/iris-v1.onnx",
        "model/iris-v2.onnx",
        "data/train.csv",
        "data/holdout.csv",
        "data/holdout_sites.csv",
        "data/request.json",
    ] {
        files.insert(
            format!("quickstart/{rel}"),
            std::fs::read(qs_dir.join(rel)).unwrap(),
        );
    }
    let qs = |vars: &str| {
        format!(
            "module \"qs\" {{\n  source    = \"./quickstart\"\n  state_dir = {:?}\n{vars}}}\n",
            l.path().display().to_string()
        )
    };
    const HISTORY: &str = "module.qs.data.modelplane_audit.history";
    let actions = |want: &'static [&'static str]| {
        check(move |s: &Shown| {
            let n = s
                .attr(HISTORY, "records.#")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            let got: Vec<String> = (0..n)
                .map(|i| str_attr(s, HISTORY, &format!("records.{i}.action")))
                .collect();
            if got != want {
                return Err(format!("history {got:?}, want {want:?}"));
            }
            Ok(())
        })
    };
    let approved = "  require_approval = true\n  approvals        = { \"1\" = \"CHG-1\", \"2\" = \"CHG-2\" }\n";
    acc(
        "governance_quickstart",
        TestCase {
            files,
            steps: vec![
                Step::new(qs("  require_approval = true\n  approvals        = { \"1\" = \"CHG-1\" }\n")).expect_error(
                    "Model version not approved(.|\\n)*variant canary serves iris/2(.|\\n)*no approval is recorded",
                ),
                Step::new(qs(approved)).check(actions(&["approve", "approve", "create"])),
                Step::new(qs(&format!("{approved}  canary_weight    = 50\n")))
                    .check(actions(&["approve", "approve", "create", "update"]))
                    .check(attr_equals(HISTORY, "records.3.split_after.canary", 50)),
                Step::new(qs(&format!("{approved}  canary_weight    = 50\n  max_disparity    = 0.1\n"))).expect_error(
                    "Model failed validation(.|\\n)*disparity 0\\.133333 between site=2 \\(1\\.000000\\) and site=0 \\(0\\.866667\\) is over its maximum 0\\.1",
                ),
                Step::new(qs(&format!("{approved}  canary_weight    = 50\n  slice_min_accuracy = 0.85\n  max_disparity    = 0.15\n")))
                    .check(attr_equals("module.qs.modelplane_model.iris[\"1\"]", "validation_report.slices.#", 3))
                    .check(attr_equals("module.qs.modelplane_model.iris[\"1\"]", "validation_report.passed", true)),
            ],
            ..Default::default()
        },
    );
}
