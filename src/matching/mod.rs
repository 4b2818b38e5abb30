//! The matching engine: decides, for each Digit customer, whether a QBO customer is the same one.
//!
//! Pure functions, no I/O. Precision comes first: only certain matches are linked
//! automatically; anything else goes to a person with ranked candidates and reasons. The rules
//! are described in `docs/matching.md`.
//!
//! Entry points:
//! - [`match_customers`]: the decisions for one tenant's customers.
//! - [`customer_keys`]: the `name_key` / `email_key` stored in the QBO mirror.
//! - [`qbo_blocking_keys`], [`digit_blocking_keys`], [`decide_before_rivals`]: what deciding
//!   one Digit customer from part of the mirror needs to equal [`match_customers`].
//! - [`cli::run_match`]: the offline `qbo-sync match` command.

mod abbrev;
mod blocking;
mod candidates;
pub mod cli;
mod engine;
mod evidence;
pub mod explain;
mod hierarchy;
mod index;
mod legal;
pub mod normalize;
mod prepare;
mod qbo_json;
pub mod score;
mod tiers;
mod types;

pub use blocking::{
    BlockingKey, DigitBlockingKeys, digit_blocking_keys, qbo_auto_link_keys, qbo_blocking_keys,
};
pub use engine::{decide_before_rivals, match_customers};
pub use index::FUZZY_POSTING_CAP;

/// Whether one word is, on its own, a legal form (`Inc`, `Corp.`, `LLC`, …): a word that
/// never identifies a customer.
pub fn is_legal_form(word: &str) -> bool {
    let core = normalize_name(word).core;
    !core.is_empty() && legal::is_all_legal(&[core])
}
pub use normalize::{
    NORMALIZER_VERSION, NormalizedName, normalize_email, normalize_name, normalize_phone,
};
pub use types::{
    Candidate, CustomerKeys, Decision, DigitCustomerRecord, LinkMethod, MatchContext, MatchOutcome,
    QboCustomerRecord, customer_keys, digit_marker_text, parse_digit_marker,
};
