//! Acceptance tests of `modelplane_model_store` through real Terraform.

use crate::common;

use common::emulators::{self, Emulator, AWS_PROFILE, AZURITE_ACCOUNT, AZURITE_KEY};
use common::stores::{predicts, served};
use common::{acc, block_on, check, Local};
use modelplane_serve::objects::{Auth, Location};
use object_store::ObjectStoreExt;
use tfplugin::acctest::{attr_equals, plan_action, plan_known, ImportStep, Step, TestCase};

const ADDR: &str = "modelplane_model_store.s";

fn config(l: &Local, name: &str, force: bool) -> String {
    format!("{}\nresource \"modelplane_model_store\" \"s\" {{\n  name          = {name:?}\n  backend       = \"local\"\n  force_destroy = {force}\n}}\n", l.provider())
}

#[test]
fn model_store_lifecycle() {
    let l = Local::new("store");
    let root = l.path();
    let uri = |n: &str| format!("file://{}/stores/{n}", root.display());
    let (r1, r2) = (root.clone(), root.clone());
    acc(
        "model_store_lifecycle",
        TestCase {
            steps: vec![
                Step::new(config(&l, "models", false))
                    .plan_check(plan_known(ADDR, "id", uri("models")))
                    .check(attr_equals(ADDR, "uri", uri("models")))
                    .check(check(move |_| {
                        if r1.join("stores/models").is_dir() {
                            Ok(())
                        } else {
                            Err("the directory was not created".into())
                        }
                    })),
                Step::new(config(&l, "models", true))
                    .plan_check(plan_action(ADDR, "update"))
                    .check(attr_equals(ADDR, "force_destroy", true)),
                Step::new(config(&l, "other", true))
                    .plan_check(plan_action(ADDR, "replace"))
                    .check(check(move |_| {
                        match (
                            r2.join("stores/models").exists(),
                            r2.join("stores/other").is_dir(),
                        ) {
                            (false, true) => Ok(()),
                            other => Err(format!("old store gone, new one there: {other:?}")),
                        }
                    }))
                    .import(ImportStep {
                        address: ADDR.into(),
                        id: Some(uri("other")),
                        id_from: None,
                        ignore: vec!["force_destroy".into()],
                    }),
            ],
            ..Default::default()
        },
    );
}

