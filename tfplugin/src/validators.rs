//! Declarative attribute validators, in the manner of terraform-plugin-framework-validators:
//! attach them to an [`Attribute`] with [`Attribute::validate`] and the framework checks
//! every configuration against them (ValidateResourceConfig, ValidateDataResourceConfig
//! and ValidateProviderConfig) before the handler's own `validate` runs. The generated
//! documentation states each rule after the attribute's description.
//!
//! A validator only looks at known, non-null values. `one_of`, `regex`, `between`,
//! `at_least` and `at_most` apply to a string or number attribute, or to each known
//! element of a list, set or map of strings or numbers; `length` applies to the value
//! itself (characters of a string, elements of a collection); `custom` gets the whole
//! value.
//!
//! ```
//! use tfplugin::{Attribute, Type, Validator};
//!
//! let restart = Attribute::new("restart", Type::String)
//!     .optional()
//!     .validate(
//!         Validator::one_of(&["no", "on-failure", "always", "unless-stopped"])
//!             .summary("Invalid restart policy"),
//!     );
//! let weight = Attribute::new("weight", Type::Number)
//!     .optional()
//!     .validate(Validator::between(0.0, 100.0));
//! # let _ = (restart, weight);
//! ```

use std::fmt;

use regex::Regex;

use crate::diag::Diagnostics;
use crate::schema::{AttrType, Attribute, Block, Nesting};
use crate::value::{AttributePath, Number, Type, Value};

/// The summary of a validator's diagnostic unless [`Validator::summary`] sets another.
const DEFAULT_SUMMARY: &str = "Invalid value";

/// A rule an attribute's configured value must satisfy.
#[derive(Clone, Debug, PartialEq)]
pub struct Validator {
    rule: Rule,
    summary: Option<String>,
}

/// A custom check: `Err` holds the whole detail of the diagnostic.
type CheckFn = fn(&Value) -> Result<(), String>;

#[derive(Clone)]
enum Rule {
    OneOf(Vec<String>),
    Range {
        min: Option<f64>,
        max: Option<f64>,
    },
    Regex {
        pattern: String,
        /// The compiled pattern, or why it does not compile (a schema error).
        re: Result<Regex, String>,
        what: String,
    },
    Length {
        min: usize,
        max: Option<usize>,
    },
    Custom {
        description: String,
        check: CheckFn,
    },
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Rule::OneOf(a), Rule::OneOf(b)) => a == b,
            (Rule::Range { min: a, max: b }, Rule::Range { min: c, max: d }) => a == c && b == d,
            (
                Rule::Regex {
                    pattern: a,
                    what: b,
                    ..
                },
                Rule::Regex {
                    pattern: c,
                    what: d,
                    ..
                },
            ) => a == c && b == d,
            (Rule::Length { min: a, max: b }, Rule::Length { min: c, max: d }) => a == c && b == d,
            (
                Rule::Custom {
                    description: a,
                    check: f,
                },
                Rule::Custom {
                    description: b,
                    check: g,
                },
            ) => a == b && std::ptr::fn_addr_eq(*f, *g),
            _ => false,
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::OneOf(v) => f.debug_tuple("OneOf").field(v).finish(),
            Rule::Range { min, max } => f
                .debug_struct("Range")
                .field("min", min)
                .field("max", max)
                .finish(),
            Rule::Regex { pattern, what, .. } => f
                .debug_struct("Regex")
                .field("pattern", pattern)
                .field("what", what)
                .finish(),
            Rule::Length { min, max } => f
                .debug_struct("Length")
                .field("min", min)
                .field("max", max)
                .finish(),
            Rule::Custom { description, .. } => f
                .debug_struct("Custom")
                .field("description", description)
                .finish_non_exhaustive(),
        }
    }
}

impl Validator {
    fn new(rule: Rule) -> Self {
        Validator {
            rule,
            summary: None,
        }
    }

    /// A string that must be one of `values`.
    pub fn one_of(values: &[&str]) -> Self {
        Self::new(Rule::OneOf(values.iter().map(|v| v.to_string()).collect()))
    }

