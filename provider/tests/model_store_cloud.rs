//! `modelplane_model_store` against real AWS S3 and real Azure Blob Storage. These run only
//! when their account is named (they create and then destroy a bucket or container there):
//!
//! - `MODELPLANE_ACC_AWS_REGION=eu-west-1` with credentials from the AWS chain (environment,
//!   `AWS_PROFILE`, SSO, instance role): an `s3` store in a new bucket.
//! - `MODELPLANE_ACC_AZURE_STORAGE_ACCOUNT=NAME` with credentials from the Azure identity
//!   chain (or `AZURE_STORAGE_KEY`): an `azure_blob` store in a new container.
//!
//! The emulator tests in `model_store.rs` cover the same paths on every run.

use crate::common;

use common::stores::{predicts, served};
use common::{acc, Local};
use tfplugin::acctest::{attr_equals, Step, TestCase};

fn suffix() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{:x}{:x}", t, std::process::id())
}

fn skip(test: &str, var: &str) -> bool {
    if std::env::var_os(var).is_none() {
        crate::common::skipped(
            test,
            crate::common::Skip::OptIn,
            &format!("set {var} to run it against the real service"),
        );
        return true;
    }
    false
}

#[test]
fn s3_store_on_aws() {
    if skip("s3_store_on_aws", "MODELPLANE_ACC_AWS_REGION") {
        return;
    }
    let region = std::env::var("MODELPLANE_ACC_AWS_REGION").unwrap_or_default();
    let l = Local::new("aws");
    let bucket = format!("modelplane-acc-{}", suffix());
    let config = format!(
        r#"provider "modelplane" {{
  local {{
    state_dir = {:?}
  }}
  aws {{
    region = {region:?}
  }}
}}

resource "modelplane_model_store" "s" {{
  name          = {bucket:?}
  backend       = "s3"
  force_destroy = true
  tags          = {{ purpose = "modelplane-acceptance-test" }}
}}
{}"#,
        l.path().display().to_string(),
        served("iris-aws")
    );
    acc(
        "s3_store_on_aws",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(
                    "modelplane_model_store.s",
                    "id",
                    format!("s3://{bucket}?region={region}"),
                ))
                .check(attr_equals(
                    "modelplane_model_store.s",
                    "versioning",
                    "Enabled",
                ))
                .check(predicts(&l, "iris-aws"))],
            ..Default::default()
        },
    );
}

#[test]
fn azure_blob_store_on_azure() {
    if skip(
        "azure_blob_store_on_azure",
        "MODELPLANE_ACC_AZURE_STORAGE_ACCOUNT",
    ) {
        return;
    }
    let account = std::env::var("MODELPLANE_ACC_AZURE_STORAGE_ACCOUNT").unwrap_or_default();
    let l = Local::new("azure");
    let container = format!("modelplane-acc-{}", suffix());
    let config = format!(
        r#"provider "modelplane" {{
  local {{
    state_dir = {:?}
  }}
}}

resource "modelplane_model_store" "s" {{
  name            = {container:?}
  backend         = "azure_blob"
  storage_account = {account:?}
  force_destroy   = true
}}
{}"#,
        l.path().display().to_string(),
        served("iris-azure")
    );
    acc(
        "azure_blob_store_on_azure",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(
                    "modelplane_model_store.s",
                    "id",
                    format!("az://{account}/{container}"),
                ))
                .check(predicts(&l, "iris-azure"))],
            ..Default::default()
        },
    );
}
