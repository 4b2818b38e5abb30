//! The QBO client's error type and the one parser that turns an HTTP answer into it.
//!
//! QBO signals failure in several shapes (see the API notes, §1, §6, §7): a JSON `Fault`
//! (sometimes with lower-cased keys, sometimes with HTTP 200), an XML `Fault` for throttling,
//! a 403 whose message says `ThrottleExceeded`, and a gateway 401 with its own body. Every
//! shape ends up as one [`QboError`] variant here, so callers match on meaning, not on text.

use std::time::Duration;

use serde_json::Value;

use super::model::canonicalize_keys;
use crate::{crypto::CryptoError, store::StoreError};

/// What a QBO call can fail with. Display texts never hold names, tokens or bodies.
#[derive(Debug, thiserror::Error)]
pub enum QboError {
    /// 6240: the DisplayName is taken by a Customer, Vendor or Employee (maybe inactive).
    /// `existing_id` is the holder's Id when QBO put `Id=NN` in the Detail.
    #[error("duplicate name (6240), existing id {existing_id:?}")]
    DuplicateName {
        /// The holder's Id, when the Detail carried one.
        existing_id: Option<String>,
    },
    /// 5010: the SyncToken sent is not the current one.
    #[error("stale object (5010)")]
    StaleObject,
    /// 610 or HTTP 404: the object does not exist (or was made inactive or merged away).
    #[error("object not found")]
    NotFound,
    /// 429, 3001, or 403 ThrottleExceeded.
    #[error("throttled by QBO (retry after {retry_after:?})")]
    Throttled {
        /// The server's `Retry-After`, when sent (QBO sending it is UNCONFIRMED).
        retry_after: Option<Duration>,
    },
    /// HTTP 401 (access token expired or revoked) after the one refresh-and-retry.
    #[error("unauthorized")]
    Unauthorized,
    /// HTTP 403 that is not throttling: the connected user lacks permission.
    #[error("forbidden")]
    Forbidden,
    /// A request QBO rejected (ValidationFault or another 4xx); fix the request.
    #[error("validation fault {code} (element {element:?})")]
    ValidationFault {
        /// QBO's error code, e.g. "6000"; empty when the body had none.
        code: String,
        /// The field involved, when QBO named one.
        element: Option<String>,
        /// QBO's Message and Detail. May hold customer data: log it at debug only.
        message: String,
    },
    /// A server-side failure (5xx, SystemFault).
    #[error("QBO server error (HTTP {status}, code {code:?})")]
    Server {
        /// The HTTP status.
        status: u16,
        /// QBO's error code, when the body had one.
        code: Option<String>,
    },
    /// The request may or may not have reached QBO (timeout, connection reset). For a create,
    /// the outcome is unknown.
    #[error("transport failure ({kind})")]
    Transport {
        /// What happened, e.g. "timeout", "connect".
        kind: &'static str,
        /// Whether the request could have been processed (false only when it never left).
        uncertain: bool,
    },
    /// An answer that could not be understood.
    #[error("undecodable QBO answer: {0}")]
    Decode(String),
    /// The connection's refresh token is dead (`invalid_grant`): a person must reconnect.
    #[error("connection needs re-authorization")]
    NeedsReauth,
    /// The tenant has no usable connection (none, or disconnected).
    #[error("tenant is not connected to QBO")]
    NotConnected,
    /// The token or revoke endpoint refused the app's own credentials (`invalid_client`):
    /// the client id or secret is wrong. Nothing a caller sends can fix it.
    #[error("Intuit refused the app's client credentials (invalid_client)")]
    InvalidClient,
    /// The token endpoint failed other than with `invalid_grant` or `invalid_client`.
    #[error("token endpoint error: HTTP {status}, error {error:?}")]
    TokenEndpoint {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code, empty when the body had none.
        error: String,
    },
    /// Storing or loading connection or limiter state failed.
    #[error("store error")]
    Store(#[from] StoreError),
    /// A stored token could not be decrypted, or the key is missing.
    #[error("token encryption error")]
    Crypto(#[from] CryptoError),
    /// The client is misconfigured.
    #[error("configuration: {0}")]
    Config(String),
}

impl QboError {
    /// [`QboError::Decode`] of a serde error under `context`, with every quoted value of its
    /// message blanked: serde quotes the value it could not take (`invalid type: string
    /// "Acme Ltd", expected ...`), which may be a customer's name or a token, while the
    /// field and type it names are what a person needs.
    #[must_use]
    pub fn decode(context: &str, error: &serde_json::Error) -> Self {
        Self::Decode(format!("{context}: {}", blank_quoted(&error.to_string())))
    }

    /// A short, bounded label for metrics (`qbo_sync_qbo_requests_total{outcome}`).
    #[must_use]
    pub fn outcome_label(&self) -> &'static str {
        match self {
            Self::DuplicateName { .. } => "duplicate_name",
            Self::StaleObject => "stale_object",
            Self::NotFound => "not_found",
            Self::Throttled { .. } => "throttled",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::ValidationFault { .. } => "validation_fault",
            Self::Server { .. } => "server_error",
            Self::Transport { .. } => "transport",
            Self::Decode(_) => "decode",
            Self::NeedsReauth => "needs_reauth",
            Self::NotConnected => "not_connected",
            Self::InvalidClient => "invalid_client",
            Self::TokenEndpoint { .. } => "token_endpoint",
            Self::Store(_) => "store",
            Self::Crypto(_) => "crypto",
            Self::Config(_) => "config",
        }
    }

    /// Whether waiting and trying again is the fix (throttling, 503-like outages). The caller
    /// should reschedule without spending an attempt of its budget.
    #[must_use]
    pub fn is_throttle_like(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::Server {
                    status: 502..=504,
                    ..
                }
        )
    }
}

