//! tidemark's logical replication client: one session per connector that reads the WAL
//! stream in batches and reports acknowledged positions to the server.
//!
//! Why a client of our own. Reading PostgreSQL's stream costs more CPU than decoding it.
//! The walsender flushes its socket after every WAL record it decodes, so a reader that waits
//! for data wakes once per few messages. Measured on the development machine (2 cores, 100,000
//! changes; BENCHMARKS.md, session 14): the previous client (`pgwire-replication`, whose worker
//! task owns the socket and hands every message through a channel) cost 7-11 µs of CPU per
//! change, more than producing the change to Kafka, and 36,535 voluntary context switches; it
//! offers no way to pace its reads. This client reading as data arrives: 8.8-9.7 µs and about
//! 100,000 switches; pacing its reads as below: 0.86-0.88 µs and about 600 switches.
//!
//! How this one reads. A reader task owns the connection:
//! - **Coalesced reads under load** (`crate::source::read_pacing`, shared with the MySQL
//!   source). While messages arrive faster than `BUSY_RATE` (measured over windows of
//!   `RATE_WINDOW`), a read waits until `read_coalesce` (2 ms by default) has
//!   passed since the previous one: what the server sends meanwhile is read in one wake-up.
//!   Below that rate, and after a quiet spell, every read happens as soon as data arrives, so
//!   latency at ordinary rates is unchanged; under load a message waits at most
//!   `read_coalesce` (plus the timer's 1 ms granularity) longer. `postgres.read_coalesce_ms: 0`
//!   never waits.
//! - **Batches.** Every whole message of a read goes to the consumer in one batch (one
//!   hand-over and at most one wake-up per batch, not per message). At most `BATCHES_QUEUED`
//!   batches wait; then the task stops reading and TCP flow control holds the server back.
//! - **Status updates** report only the position the consumer set with
//!   [`ReplicationStream::set_applied`] (tidemark sets it to positions whose every event Kafka
//!   acknowledged), as written, flushed and applied. One is sent every `status_interval`, also
//!   while the consumer is busy or the queue is full (so `wal_sender_timeout` never ends a
//!   healthy session), and at once when the server asks for a reply.
//! - **Ending.** [`ReplicationStream::shutdown`] sends a last status update with the newest
//!   applied position, then `CopyDone` and `Terminate`. A connection error, a server error or
//!   an unexpected message is handed to the consumer after the messages read before it.

mod error;
mod session;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use error::{ServerError, WireError};
pub use session::StartOptions;
use session::Transport;
use wire::CopyData;

use crate::source::read_pacing::ReadPacing;

/// Batches read but not yet taken by the consumer.
const BATCHES_QUEUED: usize = 4;
/// Messages per second from which reads are coalesced (`crate::source::read_pacing`): above
/// 10,000 single-row transactions a second (30,000 messages), where coalescing measured no
/// gain in CPU and 3 ms more p50 latency (BENCHMARKS.md, session 18).
const BUSY_RATE: u64 = 50_000;
/// At most this many messages per batch.
const BATCH_MAX: usize = 2048;
/// Free room kept in the read buffer before each read.
const READ_ROOM: usize = 128 * 1024;
/// How long a graceful end waits for the server to close the stream.
const END_WAIT: Duration = Duration::from_secs(5);

/// One item of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum WalItem {
    /// A pgoutput message, sent by the server at `wal_start`.
    Data { wal_start: u64, data: Bytes },
    /// The server's keepalive: everything it had to send before `wal_end` has been sent.
    KeepAlive { wal_end: u64 },
}

/// Pacing and reporting of a session.
#[derive(Clone)]
pub struct Pacing {
    /// How often a status update is sent.
    pub status_interval: Duration,
    /// How long a read waits after the previous one that returned data (0: none).
    pub read_coalesce: Duration,
    /// Where the waits are observed (`read_wait`), if anywhere.
    pub latency: Option<Arc<crate::status::latency::StageLatency>>,
}

/// Messages of the stream, with the moment the read that brought them returned.
type Batch = Result<(std::time::Instant, Vec<WalItem>), WireError>;

