//! The acknowledgement tracker: commits a position only when every event before it is
//! acknowledged.
//!
//! Correctness argument. The pipeline numbers the messages it hands to the sink 0, 1, 2, ...
//! (its [`Output`](crate::sink::Output)), and hands the tracker, in source order, each
//! source checkpoint together with the number of messages handed over before it
//! ([`Checkpoint::after`]). The sink's [`AckWindow`] says up to which number every message is
//! acknowledged (its prefix, which never passes an unacknowledged or failed message). A
//! checkpoint becomes committable only when the prefix reaches its `after`, that is, when
//! every message produced from the log before that point is durable. Checkpoints are
//! considered in order, so the committed position only moves forward. The newest committable
//! checkpoint is written to the store at most every `interval` (and at the end), and only
//! after the store has it is it published to the source (which tells its server). A failed
//! message stops the prefix before it, so no later checkpoint is committed, and ends the
//! tracker with that message's error.
//!
//! The pipeline may skip checkpoints (it hands over only the newest of each batch): a skipped
//! one is implied by a later one, whose condition is stronger.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::PositionStore;
use crate::error::Result;
use crate::event::Position;
use crate::sink::AckWindow;

/// A source checkpoint, committable once the first `after` messages are acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub position: Position,
    pub after: u64,
    /// The source commit time of the newest change handed over since the previous
    /// checkpoint (`None`: none), for the lag the status reports.
    pub newest_commit_ms: Option<i64>,
}

