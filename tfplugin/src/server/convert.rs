//! Conversions between the library's types and the protocol's messages: dynamic values,
//! attribute paths, diagnostics, schemas and function signatures.

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::framework::Function;
use crate::proto;
use crate::schema::{AttrType, Attribute, Block, Nesting, Schema};
use crate::value::{AttributePath, PathStep, Type, Value};
use crate::{codec, json, msgpack};

pub(super) fn decode_dv(
    dv: Option<&proto::DynamicValue>,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let Some(dv) = dv else {
        return Some(Value::Null);
    };
    let res = if !dv.msgpack.is_empty() {
        msgpack::decode(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        json::decode(&dv.json, ty)
    } else {
        Ok(Value::Null)
    };
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error(format!("Invalid {what} from Terraform"), e.to_string());
            None
        }
    }
}

pub(super) fn encode_dv(
    v: &Value,
    ty: &Type,
    diags: &mut Diagnostics,
) -> Option<proto::DynamicValue> {
    match msgpack::encode(v, ty) {
        Ok(b) => Some(proto::DynamicValue {
            msgpack: b,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.error(
                "Provider produced a value it cannot encode",
                format!("{e}. This is a bug in the provider."),
            );
            None
        }
    }
}

pub(super) fn path_to_proto(p: &AttributePath) -> proto::AttributePath {
    use proto::attribute_path::{step::Selector, Step};
    proto::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| Step {
                selector: Some(match s {
                    PathStep::Attr(a) => Selector::AttributeName(a.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

pub(super) fn diags_to_proto(d: &Diagnostics) -> Vec<proto::Diagnostic> {
    d.iter()
        .map(|d: &Diagnostic| proto::Diagnostic {
            severity: match d.severity {
                Severity::Error => proto::diagnostic::Severity::Error as i32,
                Severity::Warning => proto::diagnostic::Severity::Warning as i32,
            },
            summary: d.summary.clone(),
            detail: d.detail.clone(),
            attribute: d
                .attribute
                .as_ref()
                .filter(|p| !p.is_root())
                .map(path_to_proto),
        })
        .collect()
}

fn type_bytes(t: &Type) -> Vec<u8> {
    serde_json::to_vec(&codec::type_to_json(t)).expect("type JSON")
}

fn attr_to_proto(a: &Attribute) -> proto::schema::Attribute {
    use proto::schema::object::NestingMode as N;
    let (ty, nested) = match &a.ty {
        AttrType::Type(t) => (type_bytes(t), None),
        AttrType::Nested {
            nesting,
            attributes,
        } => (
            Vec::new(),
            Some(proto::schema::Object {
                attributes: attributes.iter().map(attr_to_proto).collect(),
                nesting: match nesting {
                    Nesting::Single | Nesting::Group => N::Single,
                    Nesting::List => N::List,
                    Nesting::Set => N::Set,
                    Nesting::Map => N::Map,
                } as i32,
            }),
        ),
    };
    proto::schema::Attribute {
        name: a.name.clone(),
        r#type: ty,
        nested_type: nested,
        description: a.description.clone(),
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind: proto::StringKind::Markdown as i32,
        deprecated: a.deprecated,
        write_only: a.write_only,
    }
}

fn block_to_proto(b: &Block, version: i64) -> proto::schema::Block {
    use proto::schema::nested_block::NestingMode as N;
    proto::schema::Block {
        version,
        attributes: b.attributes.iter().map(attr_to_proto).collect(),
        block_types: b
            .blocks
            .iter()
            .map(|nb| proto::schema::NestedBlock {
                type_name: nb.type_name.clone(),
                block: Some(block_to_proto(&nb.block, 0)),
                nesting: match nb.nesting {
                    Nesting::Single => N::Single,
                    Nesting::List => N::List,
                    Nesting::Set => N::Set,
                    Nesting::Map => N::Map,
                    Nesting::Group => N::Group,
                } as i32,
                min_items: nb.min_items,
                max_items: nb.max_items,
            })
            .collect(),
        description: b.description.clone(),
        description_kind: proto::StringKind::Markdown as i32,
        deprecated: b.deprecated,
    }
}

/// The protocol form of a schema.
pub fn schema_to_proto(s: &Schema) -> proto::Schema {
    proto::Schema {
        version: s.version,
        block: Some(block_to_proto(&s.block, s.version)),
    }
}

pub(super) fn function_to_proto(f: &dyn Function) -> proto::Function {
    proto::Function {
        parameters: f
            .parameters()
            .into_iter()
            .map(|p| proto::function::Parameter {
                name: p.name,
                r#type: type_bytes(&p.ty),
                allow_null_value: p.allow_null,
                allow_unknown_values: false,
                description: p.description,
                description_kind: proto::StringKind::Markdown as i32,
            })
            .collect(),
        variadic_parameter: None,
        r#return: Some(proto::function::Return {
            r#type: type_bytes(&f.return_type()),
        }),
        summary: f.summary(),
        description: f.description(),
        description_kind: proto::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}
