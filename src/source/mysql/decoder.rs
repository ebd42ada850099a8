//! Turns binlog events, in stream order, into source messages: row changes of the captured
//! tables, schema-change signals, and checkpoints at transaction boundaries.
//!
//! Owns the per-stream state: the current binlog file and offset, the open transaction, the
//! GTID state, and the TABLE_MAP cache. Pure (no I/O), so it is tested on byte vectors.
//! Must not: talk to the server (see `stream`), or buffer a transaction: each rows event is
//! decoded and emitted on its own, so memory stays bounded whatever the transaction size.

use std::collections::HashSet;
use std::sync::Arc;

use super::binlog::charset::{Charset, CharsetMap};
use super::binlog::column_type as t;
use super::binlog::events::{self, QueryKind};
use super::binlog::gtid::{MariaGtidPos, MysqlGtidSet};
use super::binlog::row_value::Notice;
use super::binlog::rows::{self, RowsKind};
use super::binlog::table_map::TableMap;
use super::position::MysqlPosition;
use super::setup::Flavor;
use super::signal_table::{self, SignalRow};
use crate::config::ConnectorConfig;
use crate::error::{Error, Result};
use crate::event::{
    ChangeEvent, ColumnDef, Op, Position, SourceInfo, SourceLocation, SourceMessage, TableId,
    TableSchema, TransactionInfo,
};
use crate::snapshot::driver::Driver;
use crate::snapshot::signal::{self, Signal};
use crate::value::ColumnType;

/// One binlog event: its common header fields and its body (without the checksum).
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    pub event_type: u8,
    pub timestamp: u32,
    pub server_id: u32,
    /// Offset just after this event in its file (0 for artificial events).
    pub log_pos: u64,
    pub size: u32,
    pub flags: u16,
    pub body: &'a [u8],
}

/// `LOG_EVENT_ARTIFICIAL_F`: made up by the server for the stream, not in the file.
const ARTIFICIAL: u16 = 0x20;

/// Event types that carry nothing tidemark needs (statement-based helpers, file markers,
/// annotations, MySQL transaction metadata).
const IGNORED: &[u8] = &[
    3,  // STOP
    5,  // INTVAR
    13, // RAND
    14, // USER_VAR
    events::FORMAT_DESCRIPTION,
    events::HEARTBEAT,
    events::HEARTBEAT_V2,
    29, // ROWS_QUERY
    events::MYSQL_ANONYMOUS_GTID,
    35,  // PREVIOUS_GTIDS
    36,  // TRANSACTION_CONTEXT
    37,  // VIEW_CHANGE
    160, // MariaDB ANNOTATE_ROWS
    161, // MariaDB BINLOG_CHECKPOINT
    events::MARIADB_GTID_LIST,
    164, // MariaDB START_ENCRYPTION
];

struct MappedTable {
    /// What the TABLE_MAP it was decoded from was (to skip re-decoding an identical one).
    seen: SeenMap,
    /// How its rows are decoded; `None` for a table that is not captured (its rows are skipped,
    /// so nothing of its map is kept).
    map: Option<TableMap>,
    /// The shape tidemark emits (or, for the signal table, reads); `None` when the table is
    /// not captured.
    schema: Option<Arc<TableSchema>>,
    /// The signal table: its rows are watermarks and signals, not changes.
    signal: bool,
    /// The database name for the envelope, shared by every event of the table.
    db: Arc<str>,
}

/// A TABLE_MAP body as kept: whole for the tables whose rows are decoded, a hash for the
/// others (a server with many tables does not cost their maps' bytes).
enum SeenMap {
    Body(Vec<u8>),
    Hash(u64),
}

impl SeenMap {
    fn of(body: &[u8], keep: bool) -> Self {
        if keep {
            SeenMap::Body(body.to_vec())
        } else {
            SeenMap::Hash(Self::hash(body))
        }
    }

    fn hash(body: &[u8]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        h.finish()
    }

    fn is(&self, body: &[u8]) -> bool {
        match self {
            SeenMap::Body(b) => b == body,
            SeenMap::Hash(h) => *h == Self::hash(body),
        }
    }
}

/// A TRANSACTION_PAYLOAD whose events are being read.
struct OpenPayload {
    stream: super::binlog::payload::PayloadStream,
    /// The payload event's place in the file, where its events stand.
    log_pos: u64,
    size: u32,
}

struct OpenTx {
    id: Arc<str>,
    events: u64,
    /// Events per table in this transaction (few tables per transaction: a short list keyed
    /// by the schema's address is cheaper than hashing names for every row).
    per_table: Vec<(usize, u64)>,
    /// A MariaDB standalone group (one DDL statement, no BEGIN/COMMIT).
    standalone: bool,
}

pub struct Decoder {
    cfg: Arc<ConnectorConfig>,
    name: Arc<str>,
    flavor: Flavor,
    charsets: CharsetMap,
    file: Arc<str>,
    /// Offset after the last event read.
    pos: u64,
    tx: Option<OpenTx>,
    /// GTID of the transaction being read, applied to the state at its commit.
    pending_maria: Option<super::binlog::gtid::MariaGtid>,
    pending_mysql: Option<(String, u64)>,
    maria_state: Option<MariaGtidPos>,
    mysql_state: Option<MysqlGtidSet>,
    /// By table id: looked up for every rows event (foldhash, not SipHash).
    tables: foldhash::HashMap<u64, MappedTable>,
    shapes: foldhash::HashMap<TableId, Arc<TableSchema>>,
    warned: HashSet<(TableId, usize, String)>,
    /// The GTID of the current transaction, for the envelope.
    current_gtid: Option<Arc<str>>,
    /// The TRANSACTION_PAYLOAD being read: the client library yields its events after it; each
    /// is checked against tidemark's own reading of the payload and decoded at the payload's
    /// place in the file, one at a time (memory does not grow with the transaction).
    payload: Option<OpenPayload>,
    /// The signal table (watermarks and signals).
    signal_table: TableId,
    /// The snapshot in progress: its bookkeeping sees every change and watermark in binlog
    /// order here; the stream loop reads its chunks (`super::snapshot`).
    pub snapshot: Option<Driver>,
    /// The last commit's checkpoint, not built yet (see [`Decoder::settle`]).
    deferred: Option<DeferredCheckpoint>,
}