/// Runs until `checkpoints` closes, then waits for the acknowledgements of what was handed
/// over, commits the last committable position and returns.
pub async fn run(
    connector: String,
    mut checkpoints: mpsc::Receiver<Checkpoint>,
    window: Arc<AckWindow>,
    store: Arc<PositionStore>,
    interval: Duration,
    acked: watch::Sender<Option<Position>>,
) -> Result<()> {
    let mut queue: VecDeque<Checkpoint> = VecDeque::new();
    let mut committable: Option<Position> = None;
    let mut committed: Option<Position> = None;
    let mut last_commit = Instant::now();
    let status = crate::status::connector(&connector);
    // The newest commit time among the committable checkpoints not committed yet.
    let mut newest_commit_ms: Option<i64> = None;
    let commit = |p: Option<Position>, newest: Option<i64>| {
        let store = store.clone();
        let connector = connector.clone();
        let status = status.clone();
        async move {
            if let Some(p) = &p {
                store.commit(&connector, p).await?;
                if let Some(s) = &status {
                    s.committed(p, newest);
                }
            }
            Ok::<_, crate::error::Error>(p)
        }
    };
    let newer = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut failed = None;
    loop {
        let prefix = window.acked().prefix;
        while queue.front().is_some_and(|c| c.after <= prefix) {
            if let Some(c) = queue.pop_front() {
                newest_commit_ms = newer(newest_commit_ms, c.newest_commit_ms);
                committable = Some(c.position);
            }
        }
        if committable != committed && last_commit.elapsed() >= interval {
            committed = commit(committable.clone(), newest_commit_ms.take()).await?;
            last_commit = Instant::now();
            acked.send_replace(committed.clone());
        }
        let due = last_commit + interval;
        let now = Instant::now();
        let front = queue.front().map(|c| c.after);
        tokio::select! {
            biased;
            next = checkpoints.recv() => match next {
                // A checkpoint with no message since the previous one supersedes it.
                Some(c) => match queue.back_mut() {
                    Some(last) if last.after == c.after => {
                        let newest = newer(last.newest_commit_ms, c.newest_commit_ms);
                        *last = Checkpoint { newest_commit_ms: newest, ..c };
                    }
                    _ => queue.push_back(c),
                },
                None => break,
            },
            // Commit time: wait for the oldest checkpoint's messages.
            waited = window.wait_for(front.unwrap_or(0)), if front.is_some() && now >= due => {
                if let Err(e) = waited {
                    failed = Some(e);
                    break;
                }
            }
            _ = tokio::time::sleep_until(due), if (front.is_some() || committable != committed) && now < due => {}
        }
    }
    // The end: everything handed over resolves (librdkafka reports every message within its
    // delivery timeout); commit up to the first failure.
    if failed.is_none() {
        while let Some(c) = queue.pop_front() {
            match window.wait_for(c.after).await {
                Ok(_) => {
                    newest_commit_ms = newer(newest_commit_ms, c.newest_commit_ms);
                    committable = Some(c.position);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    if committable != committed {
        committed = commit(committable, newest_commit_ms).await?;
        acked.send_replace(committed.clone());
    }
    if let Some(p) = &committed {
        tracing::info!(connector = %connector, position = %p, "final position committed");
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::offsets::file::FileStore;

    fn pos(n: u64) -> Position {
        Position(serde_json::json!({ "n": n }))
    }

    fn cp(n: u64, after: u64) -> Checkpoint {
        Checkpoint {
            position: pos(n),
            after,
            newest_commit_ms: None,
        }
    }

    /// A running tracker over a file store, with its window, its checkpoint sender and the
    /// receiver of what it publishes as committed.
    struct Harness {
        _dir: tempfile::TempDir,
        store: Arc<PositionStore>,
        window: Arc<AckWindow>,
        tx: mpsc::Sender<Checkpoint>,
        acked: watch::Receiver<Option<Position>>,
        task: tokio::task::JoinHandle<Result<()>>,
    }

    fn start(interval: Duration) -> Harness {
        let (dir, store) = file_store();
        let window = Arc::new(AckWindow::default());
        let (tx, rx) = mpsc::channel(16);
        let (acked_tx, acked) = watch::channel(None);
        let task = tokio::spawn(run(
            "c".into(),
            rx,
            window.clone(),
            store.clone(),
            interval,
            acked_tx,
        ));
        Harness {
            _dir: dir,
            store,
            window,
            tx,
            acked,
            task,
        }
    }

    fn file_store() -> (tempfile::TempDir, Arc<PositionStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PositionStore::File(FileStore::new(
            dir.path().to_path_buf(),
        )));
        (dir, store)
    }

    #[tokio::test]
    async fn commits_only_after_every_earlier_ack() {
        let Harness {
            _dir,
            store,
            window,
            tx,
            acked: mut acked_rx,
            task,
        } = start(Duration::ZERO);
        // Message 0, then checkpoint 1.
        window.report(0, Ok(()));
        tx.send(cp(1, 1)).await.unwrap();
        acked_rx.changed().await.unwrap();
        assert_eq!(*acked_rx.borrow(), Some(pos(1)));
        // Messages 1 and 2, then checkpoint 2: message 2 acknowledged first holds nothing up,
        // message 1 unacknowledged holds the checkpoint back.
        window.report(2, Ok(()));
        tx.send(cp(2, 3)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.load("c").await.unwrap(), Some(pos(1)));
        window.report(1, Ok(()));
        acked_rx.changed().await.unwrap();
        assert_eq!(*acked_rx.borrow(), Some(pos(2)));
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(store.load("c").await.unwrap(), Some(pos(2)));
    }

    #[tokio::test]
    async fn a_failed_ack_stops_before_later_checkpoints() {
        let Harness {
            _dir,
            store,
            window,
            tx,
            acked: _acked_rx,
            task,
        } = start(Duration::ZERO);
        tx.send(cp(1, 0)).await.unwrap();
        window.report(0, Err(Error::transient("broker gone")));
        window.report(1, Ok(()));
        let _ = tx.send(cp(2, 2)).await;
        drop(tx);
        let e = task.await.unwrap().unwrap_err();
        assert!(e.to_string().contains("broker gone"), "{e}");
        assert_eq!(store.load("c").await.unwrap(), Some(pos(1)));
    }

    #[tokio::test]
    async fn interval_batches_commits_and_final_commit_waits_for_acks() {
        let Harness {
            _dir,
            store,
            window,
            tx,
            acked: _acked_rx,
            task,
        } = start(Duration::from_secs(3600));
        for n in 1..=5 {
            tx.send(cp(n, n)).await.unwrap();
        }
        drop(tx);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !task.is_finished(),
            "the end waits for the acknowledgements"
        );
        for s in 0..5 {
            window.report(s, Ok(()));
        }
        task.await.unwrap().unwrap();
        assert_eq!(store.load("c").await.unwrap(), Some(pos(5)));
    }
}
