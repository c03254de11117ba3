//! cty's msgpack encoding of values, as Terraform sends and expects `DynamicValue.msgpack`.

use std::collections::BTreeMap;
use std::str::FromStr;

use rmp::Marker;

pub use crate::codec::CodecError;
use crate::codec::{err, type_from_json, type_to_json};
use crate::value::{Number, Refinements, Type, Value};

const UNKNOWN_REFINED_EXT: i8 = 12;
const MAX_REFINEMENT_LEN: u32 = 1024;

/// Encodes `value` of type `ty` as msgpack.
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    enc(&mut out, value, ty, "")?;
    Ok(out)
}

/// Decodes msgpack bytes as a value of type `ty`. Trailing bytes are an error.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = dec(&mut r, ty, "")?;
    if r.pos != bytes.len() {
        return err(
            "",
            format!("{} trailing bytes after the value", bytes.len() - r.pos),
        );
    }
    Ok(v)
}

fn wr<E: std::fmt::Display>(path: &str) -> impl Fn(E) -> CodecError + '_ {
    move |e| CodecError {
        path: path.to_string(),
        msg: format!("write failed: {e}"),
    }
}

fn enc(out: &mut Vec<u8>, v: &Value, ty: &Type, path: &str) -> Result<(), CodecError> {
    use rmp::encode as e;
    if let (Type::Dynamic, Value::Dynamic(t, inner)) = (ty, v) {
        e::write_array_len(out, 2).map_err(wr(path))?;
        let tj = serde_json::to_vec(&type_to_json(t)).expect("type JSON");
        e::write_bin(out, &tj).map_err(wr(path))?;
        return enc(out, inner, t, path);
    }
    match (v, ty) {
        (Value::Unknown(r), _) => enc_unknown(out, r, ty, path),
        (Value::Null, _) => e::write_nil(out).map_err(wr(path)),
        (Value::Dynamic(t, inner), want) if t == want => enc(out, inner, t, path),
        (v, Type::Dynamic) => {
            let wrapped = Value::Dynamic(v.infer_type(), Box::new(v.clone()));
            enc(out, &wrapped, ty, path)
        }
        (Value::Bool(b), Type::Bool) => e::write_bool(out, *b).map_err(wr(path)),
        (Value::Number(n), Type::Number) => enc_number(out, n, path),
        (Value::String(s), Type::String) => e::write_str(out, s).map_err(wr(path)),
        (Value::List(items), Type::List(et)) | (Value::Set(items), Type::Set(et)) => {
            e::write_array_len(out, items.len() as u32).map_err(wr(path))?;
            for (i, it) in items.iter().enumerate() {
                enc(out, it, et, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Tuple(items), Type::Tuple(ts)) => {
            if items.len() != ts.len() {
                return err(
                    path,
                    format!("tuple needs {} elements, has {}", ts.len(), items.len()),
                );
            }
            e::write_array_len(out, items.len() as u32).map_err(wr(path))?;
            for (i, (it, t)) in items.iter().zip(ts).enumerate() {
                enc(out, it, t, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Map(m), Type::Map(et)) => {
            e::write_map_len(out, m.len() as u32).map_err(wr(path))?;
            for (k, it) in m {
                e::write_str(out, k).map_err(wr(path))?;
                enc(out, it, et, &format!("{path}[{k:?}]"))?;
            }
            Ok(())
        }
        (Value::Object(m), Type::Object(attrs)) => {
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return err(path, format!("unsupported attribute {extra:?}"));
            }
            e::write_map_len(out, attrs.len() as u32).map_err(wr(path))?;
            for (k, at) in attrs {
                e::write_str(out, k).map_err(wr(path))?;
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                enc(out, m.get(k).unwrap_or(&Value::Null), at, &sub)?;
            }
            Ok(())
        }
        (v, t) => err(path, format!("cannot encode {v} as {}", t.friendly())),
    }
}

fn enc_number(out: &mut Vec<u8>, n: &Number, path: &str) -> Result<(), CodecError> {
    use rmp::encode as e;
    if let Some(i) = n.as_i64() {
        e::write_sint(out, i).map_err(wr(path))?;
    } else if let Some(u) = n.as_u64() {
        e::write_uint(out, u).map_err(wr(path))?;
    } else if let Some(f) = n.as_exact_f64() {
        e::write_f64(out, f).map_err(wr(path))?;
    } else {
        e::write_str(out, &n.to_string()).map_err(wr(path))?;
    }
    Ok(())
}

fn enc_unknown(
    out: &mut Vec<u8>,
    r: &Refinements,
    ty: &Type,
    path: &str,
) -> Result<(), CodecError> {
    use rmp::encode as e;
    let mut body = Vec::new();
    let mut n = 0u32;
    if *ty != Type::Dynamic {
        if let Some(is_null) = r.is_null {
            n += 1;
            e::write_sint(&mut body, 1).map_err(wr(path))?;
            e::write_bool(&mut body, is_null).map_err(wr(path))?;
        }
        match ty {
            Type::String => {
                if let Some(p) = r.string_prefix.as_deref().filter(|p| !p.is_empty()) {
                    n += 1;
                    e::write_sint(&mut body, 2).map_err(wr(path))?;
                    e::write_str(&mut body, p).map_err(wr(path))?;
                }
            }
            Type::Number => {
                for (key, bound) in [(3, &r.number_min), (4, &r.number_max)] {
                    if let Some((num, inclusive)) = bound {
                        n += 1;
                        e::write_sint(&mut body, key).map_err(wr(path))?;
                        e::write_array_len(&mut body, 2).map_err(wr(path))?;
                        enc_number(&mut body, num, path)?;
                        e::write_bool(&mut body, *inclusive).map_err(wr(path))?;
                    }
                }
            }
            t if t.is_collection() => {
                for (key, bound) in [(5, r.length_min), (6, r.length_max)] {
                    if let Some(b) = bound {
                        n += 1;
                        e::write_sint(&mut body, key).map_err(wr(path))?;
                        e::write_sint(&mut body, b).map_err(wr(path))?;
                    }
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        // The plain "wholly unknown" form: fixext1, type 0, one zero byte.
        out.extend_from_slice(&[0xd4, 0, 0]);
        return Ok(());
    }
    let mut head = Vec::new();
    e::write_map_len(&mut head, n).map_err(wr(path))?;
    e::write_ext_meta(out, (head.len() + body.len()) as u32, UNKNOWN_REFINED_EXT)
        .map_err(wr(path))?;
    out.extend_from_slice(&head);
    out.extend_from_slice(&body);
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self, path: &str) -> Result<Marker, CodecError> {
        match self.buf.get(self.pos) {
            Some(b) => Ok(Marker::from_u8(*b)),
            None => err(path, "unexpected end of data"),
        }
    }
    fn take(&mut self, n: usize, path: &str) -> Result<&'a [u8], CodecError> {
        if self.buf.len() - self.pos < n {
            return err(path, "unexpected end of data");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn marker(&mut self, path: &str) -> Result<Marker, CodecError> {
        let m = self.peek(path)?;
        self.pos += 1;
        Ok(m)
    }
    fn be(&mut self, n: usize, path: &str) -> Result<u64, CodecError> {
        let s = self.take(n, path)?;
        Ok(s.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

fn read_len(r: &mut Reader, m: Marker, path: &str) -> Result<Option<usize>, CodecError> {
    Ok(Some(match m {
        Marker::FixArray(n) | Marker::FixMap(n) => n as usize,
        Marker::FixStr(n) => n as usize,
        Marker::Str8 | Marker::Bin8 => r.be(1, path)? as usize,
        Marker::Str16 | Marker::Bin16 | Marker::Array16 | Marker::Map16 => r.be(2, path)? as usize,
        Marker::Str32 | Marker::Bin32 | Marker::Array32 | Marker::Map32 => r.be(4, path)? as usize,
        _ => return Ok(None),
    }))
}

fn read_string(r: &mut Reader, path: &str) -> Result<String, CodecError> {
    let m = r.marker(path)?;
    if !matches!(
        m,
        Marker::FixStr(_)
            | Marker::Str8
            | Marker::Str16
            | Marker::Str32
            | Marker::Bin8
            | Marker::Bin16
            | Marker::Bin32
    ) {
        return err(path, format!("expected a string, found {m:?}"));
    }
    let n = read_len(r, m, path)?.unwrap_or(0);
    let bytes = r.take(n, path)?;
    String::from_utf8(bytes.to_vec()).or_else(|_| err(path, "string is not valid UTF-8"))
}

fn read_number(r: &mut Reader, path: &str) -> Result<Number, CodecError> {
    let m = r.marker(path)?;
    Ok(match m {
        Marker::FixPos(n) => Number::from_i64(i64::from(n)),
        Marker::FixNeg(n) => Number::from_i64(i64::from(n)),
        Marker::U8 => Number::from_u64(r.be(1, path)?),
        Marker::U16 => Number::from_u64(r.be(2, path)?),
        Marker::U32 => Number::from_u64(r.be(4, path)?),
        Marker::U64 => Number::from_u64(r.be(8, path)?),
        Marker::I8 => Number::from_i64(i64::from(r.be(1, path)? as u8 as i8)),
        Marker::I16 => Number::from_i64(i64::from(r.be(2, path)? as u16 as i16)),
        Marker::I32 => Number::from_i64(i64::from(r.be(4, path)? as u32 as i32)),
        Marker::I64 => Number::from_i64(r.be(8, path)? as i64),
        Marker::F32 => float(f64::from(f32::from_bits(r.be(4, path)? as u32)), path)?,
        Marker::F64 => float(f64::from_bits(r.be(8, path)?), path)?,
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            r.pos -= 1;
            let s = read_string(r, path)?;
            Number::from_str(&s).or_else(|e| err(path, e))?
        }
        m => return err(path, format!("expected a number, found {m:?}")),
    })
}

fn float(f: f64, path: &str) -> Result<Number, CodecError> {
    match Number::from_f64(f) {
        Some(n) => Ok(n),
        None => err(path, "numbers must be finite"),
    }
}

fn read_bool(r: &mut Reader, path: &str) -> Result<bool, CodecError> {
    match r.marker(path)? {
        Marker::True => Ok(true),
        Marker::False => Ok(false),
        m => err(path, format!("expected a bool, found {m:?}")),
    }
}

fn read_int(r: &mut Reader, path: &str) -> Result<i64, CodecError> {
    read_number(r, path)?
        .as_i64()
        .map_or_else(|| err(path, "expected an integer"), Ok)
}

fn read_unknown(r: &mut Reader, m: Marker, ty: &Type, path: &str) -> Result<Value, CodecError> {
    let (len, code) = match m {
        Marker::FixExt1 => (1, r.be(1, path)? as i8),
        Marker::FixExt2 => (2, r.be(1, path)? as i8),
        Marker::FixExt4 => (4, r.be(1, path)? as i8),
        Marker::FixExt8 => (8, r.be(1, path)? as i8),
        Marker::FixExt16 => (16, r.be(1, path)? as i8),
        Marker::Ext8 => {
            let l = r.be(1, path)? as u32;
            (l, r.be(1, path)? as i8)
        }
        Marker::Ext16 => {
            let l = r.be(2, path)? as u32;
            (l, r.be(1, path)? as i8)
        }
        Marker::Ext32 => {
            let l = r.be(4, path)? as u32;
            (l, r.be(1, path)? as i8)
        }
        _ => unreachable!("read_unknown is called on extension markers only"),
    };
    if len <= 1 {
        r.take(len as usize, path)?;
        return Ok(Value::unknown());
    }
    if code != UNKNOWN_REFINED_EXT {
        return err(
            path,
            format!("unsupported msgpack extension type {code} of length {len}"),
        );
    }
    if len > MAX_REFINEMENT_LEN {
        return err(path, "oversize unknown value refinement");
    }
    let body = r.take(len as usize, path)?;
    if *ty == Type::Dynamic {
        return Ok(Value::unknown());
    }
    let mut br = Reader { buf: body, pos: 0 };
    let bm = br.marker(path)?;
    let n = match (bm, read_len(&mut br, bm, path)?) {
        (Marker::FixMap(_) | Marker::Map16 | Marker::Map32, Some(n)) => n,
        _ => return err(path, "unknown value refinements are not a map"),
    };
    let mut rf = Refinements::default();
    for _ in 0..n {
        let key = read_int(&mut br, path)?;
        match key {
            1 => rf.is_null = Some(read_bool(&mut br, path)?),
            2 => rf.string_prefix = Some(read_string(&mut br, path)?),
            3 | 4 => {
                let m = br.marker(path)?;
                if read_len(&mut br, m, path)? != Some(2) || !matches!(m, Marker::FixArray(_)) {
                    return err(
                        path,
                        "number bound refinement must be a [number, bool] pair",
                    );
                }
                let b = (read_number(&mut br, path)?, read_bool(&mut br, path)?);
                if key == 3 {
                    rf.number_min = Some(b);
                } else {
                    rf.number_max = Some(b);
                }
            }
            5 => rf.length_min = Some(read_int(&mut br, path)?),
            6 => rf.length_max = Some(read_int(&mut br, path)?),
            // Refinements added by later Terraform versions: skip the value, keep going.
            _ => {
                skip(&mut br, path)?;
            }
        }
    }
    Ok(Value::Unknown(rf))
}

/// Skips one msgpack item of any kind.
fn skip(r: &mut Reader, path: &str) -> Result<(), CodecError> {
    let m = r.marker(path)?;
    match m {
        Marker::Null | Marker::True | Marker::False | Marker::FixPos(_) | Marker::FixNeg(_) => {}
        Marker::U8 | Marker::I8 => {
            r.take(1, path)?;
        }
        Marker::U16 | Marker::I16 => {
            r.take(2, path)?;
        }
        Marker::U32 | Marker::I32 | Marker::F32 => {
            r.take(4, path)?;
        }
        Marker::U64 | Marker::I64 | Marker::F64 => {
            r.take(8, path)?;
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let n = read_len(r, m, path)?.unwrap_or(0);
            for _ in 0..n {
                skip(r, path)?;
            }
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = read_len(r, m, path)?.unwrap_or(0);
            for _ in 0..2 * n {
                skip(r, path)?;
            }
        }
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => {
            read_unknown(r, m, &Type::Dynamic, path)
                .map(|_| ())
                .or(Ok::<(), CodecError>(()))?;
        }
        m => {
            let n =
                read_len(r, m, path)?.map_or_else(|| err(path, format!("unexpected {m:?}")), Ok)?;
            r.take(n, path)?;
        }
    }
    Ok(())
}

fn dec(r: &mut Reader, ty: &Type, path: &str) -> Result<Value, CodecError> {
    let m = r.peek(path)?;
    match m {
        Marker::Null => {
            r.pos += 1;
            return Ok(Value::Null);
        }
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => {
            r.pos += 1;
            return read_unknown(r, m, ty, path);
        }
        _ => {}
    }
    match ty {
        Type::Bool => Ok(Value::Bool(read_bool(r, path)?)),
        Type::Number => Ok(Value::Number(read_number(r, path)?)),
        Type::String => Ok(Value::String(read_string(r, path)?)),
        Type::Dynamic => {
            let m = r.marker(path)?;
            if read_len(r, m, path)? != Some(2)
                || !matches!(m, Marker::FixArray(_) | Marker::Array16 | Marker::Array32)
            {
                return err(path, "a dynamic value must be a [type, value] pair");
            }
            let tj = read_string(r, path)?;
            let t = serde_json::from_str::<serde_json::Value>(&tj)
                .map_err(|e| e.to_string())
                .and_then(|j| type_from_json(&j))
                .or_else(|e| err(path, format!("invalid dynamic type: {e}")))?;
            let inner = dec(r, &t, path)?;
            Ok(Value::Dynamic(t, Box::new(inner)))
        }
        Type::List(et) | Type::Set(et) => {
            let m = r.marker(path)?;
            let n = match (m, read_len(r, m, path)?) {
                (Marker::FixArray(_) | Marker::Array16 | Marker::Array32, Some(n)) => n,
                _ => return err(path, format!("expected an array, found {m:?}")),
            };
            let mut items = Vec::with_capacity(n.min(4096));
            for i in 0..n {
                items.push(dec(r, et, &format!("{path}[{i}]"))?);
            }
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(items)
            } else {
                Value::Set(items)
            })
        }
        Type::Tuple(ts) => {
            let m = r.marker(path)?;
            let n = match (m, read_len(r, m, path)?) {
                (Marker::FixArray(_) | Marker::Array16 | Marker::Array32, Some(n)) => n,
                _ => return err(path, format!("expected an array, found {m:?}")),
            };
            if n != ts.len() {
                return err(path, format!("tuple needs {} elements, has {n}", ts.len()));
            }
            let mut items = Vec::with_capacity(n);
            for (i, t) in ts.iter().enumerate() {
                items.push(dec(r, t, &format!("{path}[{i}]"))?);
            }
            Ok(Value::Tuple(items))
        }
        Type::Map(et) => {
            let n = map_len(r, path)?;
            let mut out = BTreeMap::new();
            for _ in 0..n {
                let k = read_string(r, path)?;
                let v = dec(r, et, &format!("{path}[{k:?}]"))?;
                out.insert(k, v);
            }
            Ok(Value::Map(out))
        }
        Type::Object(attrs) => {
            let n = map_len(r, path)?;
            let mut out = BTreeMap::new();
            for _ in 0..n {
                let k = read_string(r, path)?;
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let Some(at) = attrs.get(&k) else {
                    return err(path, format!("unsupported attribute {k:?}"));
                };
                let v = dec(r, at, &sub)?;
                out.insert(k, v);
            }
            for k in attrs.keys() {
                out.entry(k.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(out))
        }
    }
}

fn map_len(r: &mut Reader, path: &str) -> Result<usize, CodecError> {
    let m = r.marker(path)?;
    match (m, read_len(r, m, path)?) {
        (Marker::FixMap(_) | Marker::Map16 | Marker::Map32, Some(n)) => Ok(n),
        _ => err(path, format!("expected a map, found {m:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_unknown_is_fixext1_zero() {
        assert_eq!(
            encode(&Value::unknown(), &Type::String).unwrap(),
            vec![0xd4, 0, 0]
        );
        assert_eq!(
            decode(&[0xd4, 0, 0], &Type::String).unwrap(),
            Value::unknown()
        );
    }

    #[test]
    fn refined_unknown_round_trips_and_never_sends_an_empty_map() {
        let r = Refinements {
            is_null: Some(false),
            string_prefix: Some("https://".into()),
            ..Default::default()
        };
        let b = encode(&Value::Unknown(r.clone()), &Type::String).unwrap();
        assert_eq!(b[0], 0xc7, "ext8");
        assert_eq!(b[2] as i8, UNKNOWN_REFINED_EXT);
        assert_eq!(decode(&b, &Type::String).unwrap(), Value::Unknown(r));
        // A string prefix on a number type is dropped rather than sent as an empty map.
        let r2 = Refinements {
            string_prefix: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(
            encode(&Value::Unknown(r2), &Type::Number).unwrap(),
            vec![0xd4, 0, 0]
        );
    }

    #[test]
    fn refinements_decode_as_terraform_sends_them() {
        // ext8 len 11 type 12: {1: false, 3: [0, true], 4: [10, false]}
        let bytes = [
            0xc7, 11, 12, 0x83, 1, 0xc2, 3, 0x92, 0, 0xc3, 4, 0x92, 10, 0xc2,
        ];
        let v = decode(&bytes, &Type::Number).unwrap();
        let Value::Unknown(r) = v else {
            panic!("not unknown")
        };
        assert_eq!(r.is_null, Some(false));
        assert_eq!(r.number_min, Some((Number::from_i64(0), true)));
        assert_eq!(r.number_max, Some((Number::from_i64(10), false)));
        // an unknown key (99) with an array value is skipped
        let bytes = [0xc7, 7, 12, 0x82, 99, 0x92, 1, 2, 5, 3];
        let v = decode(&bytes, &Type::list(Type::String));
        let Value::Unknown(r) = v.unwrap() else {
            panic!()
        };
        assert_eq!(r.length_min, Some(3));
    }

    #[test]
    fn numbers_pick_int_float_or_string() {
        assert_eq!(encode(&Value::number(5), &Type::Number).unwrap(), vec![5]);
        let f = encode(
            &Value::Number(Number::from_f64(0.5).unwrap()),
            &Type::Number,
        )
        .unwrap();
        assert_eq!(f[0], 0xcb);
        let big: Number = "3.14159265358979323846264338327950288".parse().unwrap();
        let b = encode(&Value::Number(big.clone()), &Type::Number).unwrap();
        assert!(matches!(
            Marker::from_u8(b[0]),
            Marker::FixStr(_) | Marker::Str8
        ));
        assert_eq!(decode(&b, &Type::Number).unwrap(), Value::Number(big));
        let u = encode(&Value::Number(Number::from_u64(u64::MAX)), &Type::Number).unwrap();
        assert_eq!(
            decode(&u, &Type::Number).unwrap(),
            Value::Number(Number::from_u64(u64::MAX))
        );
    }

    #[test]
    fn dynamic_values_carry_their_type() {
        let v = Value::Dynamic(
            Type::list(Type::String),
            Box::new(Value::List(vec![Value::string("a")])),
        );
        let b = encode(&v, &Type::Dynamic).unwrap();
        assert_eq!(decode(&b, &Type::Dynamic).unwrap(), v);
        assert_eq!(decode(&[0xc0], &Type::Dynamic).unwrap(), Value::Null);
    }

    #[test]
    fn objects_fill_missing_attributes_and_reject_unknown_ones() {
        let ty = Type::object([("a", Type::String), ("b", Type::Bool)]);
        // {"a": "x"}
        let b = [0x81, 0xa1, b'a', 0xa1, b'x'];
        let v = decode(&b, &ty).unwrap();
        assert_eq!(
            v,
            Value::object([("a", Value::string("x")), ("b", Value::Null)])
        );
        let bad = [0x81, 0xa1, b'z', 0xc0];
        let e = decode(&bad, &ty).unwrap_err();
        assert!(e.to_string().contains("\"z\""), "{e}");
        let trailing = [0xc0, 0xc0];
        assert!(decode(&trailing, &ty).is_err());
    }
}
