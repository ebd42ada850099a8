//! The streaming loop of the PostgreSQL source.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::error::classify_wire;
use super::pgoutput::{
    self, format_lsn, pg_time_to_unix_micros, pg_time_to_unix_ms, Lsn, OldTuple, PgOutputMessage,
};
use super::position::PgPosition;
use super::relations::{decode_row, Relations};
use super::replication::{Pacing, ReplicationStream, StartOptions, WalItem};
use super::setup;
use super::snapshot::{PgBackend, PgSnapshot, StreamShared, MESSAGE_PREFIX};
use crate::config::ConnectorConfig;
use crate::error::{Error, Result};
use crate::event::{
    ChangeEvent, Op, Position, SourceInfo, SourceLocation, SourceMessage, TableId, TransactionInfo,
};
use crate::snapshot::driver::Driver;
use crate::snapshot::signal::{self, SIGNAL_PREFIX};
use crate::snapshot::visibility::{widen_xid, CommitHistory};
use crate::snapshot::{SnapshotProgress, SnapshotTask};
use crate::source::stream_loop::{LoopControl, Wake};
use crate::source::SourceContext;
use crate::status::latency::StageLatency;

/// Session settings that make pgoutput's text values unambiguous (see `text_value`).
const SESSION_OPTIONS: &str = "-c datestyle=ISO,MDY -c intervalstyle=iso_8601 -c timezone=UTC \
     -c bytea_output=hex -c extra_float_digits=3";

