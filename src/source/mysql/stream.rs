//! The MySQL source's session: connect, check the server, ask for the binlog from the stored
//! position as a replica, and feed each event to the [`Decoder`].

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use mysql_async::binlog::events::Event;
use mysql_async::binlog::BinlogChecksumAlg;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;

use super::decoder::{Decoder, RawEvent};
use super::error::classify_mysql;
use super::position::MysqlPosition;
use super::setup::{self, Flavor};
use super::snapshot::{MysqlBackend, MysqlSnapshot};
use crate::config::{GtidUse, OnLostPosition};
use crate::error::{Error, Result};
use crate::event::{Position, SourceMessage};
use crate::snapshot::driver::Driver;
use crate::snapshot::{SnapshotProgress, SnapshotTask};
use crate::source::check::CheckStatus;
use crate::source::read_pacing::ReadPacing;
use crate::source::stream_loop::{LoopControl, Wake};
use crate::source::SourceContext;

/// At most this many messages in one hand-over of events already received (see the loop).
const HAND_OVER_MAX: usize = 1024;
/// Binlog events per second from which reads are coalesced (`crate::source::read_pacing`): a
/// single-row transaction is four events, so this is 5,000 such transactions a second. At
/// 10,000 a second coalescing halved tidemark's CPU per change and kept the p99 within the
/// target, where reading as data arrives let it reach 223 ms (BENCHMARKS.md, session 18).
const BUSY_RATE: u64 = 20_000;

