//! Tensors as the Open Inference Protocol carries them: JSON (flat or nested, row-major),
//! raw little-endian bytes (binary extension and gRPC raw contents), and typed gRPC
//! contents; and their conversion to and from tract tensors.

use tract_onnx::prelude::{DatumType, IntoTensor, Tensor, TractResult};

use crate::error::ServeError;

/// The most elements any tensor of a run may have, inputs or intermediates: a request whose
/// shapes would need more is refused before anything is allocated (2^32 elements is 16 GiB
/// of FP32 in one tensor).
pub const MAX_ELEMENTS: u64 = 1 << 32;

/// OIP datatypes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datatype {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
    Bytes,
}

impl Datatype {
    pub fn parse(s: &str) -> Result<Self, ServeError> {
        Ok(match s {
            "BOOL" => Datatype::Bool,
            "UINT8" => Datatype::U8,
            "UINT16" => Datatype::U16,
            "UINT32" => Datatype::U32,
            "UINT64" => Datatype::U64,
            "INT8" => Datatype::I8,
            "INT16" => Datatype::I16,
            "INT32" => Datatype::I32,
            "INT64" => Datatype::I64,
            "FP16" => Datatype::F16,
            "FP32" => Datatype::F32,
            "FP64" => Datatype::F64,
            "BYTES" => Datatype::Bytes,
            other => {
                return Err(ServeError::BadRequest(format!(
                    "unknown datatype {other:?}; use one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES"
                )))
            }
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::U8 => "UINT8",
            Datatype::U16 => "UINT16",
            Datatype::U32 => "UINT32",
            Datatype::U64 => "UINT64",
            Datatype::I8 => "INT8",
            Datatype::I16 => "INT16",
            Datatype::I32 => "INT32",
            Datatype::I64 => "INT64",
            Datatype::F16 => "FP16",
            Datatype::F32 => "FP32",
            Datatype::F64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }
    /// Bytes per element in raw form (`None` for BYTES, which is length-prefixed).
    pub fn size(self) -> Option<usize> {
        Some(match self {
            Datatype::Bool | Datatype::U8 | Datatype::I8 => 1,
            Datatype::U16 | Datatype::I16 | Datatype::F16 => 2,
            Datatype::U32 | Datatype::I32 | Datatype::F32 => 4,
            Datatype::U64 | Datatype::I64 | Datatype::F64 => 8,
            Datatype::Bytes => return None,
        })
    }
    pub fn to_tract(self) -> DatumType {
        match self {
            Datatype::Bool => DatumType::Bool,
            Datatype::U8 => DatumType::U8,
            Datatype::U16 => DatumType::U16,
            Datatype::U32 => DatumType::U32,
            Datatype::U64 => DatumType::U64,
            Datatype::I8 => DatumType::I8,
            Datatype::I16 => DatumType::I16,
            Datatype::I32 => DatumType::I32,
            Datatype::I64 => DatumType::I64,
            Datatype::F16 => DatumType::F16,
            Datatype::F32 => DatumType::F32,
            Datatype::F64 => DatumType::F64,
            Datatype::Bytes => DatumType::String,
        }
    }
    pub fn from_tract(dt: DatumType) -> Option<Self> {
        Some(match dt {
            DatumType::Bool => Datatype::Bool,
            DatumType::U8 => Datatype::U8,
            DatumType::U16 => Datatype::U16,
            DatumType::U32 => Datatype::U32,
            DatumType::U64 => Datatype::U64,
            DatumType::I8 => Datatype::I8,
            DatumType::I16 => Datatype::I16,
            DatumType::I32 => Datatype::I32,
            DatumType::I64 => Datatype::I64,
            DatumType::F16 => Datatype::F16,
            DatumType::F32 => Datatype::F32,
            DatumType::F64 => Datatype::F64,
            DatumType::String => Datatype::Bytes,
            _ => return None,
        })
    }
}

/// A named tensor in a request or response, held as a tract tensor.
#[derive(Clone, Debug)]
pub struct NamedTensor {
    pub name: String,
    pub tensor: Tensor,
}

impl NamedTensor {
    pub fn datatype(&self) -> Datatype {
        Datatype::from_tract(self.tensor.datum_type()).unwrap_or(Datatype::F32)
    }
    pub fn shape_i64(&self) -> Vec<i64> {
        self.tensor.shape().iter().map(|d| *d as i64).collect()
    }
}

/// The element count of `shape`, refusing negative dimensions and shapes whose size (zero
/// dimensions counted as one) is over [`MAX_ELEMENTS`]: nothing is allocated
/// for a shape before the data it claims has been seen.
fn checked_count(shape: &[i64], name: &str) -> Result<usize, ServeError> {
    let mut n: u64 = 1;
    let mut extent: u64 = 1;
    for d in shape {
        if *d < 0 {
            return Err(ServeError::BadRequest(format!(
                "input {name:?}: shape {shape:?} has a negative dimension"
            )));
        }
        n = n.saturating_mul(*d as u64);
        extent = extent.saturating_mul((*d as u64).max(1));
    }
    if extent > MAX_ELEMENTS {
        return Err(ServeError::BadRequest(format!(
            "input {name:?}: shape {shape:?} is too large (more than {} elements)",
            MAX_ELEMENTS
        )));
    }
    usize::try_from(n).map_err(|_| {
        ServeError::BadRequest(format!("input {name:?}: shape {shape:?} is too large"))
    })
}

fn ushape(shape: &[i64]) -> Vec<usize> {
    shape.iter().map(|d| *d as usize).collect()
}

/// Flattens nested JSON arrays (row-major) into `out`.
fn flatten<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        other => out.push(other),
    }
}

