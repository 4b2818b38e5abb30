//! The plain types the client hands to the rest of the service (the serde shapes stay in
//! `model.rs`).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::model::{CustomerDto, CustomerWriteDto, EmailDto, NamedEntityDto, PhoneDto, RefDto};
use crate::domain::{DigitCustomerId, RealmId, TenantId};

/// A QBO customer as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QboCustomer {
    /// QBO's Id (opaque).
    pub id: String,
    /// The version counter an update must send.
    pub sync_token: String,
    /// The unique name.
    pub display_name: String,
    /// `Parent:Child` for sub-customers.
    pub fully_qualified_name: Option<String>,
    /// The parent's Id for a sub-customer (job).
    pub parent_id: Option<String>,
    /// Whether this is a sub-customer.
    pub is_job: bool,
    /// 0 for top level.
    pub level: i32,
    /// Inactive means "deleted" in QBO.
    pub active: bool,
    /// Company name.
    pub company_name: Option<String>,
    /// First name.
    pub given_name: Option<String>,
    /// Last name.
    pub family_name: Option<String>,
    /// Primary e-mail.
    pub email: Option<String>,
    /// Primary phone.
    pub phone: Option<String>,
    /// `MetaData.LastUpdatedTime`, in UTC.
    pub last_updated: Option<DateTime<Utc>>,
    /// CDC reported the object as `status: "Deleted"` (e.g. merged away).
    pub deleted: bool,
    /// The company the customer was read from (its ids mean nothing in another).
    pub realm: RealmId,
}

impl QboCustomer {
    /// The customer QBO sent, read from the company `realm`.
    pub(crate) fn from_dto(dto: CustomerDto, realm: &RealmId) -> Self {
        let last_updated = dto
            .meta_data
            .and_then(|m| m.last_updated_time)
            .and_then(|t| parse_qbo_time(&t));
        Self {
            last_updated,
            deleted: dto
                .status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("deleted")),
            id: dto.id,
            sync_token: dto.sync_token.unwrap_or_default(),
            display_name: dto.display_name.unwrap_or_default(),
            fully_qualified_name: dto.fully_qualified_name,
            parent_id: dto.parent_ref.map(|r| r.value),
            is_job: dto.job.unwrap_or(false),
            level: dto.level.unwrap_or(0),
            active: dto.active.unwrap_or(true),
            company_name: dto.company_name,
            given_name: dto.given_name,
            family_name: dto.family_name,
            email: dto.primary_email_addr.and_then(|e| e.address),
            phone: dto.primary_phone.and_then(|p| p.free_form_number),
            realm: realm.clone(),
        }
    }
}

/// Parses QBO's times: RFC 3339 with an offset, the `-0700` form, or epoch milliseconds.
#[must_use]
pub fn parse_qbo_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    text.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// A customer to create in QBO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCustomer {
    /// The unique name (required here; QBO could build one, but the service always sets it).
    pub display_name: String,
    /// Company name.
    pub company_name: Option<String>,
    /// First name.
    pub given_name: Option<String>,
    /// Last name.
    pub family_name: Option<String>,
    /// Primary e-mail.
    pub email: Option<String>,
    /// Primary phone.
    pub phone: Option<String>,
    /// Parent Id, to create a sub-customer.
    pub parent_id: Option<String>,
}

impl NewCustomer {
    pub(crate) fn to_dto(&self) -> CustomerWriteDto {
        CustomerWriteDto {
            display_name: Some(self.display_name.clone()),
            company_name: self.company_name.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            primary_email_addr: self.email.clone().map(|a| EmailDto { address: Some(a) }),
            primary_phone: self.phone.clone().map(|p| PhoneDto {
                free_form_number: Some(p),
            }),
            job: self.parent_id.as_ref().map(|_| true),
            parent_ref: self.parent_id.clone().map(|value| RefDto { value }),
            ..CustomerWriteDto::default()
        }
    }
}

