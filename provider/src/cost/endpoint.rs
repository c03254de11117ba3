//! The `estimated_cost` of a `modelplane_endpoint`: its replicas × what each requests (CPU,
//! memory, GPUs), priced as a share of the instance type its `pricing` block names, or at the
//! rates of the provider's `pricing` block; split between variants by weight, and the shadow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Diagnostics, NestedBlock, Nesting, Type};

use super::{cents, hourly, Pricing, HOURS_PER_MONTH};
use crate::resources::endpoint::Model;

/// The endpoint's `pricing` block: what its replicas run on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PriceAs {
    pub instance_type: Option<String>,
    pub spot: Option<bool>,
    pub gpu_product: Option<String>,
}

pub fn block() -> NestedBlock {
    NestedBlock::new(
        "pricing",
        Nesting::Single,
        Block::new()
            .description("How the endpoint is priced in `estimated_cost`. With `instance_type`, each replica costs its share of one such node (the largest of its CPU, memory and GPU shares), at the table's or the provider's override price; without it, what each replica requests is priced at the provider's `pricing` rates.")
            .attribute(Attribute::new("instance_type", Type::String).optional().description("The instance type or VM size the replicas run on (on `aws` or `azure` clusters), e.g. the node pool's `g5.xlarge`."))
            .attribute(Attribute::new("spot", Type::Bool).optional().description("The nodes are spot capacity."))
            .attribute(Attribute::new("gpu_product", Type::String).optional().description("The GPU product the replicas get, e.g. `nvidia-a100`, to pick the provider's `pricing.gpu_hour` rate.")),
    )
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Estimate {
    pub currency: String,
    pub basis: String,
    pub prices_date: Option<String>,
    pub replica_hourly: f64,
    pub replicas_min: i64,
    pub replicas_max: i64,
    pub hourly_min: f64,
    pub hourly_max: f64,
    pub monthly_min: f64,
    pub monthly_max: f64,
    /// Each variant's share of `monthly_max`, by weight.
    pub variants: BTreeMap<String, f64>,
    /// The shadow's share of `monthly_max`: it runs every request again.
    pub shadow_monthly: Option<f64>,
}

impl super::Priced for Estimate {
    fn currency(&self) -> &str {
        &self.currency
    }
    fn monthly(&self) -> (f64, f64) {
        (self.monthly_min, self.monthly_max)
    }

    fn contributors(&self) -> Vec<(String, f64)> {
        let mut c: Vec<(String, f64)> = self
            .variants
            .iter()
            .map(|(v, m)| {
                (
                    format!("variant {v} ({} replicas at most)", self.replicas_max),
                    *m,
                )
            })
            .collect();
        if let Some(s) = self.shadow_monthly {
            c.push(("shadow".into(), s));
        }
        c
    }
}

/// What one replica requests: (CPU cores, memory GiB, GPUs), or `None` where the platform
/// sets no requests (`local`).
fn requests(m: &Model) -> Option<(f64, f64, f64, i64, i64)> {
    let gib = (1u64 << 30) as f64;
    if let Some(k) = &m.kubernetes {
        let q = crate::platforms::kubernetes::quantity;
        // The workload's defaults when unset.
        let cpu = q(k.cpu.as_deref().unwrap_or("500m")).unwrap_or(0.0);
        let mem = q(k.memory.as_deref().unwrap_or("1Gi")).unwrap_or(0.0) / gib;
        return Some((
            cpu,
            mem,
            k.gpus.unwrap_or(0) as f64,
            k.min_replicas(),
            k.max_replicas(),
        ));
    }
    if let Some(c) = &m.container {
        let mem = c
            .memory
            .as_deref()
            .and_then(|s| crate::resources::endpoint::spec::parse_bytes(s).ok())
            .map_or(0.0, |b| b as f64 / gib);
        return Some((c.cpus.unwrap_or(0.0), mem, c.gpus.unwrap_or(0) as f64, 1, 1));
    }
    None
}

pub fn estimate(
    m: &Model,
    config: &crate::ProviderConfig,
    diags: &mut Diagnostics,
) -> Attr<Estimate> {
    let pricing = &config.pricing;
    if !pricing.estimates {
        return Attr::Null;
    }
    let Attr::Known(cluster) = &m.cluster else {
        return Attr::Unknown;
    };
    let cloud = cluster.split('/').next().unwrap_or_default();
    let on_kubernetes = matches!(cloud, "kubernetes" | "aws" | "azure");
    let Some((cpu, mem, gpus, rmin, rmax)) =
        requests(m).or(on_kubernetes.then_some((0.5, 1.0, 0.0, 1, 1)))
    else {
        return Attr::Null;
    };
    let price_as = m.pricing.clone();
    let no = |diags: &mut Diagnostics, at: AttributePath, e: String| {
        diags.warning_at(
            at,
            "No cost estimate",
            format!(
                "modelplane_endpoint {:?}: {e} Its estimated_cost is null.",
                m.name
            ),
        );
        Attr::Null
    };
    let (replica, basis, date) = match price_as.as_ref().and_then(|p| p.instance_type.clone()) {
        Some(ty) => {
            let at = AttributePath::attr("pricing").then_attr("instance_type");
            let region = Pricing::region(cloud, config).or_else(|| {
                // Not on a cloud cluster: the table's only region for the type, if it has one.
                let mut regions = super::builtin()
                    .iter()
                    .chain(&pricing.table)
                    .filter(|r| r.instance_type == ty)
                    .map(|r| r.region.clone());
                let first = regions.next();
                first.filter(|_| regions.next().is_none())
            });
            let Some(region) = region else {
                return no(diags, at, format!("{ty} is priced by region, and the provider's aws.region or azure.location is not set."));
            };
            let table_cloud = if cloud == "aws" || cloud == "azure" {
                cloud.to_string()
            } else if ty.starts_with("Standard_") {
                "azure".into()
            } else {
                "aws".into()
            };
            let spot = price_as.as_ref().and_then(|p| p.spot).unwrap_or(false);
            let u = match pricing.instance(&table_cloud, &region, &ty, spot) {
                Ok(u) => u,
                Err(e) => return no(diags, at, e),
            };
            let Some((vcpus, node_mem, node_gpus)) = u.shape else {
                return no(diags, at, format!("the shape of {ty} (vCPUs, memory, GPUs) is not in the price table, so a replica's share of it is not known; add a pricing.table_file row for it."));
            };
            let ratio = |want: f64, have: f64| {
                if want > 0.0 && have > 0.0 {
                    want / have
                } else {
                    0.0
                }
            };
            if gpus > node_gpus {
                return no(
                    diags,
                    at,
                    format!("a replica asks for {gpus} GPUs and {ty} has {node_gpus}."),
                );
            }
            let share = ratio(cpu, vcpus)
                .max(ratio(mem, node_mem))
                .max(ratio(gpus, node_gpus))
                .min(1.0);
            (u.hourly * share, u.basis.to_string(), u.read_on)
        }
        None => {
            if !pricing.has_rates() {
                return Attr::Null;
            }
            let product = price_as.as_ref().and_then(|p| p.gpu_product.as_deref());
            match pricing.rates(cpu, mem, gpus, product) {
                Ok(h) => (h, "user".to_string(), None),
                Err(e) => return no(diags, AttributePath::attr("pricing"), format!("{e}.")),
            }
        }
    };
    // Shares by weight; unknown weights (a computed default) leave it unknown.
    let mut weights = BTreeMap::new();
    for v in &m.variant {
        match &v.weight {
            Attr::Known(w) => {
                weights.insert(v.name.clone(), *w as f64);
            }
            Attr::Null => {
                weights.insert(v.name.clone(), 0.0);
            }
            Attr::Unknown => return Attr::Unknown,
        }
    }
    let monthly_max = replica * rmax as f64 * HOURS_PER_MONTH;
    let total: f64 = weights.values().sum();
    // With a shadow every request runs twice: half the compute is the shadow's.
    let served = if m.shadow.is_some() {
        monthly_max / 2.0
    } else {
        monthly_max
    };
    let variants = weights
        .into_iter()
        .map(|(k, w)| (k, cents(if total > 0.0 { served * w / total } else { 0.0 })))
        .collect();
    Attr::Known(Estimate {
        currency: pricing.currency.clone(),
        basis,
        prices_date: date,
        replica_hourly: hourly(replica),
        replicas_min: rmin,
        replicas_max: rmax,
        hourly_min: hourly(replica * rmin as f64),
        hourly_max: hourly(replica * rmax as f64),
        monthly_min: cents(replica * rmin as f64 * HOURS_PER_MONTH),
        monthly_max: cents(monthly_max),
        variants,
        shadow_monthly: m.shadow.is_some().then(|| cents(monthly_max / 2.0)),
    })
}

pub fn attribute() -> Attribute {
    let (n, s) = (super::number, super::string);
    Attribute::nested(
        "estimated_cost",
        Nesting::Single,
        vec![
            s("currency", "The provider's `pricing.currency`."),
            s("basis", "`list`, `spot` or `user`."),
            s("prices_date", "The date of the price table figure used (null for your own figures)."),
            n("replica_hourly", "What one replica costs an hour."),
            n("replicas_min", "Fewest replicas (`kubernetes.min_replicas`; 1 elsewhere)."),
            n("replicas_max", "Most replicas (`kubernetes.max_replicas`)."),
            n("hourly_min", "An hour at the fewest replicas."),
            n("hourly_max", "An hour at the most replicas."),
            n("monthly_min", "A month (730 hours) at the fewest replicas."),
            n("monthly_max", "A month at the most replicas: what a `budget` is checked against."),
            Attribute::new("variants", Type::map(Type::Number)).computed().description("Each variant's share of `monthly_max`, by weight: what the canary adds."),
            n("shadow_monthly", "The shadow's share of `monthly_max` (every request runs twice, so half); null without a shadow."),
        ],
    )
    .computed()
    .description("What the endpoint costs, known at plan: its replicas (at `kubernetes.min_replicas` and `max_replicas`) × what each requests (`kubernetes.cpu`, `memory`, `gpus`, or `container.cpus`, `memory`, `gpus`), priced as a share of the `pricing.instance_type` node, or at the provider's `pricing` rates; null on `local` (the machine is priced on its cluster) and without prices. It is computed when the endpoint is planned for a change and kept otherwise.")
}
