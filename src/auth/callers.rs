//! The callers file: `[[caller]]` tables with `name`, `token_sha256`, `scopes` and `tenants`,
//! checked strictly when loaded. Error messages name the caller and the field, never a value
//! of `token_sha256` (nor any other string of the file: a token pasted by mistake must not
//! reach the logs).

use std::{
    collections::{BTreeSet, HashSet},
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toml::{Table, Value};

use crate::domain::TenantId;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `ValidateInvoiceCustomer` only (the invoice service's preflight).
    Validate,
    /// `Get*`, `List*`, `Watch*`.
    Read,
    /// Upserts, sync triggers and cancels, links, unlinks, review decisions.
    Write,
    /// Every `ConnectionService` RPC.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 4] = [Self::Validate, Self::Read, Self::Write, Self::Admin];

    /// The scope's name in the callers file.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caller's name, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerName(Arc<str>);

impl CallerName {
    /// The name as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenants a caller may act for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenants {
    /// Every tenant (`["*"]`).
    All,
    /// These tenants only.
    Only(HashSet<TenantId>),
}

/// An authenticated caller. Holds no token and no digest, so it may be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its name.
    pub name: CallerName,
    /// What it may do.
    pub scopes: BTreeSet<Scope>,
    /// For whom.
    pub tenants: Tenants,
}

impl Caller {
    /// A caller with every scope for every tenant (`--insecure-no-auth`, tests).
    #[must_use]
    pub fn all_powerful(name: &str) -> Self {
        Self {
            name: CallerName(name.into()),
            scopes: Scope::ALL.into_iter().collect(),
            tenants: Tenants::All,
        }
    }

    /// Whether the caller holds `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether the caller may act for `tenant`.
    #[must_use]
    pub fn may_act_for(&self, tenant: &TenantId) -> bool {
        match &self.tenants {
            Tenants::All => true,
            Tenants::Only(tenants) => tenants.contains(tenant),
        }
    }
}

/// Why a callers file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallersError {
    /// The file could not be read.
    #[error("cannot read the callers file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("the callers file is not valid TOML (line {line}): {message}")]
    Syntax {
        /// Where (1-based).
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A caller, or the file's top level, is not acceptable.
    #[error("the callers file is invalid: {caller}: `{field}` {problem}")]
    Invalid {
        /// `caller 'name'`, `caller #3` (when it has no usable name) or `the file`.
        caller: String,
        /// The field at fault.
        field: String,
        /// What is wrong, without the field's value.
        problem: String,
    },
}

struct Entry {
    digest: [u8; 32],
    caller: Arc<Caller>,
}

/// The callers of one good callers file.
pub struct Callers {
    entries: Vec<Entry>,
}

impl fmt::Debug for Callers {
    // The digests stay out of Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.caller.name.as_str()))
            .finish()
    }
}

impl Callers {
    /// Reads and checks a callers file.
    ///
    /// # Errors
    /// [`CallersError`] when the file cannot be read or is not acceptable.
    pub fn load(path: &Path) -> Result<Self, CallersError> {
        let text = std::fs::read_to_string(path).map_err(|source| CallersError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Checks the text of a callers file.
    ///
    /// # Errors
    /// [`CallersError`] naming the first caller and field that are not acceptable.
    pub fn parse(text: &str) -> Result<Self, CallersError> {
        let table: Table = toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map_or(0, |span| text[..span.start].matches('\n').count() + 1);
            CallersError::Syntax {
                line,
                message: e.message().to_owned(),
            }
        })?;
        let mut entries: Vec<Entry> = Vec::new();
        for (key, value) in table {
            if key != "caller" {
                return Err(invalid(
                    "the file",
                    &key,
                    "is not a known key; use [[caller]]",
                ));
            }
            let Value::Array(callers) = value else {
                return Err(invalid("the file", "caller", "must be [[caller]] tables"));
            };
            for (index, value) in callers.into_iter().enumerate() {
                let entry = parse_caller(index + 1, value)?;
                check_unique(&entries, &entry)?;
                entries.push(entry);
            }
        }
        Ok(Self { entries })
    }

    /// How many callers the file lists.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists no caller (then every token is refused).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller whose digest is the SHA-256 of `token`. Every digest is compared, each in
    /// constant time, so the time taken says nothing about how close a guess came.
    #[must_use]
    pub fn authenticate(&self, token: &str) -> Option<Arc<Caller>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(Arc::clone(&entry.caller));
            }
        }
        found
    }
}

