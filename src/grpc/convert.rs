//! Domain → proto conversions.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::{
    domain::{Link, LinkMethod, LinkState},
    proto::v1 as pb,
    service::{
        preflight::{Problem, Verdict},
        sync::Action,
    },
    store::{
        connections::{Connection, ConnectionState},
        links::LinkEventRow,
        reviews::{ReviewRow, StoredCandidate},
        sync_runs::SyncRunRow,
    },
};

/// A protobuf timestamp.
#[must_use]
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The proto enum value of a link method.
#[must_use]
pub fn link_method(method: LinkMethod) -> pb::LinkMethod {
    match method {
        LinkMethod::Manual => pb::LinkMethod::Manual,
        LinkMethod::AutoExact => pb::LinkMethod::AutoExact,
        LinkMethod::AutoNormalized => pb::LinkMethod::AutoNormalized,
        LinkMethod::AutoEmail => pb::LinkMethod::AutoEmail,
        LinkMethod::CreatedInQbo => pb::LinkMethod::CreatedInQbo,
        LinkMethod::DuplicateNameRecovery => pb::LinkMethod::DuplicateNameRecovery,
        LinkMethod::MergeRepoint => pb::LinkMethod::MergeRepoint,
    }
}

/// The proto enum value of a link state.
#[must_use]
pub fn link_state(state: LinkState) -> pb::LinkState {
    match state {
        LinkState::Linked => pb::LinkState::Linked,
        LinkState::Unlinked => pb::LinkState::Unlinked,
        LinkState::PendingReview => pb::LinkState::PendingReview,
        LinkState::PendingPush => pb::LinkState::PendingPush,
    }
}

/// The proto message of a link.
#[must_use]
pub fn link(link: Link) -> pb::Link {
    pb::Link {
        digit_customer_id: link.digit_customer_id.to_string(),
        qbo_customer_id: link.qbo_customer_id.to_string(),
        qbo_display_name: link.qbo_display_name.unwrap_or_default(),
        method: link_method(link.method).into(),
        reasons: link.reasons,
        score: link.score,
        linked_at: Some(timestamp(link.linked_at)),
        linked_by: link.linked_by,
        normalizer_version: link.normalizer_version,
    }
}

/// The proto message of a candidate.
#[must_use]
pub fn candidate(candidate: StoredCandidate) -> pb::Candidate {
    pb::Candidate {
        qbo_customer_id: candidate.qbo_customer_id,
        display_name: candidate.display_name,
        active: candidate.active,
        score: candidate.score,
        reasons: candidate.reasons,
    }
}

/// The proto message of a connection: never its tokens.
#[must_use]
pub fn connection(connection: Connection) -> pb::Connection {
    let environment = match connection.environment.as_str() {
        "production" => pb::QboEnvironment::Production,
        "sandbox" => pb::QboEnvironment::Sandbox,
        _ => pb::QboEnvironment::Unspecified,
    };
    let state = match connection.state {
        ConnectionState::Connected => pb::ConnectionState::Connected,
        ConnectionState::NeedsReauth => pb::ConnectionState::NeedsReauth,
        ConnectionState::Disconnected => pb::ConnectionState::Disconnected,
    };
    pb::Connection {
        tenant_id: connection.tenant_id.to_string(),
        realm_id: connection.realm_id.to_string(),
        environment: environment.into(),
        state: state.into(),
        connected_at: Some(timestamp(connection.connected_at)),
        updated_at: Some(timestamp(connection.updated_at)),
        refresh_token_expires_at: connection.refresh_token_expires_at.map(timestamp),
        last_error: connection.last_error.unwrap_or_default(),
    }
}

/// The proto message of a sync run (a dry run's plan included).
#[must_use]
pub fn sync_run(run: SyncRunRow) -> pb::SyncRun {
    let mode = match run.mode.as_str() {
        "full" => pb::SyncMode::Full,
        "incremental" => pb::SyncMode::Incremental,
        _ => pb::SyncMode::Unspecified,
    };
    let state = match run.state.as_str() {
        "queued" => pb::SyncRunState::Queued,
        "running" => pb::SyncRunState::Running,
        "succeeded" => pb::SyncRunState::Succeeded,
        "failed" => pb::SyncRunState::Failed,
        "cancelled" => pb::SyncRunState::Cancelled,
        _ => pb::SyncRunState::Unspecified,
    };
    let actions: Vec<Action> = serde_json::from_value(run.planned_actions.0).unwrap_or_default();
    pb::SyncRun {
        run_id: run.id.to_string(),
        tenant_id: run.tenant_id,
        mode: mode.into(),
        state: state.into(),
        dry_run: run.dry_run,
        link_only: run.link_only,
        qbo_customers_read: run.qbo_customers_read,
        digit_customers_considered: run.digit_customers_considered,
        already_linked: run.already_linked,
        auto_linked: run.auto_linked,
        queued_for_review: run.queued_for_review,
        pushed_to_qbo: run.pushed_to_qbo,
        conflicts: run.conflicts,
        errors: run.errors,
        created_at: Some(timestamp(run.created_at)),
        started_at: run.started_at.map(timestamp),
        finished_at: run.finished_at.map(timestamp),
        error: run.error.unwrap_or_default(),
        planned_actions: actions.into_iter().map(planned_action).collect(),
        updated_at: Some(timestamp(run.updated_at)),
        planned_actions_total: run.planned_total,
        requested_by: run.requested_by,
    }
}

