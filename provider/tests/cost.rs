//! Cost estimates and budgets (`estimated_cost`, `budget`, the provider's `pricing` block and
//! `modelplane_cost_estimate`) through real Terraform: what a plan shows on `aws`, `azure` and
//! `kubernetes`, overrides, spot, budgets that fail or warn, unknown prices, and an estimate
//! that stays put across apply, refresh and new rates.

use serde_json::Value as J;
use tfplugin::acctest::{attr_equals, Shown, Step, TestCase, Workdir};

use crate::common::{acc, Local};

/// The shipped table's on-demand (and spot) price of `ty` in `region`.
fn list(region: &str, ty: &str) -> (f64, Option<f64>) {
    let r = modelplane_provider::cost::builtin()
        .iter()
        .find(|r| r.region == region && r.instance_type == ty)
        .unwrap_or_else(|| panic!("{ty} in {region} is not in the shipped table"));
    (r.on_demand_hour, r.spot_hour)
}

fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Writes `main_tf`, plans it and returns the plan (as `terraform show -json`) and the plan's
/// text (warnings included); panics when the plan fails.
fn plan(wd: &Workdir, main_tf: &str) -> (Shown, String) {
    std::fs::write(wd.dir.join("main.tf"), main_tf).unwrap();
    let _ = wd.run(&["init", "-no-color"]);
    let out = wd
        .run(&["plan", "-no-color", "-out=tfplan"])
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "plan failed:\n{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (
        wd.show(Some("tfplan")).unwrap_or_else(|e| panic!("{e}")),
        flat,
    )
}

fn num(shown: &Shown, address: &str, path: &str) -> f64 {
    shown
        .planned(address, path)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| {
            panic!(
                "{address}.{path} is not a planned number: {:?}",
                shown.planned(address, path)
            )
        })
}

