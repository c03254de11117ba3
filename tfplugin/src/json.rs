//! cty's JSON encoding of values (in `DynamicValue.json` and in the raw state handed to
//! `UpgradeResourceState`). The JSON form of types (in schemas and dynamic values) is
//! defined in [`crate::codec`] and re-exported here.
//!
//! Numbers keep arbitrary precision: each JSON number is read from its literal text.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::value::RawValue;

use crate::codec::{err, CodecError};
use crate::value::{Number, Type, Value};

/// The JSON form of types, defined with the error type both encodings share.
pub use crate::codec::{type_from_json, type_to_json};

/// Encodes a wholly known value as cty JSON.
pub fn encode(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = String::new();
    enc(&mut out, v, ty, "")?;
    Ok(out.into_bytes())
}

fn enc(out: &mut String, v: &Value, ty: &Type, path: &str) -> Result<(), CodecError> {
    match (v, ty) {
        (Value::Unknown(_), _) => err(path, "unknown values cannot be written as JSON"),
        (Value::Null, _) => {
            out.push_str("null");
            Ok(())
        }
        (Value::Dynamic(t, inner), Type::Dynamic) => {
            out.push_str("{\"value\":");
            enc(out, inner, t, path)?;
            out.push_str(",\"type\":");
            out.push_str(&type_to_json(t).to_string());
            out.push('}');
            Ok(())
        }
        (Value::Dynamic(t, inner), want) if t == want => enc(out, inner, t, path),
        (v, Type::Dynamic) => enc(
            out,
            &Value::Dynamic(v.infer_type(), Box::new(v.clone())),
            ty,
            path,
        ),
        (Value::Bool(b), Type::Bool) => {
            out.push_str(if *b { "true" } else { "false" });
            Ok(())
        }
        (Value::Number(n), Type::Number) => {
            out.push_str(&n.to_string());
            Ok(())
        }
        (Value::String(s), Type::String) => {
            out.push_str(&serde_json::to_string(s).expect("string JSON"));
            Ok(())
        }
        (Value::List(items), Type::List(et)) | (Value::Set(items), Type::Set(et)) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                enc(out, it, et, &format!("{path}[{i}]"))?;
            }
            out.push(']');
            Ok(())
        }
        (Value::Tuple(items), Type::Tuple(ts)) if items.len() == ts.len() => {
            out.push('[');
            for (i, (it, t)) in items.iter().zip(ts).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                enc(out, it, t, &format!("{path}[{i}]"))?;
            }
            out.push(']');
            Ok(())
        }
        (Value::Map(m), Type::Map(et)) => {
            out.push('{');
            for (i, (k, it)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("key JSON"));
                out.push(':');
                enc(out, it, et, &format!("{path}[{k:?}]"))?;
            }
            out.push('}');
            Ok(())
        }
        (Value::Object(m), Type::Object(attrs)) => {
            out.push('{');
            for (i, (k, at)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("key JSON"));
                out.push(':');
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                enc(out, m.get(k).unwrap_or(&Value::Null), at, &sub)?;
            }
            out.push('}');
            Ok(())
        }
        (v, t) => err(path, format!("cannot encode {v} as {}", t.friendly())),
    }
}

/// Decodes cty JSON as a value of type `ty`. Missing object attributes are null.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let raw: &RawValue =
        serde_json::from_slice(bytes).or_else(|e| err("", format!("invalid JSON: {e}")))?;
    dec(raw, ty, "")
}

