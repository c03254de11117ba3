//! Schemas: attributes, nested attributes and blocks, with the flags Terraform knows and
//! the planning flags the framework acts on (`requires_replace`, `stable`).
//!
//! [`Schema::check`] applies Terraform core's own schema rules (configschema's internal
//! validation), so a mistake in a schema fails at start-up and in tests, never in a
//! user's plan.

use std::collections::BTreeSet;

use crate::validators::Validator;
use crate::value::{AttributePath, Type};

/// How a nested attribute or block holds its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
    /// Blocks only: a single block that is always present (its attributes may be null).
    Group,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttrType {
    Type(Type),
    Nested {
        nesting: Nesting,
        attributes: Vec<Attribute>,
    },
}

/// One attribute of a block.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub ty: AttrType,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub write_only: bool,
    pub deprecated: bool,
    /// A change of this attribute replaces the resource.
    pub requires_replace: bool,
    /// Computed value that does not change once set: the plan keeps the prior value
    /// instead of marking it unknown when other attributes change.
    pub stable: bool,
    /// Rules the configured value must satisfy, checked by the framework before the
    /// handler's own `validate` (see [`crate::validators`]).
    pub validators: Vec<Validator>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Attribute {
            name: name.into(),
            ty: AttrType::Type(ty),
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: false,
            requires_replace: false,
            stable: false,
            validators: Vec::new(),
        }
    }
    /// An attribute whose value is an object (or list, set or map of objects) with its own attributes.
    pub fn nested(name: impl Into<String>, nesting: Nesting, attributes: Vec<Attribute>) -> Self {
        let mut a = Attribute::new(name, Type::Dynamic);
        a.ty = AttrType::Nested {
            nesting,
            attributes,
        };
        a
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub fn optional_computed(mut self) -> Self {
        self.optional = true;
        self.computed = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    pub fn stable(mut self) -> Self {
        self.stable = true;
        self
    }
    /// Adds a rule for the configured value; may be called several times.
    pub fn validate(mut self, v: Validator) -> Self {
        self.validators.push(v);
        self
    }

    /// The cty type of this attribute's value.
    pub fn value_type(&self) -> Type {
        match &self.ty {
            AttrType::Type(t) => t.clone(),
            AttrType::Nested {
                nesting,
                attributes,
            } => {
                let obj = Type::Object(
                    attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value_type()))
                        .collect(),
                );
                match nesting {
                    Nesting::Single | Nesting::Group => obj,
                    Nesting::List => Type::list(obj),
                    Nesting::Set => Type::set(obj),
                    Nesting::Map => Type::map(obj),
                }
            }
        }
    }

    /// The kind of value, for documentation: `String`, `List of Number`, `Attributes`.
    pub fn kind_label(&self) -> String {
        fn t(ty: &Type) -> String {
            match ty {
                Type::Bool => "Boolean".into(),
                Type::Number => "Number".into(),
                Type::String => "String".into(),
                Type::Dynamic => "Dynamic".into(),
                Type::List(e) => format!("List of {}", t(e)),
                Type::Set(e) => format!("Set of {}", t(e)),
                Type::Map(e) => format!("Map of {}", t(e)),
                Type::Object(_) => "Object".into(),
                Type::Tuple(_) => "Tuple".into(),
            }
        }
        match &self.ty {
            AttrType::Type(ty) => t(ty),
            AttrType::Nested { nesting, .. } => match nesting {
                Nesting::Single | Nesting::Group => "Attributes".into(),
                Nesting::List => "Attributes List".into(),
                Nesting::Set => "Attributes Set".into(),
                Nesting::Map => "Attributes Map".into(),
            },
        }
    }
}

/// A nested block type (`node_pool "gpu" { … }`).
#[derive(Clone, Debug, PartialEq)]
pub struct NestedBlock {
    pub type_name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
    /// A change inside this block replaces the resource.
    pub requires_replace: bool,
}

impl NestedBlock {
    pub fn new(type_name: impl Into<String>, nesting: Nesting, block: Block) -> Self {
        NestedBlock {
            type_name: type_name.into(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }
    pub fn min_items(mut self, n: i64) -> Self {
        self.min_items = n;
        self
    }
    pub fn max_items(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    pub fn value_type(&self) -> Type {
        let obj = self.block.value_type();
        match self.nesting {
            Nesting::Single | Nesting::Group => obj,
            Nesting::List => Type::list(obj),
            Nesting::Set => Type::set(obj),
            Nesting::Map => Type::map(obj),
        }
    }
}

/// A block: the body of a resource, data source, provider or nested block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: String,
    pub deprecated: bool,
}

impl Block {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    pub fn attribute(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    pub fn value_type(&self) -> Type {
        let mut attrs: std::collections::BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value_type()))
            .collect();
        for b in &self.blocks {
            attrs.insert(b.type_name.clone(), b.value_type());
        }
        Type::Object(attrs)
    }
    pub fn find_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn find_block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.type_name == name)
    }
}

