//! Typed models: a resource declares a serde struct and the framework moves config,
//! plan and state between it and [`Value`]s.
//!
//! Null and unknown are explicit in the types: a field that may be unknown (anything in a
//! plan, anything computed) is an [`Attr<T>`]; `Option<T>` accepts null but refuses
//! unknown; a plain `T` needs a known, non-null value.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserialize, Deserializer, Serializer};

use crate::value::{Number, Type, Value};

const ATTR_TOKEN: &str = "$tfplugin::Attr";
const UNKNOWN_TOKEN: &str = "$tfplugin::Unknown";

/// A value that may be null or not yet known, as every Terraform value may be.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Attr<T> {
    #[default]
    Null,
    /// Known only after apply.
    Unknown,
    Known(T),
}

impl<T> Attr<T> {
    pub fn is_null(&self) -> bool {
        matches!(self, Attr::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Attr::Unknown)
    }
    pub fn is_known(&self) -> bool {
        matches!(self, Attr::Known(_))
    }
    /// The value when known and not null.
    pub fn known(&self) -> Option<&T> {
        match self {
            Attr::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn into_known(self) -> Option<T> {
        match self {
            Attr::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_ref(&self) -> Attr<&T> {
        match self {
            Attr::Null => Attr::Null,
            Attr::Unknown => Attr::Unknown,
            Attr::Known(v) => Attr::Known(v),
        }
    }
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attr<U> {
        match self {
            Attr::Null => Attr::Null,
            Attr::Unknown => Attr::Unknown,
            Attr::Known(v) => Attr::Known(f(v)),
        }
    }
    /// Null becomes `v`; unknown and known values stay.
    pub fn or_known(self, v: T) -> Attr<T> {
        match self {
            Attr::Null => Attr::Known(v),
            other => other,
        }
    }
}

impl<T> From<T> for Attr<T> {
    fn from(v: T) -> Self {
        Attr::Known(v)
    }
}

impl<T> From<Option<T>> for Attr<T> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Attr::Null, Attr::Known)
    }
}

impl<T: Serialize> Serialize for Attr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Attr::Null => s.serialize_none(),
            Attr::Unknown => s.serialize_unit_struct(UNKNOWN_TOKEN),
            Attr::Known(v) => v.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Attr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Attr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a Terraform value")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Attr::Null)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Attr::Unknown)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                // Terraform values arrive here known (null and unknown are visited above);
                // other formats, JSON files among them, pass `null` through, which is `Null`.
                Option::<T>::deserialize(d).map(|v| v.map_or(Attr::Null, Attr::Known))
            }
        }
        d.deserialize_newtype_struct(ATTR_TOKEN, V(std::marker::PhantomData))
    }
}

/// An error moving between a model and a value, with the attribute path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct ModelError {
    pub path: String,
    pub msg: String,
}

/// Decodes a value into a model.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(ValueDeserializer(v)).map_err(|e| ModelError {
        path: e.path().to_string(),
        msg: e.inner().0.clone(),
    })
}

/// Encodes a model as a value of type `ty`.
pub fn to_value<T: Serialize>(m: &T, ty: &Type) -> Result<Value, ModelError> {
    let v = m.serialize(ValueSerializer).map_err(|e| ModelError {
        path: ".".into(),
        msg: e.0,
    })?;
    v.conform(ty).map_err(|msg| ModelError {
        path: ".".into(),
        msg,
    })
}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Error {}
impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}
impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Reads a [`Value`] through serde.
pub struct ValueDeserializer(pub Value);

impl ValueDeserializer {
    fn unwrap_dynamic(self) -> Value {
        match self.0 {
            Value::Dynamic(_, v) => *v,
            v => v,
        }
    }
}

