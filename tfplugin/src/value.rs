//! The cty value model: types, values (with null and unknown as first-class states),
//! arbitrary-precision numbers and attribute paths.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bigdecimal::BigDecimal;

/// A cty type, as Terraform sends it in schemas and dynamic values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    Bool,
    Number,
    String,
    /// Any type; values of this type travel with their concrete type.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }
    pub fn object<I, S>(attrs: I) -> Type
    where
        I: IntoIterator<Item = (S, Type)>,
        S: Into<String>,
    {
        Type::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A short human form, as Terraform prints types (`list(string)`).
    pub fn friendly(&self) -> String {
        match self {
            Type::Bool => "bool".into(),
            Type::Number => "number".into(),
            Type::String => "string".into(),
            Type::Dynamic => "any".into(),
            Type::List(t) => format!("list({})", t.friendly()),
            Type::Set(t) => format!("set({})", t.friendly()),
            Type::Map(t) => format!("map({})", t.friendly()),
            Type::Object(a) => {
                let inner: Vec<String> = a
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", v.friendly()))
                    .collect();
                format!("object({{{}}})", inner.join(", "))
            }
            Type::Tuple(ts) => {
                let inner: Vec<String> = ts.iter().map(Type::friendly).collect();
                format!("tuple([{}])", inner.join(", "))
            }
        }
    }

    pub fn is_collection(&self) -> bool {
        matches!(self, Type::List(_) | Type::Set(_) | Type::Map(_))
    }
}

/// An arbitrary-precision decimal number, as cty numbers are.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(BigDecimal);

impl Number {
    pub fn from_i64(v: i64) -> Self {
        Number(BigDecimal::from(v))
    }
    pub fn from_u64(v: u64) -> Self {
        Number(BigDecimal::from(v))
    }
    /// A finite float, taken at its shortest round-tripping decimal form (as cty does).
    pub fn from_f64(v: f64) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        BigDecimal::from_str(&format!("{v}")).ok().map(Number)
    }
    pub fn as_i64(&self) -> Option<i64> {
        if self.0.is_integer() {
            use bigdecimal::ToPrimitive;
            self.0.to_i64()
        } else {
            None
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        if self.0.is_integer() {
            use bigdecimal::ToPrimitive;
            self.0.to_u64()
        } else {
            None
        }
    }
    /// The nearest float.
    pub fn to_f64(&self) -> f64 {
        use bigdecimal::ToPrimitive;
        self.0.to_f64().unwrap_or(f64::NAN)
    }
    /// The float with exactly this value, when there is one.
    pub fn as_exact_f64(&self) -> Option<f64> {
        let f = self.to_f64();
        let back = Number::from_f64(f)?;
        (back == *self).then_some(f)
    }
    pub fn decimal(&self) -> &BigDecimal {
        &self.0
    }
}

impl FromStr for Number {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.contains(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c))) {
            return Err(format!("{s:?} is not a number"));
        }
        BigDecimal::from_str(t)
            .map(Number)
            .map_err(|_| format!("{s:?} is not a number"))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.normalized();
        if n.is_integer() {
            write!(f, "{}", n.with_scale(0))
        } else {
            write!(f, "{}", n.to_plain_string())
        }
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number::from_i64(v)
    }
}

/// Refinements Terraform (≥ 1.6) attaches to unknown values: what is already known of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refinements {
    /// `Some(false)`: definitely not null. `Some(true)`: definitely null.
    pub is_null: Option<bool>,
    pub string_prefix: Option<String>,
    /// Lower bound and whether it is inclusive.
    pub number_min: Option<(Number, bool)>,
    /// Upper bound and whether it is inclusive.
    pub number_max: Option<(Number, bool)>,
    pub length_min: Option<i64>,
    pub length_max: Option<i64>,
}

impl Refinements {
    pub fn is_empty(&self) -> bool {
        *self == Refinements::default()
    }
}

/// A cty value. Null and unknown are values of any type, as in cty.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Unknown(Refinements),
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value held in a `dynamic` attribute, with its concrete type.
    Dynamic(Type, Box<Value>),
}