/// Destroy refuses a store that holds versions unless force_destroy is set, as
/// aws_s3_bucket does; a store deleted out of band is re-created.
#[test]
fn model_store_refuses_to_lose_models() {
    let l = Local::new("store-guard");
    let store = l.path().join("stores/guarded");
    let (s1, s2, s3) = (store.clone(), store.clone(), store.clone());
    let keep = config(&l, "guarded", false);
    acc(
        "model_store_refuses_to_lose_models",
        TestCase {
            steps: vec![
                Step::new(keep.clone()),
                // A version lands in the store; removing the store from the configuration must fail.
                Step::new(l.provider())
                    .pre(move |_| {
                        std::fs::create_dir_all(s1.join("iris/1")).unwrap();
                        std::fs::write(s1.join("iris/1/model.json"), "{}").unwrap();
                    })
                    .expect_error("still holds 1 model version\\(s\\) \\(iris/1\\)(.|\\n)*force_destroy = true"),
                Step::new(keep.clone()).pre(move |_| {
                    assert!(s2.join("iris/1/model.json").is_file(), "the refused destroy kept the version");
                    std::fs::remove_dir_all(s2.join("iris")).unwrap();
                }),
                // Deleted out of band: the plan re-creates it.
                Step::new(keep).pre(move |_| std::fs::remove_dir_all(&s3).unwrap()).plan_check(plan_action(ADDR, "create")),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn model_store_bad_input() {
    let l = Local::new("store-bad");
    let p = l.provider();
    acc(
        "model_store_bad_input",
        TestCase {
            steps: vec![
                Step::new(format!("{p}\nresource \"modelplane_model_store\" \"s\" {{\n  name = \"m\"\n  backend = \"local\"\n  storage_account = \"acme\"\n}}\n"))
                    .expect_error("`storage_account` applies to backend \"azure_blob\", not \"local\""),
                Step::new(format!("{p}\nresource \"modelplane_model_store\" \"s\" {{\n  name = \"m\"\n  backend = \"ftp\"\n}}\n")).expect_error("unknown backend \"ftp\""),
                Step::new(format!("{p}\nresource \"modelplane_model_store\" \"s\" {{\n  name = \"../m\"\n  backend = \"local\"\n}}\n")).expect_error("Invalid name"),
            ],
            ..Default::default()
        },
    );
}

// ---------------------------------------------------------------------------------------
// Object stores: s3 and s3_compatible against moto, azure_blob against Azurite.

pub(crate) fn aws_auth() -> Auth {
    Auth {
        aws_profile: Some(AWS_PROFILE.into()),
        azure_account_key: None,
    }
}

fn azure_auth() -> Auth {
    Auth {
        aws_profile: None,
        azure_account_key: Some(AZURITE_KEY.into()),
    }
}

/// Provider with local state, the moto credentials' profile (and, for `s3` stores, the S3
/// endpoint pointed at moto) and Azurite's account key.
fn provider(l: &Local, moto: Option<&Emulator>) -> String {
    let endpoint = moto
        .map(|m| format!("    endpoint_url = {:?}\n", m.url()))
        .unwrap_or_default();
    let aws = format!(
        "  aws {{\n    region       = \"us-east-1\"\n    profile      = {AWS_PROFILE:?}\n{endpoint}  }}\n"
    );
    format!(
        "provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n{aws}  azure {{\n    storage_account_key = {AZURITE_KEY:?}\n  }}\n}}\n",
        l.path().display().to_string()
    )
}

/// Puts an object straight into a store (a version Terraform does not know, or drift).
fn put_object(loc: &Location, auth: &Auth, key: &str, body: &[u8]) {
    block_on(async {
        let st = loc.open(auth).await.unwrap();
        st.put(&loc.path(key), body.to_vec().into()).await.unwrap();
    });
}

fn delete_object(loc: &Location, auth: &Auth, key: &str) {
    block_on(async {
        let st = loc.open(auth).await.unwrap();
        st.delete(&loc.path(key)).await.unwrap();
    });
}

pub(crate) fn object_exists(loc: &Location, auth: &Auth, key: &str) -> bool {
    block_on(async {
        let st = loc.open(auth).await.unwrap();
        st.head(&loc.path(key)).await.is_ok()
    })
}

/// The bucket's settings as S3 reports them.
fn bucket_settings(loc: &Location) -> Result<String, String> {
    block_on(async {
        let c = modelplane_provider::stores::s3::client(loc, &aws_auth()).await;
        let b = &loc.bucket;
        let enc = c
            .get_bucket_encryption()
            .bucket(b)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let alg = enc
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_string())
            .unwrap_or_default();
        let pab = c
            .get_public_access_block()
            .bucket(b)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let p = pab
            .public_access_block_configuration()
            .cloned()
            .ok_or("no public access block")?;
        let all_blocked = p.block_public_acls() == Some(true)
            && p.ignore_public_acls() == Some(true)
            && p.block_public_policy() == Some(true)
            && p.restrict_public_buckets() == Some(true);
        let lc = c
            .get_bucket_lifecycle_configuration()
            .bucket(b)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let days = lc
            .rules()
            .first()
            .and_then(|r| r.noncurrent_version_expiration())
            .and_then(|n| n.noncurrent_days())
            .unwrap_or(-1);
        // No tags at all is an error (NoSuchTagSet) in S3's API.
        let mut tags: Vec<String> = match c.get_bucket_tagging().bucket(b).send().await {
            Ok(t) => t
                .tag_set()
                .iter()
                .map(|t| format!("{}={}", t.key(), t.value()))
                .collect(),
            Err(e) if format!("{e:?}").contains("NoSuchTagSet") => vec![],
            Err(e) => return Err(format!("{e:?}")),
        };
        tags.sort();
        let ver = modelplane_provider::stores::s3::versioning(loc, &aws_auth())
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "versioning={ver} sse={alg} public_blocked={all_blocked} noncurrent_days={days} tags={}",
            tags.join(",")
        ))
    })
}

fn bucket_exists(loc: &Location) -> bool {
    block_on(modelplane_provider::stores::s3::exists(loc, &aws_auth())).unwrap_or(false)
}

fn s3_store(extra: &str) -> String {
    format!(
        "\nresource \"modelplane_model_store\" \"s\" {{\n  name    = \"acme-models\"\n  backend = \"s3\"\n{extra}}}\n"
    )
}

/// `s3` through real Terraform against moto: create with every bucket setting, a model
/// uploaded and served from S3, settings updated in place, an object deleted out of band,
/// import, destroy refused while versions remain, then forced.
#[test]
fn s3_store_lifecycle() {
    let Some(moto) = emulators::moto("s3_store_lifecycle") else {
        return;
    };
    let l = Local::new("s3");
    let want_id = format!(
        "s3://acme-models?region=us-east-1&endpoint={}&path_style=true",
        url::form_urlencoded::byte_serialize(moto.url().as_bytes()).collect::<String>()
    );
    let p = provider(&l, Some(&moto));
    let v1 = format!(
        "{p}{}{}",
        s3_store("  noncurrent_version_days = 14\n  tags = { team = \"ml\" }\n"),
        served("iris-s3")
    );
    let v2 = format!(
        "{p}{}{}",
        s3_store("  noncurrent_version_days = 7\n  tags = { team = \"ml\", env = \"prod\" }\n"),
        served("iris-s3")
    );
    let forced = format!("{p}{}", s3_store("  force_destroy = true\n"));
    let loc = Location::parse(&want_id).unwrap();
    let (l1, l2, l3, l4, l5) = (
        loc.clone(),
        loc.clone(),
        loc.clone(),
        loc.clone(),
        loc.clone(),
    );
    acc(
        "s3_store_lifecycle",
        TestCase {
            steps: vec![
                Step::new(v1.clone())
                    .plan_check(plan_known(ADDR, "id", want_id.clone()))
                    .check(attr_equals(ADDR, "versioning", "Enabled"))
                    .check(attr_equals(ADDR, "region", "us-east-1"))
                    .check(check(move |_| {
                        let got = bucket_settings(&l1)?;
                        let want = "versioning=Enabled sse=AES256 public_blocked=true noncurrent_days=14 tags=team=ml";
                        if got != want {
                            return Err(format!("bucket settings: {got}, want {want}"));
                        }
                        Ok(())
                    }))
                    .check(attr_equals("modelplane_model.m", "id", format!("{want_id}/iris/1")))
                    .check(predicts(&l, "iris-s3")),
                Step::new(v2.clone())
                    .plan_check(plan_action(ADDR, "update"))
                    .check(check(move |_| {
                        let got = bucket_settings(&l2)?;
                        if !got.contains("noncurrent_days=7 tags=env=prod,team=ml") {
                            return Err(format!("bucket settings after update: {got}"));
                        }
                        Ok(())
                    })),
                // The artifact deleted behind Terraform's back: the model is uploaded again.
                Step::new(v2.clone())
                    .pre(move |_| delete_object(&l3, &aws_auth(), "iris/1/model.onnx"))
                    .plan_check(plan_action("modelplane_model.m", "create"))
                    .check(check(move |_| {
                        if object_exists(&l4, &aws_auth(), "iris/1/model.onnx") {
                            Ok(())
                        } else {
                            Err("model.onnx was not uploaded again".into())
                        }
                    }))
                    .check(predicts(&l, "iris-s3"))
                    .import(ImportStep {
                        address: ADDR.into(),
                        id: Some(want_id.clone()),
                        id_from: None,
                        ignore: vec![
                            "force_destroy".into(),
                            "noncurrent_version_days".into(),
                            "tags".into(),
                        ],
                    }),
                // A version Terraform does not manage keeps the store from being destroyed.
                Step::new(format!("{p}{}", s3_store("")))
                    .pre(move |_| put_object(&l5, &aws_auth(), "other/3/model.json", b"{}"))
                    .expect_non_empty_plan(),
                Step::new(p.clone()).expect_error(
                    "still holds 1 model version\\(s\\) \\(other/3\\)(.|\\n)*force_destroy = true",
                ),
                Step::new(forced),
            ],
            check_destroy: Some(check(move |_| {
                if bucket_exists(&loc) {
                    Err("the bucket outlived destroy".into())
                } else {
                    Ok(())
                }
            })),
            ..Default::default()
        },
    );
}

/// `s3_compatible` (path-style, own endpoint) adopting a bucket that exists: the model is
/// served from it, and destroy leaves the bucket.
#[test]
fn s3_compatible_store_adopts_a_bucket() {
    let Some(moto) = emulators::moto("s3_compatible_store_adopts_a_bucket") else {
        return;
    };
    let l = Local::new("s3c");
    let loc = Location::parse(&format!(
        "s3://onprem-models?region=us-east-1&endpoint={}&path_style=true",
        moto.url()
    ))
    .unwrap();
    block_on(async {
        let c = modelplane_provider::stores::s3::client(&loc, &aws_auth()).await;
        c.create_bucket()
            .bucket("onprem-models")
            .send()
            .await
            .unwrap();
    });
    let config = format!(
        r#"{}
resource "modelplane_model_store" "s" {{
  name     = "onprem-models"
  backend  = "s3_compatible"
  endpoint = {:?}
  create   = false
}}
{}"#,
        provider(&l, None),
        moto.url(),
        served("iris-onprem")
    );
    let (l1, l2) = (loc.clone(), loc.clone());
    acc(
        "s3_compatible_store_adopts_a_bucket",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(ADDR, "id", loc.uri()))
                .check(attr_equals(ADDR, "versioning", "Enabled"))
                .check(check(move |_| {
                    let got = bucket_settings(&l1).unwrap_or_else(|e| e);
                    if got.starts_with(
                        "versioning=Enabled sse=AES256 public_blocked=true noncurrent_days=30",
                    ) {
                        Ok(())
                    } else {
                        Err(format!("adopted bucket settings: {got}"))
                    }
                }))
                .check(predicts(&l, "iris-onprem"))
                .import(ImportStep {
                    address: ADDR.into(),
                    id: Some(loc.uri()),
                    id_from: None,
                    ignore: vec!["create".into()],
                })],
            check_destroy: Some(check(move |_| {
                match (
                    bucket_exists(&l2),
                    object_exists(&l2, &aws_auth(), "iris/1/model.json"),
                ) {
                    (true, false) => Ok(()),
                    other => Err(format!(
                        "want the adopted bucket kept and the model gone: {other:?}"
                    )),
                }
            })),
            ..Default::default()
        },
    );
}

