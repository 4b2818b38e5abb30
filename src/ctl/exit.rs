//! Why `ctl` failed, how that is printed, and the exit code each failure gets.

use std::fmt::Write as _;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The exit codes of `qbo-sync ctl`, documented in its `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok,
    /// 1: any other failure.
    Other,
    /// 2: a bad flag or argument (clap uses 2 for its own usage errors too).
    Usage,
    /// 3: no such customer, run, review item or connection.
    NotFound,
    /// 4: the server cannot be reached, sheds load, or the deadline passed.
    Unavailable,
    /// 5: refused: a failed precondition, or the caller may not do this.
    Refused,
    /// 6: the command worked and the answer is no (a failed preflight, a failed sync run).
    No,
}

impl Exit {
    /// The process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Other => 1,
            Self::Usage => 2,
            Self::NotFound => 3,
            Self::Unavailable => 4,
            Self::Refused => 5,
            Self::No => 6,
        }
    }

    /// The exit code of a refused gRPC call.
    #[must_use]
    pub fn of_code(code: Code) -> Self {
        match code {
            Code::Ok => Self::Ok,
            Code::InvalidArgument | Code::OutOfRange => Self::Usage,
            Code::NotFound => Self::NotFound,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable,
            Code::FailedPrecondition | Code::PermissionDenied | Code::Unauthenticated => {
                Self::Refused
            }
            Code::Unknown
            | Code::AlreadyExists
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss => Self::Other,
        }
    }
}

/// Why a `ctl` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The server answered the call with an error.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Rpc(Status),
    /// The server could not be reached at all.
    #[error("UNAVAILABLE: cannot reach {addr}: {cause}")]
    Unreachable { addr: String, cause: String },
    /// A flag or argument clap could not check (e.g. a missing tenant).
    #[error("{0}")]
    Usage(String),
    /// A local file (a certificate) could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl From<Status> for CtlError {
    fn from(status: Status) -> Self {
        Self::Rpc(status)
    }
}

impl CtlError {
    /// The exit code of this failure.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            Self::Rpc(status) => Exit::of_code(status.code()),
            Self::Unreachable { .. } => Exit::Unavailable,
            Self::Usage(_) => Exit::Usage,
            Self::File { .. } => Exit::Other,
        }
    }

    /// The text printed on stderr: the code and message, then the error's stable reason and
    /// every bad field when the server sent them.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = format!("qbo-sync ctl: {self}\n");
        if let Self::Rpc(status) = self {
            let details = status.get_error_details();
            if let Some(info) = details.error_info() {
                let _ = writeln!(text, "  reason: {}", info.reason);
            }
            if let Some(bad) = details.bad_request() {
                for violation in &bad.field_violations {
                    let _ = writeln!(text, "  {}: {}", violation.field, violation.description);
                }
            }
        }
        text
    }
}

/// The canonical name of a gRPC code, as the gRPC documentation and our README spell it.
#[must_use]
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_refusal_has_its_exit_code() {
        assert_eq!(Exit::of_code(Code::NotFound).code(), 3);
        assert_eq!(Exit::of_code(Code::Unavailable).code(), 4);
        assert_eq!(Exit::of_code(Code::DeadlineExceeded).code(), 4);
        assert_eq!(Exit::of_code(Code::Unauthenticated).code(), 5);
        assert_eq!(Exit::of_code(Code::FailedPrecondition).code(), 5);
        assert_eq!(Exit::of_code(Code::InvalidArgument).code(), 2);
        assert_eq!(Exit::of_code(Code::Internal).code(), 1);
    }

    #[test]
    fn a_refusal_prints_its_code_message_and_reason() {
        let status = tonic_types::ErrorDetails::with_error_info(
            "SYNC_RUN_FINISHED",
            "qbosync.v1",
            std::collections::HashMap::new(),
        );
        let status =
            Status::with_error_details(Code::FailedPrecondition, "the run has ended", status);
        let text = CtlError::from(status).render();
        assert_eq!(
            text,
            "qbo-sync ctl: FAILED_PRECONDITION: the run has ended\n  reason: SYNC_RUN_FINISHED\n"
        );
    }
}
