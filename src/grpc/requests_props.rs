//! Properties of proto → domain conversion, for every request type: arbitrary field values
//! (hostile text, unknown enum values, any page size) never panic, and either convert to the
//! values sent or fail with INVALID_ARGUMENT whose BadRequest names only fields of that request,
//! exactly when the documented rules say a field is bad.

use proptest::prelude::*;
use tonic::Code;
use tonic_types::StatusExt;

use super::*;
use crate::{
    error::Violation,
    props::{HOSTILE, config, hostile_text},
};

/// An identifier as the documented rules judge it: 1 to 64 bytes, no control characters, no
/// white space around it.
fn valid_id(value: &str) -> bool {
    !value.trim().is_empty()
        && value.len() <= MAX_ID_BYTES
        && value.trim() == value
        && !value.chars().any(char::is_control)
}

/// Optional free text: within its byte limit, no control characters.
fn valid_text(value: &str, max_bytes: usize) -> bool {
    value.len() <= max_bytes && !value.chars().any(char::is_control)
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_.:-]{1,64}",
        2 => hostile_text(),
        1 => Just(String::new()),
        1 => "[a-z]{65,70}",
        1 => "[a-z]{1,5}".prop_map(|s| format!(" {s}")),
        1 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ -~]{0,40}",
        3 => hostile_text(),
        1 => Just(String::new()),
        1 => "[a-z]{1000,1100}",
    ]
}

fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![4 => -1..6i32, 1 => any::<i32>()]
}

fn page_size() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0..=MAX_PAGE_SIZE, 1 => 501..=600i32, 1 => any::<i32>()]
}

fn uuid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        1 => any::<u128>().prop_map(|n| Uuid::from_u128(n).simple().to_string()),
        2 => id(),
    ]
}

fn customer() -> impl Strategy<Value = pb::DigitCustomer> {
    let name = prop_oneof![
        3 => "[A-Za-z][A-Za-z &.,'-]{0,40}",
        2 => hostile_text(),
        1 => "[a-z]{495,505}",
    ];
    let email = prop_oneof![
        2 => "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}",
        1 => text(),
    ];
    (
        id(),
        name,
        text(),
        text(),
        text(),
        email,
        "[0-9 ()+-]{0,35}",
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(id, display_name, company_name, given_name, family_name, email, phone, active)| {
                pb::DigitCustomer {
                    id,
                    display_name,
                    company_name,
                    given_name,
                    family_name,
                    email,
                    phone,
                    active,
                }
            },
        )
}

/// Whether `customer` passes the documented field rules.
fn valid_customer(c: &pb::DigitCustomer) -> bool {
    let optional = |value: &str, max_chars: usize| {
        value.trim().is_empty()
            || (value.chars().count() <= max_chars && !value.chars().any(char::is_control))
    };
    let email = c.email.trim();
    let email_ok = email.is_empty()
        || (optional(&c.email, 254)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !email.contains(char::is_whitespace)
            }));
    valid_id(&c.id)
        && !c.display_name.trim().is_empty()
        && optional(&c.display_name, 500)
        && optional(&c.company_name, 100)
        && optional(&c.given_name, 100)
        && optional(&c.family_name, 100)
        && optional(&c.phone, 30)
        && email_ok
}

/// The field a violation names, without its nesting (`customers[2].email` → `customers`).
fn root(field: &str) -> &str {
    field.split(['.', '[']).next().unwrap_or(field)
}

