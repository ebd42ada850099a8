//! Decoder of the `pgoutput` logical replication messages (protocol version 1).
//!
//! Owns: bytes -> [`PgOutputMessage`]. Must not: interpret values (see `text_value`) or keep
//! state across messages (see `relations`). Malformed input is an error naming the message
//! kind and the byte offset; it never panics (fuzzed by `decode_never_panics`).
//!
//! Format reference: PostgreSQL documentation, "Logical Replication Message Formats".

use bytes::Bytes;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pgoutput {kind} message at byte {offset}: {reason}")]
pub struct DecodeError {
    pub kind: &'static str,
    pub offset: usize,
    pub reason: String,
}

/// One column of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    Null,
    /// An unchanged TOASTed value that the log does not repeat.
    UnchangedToast,
    Text(Bytes),
    Binary(Bytes),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key, or every column with REPLICA IDENTITY FULL).
    pub is_key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// `d` default, `n` nothing, `f` full, `i` index.
pub type ReplicaIdentity = u8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// `K`: only the replica identity's columns are set; the others are null.
    Key(Vec<TupleValue>),
    /// `O`: the whole old row (REPLICA IDENTITY FULL).
    Full(Vec<TupleValue>),
}

impl OldTuple {
    pub fn values(&self) -> &[TupleValue] {
        match self {
            OldTuple::Key(v) | OldTuple::Full(v) => v,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOutputMessage {
    Begin {
        final_lsn: u64,
        /// Microseconds since 2000-01-01.
        commit_time: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    },
    Origin {
        commit_lsn: u64,
        name: String,
    },
    Relation {
        oid: u32,
        namespace: String,
        name: String,
        replica_identity: ReplicaIdentity,
        columns: Vec<RelationColumn>,
    },
    Type {
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        relation: u32,
        new: Vec<TupleValue>,
    },
    Update {
        relation: u32,
        old: Option<OldTuple>,
        new: Vec<TupleValue>,
    },
    Delete {
        relation: u32,
        old: OldTuple,
    },
    Truncate {
        cascade: bool,
        restart_identity: bool,
        relations: Vec<u32>,
    },
    Message {
        transactional: bool,
        lsn: u64,
        prefix: String,
        content: Bytes,
    },
}

struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
    kind: &'static str,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            kind: self.kind,
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| {
                self.err(format!(
                    "needs {n} more bytes, {} left",
                    self.data.len().saturating_sub(self.pos)
                ))
            })?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(self.i32()? as u32)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(self.i64()? as u64)
    }

    fn cstring(&mut self) -> Result<String, DecodeError> {
        let rest = &self.data[self.pos..];
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| self.err("string without terminating NUL"))?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|e| self.err(format!("string is not UTF-8: {e}")))?
            .to_string();
        self.pos += nul + 1;
        Ok(s)
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.data.slice(start..start + n))
    }

    fn tuple(&mut self) -> Result<Vec<TupleValue>, DecodeError> {
        let n = self.i16()?;
        if n < 0 {
            return Err(self.err(format!("negative column count {n}")));
        }
        let mut values = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let v = match self.u8()? {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::UnchangedToast,
                tag @ (b't' | b'b') => {
                    let len = self.i32()?;
                    if len < 0 {
                        return Err(self.err(format!("negative value length {len}")));
                    }
                    let b = self.bytes(len as usize)?;
                    if tag == b't' {
                        TupleValue::Text(b)
                    } else {
                        TupleValue::Binary(b)
                    }
                }
                other => return Err(self.err(format!("unknown tuple value kind 0x{other:02x}"))),
            };
            values.push(v);
        }
        Ok(values)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.data.len() {
            return Err(self.err(format!("{} trailing bytes", self.data.len() - self.pos)));
        }
        Ok(())
    }
}

fn kind_name(tag: u8) -> &'static str {
    match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'O' => "Origin",
        b'R' => "Relation",
        b'Y' => "Type",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'M' => "Message",
        _ => "unknown",
    }
}