/// Streams connector `cfg` from `start` (or the slot's confirmed position) into `out` until
/// `shutdown` turns true. Acknowledged positions arriving on `acked` are reported to the
/// server as flushed. Returns `Ok` after a requested shutdown, once `acked` has closed (the
/// pipeline has committed its last position).
/// `lost_position`: there is no stored position, but the connector has produced before (the
/// slot, if it still exists, is then where it stopped: tidemark moves it only to committed
/// positions).
pub async fn run(ctx: SourceContext) -> Result<()> {
    let SourceContext {
        cfg,
        start,
        hints,
        out,
        acked,
        shutdown,
        compacted_topics,
    } = ctx;
    let pg = super::settings(&cfg)?.clone();
    let start: Option<PgPosition> =
        crate::source::decode_stored(start.as_ref(), &cfg.name, "PostgreSQL")?;
    let sql = setup::connect(&cfg).await?;
    let resume = setup::Resume {
        stored_lsn: start.as_ref().map(|p| p.lsn),
        lost_position: hints.lost_position,
    };
    let prepared = setup::prepare(&sql, &cfg, compacted_topics, &resume).await?;

    let c = &cfg.connection;
    let (start_lsn, snapshot_progress) = if prepared.resnapshot {
        // A new slot: stream from its start, and read every table again.
        (
            0,
            SnapshotProgress::start(
                cfg.tables
                    .iter()
                    .map(|t| SnapshotTask::whole(t.id.clone()))
                    .collect(),
            ),
        )
    } else {
        if hints.lost_position {
            tracing::warn!(connector = %cfg.name, slot = %pg.slot,
                "no stored position: resuming from the slot's confirmed position (tidemark advances it only to committed positions)");
        }
        let progress =
            SnapshotProgress::at_start(&cfg, start.as_ref().map(|p| p.snapshot.as_ref()));
        (
            start.as_ref().map_or(0, |p| p.lsn),
            SnapshotProgress::with_tables(progress, &hints.new_tables),
        )
    };
    let tls = super::tls::client_config(c)?;
    let application_name = format!("tidemark-{}", cfg.name);
    let mut client = ReplicationStream::start(
        c,
        StartOptions {
            slot: &pg.slot,
            publication: &pg.publication,
            start_lsn,
            options: SESSION_OPTIONS,
            application_name: &application_name,
            tls,
        },
        Pacing {
            status_interval: pg.status_interval,
            read_coalesce: pg.read_coalesce,
            latency: crate::status::connector(&cfg.name).map(|s| s.latency.clone()),
        },
    )
    .await
    .map_err(|e| classify_wire(&cfg.name, "starting replication", e))?;
    tracing::info!(
        connector = %cfg.name,
        slot = %pg.slot,
        start = %if start_lsn == 0 { "slot's confirmed position".to_string() } else { format_lsn(start_lsn) },
        "streaming WAL"
    );

    let history = CommitHistory::new(next_xid(&sql, &cfg.name).await?);
    // The server streams from the later of the requested position and the slot's confirmed
    // one; no checkpoint may be older than that (see `Decoder::last_checkpoint`).
    let resume_from = start_lsn.max(prepared.slot_confirmed.unwrap_or(0));
    let mut decoder = Decoder::new(cfg.clone(), sql, history, resume_from);
    decoder.snapshot = snapshot_progress.map(|progress| Driver::new(&cfg, progress));
    // Reads the snapshot's chunks while the decoder's driver has a snapshot in progress.
    let mut chunks: Option<PgSnapshot> = None;
    // The shared skeleton (`crate::source::stream_loop`): one exit for a requested shutdown,
    // checked before every step and raced against every wait. A batch is abandoned whole from
    // the first message not sent (nothing after it is sent, so no later checkpoint can commit
    // past it); the restart replays it.
    let status = crate::status::connector(&cfg.name);
    decoder.latency = status.as_ref().map(|s| s.latency.clone());
    let mut control =
        LoopControl::new(shutdown, acked).with_latency(status.as_ref().map(|s| s.latency.clone()));
    if let Some(status) = status {
        status.reading();
    }
    'stream: while !control.stop_requested() {
        match (&decoder.snapshot, &chunks) {
            (Some(_), None) => chunks = Some(PgBackend::open(&cfg).await?),
            (None, Some(_)) => chunks = None,
            _ => {}
        }
        let next_chunk_at = decoder.snapshot.as_ref().and_then(Driver::next_chunk_at);
        let ev = match control.ready(next_chunk_at, || client.try_next()) {
            Some(item) => Ok(item),
            None => match control.next(next_chunk_at, client.recv()).await {
                Wake::Stop => break 'stream,
                Wake::Acked => {
                    report_acked(&cfg.name, &client, &control.acked());
                    continue;
                }
                Wake::ChunkDue => {
                    if let (Some(reader), Some(driver)) =
                        (chunks.as_mut(), decoder.snapshot.as_mut())
                    {
                        reader.read_round(driver, &mut decoder.shared).await?;
                    }
                    continue;
                }
                Wake::Log(ev) => ev,
            },
        };
        let ev = ev.map_err(|e| classify_wire(&cfg.name, "streaming", e))?;
        let messages = decoder.handle(ev).await?;
        if let Some(driver) = decoder.snapshot.as_mut() {
            driver.warn_if_stalled(&"logical decoding messages (prefix tidemark)");
        }
        if let Some(reader) = chunks.as_mut() {
            for table in decoder.reshaped.drain(..) {
                // The table may have a new shape: the next chunk reads it anew.
                reader.forget_plan(&table).await;
            }
        } else {
            decoder.reshaped.clear();
        }
        let changes = messages
            .iter()
            .filter(|m| matches!(m, SourceMessage::Change(_)))
            .count();
        for msg in messages {
            let sent = control.send(&out, msg).await.map_err(|_| {
                Error::transient(format!("connector {}: pipeline stopped", cfg.name))
            })?;
            if !sent {
                break 'stream;
            }
        }
        control.handed_over(client.read_at(), changes);
    }
    // Graceful stop: stop reading, let the pipeline drain and commit, report its last
    // position to the server, then end the session.
    drop(out);
    control
        .drain_acked(Duration::from_secs(60), |p| {
            report_acked(&cfg.name, &client, p)
        })
        .await;
    if let Err(e) = client.shutdown().await {
        tracing::debug!(connector = %cfg.name, error = %e, "replication session ended with an error");
    }
    Ok(())
}