/// Streams connector `cfg` from `start` (or the server's current position) into `out` until
/// `shutdown` turns true. Returns `Ok` after a requested shutdown, once the pipeline has
/// committed its last position (`acked` closed).
/// `lost_position`: there is no stored position, but the connector has produced before.
pub async fn run(ctx: SourceContext) -> Result<()> {
    let SourceContext {
        cfg,
        start,
        hints,
        out,
        acked,
        shutdown,
        compacted_topics: _,
    } = ctx;
    let my = super::settings(&cfg)?.clone();
    let stored: Option<MysqlPosition> =
        crate::source::decode_stored(start.as_ref(), &cfg.name, "MySQL")?;
    let mut snapshot_progress =
        SnapshotProgress::at_start(&cfg, stored.as_ref().map(|p| p.snapshot.as_ref()));
    if hints.lost_position {
        // Starting at the server's current position would skip every change since the lost
        // one, silently.
        match cfg.snapshot.on_lost_position {
            OnLostPosition::Fail => {
                return Err(Error::definite(format!(
                    "connector {}: there is no stored position, but the connector's topics hold messages it \
                     produced: its position was lost (a deleted positions topic, another offsets.topic or \
                     offsets.path, ...). Starting at the server's current binlog position would skip every \
                     change since. Restore the position store, or set `snapshot: {{on_lost_position: resnapshot}}` \
                     in {} to start at the current position and snapshot every table again (the topics then \
                     converge to the tables)",
                    cfg.name,
                    cfg.file.display()
                )));
            }
            OnLostPosition::Resnapshot => {
                tracing::warn!(connector = %cfg.name,
                    "position lost: starting at the server's current binlog position and snapshotting every table again (snapshot.on_lost_position: resnapshot)");
                snapshot_progress = SnapshotProgress::start(
                    cfg.tables
                        .iter()
                        .map(|t| SnapshotTask::whole(t.id.clone()))
                        .collect(),
                );
            }
        }
    }
    if !hints.new_tables.is_empty() {
        snapshot_progress = SnapshotProgress::with_tables(snapshot_progress, &hints.new_tables);
    }
    let mut sql = setup::connect(&cfg).await?;
    let inspection = setup::inspect(&mut sql, &cfg).await?;
    let failures: Vec<String> = setup::evaluate(&cfg, &my, &inspection)
        .into_iter()
        .filter(|i| i.status == CheckStatus::Fail)
        .map(|i| format!("{} (fix: {})", i.what, i.fix))
        .collect();
    if !failures.is_empty() {
        return Err(Error::definite(format!(
            "connector {}: the server is not ready for tidemark: {}",
            cfg.name,
            failures.join("; ")
        )));
    }
    let charsets = setup::charsets(&mut sql).await?;
    let use_gtid = my.gtid != GtidUse::Off && inspection.gtid_on();
    let (start, fresh) = match stored {
        Some(mut p) => {
            if !use_gtid {
                p.mariadb_gtid = None;
                p.mysql_gtid_set = None;
            }
            (p, false)
        }
        None => (
            setup::current_position(&mut sql, &inspection, &cfg).await?,
            true,
        ),
    };
    if let Err(e) = sql.disconnect().await {
        tracing::debug!(connector = %cfg.name, error = %e, "closing the inspection connection");
    }

    let mariadb = inspection.flavor == Flavor::MariaDb;
    let mut decoder = Decoder::new(cfg.clone(), inspection.flavor, charsets.clone(), &start)?;
    decoder.snapshot = snapshot_progress.map(|p| Driver::new(&cfg, p));
    if fresh {
        // Commit the starting point before anything else, so a restart before the first
        // change resumes here rather than at a later "current" position.
        let p = Position::encode(&start)
            .map_err(|e| Error::definite("encoding a MySQL position").with_source(e))?;
        if out.send(SourceMessage::Checkpoint(p)).await.is_err() {
            return Err(Error::transient(format!(
                "connector {}: pipeline stopped",
                cfg.name
            )));
        }
    }

    let mut conn = setup::connect(&cfg).await?;
    let heartbeat = my.heartbeat;
    let mut prelude = vec![format!(
        "SET @master_heartbeat_period = {}",
        heartbeat.as_nanos()
    )];
    if inspection.flavor == Flavor::MariaDb {
        // Capability 4 (MARIA_SLAVE_CAPABILITY_GTID): the server sends GTID events and
        // accepts @slave_connect_state.
        prelude.push("SET @mariadb_slave_capability = 4".into());
        if let Some(g) = start.mariadb_gtid.as_ref().filter(|_| use_gtid) {
            prelude.push(format!(
                "SET @slave_connect_state = '{}'",
                g.replace('\'', "")
            ));
            prelude.push("SET @slave_gtid_strict_mode = 1".into());
            prelude.push("SET @slave_gtid_ignore_duplicates = 0".into());
        }
    }
    for stmt in &prelude {
        conn.query_drop(stmt.as_str())
            .await
            .map_err(|e| classify_mysql(format!("connector {}: `{stmt}`", cfg.name), e))?;
    }
    let file = start.file.clone().into_bytes();
    let mut request = BinlogStreamRequest::new(my.server_id)
        .with_filename(&file)
        .with_pos(start.pos);
    let mut sids = Vec::new();
    if inspection.flavor == Flavor::Mysql && use_gtid {
        if let Some(set) = &start.mysql_gtid_set {
            for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let sid: mysql_async::Sid<'static> = part.parse().map_err(|e| {
                    Error::definite(format!(
                        "connector {}: GTID set part `{part}`: {e:?}",
                        cfg.name
                    ))
                })?;
                sids.push(sid);
            }
        }
        request = request.with_gtid().with_gtid_set(sids);
    }
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| classify_mysql(format!("connector {}: requesting the binlog", cfg.name), e))?;
    tracing::info!(connector = %cfg.name, start = %start, gtid = use_gtid, flavor = %inspection.flavor,
        server_id = my.server_id, "streaming binlog");

    let silence_limit = heartbeat.saturating_mul(4).max(Duration::from_secs(10));
    let mut batch = Vec::new();
    // Reads the snapshot's chunks while the decoder's driver has a snapshot in progress.
    let mut chunks: Option<MysqlSnapshot> = None;
    // The shared skeleton (`crate::source::stream_loop`): one exit for a requested shutdown,
    // checked before every step and raced against every wait (an idle server sends only
    // heartbeats). A rows event's messages are handed over whole or not at all.
    let status = crate::status::connector(&cfg.name);
    // MySQL keeps no replica position on the server: acknowledgements need not wake the loop.
    let mut control = LoopControl::new(shutdown, acked)
        .without_ack_wakes()
        .with_latency(status.as_ref().map(|s| s.latency.clone()));
    let mut pacing = ReadPacing::new(my.read_coalesce, BUSY_RATE)
        .with_latency(status.as_ref().map(|s| s.latency.clone()));
    // The previous hand-over stopped at `HAND_OVER_MAX` with events still buffered: read on
    // without the coalescing wait (a backlog).
    let mut more_buffered = false;
    if let Some(status) = status {
        status.reading();
    }
    'stream: while !control.stop_requested() {
        match (&decoder.snapshot, &chunks) {
            (Some(_), None) => {
                chunks = Some(MysqlBackend::open(&cfg, charsets.clone(), mariadb).await?)
            }
            (None, Some(_)) => chunks = None,
            _ => {}
        }
        let next_chunk_at = decoder.snapshot.as_ref().and_then(|d| d.next_chunk_at());
        // Under load the read waits until the coalescing time has passed since the previous
        // one (the wait is raced against shutdown and a due chunk like the read itself).
        let read = async {
            if !more_buffered {
                pacing.pause().await;
            }
            tokio::time::timeout(silence_limit, stream.next()).await
        };
        let next = match control.next(next_chunk_at, read).await {
            Wake::Stop => break 'stream,
            // Not armed (`without_ack_wakes`): nothing to report.
            Wake::Acked => continue,
            Wake::ChunkDue => {
                if let (Some(reader), Some(driver)) = (chunks.as_mut(), decoder.snapshot.as_mut()) {
                    reader.read_round(driver, &mut ()).await?;
                }
                continue;
            }
            Wake::Log(next) => next,
        };
        // The binlog client reads and parses an event in the step that hands it over.
        let read_at = std::time::Instant::now();
        pacing.read_returned();
        let Ok(next) = next else {
            return Err(Error::transient(format!(
                "connector {}: no binlog event or heartbeat for {} s",
                cfg.name,
                silence_limit.as_secs()
            )));
        };
        let event = binlog_event(&cfg.name, &decoder, next)?;
        let raw = raw_event(&cfg.name, &decoder, &event, decoder.expects_payload_echo())?;
        decoder.handle(raw, &mut batch)?;
        let mut events = 1;
        // The events the client has already received (in its buffer or the socket's) join
        // this hand-over, without waiting for any: one wake-up of the pipeline per read of the
        // socket rather than per event (a single-row transaction is four events and two
        // messages). Under load the batches grow; at low rates every event still goes at once.
        while batch.len() < HAND_OVER_MAX {
            let next_chunk_at = decoder.snapshot.as_ref().and_then(|d| d.next_chunk_at());
            let Some(next) = control.ready(next_chunk_at, || stream.next().now_or_never()) else {
                break;
            };
            let event = binlog_event(&cfg.name, &decoder, next)?;
            let raw = raw_event(&cfg.name, &decoder, &event, decoder.expects_payload_echo())?;
            decoder.handle(raw, &mut batch)?;
            events += 1;
        }
        pacing.count(events);
        decoder.settle(&mut batch)?;
        more_buffered = batch.len() >= HAND_OVER_MAX;
        if let Some(driver) = decoder.snapshot.as_mut() {
            driver.warn_if_stalled(&format_args!(
                "rows of the signal table {}",
                my.signal_table
            ));
        }
        if batch.is_empty() {
            continue;
        }
        if let Some(reader) = chunks.as_mut() {
            for msg in &batch {
                if let SourceMessage::SchemaChange { table, .. } = msg {
                    reader.forget_plan(&table.id).await;
                }
            }
        }
        // One wait for room for the whole rows event, then hand every message over without
        // further waits.
        let stopped = || Error::transient(format!("connector {}: pipeline stopped", cfg.name));
        let Some(mut permits) = control
            .reserve(&out, batch.len())
            .await
            .map_err(|_| stopped())?
        else {
            break 'stream;
        };
        let changes = batch
            .iter()
            .filter(|m| matches!(m, SourceMessage::Change(_)))
            .count();
        for msg in batch.drain(..) {
            match permits.next() {
                Some(permit) => permit.send(msg),
                None => {
                    if out.send(msg).await.is_err() {
                        return Err(stopped());
                    }
                }
            }
        }
        control.handed_over(read_at, changes);
    }
    // Graceful stop: stop reading, let the pipeline drain and commit its last position.
    drop(out);
    control.drain_acked(Duration::from_secs(60), |_| {}).await;
    if let Err(e) = stream.close().await {
        tracing::debug!(connector = %cfg.name, error = %e, "binlog session ended with an error");
    }
    Ok(())
}

