//! Plan-time cost estimates: the price table shipped with the provider (`prices.csv`), the
//! provider's `pricing` block (overrides and the rates of on-prem hardware), the estimates of
//! clusters and endpoints, and budgets.
//!
//! Estimates are computed offline from the table pinned to this provider version, so a plan
//! does not change under you. A price that is not known is said (a warning and a null
//! estimate), never guessed and never zero.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tfplugin::{
    Attribute, AttributePath, Block, Diagnostics, NestedBlock, Nesting, Type, Validator,
};

/// Hours in a month, as AWS and Azure price them (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The currency of the shipped table.
pub const TABLE_CURRENCY: &str = "USD";

/// One row of a price table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub cloud: String,
    pub region: String,
    pub instance_type: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub gpus: f64,
    pub gpu_product: String,
    pub on_demand_hour: f64,
    pub spot_hour: Option<f64>,
    pub source: String,
    pub read_on: String,
}

const HEADER: &str =
    "cloud,region,instance_type,vcpus,memory_gib,gpus,gpu_product,on_demand_hour,spot_hour,source,read_on";

/// Parses a price table (CSV with [`HEADER`]); `origin` names it in errors.
pub fn parse_table(text: &str, origin: &str) -> Result<Vec<Row>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => {
            return Err(format!(
                "{origin}: the first line must be the header `{HEADER}`"
            ))
        }
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in lines {
        let at = |what: String| format!("{origin} line {}: {what}", i + 1);
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 11 {
            return Err(at(format!("{} fields, expected 11 ({HEADER})", f.len())));
        }
        let num = |k: usize, name: &str| -> Result<f64, String> {
            f[k].parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| at(format!("{name} {:?} is not a number of at least 0", f[k])))
        };
        let row = Row {
            cloud: f[0].to_string(),
            region: f[1].to_string(),
            instance_type: f[2].to_string(),
            vcpus: num(3, "vcpus")?,
            memory_gib: num(4, "memory_gib")?,
            gpus: num(5, "gpus")?,
            gpu_product: f[6].to_string(),
            on_demand_hour: num(7, "on_demand_hour")?,
            spot_hour: if f[8].is_empty() {
                None
            } else {
                Some(num(8, "spot_hour")?)
            },
            source: f[9].to_string(),
            read_on: f[10].to_string(),
        };
        if row.cloud.is_empty() || row.region.is_empty() || row.instance_type.is_empty() {
            return Err(at("cloud, region and instance_type must be set".into()));
        }
        if row.on_demand_hour <= 0.0 {
            return Err(at(
                "on_demand_hour must be above 0 (an unknown price is left out, not zero)".into(),
            ));
        }
        if row.source.is_empty() || row.read_on.len() != 10 {
            return Err(at(
                "every row needs its source and the date it was read (YYYY-MM-DD)".into(),
            ));
        }
        if !seen.insert((
            row.cloud.clone(),
            row.region.clone(),
            row.instance_type.clone(),
        )) {
            return Err(at(format!(
                "{} {} in {} appears twice",
                row.cloud, row.instance_type, row.region
            )));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The table shipped with this provider version.
pub fn builtin() -> &'static [Row] {
    static TABLE: OnceLock<Vec<Row>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Checked by a unit test, so a bad table never ships.
        parse_table(include_str!("prices.csv"), "prices.csv").unwrap_or_default()
    })
}

/// The provider's `pricing` block.
#[derive(Clone, Debug)]
pub struct Pricing {
    /// Whether estimates are computed at all.
    pub estimates: bool,
    pub currency: String,
    /// Rows of `table_file`, in `currency`; they come before the shipped table's.
    pub table: Vec<Row>,
    pub instance_hour: BTreeMap<String, f64>,
    pub spot_hour: BTreeMap<String, f64>,
    pub gpu_hour: BTreeMap<String, f64>,
    pub cpu_hour: Option<f64>,
    pub memory_gib_hour: Option<f64>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            estimates: true,
            currency: TABLE_CURRENCY.into(),
            table: Vec::new(),
            instance_hour: BTreeMap::new(),
            spot_hour: BTreeMap::new(),
            gpu_hour: BTreeMap::new(),
            cpu_hour: None,
            memory_gib_hour: None,
        }
    }
}

