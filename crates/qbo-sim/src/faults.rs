//! QBO fault bodies: the JSON envelope in both letter cases, the XML throttle body, and the
//! errors the simulator raises (6240, 5010, 610, 2050, ...).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::config::ThrottleStyle;

/// One entry of `Fault.Error[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError {
    /// Short message.
    pub message: String,
    /// Longer explanation; `None` renders as JSON null.
    pub detail: Option<String>,
    /// The numeric code, always sent as a string.
    pub code: String,
    /// The field involved, when there is one.
    pub element: Option<String>,
}

/// A QBO fault with the HTTP status it travels with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// HTTP status of the answer.
    pub status: u16,
    /// `Fault.type`: ValidationFault, SystemFault, AUTHENTICATION, SERVICE, ...
    pub kind: String,
    /// The errors.
    pub errors: Vec<FaultError>,
}

impl Fault {
    fn one(status: u16, kind: &str, code: &str, message: &str, detail: Option<String>) -> Self {
        let error = FaultError {
            message: message.to_owned(),
            detail,
            code: code.to_owned(),
            element: None,
        };
        Self {
            status,
            kind: kind.to_owned(),
            errors: vec![error],
        }
    }

    /// A 400 ValidationFault.
    pub fn validation(code: &str, message: &str, detail: impl Into<String>) -> Self {
        Self::one(400, "ValidationFault", code, message, Some(detail.into()))
    }

    /// Names the field involved.
    pub fn with_element(mut self, element: &str) -> Self {
        for error in &mut self.errors {
            error.element = Some(element.to_owned());
        }
        self
    }

    /// 6240 with the given Detail text.
    pub fn duplicate_name(detail: String) -> Self {
        Self::validation("6240", "Duplicate Name Exists Error", detail)
    }

    /// 5010, the SyncToken was not the current one.
    pub fn stale_object() -> Self {
        Self::validation(
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and simulator were working on this at the same time. \
             simulator finished before you did, so your work was not saved.",
        )
    }

    /// 610, the object does not exist (or was merged away).
    pub fn not_found() -> Self {
        Self::validation(
            "610",
            "Object Not Found",
            "Object Not Found : Something you're trying to use has been made inactive. Check the \
             fields with accounts, customers, items, vendors or employees.",
        )
    }

    /// 2050, a string longer than its field allows.
    pub fn string_length(field: &str, max: usize, got: usize) -> Self {
        Self::validation(
            "2050",
            "String length is either shorter or longer than supported by specification",
            format!(
                "String length specified does not match the supported length. Min:0 Max:{max} \
                 supported. Supplied length:{got}"
            ),
        )
        .with_element(field)
    }

    /// 4000, a query the parser does not understand.
    pub fn query_parse(detail: impl Into<String>) -> Self {
        Self::validation("4000", "Error parsing query", detail)
    }

    /// 3200, the bearer token is missing, unknown, expired or for another realm.
    pub fn authentication(detail: &str) -> Self {
        Self::one(
            401,
            "AUTHENTICATION",
            "3200",
            "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            Some(detail.to_owned()),
        )
    }

    /// 10000, an injected server failure.
    pub fn server_error(status: u16) -> Self {
        Self::one(
            status,
            "SystemFault",
            "10000",
            "An application error has occurred while processing your request",
            Some("System Failure Error: simulated server error".to_owned()),
        )
    }

    /// 10000, the simulator itself failed (e.g. could not serialise an answer).
    pub fn server_error_detail(detail: &str) -> Self {
        Self::one(
            500,
            "SystemFault",
            "10000",
            "An application error has occurred while processing your request",
            Some(detail.to_owned()),
        )
    }

    /// 3001, throttled; the status depends on the style.
    pub fn throttled(status: u16) -> Self {
        Self::one(
            status,
            "SERVICE",
            "3001",
            &format!("message=ThrottleExceeded; errorCode=003001; statusCode={status}"),
            Some("The request limit was reached.  Try again later".to_owned()),
        )
    }

    /// The body value, in the standard (`Fault`) or lower-cased (`fault`) envelope.
    pub fn body(&self, time: &str, lowercase: bool) -> Value {
        if lowercase {
            let errors: Vec<Value> = self.errors.iter().map(|e| error_json(e, true)).collect();
            // The observed lower-cased form carries many null siblings and epoch-ms time.
            json!({
                "warnings": null, "intuitObject": null,
                "fault": {"error": errors, "type": self.kind},
                "report": null, "queryResponse": null, "batchItemResponse": [],
                "requestId": null, "time": chrono::Utc::now().timestamp_millis(), "status": null,
                "cdcresponse": []
            })
        } else {
            json!({"Fault": self.inner(), "time": time})
        }
    }

    /// `{"Error": [...], "type": ...}`, as used inside batch item answers.
    pub fn inner(&self) -> Value {
        let errors: Vec<Value> = self.errors.iter().map(|e| error_json(e, false)).collect();
        json!({"Error": errors, "type": self.kind})
    }

    /// The XML body, the form throttling has been seen in even when JSON was asked for.
    pub fn xml(&self, time: &str) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <IntuitResponse xmlns=\"http://schema.intuit.com/finance/v3\" time=\"{time}\">\
             <Fault type=\"{}\">",
            self.kind
        );
        for e in &self.errors {
            out.push_str(&format!(
                "<Error code=\"{}\"><Message>{}</Message><Detail>{}</Detail></Error>",
                e.code,
                xml_escape(&e.message),
                xml_escape(e.detail.as_deref().unwrap_or(""))
            ));
        }
        out.push_str("</Fault></IntuitResponse>");
        out
    }

    /// The HTTP answer in the given envelope.
    pub fn into_response(self, time: &str, lowercase: bool) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(self.body(time, lowercase))).into_response()
    }
}

fn error_json(e: &FaultError, lowercase: bool) -> Value {
    let detail = e.detail.clone().map_or(Value::Null, Value::String);
    let element = e.element.clone().map_or(Value::Null, Value::String);
    if lowercase {
        json!({"message": e.message, "detail": detail, "code": e.code, "element": element})
    } else {
        let mut v = json!({"Message": e.message, "Detail": detail, "code": e.code});
        if let Some(el) = &e.element {
            v["element"] = Value::String(el.clone());
        }
        v
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The throttle answer in the chosen style.
pub fn throttle_response(
    style: ThrottleStyle,
    time: &str,
    retry_after: Option<u32>,
    lowercase: bool,
) -> Response {
    let mut response = match style {
        ThrottleStyle::Json429 => Fault::throttled(429).into_response(time, lowercase),
        ThrottleStyle::LowerCase429 => Fault::throttled(429).into_response(time, true),
        ThrottleStyle::Forbidden403 => Fault::throttled(403).into_response(time, lowercase),
        ThrottleStyle::Fault200 => {
            let fault = Fault {
                status: 200,
                ..Fault::throttled(429)
            };
            fault.into_response(time, lowercase)
        }
        ThrottleStyle::Xml429 => {
            let body = Fault::throttled(429).xml(time);
            let ct = [(header::CONTENT_TYPE, "application/xml;charset=UTF-8")];
            (StatusCode::TOO_MANY_REQUESTS, ct, body).into_response()
        }
    };
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
