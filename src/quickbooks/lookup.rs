//! Finding who holds a DisplayName: the recovery from 6240 and from creates whose answer was
//! lost.
//!
//! DisplayName is unique across Customer, Vendor and Employee, inactive records included, and
//! the holder may be any of them. A 6240 Detail sometimes carries `Id=NN` and sometimes `: null`,
//! so the Id is a hint to check, not an answer. QBO's case rules for `=` are unconfirmed, so the
//! lookup asks for the common case variants and compares in Rust; when that finds nothing for a
//! name QBO says is taken, it scans the entities page by page (bounded by configuration).

use std::collections::HashSet;

use tracing::{debug, instrument};

use super::{
    QboClient, QboError,
    limiter::Lane,
    query,
    types::{CreateOutcome, NameHolder, NameHolderKind, QboCustomer},
};
use crate::domain::TenantId;

const KINDS: [NameHolderKind; 3] = [
    NameHolderKind::Customer,
    NameHolderKind::Vendor,
    NameHolderKind::Employee,
];

/// The comparison key of a DisplayName: case folded, smart quotes as straight ones.
#[must_use]
pub fn name_key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{00B4}'
            | '\u{0060}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn case_variants(name: &str) -> Vec<String> {
    let title: String = name
        .split(' ')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut variants = vec![
        name.to_owned(),
        name.to_lowercase(),
        name.to_uppercase(),
        title,
    ];
    variants.dedup();
    variants.sort();
    variants.dedup();
    variants
}

/// Customers whose DisplayName contains a word (see [`QboClient::find_customers_containing`]).
#[derive(Debug, Clone, Default)]
pub struct SimilarCustomers {
    /// The customers found, inactive ones included, each once.
    pub customers: Vec<QboCustomer>,
    /// A query hit its page limit: customers holding the word may be missing.
    pub truncated: bool,
}

impl QboClient {
    /// Every customer (inactive ones included) whose DisplayName contains `word`: the
    /// candidates a push shows the matcher before it creates anything. QBO's case rules for
    /// LIKE are unconfirmed, so the common case spellings are asked for in turn, until an
    /// answer shows the server ignores case (a name holding the word in another case).
    /// At most one page (1,000) per spelling; `truncated` says when that was not all.
    ///
    /// # Errors
    /// The call errors of [`QboClient`].
    #[instrument(name = "qbo.customer.similar", skip_all, err(level = "debug"))]
    pub async fn find_customers_containing(
        &self,
        tenant: &TenantId,
        word: &str,
        lane: Lane,
    ) -> Result<SimilarCustomers, QboError> {
        // `%` is LIKE's wildcard; a word never needs it.
        let word: String = word
            .chars()
            .filter(|c| *c != '%' && !c.is_control())
            .collect();
        let mut found = SimilarCustomers::default();
        let mut seen = HashSet::new();
        for variant in case_variants(&word) {
            let filters = [
                format!("DisplayName LIKE {}", query::quote(&format!("%{variant}%"))),
                query::ACTIVE_OR_INACTIVE.to_owned(),
            ];
            let statement = query::select("Customer", &filters, 1, 1000);
            let (envelope, realm) = self.run_query(tenant, statement, lane).await?;
            let page: Vec<QboCustomer> = envelope
                .query_response
                .customer
                .into_iter()
                .map(|c| QboCustomer::from_dto(c, &realm))
                .collect();
            found.truncated |= page.len() >= 1000;
            let folded = name_key(&variant);
            let case_blind = page.iter().any(|c| {
                !c.display_name.contains(variant.as_str())
                    && name_key(&c.display_name).contains(&folded)
            });
            for customer in page {
                if seen.insert(customer.id.clone()) {
                    found.customers.push(customer);
                }
            }
            if case_blind {
                break;
            }
        }
        Ok(found)
    }

    /// Every Customer, Vendor and Employee (inactive ones included) whose DisplayName equals
    /// `name` ignoring case and quote style.
    ///
    /// # Errors
    /// The call errors of [`QboClient`].
    #[instrument(name = "qbo.name_lookup", skip_all, err(level = "debug"))]
    pub async fn find_name_holders(
        &self,
        tenant: &TenantId,
        name: &str,
        lane: Lane,
    ) -> Result<Vec<NameHolder>, QboError> {
        let filter = if query::has_smart_quote(name) {
            query::string_filter("DisplayName", name)
        } else {
            let variants = case_variants(name);
            query::in_filter("DisplayName", variants.iter().map(String::as_str))
                .unwrap_or_else(|| query::string_filter("DisplayName", name))
        };
        let filters = [filter, query::ACTIVE_OR_INACTIVE.to_owned()];
        let mut holders = Vec::new();
        for kind in KINDS {
            let statement = query::select(kind.entity(), &filters, 1, 1000);
            holders.extend(self.holders_in(tenant, kind, statement, lane).await?);
        }
        let key = name_key(name);
        holders.retain(|h| name_key(&h.display_name) == key);
        Ok(holders)
    }