/// One `Fault.Error[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultEntry {
    pub code: String,
    pub message: String,
    pub detail: String,
    pub element: Option<String>,
}

/// The parts of an HTTP answer the parser needs.
pub(crate) struct Answer<'a> {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: &'a [u8],
}

/// Turns an answer into an error, or `None` when it is a success. A 2xx body is still
/// searched for a Fault, because QBO sends some Faults with HTTP 200.
pub(crate) fn classify(answer: &Answer<'_>) -> Option<QboError> {
    let status = answer.status;
    if status == 429 {
        return Some(QboError::Throttled {
            retry_after: answer.retry_after,
        });
    }
    let text = String::from_utf8_lossy(answer.body);
    if status == 403 && text.contains("ThrottleExceeded") {
        return Some(QboError::Throttled {
            retry_after: answer.retry_after,
        });
    }
    if status == 401 {
        // The gateway's 401 body differs from a Fault; any 401 means the token is not accepted.
        return Some(QboError::Unauthorized);
    }
    let (fault_type, entries) = parse_fault(&text);
    if let Some(first) = entries.first() {
        return Some(from_entry(status, fault_type.as_deref(), first, answer));
    }
    match status {
        200..=299 => None,
        403 => Some(QboError::Forbidden),
        404 => Some(QboError::NotFound),
        500..=599 => Some(QboError::Server { status, code: None }),
        _ => Some(QboError::ValidationFault {
            code: String::new(),
            element: None,
            message: format!("HTTP {status} without a Fault"),
        }),
    }
}

