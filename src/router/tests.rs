use super::*;
use crate::config::table::{ColumnsConfig, Mask, OutboxConfig};
use crate::config::{TableConfig, TableEntry};
use crate::event::ColumnDef;
use crate::value::{ColumnType, JsonText};

fn connector_with(tables: Vec<(TableId, TableConfig)>) -> Arc<ConnectorConfig> {
    let mut c = crate::config::test_mysql_connector();
    c.name = "demo".into();
    c.tables = tables
        .into_iter()
        .map(|(id, config)| TableEntry {
            id,
            config,
            file: Some(format!("tables/demo/{}.yaml", "x").into()),
            contract: None,
        })
        .collect();
    Arc::new(c)
}

fn connector(key: Option<Vec<String>>, topic: Option<String>) -> Arc<ConnectorConfig> {
    connector_with(vec![(
        TableId::new("public", "t"),
        TableConfig {
            topic,
            key,
            ..Default::default()
        },
    )])
}

fn router(c: Arc<ConnectorConfig>) -> Router {
    Router::new(c, &DaemonConfig::default(), Some(Secret::new("salt"))).unwrap()
}

fn col(name: &str, t: ColumnType) -> ColumnDef {
    crate::test_fixtures::column(name, t, true)
}

fn schema(pk: Vec<usize>) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        id: TableId::new("public", "t"),
        columns: vec![col("id", ColumnType::Int32), col("v", ColumnType::Text)],
        primary_key: pk,
    })
}

fn event(table: Arc<TableSchema>, op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
    crate::test_fixtures::change(table, op, before, after, 5_000)
}

fn row(id: i64, v: &str) -> Row {
    vec![Value::Int(id), Value::Text(v.into())]
}

fn ops(out: &[Routed]) -> Vec<Option<Op>> {
    out.iter().map(|m| m.change().map(|e| e.op)).collect()
}

