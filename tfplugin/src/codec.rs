//! What cty's value encodings (msgpack and JSON) share: the error type and the JSON form
//! of types, which both encodings use for `dynamic` values and schemas use for types.

use crate::value::Type;

/// An error decoding or encoding a value, with where it happened.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{path}{msg}")]
pub struct CodecError {
    pub path: String,
    pub msg: String,
}

pub(crate) fn err<T>(path: &str, msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError {
        path: if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        },
        msg: msg.into(),
    })
}

/// The JSON form of a type: `"string"`, `["list","string"]`, `["object",{...}]`.
pub fn type_to_json(t: &Type) -> serde_json::Value {
    use serde_json::json;
    match t {
        Type::Bool => json!("bool"),
        Type::Number => json!("number"),
        Type::String => json!("string"),
        Type::Dynamic => json!("dynamic"),
        Type::List(e) => json!(["list", type_to_json(e)]),
        Type::Set(e) => json!(["set", type_to_json(e)]),
        Type::Map(e) => json!(["map", type_to_json(e)]),
        Type::Object(a) => {
            let m: serde_json::Map<String, serde_json::Value> = a
                .iter()
                .map(|(k, v)| (k.clone(), type_to_json(v)))
                .collect();
            json!(["object", m])
        }
        Type::Tuple(ts) => json!(["tuple", ts.iter().map(type_to_json).collect::<Vec<_>>()]),
    }
}

/// Parses the JSON form of a type. Optional-attribute markers of object types are accepted
/// and ignored (they only matter to type constraints).
pub fn type_from_json(j: &serde_json::Value) -> Result<Type, String> {
    use serde_json::Value as J;
    match j {
        J::String(s) => match s.as_str() {
            "bool" => Ok(Type::Bool),
            "number" => Ok(Type::Number),
            "string" => Ok(Type::String),
            "dynamic" => Ok(Type::Dynamic),
            other => Err(format!("unknown primitive type {other:?}")),
        },
        J::Array(a) if a.len() >= 2 => match (a[0].as_str(), &a[1]) {
            (Some("list"), e) => Ok(Type::list(type_from_json(e)?)),
            (Some("set"), e) => Ok(Type::set(type_from_json(e)?)),
            (Some("map"), e) => Ok(Type::map(type_from_json(e)?)),
            (Some("object"), J::Object(m)) => Ok(Type::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), type_from_json(v)?)))
                    .collect::<Result<_, String>>()?,
            )),
            (Some("tuple"), J::Array(ts)) => Ok(Type::Tuple(
                ts.iter().map(type_from_json).collect::<Result<_, _>>()?,
            )),
            _ => Err(format!("invalid type {j}")),
        },
        _ => Err(format!("invalid type {j}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip() {
        let t = Type::object([
            ("a", Type::list(Type::map(Type::Number))),
            ("b", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
            ("c", Type::set(Type::String)),
        ]);
        assert_eq!(type_from_json(&type_to_json(&t)).unwrap(), t);
        assert!(type_from_json(&serde_json::json!("float")).is_err());
    }
}
