//! Kafka Connect schemas of tidemark's messages, as Debezium's JsonConverter writes them with
//! `schemas.enable=true`: the key struct, the row struct (`<topic>.Value`) and the envelope
//! (`<topic>.Envelope`) with its `source` and `transaction` blocks.
//!
//! Each column's schema describes the value tidemark writes (the `tidemark` value profile):
//! Connect's integer and floating types where tidemark writes numbers, `string` where it writes
//! text, and Debezium's semantic type names where tidemark's text is the one Debezium writes
//! (`io.debezium.time.ZonedTimestamp`, `ZonedTime`, `Interval`, `io.debezium.data.Json`,
//! `Uuid`, `Enum`, `EnumSet`, `io.debezium.data.geometry.Geometry`). Decimals are `string`
//! (Debezium's `decimal.handling.mode=string`); dates, times and timestamps without a zone are
//! ISO 8601 `string`s. A `BIGINT UNSIGNED` is a Connect `Decimal` of scale 0 (its values are
//! written so: `int64` cannot hold those above 2^63-1).

use serde_json::{json, Map, Value as Json};

use super::debezium;
use crate::config::ValueProfile;
use crate::router::Route;
use crate::value::ColumnType;

/// The schema of one column's values.
fn type_schema(t: &ColumnType) -> Json {
    let plain = |ty: &str| json!({ "type": ty });
    let named = |ty: &str, name: &str| json!({ "type": ty, "name": name, "version": 1 });
    match t {
        ColumnType::Bool => plain("boolean"),
        ColumnType::Int16 => plain("int16"),
        ColumnType::Int32 => plain("int32"),
        ColumnType::Int64 => plain("int64"),
        ColumnType::UInt64 => json!({
            "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
            "parameters": { "scale": "0", "connect.decimal.precision": "20" }
        }),
        ColumnType::Float32 => plain("float"),
        ColumnType::Float64 => plain("double"),
        ColumnType::Decimal { .. }
        | ColumnType::Text
        | ColumnType::Date
        | ColumnType::Time { .. }
        | ColumnType::Timestamp { .. }
        | ColumnType::BitString { .. }
        | ColumnType::Other(_) => plain("string"),
        ColumnType::Bytes | ColumnType::Bits { .. } => plain("bytes"),
        ColumnType::TimeTz => named("string", "io.debezium.time.ZonedTime"),
        ColumnType::TimestampTz => named("string", "io.debezium.time.ZonedTimestamp"),
        ColumnType::Interval => named("string", "io.debezium.time.Interval"),
        ColumnType::Uuid => named("string", "io.debezium.data.Uuid"),
        ColumnType::Json => named("string", "io.debezium.data.Json"),
        ColumnType::Enum { labels, .. } => json!({
            "type": "string", "name": "io.debezium.data.Enum", "version": 1,
            "parameters": { "allowed": labels.join(",") }
        }),
        ColumnType::Set { labels } => json!({
            "type": "string", "name": "io.debezium.data.EnumSet", "version": 1,
            "parameters": { "allowed": labels.join(",") }
        }),
        ColumnType::Geometry { .. } => json!({
            "type": "struct", "name": "io.debezium.data.geometry.Geometry", "version": 1,
            "doc": "Geometry", "fields": [
                { "type": "bytes", "optional": false, "field": "wkb" },
                { "type": "int32", "optional": true, "field": "srid" }
            ]
        }),
        ColumnType::Array(item) => {
            let mut items = type_schema(item);
            items["optional"] = json!(true);
            json!({ "type": "array", "items": items })
        }
    }
}

fn field(mut schema: Json, name: &str, optional: bool) -> Json {
    if let Some(m) = schema.as_object_mut() {
        m.insert("optional".into(), json!(optional));
        m.insert("field".into(), json!(name));
    }
    schema
}

/// The schema of a column of `route` from a `connector` source, in the route's value profile.
fn column_schema(route: &Route, connector: &str, t: &ColumnType) -> Json {
    match route.values.profile {
        ValueProfile::Tidemark => type_schema(t),
        ValueProfile::Debezium => debezium::json::connect_schema(&debezium::ConnectType::of(
            t,
            connector == "mysql",
            route.values.decimals,
        )),
    }
}

/// The row struct: one field per column, in column order.
fn row_struct(route: &Route, connector: &str, name: &str, optional: bool) -> Json {
    let fields: Vec<Json> = route
        .schema
        .columns
        .iter()
        .map(|c| {
            field(
                column_schema(route, connector, &c.column_type),
                &c.name,
                c.nullable,
            )
        })
        .collect();
    json!({ "type": "struct", "fields": fields, "optional": optional, "name": name })
}

/// The key struct of `route` (`None`: the route has no key columns; a truncate's `{}` key is
/// described by an empty struct).
pub fn key_schema(route: &Route, connector: &str) -> Json {
    let mut fields = Vec::new();
    if route.table_in_key.is_some() {
        fields.push(field(
            json!({"type": "string"}),
            crate::router::TABLE_KEY_FIELD,
            false,
        ));
    }
    for i in route.key_columns.iter() {
        if let Some(c) = route.schema.columns.get(*i) {
            fields.push(field(
                column_schema(route, connector, &c.column_type),
                &c.name,
                false,
            ));
        }
    }
    json!({
        "type": "struct", "fields": fields, "optional": false,
        "name": format!("{}.Key", route.topic)
    })
}

