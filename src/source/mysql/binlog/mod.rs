//! The binlog's formats, decoded from bytes and nothing else: the reader of its primitive
//! encodings ([`reader`]), TABLE_MAP metadata ([`table_map`]), rows events ([`rows`]) and each
//! column type ([`column_type`], [`row_value`], [`decimal`], [`temporal`], [`json_binary`],
//! [`json_diff`], [`charset`]), the other events ([`events`]: rotate, query, XID, MySQL and
//! MariaDB GTIDs, [`gtid`] sets), compressed events ([`mariadb_compressed`]) and MySQL's
//! transaction payloads ([`payload`]).
//!
//! Must not: hold state across events, talk to a server, or know the connector's
//! configuration; every decoder is unit-tested on byte vectors and fuzzed
//! (`source::mysql::robustness`).

pub mod charset;
pub mod column_type;
pub mod decimal;
pub mod events;
pub mod gtid;
pub mod json_binary;
pub mod json_diff;
pub mod mariadb_compressed;
pub mod payload;
pub mod reader;
pub mod row_value;
pub mod rows;
pub mod table_map;
pub mod temporal;
