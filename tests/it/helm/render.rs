//! Executes parsed templates the way Helm does, for the subset of functions the chart uses.
//! Like Helm, numbers from values files are floats (so `{{ 1000000 }}` from values prints
//! `1e+06`, which the chart must avoid); unlike Helm, a missing map key is an error, so a
//! template can never silently read a value that values.yaml does not declare.

use std::collections::{BTreeMap, HashMap};

use super::parse::{Command, Node, Operand, Pipeline};

/// A template value, with Go's kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Val>),
    Map(BTreeMap<String, Val>),
}

impl Val {
    /// Helm reads values through JSON, so every number becomes a float64.
    pub fn from_json(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Val::Nil,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => Val::Float(n.as_f64().unwrap()),
            serde_json::Value::String(s) => Val::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Val::List(items.iter().map(Val::from_json).collect())
            }
            serde_json::Value::Object(map) => Val::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Val::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub(super) fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Nil => serde_json::Value::Null,
            Val::Bool(b) => (*b).into(),
            Val::Int(n) => (*n).into(),
            // encoding/json writes integral float64s without a fraction.
            Val::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => (*f as i64).into(),
            Val::Float(f) => (*f).into(),
            Val::Str(s) => s.clone().into(),
            Val::List(items) => items.iter().map(Val::to_json).collect(),
            Val::Map(map) => map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
        }
    }

    pub(super) fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(n) => *n != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::List(items) => !items.is_empty(),
            Val::Map(map) => !map.is_empty(),
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Val::Nil => "invalid",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int64",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::List(_) => "slice",
            Val::Map(_) => "map",
        }
    }

    /// fmt's `%v` of a scalar; collections and nil are template bugs here.
    pub(super) fn text(&self) -> Result<String, String> {
        match self {
            Val::Bool(b) => Ok(b.to_string()),
            Val::Int(n) => Ok(n.to_string()),
            Val::Float(f) => Ok(go_float(*f)),
            Val::Str(s) => Ok(s.clone()),
            other => Err(format!("cannot print a {}: {other:?}", other.kind())),
        }
    }

    pub(super) fn as_int(&self) -> Result<i64, String> {
        match self {
            Val::Int(n) => Ok(*n),
            Val::Float(f) => Ok(*f as i64),
            Val::Str(s) => s.parse().map_err(|_| format!("{s:?} is not a number")),
            Val::Nil => Ok(0),
            other => Err(format!("cannot convert a {} to int", other.kind())),
        }
    }
}

/// Go's `%v` of a float64: the shortest representation, in exponent form from 1e+06 on
/// (or below 1e-4), as Helm prints numbers from values files.
pub fn go_float(f: f64) -> String {
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap();
    let exponent: i32 = exponent.parse().unwrap();
    if f != 0.0 && !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        format!("{f}")
    }
}

/// What every template of a chart shares: the defined templates and the chart's files.
pub struct Engine<'a> {
    pub defines: &'a HashMap<String, Vec<Node>>,
    pub files: &'a dyn Fn(&str) -> Option<String>,
}

type Vars = Vec<(String, Val)>;

