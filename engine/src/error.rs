//! The crate's one error type.

use crate::validate::FieldIssue;

/// Everything the engine and its store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed; the database is left at the version before it.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database URL names a backend we do not speak.
    #[error("unsupported database url scheme in {url:?}: use sqlite:// or postgres://")]
    UnsupportedDatabase { url: String },
    /// The row does not exist (or belongs to another tenant, which looks the same).
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// The request conflicts with the current state (duplicate, illegal move).
    #[error("{message}")]
    Conflict { message: String },
    /// Input failed validation; one issue per field.
    #[error("validation failed")]
    Validation { issues: Vec<FieldIssue> },
    /// A stored JSON column could not be (de)serialized.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// An uploaded file could not be read.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A stored secret could not be opened (wrong key, or the value was tampered with), or
    /// the secret key is unusable.
    #[error("secret: {0}")]
    Secret(&'static str),
    /// The SIP endpoint refused or failed an operation.
    #[error("sip: {0}")]
    Sip(#[from] switchboard_sip::Error),
}

impl Error {
    /// A validation error for one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            issues: vec![FieldIssue::new(field, message)],
        }
    }

    /// A conflict with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