/// The proto message of one planned action. A review names its best candidate; its reasons
/// start with why a person must decide.
#[must_use]
pub fn planned_action(action: Action) -> pb::PlannedAction {
    let mut out = pb::PlannedAction::default();
    match action {
        Action::Link {
            digit,
            qbo,
            method,
            score,
            reasons,
        } => {
            out.set_kind(pb::PlannedActionKind::Link);
            out.digit_customer_id = digit;
            out.qbo_customer_id = qbo;
            out.set_method(link_method(crate::service::push::link_method(method)));
            out.score = score;
            out.reasons = reasons;
        }
        Action::Review {
            digit,
            reason,
            candidates,
        } => {
            out.set_kind(pb::PlannedActionKind::Review);
            out.digit_customer_id = digit;
            out.reasons.push(reason);
            if let Some(best) = candidates.into_iter().next() {
                out.qbo_customer_id = best.qbo_customer_id;
                out.score = best.score;
                out.reasons.extend(best.reasons);
            }
        }
        Action::Push { digit } => {
            out.set_kind(pb::PlannedActionKind::Push);
            out.digit_customer_id = digit;
            out.reasons
                .push("no QuickBooks customer matches or resembles it: create it".into());
        }
        Action::Keep { digit, qbo, why } => {
            out.set_kind(pb::PlannedActionKind::Keep);
            out.digit_customer_id = digit;
            out.qbo_customer_id = qbo.unwrap_or_default();
            out.reasons.push(why);
        }
    }
    out
}

/// The proto message of an audit event.
#[must_use]
pub fn link_event(event: LinkEventRow) -> pb::LinkEvent {
    let action = match event.action.as_str() {
        "link" => pb::LinkEventAction::Link,
        "unlink" => pb::LinkEventAction::Unlink,
        "replace" => pb::LinkEventAction::Replace,
        "repoint" => pb::LinkEventAction::Repoint,
        "archive" => pb::LinkEventAction::Archive,
        _ => pb::LinkEventAction::Unspecified,
    };
    pb::LinkEvent {
        event_id: event.id,
        digit_customer_id: event.digit_customer_id,
        action: action.into(),
        before: event.before.and_then(|j| snapshot(&j.0)),
        after: event.after.and_then(|j| snapshot(&j.0)),
        actor: event.actor,
        on_behalf_of: event.on_behalf_of.unwrap_or_default(),
        reason: event.reason,
        run_id: event.run_id.map(|r| r.to_string()).unwrap_or_default(),
        occurred_at: Some(timestamp(event.occurred_at)),
    }
}

/// A link as an audit event stored it (`qbo_customer_id`, `method`, `score`, `reasons`).
fn snapshot(value: &serde_json::Value) -> Option<pb::LinkSnapshot> {
    let qbo = value.get("qbo_customer_id")?.as_str()?.to_owned();
    let method = value
        .get("method")
        .and_then(serde_json::Value::as_str)
        .and_then(LinkMethod::from_stored)
        .map_or(pb::LinkMethod::Unspecified, link_method);
    Some(pb::LinkSnapshot {
        qbo_customer_id: qbo,
        method: method.into(),
        score: value
            .get("score")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
        reasons: value
            .get("reasons")
            .and_then(serde_json::Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The preflight's answer.
#[must_use]
pub fn verdict(verdict: Verdict) -> pb::ValidateInvoiceCustomerResponse {
    let problem = match verdict.problem {
        Problem::None => pb::InvoiceCustomerProblem::None,
        Problem::UnknownCustomer => pb::InvoiceCustomerProblem::UnknownCustomer,
        Problem::NotLinked => pb::InvoiceCustomerProblem::NotLinked,
        Problem::PendingReview => pb::InvoiceCustomerProblem::PendingReview,
        Problem::PendingPush => pb::InvoiceCustomerProblem::PendingPush,
        Problem::QboCustomerInactive => pb::InvoiceCustomerProblem::QboCustomerInactive,
        Problem::QboCustomerMissing => pb::InvoiceCustomerProblem::QboCustomerMissing,
        Problem::CompanyNotConnected => pb::InvoiceCustomerProblem::CompanyNotConnected,
        Problem::ConnectionNeedsReauth => pb::InvoiceCustomerProblem::ConnectionNeedsReauth,
    };
    pb::ValidateInvoiceCustomerResponse {
        ok: verdict.problem == Problem::None,
        qbo_customer_id: verdict.qbo_customer_id.unwrap_or_default(),
        qbo_display_name: verdict.qbo_display_name.unwrap_or_default(),
        problem: problem.into(),
        action: verdict.action,
        candidates: verdict.candidates.into_iter().map(candidate).collect(),
        review_item_id: verdict
            .review_item_id
            .map(|r| r.to_string())
            .unwrap_or_default(),
        repaired: verdict.repaired,
    }
}

/// The proto message of a review item.
#[must_use]
pub fn review_item(item: ReviewRow) -> pb::ReviewItem {
    pb::ReviewItem {
        review_item_id: item.id.to_string(),
        digit_customer_id: item.digit_customer_id,
        digit_display_name: item.digit_display_name,
        reason: item.reason,
        candidates: item.candidates.0.into_iter().map(candidate).collect(),
        created_at: Some(timestamp(item.created_at)),
        run_id: item.run_id.map(|r| r.to_string()).unwrap_or_default(),
    }
}
