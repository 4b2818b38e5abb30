//! `review list|accept|reject|create`: the customers waiting for a person.

use std::fmt::Write as _;

use serde_json::json;

use super::{
    CtlError, Report,
    args::ReviewCommand,
    client::Session,
    json as js,
    links::{link_table, next_page, state_tone, when},
    names::short,
    style::{Style, Tone},
    table::{Table, cell},
};
use crate::proto::v1 as pb;

/// `review …`.
///
/// # Errors
/// The call's refusal (NOT_FOUND for an unknown item, FAILED_PRECONDITION for a resolved or
/// stale one).
pub async fn run(s: &Session, c: ReviewCommand, style: Style) -> Result<Report, CtlError> {
    match c {
        ReviewCommand::List { limit, page_token } => list(s, limit, page_token, style).await,
        ReviewCommand::Accept {
            item,
            qbo_customer,
            reason,
        } => {
            let decision = pb::ReviewDecision::AcceptCandidate;
            resolve(s, item, decision, qbo_customer, reason, style).await
        }
        ReviewCommand::Reject { item, reason } => {
            let decision = pb::ReviewDecision::RejectAll;
            resolve(s, item, decision, String::new(), reason, style).await
        }
        ReviewCommand::Create { item, reason } => {
            let decision = pb::ReviewDecision::CreateNew;
            resolve(s, item, decision, String::new(), reason, style).await
        }
    }
}

async fn list(s: &Session, limit: i32, token: String, style: Style) -> Result<Report, CtlError> {
    let request = pb::ListReviewItemsRequest {
        tenant_id: s.tenant.clone(),
        page_size: limit,
        page_token: token,
    };
    let answer = s
        .customers
        .clone()
        .list_review_items(s.request(request))
        .await?
        .into_inner();
    let mut text = items_text(&answer.review_items, style);
    text.push_str(&next_page(&answer.next_page_token, style));
    let value = json!({
        "review_items": answer.review_items.iter().map(js::review_item).collect::<Vec<_>>(),
        "next_page_token": answer.next_page_token,
    });
    Ok(Report::ok(value, text))
}

/// Each item as a heading line, then its candidates; items are few and their candidates are
/// what a person reads to decide.
fn items_text(items: &[pb::ReviewItem], style: Style) -> String {
    if items.is_empty() {
        return "no open review items\n".into();
    }
    let mut text = String::new();
    for item in items {
        let _ = writeln!(
            text,
            "{}  {} {:?}  queued {}",
            style.paint(Tone::Bold, &item.review_item_id),
            item.digit_customer_id,
            item.digit_display_name,
            when(item.created_at.as_ref())
        );
        let _ = writeln!(text, "  {}", item.reason);
        let mut table = Table::new(&["QBO", "NAME", "SCORE", "REASONS"]);
        for c in &item.candidates {
            let name = if c.active {
                cell(c.display_name.clone(), Tone::Plain)
            } else {
                cell(format!("{} (inactive)", c.display_name), Tone::Warn)
            };
            table.row(vec![
                c.qbo_customer_id.clone().into(),
                name,
                format!("{:.2}", c.score).into(),
                c.reasons.join("; ").into(),
            ]);
        }
        for line in table.render(style).lines() {
            let _ = writeln!(text, "  {line}");
        }
    }
    text
}

async fn resolve(
    s: &Session,
    item: String,
    decision: pb::ReviewDecision,
    qbo_customer_id: String,
    reason: String,
    style: Style,
) -> Result<Report, CtlError> {
    let request = pb::ResolveReviewItemRequest {
        tenant_id: s.tenant.clone(),
        review_item_id: item.clone(),
        decision: decision.into(),
        qbo_customer_id,
        reason,
    };
    let answer = s
        .customers
        .clone()
        .resolve_review_item(s.request(request))
        .await?
        .into_inner();
    let mut text = format!(
        "review item {item} resolved: {}\n",
        style.paint(
            state_tone(answer.state()),
            &short::<pb::LinkState>(answer.state)
        )
    );
    if let Some(link) = &answer.link {
        text.push_str(&link_table(link).render(style));
    }
    let value = json!({
        "state": super::names::full::<pb::LinkState>(answer.state),
        "link": answer.link.as_ref().map(js::link),
    });
    Ok(Report::ok(value, text))
}
