//! `terraform providers schema -json` lists the provider, its blocks and data sources, with
//! descriptions, through a real `terraform init`.

use crate::common;

#[test]
fn providers_schema_json_lists_everything_with_descriptions() {
    if !tfplugin::acctest::enabled() {
        eprintln!("skipped; acceptance tests run with TF_ACC=1");
        return;
    }
    let h = common::harness();
    let (wd, _guard) = h.workdir("providers_schema").unwrap();
    std::fs::write(wd.dir.join("main.tf"), "provider \"modelplane\" {}\n").unwrap();
    wd.ok(&["init", "-input=false", "-no-color"]).unwrap();
    let out = wd.ok(&["providers", "schema", "-json"]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["provider_schemas"]["registry.terraform.io/modelplane/modelplane"];
    assert!(
        p["provider"]["block"]["description"]
            .as_str()
            .unwrap()
            .contains("Modelplane"),
        "{p}"
    );
    for b in ["local", "kubernetes", "aws", "azure"] {
        assert!(
            p["provider"]["block"]["block_types"][b].is_object(),
            "provider block {b} missing"
        );
    }
    let ds = &p["data_source_schemas"]["modelplane_model_signature"]["block"];
    assert_eq!(ds["description_kind"], "markdown");
    assert!(ds["description"].as_str().unwrap().contains("ONNX"));
    assert!(ds["attributes"]["path"]["required"].as_bool().unwrap());
    assert!(!ds["attributes"]["path"]["description"]
        .as_str()
        .unwrap()
        .is_empty());
}
