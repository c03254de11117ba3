//! `cargo xtask modules`: what in `modules/` and `blueprints/` is written from one source.
//!
//! - **The endpoint fields of every blueprint's `endpoints` variable** come from
//!   `modules/endpoint/variables.tf`: between `# BEGIN fields of modules/endpoint: NAME …` and
//!   `# END fields of modules/endpoint` each named module variable becomes a field of the same
//!   type (`optional(TYPE)` when the module variable has a default). A change to the module's
//!   inputs lands in every blueprint with one command, and the blueprints check their inputs at
//!   plan with the module's own types.
//! - **The Inputs and Outputs tables of each module's and blueprint's README** come from its
//!   `variables.tf` and `outputs.tf`.
//!
//! `--check` (and the test below, in the suite) fails when a file is stale.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::root;

/// A top-level block (`variable "x" { … }`) and its attributes' source text.
#[derive(Debug, Default)]
struct Block {
    name: String,
    description: String,
    /// The type expression as written (several lines for objects).
    ty: Option<String>,
    /// The default expression as written.
    default: Option<String>,
    sensitive: bool,
}

/// The expression starting at `first` (the text after `= `), continued over the next lines
/// until its brackets balance.
fn expression<'a>(first: &'a str, rest: &mut impl Iterator<Item = &'a str>) -> String {
    let mut text = first.to_string();
    let depth = |s: &str| {
        let (mut d, mut in_str, mut esc) = (0i32, false, false);
        for c in s.chars() {
            match (in_str, esc, c) {
                (true, true, _) => esc = false,
                (true, false, '\\') => esc = true,
                (true, false, '"') => in_str = false,
                (true, false, _) => {}
                (false, _, '"') => in_str = true,
                (false, _, '(' | '[' | '{') => d += 1,
                (false, _, ')' | ']' | '}') => d -= 1,
                _ => {}
            }
        }
        d
    };
    while depth(&text) > 0 {
        match rest.next() {
            Some(l) => {
                text.push('\n');
                text.push_str(l);
            }
            None => break,
        }
    }
    text
}

/// The top-level `kind "NAME" { … }` blocks of an HCL file, with their direct attributes.
fn blocks(text: &str, kind: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    let open = format!("{kind} \"");
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(&open) else {
            continue;
        };
        let mut b = Block {
            name: rest.split('"').next().unwrap_or_default().to_string(),
            ..Block::default()
        };
        while let Some(l) = lines.next() {
            if l == "}" {
                break;
            }
            // Direct attributes are indented by two spaces; nested blocks (validation) skipped.
            let Some(attr) = l.strip_prefix("  ").filter(|a| !a.starts_with(' ')) else {
                continue;
            };
            let Some((key, value)) = attr.split_once('=') else {
                continue;
            };
            let value = value.trim_start();
            match key.trim() {
                "description" => {
                    let v = expression(value, &mut lines);
                    b.description = serde_json::from_str::<String>(&v).unwrap_or(v);
                }
                "type" => b.ty = Some(expression(value, &mut lines)),
                "default" => b.default = Some(expression(value, &mut lines)),
                "sensitive" => b.sensitive = value.trim() == "true",
                _ if value.trim_end().ends_with('{') || value.trim_end().ends_with('(') => {
                    expression(value, &mut lines);
                }
                _ => {}
            }
        }
        out.push(b);
    }
    out
}

