//! The Debezium JSON envelope.
//!
//! Key: a JSON object of the key columns (`{"id": 1}`); `{}` for a truncate (so compacted
//! topics, which refuse null keys, accept it). Value: `{"before", "after", "source", "op",
//! "ts_ms", "transaction"}` as Debezium writes it, so existing consumers work unchanged; a
//! tombstone has a null value.
//!
//! The envelope is written directly into the caller's buffer: fixed field names as literal
//! bytes, column names escaped once per table shape ([`TableNames`]), values through their
//! `Serialize`. Escaping every name of every message took ~8% of a replay's CPU.

use std::sync::Arc;

use super::debezium;
use crate::error::{Error, Result};
use crate::event::Message;
use crate::event::{ChangeEvent, SourceLocation, TableSchema};
use crate::router::{Body, Route, Routed};
use crate::value::Value;

/// One table shape's names as JSON, escaped once.
pub struct TableNames {
    /// `"column":` per column, in column order.
    columns: Vec<Box<[u8]>>,
    /// `"schema":"...","table":"..."`.
    schema_table: Box<[u8]>,
}

impl TableNames {
    pub fn new(schema: &TableSchema) -> Self {
        let columns = schema
            .columns
            .iter()
            .map(|c| {
                let mut b = Vec::with_capacity(c.name.len() + 3);
                push_str(&mut b, &c.name);
                b.push(b':');
                b.into_boxed_slice()
            })
            .collect();
        let mut schema_table = b"\"schema\":".to_vec();
        push_str(&mut schema_table, &schema.id.schema);
        schema_table.extend_from_slice(b",\"table\":");
        push_str(&mut schema_table, &schema.id.table);
        Self {
            columns,
            schema_table: schema_table.into_boxed_slice(),
        }
    }
}

/// The names of the tables an encoder has seen, by table shape (compared by pointer, so a
/// new shape after a DDL gets new names).
#[derive(Default)]
pub struct NameCache {
    last: Option<(Arc<TableSchema>, Arc<TableNames>)>,
    by_table: std::collections::HashMap<crate::event::TableId, (Arc<TableSchema>, Arc<TableNames>)>,
}

