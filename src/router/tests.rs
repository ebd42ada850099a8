use super::*;
use crate::config::{TableConfig, TableEntry};
use crate::event::{ColumnDef, SourceInfo, SourceLocation};
use crate::value::ColumnType;

fn connector(key: Option<Vec<String>>, topic: Option<String>) -> Arc<ConnectorConfig> {
    let mut c = crate::config::test_mysql_connector();
    c.name = "demo".into();
    c.tables = vec![TableEntry {
        id: TableId::new("public", "t"),
        config: TableConfig {
            topic,
            key,
            ..Default::default()
        },
        file: None,
    }];
    Arc::new(c)
}

fn schema(pk: Vec<usize>) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        id: TableId::new("public", "t"),
        columns: vec![
            ColumnDef {
                name: "id".into(),
                column_type: ColumnType::Int32,
                nullable: false,
            },
            ColumnDef {
                name: "v".into(),
                column_type: ColumnType::Text,
                nullable: true,
            },
        ],
        primary_key: pk,
    })
}

fn event(table: Arc<TableSchema>, op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
    ChangeEvent {
        table,
        op,
        before,
        after,
        source: SourceInfo {
            connector: "postgresql",
            name: "demo".into(),
            db: "d".into(),
            ts_ms: 0,
            snapshot: false,
            location: SourceLocation::Postgres {
                lsn: 1,
                commit_lsn: 1,
                tx_id: 1,
            },
        },
        transaction: None,
    }
}

fn row(id: i64, v: &str) -> Row {
    vec![Value::Int(id), Value::Text(v.into())]
}

#[test]
fn default_topic_and_primary_key() {
    let mut r = Router::new(connector(None, None), &DaemonConfig::default());
    let out = r
        .route(event(schema(vec![0]), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(&*out[0].route.topic, "tidemark.public.t");
    assert_eq!(out[0].key, Some(vec![Value::Int(1)]));
}

#[test]
fn delete_is_followed_by_tombstone() {
    let mut r = Router::new(connector(None, Some("x".into())), &DaemonConfig::default());
    let out = r
        .route(event(schema(vec![0]), Op::Delete, Some(row(1, "a")), None))
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[0].route.topic, "x");
    assert!(out[0].event.is_some());
    assert!(out[1].event.is_none());
    assert_eq!(out[0].key, out[1].key);
}

#[test]
fn key_change_becomes_delete_tombstone_create() {
    let mut r = Router::new(connector(None, None), &DaemonConfig::default());
    let out = r
        .route(event(
            schema(vec![0]),
            Op::Update,
            Some(row(1, "a")),
            Some(row(2, "a")),
        ))
        .unwrap();
    let ops: Vec<_> = out.iter().map(|m| m.event.as_ref().map(|e| e.op)).collect();
    assert_eq!(ops, vec![Some(Op::Delete), None, Some(Op::Create)]);
    assert_eq!(out[0].key, Some(vec![Value::Int(1)]));
    assert_eq!(out[2].key, Some(vec![Value::Int(2)]));
}

#[test]
fn configured_key_overrides_primary_key() {
    let mut r = Router::new(
        connector(Some(vec!["v".into()]), None),
        &DaemonConfig::default(),
    );
    let out = r
        .route(event(schema(vec![]), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(out[0].key, Some(vec![Value::Text("a".into())]));
}

#[test]
fn keyless_table_on_compacted_topic_is_refused_with_fix() {
    let mut r = Router::new(connector(None, None), &DaemonConfig::default());
    let err = r
        .route(event(schema(vec![]), Op::Create, None, Some(row(1, "a"))))
        .unwrap_err()
        .to_string();
    assert!(err.contains("public.t"), "{err}");
    assert!(err.contains("configs/tables/demo/public.t.yaml"), "{err}");
}

#[test]
fn unknown_key_column_names_it() {
    let mut r = Router::new(
        connector(Some(vec!["nope".into()]), None),
        &DaemonConfig::default(),
    );
    let err = r
        .route(event(schema(vec![0]), Op::Create, None, Some(row(1, "a"))))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`nope`"), "{err}");
}
