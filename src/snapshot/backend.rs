//! The seam between the snapshot's bookkeeping ([`Driver`]) and a database: what a source
//! implements ([`SnapshotBackend`]: plan a table, build and run a chunk query, write a
//! watermark) and the chunk sequence every source runs with it ([`ChunkReader::read_round`]).
//!
//! The sequence is the algorithm's (see [`crate::snapshot`]): take the next request; plan its
//! table; build the chunk's query (anything that can refuse the request refuses it here,
//! before a watermark is written); write the **low watermark**; run the query; write the **high
//! watermark**; then arm the chunk in the driver, unless the backend finds that the query
//! missed a transaction the stream already showed (PostgreSQL), in which case the driver reads
//! the same chunk again. All of it runs in the source's stream loop, between two reads of its
//! log, so the log cannot show a watermark of a chunk that is not armed yet.
//!
//! With `snapshot.parallelism: N` the reader holds N backends (N sessions) and runs a round of
//! up to N chunks at once ([`ChunkReader::read_round`]), each between its own watermarks; the
//! round ends, and the loop reads its log again, once every chunk of it is armed. A whole table
//! not begun is first split into key ranges by bounds its backend samples
//! ([`SnapshotBackend::split_bounds`]), so that one large table is read by N sessions too.
//!
//! Failures: an error of the plan goes to [`Driver::plan_failed`]; a chunk that cannot be read
//! as asked ([`ChunkError::Unreadable`]) is a transient error (the connector restarts), a table
//! whose shape changed under the query (planned anew and read again, once), or a task that is
//! skipped ([`Driver::chunk_failed`]); anything else ([`ChunkError::Stop`]) stops the stream.

use std::future::Future;
use std::sync::Arc;

use super::driver::{ChunkRequest, Driver, SnapRow};
use super::visibility::{Conflict, TxnSnapshot};
use super::SnapshotTask;
use crate::error::{Error, Result};
use crate::event::{TableId, TableSchema};

/// What a backend learned planning a table, for the driver.
pub struct Planned {
    /// The key columns (indices into the row) the chunks are ordered and bounded by.
    pub key_columns: Vec<usize>,
    /// The row count the database's statistics estimate (for progress).
    pub estimate: f64,
}

/// A chunk as read between its watermarks.
pub struct ChunkRead {
    /// The table's shape the rows were read with.
    pub schema: Arc<TableSchema>,
    /// The rows, in key order.
    pub rows: Vec<SnapRow>,
    /// What the query saw of the transactions, where commits can precede their visibility in
    /// the log (PostgreSQL); `None` where they cannot (MySQL).
    pub seen: Option<TxnSnapshot>,
}

/// Why a chunk was not read.
#[derive(Debug)]
pub enum ChunkError {
    /// The chunk cannot be read as asked (a key bound of the wrong arity or type, a condition
    /// the database refuses, a column gone): `shape_changed` when the query names a column
    /// the table no longer has.
    Unreadable { error: Error, shape_changed: bool },
    /// Anything else: the stream stops with it (and restarts if it is transient).
    Stop(Error),
}

impl From<Error> for ChunkError {
    fn from(e: Error) -> Self {
        ChunkError::Stop(e)
    }
}

/// How one kind of database is read by the snapshot.
pub trait SnapshotBackend {
    /// What of the stream's state the backend needs per chunk (PostgreSQL: the type cache and
    /// the commit history), or `()`.
    type Stream;
    /// A chunk's query, built before the low watermark.
    type Query: Send;

    /// Plans `table` unless it is planned: `Some` when it was planned now.
    fn plan(
        &mut self,
        table: &TableId,
        stream: &mut Self::Stream,
    ) -> impl Future<Output = Result<Option<Planned>>> + Send;

    /// Builds the query of `request` (its table is planned).
    fn prepare_chunk(
        &mut self,
        request: &ChunkRequest,
    ) -> impl Future<Output = Result<Self::Query, ChunkError>> + Send;

    /// Writes a watermark with `text` into the log, committed before it returns.
    fn write_watermark(&mut self, text: &str) -> impl Future<Output = Result<()>> + Send;

    /// Runs `query`, read-only.
    fn read_chunk(
        &mut self,
        request: &ChunkRequest,
        query: Self::Query,
    ) -> impl Future<Output = Result<ChunkRead, ChunkError>> + Send;

    /// A transaction the stream has shown that the chunk's query did not see, if any (then the
    /// chunk is read again). Called once per chunk, after its high watermark.
    fn conflict(&mut self, read: &ChunkRead, stream: &mut Self::Stream) -> Option<Conflict>;

