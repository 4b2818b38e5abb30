//! The mirror of each tenant's QBO customers (`qbo_customers`), as last read from QBO, with
//! the matcher's keys.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tracing::instrument;

use super::StoreError;
use crate::domain::TenantId;

/// One QBO customer as the mirror keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MirroredCustomer {
    /// QBO Id.
    pub qbo_id: String,
    /// SyncToken when read.
    pub sync_token: String,
    /// DisplayName.
    pub display_name: String,
    /// `Parent:Job` for sub-customers.
    pub fully_qualified_name: Option<String>,
    /// Parent's Id for a sub-customer.
    pub parent_qbo_id: Option<String>,
    /// Whether it is a sub-customer.
    pub is_job: bool,
    /// Depth, 0 at the top.
    pub level: i32,
    /// Active in QBO.
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
    /// QBO's LastUpdatedTime.
    pub qbo_last_updated_at: Option<DateTime<Utc>>,
    /// The matcher's name key.
    pub name_key: String,
    /// The matcher's e-mail key.
    pub email_key: Option<String>,
    /// The normalizer version of the keys.
    pub normalizer_version: i32,
}

/// Writes customers into the mirror in one statement (arrays, not a round trip each),
/// replacing what was stored for the same ids, and clears `missing` for them.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.qbo_customers.upsert", skip_all, fields(count = customers.len()), err)]
pub async fn upsert_mirrored_customers(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customers: &[MirroredCustomer],
) -> Result<(), StoreError> {
    if customers.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&MirroredCustomer) -> Option<String>| -> Vec<Option<String>> {
        customers.iter().map(f).collect()
    };
    sqlx::query(
        "INSERT INTO qbo_customers (tenant_id, qbo_id, sync_token, display_name, fully_qualified_name,
             parent_qbo_id, is_job, level, active, company_name, given_name, family_name, email,
             phone, qbo_last_updated_at, name_key, email_key, normalizer_version, missing, mirrored_at)
         SELECT $1, * , false, now() FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::bool[], $8::int4[], $9::bool[], $10::text[], $11::text[], $12::text[],
             $13::text[], $14::text[], $15::timestamptz[], $16::text[], $17::text[], $18::int4[])
         ON CONFLICT (tenant_id, qbo_id) DO UPDATE SET
             sync_token = EXCLUDED.sync_token, display_name = EXCLUDED.display_name,
             fully_qualified_name = EXCLUDED.fully_qualified_name,
             parent_qbo_id = EXCLUDED.parent_qbo_id, is_job = EXCLUDED.is_job,
             level = EXCLUDED.level, active = EXCLUDED.active,
             company_name = EXCLUDED.company_name, given_name = EXCLUDED.given_name,
             family_name = EXCLUDED.family_name, email = EXCLUDED.email, phone = EXCLUDED.phone,
             qbo_last_updated_at = EXCLUDED.qbo_last_updated_at, name_key = EXCLUDED.name_key,
             email_key = EXCLUDED.email_key, normalizer_version = EXCLUDED.normalizer_version,
             missing = false, mirrored_at = now()",
    )
    .bind(tenant.as_str())
    .bind(col(|c| Some(c.qbo_id.clone())))
    .bind(col(|c| Some(c.sync_token.clone())))
    .bind(col(|c| Some(c.display_name.clone())))
    .bind(col(|c| c.fully_qualified_name.clone()))
    .bind(col(|c| c.parent_qbo_id.clone()))
    .bind(customers.iter().map(|c| c.is_job).collect::<Vec<_>>())
    .bind(customers.iter().map(|c| c.level).collect::<Vec<_>>())
    .bind(customers.iter().map(|c| c.active).collect::<Vec<_>>())
    .bind(col(|c| c.company_name.clone()))
    .bind(col(|c| c.given_name.clone()))
    .bind(col(|c| c.family_name.clone()))
    .bind(col(|c| c.email.clone()))
    .bind(col(|c| c.phone.clone()))
    .bind(
        customers
            .iter()
            .map(|c| c.qbo_last_updated_at)
            .collect::<Vec<_>>(),
    )
    .bind(col(|c| Some(c.name_key.clone())))
    .bind(col(|c| c.email_key.clone()))
    .bind(
        customers
            .iter()
            .map(|c| c.normalizer_version)
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
