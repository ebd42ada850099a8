//! Test fixtures shared by the unit tests of the router, the schema stage and the pipeline:
//! columns, table shapes, a PostgreSQL change event and a route.

use std::sync::Arc;

use crate::config::Format;
use crate::event::{
    ChangeEvent, ColumnDef, Op, Row, SourceInfo, SourceLocation, TableId, TableSchema,
};
use crate::router::Route;
use crate::value::ColumnType;

pub fn column(name: &str, column_type: ColumnType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        column_type,
        nullable,
    }
}

/// A table `schema.name` with `columns` and primary key `pk`.
pub fn table(
    schema: &str,
    name: &str,
    columns: Vec<ColumnDef>,
    pk: Vec<usize>,
) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        id: TableId::new(schema, name),
        columns,
        primary_key: pk,
    })
}

/// A PostgreSQL change of connector `demo` (database `d`, LSN 1, committed at `ts_ms`), with no
/// transaction block.
pub fn change(
    table: Arc<TableSchema>,
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
    ts_ms: i64,
) -> ChangeEvent {
    ChangeEvent {
        table,
        op,
        before,
        after,
        before_key_only: false,
        source: SourceInfo {
            connector: "postgresql",
            name: "demo".into(),
            db: "d".into(),
            ts_ms,
            snapshot: crate::event::SnapshotMark::No,
            location: SourceLocation::Postgres {
                lsn: 1,
                commit_lsn: 1,
                tx_id: 1,
            },
        },
        transaction: None,
    }
}

/// A route of `table` to `topic` keyed by `key_columns`, not shared, in `format`.
pub fn route(
    topic: &str,
    table: Arc<TableSchema>,
    key_columns: Vec<usize>,
    format: Format,
) -> Route {
    Route {
        topic: Arc::from(topic),
        key_columns: Arc::from(key_columns),
        schema: table,
        table_in_key: None,
        format,
        values: crate::config::Values::default(),
    }
}
