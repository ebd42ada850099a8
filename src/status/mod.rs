//! What each connector is doing: its phase, its last error, its committed position, its
//! snapshot's progress and its counters, for the admin API (`crate::admin`) and the metrics
//! (`prometheus`).
//!
//! The registry is process-wide, as a metrics registry is: the stages report to it by the
//! connector's name ([`connector`]), and a process with no daemon running (the unit tests,
//! `tidemark check`) has an empty registry, where every report is a no-op.
//!
//! Cost: the hot path never touches it per event. The pipeline counts into a local
//! [`BatchCounts`] and merges it here once per batch (one lock); the snapshot driver reports
//! when it logs its progress; the tracker at each commit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use serde::Serialize;
use tokio::sync::watch;

use crate::event::{now_ms, Op, TableId};

pub mod latency;
pub mod prometheus;

/// Where a connector is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Connecting, checking its tables, loading its position.
    Starting,
    /// Reading its log, with a snapshot in progress.
    Snapshotting,
    /// Reading its log.
    Streaming,
    /// Paused through the admin API: disconnected from its source, its position committed.
    Paused,
    /// Waiting to restart after a transient error.
    Retrying,
    /// Stopped by a definite error; restarts only when asked (`POST .../restart`).
    Failed,
    /// Stopped (the daemon is shutting down).
    Stopped,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Starting,
        Phase::Snapshotting,
        Phase::Streaming,
        Phase::Paused,
        Phase::Retrying,
        Phase::Failed,
        Phase::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Snapshotting => "snapshotting",
            Phase::Streaming => "streaming",
            Phase::Paused => "paused",
            Phase::Retrying => "retrying",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
        }
    }

    /// Whether a connector in this phase counts as ready (it moves data, or is about to).
    pub fn is_ready(self) -> bool {
        matches!(self, Phase::Snapshotting | Phase::Streaming)
    }
}

/// What an operator asked of a connector through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Paused,
}

/// The control a connector's supervisor watches: the desired state and a restart counter
/// (each `restart` request increments it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub desired: Desired,
    pub restarts: u64,
}

/// The error that stopped (or is restarting) a connector.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub message: String,
    /// `transient` or `definite`.
    pub kind: &'static str,
    pub table: Option<String>,
    pub at_ms: i64,
}

/// The snapshot in progress, as the driver last reported it.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStatus {
    /// The first table it reads now, its rows released so far and its row estimate.
    pub table: String,
    pub rows: u64,
    pub estimated_total: u64,
    pub rows_per_second: u64,
    pub tables_left: usize,
    pub paused: bool,
    /// Every table it reads now, the first included (more than one when
    /// `snapshot.parallelism` reads several tables at once).
    pub reading: Vec<TableReading>,
}

/// One table a snapshot is reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableReading {
    pub table: String,
    pub rows: u64,
    pub estimated_total: u64,
}

/// How far the connector is behind its server's log, as the source watcher last read it
/// (`crate::source::backlog`).
#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    /// The server's current log position, in the source's own text form.
    pub server_position: String,
    /// Log bytes between the connector's committed position and the server's current one
    /// (`None`: unknown, such as a binlog file no longer on the server).
    pub behind_bytes: Option<u64>,
    /// PostgreSQL: WAL the server keeps for the connector's replication slot (from the slot's
    /// `restart_lsn` to the current position); `None` for MySQL (no slot holds binlogs).
    pub retained_bytes: Option<u64>,
    /// When it was read (ms since the epoch).
    pub at_ms: i64,
}

/// Events and bytes produced for one table, per operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableCounts {
    pub create: u64,
    pub update: u64,
    pub delete: u64,
    pub read: u64,
    pub truncate: u64,
    pub bytes: u64,
}

impl TableCounts {
    fn add(&mut self, other: &TableCounts) {
        self.create += other.create;
        self.update += other.update;
        self.delete += other.delete;
        self.read += other.read;
        self.truncate += other.truncate;
        self.bytes += other.bytes;
    }

    fn count(&mut self, op: Op, bytes: usize) {
        match op {
            Op::Create => self.create += 1,
            Op::Update => self.update += 1,
            Op::Delete => self.delete += 1,
            Op::Read => self.read += 1,
            Op::Truncate => self.truncate += 1,
        }
        self.bytes += bytes as u64;
    }

