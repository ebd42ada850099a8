//! The seam between the snapshot's bookkeeping ([`Driver`]) and a database: what a source
//! implements ([`SnapshotBackend`]: plan a table, build and run a chunk query, write a
//! watermark) and the chunk sequence every source runs with it ([`ChunkReader::read_next`]).
//!
//! The sequence is the algorithm's (see [`crate::snapshot`]): take the next request; plan its
//! table; build the chunk's query (anything that can refuse the request refuses it here,
//! before a watermark is written); write the **low watermark**; run the query; write the **high
//! watermark**; then arm the chunk in the driver, unless the backend finds that the query
//! missed a transaction the stream already showed (PostgreSQL), in which case the driver reads
//! the same chunk again. All of it runs in the source's stream loop, between two reads of its
//! log, so the log cannot show a watermark of a chunk that is not armed yet.
//!
//! Failures: an error of the plan goes to [`Driver::plan_failed`]; a chunk that cannot be read
//! as asked ([`ChunkError::Unreadable`]) is a transient error (the connector restarts), a table
//! whose shape changed under the query (planned anew and read again, once), or a task that is
//! skipped ([`Driver::chunk_failed`]); anything else ([`ChunkError::Stop`]) stops the stream.

use std::future::Future;
use std::sync::Arc;

use super::driver::{ChunkRequest, Driver, SnapRow};
use super::visibility::{Conflict, TxnSnapshot};
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

    /// Forgets how `table` is read (its shape may have changed); the next chunk plans it
    /// again. Chunks already read keep the shape they were read with.
    fn forget_plan(&mut self, table: &TableId) -> impl Future<Output = ()> + Send;
}

/// Reads a snapshot's chunks with a backend: owned by the source's stream loop while its
/// driver has a snapshot in progress.
pub struct ChunkReader<B> {
    connector: String,
    backend: B,
    /// The table planned anew after its chunk query named a column that is gone (a second
    /// such failure skips the task).
    replanned: Option<TableId>,
}

impl<B: SnapshotBackend> ChunkReader<B> {
    pub fn new(connector: &str, backend: B) -> Self {
        Self {
            connector: connector.to_owned(),
            backend,
            replanned: None,
        }
    }

    /// See [`SnapshotBackend::forget_plan`].
    pub async fn forget_plan(&mut self, table: &TableId) {
        self.backend.forget_plan(table).await;
    }

    /// Reads the driver's next chunk between its watermarks and arms it (or has it read again,
    /// or skips its task; see the module doc).
    pub async fn read_next(&mut self, driver: &mut Driver, stream: &mut B::Stream) -> Result<()> {
        let Some(request) = driver.next_request() else {
            return Ok(());
        };
        let table = request.table.clone();
        match self.backend.plan(&table, stream).await {
            Ok(Some(p)) => driver.planned(&table, p.key_columns, p.estimate),
            Ok(None) => {}
            Err(e) => return driver.plan_failed(e),
        }
        let query = match self.backend.prepare_chunk(&request).await {
            Ok(q) => q,
            Err(e) => return self.failed(driver, &table, e).await,
        };
        self.backend
            .write_watermark(&driver.watermark_text(request.id, "low"))
            .await?;
        let read = match self.backend.read_chunk(&request, query).await {
            Ok(r) => r,
            Err(e) => return self.failed(driver, &table, e).await,
        };
        self.backend
            .write_watermark(&driver.watermark_text(request.id, "high"))
            .await?;
        match self.backend.conflict(&read, stream) {
            Some(c) => driver.retry(request, c),
            None => {
                driver.arm(request, read.schema, read.rows, read.seen);
                self.replanned = None;
            }
        }
        Ok(())
    }

    async fn failed(&mut self, driver: &mut Driver, table: &TableId, e: ChunkError) -> Result<()> {
        let (error, shape_changed) = match e {
            ChunkError::Stop(e) => return Err(e),
            ChunkError::Unreadable {
                error,
                shape_changed,
            } => (error, shape_changed),
        };
        if error.is_transient() {
            return Err(error);
        }
        if shape_changed && self.replanned.as_ref() != Some(table) {
            tracing::info!(connector = %self.connector, table = %table, error = %error,
                "the table changed shape under the snapshot; planning it anew and reading the chunk again");
            self.replanned = Some(table.clone());
            self.backend.forget_plan(table).await;
            return Ok(());
        }
        self.replanned = None;
        driver.chunk_failed(&error.for_table(table));
        Ok(())
    }
}
