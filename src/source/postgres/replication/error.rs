//! What can go wrong on a replication session, sorted for `super::super::error::classify_wire`.

use std::fmt;

/// A server's `ErrorResponse`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerError {
    pub severity: String,
    /// The SQLSTATE.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(d) = &self.detail {
            write!(f, "; detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or was closed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// TLS could not be set up (refused by the server, or a certificate check failed).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server refused the credentials, or asked for a method tidemark does not speak.
    #[error("authentication: {0}")]
    Auth(String),
    /// The server reported an error.
    #[error("{0}")]
    Server(ServerError),
    /// The server sent something the protocol does not allow here.
    #[error("protocol: {0}")]
    Protocol(String),
}