/// What one node (or one instance) costs an hour, and where the figure came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub hourly: f64,
    /// `list`, `spot` or `user`.
    pub basis: &'static str,
    /// The table date of the figure (none for the user's own figures).
    pub read_on: Option<String>,
    /// The instance's shape, when a table knows it.
    pub shape: Option<(f64, f64, f64)>,
    /// Something the user should know about the figure (a spot pool priced at its ceiling).
    pub note: Option<String>,
}

impl Pricing {
    fn rows(&self) -> impl Iterator<Item = &Row> {
        let builtin: &[Row] = if self.currency == TABLE_CURRENCY {
            builtin()
        } else {
            &[]
        };
        self.table.iter().chain(builtin.iter())
    }

    fn row(&self, cloud: &str, region: &str, ty: &str) -> Option<&Row> {
        self.rows()
            .find(|r| r.cloud == cloud && r.region == region && r.instance_type == ty)
    }

    /// The shape (vCPUs, memory GiB, GPUs) of an instance type, from any region's row.
    fn shape(&self, cloud: &str, ty: &str) -> Option<(f64, f64, f64)> {
        self.rows()
            .find(|r| r.cloud == cloud && r.instance_type == ty)
            .map(|r| (r.vcpus, r.memory_gib, r.gpus))
    }

    /// The hourly price of one `ty` instance in `region` of `cloud` (`aws`, `azure`). An
    /// override wins over the table; a spot instance without a spot figure is priced at the
    /// on-demand price, the most spot capacity can cost, and says so.
    pub fn instance(
        &self,
        cloud: &str,
        region: &str,
        ty: &str,
        spot: bool,
    ) -> Result<Unit, String> {
        let shape = self.shape(cloud, ty);
        let user = |hourly: f64| Unit {
            hourly,
            basis: "user",
            read_on: None,
            shape,
            note: None,
        };
        if spot {
            if let Some(p) = self.spot_hour.get(ty) {
                return Ok(user(*p));
            }
        } else if let Some(p) = self.instance_hour.get(ty) {
            return Ok(user(*p));
        }
        if let Some(r) = self.row(cloud, region, ty) {
            let list = |hourly: f64, basis, note| Unit {
                hourly,
                basis,
                read_on: Some(r.read_on.clone()),
                shape,
                note,
            };
            return Ok(match (spot, r.spot_hour) {
                (false, _) => list(r.on_demand_hour, "list", None),
                (true, Some(s)) => list(s, "spot", None),
                (true, None) => list(
                    r.on_demand_hour,
                    "list",
                    Some(format!(
                        "no spot price of {ty} in {region} is in the table, so it is priced at its on-demand price ({} {}/h), the most spot capacity can cost; set pricing.spot_hour[{ty:?}] for a closer figure",
                        self.currency, r.on_demand_hour
                    )),
                ),
            });
        }
        // A spot pool with only an on-demand override: the override is its ceiling.
        if spot {
            if let Some(p) = self.instance_hour.get(ty) {
                let mut u = user(*p);
                u.note = Some(format!("no spot price of {ty} is known, so it is priced at pricing.instance_hour[{ty:?}], the most spot capacity can cost"));
                return Ok(u);
            }
        }
        let elsewhere: Vec<&str> = self
            .rows()
            .filter(|r| r.cloud == cloud && r.instance_type == ty)
            .map(|r| r.region.as_str())
            .collect();
        let why = if self.currency != TABLE_CURRENCY && self.table.is_empty() {
            format!(
                "the shipped table is in {TABLE_CURRENCY} and pricing.currency is {}",
                self.currency
            )
        } else if elsewhere.is_empty() {
            "it is not in the price table".to_string()
        } else {
            format!("the price table has it only in {}", elsewhere.join(", "))
        };
        Err(format!(
            "No price for {cloud} {ty} in {region}: {why}. Set pricing.{}[{ty:?}] in the provider block (or a pricing.table_file row).",
            if spot { "spot_hour" } else { "instance_hour" }
        ))
    }

