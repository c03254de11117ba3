//! The protocol's planning and apply rules, applied around every resource's handlers:
//! computed values marked unknown, `requires_replace` paths, write-only values, and the
//! checks of plans and apply results against what Terraform requires.

use crate::diag::Diagnostics;
use crate::schema::{AttrType, Block, Nesting};
use crate::value::{AttributePath, Value};

fn obj_get<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get_attr(k).unwrap_or(&Value::Null)
}

/// Marks computed attributes without a configured value unknown where apply may change them.
pub(super) fn mark_computed(
    block: &Block,
    planned: &mut Value,
    config: &Value,
    prior: &Value,
    changed: bool,
) {
    let creating = prior.is_null();
    let Value::Object(pm) = planned else { return };
    for a in &block.attributes {
        let cfg = obj_get(config, &a.name);
        let pri = obj_get(prior, &a.name);
        if a.computed && cfg.is_null() && (creating || (changed && !a.stable)) {
            pm.insert(a.name.clone(), Value::unknown());
            continue;
        }
        if a.computed && cfg.is_null() {
            // A stable computed value the configuration does not set is kept whole.
            continue;
        }
        if let (
            AttrType::Nested {
                nesting,
                attributes,
            },
            Some(pv),
        ) = (&a.ty, pm.get_mut(&a.name))
        {
            let inner = Block {
                attributes: attributes.clone(),
                ..Block::default()
            };
            mark_nested(&inner, *nesting, pv, cfg, pri, changed);
        }
    }
    for nb in &block.blocks {
        if let Some(pv) = pm.get_mut(&nb.type_name) {
            mark_nested(
                &nb.block,
                nb.nesting,
                pv,
                obj_get(config, &nb.type_name),
                obj_get(prior, &nb.type_name),
                changed,
            );
        }
    }
}

fn mark_nested(
    block: &Block,
    nesting: Nesting,
    planned: &mut Value,
    config: &Value,
    prior: &Value,
    changed: bool,
) {
    match (nesting, planned) {
        (Nesting::Single | Nesting::Group, v @ Value::Object(_)) => {
            mark_computed(block, v, config, prior, changed)
        }
        (Nesting::List, Value::List(items)) => {
            for (i, it) in items.iter_mut().enumerate() {
                let c = config
                    .elements()
                    .and_then(|e| e.get(i))
                    .unwrap_or(&Value::Null);
                let p = prior
                    .elements()
                    .and_then(|e| e.get(i))
                    .unwrap_or(&Value::Null);
                mark_computed(block, it, c, p, changed);
            }
        }
        (Nesting::Map, Value::Map(items)) => {
            for (k, it) in items.iter_mut() {
                let c = match config {
                    Value::Map(m) => m.get(k).unwrap_or(&Value::Null),
                    _ => &Value::Null,
                };
                let p = match prior {
                    Value::Map(m) => m.get(k).unwrap_or(&Value::Null),
                    _ => &Value::Null,
                };
                mark_computed(block, it, c, p, changed);
            }
        }
        // Set elements have no identity across plans; their computed parts stay as proposed.
        _ => {}
    }
}