/// The source block's fields of `connector` (`postgresql` or `mysql`), as tidemark writes them
/// (with Debezium's `sequence`, `ts_us`, `ts_ns` and unset fields in the `debezium` profile).
fn source_struct(connector: &str, debezium: bool) -> Json {
    let s = |name: &str, optional: bool| field(json!({"type": "string"}), name, optional);
    let i64f = |name: &str| field(json!({"type": "int64"}), name, false);
    let mut fields = vec![
        s("version", false),
        s("connector", false),
        s("name", false),
        i64f("ts_ms"),
        field(
            json!({"type": "string", "name": "io.debezium.data.Enum", "version": 1,
                   "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"}, "default": "false"}),
            "snapshot",
            true,
        ),
        s("db", false),
    ];
    if debezium {
        fields.extend([
            s("sequence", true),
            field(json!({"type": "int64"}), "ts_us", true),
            field(json!({"type": "int64"}), "ts_ns", true),
        ]);
    }
    fields.extend([s("schema", false), s("table", false)]);
    let class = if connector == "mysql" {
        fields.extend([
            i64f("server_id"),
            s("gtid", true),
            s("file", false),
            i64f("pos"),
            field(json!({"type": "int32"}), "row", false),
        ]);
        if debezium {
            fields.extend([
                field(json!({"type": "int64"}), "thread", true),
                s("query", true),
            ]);
        }
        "io.debezium.connector.mysql.Source"
    } else {
        fields.extend([i64f("txId"), i64f("lsn"), i64f("commit_lsn")]);
        if debezium {
            fields.push(field(json!({"type": "int64"}), "xmin", true));
        }
        "io.debezium.connector.postgresql.Source"
    };
    json!({ "type": "struct", "fields": fields, "optional": false, "name": class, "field": "source" })
}

/// The envelope struct of `route`'s messages from a `connector` source.
pub fn value_schema(route: &Route, connector: &str) -> Json {
    let value_name = format!("{}.Value", route.topic);
    let debezium = route.values.profile == ValueProfile::Debezium;
    let mut before = row_struct(route, connector, &value_name, true);
    let mut after = before.clone();
    if let (Some(b), Some(a)) = (before.as_object_mut(), after.as_object_mut()) {
        b.insert("field".into(), json!("before"));
        a.insert("field".into(), json!("after"));
    }
    let transaction = json!({
        "type": "struct", "optional": true, "name": "event.block", "version": 1,
        "field": "transaction", "fields": [
            { "type": "string", "optional": false, "field": "id" },
            { "type": "int64", "optional": false, "field": "total_order" },
            { "type": "int64", "optional": false, "field": "data_collection_order" }
        ]
    });
    let mut envelope = Map::new();
    envelope.insert("type".into(), json!("struct"));
    let mut fields = vec![
        before,
        after,
        source_struct(connector, debezium),
        json!({ "type": "string", "optional": false, "field": "op" }),
        json!({ "type": "int64", "optional": true, "field": "ts_ms" }),
    ];
    if debezium {
        fields.push(json!({ "type": "int64", "optional": true, "field": "ts_us" }));
        fields.push(json!({ "type": "int64", "optional": true, "field": "ts_ns" }));
    }
    fields.push(transaction);
    envelope.insert("fields".into(), Json::Array(fields));
    envelope.insert("optional".into(), json!(false));
    envelope.insert("name".into(), json!(format!("{}.Envelope", route.topic)));
    envelope.insert("version".into(), json!(1));
    Json::Object(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ColumnDef, TableId, TableSchema};
    use std::sync::Arc;

    fn route() -> Route {
        let col = |name: &str, t: ColumnType, nullable| ColumnDef {
            name: name.into(),
            column_type: t,
            nullable,
        };
        Route {
            topic: Arc::from("tm.public.t"),
            key_columns: Arc::from(vec![0usize]),
            schema: Arc::new(TableSchema {
                id: TableId::new("public", "t"),
                columns: vec![
                    col("id", ColumnType::Int64, false),
                    col("at", ColumnType::TimestampTz, true),
                    col("tags", ColumnType::Array(Box::new(ColumnType::Text)), true),
                    col(
                        "mood",
                        ColumnType::Enum {
                            name: "mood".into(),
                            labels: vec!["ok".into(), "sad".into()],
                        },
                        true,
                    ),
                ],
                primary_key: vec![0],
            }),
            table_in_key: Some(Arc::from("public.t")),
            format: crate::config::Format::JsonSchema,
            values: crate::config::Values::default(),
        }
    }

    #[test]
    fn key_and_envelope_in_debeziums_shape() {
        let r = route();
        let key = key_schema(&r, "postgresql");
        assert_eq!(key["name"], "tm.public.t.Key");
        assert_eq!(key["fields"][0]["field"], "__table");
        assert_eq!(
            key["fields"][1],
            json!({"type": "int64", "optional": false, "field": "id"})
        );
        let v = value_schema(&r, "postgresql");
        assert_eq!(v["name"], "tm.public.t.Envelope");
        let fields = v["fields"].as_array().unwrap();
        let names: Vec<_> = fields
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["before", "after", "source", "op", "ts_ms", "transaction"]
        );
        let after = &fields[1];
        assert_eq!(after["name"], "tm.public.t.Value");
        assert_eq!(after["optional"], true);
        assert_eq!(after["fields"][0]["optional"], false);
        assert_eq!(
            after["fields"][1]["name"],
            "io.debezium.time.ZonedTimestamp"
        );
        assert_eq!(after["fields"][2]["items"]["type"], "string");
        assert_eq!(after["fields"][3]["parameters"]["allowed"], "ok,sad");
        assert_eq!(fields[2]["name"], "io.debezium.connector.postgresql.Source");
        let my = value_schema(&r, "mysql");
        assert_eq!(
            my["fields"][2]["name"],
            "io.debezium.connector.mysql.Source"
        );
    }
}
