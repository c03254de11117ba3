//! `modelplane_cost_estimate`: what-if prices from the provider's table and `pricing` block
//! (an instance type, a count, spot or not, a region), and sums of estimates for `check`
//! blocks across resources.

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Ctx, Schema, Type, Validator};

use crate::cost::{cents, hourly, Pricing, HOURS_PER_MONTH};

pub struct CostEstimate {
    pub config: std::sync::Arc<std::sync::OnceLock<crate::ProviderConfig>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub instance_type: Option<String>,
    pub instances: Option<i64>,
    pub spot: Option<bool>,
    pub cloud: Option<String>,
    pub region: Option<String>,
    pub add: Option<Vec<f64>>,
    pub currency: Attr<String>,
    pub basis: Attr<String>,
    pub prices_date: Attr<String>,
    pub unit_hourly: Attr<f64>,
    pub hourly: Attr<f64>,
    pub monthly: Attr<f64>,
    pub total_monthly: Attr<f64>,
}

#[tfplugin::async_trait]
impl tfplugin::DataSource for CostEstimate {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_cost_estimate"
    }

    fn schema(&self) -> Schema {
        let (n, s) = (crate::cost::number, crate::cost::string);
        Schema::new(
            Block::new()
                .description("What-if prices, from the price table shipped with the provider and its `pricing` block: what `instances` nodes of `instance_type` cost, on-demand or spot, in a region; and the sum of such figures and of resources' `estimated_cost`, for `check` blocks and outputs across resources. A price that is not known is an error, never a zero.")
                .attribute(Attribute::new("instance_type", Type::String).optional().description("An EC2 instance type (`g5.xlarge`) or Azure VM size (`Standard_NC24ads_A100_v4`). Unset: only `add` is summed."))
                .attribute(Attribute::new("instances", Type::Number).optional().validate(Validator::at_least(0.0).summary("Invalid count")).description("How many. Default: 1."))
                .attribute(Attribute::new("spot", Type::Bool).optional().description("Spot capacity."))
                .attribute(Attribute::new("cloud", Type::String).optional().validate(Validator::one_of(&["aws", "azure"]).summary("Invalid cloud")).description("`aws` or `azure`. Default: `azure` for `Standard_` sizes, else `aws`."))
                .attribute(Attribute::new("region", Type::String).optional().description("The region. Default: the provider's `aws.region` (or `AWS_REGION`) or `azure.location`."))
                .attribute(Attribute::new("add", Type::list(Type::Number)).optional().description("Monthly figures to add, e.g. `[modelplane_gpu_cluster.gpu.estimated_cost.monthly_max, modelplane_endpoint.api.estimated_cost.monthly_max]`."))
                .attribute(s("currency", "The provider's `pricing.currency`."))
                .attribute(s("basis", "`list`, `spot` or `user` (an override); null without `instance_type`."))
                .attribute(s("prices_date", "The date of the table figure used."))
                .attribute(n("unit_hourly", "One instance, an hour."))
                .attribute(n("hourly", "`instances` instances, an hour."))
                .attribute(n("monthly", "`instances` instances, a month (730 hours)."))
                .attribute(n("total_monthly", "`monthly` plus the sum of `add`.")),
        )
    }

    async fn read(&self, mut m: Model, ctx: &mut Ctx) -> Option<Model> {
        let config = crate::ProviderConfig::of(&self.config);
        let pricing = &config.pricing;
        m.currency = Attr::Known(pricing.currency.clone());
        let added: f64 = m.add.iter().flatten().sum();
        m.basis = Attr::Null;
        m.prices_date = Attr::Null;
        m.unit_hourly = Attr::Null;
        m.hourly = Attr::Null;
        m.monthly = Attr::Null;
        let mut monthly = 0.0;
        if let Some(ty) = &m.instance_type {
            let cloud = m.cloud.clone().unwrap_or_else(|| {
                if ty.starts_with("Standard_") {
                    "azure"
                } else {
                    "aws"
                }
                .to_string()
            });
            let Some(region) = m
                .region
                .clone()
                .or_else(|| Pricing::region(&cloud, &config))
            else {
                ctx.diags.error_at(
                    AttributePath::attr("region"),
                    "No region",
                    format!(
                        "Prices depend on the region: set region, or the provider's {}.",
                        if cloud == "aws" {
                            "aws.region"
                        } else {
                            "azure.location"
                        }
                    ),
                );
                return None;
            };
            let u = match pricing.instance(&cloud, &region, ty, m.spot.unwrap_or(false)) {
                Ok(u) => u,
                Err(e) => {
                    ctx.diags
                        .error_at(AttributePath::attr("instance_type"), "No price", e);
                    return None;
                }
            };
            if let Some(n) = &u.note {
                ctx.diags.warning_at(
                    AttributePath::attr("spot"),
                    "Spot price not known",
                    format!("{n}."),
                );
            }
            let count = m.instances.unwrap_or(1) as f64;
            monthly = u.hourly * count * HOURS_PER_MONTH;
            m.basis = Attr::Known(u.basis.to_string());
            m.prices_date = u.read_on.into();
            m.unit_hourly = Attr::Known(hourly(u.hourly));
            m.hourly = Attr::Known(hourly(u.hourly * count));
            m.monthly = Attr::Known(cents(monthly));
        }
        m.total_monthly = Attr::Known(cents(monthly + added));
        Some(m)
    }
}