macro_rules! json_vec {
    ($items:expr, $name:expr, $conv:expr, $what:expr) => {{
        // `items` were counted against the shape already: this allocates what the body holds.
        let mut v = Vec::with_capacity($items.len());
        for (i, it) in $items.iter().enumerate() {
            match $conv(*it) {
                Some(x) => v.push(x),
                None => {
                    return Err(ServeError::BadRequest(format!(
                        "input {:?}: element {i} is {}, expected {}",
                        $name, it, $what
                    )))
                }
            }
        }
        v
    }};
}

/// Builds a tensor from JSON `data` (flat or nested) for `datatype` and `shape`.
pub fn from_json(
    name: &str,
    datatype: Datatype,
    shape: &[i64],
    data: &serde_json::Value,
) -> Result<Tensor, ServeError> {
    let n = checked_count(shape, name)?;
    // Flattened first, without reserving `n`: the shape is the client's claim, the data is
    // what it sent.
    let mut items = Vec::new();
    flatten(data, &mut items);
    if items.len() != n {
        return Err(ServeError::BadRequest(format!(
            "input {name:?}: shape {shape:?} needs {n} elements, data has {}",
            items.len()
        )));
    }
    let s = ushape(shape);
    let t = match datatype {
        Datatype::Bool => Tensor::from_shape(
            &s,
            &json_vec!(items, name, |v: &serde_json::Value| v.as_bool(), "a bool"),
        ),
        Datatype::U8 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_u64().and_then(|x| u8::try_from(x).ok()),
                "a UINT8"
            ),
        ),
        Datatype::U16 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_u64().and_then(|x| u16::try_from(x).ok()),
                "a UINT16"
            ),
        ),
        Datatype::U32 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_u64().and_then(|x| u32::try_from(x).ok()),
                "a UINT32"
            ),
        ),
        Datatype::U64 => Tensor::from_shape(
            &s,
            &json_vec!(items, name, |v: &serde_json::Value| v.as_u64(), "a UINT64"),
        ),
        Datatype::I8 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_i64().and_then(|x| i8::try_from(x).ok()),
                "an INT8"
            ),
        ),
        Datatype::I16 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_i64().and_then(|x| i16::try_from(x).ok()),
                "an INT16"
            ),
        ),
        Datatype::I32 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_i64().and_then(|x| i32::try_from(x).ok()),
                "an INT32"
            ),
        ),
        Datatype::I64 => Tensor::from_shape(
            &s,
            &json_vec!(items, name, |v: &serde_json::Value| v.as_i64(), "an INT64"),
        ),
        Datatype::F16 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_f64().map(tract_onnx::prelude::f16::from_f64),
                "a number"
            ),
        ),
        Datatype::F32 => Tensor::from_shape(
            &s,
            &json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_f64().map(|x| x as f32),
                "a number"
            ),
        ),
        Datatype::F64 => Tensor::from_shape(
            &s,
            &json_vec!(items, name, |v: &serde_json::Value| v.as_f64(), "a number"),
        ),
        Datatype::Bytes => strings(
            &s,
            json_vec!(
                items,
                name,
                |v: &serde_json::Value| v.as_str().map(String::from),
                "a string"
            ),
        ),
    };
    t.map_err(|e| ServeError::BadRequest(format!("input {name:?}: {e}")))
}