impl Value {
    pub fn unknown() -> Value {
        Value::Unknown(Refinements::default())
    }
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }
    pub fn object<I, S>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown(_))
    }
    /// True when neither this value nor anything inside it is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown(_) => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Dynamic(_, v) => v.as_str(),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    /// The attribute `name` of an object value (null for a null object).
    pub fn get_attr(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.get(name),
            _ => None,
        }
    }
    pub fn get_attr_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) => m.get_mut(name),
            _ => None,
        }
    }
    /// Elements of a list, set or tuple.
    pub fn elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The value at `path`, if it exists.
    pub fn at(&self, path: &AttributePath) -> Option<&Value> {
        let mut cur = self;
        for step in &path.0 {
            cur = match (step, cur) {
                (PathStep::Attr(a), Value::Object(m)) => m.get(a)?,
                (PathStep::Key(k), Value::Map(m)) => m.get(k)?,
                (PathStep::Index(i), v) => v.elements()?.get(usize::try_from(*i).ok()?)?,
                (_, Value::Dynamic(_, v)) => v.at(&AttributePath(vec![step.clone()]))?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The type this value most plausibly has, for values written without a schema
    /// (used for `dynamic` attributes). Empty collections take element type `dynamic`.
    pub fn infer_type(&self) -> Type {
        match self {
            Value::Null | Value::Unknown(_) => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(v) => Type::list(v.first().map_or(Type::Dynamic, Value::infer_type)),
            Value::Set(v) => Type::set(v.first().map_or(Type::Dynamic, Value::infer_type)),
            Value::Map(m) => Type::map(m.values().next().map_or(Type::Dynamic, Value::infer_type)),
            Value::Object(m) => {
                Type::Object(m.iter().map(|(k, v)| (k.clone(), v.infer_type())).collect())
            }
            Value::Tuple(v) => Type::Tuple(v.iter().map(Value::infer_type).collect()),
            Value::Dynamic(t, _) => t.clone(),
        }
    }

    /// Shapes a value built from a typed model (or by hand) to `ty`: sequences become
    /// lists, sets or tuples, maps become objects with every attribute present, whole
    /// numbers stay numbers, values for `dynamic` are wrapped with their type.
    pub fn conform(self, ty: &Type) -> Result<Value, String> {
        match (self, ty) {
            (Value::Null, _) => Ok(Value::Null),
            (Value::Unknown(r), _) => Ok(Value::Unknown(r)),
            (Value::Dynamic(t, v), Type::Dynamic) => Ok(Value::Dynamic(t, v)),
            (Value::Dynamic(t, v), want) if t == *want => Ok(*v),
            (v, Type::Dynamic) => {
                let t = v.infer_type();
                Ok(Value::Dynamic(t, Box::new(v)))
            }
            (Value::Bool(b), Type::Bool) => Ok(Value::Bool(b)),
            (Value::Number(n), Type::Number) => Ok(Value::Number(n)),
            (Value::String(s), Type::String) => Ok(Value::String(s)),
            (Value::Number(n), Type::String) => Ok(Value::String(n.to_string())),
            (Value::Bool(b), Type::String) => Ok(Value::String(b.to_string())),
            (Value::String(s), Type::Number) => Number::from_str(&s)
                .map(Value::Number)
                .map_err(|e| format!("{e}: expected a number")),
            (Value::List(v) | Value::Set(v) | Value::Tuple(v), Type::List(et)) => Ok(Value::List(
                v.into_iter()
                    .map(|e| e.conform(et))
                    .collect::<Result<_, _>>()?,
            )),
            (Value::List(v) | Value::Set(v) | Value::Tuple(v), Type::Set(et)) => {
                let mut out: Vec<Value> = Vec::with_capacity(v.len());
                for e in v {
                    let e = e.conform(et)?;
                    if !out.contains(&e) {
                        out.push(e);
                    }
                }
                Ok(Value::Set(out))
            }
            (Value::List(v) | Value::Set(v) | Value::Tuple(v), Type::Tuple(ts)) => {
                if v.len() != ts.len() {
                    return Err(format!("expected {} elements, got {}", ts.len(), v.len()));
                }
                Ok(Value::Tuple(
                    v.into_iter()
                        .zip(ts)
                        .map(|(e, t)| e.conform(t))
                        .collect::<Result<_, _>>()?,
                ))
            }
            (Value::Map(m) | Value::Object(m), Type::Map(et)) => Ok(Value::Map(
                m.into_iter()
                    .map(|(k, e)| Ok((k, e.conform(et)?)))
                    .collect::<Result<_, String>>()?,
            )),
            (Value::Map(mut m) | Value::Object(mut m), Type::Object(attrs)) => {
                let mut out = BTreeMap::new();
                for (name, at) in attrs {
                    let v = m.remove(name).unwrap_or(Value::Null);
                    out.insert(
                        name.clone(),
                        v.conform(at).map_err(|e| format!("{name}: {e}"))?,
                    );
                }
                if let Some(extra) = m.keys().next() {
                    return Err(format!("unexpected attribute {extra:?}"));
                }
                Ok(Value::Object(out))
            }
            (v, t) => Err(format!("a {} value cannot be a {}", v.kind(), t.friendly())),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown(_) => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
            Value::Dynamic(..) => "dynamic",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Unknown(_) => write!(f, "(known after apply)"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                write!(f, "[")?;
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{e}")?;
                }
                write!(f, "]")
            }
            Value::Map(m) | Value::Object(m) => {
                write!(f, "{{")?;
                for (i, (k, e)) in m.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k} = {e}")?;
                }
                write!(f, "}}")
            }
            Value::Dynamic(_, v) => write!(f, "{v}"),
        }
    }
}

