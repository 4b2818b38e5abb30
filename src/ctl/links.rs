//! `status`, `link`, `unlink`, `history` and `validate`: one customer's link, and its trail.

use std::fmt::Write as _;

use serde_json::json;

use super::{
    CtlError, Exit, Report,
    args::{HistoryArgs, LinkArgs, UnlinkArgs},
    client::Session,
    json::{self as js, to_datetime},
    names::short,
    style::{Style, Tone},
    table::{Table, cell},
};
use crate::proto::v1 as pb;

/// `status CUSTOMER`: GetLinkStatus.
///
/// # Errors
/// The call's refusal (NOT_FOUND for a customer qbo-sync does not know).
pub async fn status(s: &Session, customer: String, style: Style) -> Result<Report, CtlError> {
    let request = pb::GetLinkStatusRequest {
        tenant_id: s.tenant.clone(),
        digit_customer_id: customer.clone(),
    };
    let answer = s
        .customers
        .clone()
        .get_link_status(s.request(request))
        .await?
        .into_inner();
    let mut text = format!(
        "{customer}: {}\n{}\n",
        style.paint(
            state_tone(answer.state()),
            &short::<pb::LinkState>(answer.state)
        ),
        answer.explanation
    );
    if let Some(link) = &answer.link {
        text.push_str(&link_table(link).render(style));
    }
    if !answer.review_item_id.is_empty() {
        let _ = writeln!(text, "review item: {}", answer.review_item_id);
    }
    text.push_str(&candidates_text(&answer.candidates, style));
    Ok(Report::ok(js::link_status(&answer), text))
}

/// `link CUSTOMER QBO_CUSTOMER`: LinkCustomers.
///
/// # Errors
/// The call's refusal (FAILED_PRECONDITION when either side is linked, without --replace).
pub async fn link(s: &Session, a: LinkArgs, style: Style) -> Result<Report, CtlError> {
    let request = pb::LinkCustomersRequest {
        tenant_id: s.tenant.clone(),
        digit_customer_id: a.customer,
        qbo_customer_id: a.qbo_customer,
        replace_existing: a.replace,
        reason: a.reason,
        on_behalf_of: a.on_behalf_of.unwrap_or_default(),
    };
    let answer = s
        .customers
        .clone()
        .link_customers(s.request(request))
        .await?
        .into_inner();
    let mut text = format!("{}\n", style.paint(Tone::Good, "linked"));
    if let Some(link) = &answer.link {
        text.push_str(&link_table(link).render(style));
    }
    for old in &answer.replaced {
        let _ = writeln!(
            text,
            "replaced: {} → QBO {}",
            old.digit_customer_id, old.qbo_customer_id
        );
    }
    let value = json!({
        "link": answer.link.as_ref().map(js::link),
        "replaced": answer.replaced.iter().map(js::link).collect::<Vec<_>>(),
    });
    Ok(Report::ok(value, text))
}

/// `unlink CUSTOMER`: UnlinkCustomer.
///
/// # Errors
/// The call's refusal (FAILED_PRECONDITION, reason NOT_LINKED, when there is no link).
pub async fn unlink(s: &Session, a: UnlinkArgs, style: Style) -> Result<Report, CtlError> {
    let request = pb::UnlinkCustomerRequest {
        tenant_id: s.tenant.clone(),
        digit_customer_id: a.customer.clone(),
        reason: a.reason,
        on_behalf_of: a.on_behalf_of.unwrap_or_default(),
    };
    let answer = s
        .customers
        .clone()
        .unlink_customer(s.request(request))
        .await?
        .into_inner();
    let text = match &answer.removed {
        Some(old) => format!(
            "{} unlinked from QBO {} {:?}\n",
            a.customer,
            style.paint(Tone::Bold, &old.qbo_customer_id),
            old.qbo_display_name
        ),
        None => format!("{} unlinked\n", a.customer),
    };
    let value = json!({ "removed": answer.removed.as_ref().map(js::link) });
    Ok(Report::ok(value, text))
}

/// `history [CUSTOMER]`: one page of ListLinkEvents.
///
/// # Errors
/// The call's refusal.
pub async fn history(s: &Session, a: HistoryArgs, style: Style) -> Result<Report, CtlError> {
    let request = pb::ListLinkEventsRequest {
        tenant_id: s.tenant.clone(),
        digit_customer_id: a.customer.unwrap_or_default(),
        page_size: a.limit,
        page_token: a.page_token,
    };
    let answer = s
        .customers
        .clone()
        .list_link_events(s.request(request))
        .await?
        .into_inner();
    let mut table = Table::new(&["WHEN", "CUSTOMER", "ACTION", "QBO", "ACTOR", "REASON"]);
    for e in &answer.events {
        table.row(event_row(e));
    }
    let mut text = if answer.events.is_empty() {
        "no link events\n".to_owned()
    } else {
        table.render(style)
    };
    text.push_str(&next_page(&answer.next_page_token, style));
    let value = json!({
        "events": answer.events.iter().map(js::link_event).collect::<Vec<_>>(),
        "next_page_token": answer.next_page_token,
    });
    Ok(Report::ok(value, text))
}