/// [`from_json`] for `data` still as JSON text: FP32, FP64, INT32 and INT64 are read
/// straight into a typed buffer (no JSON value per element, numbers parsed by fast-float2);
/// any other datatype, and any body the fast path cannot take (a wrong element, a count that
/// does not match the shape), goes through [`from_json`], so every error reads the same.
pub fn from_json_text(
    name: &str,
    datatype: Datatype,
    shape: &[i64],
    data: &serde_json::value::RawValue,
) -> Result<Tensor, ServeError> {
    let fast = match datatype {
        // as the value path does: the number as f64, then narrowed
        Datatype::F32 => typed(shape, data, |t| json_f64(t).map(|x| x as f32)),
        Datatype::F64 => typed(shape, data, json_f64),
        Datatype::I32 => typed(shape, data, |t| {
            json_i64(t).and_then(|x| i32::try_from(x).ok())
        }),
        Datatype::I64 => typed(shape, data, json_i64),
        _ => None,
    };
    match fast {
        Some(t) => Ok(t),
        None => {
            let v: serde_json::Value = serde_json::from_str(data.get()).map_err(|e| {
                ServeError::BadRequest(format!("input {name:?}: data is not JSON: {e}"))
            })?;
            from_json(name, datatype, shape, &v)
        }
    }
}