/// `azure_blob` through real Terraform against Azurite (account key from the provider
/// block): container created, versioning detected, model served from Blob storage, drift,
/// destroy refused while versions remain, then forced.
#[test]
fn azure_blob_store_lifecycle() {
    let Some(azurite) = emulators::azurite("azure_blob_store_lifecycle") else {
        return;
    };
    let l = Local::new("az");
    let endpoint = format!("{}/{AZURITE_ACCOUNT}", azurite.url());
    let store = |force: bool| {
        format!(
            "\nresource \"modelplane_model_store\" \"s\" {{\n  name            = \"models\"\n  backend         = \"azure_blob\"\n  storage_account = {AZURITE_ACCOUNT:?}\n  endpoint        = {endpoint:?}\n  force_destroy   = {force}\n}}\n"
        )
    };
    let p = provider(&l, None);
    let full = format!("{p}{}{}", store(false), served("iris-az"));
    let want_id = format!(
        "az://{AZURITE_ACCOUNT}/models?endpoint={}",
        url::form_urlencoded::byte_serialize(endpoint.as_bytes()).collect::<String>()
    );
    let loc = Location::parse(&want_id).unwrap();
    let (l1, l2, l3, l4) = (loc.clone(), loc.clone(), loc.clone(), loc.clone());
    acc(
        "azure_blob_store_lifecycle",
        TestCase {
            steps: vec![
                Step::new(full.clone())
                    .plan_check(plan_known(ADDR, "id", want_id.clone()))
                    // Azurite has no blob versioning: detected and reported.
                    .check(attr_equals(ADDR, "versioning", "Disabled"))
                    .check(attr_equals("modelplane_model.m", "id", format!("{want_id}/iris/1")))
                    .check(predicts(&l, "iris-az"))
                    .import(ImportStep {
                        address: "modelplane_model.m".into(),
                        id: Some(format!("{want_id}/iris/1")),
                        id_from: None,
                        ignore: vec!["source".into(), "baseline".into()],
                    }),
                Step::new(full.clone())
                    .pre(move |_| delete_object(&l1, &azure_auth(), "iris/1/model.json"))
                    .plan_check(plan_action("modelplane_model.m", "create"))
                    .check(check(move |_| {
                        if object_exists(&l2, &azure_auth(), "iris/1/model.json") {
                            Ok(())
                        } else {
                            Err("model.json was not written again".into())
                        }
                    })),
                Step::new(format!("{p}{}", store(false)))
                    .pre(move |_| put_object(&l3, &azure_auth(), "other/3/model.json", b"{}"))
                    .expect_non_empty_plan(),
                Step::new(p.clone()).expect_error(
                    "container models of storage account devstoreaccount1 still holds 1 model\\s+version\\(s\\)",
                ),
                Step::new(format!("{p}{}", store(true))),
            ],
            check_destroy: Some(check(move |_| {
                match block_on(modelplane_provider::stores::azure::exists(&l4, &azure_auth())) {
                    Ok(false) => Ok(()),
                    other => Err(format!("the container outlived destroy: {other:?}")),
                }
            })),
            ..Default::default()
        },
    );
}