/// A refusal must be INVALID_ARGUMENT naming only `fields`, and its status must carry the same
/// violations as google.rpc BadRequest. Returns the converted value when there was no refusal.
fn refusal_or<T>(result: Result<T, ApiError>, fields: &[&str]) -> Result<Option<T>, TestCaseError> {
    let violations = match result {
        Ok(value) => return Ok(Some(value)),
        Err(ApiError::InvalidArgument(violations)) => violations,
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "not INVALID_ARGUMENT: {other:?}"
            )));
        }
    };
    prop_assert!(!violations.is_empty());
    for v in &violations {
        prop_assert!(
            fields.contains(&root(&v.field)),
            "unexpected field {:?}",
            v.field
        );
        prop_assert!(!v.description.is_empty());
    }
    let status = Status::from(ApiError::InvalidArgument(violations.clone()));
    prop_assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let named: Vec<&str> = details
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|f| f.field.as_str())
                .collect()
        })
        .unwrap_or_default();
    let expected: Vec<&str> = violations
        .iter()
        .map(|v: &Violation| v.field.as_str())
        .collect();
    prop_assert_eq!(named, expected);
    Ok(None)
}

/// The converted value must exist exactly when `valid` says so.
fn outcome<T>(
    result: Result<T, ApiError>,
    fields: &[&str],
    valid: bool,
) -> Result<Option<T>, TestCaseError> {
    let converted = refusal_or(result, fields)?;
    prop_assert_eq!(
        converted.is_some(),
        valid,
        "accepted: {}, valid: {}",
        converted.is_some(),
        valid
    );
    Ok(converted)
}

