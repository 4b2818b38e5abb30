//! Building QBO query statements safely.
//!
//! Every value placed in a statement goes through [`quote`]: backslash and `'` are escaped with
//! a backslash (Intuit's documented escape character), control characters are dropped, and the
//! whole statement is percent-encoded by [`encode_statement`]. Curly "smart" quotes are the
//! awkward case: QBO's query lexer has been seen rejecting U+2019 outright ("Lexical error ...
//! Encountered \u2019"), so a name holding one is searched with `LIKE`, each smart quote
//! replaced by the `%` wildcard, and the caller compares the candidates exactly in Rust.

/// Quote characters QBO's lexer may choke on; they become `%` in a `LIKE` pattern.
const SMART_QUOTES: &[char] = &[
    '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}', '\u{201C}', '\u{201D}', '\u{201E}', '\u{201F}',
    '\u{2032}', '\u{2033}', '\u{00B4}', '\u{0060}',
];

/// Writes `value` as a quoted QBO string literal: `O'Brien \ Sons` → `'O\'Brien \\ Sons'`.
#[must_use]
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Whether `value` holds a character that cannot be sent inside a literal.
#[must_use]
pub fn has_smart_quote(value: &str) -> bool {
    value.contains(SMART_QUOTES)
}

/// A filter on a string field that matches at least every record whose field equals `value`
/// exactly: `Field = '...'`, or `Field LIKE '...'` with smart quotes as wildcards. The caller
/// must re-check candidates, since `LIKE` and QBO's case rules may return more.
#[must_use]
pub fn string_filter(field: &str, value: &str) -> String {
    if has_smart_quote(value) {
        let pattern: String = value
            .chars()
            .map(|c| if SMART_QUOTES.contains(&c) { '%' } else { c })
            .collect();
        format!("{field} LIKE {}", quote(&pattern))
    } else {
        format!("{field} = {}", quote(value))
    }
}

/// `Field IN ('a', 'b')` over the values without smart quotes (they cannot be listed).
#[must_use]
pub fn in_filter<'a>(field: &str, values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let quoted: Vec<String> = values
        .into_iter()
        .filter(|v| !has_smart_quote(v))
        .map(quote)
        .collect();
    (!quoted.is_empty()).then(|| format!("{field} IN ({})", quoted.join(", ")))
}

/// `SELECT * FROM {entity} [WHERE a AND b] ORDERBY Id STARTPOSITION n MAXRESULTS m`.
///
/// Paging is by offset, so the order must not move under it: QBO promises no default order,
/// and by `Id` the records created while a read pages on come after every existing one
/// instead of shifting the pages still to come.
#[must_use]
pub fn select(entity: &str, filters: &[String], start: u32, max_results: u32) -> String {
    let mut statement = format!("SELECT * FROM {entity}");
    if !filters.is_empty() {
        statement.push_str(" WHERE ");
        statement.push_str(&filters.join(" AND "));
    }
    statement.push_str(&format!(
        " ORDERBY Id STARTPOSITION {start} MAXRESULTS {max_results}"
    ));
    statement
}

/// The filter that makes a query return inactive records too (plain queries hide them).
pub const ACTIVE_OR_INACTIVE: &str = "Active IN (true, false)";

/// Percent-encodes a statement for the `query=` parameter: everything but RFC 3986's
/// unreserved characters, so `'`, `\`, `%`, `=`, `&`, `#`, `+` and non-ASCII are all safe.
#[must_use]
pub fn encode_statement(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len() * 3);
    for byte in statement.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "query_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_escape_quote_and_backslash() {
        assert_eq!(
            quote(r"O'Brien \ Sons' OR 1=1"),
            r"'O\'Brien \\ Sons\' OR 1=1'"
        );
        assert_eq!(quote(r"a\'b"), r"'a\\\'b'");
        assert_eq!(quote("tab\there"), "'tabhere'");
    }

    #[test]
    fn injection_cannot_close_the_literal() {
        // After escaping, every quote inside the literal is preceded by an odd run of
        // backslashes, so the literal ends only at the final quote.
        for hostile in ["' OR 1=1 --", r"\' OR 1=1", r"\\' OR 1=1", "''''"] {
            let q = quote(hostile);
            let inner = &q[1..q.len() - 1];
            let mut backslashes = 0;
            for c in inner.chars() {
                if c == '\'' {
                    assert_eq!(backslashes % 2, 1, "{hostile}");
                }
                backslashes = if c == '\\' { backslashes + 1 } else { 0 };
            }
            assert_eq!(
                backslashes % 2,
                0,
                "literal must not end in an escape: {hostile}"
            );
        }
    }

    #[test]
    fn smart_quotes_become_like_wildcards() {
        assert_eq!(
            string_filter("DisplayName", "O\u{2019}Brien's"),
            r"DisplayName LIKE 'O%Brien\'s'"
        );
        assert_eq!(
            string_filter("DisplayName", "Plain"),
            "DisplayName = 'Plain'"
        );
        assert_eq!(
            in_filter("DisplayName", ["a'b", "c\u{201C}d"]).unwrap(),
            r"DisplayName IN ('a\'b')"
        );
        assert!(in_filter("DisplayName", ["\u{2018}"]).is_none());
    }

    #[test]
    fn select_builds_paging() {
        assert_eq!(
            select("Customer", &[ACTIVE_OR_INACTIVE.to_owned()], 1001, 1000),
            "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Id STARTPOSITION 1001 MAXRESULTS 1000"
        );
        assert_eq!(
            select("Vendor", &[], 1, 10),
            "SELECT * FROM Vendor ORDERBY Id STARTPOSITION 1 MAXRESULTS 10"
        );
    }

    #[test]
    fn encoding_covers_reserved_and_unicode() {
        assert_eq!(
            encode_statement(r"a = 'O\'B' & #+%"),
            "a%20%3D%20%27O%5C%27B%27%20%26%20%23%2B%25"
        );
        assert_eq!(encode_statement("é’"), "%C3%A9%E2%80%99");
        assert_eq!(encode_statement("Az09-_.~"), "Az09-_.~");
    }
}
