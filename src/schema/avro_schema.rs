//! Avro schemas derived from a table shape: the key record and the Debezium-style envelope
//! (`before`/`after` as `["null", Row]`, `source`, `op`, `ts_ms`, `transaction`), for the
//! `avro` format (not yet selectable: the registry client and the wiring come next; this
//! module and [`super::avro_value`] are what they will use, tested on their own).
//!
//! Column types (the `tidemark` value profile; each choice keeps every value exact):
//!
//! | Column | Avro |
//! |---|---|
//! | boolean | `boolean` |
//! | smallint, integer | `int` |
//! | bigint | `long` |
//! | BIGINT UNSIGNED | `bytes`, `decimal(20, 0)` (a `long` cannot hold values above 2^63-1) |
//! | real, double | `float`, `double` |
//! | numeric(p, s), DECIMAL(p, s) | `bytes`, `decimal(p, s)` |
//! | numeric without precision | `string` (its scale varies per value, and it holds NaN) |
//! | date | `int`, `date` |
//! | time, TIME | `long`, `time-micros` (MySQL's TIME may be negative or above 24 h: still a long) |
//! | timestamp, DATETIME | `long`, `local-timestamp-micros` |
//! | timestamptz, TIMESTAMP | `long`, `timestamp-micros` |
//! | uuid | `string`, `uuid` |
//! | text, interval, timetz, json, other types | `string` (JSON as its text) |
//! | bytea, binary, BIT | `bytes` |
//! | enum / ENUM, SET | `string`, the labels in `connect.parameters.allowed` (as Debezium's Avro converter writes them; an Avro `enum` would make every new label a breaking change) |
//! | arrays | `array` of `["null", item]` |
//! | geometry | record `Geometry` {`wkb`: bytes, `srid`: `["null", int]`} |
//!
//! A nullable column is `["null", T]` with default null. Avro names allow only
//! `[A-Za-z_][A-Za-z0-9_]*`: other characters of column names become `_` (Debezium's
//! `field.name.adjustment.mode=avro`), and two columns that would get one name are an error
//! naming both.

use serde_json::{json, Value as Json};

use super::debezium;
use crate::config::ValueProfile;
use crate::router::Route;
use crate::value::ColumnType;

/// The Avro name of `name`: invalid characters replaced by `_`, a leading digit prefixed.
pub fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The namespace of a route's records: its topic's parts as Avro names, and on a topic that
/// several tables share, the table's too (so that each table's records have names of their
/// own, which the record subject strategies need).
pub fn namespace(route: &Route) -> String {
    let dotted = match &route.table_in_key {
        Some(table) => format!("{}.{table}", route.topic),
        None => route.topic.to_string(),
    };
    dotted
        .split('.')
        .map(avro_name)
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether a column's values are an Avro `string` (their text): the types Avro has no exact
/// type for, and enums and sets (the labels ride in `connect.parameters`).
pub fn carried_as_text(t: &ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Decimal {
            precision: None,
            ..
        } | ColumnType::Text
            | ColumnType::Interval
            | ColumnType::TimeTz
            | ColumnType::Json
            | ColumnType::Enum { .. }
            | ColumnType::Set { .. }
            | ColumnType::BitString { .. }
            | ColumnType::Other(_)
    )
}

