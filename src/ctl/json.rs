//! The `--json` shapes: each proto message as the proto3 JSON mapping would print it with the
//! proto field names, except that every field is present (empty strings, zeros, `null` for an
//! unset message or timestamp) and 64-bit integers are JSON numbers. Enum values are their
//! full proto names; timestamps are RFC 3339 in UTC. Written out by hand because the generated
//! types do not derive `Serialize`, and so that a shape changes only on purpose.

use chrono::{DateTime, SecondsFormat};
use prost_types::Timestamp;
use serde_json::{Value, json};

use super::names::full;
use crate::proto::v1 as pb;

/// A timestamp as RFC 3339 (`2025-03-01T12:00:00.250Z`), or `null`.
pub fn timestamp(at: Option<&Timestamp>) -> Value {
    at.and_then(to_datetime).map_or(Value::Null, |t| {
        Value::from(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    })
}

/// A timestamp as a UTC date and time, when it is one chrono can hold.
pub fn to_datetime(at: &Timestamp) -> Option<DateTime<chrono::Utc>> {
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

fn optional<T>(value: Option<&T>, convert: fn(&T) -> Value) -> Value {
    value.map_or(Value::Null, convert)
}

pub fn link(l: &pb::Link) -> Value {
    json!({
        "digit_customer_id": l.digit_customer_id,
        "qbo_customer_id": l.qbo_customer_id,
        "qbo_display_name": l.qbo_display_name,
        "method": full::<pb::LinkMethod>(l.method),
        "reasons": l.reasons,
        "score": l.score,
        "linked_at": timestamp(l.linked_at.as_ref()),
        "linked_by": l.linked_by,
        "normalizer_version": l.normalizer_version,
    })
}

pub fn candidate(c: &pb::Candidate) -> Value {
    json!({
        "qbo_customer_id": c.qbo_customer_id,
        "display_name": c.display_name,
        "active": c.active,
        "score": c.score,
        "reasons": c.reasons,
    })
}

fn candidates(list: &[pb::Candidate]) -> Value {
    list.iter().map(candidate).collect()
}

pub fn connection(c: &pb::Connection) -> Value {
    json!({
        "tenant_id": c.tenant_id,
        "realm_id": c.realm_id,
        "environment": full::<pb::QboEnvironment>(c.environment),
        "state": full::<pb::ConnectionState>(c.state),
        "connected_at": timestamp(c.connected_at.as_ref()),
        "updated_at": timestamp(c.updated_at.as_ref()),
        "refresh_token_expires_at": timestamp(c.refresh_token_expires_at.as_ref()),
        "last_error": c.last_error,
    })
}

pub fn connect_response(r: &pb::ConnectCompanyResponse) -> Value {
    json!({
        "connection": optional(r.connection.as_ref(), connection),
        "previous_realm_id": r.previous_realm_id,
        "archived_links": r.archived_links,
    })
}

pub fn upsert_response(r: &pb::UpsertCustomerResponse) -> Value {
    json!({
        "state": full::<pb::LinkState>(r.state),
        "created": r.created,
        "push_queued": r.push_queued,
        "link": optional(r.link.as_ref(), link),
    })
}

pub fn planned_action(a: &pb::PlannedAction) -> Value {
    json!({
        "kind": full::<pb::PlannedActionKind>(a.kind),
        "digit_customer_id": a.digit_customer_id,
        "qbo_customer_id": a.qbo_customer_id,
        "method": full::<pb::LinkMethod>(a.method),
        "score": a.score,
        "reasons": a.reasons,
    })
}

pub fn sync_run(r: &pb::SyncRun) -> Value {
    json!({
        "run_id": r.run_id,
        "tenant_id": r.tenant_id,
        "mode": full::<pb::SyncMode>(r.mode),
        "state": full::<pb::SyncRunState>(r.state),
        "dry_run": r.dry_run,
        "link_only": r.link_only,
        "qbo_customers_read": r.qbo_customers_read,
        "digit_customers_considered": r.digit_customers_considered,
        "already_linked": r.already_linked,
        "auto_linked": r.auto_linked,
        "queued_for_review": r.queued_for_review,
        "pushed_to_qbo": r.pushed_to_qbo,
        "conflicts": r.conflicts,
        "errors": r.errors,
        "created_at": timestamp(r.created_at.as_ref()),
        "started_at": timestamp(r.started_at.as_ref()),
        "finished_at": timestamp(r.finished_at.as_ref()),
        "updated_at": timestamp(r.updated_at.as_ref()),
        "error": r.error,
        "planned_actions": r.planned_actions.iter().map(planned_action).collect::<Value>(),
        "planned_actions_total": r.planned_actions_total,
        "requested_by": r.requested_by,
    })
}

pub fn link_status(r: &pb::GetLinkStatusResponse) -> Value {
    json!({
        "state": full::<pb::LinkState>(r.state),
        "link": optional(r.link.as_ref(), link),
        "candidates": candidates(&r.candidates),
        "explanation": r.explanation,
        "review_item_id": r.review_item_id,
    })
}

fn snapshot(s: &pb::LinkSnapshot) -> Value {
    json!({
        "qbo_customer_id": s.qbo_customer_id,
        "method": full::<pb::LinkMethod>(s.method),
        "score": s.score,
        "reasons": s.reasons,
    })
}

pub fn link_event(e: &pb::LinkEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "digit_customer_id": e.digit_customer_id,
        "action": full::<pb::LinkEventAction>(e.action),
        "before": optional(e.before.as_ref(), snapshot),
        "after": optional(e.after.as_ref(), snapshot),
        "actor": e.actor,
        "on_behalf_of": e.on_behalf_of,
        "reason": e.reason,
        "run_id": e.run_id,
        "occurred_at": timestamp(e.occurred_at.as_ref()),
    })
}