/// The next transaction id the server assigns (full, 64-bit): every transaction from it on
/// commits after the stream's start position, so the stream shows all of them (the base of
/// the [`CommitHistory`]). Read in a transaction that is rolled back (nothing is written, and
/// no synchronous standby is waited for).
async fn next_xid(sql: &tokio_postgres::Client, name: &str) -> Result<u64> {
    let messages = sql
        .simple_query("BEGIN; SELECT pg_current_xact_id()::text; ROLLBACK")
        .await
        .map_err(|e| {
            super::error::classify_postgres(
                format!("connector {name}: reading the next transaction id (pg_current_xact_id)"),
                e,
            )
        })?;
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|t| t.parse().ok()),
            _ => None,
        })
        .ok_or_else(|| {
            Error::definite(format!(
                "connector {name}: pg_current_xact_id() returned no transaction id"
            ))
        })
}

fn report_acked(name: &str, client: &ReplicationStream, pos: &Option<Position>) {
    if let Some(p) = pos {
        match p.decode::<PgPosition>() {
            Ok(p) => client.set_applied(p.lsn),
            Err(e) => {
                tracing::error!(connector = %name, error = %e, "acknowledged position is not a PostgreSQL position")
            }
        }
    }
}

struct OpenTransaction {
    xid: u32,
    /// `xid` with its epoch.
    full_xid: u64,
    final_lsn: u64,
    commit_time_ms: i64,
    id: Arc<str>,
    events: u64,
    per_table: foldhash::HashMap<u32, u64>,
}

/// Turns replication events into source messages; keeps the relation cache and the open
/// transaction.
struct Decoder {
    cfg: Arc<ConnectorConfig>,
    sql: tokio_postgres::Client,
    /// The relation cache and the commit history, shared with the snapshot reader.
    shared: StreamShared,
    tx: Option<OpenTransaction>,
    /// The newest checkpoint handed out, starting at the position the stream resumes from.
    /// Checkpoints never go below it: the server re-reads WAL from the slot's restart_lsn and
    /// its keepalives carry the positions it passes on the way, older than where the stream
    /// resumes (a position stored after the last one the server was told of, by a process
    /// that stopped between the two). A checkpoint there would move the stored position back
    /// behind the slot's confirmed_flush_lsn, and the next start would find the slot past it.
    last_checkpoint: u64,
    name: Arc<str>,
    db: Arc<str>,
    ignored_logged: HashSet<TableId>,
    /// The snapshot in progress: its bookkeeping sees every change and watermark in WAL
    /// order here; the stream loop reads its chunks (`super::snapshot`).
    snapshot: Option<Driver>,
    /// Tables whose Relation message came since the loop last looked: their snapshot plans
    /// are forgotten (the shape may have changed).
    reshaped: Vec<TableId>,
    /// The connector's stage histograms: each Begin observes `commit_to_read`.
    latency: Option<Arc<StageLatency>>,
}

impl Decoder {
    fn new(
        cfg: Arc<ConnectorConfig>,
        sql: tokio_postgres::Client,
        history: CommitHistory,
        resume_from: u64,
    ) -> Self {
        Self {
            name: Arc::from(cfg.name.as_str()),
            db: Arc::from(cfg.connection.database.as_str()),
            cfg,
            sql,
            shared: StreamShared {
                relations: Relations::default(),
                history,
            },
            tx: None,
            last_checkpoint: resume_from,
            ignored_logged: HashSet::new(),
            snapshot: None,
            reshaped: Vec::new(),
            latency: None,
        }
    }

