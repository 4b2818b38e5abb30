//! Plain domain types. Parsing happens once at the edge; past it, values are valid by type.

mod ids;

pub use ids::{DigitCustomerId, IdError, QboCustomerId, RealmId, TenantId};