/// The fields a sparse update changes; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    /// New DisplayName.
    pub display_name: Option<String>,
    /// New company name.
    pub company_name: Option<String>,
    /// New first name.
    pub given_name: Option<String>,
    /// New last name.
    pub family_name: Option<String>,
    /// New e-mail.
    pub email: Option<String>,
    /// New phone.
    pub phone: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
}

impl CustomerPatch {
    pub(crate) fn to_dto(&self, id: &str, sync_token: &str) -> CustomerWriteDto {
        CustomerWriteDto {
            id: Some(id.to_owned()),
            sync_token: Some(sync_token.to_owned()),
            sparse: Some(true),
            display_name: self.display_name.clone(),
            company_name: self.company_name.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            primary_email_addr: self.email.clone().map(|a| EmailDto { address: Some(a) }),
            primary_phone: self.phone.clone().map(|p| PhoneDto {
                free_form_number: Some(p),
            }),
            active: self.active,
            ..CustomerWriteDto::default()
        }
    }

    /// Whether `current` already shows every change of this patch (nothing left to send).
    #[must_use]
    pub fn is_applied_in(&self, current: &QboCustomer) -> bool {
        let same = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        self.display_name
            .as_ref()
            .is_none_or(|d| *d == current.display_name)
            && same(&self.company_name, &current.company_name)
            && same(&self.given_name, &current.given_name)
            && same(&self.family_name, &current.family_name)
            && same(&self.email, &current.email)
            && same(&self.phone, &current.phone)
            && self.active.is_none_or(|a| a == current.active)
    }
}

/// Which kind of QBO name-list record holds a DisplayName.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameHolderKind {
    /// A Customer (or sub-customer).
    Customer,
    /// A Vendor.
    Vendor,
    /// An Employee.
    Employee,
}

impl NameHolderKind {
    /// The entity name in queries.
    #[must_use]
    pub fn entity(self) -> &'static str {
        match self {
            Self::Customer => "Customer",
            Self::Vendor => "Vendor",
            Self::Employee => "Employee",
        }
    }
}

/// A record that holds a DisplayName (found while recovering from 6240).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameHolder {
    /// Customer, Vendor or Employee.
    pub kind: NameHolderKind,
    /// Its Id.
    pub id: String,
    /// Its DisplayName as stored.
    pub display_name: String,
    /// Whether it is active.
    pub active: bool,
}

impl NameHolder {
    pub(crate) fn from_named(kind: NameHolderKind, dto: NamedEntityDto) -> Self {
        Self {
            kind,
            id: dto.id,
            display_name: dto.display_name.unwrap_or_default(),
            active: dto.active.unwrap_or(true),
        }
    }
}

/// What a create ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// QBO created it (or replayed our own earlier create of it).
    Created(QboCustomer),
    /// A create's answer was lost, and the lookup that followed found a customer with the
    /// name: almost surely the one that create made (nothing was sent again).
    FoundAfterUncertain(QboCustomer),
    /// The name is held already; `holder` says by what. It may be a customer this very
    /// request created before its answer was lost: the caller decides whether to link it.
    NameTaken {
        /// The record holding the name (a Vendor or Employee cannot be linked).
        holder: NameHolder,
        /// The Customer, read in full, when the holder is one.
        customer: Option<QboCustomer>,
    },
}

/// One page of a customer query.
#[derive(Debug, Clone)]
pub struct CustomerPage {
    /// The customers on this page.
    pub customers: Vec<QboCustomer>,
    /// Whether another page may follow (this one was full).
    pub more: bool,
}

/// The answer of a CDC call for customers.
#[derive(Debug, Clone)]
pub struct CustomerChanges {
    /// Changed customers; `deleted` marks removed ones.
    pub customers: Vec<QboCustomer>,
    /// The server's time of the answer: the next high-water mark (with some overlap).
    pub server_time: Option<DateTime<Utc>>,
    /// The answer hit the 1,000-object cap: ask again with a shorter window.
    pub truncated: bool,
}

