//! The MySQL side of the source watcher (`crate::source::backlog`): `SHOW BINARY LOGS`
//! lists the server's binlog files with their sizes (the last one's size is the current
//! write position), from which the bytes after the connector's committed position follow.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::error::classify_mysql;
use super::position::MysqlPosition;
use crate::config::ConnectorConfig;
use crate::error::Result;
use crate::event::{now_ms, Position};
use crate::status::Backlog;

pub struct Probe {
    conn: Conn,
    connector: String,
}

impl Probe {
    pub async fn connect(cfg: &ConnectorConfig) -> Result<Self> {
        Ok(Self {
            conn: super::setup::connect(cfg).await?,
            connector: cfg.name.clone(),
        })
    }

    /// One reading; `committed`: the connector's committed position, if any.
    pub async fn read(&mut self, committed: Option<&Position>) -> Result<Backlog> {
        let rows: Vec<mysql_async::Row> =
            self.conn.query("SHOW BINARY LOGS").await.map_err(|e| {
                classify_mysql(format!("connector {}: SHOW BINARY LOGS", self.connector), e)
            })?;
        let files: Vec<(String, u64)> = rows
            .into_iter()
            .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
            .collect();
        let committed = committed.and_then(|p| p.decode::<MysqlPosition>().ok());
        Ok(Backlog {
            server_position: files
                .last()
                .map_or_else(|| "unknown".to_string(), |(f, size)| format!("{f}:{size}")),
            behind_bytes: committed.and_then(|c| bytes_after(&files, &c.file, c.pos)),
            retained_bytes: None,
            at_ms: now_ms(),
        })
    }
}

/// The binlog bytes after offset `pos` of `file`, given the server's files in order with
/// their sizes; `None` when `file` is no longer on the server (purged).
fn bytes_after(files: &[(String, u64)], file: &str, pos: u64) -> Option<u64> {
    let at = files.iter().position(|(f, _)| f == file)?;
    let rest: u64 = files[at + 1..].iter().map(|(_, size)| size).sum();
    Some(files[at].1.saturating_sub(pos) + rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_after_sums_the_rest_of_the_file_and_every_later_one() {
        let files = vec![
            ("bin.000001".to_string(), 1000),
            ("bin.000002".to_string(), 500),
            ("bin.000003".to_string(), 300),
        ];
        assert_eq!(bytes_after(&files, "bin.000003", 300), Some(0));
        assert_eq!(bytes_after(&files, "bin.000002", 100), Some(400 + 300));
        assert_eq!(bytes_after(&files, "bin.000001", 4), Some(996 + 800));
        assert_eq!(bytes_after(&files, "bin.000000", 4), None, "purged");
    }
}