/// Bad input: static rules at plan (names, attributes of another backend, missing settings),
/// the rest at apply with a message naming the cause (missing bucket, unknown profile, wrong
/// account key, unreachable endpoint). Nothing is created.
#[test]
fn object_store_bad_input() {
    let (Some(moto), Some(azurite)) = (
        emulators::moto("object_store_bad_input"),
        emulators::azurite("object_store_bad_input"),
    ) else {
        return;
    };
    let l = Local::new("store-bad");
    let p = provider(&l, Some(&moto));
    let store =
        |body: &str| format!("{p}\nresource \"modelplane_model_store\" \"s\" {{\n{body}}}\n");
    let wrong_key = format!(
        "provider \"modelplane\" {{\n  azure {{\n    storage_account_key = \"d3Jvbmcga2V5\"\n  }}\n}}\nresource \"modelplane_model_store\" \"s\" {{\n  name            = \"models\"\n  backend         = \"azure_blob\"\n  storage_account = \"{AZURITE_ACCOUNT}\"\n  endpoint        = \"{}/{AZURITE_ACCOUNT}\"\n}}\n",
        azurite.url()
    );
    let bad_profile = format!(
        "provider \"modelplane\" {{\n  aws {{\n    region       = \"us-east-1\"\n    profile      = \"nobody\"\n    endpoint_url = {:?}\n  }}\n}}\nresource \"modelplane_model_store\" \"s\" {{\n  name    = \"acme-models\"\n  backend = \"s3\"\n}}\n",
        moto.url()
    );
    let closed = emulators::free_port();
    let steps = vec![
        Step::new(store("  name = \"Acme_Models\"\n  backend = \"s3\"\n"))
            .expect_error("Invalid bucket name(.|\\n)*lowercase letters, digits"),
        Step::new(store("  name = \"192.168.0.1\"\n  backend = \"s3\"\n"))
            .expect_error("IP address"),
        Step::new(store("  name = \"a--b\"\n  backend = \"azure_blob\"\n  storage_account = \"acme\"\n"))
            .expect_error("Invalid container name(.|\\n)*two hyphens"),
        Step::new(store("  name = \"models\"\n  backend = \"azure_blob\"\n"))
            .expect_error("Missing storage account"),
        Step::new(store("  name = \"models\"\n  backend = \"azure_blob\"\n  storage_account = \"Acme-Models\"\n"))
            .expect_error("Invalid storage account name"),
        Step::new(store("  name = \"models\"\n  backend = \"s3_compatible\"\n"))
            .expect_error("Missing endpoint(.|\\n)*minio"),
        Step::new(store("  name = \"models\"\n  backend = \"s3_compatible\"\n  endpoint = \"minio:9000\"\n"))
            .expect_error("Invalid endpoint"),
        Step::new(store("  name = \"models\"\n  backend = \"s3\"\n  path = \"/tmp/x\"\n"))
            .expect_error("`path` applies to backend \"local\", not \"s3\""),
        Step::new(store("  name = \"models\"\n  backend = \"gcs\"\n"))
            .expect_error("unknown backend \"gcs\""),
        Step::new(store("  name = \"models\"\n  backend = \"s3\"\n  noncurrent_version_days = -1\n"))
            .expect_error("noncurrent_version_days = -1"),
        // At apply: what only the service can say.
        Step::new(store("  name = \"not-there\"\n  backend = \"s3\"\n  create = false\n"))
            .expect_error("bucket not-there does not exist"),
        Step::new(bad_profile).expect_error("(?i)profile(.|\\n)*nobody|nobody(.|\\n)*profile"),
        Step::new(wrong_key).expect_error("refused \\(403\\)(.|\\n)*account key"),
        Step::new(store(&format!(
            "  name = \"models\"\n  backend = \"azure_blob\"\n  storage_account = \"acme\"\n  endpoint = \"http://127.0.0.1:{closed}/acme\"\n"
        )))
        .expect_error("Cannot create the model store"),
    ];
    acc(
        "object_store_bad_input",
        TestCase {
            steps,
            ..Default::default()
        },
    );
}