fn known(value: i32, unspecified: i32, known: impl Fn(i32) -> bool) -> bool {
    value != unspecified && known(value)
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn ids_only(tenant_id in id(), other in id(), run_id in uuid_text()) {
        if let Some(t) = outcome(tenant_only(&tenant_id), &["tenant_id"], valid_id(&tenant_id))? {
            prop_assert_eq!(t.as_str(), tenant_id.as_str());
        }
        let ok = valid_id(&tenant_id) && valid_id(&other);
        if let Some((t, c)) = outcome(tenant_and_customer(&tenant_id, &other), &["tenant_id", "digit_customer_id"], ok)? {
            prop_assert_eq!((t.as_str(), c.as_str()), (tenant_id.as_str(), other.as_str()));
        }
        let ok = valid_id(&tenant_id) && Uuid::parse_str(&run_id).is_ok();
        if let Some((_, r)) = outcome(tenant_and_run(&tenant_id, &run_id), &["tenant_id", "run_id"], ok)? {
            prop_assert_eq!(r, Uuid::parse_str(&run_id).unwrap());
        }
    }

    #[test]
    fn upsert_customer_request(tenant_id in id(), customer in prop::option::of(customer()), skip_push in any::<bool>()) {
        let request = pb::UpsertCustomerRequest { tenant_id, customer, skip_push };
        let ok = valid_id(&request.tenant_id) && request.customer.as_ref().is_some_and(valid_customer);
        if let Some((t, c)) = outcome(upsert_customer(&request), &["tenant_id", "customer"], ok)? {
            let sent = request.customer.unwrap();
            prop_assert_eq!(t.as_str(), request.tenant_id.as_str());
            prop_assert_eq!(c.id.as_str(), sent.id.as_str());
            prop_assert_eq!(c.display_name.as_str(), sent.display_name.trim());
            prop_assert_eq!(c.active, sent.active.unwrap_or(true));
        }
    }

    #[test]
    fn batch_upsert_customers_request(
        tenant_id in id(),
        customers in prop::collection::vec(customer(), 0..6),
        oversize in prop::bool::weighted(0.05),
    ) {
        let mut customers = customers;
        if oversize {
            let one = customers.first().cloned().unwrap_or_default();
            customers.resize(MAX_BATCH_CUSTOMERS + 1, one);
        }
        let request = pb::BatchUpsertCustomersRequest { tenant_id, customers, skip_push: false };
        let count = request.customers.len();
        let ok = valid_id(&request.tenant_id) && (1..=MAX_BATCH_CUSTOMERS).contains(&count);
        let Some(batch) = outcome(batch_upsert_customers(&request), &["tenant_id", "customers"], ok)? else {
            return Ok(());
        };
        // Every customer is answered once, in its own place; bad ones as INVALID_ARGUMENT.
        let mut places: Vec<usize> = batch.valid.iter().map(|(i, _)| *i).chain(batch.invalid.iter().map(|(i, _)| *i)).collect();
        places.sort_unstable();
        prop_assert_eq!(places, (0..count).collect::<Vec<_>>());
        for (index, result) in &batch.invalid {
            prop_assert_eq!(result.code, Code::InvalidArgument as i32);
            prop_assert_eq!(&result.customer_id, &request.customers[*index].id);
        }
        for (index, parsed) in &batch.valid {
            let sent = &request.customers[*index];
            prop_assert!(valid_customer(sent));
            prop_assert_eq!(parsed.id.as_str(), sent.id.as_str());
        }
        for (index, _) in &batch.invalid {
            let sent = &request.customers[*index];
            let repeated = request.customers[..*index].iter().any(|c| c.id == sent.id && valid_customer(c));
            prop_assert!(!valid_customer(sent) || repeated, "customer {} refused", index);
        }
    }

    #[test]
    fn trigger_sync_request(tenant_id in id(), mode in enum_value(), dry_run in any::<bool>(), link_only in any::<bool>(), idempotency_key in text()) {
        let request = pb::TriggerSyncRequest { tenant_id, mode, dry_run, link_only, idempotency_key };
        let ok = valid_id(&request.tenant_id)
            && known(mode, 0, |m| pb::SyncMode::try_from(m).is_ok())
            && valid_text(&request.idempotency_key, MAX_ID_BYTES);
        if let Some((t, sync)) = outcome(trigger_sync(&request, "caller".into()), &["tenant_id", "mode", "idempotency_key"], ok)? {
            prop_assert_eq!(t.as_str(), request.tenant_id.as_str());
            prop_assert_eq!(sync.mode == SyncMode::Incremental, mode == pb::SyncMode::Incremental as i32);
            prop_assert_eq!((sync.dry_run, sync.link_only), (dry_run, link_only));
            prop_assert_eq!(sync.idempotency_key.unwrap_or_default(), request.idempotency_key);
        }
    }

    #[test]
    fn link_and_unlink_requests(tenant_id in id(), digit in id(), qbo in id(), reason in text(), on_behalf_of in text(), replace in any::<bool>()) {
        let request = pb::LinkCustomersRequest {
            tenant_id: tenant_id.clone(), digit_customer_id: digit.clone(), qbo_customer_id: qbo.clone(),
            replace_existing: replace, reason: reason.clone(), on_behalf_of: on_behalf_of.clone(),
        };
        let texts_ok = valid_text(&reason, MAX_REASON_BYTES) && valid_text(&on_behalf_of, MAX_ID_BYTES);
        let ok = valid_id(&tenant_id) && valid_id(&digit) && valid_id(&qbo) && texts_ok;
        let fields = ["tenant_id", "digit_customer_id", "qbo_customer_id", "reason", "on_behalf_of"];
        if let Some((t, d, q)) = outcome(link_customers(&request), &fields, ok)? {
            prop_assert_eq!((t.as_str(), d.as_str(), q.as_str()), (tenant_id.as_str(), digit.as_str(), qbo.as_str()));
        }
        let request = pb::UnlinkCustomerRequest { tenant_id: tenant_id.clone(), digit_customer_id: digit.clone(), reason, on_behalf_of };
        let ok = valid_id(&tenant_id) && valid_id(&digit) && texts_ok;
        outcome(unlink_customer(&request), &fields, ok)?;
    }

    #[test]
    fn listing_requests(tenant_id in id(), digit in prop_oneof![Just(String::new()), id()], page_size in page_size(), page_token in text()) {
        let page_ok = (0..=MAX_PAGE_SIZE).contains(&page_size) && valid_text(&page_token, MAX_PAGE_TOKEN_BYTES);
        let request = pb::ListLinkEventsRequest { tenant_id: tenant_id.clone(), digit_customer_id: digit.clone(), page_size, page_token: page_token.clone() };
        let ok = valid_id(&tenant_id) && (digit.is_empty() || valid_id(&digit)) && page_ok;
        let fields = ["tenant_id", "digit_customer_id", "page_size", "page_token"];
        if let Some((_, d, size)) = outcome(list_link_events(&request), &fields, ok)? {
            prop_assert_eq!(d.map(|d| d.as_str().to_owned()).unwrap_or_default(), digit);
            prop_assert_eq!(i32::try_from(size).ok(), Some(page_size));
        }
        let request = pb::ListReviewItemsRequest { tenant_id: tenant_id.clone(), page_size, page_token };
        let ok = valid_id(&tenant_id) && page_ok;
        outcome(list_review_items(&request), &fields, ok)?;
    }

    #[test]
    fn resolve_review_item_request(tenant_id in id(), item in uuid_text(), decision in enum_value(), qbo in prop_oneof![Just(String::new()), id()], reason in text()) {
        let request = pb::ResolveReviewItemRequest {
            tenant_id: tenant_id.clone(), review_item_id: item.clone(), decision, qbo_customer_id: qbo.clone(), reason: reason.clone(),
        };
        let accept = decision == pb::ReviewDecision::AcceptCandidate as i32;
        let decision_ok = known(decision, 0, |d| pb::ReviewDecision::try_from(d).is_ok())
            && if accept { valid_id(&qbo) } else { qbo.is_empty() };
        let ok = valid_id(&tenant_id) && Uuid::parse_str(&item).is_ok() && decision_ok && valid_text(&reason, MAX_REASON_BYTES);
        let fields = ["tenant_id", "review_item_id", "decision", "qbo_customer_id", "reason"];
        if let Some((_, _, d)) = outcome(resolve_review_item(&request), &fields, ok)? {
            match d {
                Decision::Accept(q) => prop_assert!(accept && q.as_str() == qbo),
                Decision::RejectAll => prop_assert_eq!(decision, pb::ReviewDecision::RejectAll as i32),
                Decision::CreateNew => prop_assert_eq!(decision, pb::ReviewDecision::CreateNew as i32),
            }
        }
    }

    #[test]
    fn connect_company_request(
        tenant_id in id(), realm_id in id(), environment in enum_value(),
        code in prop_oneof![Just(String::new()), text()],
        redirect_uri in prop_oneof![Just(String::new()), text()],
        refresh_token in prop_oneof![Just(String::new()), text(), "[a-z]{4090,4100}"],
        reset_links in any::<bool>(), on_behalf_of in text(),
    ) {
        let request = pb::ConnectCompanyRequest {
            tenant_id, realm_id, environment, authorization_code: code, redirect_uri, refresh_token, reset_links, on_behalf_of,
        };
        let r = &request;
        let credential_ok = match (r.authorization_code.is_empty(), r.refresh_token.is_empty()) {
            (false, true) => !r.redirect_uri.is_empty(),
            (true, false) => true,
            _ => false,
        };
        let ok = valid_id(&r.tenant_id) && valid_id(&r.realm_id)
            && known(environment, 0, |e| pb::QboEnvironment::try_from(e).is_ok())
            && credential_ok
            && [&r.authorization_code, &r.redirect_uri, &r.refresh_token].iter().all(|v| valid_text(v, MAX_CREDENTIAL_BYTES))
            && valid_text(&r.on_behalf_of, MAX_ID_BYTES);
        let fields = ["tenant_id", "realm_id", "environment", "authorization_code", "redirect_uri", "refresh_token", "on_behalf_of"];
        if let Some(connect) = outcome(connect_company(request.clone(), "caller".into()), &fields, ok)? {
            prop_assert_eq!(connect.tenant.as_str(), request.tenant_id.as_str());
            prop_assert_eq!(connect.realm.as_str(), request.realm_id.as_str());
            prop_assert_eq!(connect.reset_links, reset_links);
        }
    }
}