    /// The `gpu_hour` rate of a GPU product: the longest key that the product's name
    /// contains (`nvidia-a100` matches `NVIDIA-A100-SXM4-80GB`), else the `*` key.
    pub fn gpu_rate(&self, product: Option<&str>) -> Option<f64> {
        let norm = |s: &str| s.to_ascii_lowercase().replace([' ', '_'], "-");
        let product = product.map(norm).unwrap_or_default();
        self.gpu_hour
            .iter()
            .filter(|(k, _)| *k != "*" && !product.is_empty() && product.contains(&norm(k)))
            .max_by_key(|(k, _)| k.len())
            .or_else(|| self.gpu_hour.get_key_value("*"))
            .map(|(_, v)| *v)
    }

    /// Whether any on-prem rate is set.
    pub fn has_rates(&self) -> bool {
        self.cpu_hour.is_some() || self.memory_gib_hour.is_some() || !self.gpu_hour.is_empty()
    }

    /// What CPUs, memory and GPUs cost an hour at the user's rates; an error names the rate
    /// that is missing.
    pub fn rates(
        &self,
        cpus: f64,
        memory_gib: f64,
        gpus: f64,
        product: Option<&str>,
    ) -> Result<f64, String> {
        let mut total = 0.0;
        if cpus > 0.0 {
            total += cpus * self.cpu_hour.ok_or("pricing.cpu_hour is not set")?;
        }
        if memory_gib > 0.0 {
            total += memory_gib
                * self
                    .memory_gib_hour
                    .ok_or("pricing.memory_gib_hour is not set")?;
        }
        if gpus > 0.0 {
            let rate = self.gpu_rate(product).ok_or_else(|| {
                format!(
                    "pricing.gpu_hour has no rate for {} (give one under that product's name, or under \"*\")",
                    product.map_or("a GPU of unknown product".to_string(), |p| format!("{p:?}"))
                )
            })?;
            total += gpus * rate;
        }
        Ok(total)
    }

    /// The region an estimate on `cloud` uses: the provider's, then the environment's.
    pub fn region(cloud: &str, config: &crate::ProviderConfig) -> Option<String> {
        match cloud {
            "aws" => config.aws.region.clone().or_else(|| {
                ["AWS_REGION", "AWS_DEFAULT_REGION"]
                    .iter()
                    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            }),
            "azure" => config.azure.location.clone(),
            _ => None,
        }
    }
}

/// Rounds to cents (monthly figures) or to a millionth (hourly ones: list prices have up to
/// six decimals).
pub fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
pub fn hourly(v: f64) -> f64 {
    (v * 1_000_000.0).round() / 1_000_000.0
}

/// The `pricing` block of the provider.
pub fn provider_block() -> NestedBlock {
    let rate = |name: &str, what: &str| {
        Attribute::new(name, Type::Number)
            .optional()
            .validate(Validator::at_least(0.0).summary("Invalid rate"))
            .description(what.to_string())
    };
    let rates = |name: &str, what: &str| {
        Attribute::new(name, Type::map(Type::Number))
            .optional()
            .description(what.to_string())
    };
    NestedBlock::new(
        "pricing",
        Nesting::Single,
        Block::new()
            .description("How clusters and endpoints are priced in their `estimated_cost`: the price table shipped with this provider version (AWS and Azure list prices, each row with its source and date), overrides per instance type, and the rates of your own hardware for `local`, `container` and `kubernetes`.")
            .attribute(Attribute::new("estimates", Type::Bool).optional().description("Compute `estimated_cost` and check budgets. Default: `true`."))
            .attribute(Attribute::new("currency", Type::String).optional().validate(Validator::regex(r"^[A-Z]{3}$", "an ISO 4217 code such as \"USD\" or \"EUR\"").summary("Invalid currency")).description("The currency of every figure: overrides, rates, `table_file` and budgets. Default: `USD`, the shipped table's; with another currency the shipped table is not used."))
            .attribute(Attribute::new("table_file", Type::String).optional().description("A price table of your own (CSV, the format of the shipped table: `cloud,region,instance_type,vcpus,memory_gib,gpus,gpu_product,on_demand_hour,spot_hour,source,read_on`), e.g. negotiated prices. Its rows come before the shipped table's."))
            .attribute(rates("instance_hour", "On-demand price an hour per instance type or VM size, e.g. `{ \"g5.xlarge\" = 0.85 }`; wins over the table."))
            .attribute(rates("spot_hour", "Spot price an hour per instance type or VM size; wins over the table for spot pools."))
            .attribute(rates("gpu_hour", "For your own hardware (`local`, `container`, `kubernetes`): what one GPU costs an hour, amortised, per GPU product, e.g. `{ \"nvidia-a100\" = 1.10, \"*\" = 0.40 }`. A key matches a product whose name contains it (the longest wins); `*` matches any."))
            .attribute(rate("cpu_hour", "For your own hardware: what one CPU core costs an hour, amortised."))
            .attribute(rate("memory_gib_hour", "For your own hardware: what one GiB of memory costs an hour, amortised.")),
    )
}

