//! tidemark's error type: every error is either transient (retry with backoff) or definite
//! (stop the connector with a message that says what to do).

use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A server restart, a network loss, a broker outage: retry with backoff and jitter.
    Transient,
    /// Bad configuration, missing prerequisites, malformed data: retrying cannot help.
    Definite,
}

#[derive(Debug)]
pub struct Error {
    pub severity: Severity,
    /// What failed, in terms of the user's configuration (connector, table, column, position).
    pub message: String,
    pub source: Option<BoxError>,
}

impl Error {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Transient,
            message: message.into(),
            source: None,
        }
    }

    pub fn definite(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Definite,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn is_transient(&self) -> bool {
        self.severity == Severity::Transient
    }

    /// Prefixes the message with more context (`connector demo: ...`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
            let mut cur = s.source();
            while let Some(c) = cur {
                write!(f, ": {c}")?;
                cur = c.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Error::definite(e.to_string())
    }
}

/// Classifies a tokio-postgres error: connection-level problems and server states that pass
/// (shutdown, too many connections, serialization failures) are transient; the rest definite.
pub fn classify_postgres(context: impl Into<String>, e: tokio_postgres::Error) -> Error {
    let transient = match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
                || code == "55006" // object in use (slot active)
        }
        None => true, // I/O, closed connection, timeout
    };
    let err = if transient {
        Error::transient(context)
    } else {
        Error::definite(context)
    };
    err.with_source(e)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sorts a MySQL client error: lost connections, timeouts and server-side conditions that
/// pass (too many connections, lock waits, shutdown in progress) are transient; access
/// denied, unknown database, bad SQL and the like are definite.
pub fn classify_mysql(context: impl Into<String>, e: mysql_async::Error) -> Error {
    let transient = match &e {
        mysql_async::Error::Io(_) => true,
        mysql_async::Error::Driver(d) => matches!(
            d,
            mysql_async::DriverError::ConnectionClosed | mysql_async::DriverError::PoolDisconnected
        ),
        mysql_async::Error::Server(s) => matches!(
            s.code,
            1040 // too many connections
                | 1053 // server shutdown in progress
                | 1205 // lock wait timeout
                | 1213 // deadlock
                | 1927 // connection killed (MariaDB)
                | 2002 | 2003 | 2006 | 2013
                | 1158..=1161 // network read/write errors
        ),
        mysql_async::Error::Other(_) => false,
        _ => false,
    };
    let err = if transient {
        Error::transient(context)
    } else {
        Error::definite(context)
    };
    err.with_source(e)
}
