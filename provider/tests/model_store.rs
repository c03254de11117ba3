//! Acceptance tests of `modelplane_model_store` through real Terraform.

mod common;

use common::{acc, check, Local};
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
                Step::new(format!("{p}\nresource \"modelplane_model_store\" \"s\" {{\n  name = \"m\"\n  backend = \"s3\"\n}}\n"))
                    .expect_error("Unsupported backend(.|\\n)*\"s3\" is not available in this version"),
                Step::new(format!("{p}\nresource \"modelplane_model_store\" \"s\" {{\n  name = \"m\"\n  backend = \"ftp\"\n}}\n")).expect_error("unknown backend \"ftp\""),
                Step::new(format!("{p}\nresource \"modelplane_model_store\" \"s\" {{\n  name = \"../m\"\n  backend = \"local\"\n}}\n")).expect_error("Invalid name"),
            ],
            ..Default::default()
        },
    );
}