/// Decodes one pgoutput message (the payload of one XLogData).
pub fn decode(data: &Bytes) -> Result<PgOutputMessage, DecodeError> {
    let Some(&tag) = data.first() else {
        return Err(DecodeError {
            kind: "empty",
            offset: 0,
            reason: "no bytes".into(),
        });
    };
    let mut c = Cursor {
        data,
        pos: 1,
        kind: kind_name(tag),
    };
    let msg = match tag {
        b'B' => PgOutputMessage::Begin {
            final_lsn: c.u64()?,
            commit_time: c.i64()?,
            xid: c.u32()?,
        },
        b'C' => PgOutputMessage::Commit {
            flags: c.u8()?,
            commit_lsn: c.u64()?,
            end_lsn: c.u64()?,
            commit_time: c.i64()?,
        },
        b'O' => PgOutputMessage::Origin {
            commit_lsn: c.u64()?,
            name: c.cstring()?,
        },
        b'R' => {
            let oid = c.u32()?;
            let namespace = c.cstring()?;
            let name = c.cstring()?;
            let replica_identity = c.u8()?;
            let n = c.i16()?;
            if n < 0 {
                return Err(c.err(format!("negative column count {n}")));
            }
            let mut columns = Vec::with_capacity(n as usize);
            for _ in 0..n {
                columns.push(RelationColumn {
                    is_key: c.u8()? & 1 == 1,
                    name: c.cstring()?,
                    type_oid: c.u32()?,
                    type_modifier: c.i32()?,
                });
            }
            PgOutputMessage::Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            }
        }
        b'Y' => PgOutputMessage::Type {
            oid: c.u32()?,
            namespace: c.cstring()?,
            name: c.cstring()?,
        },
        b'I' => {
            let relation = c.u32()?;
            match c.u8()? {
                b'N' => {}
                other => return Err(c.err(format!("expected 'N', found 0x{other:02x}"))),
            }
            PgOutputMessage::Insert {
                relation,
                new: c.tuple()?,
            }
        }
        b'U' => {
            let relation = c.u32()?;
            let (old, marker) = match c.u8()? {
                b'K' => (Some(OldTuple::Key(c.tuple()?)), c.u8()?),
                b'O' => (Some(OldTuple::Full(c.tuple()?)), c.u8()?),
                other => (None, other),
            };
            if marker != b'N' {
                return Err(c.err(format!("expected 'N', found 0x{marker:02x}")));
            }
            PgOutputMessage::Update {
                relation,
                old,
                new: c.tuple()?,
            }
        }
        b'D' => {
            let relation = c.u32()?;
            let old = match c.u8()? {
                b'K' => OldTuple::Key(c.tuple()?),
                b'O' => OldTuple::Full(c.tuple()?),
                other => return Err(c.err(format!("expected 'K' or 'O', found 0x{other:02x}"))),
            };
            PgOutputMessage::Delete { relation, old }
        }
        b'T' => {
            let n = c.i32()?;
            if n < 0 {
                return Err(c.err(format!("negative relation count {n}")));
            }
            let options = c.u8()?;
            let mut relations = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                relations.push(c.u32()?);
            }
            PgOutputMessage::Truncate {
                cascade: options & 1 != 0,
                restart_identity: options & 2 != 0,
                relations,
            }
        }
        b'M' => {
            let transactional = c.u8()? & 1 == 1;
            let lsn = c.u64()?;
            let prefix = c.cstring()?;
            let len = c.i32()?;
            if len < 0 {
                return Err(c.err(format!("negative content length {len}")));
            }
            PgOutputMessage::Message {
                transactional,
                lsn,
                prefix,
                content: c.bytes(len as usize)?,
            }
        }
        other => {
            return Err(DecodeError {
                kind: "unknown",
                offset: 0,
                reason: format!("unknown message type 0x{other:02x}"),
            })
        }
    };
    c.finish()?;
    Ok(msg)
}

/// Formats an LSN the way PostgreSQL does (`16/B374D848`). Written digit by digit: a
/// checkpoint's position carries one per transaction, and `format!` costs several times more.
pub fn format_lsn(lsn: u64) -> String {
    let mut out = String::with_capacity(17);
    push_hex(&mut out, lsn >> 32);
    out.push('/');
    push_hex(&mut out, lsn & 0xffff_ffff);
    out
}

/// Appends `v` in upper-case hexadecimal without leading zeros (`0` for zero).
fn push_hex(out: &mut String, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut shift = (60 - v.leading_zeros().min(60) / 4 * 4) as i32;
    while shift >= 0 {
        out.push(char::from(DIGITS[((v >> shift) & 0xf) as usize]));
        shift -= 4;
    }
}