impl Engine<'_> {
    /// Renders `nodes` with `data` as both `.` and `$`.
    pub fn render(&self, nodes: &[Node], data: &Val) -> Result<String, String> {
        let mut out = String::new();
        let mut vars = vec![("$".to_owned(), data.clone())];
        self.exec(nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }

    fn exec(
        &self,
        nodes: &[Node],
        dot: &Val,
        vars: &mut Vars,
        out: &mut String,
    ) -> Result<(), String> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Print(pipe) => out.push_str(&self.pipeline(pipe, dot, vars)?.text()?),
                Node::Assign(name, pipe) => {
                    let value = self.pipeline(pipe, dot, vars)?;
                    vars.push((name.clone(), value));
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = false;
                    for (condition, body) in branches {
                        if self.pipeline(condition, dot, vars)?.truthy() {
                            self.scoped(body, dot, vars, out)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.scoped(otherwise, dot, vars, out)?;
                    }
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let value = self.pipeline(pipe, dot, vars)?;
                    if value.truthy() {
                        self.scoped(body, &value, vars, out)?;
                    } else {
                        self.scoped(otherwise, dot, vars, out)?;
                    }
                }
                Node::Range {
                    key,
                    value,
                    over,
                    body,
                    otherwise,
                } => {
                    let items: Vec<(Val, Val)> = match self.pipeline(over, dot, vars)? {
                        Val::List(items) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Val::Int(i as i64), v))
                            .collect(),
                        // Go ranges over a map in key order.
                        Val::Map(map) => map.into_iter().map(|(k, v)| (Val::Str(k), v)).collect(),
                        Val::Nil => Vec::new(),
                        other => return Err(format!("cannot range over a {}", other.kind())),
                    };
                    if items.is_empty() {
                        self.scoped(otherwise, dot, vars, out)?;
                    }
                    for (k, v) in items {
                        let depth = vars.len();
                        if let Some(name) = key {
                            vars.push((name.clone(), k));
                        }
                        if let Some(name) = value {
                            vars.push((name.clone(), v.clone()));
                        }
                        self.exec(body, &v, vars, out)?;
                        vars.truncate(depth);
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs a block whose variables end with it.
    fn scoped(
        &self,
        nodes: &[Node],
        dot: &Val,
        vars: &mut Vars,
        out: &mut String,
    ) -> Result<(), String> {
        let depth = vars.len();
        let result = self.exec(nodes, dot, vars, out);
        vars.truncate(depth);
        result
    }

    fn pipeline(&self, pipe: &Pipeline, dot: &Val, vars: &Vars) -> Result<Val, String> {
        let mut piped: Option<Val> = None;
        for command in &pipe.0 {
            piped = Some(self.command(command, dot, vars, piped)?);
        }
        Ok(piped.expect("a pipeline has a command"))
    }

    fn command(
        &self,
        command: &Command,
        dot: &Val,
        vars: &Vars,
        piped: Option<Val>,
    ) -> Result<Val, String> {
        let operands = &command.0;
        let method = match &operands[0] {
            Operand::Ident(name) => Some(name.as_str()),
            Operand::Field(path) if path == &["Files", "Get"] => Some("Files.Get"),
            _ => None,
        };
        let Some(name) = method else {
            if operands.len() > 1 || piped.is_some() {
                return Err(format!("{:?} is not a function", operands[0]));
            }
            return self.operand(&operands[0], dot, vars);
        };
        let mut args = operands[1..]
            .iter()
            .map(|o| self.operand(o, dot, vars))
            .collect::<Result<Vec<_>, _>>()?;
        args.extend(piped);
        self.call(name, args).map_err(|e| format!("{name}: {e}"))
    }

    fn operand(&self, operand: &Operand, dot: &Val, vars: &Vars) -> Result<Val, String> {
        match operand {
            Operand::Field(path) => walk(dot, path),
            Operand::Var(name, path) => {
                let value = vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v)
                    .ok_or_else(|| format!("undefined variable {name}"))?;
                walk(value, path)
            }
            Operand::Str(s) => Ok(Val::Str(s.clone())),
            Operand::Int(n) => Ok(Val::Int(*n)),
            Operand::Bool(b) => Ok(Val::Bool(*b)),
            Operand::Nil => Ok(Val::Nil),
            Operand::Ident(name) => self.call(name, Vec::new()),
            Operand::Sub(pipe) => self.pipeline(pipe, dot, vars),
        }
    }
}

/// Follows `.a.b`: a key missing from a map is an error (see the module's comment).
fn walk(value: &Val, path: &[String]) -> Result<Val, String> {
    let mut current = value;
    for (i, field) in path.iter().enumerate() {
        current = match current {
            Val::Map(map) => map
                .get(field)
                .ok_or_else(|| format!("no value .{}", path[..=i].join(".")))?,
            other => {
                return Err(format!(
                    "cannot read .{} of a {}",
                    path[..=i].join("."),
                    other.kind()
                ));
            }
        };
    }
    Ok(current.clone())
}