/// A commit's checkpoint whose position is built only if no later commit of the same
/// hand-over replaces it: its placeholder's index in the hand-over, and the offset after the
/// commit. The rest of the position (file, GTID state) cannot change before it is built:
/// [`Decoder::settle`] runs before anything that changes them except a commit, which
/// defers a checkpoint of its own.
struct DeferredCheckpoint {
    index: usize,
    pos: u64,
}

impl Decoder {
    pub fn new(
        cfg: Arc<ConnectorConfig>,
        flavor: Flavor,
        charsets: CharsetMap,
        start: &MysqlPosition,
    ) -> Result<Self> {
        let maria_state = match &start.mariadb_gtid {
            Some(g) => Some(MariaGtidPos::parse(g).ok_or_else(|| {
                Error::definite(format!(
                    "connector {}: stored MariaDB GTID position `{g}` does not parse",
                    cfg.name
                ))
            })?),
            None => None,
        };
        let mysql_state = match &start.mysql_gtid_set {
            Some(g) => Some(MysqlGtidSet::parse(g).ok_or_else(|| {
                Error::definite(format!(
                    "connector {}: stored GTID set `{g}` does not parse",
                    cfg.name
                ))
            })?),
            None => None,
        };
        Ok(Self {
            name: Arc::from(cfg.name.as_str()),
            signal_table: super::settings(&cfg)?.signal_table.clone(),
            snapshot: None,
            cfg,
            flavor,
            charsets,
            file: Arc::from(start.file.as_str()),
            pos: start.pos,
            tx: None,
            pending_maria: None,
            pending_mysql: None,
            maria_state,
            mysql_state,
            tables: foldhash::HashMap::default(),
            shapes: foldhash::HashMap::default(),
            warned: HashSet::new(),
            current_gtid: None,
            payload: None,
            deferred: None,
        })
    }

    /// The position after the last complete transaction.
    pub fn position(&self) -> MysqlPosition {
        self.position_at(self.pos)
    }

