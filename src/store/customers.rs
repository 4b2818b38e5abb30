//! Digit customers.

use sqlx::PgConnection;
use tracing::instrument;

use super::StoreError;
use crate::domain::{DigitCustomer, DigitCustomerId, TenantId};

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    /// The customer was not known before.
    pub created: bool,
}

/// Inserts a Digit customer, or updates the stored one with the same id.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.digit_customers.upsert", skip_all, err)]
pub async fn upsert_digit_customer(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customer: &DigitCustomer,
) -> Result<Upserted, StoreError> {
    // xmax = 0 only on a freshly inserted row: it tells insert from update in one round trip.
    let created: bool = sqlx::query_scalar(
        "INSERT INTO digit_customers
             (tenant_id, id, display_name, company_name, given_name, family_name, email, phone, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             display_name = EXCLUDED.display_name, company_name = EXCLUDED.company_name,
             given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
             email = EXCLUDED.email, phone = EXCLUDED.phone, active = EXCLUDED.active,
             updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(tenant.as_str())
    .bind(customer.id.as_str())
    .bind(&customer.display_name)
    .bind(&customer.company_name)
    .bind(&customer.given_name)
    .bind(&customer.family_name)
    .bind(&customer.email)
    .bind(&customer.phone)
    .bind(customer.active)
    .fetch_one(conn)
    .await?;
    Ok(Upserted { created })
}

/// Loads one Digit customer of the tenant.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored id is invalid.
#[instrument(name = "db.digit_customers.get", skip_all, err)]
pub async fn get_digit_customer(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &DigitCustomerId,
) -> Result<Option<DigitCustomer>, StoreError> {
    let row: Option<CustomerRow> = sqlx::query_as(
        "SELECT id, display_name, company_name, given_name, family_name, email, phone, active
         FROM digit_customers WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(CustomerRow::into_domain).transpose()
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    display_name: String,
    company_name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    active: bool,
}

impl CustomerRow {
    fn into_domain(self) -> Result<DigitCustomer, StoreError> {
        Ok(DigitCustomer {
            id: DigitCustomerId::parse(self.id)
                .map_err(|e| StoreError::Corrupt(format!("digit customer id: {e}")))?,
            display_name: self.display_name,
            company_name: self.company_name,
            given_name: self.given_name,
            family_name: self.family_name,
            email: self.email,
            phone: self.phone,
            active: self.active,
        })
    }
}