#[test]
fn default_topic_and_primary_key() {
    let mut r = router(connector(None, None));
    let out = r
        .route(event(schema(vec![0]), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(&*out[0].route.topic, "tidemark.public.t");
    assert_eq!(out[0].key, Some(vec![Value::Int(1)]));
    assert_eq!(out[0].event_time_ms, 5_000);
    assert!(out[0].route.table_in_key.is_none());
}

#[test]
fn delete_is_followed_by_tombstone() {
    let mut r = router(connector(None, Some("x".into())));
    let out = r
        .route(event(schema(vec![0]), Op::Delete, Some(row(1, "a")), None))
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[0].route.topic, "x");
    assert_eq!(ops(&out), vec![Some(Op::Delete), None]);
    assert_eq!(out[0].key, out[1].key);
}

#[test]
fn key_change_becomes_delete_tombstone_create() {
    let mut r = router(connector(None, None));
    let out = r
        .route(event(
            schema(vec![0]),
            Op::Update,
            Some(row(1, "a")),
            Some(row(2, "a")),
        ))
        .unwrap();
    assert_eq!(ops(&out), vec![Some(Op::Delete), None, Some(Op::Create)]);
    assert_eq!(out[0].key, Some(vec![Value::Int(1)]));
    assert_eq!(out[2].key, Some(vec![Value::Int(2)]));
}

#[test]
fn configured_key_overrides_primary_key() {
    let mut r = router(connector(Some(vec!["v".into()]), None));
    let out = r
        .route(event(schema(vec![]), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(out[0].key, Some(vec![Value::Text("a".into())]));
}

#[test]
fn keyless_table_on_compacted_topic_is_refused_with_fix() {
    let mut r = router(connector(None, None));
    let err = r
        .route(event(schema(vec![]), Op::Create, None, Some(row(1, "a"))))
        .unwrap_err()
        .to_string();
    assert!(err.contains("public.t"), "{err}");
    assert!(err.contains("configs/tables/demo/public.t.yaml"), "{err}");
}

#[test]
fn unknown_key_column_names_it_and_the_file() {
    let mut r = router(connector(Some(vec!["nope".into()]), None));
    let err = r
        .route(event(schema(vec![0]), Op::Create, None, Some(row(1, "a"))))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`nope`"), "{err}");
    assert!(err.contains("tables/demo/x.yaml"), "{err}");
    assert!(err.contains("key[0]"), "{err}");
}

#[test]
fn templates_and_shared_topics_put_the_table_in_the_key() {
    let shared = TableConfig {
        topic: Some("{prefix}.all-{db}".into()),
        ..Default::default()
    };
    let c = connector_with(vec![
        (TableId::new("public", "t"), shared.clone()),
        (TableId::new("public", "u"), shared),
        (
            TableId::new("public", "w"),
            TableConfig {
                topic: Some("{connector}.{schema}.{table}".into()),
                ..Default::default()
            },
        ),
    ]);
    let mut r = router(c.clone());
    let db = c.connection.database.clone();
    assert_eq!(
        r.configured_topics(),
        vec![format!("tidemark.all-{db}"), "demo.public.w".to_string()]
    );
    let out = r
        .route(event(schema(vec![0]), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(&*out[0].route.topic, format!("tidemark.all-{db}").as_str());
    assert_eq!(out[0].route.table_in_key.as_deref(), Some("public.t"));
    let mut w = (*schema(vec![0])).clone();
    w.id = TableId::new("public", "w");
    let out = r
        .route(event(Arc::new(w), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(&*out[0].route.topic, "demo.public.w");
    assert!(out[0].route.table_in_key.is_none());
}

fn wide() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        id: TableId::new("public", "t"),
        columns: vec![
            col("id", ColumnType::Int64),
            col("email", ColumnType::Text),
            col("name", ColumnType::Text),
            col("note", ColumnType::Text),
            col("ssn", ColumnType::Text),
            col("status", ColumnType::Text),
            col("updated_at", ColumnType::TimestampTz),
        ],
        primary_key: vec![0],
    })
}

fn wide_row(id: i64, status: &str) -> Row {
    vec![
        Value::Int(id),
        Value::Text("a@example.com".into()),
        Value::Text("Ann".into()),
        Value::Text("a long note indeed".into()),
        Value::Text("123-45-6789".into()),
        Value::Text(status.into()),
        Value::TimestampTz(1_700_000_000_123_456),
    ]
}

fn wide_config() -> TableConfig {
    TableConfig {
        columns: ColumnsConfig {
            include: None,
            exclude: Some(vec!["ssn".into()]),
            mask: [
                ("email".to_string(), Mask::Hash),
                ("name".to_string(), Mask::Redact(Some("***".into()))),
                ("note".to_string(), Mask::Truncate(6)),
            ]
            .into_iter()
            .collect(),
            json: Vec::new(),
        },
        filter: Some("status != 'draft'".into()),
        event_time: Some("updated_at".into()),
        ..Default::default()
    }
}

#[test]
fn text_columns_declared_json_become_json_columns() {
    let cfg = TableConfig {
        columns: ColumnsConfig {
            json: vec!["note".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let mut r = router(connector_with(vec![(TableId::new("public", "t"), cfg)]));
    let mut row = wide_row(1, "new");
    row[3] = Value::Text("{\"a\": [1, 2]}".into());
    let out = r.route(event(wide(), Op::Create, None, Some(row))).unwrap();
    assert_eq!(out[0].route.schema.columns[3].column_type, ColumnType::Json);
    let after = out[0].change().unwrap().after.as_ref().unwrap();
    assert_eq!(
        after[3],
        Value::Json(crate::value::JsonText::parse("{\"a\": [1, 2]}".into()).unwrap())
    );
    // A value that is not JSON stays the text it is.
    let out = r
        .route(event(wide(), Op::Create, None, Some(wide_row(2, "new"))))
        .unwrap();
    let after = out[0].change().unwrap().after.as_ref().unwrap();
    assert_eq!(after[3], Value::Text("a long note indeed".into()));
    // Only text columns, and not masked ones.
    for (json, mask) in [("id", None), ("note", Some(Mask::Hash))] {
        let cfg = TableConfig {
            columns: ColumnsConfig {
                json: vec![json.into()],
                mask: mask.map(|m| ("note".to_string(), m)).into_iter().collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut r = router(connector_with(vec![(TableId::new("public", "t"), cfg)]));
        let e = r
            .route(event(wide(), Op::Create, None, Some(wide_row(1, "new"))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("columns.json[0]"), "{e}");
    }
}

#[test]
fn columns_masks_and_event_time_shape_both_rows() {
    let mut r = router(connector_with(vec![(
        TableId::new("public", "t"),
        wide_config(),
    )]));
    let out = r
        .route(event(
            wide(),
            Op::Update,
            Some(wide_row(1, "new")),
            Some(wide_row(1, "paid")),
        ))
        .unwrap();
    assert_eq!(out.len(), 1);
    let e = out[0].change().unwrap();
    let names: Vec<_> = e.table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["id", "email", "name", "note", "status", "updated_at"]
    );
    assert!(Arc::ptr_eq(&e.table, &out[0].route.schema));
    for image in [e.before.as_ref().unwrap(), e.after.as_ref().unwrap()] {
        assert_eq!(image.len(), 6);
        let Value::Text(h) = &image[1] else {
            panic!("{:?}", image[1])
        };
        assert_eq!(h.len(), 64);
        assert_eq!(image[2], Value::Text("***".into()));
        assert_eq!(image[3], Value::Text("a long".into()));
    }
    assert_eq!(out[0].event_time_ms, 1_700_000_000_123);
}

#[test]
fn a_hashed_key_column_hashes_the_key() {
    let mut cfg = TableConfig::default();
    cfg.columns.mask.insert("id".into(), Mask::Hash);
    let mut r = router(connector_with(vec![(TableId::new("public", "t"), cfg)]));
    let out = r
        .route(event(wide(), Op::Create, None, Some(wide_row(7, "x"))))
        .unwrap();
    let key = out[0].key.as_ref().unwrap();
    assert_eq!(
        &key[0],
        &out[0].change().unwrap().after.as_ref().unwrap()[0]
    );
    assert!(matches!(&key[0], Value::Text(h) if h.len() == 64));
    let mut redacted = TableConfig::default();
    redacted
        .columns
        .mask
        .insert("id".into(), Mask::Redact(None));
    let mut r = router(connector_with(vec![(
        TableId::new("public", "t"),
        redacted,
    )]));
    let err = r
        .route(event(wide(), Op::Create, None, Some(wide_row(7, "x"))))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("columns.mask.id") && err.contains("only `hash`"),
        "{err}"
    );
}

#[test]
fn filters_drop_rows_and_turn_leaving_updates_into_deletes() {
    let mut r = router(connector_with(vec![(
        TableId::new("public", "t"),
        wide_config(),
    )]));
    let draft = |op, before, after| r_route(op, before, after);
    fn r_route(op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
        event(wide(), op, before, after)
    }
    // An insert of a draft: nothing.
    assert!(r
        .route(draft(Op::Create, None, Some(wide_row(1, "draft"))))
        .unwrap()
        .is_empty());
    // Into the filter: the update as it is.
    let out = r
        .route(draft(
            Op::Update,
            Some(wide_row(1, "draft")),
            Some(wide_row(1, "paid")),
        ))
        .unwrap();
    assert_eq!(ops(&out), vec![Some(Op::Update)]);
    // Out of the filter: a delete (marked) and a tombstone.
    let out = r
        .route(draft(
            Op::Update,
            Some(wide_row(1, "paid")),
            Some(wide_row(1, "draft")),
        ))
        .unwrap();
    assert_eq!(ops(&out), vec![Some(Op::Delete), None]);
    assert_eq!(out[0].headers[0].name, "tidemark.filter");
    assert_eq!(
        out[0].change().unwrap().before.as_ref().unwrap()[4],
        Value::Text("paid".into())
    );
    // Staying out: nothing. A delete of a draft: nothing.
    assert!(r
        .route(draft(
            Op::Update,
            Some(wide_row(1, "draft")),
            Some(wide_row(1, "draft"))
        ))
        .unwrap()
        .is_empty());
    assert!(r
        .route(draft(Op::Delete, Some(wide_row(1, "draft")), None))
        .unwrap()
        .is_empty());
    assert_eq!(r.filtered(), 3);
    // A key-only old row cannot tell: the delete goes out.
    let mut key_only = draft(Op::Delete, Some(wide_row(1, "draft")), None);
    key_only.before_key_only = true;
    assert_eq!(
        ops(&r.route(key_only).unwrap()),
        vec![Some(Op::Delete), None]
    );
    // A key change that leaves the filter, with a key-only old row (PostgreSQL sends the old
    // key when the key changes): the delete is of the OLD key, not the new one.
    let mut moved = draft(
        Op::Update,
        Some(vec![
            Value::Int(1),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ]),
        Some(wide_row(9, "draft")),
    );
    moved.before_key_only = true;
    let out = r.route(moved).unwrap();
    assert_eq!(ops(&out), vec![Some(Op::Delete), None]);
    assert_eq!(out[0].key, Some(vec![Value::Int(1)]));
    assert_eq!(out[1].key, Some(vec![Value::Int(1)]));
    // No old row and a new row that fails: it may have been in, so it leaves.
    let out = r
        .route(draft(Op::Update, None, Some(wide_row(1, "draft"))))
        .unwrap();
    assert_eq!(ops(&out), vec![Some(Op::Delete), None]);
    assert!(out[0].change().unwrap().before.is_some());
}

fn outbox_schema() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        id: TableId::new("public", "outbox"),
        columns: vec![
            col("id", ColumnType::Uuid),
            col("aggregate_type", ColumnType::Text),
            col("aggregate_id", ColumnType::Text),
            col("event_type", ColumnType::Text),
            col("payload", ColumnType::Json),
        ],
        primary_key: vec![0],
    })
}

#[test]
fn outbox_rows_route_by_column_and_deletes_produce_nothing() {
    let cfg = TableConfig {
        outbox: Some(OutboxConfig {
            topic: "{prefix}.{aggregate_type}".into(),
            key: "aggregate_id".into(),
            payload: "payload".into(),
            id: None,
            event_type: Some("event_type".into()),
            headers: vec!["aggregate_type".into()],
        }),
        ..Default::default()
    };
    let mut r = router(connector_with(vec![(
        TableId::new("public", "outbox"),
        cfg,
    )]));
    assert!(r.configured_topics().is_empty());
    let row = |agg: &str| -> Row {
        vec![
            Value::Uuid("7f0c".into()),
            Value::Text(agg.into()),
            Value::Text("o-1".into()),
            Value::Text("created".into()),
            Value::Json(JsonText::parse(r#"{"total": 12.5}"#.into()).unwrap()),
        ]
    };
    let mut e = event(outbox_schema(), Op::Create, None, Some(row("order")));
    e.table = outbox_schema();
    let out = r.route(e).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(&*out[0].route.topic, "tidemark.order");
    let Body::Outbox { key, value, .. } = &out[0].body else {
        panic!("{:?}", out[0].body)
    };
    assert_eq!(key.as_deref(), Some(&b"o-1"[..]));
    assert_eq!(value.as_deref(), Some(&br#"{"total": 12.5}"#[..]));
    let headers: Vec<_> = out[0]
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8(h.value.clone().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        headers,
        [
            ("id".to_string(), "7f0c".to_string()),
            ("type".to_string(), "created".to_string()),
            ("aggregate_type".to_string(), "order".to_string())
        ]
    );
    for op in [Op::Delete, Op::Update, Op::Truncate] {
        let e = event(outbox_schema(), op, Some(row("order")), None);
        assert!(r.route(e).unwrap().is_empty(), "{op:?}");
    }
    let mut bad = row("no/slash");
    bad[1] = Value::Text("bad topic".into());
    let rejected = |out: Vec<Routed>| match out.into_iter().next().map(|r| r.body) {
        Some(Body::Rejected { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    let reason = rejected(
        r.route(event(outbox_schema(), Op::Create, None, Some(bad)))
            .unwrap(),
    );
    assert!(reason.contains("not a valid topic name"), "{reason}");
    let mut null = row("x");
    null[1] = Value::Null;
    let reason = rejected(
        r.route(event(outbox_schema(), Op::Create, None, Some(null)))
            .unwrap(),
    );
    assert!(reason.contains("`aggregate_type` is NULL"), "{reason}");
    assert!(reason.contains("WAL position 0/1"), "{reason}");
}

#[test]
fn a_table_file_overrides_the_daemons_format() {
    let c = connector_with(vec![
        (
            TableId::new("public", "t"),
            TableConfig {
                format: Some(Format::JsonSchema),
                ..Default::default()
            },
        ),
        (TableId::new("public", "u"), TableConfig::default()),
    ]);
    let mut r = router(c);
    let out = r
        .route(event(schema(vec![0]), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(out[0].route.format, Format::JsonSchema);
    let mut u = (*schema(vec![0])).clone();
    u.id = TableId::new("public", "u");
    let out = r
        .route(event(Arc::new(u), Op::Create, None, Some(row(1, "a"))))
        .unwrap();
    assert_eq!(out[0].route.format, Format::Json);
}