/// One step of an attribute path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathStep {
    Attr(String),
    Key(String),
    Index(i64),
}

/// A path to an attribute or element, as diagnostics and `requires_replace` carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AttributePath(pub Vec<PathStep>);

impl AttributePath {
    pub fn root() -> Self {
        AttributePath(Vec::new())
    }
    /// A path to a top-level attribute.
    pub fn attr(name: impl Into<String>) -> Self {
        AttributePath(vec![PathStep::Attr(name.into())])
    }
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
    pub fn then_attr(mut self, name: impl Into<String>) -> Self {
        self.0.push(PathStep::Attr(name.into()));
        self
    }
    pub fn then_key(mut self, key: impl Into<String>) -> Self {
        self.0.push(PathStep::Key(key.into()));
        self
    }
    pub fn then_index(mut self, i: i64) -> Self {
        self.0.push(PathStep::Index(i));
        self
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                PathStep::Attr(a) if i == 0 => write!(f, "{a}")?,
                PathStep::Attr(a) => write!(f, ".{a}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_and_print_plainly() {
        let a: Number = "1.50".parse().unwrap();
        let b = Number::from_f64(1.5).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "1.5");
        assert_eq!(Number::from_i64(100).to_string(), "100");
        assert!("12abc".parse::<Number>().is_err());
        let big: Number = "123456789012345678901234567890.000000001".parse().unwrap();
        assert_eq!(big.to_string(), "123456789012345678901234567890.000000001");
        assert_eq!(big.as_i64(), None);
        assert_eq!(big.as_exact_f64(), None);
    }

    #[test]
    fn conform_builds_objects_and_sets() {
        let ty = Type::object([("a", Type::String), ("b", Type::set(Type::Number))]);
        let v = Value::Map(
            [(
                "b".to_string(),
                Value::List(vec![Value::number(1), Value::number(1)]),
            )]
            .into(),
        );
        let out = v.conform(&ty).unwrap();
        assert_eq!(
            out,
            Value::object([
                ("a", Value::Null),
                ("b", Value::Set(vec![Value::number(1)]))
            ])
        );
        let bad = Value::object([("zzz", Value::Null)])
            .conform(&ty)
            .unwrap_err();
        assert!(bad.contains("zzz"), "{bad}");
    }

    #[test]
    fn paths_print_like_terraform() {
        let p = AttributePath::attr("node_pool")
            .then_index(0)
            .then_attr("gpu")
            .then_key("x");
        assert_eq!(p.to_string(), "node_pool[0].gpu[\"x\"]");
    }
}