/// Reads the `pricing` block from the provider's configuration.
pub fn configure(config: &tfplugin::Config, diags: &mut Diagnostics) -> Pricing {
    let at = |a: &str| AttributePath::attr("pricing").then_attr(a);
    let get = |a: &str, diags: &mut Diagnostics| {
        config
            .get_path::<serde_json::Value>(&at(a), diags)
            .into_known()
    };
    let map = |a: &str, diags: &mut Diagnostics| -> BTreeMap<String, f64> {
        config
            .get_path::<BTreeMap<String, f64>>(&at(a), diags)
            .into_known()
            .unwrap_or_default()
    };
    let mut p = Pricing {
        estimates: get("estimates", diags)
            .and_then(|v| v.as_bool())
            .unwrap_or(true),
        currency: get("currency", diags)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| TABLE_CURRENCY.into()),
        table: Vec::new(),
        instance_hour: map("instance_hour", diags),
        spot_hour: map("spot_hour", diags),
        gpu_hour: map("gpu_hour", diags),
        cpu_hour: get("cpu_hour", diags).and_then(|v| v.as_f64()),
        memory_gib_hour: get("memory_gib_hour", diags).and_then(|v| v.as_f64()),
    };
    for (name, m) in [
        ("instance_hour", &p.instance_hour),
        ("spot_hour", &p.spot_hour),
        ("gpu_hour", &p.gpu_hour),
    ] {
        if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            diags.error_at(
                at(name),
                "Invalid rate",
                format!("pricing.{name}[{k:?}] is {v}; prices are at least 0."),
            );
        }
    }
    if let Some(file) = get("table_file", diags).and_then(|v| v.as_str().map(str::to_string)) {
        let path = crate::absolute(&file);
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_table(&text, &path) {
                Ok(rows) => p.table = rows,
                Err(e) => diags.error_at(at("table_file"), "Invalid price table", e),
            },
            Err(e) => diags.error_at(
                at("table_file"),
                "Cannot read the price table",
                format!("{path}: {e}"),
            ),
        }
    }
    p
}

/// The `budget` block of a cluster or an endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Budget {
    pub monthly: f64,
    pub action: Option<String>,
}

pub fn budget_block(what: &str) -> NestedBlock {
    NestedBlock::new(
        "budget",
        Nesting::Single,
        Block::new()
            .description(format!("A monthly budget for the {what}, checked at plan against `estimated_cost.monthly_max` (the most it can cost, at its largest size)."))
            .attribute(Attribute::new("monthly", Type::Number).required().validate(Validator::at_least(0.0).summary("Invalid budget")).description("The budget a month, in the provider's `pricing.currency` (default `USD`)."))
            .attribute(Attribute::new("action", Type::String).optional().validate(Validator::one_of(&["warn", "error"]).summary("Invalid budget action")).description("`error` (default) fails the plan when the estimate is over the budget; `warn` only says so.")),
    )
}

