//! Acceptance tests of `modelplane_gpu_cluster` and `modelplane_gpu_inventory` through real
//! Terraform.

use crate::common;

use common::{acc, Local};
use tfplugin::acctest::{
    attr_equals, attr_set, plan_action, plan_known, ImportStep, Step, TestCase,
};

const ADDR: &str = "modelplane_gpu_cluster.c";

fn config(l: &Local, name: &str, purpose: &str) -> String {
    format!(
        "{}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name     = {name:?}\n  platform = \"local\"\n  node_pool {{\n    name    = \"default\"\n    purpose = {purpose:?}\n  }}\n}}\n\ndata \"modelplane_gpu_inventory\" \"here\" {{}}\n",
        l.provider()
    )
}

#[test]
fn gpu_cluster_lifecycle() {
    let l = Local::new("cluster");
    let cpus = std::thread::available_parallelism().unwrap().get();
    acc(
        "gpu_cluster_lifecycle",
        TestCase {
            steps: vec![
                Step::new(config(&l, "inference", "inference"))
                    .plan_check(plan_known(ADDR, "id", "local/inference"))
                    .check(attr_equals(ADDR, "id", "local/inference"))
                    .check(attr_equals(ADDR, "cpus", cpus))
                    .check(attr_set(ADDR, "memory_bytes"))
                    .check(attr_set(ADDR, "hostname"))
                    // This machine has no NVIDIA driver: an empty list, not an error.
                    .check(attr_equals(ADDR, "gpus.#", 0))
                    .check(attr_equals(
                        "data.modelplane_gpu_inventory.here",
                        "cpus",
                        cpus,
                    ))
                    .check(attr_equals(
                        "data.modelplane_gpu_inventory.here",
                        "gpus.#",
                        0,
                    )),
                Step::new(config(&l, "inference", "dev"))
                    .plan_check(plan_action(ADDR, "update"))
                    .check(attr_equals(ADDR, "node_pool.0.purpose", "dev")),
                Step::new(config(&l, "training", "dev"))
                    .plan_check(plan_action(ADDR, "replace"))
                    .check(attr_equals(ADDR, "id", "local/training"))
                    .import(ImportStep {
                        address: ADDR.into(),
                        id: Some("local/training".into()),
                        id_from: None,
                        ignore: vec!["node_pool".into()],
                    }),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn gpu_cluster_bad_input_is_caught_at_plan() {
    let l = Local::new("cluster-bad");
    let p = l.provider();
    acc(
        "gpu_cluster_bad_input",
        TestCase {
            steps: vec![
                Step::new(config(&l, "c", "serving")).expect_error("Invalid node pool purpose(.|\\n)*\"dev\", \"training\" or \"inference\""),
                Step::new(config(&l, "a b", "dev")).expect_error("Invalid name(.|\\n)*use letters, digits"),
                Step::new(format!("{p}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name = \"c\"\n  platform = \"gcp\"\n}}\n"))
                    .expect_error("Unsupported platform(.|\\n)*unknown platform \"gcp\"(.|\\n)*\"azure\""),
                Step::new(format!("{p}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name = \"c\"\n  platform = \"mainframe\"\n}}\n"))
                    .expect_error("unknown platform \"mainframe\""),
                Step::new(format!(
                    "{p}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name = \"c\"\n  platform = \"local\"\n  node_pool {{\n    name = \"a\"\n    purpose = \"dev\"\n  }}\n  node_pool {{\n    name = \"b\"\n    purpose = \"dev\"\n  }}\n}}\n"
                ))
                .expect_error("Too many node pools(.|\\n)*at most one node_pool"),
                Step::new(format!(
                    "{p}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name = \"c\"\n  platform = \"local\"\n  node_pool {{\n    name = \"gpu\"\n    purpose = \"training\"\n    gpu_count = 1\n  }}\n}}\n"
                ))
                .expect_error("Not enough GPUs(.|\\n)*asks for 1 GPU\\(s\\), but NVML finds 0"),
            ],
            ..Default::default()
        },
    );
}