    /// The rows a tidemark watermark releases, as `op=r` events at WAL position `lsn`.
    fn snapshot_message(&mut self, content: &[u8], lsn: u64) -> Vec<SourceMessage> {
        let Some(driver) = self.snapshot.as_mut() else {
            return Vec::new();
        };
        let Some(release) = std::str::from_utf8(content)
            .ok()
            .and_then(|text| driver.on_watermark(text, &format_lsn(lsn)))
        else {
            return Vec::new();
        };
        let ts_ms = crate::event::now_ms();
        let (commit_lsn, tx_id) = self.tx.as_ref().map_or((lsn, 0), |t| (t.final_lsn, t.xid));
        let n = release.rows.len();
        release
            .rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                SourceMessage::Change(ChangeEvent {
                    table: release.schema.clone(),
                    op: Op::Read,
                    before: None,
                    after: Some(row),
                    before_key_only: false,
                    source: SourceInfo {
                        connector: "postgresql",
                        name: self.name.clone(),
                        db: self.db.clone(),
                        ts_ms,
                        snapshot: release.place.mark(i, n),
                        location: SourceLocation::Postgres {
                            lsn,
                            commit_lsn,
                            tx_id,
                        },
                    },
                    transaction: None,
                })
            })
            .collect()
    }

    /// A signal from the WAL (`tidemark snapshot`).
    fn signal(&mut self, content: &[u8], lsn: u64) {
        if let Some(progress) =
            signal::apply(content, &self.cfg, self.snapshot.as_mut(), &format_lsn(lsn))
        {
            // The previous driver (if any) goes first: its drop clears the status's
            // snapshot, which the new one then sets.
            self.snapshot = None;
            self.snapshot = Some(Driver::new(&self.cfg, progress));
        }
    }

    /// Tells a running snapshot about a change of `table` (its key leaves open chunks).
    fn snapshot_saw(&mut self, table: &TableId, rows: [Option<&crate::event::Row>; 2]) {
        let txn = self.tx.as_ref().map(|t| t.full_xid);
        if let Some(driver) = self.snapshot.as_mut() {
            for row in rows.into_iter().flatten() {
                driver.on_change(table, row, txn);
            }
        }
    }

    async fn handle(&mut self, ev: WalItem) -> Result<Vec<SourceMessage>> {
        match ev {
            WalItem::Data { wal_start, data } => {
                let msg = pgoutput::decode(&data).map_err(|e| {
                    Error::definite(format!(
                        "connector {}: at WAL position {}",
                        self.cfg.name,
                        format_lsn(wal_start)
                    ))
                    .with_source(e)
                })?;
                let lsn = match &msg {
                    // A transaction's boundaries are placed by the positions they carry.
                    PgOutputMessage::Begin { final_lsn, .. } => *final_lsn,
                    PgOutputMessage::Commit { commit_lsn, .. } => *commit_lsn,
                    PgOutputMessage::Message { lsn, .. } => *lsn,
                    _ => wal_start,
                };
                self.on_message(msg, lsn).await
            }
            WalItem::KeepAlive { wal_end } => {
                // With no transaction open, everything before the server's sent position has
                // been received: it is a consistent point to resume from (pg_recvlogical does
                // the same). This lets the slot advance while captured tables are idle.
                let lsn = wal_end;
                if self.tx.is_none() && lsn > self.last_checkpoint {
                    tracing::trace!(connector = %self.name, wal_end = %format_lsn(lsn), "keepalive: a checkpoint");
                    self.last_checkpoint = lsn;
                    return Ok(vec![self.checkpoint(lsn)?]);
                }
                if lsn < self.last_checkpoint {
                    tracing::trace!(connector = %self.name, wal_end = %format_lsn(lsn),
                        checkpoint = %format_lsn(self.last_checkpoint), "keepalive behind the last checkpoint: ignored");
                }
                Ok(vec![])
            }
        }
    }

    fn checkpoint(&mut self, lsn: u64) -> Result<SourceMessage> {
        if self.snapshot.as_ref().is_some_and(Driver::is_done) {
            self.snapshot = None;
        }
        let snapshot = self.snapshot.as_ref().and_then(|d| d.progress().cloned());
        Position::encode(&PgPosition { lsn, snapshot })
            .map(SourceMessage::Checkpoint)
            .map_err(|e| Error::definite("encoding a position").with_source(e))
    }

    async fn on_message(&mut self, msg: PgOutputMessage, lsn: u64) -> Result<Vec<SourceMessage>> {
        match msg {
            PgOutputMessage::Begin {
                final_lsn,
                commit_time,
                xid,
            } => {
                // pgoutput sends only committed transactions, whole: this one has committed.
                if let Some(latency) = &self.latency {
                    latency
                        .commit_to_read
                        .observe_since_unix_micros(pg_time_to_unix_micros(commit_time));
                }
                let full_xid = widen_xid(xid, self.shared.history.reference());
                self.shared.history.record(full_xid);
                self.tx = Some(OpenTransaction {
                    xid,
                    full_xid,
                    final_lsn,
                    commit_time_ms: pg_time_to_unix_ms(commit_time),
                    id: transaction_id(xid, final_lsn),
                    events: 0,
                    per_table: foldhash::HashMap::default(),
                });
                Ok(vec![])
            }
            PgOutputMessage::Commit { end_lsn, .. } => {
                self.tx = None;
                self.last_checkpoint = self.last_checkpoint.max(end_lsn);
                Ok(vec![self.checkpoint(self.last_checkpoint)?])
            }
            PgOutputMessage::Relation {
                oid,
                namespace,
                name,
                columns,
                ..
            } => {
                let id = TableId::new(namespace, name);
                let captured = self.cfg.table(&id).is_some();
                if self.snapshot.is_some() {
                    self.reshaped.push(id.clone());
                }
                if !captured && self.ignored_logged.insert(id.clone()) {
                    tracing::info!(connector = %self.cfg.name, table = %id,
                        "the publication sends changes of a table that is not in the connector's tables; they are skipped");
                }
                self.shared
                    .relations
                    .update(&self.sql, oid, id, &columns, captured)
                    .await
                    .map_err(|e| e.context(format!("connector {}", self.cfg.name)))?;
                Ok(vec![])
            }
            PgOutputMessage::Type { oid, .. } => {
                self.shared.relations.forget_type(oid);
                Ok(vec![])
            }
            PgOutputMessage::Origin { .. } => Ok(vec![]),
            PgOutputMessage::Message {
                prefix, content, ..
            } => {
                if prefix == MESSAGE_PREFIX {
                    return Ok(self.snapshot_message(&content, lsn));
                }
                if prefix == SIGNAL_PREFIX {
                    self.signal(&content, lsn);
                    return Ok(vec![]);
                }
                tracing::debug!(connector = %self.cfg.name, prefix = %prefix, "logical decoding message");
                Ok(vec![])
            }
            PgOutputMessage::Insert { relation, new } => {
                let Some(schema) = self.captured_schema(relation, lsn)? else {
                    return Ok(vec![]);
                };
                let at = Lsn(lsn);
                let after = decode_row(&schema, &new, None, &at)?;
                self.snapshot_saw(&schema.id, [Some(&after), None]);
                Ok(vec![self.change(
                    relation,
                    schema,
                    Op::Create,
                    None,
                    Some(after),
                    lsn,
                )?])
            }
            PgOutputMessage::Update { relation, old, new } => {
                let Some(schema) = self.captured_schema(relation, lsn)? else {
                    return Ok(vec![]);
                };
                let at = Lsn(lsn);
                let before = match &old {
                    Some(o) => Some(decode_row(&schema, o.values(), None, &at)?),
                    None => None,
                };
                let full_before = matches!(old, Some(OldTuple::Full(_)));
                let after = decode_row(
                    &schema,
                    &new,
                    if full_before { before.as_ref() } else { None },
                    &at,
                )?;
                self.snapshot_saw(&schema.id, [before.as_ref(), Some(&after)]);
                let change = self.change(relation, schema, Op::Update, before, Some(after), lsn)?;
                Ok(vec![key_only_before(
                    change,
                    matches!(old, Some(OldTuple::Key(_))),
                )])
            }
            PgOutputMessage::Delete { relation, old } => {
                let Some(schema) = self.captured_schema(relation, lsn)? else {
                    return Ok(vec![]);
                };
                let at = Lsn(lsn);
                let before = decode_row(&schema, old.values(), None, &at)?;
                self.snapshot_saw(&schema.id, [Some(&before), None]);
                let change = self.change(relation, schema, Op::Delete, Some(before), None, lsn)?;
                Ok(vec![key_only_before(
                    change,
                    matches!(old, OldTuple::Key(_)),
                )])
            }
            PgOutputMessage::Truncate { relations, .. } => {
                let mut out = Vec::new();
                for relation in relations {
                    if let Some(schema) = self.captured_schema(relation, lsn)? {
                        let txn = self.tx.as_ref().map(|t| t.full_xid);
                        if let Some(driver) = self.snapshot.as_mut() {
                            driver.on_truncate(&schema.id, txn);
                        }
                        out.push(self.change(relation, schema, Op::Truncate, None, None, lsn)?);
                    }
                }
                Ok(out)
            }
        }
    }

    fn captured_schema(
        &self,
        relation: u32,
        lsn: u64,
    ) -> Result<Option<Arc<crate::event::TableSchema>>> {
        match self.shared.relations.get(relation) {
            Some(r) if r.captured => Ok(Some(r.schema.clone())),
            Some(_) => Ok(None),
            None => Err(Error::definite(format!(
                "connector {}: change of relation {relation} at WAL position {} before its Relation message",
                self.cfg.name,
                format_lsn(lsn)
            ))),
        }
    }

    fn change(
        &mut self,
        relation: u32,
        table: Arc<crate::event::TableSchema>,
        op: Op,
        before: Option<crate::event::Row>,
        after: Option<crate::event::Row>,
        lsn: u64,
    ) -> Result<SourceMessage> {
        let tx = self.tx.as_mut().ok_or_else(|| {
            Error::definite(format!(
                "connector {}: row change outside a transaction at WAL position {}",
                self.cfg.name,
                format_lsn(lsn)
            ))
        })?;
        tx.events += 1;
        let per_table = tx.per_table.entry(relation).or_insert(0);
        *per_table += 1;
        Ok(SourceMessage::Change(ChangeEvent {
            table,
            op,
            before,
            after,
            before_key_only: false,
            source: SourceInfo {
                connector: "postgresql",
                name: self.name.clone(),
                db: self.db.clone(),
                ts_ms: tx.commit_time_ms,
                snapshot: crate::event::SnapshotMark::No,
                location: SourceLocation::Postgres {
                    lsn,
                    commit_lsn: tx.final_lsn,
                    tx_id: tx.xid,
                },
            },
            transaction: Some(TransactionInfo {
                id: tx.id.clone(),
                total_order: tx.events,
                data_collection_order: *per_table,
            }),
        }))
    }
}

/// A transaction's id in the events (`<xid>:<final LSN>`, both decimal), written without the
/// formatting machinery (one per transaction, which is one per change for single-row ones).
fn transaction_id(xid: u32, final_lsn: u64) -> Arc<str> {
    let mut id = String::with_capacity(32);
    id.push_str(itoa::Buffer::new().format(xid));
    id.push(':');
    id.push_str(itoa::Buffer::new().format(final_lsn));
    Arc::from(id)
}

/// Marks a change's `before` as key-only when the old tuple was a key tuple (`K`).
fn key_only_before(mut message: SourceMessage, key_only: bool) -> SourceMessage {
    if let SourceMessage::Change(e) = &mut message {
        e.before_key_only = key_only;
    }
    message
}