/// A running replication session (see the module doc).
pub struct ReplicationStream {
    batches: mpsc::Receiver<Batch>,
    current: std::vec::IntoIter<WalItem>,
    /// When the current batch was read from the socket.
    current_read_at: std::time::Instant,
    applied: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ReplicationStream {
    /// Connects, authenticates and starts streaming from `options.start_lsn`; the applied
    /// position starts there too.
    pub async fn start(
        connection: &crate::config::Connection,
        options: StartOptions<'_>,
        pacing: Pacing,
    ) -> Result<Self, WireError> {
        let (io, rbuf) = session::start(connection, &options).await?;
        let applied = Arc::new(AtomicU64::new(options.start_lsn));
        let (tx, batches) = mpsc::channel(BATCHES_QUEUED);
        let (stop, stop_rx) = watch::channel(false);
        let read_pacing =
            ReadPacing::new(pacing.read_coalesce, BUSY_RATE).with_latency(pacing.latency.clone());
        let reader = Reader {
            io,
            rbuf,
            wbuf: BytesMut::with_capacity(64),
            applied: applied.clone(),
            next_status: Instant::now() + pacing.status_interval,
            pacing,
            read_pacing,
            tx,
            stop: stop_rx,
        };
        let task = tokio::spawn(reader.run());
        Ok(Self {
            batches,
            current: Vec::new().into_iter(),
            current_read_at: std::time::Instant::now(),
            applied,
            stop,
            task: Some(task),
        })
    }

    /// The next item. Cancel-safe: an item is either returned or still there for the next
    /// call. After an error, every later call returns an error too.
    pub async fn recv(&mut self) -> Result<WalItem, WireError> {
        loop {
            if let Some(item) = self.current.next() {
                return Ok(item);
            }
            match self.batches.recv().await {
                Some(Ok((read_at, batch))) => {
                    self.current = batch.into_iter();
                    self.current_read_at = read_at;
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(WireError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the replication session has ended",
                    )))
                }
            }
        }
    }

    /// When the socket read that brought the item last returned completed (the start of
    /// the source stage's latency, `status::latency`).
    pub fn read_at(&self) -> std::time::Instant {
        self.current_read_at
    }

    /// The next item if the reader has already handed it over (no wait); `None` when the
    /// next one must be awaited with [`Self::recv`].
    pub fn try_next(&mut self) -> Option<WalItem> {
        self.current.next()
    }

    /// Reports `lsn` to the server (from the next status update on) as the position up to
    /// which everything is durably handled. Never moves back.
    pub fn set_applied(&self, lsn: u64) {
        self.applied.fetch_max(lsn, Ordering::Relaxed);
    }

    /// Ends the session: a last status update with the applied position, then `CopyDone`
    /// and `Terminate`.
    pub async fn shutdown(mut self) -> Result<(), WireError> {
        let _ = self.stop.send(true);
        // Unblock a reader waiting for room in the queue.
        self.batches.close();
        while self.batches.recv().await.is_some() {}
        if let Some(task) = self.task.take() {
            task.await.map_err(|e| {
                WireError::Io(std::io::Error::other(format!(
                    "the replication reader failed: {e}"
                )))
            })?;
        }
        Ok(())
    }
}

impl Drop for ReplicationStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The task that owns the connection.
struct Reader {
    io: Box<dyn Transport>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    applied: Arc<AtomicU64>,
    pacing: Pacing,
    next_status: Instant,
    /// When reads wait under load (see `crate::source::read_pacing`).
    read_pacing: ReadPacing,
    tx: mpsc::Sender<Batch>,
    stop: watch::Receiver<bool>,
}

/// What ended a wait of the reader.
enum Woke {
    Stop,
    StatusDue,
    Read,
    /// The consumer's queue is closed.
    Closed,
}

/// Why the reader stopped reading.
enum Ended {
    /// Shutdown was asked for.
    Stop,
    /// The consumer is gone.
    Dropped,
}

impl Reader {
    async fn run(mut self) {
        match self.stream().await {
            Ok(Ended::Stop) => {
                if let Err(e) = self.end().await {
                    tracing::debug!(error = %e, "ending the replication session");
                }
            }
            Ok(Ended::Dropped) => {}
            Err(e) => {
                let _ = self.tx.send(Err(e)).await;
            }
        }
    }