/// Reads nested arrays of JSON numbers into a flat `Vec<T>` of exactly the shape's element
/// count, or `None` for anything else (the caller then reports the problem the slow way).
/// Numbers must follow JSON's grammar; each token goes to `leaf`.
fn typed<T: tract_onnx::prelude::Datum>(
    shape: &[i64],
    data: &serde_json::value::RawValue,
    leaf: fn(&[u8]) -> Option<T>,
) -> Option<Tensor> {
    let n = checked_count(shape, "").ok()?;
    let t = data.get().as_bytes();
    // The shape is the client's claim: reserve what the body can hold at most.
    let mut out = Vec::with_capacity(n.min(t.len() / 2 + 1));
    let ws = |t: &[u8], mut i: usize| {
        while matches!(t.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    };
    let mut i = ws(t, 0);
    if t.get(i) != Some(&b'[') {
        return None;
    }
    let (mut depth, mut want_value, mut just_opened) = (0usize, true, false);
    while i < t.len() {
        i = ws(t, i);
        let c = *t.get(i)?;
        if want_value {
            match c {
                b'[' => {
                    depth += 1;
                    just_opened = true;
                    i += 1;
                    continue;
                }
                b']' if just_opened => {
                    depth -= 1;
                    i += 1;
                }
                b'-' | b'0'..=b'9' if depth > 0 && out.len() < n => {
                    let end = number_end(t, i)?;
                    out.push(leaf(&t[i..end])?);
                    i = end;
                }
                _ => return None,
            }
            want_value = false;
            just_opened = false;
        } else {
            match c {
                b',' => {
                    want_value = true;
                    i += 1;
                }
                b']' => {
                    depth -= 1;
                    i += 1;
                }
                _ => return None,
            }
        }
        if depth == 0 {
            break;
        }
    }
    if depth != 0 || want_value || ws(t, i) != t.len() || out.len() != n {
        return None;
    }
    tract_onnx::prelude::tract_ndarray::ArrayD::from_shape_vec(ushape(shape), out)
        .ok()
        .map(Tensor::from)
}

/// Where the JSON number starting at `i` ends, or `None` when it is not one: the run of
/// number characters, checked only where fast-float2 is more lenient than JSON (a leading
/// `+` or `.`, leading zeros, `1.` or `1.e5`, a trailing `e`); the parse itself must then
/// consume the whole run.
fn number_end(t: &[u8], i: usize) -> Option<usize> {
    let mut end = i;
    let mut dot = None;
    while let Some(&b) = t.get(end) {
        match b {
            b'0'..=b'9' | b'-' | b'+' | b'e' | b'E' => {}
            b'.' => dot = Some(end),
            _ => break,
        }
        end += 1;
    }
    let tok = &t[i..end];
    let digits = if tok.first() == Some(&b'-') {
        &tok[1..]
    } else {
        tok
    };
    let ok = digits.first().is_some_and(u8::is_ascii_digit)
        && tok.last().is_some_and(u8::is_ascii_digit)
        && !(digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit())
        && dot.is_none_or(|d| t.get(d + 1).is_some_and(u8::is_ascii_digit));
    ok.then_some(end)
}

/// A JSON number token as a finite f64 (correctly rounded).
fn json_f64(tok: &[u8]) -> Option<f64> {
    match fast_float2::parse_partial::<f64, _>(tok) {
        Ok((x, used)) if used == tok.len() && x.is_finite() => Some(x),
        _ => None,
    }
}

/// A JSON integer token (no fraction, no exponent) as an i64.
fn json_i64(tok: &[u8]) -> Option<i64> {
    if tok.iter().any(|b| matches!(b, b'.' | b'e' | b'E' | b'+'))
        || tok.get(1..).is_some_and(|r| r.contains(&b'-'))
    {
        return None;
    }
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Builds a tensor from raw little-endian bytes (BYTES: 4-byte length prefix per element).
pub fn from_raw(
    name: &str,
    datatype: Datatype,
    shape: &[i64],
    raw: &[u8],
) -> Result<Tensor, ServeError> {
    let n = checked_count(shape, name)?;
    let s = ushape(shape);
    if let Some(size) = datatype.size() {
        let needed = n.checked_mul(size);
        if needed != Some(raw.len()) {
            return Err(ServeError::BadRequest(format!(
                "input {name:?}: shape {shape:?} of {} needs {} bytes, got {}",
                datatype.name(),
                needed.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string()),
                raw.len()
            )));
        }
        let t = if datatype == Datatype::Bool {
            Tensor::from_shape(&s, &raw.iter().map(|b| *b != 0).collect::<Vec<bool>>())
        } else {
            // Safe: the byte count matches the element count times the element size; tract
            // copies the bytes into an aligned buffer of that datum type.
            unsafe { Tensor::from_raw_dt(datatype.to_tract(), &s, raw) }
        };
        return t.map_err(|e| ServeError::BadRequest(format!("input {name:?}: {e}")));
    }
    // Every BYTES element takes at least its 4-byte length: a shape that claims more elements
    // than the bytes can hold is refused before anything is reserved.
    if n > raw.len() / 4 {
        return Err(ServeError::BadRequest(format!(
            "input {name:?}: shape {shape:?} needs {n} BYTES elements (4 bytes each at least), but only {} bytes were sent",
            raw.len()
        )));
    }
    let mut items = Vec::with_capacity(n);
    let mut rest = raw;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() - 4 < len {
            return Err(ServeError::BadRequest(format!(
                "input {name:?}: BYTES element is cut short"
            )));
        }
        items.push(String::from_utf8_lossy(&rest[4..4 + len]).into_owned());
        rest = &rest[4 + len..];
    }
    if !rest.is_empty() || items.len() != n {
        return Err(ServeError::BadRequest(format!(
            "input {name:?}: shape {shape:?} needs {n} BYTES elements, got {}",
            items.len()
        )));
    }
    strings(&s, items).map_err(|e| ServeError::BadRequest(format!("input {name:?}: {e}")))
}