    /// Every chunk of a round (`reads`) has been checked with [`SnapshotBackend::conflict`]:
    /// what the stream keeps for those checks may be trimmed to what a later query can need.
    fn round_checked(&mut self, _reads: &[&ChunkRead], _stream: &mut Self::Stream) {}

    /// Forgets how `table` is read (its shape may have changed); the next chunk plans it
    /// again. Chunks already read keep the shape they were read with.
    fn forget_plan(&mut self, table: &TableId) -> impl Future<Output = ()> + Send;

    /// Keys that cut `table` (planned) into `parts` key ranges of about equal row counts: at
    /// most `parts - 1`, strictly increasing, each key column as the database writes it as
    /// text (as [`SnapRow::key_text`]); fewer or none when the table is too small.
    /// `estimate`: the statistics' row count (0 when unknown).
    fn split_bounds(
        &mut self,
        table: &TableId,
        parts: usize,
        estimate: f64,
    ) -> impl Future<Output = Result<Vec<Vec<String>>>> + Send;
}

/// The keys at each of `parts` equal shares of `sorted` (keys in key order, a sample or the
/// whole): at most `parts - 1`, strictly increasing (a repeated key is taken once).
pub fn quantiles(sorted: Vec<Vec<String>>, parts: usize) -> Vec<Vec<String>> {
    let n = sorted.len();
    if parts < 2 || n < parts {
        return Vec::new();
    }
    let mut bounds: Vec<Vec<String>> = Vec::with_capacity(parts - 1);
    for i in 1..parts {
        let key = &sorted[n * i / parts - 1];
        if bounds.last() != Some(key) {
            bounds.push(key.clone());
        }
    }
    bounds
}

/// Reads a snapshot's chunks with backends, one per chunk read at once
/// (`snapshot.parallelism`): owned by the source's stream loop while its driver has a
/// snapshot in progress.
pub struct ChunkReader<B> {
    connector: String,
    backends: Vec<B>,
    /// The table planned anew after its chunk query named a column that is gone (a second
    /// such failure skips the task).
    replanned: Option<TableId>,
}

/// What became of one reader's chunk in a round.
enum Outcome {
    Read(ChunkRead),
    Failed(ChunkError),
}

impl<B: SnapshotBackend> ChunkReader<B> {
    /// `backends`: one per chunk read at once (at least one).
    pub fn new(connector: &str, backends: Vec<B>) -> Self {
        Self {
            connector: connector.to_owned(),
            backends,
            replanned: None,
        }
    }

    /// See [`SnapshotBackend::forget_plan`].
    pub async fn forget_plan(&mut self, table: &TableId) {
        for b in &mut self.backends {
            b.forget_plan(table).await;
        }
    }

