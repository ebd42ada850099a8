//! The non-row binlog events the MySQL source acts on, decoded from their bodies (after the
//! 19-byte common header, without the checksum).

use super::gtid::{uuid_text, MariaGtid};
use super::reader::{ByteReader, DecodeResult};

pub const QUERY: u8 = 2;
pub const ROTATE: u8 = 4;
pub const FORMAT_DESCRIPTION: u8 = 15;
pub const XID: u8 = 16;
pub const TABLE_MAP: u8 = 19;
pub const HEARTBEAT: u8 = 27;
pub const MYSQL_GTID: u8 = 33;
pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
pub const TRANSACTION_PAYLOAD: u8 = 40;
pub const HEARTBEAT_V2: u8 = 41;
pub const MYSQL_GTID_TAGGED: u8 = 42;
pub const MARIADB_GTID: u8 = 162;
pub const MARIADB_GTID_LIST: u8 = 163;
/// MariaDB's compressed query and rows events (`log_bin_compress=ON`).
pub const MARIADB_COMPRESSED: std::ops::RangeInclusive<u8> = 165..=171;

/// A ROTATE event: the next event is in `file` at `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotate {
    pub position: u64,
    pub file: String,
}

pub fn rotate(body: &[u8]) -> DecodeResult<Rotate> {
    let mut r = ByteReader::new(body);
    let position = r.u64_le("rotate position")?;
    let name = r.rest();
    if name.is_empty() {
        return Err(r.error("rotate event without a file name"));
    }
    let file = std::str::from_utf8(name)
        .map_err(|_| r.error("rotate file name is not UTF-8"))?
        .to_string();
    Ok(Rotate { position, file })
}

/// A QUERY event: the default database and the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub database: String,
    pub sql: String,
}

pub fn query(body: &[u8]) -> DecodeResult<Query> {
    let mut r = ByteReader::new(body);
    r.skip(4, "thread id")?;
    r.skip(4, "execution time")?;
    let db_len = r.u8("database name length")?;
    r.skip(2, "error code")?;
    let status_len = r.u16_le("status variables length")?;
    r.skip(usize::from(status_len), "status variables")?;
    let db = r.take(usize::from(db_len), "database name")?;
    r.skip(1, "database name terminator")?;
    Ok(Query {
        database: String::from_utf8_lossy(db).into_owned(),
        sql: String::from_utf8_lossy(r.rest()).into_owned(),
    })
}

/// What a QUERY statement means for transaction bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Begin,
    Commit,
    Rollback,
    /// Anything else: DDL and other statements logged as text; each is its own transaction.
    Other,
}

impl Query {
    pub fn kind(&self) -> QueryKind {
        let s = self.sql.trim().trim_end_matches(';').trim();
        if s.eq_ignore_ascii_case("BEGIN") || s.eq_ignore_ascii_case("START TRANSACTION") {
            QueryKind::Begin
        } else if s.eq_ignore_ascii_case("COMMIT") {
            QueryKind::Commit
        } else if s.eq_ignore_ascii_case("ROLLBACK") {
            QueryKind::Rollback
        } else {
            QueryKind::Other
        }
    }
}

/// A MariaDB GTID event: starts a transaction (or a standalone DDL statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaGtidEvent {
    pub gtid: MariaGtid,
    /// No BEGIN/COMMIT follow: the group is one statement (DDL).
    pub standalone: bool,
}

pub fn mariadb_gtid(body: &[u8], server_id: u32) -> DecodeResult<MariaGtidEvent> {
    let mut r = ByteReader::new(body);
    let seq = r.u64_le("GTID sequence number")?;
    let domain = r.u32_le("GTID domain")?;
    let flags = r.u8("GTID flags")?;
    Ok(MariaGtidEvent {
        gtid: MariaGtid {
            domain,
            server: server_id,
            seq,
        },
        standalone: flags & 0x01 != 0,
    })
}

/// A MariaDB GTID_LIST event: the GTID state at the start of a binlog file.
pub fn mariadb_gtid_list(body: &[u8]) -> DecodeResult<Vec<MariaGtid>> {
    let mut r = ByteReader::new(body);
    let count = r.u32_le("GTID list count")? & 0x0fff_ffff;
    if u64::from(count) * 16 > r.remaining() as u64 {
        return Err(r.error(format!("{count} GTIDs cannot fit")));
    }
    (0..count)
        .map(|_| {
            Ok(MariaGtid {
                domain: r.u32_le("domain")?,
                server: r.u32_le("server id")?,
                seq: r.u64_le("sequence number")?,
            })
        })
        .collect()
}

/// A MySQL GTID event: `uuid:gno` of the transaction that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlGtidEvent {
    pub uuid: String,
    pub gno: u64,
}

pub fn mysql_gtid(body: &[u8]) -> DecodeResult<MysqlGtidEvent> {
    let mut r = ByteReader::new(body);
    r.skip(1, "GTID flags")?;
    let sid: [u8; 16] = r
        .take(16, "GTID source id")?
        .try_into()
        .map_err(|_| r.error("GTID source id"))?;
    let gno = r.u64_le("GTID number")?;
    if gno == 0 || gno > i64::MAX as u64 {
        return Err(r.error(format!("GTID number {gno} is out of range")));
    }
    Ok(MysqlGtidEvent {
        uuid: uuid_text(&sid),
        gno,
    })
}

/// An XID event: the commit of an InnoDB transaction.
pub fn xid(body: &[u8]) -> DecodeResult<u64> {
    ByteReader::new(body).u64_le("XID")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_and_query() {
        let mut b = 4u64.to_le_bytes().to_vec();
        b.extend(b"mysql-bin.000002");
        assert_eq!(
            rotate(&b).unwrap(),
            Rotate {
                position: 4,
                file: "mysql-bin.000002".into()
            }
        );
        assert!(rotate(&b[..8]).is_err());

        let mut q = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 3, 0, 9, 9, 9];
        q.extend(b"db\0BEGIN");
        let parsed = query(&q).unwrap();
        assert_eq!(parsed.database, "db");
        assert_eq!(parsed.kind(), QueryKind::Begin);
        assert!(query(&q[..14]).is_err());
        let ddl = Query {
            database: "d".into(),
            sql: "ALTER TABLE t ADD c INT".into(),
        };
        assert_eq!(ddl.kind(), QueryKind::Other);
    }

    #[test]
    fn gtid_events() {
        let mut m = 100u64.to_le_bytes().to_vec();
        m.extend(2u32.to_le_bytes());
        m.push(0x01);
        let g = mariadb_gtid(&m, 7).unwrap();
        assert_eq!(g.gtid.to_string(), "2-7-100");
        assert!(g.standalone);

        let mut l = 2u32.to_le_bytes().to_vec();
        for (d, s, n) in [(0u32, 1u32, 5u64), (1, 2, 9)] {
            l.extend(d.to_le_bytes());
            l.extend(s.to_le_bytes());
            l.extend(n.to_le_bytes());
        }
        assert_eq!(mariadb_gtid_list(&l).unwrap().len(), 2);
        assert!(mariadb_gtid_list(&l[..20]).is_err());

        // MySQL GTID event: flags, SID, GNO, then logical timestamps we ignore.
        let mut e = vec![1];
        e.extend([
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ]);
        e.extend(23u64.to_le_bytes());
        e.extend([2, 0, 0, 0, 0, 0, 0, 0, 0]);
        let g = mysql_gtid(&e).unwrap();
        assert_eq!(
            format!("{}:{}", g.uuid, g.gno),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"
        );
        assert!(mysql_gtid(&e[..10]).is_err());
    }
}
