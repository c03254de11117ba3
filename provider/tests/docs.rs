//! docs/ must be what `cargo xtask docs` generates from the schemas and examples/.

use std::path::PathBuf;
use std::sync::Arc;

#[test]
fn docs_are_up_to_date() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let server =
        tfplugin::server::ProviderServer::new(Arc::new(modelplane_provider::Modelplane::new()))
            .expect("schemas pass Terraform's rules");
    let pages = tfplugin::docs::render(&server, "modelplane", &repo.join("examples"));
    let stale = tfplugin::docs::stale(&pages, &repo.join("docs"));
    assert!(
        stale.is_empty(),
        "stale docs pages (run `cargo xtask docs`): {stale:?}"
    );
}

#[test]
fn every_type_has_a_docs_page_and_an_example() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let server =
        tfplugin::server::ProviderServer::new(Arc::new(modelplane_provider::Modelplane::new()))
            .unwrap();
    for (name, schema) in server.data_source_schemas() {
        assert!(
            !schema.block.description.is_empty(),
            "{name} has no description"
        );
        assert!(
            repo.join(format!("examples/data-sources/{name}/data-source.tf"))
                .is_file(),
            "{name} has no example"
        );
    }
    for (name, schema) in server.resource_schemas() {
        assert!(
            !schema.block.description.is_empty(),
            "{name} has no description"
        );
        assert!(
            repo.join(format!("examples/resources/{name}/resource.tf"))
                .is_file(),
            "{name} has no example"
        );
    }
}

#[test]
fn every_attribute_is_described() {
    fn walk(b: &tfplugin::Block, at: &str, missing: &mut Vec<String>) {
        for a in &b.attributes {
            if a.description.trim().is_empty() {
                missing.push(format!("{at}.{}", a.name));
            }
            if let tfplugin::schema::AttrType::Nested { attributes, .. } = &a.ty {
                walk(
                    &tfplugin::Block {
                        attributes: attributes.clone(),
                        ..Default::default()
                    },
                    &format!("{at}.{}", a.name),
                    missing,
                );
            }
        }
        for nb in &b.blocks {
            walk(&nb.block, &format!("{at}.{}", nb.type_name), missing);
        }
    }
    let server =
        tfplugin::server::ProviderServer::new(Arc::new(modelplane_provider::Modelplane::new()))
            .unwrap();
    let mut missing = Vec::new();
    walk(&server.provider_schema().block, "provider", &mut missing);
    for (n, s) in server
        .data_source_schemas()
        .chain(server.resource_schemas())
    {
        walk(&s.block, n, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "attributes without a description: {missing:?}"
    );
}
