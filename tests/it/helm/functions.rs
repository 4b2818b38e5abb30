//! The functions templates call: Go's builtins and the Helm and sprig ones the chart uses,
//! with their Go semantics (`and`/`or` return an argument, `quote` is Go's `%q`...).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::render::{Engine, Val};

impl Engine<'_> {
    /// Calls the function `name` (a Helm, sprig or Go template builtin).
    pub(super) fn call(&self, name: &str, args: Vec<Val>) -> Result<Val, String> {
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("wants {n} arguments, got {}", args.len()))
            }
        };
        let text = |v: &Val| v.text();
        Ok(match name {
            "include" => {
                arity(2)?;
                let name = text(&args[0])?;
                let nodes = self
                    .defines
                    .get(&name)
                    .ok_or_else(|| format!("no template {name:?}"))?;
                Val::Str(self.render(nodes, &args[1])?)
            }
            "Files.Get" => {
                arity(1)?;
                let path = text(&args[0])?;
                Val::Str((self.files)(&path).ok_or_else(|| format!("no file {path}"))?)
            }
            "quote" => Val::Str(
                args.iter()
                    .filter(|v| **v != Val::Nil)
                    .map(|v| v.text().map(|s| go_quote(&s)))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(" "),
            ),
            "default" => {
                arity(2)?;
                let [fallback, given] = <[Val; 2]>::try_from(args).unwrap();
                if given.truthy() { given } else { fallback }
            }
            "required" => {
                arity(2)?;
                if args[1] == Val::Nil || args[1] == Val::Str(String::new()) {
                    return Err(text(&args[0])?);
                }
                args[1].clone()
            }
            "toYaml" => {
                arity(1)?;
                let yaml =
                    serde_yaml_ng::to_string(&args[0].to_json()).map_err(|e| e.to_string())?;
                Val::Str(yaml.trim_end_matches('\n').to_owned())
            }
            "toJson" => {
                arity(1)?;
                Val::Str(args[0].to_json().to_string())
            }
            "indent" | "nindent" => {
                arity(2)?;
                let pad = " ".repeat(args[0].as_int()? as usize);
                let indented = format!(
                    "{pad}{}",
                    text(&args[1])?.replace('\n', &format!("\n{pad}"))
                );
                Val::Str(if name == "nindent" {
                    format!("\n{indented}")
                } else {
                    indented
                })
            }
            "trim" => Val::Str(text(&args[0])?.trim().to_owned()),
            "trunc" => {
                arity(2)?;
                Val::Str(
                    text(&args[1])?
                        .chars()
                        .take(args[0].as_int()? as usize)
                        .collect(),
                )
            }
            "trimSuffix" => {
                arity(2)?;
                let (suffix, s) = (text(&args[0])?, text(&args[1])?);
                Val::Str(s.strip_suffix(suffix.as_str()).unwrap_or(&s).to_owned())
            }
            "replace" => {
                arity(3)?;
                Val::Str(text(&args[2])?.replace(&text(&args[0])?, &text(&args[1])?))
            }
            "contains" => {
                arity(2)?;
                Val::Bool(text(&args[1])?.contains(&text(&args[0])?))
            }
            "printf" => Val::Str(printf(&text(&args[0])?, &args[1..])?),
            "add" => Val::Int(args.iter().map(Val::as_int).sum::<Result<i64, _>>()?),
            "int" | "int64" => {
                arity(1)?;
                Val::Int(args[0].as_int()?)
            }
            "toString" => {
                arity(1)?;
                Val::Str(text(&args[0])?)
            }
            "not" => {
                arity(1)?;
                Val::Bool(!args[0].truthy())
            }
            // Go's and/or return the deciding argument, not a bool.
            "and" => args
                .iter()
                .find(|v| !v.truthy())
                .or(args.last())
                .cloned()
                .unwrap_or(Val::Nil),
            "or" => args
                .iter()
                .find(|v| v.truthy())
                .or(args.last())
                .cloned()
                .unwrap_or(Val::Nil),
            "eq" | "ne" => {
                arity(2)?;
                if std::mem::discriminant(&args[0]) != std::mem::discriminant(&args[1]) {
                    return Err(format!("incompatible types for comparison: {:?}", args));
                }
                Val::Bool((args[0] == args[1]) == (name == "eq"))
            }
            "empty" => {
                arity(1)?;
                Val::Bool(!args[0].truthy())
            }
            "kindIs" => {
                arity(2)?;
                Val::Bool(text(&args[0])? == args[1].kind())
            }
            "dict" => {
                let mut map = BTreeMap::new();
                for pair in args.chunks(2) {
                    let value = pair.get(1).cloned().unwrap_or(Val::Nil);
                    map.insert(text(&pair[0])?, value);
                }
                Val::Map(map)
            }
            "list" => Val::List(args),
            "index" => {
                arity(2)?;
                match (&args[0], &args[1]) {
                    (Val::List(items), i) => items
                        .get(i.as_int()? as usize)
                        .cloned()
                        .ok_or("index out of range")?,
                    (Val::Map(map), key) => map.get(&text(key)?).cloned().unwrap_or(Val::Nil),
                    (other, _) => return Err(format!("cannot index a {}", other.kind())),
                }
            }
            "sha256sum" => {
                arity(1)?;
                let digest = Sha256::digest(text(&args[0])?.as_bytes());
                Val::Str(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
            other => {
                return Err(format!(
                    "function {other:?} is outside the supported subset"
                ));
            }
        })
    }
}

/// Go's `%q`: a double-quoted string with Go escapes (valid YAML as well).
fn go_quote(s: &str) -> String {
    let mut quoted = String::from('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `printf` with `%s`, `%d`, `%v`, `%q` and `%%`; `%d` of a float is an error, as Go would
/// print `%!d(float64=...)`.
fn printf(format: &str, args: &[Val]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("format ends in %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.next().ok_or("too few arguments")?;
        match (verb, arg) {
            ('d', Val::Int(n)) => out.push_str(&n.to_string()),
            ('d', other) => return Err(format!("%d of a {}", other.kind())),
            ('s' | 'v', v) => out.push_str(&v.text()?),
            ('q', v) => out.push_str(&go_quote(&v.text()?)),
            (verb, _) => return Err(format!("verb %{verb} is outside the supported subset")),
        }
    }
    if args.next().is_some() {
        return Err("too many arguments".into());
    }
    Ok(out)
}
