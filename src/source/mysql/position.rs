//! The MySQL source's position, and why resuming from it loses nothing.
//!
//! # Correctness argument
//!
//! A position names a point *between two transactions* of the binlog: the binlog file and
//! the offset just after a transaction's commit event (XID, a `COMMIT` query, or the single
//! statement of a DDL group), plus, when GTIDs are on, the GTID state that includes that
//! transaction (MySQL: the executed GTID set; MariaDB: the last GTID per domain).
//!
//! 1. The reader emits a checkpoint with such a position only after it has emitted every
//!    change of that transaction and of all transactions before it in the binlog (the
//!    binlog is totally ordered and the reader handles events strictly in stream order).
//! 2. The pipeline commits a checkpoint only once the sink has acknowledged every message
//!    emitted before it (`offsets::tracker`). So a committed position never runs ahead of
//!    Kafka.
//! 3. On restart the reader asks the server for the binlog from the committed position:
//!    by GTID where GTIDs are on (the server sends every transaction not in the set / after
//!    the per-domain position, wherever it now lives in the files, so a restart after a
//!    server failover or a binlog rotation still resumes correctly), else by file and offset.
//!    Both name the first transaction not yet committed, so every change after the position
//!    is read again: nothing is lost; changes emitted but not committed before a crash are
//!    emitted again (at-least-once, keys make the duplicates idempotent on compacted topics).
//! 4. Resuming always starts at a transaction boundary, so the first events read are a
//!    GTID/BEGIN, then TABLE_MAP events: every rows event is preceded by the TABLE_MAP of its
//!    table within its own transaction, so no table map state needs to be stored.
//!
//! A connector without a stored position starts at the server's current position and
//! commits that position before it emits anything, so a restart before the first change
//! does not skip changes made while it was down.

use serde::{Deserialize, Serialize};

/// Where to resume reading the binlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlPosition {
    /// The binlog file.
    pub file: String,
    /// Offset of the first event after the last committed transaction.
    pub pos: u64,
    /// MariaDB: the GTID position (`domain-server-seq,...`) including that transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mariadb_gtid: Option<String>,
    /// MySQL: the executed GTID set including that transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysql_gtid_set: Option<String>,
    /// A snapshot in progress: where it resumes (see `crate::snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<crate::snapshot::SnapshotProgress>,
}

impl std::fmt::Display for MysqlPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if let Some(g) = &self.mariadb_gtid {
            write!(f, " (GTID {g})")?;
        }
        if let Some(g) = &self.mysql_gtid_set {
            write!(f, " (GTID set {g})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    #[test]
    fn round_trips_through_the_store_format() {
        let p = MysqlPosition {
            file: "mysql-bin.000003".into(),
            pos: 1234,
            mariadb_gtid: Some("0-1-55".into()),
            mysql_gtid_set: None,
            snapshot: None,
        };
        let stored = Position::encode(&p).unwrap();
        assert_eq!(stored.0["file"], "mysql-bin.000003");
        assert!(stored.0.get("mysql_gtid_set").is_none());
        assert_eq!(stored.decode::<MysqlPosition>().unwrap(), p);
        // A PostgreSQL position is not a MySQL one.
        let pg = Position(serde_json::json!({"lsn": "0/16B3748"}));
        assert!(pg.decode::<MysqlPosition>().is_err());
    }
}