fn strings(shape: &[usize], items: Vec<String>) -> TractResult<Tensor> {
    Ok(tract_onnx::prelude::tract_ndarray::ArrayD::from_shape_vec(shape, items)?.into_tensor())
}

fn slice<T: tract_onnx::prelude::Datum>(t: &Tensor) -> Option<&[T]> {
    t.as_plain_ram()?.as_slice::<T>().ok()
}

/// Rows of numbers (a table's feature columns) as an `[N, features]` tensor of `dt`.
pub(crate) fn from_rows(dt: Datatype, rows: &[Vec<f64>]) -> Result<Tensor, ServeError> {
    let (n, f) = (rows.len(), rows.first().map_or(0, Vec::len));
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let t = match dt {
        Datatype::F32 => {
            Tensor::from_shape(&[n, f], &flat.iter().map(|v| *v as f32).collect::<Vec<_>>())
        }
        Datatype::F64 => Tensor::from_shape(&[n, f], &flat),
        Datatype::I64 => {
            Tensor::from_shape(&[n, f], &flat.iter().map(|v| *v as i64).collect::<Vec<_>>())
        }
        Datatype::I32 => {
            Tensor::from_shape(&[n, f], &flat.iter().map(|v| *v as i32).collect::<Vec<_>>())
        }
        other => {
            return Err(ServeError::BadRequest(format!(
                "the model's input datatype {} cannot be fed from a table",
                other.name()
            )))
        }
    };
    t.map_err(|e| ServeError::Internal(e.to_string()))
}

/// The tensor's elements as JSON numbers, bools or strings, flat and row-major.
pub fn to_json(t: &Tensor) -> serde_json::Value {
    use serde_json::Value as J;
    fn nums<T: Copy + Into<J>>(s: &[T]) -> J {
        J::Array(s.iter().map(|x| (*x).into()).collect())
    }
    let r = || -> Option<J> {
        Some(match t.datum_type() {
            DatumType::Bool => nums(slice::<bool>(t)?),
            DatumType::U8 => nums(slice::<u8>(t)?),
            DatumType::U16 => nums(slice::<u16>(t)?),
            DatumType::U32 => nums(slice::<u32>(t)?),
            DatumType::U64 => nums(slice::<u64>(t)?),
            DatumType::I8 => nums(slice::<i8>(t)?),
            DatumType::I16 => nums(slice::<i16>(t)?),
            DatumType::I32 => nums(slice::<i32>(t)?),
            DatumType::I64 => nums(slice::<i64>(t)?),
            DatumType::F16 => J::Array(
                slice::<tract_onnx::prelude::f16>(t)?
                    .iter()
                    .map(|x| J::from(x.to_f64()))
                    .collect(),
            ),
            DatumType::F32 => J::Array(
                slice::<f32>(t)?
                    .iter()
                    .map(|x| J::from(f64::from(*x)))
                    .collect(),
            ),
            DatumType::F64 => nums(slice::<f64>(t)?),
            DatumType::String => J::Array(
                slice::<String>(t)?
                    .iter()
                    .map(|x| J::from(x.clone()))
                    .collect(),
            ),
            _ => return None,
        })
    };
    r().unwrap_or(J::Null)
}

/// The tensor's data as a JSON array, serialized straight from its buffer (what [`to_json`]
/// builds as a value, without the tree of values in between: the response path's encoder).
pub struct JsonData<'a>(pub &'a Tensor);

