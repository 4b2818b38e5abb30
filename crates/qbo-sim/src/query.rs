//! A parser for the subset of QBO's query language that qbo-sync sends:
//! `SELECT * | COUNT(*) FROM Entity [WHERE c AND c ...] [ORDERBY f [ASC|DESC], ...]
//! [STARTPOSITION n] [MAXRESULTS n]`, where a condition is `field op value` with op one of
//! `= != < > <= >= LIKE IN`. Strings are single-quoted with backslash escapes (`\'`, `\\`).

use super::realm::Kind;

/// A literal on the right of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    In,
}

/// `field op value(s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    pub values: Vec<Literal>,
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub count: bool,
    pub entity: Kind,
    pub conditions: Vec<Condition>,
    /// Field and descending flag.
    pub order: Vec<(String, bool)>,
    /// 1-based.
    pub start: usize,
    pub max: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(f64),
    Sym(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            tokens.push(Token::Str(read_string(&mut chars)?));
        } else if c.is_ascii_digit()
            || (c == '-' && tokens.last().is_some_and(|t| matches!(t, Token::Sym(_))))
        {
            let mut num = String::from(c);
            chars.next();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '.') {
                num.push(d);
                chars.next();
            }
            tokens.push(Token::Num(
                num.parse().map_err(|_| format!("bad number {num}"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let mut word = String::new();
            while let Some(&d) = chars
                .peek()
                .filter(|d| d.is_alphanumeric() || **d == '_' || **d == '.')
            {
                word.push(d);
                chars.next();
            }
            tokens.push(Token::Word(word));
        } else {
            chars.next();
            let two = chars.peek().map(|n| format!("{c}{n}"));
            match two.as_deref() {
                Some("<=" | ">=" | "!=" | "<>") => {
                    chars.next();
                    tokens.push(Token::Sym(two.unwrap_or_default()));
                }
                _ if "=<>(),*".contains(c) => tokens.push(Token::Sym(c.to_string())),
                _ => return Err(format!("unexpected character '{c}'")),
            }
        }
    }
    Ok(tokens)
}

/// Reads a quoted string after its opening quote; `\x` stands for `x` (so `\'` and `\\`).
fn read_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    let mut out = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string literal".to_owned()),
            Some('\\') => out.push(chars.next().ok_or("dangling backslash")?),
            Some('\'') => return Ok(out),
            Some(c) => out.push(c),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), String> {
        if self.keyword(kw) {
            Ok(())
        } else {
            Err(format!("expected {kw} at token {}", self.pos + 1))
        }
    }

    fn symbol(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(s)) if s == sym) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    fn number(&mut self) -> Result<usize, String> {
        match self.next() {
            Some(Token::Num(n)) if n >= 0.0 && n.fract() == 0.0 => Ok(n as usize),
            other => Err(format!("expected a whole number, found {other:?}")),
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::Str(s)),
            Some(Token::Num(n)) => Ok(Literal::Num(n)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    fn condition(&mut self) -> Result<Condition, String> {
        let field = self.word()?;
        let op = match self.next() {
            Some(Token::Sym(s)) => match s.as_str() {
                "=" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                ">" => Op::Gt,
                "<=" => Op::Le,
                ">=" => Op::Ge,
                _ => return Err(format!("unknown operator {s}")),
            },
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            other => {
                return Err(format!(
                    "expected an operator after {field}, found {other:?}"
                ));
            }
        };
        let values = if op == Op::In {
            self.list()?
        } else {
            vec![self.literal()?]
        };
        Ok(Condition { field, op, values })
    }

    fn list(&mut self) -> Result<Vec<Literal>, String> {
        if !self.symbol("(") {
            return Err("IN needs a parenthesised list".to_owned());
        }
        let mut values = vec![self.literal()?];
        while self.symbol(",") {
            values.push(self.literal()?);
        }
        if !self.symbol(")") {
            return Err("unclosed IN list".to_owned());
        }
        Ok(values)
    }
}

/// Parses one statement.
///
/// # Errors
/// A description of the first problem, for a 4000 fault.
pub fn parse(text: &str) -> Result<Query, String> {
    let mut p = Parser {
        tokens: tokenize(text)?,
        pos: 0,
    };
    p.expect_keyword("select")?;
    let count = if p.symbol("*") {
        false
    } else if p.keyword("count") {
        if !(p.symbol("(") && p.symbol("*") && p.symbol(")")) {
            return Err("expected COUNT(*)".to_owned());
        }
        true
    } else {
        return Err("only SELECT * and SELECT COUNT(*) are supported (no projections)".to_owned());
    };
    p.expect_keyword("from")?;
    let entity_name = p.word()?;
    let entity = Kind::parse(&entity_name)
        .ok_or_else(|| format!("entity {entity_name} is not simulated"))?;
    let mut query = Query {
        count,
        entity,
        conditions: Vec::new(),
        order: Vec::new(),
        start: 1,
        max: None,
    };
    if p.keyword("where") {
        query.conditions.push(p.condition()?);
        while p.keyword("and") {
            query.conditions.push(p.condition()?);
        }
    }
    if p.keyword("orderby") || (p.keyword("order") && p.keyword("by")) {
        loop {
            let field = p.word()?;
            let desc = p.keyword("desc");
            if !desc {
                p.keyword("asc");
            }
            query.order.push((field, desc));
            if !p.symbol(",") {
                break;
            }
        }
    }
    while p.peek().is_some() {
        if p.keyword("startposition") {
            query.start = p.number()?.max(1);
        } else if p.keyword("maxresults") {
            query.max = Some(p.number()?);
        } else {
            return Err(format!(
                "unexpected {:?} (OR, GROUP BY and JOIN are not supported)",
                p.peek()
            ));
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escapes_and_clauses() {
        let q = parse(r"select * from Customer where DisplayName = 'O\'Brien \\ Sons\' OR 1=1' and Active IN (true, false) ORDERBY Id DESC STARTPOSITION 11 MAXRESULTS 5").unwrap();
        assert_eq!(
            q.conditions[0].values,
            vec![Literal::Str(r"O'Brien \ Sons' OR 1=1".to_owned())]
        );
        assert_eq!(
            q.conditions[1].values,
            vec![Literal::Bool(true), Literal::Bool(false)]
        );
        assert_eq!(q.order, vec![("Id".to_owned(), true)]);
        assert_eq!((q.start, q.max), (11, Some(5)));
    }

    #[test]
    fn rejects_what_qbo_does_not_support() {
        assert!(parse("select DisplayName from Customer").is_err());
        assert!(parse("select * from Customer where A = 'x' OR B = 'y'").is_err());
        assert!(parse("select * from Customer where A = 'unterminated").is_err());
        assert!(parse("select * from Invoice").is_err());
    }

    #[test]
    fn parses_count() {
        let q = parse("SELECT COUNT(*) FROM Vendor WHERE Active = false").unwrap();
        assert!(q.count);
        assert_eq!(q.entity, Kind::Vendor);
    }
}
