//! Plain domain types. Parsing happens once at the edge; past it, values are valid by type.

mod customer;
mod ids;
mod link;

pub use customer::{DigitCustomer, FieldProblem, MAX_DISPLAY_NAME_CHARS, RawDigitCustomer};
pub use ids::{DigitCustomerId, IdError, MAX_ID_BYTES, QboCustomerId, RealmId, TenantId};
pub use link::{Link, LinkMethod, LinkState};
