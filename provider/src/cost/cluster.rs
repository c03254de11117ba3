//! The `estimated_cost` of a `modelplane_gpu_cluster`: on `aws` and `azure` its node pools
//! (and the EKS control plane, the AKS system pool) at table or override prices; on
//! `kubernetes` its partitions' quotas at your hardware's rates; on `local` and `container`
//! the machine at your rates.

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Diagnostics, Nesting, PathStep};

use super::{basis_of, cents, hourly, newest, Pricing, Unit, HOURS_PER_MONTH};
use crate::platforms::managed::pools::scaling;
use crate::resources::gpu_cluster::Model;

/// EKS charges for each cluster's control plane, standard support: US$0.10 an hour
/// (<https://aws.amazon.com/eks/pricing/>, read 2026-12-01).
pub const EKS_CONTROL_PLANE_HOUR: f64 = 0.10;
const EKS_READ_ON: &str = "2026-12-01";

/// One priced part of a cluster.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub name: String,
    /// `node_pool`, `system_pool`, `control_plane`, `partition` or `machine`.
    pub kind: String,
    pub instance_type: Option<String>,
    pub basis: String,
    pub unit_hourly: f64,
    pub count_min: i64,
    pub count_desired: i64,
    pub count_max: i64,
    pub monthly_desired: f64,
    pub monthly_max: f64,
    /// What one node would cost on demand and as spot capacity, each where known.
    pub on_demand_hourly: Option<f64>,
    pub spot_hourly: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Estimate {
    pub currency: String,
    /// `list`, `spot`, `user` or `mixed`.
    pub basis: String,
    /// The date of the newest table figure used; null when every figure is yours.
    pub prices_date: Option<String>,
    pub region: Option<String>,
    pub hourly_min: f64,
    pub hourly_desired: f64,
    pub hourly_max: f64,
    pub monthly_min: f64,
    pub monthly_desired: f64,
    pub monthly_max: f64,
    pub items: Vec<Item>,
}

impl Estimate {
    fn of(currency: &str, region: Option<String>, parts: Vec<(Item, Option<String>)>) -> Self {
        let sum = |f: &dyn Fn(&Item) -> f64| parts.iter().map(|(i, _)| f(i)).sum::<f64>();
        let h_min = sum(&|i| i.unit_hourly * i.count_min as f64);
        let h_des = sum(&|i| i.unit_hourly * i.count_desired as f64);
        let h_max = sum(&|i| i.unit_hourly * i.count_max as f64);
        Estimate {
            currency: currency.to_string(),
            basis: basis_of(parts.iter().map(|(i, _)| i.basis.as_str())),
            prices_date: newest(parts.iter().map(|(_, d)| d.clone())),
            region,
            hourly_min: hourly(h_min),
            hourly_desired: hourly(h_des),
            hourly_max: hourly(h_max),
            monthly_min: cents(h_min * HOURS_PER_MONTH),
            monthly_desired: cents(h_des * HOURS_PER_MONTH),
            monthly_max: cents(h_max * HOURS_PER_MONTH),
            items: parts.into_iter().map(|(i, _)| i).collect(),
        }
    }
}

impl super::Priced for Estimate {
    fn currency(&self) -> &str {
        &self.currency
    }
    fn monthly(&self) -> (f64, f64) {
        (self.monthly_min, self.monthly_max)
    }

    fn contributors(&self) -> Vec<(String, f64)> {
        self.items
            .iter()
            .map(|i| {
                let what = match &i.instance_type {
                    Some(t) => format!(
                        "{} {} ({} x {t}, {})",
                        i.kind.replace('_', " "),
                        i.name,
                        i.count_max,
                        i.basis
                    ),
                    None => format!("{} {} ({})", i.kind.replace('_', " "), i.name, i.basis),
                };
                (what, i.monthly_max)
            })
            .collect()
    }
}

fn item(
    name: &str,
    kind: &str,
    ty: Option<&str>,
    u: &Unit,
    (min, max, desired): (i64, i64, i64),
) -> (Item, Option<String>) {
    let h = u.hourly;
    (
        Item {
            name: name.to_string(),
            kind: kind.to_string(),
            instance_type: ty.map(str::to_string),
            basis: u.basis.to_string(),
            unit_hourly: hourly(h),
            count_min: min,
            count_desired: desired,
            count_max: max,
            monthly_desired: cents(h * desired as f64 * HOURS_PER_MONTH),
            monthly_max: cents(h * max as f64 * HOURS_PER_MONTH),
            on_demand_hourly: None,
            spot_hourly: None,
        },
        u.read_on.clone(),
    )
}

