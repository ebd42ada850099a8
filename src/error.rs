//! tidemark's error type: every error is either transient (retry with backoff) or definite
//! (stop the connector with a message that says what to do).
//!
//! Owns: the error type and its severity. Must not: decide the severity of a driver's error
//! (each driver's classifier sits next to the driver: `source::postgres::error`,
//! `source::mysql::error`, `sink::kafka::error`), or retry (see [`crate::retry`]).
//!
//! # Unknown errors are transient
//!
//! A classifier calls an error definite only when it is proven to be one: a code or kind
//! listed as such (bad credentials, a missing table or privilege, a purged log, a message
//! over a size limit, malformed data). Anything it does not recognise is retried with
//! backoff, as Materialize does, and marked [`Error::unclassified`] so that the log says so
//! at every retry: a connector that stops for good on a network hiccup nobody listed is worse
//! than one that retries a real fault and says so in its log, where an operator sees it.

use std::fmt;

use crate::event::TableId;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A server restart, a network loss, a broker outage: retry with backoff and jitter.
    Transient,
    /// Bad configuration, missing prerequisites, malformed data: retrying cannot help.
    Definite,
}

/// What was wrong with one event, when an error is about one event's content rather than a
/// server, the configuration or tidemark: the table's `on_error` policy then decides whether
/// the connector halts, sends the event to the dead-letter topic, or skips it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFault {
    /// The router could not route the row (an outbox row whose topic column is NULL, ...).
    Routing,
    /// The schema stage could not encode the change.
    Encoding,
    /// The record is larger than the topic or the producer accepts.
    TooLarge,
    /// A value does not fit its schema (the table's derived Avro schema or its contract): a
    /// NULL in a required field, a decimal over its precision, a column the contract lacks.
    Validation,
    /// The table's new schema breaks the subject's compatibility rule in the schema registry.
    Incompatible,
}

impl EventFault {
    /// The name in logs and dead-letter headers.
    pub fn as_str(self) -> &'static str {
        match self {
            EventFault::Routing => "routing",
            EventFault::Encoding => "encoding",
            EventFault::TooLarge => "too_large",
            EventFault::Validation => "validation",
            EventFault::Incompatible => "incompatible_schema",
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub severity: Severity,
    /// The classifier did not recognise the error and chose [`Severity::Transient`] by default.
    pub unclassified: bool,
    /// The one table the error concerns, when it concerns one (a row that cannot be decoded,
    /// routed, encoded or produced): a per-table policy can stop that table alone.
    pub table: Option<TableId>,
    /// Set when the error is about one event's content (see [`EventFault`]).
    pub fault: Option<EventFault>,
    /// What failed, in terms of the user's configuration (connector, table, column, position).
    pub message: String,
    pub source: Option<BoxError>,
}

impl Error {
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        Self {
            severity,
            unclassified: false,
            table: None,
            fault: None,
            message: message.into(),
            source: None,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(Severity::Transient, message)
    }

    pub fn definite(message: impl Into<String>) -> Self {
        Self::new(Severity::Definite, message)
    }

    /// An error no classifier recognised: retried (see the module doc), and said so.
    pub fn unclassified(message: impl Into<String>) -> Self {
        let mut e = Self::transient(message);
        e.unclassified = true;
        e
    }

    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Marks the error as concerning `table` alone.
    pub fn for_table(mut self, table: &TableId) -> Self {
        self.table = Some(table.clone());
        self
    }

    /// Marks the error as one event's fault (and so definite).
    pub fn with_fault(mut self, fault: EventFault) -> Self {
        self.severity = Severity::Definite;
        self.fault = Some(fault);
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

/// The message, then each cause in the source chain once: a cause whose text the line already
/// holds (drivers often repeat their inner error in their own message: MariaDB's server errors,
/// librdkafka's codes) is left out.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.message.clone();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(c) = cur {
            let text = c.to_string();
            if !text.is_empty() && !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            cur = c.source();
        }
        f.write_str(&line)
    }
}

impl std::error::Error for Error {}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Error::definite(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        #[derive(Debug)]
        struct Inner;
        impl fmt::Display for Inner {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("ERROR 1045 (28000): Access denied")
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "Server error: `{}'", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Error::definite("connecting to db:3306").with_source(Outer(Inner));
        assert_eq!(
            e.to_string(),
            "connecting to db:3306: Server error: `ERROR 1045 (28000): Access denied'"
        );
    }

    #[test]
    fn an_unclassified_error_is_retried_and_marked() {
        let e = Error::unclassified("x");
        assert!(e.is_transient() && e.unclassified);
        assert!(!Error::transient("x").unclassified);
    }

    #[test]
    fn a_table_error_names_its_table_and_keeps_it_through_context() {
        let t = TableId::new("s", "t");
        let e = Error::definite("bad row")
            .for_table(&t)
            .context("connector c");
        assert_eq!(e.table.as_ref(), Some(&t));
        assert_eq!(e.to_string(), "connector c: bad row");
    }
}
