//! Wires one connector: source -> router -> schema (encoding) -> sink -> position tracker, and
//! supervises it (restart with backoff after a transient error).
//!
//! Data flows one way through bounded channels, so a slow sink slows the source down
//! (backpressure) instead of buffering. Only this module knows every stage.
//!
//! The pipeline takes the source's messages in batches, routes and encodes each change into
//! reused buffers, and hands the messages to its [`Output`] without waiting for their
//! acknowledgement; it gives the position tracker the newest checkpoint of each batch with
//! the number of messages handed over before it. At most `pipeline.max_in_flight` messages
//! wait for their acknowledgement at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::config::{ConnectorConfig, Settings, SnapshotMode};
use crate::error::{Error, EventFault, Result};
use crate::event::SourceMessage;
use crate::offsets::tracker::{self, Checkpoint};
use crate::offsets::{now_ms, PositionStore};
use crate::router::{Body, Router};
use crate::schema::registry::RegistryClient;
use crate::schema::Encoder;
use crate::sink::{Output, Sink};
use crate::source::{SourceContext, StartHints};
use crate::status::{BatchCounts, Control, Desired, Phase};
use faults::{Faults, Verdict};

pub mod faults;
pub mod report;
pub mod transactions;

/// Source messages taken from the channel at once: one wake-up of the pipeline per batch.
const BATCH: usize = 1024;
/// Checkpoints on their way to the tracker (one per batch at most).
const CHECKPOINTS_QUEUED: usize = 64;

/// What ended a wait of the supervisor.
enum Woken {
    Shutdown,
    /// An operator asked for something through the admin API (pause, resume, restart).
    Control,
    Elapsed,
}