/// Re-indents a multi-line expression by `by` more spaces (its first line stays where it is).
fn indent(expr: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    expr.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 || l.is_empty() {
                l.to_string()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const BEGIN: &str = "# BEGIN fields of modules/endpoint:";
const END: &str = "# END fields of modules/endpoint";

/// Rewrites the generated endpoint fields of a blueprint's variables.tf.
fn endpoint_fields(text: &str, module: &[Block], file: &Path) -> Result<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        out.push(line.to_string());
        let Some(names) = line.trim_start().strip_prefix(BEGIN) else {
            continue;
        };
        let pad = line.len() - line.trim_start().len();
        let names: Vec<&str> = names.split_whitespace().collect();
        let mut fields = Vec::new();
        for name in &names {
            let Some(v) = module.iter().find(|b| b.name == *name) else {
                bail!(
                    "{}: modules/endpoint has no variable `{name}` (named in `{BEGIN}`)",
                    file.display()
                );
            };
            let ty = indent(v.ty.as_deref().unwrap_or("any"), pad - 2);
            let field = match v.default.as_deref() {
                None => ty,
                Some("null") => format!("optional({ty})"),
                Some(d) => format!("optional({ty}, {d})"),
            };
            fields.push((*name, field));
        }
        // As `terraform fmt` writes them: the `=` of consecutive one-line fields aligned, a
        // field over several lines on its own.
        let mut i = 0;
        while i < fields.len() {
            let mut j = i;
            while j < fields.len() && !fields[j].1.contains('\n') {
                j += 1;
            }
            let width = fields[i..j].iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, field) in &fields[i..j] {
                out.push(format!("{}{name:<width$} = {field}", " ".repeat(pad)));
            }
            if j < fields.len() {
                let (name, field) = &fields[j];
                out.push(format!("{}{name} = {field}", " ".repeat(pad)));
            }
            i = j + 1;
        }
        // Skip the old fields, keep the END marker.
        for l in lines.by_ref() {
            if l.trim_start().starts_with(END) {
                out.push(l.to_string());
                break;
            }
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    Ok(s)
}

/// A type for a table cell: on one line, or its top-level fields when it is long.
fn short_type(ty: &str) -> String {
    if !ty.contains('\n') {
        return ty.to_string();
    }
    // The outer constructor and the names of its object's fields (the lines as indented as
    // the first field).
    let head = ty.split("({").next().unwrap_or("object");
    let lead = |l: &str| l.len() - l.trim_start().len();
    let base = ty.lines().nth(1).map(lead).unwrap_or(0);
    let fields: Vec<&str> = ty
        .lines()
        .skip(1)
        .filter(|l| lead(l) == base)
        .filter_map(|l| l.trim().split_once('=').map(|(n, _)| n.trim()))
        .collect();
    let close = ")".repeat(head.matches('(').count() + 1);
    format!("{head}({{ {} }}{close}", fields.join(", "))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The generated Inputs and Outputs sections of a README.
fn tables(vars: &[Block], outs: &[Block]) -> String {
    let mut s = String::from(
        "## Inputs\n\n<!-- Written by `cargo xtask modules` from variables.tf: edit the descriptions there. -->\n\n\
         | Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n",
    );
    for v in vars {
        let default = match v.default.as_deref() {
            None => "n/a".to_string(),
            Some(d) if d.contains('\n') => "see variables.tf".to_string(),
            Some(d) => format!("`{}`", cell(d)),
        };
        s.push_str(&format!(
            "| `{}` | {}{} | `{}` | {} | {} |\n",
            v.name,
            cell(&v.description),
            if v.sensitive { " (sensitive)" } else { "" },
            cell(&short_type(v.ty.as_deref().unwrap_or("any"))),
            default,
            if v.default.is_none() { "yes" } else { "no" }
        ));
    }
    s.push_str(
        "\n## Outputs\n\n<!-- Written by `cargo xtask modules` from outputs.tf. -->\n\n| Name | Description |\n|------|-------------|\n",
    );
    for o in outs {
        s.push_str(&format!(
            "| `{}` | {}{} |\n",
            o.name,
            cell(&o.description),
            if o.sensitive { " (sensitive)" } else { "" }
        ));
    }
    s
}

/// Replaces the README's `## Inputs` and `## Outputs` sections (up to the next `## ` heading
/// after them, or the end) with the generated tables.
fn readme(text: &str, generated: &str, file: &Path) -> Result<String> {
    let Some(start) = text.find("## Inputs\n") else {
        bail!("{}: no `## Inputs` section", file.display());
    };
    let after_outputs = text[start..]
        .find("## Outputs\n")
        .map(|o| start + o + "## Outputs\n".len())
        .with_context(|| format!("{}: no `## Outputs` section", file.display()))?;
    let end = text[after_outputs..]
        .find("\n## ")
        .map(|e| after_outputs + e + 1)
        .unwrap_or(text.len());
    let mut out = String::new();
    out.push_str(&text[..start]);
    out.push_str(generated);
    if end < text.len() {
        out.push('\n');
        out.push_str(&text[end..]);
    }
    Ok(out)
}

/// The modules and blueprints.
fn folders() -> Vec<PathBuf> {
    let mut v = vec![root().join("modules/endpoint")];
    if let Ok(rd) = std::fs::read_dir(root().join("blueprints")) {
        let mut b: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("variables.tf").is_file())
            .collect();
        b.sort();
        v.extend(b);
    }
    v
}

/// Every generated file as it should be: (path, content).
fn generate() -> Result<Vec<(PathBuf, String)>> {
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| p.display().to_string());
    let module = blocks(
        &read(&root().join("modules/endpoint/variables.tf"))?,
        "variable",
    );
    let mut out = Vec::new();
    for dir in folders() {
        let vpath = dir.join("variables.tf");
        let mut vars_text = read(&vpath)?;
        if vars_text.contains(BEGIN) {
            vars_text = endpoint_fields(&vars_text, &module, &vpath)?;
            out.push((vpath, vars_text.clone()));
        }
        let vars = blocks(&vars_text, "variable");
        let outs = blocks(&read(&dir.join("outputs.tf"))?, "output");
        let rpath = dir.join("README.md");
        let r = readme(&read(&rpath)?, &tables(&vars, &outs), &rpath)?;
        out.push((rpath, r));
    }
    Ok(out)
}