    /// Like [`Self::find_name_holders`], then a bounded page-by-page scan of all three
    /// entities when the targeted query found nothing (a server comparing case-sensitively).
    ///
    /// # Errors
    /// The call errors of [`QboClient`].
    pub async fn find_name_holders_thoroughly(
        &self,
        tenant: &TenantId,
        name: &str,
        lane: Lane,
    ) -> Result<Vec<NameHolder>, QboError> {
        let found = self.find_name_holders(tenant, name, lane).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        debug!("qbo.name_lookup.scan");
        let key = name_key(name);
        let filters = [query::ACTIVE_OR_INACTIVE.to_owned()];
        let mut holders = Vec::new();
        for kind in KINDS {
            for page in 0..self.settings.name_scan_pages {
                let statement = query::select(kind.entity(), &filters, page * 1000 + 1, 1000);
                let batch = self.holders_in(tenant, kind, statement, lane).await?;
                let full = batch.len() >= 1000;
                holders.extend(
                    batch
                        .into_iter()
                        .filter(|h| name_key(&h.display_name) == key),
                );
                if !full {
                    break;
                }
            }
        }
        Ok(holders)
    }

    async fn holders_in(
        &self,
        tenant: &TenantId,
        kind: NameHolderKind,
        statement: String,
        lane: Lane,
    ) -> Result<Vec<NameHolder>, QboError> {
        let response = self
            .run_query(tenant, statement, lane)
            .await?
            .0
            .query_response;
        Ok(match kind {
            NameHolderKind::Customer => response
                .customer
                .into_iter()
                .map(|c| NameHolder {
                    kind,
                    id: c.id,
                    display_name: c.display_name.unwrap_or_default(),
                    active: c.active.unwrap_or(true),
                })
                .collect(),
            NameHolderKind::Vendor => response
                .vendor
                .into_iter()
                .map(|v| NameHolder::from_named(kind, v))
                .collect(),
            NameHolderKind::Employee => response
                .employee
                .into_iter()
                .map(|e| NameHolder::from_named(kind, e))
                .collect(),
        })
    }

    /// Turns a 6240 into the record holding the name: the Detail's Id when it is a customer
    /// with that name, else a lookup across the three entities.
    pub(crate) async fn resolve_duplicate(
        &self,
        tenant: &TenantId,
        name: &str,
        existing_id: Option<String>,
        lane: Lane,
    ) -> Result<CreateOutcome, QboError> {
        if let Some(id) = &existing_id {
            // The Id may belong to a Vendor or Employee, so check it is our customer by name.
            match self.read_customer(tenant, id, lane).await {
                Ok(customer) if name_key(&customer.display_name) == name_key(name) => {
                    let holder = NameHolder {
                        kind: NameHolderKind::Customer,
                        id: customer.id.clone(),
                        display_name: customer.display_name.clone(),
                        active: customer.active,
                    };
                    return Ok(CreateOutcome::NameTaken {
                        holder,
                        customer: Some(customer),
                    });
                }
                Ok(_) | Err(QboError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let mut holders = self
            .find_name_holders_thoroughly(tenant, name, lane)
            .await?;
        // A customer is the useful holder; among several, the one the Detail named.
        holders.sort_by_key(|h| {
            (
                h.kind != NameHolderKind::Customer,
                Some(&h.id) != existing_id.as_ref(),
            )
        });
        let Some(holder) = holders.into_iter().next() else {
            return Err(QboError::DuplicateName { existing_id });
        };
        let customer = match holder.kind {
            NameHolderKind::Customer => Some(self.read_customer(tenant, &holder.id, lane).await?),
            _ => None,
        };
        Ok(CreateOutcome::NameTaken { holder, customer })
    }

    /// After a create whose answer was lost: the customer now holding the name, if any.
    pub(crate) async fn find_after_uncertain(
        &self,
        tenant: &TenantId,
        name: &str,
        lane: Lane,
    ) -> Result<Option<CreateOutcome>, QboError> {
        let holders = self.find_name_holders(tenant, name, lane).await?;
        if let Some(holder) = holders.iter().find(|h| h.kind == NameHolderKind::Customer) {
            let customer = self.read_customer(tenant, &holder.id, lane).await?;
            return Ok(Some(CreateOutcome::FoundAfterUncertain(customer)));
        }
        if let Some(holder) = holders.into_iter().next() {
            // A Vendor or Employee holds it: the create cannot have succeeded.
            return Ok(Some(CreateOutcome::NameTaken {
                holder,
                customer: None,
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_key_folds_case_and_quotes() {
        assert_eq!(name_key("O\u{2019}Brien"), name_key("o'brien"));
        assert_eq!(name_key("BOB"), "bob");
        assert_ne!(name_key("Bob  Smith"), name_key("Bob Smith"));
    }

    #[test]
    fn variants_cover_common_cases() {
        let v = case_variants("mcDonald farms");
        for want in [
            "mcDonald farms",
            "mcdonald farms",
            "MCDONALD FARMS",
            "Mcdonald Farms",
        ] {
            assert!(v.iter().any(|x| x == want), "{want} in {v:?}");
        }
    }
}