    /// The position at offset `pos` of the current file, with the current GTID state.
    fn position_at(&self, pos: u64) -> MysqlPosition {
        MysqlPosition {
            file: self.file.to_string(),
            pos,
            mariadb_gtid: self.maria_state.as_ref().map(ToString::to_string),
            mysql_gtid_set: self.mysql_state.as_ref().map(ToString::to_string),
            snapshot: self.snapshot.as_ref().and_then(|d| d.progress().cloned()),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    fn at(&self, ev: &RawEvent<'_>) -> String {
        let start = ev.log_pos.saturating_sub(u64::from(ev.size));
        format!(
            "binlog {} at offset {start} (event type {})",
            self.file, ev.event_type
        )
    }

    fn bad(&self, ev: &RawEvent<'_>, e: super::binlog::reader::DecodeError) -> Error {
        Error::definite(format!(
            "connector {}: malformed event in {}: {e}",
            self.name,
            self.at(ev)
        ))
    }

    /// Whether the next event is expected to be one the client library re-yields from a
    /// transaction payload (it has no checksum of its own).
    pub fn expects_payload_echo(&self) -> bool {
        self.payload.is_some()
    }

    /// Handles one event and appends what it produces to `out`.
    pub fn handle(&mut self, ev: RawEvent<'_>, out: &mut Vec<SourceMessage>) -> Result<()> {
        let Some(payload) = self.payload.as_mut() else {
            return self.handle_event(ev, out);
        };
        // An event of the compressed transaction, as the client library yields it: it must be
        // the payload's next event; it stands at the payload's place in the file (a checkpoint
        // after its commit names the offset after the payload event).
        let next = payload.stream.next_event();
        let (log_pos, size) = (payload.log_pos, payload.size);
        let done = payload.stream.is_done();
        let expected = next.map_err(|e| self.bad(&ev, e))?;
        match expected {
            Some(e) if e.event_type == ev.event_type && e.body == ev.body => {}
            other => {
                return Err(Error::definite(format!(
                    "connector {}: after a compressed transaction the client library yielded event type {} \
                     instead of the payload's {} in {}",
                    self.name,
                    ev.event_type,
                    other.map_or("end".to_string(), |e| format!("event type {}", e.event_type)),
                    self.at(&ev)
                )));
            }
        }
        if done {
            self.payload = None;
        }
        self.handle_event(
            RawEvent {
                log_pos,
                size,
                flags: ev.flags & !ARTIFICIAL,
                ..ev
            },
            out,
        )
    }

    /// Handles one event (not one the client library re-yields from a payload).
    fn handle_event(&mut self, ev: RawEvent<'_>, out: &mut Vec<SourceMessage>) -> Result<()> {
        let artificial = ev.flags & ARTIFICIAL != 0 || ev.log_pos == 0;
        match ev.event_type {
            events::ROTATE => {
                let r = events::rotate(ev.body).map_err(|e| self.bad(&ev, e))?;
                // A deferred checkpoint names the file it was taken in.
                self.settle(out)?;
                let changed = *self.file != *r.file;
                self.file = Arc::from(r.file.as_str());
                self.pos = r.position;
                // Table ids are only valid within one file's transactions.
                self.tables.clear();
                if !artificial && changed && self.tx.is_none() {
                    self.checkpoint(out)?;
                }
                return Ok(());
            }
            events::TABLE_MAP => self.table_map(&ev, out)?,
            events::MARIADB_GTID => {
                let g = events::mariadb_gtid(ev.body, ev.server_id).map_err(|e| self.bad(&ev, e))?;
                if self.tx.is_some() {
                    return Err(Error::definite(format!(
                        "connector {}: GTID {} starts inside an open transaction in {}",
                        self.name, g.gtid, self.at(&ev)
                    )));
                }
                self.pending_maria = Some(g.gtid);
                let id: Arc<str> = Arc::from(g.gtid.to_string());
                self.current_gtid = Some(id.clone());
                self.tx = Some(OpenTx { id, events: 0, per_table: Vec::new(), standalone: g.standalone });
            }
            events::MYSQL_GTID => {
                let g = events::mysql_gtid(ev.body).map_err(|e| self.bad(&ev, e))?;
                self.current_gtid = Some(Arc::from(format!("{}:{}", g.uuid, g.gno)));
                self.pending_mysql = Some((g.uuid, g.gno));
            }
            events::QUERY => {
                let q = events::query(ev.body).map_err(|e| self.bad(&ev, e))?;
                match q.kind() {
                    QueryKind::Begin => {
                        if self.tx.is_none() {
                            let id: Arc<str> = self.current_gtid.clone().unwrap_or_else(|| {
                                Arc::from(format!("{}:{}", self.file, ev.log_pos.saturating_sub(u64::from(ev.size))))
                            });
                            self.tx = Some(OpenTx { id, events: 0, per_table: Vec::new(), standalone: false });
                        }
                    }
                    QueryKind::Commit | QueryKind::Rollback => self.commit(&ev, out)?,
                    QueryKind::Other => {
                        self.statement(&ev, &q, out)?;
                        let standalone = self.tx.as_ref().is_none_or(|t| t.standalone);
                        if standalone {
                            self.commit(&ev, out)?;
                        }
                    }
                }
            }
            events::XID => {
                events::xid(ev.body).map_err(|e| self.bad(&ev, e))?;
                self.commit(&ev, out)?;
            }
            events::TRANSACTION_PAYLOAD => {
                // Its events follow, one by one, from the client library (see `handle`).
                let stream =
                    super::binlog::payload::PayloadStream::open(ev.body).map_err(|e| self.bad(&ev, e))?;
                if !stream.is_done() {
                    self.payload = Some(OpenPayload {
                        stream,
                        log_pos: ev.log_pos,
                        size: ev.size,
                    });
                }
            }
            events::MYSQL_GTID_TAGGED => {
                return Err(Error::definite(format!(
                    "connector {}: {} carries a tagged GTID (MySQL 8.4), which tidemark does not track yet",
                    self.name, self.at(&ev)
                )))
            }
            26 => {
                return Err(Error::definite(format!(
                    "connector {}: the server logged an INCIDENT event at {}: changes may be missing from the binlog there; \
                     check the server's error log, then resume after it deliberately (re-snapshot the affected tables)",
                    self.name, self.at(&ev)
                )))
            }
            ty if events::MARIADB_COMPRESSED.contains(&ty) => {
                let plain = super::binlog::mariadb_compressed::uncompress(ty, ev.body).map_err(|e| self.bad(&ev, e))?;
                let event_type = super::binlog::mariadb_compressed::uncompressed_type(ty).unwrap_or(ty);
                return self.handle(RawEvent { event_type, body: &plain, ..ev }, out);
            }
            ty if RowsKind::of(ty).is_some() => self.rows(&ev, out)?,
            ty if IGNORED.contains(&ty) => {}
            other => {
                return Err(Error::definite(format!(
                    "connector {}: unknown event type {other} in {}",
                    self.name, self.at(&ev)
                )))
            }
        }
        // The format description the server sends when a stream starts mid-file carries its
        // own offset near the file's start: it must not move the position backwards.
        if !artificial && ev.event_type != events::FORMAT_DESCRIPTION {
            self.pos = ev.log_pos;
        }
        Ok(())
    }

    /// A checkpoint at the current position. Without a snapshot in progress it is deferred:
    /// a placeholder ([`SourceMessage::TransactionEnd`]) now, its position built by
    /// [`Decoder::settle`] unless a later commit of the same hand-over replaces it. The
    /// pipeline commits only the newest checkpoint of what it takes at once, so building one
    /// per commit (a position and its JSON for every single-row transaction of a backlog) was
    /// work for nothing. With a snapshot in progress the position carries the snapshot's
    /// progress, which watermarks change between commits: it is built at once.
    fn checkpoint(&mut self, out: &mut Vec<SourceMessage>) -> Result<()> {
        if self.snapshot.as_ref().is_some_and(|d| d.is_done()) {
            self.snapshot = None;
        }
        if self.snapshot.is_some() {
            self.settle(out)?;
            out.push(SourceMessage::Checkpoint(self.encode(self.pos)?));
            return Ok(());
        }
        // An earlier deferred checkpoint stays a placeholder: this one implies it.
        out.push(SourceMessage::TransactionEnd);
        self.deferred = Some(DeferredCheckpoint {
            index: out.len() - 1,
            pos: self.pos,
        });
        Ok(())
    }

    fn encode(&self, pos: u64) -> Result<Position> {
        Position::encode(&self.position_at(pos))
            .map_err(|e| Error::definite("encoding a MySQL position").with_source(e))
    }

    /// Builds the deferred checkpoint in its place in `out`, the hand-over it was deferred in.
    /// The stream loop calls it before it hands `out` over; the decoder calls it before it
    /// changes the file or the snapshot.
    pub fn settle(&mut self, out: &mut [SourceMessage]) -> Result<()> {
        let Some(deferred) = self.deferred.take() else {
            return Ok(());
        };
        let position = self.encode(deferred.pos)?;
        match out.get_mut(deferred.index) {
            Some(slot @ SourceMessage::TransactionEnd) => {
                *slot = SourceMessage::Checkpoint(position);
                Ok(())
            }
            _ => Err(Error::definite(format!(
                "connector {}: the checkpoint after {}:{} lost its place in the hand-over \
                 (the stream loop handed it over before settling it)",
                self.name, self.file, deferred.pos
            ))),
        }
    }

    fn commit(&mut self, ev: &RawEvent<'_>, out: &mut Vec<SourceMessage>) -> Result<()> {
        self.tx = None;
        if let Some(g) = self.pending_maria.take() {
            if let Some(state) = &mut self.maria_state {
                state.apply(g);
            }
        }
        if let Some((uuid, gno)) = self.pending_mysql.take() {
            if let Some(state) = &mut self.mysql_state {
                state.add(&uuid, gno);
            }
        }
        self.current_gtid = None;
        self.pos = ev.log_pos;
        self.checkpoint(out)
    }

    /// A statement logged as text. DDL changes tables (their next TABLE_MAP shows the new
    /// shape). DML logged as a statement cannot be captured: refuse it rather than lose it.
    fn statement(
        &mut self,
        ev: &RawEvent<'_>,
        q: &events::Query,
        out: &mut Vec<SourceMessage>,
    ) -> Result<()> {
        let sql = q.sql.trim_start();
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let lower = sql.to_ascii_lowercase();
        let touches = |id: &TableId| lower.contains(&id.table.to_ascii_lowercase());
        let captured: Vec<&TableId> = self
            .cfg
            .tables
            .iter()
            .map(|t| &t.id)
            .filter(|id| touches(id))
            .collect();
        if captured.is_empty() {
            return Ok(());
        }
        if matches!(
            first.as_str(),
            "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD"
        ) {
            return Err(Error::definite(format!(
                "connector {}: {} holds a statement-based change (`{}`) that may touch {}; \
                 tidemark reads row events only: set binlog_format=ROW on the server",
                self.name,
                self.at(ev),
                sql.chars().take(120).collect::<String>(),
                captured
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        tracing::info!(connector = %self.name, at = %self.at(ev), statement = %sql.chars().take(200).collect::<String>(),
            "DDL on a captured table; its next TABLE_MAP carries the new shape");
        if first == "TRUNCATE" {
            let Some(target) = truncate_target(sql, &q.database) else {
                return Ok(());
            };
            let Some(id) = self.cfg.table(&target).map(|t| t.id.clone()) else {
                return Ok(());
            };
            // The table's rows held by open snapshot chunks are stale now.
            if let Some(snapshot) = self.snapshot.as_mut() {
                snapshot.on_truncate(&id, None);
            }
            self.truncate_event(ev, id, out);
        }
        Ok(())
    }

    /// `op=t` for a captured table truncated by a statement, as the PostgreSQL source emits
    /// it (a consumer drops every row it holds for the table; a compacted topic still holds
    /// the old keys until each is deleted or overwritten: see the README).
    fn truncate_event(&mut self, ev: &RawEvent<'_>, id: TableId, out: &mut Vec<SourceMessage>) {
        let schema = self.shapes.get(&id).cloned().unwrap_or_else(|| {
            // No TABLE_MAP of it seen yet in this life: the event needs only its name.
            Arc::new(TableSchema {
                id: id.clone(),
                columns: Vec::new(),
                primary_key: Vec::new(),
            })
        });
        let tx_id: Arc<str> = self
            .tx
            .as_ref()
            .map(|t| t.id.clone())
            .or_else(|| self.current_gtid.clone())
            .unwrap_or_else(|| Arc::from(format!("{}:{}", self.file, self.pos)));
        let events = self.tx.as_mut().map_or(1, |t| {
            t.events += 1;
            t.events
        });
        out.push(SourceMessage::Change(ChangeEvent {
            table: schema,
            op: Op::Truncate,
            before: None,
            after: None,
            before_key_only: false,
            source: SourceInfo {
                connector: "mysql",
                name: self.name.clone(),
                db: Arc::from(id.schema.as_str()),
                ts_ms: i64::from(ev.timestamp) * 1000,
                snapshot: crate::event::SnapshotMark::No,
                location: SourceLocation::Mysql {
                    file: self.file.clone(),
                    pos: ev.log_pos.saturating_sub(u64::from(ev.size)),
                    row: 0,
                    gtid: self.current_gtid.clone(),
                    server_id: ev.server_id,
                },
            },
            transaction: Some(TransactionInfo {
                id: tx_id,
                total_order: events,
                data_collection_order: 1,
            }),
        }));
    }

    fn table_map(&mut self, ev: &RawEvent<'_>, out: &mut Vec<SourceMessage>) -> Result<()> {
        let table_id = super::binlog::reader::ByteReader::new(ev.body)
            .uint_le(6, "table id")
            .map_err(|e| self.bad(ev, e))?;
        if let Some(m) = self.tables.get(&table_id) {
            if m.seen.is(ev.body) {
                return Ok(());
            }
        }
        let map = TableMap::decode(ev.body, self.flavor == Flavor::MariaDb)
            .map_err(|e| self.bad(ev, e))?;
        let id = TableId::new(map.schema.clone(), map.table.clone());
        let signal = id == self.signal_table;
        let schema = match self.cfg.table(&id) {
            None if signal => Some(Arc::new(table_schema(&id, &map, &self.charsets))),
            None => None,
            Some(_) => {
                if !map.has_names {
                    return Err(Error::definite(format!(
                        "connector {}: the TABLE_MAP of {id} in {} has no column names: set binlog_row_metadata=FULL on the server",
                        self.name, self.at(ev)
                    )));
                }
                let schema = Arc::new(table_schema(&id, &map, &self.charsets));
                match self.shapes.get(&id) {
                    Some(prev)
                        if prev.columns != schema.columns
                            || prev.primary_key != schema.primary_key =>
                    {
                        out.push(SourceMessage::SchemaChange {
                            table: schema.clone(),
                            previous: Some(prev.clone()),
                        });
                    }
                    Some(_) => {}
                    None => {
                        tracing::debug!(connector = %self.name, table = %id, "first TABLE_MAP of a captured table")
                    }
                }
                self.shapes.insert(id, schema.clone());
                Some(schema)
            }
        };
        let db = Arc::from(map.schema.as_str());
        let decoded = schema.is_some();
        self.tables.insert(
            table_id,
            MappedTable {
                seen: SeenMap::of(ev.body, decoded),
                map: decoded.then_some(map),
                schema,
                signal,
                db,
            },
        );
        Ok(())
    }

    fn rows(&mut self, ev: &RawEvent<'_>, out: &mut Vec<SourceMessage>) -> Result<()> {
        let Some((kind, v2)) = RowsKind::of(ev.event_type) else {
            return Ok(());
        };
        let table_id = rows::table_id(ev.body).map_err(|e| self.bad(ev, e))?;
        let Some(mapped) = self.tables.get(&table_id) else {
            return Err(Error::definite(format!(
                "connector {}: rows event for table id {table_id} without a TABLE_MAP before it in {}",
                self.name, self.at(ev)
            )));
        };
        let (Some(schema), Some(map)) = (mapped.schema.clone(), mapped.map.as_ref()) else {
            return Ok(());
        };
        let db = mapped.db.clone();
        let signal = mapped.signal;
        let mut notices = Vec::new();
        let partial = ev.event_type == rows::PARTIAL_UPDATE_ROWS;
        let changes = rows::decode(
            ev.body,
            kind,
            v2,
            partial,
            map,
            &self.charsets,
            &mut notices,
        )
        .map_err(|e| self.bad(ev, e).for_table(&schema.id))?;
        for (col, notice) in notices {
            self.notice(&schema, col, notice);
        }
        if signal {
            // Watermarks and signals change the snapshot, which a checkpoint carries.
            self.settle(out)?;
            let start = ev.log_pos.saturating_sub(u64::from(ev.size));
            for (i, change) in changes.into_iter().enumerate() {
                if let Some(after) = change.after {
                    self.signal_row(&schema, &after, start, i, ev.server_id, out);
                }
            }
            return Ok(());
        }
        if let Some(snapshot) = self.snapshot.as_mut().filter(|d| d.has_open_chunks()) {
            for change in &changes {
                for row in [&change.before, &change.after].into_iter().flatten() {
                    snapshot.on_change(&schema.id, row, None);
                }
            }
        }
        if self.tx.is_none() {
            // Rows outside BEGIN..COMMIT (non-transactional engines with some servers): the
            // group ends at the next commit-like event; give it an id now.
            let id: Arc<str> = self
                .current_gtid
                .clone()
                .unwrap_or_else(|| Arc::from(format!("{}:{}", self.file, self.pos)));
            self.tx = Some(OpenTx {
                id,
                events: 0,
                per_table: Vec::new(),
                standalone: false,
            });
        }
        let start = ev.log_pos.saturating_sub(u64::from(ev.size));
        let op = match kind {
            RowsKind::Insert => Op::Create,
            RowsKind::Update => Op::Update,
            RowsKind::Delete => Op::Delete,
        };
        for (i, change) in changes.into_iter().enumerate() {
            let Some(tx) = self.tx.as_mut() else { break };
            tx.events += 1;
            let key = Arc::as_ptr(&schema) as usize;
            let at = match tx.per_table.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    tx.per_table.push((key, 0));
                    tx.per_table.len() - 1
                }
            };
            tx.per_table[at].1 += 1;
            out.push(SourceMessage::Change(ChangeEvent {
                table: schema.clone(),
                op,
                before: change.before,
                after: change.after,
                before_key_only: false,
                source: SourceInfo {
                    connector: "mysql",
                    name: self.name.clone(),
                    db: db.clone(),
                    ts_ms: i64::from(ev.timestamp) * 1000,
                    snapshot: crate::event::SnapshotMark::No,
                    location: SourceLocation::Mysql {
                        file: self.file.clone(),
                        pos: start,
                        row: i as u32,
                        gtid: self.current_gtid.clone(),
                        server_id: ev.server_id,
                    },
                },
                transaction: Some(TransactionInfo {
                    id: tx.id.clone(),
                    total_order: tx.events,
                    data_collection_order: tx.per_table[at].1,
                }),
            }));
        }
        Ok(())
    }

    /// A row written into the signal table: a watermark releases its chunk's rows (as `op=r`
    /// events, here, before anything after it in the binlog); a signal changes the snapshot.
    fn signal_row(
        &mut self,
        schema: &TableSchema,
        row: &crate::event::Row,
        pos: u64,
        index: usize,
        server_id: u32,
        out: &mut Vec<SourceMessage>,
    ) {
        let at = format!("binlog {}:{pos}", self.file);
        match signal_table::parse_row(schema, row) {
            Some(SignalRow::Watermark(text)) => {
                let Some(release) = self
                    .snapshot
                    .as_mut()
                    .and_then(|d| d.on_watermark(&text, &at))
                else {
                    return;
                };
                let ts_ms = crate::event::now_ms();
                let db: Arc<str> = Arc::from(release.table.schema.as_str());
                let n = release.rows.len();
                for (i, row) in release.rows.into_iter().enumerate() {
                    out.push(SourceMessage::Change(ChangeEvent {
                        table: release.schema.clone(),
                        op: Op::Read,
                        before: None,
                        after: Some(row),
                        before_key_only: false,
                        source: SourceInfo {
                            connector: "mysql",
                            name: self.name.clone(),
                            db: db.clone(),
                            ts_ms,
                            snapshot: release.place.mark(i, n),
                            location: SourceLocation::Mysql {
                                file: self.file.clone(),
                                pos,
                                row: index as u32,
                                gtid: self.current_gtid.clone(),
                                server_id,
                            },
                        },
                        transaction: None,
                    }));
                }
            }
            Some(SignalRow::Signal { kind, data }) => {
                let content = match Signal::from_row(&kind, &data) {
                    Ok(s) => serde_json::to_vec(&s).unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(connector = %self.name, at = %at, error = %e, "signal row skipped");
                        return;
                    }
                };
                if let Some(progress) =
                    signal::apply(&content, &self.cfg, self.snapshot.as_mut(), &at)
                {
                    // The previous driver (if any) goes first: its drop clears the status's
                    // snapshot, which the new one then sets.
                    self.snapshot = None;
                    self.snapshot = Some(Driver::new(&self.cfg, progress));
                }
            }
            None => {
                tracing::warn!(connector = %self.name, at = %at, table = %self.signal_table,
                    "a row of the signal table without `type` and `data` text columns; skipped")
            }
        }
    }

    fn notice(&mut self, schema: &TableSchema, col: usize, notice: Notice) {
        let key = (schema.id.clone(), col, format!("{notice:?}"));
        if !self.warned.insert(key) {
            return;
        }
        let column = schema
            .columns
            .get(col)
            .map(|c| c.name.as_str())
            .unwrap_or("?");
        match notice {
            Notice::ZeroDate(text) => {
                tracing::warn!(connector = %self.name, table = %schema.id, column,
                zero = text, "zero or partial date emitted as null (shown once per column)")
            }
            Notice::UndecodedCharset(cs) => {
                tracing::warn!(connector = %self.name, table = %schema.id, column,
                charset = %cs, "text in a charset tidemark does not decode is emitted as bytes (base64)")
            }
        }
    }
}

/// The event-model shape of a table from its TABLE_MAP.
pub fn table_schema(id: &TableId, map: &TableMap, charsets: &CharsetMap) -> TableSchema {
    let columns = map
        .columns
        .iter()
        .map(|c| {
            let binary = c.collation.map(|k| charsets.get(k) == Charset::Binary);
            let u = c.unsigned;
            // The legacy TIME and DATETIME formats hold whole seconds.
            let fractional = |fsp: Option<u8>| {
                let precision = Some(fsp.unwrap_or(0));
                if matches!(c.ty.code, t::TIME | t::TIME2) {
                    ColumnType::Time { precision }
                } else {
                    ColumnType::Timestamp { precision }
                }
            };
            let column_type = match c.ty.code {
                t::TINY => ColumnType::Int16,
                t::SHORT if u => ColumnType::Int32,
                t::SHORT => ColumnType::Int16,
                t::INT24 => ColumnType::Int32,
                t::LONG if u => ColumnType::Int64,
                t::LONG => ColumnType::Int32,
                t::LONGLONG if u => ColumnType::UInt64,
                t::LONGLONG => ColumnType::Int64,
                t::FLOAT => ColumnType::Float32,
                t::DOUBLE => ColumnType::Float64,
                t::NEWDECIMAL => ColumnType::Decimal {
                    precision: Some(u32::from(c.ty.meta >> 8)),
                    scale: Some(u32::from(c.ty.meta & 0xff)),
                },
                t::YEAR => ColumnType::Int16,
                t::DATE | t::NEWDATE => ColumnType::Date,
                t::TIME | t::DATETIME => fractional(None),
                t::TIME2 | t::DATETIME2 => fractional(u8::try_from(c.ty.meta).ok()),
                t::TIMESTAMP | t::TIMESTAMP2 => ColumnType::TimestampTz,
                t::BIT if c.ty.meta == 1 => ColumnType::Bool,
                t::BIT => ColumnType::Bits {
                    length: u32::from(c.ty.meta >> 8) * 8 + u32::from(c.ty.meta & 0xff),
                },
                t::JSON => ColumnType::Json,
                t::ENUM => ColumnType::Enum {
                    name: c.name.clone(),
                    labels: c
                        .labels
                        .iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect(),
                },
                t::SET => ColumnType::Set {
                    labels: c
                        .labels
                        .iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect(),
                },
                t::GEOMETRY => ColumnType::Geometry {
                    name: "geometry".into(),
                },
                t::BLOB | t::TINY_BLOB | t::MEDIUM_BLOB | t::LONG_BLOB if binary != Some(false) => {
                    ColumnType::Bytes
                }
                t::STRING | t::VARCHAR | t::VAR_STRING if binary == Some(true) => ColumnType::Bytes,
                t::STRING
                | t::VARCHAR
                | t::VAR_STRING
                | t::BLOB
                | t::TINY_BLOB
                | t::MEDIUM_BLOB
                | t::LONG_BLOB => ColumnType::Text,
                other => ColumnType::Other(t::type_name(other).to_ascii_lowercase()),
            };
            ColumnDef {
                name: c.name.clone(),
                column_type,
                nullable: c.nullable,
            }
        })
        .collect();
    TableSchema {
        id: id.clone(),
        columns,
        primary_key: map.primary_key.clone(),
    }
}

/// The table a `TRUNCATE [TABLE] [db.]name` statement names (`default_db`: the statement's
/// current database), with backquoted names unquoted; `None` for anything else.
fn truncate_target(sql: &str, default_db: &str) -> Option<TableId> {
    let rest = sql.trim_start();
    let rest = strip_keyword(rest, "TRUNCATE")?;
    let rest = strip_keyword(rest, "TABLE").unwrap_or(rest);
    let (first, rest) = identifier(rest)?;
    match rest.strip_prefix('.') {
        Some(rest) => {
            let (second, _) = identifier(rest)?;
            Some(TableId::new(first, second))
        }
        None => (!default_db.is_empty()).then(|| TableId::new(default_db.to_string(), first)),
    }
}

fn strip_keyword<'a>(s: &'a str, keyword: &str) -> Option<&'a str> {
    let head = s.get(..keyword.len())?;
    let rest = &s[keyword.len()..];
    (head.eq_ignore_ascii_case(keyword) && rest.starts_with(|c: char| c.is_whitespace()))
        .then(|| rest.trim_start())
}

/// An identifier at the start of `s`: backquoted (doubled backquotes inside) or bare.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('`') {
        let mut name = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if body[i + 1..].starts_with('`') {
                    name.push('`');
                    chars.next();
                } else {
                    return Some((name, &body[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(s.len());
        (end > 0).then(|| (s[..end].to_string(), &s[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_statements_name_their_table() {
        let t = |sql: &str| truncate_target(sql, "shop").map(|id| id.to_string());
        assert_eq!(t("TRUNCATE TABLE orders").as_deref(), Some("shop.orders"));
        assert_eq!(t("truncate orders").as_deref(), Some("shop.orders"));
        assert_eq!(
            t("TRUNCATE TABLE `other`.`my``t`").as_deref(),
            Some("other.my`t")
        );
        assert_eq!(t("TRUNCATE  other.t2 /* c */").as_deref(), Some("other.t2"));
        assert_eq!(t("TRUNCATEX t"), None);
        assert_eq!(truncate_target("TRUNCATE t", ""), None);
    }

    fn cfg() -> Arc<ConnectorConfig> {
        Arc::new(crate::config::test_mysql_connector())
    }

    /// TABLE_MAP of `db`.`tbl` (id INT PK, name VARCHAR utf8mb4, amount DECIMAL(10,2)), the
    /// table the rows helpers of `rows::tests` encode.
    fn table_map_body() -> Vec<u8> {
        let mut names = Vec::new();
        for n in ["id", "name", "amount"] {
            names.push(n.len() as u8);
            names.extend(n.as_bytes());
        }
        super::super::binlog::table_map::tests::body(
            &[t::LONG, t::VARCHAR, t::NEWDECIMAL],
            &[80, 0, 10, 2],
            &[0b110],
            &[(2, vec![45]), (4, names), (8, vec![0])],
        )
    }

    fn ev(event_type: u8, log_pos: u64, body: &[u8]) -> RawEvent<'_> {
        RawEvent {
            event_type,
            timestamp: 1_700_000_000,
            server_id: 1,
            log_pos,
            size: 10,
            flags: 0,
            body,
        }
    }

    /// A MariaDB decoder at `bin.000001:4`, GTID position `0-1-9`.
    fn maria_decoder() -> Decoder {
        let start = MysqlPosition {
            file: "bin.000001".into(),
            pos: 4,
            mariadb_gtid: Some("0-1-9".into()),
            mysql_gtid_set: None,
            snapshot: None,
        };
        Decoder::new(cfg(), Flavor::MariaDb, CharsetMap::default(), &start).unwrap()
    }

    /// The body of a MariaDB GTID event for `0-1-seq` (domain 0, not standalone).
    fn maria_gtid(seq: u64) -> Vec<u8> {
        let mut gtid = seq.to_le_bytes().to_vec();
        gtid.extend(0u32.to_le_bytes());
        gtid.push(0);
        gtid
    }

    #[test]
    fn a_transaction_yields_changes_then_one_checkpoint_with_its_gtid() {
        let mut d = maria_decoder();
        let mut out = Vec::new();
        d.handle(ev(events::MARIADB_GTID, 100, &maria_gtid(10)), &mut out)
            .unwrap();
        let tm = table_map_body();
        d.handle(ev(events::TABLE_MAP, 150, &tm), &mut out).unwrap();
        let rows = super::super::binlog::rows::tests::event(
            RowsKind::Insert,
            false,
            &[
                super::super::binlog::rows::tests::row_bytes(1, Some("a"), "1.00"),
                super::super::binlog::rows::tests::row_bytes(2, None, "2.00"),
            ],
        );
        d.handle(ev(rows::WRITE_ROWS_V1, 200, &rows), &mut out)
            .unwrap();
        assert!(d.in_transaction());
        d.handle(ev(events::XID, 231, &7u64.to_le_bytes()), &mut out)
            .unwrap();
        assert!(!d.in_transaction());
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(matches!(out[2], SourceMessage::TransactionEnd), "deferred");
        d.settle(&mut out).unwrap();
        match &out[1] {
            SourceMessage::Change(c) => {
                assert_eq!(c.op, Op::Create);
                assert_eq!(c.transaction.as_ref().unwrap().id.as_ref(), "0-1-10");
                assert_eq!(c.transaction.as_ref().unwrap().total_order, 2);
                assert!(matches!(
                    &c.source.location,
                    SourceLocation::Mysql {
                        pos: 190,
                        row: 1,
                        ..
                    }
                ));
            }
            other => panic!("{other:?}"),
        }
        match &out[2] {
            SourceMessage::Checkpoint(p) => {
                let p: MysqlPosition = p.decode().unwrap();
                assert_eq!(
                    (p.file.as_str(), p.pos, p.mariadb_gtid.as_deref()),
                    ("bin.000001", 231, Some("0-1-10"))
                );
            }
            other => panic!("{other:?}"),
        }
        // A rows event without its TABLE_MAP, and an unknown event type, are errors naming the position.
        let mut d2 = maria_decoder();
        let e = d2
            .handle(ev(rows::WRITE_ROWS_V1, 300, &rows), &mut out)
            .unwrap_err();
        assert!(e.to_string().contains("bin.000001 at offset 290"), "{e}");
        let e = d2.handle(ev(99, 400, &[]), &mut out).unwrap_err();
        assert!(e.to_string().contains("unknown event type 99"), "{e}");
    }

    /// A MariaDB transaction of one inserted row: GTID `0-1-seq`, its events ending at
    /// `end` (the XID's offset after it).
    fn one_row_transaction(d: &mut Decoder, seq: u64, end: u64, out: &mut Vec<SourceMessage>) {
        d.handle(ev(events::MARIADB_GTID, end - 30, &maria_gtid(seq)), out)
            .unwrap();
        d.handle(ev(events::TABLE_MAP, end - 20, &table_map_body()), out)
            .unwrap();
        let rows = super::super::binlog::rows::tests::event(
            RowsKind::Insert,
            false,
            &[super::super::binlog::rows::tests::row_bytes(
                i32::try_from(seq).unwrap(),
                Some("a"),
                "1.00",
            )],
        );
        d.handle(ev(rows::WRITE_ROWS_V1, end - 10, &rows), out)
            .unwrap();
        d.handle(ev(events::XID, end, &seq.to_le_bytes()), out)
            .unwrap();
    }

    fn stored(m: &SourceMessage) -> MysqlPosition {
        match m {
            SourceMessage::Checkpoint(p) => p.decode().unwrap(),
            other => panic!("not a checkpoint: {other:?}"),
        }
    }

    #[test]
    fn a_hand_over_builds_only_its_last_commits_position_in_that_commits_place() {
        let mut d = maria_decoder();
        let mut out = Vec::new();
        one_row_transaction(&mut d, 10, 100, &mut out);
        one_row_transaction(&mut d, 11, 200, &mut out);
        // The next transaction is still open when the hand-over ends.
        d.handle(ev(events::MARIADB_GTID, 230, &maria_gtid(12)), &mut out)
            .unwrap();
        d.handle(ev(events::TABLE_MAP, 240, &table_map_body()), &mut out)
            .unwrap();
        d.settle(&mut out).unwrap();
        let kinds: Vec<&str> = out
            .iter()
            .map(|m| match m {
                SourceMessage::Change(_) => "change",
                SourceMessage::Checkpoint(_) => "checkpoint",
                SourceMessage::TransactionEnd => "end",
                SourceMessage::SchemaChange { .. } => "schema",
            })
            .collect();
        assert_eq!(kinds, ["change", "end", "change", "checkpoint"], "{out:?}");
        // The position is the commit's, not the open transaction's.
        let p = stored(&out[3]);
        assert_eq!(
            (p.file.as_str(), p.pos, p.mariadb_gtid.as_deref()),
            ("bin.000001", 200, Some("0-1-11"))
        );
        // Settled once: the next hand-over starts without a deferred checkpoint.
        let mut next = Vec::new();
        d.settle(&mut next).unwrap();
        assert!(next.is_empty());
        // The open transaction ends in the next hand-over.
        d.handle(ev(events::XID, 300, &12u64.to_le_bytes()), &mut next)
            .unwrap();
        d.settle(&mut next).unwrap();
        assert_eq!(stored(&next[0]).mariadb_gtid.as_deref(), Some("0-1-12"));

        // A rotation settles the deferred checkpoint in the file it was taken in, then
        // checkpoints the new file.
        let mut out = Vec::new();
        one_row_transaction(&mut d, 13, 400, &mut out);
        let mut rotate = 4u64.to_le_bytes().to_vec();
        rotate.extend(b"bin.000002");
        d.handle(ev(events::ROTATE, 450, &rotate), &mut out)
            .unwrap();
        d.settle(&mut out).unwrap();
        let old = stored(&out[1]);
        assert_eq!((old.file.as_str(), old.pos), ("bin.000001", 400));
        let new = stored(&out[2]);
        assert_eq!(
            (new.file.as_str(), new.pos, new.mariadb_gtid.as_deref()),
            ("bin.000002", 4, Some("0-1-13"))
        );

        // A hand-over that lost its deferred checkpoint's place is an error, not a silently
        // missing position.
        let mut out = Vec::new();
        one_row_transaction(&mut d, 14, 500, &mut out);
        let e = d.settle(&mut []).unwrap_err();
        assert!(e.to_string().contains("bin.000002:500"), "{e}");
    }

    fn query_body(sql: &str) -> Vec<u8> {
        let mut q = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0];
        q.extend(b"db\0");
        q.extend(sql.as_bytes());
        q
    }

    fn mysql_decoder() -> (Decoder, String) {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562".to_string();
        let start = MysqlPosition {
            file: "bin.000009".into(),
            pos: 4,
            mariadb_gtid: None,
            mysql_gtid_set: Some(format!("{u}:1-5")),
            snapshot: None,
        };
        let d = Decoder::new(cfg(), Flavor::Mysql, CharsetMap::default(), &start).unwrap();
        (d, u)
    }

    fn gtid_6() -> Vec<u8> {
        let mut gtid = vec![1];
        gtid.extend([
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ]);
        gtid.extend(6u64.to_le_bytes());
        gtid
    }

    #[test]
    fn a_compressed_transaction_is_decoded_from_the_events_the_library_yields() {
        use super::super::binlog::payload::tests::{event_bytes, payload_body};
        use super::super::binlog::rows::tests::{event as rows_event, row_bytes};
        let (mut d, u) = mysql_decoder();
        let mut out = Vec::new();
        d.handle(ev(events::MYSQL_GTID, 120, &gtid_6()), &mut out)
            .unwrap();
        let tm = table_map_body();
        let rows = rows_event(RowsKind::Insert, true, &[row_bytes(7, Some("z"), "0.70")]);
        let inner = [
            (events::QUERY, query_body("BEGIN")),
            (events::TABLE_MAP, tm.clone()),
            (rows::WRITE_ROWS, rows.clone()),
            (events::XID, 9u64.to_le_bytes().to_vec()),
        ];
        let bytes: Vec<Vec<u8>> = inner.iter().map(|(t, b)| event_bytes(*t, b)).collect();
        let body = payload_body(&bytes, super::super::binlog::payload::ZSTD);
        d.handle(ev(events::TRANSACTION_PAYLOAD, 900, &body), &mut out)
            .unwrap();
        assert!(out.is_empty(), "the payload event itself emits nothing");
        assert!(d.expects_payload_echo());
        // The client library yields the four events, each at its own (meaningless) place.
        for (ty, b) in &inner {
            d.handle(ev(*ty, 0, b), &mut out).unwrap();
        }
        d.settle(&mut out).unwrap();
        assert!(!d.expects_payload_echo());
        assert_eq!(out.len(), 2, "{out:?}");
        match &out[0] {
            SourceMessage::Change(c) => {
                assert_eq!(c.after.as_ref().unwrap()[0], crate::value::Value::Int(7));
                assert_eq!(
                    c.transaction.as_ref().unwrap().id.as_ref(),
                    format!("{u}:6")
                );
            }
            other => panic!("{other:?}"),
        }
        match &out[1] {
            SourceMessage::Checkpoint(p) => {
                let p: MysqlPosition = p.decode().unwrap();
                assert_eq!(p.pos, 900, "the payload's place");
                assert_eq!(
                    p.mysql_gtid_set.as_deref(),
                    Some(format!("{u}:1-6").as_str())
                );
            }
            other => panic!("{other:?}"),
        }
        // An event that is not the payload's next one is an error, never skipped or decoded.
        d.handle(ev(events::MYSQL_GTID, 950, &gtid_6()), &mut out)
            .unwrap();
        d.handle(ev(events::TRANSACTION_PAYLOAD, 990, &body), &mut out)
            .unwrap();
        let e = d
            .handle(ev(events::QUERY, 0, &query_body("COMMIT")), &mut out)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("instead of the payload's event type 2"),
            "{e}"
        );
    }

    /// A compressed transaction of 1,000,000 rows (10,000 rows events) is decoded one yielded
    /// event at a time: no event produces more messages than the pipeline channel holds, and
    /// the memory tidemark keeps while reading it stays far below the transaction's size.
    #[test]
    fn a_million_row_compressed_transaction_is_read_in_bounded_steps() {
        use super::super::binlog::payload::tests::{event_bytes, payload_body};
        use super::super::binlog::rows::tests::{event as rows_event, row_bytes};
        let (mut d, _) = mysql_decoder();
        let mut out = Vec::new();
        d.handle(ev(events::MYSQL_GTID, 120, &gtid_6()), &mut out)
            .unwrap();
        let rows: Vec<Vec<u8>> = (0..100)
            .map(|i| row_bytes(i, Some("name"), "1.25"))
            .collect();
        let rows = rows_event(RowsKind::Insert, true, &rows);
        let mut inner = vec![
            (events::QUERY, query_body("BEGIN")),
            (events::TABLE_MAP, table_map_body()),
        ];
        inner.extend(std::iter::repeat_n((rows::WRITE_ROWS, rows), 10_000));
        inner.push((events::XID, 9u64.to_le_bytes().to_vec()));
        let bytes: Vec<Vec<u8>> = inner.iter().map(|(t, b)| event_bytes(*t, b)).collect();
        let uncompressed: usize = bytes.iter().map(Vec::len).sum();
        let body = payload_body(&bytes, super::super::binlog::payload::ZSTD);
        drop(bytes);
        let capacity = crate::config::daemon::PipelineConfig::default().channel_capacity;
        let before = crate::test_alloc::live_bytes();
        let mut peak = 0usize;
        let mut changes = 0usize;
        d.handle(ev(events::TRANSACTION_PAYLOAD, 900, &body), &mut out)
            .unwrap();
        for (ty, b) in &inner {
            d.handle(ev(*ty, 0, b), &mut out).unwrap();
            assert!(
                out.len() <= capacity,
                "{} messages from one event",
                out.len()
            );
            peak = peak.max(crate::test_alloc::live_bytes().saturating_sub(before));
            changes += out
                .drain(..)
                .filter(|m| matches!(m, SourceMessage::Change(_)))
                .count();
        }
        assert_eq!(changes, 1_000_000);
        assert!(!d.expects_payload_echo());
        eprintln!(
            "{uncompressed} uncompressed bytes, {} compressed; peak memory held while reading: {peak} bytes",
            body.len()
        );
        assert!(
            peak < uncompressed / 4,
            "{peak} bytes held for a {uncompressed}-byte transaction"
        );
    }
}