    /// `(op, events)` in a fixed order, for the metrics.
    pub fn by_op(&self) -> [(&'static str, u64); 5] {
        [
            ("create", self.create),
            ("update", self.update),
            ("delete", self.delete),
            ("read", self.read),
            ("truncate", self.truncate),
        ]
    }
}

/// What the pipeline counted in one batch (merged into the status at the batch's end).
#[derive(Default)]
pub struct BatchCounts {
    tables: foldhash::HashMap<TableId, TableCounts>,
    faults: BTreeMap<&'static str, u64>,
    any: bool,
}

impl BatchCounts {
    /// A message of `table` produced for an `op` change, `bytes` on the wire.
    pub fn produced(&mut self, table: &TableId, op: Op, bytes: usize) {
        self.any = true;
        match self.tables.get_mut(table) {
            Some(c) => c.count(op, bytes),
            None => self
                .tables
                .entry(table.clone())
                .or_default()
                .count(op, bytes),
        }
    }

    /// An event at fault of `kind` (`crate::error::EventFault::as_str`).
    pub fn fault(&mut self, kind: &'static str) {
        self.any = true;
        *self.faults.entry(kind).or_default() += 1;
    }
}

/// The mutable part of a connector's status.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub phase: Phase,
    /// When the connector entered its phase (ms since the epoch).
    pub since_ms: i64,
    pub last_error: Option<LastError>,
    /// Lives after the first (transient errors, restart and resume requests), since the daemon started.
    pub restarts: u64,
    /// The newest committed position (the source's own form).
    pub position: Option<serde_json::Value>,
    pub committed_at_ms: Option<i64>,
    /// From the source's commit to the position's commit in tidemark (Kafka acknowledged it
    /// and the store has it), at the newest commit; 0 when nothing was waiting.
    pub lag_ms: Option<i64>,
    pub snapshot: Option<SnapshotStatus>,
    /// How far behind the server's log, when the source watcher runs (admin.source_poll_ms).
    pub backlog: Option<Backlog>,
    /// Messages handed to the producer and not yet acknowledged.
    pub in_flight: u64,
    pub tables: BTreeMap<String, TableCounts>,
    /// Events at fault, per kind (routing, encoding, too_large, validation, incompatible).
    pub faults: BTreeMap<&'static str, u64>,
    /// Errors that restarted or stopped the connector, per kind (transient, definite).
    pub errors: BTreeMap<&'static str, u64>,
    pub dead_lettered: u64,
    pub skipped: u64,
    pub filtered: u64,
    /// The three counters above as the connector's earlier lives left them.
    #[serde(skip)]
    left_out_before: [u64; 3],
}

/// One connector's status.
pub struct ConnectorStatus {
    pub name: String,
    /// `postgres` or `mysql`.
    pub kind: &'static str,
    state: Mutex<Snapshot>,
    control: watch::Sender<Control>,
    /// Where its events' time goes (`latency`); shared with its output's acknowledgements.
    pub latency: Arc<latency::StageLatency>,
}