fn workdir(name: &str) -> Option<(Workdir, Option<tempfile::TempDir>)> {
    if !tfplugin::acctest::enabled() {
        eprintln!("{name}: skipped; acceptance tests run with TF_ACC=1");
        return None;
    }
    Some(
        crate::common::harness()
            .workdir(name)
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

const AWS: &str =
    "provider \"modelplane\" {\n  aws {\n    region = \"us-east-1\"\n  }\n  PRICING\n}\n";

fn aws_cluster(pools: &str, extra: &str) -> String {
    format!("resource \"modelplane_gpu_cluster\" \"gpu\" {{\n  name     = \"gpu\"\n  platform = \"aws\"\n  aws {{\n    subnet_ids = [\"subnet-0a\", \"subnet-0b\"]\n  }}\n{pools}{extra}}}\n")
}

const POOLS: &str = "  node_pool {\n    name          = \"a10\"\n    purpose       = \"inference\"\n    instance_type = \"g5.xlarge\"\n    gpu_count     = 1\n    min_size      = 1\n    desired_size  = 2\n    max_size      = 4\n  }\n  node_pool {\n    name          = \"l4-spot\"\n    purpose       = \"inference\"\n    instance_type = \"g6.xlarge\"\n    gpu_count     = 1\n    spot          = true\n    min_size      = 0\n    max_size      = 2\n  }\n";

/// Endpoints name versions that exist only after apply, so nothing is looked up at plan.
const ENDPOINT: &str = "resource \"terraform_data\" \"version\" {\n  input = \"s3://models/m/1\"\n}\nresource \"modelplane_endpoint\" \"api\" {\n  name    = \"api\"\n  cluster = modelplane_gpu_cluster.gpu.id\n  image   = \"registry.example/modelplane-serve@sha256:00\"\n  variant {\n    name   = \"stable\"\n    model  = terraform_data.version.output\n    weight = 90\n  }\n  variant {\n    name   = \"canary\"\n    model  = terraform_data.version.output\n    weight = 10\n  }\n  kubernetes {\n    cpu          = \"2\"\n    memory       = \"8Gi\"\n    gpus         = 1\n    min_replicas = 1\n    max_replicas = 3\n  }\n  pricing {\n    instance_type = \"g5.xlarge\"\n  }\nEXTRA}\n";

/// An aws cluster and an endpoint on it: the plan shows both estimates from the shipped table
/// (control plane, on-demand pool, a spot pool without a spot figure priced at its ceiling
/// with a warning), the endpoint's canary share, and what-if figures from the data source.
#[test]
fn aws_plan_shows_estimates_from_the_table() {
    let Some((wd, _g)) = workdir("cost-aws") else {
        return;
    };
    let (g5, _) = list("us-east-1", "g5.xlarge");
    let (g6, g6_spot) = list("us-east-1", "g6.xlarge");
    assert_eq!(
        g6_spot, None,
        "the test relies on g6.xlarge having no spot figure"
    );
    let data = "data \"modelplane_cost_estimate\" \"three\" {\n  instance_type = \"g5.xlarge\"\n  instances     = 3\n  add           = [100, 0.5]\n}\noutput \"three\" {\n  value = data.modelplane_cost_estimate.three.total_monthly\n}\n";
    let main = format!(
        "{}{}{}{data}",
        AWS.replace("PRICING", ""),
        aws_cluster(POOLS, ""),
        ENDPOINT.replace("EXTRA", "")
    );
    let (p, text) = plan(&wd, &main);
    let c = "modelplane_gpu_cluster.gpu";
    // The plan output shows it, at plan time.
    assert!(
        text.contains("estimated_cost") && text.contains("monthly_max"),
        "{text}"
    );
    assert!(!p.is_unknown(c, "estimated_cost"));
    let want_min = 0.10 + g5;
    let want_desired = 0.10 + 2.0 * g5;
    let want_max = 0.10 + 4.0 * g5 + 2.0 * g6;
    for (path, want) in [
        ("estimated_cost.hourly_min", want_min),
        ("estimated_cost.hourly_desired", want_desired),
        ("estimated_cost.hourly_max", want_max),
        ("estimated_cost.monthly_min", cents(want_min * 730.0)),
        (
            "estimated_cost.monthly_desired",
            cents(want_desired * 730.0),
        ),
        ("estimated_cost.monthly_max", cents(want_max * 730.0)),
    ] {
        let got = num(&p, c, path);
        assert!((got - want).abs() < 0.011, "{path}: {got}, want {want}");
    }
    assert_eq!(p.planned(c, "estimated_cost.basis"), Some(J::from("list")));
    assert_eq!(
        p.planned(c, "estimated_cost.currency"),
        Some(J::from("USD"))
    );
    assert_eq!(
        p.planned(c, "estimated_cost.region"),
        Some(J::from("us-east-1"))
    );
    assert_eq!(
        p.planned(c, "estimated_cost.items.0.kind"),
        Some(J::from("control_plane"))
    );
    assert_eq!(
        p.planned(c, "estimated_cost.items.2.name"),
        Some(J::from("l4-spot"))
    );
    // Each pool says what the other capacity type would cost, where that is known.
    assert!((num(&p, c, "estimated_cost.items.1.on_demand_hourly") - g5).abs() < 1e-9);
    assert!((num(&p, c, "estimated_cost.items.2.on_demand_hourly") - g6).abs() < 1e-9);
    assert_eq!(
        p.planned(c, "estimated_cost.items.2.spot_hourly"),
        Some(J::Null)
    );
    assert!(
        p.planned(c, "estimated_cost.prices_date")
            .and_then(|d| d.as_str().map(|s| s.starts_with("20")))
            == Some(true)
    );
    assert!(
        text.contains("Spot price not known")
            && text.contains("no spot price of g6.xlarge in us-east-1"),
        "{text}"
    );
    // The endpoint: 8 GiB of 16 is the largest share of a g5.xlarge (2 of 4 vCPUs, 1 of 1
    // GPU is larger still: the whole node).
    let e = "modelplane_endpoint.api";
    let replica = g5;
    assert!((num(&p, e, "estimated_cost.replica_hourly") - replica).abs() < 1e-4);
    assert!(
        (num(&p, e, "estimated_cost.monthly_max") - cents(replica * 3.0 * 730.0)).abs() < 0.011
    );
    assert!((num(&p, e, "estimated_cost.monthly_min") - cents(replica * 730.0)).abs() < 0.011);
    let canary = num(&p, e, "estimated_cost.variants.canary");
    assert!(
        (canary - cents(replica * 3.0 * 730.0 * 0.1)).abs() < 0.011,
        "canary {canary}"
    );
    assert_eq!(p.planned(e, "estimated_cost.shadow_monthly"), Some(J::Null));
    // The what-if data source, read at plan.
    let three = p.0["planned_values"]["outputs"]["three"]["value"]
        .as_f64()
        .unwrap();
    assert!(
        (three - cents(g5 * 3.0 * 730.0 + 100.5)).abs() < 0.011,
        "{three}"
    );

    // An override wins over the table; an instance type without a price is said, and its
    // cluster's estimate is null, never zero.
    let main = format!(
        "{}{}",
        AWS.replace("PRICING", "pricing {\n    instance_hour = { \"g5.xlarge\" = 0.5 }\n    spot_hour     = { \"g6.xlarge\" = 0.25 }\n  }"),
        aws_cluster(POOLS, "")
    ) + &aws_cluster(
        "  node_pool {\n    name          = \"big\"\n    purpose       = \"inference\"\n    instance_type = \"g5.16xlarge\"\n    gpu_count     = 1\n  }\n",
        "",
    )
    .replace("\"gpu\" {", "\"other\" {")
    .replace("\"gpu\"\n", "\"other\"\n");
    let (p, text) = plan(&wd, &main);
    let want = 0.10 + 4.0 * 0.5 + 2.0 * 0.25;
    assert!((num(&p, c, "estimated_cost.hourly_max") - want).abs() < 1e-4);
    assert_eq!(p.planned(c, "estimated_cost.basis"), Some(J::from("mixed")));
    assert_eq!(
        p.planned(c, "estimated_cost.items.1.basis"),
        Some(J::from("user"))
    );
    assert_eq!(
        p.planned("modelplane_gpu_cluster.other", "estimated_cost"),
        Some(J::Null)
    );
    assert!(
        text.contains("No price for aws g5.16xlarge in us-east-1: it is not in the price table")
            && text.contains("instance_hour[\"g5.16xlarge\"]"),
        "{text}"
    );

    // A data source asked for a price nobody knows is an error naming the attribute.
    crate::common::plan_refuses(
        &wd,
        &format!(
            "{}data \"modelplane_cost_estimate\" \"x\" {{\n  instance_type = \"g5.16xlarge\"\n}}\n",
            AWS.replace("PRICING", "")
        ),
        "No price for aws g5.16xlarge",
    );
}

/// Budgets: over it, an error naming the resource, the estimate, the budget and the biggest
/// contributor; with `action = "warn"` only a warning; within it, nothing.
#[test]
fn a_budget_below_the_estimate_fails_the_plan() {
    let Some((wd, _g)) = workdir("cost-budget") else {
        return;
    };
    let p = AWS.replace("PRICING", "");
    let ((g5, _), (g6, _)) = (
        list("us-east-1", "g5.xlarge"),
        list("us-east-1", "g6.xlarge"),
    );
    crate::common::plan_refuses(
        &wd,
        &format!("{p}{}", aws_cluster(POOLS, "  budget {\n    monthly = 1000\n  }\n")),
        &format!("modelplane_gpu_cluster \"gpu\" is estimated at USD {:.2} a month at its largest size (USD {:.2} at its smallest), over its budget of USD 1000.00 a month. Biggest contributors: node pool a10 (4 x g5.xlarge, list)", cents((0.10 + 4.0 * g5 + 2.0 * g6) * 730.0), cents((0.10 + g5) * 730.0)),
    );
    crate::common::plan_refuses(
        &wd,
        &format!(
            "{p}{}{}",
            aws_cluster(POOLS, ""),
            ENDPOINT.replace("EXTRA", "  budget {\n    monthly = 500\n  }\n")
        ),
        "modelplane_endpoint \"api\" is estimated at USD",
    );
    let (_, text) = plan(
        &wd,
        &format!(
            "{p}{}",
            aws_cluster(
                POOLS,
                "  budget {\n    monthly = 1000\n    action  = \"warn\"\n  }\n"
            )
        ),
    );
    assert!(text.contains("Warning: Over budget"), "{text}");
    let (_, text) = plan(
        &wd,
        &format!(
            "{p}{}",
            aws_cluster(POOLS, "  budget {\n    monthly = 100000\n  }\n")
        ),
    );
    assert!(!text.contains("Over budget"), "{text}");
}

/// On-prem: a kubernetes cluster's partitions and an endpoint's replicas at the user's rates
/// (GPU rates per product, `*` for the rest), and an Azure spot pool at its spot figure.
#[test]
fn kubernetes_priced_from_user_rates_and_azure_spot() {
    let Some((wd, _g)) = workdir("cost-k8s") else {
        return;
    };
    let main = "provider \"modelplane\" {\n  kubernetes {\n    host = \"https://127.0.0.1:1\"\n  }\n  pricing {\n    cpu_hour        = 0.02\n    memory_gib_hour = 0.005\n    gpu_hour        = { \"nvidia-a100\" = 1.2, \"*\" = 0.5 }\n  }\n}\n\
resource \"modelplane_gpu_cluster\" \"gpu\" {\n  name     = \"gpu\"\n  platform = \"kubernetes\"\n  partition {\n    purpose       = \"inference\"\n    gpus          = 4\n    cpu           = \"32\"\n    memory        = \"128Gi\"\n    node_selector = { \"nvidia.com/gpu.product\" = \"NVIDIA-A100-SXM4-80GB\" }\n  }\n  partition {\n    purpose = \"dev\"\n    gpus    = 2\n  }\n}\n\
resource \"terraform_data\" \"version\" {\n  input = \"s3://models/m/1\"\n}\nresource \"modelplane_endpoint\" \"api\" {\n  name    = \"api\"\n  cluster = modelplane_gpu_cluster.gpu.id\n  image   = \"registry.example/modelplane-serve@sha256:00\"\n  variant {\n    name   = \"a\"\n    model  = terraform_data.version.output\n    weight = 100\n  }\n  shadow {\n    model = terraform_data.version.output\n  }\n  kubernetes {\n    cpu          = \"2\"\n    memory       = \"4Gi\"\n    gpus         = 1\n    min_replicas = 2\n    max_replicas = 4\n  }\n  pricing {\n    gpu_product = \"nvidia-a100\"\n  }\n}\n";
    let (p, _) = plan(&wd, main);
    let c = "modelplane_gpu_cluster.gpu";
    let inference = 32.0 * 0.02 + 128.0 * 0.005 + 4.0 * 1.2;
    let dev = 2.0 * 0.5;
    assert!((num(&p, c, "estimated_cost.hourly_max") - (inference + dev)).abs() < 1e-4);
    assert!((num(&p, c, "estimated_cost.items.0.unit_hourly") - inference).abs() < 1e-4);
    assert_eq!(p.planned(c, "estimated_cost.basis"), Some(J::from("user")));
    assert_eq!(p.planned(c, "estimated_cost.prices_date"), Some(J::Null));
    let e = "modelplane_endpoint.api";
    let replica = 2.0 * 0.02 + 4.0 * 0.005 + 1.2;
    assert!((num(&p, e, "estimated_cost.replica_hourly") - replica).abs() < 1e-4);
    assert!(
        (num(&p, e, "estimated_cost.monthly_min") - cents(replica * 2.0 * 730.0)).abs() < 0.011
    );
    assert!(
        (num(&p, e, "estimated_cost.monthly_max") - cents(replica * 4.0 * 730.0)).abs() < 0.011
    );
    assert!(
        (num(&p, e, "estimated_cost.shadow_monthly") - cents(replica * 4.0 * 730.0 / 2.0)).abs()
            < 0.011
    );

    // A GPU product without a rate (and no `*`): said, and the estimate is null.
    let no_star = main.replace(", \"*\" = 0.5", "");
    let (p, text) = plan(&wd, &no_star);
    assert_eq!(p.planned(c, "estimated_cost"), Some(J::Null));
    assert!(
        text.contains("pricing.gpu_hour has no rate for a GPU of unknown product"),
        "{text}"
    );

    // Azure: a spot pool at the table's spot figure, the system pool on demand.
    let (nc4, nc4_spot) = list("eastus", "Standard_NC4as_T4_v3");
    let (d4, _) = list("eastus", "Standard_D4s_v5");
    let azure = "provider \"modelplane\" {\n  azure {\n    subscription_id = \"00000000-0000-0000-0000-000000000000\"\n    resource_group  = \"ml\"\n    location        = \"eastus\"\n  }\n}\nresource \"modelplane_gpu_cluster\" \"gpu\" {\n  name     = \"gpu\"\n  platform = \"azure\"\n  node_pool {\n    name          = \"t4\"\n    purpose       = \"inference\"\n    instance_type = \"Standard_NC4as_T4_v3\"\n    gpu_count     = 1\n    spot          = true\n    min_size      = 1\n    max_size      = 5\n  }\n}\n";
    let (p, _) = plan(&wd, azure);
    let spot =
        nc4_spot.expect("the shipped table has a spot figure for Standard_NC4as_T4_v3 in eastus");
    assert!(spot < nc4);
    assert!((num(&p, c, "estimated_cost.hourly_max") - (3.0 * d4 + 5.0 * spot)).abs() < 1e-4);
    assert_eq!(
        p.planned(c, "estimated_cost.items.1.basis"),
        Some(J::from("spot"))
    );
    assert!((num(&p, c, "estimated_cost.items.1.on_demand_hourly") - nc4).abs() < 1e-9);
    assert!((num(&p, c, "estimated_cost.items.1.spot_hourly") - spot).abs() < 1e-9);
    assert_eq!(p.planned(c, "estimated_cost.basis"), Some(J::from("mixed")));
}

/// Applied on `local` (this machine at the user's rates, known once the inventory is): the
/// estimate is in the state, refresh and new rates leave it alone (no change planned), and a
/// change of the cluster computes it again, against which a budget is checked.
#[test]
fn estimate_is_stable_across_apply_refresh_and_new_rates() {
    let l = Local::new("cost-local");
    let provider = |rate: f64| {
        format!(
            "provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n  pricing {{\n    currency        = \"EUR\"\n    cpu_hour        = {rate}\n    memory_gib_hour = 0.001\n    gpu_hour        = {{ \"*\" = 0.9 }}\n  }}\n}}\n",
            l.path().display().to_string()
        )
    };
    let cluster = |extra: &str| {
        format!("resource \"modelplane_gpu_cluster\" \"here\" {{\n  name     = \"here\"\n  platform = \"local\"\n{extra}}}\n")
    };
    let c = "modelplane_gpu_cluster.here";
    let inv = modelplane_provider::platforms::local::inventory();
    let hourly = inv.cpus as f64 * 0.01
        + inv.memory_bytes as f64 / (1u64 << 30) as f64 * 0.001
        + inv.gpus.len() as f64 * 0.9;
    let first = (hourly * 730.0 * 100.0).round() / 100.0;
    let same = move |s: &Shown| {
        let got = s
            .attr(c, "estimated_cost.monthly_max")
            .and_then(|v| v.as_f64());
        match got {
            Some(g) if (g - first).abs() < 0.011 => Ok(()),
            other => Err(format!(
                "estimated_cost.monthly_max is {other:?}, want {first}"
            )),
        }
    };
    let same = std::sync::Arc::new(same);
    acc(
        "estimate_is_stable_across_apply_refresh_and_new_rates",
        TestCase {
            steps: vec![
                Step::new(format!("{}{}", provider(0.01), cluster("")))
                    .plan_check(tfplugin::acctest::plan_unknown(c, "estimated_cost"))
                    .check(same.clone())
                    .check(attr_equals(c, "estimated_cost.currency", "EUR"))
                    .check(attr_equals(c, "estimated_cost.items.0.kind", "machine")),
                // Ten times the CPU rate: nothing changes until the cluster does.
                Step::new(format!("{}{}", provider(0.1), cluster("")))
                    .plan_check(tfplugin::acctest::plan_action(c, "no-op"))
                    .check(same.clone()),
                // A budget is a change: the estimate is computed again, with the new rate.
                Step::new(format!(
                    "{}{}",
                    provider(0.1),
                    cluster("  budget {\n    monthly = 0.01\n  }\n")
                ))
                .expect_error(
                    "Over budget(.|\\n)*modelplane_gpu_cluster \"here\" is estimated at EUR",
                ),
            ],
            ..Default::default()
        },
    );
}