impl serde::Serialize for JsonData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        // As `to_json`: floats as f64 (the same digits), anything unreadable as null.
        macro_rules! seq {
            ($ty:ty) => {
                match slice::<$ty>(t) {
                    Some(v) => s.collect_seq(v),
                    None => s.serialize_unit(),
                }
            };
        }
        match t.datum_type() {
            DatumType::Bool => seq!(bool),
            DatumType::U8 => seq!(u8),
            DatumType::U16 => seq!(u16),
            DatumType::U32 => seq!(u32),
            DatumType::U64 => seq!(u64),
            DatumType::I8 => seq!(i8),
            DatumType::I16 => seq!(i16),
            DatumType::I32 => seq!(i32),
            DatumType::I64 => seq!(i64),
            DatumType::F16 => match slice::<tract_onnx::prelude::f16>(t) {
                Some(v) => s.collect_seq(v.iter().map(|x| JsonF64(x.to_f64()))),
                None => s.serialize_unit(),
            },
            DatumType::F32 => match slice::<f32>(t) {
                Some(v) => s.collect_seq(v.iter().map(|x| JsonF64(f64::from(*x)))),
                None => s.serialize_unit(),
            },
            DatumType::F64 => match slice::<f64>(t) {
                Some(v) => s.collect_seq(v.iter().map(|x| JsonF64(*x))),
                None => s.serialize_unit(),
            },
            DatumType::String => seq!(String),
            _ => s.serialize_unit(),
        }
    }
}

/// A float as `serde_json::Value` writes one: non-finite values as null.
struct JsonF64(f64);

impl serde::Serialize for JsonF64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_unit()
        }
    }
}