/// The binlog stream's next item as an event: its end, or a read error, stops the stream with
/// the position it had reached.
fn binlog_event(
    name: &str,
    decoder: &Decoder,
    next: Option<std::result::Result<Event, mysql_async::Error>>,
) -> Result<Event> {
    match next {
        Some(Ok(event)) => Ok(event),
        None => Err(Error::transient(format!(
            "connector {name}: the server ended the binlog stream at {}:{}",
            decoder.file(),
            decoder.position().pos
        ))),
        Some(Err(e)) => Err(classify_mysql(
            format!(
                "connector {name}: reading the binlog after {}:{}",
                decoder.file(),
                decoder.position().pos
            ),
            e,
        )),
    }
}

/// Verifies an event's checksum and exposes its header and body. The first (artificial)
/// ROTATE arrives before the format description, so the reader could not strip its CRC:
/// it is recognised and removed here.
fn raw_event<'a>(
    name: &str,
    decoder: &Decoder,
    event: &'a Event,
    from_payload: bool,
) -> Result<RawEvent<'a>> {
    let h = event.header();
    let mut body = event.data();
    let at = || {
        format!(
            "binlog {} event ending at offset {} (type {})",
            decoder.file(),
            h.log_pos(),
            h.event_type_raw()
        )
    };
    match (event.checksum(), event.footer().get_checksum_alg()) {
        // Events inside a transaction payload carry no checksum (the payload event had one).
        _ if from_payload => {}
        (Some(stored), Ok(Some(alg @ BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32))) => {
            let computed = event.calc_checksum(alg);
            if u32::from_le_bytes(stored) != computed {
                return Err(Error::definite(format!(
                    "connector {name}: checksum mismatch in {}: stored {:#010x}, computed {computed:#010x}",
                    at(),
                    u32::from_le_bytes(stored)
                )));
            }
        }
        (_, Err(e)) => {
            return Err(Error::definite(format!("connector {name}: {}: {e}", at())));
        }
        _ => {
            if body.len() >= 4 && h.event_type_raw() == super::binlog::events::ROTATE {
                let (payload, crc) = body.split_at(body.len() - 4);
                let mut header = Vec::with_capacity(19);
                header.extend(h.timestamp().to_le_bytes());
                header.push(h.event_type_raw());
                header.extend(h.server_id().to_le_bytes());
                header.extend(h.event_size().to_le_bytes());
                header.extend(h.log_pos().to_le_bytes());
                header.extend(h.flags_raw().to_le_bytes());
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(&header);
                hasher.update(payload);
                if hasher.finalize().to_le_bytes() == crc {
                    body = payload;
                }
            }
        }
    }
    Ok(RawEvent {
        event_type: h.event_type_raw(),
        timestamp: h.timestamp(),
        server_id: h.server_id(),
        log_pos: u64::from(h.log_pos()),
        size: h.event_size(),
        flags: h.flags_raw(),
        body,
    })
}