/// The files that differ from what `generate` writes.
pub fn stale() -> Result<Vec<PathBuf>> {
    Ok(generate()?
        .into_iter()
        .filter(|(p, want)| std::fs::read_to_string(p).ok().as_deref() != Some(want.as_str()))
        .map(|(p, _)| p)
        .collect())
}

/// `cargo xtask modules [--check]`.
pub fn run(check: bool) -> Result<()> {
    if check {
        let s = stale()?;
        if !s.is_empty() {
            bail!(
                "stale (run `cargo xtask modules`): {}",
                s.iter()
                    .map(|p| p.strip_prefix(root()).unwrap_or(p).display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        eprintln!("==> modules and blueprints are up to date");
        return Ok(());
    }
    for (p, want) in generate()? {
        if std::fs::read_to_string(&p).ok().as_deref() != Some(want.as_str()) {
            std::fs::write(&p, want)?;
            eprintln!(
                "==> wrote {}",
                p.strip_prefix(root()).unwrap_or(&p).display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blueprints' endpoint fields and the README tables match their sources.
    #[test]
    fn generated_files_are_up_to_date() {
        let s = stale().unwrap();
        assert!(s.is_empty(), "stale, run `cargo xtask modules`: {s:?}");
    }

    #[test]
    fn fields_take_the_module_types() {
        let module = blocks(
            "variable \"port\" {\n  type    = number\n  default = null\n}\n\
             variable \"versions\" {\n  description = \"V \\\"x\\\"\"\n  type = map(object({\n    a = string\n  }))\n\n  validation {\n    condition = true\n  }\n}\n\
             variable \"batching\" {\n  type = object({\n    n = optional(number, 32)\n  })\n  default = {}\n}\n",
            "variable",
        );
        assert_eq!(module[1].description, "V \"x\"");
        let bp = "  type = map(object({\n    # BEGIN fields of modules/endpoint: versions port batching\n    old = string\n    # END fields of modules/endpoint\n    extra = number\n  }))\n";
        let got = endpoint_fields(bp, &module, Path::new("x")).unwrap();
        assert_eq!(
            got,
            "  type = map(object({\n    # BEGIN fields of modules/endpoint: versions port batching\n    versions = map(object({\n      a = string\n    }))\n    port = optional(number)\n    batching = optional(object({\n      n = optional(number, 32)\n    }), {})\n    # END fields of modules/endpoint\n    extra = number\n  }))\n"
        );
        assert!(endpoint_fields(
            "# BEGIN fields of modules/endpoint: nope\n# END fields of modules/endpoint\n",
            &module,
            Path::new("x")
        )
        .unwrap_err()
        .to_string()
        .contains("no variable `nope`"));
    }
}