    /// A number from `lo` to `hi`, both included.
    pub fn between(lo: f64, hi: f64) -> Self {
        Self::new(Rule::Range {
            min: Some(lo),
            max: Some(hi),
        })
    }

    /// A number no smaller than `lo`.
    pub fn at_least(lo: f64) -> Self {
        Self::new(Rule::Range {
            min: Some(lo),
            max: None,
        })
    }

    /// A number no larger than `hi`.
    pub fn at_most(hi: f64) -> Self {
        Self::new(Rule::Range {
            min: None,
            max: Some(hi),
        })
    }

    /// A string in which `pattern` matches (anchor it with `^…$` to match the whole
    /// string). `what` describes the accepted strings for errors and documentation,
    /// e.g. "a DNS label (lower-case letters, digits and '-')".
    ///
    /// A pattern that does not compile is reported by [`crate::Schema::check`].
    pub fn regex(pattern: &str, what: &str) -> Self {
        Self::new(Rule::Regex {
            pattern: pattern.to_string(),
            re: Regex::new(pattern).map_err(|e| e.to_string()),
            what: what.to_string(),
        })
    }

    /// The number of characters of a string, or of elements of a list, set or map: at
    /// least `min` and, when given, at most `max`.
    pub fn length(min: usize, max: Option<usize>) -> Self {
        Self::new(Rule::Length { min, max })
    }

    /// Any rule. `description` is a sentence for the documentation; `check` gets the
    /// whole (known, non-null) value and its `Err` text is the diagnostic's detail.
    pub fn custom(description: &str, check: fn(&Value) -> Result<(), String>) -> Self {
        Self::new(Rule::Custom {
            description: description.to_string(),
            check,
        })
    }

    /// The summary of the diagnostic this validator reports (default: "Invalid value").
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// The rule as documentation states it for an attribute of type `ty`, e.g.
    /// "One of `no`, `always`." or "Between 0 and 100.".
    pub fn description(&self, ty: &Type) -> String {
        let plain = match &self.rule {
            Rule::OneOf(values) => {
                let v: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
                format!("One of {}.", v.join(", "))
            }
            Rule::Range {
                min: Some(lo),
                max: Some(hi),
            } => format!("Between {} and {}.", num(*lo), num(*hi)),
            Rule::Range { min: Some(lo), .. } => format!("At least {}.", num(*lo)),
            Rule::Range { max: Some(hi), .. } => format!("At most {}.", num(*hi)),
            Rule::Range { .. } => String::new(),
            Rule::Regex { what, .. } => format!("Must be {what}."),
            Rule::Length { min, max } => {
                let unit = if *ty == Type::String {
                    "character"
                } else {
                    "element"
                };
                let mut s = length_rule(*min, *max, unit);
                if let Some(first) = s.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                format!("{s}.")
            }
            Rule::Custom { description, .. } => description.trim().to_string(),
        };
        if self.per_element() && element_type(ty).is_some() {
            let mut s = plain;
            if let Some(first) = s.get_mut(..1) {
                first.make_ascii_lowercase();
            }
            format!("Each element: {s}")
        } else {
            plain
        }
    }

    /// Whether the rule looks at each element of a collection rather than the collection.
    fn per_element(&self) -> bool {
        matches!(
            self.rule,
            Rule::OneOf(_) | Rule::Range { .. } | Rule::Regex { .. }
        )
    }