impl NameCache {
    pub fn get(&mut self, schema: &Arc<TableSchema>) -> Arc<TableNames> {
        if let Some((s, n)) = &self.last {
            if Arc::ptr_eq(s, schema) {
                return n.clone();
            }
        }
        let names = match self.by_table.get(&schema.id) {
            Some((s, n)) if Arc::ptr_eq(s, schema) => n.clone(),
            _ => {
                let n = Arc::new(TableNames::new(schema));
                self.by_table
                    .insert(schema.id.clone(), (schema.clone(), n.clone()));
                n
            }
        };
        self.last = Some((schema.clone(), names.clone()));
        names
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Most strings need no escape (names, numbers as text, dates): copied as they are.
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Whether JSON needs an escape in `s`: a control character, `"` or `\\` (what serde_json
/// escapes). Eight bytes at a time: a byte below `n` sets its high bit in
/// `(x - n * ONES) & !x & HIGH`, and no byte at or above `n` can (there is no borrow without a
/// byte below `n`); equality with `c` is a zero byte of `x ^ c * ONES`.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(n * ONES) & !x & HIGH != 0;
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        if below(x, 0x20)
            || below(x ^ (u64::from(b'"') * ONES), 1)
            || below(x ^ (u64::from(b'\\') * ONES), 1)
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn push_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// How column values are written where the formats differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// JSON columns as a string holding the JSON text (Kafka Connect's `io.debezium.data.Json`),
    /// instead of the JSON itself.
    pub json_as_text: bool,
    /// Unsigned 64-bit integers as Kafka Connect's `Decimal` (base64 of the big-endian two's
    /// complement, scale 0), which holds every value exactly where Connect's `int64` cannot.
    pub uint64_as_decimal: bool,
}

/// The big-endian two's complement bytes of `u`, as few as hold it (a leading zero byte when
/// the top bit is set, so the value stays positive).
pub fn decimal_bytes(u: u64) -> Vec<u8> {
    let bytes = u.to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut out = Vec::with_capacity(9);
    if bytes[first] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes[first..]);
    out
}

fn push_value(out: &mut Vec<u8>, v: &Value, style: Style) -> serde_json::Result<()> {
    match v {
        Value::Json(j) if style.json_as_text => {
            push_str(out, j.get());
            return Ok(());
        }
        Value::UInt(u) if style.uint64_as_decimal => {
            use base64::Engine as _;
            let text = base64::engine::general_purpose::STANDARD.encode(decimal_bytes(*u));
            push_str(out, &text);
            return Ok(());
        }
        // The common values directly, as `Value`'s `Serialize` writes them (the unit test
        // `direct_values_match_serde` holds the two together).
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => push_int(out, *i),
        Value::UInt(u) => push_int(out, *u),
        Value::Decimal(t) | Value::Text(t) | Value::Uuid(t) | Value::Enum(t) => push_str(out, t),
        Value::Date(_)
        | Value::Time(_)
        | Value::TimeTz { .. }
        | Value::Timestamp(_)
        | Value::TimestampTz(_)
        | Value::Interval { .. } => {
            // ASCII with nothing to escape: written in place.
            out.push(b'"');
            crate::value::render_text_bytes(v, out);
            out.push(b'"');
        }
        _ => return serde_json::to_writer(&mut *out, v),
    }
    Ok(())
}

/// Why a message could not be written.
#[derive(Debug)]
enum WriteError {
    Json(serde_json::Error),
    /// A value its `debezium`-profile type cannot hold (a validation fault).
    Misfit(String),
}

impl From<serde_json::Error> for WriteError {
    fn from(e: serde_json::Error) -> Self {
        WriteError::Json(e)
    }
}

/// A route's `debezium`-profile column types, when it is in that profile.
#[derive(Clone, Copy)]
struct Profile<'a> {
    route: &'a Route,
    columns: Option<&'a debezium::Columns>,
}

impl Profile<'_> {
    fn debezium(&self) -> bool {
        self.columns.is_some()
    }

    /// Writes column `i`'s value `v`.
    fn push(&self, out: &mut Vec<u8>, i: usize, v: &Value, style: Style) -> Result<(), WriteError> {
        match self.columns {
            None => Ok(push_value(out, v, style)?),
            Some(columns) => {
                let c = columns
                    .convert(self.route, i, v)
                    .map_err(WriteError::Misfit)?;
                debezium::json::write_value(out, &columns.types[i], &c);
                Ok(())
            }
        }
    }
}

fn push_row(
    out: &mut Vec<u8>,
    names: &TableNames,
    row: &[Value],
    style: Style,
    profile: Profile<'_>,
) -> Result<(), WriteError> {
    out.push(b'{');
    for (i, (name, v)) in names.columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name);
        profile.push(out, i, v, style)?;
    }
    out.push(b'}');
    Ok(())
}

