//! The store's error type.

/// What can go wrong in the store. Callers map it to a gRPC status in `crate::error`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (for this tenant).
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for, e.g. "link".
        entity: &'static str,
    },
    /// A uniqueness rule would be broken; `constraint` names the rule.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The constraint's name, e.g. `links_qbo_key`.
        constraint: String,
    },
    /// A row changed under us (optimistic concurrency).
    #[error("{entity} was changed concurrently")]
    Stale {
        /// What changed.
        entity: &'static str,
    },
    /// Stored data could not be turned back into a domain value.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The store is misconfigured.
    #[error("store configuration: {0}")]
    Config(String),
    /// A migration failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed or is unreachable.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // A unique or exclusion violation is the caller's conflict, not an outage.
        if let sqlx::Error::Database(db) = &error
            && (db.is_unique_violation() || db.is_foreign_key_violation())
            && let Some(constraint) = db.constraint()
        {
            return Self::Conflict {
                constraint: constraint.to_owned(),
            };
        }
        if let sqlx::Error::RowNotFound = error {
            return Self::NotFound { entity: "row" };
        }
        Self::Database(error)
    }
}

impl StoreError {
    /// Whether this is a conflict on the named constraint.
    #[must_use]
    pub fn is_conflict_on(&self, name: &str) -> bool {
        matches!(self, Self::Conflict { constraint } if constraint == name)
    }
}