/// What a schema describes; the reserved names differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    Provider,
    Resource,
    DataSource,
}

/// A versioned schema.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(block: Block) -> Self {
        Schema { version: 0, block }
    }
    pub fn version(mut self, v: i64) -> Self {
        self.version = v;
        self
    }
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    /// Checks the schema against Terraform core's rules; each problem is one line naming
    /// the attribute or block.
    pub fn check(&self, kind: SchemaKind) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let reserved: &[&str] = match kind {
            SchemaKind::Provider => &["alias", "version"],
            SchemaKind::Resource => &[
                "connection",
                "count",
                "depends_on",
                "for_each",
                "lifecycle",
                "provider",
                "provisioner",
            ],
            SchemaKind::DataSource => &["count", "depends_on", "for_each", "lifecycle", "provider"],
        };
        for name in self
            .block
            .attributes
            .iter()
            .map(|a| &a.name)
            .chain(self.block.blocks.iter().map(|b| &b.type_name))
        {
            if reserved.contains(&name.as_str()) {
                problems.push(format!("{name}: is a reserved name in {kind:?} schemas"));
            }
        }
        if self.version < 0 {
            problems.push(format!("schema version {} is negative", self.version));
        }
        check_block(
            &self.block,
            &AttributePath::root(),
            kind,
            false,
            &mut problems,
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_block(
    b: &Block,
    at: &AttributePath,
    kind: SchemaKind,
    in_set: bool,
    out: &mut Vec<String>,
) {
    let mut seen = BTreeSet::new();
    for a in &b.attributes {
        let p = at.clone().then_attr(&a.name);
        if !seen.insert(a.name.clone()) {
            out.push(format!("{p}: declared more than once"));
        }
        check_attribute(a, &p, kind, in_set, out);
    }
    for nb in &b.blocks {
        let p = at.clone().then_attr(&nb.type_name);
        if !valid_name(&nb.type_name) {
            out.push(format!(
                "{p}: block names may contain only lowercase letters, digits and underscores"
            ));
        }
        if !seen.insert(nb.type_name.clone()) {
            out.push(format!(
                "{p}: a block has the same name as another attribute or block"
            ));
        }
        match nb.nesting {
            Nesting::Single => {
                if nb.min_items != nb.max_items {
                    out.push(format!(
                        "{p}: min_items and max_items must match in single nesting mode"
                    ));
                } else if !(0..=1).contains(&nb.min_items) {
                    out.push(format!(
                        "{p}: min_items and max_items must be 0 or 1 in single nesting mode"
                    ));
                }
            }
            Nesting::Group => {
                if nb.min_items != 0 || nb.max_items != 0 {
                    out.push(format!(
                        "{p}: min_items and max_items cannot be used in group nesting mode"
                    ));
                }
            }
            Nesting::List | Nesting::Set => {
                if nb.min_items < 0 || nb.max_items < 0 {
                    out.push(format!("{p}: min_items and max_items cannot be negative"));
                }
                if nb.max_items != 0 && nb.min_items > nb.max_items {
                    out.push(format!(
                        "{p}: min_items must be less than or equal to max_items"
                    ));
                }
                if nb.nesting == Nesting::Set && has_dynamic(&nb.block.value_type()) {
                    out.push(format!(
                        "{p}: set blocks may not contain attributes of type dynamic"
                    ));
                }
            }
            Nesting::Map => {
                if nb.min_items != 0 || nb.max_items != 0 {
                    out.push(format!(
                        "{p}: min_items and max_items must both be 0 in map nesting mode"
                    ));
                }
            }
        }
        check_block(
            &nb.block,
            &p,
            kind,
            in_set || nb.nesting == Nesting::Set,
            out,
        );
    }
}

fn has_dynamic(t: &Type) -> bool {
    match t {
        Type::Dynamic => true,
        Type::List(e) | Type::Set(e) | Type::Map(e) => has_dynamic(e),
        Type::Object(a) => a.values().any(has_dynamic),
        Type::Tuple(ts) => ts.iter().any(has_dynamic),
        _ => false,
    }
}

fn check_attribute(
    a: &Attribute,
    p: &AttributePath,
    kind: SchemaKind,
    in_set: bool,
    out: &mut Vec<String>,
) {
    if !valid_name(&a.name) {
        out.push(format!(
            "{p}: attribute names may contain only lowercase letters, digits and underscores"
        ));
    }
    if !a.optional && !a.required && !a.computed {
        out.push(format!("{p}: must be required, optional or computed"));
    }
    if a.optional && a.required {
        out.push(format!("{p}: cannot be both optional and required"));
    }
    if a.computed && a.required {
        out.push(format!("{p}: cannot be both computed and required"));
    }
    if a.write_only {
        if a.computed {
            out.push(format!("{p}: write-only attributes cannot be computed"));
        }
        if kind != SchemaKind::Resource {
            out.push(format!(
                "{p}: write-only attributes are only allowed in managed resources"
            ));
        }
        if in_set {
            out.push(format!("{p}: write-only attributes cannot be inside a set"));
        }
    }
    if a.stable && !a.computed {
        out.push(format!("{p}: only computed attributes can be stable"));
    }
    if a.requires_replace && !(a.optional || a.required) {
        out.push(format!(
            "{p}: a purely computed attribute cannot require replacement"
        ));
    }
    for v in &a.validators {
        out.extend(
            v.schema_problems(a)
                .into_iter()
                .map(|problem| format!("{p}: {problem}")),
        );
    }
    match &a.ty {
        AttrType::Type(t) => {
            if in_set && has_dynamic(t) {
                out.push(format!(
                    "{p}: attributes inside a set cannot be of type dynamic"
                ));
            }
        }
        AttrType::Nested {
            nesting,
            attributes,
        } => {
            if *nesting == Nesting::Group {
                out.push(format!("{p}: nested attributes cannot use group nesting"));
            }
            let set = in_set || *nesting == Nesting::Set;
            let mut seen = BTreeSet::new();
            for na in attributes {
                let np = p.clone().then_attr(&na.name);
                if !seen.insert(na.name.clone()) {
                    out.push(format!("{np}: declared more than once"));
                }
                check_attribute(na, &np, kind, set, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_schema() -> Schema {
        Schema::new(
            Block::new()
                .attribute(
                    Attribute::new("name", Type::String)
                        .required()
                        .requires_replace(),
                )
                .attribute(Attribute::new("id", Type::String).computed().stable())
                .attribute(
                    Attribute::nested(
                        "gpu",
                        Nesting::Single,
                        vec![Attribute::new("count", Type::Number).optional()],
                    )
                    .optional(),
                )
                .block(
                    NestedBlock::new(
                        "node_pool",
                        Nesting::List,
                        Block::new().attribute(Attribute::new("purpose", Type::String).required()),
                    )
                    .min_items(1)
                    .max_items(4),
                ),
        )
    }

    #[test]
    fn a_good_schema_passes_and_has_the_implied_type() {
        let s = ok_schema();
        s.check(SchemaKind::Resource).unwrap();
        let t = s.value_type();
        let Type::Object(attrs) = t else { panic!() };
        assert_eq!(attrs["gpu"], Type::object([("count", Type::Number)]));
        assert_eq!(
            attrs["node_pool"],
            Type::list(Type::object([("purpose", Type::String)]))
        );
    }

    #[test]
    fn core_rules_are_enforced() {
        let s = Schema::new(
            Block::new()
                .attribute(Attribute::new("Bad-Name", Type::String).optional())
                .attribute(Attribute::new("both", Type::String).required().optional())
                .attribute(Attribute::new("nothing", Type::String))
                .attribute(Attribute::new("rc", Type::String).required().computed())
                .attribute(Attribute::new("count", Type::Number).optional())
                .attribute(Attribute::new("wo", Type::String).write_only().computed())
                .attribute(Attribute::new("dup", Type::String).optional())
                .block(
                    NestedBlock::new("dup", Nesting::Single, Block::new())
                        .min_items(0)
                        .max_items(1),
                )
                .block(
                    NestedBlock::new("one", Nesting::List, Block::new())
                        .min_items(3)
                        .max_items(2),
                )
                .block(NestedBlock::new(
                    "s",
                    Nesting::Set,
                    Block::new().attribute(Attribute::new("d", Type::Dynamic).optional()),
                )),
        );
        let problems = s.check(SchemaKind::Resource).unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "Bad-Name: attribute names",
            "both: cannot be both optional and required",
            "nothing: must be required, optional or computed",
            "rc: cannot be both computed and required",
            "count: is a reserved name",
            "wo: write-only attributes cannot be computed",
            "dup: a block has the same name",
            "dup: min_items and max_items must match",
            "one: min_items must be less than or equal",
            "s: set blocks may not contain attributes of type dynamic",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn write_only_only_in_resources() {
        let s = Schema::new(
            Block::new().attribute(
                Attribute::new("token", Type::String)
                    .optional()
                    .write_only(),
            ),
        );
        assert!(s.check(SchemaKind::Resource).is_ok());
        assert!(s.check(SchemaKind::DataSource).is_err());
    }
}