/// A pool's part, with what its type costs on demand and as spot capacity, so the estimate
/// shows what the other capacity type would change.
fn pool_item(
    pricing: &Pricing,
    (cloud, region): (&str, &str),
    (name, kind, ty): (&str, &str, &str),
    u: &Unit,
    sizes: (i64, i64, i64),
) -> (Item, Option<String>) {
    let (mut it, date) = item(name, kind, Some(ty), u, sizes);
    it.on_demand_hourly = pricing
        .instance(cloud, region, ty, false)
        .ok()
        .map(|u| hourly(u.hourly));
    // A spot figure only where one is known (not the on-demand ceiling).
    it.spot_hourly = pricing
        .instance(cloud, region, ty, true)
        .ok()
        .filter(|u| u.note.is_none())
        .map(|u| hourly(u.hourly));
    (it, date)
}

fn user(hourly: f64) -> Unit {
    Unit {
        hourly,
        basis: "user",
        read_on: None,
        shape: None,
        note: None,
    }
}

/// The estimate of a planned cluster: unknown while what it depends on is, null (with a
/// warning saying why) when a price is not known, or when nothing on this platform is priced.
pub fn estimate(
    m: &Model,
    config: &crate::ProviderConfig,
    diags: &mut Diagnostics,
) -> Attr<Estimate> {
    let pricing = &config.pricing;
    if !pricing.estimates {
        return Attr::Null;
    }
    let cur = pricing.currency.as_str();
    match m.platform.as_str() {
        cloud @ ("aws" | "azure") => {
            let Some(region) = Pricing::region(cloud, config) else {
                diags.warning(
                    "No cost estimate",
                    format!("modelplane_gpu_cluster {:?} is not priced: prices depend on the region, and the provider's {} is not set.", m.name, if cloud == "aws" { "aws.region (or AWS_REGION)" } else { "azure.location" }),
                );
                return Attr::Null;
            };
            let mut parts = Vec::new();
            let adopt = m
                .aws
                .as_ref()
                .and_then(|a| a.adopt)
                .or(m.azure.as_ref().and_then(|a| a.adopt))
                .unwrap_or(false);
            if !adopt {
                if cloud == "aws" {
                    let u = Unit {
                        hourly: EKS_CONTROL_PLANE_HOUR,
                        basis: "list",
                        read_on: Some(EKS_READ_ON.into()),
                        shape: None,
                        note: None,
                    };
                    parts.push(item("eks", "control_plane", None, &u, (1, 1, 1)));
                } else {
                    let ty = m
                        .azure
                        .as_ref()
                        .and_then(|a| a.system_vm_size.clone())
                        .unwrap_or_else(|| crate::platforms::azure::DEFAULT_SYSTEM_VM_SIZE.into());
                    match pricing.instance(cloud, &region, &ty, false) {
                        Ok(u) => parts.push(pool_item(
                            pricing,
                            (cloud, &region),
                            ("system", "system_pool", &ty),
                            &u,
                            (1, 3, 1),
                        )),
                        Err(e) => {
                            diags.warning_at(
                                AttributePath::attr("azure").then_attr("system_vm_size"),
                                "No cost estimate",
                                format!(
                                    "modelplane_gpu_cluster {:?}: {e} Its estimated_cost is null.",
                                    m.name
                                ),
                            );
                            return Attr::Null;
                        }
                    }
                }
            }
            for (i, pool) in m.node_pool.iter().enumerate() {
                let spec = pool.spec();
                let at = |a: &str| {
                    AttributePath(vec![
                        PathStep::Attr("node_pool".into()),
                        PathStep::Index(i as i64),
                        PathStep::Attr(a.into()),
                    ])
                };
                if spec.instance_types.is_empty() {
                    return Attr::Null;
                }
                // Several types: the dearest, so a budget holds whichever the cloud picks.
                let mut best: Option<(Unit, String)> = None;
                for ty in &spec.instance_types {
                    match pricing.instance(cloud, &region, ty, spec.spot) {
                        Ok(u) => {
                            if best.as_ref().is_none_or(|(b, _)| u.hourly > b.hourly) {
                                best = Some((u, ty.clone()));
                            }
                        }
                        Err(e) => {
                            diags.warning_at(at(if pool.instance_type.is_some() { "instance_type" } else { "instance_types" }), "No cost estimate", format!("modelplane_gpu_cluster {:?}, node_pool {:?}: {e} Its estimated_cost is null.", m.name, pool.name));
                            return Attr::Null;
                        }
                    }
                }
                let Some((u, ty)) = best else {
                    return Attr::Null;
                };
                if let Some(n) = &u.note {
                    diags.warning_at(
                        at("spot"),
                        "Spot price not known",
                        format!(
                            "modelplane_gpu_cluster {:?}, node_pool {:?}: {n}.",
                            m.name, pool.name
                        ),
                    );
                }
                parts.push(pool_item(
                    pricing,
                    (cloud, &region),
                    (&pool.name, "node_pool", &ty),
                    &u,
                    scaling(&spec, None),
                ));
            }
            Attr::Known(Estimate::of(cur, Some(region), parts))
        }
        "kubernetes" => {
            if !pricing.has_rates() || m.partition.is_empty() {
                return Attr::Null;
            }
            let mut parts = Vec::new();
            for (i, p) in m.partition.iter().enumerate() {
                let q = |v: &Option<String>| {
                    v.as_deref()
                        .and_then(crate::platforms::kubernetes::quantity)
                        .unwrap_or(0.0)
                };
                let product = p
                    .node_selector
                    .as_ref()
                    .and_then(|s| s.get("nvidia.com/gpu.product"))
                    .map(String::as_str);
                match pricing.rates(
                    q(&p.cpu),
                    q(&p.memory) / (1u64 << 30) as f64,
                    p.gpus as f64,
                    product,
                ) {
                    Ok(h) => parts.push(item(&p.purpose, "partition", None, &user(h), (1, 1, 1))),
                    Err(e) => {
                        let at = AttributePath(vec![
                            PathStep::Attr("partition".into()),
                            PathStep::Index(i as i64),
                        ]);
                        diags.warning_at(at, "No cost estimate", format!("modelplane_gpu_cluster {:?}, partition {:?}: {e}. Its estimated_cost is null.", m.name, p.purpose));
                        return Attr::Null;
                    }
                }
            }
            Attr::Known(Estimate::of(cur, None, parts))
        }
        _ => {
            if !pricing.has_rates() {
                return Attr::Null;
            }
            let (Attr::Known(cpus), Attr::Known(mem), Attr::Known(gpus)) =
                (&m.cpus, &m.memory_bytes, &m.gpus)
            else {
                return Attr::Unknown;
            };
            let mut h =
                match pricing.rates(*cpus as f64, *mem as f64 / (1u64 << 30) as f64, 0.0, None) {
                    Ok(h) => h,
                    Err(e) => {
                        diags.warning(
                            "No cost estimate",
                            format!(
                                "modelplane_gpu_cluster {:?}: {e}. Its estimated_cost is null.",
                                m.name
                            ),
                        );
                        return Attr::Null;
                    }
                };
            for g in gpus {
                match pricing.rates(0.0, 0.0, 1.0, Some(&g.name)) {
                    Ok(r) => h += r,
                    Err(e) => {
                        diags.warning(
                            "No cost estimate",
                            format!(
                                "modelplane_gpu_cluster {:?}: {e}. Its estimated_cost is null.",
                                m.name
                            ),
                        );
                        return Attr::Null;
                    }
                }
            }
            Attr::Known(Estimate::of(
                cur,
                None,
                vec![item("this machine", "machine", None, &user(h), (1, 1, 1))],
            ))
        }
    }
}

