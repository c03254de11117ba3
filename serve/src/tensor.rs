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
}