struct SeqAccess(std::vec::IntoIter<Value>);
impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = Error;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(ValueDeserializer(v)).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess {
    it: std::collections::btree_map::IntoIter<String, Value>,
    next: Option<Value>,
}
impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.it.next() {
            Some((k, v)) => {
                self.next = Some(v);
                seed.deserialize(k.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(ValueDeserializer(self.next.take().unwrap_or(Value::Null)))
    }
}

fn unknown_err() -> Error {
    Error(
        "value is not known yet (it depends on something that will only be known after apply)"
            .into(),
    )
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.unwrap_dynamic() {
            Value::Null => v.visit_none(),
            Value::Unknown(_) => Err(unknown_err()),
            Value::Bool(b) => v.visit_bool(b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    v.visit_i64(i)
                } else if let Some(u) = n.as_u64() {
                    v.visit_u64(u)
                } else {
                    v.visit_f64(n.to_f64())
                }
            }
            Value::String(s) => v.visit_string(s),
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                v.visit_seq(SeqAccess(items.into_iter()))
            }
            Value::Map(m) | Value::Object(m) => v.visit_map(MapAccess {
                it: m.into_iter(),
                next: None,
            }),
            Value::Dynamic(..) => unreachable!("unwrapped above"),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => v.visit_none(),
            Value::Unknown(_) => Err(unknown_err()),
            other => v.visit_some(ValueDeserializer(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        if name == ATTR_TOKEN {
            return match self.0 {
                Value::Null => v.visit_none(),
                Value::Unknown(_) => v.visit_unit(),
                other => v.visit_newtype_struct(ValueDeserializer(other)),
            };
        }
        v.visit_newtype_struct(self)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.unwrap_dynamic() {
            Value::Number(n) => v.visit_string(n.to_string()),
            Value::Bool(b) => v.visit_string(b.to_string()),
            other => ValueDeserializer(other).deserialize_any(v),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_string(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.unwrap_dynamic() {
            Value::String(s) => v.visit_enum(s.into_deserializer()),
            Value::Unknown(_) => Err(unknown_err()),
            other => Err(Error(format!(
                "expected a string naming a choice, found {other}"
            ))),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => v.visit_unit(),
            other => ValueDeserializer(other).deserialize_any(v),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// Writes a [`Value`] through serde. Sequences become lists and maps become maps;
/// [`Value::conform`] then shapes them to the schema type.
pub struct ValueSerializer;

pub struct SeqSer(Vec<Value>);
pub struct MapSer(BTreeMap<String, Value>, Option<String>);

fn num_f(f: f64) -> Result<Value, Error> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| Error(format!("{f} is not a finite number")))
}

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = ser::Impossible<Value, Error>;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = ser::Impossible<Value, Error>;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, Error> {
        Ok(Value::number(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, Error> {
        Ok(Value::number(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, Error> {
        Ok(Value::number(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, Error> {
        Ok(Value::number(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, Error> {
        Ok(Value::number(i64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, Error> {
        Ok(Value::number(i64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, Error> {
        Ok(Value::number(i64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, Error> {
        Ok(Value::Number(Number::from_u64(v)))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        num_f(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        num_f(v)
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<Value, Error> {
        Err(Error(
            "bytes have no Terraform type; encode them as a string".into(),
        ))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Value, Error> {
        Ok(if name == UNKNOWN_TOKEN {
            Value::unknown()
        } else {
            Value::Null
        })
    }
    fn serialize_unit_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _n: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        _v: &T,
    ) -> Result<Value, Error> {
        Err(Error(format!(
            "enum variant {variant} with data has no Terraform type"
        )))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, Error> {
        Ok(SeqSer(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _n: &'static str, len: usize) -> Result<SeqSer, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error(format!(
            "enum variant {variant} with data has no Terraform type"
        )))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer, Error> {
        Ok(MapSer(BTreeMap::new(), None))
    }
    fn serialize_struct(self, _n: &'static str, _len: usize) -> Result<MapSer, Error> {
        Ok(MapSer(BTreeMap::new(), None))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error(format!(
            "enum variant {variant} with data has no Terraform type"
        )))
    }
}

impl ser::SerializeSeq for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Error> {
        self.0.push(v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::List(self.0))
    }
}
impl ser::SerializeTuple for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Tuple(self.0))
    }
}
impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Tuple(self.0))
    }
}
impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> Result<(), Error> {
        match k.serialize(ValueSerializer)? {
            Value::String(s) => {
                self.1 = Some(s);
                Ok(())
            }
            Value::Number(n) => {
                self.1 = Some(n.to_string());
                Ok(())
            }
            other => Err(Error(format!("map keys must be strings, found {other}"))),
        }
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Error> {
        let k = self
            .1
            .take()
            .ok_or_else(|| Error("map value without a key".into()))?;
        self.0.insert(k, v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Map(self.0))
    }
}
impl ser::SerializeStruct for MapSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.0.insert(k.to_string(), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Purpose {
        Dev,
        Inference,
    }

    /// Models saved as JSON (a resource's own files) read back as they were written: a null
    /// list or string is `Null`, not an error.
    #[test]
    fn json_files_round_trip_null_attributes() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Saved {
            objects: Attr<Vec<String>>,
            url: Attr<String>,
            port: Attr<i64>,
        }
        for saved in [
            Saved {
                objects: Attr::Null,
                url: Attr::Null,
                port: Attr::Null,
            },
            Saved {
                objects: Attr::Known(vec!["v1/Secret/ml/a".into()]),
                url: Attr::Known("http://a".into()),
                port: Attr::Known(8080),
            },
        ] {
            let text = serde_json::to_string(&saved).unwrap();
            assert_eq!(
                serde_json::from_str::<Saved>(&text).unwrap(),
                saved,
                "{text}"
            );
        }
        assert!(serde_json::from_str::<Saved>(r#"{"objects":7,"url":null,"port":null}"#).is_err());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pool {
        name: String,
        purpose: Attr<Purpose>,
        size: Attr<i64>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Model {
        id: Attr<String>,
        name: String,
        note: Option<String>,
        weight: Attr<f64>,
        tags: Attr<BTreeMap<String, String>>,
        pools: Vec<Pool>,
    }

    fn ty() -> Type {
        let pool = Type::object([
            ("name", Type::String),
            ("purpose", Type::String),
            ("size", Type::Number),
        ]);
        Type::object([
            ("id", Type::String),
            ("name", Type::String),
            ("note", Type::String),
            ("weight", Type::Number),
            ("tags", Type::map(Type::String)),
            ("pools", Type::list(pool)),
        ])
    }

    #[test]
    fn models_round_trip_with_null_and_unknown() {
        let m = Model {
            id: Attr::Unknown,
            name: "x".into(),
            note: None,
            weight: Attr::Known(0.25),
            tags: Attr::Null,
            pools: vec![Pool {
                name: "gpu".into(),
                purpose: Attr::Known(Purpose::Inference),
                size: Attr::Unknown,
            }],
        };
        let v = to_value(&m, &ty()).unwrap();
        assert!(v.get_attr("id").unwrap().is_unknown());
        assert!(v.get_attr("tags").unwrap().is_null());
        let back: Model = from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn unknown_into_a_plain_field_names_the_path() {
        let mut v = to_value(
            &Model {
                id: Attr::Null,
                name: "x".into(),
                note: None,
                weight: Attr::Null,
                tags: Attr::Null,
                pools: vec![Pool {
                    name: "a".into(),
                    purpose: Attr::Null,
                    size: Attr::Null,
                }],
            },
            &ty(),
        )
        .unwrap();
        if let Some(Value::List(p)) = v.get_attr_mut("pools") {
            if let Value::Object(o) = &mut p[0] {
                o.insert("name".into(), Value::unknown());
            }
        }
        let e = from_value::<Model>(v).unwrap_err();
        assert_eq!(e.path, "pools[0].name");
        assert!(e.msg.contains("not known"), "{e}");
    }

    #[test]
    fn bad_enum_choices_are_reported() {
        let v = Value::object([
            ("name", Value::string("a")),
            ("purpose", Value::string("gaming")),
            ("size", Value::Null),
        ]);
        let e = from_value::<Pool>(v).unwrap_err();
        assert_eq!(e.path, "purpose");
        assert!(e.msg.contains("gaming"), "{e}");
    }
}
