//! What a hostile request is: its RPC (with the codes the README documents for it), who it
//! claims to be, its metadata and body; and the seeded facts the generators aim at, so that
//! requests reach real rows.

use tonic::Code;

/// Every RPC of both services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rpc {
    UpsertCustomer,
    BatchUpsertCustomers,
    TriggerSync,
    GetSyncRun,
    WatchSyncRun,
    CancelSyncRun,
    GetLinkStatus,
    LinkCustomers,
    UnlinkCustomer,
    ListLinkEvents,
    ListReviewItems,
    ResolveReviewItem,
    ValidateInvoiceCustomer,
    ConnectCompany,
    GetConnection,
    DisconnectCompany,
}

pub const ALL_RPCS: [Rpc; 16] = [
    Rpc::UpsertCustomer,
    Rpc::BatchUpsertCustomers,
    Rpc::TriggerSync,
    Rpc::GetSyncRun,
    Rpc::WatchSyncRun,
    Rpc::CancelSyncRun,
    Rpc::GetLinkStatus,
    Rpc::LinkCustomers,
    Rpc::UnlinkCustomer,
    Rpc::ListLinkEvents,
    Rpc::ListReviewItems,
    Rpc::ResolveReviewItem,
    Rpc::ValidateInvoiceCustomer,
    Rpc::ConnectCompany,
    Rpc::GetConnection,
    Rpc::DisconnectCompany,
];

impl Rpc {
    /// The HTTP/2 path of the RPC.
    pub fn path(self) -> String {
        let service = match self {
            Rpc::ConnectCompany | Rpc::GetConnection | Rpc::DisconnectCompany => {
                "qbosync.v1.ConnectionService"
            }
            _ => "qbosync.v1.CustomerSyncService",
        };
        format!("/{service}/{self:?}")
    }

    /// The codes the README documents for this RPC, for requests that must not write:
    /// refusals of the caller (UNAUTHENTICATED, PERMISSION_DENIED), of the input
    /// (INVALID_ARGUMENT, OUT_OF_RANGE for a message over the limit), what the RPC itself
    /// answers for ids that do not exist or a state that refuses the change, and UNAVAILABLE,
    /// which any RPC may answer when the database is out of reach or the replica sheds load
    /// (the test requires it to carry the server's own message).
    pub fn documented(self) -> Vec<Code> {
        let mut codes = self.own_codes().to_vec();
        codes.push(Code::Unavailable);
        codes
    }

    fn own_codes(self) -> &'static [Code] {
        use Code::*;
        match self {
            Rpc::UpsertCustomer => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                OutOfRange,
            ],
            // A batch whose every customer is bad is answered OK, one INVALID_ARGUMENT each.
            Rpc::BatchUpsertCustomers => &[
                Ok,
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                OutOfRange,
            ],
            Rpc::TriggerSync => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                FailedPrecondition,
            ],
            Rpc::GetSyncRun | Rpc::WatchSyncRun | Rpc::GetLinkStatus | Rpc::GetConnection => &[
                Ok,
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                NotFound,
            ],
            Rpc::CancelSyncRun
            | Rpc::LinkCustomers
            | Rpc::UnlinkCustomer
            | Rpc::ResolveReviewItem => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                NotFound,
                FailedPrecondition,
            ],
            // A "no" of the preflight is an answer, not an error.
            Rpc::ListLinkEvents | Rpc::ListReviewItems | Rpc::ValidateInvoiceCustomer => {
                &[Ok, InvalidArgument, Unauthenticated, PermissionDenied]
            }
            Rpc::ConnectCompany => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                FailedPrecondition,
            ],
            Rpc::DisconnectCompany => {
                &[InvalidArgument, Unauthenticated, PermissionDenied, NotFound]
            }
        }
    }
}

/// Who the request claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Every scope, every tenant.
    Full,
    /// Only the `read` scope.
    Reader,
    /// Only `validate`, only the seeded tenant.
    Validator,
    /// Every scope, only the other tenant.
    OtherTenant,
    NoToken,
    UnknownToken,
    /// An `authorization` header that is not `Bearer <token>`.
    Malformed,
    /// An `authorization` header whose value is not UTF-8.
    NotUtf8,
    /// Two `authorization` headers.
    TwoHeaders,
}

impl Who {
    /// Whether the auth layer must refuse it before anything else (UNAUTHENTICATED).
    pub fn unauthenticated(self) -> bool {
        matches!(
            self,
            Who::NoToken | Who::UnknownToken | Who::Malformed | Who::NotUtf8 | Who::TwoHeaders
        )
    }
}

/// A metadata entry as raw bytes: an ASCII key's value may hold any byte from 0x20 up (obs-text
/// included, so not UTF-8); a `-bin` key's value any byte.
pub type RawMetadata = (&'static str, Vec<u8>);

/// One hostile request.
#[derive(Debug)]
pub struct Hostile {
    pub rpc: Rpc,
    pub who: Who,
    /// Extra metadata besides the credentials.
    pub metadata: Vec<RawMetadata>,
    /// The encoded message, or junk.
    pub body: Vec<u8>,
    /// The body is not a message of the RPC's request type.
    pub junk: bool,
    /// The body is over the server's message limit.
    pub oversized: bool,
}

/// The seeded rows the generators aim at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub tenant: String,
    pub other_tenant: String,
    pub realm: String,
    /// Digit customers of the tenant: linked, not linked (no review), in review.
    pub linked: Vec<String>,
    pub unlinked: Vec<String>,
    pub in_review: Vec<String>,
    /// Digit customers of the other tenant (not connected).
    pub other_customers: Vec<String>,
    pub qbo_ids: Vec<String>,
    pub review_items: Vec<String>,
    /// Finished sync runs of the tenant.
    pub runs: Vec<String>,
    /// Page tokens the server issued (the next page of the listings).
    pub issued_tokens: Vec<String>,
    pub max_message_bytes: usize,
}
