//! Transaction metadata (`transaction_metadata.enabled`): a `BEGIN` record before the first
//! change of each transaction and an `END` record after its last, on the transaction topic.
//!
//! # Why the records are right
//!
//! They are derived from the change stream, for both sources alike: every change from the
//! log carries its transaction's id (`ChangeEvent::transaction`), and a source emits a
//! checkpoint only between transactions (at a commit, or while idle), never inside one. So a
//! change whose id differs from the open transaction's opens a new one, and the open one is
//! complete when a checkpoint (or a change of another transaction) arrives: its `END` then
//! counts every change of it, per table. Snapshot rows carry no transaction and are left out.
//! Nothing is lost: the records go through the connector's output like the changes, before
//! the checkpoint that follows them, so a position is committed only after the `END` of every
//! transaction before it is acknowledged; after a restart a transaction after the committed
//! position is sent again whole, `BEGIN` to `END`.

use std::sync::Arc;

use crate::event::ChangeEvent;
use crate::schema::transaction::{Status, TransactionRecord};

struct Open {
    id: Arc<str>,
    ts_ms: i64,
    events: u64,
    /// Events per table, in first-seen order (named as text only at the END).
    per_table: Vec<(crate::event::TableId, u64)>,
}

impl Open {
    fn end(self) -> TransactionRecord {
        TransactionRecord {
            status: Status::End,
            id: self.id,
            ts_ms: self.ts_ms,
            event_count: self.events,
            data_collections: self
                .per_table
                .into_iter()
                .map(|(t, n)| (t.to_string(), n))
                .collect(),
        }
    }
}

/// The transaction topic of `connector` (`None`: transaction metadata is off).
pub fn topic(
    daemon: &crate::config::DaemonConfig,
    connector: &crate::config::ConnectorConfig,
) -> crate::error::Result<Option<Arc<str>>> {
    let cfg = &daemon.transaction_metadata;
    if !cfg.enabled {
        return Ok(None);
    }
    crate::router::template::Template::connector_topic(
        "transaction_metadata.topic",
        &cfg.topic,
        daemon,
        connector,
    )
    .map(Some)
}

/// The open transaction of one connector's change stream.
#[derive(Default)]
pub struct TransactionTracker {
    open: Option<Open>,
}

impl TransactionTracker {
    /// The records to produce before `event`: the `END` of the open transaction and the
    /// `BEGIN` of `event`'s, when `event` opens another transaction.
    pub fn before_change(&mut self, event: &ChangeEvent, out: &mut Vec<TransactionRecord>) {
        let Some(tx) = &event.transaction else {
            return;
        };
        if self.open.as_ref().is_some_and(|o| o.id != tx.id) {
            out.extend(self.open.take().map(Open::end));
        }
        let open = self.open.get_or_insert_with(|| {
            out.push(TransactionRecord {
                status: Status::Begin,
                id: tx.id.clone(),
                ts_ms: event.source.ts_ms,
                event_count: 0,
                data_collections: Vec::new(),
            });
            Open {
                id: tx.id.clone(),
                ts_ms: event.source.ts_ms,
                events: 0,
                per_table: Vec::new(),
            }
        });
        open.events += 1;
        let table = &event.table.id;
        match open.per_table.iter_mut().find(|(t, _)| t == table) {
            Some((_, n)) => *n += 1,
            None => open.per_table.push((table.clone(), 1)),
        }
    }

    /// The `END` of the open transaction, which a checkpoint closes.
    pub fn at_checkpoint(&mut self) -> Option<TransactionRecord> {
        self.open.take().map(Open::end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Op, TransactionInfo};
    use crate::test_fixtures::{change, column, table as table_of};
    use crate::value::ColumnType;

    fn in_tx(table: &str, id: &str) -> ChangeEvent {
        let mut e = change(
            table_of(
                "s",
                table,
                vec![column("id", ColumnType::Int32, false)],
                vec![0],
            ),
            Op::Create,
            None,
            Some(vec![crate::value::Value::Int(1)]),
            7,
        );
        e.transaction = Some(TransactionInfo {
            id: Arc::from(id),
            total_order: 1,
            data_collection_order: 1,
        });
        e
    }

    #[test]
    fn begin_before_the_first_change_and_end_at_the_commit() {
        let mut t = TransactionTracker::default();
        let mut out = Vec::new();
        t.before_change(&in_tx("a", "1"), &mut out);
        t.before_change(&in_tx("b", "1"), &mut out);
        t.before_change(&in_tx("a", "1"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].status, &*out[0].id), (Status::Begin, "1"));
        let end = t.at_checkpoint().unwrap();
        assert_eq!(end.status, Status::End);
        assert_eq!(end.event_count, 3);
        assert_eq!(
            end.data_collections,
            [("s.a".to_string(), 2), ("s.b".to_string(), 1)]
        );
        assert!(t.at_checkpoint().is_none(), "nothing open after a commit");
        // A change of another transaction closes the open one first.
        out.clear();
        t.before_change(&in_tx("a", "2"), &mut out);
        t.before_change(&in_tx("a", "3"), &mut out);
        let statuses: Vec<_> = out.iter().map(|r| (r.status, r.id.to_string())).collect();
        assert_eq!(
            statuses,
            [
                (Status::Begin, "2".into()),
                (Status::End, "2".into()),
                (Status::Begin, "3".into())
            ]
        );
        // A snapshot row (no transaction) is left out.
        let mut snap = in_tx("a", "x");
        snap.transaction = None;
        out.clear();
        t.before_change(&snap, &mut out);
        assert!(out.is_empty());
    }
}
