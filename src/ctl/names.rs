//! Names of the contract's enum values: the full proto name for JSON (stable, as in the
//! .proto files), a short lower-case one for people (`LINK_METHOD_AUTO_EXACT` → `auto exact`).

use serde_json::Value;

use crate::proto::v1 as pb;

/// A proto enum whose values have names.
pub trait ProtoEnum {
    /// The prefix every value's name starts with, e.g. `LINK_STATE_`.
    const PREFIX: &'static str;
    /// The value's proto name, or `None` for a number this build does not know.
    fn name_of(value: i32) -> Option<&'static str>;
}

macro_rules! proto_enum {
    ($($ty:ty => $prefix:literal),* $(,)?) => {$(
        impl ProtoEnum for $ty {
            const PREFIX: &'static str = $prefix;
            fn name_of(value: i32) -> Option<&'static str> {
                <$ty>::try_from(value).ok().map(|v| v.as_str_name())
            }
        }
    )*};
}

proto_enum! {
    pb::LinkMethod => "LINK_METHOD_",
    pb::LinkState => "LINK_STATE_",
    pb::SyncMode => "SYNC_MODE_",
    pb::SyncRunState => "SYNC_RUN_STATE_",
    pb::PlannedActionKind => "PLANNED_ACTION_KIND_",
    pb::LinkEventAction => "LINK_EVENT_ACTION_",
    pb::InvoiceCustomerProblem => "INVOICE_CUSTOMER_PROBLEM_",
    pb::QboEnvironment => "QBO_ENVIRONMENT_",
    pb::ConnectionState => "CONNECTION_STATE_",
}

/// The JSON of an enum value: its proto name, or its number when unknown to this build (a
/// newer server), so nothing is lost.
pub fn full<E: ProtoEnum>(value: i32) -> Value {
    E::name_of(value).map_or_else(|| Value::from(value), Value::from)
}

/// The short name people read: the prefix dropped, lower case, words apart.
pub fn short<E: ProtoEnum>(value: i32) -> String {
    match E::name_of(value) {
        Some(name) => name
            .strip_prefix(E::PREFIX)
            .unwrap_or(name)
            .to_lowercase()
            .replace('_', " "),
        None => format!("unknown ({value})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_full_for_scripts_and_short_for_people() {
        let exact = pb::LinkMethod::AutoExact as i32;
        assert_eq!(full::<pb::LinkMethod>(exact), "LINK_METHOD_AUTO_EXACT");
        assert_eq!(short::<pb::LinkMethod>(exact), "auto exact");
        assert_eq!(full::<pb::SyncRunState>(99), 99);
        assert_eq!(short::<pb::SyncRunState>(99), "unknown (99)");
    }
}