fn event_row(e: &pb::LinkEvent) -> Vec<super::table::Cell> {
    let qbo = |s: &Option<pb::LinkSnapshot>| s.as_ref().map(|s| s.qbo_customer_id.clone());
    let change = match (qbo(&e.before), qbo(&e.after)) {
        (Some(b), Some(a)) => format!("{b} → {a}"),
        (None, Some(a)) => a,
        (Some(b), None) => format!("{b} → none"),
        (None, None) => String::new(),
    };
    let actor = match e.on_behalf_of.as_str() {
        "" => e.actor.clone(),
        user => format!("{} for {user}", e.actor),
    };
    vec![
        when(e.occurred_at.as_ref()).into(),
        e.digit_customer_id.clone().into(),
        short::<pb::LinkEventAction>(e.action).into(),
        change.into(),
        actor.into(),
        e.reason.clone().into(),
    ]
}

/// `validate CUSTOMER [--repair]`: ValidateInvoiceCustomer. A "no" exits 6.
///
/// # Errors
/// The call's refusal.
pub async fn validate(
    s: &Session,
    customer: String,
    repair: bool,
    style: Style,
) -> Result<Report, CtlError> {
    let request = pb::ValidateInvoiceCustomerRequest {
        tenant_id: s.tenant.clone(),
        digit_customer_id: customer.clone(),
        repair,
    };
    let answer = s
        .customers
        .clone()
        .validate_invoice_customer(s.request(request))
        .await?
        .into_inner();
    Ok(Report {
        json: js::validate_response(&answer),
        human: verdict_text(&customer, &answer, style),
        exit: if answer.ok { Exit::Ok } else { Exit::No },
    })
}

fn verdict_text(customer: &str, r: &pb::ValidateInvoiceCustomerResponse, style: Style) -> String {
    let repaired = if r.repaired { " (repaired now)" } else { "" };
    if r.ok {
        return format!(
            "{}: invoices for {customer} go to QBO customer {} {:?}{repaired}\n",
            style.paint(Tone::Good, "ok"),
            r.qbo_customer_id,
            r.qbo_display_name
        );
    }
    let mut text = format!(
        "{}: {}\nto fix: {}\n",
        style.paint(Tone::Bad, "no"),
        short::<pb::InvoiceCustomerProblem>(r.problem),
        r.action
    );
    if !r.review_item_id.is_empty() {
        let _ = writeln!(text, "review item: {}", r.review_item_id);
    }
    text.push_str(&candidates_text(&r.candidates, style));
    text
}

/// The colour of a link state.
pub fn state_tone(state: pb::LinkState) -> Tone {
    match state {
        pb::LinkState::Linked => Tone::Good,
        pb::LinkState::PendingReview | pb::LinkState::PendingPush => Tone::Warn,
        pb::LinkState::Unlinked | pb::LinkState::Unspecified => Tone::Bad,
    }
}

/// A link as label and value rows.
pub fn link_table(l: &pb::Link) -> Table {
    let mut table = Table::bare();
    table
        .row(vec![
            "QBO customer".into(),
            cell(
                format!("{} {:?}", l.qbo_customer_id, l.qbo_display_name),
                Tone::Bold,
            ),
        ])
        .row(vec![
            "method".into(),
            format!(
                "{} (score {:.2})",
                short::<pb::LinkMethod>(l.method),
                l.score
            )
            .into(),
        ])
        .row(vec![
            "linked".into(),
            format!("{} by {}", when(l.linked_at.as_ref()), l.linked_by).into(),
        ])
        .row(vec!["reasons".into(), l.reasons.join("; ").into()]);
    table
}

/// Candidates as a table under a heading, or nothing.
pub fn candidates_text(list: &[pb::Candidate], style: Style) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&["QBO", "NAME", "SCORE", "ACTIVE", "REASONS"]);
    for c in list {
        table.row(vec![
            c.qbo_customer_id.clone().into(),
            c.display_name.clone().into(),
            format!("{:.2}", c.score).into(),
            if c.active {
                "yes".into()
            } else {
                cell("no", Tone::Warn)
            },
            c.reasons.join("; ").into(),
        ]);
    }
    format!("candidates:\n{}", table.render(style))
}

/// A timestamp for people: `2025-03-01 12:00:00 UTC`, or `-`.
pub fn when(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(to_datetime).map_or_else(
        || "-".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// The hint under a page that has a next one.
pub fn next_page(token: &str, style: Style) -> String {
    if token.is_empty() {
        String::new()
    } else {
        format!(
            "{}\n",
            style.paint(Tone::Dim, &format!("more: --page-token {token}"))
        )
    }
}