fn push_source(out: &mut Vec<u8>, e: &ChangeEvent, names: &TableNames, debezium: bool) {
    let src = &e.source;
    out.extend_from_slice(
        concat!(
            "{\"version\":\"",
            env!("CARGO_PKG_VERSION"),
            "\",\"connector\":"
        )
        .as_bytes(),
    );
    push_str(out, src.connector);
    out.extend_from_slice(b",\"name\":");
    push_str(out, &src.name);
    out.extend_from_slice(b",\"ts_ms\":");
    push_int(out, src.ts_ms);
    if debezium {
        out.extend_from_slice(b",\"snapshot\":\"");
        out.extend_from_slice(src.snapshot.debezium().as_bytes());
        out.extend_from_slice(b"\",\"db\":");
    } else if src.snapshot.is_snapshot() {
        out.extend_from_slice(b",\"snapshot\":\"true\",\"db\":");
    } else {
        out.extend_from_slice(b",\"snapshot\":\"false\",\"db\":");
    }
    push_str(out, &src.db);
    if debezium {
        out.extend_from_slice(b",\"sequence\":");
        match &src.location {
            SourceLocation::Postgres {
                lsn, commit_lsn, ..
            } => {
                // The string `["<commit_lsn>","<lsn>"]`, escaped, without an allocation.
                out.extend_from_slice(br#""[\""#);
                push_int(out, *commit_lsn);
                out.extend_from_slice(br#"\",\""#);
                push_int(out, *lsn);
                out.extend_from_slice(br#"\"]""#);
            }
            SourceLocation::Mysql { .. } => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"ts_us\":");
        push_int(out, src.ts_ms.saturating_mul(1_000));
        out.extend_from_slice(b",\"ts_ns\":");
        push_int(out, src.ts_ms.saturating_mul(1_000_000));
    }
    out.push(b',');
    out.extend_from_slice(&names.schema_table);
    match &src.location {
        SourceLocation::Postgres {
            lsn,
            commit_lsn,
            tx_id,
        } => {
            out.extend_from_slice(b",\"txId\":");
            push_int(out, *tx_id);
            out.extend_from_slice(b",\"lsn\":");
            push_int(out, *lsn);
            out.extend_from_slice(b",\"commit_lsn\":");
            push_int(out, *commit_lsn);
            if debezium {
                out.extend_from_slice(b",\"xmin\":null");
            }
        }
        SourceLocation::Mysql {
            file,
            pos,
            row,
            gtid,
            server_id,
        } => {
            out.extend_from_slice(b",\"server_id\":");
            push_int(out, *server_id);
            out.extend_from_slice(b",\"gtid\":");
            match gtid {
                Some(g) => push_str(out, g),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"file\":");
            push_str(out, file);
            out.extend_from_slice(b",\"pos\":");
            push_int(out, *pos);
            out.extend_from_slice(b",\"row\":");
            push_int(out, *row);
            if debezium {
                out.extend_from_slice(b",\"thread\":null,\"query\":null");
            }
        }
    }
    out.push(b'}');
}

fn push_envelope(
    out: &mut Vec<u8>,
    e: &ChangeEvent,
    names: &TableNames,
    now_ms: i64,
    style: Style,
    profile: Profile<'_>,
) -> Result<(), WriteError> {
    out.extend_from_slice(b"{\"before\":");
    match &e.before {
        Some(row) => push_row(out, names, row, style, profile)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"after\":");
    match &e.after {
        Some(row) => push_row(out, names, row, style, profile)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"source\":");
    push_source(out, e, names, profile.debezium());
    out.extend_from_slice(b",\"op\":\"");
    out.extend_from_slice(e.op.code().as_bytes());
    out.extend_from_slice(b"\",\"ts_ms\":");
    push_int(out, now_ms);
    if profile.debezium() {
        out.extend_from_slice(b",\"ts_us\":");
        push_int(out, now_ms.saturating_mul(1_000));
        out.extend_from_slice(b",\"ts_ns\":");
        push_int(out, now_ms.saturating_mul(1_000_000));
    }
    out.extend_from_slice(b",\"transaction\":");
    match &e.transaction {
        Some(t) => {
            out.extend_from_slice(b"{\"id\":");
            push_str(out, &t.id);
            out.extend_from_slice(b",\"total_order\":");
            push_int(out, t.total_order);
            out.extend_from_slice(b",\"data_collection_order\":");
            push_int(out, t.data_collection_order);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(())
}

/// Writes the key object of the key columns `columns` with `values` (`{}` when `None`),
/// the table first when the topic carries several (`"__table": "<schema>.<table>"`).
fn push_key(
    out: &mut Vec<u8>,
    names: &TableNames,
    table: Option<&str>,
    values: Option<&[Value]>,
    style: Style,
    profile: Profile<'_>,
) -> Result<(), WriteError> {
    let columns = &profile.route.key_columns;
    out.push(b'{');
    if let Some(table) = table {
        push_str(out, crate::router::TABLE_KEY_FIELD);
        out.push(b':');
        push_str(out, table);
    }
    if let Some(values) = values {
        for (k, (i, v)) in columns.iter().zip(values).enumerate() {
            if k > 0 || table.is_some() {
                out.push(b',');
            }
            match names.columns.get(*i) {
                Some(name) => out.extend_from_slice(name),
                None => out.extend_from_slice(b"\"?\":"),
            }
            profile.push(out, *i, v, style)?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// Reusable buffers for the JSON encoding: one allocation per connector, not per message.
pub struct JsonEncoder {
    key: Vec<u8>,
    value: Vec<u8>,
    names: NameCache,
    style: Style,
    /// The source's connector name (`postgresql`, `mysql`): the `debezium` profile's types
    /// depend on it.
    source: &'static str,
    columns: debezium::ColumnsCache,
    /// The headers of a message that carries more than its route's (a key change's).
    headers: Vec<crate::event::Header>,
}

impl Default for JsonEncoder {
    fn default() -> Self {
        Self::new(Style::default(), "postgresql")
    }
}

impl JsonEncoder {
    /// Encodes one routed message; the result borrows this encoder until the next call.
    pub fn encode<'a>(&'a mut self, routed: &'a Routed, now_ms: i64) -> Result<Message<'a>> {
        let names = self.names.get(&routed.route.schema);
        let columns = match routed.body {
            Body::Outbox { .. } => None,
            _ => self.columns.get(&routed.route, self.source),
        };
        let Self {
            key,
            value,
            style,
            headers,
            ..
        } = self;
        let mut m = encode_into(
            routed,
            &names,
            now_ms,
            *style,
            columns.as_deref(),
            key,
            value,
        )?;
        if let Some(columns) = &columns {
            if let Some(h) = key_change_header(routed, &names, columns, *style)? {
                headers.clear();
                headers.extend(routed.headers.iter().cloned());
                headers.push(h);
                m.headers = headers;
            }
        }
        Ok(m)
    }

    /// The source's connector name this encoder was made for.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// An encoder of a `source` connector's messages that writes values in `style`.
    pub fn new(style: Style, source: &'static str) -> Self {
        Self {
            key: Vec::new(),
            value: Vec::new(),
            names: NameCache::default(),
            style,
            source,
            columns: debezium::ColumnsCache::default(),
            headers: Vec::new(),
        }
    }
}

/// Debezium's `__debezium.newkey` (on the delete) or `__debezium.oldkey` (on the create) header
/// of a message that is half of an update that changed the key: the other key as the JSON
/// object of its columns, in the `debezium` profile's values (`None` for other messages).
pub fn key_change_header(
    routed: &Routed,
    names: &TableNames,
    columns: &debezium::Columns,
    style: Style,
) -> Result<Option<crate::event::Header>> {
    let (Some(other), Some(event)) = (&routed.key_change, routed.change()) else {
        return Ok(None);
    };
    let name = match event.op {
        crate::event::Op::Delete => "__debezium.newkey",
        _ => "__debezium.oldkey",
    };
    let profile = Profile {
        route: &routed.route,
        columns: Some(columns),
    };
    let mut value = Vec::new();
    push_key(
        &mut value,
        names,
        routed.route.table_in_key.as_deref(),
        Some(other),
        style,
        profile,
    )
    .map_err(|e| {
        let e = match e {
            WriteError::Json(e) => e.to_string(),
            WriteError::Misfit(m) => m,
        };
        Error::definite(format!(
            "table {}: the {name} header: {e}",
            routed.route.schema.id
        ))
        .with_fault(crate::error::EventFault::Validation)
    })?;
    Ok(Some(crate::event::Header {
        name: name.into(),
        value: Some(value),
    }))
}

/// Encodes one routed message into `key` and `value` (cleared first). Returns the message,
/// borrowing them. `now_ms` is the envelope's processing time.
pub fn encode_into<'a>(
    routed: &'a Routed,
    names: &TableNames,
    now_ms: i64,
    style: Style,
    columns: Option<&debezium::Columns>,
    key: &'a mut Vec<u8>,
    value: &'a mut Vec<u8>,
) -> Result<Message<'a>> {
    let profile = Profile {
        route: &routed.route,
        columns,
    };
    let fail = |what: &str, e: WriteError| match e {
        WriteError::Json(e) => {
            Error::definite(format!("{what} of {}", routed.route.schema.id)).with_source(e)
        }
        WriteError::Misfit(m) => Error::definite(format!("table {}: {m}", routed.route.schema.id))
            .with_fault(crate::error::EventFault::Validation),
    };
    key.clear();
    value.clear();
    let table = &routed.route.schema.id;
    let (has_key, has_value, op) = match &routed.body {
        Body::Outbox {
            key: k, value: v, ..
        } => {
            if let Some(k) = k {
                key.extend_from_slice(k);
            }
            if let Some(v) = v {
                value.extend_from_slice(v);
            }
            (
                k.is_some(),
                v.is_some(),
                Some(crate::event::Op::Create.code()),
            )
        }
        Body::Rejected { reason, .. } => {
            return Err(Error::definite(format!(
                "a rejected change of {table} reached the encoder: {reason}"
            )))
        }
        body => {
            // A keyless table's messages have no key; a truncate's key is `{}` (null in the
            // debezium profile, as Debezium's).
            let keyless = routed.route.key_columns.is_empty() && routed.key.is_some();
            let null_truncate_key = profile.debezium() && routed.key.is_none();
            let has_key = !keyless && !null_truncate_key;
            if has_key {
                push_key(
                    key,
                    names,
                    routed.route.table_in_key.as_deref(),
                    routed.key.as_deref(),
                    style,
                    profile,
                )
                .map_err(|e| fail("encoding the key", e))?;
            }
            match body {
                Body::Change(event) => {
                    push_envelope(value, event, names, now_ms, style, profile)
                        .map_err(|e| fail("encoding a change", e))?;
                    (has_key, true, Some(event.op.code()))
                }
                _ => (has_key, false, None),
            }
        }
    };
    Ok(Message {
        topic: &routed.route.topic,
        key: has_key.then_some(key.as_slice()),
        value: has_value.then_some(value.as_slice()),
        event_time_ms: routed.event_time_ms,
        op,
        headers: &routed.headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ColumnDef, Op, SourceInfo, TableId, TransactionInfo};
    use crate::router::Route;
    use crate::value::{ColumnType, Value};
    use std::sync::Arc;

    proptest::proptest! {
        /// The word-at-a-time check agrees with the byte-at-a-time one on any bytes.
        #[test]
        fn needs_escape_finds_what_serde_escapes(s in proptest::collection::vec(
            proptest::prelude::prop_oneof![proptest::prelude::any::<u8>(), proptest::prelude::Just(b'"'), proptest::prelude::Just(b'\\'), 0u8..0x20, 0x20u8..0x7f],
            0..40,
        )) {
            let naive = s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escape(&s), naive);
        }
    }

    #[test]
    fn direct_values_match_serde() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::Int(0),
            Value::UInt(u64::MAX),
            Value::Decimal("-12.50".into()),
            Value::Text("plain".into()),
            Value::Text("quote \" backslash \\ tab \t newline \n nul \u{0} é ☃".into()),
            Value::Text(String::new()),
            Value::Uuid("6f1c0b1e-0000-4000-8000-000000000001".into()),
            Value::Enum("red".into()),
            Value::Date(-1),
            Value::Date(crate::value::DATE_INFINITY),
            Value::Time(86_399_999_999),
            Value::TimeTz {
                micros: 1,
                offset_seconds: -3600,
            },
            Value::Timestamp(-1),
            Value::TimestampTz(1_700_000_000_123_456),
            Value::Float64(0.1),
            Value::Float64(f64::NAN),
            Value::Float32(1.5),
        ];
        for v in &values {
            let mut direct = Vec::new();
            push_value(&mut direct, v, Style::default()).unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                serde_json::to_string(v).unwrap(),
                "{v:?}"
            );
        }
    }

    fn schema() -> Arc<TableSchema> {
        Arc::new(TableSchema {
            id: TableId::new("public", "t"),
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    column_type: ColumnType::Int64,
                    nullable: false,
                },
                ColumnDef {
                    name: "n".into(),
                    column_type: ColumnType::Decimal {
                        precision: None,
                        scale: None,
                    },
                    nullable: true,
                },
            ],
            primary_key: vec![0],
        })
    }

    fn routed(event: Option<ChangeEvent>, key: Option<Vec<Value>>) -> Routed {
        let table = event.as_ref().map_or_else(schema, |e| e.table.clone());
        Routed {
            route: Arc::new(Route {
                topic: Arc::from("tp"),
                key_columns: Arc::from(vec![0usize]),
                schema: table,
                table_in_key: None,
                format: crate::config::Format::Json,
                values: crate::config::Values::default(),
            }),
            key,
            body: event.map_or(Body::Tombstone, Body::Change),
            event_time_ms: 1234,
            headers: Vec::new(),
            key_change: None,
        }
    }

    fn change(op: Op) -> ChangeEvent {
        ChangeEvent {
            table: schema(),
            op,
            before: None,
            after: Some(vec![Value::Int(7), Value::Decimal("1.50".into())]),
            before_key_only: false,
            source: SourceInfo {
                connector: "postgresql",
                name: "demo".into(),
                db: "d".into(),
                ts_ms: 1234,
                snapshot: crate::event::SnapshotMark::No,
                location: SourceLocation::Postgres {
                    lsn: 10,
                    commit_lsn: 20,
                    tx_id: 5,
                },
            },
            transaction: Some(TransactionInfo {
                id: "5:20".into(),
                total_order: 1,
                data_collection_order: 1,
            }),
        }
    }

    #[test]
    fn envelope_shape() {
        let r = routed(Some(change(Op::Create)), Some(vec![Value::Int(7)]));
        let mut enc = JsonEncoder::default();
        let rec = enc.encode(&r, 99).unwrap();
        assert_eq!(rec.key, Some(&b"{\"id\":7}"[..]));
        let v: serde_json::Value = serde_json::from_slice(rec.value.unwrap()).unwrap();
        assert_eq!(v["before"], serde_json::Value::Null);
        assert_eq!(v["after"], serde_json::json!({"id": 7, "n": "1.50"}));
        assert_eq!(v["op"], "c");
        assert_eq!(v["ts_ms"], 99);
        assert_eq!(v["source"]["table"], "t");
        assert_eq!(v["source"]["lsn"], 10);
        assert_eq!(v["source"]["txId"], 5);
        assert_eq!(v["source"]["snapshot"], "false");
        assert_eq!(v["transaction"]["id"], "5:20");
        assert_eq!(rec.event_time_ms, 1234);
        assert_eq!(rec.op, Some("c"));
    }

    #[test]
    fn tombstone_has_key_and_no_value() {
        let r = routed(None, Some(vec![Value::Int(7)]));
        let mut enc = JsonEncoder::default();
        let rec = enc.encode(&r, 99).unwrap();
        assert_eq!(rec.key, Some(&b"{\"id\":7}"[..]));
        assert!(rec.value.is_none());
        assert_eq!(rec.event_time_ms, 1234);
        assert!(rec.op.is_none());
    }

    #[test]
    fn truncate_has_empty_object_key() {
        let mut e = change(Op::Truncate);
        e.after = None;
        let r = routed(Some(e), None);
        let mut enc = JsonEncoder::default();
        let rec = enc.encode(&r, 99).unwrap();
        assert_eq!(rec.key, Some(&b"{}"[..]));
        let v: serde_json::Value = serde_json::from_slice(rec.value.unwrap()).unwrap();
        assert_eq!(v["op"], "t");
    }

    /// The exact bytes, so a change of the writer cannot change what consumers parse: field
    /// order as Debezium's, compact, names escaped (a column name with a quote).
    #[test]
    fn exact_bytes_of_a_mysql_update() {
        let mut t = (*schema()).clone();
        t.columns[1].name = "n\"q".into();
        let t = Arc::new(t);
        let mut e = change(Op::Update);
        e.table = t.clone();
        e.before = Some(vec![Value::Int(7), Value::Null]);
        e.source.location = SourceLocation::Mysql {
            file: "mysql-bin.000001".into(),
            pos: 4,
            row: 1,
            gtid: Some("0-1-5".into()),
            server_id: 1,
        };
        e.source.connector = "mysql";
        let r = routed(Some(e), Some(vec![Value::Int(7)]));
        let mut enc = JsonEncoder::default();
        let rec = enc.encode(&r, 99).unwrap();
        assert_eq!(
            std::str::from_utf8(rec.key.unwrap()).unwrap(),
            r#"{"id":7}"#
        );
        let want = format!(
            concat!(
                r#"{{"before":{{"id":7,"n\"q":null}},"after":{{"id":7,"n\"q":"1.50"}},"#,
                r#""source":{{"version":"{}","connector":"mysql","name":"demo","ts_ms":1234,"#,
                r#""snapshot":"false","db":"d","schema":"public","table":"t","server_id":1,"#,
                r#""gtid":"0-1-5","file":"mysql-bin.000001","pos":4,"row":1}},"op":"u","ts_ms":99,"#,
                r#""transaction":{{"id":"5:20","total_order":1,"data_collection_order":1}}}}"#
            ),
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(std::str::from_utf8(rec.value.unwrap()).unwrap(), want);
    }

    #[test]
    fn a_shared_topic_key_names_the_table_and_outbox_bytes_pass_as_they_are() {
        let mut r = routed(Some(change(Op::Create)), Some(vec![Value::Int(7)]));
        Arc::make_mut(&mut r.route).table_in_key = Some(Arc::from("public.t"));
        let mut enc = JsonEncoder::default();
        let rec = enc.encode(&r, 99).unwrap();
        assert_eq!(
            std::str::from_utf8(rec.key.unwrap()).unwrap(),
            r#"{"__table":"public.t","id":7}"#
        );
        let tomb = routed(None, None);
        assert_eq!(enc.encode(&tomb, 99).unwrap().key, Some(&b"{}"[..]));
        let mut outbox = routed(None, None);
        outbox.body = Body::Outbox {
            key: Some(b"order-1".to_vec()),
            value: Some(br#"{"a": 1}"#.to_vec()),
            location: SourceLocation::Postgres {
                lsn: 1,
                commit_lsn: 1,
                tx_id: 1,
            },
        };
        outbox.headers = vec![crate::event::Header {
            name: "id".into(),
            value: Some(b"e1".to_vec()),
        }];
        let rec = enc.encode(&outbox, 99).unwrap();
        assert_eq!(rec.key, Some(&b"order-1"[..]));
        assert_eq!(rec.value, Some(&br#"{"a": 1}"#[..]));
        assert_eq!(rec.op, Some("c"));
        assert_eq!(rec.headers.len(), 1);
    }

    #[test]
    fn unsigned_64_bit_decimal_bytes() {
        assert_eq!(decimal_bytes(0), [0]);
        assert_eq!(decimal_bytes(127), [127]);
        assert_eq!(decimal_bytes(128), [0, 128]);
        assert_eq!(decimal_bytes(256), [1, 0]);
        assert_eq!(
            decimal_bytes(u64::MAX),
            [0, 255, 255, 255, 255, 255, 255, 255, 255]
        );
    }

    #[test]
    fn names_follow_a_new_table_shape() {
        let mut cache = NameCache::default();
        let a = schema();
        let first = cache.get(&a);
        assert!(Arc::ptr_eq(&first, &cache.get(&a)));
        let mut changed = (*a).clone();
        changed.columns[1].name = "m".into();
        let b = Arc::new(changed);
        assert_eq!(&*cache.get(&b).columns[1], &b"\"m\":"[..]);
        assert_eq!(&*cache.get(&a).columns[1], &b"\"n\":"[..]);
    }
}