    async fn stream(&mut self) -> Result<Ended, WireError> {
        loop {
            let mut batch = Vec::new();
            let mut reply = false;
            while batch.len() < BATCH_MAX {
                let Some(f) = wire::next_frame(&mut self.rbuf)? else {
                    break;
                };
                match f.tag {
                    b'd' => match wire::parse_copy_data(f.body)? {
                        CopyData::XLogData { wal_start, data } => {
                            batch.push(WalItem::Data { wal_start, data })
                        }
                        CopyData::KeepAlive {
                            wal_end,
                            reply_requested,
                        } => {
                            reply |= reply_requested;
                            batch.push(WalItem::KeepAlive { wal_end });
                        }
                    },
                    b'N' => {
                        let notice = wire::parse_error_fields(&f.body);
                        tracing::info!(notice = %notice, "replication session notice");
                    }
                    b'E' => {
                        self.hand_over(batch).await?;
                        return Err(session::server_error(&f));
                    }
                    // CopyDone, CommandComplete, ReadyForQuery: the server ended the stream
                    // (a shutdown or a restart of the server).
                    b'c' | b'C' | b'Z' => {
                        self.hand_over(batch).await?;
                        return Err(WireError::Io(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server ended the replication stream",
                        )));
                    }
                    other => {
                        self.hand_over(batch).await?;
                        return Err(session::unexpected(other, "during replication"));
                    }
                }
            }
            self.read_pacing.count(batch.len());
            if reply || Instant::now() >= self.next_status {
                self.send_status().await?;
            }
            let more_buffered = batch.len() == BATCH_MAX;
            if let Some(ended) = self.hand_over(batch).await? {
                return Ok(ended);
            }
            if more_buffered {
                continue;
            }
            if let Some(ended) = self.read().await? {
                return Ok(ended);
            }
        }
    }

    /// Gives `batch` to the consumer, waiting for room while sending status updates on time.
    async fn hand_over(&mut self, batch: Vec<WalItem>) -> Result<Option<Ended>, WireError> {
        if batch.is_empty() {
            return Ok(None);
        }
        loop {
            let woke = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => Woke::Stop,
                permit = self.tx.reserve() => match permit {
                    Ok(p) => {
                        let read_at = self
                            .read_pacing
                            .last_read()
                            .unwrap_or_else(Instant::now)
                            .into_std();
                        p.send(Ok((read_at, batch)));
                        return Ok(None);
                    }
                    Err(_) => Woke::Closed,
                },
                _ = tokio::time::sleep_until(self.next_status) => Woke::StatusDue,
            };
            match woke {
                Woke::StatusDue => self.send_status().await?,
                Woke::Stop => return Ok(Some(Ended::Stop)),
                Woke::Closed if *self.stop.borrow() => return Ok(Some(Ended::Stop)),
                Woke::Closed => return Ok(Some(Ended::Dropped)),
                Woke::Read => {}
            }
        }
    }

    /// Reads more of the stream (after the coalescing pause), sending status updates on time.
    async fn read(&mut self) -> Result<Option<Ended>, WireError> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_ROOM / 2 {
            self.rbuf.reserve(READ_ROOM);
        }
        loop {
            let (io, rbuf, pacing) = (&mut self.io, &mut self.rbuf, &self.read_pacing);
            let woke = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => Woke::Stop,
                _ = tokio::time::sleep_until(self.next_status) => Woke::StatusDue,
                n = async {
                    pacing.pause().await;
                    io.read_buf(rbuf).await
                } => {
                    if n? == 0 {
                        return Err(WireError::Io(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server closed the replication connection",
                        )));
                    }
                    Woke::Read
                }
            };
            match woke {
                Woke::StatusDue => self.send_status().await?,
                Woke::Stop => return Ok(Some(Ended::Stop)),
                Woke::Read => {
                    self.read_pacing.read_returned();
                    return Ok(None);
                }
                Woke::Closed => return Ok(Some(Ended::Dropped)),
            }
        }
    }

    async fn send_status(&mut self) -> Result<(), WireError> {
        let lsn = self.applied.load(Ordering::Relaxed);
        wire::put_status_update(&mut self.wbuf, lsn, unix_micros(), false);
        self.io.write_all(&self.wbuf).await?;
        self.io.flush().await?;
        self.wbuf.clear();
        self.next_status = Instant::now() + self.pacing.status_interval;
        Ok(())
    }

    /// The graceful end: the last status update, `CopyDone`, the server's end of the stream
    /// (read and dropped, for at most `END_WAIT`), `Terminate`.
    async fn end(&mut self) -> Result<(), WireError> {
        self.send_status().await?;
        wire::put_copy_done(&mut self.wbuf);
        self.io.write_all(&self.wbuf).await?;
        self.io.flush().await?;
        self.wbuf.clear();
        let closed = tokio::time::timeout(END_WAIT, async {
            loop {
                let f = session::read_frame(&mut self.io, &mut self.rbuf).await?;
                if f.tag == b'Z' {
                    return Ok::<_, WireError>(());
                }
            }
        })
        .await;
        if let Ok(Err(e)) = closed {
            tracing::debug!(error = %e, "replication session: reading the end of the stream");
        }
        wire::put_terminate(&mut self.wbuf);
        self.io.write_all(&self.wbuf).await?;
        self.io.flush().await?;
        self.io.shutdown().await?;
        Ok(())
    }
}

fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
