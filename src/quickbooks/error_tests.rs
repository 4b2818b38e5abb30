//! The fault parser against every body shape named in the API notes.

use super::*;

fn classify_body(status: u16, body: &str) -> Option<QboError> {
    classify(&Answer {
        status,
        retry_after: None,
        body: body.as_bytes(),
    })
}

#[test]
fn duplicate_name_with_id_in_detail() {
    let body = r#"{"Fault":{"Error":[{"Message":"Duplicate Name Exists Error","Detail":"The name supplied already exists. : Id=1209","code":"6240","element":""}],"type":"ValidationFault"},"time":"2017-09-29T09:17:31.892-07:00"}"#;
    match classify_body(400, body) {
        Some(QboError::DuplicateName { existing_id }) => {
            assert_eq!(existing_id.as_deref(), Some("1209"));
        }
        other => panic!("got {other:?}"),
    }
}

#[test]
fn duplicate_name_without_id() {
    for detail in [
        "The name supplied already exists. : null",
        "The name supplied already exists. : Another customer, vendor or employee is already using this name. Please use a different name.",
    ] {
        let body = serde_json::json!({"Fault":{"Error":[{"Message":"Duplicate Name Exists Error","Detail":detail,"code":"6240"}],"type":"ValidationFault"}}).to_string();
        assert!(
            matches!(
                classify_body(400, &body),
                Some(QboError::DuplicateName { existing_id: None })
            ),
            "{detail}"
        );
    }
}

#[test]
fn localized_detail_still_gives_the_id() {
    assert_eq!(
        existing_id_from_detail("Ce nom existe déjà. : Id=425").as_deref(),
        Some("425")
    );
}

#[test]
fn lower_cased_envelope_is_parsed() {
    let body = r#"{"fault":{"error":[{"message":"Duplicate Name Exists Error","detail":"The name supplied already exists. : Id=77","code":"6240"}],"type":"ValidationFault"},"batchItemResponse":[],"time":1719142418269}"#;
    assert!(matches!(
        classify_body(400, body),
        Some(QboError::DuplicateName { existing_id: Some(id) }) if id == "77"
    ));
}

#[test]
fn fault_with_http_200_is_an_error() {
    let body = r#"{"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"Stale Object Error : You and Bob were working on this at the same time.","code":"5010"}],"type":"ValidationFault"}}"#;
    assert!(matches!(
        classify_body(200, body),
        Some(QboError::StaleObject)
    ));
    let subscription = r#"{"Fault":{"Error":[{"Message":"Invalid Company Status","code":"6190"}],"type":"ValidationFault"}}"#;
    assert!(matches!(
        classify_body(200, subscription),
        Some(QboError::ValidationFault { code, .. }) if code == "6190"
    ));
}

