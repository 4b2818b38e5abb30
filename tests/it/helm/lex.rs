//! Splits a template into text and actions (applying `{{-`/`-}}` trimming and dropping
//! comments) and lexes each action into tokens.

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Ident(String),
    Pipe,
    Open,
    Close,
    Declare,
    Comma,
}

/// One `{{ }}` action's tokens, with the line it starts on.
pub struct Action {
    pub line: usize,
    pub tokens: Vec<Token>,
}

pub enum Piece {
    Text(String),
    Action(Action),
}

/// Splits text from actions, applying `{{-` and `-}}` trimming and dropping comments.
pub fn split(source: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = source;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let trim_before = after.starts_with("- ") || after.starts_with("-\n");
        if trim_before {
            text = text.trim_end();
        }
        pieces.push(Piece::Text(text.to_owned()));
        let line = 1 + source[..source.len() - rest.len() + open]
            .matches('\n')
            .count();
        let body_start = if trim_before { 1 } else { 0 };
        let close = find_close(after).ok_or_else(|| format!("line {line}: unclosed action"))?;
        let mut body = &after[body_start..close];
        trim_next = body.ends_with(" -") || body.ends_with("\n-");
        if trim_next {
            body = &body[..body.len() - 1];
        }
        let body = body.trim();
        if !(body.starts_with("/*") && body.ends_with("*/")) {
            let tokens = lex(body).map_err(|e| format!("line {line}: {e}"))?;
            pieces.push(Piece::Action(Action { line, tokens }));
        }
        rest = &after[close + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    pieces.push(Piece::Text(text.to_owned()));
    Ok(pieces)
}

/// Where an action's `}}` is, skipping string literals and comments.
fn find_close(after: &str) -> Option<usize> {
    let bytes = after.as_bytes();
    let mut i = 0;
    if after.trim_start_matches('-').trim_start().starts_with("/*") {
        return after
            .find("*/")
            .and_then(|end| after[end..].find("}}").map(|c| end + c));
    }
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn lex(body: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = body.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let word_end = |mut j: usize| {
        while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '.')
        {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => (tokens.push(Token::Pipe), i += 1).1,
            '(' => (tokens.push(Token::Open), i += 1).1,
            ')' => (tokens.push(Token::Close), i += 1).1,
            ',' => (tokens.push(Token::Comma), i += 1).1,
            ':' if chars.get(i + 1) == Some(&'=') => (tokens.push(Token::Declare), i += 2).1,
            '"' => {
                let (text, next) = lex_quoted(&chars, i)?;
                tokens.push(Token::Str(text));
                i = next;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or("unterminated raw string")?;
                tokens.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '.' => {
                let end = word_end(i + 1);
                let path: String = chars[i + 1..end].iter().collect();
                tokens.push(Token::Dot(fields(&path)));
                i = end;
            }
            '$' => {
                let end = word_end(i + 1);
                let word: String = chars[i + 1..end].iter().collect();
                let (name, path) = word.split_once('.').unwrap_or((&word, ""));
                tokens.push(Token::Var(format!("${name}"), fields(path)));
                i = end;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let end = (i + 1..chars.len())
                    .find(|&j| !chars[j].is_ascii_digit())
                    .unwrap_or(chars.len());
                let text: String = chars[i..end].iter().collect();
                tokens.push(Token::Int(
                    text.parse().map_err(|_| format!("bad number {text}"))?,
                ));
                i = end;
            }
            c if c.is_alphabetic() => {
                let end = word_end(i);
                tokens.push(Token::Ident(chars[i..end].iter().collect()));
                i = end;
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

fn fields(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A Go interpreted string literal starting at `start`; returns it and the index after it.
fn lex_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((text, i + 1)),
            '\\' => {
                i += 1;
                text.push(match chars.get(i) {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('"') => '"',
                    Some('\\') => '\\',
                    other => return Err(format!("unsupported escape {other:?}")),
                });
            }
            c => text.push(c),
        }
        i += 1;
    }
    Err("unterminated string".into())
}