/// A version copied store to store, `file://` → `s3://` (moto) → `az://` (Azurite), all in one
/// apply (the sources are unknown at plan): the same sha256 and signature, lineage with
/// `copied_from`, baseline and validation report carried, validation not run again; an
/// endpoint serves the Azure copy; a source whose bytes no longer match its model.json is
/// refused, and nothing is registered.
#[test]
fn model_versions_travel_between_stores() {
    let Some(moto) = emulators::moto("model_versions_travel_between_stores") else {
        return;
    };
    let Some(azurite) = emulators::azurite("model_versions_travel_between_stores") else {
        return;
    };
    let l = Local::new("travel");
    let endpoint = format!("{}/{AZURITE_ACCOUNT}", azurite.url());
    let stores = format!(
        r#"
resource "modelplane_model_store" "onprem" {{
  name          = "onprem"
  backend       = "local"
  force_destroy = true
}}
resource "modelplane_model_store" "aws" {{
  name          = "travel-models"
  backend       = "s3"
  force_destroy = true
}}
resource "modelplane_model_store" "azure" {{
  name            = "travel"
  backend         = "azure_blob"
  storage_account = {AZURITE_ACCOUNT:?}
  endpoint        = {endpoint:?}
  force_destroy   = true
}}
resource "modelplane_model" "onprem" {{
  store   = modelplane_model_store.onprem.id
  name    = "iris"
  version = "3"
  source  = {source:?}
  lineage {{
    code_commit = "abc123"
    tags        = {{ team = "ml" }}
  }}
  baseline {{
    dataset = {train:?}
    target  = "species"
  }}
  validation {{
    dataset = {holdout:?}
    target  = "species"
    metric  = "accuracy"
    min     = 0.9
  }}
}}
resource "modelplane_model" "aws" {{
  store   = modelplane_model_store.aws.id
  name    = "iris"
  version = "3"
  source  = modelplane_model.onprem.uri
}}
resource "modelplane_model" "azure" {{
  store   = modelplane_model_store.azure.id
  name    = "iris"
  version = "3"
  source  = modelplane_model.aws.id
}}
resource "modelplane_gpu_cluster" "c" {{
  name     = "c"
  platform = "local"
}}
resource "modelplane_endpoint" "e" {{
  name    = "iris-travelled"
  cluster = modelplane_gpu_cluster.c.id
  variant {{
    name   = "stable"
    model  = modelplane_model.azure.id
    weight = 100
  }}
}}
"#,
        source = common::qs("model/iris-v1.onnx"),
        train = common::qs("data/train.csv"),
        holdout = common::qs("data/holdout.csv"),
    );
    let p = provider(&l, Some(&moto));
    let full = format!("{p}{stores}");
    // A version nobody manages whose model.onnx is not the bytes its model.json records.
    let damaged = l.path().join("stores/onprem/iris/9");
    let extra = format!(
        "{full}\nresource \"modelplane_model\" \"again\" {{\n  store   = modelplane_model_store.aws.id\n  name    = \"iris\"\n  version = \"9\"\n  source  = \"file://{}\"\n}}\n",
        damaged.display()
    );
    let d1 = l.path().join("stores/onprem/iris/3");
    let (d2, d3) = (d1.clone(), damaged.clone());
    let sha = modelplane_serve::signature::file_digest(
        &common::repo().join("examples/quickstart/model/iris-v1.onnx"),
    )
    .unwrap()
    .0;
    let az = |a: &str| format!("modelplane_model.{a}");
    let (s1, s2, s3) = (sha.clone(), sha.clone(), sha.clone());
    acc(
        "model_versions_travel_between_stores",
        TestCase {
            steps: vec![
                Step::new(full.clone())
                    .check(attr_equals(&az("aws"), "sha256", s1))
                    .check(attr_equals(&az("azure"), "sha256", s2))
                    .check(attr_equals(
                        &az("aws"),
                        "copied_from",
                        format!("file://{}", d1.display()),
                    ))
                    .check(attr_equals(&az("azure"), "validation_report.passed", true))
                    .check(attr_equals(
                        &az("aws"),
                        "inputs.0.shape",
                        serde_json::json!([-1, 4]),
                    ))
                    .check(check(move |s| {
                        let attr = |a: &str, k: &str| {
                            s.attr(&format!("modelplane_model.{a}"), k)
                                .unwrap_or_default()
                        };
                        if attr("azure", "baseline_sha256") != attr("onprem", "baseline_sha256")
                            || attr("azure", "validation_report")
                                != attr("onprem", "validation_report")
                            || attr("azure", "outputs") != attr("onprem", "outputs")
                        {
                            return Err(format!("not carried: {s:?}"));
                        }
                        // What the Azure store holds: the lineage with where it came from, and
                        // the baseline.
                        let loc =
                            Location::parse(attr("azure", "store").as_str().unwrap()).unwrap();
                        let (meta, baseline) = block_on(async {
                            let st = loc.open(&azure_auth()).await.unwrap();
                            let get = |k: &'static str| {
                                let (st, loc) = (st.clone(), loc.clone());
                                async move {
                                    modelplane_serve::objects::get_bytes(&st, &loc.path(k))
                                        .await
                                        .unwrap()
                                }
                            };
                            (
                                get("iris/3/model.json").await,
                                get("iris/3/baseline.json").await,
                            )
                        });
                        let meta: serde_json::Value =
                            serde_json::from_slice(&meta.ok_or("no model.json")?).unwrap();
                        if meta["sha256"] != s3.as_str()
                            || meta["lineage"]["code_commit"] != "abc123"
                            || !meta["lineage"]["copied_from"]
                                .as_str()
                                .unwrap_or_default()
                                .starts_with("s3://travel-models/iris/3")
                            || meta["validation"]["report"]["passed"] != true
                        {
                            return Err(format!("azure model.json: {meta}"));
                        }
                        if baseline.is_none() {
                            return Err("no baseline.json in the Azure copy".into());
                        }
                        Ok(())
                    }))
                    .check(common::predicts(
                        &l,
                        "modelplane_endpoint.e",
                        "iris-travelled",
                    )),
                // The source's bytes replaced behind its model.json: a new copy is refused.
                Step::new(extra.clone())
                    .pre(move |_| {
                        std::fs::create_dir_all(&d3).unwrap();
                        std::fs::copy(d2.join("model.json"), d3.join("model.json")).unwrap();
                        std::fs::copy(
                            common::repo().join("examples/quickstart/model/iris-v2.onnx"),
                            d3.join("model.onnx"),
                        )
                        .unwrap();
                    })
                    .expect_error("Cannot copy the model version(.|\\n)*sha256"),
            ],
            ..Default::default()
        },
    );
}