fn from_entry(
    status: u16,
    fault_type: Option<&str>,
    entry: &FaultEntry,
    answer: &Answer<'_>,
) -> QboError {
    let code = entry.code.trim_start_matches('0');
    match code {
        "6240" => QboError::DuplicateName {
            existing_id: existing_id_from_detail(&entry.detail),
        },
        "5010" => QboError::StaleObject,
        "610" => QboError::NotFound,
        "3001" => QboError::Throttled {
            retry_after: answer.retry_after,
        },
        "100" | "120" | "3100" | "3200" => QboError::Unauthorized,
        _ if status >= 500 || fault_type.is_some_and(|t| t.eq_ignore_ascii_case("SystemFault")) => {
            QboError::Server {
                status,
                code: Some(entry.code.clone()),
            }
        }
        _ => QboError::ValidationFault {
            code: entry.code.clone(),
            element: entry.element.clone(),
            message: format!("{}: {}", entry.message, entry.detail),
        },
    }
}

/// Finds `Id=NN` in a 6240 Detail (`The name supplied already exists. : Id=1209`). The
/// `: null` and long-text variants give `None`.
pub(crate) fn existing_id_from_detail(detail: &str) -> Option<String> {
    let at = detail.rfind("Id=")?;
    let digits: String = detail[at + 3..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

/// Reads the Fault type and entries from a JSON or XML body; empty when there is no Fault.
pub(crate) fn parse_fault(text: &str) -> (Option<String>, Vec<FaultEntry>) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') {
        return parse_xml_fault(trimmed);
    }
    let Ok(mut value) = serde_json::from_str::<Value>(trimmed) else {
        return (None, Vec::new());
    };
    canonicalize_keys(&mut value);
    json_fault(&value)
}

/// The Fault inside a JSON value (a whole answer or one batch item).
pub(crate) fn json_fault(value: &Value) -> (Option<String>, Vec<FaultEntry>) {
    let Some(fault) = value.get("Fault") else {
        return (None, Vec::new());
    };
    let fault_type = fault.get("type").and_then(Value::as_str).map(str::to_owned);
    let entries = match fault.get("Error") {
        Some(Value::Array(list)) => list.iter().map(json_entry).collect(),
        Some(one @ Value::Object(_)) => vec![json_entry(one)],
        _ => Vec::new(),
    };
    (fault_type, entries)
}

fn json_entry(error: &Value) -> FaultEntry {
    let text = |key: &str| match error.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let element = text("element");
    FaultEntry {
        code: text("code"),
        message: text("Message"),
        detail: text("Detail"),
        element: (!element.is_empty()).then_some(element),
    }
}

/// A tolerant reader of `<Fault type=".."><Error code=".." element=".."><Message>..` — enough
/// for the throttle and validation faults QBO sends as XML; not a general XML parser.
fn parse_xml_fault(text: &str) -> (Option<String>, Vec<FaultEntry>) {
    let Some(fault_at) = text.find("<Fault") else {
        return (None, Vec::new());
    };
    let fault_type = attribute(&text[fault_at..], "type");
    let entries = text[fault_at..]
        .split("<Error")
        .skip(1)
        .map(|chunk| FaultEntry {
            code: attribute(chunk, "code").unwrap_or_default(),
            element: attribute(chunk, "element"),
            message: element_text(chunk, "Message").unwrap_or_default(),
            detail: element_text(chunk, "Detail").unwrap_or_default(),
        })
        .collect();
    (fault_type, entries)
}

fn attribute(tag_start: &str, name: &str) -> Option<String> {
    let tag = &tag_start[..tag_start.find('>')?];
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[at..].find('"')?;
    Some(tag[at..at + end].to_owned())
}

fn element_text(chunk: &str, name: &str) -> Option<String> {
    let open = chunk.find(&format!("<{name}>"))? + name.len() + 2;
    let close = chunk[open..].find(&format!("</{name}>"))?;
    Some(unescape_xml(&chunk[open..open + close]))
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `text` with the contents of every double-quoted string replaced by `…` (escaped quotes
/// inside a string do not end it).
fn blank_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => {
                out.push_str("…\"");
                quoted = false;
            }
            (true, false, _) => {}
            (false, _, '"') => {
                out.push('"');
                quoted = true;
            }
            (false, _, c) => out.push(c),
        }
    }
    if quoted {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "error_props.rs"]
mod props;
