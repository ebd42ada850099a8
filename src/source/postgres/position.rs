//! The PostgreSQL source position.
//!
//! Correctness argument. The position is the `end_lsn` of the last transaction whose events
//! were all acknowledged by the sink (or a keepalive's WAL position reached with no
//! transaction open). On restart tidemark asks for `START_REPLICATION ... LOGICAL <pos>`: the
//! server decodes from the slot's `restart_lsn` (which it keeps behind every transaction still
//! open at `pos`) and sends every transaction whose commit ends after `pos`. So:
//! - nothing is lost: a transaction not fully acknowledged ends after the stored position and
//!   is sent again, from its Begin;
//! - resumption is at a transaction boundary: positions are only ever commit ends;
//! - the slot's `confirmed_flush_lsn` is only advanced (standby status update) to positions
//!   already committed to the position store, so the server never frees WAL that a restart
//!   could still need, and frees it right after;
//! - positions only move forward, also across restarts: the server streams from the later of
//!   the requested position and the slot's `confirmed_flush_lsn`, but decodes from
//!   `restart_lsn`, and its keepalives carry the older positions it passes on the way (the one
//!   failure of this kind seen fits it: a keepalive's position at a flushed-WAL page boundary
//!   was stored and confirmed; after a restart an earlier commit's end, the last whole record
//!   before that boundary, was stored, and the next start found the slot past it). The
//!   stream's checkpoints are never older than where it resumes, so the stored position never
//!   falls behind the slot's confirmed one (a start refuses a slot past the stored position:
//!   something else moved it, and changes between the two would be lost).
//!
//! Duplicates are possible only after a crash: events acknowledged after the last commit of
//! the position are sent again.

use serde::{Deserialize, Serialize};

use super::pgoutput::{format_lsn, parse_lsn};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgPosition {
    /// The LSN to resume from, in PostgreSQL's text form (`0/16B3748`).
    #[serde(with = "lsn_text")]
    pub lsn: u64,
    /// A snapshot in progress: where it resumes (see `crate::snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<crate::snapshot::SnapshotProgress>,
}

mod lsn_text {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(lsn: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_lsn(*lsn))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        parse_lsn(&text).ok_or_else(|| serde::de::Error::custom(format!("bad LSN {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    #[test]
    fn round_trips_as_lsn_text() {
        let p = PgPosition {
            lsn: 0x1_0000_00A0,
            snapshot: None,
        };
        let enc = Position::encode(&p).unwrap();
        assert_eq!(enc.0, serde_json::json!({"lsn": "1/A0"}));
        assert_eq!(enc.decode::<PgPosition>().unwrap(), p);
        assert!(Position(serde_json::json!({"lsn": "zz"}))
            .decode::<PgPosition>()
            .is_err());
    }
}