    /// Reads the driver's next chunks, one per backend at once, each between its own
    /// watermarks, and arms them (or has them read again, or skips their tasks; see the module
    /// doc). Every chunk of the round is armed before this returns, so before the stream loop
    /// reads further.
    pub async fn read_round(&mut self, driver: &mut Driver, stream: &mut B::Stream) -> Result<()> {
        if let Some((task, parts)) = driver.to_split() {
            self.split(driver, stream, &task, parts).await?;
        }
        let requests = driver.next_requests();
        // Plan and build each chunk's query on its reader's session; anything that refuses a
        // request refuses it here, before its watermarks.
        let mut jobs: Vec<(usize, ChunkRequest, B::Query)> = Vec::with_capacity(requests.len());
        for (i, request) in requests.into_iter().enumerate() {
            let table = request.table.clone();
            let Some(backend) = self.backends.get_mut(i) else {
                // More requests than sessions (the driver issues at most one per session).
                driver.reissue(&request);
                continue;
            };
            match backend.plan(&table, stream).await {
                Ok(Some(p)) => driver.planned(&table, p.key_columns, p.estimate),
                Ok(None) => {}
                Err(e) => {
                    driver.plan_failed(&request, e)?;
                    continue;
                }
            }
            match backend.prepare_chunk(&request).await {
                Ok(q) => jobs.push((i, request, q)),
                Err(e) => self.failed(driver, &request, e).await?,
            }
        }
        // The chunks of the round, at once, each on its own session: low watermark, query,
        // high watermark.
        let mut sessions: Vec<Option<&mut B>> = self.backends.iter_mut().map(Some).collect();
        let mut reads = Vec::with_capacity(jobs.len());
        for (i, request, query) in jobs {
            let Some(backend) = sessions.get_mut(i).and_then(Option::take) else {
                driver.reissue(&request);
                continue;
            };
            let low = driver.watermark_text(request.id, "low");
            let high = driver.watermark_text(request.id, "high");
            reads.push(async move {
                let outcome = async {
                    backend.write_watermark(&low).await?;
                    let outcome = match backend.read_chunk(&request, query).await {
                        Ok(read) => Outcome::Read(read),
                        Err(e) => return Ok(Outcome::Failed(e)),
                    };
                    backend.write_watermark(&high).await?;
                    Ok::<_, Error>(outcome)
                }
                .await;
                (i, request, outcome)
            });
        }
        let outcomes = futures::future::join_all(reads).await;
        // Every chunk of the round is checked against the stream before the stream forgets
        // anything (a later check may need what an earlier one's snapshot let it forget).
        let mut first_error = None;
        let mut checked = Vec::with_capacity(outcomes.len());
        for (i, request, outcome) in outcomes {
            match outcome {
                Ok(Outcome::Read(read)) => {
                    let conflict = self.backends[i].conflict(&read, stream);
                    checked.push((request, Ok((read, conflict))));
                }
                Ok(Outcome::Failed(e)) => checked.push((request, Err(e))),
                Err(e) => {
                    driver.reissue(&request);
                    first_error.get_or_insert(e);
                }
            }
        }
        let reads: Vec<&ChunkRead> = checked
            .iter()
            .filter_map(|(_, c)| c.as_ref().ok().map(|(read, _)| read))
            .collect();
        if let Some(b) = self.backends.first_mut() {
            b.round_checked(&reads, stream);
        }
        // Then, in request order, each chunk is armed (or read again, or its task skipped).
        for (request, checked) in checked {
            match checked {
                Ok((_, Some(c))) => driver.retry(request, c),
                Ok((read, None)) => {
                    if self.replanned.as_ref() == Some(&request.table) {
                        self.replanned = None;
                    }
                    driver.arm(request, read.schema, read.rows, read.seen);
                }
                Err(e) => {
                    if let Err(e) = self.failed(driver, &request, e).await {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(())
    }

    /// Splits `task` (a whole table, not begun) into up to `parts` key ranges by bounds the
    /// first backend finds (none when the table is small: it is read whole).
    async fn split(
        &mut self,
        driver: &mut Driver,
        stream: &mut B::Stream,
        task: &SnapshotTask,
        parts: usize,
    ) -> Result<()> {
        let backend = &mut self.backends[0];
        match backend.plan(&task.table, stream).await {
            Ok(Some(p)) => driver.planned(&task.table, p.key_columns, p.estimate),
            Ok(None) => {}
            // The task's first chunk meets the same error and deals with it.
            Err(_) => return Ok(()),
        }
        let estimate = driver.estimate(&task.table);
        let chunk_size = driver.chunk_size(&task.table);
        // A table of fewer rows than a chunk per reader is read whole; an unknown estimate
        // (a table never analysed) leaves it to the sample.
        let parts = if estimate > 0.0 {
            parts.min((estimate / chunk_size as f64).ceil() as usize)
        } else {
            parts
        };
        if parts < 2 {
            return Ok(());
        }
        let bounds = match backend.split_bounds(&task.table, parts, estimate).await {
            Ok(b) => b,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::warn!(connector = %self.connector, table = %task.table, error = %e,
                    "could not find key bounds to split the table; it is read by one reader");
                return Ok(());
            }
        };
        driver.split(task, &bounds);
        Ok(())
    }

    async fn failed(
        &mut self,
        driver: &mut Driver,
        request: &ChunkRequest,
        e: ChunkError,
    ) -> Result<()> {
        let table = &request.table;
        let (error, shape_changed) = match e {
            ChunkError::Stop(e) => {
                driver.reissue(request);
                return Err(e);
            }
            ChunkError::Unreadable {
                error,
                shape_changed,
            } => (error, shape_changed),
        };
        if error.is_transient() {
            driver.reissue(request);
            return Err(error);
        }
        if shape_changed && self.replanned.as_ref() != Some(table) {
            tracing::info!(connector = %self.connector, table = %table, error = %error,
                "the table changed shape under the snapshot; planning it anew and reading the chunk again");
            self.replanned = Some(table.clone());
            self.forget_plan(table).await;
            driver.reissue(request);
            return Ok(());
        }
        self.replanned = None;
        driver.chunk_failed(request, &error.for_table(table));
        Ok(())
    }
}