/// Checks an estimate against a budget: a warning or an error at `budget.monthly` naming the
/// resource, the estimate, the budget and the biggest contributors.
pub fn check_budget(
    resource: &str,
    budget: &Budget,
    currency: &str,
    (min, max): (f64, f64),
    mut contributors: Vec<(String, f64)>,
    diags: &mut Diagnostics,
) {
    if max <= budget.monthly {
        return;
    }
    contributors.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<String> = contributors
        .iter()
        .take(3)
        .map(|(what, m)| format!("{what}: {currency} {m:.2}/month"))
        .collect();
    let detail = format!(
        "{resource} is estimated at {currency} {max:.2} a month at its largest size ({currency} {min:.2} at its smallest), over its budget of {currency} {:.2} a month. Biggest contributors: {}. Lower the sizes, use spot capacity or smaller instances, or raise budget.monthly.",
        budget.monthly,
        if top.is_empty() { "none".to_string() } else { top.join("; ") }
    );
    let at = AttributePath::attr("budget").then_attr("monthly");
    if budget.action.as_deref() == Some("warn") {
        diags.warning_at(at, "Over budget", detail);
    } else {
        diags.error_at(at, "Over budget", detail);
    }
}

/// What a budget is checked against.
pub trait Priced {
    fn currency(&self) -> &str;
    /// A month at the smallest and at the largest size.
    fn monthly(&self) -> (f64, f64);
    /// What each part costs a month at the largest size, for the message.
    fn contributors(&self) -> Vec<(String, f64)>;
}

/// Checks a planned estimate against the resource's budget, if it has one; a budget that
/// cannot be checked (no estimate) is a warning saying so, with `hint` on how to get one.
pub fn check(
    resource: &str,
    budget: Option<&Budget>,
    estimate: &tfplugin::Attr<impl Priced>,
    hint: &str,
    diags: &mut Diagnostics,
) {
    let Some(b) = budget else { return };
    match estimate {
        tfplugin::Attr::Known(e) => check_budget(
            resource,
            b,
            e.currency(),
            e.monthly(),
            e.contributors(),
            diags,
        ),
        tfplugin::Attr::Null if !diags.has_errors() => diags.warning_at(
            AttributePath::attr("budget"),
            "Budget not checked",
            format!("{resource} has a budget but no estimate: {hint}"),
        ),
        _ => {}
    }
}

/// A computed number and a computed string of an `estimated_cost`.
pub(crate) fn number(name: &str, description: &str) -> Attribute {
    Attribute::new(name, Type::Number)
        .computed()
        .description(description.to_string())
}
pub(crate) fn string(name: &str, description: &str) -> Attribute {
    Attribute::new(name, Type::String)
        .computed()
        .description(description.to_string())
}

/// The newest table date among the figures used (none when every figure is the user's).
pub fn newest(dates: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    dates.into_iter().flatten().max()
}

/// `list`, `spot` or `user` when every figure has that basis, else `mixed`.
pub fn basis_of<'a>(bases: impl IntoIterator<Item = &'a str>) -> String {
    let mut it = bases.into_iter();
    let Some(first) = it.next() else {
        return "user".into();
    };
    if it.all(|b| b == first) {
        first.to_string()
    } else {
        "mixed".into()
    }
}

