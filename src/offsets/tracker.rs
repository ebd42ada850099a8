//! The acknowledgement tracker: commits a position only when every event before it is
//! acknowledged.
//!
//! Correctness argument. The pipeline hands the tracker, in source order, one
//! [`Pending::Record`] per produced message (its acknowledgement future) and one
//! [`Pending::Checkpoint`] per source checkpoint. The tracker awaits the items strictly in
//! that order, so when it reaches a checkpoint every record handed over before it has been
//! acknowledged; only then does that checkpoint become committable. The newest committable
//! checkpoint is written to the store at most every `interval` (and at the end), and only
//! after the store has it is it published to the source (which tells its server). A failed
//! acknowledgement ends the tracker with an error before any later checkpoint is reached, so
//! no position past an unacknowledged event is ever committed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::PositionStore;
use crate::error::Result;
use crate::event::Position;
use crate::sink::Ack;

pub enum Pending {
    Record(Ack),
    Checkpoint(Position),
}

/// Runs until `pending` closes, then commits the last committable position and returns.
pub async fn run(
    connector: String,
    mut pending: mpsc::Receiver<Pending>,
    store: Arc<PositionStore>,
    interval: Duration,
    acked: watch::Sender<Option<Position>>,
) -> Result<()> {
    let mut committable: Option<Position> = None;
    let mut committed: Option<Position> = None;
    let mut last_commit = Instant::now();
    let commit = |p: Option<Position>| {
        let store = store.clone();
        let connector = connector.clone();
        async move {
            if let Some(p) = &p {
                store.commit(&connector, p).await?;
            }
            Ok::<_, crate::error::Error>(p)
        }
    };
    loop {
        let next = tokio::select! {
            item = pending.recv() => item,
            _ = tokio::time::sleep_until(last_commit + interval), if committable != committed => {
                committed = commit(committable.clone()).await?;
                last_commit = Instant::now();
                acked.send_replace(committed.clone());
                continue;
            }
        };
        match next {
            Some(Pending::Record(ack)) => ack.await?,
            Some(Pending::Checkpoint(p)) => {
                committable = Some(p);
                if last_commit.elapsed() >= interval {
                    committed = commit(committable.clone()).await?;
                    last_commit = Instant::now();
                    acked.send_replace(committed.clone());
                }
            }
            None => break,
        }
    }
    if committable != committed {
        committed = commit(committable).await?;
        acked.send_replace(committed.clone());
    }
    if let Some(p) = &committed {
        tracing::info!(connector = %connector, position = %p, "final position committed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::offsets::file::FileStore;

    fn pos(n: u64) -> Position {
        Position(serde_json::json!({ "n": n }))
    }

    #[tokio::test]
    async fn commits_only_after_every_earlier_ack() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PositionStore::File(FileStore::new(
            dir.path().to_path_buf(),
        )));
        let (tx, rx) = mpsc::channel(16);
        let (acked_tx, mut acked_rx) = watch::channel(None);
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run("c".into(), rx, store.clone(), Duration::ZERO, acked_tx));
        tx.send(Pending::Record(Box::pin(async { Ok(()) })))
            .await
            .unwrap();
        tx.send(Pending::Checkpoint(pos(1))).await.unwrap();
        acked_rx.changed().await.unwrap();
        assert_eq!(*acked_rx.borrow(), Some(pos(1)));
        // A record whose ack has not arrived holds back the next checkpoint.
        tx.send(Pending::Record(Box::pin(async move {
            let _ = gate_rx.await;
            Ok(())
        })))
        .await
        .unwrap();
        tx.send(Pending::Checkpoint(pos(2))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.load("c").await.unwrap(), Some(pos(1)));
        gate_tx.send(()).unwrap();
        acked_rx.changed().await.unwrap();
        assert_eq!(*acked_rx.borrow(), Some(pos(2)));
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(store.load("c").await.unwrap(), Some(pos(2)));
    }

    #[tokio::test]
    async fn a_failed_ack_stops_before_later_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PositionStore::File(FileStore::new(
            dir.path().to_path_buf(),
        )));
        let (tx, rx) = mpsc::channel(16);
        let (acked_tx, _acked_rx) = watch::channel(None);
        let task = tokio::spawn(run("c".into(), rx, store.clone(), Duration::ZERO, acked_tx));
        tx.send(Pending::Checkpoint(pos(1))).await.unwrap();
        tx.send(Pending::Record(Box::pin(async {
            Err(Error::transient("broker gone"))
        })))
        .await
        .unwrap();
        let _ = tx.send(Pending::Checkpoint(pos(2))).await;
        drop(tx);
        assert!(task.await.unwrap().is_err());
        assert_eq!(store.load("c").await.unwrap(), Some(pos(1)));
    }

    #[tokio::test]
    async fn interval_batches_commits_and_final_commit_happens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PositionStore::File(FileStore::new(
            dir.path().to_path_buf(),
        )));
        let (tx, rx) = mpsc::channel(16);
        let (acked_tx, _acked_rx) = watch::channel(None);
        let task = tokio::spawn(run(
            "c".into(),
            rx,
            store.clone(),
            Duration::from_secs(3600),
            acked_tx,
        ));
        for n in 1..=5 {
            tx.send(Pending::Checkpoint(pos(n))).await.unwrap();
        }
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(store.load("c").await.unwrap(), Some(pos(5)));
    }
}