/// The deterministic idempotency key of a create: the same (tenant, Digit customer,
/// generation) always gives the same `requestid`, so a retry after a lost answer is replayed by
/// QBO instead of creating a second customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// `c1-` + 40 hex digits of SHA-256 over the inputs: 43 characters (QBO allows 50).
    #[must_use]
    pub fn for_create(tenant: &TenantId, customer: &DigitCustomerId, generation: i32) -> Self {
        let digest = digest_parts(&[tenant.as_str(), customer.as_str(), &generation.to_string()]);
        Self(format!("c1-{}", &digest[..40]))
    }

    /// The request id of a create under a substitute name (`variant` > 0, e.g. `Name (c)`
    /// when a vendor holds `Name`): another name is another request, so it needs its own id,
    /// just as deterministic. Variant 0 is [`Self::for_create`].
    #[must_use]
    pub fn for_create_variant(
        tenant: &TenantId,
        customer: &DigitCustomerId,
        generation: i32,
        variant: u32,
    ) -> Self {
        if variant == 0 {
            return Self::for_create(tenant, customer, generation);
        }
        let digest = digest_parts(&[
            tenant.as_str(),
            customer.as_str(),
            &generation.to_string(),
            &variant.to_string(),
        ]);
        Self(format!("c1-{}", &digest[..40]))
    }

    /// `b1-` + 32 hex digits over the items' request ids: 35 characters (batch allows 36).
    #[must_use]
    pub fn for_batch(items: &[&RequestId]) -> Self {
        let parts: Vec<&str> = items.iter().map(|r| r.as_str()).collect();
        Self(format!("b1-{}", &digest_parts(&parts)[..32]))
    }

    /// The value sent as `requestid`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn digest_parts(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed so part boundaries cannot shift.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_deterministic_and_short() {
        let t = TenantId::parse("tenant").unwrap();
        let c = DigitCustomerId::parse("cust-1").unwrap();
        let a = RequestId::for_create(&t, &c, 0);
        assert_eq!(a, RequestId::for_create(&t, &c, 0));
        assert_ne!(a, RequestId::for_create(&t, &c, 1));
        assert_ne!(
            a,
            RequestId::for_create(&t, &DigitCustomerId::parse("cust-2").unwrap(), 0)
        );
        assert!(a.as_str().len() <= 50);
        let long = TenantId::parse("x".repeat(64)).unwrap();
        let long_c = DigitCustomerId::parse("y".repeat(64)).unwrap();
        assert_eq!(
            RequestId::for_create(&long, &long_c, i32::MAX)
                .as_str()
                .len(),
            43
        );
        let b = RequestId::for_batch(&[&a]);
        assert!(b.as_str().len() <= 36);
    }

    #[test]
    fn parses_qbo_time_forms() {
        let want = DateTime::parse_from_rfc3339("2016-05-17T17:36:03Z").unwrap();
        assert_eq!(parse_qbo_time("2016-05-17T10:36:03-07:00").unwrap(), want);
        assert_eq!(parse_qbo_time("2016-05-17T10:36:03-0700").unwrap(), want);
        assert_eq!(parse_qbo_time("1463506563000").unwrap(), want);
        assert!(parse_qbo_time("yesterday").is_none());
    }

    #[test]
    fn patch_applied_check() {
        let dto: CustomerDto = serde_json::from_str(
            r#"{"Id":"1","SyncToken":"3","DisplayName":"A","CompanyName":"C","Active":true}"#,
        )
        .unwrap();
        let current = QboCustomer::from_dto(dto, &RealmId::parse("1").unwrap());
        let patch = CustomerPatch {
            company_name: Some("C".into()),
            ..CustomerPatch::default()
        };
        assert!(patch.is_applied_in(&current));
        let patch = CustomerPatch {
            company_name: Some("D".into()),
            ..CustomerPatch::default()
        };
        assert!(!patch.is_applied_in(&current));
    }
}