/// The schema of `estimated_cost`.
pub fn attribute() -> Attribute {
    let (n, s) = (super::number, super::string);
    let items = vec![
        s("name", "The pool's or partition's name (`eks` for the control plane, `system` for the AKS system pool)."),
        s("kind", "`node_pool`, `system_pool`, `control_plane`, `partition` or `machine`."),
        s("instance_type", "The instance type or VM size priced (of several, the dearest)."),
        s("basis", "`list` (the table's on-demand price), `spot` (the table's spot price) or `user` (your override or rates)."),
        n("unit_hourly", "What one node costs an hour."),
        n("count_min", "Nodes at the pool's smallest size."),
        n("count_desired", "Nodes at its desired size."),
        n("count_max", "Nodes at its largest size."),
        n("monthly_desired", "A month at the desired size (730 hours)."),
        n("monthly_max", "A month at the largest size."),
        n("on_demand_hourly", "What one node of this type costs an hour on demand (pools only)."),
        n("spot_hourly", "What one costs an hour as spot capacity, where a spot price is known (pools only): against `on_demand_hourly`, what spot would save."),
    ];
    Attribute::nested(
        "estimated_cost",
        Nesting::Single,
        vec![
            s("currency", "The provider's `pricing.currency`."),
            s("basis", "`list`, `spot`, `user`, or `mixed` when the parts differ."),
            s("prices_date", "The date of the newest price table figure used (null when every figure is yours)."),
            s("region", "The region priced (`aws`, `azure`)."),
            n("hourly_min", "An hour with every pool at its smallest size."),
            n("hourly_desired", "An hour at the desired sizes."),
            n("hourly_max", "An hour at the largest sizes."),
            n("monthly_min", "A month (730 hours) at the smallest sizes."),
            n("monthly_desired", "A month at the desired sizes."),
            n("monthly_max", "A month at the largest sizes: what a `budget` is checked against."),
            Attribute::nested("items", Nesting::List, items).computed().description("What makes up the estimate, part by part."),
        ],
    )
    .computed()
    .description("What the cluster costs, known at plan: on `aws` and `azure` its node pools (on-demand or spot) plus the EKS control plane or the AKS system pool, from the price table shipped with this provider version and the provider's `pricing` overrides; on `kubernetes` its partitions' quotas, and on `local` and `container` this machine, at the rates of `pricing` (null without rates). A price that is not known leaves it null with a warning. It is computed when the cluster is planned for a change and kept otherwise, so a new table or a refresh never shows a change on its own.")
}
