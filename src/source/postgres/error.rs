//! What a PostgreSQL error means for the connector: retry (transient) or stop (definite).
//!
//! Both clients (tokio-postgres for SQL, tidemark's own for the stream) report server
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

use super::replication::WireError;

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

/// Classifies an error of the replication stream: a server error by its SQLSTATE;
/// authentication and TLS failures definite (wrong password, wrong certificate); a lost
/// connection transient; a protocol surprise unclassified.
pub fn classify_wire(name: &str, what: &str, e: WireError) -> Error {
    let context = format!("connector {name}: {what}");
    let severity = match &e {
        WireError::Io(_) => Some(Severity::Transient),
        WireError::Auth(_) | WireError::Tls(_) => Some(Severity::Definite),
        WireError::Server(s) => sqlstate_severity(&s.code),
        WireError::Protocol(_) => None,
    };
    with_severity(severity, context).with_source(e)
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
    fn replication_stream_errors_are_sorted_by_kind_and_sqlstate() {
        use super::super::replication::ServerError;
        let server = |code: &str, message: &str| {
            WireError::Server(ServerError {
                severity: "ERROR".into(),
                code: code.into(),
                message: message.into(),
                ..Default::default()
            })
        };
        let cases: Vec<(WireError, Severity, bool)> = vec![
            (
                server("55006", "replication slot \"s\" is active for PID 7"),
                Severity::Transient,
                false,
            ),
            (
                server("42704", "publication \"p\" does not exist"),
                Severity::Definite,
                false,
            ),
            (
                server("57P01", "terminating connection"),
                Severity::Transient,
                false,
            ),
            (
                server("28P01", "password authentication failed"),
                Severity::Definite,
                false,
            ),
            (
                WireError::Auth("the server asks for method 7".into()),
                Severity::Definite,
                false,
            ),
            (
                WireError::Tls("invalid peer certificate".into()),
                Severity::Definite,
                false,
            ),
            (
                WireError::Io(std::io::Error::other("reset")),
                Severity::Transient,
                false,
            ),
            (
                WireError::Protocol("unexpected message".into()),
                Severity::Transient,
                true,
            ),
            (server("XX000", "something new"), Severity::Transient, true),
        ];
        for (e, severity, unclassified) in cases {
            let shown = e.to_string();
            let err = classify_wire("c", "streaming", e);
            assert_eq!(err.severity, severity, "{shown}");
            assert_eq!(err.unclassified, unclassified, "{shown}");
            assert!(
                err.to_string().starts_with("connector c: streaming: "),
                "{err}"
            );
        }
    }
}