/// An LSN shown as PostgreSQL writes it, formatted only when displayed (an error's context on
/// the per-change path costs nothing until an error is written).
#[derive(Debug, Clone, Copy)]
pub struct Lsn(pub u64);

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// Parses PostgreSQL's LSN text (`16/B374D848`).
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    if hi > u64::from(u32::MAX) || lo > u64::from(u32::MAX) {
        return None;
    }
    Some((hi << 32) | lo)
}

/// Converts a pgoutput timestamp (microseconds since 2000-01-01) to milliseconds since 1970.
pub fn pg_time_to_unix_ms(pg_micros: i64) -> i64 {
    pg_time_to_unix_micros(pg_micros) / 1000
}

/// A pgoutput timestamp (microseconds since 2000-01-01) as microseconds since the Unix epoch.
pub fn pg_time_to_unix_micros(pg_micros: i64) -> i64 {
    pg_micros.saturating_add(PG_EPOCH_OFFSET_MICROS)
}

#[cfg(test)]
pub(crate) mod encode {
    //! Builders of pgoutput bytes for tests, written from the documented format.
    use super::*;

    pub fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    pub fn tuple(out: &mut Vec<u8>, values: &[Option<&str>]) {
        out.extend_from_slice(&(values.len() as i16).to_be_bytes());
        for v in values {
            match v {
                None => out.push(b'n'),
                Some("\u{0}toast") => out.push(b'u'),
                Some(s) => {
                    out.push(b't');
                    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    pub fn relation(oid: u32, ns: &str, name: &str, cols: &[(bool, &str, u32)]) -> Bytes {
        let mut b = vec![b'R'];
        b.extend_from_slice(&oid.to_be_bytes());
        cstr(&mut b, ns);
        cstr(&mut b, name);
        b.push(b'd');
        b.extend_from_slice(&(cols.len() as i16).to_be_bytes());
        for (key, n, t) in cols {
            b.push(u8::from(*key));
            cstr(&mut b, n);
            b.extend_from_slice(&t.to_be_bytes());
            b.extend_from_slice(&(-1i32).to_be_bytes());
        }
        Bytes::from(b)
    }

    pub fn insert(oid: u32, values: &[Option<&str>]) -> Bytes {
        let mut b = vec![b'I'];
        b.extend_from_slice(&oid.to_be_bytes());
        b.push(b'N');
        tuple(&mut b, values);
        Bytes::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn begin_and_commit() {
        let mut b = vec![b'B'];
        b.extend_from_slice(&0x0000_0001_0000_0010u64.to_be_bytes());
        b.extend_from_slice(&1_000_000i64.to_be_bytes());
        b.extend_from_slice(&77u32.to_be_bytes());
        assert_eq!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Begin {
                final_lsn: 0x1_0000_0010,
                commit_time: 1_000_000,
                xid: 77
            }
        );
        let mut b = vec![b'C', 0];
        b.extend_from_slice(&5u64.to_be_bytes());
        b.extend_from_slice(&9u64.to_be_bytes());
        b.extend_from_slice(&3i64.to_be_bytes());
        assert_eq!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Commit {
                flags: 0,
                commit_lsn: 5,
                end_lsn: 9,
                commit_time: 3
            }
        );
    }

    #[test]
    fn relation_and_insert() {
        let r = relation(16384, "public", "t", &[(true, "id", 23), (false, "v", 25)]);
        match decode(&r).unwrap() {
            PgOutputMessage::Relation {
                oid,
                namespace,
                name,
                columns,
                replica_identity,
            } => {
                assert_eq!(
                    (oid, namespace.as_str(), name.as_str()),
                    (16384, "public", "t")
                );
                assert_eq!(replica_identity, b'd');
                assert_eq!(columns.len(), 2);
                assert!(columns[0].is_key && !columns[1].is_key);
                assert_eq!(columns[1].type_oid, 25);
            }
            other => panic!("{other:?}"),
        }
        let i = insert(16384, &[Some("1"), None, Some("\u{0}toast")]);
        assert_eq!(
            decode(&i).unwrap(),
            PgOutputMessage::Insert {
                relation: 16384,
                new: vec![
                    TupleValue::Text(Bytes::from_static(b"1")),
                    TupleValue::Null,
                    TupleValue::UnchangedToast
                ]
            }
        );
    }

    #[test]
    fn update_with_and_without_old() {
        let mut b = vec![b'U'];
        b.extend_from_slice(&1u32.to_be_bytes());
        b.push(b'O');
        tuple(&mut b, &[Some("1"), Some("a")]);
        b.push(b'N');
        tuple(&mut b, &[Some("1"), Some("b")]);
        match decode(&Bytes::from(b)).unwrap() {
            PgOutputMessage::Update { old, new, .. } => {
                assert!(matches!(old, Some(OldTuple::Full(ref v)) if v.len() == 2));
                assert_eq!(new[1], TupleValue::Text(Bytes::from_static(b"b")));
            }
            other => panic!("{other:?}"),
        }
        let mut b = vec![b'U'];
        b.extend_from_slice(&1u32.to_be_bytes());
        b.push(b'N');
        tuple(&mut b, &[Some("1")]);
        assert!(matches!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Update { old: None, .. }
        ));
    }

    #[test]
    fn delete_truncate_type_origin_message() {
        let mut b = vec![b'D'];
        b.extend_from_slice(&1u32.to_be_bytes());
        b.push(b'K');
        tuple(&mut b, &[Some("1"), None]);
        assert!(matches!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Delete {
                old: OldTuple::Key(_),
                ..
            }
        ));

        let mut b = vec![b'T'];
        b.extend_from_slice(&2i32.to_be_bytes());
        b.push(3);
        b.extend_from_slice(&10u32.to_be_bytes());
        b.extend_from_slice(&11u32.to_be_bytes());
        assert_eq!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Truncate {
                cascade: true,
                restart_identity: true,
                relations: vec![10, 11]
            }
        );

        let mut b = vec![b'Y'];
        b.extend_from_slice(&99u32.to_be_bytes());
        cstr(&mut b, "public");
        cstr(&mut b, "mood");
        assert!(matches!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Type { oid: 99, .. }
        ));

