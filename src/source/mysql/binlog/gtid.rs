//! Global transaction ids of both flavours, and the "executed" state a replica resumes from.
//!
//! - MySQL: a GTID is `source_uuid:n`; the state is a GTID *set*, per UUID a list of
//!   intervals (`3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7`). Resuming sends the whole set
//!   (COM_BINLOG_DUMP_GTID) and the server skips every transaction in it.
//! - MariaDB: a GTID is `domain-server-seq`; the state is a *position*, the last GTID per
//!   replication domain (`0-1-100,1-2-7`). Resuming sets `@slave_connect_state` to it and the
//!   server starts after those transactions.

use std::collections::BTreeMap;
use std::fmt;

/// A MariaDB GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl MariaGtid {
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().splitn(3, '-');
        Some(Self {
            domain: it.next()?.parse().ok()?,
            server: it.next()?.parse().ok()?,
            seq: it.next()?.parse().ok()?,
        })
    }
}

/// MariaDB's replication position: the last GTID applied per domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaGtidPos(BTreeMap<u32, MariaGtid>);

impl MariaGtidPos {
    /// Parses `0-1-100,1-2-7` (empty: no transaction yet).
    pub fn parse(s: &str) -> Option<Self> {
        let mut map = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g = MariaGtid::parse(part)?;
            map.insert(g.domain, g);
        }
        Some(Self(map))
    }

    pub fn apply(&mut self, g: MariaGtid) {
        self.0.insert(g.domain, g);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for MariaGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.values().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// A MySQL GTID set: per source UUID (lower-case text), sorted disjoint intervals
/// `[start, end]` (inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlGtidSet(BTreeMap<String, Vec<(u64, u64)>>);

impl MysqlGtidSet {
    /// Parses `uuid:1-5:7,uuid2:1-3` (whitespace and newlines allowed, as `gtid_executed`
    /// prints it).
    pub fn parse(s: &str) -> Option<Self> {
        let mut set = Self::default();
        let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        for part in cleaned.split(',').filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let uuid = it.next()?.to_ascii_lowercase();
            if uuid.len() != 36 || uuid.chars().filter(|c| *c == '-').count() != 4 {
                return None;
            }
            for interval in it {
                let (a, b) = match interval.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let n = interval.parse().ok()?;
                        (n, n)
                    }
                };
                if a == 0 || b < a {
                    return None;
                }
                set.add_range(&uuid, a, b);
            }
        }
        Some(set)
    }

    fn add_range(&mut self, uuid: &str, a: u64, b: u64) {
        let list = self.0.entry(uuid.to_string()).or_default();
        list.push((a, b));
        list.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(list.len());
        for (s, e) in list.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *list = merged;
    }

    /// Adds transaction `n` of `uuid`.
    pub fn add(&mut self, uuid: &str, n: u64) {
        self.add_range(uuid, n, n);
    }

    pub fn contains(&self, uuid: &str, n: u64) -> bool {
        self.0
            .get(uuid)
            .is_some_and(|l| l.iter().any(|(a, b)| (*a..=*b).contains(&n)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Per UUID the intervals, for building the dump request.
    pub fn intervals(&self) -> impl Iterator<Item = (&str, &[(u64, u64)])> {
        self.0.iter().map(|(u, l)| (u.as_str(), l.as_slice()))
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (uuid, list) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(uuid)?;
            for (a, b) in list {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

/// Formats a 16-byte UUID as text.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mariadb_positions() {
        let mut p = MariaGtidPos::parse("0-1-100, 2-5-7").unwrap();
        p.apply(MariaGtid {
            domain: 0,
            server: 2,
            seq: 101,
        });
        p.apply(MariaGtid {
            domain: 1,
            server: 1,
            seq: 1,
        });
        assert_eq!(p.to_string(), "0-2-101,1-1-1,2-5-7");
        assert!(MariaGtidPos::parse("").unwrap().is_empty());
        assert!(MariaGtidPos::parse("0-1").is_none());
    }

    #[test]
    fn mysql_sets_merge_and_print() {
        let mut s = MysqlGtidSet::parse(&format!(
            "{U}:1-5:7,\n{}:3",
            U.to_uppercase().replace("3E11", "4e11")
        ))
        .unwrap();
        s.add(U, 6);
        assert!(s.contains(U, 7) && s.contains(U, 1) && !s.contains(U, 8));
        assert!(s.to_string().starts_with(&format!("{U}:1-7")), "{s}");
        s.add(U, 9);
        assert!(s.to_string().contains(&format!("{U}:1-7:9")), "{s}");
        assert!(MysqlGtidSet::parse("nope:1").is_none());
        assert!(MysqlGtidSet::parse(&format!("{U}:5-1")).is_none());
        let round = MysqlGtidSet::parse(&s.to_string()).unwrap();
        assert_eq!(round, s);
    }

    #[test]
    fn uuid_from_bytes() {
        let b = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        assert_eq!(uuid_text(&b), U);
    }
}