impl ConnectorStatus {
    fn new(name: &str, kind: &'static str) -> Self {
        Self {
            name: name.to_string(),
            kind,
            state: Mutex::new(Snapshot {
                phase: Phase::Starting,
                since_ms: now_ms(),
                last_error: None,
                restarts: 0,
                position: None,
                committed_at_ms: None,
                lag_ms: None,
                snapshot: None,
                backlog: None,
                in_flight: 0,
                tables: BTreeMap::new(),
                faults: BTreeMap::new(),
                errors: BTreeMap::new(),
                dead_lettered: 0,
                skipped: 0,
                filtered: 0,
                left_out_before: [0; 3],
            }),
            control: watch::channel(Control {
                desired: Desired::Running,
                restarts: 0,
            })
            .0,
            latency: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while holding the lock leaves plain counters behind: still readable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the status.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Enters `phase` (a no-op when already in it).
    pub fn set_phase(&self, phase: Phase) {
        let mut s = self.lock();
        if s.phase != phase {
            s.phase = phase;
            s.since_ms = now_ms();
        }
    }

    /// The source reads its log: streaming, or snapshotting while a snapshot is in progress.
    pub fn reading(&self) {
        let snapshotting = self.lock().snapshot.is_some();
        self.set_phase(if snapshotting {
            Phase::Snapshotting
        } else {
            Phase::Streaming
        });
    }

    /// An error restarted (`transient`) or stopped (`definite`) the connector.
    pub fn error(&self, error: &crate::error::Error, phase: Phase) {
        let kind = if error.is_transient() {
            "transient"
        } else {
            "definite"
        };
        let mut s = self.lock();
        *s.errors.entry(kind).or_default() += 1;
        s.last_error = Some(LastError {
            message: error.to_string(),
            kind,
            table: error.table.as_ref().map(ToString::to_string),
            at_ms: now_ms(),
        });
        drop(s);
        self.set_phase(phase);
    }

    /// A new life of the connector begins.
    pub fn restarted(&self) {
        self.lock().restarts += 1;
    }

    /// The snapshot's progress (`None`: no snapshot in progress).
    pub fn snapshot_progress(&self, progress: Option<SnapshotStatus>) {
        let mut s = self.lock();
        let was = s.snapshot.is_some();
        s.snapshot = progress;
        let now = s.snapshot.is_some();
        drop(s);
        if was != now && self.phase().is_ready() {
            self.reading();
        }
    }

    /// A position committed; `newest_commit_ms`: the source commit time of the newest event
    /// it covers that was not covered by the previous one (`None`: no event since).
    pub fn committed(&self, position: &crate::event::Position, newest_commit_ms: Option<i64>) {
        let now = now_ms();
        let mut s = self.lock();
        s.position = Some(position.0.clone());
        s.committed_at_ms = Some(now);
        s.lag_ms = Some(newest_commit_ms.map_or(0, |c| (now - c).max(0)));
    }

    /// The source watcher's newest reading.
    pub fn backlog(&self, backlog: Backlog) {
        self.lock().backlog = Some(backlog);
    }

    /// Merges a batch's counts (and clears them) and records the messages in flight.
    pub fn batch(&self, counts: &mut BatchCounts, in_flight: u64) {
        let mut s = self.lock();
        s.in_flight = in_flight;
        if !counts.any {
            return;
        }
        for (table, c) in counts.tables.iter_mut() {
            match s.tables.get_mut(&table.to_string()) {
                Some(t) => t.add(c),
                None => {
                    s.tables.insert(table.to_string(), c.clone());
                }
            }
            *c = TableCounts::default();
        }
        for (kind, n) in std::mem::take(&mut counts.faults) {
            *s.faults.entry(kind).or_default() += n;
        }
        counts.any = false;
    }

    /// What this life of the connector left out of its topics on purpose so far (the status
    /// adds the earlier lives').
    pub fn left_out(&self, dead_lettered: u64, skipped: u64, filtered: u64) {
        let mut s = self.lock();
        let [d, k, f] = s.left_out_before;
        s.dead_lettered = d + dead_lettered;
        s.skipped = k + skipped;
        s.filtered = f + filtered;
    }

    /// A life of the connector ended: its counts become the earlier lives'.
    pub fn life_ended(&self) {
        let mut s = self.lock();
        s.left_out_before = [s.dead_lettered, s.skipped, s.filtered];
        s.in_flight = 0;
    }

    /// The supervisor's side of the control.
    pub fn control(&self) -> watch::Receiver<Control> {
        self.control.subscribe()
    }

    /// Asks the connector to pause (`Paused`) or to run (`Running`).
    pub fn request(&self, desired: Desired) {
        self.control.send_modify(|c| c.desired = desired);
    }

    /// Asks the connector to restart (and to run, if it was paused).
    pub fn request_restart(&self) {
        self.control.send_modify(|c| {
            c.desired = Desired::Running;
            c.restarts += 1;
        });
    }
}

/// The sink's brokers, as the producer last reported them.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaDown {
    /// librdkafka's report (`all brokers down` with its cause).
    pub reason: String,
    pub since_ms: i64,
}

/// Every connector of the daemon, in the order of their files.
#[derive(Default)]
pub struct Registry {
    connectors: RwLock<Vec<Arc<ConnectorStatus>>>,
    producer_queue: RwLock<Option<Arc<dyn Fn() -> u64 + Send + Sync>>>,
    /// Set while the producer's brokers are all down (read per acknowledgement: an atomic).
    kafka_is_down: std::sync::atomic::AtomicBool,
    kafka_down: RwLock<Option<KafkaDown>>,
}

impl Registry {
    /// The producer reported every broker down.
    pub fn kafka_down(&self, reason: &str) {
        let mut down = self.kafka_down.write().unwrap_or_else(|e| e.into_inner());
        if down.is_none() {
            *down = Some(KafkaDown {
                reason: reason.to_string(),
                since_ms: now_ms(),
            });
        }
        self.kafka_is_down
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A broker answers again.
    pub fn kafka_up(&self) {
        *self.kafka_down.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.kafka_is_down
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// A message was acknowledged (cheap when nothing was down).
    pub fn kafka_answered(&self) {
        if self
            .kafka_is_down
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.kafka_up();
        }
    }

    /// Since when and why the producer's brokers are down, if they are.
    pub fn kafka_outage(&self) -> Option<KafkaDown> {
        self.kafka_down
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Registers a connector (again: the same status).
    pub fn register(&self, name: &str, kind: &'static str) -> Arc<ConnectorStatus> {
        let mut all = self.connectors.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = all.iter().find(|c| c.name == name) {
            return c.clone();
        }
        let c = Arc::new(ConnectorStatus::new(name, kind));
        all.push(c.clone());
        c
    }

    pub fn get(&self, name: &str) -> Option<Arc<ConnectorStatus>> {
        self.all().into_iter().find(|c| c.name == name)
    }

    pub fn all(&self) -> Vec<Arc<ConnectorStatus>> {
        self.connectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How the metrics read the producer's queue (messages and requests librdkafka holds).
    pub fn set_producer_queue(&self, read: Arc<dyn Fn() -> u64 + Send + Sync>) {
        *self
            .producer_queue
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(read);
    }

    pub fn producer_queue(&self) -> Option<u64> {
        self.producer_queue
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|read| read())
    }
}

/// The process's registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// Registers `cfg`'s connector (again: its status as it is).
pub fn register(cfg: &crate::config::ConnectorConfig) -> Arc<ConnectorStatus> {
    let kind = match cfg.kind() {
        crate::config::SourceKind::Postgres => "postgres",
        crate::config::SourceKind::Mysql => "mysql",
    };
    registry().register(&cfg.name, kind)
}

/// The status of connector `name`, when the daemon registered it.
pub fn connector(name: &str) -> Option<Arc<ConnectorStatus>> {
    registry().get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_merge_per_table_and_op_and_clear() {
        let r = Registry::default();
        let c = r.register("c1", "postgres");
        let t = TableId {
            schema: "public".into(),
            table: "t".into(),
        };
        let mut counts = BatchCounts::default();
        counts.produced(&t, Op::Create, 100);
        counts.produced(&t, Op::Create, 50);
        counts.produced(&t, Op::Delete, 10);
        counts.fault("validation");
        c.batch(&mut counts, 3);
        c.batch(&mut counts, 1);
        counts.produced(&t, Op::Update, 5);
        c.batch(&mut counts, 0);
        let s = c.snapshot();
        let tc = &s.tables["public.t"];
        assert_eq!((tc.create, tc.update, tc.delete, tc.bytes), (2, 1, 1, 165));
        assert_eq!(s.faults["validation"], 1);
        assert_eq!(s.in_flight, 0);
        // Registering again gives the same status.
        assert!(Arc::ptr_eq(&c, &r.register("c1", "postgres")));
    }

    #[test]
    fn phases_follow_the_snapshot_and_errors() {
        let c = ConnectorStatus::new("c", "mysql");
        assert_eq!(c.phase(), Phase::Starting);
        c.reading();
        assert_eq!(c.phase(), Phase::Streaming);
        let progress = SnapshotStatus {
            table: "db.t".into(),
            rows: 10,
            estimated_total: 100,
            rows_per_second: 5,
            tables_left: 1,
            paused: false,
            reading: Vec::new(),
        };
        c.snapshot_progress(Some(progress));
        assert_eq!(c.phase(), Phase::Snapshotting);
        c.snapshot_progress(None);
        assert_eq!(c.phase(), Phase::Streaming);
        c.error(&crate::error::Error::definite("bad"), Phase::Failed);
        let s = c.snapshot();
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(s.last_error.as_ref().map(|e| e.kind), Some("definite"));
        assert_eq!(s.errors["definite"], 1);
        assert!(!s.phase.is_ready());
    }

    #[test]
    fn restart_requests_count_and_resume() {
        let c = ConnectorStatus::new("c", "postgres");
        let rx = c.control();
        c.request(Desired::Paused);
        assert_eq!(rx.borrow().desired, Desired::Paused);
        c.request_restart();
        assert_eq!(
            *rx.borrow(),
            Control {
                desired: Desired::Running,
                restarts: 1
            }
        );
    }
}