/// The write-only attributes given a value (known or not) anywhere in a configuration.
pub(super) fn write_only_given(block: &Block, v: &Value, at: &AttributePath) -> Vec<AttributePath> {
    let Value::Object(m) = v else {
        return Vec::new();
    };
    let mut out: Vec<AttributePath> = block
        .attributes
        .iter()
        .filter(|a| a.write_only && m.get(&a.name).is_some_and(|v| !v.is_null()))
        .map(|a| at.clone().then_attr(a.name.clone()))
        .collect();
    for nb in &block.blocks {
        let here = at.clone().then_attr(nb.type_name.clone());
        match m.get(&nb.type_name) {
            Some(o @ Value::Object(_)) => out.extend(write_only_given(&nb.block, o, &here)),
            Some(Value::List(items) | Value::Set(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let mut p = here.clone();
                    p.0.push(crate::value::PathStep::Index(i as i64));
                    out.extend(write_only_given(&nb.block, item, &p));
                }
            }
            Some(Value::Map(items)) => {
                for (k, item) in items {
                    out.extend(write_only_given(
                        &nb.block,
                        item,
                        &here.clone().then_key(k.clone()),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// Nulls write-only attributes everywhere in `v`.
pub(super) fn null_write_only(block: &Block, v: &mut Value) {
    let Value::Object(m) = v else { return };
    for a in &block.attributes {
        if a.write_only {
            m.insert(a.name.clone(), Value::Null);
        }
    }
    for nb in &block.blocks {
        match m.get_mut(&nb.type_name) {
            Some(o @ Value::Object(_)) => null_write_only(&nb.block, o),
            Some(Value::List(items) | Value::Set(items)) => {
                items.iter_mut().for_each(|i| null_write_only(&nb.block, i))
            }
            Some(Value::Map(items)) => items
                .values_mut()
                .for_each(|i| null_write_only(&nb.block, i)),
            _ => {}
        }
    }
}

/// Copies configured write-only values into `plan` so apply handlers can use them.
pub(super) fn with_write_only(block: &Block, plan: &mut Value, config: &Value) {
    let Value::Object(m) = plan else { return };
    for a in block.attributes.iter().filter(|a| a.write_only) {
        m.insert(a.name.clone(), obj_get(config, &a.name).clone());
    }
}

pub(super) fn replace_paths(
    block: &Block,
    prior: &Value,
    planned: &Value,
    at: &AttributePath,
    out: &mut Vec<AttributePath>,
) {
    for a in &block.attributes {
        if a.requires_replace && obj_get(prior, &a.name) != obj_get(planned, &a.name) {
            out.push(at.clone().then_attr(&a.name));
        }
    }
    for nb in &block.blocks {
        let (p, n) = (
            obj_get(prior, &nb.type_name),
            obj_get(planned, &nb.type_name),
        );
        let path = at.clone().then_attr(&nb.type_name);
        if nb.requires_replace && p != n {
            out.push(path);
            continue;
        }
        match (nb.nesting, p, n) {
            (Nesting::Single | Nesting::Group, p, n) => replace_paths(&nb.block, p, n, &path, out),
            (Nesting::List, Value::List(pi), Value::List(ni)) => {
                for (i, (pe, ne)) in pi.iter().zip(ni).enumerate() {
                    replace_paths(&nb.block, pe, ne, &path.clone().then_index(i as i64), out);
                }
            }
            _ => {}
        }
    }
}

pub(super) fn first_unknown(v: &Value, at: AttributePath) -> Option<AttributePath> {
    match v {
        Value::Unknown(_) => Some(at),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, e)| first_unknown(e, at.clone().then_attr(k))),
        Value::Map(m) => m
            .iter()
            .find_map(|(k, e)| first_unknown(e, at.clone().then_key(k))),
        Value::List(v) | Value::Tuple(v) | Value::Set(v) => v
            .iter()
            .enumerate()
            .find_map(|(i, e)| first_unknown(e, at.clone().then_index(i as i64))),
        Value::Dynamic(_, v) => first_unknown(v, at),
        _ => None,
    }
}

fn same_set(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// Every value known in `planned` must be equal in `actual`; returns the mismatches.
fn inconsistencies(
    planned: &Value,
    actual: &Value,
    at: AttributePath,
    out: &mut Vec<(AttributePath, String, String)>,
) {
    match (planned, actual) {
        (Value::Unknown(_), _) => {}
        (Value::Object(p), Value::Object(a)) => {
            for (k, pv) in p {
                inconsistencies(
                    pv,
                    a.get(k).unwrap_or(&Value::Null),
                    at.clone().then_attr(k),
                    out,
                );
            }
        }
        (Value::Map(p), Value::Map(a)) if p.len() == a.len() => {
            for (k, pv) in p {
                inconsistencies(
                    pv,
                    a.get(k).unwrap_or(&Value::Null),
                    at.clone().then_key(k),
                    out,
                );
            }
        }
        (Value::List(p), Value::List(a)) | (Value::Tuple(p), Value::Tuple(a))
            if p.len() == a.len() =>
        {
            for (i, (pv, av)) in p.iter().zip(a).enumerate() {
                inconsistencies(pv, av, at.clone().then_index(i as i64), out);
            }
        }
        (Value::Set(p), Value::Set(a)) => {
            if planned.is_wholly_known() && !same_set(p, a) {
                out.push((at, planned.to_string(), actual.to_string()));
            } else if p.len() != a.len() {
                out.push((
                    at,
                    format!("{} elements", p.len()),
                    format!("{} elements", a.len()),
                ));
            }
        }
        (Value::Dynamic(_, p), Value::Dynamic(_, a)) => inconsistencies(p, a, at, out),
        (p, a) => {
            if p != a {
                out.push((at, p.to_string(), a.to_string()));
            }
        }
    }
}

pub(super) fn check_apply_result(
    planned: &Value,
    new: &Value,
    diags: &mut Diagnostics,
    type_name: &str,
) {
    let mut bad = Vec::new();
    inconsistencies(planned, new, AttributePath::root(), &mut bad);
    for (path, want, got) in bad {
        diags.error_at(
            path.clone(),
            "Provider produced inconsistent result after apply",
            format!("{type_name}: {path} was planned as {want} but apply produced {got}. This is a bug in the provider."),
        );
    }
    if let Some(path) = first_unknown(new, AttributePath::root()) {
        diags.error_at(
            path.clone(),
            "Provider returned an unknown value after apply",
            format!(
                "{type_name}: {path} is still unknown after apply. This is a bug in the provider."
            ),
        );
    }
}

pub(super) fn check_config_kept(
    block: &Block,
    config: &Value,
    planned: &Value,
    diags: &mut Diagnostics,
    what: &str,
) {
    for a in block
        .attributes
        .iter()
        .filter(|a| !a.computed && !a.write_only)
    {
        let (c, p) = (obj_get(config, &a.name), obj_get(planned, &a.name));
        if c.is_wholly_known() && c != p {
            diags.error_at(
                AttributePath::attr(&a.name),
                "Provider changed a configured value",
                format!("{what} set {} to {p}, but the configuration says {c}. This is a bug in the provider.", a.name),
            );
        }
    }
}

pub(super) fn strip_unknown(v: Value) -> Value {
    match v {
        Value::Unknown(_) => Value::Null,
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, strip_unknown(v))).collect())
        }
        Value::Map(m) => Value::Map(m.into_iter().map(|(k, v)| (k, strip_unknown(v))).collect()),
        Value::List(v) => Value::List(v.into_iter().map(strip_unknown).collect()),
        Value::Set(v) => Value::Set(v.into_iter().map(strip_unknown).collect()),
        Value::Tuple(v) => Value::Tuple(v.into_iter().map(strip_unknown).collect()),
        Value::Dynamic(t, v) => Value::Dynamic(t, Box::new(strip_unknown(*v))),
        v => v,
    }
}