pub fn review_item(i: &pb::ReviewItem) -> Value {
    json!({
        "review_item_id": i.review_item_id,
        "digit_customer_id": i.digit_customer_id,
        "digit_display_name": i.digit_display_name,
        "reason": i.reason,
        "candidates": candidates(&i.candidates),
        "created_at": timestamp(i.created_at.as_ref()),
        "run_id": i.run_id,
    })
}

pub fn validate_response(r: &pb::ValidateInvoiceCustomerResponse) -> Value {
    json!({
        "ok": r.ok,
        "qbo_customer_id": r.qbo_customer_id,
        "qbo_display_name": r.qbo_display_name,
        "problem": full::<pb::InvoiceCustomerProblem>(r.problem),
        "action": r.action,
        "candidates": candidates(&r.candidates),
        "review_item_id": r.review_item_id,
        "repaired": r.repaired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc_3339_in_utc_and_unset_ones_null() {
        let at = Timestamp {
            seconds: 1_740_830_400,
            nanos: 250_000_000,
        };
        assert_eq!(timestamp(Some(&at)), "2025-03-01T12:00:00.250Z");
        assert_eq!(timestamp(None), Value::Null);
    }

    #[test]
    fn a_run_keeps_every_field_with_enum_names() {
        let run = pb::SyncRun {
            run_id: "r-1".into(),
            state: pb::SyncRunState::Succeeded.into(),
            mode: pb::SyncMode::Full.into(),
            auto_linked: 3,
            ..Default::default()
        };
        let value = sync_run(&run);
        assert_eq!(value["state"], "SYNC_RUN_STATE_SUCCEEDED");
        assert_eq!(value["mode"], "SYNC_MODE_FULL");
        assert_eq!(value["auto_linked"], 3);
        assert_eq!(value["error"], "");
        assert_eq!(value["started_at"], Value::Null);
        assert_eq!(value["planned_actions"], json!([]));
        assert_eq!(
            value.as_object().unwrap().len(),
            22,
            "one key per proto field"
        );
    }
}
