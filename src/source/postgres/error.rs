//! What a PostgreSQL error means for the connector: retry (transient) or stop (definite).
//!
//! Both drivers (tokio-postgres for SQL, pgwire-replication for the stream) report server
//! errors by SQLSTATE; [`sqlstate_severity`] sorts them once. Definite are the classes whose
//! cause a retry cannot remove: bad SQL or a missing object or privilege (`42`), bad
//! credentials (`28`), a missing database or schema (`3D`, `3F`), data errors (`22`, `23`), an
//! object not in the needed state (`55`, for example `wal_level` not logical) and unsupported
//! features (`0A`). Transient are lost connections (`08`), serialization failures and
//! deadlocks (`40`), exhausted resources (`53`), operator intervention such as a shutdown or a
//! cancelled statement (`57`), system I/O errors (`58`) and a slot in use by another process
//! (`55006`) or a lock not available (`55P03`). Any other code, and any error without one
//! (I/O, a closed connection, a timeout, a protocol surprise), is retried as unclassified (see
//! `crate::error`).

use pgwire_replication::PgWireError;

use crate::error::{Error, Severity};

/// The severity of SQLSTATE `code`; `None` when tidemark does not know it.
pub fn sqlstate_severity(code: &str) -> Option<Severity> {
    use Severity::*;
    match code {
        // A slot used by another process, a lock not available: both pass.
        "55006" | "55P03" => return Some(Transient),
        _ => {}
    }
    let class = code.get(..2)?;
    match class {
        "08" | "40" | "53" | "57" | "58" => Some(Transient),
        "0A" | "22" | "23" | "28" | "2B" | "3D" | "3F" | "42" | "44" | "54" | "55" => {
            Some(Definite)
        }
        _ => None,
    }
}

fn with_severity(severity: Option<Severity>, context: String) -> Error {
    match severity {
        Some(s) => Error::new(s, context),
        None => Error::unclassified(context),
    }
}

/// Classifies a tokio-postgres error (a server error by its SQLSTATE; without one, an I/O
/// error, a closed connection or a timeout, transient).
pub fn classify_postgres(context: impl Into<String>, e: tokio_postgres::Error) -> Error {
    let severity = match e.as_db_error() {
        Some(db) => sqlstate_severity(db.code().code()),
        None if e.is_closed() => Some(Severity::Transient),
        None => None,
    };
    with_severity(severity, context.into()).with_source(e)
}

/// Classifies an error of the replication stream. pgwire-replication reports a server error
/// as text holding `SQLSTATE xxxxx`; authentication and TLS failures are definite (wrong
/// password, wrong certificate), I/O and task errors transient.
pub fn classify_wire(name: &str, what: &str, e: PgWireError) -> Error {
    let context = format!("connector {name}: {what}");
    let severity = match &e {
        PgWireError::Io(_) | PgWireError::Task(_) => Some(Severity::Transient),
        PgWireError::Auth(_) | PgWireError::Tls(_) => Some(Severity::Definite),
        PgWireError::Server(text) => sqlstate_in(text).and_then(sqlstate_severity),
        _ => None,
    };
    with_severity(severity, context).with_source(e)
}

/// The SQLSTATE in pgwire-replication's text of an ErrorResponse (`... (SQLSTATE 55006)`).
fn sqlstate_in(text: &str) -> Option<&str> {
    let at = text.find("SQLSTATE ")? + "SQLSTATE ".len();
    let code = text.get(at..at + 5)?;
    code.chars()
        .all(|c| c.is_ascii_alphanumeric())
        .then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_sorted_by_what_a_retry_can_change() {
        use Severity::*;
        let table: &[(&str, Option<Severity>, &str)] = &[
            ("08006", Some(Transient), "connection failure"),
            ("08001", Some(Transient), "cannot connect"),
            ("57P01", Some(Transient), "admin shutdown"),
            ("57P03", Some(Transient), "cannot connect now (starting up)"),
            ("57014", Some(Transient), "query cancelled"),
            ("53300", Some(Transient), "too many connections"),
            ("40001", Some(Transient), "serialization failure"),
            ("40P01", Some(Transient), "deadlock"),
            ("55006", Some(Transient), "slot active for another PID"),
            ("55P03", Some(Transient), "lock not available"),
            ("58030", Some(Transient), "I/O error"),
            ("42P01", Some(Definite), "undefined table"),
            ("42703", Some(Definite), "undefined column"),
            ("42501", Some(Definite), "insufficient privilege"),
            ("28P01", Some(Definite), "invalid password"),
            ("3D000", Some(Definite), "invalid catalog name"),
            (
                "55000",
                Some(Definite),
                "object not in prerequisite state (wal_level)",
            ),
            ("22P02", Some(Definite), "invalid text representation"),
            ("0A000", Some(Definite), "feature not supported"),
            ("XX000", None, "internal error"),
            ("P0001", None, "raise exception"),
            ("", None, "no code"),
        ];
        for (code, want, what) in table {
            assert_eq!(sqlstate_severity(code), *want, "{code} ({what})");
        }
    }

    #[test]
    fn replication_stream_errors_take_the_code_from_the_text() {
        let cases: &[(PgWireError, Severity, bool)] = &[
            (
                PgWireError::Server(
                    "replication slot \"s\" is active for PID 7 (SQLSTATE 55006)".into(),
                ),
                Severity::Transient,
                false,
            ),
            (
                PgWireError::Server("publication \"p\" does not exist (SQLSTATE 42704)".into()),
                Severity::Definite,
                false,
            ),
            (
                PgWireError::Server("terminating connection (SQLSTATE 57P01)".into()),
                Severity::Transient,
                false,
            ),
            (
                PgWireError::Auth("password authentication failed".into()),
                Severity::Definite,
                false,
            ),
            (
                PgWireError::Tls("invalid peer certificate".into()),
                Severity::Definite,
                false,
            ),
            (
                PgWireError::Io(std::sync::Arc::new(std::io::Error::other("reset"))),
                Severity::Transient,
                false,
            ),
            (
                PgWireError::Protocol("unexpected message".into()),
                Severity::Transient,
                true,
            ),
            (
                PgWireError::Server("something new".into()),
                Severity::Transient,
                true,
            ),
        ];
        for (e, severity, unclassified) in cases {
            let err = classify_wire("c", "streaming", e.clone());
            assert_eq!(err.severity, *severity, "{e}");
            assert_eq!(err.unclassified, *unclassified, "{e}");
            assert!(
                err.to_string().starts_with("connector c: streaming: "),
                "{err}"
            );
        }
    }
}