/// Waits for `delay` (forever with `None`), a shutdown, or a control request other than
/// `seen`.
async fn wait(
    delay: Option<Duration>,
    shutdown: &mut watch::Receiver<bool>,
    control: &mut watch::Receiver<Control>,
    seen: Control,
) -> Woken {
    let sleep = async {
        match delay {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown.wait_for(|s| *s) => Woken::Shutdown,
        changed = control.wait_for(|c| *c != seen) => match changed {
            Ok(_) => Woken::Control,
            // The status outlives the supervisor: cannot happen; treat as a shutdown.
            Err(_) => Woken::Shutdown,
        },
        _ = sleep => Woken::Elapsed,
    }
}

/// Runs one connector until shutdown, restarting it after transient errors and when the
/// admin API asks, pausing it when asked. Returns the definite error that stopped it, if any.
///
/// After a definite error, with `keep_running_on_failure`, the connector stays `failed` (the
/// process up, not ready, the error in its status) until a restart request or a shutdown.
pub async fn supervise(
    cfg: Arc<ConnectorConfig>,
    settings: Arc<Settings>,
    sink: Arc<Sink>,
    store: Arc<PositionStore>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let status = crate::status::register(&cfg);
    let mut control = status.control();
    let mut backoff = crate::retry::Backoff::connector();
    let mut lives = 0u64;
    loop {
        let mut seen = *control.borrow_and_update();
        if seen.desired == Desired::Paused {
            status.set_phase(Phase::Paused);
            tracing::info!(connector = %cfg.name, "connector paused (its position is committed; POST /connectors/{{name}}/resume to go on)");
            match wait(None, &mut shutdown, &mut control, seen).await {
                Woken::Shutdown => {
                    status.set_phase(Phase::Stopped);
                    return Ok(());
                }
                _ => continue,
            }
        }
        if lives > 0 {
            status.restarted();
        }
        lives += 1;
        status.set_phase(Phase::Starting);
        let started = Instant::now();
        // This life stops at a shutdown or at a control request.
        let (life_tx, life_rx) = watch::channel(false);
        let mut requested = false;
        let result = {
            let life = run_once(
                cfg.clone(),
                settings.clone(),
                sink.clone(),
                store.clone(),
                life_rx,
            );
            tokio::pin!(life);
            let mut control = control.clone();
            let mut shutdown = shutdown.clone();
            loop {
                tokio::select! {
                    r = &mut life => break r,
                    woken = wait(None, &mut shutdown, &mut control, seen), if !*life_tx.borrow() => {
                        requested = matches!(woken, Woken::Control);
                        life_tx.send_replace(true);
                    }
                }
            }
        };
        status.life_ended();
        if *shutdown.borrow() {
            if let Err(e) = &result {
                tracing::warn!(connector = %cfg.name, error = %e, "error during shutdown");
            }
            status.set_phase(Phase::Stopped);
            return Ok(());
        }
        if requested {
            if let Err(e) = &result {
                tracing::warn!(connector = %cfg.name, error = %e, "error while stopping for a request of the admin API");
            }
            backoff = crate::retry::Backoff::connector();
            continue;
        }
        match result {
            Ok(()) => {
                status.set_phase(Phase::Stopped);
                return Ok(());
            }
            Err(e) if e.is_transient() => {
                status.error(&e, Phase::Retrying);
                let delay = backoff.next_delay(started);
                let attempt = backoff.attempt();
                if e.unclassified {
                    tracing::warn!(connector = %cfg.name, error = %e, retry_in_ms = delay.as_millis() as u64,
                        attempt, unclassified = true,
                        "unclassified error (tidemark does not know whether a retry can help, so it retries); \
                         restarting the connector from its last committed position; if this repeats, the error \
                         above says what to fix");
                } else {
                    tracing::warn!(connector = %cfg.name, error = %e, retry_in_ms = delay.as_millis() as u64,
                        attempt, "transient error; restarting the connector from its last committed position");
                }
                seen = *control.borrow_and_update();
                if let Woken::Shutdown = wait(Some(delay), &mut shutdown, &mut control, seen).await
                {
                    status.set_phase(Phase::Stopped);
                    return Ok(());
                }
            }
            Err(e) => {
                status.error(&e, Phase::Failed);
                tracing::error!(connector = %cfg.name, error = %e,
                    table = e.table.as_ref().map(|t| t.to_string()), "connector stopped");
                if !settings.keep_running_on_failure {
                    return Err(e);
                }
                tracing::warn!(connector = %cfg.name,
                    "the connector stays stopped and the daemon keeps running (on_connector_failure: keep_running): \
                     GET /connectors/{{name}} shows the error; fix it, then POST /connectors/{{name}}/restart");
                seen = *control.borrow_and_update();
                match wait(None, &mut shutdown, &mut control, seen).await {
                    Woken::Shutdown => return Err(e),
                    _ => {
                        backoff = crate::retry::Backoff::connector();
                        continue;
                    }
                }
            }
        }
    }
}

/// What the sink's topics say about the start (see [`StartHints`]): no stored position while
/// the topics hold messages means a lost position; with one, under `snapshot.mode: initial`, a
/// table whose topic holds nothing was added since (or has never had a row) and is
/// snapshotted. A sink that keeps nothing (stdout) tells nothing.
async fn start_hints(
    cfg: &ConnectorConfig,
    sink: &Sink,
    router: &Router,
    stored: bool,
) -> Result<StartHints> {
    let mut hints = StartHints::default();
    if !sink.keeps_messages() {
        return Ok(hints);
    }
    let table_topics = router.table_topics();
    let topics: Vec<String> = table_topics.iter().map(|(_, t)| t.clone()).collect();
    if !stored {
        hints.lost_position = sink.holds_messages(&topics).await?;
        if hints.lost_position {
            tracing::warn!(connector = %cfg.name,
                "no stored position, but the connector's topics hold messages: its position was lost");
        }
    } else if cfg.snapshot.mode == SnapshotMode::Initial {
        for (table, topic) in &table_topics {
            if !sink.holds_messages(std::slice::from_ref(topic)).await? {
                tracing::info!(connector = %cfg.name, table = %table, topic = %topic,
                    "the table's topic holds nothing yet (a table added to the connector?): snapshotting it (snapshot.mode initial)");
                hints.new_tables.push(table.clone());
            }
        }
    }
    Ok(hints)
}

/// Carries out a policy's verdict on an event at fault: the dead-letter record is produced
/// (its topic made sure of once), a skip produces nothing.
async fn set_aside(
    verdict: Verdict<'_>,
    sink: &Sink,
    output: &mut Output,
    dead_letter_ready: &mut bool,
) -> Result<()> {
    match verdict {
        Verdict::Skip => Ok(()),
        Verdict::DeadLetter(m) => {
            if !*dead_letter_ready {
                sink.ensure_topic(m.topic, false).await?;
                *dead_letter_ready = true;
            }
            output
                .send(m)
                .await
                .map_err(|e| e.context("producing to the dead-letter topic"))
        }
    }
}

/// Whether `routed` is a truncate whose key is null (the avro format: an Avro key record has
/// no value meaning "every row"; the debezium value profile: Debezium's truncate key is null)
/// on a compacted topic, which refuses records without a key, so it cannot be produced there.
fn compacted_null_key_truncate(routed: &crate::router::Routed, compact_topics: bool) -> bool {
    compact_topics
        && (routed.route.format == crate::config::Format::Avro
            || routed.route.values.profile == crate::config::ValueProfile::Debezium)
        && routed
            .change()
            .is_some_and(|e| e.op == crate::event::Op::Truncate)
}

/// Refuses to start when a table file names a column its live table lacks (a typo, or a
/// column dropped while tidemark was stopped), naming the file and the column.
/// Why `message` is too large for its topic (`limit`: the largest record the topic takes, when
/// the sink has one), or `None`.
fn too_large(message: &crate::event::Message<'_>, limit: Option<usize>) -> Option<String> {
    let limit = limit?;
    let size = message.wire_size();
    (size > limit).then(|| {
        format!(
            "the record for key {} on topic {} is about {size} bytes, over the {limit} bytes the \
             topic takes (the smaller of the producer's message.max.bytes, under kafka.producer \
             in tidemark.yaml, and the topic's max.message.bytes on the broker; raise both to \
             produce it)",
            message.key.map_or_else(
                || "null".into(),
                |k| String::from_utf8_lossy(&k[..k.len().min(200)])
            ),
            message.topic,
        )
    })
}

async fn check_table_files(cfg: &ConnectorConfig) -> Result<()> {
    let names_columns = cfg.tables.iter().any(|t| {
        !t.config.named_columns().is_empty()
            || t.config.filter.is_some()
            || t.config.outbox.is_some()
    });
    if !names_columns {
        return Ok(());
    }
    let live = crate::source::table_columns(cfg).await?;
    let problems = crate::router::check_columns(cfg, &live);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::definite(format!(
        "connector {}: {}; fix the table file (or the table)",
        cfg.name,
        problems.join("; ")
    )))
}

