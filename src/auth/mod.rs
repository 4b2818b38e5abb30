//! Who may call: the callers file (`QBO_SYNC_CALLERS_FILE`), checked strictly and reloaded
//! when it changes, and the [`Authenticator`] that turns a bearer token into a [`Caller`].
//! No SQL and no gRPC here: the gRPC edge is `grpc::auth`.

mod callers;
mod reload;

pub use callers::{Caller, CallerName, Callers, CallersError, Scope, Tenants};
pub use reload::{Authenticator, INSECURE_CALLER, load_callers_file, watch_callers_file};