fn dec(raw: &RawValue, ty: &Type, path: &str) -> Result<Value, CodecError> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(Value::Null);
    }
    let parse_err = |e: serde_json::Error| CodecError {
        path: path.to_string(),
        msg: format!("invalid JSON: {e}"),
    };
    match ty {
        Type::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => err(path, format!("expected a bool, found {text}")),
        },
        Type::Number => {
            if text.starts_with('"') {
                let s: String = serde_json::from_str(text).map_err(parse_err)?;
                return Number::from_str(&s)
                    .map(Value::Number)
                    .or_else(|e| err(path, e));
            }
            Number::from_str(text)
                .map(Value::Number)
                .or_else(|e| err(path, e))
        }
        Type::String => {
            if !text.starts_with('"') {
                // cty accepts numbers and bools where strings are expected, as their text.
                if text == "true" || text == "false" || Number::from_str(text).is_ok() {
                    return Ok(Value::String(text.to_string()));
                }
                return err(path, format!("expected a string, found {text}"));
            }
            Ok(Value::String(
                serde_json::from_str(text).map_err(parse_err)?,
            ))
        }
        Type::Dynamic => {
            #[derive(serde::Deserialize)]
            struct Dyn<'a> {
                #[serde(borrow)]
                value: &'a RawValue,
                #[serde(rename = "type")]
                ty: serde_json::Value,
            }
            let d: Dyn = serde_json::from_str(text).or_else(|e| {
                err(
                    path,
                    format!("a dynamic value must be {{\"value\",\"type\"}}: {e}"),
                )
            })?;
            let t = type_from_json(&d.ty).or_else(|e| err(path, e))?;
            Ok(Value::Dynamic(t.clone(), Box::new(dec(d.value, &t, path)?)))
        }
        Type::List(et) | Type::Set(et) => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(parse_err)?;
            let vals = items
                .iter()
                .enumerate()
                .map(|(i, it)| dec(it, et, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(vals)
            } else {
                Value::Set(vals)
            })
        }
        Type::Tuple(ts) => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(parse_err)?;
            if items.len() != ts.len() {
                return err(
                    path,
                    format!("tuple needs {} elements, has {}", ts.len(), items.len()),
                );
            }
            Ok(Value::Tuple(
                items
                    .iter()
                    .zip(ts)
                    .enumerate()
                    .map(|(i, (it, t))| dec(it, t, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ))
        }
        Type::Map(et) => {
            let m: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(parse_err)?;
            Ok(Value::Map(
                m.into_iter()
                    .map(|(k, it)| Ok((k.clone(), dec(it, et, &format!("{path}[{k:?}]"))?)))
                    .collect::<Result<_, CodecError>>()?,
            ))
        }
        Type::Object(attrs) => {
            let m: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(parse_err)?;
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return err(path, format!("unsupported attribute {extra:?}"));
            }
            let mut out = BTreeMap::new();
            for (k, at) in attrs {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let v = match m.get(k) {
                    Some(raw) => dec(raw, at, &sub)?,
                    None => Value::Null,
                };
                out.insert(k.clone(), v);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_numbers_keep_every_digit() {
        let ty = Type::object([("n", Type::Number)]);
        let v = decode(br#"{"n": 12345678901234567890123.45678901234567890}"#, &ty).unwrap();
        assert_eq!(
            v.get_attr("n").unwrap().to_string(),
            "12345678901234567890123.4567890123456789"
        );
        let back = String::from_utf8(encode(&v, &ty).unwrap()).unwrap();
        assert_eq!(back, r#"{"n":12345678901234567890123.4567890123456789}"#);
    }

    #[test]
    fn dynamic_json_has_value_and_type() {
        let v = decode(
            br#"{"value": ["a"], "type": ["list", "string"]}"#,
            &Type::Dynamic,
        )
        .unwrap();
        assert_eq!(
            v,
            Value::Dynamic(
                Type::list(Type::String),
                Box::new(Value::List(vec![Value::string("a")]))
            )
        );
        let s = String::from_utf8(encode(&v, &Type::Dynamic).unwrap()).unwrap();
        assert_eq!(s, r#"{"value":["a"],"type":["list","string"]}"#);
    }

    #[test]
    fn unknowns_cannot_be_json() {
        assert!(encode(&Value::unknown(), &Type::String).is_err());
    }
}