/// The tensor as raw little-endian bytes (BYTES: 4-byte length prefix per element).
pub fn to_raw(t: &Tensor) -> Vec<u8> {
    match t.datum_type() {
        DatumType::String => {
            let mut out = Vec::new();
            for s in slice::<String>(t).unwrap_or(&[]) {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            out
        }
        DatumType::Bool => slice::<bool>(t)
            .unwrap_or(&[])
            .iter()
            .map(|b| u8::from(*b))
            .collect(),
        // Tensors are stored little-endian on every target we build.
        _ => t
            .as_plain_ram()
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streaming_encoder_writes_what_to_json_builds() {
        let tensors = [
            Tensor::from_shape(&[4], &[1.5f32, f32::NAN, -0.1, f32::INFINITY]).unwrap(),
            Tensor::from_shape(&[2], &[7i64, -3]).unwrap(),
            Tensor::from_shape(&[2], &[true, false]).unwrap(),
            Tensor::from_shape(&[1], &[0.25f64]).unwrap(),
            tract_onnx::prelude::tract_ndarray::arr1(&["a\"b".to_string(), "é".to_string()])
                .into_tensor(),
        ];
        for t in &tensors {
            let streamed = serde_json::to_string(&JsonData(t)).unwrap();
            assert_eq!(streamed, to_json(t).to_string(), "{t:?}");
        }
    }

    #[test]
    fn nested_and_flat_json_agree() {
        let a = from_json(
            "x",
            Datatype::F32,
            &[2, 2],
            &serde_json::json!([[1, 2], [3, 4.5]]),
        )
        .unwrap();
        let b = from_json(
            "x",
            Datatype::F32,
            &[2, 2],
            &serde_json::json!([1, 2, 3, 4.5]),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(to_json(&a), serde_json::json!([1.0, 2.0, 3.0, 4.5]));
    }

    #[test]
    fn wrong_counts_and_types_name_the_input() {
        let e = from_json("x", Datatype::F32, &[2, 2], &serde_json::json!([1, 2, 3])).unwrap_err();
        assert!(
            e.to_string().contains("\"x\"")
                && e.to_string().contains("needs 4 elements, data has 3"),
            "{e}"
        );
        let e = from_json("x", Datatype::I64, &[1], &serde_json::json!(["a"])).unwrap_err();
        assert!(e.to_string().contains("expected an INT64"), "{e}");
        let e = from_raw("y", Datatype::F32, &[3], &[0u8; 8]).unwrap_err();
        assert!(e.to_string().contains("needs 12 bytes, got 8"), "{e}");
    }

    #[test]
    fn raw_round_trips() {
        let t = from_json("x", Datatype::I64, &[3], &serde_json::json!([1, -2, 3])).unwrap();
        let raw = to_raw(&t);
        assert_eq!(raw.len(), 24);
        assert_eq!(from_raw("x", Datatype::I64, &[3], &raw).unwrap(), t);
        let s = from_json("s", Datatype::Bytes, &[2], &serde_json::json!(["ab", ""])).unwrap();
        assert_eq!(
            from_raw("s", Datatype::Bytes, &[2], &to_raw(&s)).unwrap(),
            s
        );
    }

    #[test]
    fn typed_json_reading_matches_the_value_path_and_its_errors() {
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_string()).unwrap();
        let cases: &[(Datatype, &[i64], &str)] = &[
            (Datatype::F32, &[2, 3], "[[1, 2.5, -3e2], [0.1, 4, 1e-3]]"),
            (Datatype::F32, &[6], "[1, 2.5, -300, 0.1, 4, 0.001]"),
            (Datatype::F64, &[2, 2], "[[1.000000000000001, 2], [3, -4]]"),
            (Datatype::I64, &[3], "[1, -2, 9223372036854775807]"),
            (Datatype::I32, &[2, 1], "[[2147483647], [-2147483648]]"),
            (Datatype::F32, &[0, 4], "[]"),
            // errors: each must read exactly as the value path's
            (Datatype::F32, &[3], "[1, 2]"),
            (Datatype::F32, &[2], "[1, 2, 3]"),
            (Datatype::F32, &[2], "[1, \"x\"]"),
            (Datatype::F32, &[2], "[1, null]"),
            (Datatype::I32, &[2], "[1, 2147483648]"),
            (Datatype::I64, &[2], "[1, 2.5]"),
            (Datatype::I64, &[1], "[18446744073709551615]"),
            (Datatype::F32, &[1], "{\"a\": 1}"),
            (Datatype::F32, &[1], "1"),
            (Datatype::Bool, &[2], "[true, false]"),
            (Datatype::U8, &[2], "[1, 256]"),
            (Datatype::F32, &[2], "[1., 2]"),
            (Datatype::F32, &[2], "[01, 2]"),
            (Datatype::F32, &[2], "[1e999, 2]"),
            (Datatype::F32, &[2], "[NaN, 2]"),
            (Datatype::F32, &[2], "[1, 2,]"),
            (Datatype::F32, &[2], "[1 2]"),
            (Datatype::F32, &[2], "[[1], [2]"),
            (Datatype::F32, &[2], " [ 1 , -2E+2 ] "),
            (Datatype::F32, &[2], "[1, 2] x"),
            (Datatype::F32, &[0], "[[], []]"),
            (Datatype::F64, &[3], "[0.1, 1.7976931348623157e308, 5e-324]"),
            (Datatype::F32, &[2], "[1.e5, 2]"),
            (Datatype::F32, &[2], "[1e, 2]"),
            (Datatype::F32, &[2], "[1-2, 2]"),
            (Datatype::F32, &[2], "[-01, 2]"),
            (Datatype::F32, &[2], "[-0, 0.0e-0]"),
            (Datatype::I64, &[2], "[1-2, 2]"),
            (Datatype::I64, &[2], "[-1, +2]"),
        ];
        for (dt, shape, text) in cases {
            // Not JSON at all (a request would fail before this): refused too.
            let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
                let raw = serde_json::value::RawValue::from_string(text.to_string());
                if let Ok(r) = raw {
                    assert!(from_json_text("x", *dt, shape, &r).is_err(), "{text}");
                }
                continue;
            };
            let want = from_json("x", *dt, shape, &v);
            let got = from_json_text("x", *dt, shape, &raw(text));
            match (&want, &got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{dt:?} {shape:?} {text}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                _ => panic!("{dt:?} {shape:?} {text}: {want:?} vs {got:?}"),
            }
        }
        // a shape that claims more than the body holds does not reserve it
        let e = from_json_text("x", Datatype::F32, &[1 << 30], &raw("[1]")).unwrap_err();
        assert!(e.to_string().contains("needs"), "{e}");
    }
}