pub mod cluster;
pub mod endpoint;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses_and_every_row_has_a_source_and_date() {
        let rows = parse_table(include_str!("prices.csv"), "prices.csv").unwrap();
        assert!(rows.len() >= 20, "{} rows", rows.len());
        for r in &rows {
            assert!(r.on_demand_hour > 0.0, "{r:?}");
            assert!(matches!(r.cloud.as_str(), "aws" | "azure"), "{r:?}");
            assert!(r.read_on.starts_with("20"), "{r:?}");
            if let Some(s) = r.spot_hour {
                assert!(s < r.on_demand_hour, "spot above on-demand: {r:?}");
            }
        }
    }

    #[test]
    fn bad_tables_are_refused_with_the_line() {
        let h = HEADER;
        for (text, want) in [
            ("nope\n", "header"),
            (&format!("{h}\naws,us-east-1,x,1,1,0,,abc,,src,2026-01-01\n") as &str, "line 2: on_demand_hour"),
            (&format!("{h}\naws,us-east-1,x,1,1,0,,0,,src,2026-01-01\n"), "above 0"),
            (&format!("{h}\naws,us-east-1,x,1,1,0,,1,,,2026-01-01\n"), "source"),
            (&format!("{h}\naws,us-east-1,x,1,1,0,,1,,s,2026-01-01\naws,us-east-1,x,1,1,0,,2,,s,2026-01-01\n"), "twice"),
            (&format!("{h}\naws,us-east-1,x,1\n"), "4 fields"),
        ] {
            let e = parse_table(text, "t.csv").unwrap_err();
            assert!(e.contains(want), "{e} should say {want}");
        }
    }

    fn pricing() -> Pricing {
        Pricing {
            table: parse_table(
                &format!("{HEADER}\naws,us-east-1,g9.xlarge,4,16,1,nvidia-x1,2.00,0.80,test,2026-10-01\naws,us-east-1,g9.big,8,32,2,nvidia-x1,4.00,,test,2026-10-02\naws,eu-west-1,g9.only,8,32,2,nvidia-x1,4.00,,test,2026-10-02\n"),
                "t",
            )
            .unwrap(),
            ..Pricing::default()
        }
    }

    #[test]
    fn overrides_win_spot_falls_back_to_its_ceiling_and_unknowns_are_errors() {
        let mut p = pricing();
        assert_eq!(
            p.instance("aws", "us-east-1", "g9.xlarge", false)
                .unwrap()
                .hourly,
            2.0
        );
        let s = p.instance("aws", "us-east-1", "g9.xlarge", true).unwrap();
        assert_eq!((s.hourly, s.basis), (0.8, "spot"));
        let c = p.instance("aws", "us-east-1", "g9.big", true).unwrap();
        assert_eq!((c.hourly, c.basis), (4.0, "list"));
        assert!(c.note.unwrap().contains("most spot capacity can cost"));
        p.instance_hour.insert("g9.xlarge".into(), 1.5);
        let o = p.instance("aws", "us-east-1", "g9.xlarge", false).unwrap();
        assert_eq!(
            (o.hourly, o.basis, o.shape),
            (1.5, "user", Some((4.0, 16.0, 1.0)))
        );
        let e = p
            .instance("aws", "us-east-1", "g9.only", false)
            .unwrap_err();
        assert!(
            e.contains("only in eu-west-1") && e.contains("instance_hour[\"g9.only\"]"),
            "{e}"
        );
        let e = p.instance("aws", "us-east-1", "zz.nano", true).unwrap_err();
        assert!(
            e.contains("not in the price table") && e.contains("spot_hour"),
            "{e}"
        );
    }

    #[test]
    fn gpu_rates_match_the_longest_key_then_star() {
        let mut p = Pricing::default();
        p.gpu_hour.insert("nvidia-a100".into(), 1.1);
        p.gpu_hour.insert("nvidia-a100-sxm4-80gb".into(), 1.5);
        assert_eq!(p.gpu_rate(Some("NVIDIA-A100-SXM4-80GB")), Some(1.5));
        assert_eq!(p.gpu_rate(Some("NVIDIA A100-PCIE-40GB")), Some(1.1));
        assert_eq!(p.gpu_rate(Some("Tesla T4")), None);
        p.gpu_hour.insert("*".into(), 0.3);
        assert_eq!(p.gpu_rate(Some("Tesla T4")), Some(0.3));
        assert_eq!(p.gpu_rate(None), Some(0.3));
        let e = Pricing::default().rates(2.0, 0.0, 0.0, None).unwrap_err();
        assert!(e.contains("cpu_hour"), "{e}");
    }

    #[test]
    fn another_currency_does_not_use_the_shipped_table() {
        let p = Pricing {
            currency: "EUR".into(),
            ..Pricing::default()
        };
        let ty = &builtin()[0];
        let e = p
            .instance(&ty.cloud, &ty.region, &ty.instance_type, false)
            .unwrap_err();
        assert!(e.contains("in USD and pricing.currency is EUR"), "{e}");
    }
}