    fn kind(&self) -> &'static str {
        match &self.rule {
            Rule::OneOf(_) => "one_of",
            Rule::Range {
                min: Some(_),
                max: Some(_),
            } => "between",
            Rule::Range { min: Some(_), .. } => "at_least",
            Rule::Range { .. } => "at_most",
            Rule::Regex { .. } => "regex",
            Rule::Length { .. } => "length",
            Rule::Custom { .. } => "custom",
        }
    }

    /// Problems with this validator on `attr`, for [`crate::Schema::check`]: a rule that
    /// does not fit the attribute's type, bounds that cannot hold, a bad pattern.
    pub(crate) fn schema_problems(&self, attr: &Attribute) -> Vec<String> {
        let mut out = Vec::new();
        let kind = self.kind();
        let (fits, ty_label) = match &attr.ty {
            AttrType::Type(ty) => {
                let scalar = element_type(ty).unwrap_or(ty);
                let fits = match &self.rule {
                    Rule::OneOf(_) | Rule::Regex { .. } => *scalar == Type::String,
                    Rule::Range { .. } => *scalar == Type::Number,
                    Rule::Length { .. } => *ty == Type::String || ty.is_collection(),
                    Rule::Custom { .. } => true,
                };
                (fits, ty.friendly())
            }
            AttrType::Nested { nesting, .. } => {
                let fits = match &self.rule {
                    Rule::Length { .. } => {
                        matches!(nesting, Nesting::List | Nesting::Set | Nesting::Map)
                    }
                    Rule::Custom { .. } => true,
                    _ => false,
                };
                (fits, attr.value_type().friendly())
            }
        };
        if !fits {
            out.push(format!(
                "validator {kind} does not apply to an attribute of type {ty_label}"
            ));
        }
        match &self.rule {
            Rule::OneOf(values) if values.is_empty() => {
                out.push("validator one_of has no values".to_string());
            }
            Rule::Range { min, max } => {
                if min.iter().chain(max).any(|b| !b.is_finite()) {
                    out.push(format!("validator {kind} has a bound that is not finite"));
                } else if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi {
                        out.push(format!("validator between: {lo} is more than {hi}"));
                    }
                }
            }
            Rule::Regex {
                pattern,
                re: Err(e),
                ..
            } => {
                out.push(format!("validator regex: invalid pattern {pattern:?}: {e}"));
            }
            Rule::Length {
                min,
                max: Some(max),
            } if min > max => {
                out.push(format!("validator length: {min} is more than {max}"));
            }
            _ => {}
        }
        out
    }

    /// Checks a known, non-null attribute value at `path`.
    fn apply(&self, attr: &Attribute, v: &Value, path: &AttributePath, diags: &mut Diagnostics) {
        let v = match v {
            Value::Dynamic(_, inner) => inner.as_ref(),
            v => v,
        };
        if self.per_element() {
            match v {
                Value::List(items) => {
                    for (i, e) in items.iter().enumerate() {
                        let p = path.clone().then_index(i as i64);
                        self.apply_one(attr, e, &p, diags);
                    }
                    return;
                }
                // Set elements have no address in the protocol; the set itself is named.
                Value::Set(items) => {
                    for e in items {
                        self.apply_one(attr, e, path, diags);
                    }
                    return;
                }
                Value::Map(m) => {
                    for (k, e) in m {
                        let p = path.clone().then_key(k);
                        self.apply_one(attr, e, &p, diags);
                    }
                    return;
                }
                _ => {}
            }
        }
        self.apply_one(attr, v, path, diags);
    }

    fn apply_one(
        &self,
        attr: &Attribute,
        v: &Value,
        path: &AttributePath,
        diags: &mut Diagnostics,
    ) {
        if v.is_null() || v.is_unknown() {
            return;
        }
        if let Some(detail) = self.violation(attr, v) {
            let summary = self.summary.as_deref().unwrap_or(DEFAULT_SUMMARY);
            diags.error_at(path.clone(), summary, detail);
        }
    }

    /// The error detail when `v` breaks the rule.
    fn violation(&self, attr: &Attribute, v: &Value) -> Option<String> {
        let name = &attr.name;
        // Values of sensitive attributes stay out of diagnostics.
        let shown = if attr.sensitive {
            String::new()
        } else {
            format!(" {v}")
        };
        match &self.rule {
            Rule::OneOf(values) => {
                let s = v.as_str()?;
                if values.iter().any(|x| x == s) {
                    return None;
                }
                let quoted: Vec<String> = values.iter().map(|x| format!("{x:?}")).collect();
                let list = match quoted.as_slice() {
                    [one] => one.clone(),
                    [init @ .., last] => format!("one of {} or {last}", init.join(", ")),
                    [] => "one of no values".to_string(),
                };
                Some(format!("{name}{shown} must be {list}."))
            }
            Rule::Range { min, max } => {
                let n = v.as_number()?;
                let lo = min.and_then(Number::from_f64);
                let hi = max.and_then(Number::from_f64);
                let low = lo.as_ref().is_some_and(|lo| n < lo);
                let high = hi.as_ref().is_some_and(|hi| n > hi);
                if !low && !high {
                    return None;
                }
                Some(match (lo, hi) {
                    (Some(lo), Some(hi)) => format!("{name}{shown} must be between {lo} and {hi}."),
                    (Some(lo), None) => format!("{name}{shown} must be {lo} or more."),
                    (None, Some(hi)) => format!("{name}{shown} must be {hi} or less."),
                    (None, None) => return None,
                })
            }
            Rule::Regex { re, what, .. } => {
                let s = v.as_str()?;
                let re = re.as_ref().ok()?;
                if re.is_match(s) {
                    return None;
                }
                Some(format!("{name}{shown} is not {what}."))
            }
            Rule::Length { min, max } => {
                let (n, unit) = match v {
                    Value::String(s) => (s.chars().count(), "character"),
                    Value::List(e) | Value::Set(e) | Value::Tuple(e) => (e.len(), "element"),
                    Value::Map(m) => (m.len(), "element"),
                    _ => return None,
                };
                if n >= *min && max.is_none_or(|max| n <= max) {
                    return None;
                }
                Some(format!(
                    "{name} must have {}, not {n}.",
                    length_rule(*min, *max, unit)
                ))
            }
            Rule::Custom { check, .. } => check(v).err(),
        }
    }
}