fn type_schema(t: &ColumnType) -> Json {
    let logical = |ty: &str, lt: &str| json!({ "type": ty, "logicalType": lt });
    match t {
        ColumnType::Bool => json!("boolean"),
        ColumnType::Int16 | ColumnType::Int32 => json!("int"),
        ColumnType::Int64 => json!("long"),
        ColumnType::UInt64 => {
            json!({ "type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0 })
        }
        ColumnType::Float32 => json!("float"),
        ColumnType::Float64 => json!("double"),
        ColumnType::Decimal {
            precision: Some(p),
            scale,
        } => json!({
            "type": "bytes", "logicalType": "decimal", "precision": p, "scale": scale.unwrap_or(0)
        }),
        ColumnType::Enum { labels, .. } | ColumnType::Set { labels } => json!({
            "type": "string",
            "connect.parameters": { "allowed": labels.join(",") }
        }),
        ColumnType::Decimal {
            precision: None, ..
        }
        | ColumnType::Text
        | ColumnType::Interval
        | ColumnType::TimeTz
        | ColumnType::Json
        | ColumnType::BitString { .. }
        | ColumnType::Other(_) => json!("string"),
        ColumnType::Bytes | ColumnType::Bits { .. } => json!("bytes"),
        ColumnType::Date => logical("int", "date"),
        ColumnType::Time { .. } => logical("long", "time-micros"),
        ColumnType::Timestamp { .. } => logical("long", "local-timestamp-micros"),
        ColumnType::TimestampTz => logical("long", "timestamp-micros"),
        ColumnType::Uuid => logical("string", "uuid"),
        ColumnType::Geometry { .. } => json!({
            "type": "record", "name": "Geometry", "namespace": "io.debezium.data.geometry",
            "fields": [
                { "name": "wkb", "type": "bytes" },
                { "name": "srid", "type": ["null", "int"], "default": null }
            ]
        }),
        ColumnType::Array(item) => json!({ "type": "array", "items": ["null", type_schema(item)] }),
    }
}

fn field(name: &str, ty: Json, nullable: bool) -> Json {
    if nullable {
        json!({ "name": name, "type": ["null", ty], "default": null })
    } else {
        json!({ "name": name, "type": ty })
    }
}

/// The fields of `columns` (indices into `table`), names made valid; an error names two
/// columns that would share a name.
fn fields(
    route: &Route,
    connector: &str,
    columns: &[usize],
    nullable: bool,
) -> Result<Vec<Json>, String> {
    let table = &route.schema;
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut out = Vec::new();
    let mut geometry_defined = false;
    let mut defined = std::collections::HashSet::new();
    let debezium = route.values.profile == ValueProfile::Debezium;
    for i in columns {
        let Some(c) = table.columns.get(*i) else {
            continue;
        };
        let name = avro_name(&c.name);
        if let Some((_, other)) = seen.iter().find(|(n, _)| *n == name) {
            return Err(format!(
                "table {}: columns `{other}` and `{}` both become the Avro field `{name}`",
                table.id, c.name
            ));
        }
        seen.push((name.clone(), &c.name));
        // The Geometry record is defined once per schema; later columns refer to it by name.
        let ty = if debezium {
            let t = debezium::ConnectType::of(
                &c.column_type,
                connector == "mysql",
                route.values.decimals,
            );
            debezium::avro::schema(&t, &mut defined)
        } else if matches!(c.column_type, ColumnType::Geometry { .. }) && geometry_defined {
            json!("io.debezium.data.geometry.Geometry")
        } else {
            geometry_defined |= matches!(c.column_type, ColumnType::Geometry { .. });
            type_schema(&c.column_type)
        };
        out.push(field(&name, ty, nullable || c.nullable));
    }
    Ok(out)
}

/// The key record of `route`: the table first on a shared topic, then the key columns.
pub fn key_schema(route: &Route, connector: &str) -> Result<Json, String> {
    let mut f = Vec::new();
    if route.table_in_key.is_some() {
        f.push(json!({ "name": crate::router::TABLE_KEY_FIELD, "type": "string" }));
    }
    f.extend(fields(route, connector, &route.key_columns, false)?);
    Ok(json!({
        "type": "record", "name": "Key", "namespace": namespace(route), "fields": f
    }))
}

/// The envelope record of `route`'s messages from a `connector` source.
pub fn value_schema(route: &Route, connector: &str) -> Result<Json, String> {
    let all: Vec<usize> = (0..route.schema.columns.len()).collect();
    let row = json!({
        "type": "record", "name": "Value", "namespace": namespace(route),
        "fields": fields(route, connector, &all, false)?
    });
    Ok(envelope_schema(route, connector, row))
}

/// The envelope record around the row record `row` (derived, or a table's contract).
pub fn envelope_schema(route: &Route, connector: &str, row: Json) -> Json {
    // `after` refers to the row record by its full name.
    let row_name = match row["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{ns}.{}", row["name"].as_str().unwrap_or_default()),
        _ => row["name"].as_str().unwrap_or_default().to_string(),
    };
    let string = |n: &str| json!({ "name": n, "type": "string" });
    let long = |n: &str| json!({ "name": n, "type": "long" });
    let mut source = vec![
        string("version"),
        string("connector"),
        string("name"),
        long("ts_ms"),
        json!({ "name": "snapshot", "type": ["string", "null"], "default": "false" }),
        string("db"),
    ];
    let debezium = route.values.profile == ValueProfile::Debezium;
    let optional = |n: &str, t: &str| json!({ "name": n, "type": ["null", t], "default": null });
    if debezium {
        source.extend([
            optional("sequence", "string"),
            optional("ts_us", "long"),
            optional("ts_ns", "long"),
        ]);
    }
    source.extend([string("schema"), string("table")]);
    let source_name = if connector == "mysql" {
        source.extend([
            long("server_id"),
            json!({ "name": "gtid", "type": ["null", "string"], "default": null }),
            string("file"),
            long("pos"),
            json!({ "name": "row", "type": "int" }),
        ]);
        if debezium {
            source.extend([optional("thread", "long"), optional("query", "string")]);
        }
        "io.debezium.connector.mysql.Source"
    } else {
        source.extend([long("txId"), long("lsn"), long("commit_lsn")]);
        if debezium {
            source.push(optional("xmin", "long"));
        }
        "io.debezium.connector.postgresql.Source"
    };
    let mut fields = vec![
        json!({ "name": "before", "type": ["null", row], "default": null }),
        json!({ "name": "after", "type": ["null", row_name], "default": null }),
        json!({ "name": "source", "type": { "type": "record", "name": source_name, "fields": source } }),
        json!({ "name": "op", "type": "string" }),
        json!({ "name": "ts_ms", "type": ["null", "long"], "default": null }),
    ];
    if debezium {
        fields.push(optional("ts_us", "long"));
        fields.push(optional("ts_ns", "long"));
    }
    fields.push(json!({ "name": "transaction", "type": ["null", {
                "type": "record", "name": "block", "namespace": "event",
                "fields": [
                    { "name": "id", "type": "string" },
                    { "name": "total_order", "type": "long" },
                    { "name": "data_collection_order", "type": "long" }
                ]
            }], "default": null }));
    json!({
        "type": "record", "name": "Envelope", "namespace": namespace(route), "fields": fields
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ColumnDef, TableId, TableSchema};
    use apache_avro::Schema;
    use std::sync::Arc;

    fn route(columns: Vec<(&str, ColumnType, bool)>) -> Route {
        Route {
            topic: Arc::from("tm.public.every-type"),
            key_columns: Arc::from(vec![0usize]),
            schema: Arc::new(TableSchema {
                id: TableId::new("public", "every-type"),
                columns: columns
                    .into_iter()
                    .map(|(n, t, nullable)| ColumnDef {
                        name: n.into(),
                        column_type: t,
                        nullable,
                    })
                    .collect(),
                primary_key: vec![0],
            }),
            table_in_key: Some(Arc::from("public.every-type")),
            format: crate::config::Format::Json,
            values: crate::config::Values::default(),
        }
    }

    fn every_type() -> Route {
        use ColumnType as T;
        route(vec![
            ("id", T::Int64, false),
            ("b", T::Bool, true),
            ("i2", T::Int16, true),
            ("i4", T::Int32, true),
            ("u8", T::UInt64, true),
            ("f4", T::Float32, true),
            ("f8", T::Float64, true),
            (
                "num",
                T::Decimal {
                    precision: Some(12),
                    scale: Some(2),
                },
                true,
            ),
            (
                "num_any",
                T::Decimal {
                    precision: None,
                    scale: None,
                },
                true,
            ),
            ("tx", T::Text, true),
            ("by", T::Bytes, true),
            ("d", T::Date, true),
            ("t", T::Time { precision: None }, true),
            ("ttz", T::TimeTz, true),
            ("ts", T::Timestamp { precision: None }, true),
            ("tstz", T::TimestampTz, true),
            ("iv", T::Interval, true),
            ("u", T::Uuid, true),
            ("j", T::Json, true),
            ("arr", T::Array(Box::new(T::Int32)), true),
            (
                "mood",
                T::Enum {
                    name: "mood".into(),
                    labels: vec!["ok".into(), "sad".into()],
                },
                true,
            ),
            (
                "s",
                T::Set {
                    labels: vec!["x".into()],
                },
                true,
            ),
            (
                "g",
                T::Geometry {
                    name: "point".into(),
                },
                true,
            ),
            (
                "g2",
                T::Geometry {
                    name: "polygon".into(),
                },
                true,
            ),
            ("pt", T::Other("point".into()), true),
            ("weird name-é", T::Text, true),
            ("9lives", T::Int32, true),
        ])
    }

    #[test]
    fn every_column_type_gives_a_valid_avro_schema() {
        let r = every_type();
        let value = value_schema(&r, "postgresql").unwrap();
        Schema::parse(&value).unwrap_or_else(|e| panic!("{e}\n{value:#}"));
        let my = value_schema(&r, "mysql").unwrap();
        Schema::parse(&my).unwrap_or_else(|e| panic!("{e}\n{my:#}"));
        let key = key_schema(&r, "postgresql").unwrap();
        Schema::parse(&key).unwrap_or_else(|e| panic!("{e}\n{key:#}"));
        assert_eq!(key["fields"][0]["name"], "__table");
        assert_eq!(key["fields"][1], json!({"name": "id", "type": "long"}));
        assert_eq!(value["namespace"], "tm.public.every_type.public.every_type");
        let row = &value["fields"][0]["type"][1]["fields"];
        let ty = |name: &str| {
            row.as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == name)
                .map(|f| f["type"][1].clone())
                .unwrap()
        };
        assert_eq!(ty("num")["logicalType"], "decimal");
        assert_eq!(ty("num")["precision"], 12);
        assert_eq!(ty("u8")["precision"], 20);
        assert_eq!(ty("num_any"), "string");
        assert_eq!(ty("tstz")["logicalType"], "timestamp-micros");
        assert_eq!(ty("ts")["logicalType"], "local-timestamp-micros");
        assert_eq!(ty("d")["logicalType"], "date");
        assert_eq!(ty("u")["logicalType"], "uuid");
        assert_eq!(ty("mood")["connect.parameters"]["allowed"], "ok,sad");
        assert_eq!(ty("weird_name__"), "string");
        assert_eq!(ty("_9lives"), "int");
        assert_eq!(ty("g2"), "io.debezium.data.geometry.Geometry");
    }

    #[test]
    fn carried_as_text_agrees_with_the_schemas() {
        let route = every_type();
        for t in route.schema.columns.iter().map(|c| &c.column_type) {
            let ty = type_schema(t);
            let is_string =
                ty == "string" || (ty["type"] == "string" && ty.get("logicalType").is_none());
            assert_eq!(carried_as_text(t), is_string, "{t:?}: {ty}");
        }
    }

    #[test]
    fn columns_that_share_an_avro_name_are_an_error_naming_both() {
        let r = route(vec![
            ("id", ColumnType::Int64, false),
            ("a-b", ColumnType::Text, true),
            ("a_b", ColumnType::Text, true),
        ]);
        let e = value_schema(&r, "postgresql").unwrap_err();
        assert!(e.contains("`a-b`") && e.contains("`a_b`"), "{e}");
    }
}
