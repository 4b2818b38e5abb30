//! Domain → proto conversions.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::{
    domain::{Link, LinkMethod, LinkState},
    proto::v1 as pb,
    store::{
        connections::{Connection, ConnectionState},
        reviews::StoredCandidate,
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