/// "between 1 and 63 characters", "at least 1 element", "exactly 8 characters".
fn length_rule(min: usize, max: Option<usize>, unit: &str) -> String {
    let units = |n: usize| {
        if n == 1 {
            unit.to_string()
        } else {
            format!("{unit}s")
        }
    };
    match max {
        Some(max) if max == min => format!("exactly {min} {}", units(min)),
        Some(max) if min == 0 => format!("at most {max} {}", units(max)),
        Some(max) => format!("between {min} and {max} {}", units(max)),
        None => format!("at least {min} {}", units(min)),
    }
}

/// A bound as the user wrote it: `100`, not `100.0`.
fn num(f: f64) -> String {
    Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string())
}

/// The element type of a list, set or map of primitives.
fn element_type(ty: &Type) -> Option<&Type> {
    match ty {
        Type::List(e) | Type::Set(e) | Type::Map(e)
            if matches!(**e, Type::String | Type::Number | Type::Bool) =>
        {
            Some(e)
        }
        _ => None,
    }
}

/// Checks a configuration `value` of `block` against every validator in the schema,
/// through nested attributes and nested blocks, reporting each failure at its attribute.
pub fn check(block: &Block, value: &Value, diags: &mut Diagnostics) {
    check_block(block, value, &AttributePath::root(), diags);
}

fn check_block(block: &Block, value: &Value, at: &AttributePath, diags: &mut Diagnostics) {
    if !matches!(value, Value::Object(_)) {
        return;
    }
    for a in &block.attributes {
        let v = value.get_attr(&a.name).unwrap_or(&Value::Null);
        check_attribute(a, v, &at.clone().then_attr(&a.name), diags);
    }
    for nb in &block.blocks {
        let v = value.get_attr(&nb.type_name).unwrap_or(&Value::Null);
        let p = at.clone().then_attr(&nb.type_name);
        each_object(nb.nesting, v, &p, &mut |obj, path| {
            check_block(&nb.block, obj, path, diags)
        });
    }
}

fn check_attribute(a: &Attribute, v: &Value, path: &AttributePath, diags: &mut Diagnostics) {
    if v.is_null() || v.is_unknown() {
        return;
    }
    for validator in &a.validators {
        validator.apply(a, v, path, diags);
    }
    if let AttrType::Nested {
        nesting,
        attributes,
    } = &a.ty
    {
        each_object(*nesting, v, path, &mut |obj, p| {
            if !matches!(obj, Value::Object(_)) {
                return;
            }
            for na in attributes {
                let nv = obj.get_attr(&na.name).unwrap_or(&Value::Null);
                check_attribute(na, nv, &p.clone().then_attr(&na.name), diags);
            }
        });
    }
}

