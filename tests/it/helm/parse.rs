//! Parses the subset of Go's text/template the chart is written in: text, `{{- -}}` trimming,
//! comments, pipelines of functions and operands (`.Values.a.b`, `$var.field`, literals,
//! parenthesised pipelines), `$x := ...`, and `if`/`else if`/`else`, `range`, `with`,
//! `define` and `end`. Anything else is an error naming the line, never a silent skip.

use std::collections::HashMap;

use super::lex::{Piece, Token, split};

/// One node of a parsed template.
#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Print(Pipeline),
    Assign(String, Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        key: Option<String>,
        value: Option<String>,
        over: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Commands joined by `|`: each command's value is the last argument of the next.
#[derive(Debug, Clone)]
pub struct Pipeline(pub Vec<Command>);

/// A function and its arguments, or a single operand.
#[derive(Debug, Clone)]
pub struct Command(pub Vec<Operand>);

#[derive(Debug, Clone)]
pub enum Operand {
    /// `.a.b` (empty: the dot itself).
    Field(Vec<String>),
    /// `$name.a.b` (`$` alone is the template's argument).
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Bool(bool),
    Nil,
    /// A function's name.
    Ident(String),
    Sub(Pipeline),
}

/// A parsed file: its top-level nodes and the templates it defines.
#[derive(Debug, Default)]
pub struct Parsed {
    pub nodes: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
}

/// Parses a whole file.
pub fn parse(source: &str) -> Result<Parsed, String> {
    let pieces = split(source)?;
    let mut parser = Parser {
        pieces,
        at: 0,
        defines: HashMap::new(),
    };
    let (nodes, end) = parser.block(true)?;
    if end.is_some() {
        return Err(format!(
            "line {}: end or else without a block",
            parser.line()
        ));
    }
    Ok(Parsed {
        nodes,
        defines: parser.defines,
    })
}

/// What closed a block: `end`, or `else` with the tokens after it (`if ...` for `else if`).
enum End {
    End,
    Else(Vec<Token>),
}

struct Parser {
    pieces: Vec<Piece>,
    at: usize,
    defines: HashMap<String, Vec<Node>>,
}

impl Parser {
    fn line(&self) -> usize {
        self.pieces[..self.at.min(self.pieces.len())]
            .iter()
            .rev()
            .find_map(|p| match p {
                Piece::Action(a) => Some(a.line),
                Piece::Text(_) => None,
            })
            .unwrap_or(1)
    }

    /// Nodes up to the `end`/`else` that closes this block (returned as its keyword and the
    /// rest of its tokens), or to the end of the file when `top`.
    fn block(&mut self, top: bool) -> Result<(Vec<Node>, Option<End>), String> {
        let mut nodes = Vec::new();
        while self.at < self.pieces.len() {
            let piece = std::mem::replace(&mut self.pieces[self.at], Piece::Text(String::new()));
            self.at += 1;
            let action = match piece {
                Piece::Text(text) => {
                    if !text.is_empty() {
                        nodes.push(Node::Text(text));
                    }
                    continue;
                }
                Piece::Action(action) => action,
            };
            let line = action.line;
            let at = |e: String| format!("line {line}: {e}");
            let mut tokens = action.tokens;
            let keyword = match tokens.first() {
                Some(Token::Ident(word)) => word.clone(),
                _ => String::new(),
            };
            match keyword.as_str() {
                "end" => return Ok((nodes, Some(End::End))),
                "else" => return Ok((nodes, Some(End::Else(tokens.split_off(1))))),
                "if" => nodes.push(self.parse_if(tokens.split_off(1)).map_err(at)?),
                "range" => nodes.push(self.parse_range(tokens.split_off(1)).map_err(at)?),
                "with" => {
                    let pipe = pipeline(&tokens[1..]).map_err(at)?;
                    let (body, otherwise) = self.body_and_else().map_err(at)?;
                    nodes.push(Node::With {
                        pipe,
                        body,
                        otherwise,
                    });
                }
                "define" => {
                    let Some(Token::Str(name)) = tokens.get(1) else {
                        return Err(at("define needs a name".into()));
                    };
                    let name = name.clone();
                    let (body, end) = self.block(false).map_err(at)?;
                    if !matches!(end, Some(End::End)) {
                        return Err(at(format!("define {name:?} is not closed by end")));
                    }
                    self.defines.insert(name, body);
                }
                "template" | "block" | "break" | "continue" => {
                    return Err(at(format!("{keyword} is outside the supported subset")));
                }
                _ => match tokens.as_slice() {
                    [Token::Var(name, path), Token::Declare, rest @ ..] if path.is_empty() => {
                        nodes.push(Node::Assign(name.clone(), pipeline(rest).map_err(at)?));
                    }
                    _ => nodes.push(Node::Print(pipeline(&tokens).map_err(at)?)),
                },
            }
        }
        if top {
            Ok((nodes, None))
        } else {
            Err("a block is not closed by end".into())
        }
    }
}

impl Parser {
    /// `if` with its `else if` chain and `else`, up to the one `end` that closes them all.
    fn parse_if(&mut self, condition: Vec<Token>) -> Result<Node, String> {
        let mut branches = Vec::new();
        let mut condition = condition;
        loop {
            let pipe = pipeline(&condition)?;
            let (body, end) = self.block(false)?;
            branches.push((pipe, body));
            match end {
                Some(End::End) => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Some(End::Else(rest)) if rest.first() == Some(&Token::Ident("if".into())) => {
                    condition = rest[1..].to_vec();
                }
                Some(End::Else(rest)) if rest.is_empty() => {
                    let otherwise = self.until_end()?;
                    return Ok(Node::If {
                        branches,
                        otherwise,
                    });
                }
                _ => return Err("if: malformed else".into()),
            }
        }
    }

    /// `range [$k, $v :=] pipeline`.
    fn parse_range(&mut self, tokens: Vec<Token>) -> Result<Node, String> {
        let (key, value, over) = match tokens.as_slice() {
            [
                Token::Var(k, _),
                Token::Comma,
                Token::Var(v, _),
                Token::Declare,
                rest @ ..,
            ] => (Some(k.clone()), Some(v.clone()), rest),
            [Token::Var(v, _), Token::Declare, rest @ ..] => (None, Some(v.clone()), rest),
            rest => (None, None, rest),
        };
        let over = pipeline(over)?;
        let (body, otherwise) = self.body_and_else()?;
        Ok(Node::Range {
            key,
            value,
            over,
            body,
            otherwise,
        })
    }

    /// A block's body and its optional plain `else` part.
    fn body_and_else(&mut self) -> Result<(Vec<Node>, Vec<Node>), String> {
        let (body, end) = self.block(false)?;
        match end {
            Some(End::End) => Ok((body, Vec::new())),
            Some(End::Else(rest)) if rest.is_empty() => Ok((body, self.until_end()?)),
            _ => Err("malformed else".into()),
        }
    }

    fn until_end(&mut self) -> Result<Vec<Node>, String> {
        match self.block(false)? {
            (nodes, Some(End::End)) => Ok(nodes),
            _ => Err("else is not closed by end".into()),
        }
    }
}

/// Commands separated by `|`.
fn pipeline(tokens: &[Token]) -> Result<Pipeline, String> {
    if tokens.is_empty() {
        return Err("empty pipeline".into());
    }
    let mut commands = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Open => depth += 1,
            Token::Close => depth -= 1,
            Token::Pipe if depth == 0 => {
                commands.push(command(&tokens[start..i])?);
                start = i + 1;
            }
            _ => {}
        }
    }
    commands.push(command(&tokens[start..])?);
    Ok(Pipeline(commands))
}

fn command(tokens: &[Token]) -> Result<Command, String> {
    let mut operands = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let operand = match &tokens[i] {
            Token::Open => {
                let mut depth = 0;
                let close = (i..tokens.len())
                    .find(|&j| {
                        match tokens[j] {
                            Token::Open => depth += 1,
                            Token::Close => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .ok_or("unbalanced parenthesis")?;
                let inner = pipeline(&tokens[i + 1..close])?;
                i = close;
                Operand::Sub(inner)
            }
            Token::Dot(path) => Operand::Field(path.clone()),
            Token::Var(name, path) => Operand::Var(name.clone(), path.clone()),
            Token::Str(text) => Operand::Str(text.clone()),
            Token::Int(n) => Operand::Int(*n),
            Token::Ident(word) => match word.as_str() {
                "true" => Operand::Bool(true),
                "false" => Operand::Bool(false),
                "nil" => Operand::Nil,
                _ => Operand::Ident(word.clone()),
            },
            other => return Err(format!("unexpected {other:?}")),
        };
        operands.push(operand);
        i += 1;
    }
    if operands.is_empty() {
        return Err("empty command".into());
    }
    Ok(Command(operands))
}
