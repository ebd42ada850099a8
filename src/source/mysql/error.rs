//! What a MySQL/MariaDB error means for the connector: retry (transient) or stop (definite).
//!
//! Server errors are sorted by their code in [`server_code_severity`]; mysql_async's own
//! errors by kind in [`classify_mysql`]. Definite are what a retry cannot change: bad
//! credentials or missing privileges (1044, 1045, 1142, 1143, 1227, 1698), a missing
//! database, table or column (1049, 1146, 1054), bad SQL (1064), an unknown variable (1193), a
//! binlog that cannot be read from the requested position (1236: purged, or not a binlog
//! position), a TLS failure (a certificate that does not verify) and an authentication method
//! the client cannot do. Transient are lost or refused connections (2002, 2003, 2006, 2013,
//! 1158-1161, I/O), a server shutting down (1053, 1080), too many connections (1040), lock
//! waits and deadlocks (1205, 1213), killed connections or queries (1317, 1927) and statement
//! timeouts (1969, 3024). Any other code is retried as unclassified (see `crate::error`).

use mysql_async::{DriverError, IoError};

use crate::error::{Error, Severity};

/// The severity of server error `code`; `None` when tidemark does not know it.
pub fn server_code_severity(code: u16) -> Option<Severity> {
    use Severity::*;
    match code {
        1040 // too many connections
        | 1053 // server shutdown in progress
        | 1080 // forcing close of thread (shutdown)
        | 1158..=1161 // network read/write errors
        | 1205 // lock wait timeout
        | 1213 // deadlock
        | 1317 // query execution was interrupted
        | 1927 // connection killed (MariaDB)
        | 1969 // max_statement_time exceeded (MariaDB)
        | 3024 // max_execution_time exceeded (MySQL)
        | 2002 | 2003 | 2006 | 2013 // cannot connect, server gone, connection lost
        => Some(Transient),
        1044 // access denied to a database
        | 1045 // access denied (password)
        | 1049 // unknown database
        | 1054 // unknown column
        | 1064 // syntax error
        | 1142 | 1143 // table or column command denied
        | 1146 // no such table
        | 1193 // unknown system variable
        | 1227 // a privilege is missing (REPLICATION SLAVE, ...)
        | 1236 // the binlog cannot be read from the requested position (purged, ...)
        | 1251 // authentication protocol not supported by the client
        | 1406 // data too long for a column
        | 1698 // access denied (MariaDB, unix_socket)
        => Some(Definite),
        _ => None,
    }
}

/// Classifies a mysql_async error.
pub fn classify_mysql(context: impl Into<String>, e: mysql_async::Error) -> Error {
    use Severity::*;
    let severity = match &e {
        mysql_async::Error::Io(IoError::Io(_)) => Some(Transient),
        mysql_async::Error::Io(IoError::Tls(_)) => Some(Definite),
        mysql_async::Error::Server(s) => server_code_severity(s.code),
        mysql_async::Error::Url(_) => Some(Definite),
        mysql_async::Error::Driver(d) => match d {
            DriverError::ConnectionClosed | DriverError::PoolDisconnected => Some(Transient),
            DriverError::UnknownAuthPlugin { .. }
            | DriverError::MysqlOldPasswordDisabled
            | DriverError::CleartextPluginDisabled
            | DriverError::NoClientSslFlagFromServer
            | DriverError::CantParseServerVersion { .. } => Some(Definite),
            _ => None,
        },
        mysql_async::Error::Other(_) => None,
    };
    let context = context.into();
    match severity {
        Some(s) => Error::new(s, context),
        None => Error::unclassified(context),
    }
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: format!("error {code}"),
            state: "HY000".into(),
        })
    }

    #[test]
    fn server_codes_are_sorted_by_what_a_retry_can_change() {
        use Severity::*;
        let table: &[(u16, Option<Severity>, &str)] = &[
            (2013, Some(Transient), "lost connection during query"),
            (2006, Some(Transient), "server has gone away"),
            (2003, Some(Transient), "cannot connect"),
            (1040, Some(Transient), "too many connections"),
            (1053, Some(Transient), "shutdown in progress"),
            (1205, Some(Transient), "lock wait timeout"),
            (1213, Some(Transient), "deadlock"),
            (1927, Some(Transient), "connection killed"),
            (1159, Some(Transient), "net read timeout"),
            (1236, Some(Definite), "binlog purged"),
            (1045, Some(Definite), "access denied"),
            (1227, Some(Definite), "missing privilege"),
            (1146, Some(Definite), "no such table"),
            (1054, Some(Definite), "unknown column"),
            (1049, Some(Definite), "unknown database"),
            (1064, Some(Definite), "syntax error"),
            (1105, None, "unknown error"),
            (4000, None, "a code tidemark does not know"),
        ];
        for (code, want, what) in table {
            assert_eq!(server_code_severity(*code), *want, "{code} ({what})");
            let err = classify_mysql("ctx", server(*code));
            assert_eq!(err.severity, want.unwrap_or(Transient), "{code} ({what})");
            assert_eq!(err.unclassified, want.is_none(), "{code} ({what})");
        }
    }

    #[test]
    fn driver_errors_by_kind() {
        let io = mysql_async::Error::Io(IoError::Io(std::io::Error::other("reset")));
        assert_eq!(classify_mysql("c", io).severity, Severity::Transient);
        let closed = mysql_async::Error::Driver(DriverError::ConnectionClosed);
        let e = classify_mysql("c", closed);
        assert!(e.is_transient() && !e.unclassified);
        let plugin =
            mysql_async::Error::Driver(DriverError::UnknownAuthPlugin { name: "x".into() });
        assert_eq!(classify_mysql("c", plugin).severity, Severity::Definite);
        let odd = mysql_async::Error::Driver(DriverError::PacketOutOfOrder);
        let e = classify_mysql("reading", odd);
        assert!(e.is_transient() && e.unclassified);
        assert!(e.to_string().starts_with("reading: "), "{e}");
    }
}