/// Calls `f` with each object of a nested attribute or block value and its path.
fn each_object(
    nesting: Nesting,
    v: &Value,
    path: &AttributePath,
    f: &mut dyn FnMut(&Value, &AttributePath),
) {
    match (nesting, v) {
        (Nesting::Single | Nesting::Group, Value::Object(_)) => f(v, path),
        (Nesting::List, Value::List(items)) => {
            for (i, e) in items.iter().enumerate() {
                f(e, &path.clone().then_index(i as i64));
            }
        }
        (Nesting::Set, Value::Set(items)) => {
            for e in items {
                f(e, path);
            }
        }
        (Nesting::Map, Value::Map(m)) => {
            for (k, e) in m {
                f(e, &path.clone().then_key(k));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{NestedBlock, Schema, SchemaKind};

    fn run(block: &Block, value: Value) -> Vec<(String, String, String)> {
        let mut d = Diagnostics::new();
        check(block, &value, &mut d);
        d.iter()
            .map(|d| {
                (
                    d.attribute
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    d.summary.clone(),
                    d.detail.clone(),
                )
            })
            .collect()
    }

    fn one(a: Attribute, v: Value) -> Vec<(String, String, String)> {
        let name = a.name.clone();
        run(&Block::new().attribute(a), Value::object([(name, v)]))
    }

    fn restart() -> Attribute {
        Attribute::new("restart", Type::String).optional().validate(
            Validator::one_of(&["no", "on-failure", "always", "unless-stopped"])
                .summary("Invalid restart policy"),
        )
    }

    #[test]
    fn one_of() {
        assert!(one(restart(), Value::string("always")).is_empty());
        assert_eq!(
            one(restart(), Value::string("sometimes")),
            vec![(
                "restart".into(),
                "Invalid restart policy".into(),
                "restart \"sometimes\" must be one of \"no\", \"on-failure\", \"always\" or \"unless-stopped\".".into()
            )]
        );
        let single = Attribute::new("mode", Type::String)
            .optional()
            .validate(Validator::one_of(&["fast"]));
        assert_eq!(
            one(single, Value::string("slow"))[0].2,
            "mode \"slow\" must be \"fast\"."
        );
    }

    #[test]
    fn between_at_least_at_most() {
        let weight = || {
            Attribute::new("weight", Type::Number)
                .optional()
                .validate(Validator::between(0.0, 100.0))
        };
        assert!(one(weight(), Value::number(0)).is_empty());
        assert!(one(weight(), Value::number(100)).is_empty());
        assert_eq!(
            one(weight(), Value::number(101)),
            vec![(
                "weight".into(),
                "Invalid value".into(),
                "weight 101 must be between 0 and 100.".into()
            )]
        );
        let frac = Attribute::new("ratio", Type::Number)
            .optional()
            .validate(Validator::between(0.0, 0.5));
        assert_eq!(
            one(frac, Value::Number("0.75".parse().unwrap()))[0].2,
            "ratio 0.75 must be between 0 and 0.5."
        );

        let min = || {
            Attribute::new("concurrency", Type::Number)
                .optional()
                .validate(Validator::at_least(1.0))
        };
        assert!(one(min(), Value::number(1)).is_empty());
        assert_eq!(
            one(min(), Value::number(0))[0].2,
            "concurrency 0 must be 1 or more."
        );

        let max = || {
            Attribute::new("gpus", Type::Number)
                .optional()
                .validate(Validator::at_most(8.0))
        };
        assert!(one(max(), Value::number(8)).is_empty());
        assert_eq!(
            one(max(), Value::number(9))[0].2,
            "gpus 9 must be 8 or less."
        );
    }

    #[test]
    fn regex() {
        let label = || {
            Attribute::new("name", Type::String)
                .required()
                .validate(Validator::regex(
                    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                    "a DNS label (lower-case letters, digits and '-')",
                ))
        };
        assert!(one(label(), Value::string("my-model")).is_empty());
        assert_eq!(
            one(label(), Value::string("My_Model")),
            vec![(
                "name".into(),
                "Invalid value".into(),
                "name \"My_Model\" is not a DNS label (lower-case letters, digits and '-').".into()
            )]
        );
    }

    #[test]
    fn length_of_strings_and_collections() {
        let s = || {
            Attribute::new("name", Type::String)
                .required()
                .validate(Validator::length(1, Some(5)))
        };
        assert!(one(s(), Value::string("héllo")).is_empty());
        assert_eq!(
            one(s(), Value::string("toolong"))[0].2,
            "name must have between 1 and 5 characters, not 7."
        );
        assert_eq!(
            one(s(), Value::string(""))[0].2,
            "name must have between 1 and 5 characters, not 0."
        );
        let l = || {
            Attribute::new("zones", Type::list(Type::String))
                .optional()
                .validate(Validator::length(1, None))
        };
        assert!(one(l(), Value::List(vec![Value::string("a")])).is_empty());
        assert_eq!(
            one(l(), Value::List(vec![]))[0],
            (
                "zones".into(),
                "Invalid value".into(),
                "zones must have at least 1 element, not 0.".into()
            )
        );
        let m = Attribute::new("labels", Type::map(Type::String))
            .optional()
            .validate(Validator::length(0, Some(1)));
        let two = Value::Map(
            [("a", "x"), ("b", "y")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::string(v)))
                .collect(),
        );
        assert_eq!(
            one(m, two)[0].2,
            "labels must have at most 1 element, not 2."
        );
    }

    #[test]
    fn custom() {
        fn even(v: &Value) -> Result<(), String> {
            match v.as_number().and_then(|n| n.as_i64()) {
                Some(n) if n % 2 == 0 => Ok(()),
                _ => Err(format!("replicas {v} must be even.")),
            }
        }
        let a = || {
            Attribute::new("replicas", Type::Number)
                .optional()
                .validate(Validator::custom("Must be even.", even).summary("Odd replicas"))
        };
        assert!(one(a(), Value::number(2)).is_empty());
        assert_eq!(
            one(a(), Value::number(3)),
            vec![(
                "replicas".into(),
                "Odd replicas".into(),
                "replicas 3 must be even.".into()
            )]
        );
    }

    #[test]
    fn unknown_and_null_are_skipped() {
        assert!(one(restart(), Value::Null).is_empty());
        assert!(one(restart(), Value::unknown()).is_empty());
        let tags = Attribute::new("tags", Type::list(Type::String))
            .optional()
            .validate(Validator::one_of(&["a", "b"]));
        assert_eq!(
            one(
                tags,
                Value::List(vec![
                    Value::unknown(),
                    Value::string("a"),
                    Value::string("c")
                ])
            ),
            vec![(
                "tags[2]".into(),
                "Invalid value".into(),
                "tags \"c\" must be one of \"a\" or \"b\".".into()
            )]
        );
        let fail = Attribute::new("x", Type::String)
            .optional()
            .validate(Validator::custom("Never.", |_| Err("no".into())));
        assert!(one(fail.clone(), Value::unknown()).is_empty());
        assert!(one(fail, Value::Null).is_empty());
    }

    #[test]
    fn elements_of_maps_and_sets() {
        let ports = || {
            Attribute::new("ports", Type::map(Type::Number))
                .optional()
                .validate(Validator::between(1.0, 65535.0))
        };
        let bad = Value::Map([("http".to_string(), Value::number(70000))].into());
        assert_eq!(
            one(ports(), bad)[0],
            (
                "ports[\"http\"]".into(),
                "Invalid value".into(),
                "ports 70000 must be between 1 and 65535.".into()
            )
        );
        let set = Attribute::new("zones", Type::set(Type::String))
            .optional()
            .validate(Validator::one_of(&["a"]));
        assert_eq!(
            one(
                set,
                Value::Set(vec![Value::string("a"), Value::string("b")])
            )[0]
            .0,
            "zones"
        );
    }

    #[test]
    fn nested_blocks_and_attributes_name_the_full_path() {
        let block = Block::new()
            .block(NestedBlock::new(
                "container",
                Nesting::Single,
                Block::new().attribute(restart()),
            ))
            .block(NestedBlock::new(
                "variant",
                Nesting::List,
                Block::new().attribute(
                    Attribute::new("weight", Type::Number)
                        .optional()
                        .validate(Validator::between(0.0, 100.0)),
                ),
            ))
            .attribute(
                Attribute::nested(
                    "kubernetes",
                    Nesting::Single,
                    vec![Attribute::nested(
                        "expose",
                        Nesting::Single,
                        vec![Attribute::new("kind", Type::String)
                            .optional()
                            .validate(Validator::one_of(&["service", "ingress"]))],
                    )
                    .optional()],
                )
                .optional(),
            );
        let value = Value::object([
            (
                "container",
                Value::object([("restart", Value::string("never"))]),
            ),
            (
                "variant",
                Value::List(vec![
                    Value::object([("weight", Value::number(50))]),
                    Value::object([("weight", Value::number(150))]),
                    Value::unknown(),
                ]),
            ),
            (
                "kubernetes",
                Value::object([("expose", Value::object([("kind", Value::string("route"))]))]),
            ),
        ]);
        let out = run(&block, value);
        let paths: Vec<&str> = out.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "kubernetes.expose.kind",
                "container.restart",
                "variant[1].weight"
            ]
        );
        assert_eq!(out[2].2, "weight 150 must be between 0 and 100.");
    }

    #[test]
    fn sensitive_values_stay_out_of_errors() {
        let a = Attribute::new("token", Type::String)
            .optional()
            .sensitive()
            .validate(Validator::regex("^tok_", "a token (tok_…)"));
        assert_eq!(
            one(a, Value::string("secret"))[0].2,
            "token is not a token (tok_…)."
        );
    }

    #[test]
    fn validators_that_do_not_fit_are_schema_errors() {
        let s = Schema::new(
            Block::new()
                .attribute(
                    Attribute::new("n", Type::Number)
                        .optional()
                        .validate(Validator::one_of(&["a"])),
                )
                .attribute(
                    Attribute::new("s", Type::String)
                        .optional()
                        .validate(Validator::between(0.0, 1.0)),
                )
                .attribute(
                    Attribute::new("r", Type::String)
                        .optional()
                        .validate(Validator::regex("(", "anything")),
                )
                .attribute(
                    Attribute::new("b", Type::Number)
                        .optional()
                        .validate(Validator::between(2.0, 1.0)),
                )
                .attribute(
                    Attribute::new("l", Type::Bool)
                        .optional()
                        .validate(Validator::length(1, None)),
                )
                .attribute(
                    Attribute::new("ok", Type::list(Type::String))
                        .optional()
                        .validate(Validator::one_of(&["a"]))
                        .validate(Validator::length(1, Some(3))),
                ),
        );
        let all = s.check(SchemaKind::Resource).unwrap_err().join("\n");
        for needle in [
            "n: validator one_of does not apply to an attribute of type number",
            "s: validator between does not apply to an attribute of type string",
            "r: validator regex: invalid pattern \"(\"",
            "b: validator between: 2 is more than 1",
            "l: validator length does not apply to an attribute of type bool",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert!(!all.contains("ok:"), "{all}");
    }

    #[test]
    fn descriptions() {
        let s = &Type::String;
        assert_eq!(
            Validator::one_of(&["no", "always"]).description(s),
            "One of `no`, `always`."
        );
        assert_eq!(
            Validator::between(0.0, 100.0).description(&Type::Number),
            "Between 0 and 100."
        );
        assert_eq!(
            Validator::at_least(1.0).description(&Type::Number),
            "At least 1."
        );
        assert_eq!(
            Validator::at_most(0.5).description(&Type::Number),
            "At most 0.5."
        );
        assert_eq!(
            Validator::regex("^a$", "the letter a").description(s),
            "Must be the letter a."
        );
        assert_eq!(
            Validator::length(1, Some(63)).description(s),
            "Between 1 and 63 characters."
        );
        assert_eq!(
            Validator::length(1, None).description(&Type::list(Type::String)),
            "At least 1 element."
        );
        assert_eq!(
            Validator::one_of(&["a"]).description(&Type::list(Type::String)),
            "Each element: one of `a`."
        );
        assert_eq!(
            Validator::custom("Must be even.", |_| Ok(())).description(&Type::Number),
            "Must be even."
        );
    }
}