/// One life of a connector, from its stored position to an error or a shutdown.
pub async fn run_once(
    cfg: Arc<ConnectorConfig>,
    settings: Arc<Settings>,
    sink: Arc<Sink>,
    store: Arc<PositionStore>,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    // One process per connector: a newer one that takes it over stops this one.
    let mut lease = store.acquire(&cfg.name).await?;
    let start = store.load(&cfg.name).await?;
    tracing::info!(connector = %cfg.name, position = %start.as_ref().map_or_else(|| "none (first start)".to_string(), |p| p.to_string()), "starting connector");
    let mut router = Router::new(cfg.clone(), &settings.daemon, settings.hash_salt.clone())?;
    check_table_files(&cfg).await?;
    let hints = start_hints(&cfg, &sink, &router, start.is_some()).await?;
    for topic in router.configured_topics() {
        sink.ensure_topic(&topic, true).await?;
    }
    let (source_tx, mut source_rx) =
        mpsc::channel::<SourceMessage>(settings.daemon.pipeline.channel_capacity);
    let (checkpoint_tx, checkpoint_rx) = mpsc::channel::<Checkpoint>(CHECKPOINTS_QUEUED);
    let (acked_tx, acked_rx) = watch::channel(None);
    let status = crate::status::connector(&cfg.name);
    let mut output = Output::with_latency(sink.clone(), status.as_ref().map(|s| s.latency.clone()));
    let window = output.window().clone();

    let tracker = tokio::spawn(tracker::run(
        cfg.name.clone(),
        checkpoint_rx,
        window.clone(),
        store.clone(),
        Duration::from_millis(settings.daemon.offsets.commit_interval_ms),
        acked_tx,
    ));
    let source = tokio::spawn(crate::source::run(SourceContext {
        cfg: cfg.clone(),
        start,
        hints,
        compacted_topics: settings.daemon.kafka.compact_topics,
        out: source_tx,
        acked: acked_rx,
        shutdown: shutdown.clone(),
    }));

    let max_in_flight = settings.daemon.pipeline.max_in_flight.max(1) as u64;
    let registry = settings
        .schema_registry
        .as_ref()
        .map(|r| Ok::<_, Error>((RegistryClient::new(r)?, r.clone())))
        .transpose()?;
    let mut faults = Faults::new(cfg.clone(), &settings.daemon)?;
    let mut truncates_unproduced = 0u64;
    let transaction_topic = transactions::topic(&settings.daemon, &cfg)?;
    if let Some(topic) = &transaction_topic {
        sink.ensure_topic(topic, false).await?;
    }
    let mut transaction_tracker = transactions::TransactionTracker::default();
    let mut stream_report = report::StreamReport::new(settings.daemon.logging.progress_interval_ms);
    let mut counts = BatchCounts::default();
    // The newest commit time of the changes since the last checkpoint (for the lag).
    let mut newest_commit_ms: Option<i64> = None;
    let forward = async {
        // Topics this connector already made sure of: the sink is asked once per topic, not
        // once per event.
        let mut ensured: std::collections::HashSet<Arc<str>> = std::collections::HashSet::new();
        // The topic of the previous message (most messages go where the previous one went),
        // and the largest record it takes.
        let mut last_topic: Option<Arc<str>> = None;
        let mut last_topic_limit: Option<usize> = None;
        let mut batch = Vec::with_capacity(BATCH);
        let mut routed = Vec::new();
        let mut encoder = Encoder::new(registry, &cfg);
        let mut dead_letter_ready = false;
        // The acknowledged prefix as last read: re-read only when the in-flight limit is hit.
        let mut acked_prefix = 0u64;
        let mut transaction_records = Vec::new();
        // The pipeline stage's histogram (see `status::latency`).
        let pipeline_latency = status.as_ref().map(|s| s.latency.clone());
        while source_rx.recv_many(&mut batch, BATCH).await > 0 {
            let now = now_ms();
            let batch_taken = std::time::Instant::now();
            let mut checkpoint = None;
            for msg in batch.drain(..) {
                match msg {
                    SourceMessage::Change(event) => {
                        stream_report.event(event.source.ts_ms);
                        newest_commit_ms = Some(
                            newest_commit_ms
                                .map_or(event.source.ts_ms, |n| n.max(event.source.ts_ms)),
                        );
                        if let Some(topic) = &transaction_topic {
                            transaction_tracker.before_change(&event, &mut transaction_records);
                            for record in transaction_records.drain(..) {
                                let message = encoder
                                    .encode_transaction(&record, topic, settings.daemon.format)
                                    .await?;
                                output.send(message).await?;
                            }
                        }
                        let schema = event.table.clone();
                        router
                            .route_into(event, &mut routed)
                            .map_err(|e| e.for_table(&schema.id))?;
                        for r in routed.drain(..) {
                            if output.sent() - acked_prefix >= max_in_flight {
                                let wanted = output.sent() + 1 - max_in_flight;
                                acked_prefix = window.wait_for(wanted).await?.prefix;
                            }
                            if let Body::Rejected { reason, .. } = &r.body {
                                let reason = reason.clone();
                                counts.fault(EventFault::Routing.as_str());
                                let verdict =
                                    faults.handle(&r, EventFault::Routing, &reason, now)?;
                                set_aside(verdict, &sink, &mut output, &mut dead_letter_ready)
                                    .await?;
                                continue;
                            }
                            let same_topic = last_topic
                                .as_ref()
                                .is_some_and(|t| Arc::ptr_eq(t, &r.route.topic));
                            if !same_topic {
                                if !ensured.contains(&r.route.topic) {
                                    let compact = !matches!(r.body, Body::Outbox { .. });
                                    sink.ensure_topic(&r.route.topic, compact).await?;
                                    ensured.insert(r.route.topic.clone());
                                }
                                last_topic = Some(r.route.topic.clone());
                                last_topic_limit = sink.max_message_bytes(&r.route.topic);
                            }
                            if compacted_null_key_truncate(&r, settings.daemon.kafka.compact_topics)
                            {
                                truncates_unproduced += 1;
                                tracing::warn!(connector = %cfg.name, table = %schema.id,
                                    position = r.change().map(|e| e.source.location.to_string()),
                                    truncates_unproduced,
                                    "TRUNCATE not produced: in the avro format and the debezium value \
                                     profile its key is null (as Debezium's), and a compacted topic takes no \
                                     record without a key; consumers of a compacted topic see the rows go \
                                     only by their own deletes (use format json with values: tidemark, whose \
                                     truncate key is {{}}, or kafka.compact_topics: false, to get truncate events)");
                                continue;
                            }
                            if let Some((fault, why)) = encoder.prepare(&r).await? {
                                counts.fault(fault.as_str());
                                let verdict = faults.handle(&r, fault, &why, now)?;
                                set_aside(verdict, &sink, &mut output, &mut dead_letter_ready)
                                    .await?;
                                continue;
                            }
                            let fault = match encoder.encode(&r, now) {
                                Err(e) => {
                                    Some((e.fault.unwrap_or(EventFault::Encoding), e.to_string()))
                                }
                                Ok(message) => {
                                    let limit = if message.topic == &*r.route.topic {
                                        last_topic_limit
                                    } else {
                                        sink.max_message_bytes(message.topic)
                                    };
                                    match too_large(&message, limit) {
                                        Some(why) => Some((EventFault::TooLarge, why)),
                                        None => {
                                            let bytes = message.wire_size();
                                            match output.send(message).await {
                                                Ok(()) => {
                                                    if let Some(l) = &pipeline_latency {
                                                        l.pipeline.observe(batch_taken.elapsed());
                                                    }
                                                    let op = r
                                                        .change()
                                                        .map_or(crate::event::Op::Create, |e| e.op);
                                                    counts.produced(&schema.id, op, bytes);
                                                    None
                                                }
                                                Err(e) => match e.fault {
                                                    Some(fault) => Some((fault, e.to_string())),
                                                    // A broker outage concerns no table; a refusal does.
                                                    None if e.is_transient() => {
                                                        return Err(e.context(format!(
                                                            "connector {}: table {}",
                                                            cfg.name, schema.id
                                                        )))
                                                    }
                                                    None => {
                                                        return Err(e
                                                            .context(format!(
                                                                "connector {}: table {}",
                                                                cfg.name, schema.id
                                                            ))
                                                            .for_table(&schema.id))
                                                    }
                                                },
                                            }
                                        }
                                    }
                                }
                            };
                            if let Some((fault, why)) = fault {
                                counts.fault(fault.as_str());
                                let verdict = faults.handle(&r, fault, &why, now)?;
                                set_aside(verdict, &sink, &mut output, &mut dead_letter_ready)
                                    .await?;
                            }
                        }
                    }
                    SourceMessage::SchemaChange { table, previous } => {
                        tracing::info!(connector = %cfg.name, table = %table.id,
                            columns = %table.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
                            previous_columns = %previous.as_ref().map_or_else(|| "unknown".to_string(), |p| p.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")),
                            "table changed shape in the log");
                    }
                    boundary @ (SourceMessage::Checkpoint(_) | SourceMessage::TransactionEnd) => {
                        if let (Some(topic), Some(end)) =
                            (&transaction_topic, transaction_tracker.at_checkpoint())
                        {
                            let message = encoder
                                .encode_transaction(&end, topic, settings.daemon.format)
                                .await?;
                            output.send(message).await?;
                        }
                        // A transaction's end whose position a later checkpoint carries.
                        let SourceMessage::Checkpoint(position) = boundary else {
                            continue;
                        };
                        // A later checkpoint of the batch replaces an earlier one: it
                        // carries the earlier one's newest commit time too.
                        let earlier = checkpoint
                            .as_ref()
                            .and_then(|c: &Checkpoint| c.newest_commit_ms);
                        let newest = match (earlier, newest_commit_ms.take()) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                        checkpoint = Some(Checkpoint {
                            position,
                            after: output.sent(),
                            newest_commit_ms: newest,
                        })
                    }
                }
            }
            output.end_batch()?;
            if let Some(status) = &status {
                status.batch(&mut counts, output.sent() - window.acked().prefix);
                status.left_out(faults.dead_lettered, faults.skipped, router.filtered());
            }
            if stream_report.due() {
                if let Some(c) = &checkpoint {
                    stream_report.position(c.position.to_string());
                }
                stream_report.maybe_log(&cfg.name, now);
            }
            if let Some(failure) = window.failure() {
                return Err(failure);
            }
            // Only the newest checkpoint of a batch: it implies the earlier ones.
            if let Some(c) = checkpoint {
                if checkpoint_tx.send(c).await.is_err() {
                    return Ok(false);
                }
            }
        }
        Ok::<bool, Error>(true)
    };
    let lease_lost = async {
        // (The Ref that wait_for returns is not Send: it is dropped inside.)
        let why = lease
            .wait_for(Option::is_some)
            .await
            .map(|why| why.clone().unwrap_or_default());
        match why {
            Ok(why) => why,
            // A store that does not fence.
            Err(_) => std::future::pending().await,
        }
    };
    let forwarded = tokio::select! {
        r = forward => r,
        why = lease_lost => Err(Error::definite(why)),
    };
    // What this life of the connector left out of its topics, on purpose.
    if router.filtered() + faults.dead_lettered + faults.skipped + truncates_unproduced > 0 {
        tracing::info!(connector = %cfg.name, filtered = router.filtered(),
            dead_lettered = faults.dead_lettered, skipped = faults.skipped, truncates_unproduced,
            "events not on their topics since the connector started: left out by row filters, \
             sent to the dead-letter topic, skipped by on_error: skip, truncates of avro tables \
             on compacted topics");
    }
    // Whatever happened, let the tracker finish: it commits the last fully acknowledged
    // checkpoint, which limits duplicates after a restart.
    drop(source_rx);
    drop(checkpoint_tx);
    let tracked = tracker
        .await
        .map_err(|e| Error::transient("position tracker task").with_source(e))?;
    let sourced = match forwarded {
        Ok(true) => source
            .await
            .map_err(|e| Error::transient("source task").with_source(e))?,
        _ => {
            source.abort();
            Ok(())
        }
    };
    forwarded?;
    tracked?;
    sourced
}