#[test]
fn success_without_fault_is_none() {
    assert!(classify_body(200, r#"{"Customer":{"Id":"1"}}"#).is_none());
}

#[test]
fn not_found_610_and_plain_404() {
    let body = r#"{"Fault":{"Error":[{"Message":"Object Not Found","Detail":"Object Not Found : Something you're trying to use has been made inactive.","code":"610"}],"type":"ValidationFault"}}"#;
    assert!(matches!(classify_body(400, body), Some(QboError::NotFound)));
    assert!(matches!(classify_body(404, ""), Some(QboError::NotFound)));
}

#[test]
fn xml_throttle_fault() {
    let body = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2016-04-26T06:07:54.573-07:00"><Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message><Detail>The request limit was reached.  Try again later</Detail></Error></Fault></IntuitResponse>"#;
    // As a 200 (no status hint), the code alone must say "throttled".
    assert!(matches!(
        classify_body(200, body),
        Some(QboError::Throttled { .. })
    ));
    let (kind, entries) = parse_fault(body);
    assert_eq!(kind.as_deref(), Some("SERVICE"));
    assert_eq!(entries[0].code, "3001");
    assert!(entries[0].detail.starts_with("The request limit"));
}

#[test]
fn xml_validation_fault() {
    let body = r#"<IntuitResponse><Fault type="ValidationFault"><Error code="6240" element=""><Message>Duplicate Name Exists Error</Message><Detail>The name supplied already exists. : Id=58</Detail></Error></Fault></IntuitResponse>"#;
    assert!(matches!(
        classify_body(400, body),
        Some(QboError::DuplicateName { existing_id: Some(id) }) if id == "58"
    ));
}

#[test]
fn status_429_is_throttled_with_retry_after() {
    let answer = Answer {
        status: 429,
        retry_after: Some(Duration::from_secs(7)),
        body: b"not even json",
    };
    assert!(matches!(
        classify(&answer),
        Some(QboError::Throttled { retry_after: Some(d) }) if d == Duration::from_secs(7)
    ));
}

#[test]
fn forbidden_throttle_exceeded_vs_plain_forbidden() {
    let throttle = r#"{"Fault":{"Error":[{"Message":"message=ThrottleExceeded; errorCode=003001; statusCode=403","code":"3001"}],"type":"SERVICE"}}"#;
    assert!(matches!(
        classify_body(403, throttle),
        Some(QboError::Throttled { .. })
    ));
    assert!(matches!(
        classify_body(
            403,
            "message=ThrottleExceeded; errorCode=003001; statusCode=403"
        ),
        Some(QboError::Throttled { .. })
    ));
    assert!(matches!(
        classify_body(403, "{}"),
        Some(QboError::Forbidden)
    ));
}

#[test]
fn gateway_401_body_is_unauthorized() {
    let body = r#"{"code":"AuthenticationFailed","type":"INPUT","message":null,"detail":"Malformed bearer token","moreInfo":null}"#;
    assert!(matches!(
        classify_body(401, body),
        Some(QboError::Unauthorized)
    ));
}

#[test]
fn server_errors() {
    assert!(matches!(
        classify_body(503, "<html>Service Unavailable</html>"),
        Some(QboError::Server { status: 503, .. })
    ));
    let system = r#"{"Fault":{"Error":[{"Message":"An application error has occurred","code":"10000"}],"type":"SystemFault"}}"#;
    assert!(matches!(
        classify_body(500, system),
        Some(QboError::Server { status: 500, code: Some(c) }) if c == "10000"
    ));
    assert!(
        QboError::Server {
            status: 503,
            code: None
        }
        .is_throttle_like()
    );
    assert!(
        !QboError::Server {
            status: 500,
            code: None
        }
        .is_throttle_like()
    );
}

#[test]
fn validation_fault_keeps_code_and_element() {
    let body = r#"{"Fault":{"Error":[{"Message":"Required param missing","Detail":"Need DisplayName","code":"2020","element":"DisplayName"}],"type":"ValidationFault"}}"#;
    match classify_body(400, body) {
        Some(QboError::ValidationFault { code, element, .. }) => {
            assert_eq!(code, "2020");
            assert_eq!(element.as_deref(), Some("DisplayName"));
        }
        other => panic!("got {other:?}"),
    }
}

#[test]
fn display_text_holds_no_detail() {
    let body =
        r#"{"Fault":{"Error":[{"Message":"bad","Detail":"Jane Doe's secret","code":"6000"}]}}"#;
    let error = classify_body(400, body).unwrap();
    assert!(!error.to_string().contains("Jane"));
}

#[test]
fn decode_errors_never_quote_the_value() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Dto {
        #[serde(rename = "Active")]
        active: bool,
    }
    let value = serde_json::json!({"Active": "Zoë \"the\" O'Brien Ltd"});
    let error = serde_json::from_value::<Dto>(value).unwrap_err();
    assert!(
        error.to_string().contains("Brien"),
        "serde quotes it: {error}"
    );
    let text = QboError::decode("customer", &error).to_string();
    assert!(!text.contains("Brien") && !text.contains("Zo"), "{text}");
    assert!(
        text.contains("invalid type") && text.contains("boolean"),
        "{text}"
    );
    assert_eq!(blank_quoted(r#"a "b\"c" d "e"#), "a \"…\" d \"…");
}