fn invalid(caller: impl Into<String>, field: &str, problem: impl Into<String>) -> CallersError {
    CallersError::Invalid {
        caller: caller.into(),
        field: field.to_owned(),
        problem: problem.into(),
    }
}

fn parse_caller(position: usize, value: Value) -> Result<Entry, CallersError> {
    let Value::Table(mut table) = value else {
        return Err(invalid(
            format!("caller #{position}"),
            "caller",
            "must be a table",
        ));
    };
    let name = match table.remove("name") {
        Some(Value::String(name)) if is_good_name(&name) => name,
        Some(_) => {
            return Err(invalid(
                format!("caller #{position}"),
                "name",
                "must be a string of 1 to 64 letters, digits, '-', '_', '.', ':' or '@'",
            ));
        }
        None => return Err(invalid(format!("caller #{position}"), "name", "is missing")),
    };
    let who = format!("caller '{name}'");
    let digest = match table.remove("token_sha256") {
        Some(Value::String(hex)) => parse_digest(&hex).ok_or_else(|| {
            invalid(
                &who,
                "token_sha256",
                "must be 64 hex digits: the SHA-256 of the token (e.g. `printf %s \"$TOKEN\" | sha256sum`)",
            )
        })?,
        Some(_) => return Err(invalid(&who, "token_sha256", "must be a string")),
        None => return Err(invalid(&who, "token_sha256", "is missing")),
    };
    let scopes = parse_scopes(&who, table.remove("scopes"))?;
    let tenants = parse_tenants(&who, table.remove("tenants"))?;
    if let Some(key) = table.keys().next() {
        return Err(invalid(
            &who,
            key,
            "is not a known field (name, token_sha256, scopes, tenants)",
        ));
    }
    Ok(Entry {
        digest,
        caller: Arc::new(Caller {
            name: CallerName(name.into()),
            scopes,
            tenants,
        }),
    })
}

fn is_good_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        digest[i] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(digest)
}

/// The strings of a list field; a non-string item is refused without echoing it.
fn strings(who: &str, field: &str, value: Option<Value>) -> Result<Vec<String>, CallersError> {
    let Some(value) = value else {
        return Err(invalid(who, field, "is missing"));
    };
    let Value::Array(items) = value else {
        return Err(invalid(who, field, "must be a list of strings"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(text) => Ok(text),
            _ => Err(invalid(who, field, "must be a list of strings")),
        })
        .collect()
}

fn parse_scopes(who: &str, value: Option<Value>) -> Result<BTreeSet<Scope>, CallersError> {
    let names = strings(who, "scopes", value)?;
    if names.is_empty() {
        return Err(invalid(
            who,
            "scopes",
            "is empty; list some of validate, read, write, admin",
        ));
    }
    names
        .iter()
        .map(|name| {
            Scope::parse(name).ok_or_else(|| {
                // Only a short word is echoed: a token pasted here by mistake must not be.
                let short_word = name.len() <= 20
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_');
                let shown = if short_word { name.as_str() } else { "…" };
                invalid(
                    who,
                    "scopes",
                    format!("holds an unknown scope '{shown}'; use validate, read, write or admin"),
                )
            })
        })
        .collect()
}

fn parse_tenants(who: &str, value: Option<Value>) -> Result<Tenants, CallersError> {
    let ids = strings(who, "tenants", value)?;
    match ids.as_slice() {
        [] => Err(invalid(
            who,
            "tenants",
            "is empty; list tenant ids, or [\"*\"] for every tenant",
        )),
        [all] if all == "*" => Ok(Tenants::All),
        _ if ids.iter().any(|id| id == "*") => {
            Err(invalid(who, "tenants", "may hold \"*\" only alone"))
        }
        _ => ids
            .into_iter()
            .map(|id| {
                TenantId::parse(id)
                    .map_err(|e| invalid(who, "tenants", format!("holds a tenant id that {e}")))
            })
            .collect::<Result<HashSet<_>, _>>()
            .map(Tenants::Only),
    }
}

fn check_unique(entries: &[Entry], entry: &Entry) -> Result<(), CallersError> {
    let who = format!("caller '{}'", entry.caller.name);
    for other in entries {
        if other.caller.name == entry.caller.name {
            return Err(invalid(&who, "name", "appears more than once"));
        }
        if bool::from(other.digest.ct_eq(&entry.digest)) {
            return Err(invalid(
                &who,
                "token_sha256",
                format!(
                    "is the same as caller '{}''s: each caller needs its own token",
                    other.caller.name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "callers_tests.rs"]
mod tests;
