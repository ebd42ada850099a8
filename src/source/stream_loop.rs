//! The skeleton both sources' stream loops share: one wait that races, in this order, a
//! requested shutdown, a newly acknowledged position, a snapshot chunk falling due and the
//! next item of the log; and one hand-over of messages that a shutdown interrupts.
//!
//! The order is the loop's contract: a shutdown wins over everything (checked before every
//! step, and raced against every wait, so a stalled broker or an idle server cannot hold the
//! daemon); an acknowledgement is reported before more of the log is read; a due chunk is read
//! and armed before the log is read further (so the log cannot show the low watermark of a
//! chunk that is not armed yet).

use std::future::Future;
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::stop_requested;
use crate::event::{Position, SourceMessage};
use crate::status::latency::StageLatency;

/// What woke the loop.
pub enum Wake<T> {
    /// Shutdown was requested: leave the loop.
    Stop,
    /// A newer position was acknowledged (read it with [`LoopControl::acked`]).
    Acked,
    /// The snapshot's next chunk is due.
    ChunkDue,
    /// The next item of the log.
    Log(T),
}

/// The loop's inputs other than the log: shutdown and acknowledged positions.
pub struct LoopControl {
    shutdown: watch::Receiver<bool>,
    /// The same signal, for the waits inside a step.
    stopping: watch::Receiver<bool>,
    acked: watch::Receiver<Option<Position>>,
    acked_open: bool,
    /// Whether a new acknowledgement wakes the loop (a source that reports positions to its
    /// server) or only [`Self::drain_acked`] waits for them.
    acks_wake: bool,
    /// The connector's stage histograms (the source stage is observed here).
    latency: Option<std::sync::Arc<StageLatency>>,
}

impl LoopControl {
    pub fn new(shutdown: watch::Receiver<bool>, acked: watch::Receiver<Option<Position>>) -> Self {
        Self {
            stopping: shutdown.clone(),
            shutdown,
            acked,
            acked_open: true,
            acks_wake: true,
            latency: None,
        }
    }

    /// The same, for a source that reports no position to its server: acknowledgements
    /// neither wake [`Self::next`] nor end a batch of [`Self::ready`] (each would be a wake-up
    /// for nothing; the pipeline commits them to the position store itself).
    pub fn without_ack_wakes(mut self) -> Self {
        self.acks_wake = false;
        self
    }

    /// The same, observing the source stage's latency into `latency` (see
    /// [`Self::handed_over`]).
    pub fn with_latency(mut self, latency: Option<std::sync::Arc<StageLatency>>) -> Self {
        self.latency = latency;
        self
    }

    /// Records that `changes` change events read from the log at `read_at` have been handed
    /// to the pipeline (the source stage of `status::latency`).
    pub fn handed_over(&self, read_at: Instant, changes: usize) {
        if let Some(l) = &self.latency {
            l.source.observe_n(read_at.elapsed(), changes as u64);
        }
    }

    /// Whether shutdown was requested.
    pub fn stop_requested(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The newest acknowledged position, marked seen.
    pub fn acked(&mut self) -> Option<Position> {
        self.acked.borrow_and_update().clone()
    }

    /// Waits for the first of: shutdown, an acknowledgement, `next_chunk_at`, `log`.
    pub async fn next<T>(
        &mut self,
        next_chunk_at: Option<Instant>,
        log: impl Future<Output = T>,
    ) -> Wake<T> {
        tokio::pin!(log);
        loop {
            tokio::select! {
                biased;
                _ = stop_requested(&mut self.shutdown) => return Wake::Stop,
                changed = self.acked.changed(), if self.acked_open && self.acks_wake => {
                    if changed.is_err() {
                        // The pipeline is gone; the log read below notices soon enough.
                        self.acked_open = false;
                        continue;
                    }
                    return Wake::Acked;
                }
                _ = tokio::time::sleep_until(next_chunk_at.unwrap_or_else(Instant::now).into()), if next_chunk_at.is_some() => {
                    return Wake::ChunkDue;
                }
                item = &mut log => return Wake::Log(item),
            }
        }
    }

    /// The log's next item without waiting, when `buffered` has one and nothing that ranks
    /// before the log is pending: no shutdown, no new acknowledgement, no chunk due. Under load
    /// most items are already buffered, and this takes them in the order [`Self::next`] would
    /// without arming its four waits per item. `None`: call [`Self::next`].
    pub fn ready<T>(
        &mut self,
        next_chunk_at: Option<Instant>,
        buffered: impl FnOnce() -> Option<T>,
    ) -> Option<T> {
        if self.stop_requested() {
            return None;
        }
        // A closed channel (an error) is left to `next`, which notices it.
        if self.acks_wake && self.acked_open && self.acked.has_changed().unwrap_or(true) {
            return None;
        }
        if next_chunk_at.is_some_and(|at| at <= Instant::now()) {
            return None;
        }
        buffered()
    }

    /// Hands `msg` to the pipeline: `Ok(false)` when shutdown came first (the message is
    /// dropped, with everything after it: no later checkpoint can commit past it, and the
    /// restart replays it), an error when the pipeline is gone.
    pub async fn send(
        &mut self,
        out: &mpsc::Sender<SourceMessage>,
        msg: SourceMessage,
    ) -> Result<bool, mpsc::error::SendError<SourceMessage>> {
        if *self.stopping.borrow() {
            return Ok(false);
        }
        // Room in the channel: no wait to race against shutdown.
        let msg = match out.try_send(msg) {
            Ok(()) => return Ok(true),
            Err(mpsc::error::TrySendError::Closed(msg)) => return Err(mpsc::error::SendError(msg)),
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
        };
        tokio::select! {
            biased;
            _ = stop_requested(&mut self.stopping) => Ok(false),
            sent = out.send(msg) => sent.map(|()| true),
        }
    }

    /// Room for `n` messages at once (at most the channel's capacity): `Ok(None)` when
    /// shutdown came first, an error when the pipeline is gone.
    pub async fn reserve<'a>(
        &mut self,
        out: &'a mpsc::Sender<SourceMessage>,
        n: usize,
    ) -> Result<Option<mpsc::PermitIterator<'a, SourceMessage>>, mpsc::error::SendError<()>> {
        tokio::select! {
            biased;
            _ = stop_requested(&mut self.stopping) => Ok(None),
            permits = out.reserve_many(n.min(out.max_capacity())) => permits.map(Some),
        }
    }

    /// After the loop: waits (up to `limit`) for the pipeline to acknowledge and commit its
    /// last positions, calling `report` with each; ends when the pipeline closes the channel.
    pub async fn drain_acked(
        &mut self,
        limit: std::time::Duration,
        mut report: impl FnMut(&Option<Position>),
    ) {
        while self.acked_open {
            match tokio::time::timeout(limit, self.acked.changed()).await {
                Ok(Ok(())) => report(&self.acked.borrow_and_update()),
                Ok(Err(_)) | Err(_) => self.acked_open = false,
            }
        }
        report(&self.acked.borrow());
    }
}