        let mut b = vec![b'O'];
        b.extend_from_slice(&7u64.to_be_bytes());
        cstr(&mut b, "node1");
        assert!(matches!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Origin { commit_lsn: 7, .. }
        ));

        let mut b = vec![b'M', 1];
        b.extend_from_slice(&8u64.to_be_bytes());
        cstr(&mut b, "tidemark");
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(b"abc");
        assert_eq!(
            decode(&Bytes::from(b)).unwrap(),
            PgOutputMessage::Message {
                transactional: true,
                lsn: 8,
                prefix: "tidemark".into(),
                content: Bytes::from_static(b"abc")
            }
        );
    }

    #[test]
    fn malformed_input_names_kind_and_offset() {
        let i = insert(1, &[Some("abc")]);
        let truncated = i.slice(0..i.len() - 1);
        let err = decode(&truncated).unwrap_err();
        assert_eq!(err.kind, "Insert");
        assert!(err.to_string().contains("at byte"), "{err}");
        let err = decode(&Bytes::from_static(b"Z")).unwrap_err();
        assert!(err.to_string().contains("0x5a"), "{err}");
        let mut trailing = i.to_vec();
        trailing.push(0);
        assert!(decode(&Bytes::from(trailing))
            .unwrap_err()
            .to_string()
            .contains("trailing"));
    }

    #[test]
    fn lsn_text() {
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("x"), None);
    }

    #[test]
    fn lsn_text_is_what_format_writes_and_parses_back() {
        for lsn in [
            0,
            1,
            0xF,
            0x10,
            0xFFFF_FFFF,
            0x1_0000_0000,
            0x16_B374_D848,
            u64::MAX,
        ] {
            let text = format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff);
            assert_eq!(format_lsn(lsn), text);
            assert_eq!(Lsn(lsn).to_string(), text);
            assert_eq!(parse_lsn(&text), Some(lsn));
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&Bytes::from(data));
        }

        #[test]
        fn decode_never_panics_on_mutated_inserts(pos in 0usize..40, byte in any::<u8>()) {
            let mut b = insert(5, &[Some("12"), None, Some("hello")]).to_vec();
            let p = pos % b.len();
            b[p] = byte;
            let _ = decode(&Bytes::from(b));
        }
    }
}
