//! The `debezium` value profile (`values: debezium`): every column written as Debezium's
//! connectors write it with their default settings, in each format, so a consumer built for
//! Debezium topics reads tidemark's unchanged.
//!
//! The profile is Kafka Connect's data model, as Debezium uses it: each column has a Connect
//! type ([`types`]: a primitive, an array or a struct, with Debezium's semantic name and
//! parameters), each value converts into a Connect value ([`mod@convert`]), and each format writes
//! those as its Kafka Connect converter does: JsonConverter for `json` and `json-schema`
//! ([`json`]), Confluent's AvroConverter for `avro` ([`avro`]). A table's Connect types are
//! derived once per table shape ([`Columns`]), not per event.
//!
//! Envelope differences of the profile (written by the format encoders): the unchanged-TOAST
//! placeholder is `__debezium_unavailable_value`; `source` carries `sequence`, `ts_us` and
//! `ts_ns`, and the envelope `ts_us` and `ts_ns`; a truncate's key is null; the messages of an
//! update that changes the key carry `__debezium.newkey` / `__debezium.oldkey` headers.

pub mod avro;
pub mod convert;
pub mod json;
pub mod text;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::ValueProfile;
use crate::event::TableId;
use crate::router::Route;
pub use convert::{convert, ConnectValue, DEBEZIUM_UNAVAILABLE_VALUE};
pub use types::ConnectType;

/// The Connect types of one route's columns (in the route's column order).
#[derive(Debug)]
pub struct Columns {
    pub types: Vec<ConnectType>,
}

impl Columns {
    /// The types of `route`'s columns read from a `mysql` or `postgresql` source.
    pub fn new(route: &Route, connector: &str) -> Self {
        let mysql = connector == "mysql";
        Self {
            types: route
                .schema
                .columns
                .iter()
                .map(|c| ConnectType::of(&c.column_type, mysql, route.values.decimals))
                .collect(),
        }
    }

    /// Column `i`'s value as a Connect value, the error naming the column.
    pub fn convert<'a>(
        &self,
        route: &Route,
        i: usize,
        v: &'a crate::value::Value,
    ) -> Result<ConnectValue<'a>, String> {
        let (Some(t), Some(c)) = (self.types.get(i), route.schema.columns.get(i)) else {
            return Err(format!("column {i} is not in the table"));
        };
        convert(t, v).map_err(|e| format!("column `{}`: {e}", c.name))
    }
}

/// The [`Columns`] of the routes an encoder has seen in the `debezium` profile, by table
/// (each compared by pointer, so a new table shape gets new types).
#[derive(Default)]
pub struct ColumnsCache {
    last: Option<(Arc<Route>, Arc<Columns>)>,
    by_table: HashMap<TableId, (Arc<Route>, Arc<Columns>)>,
}

impl ColumnsCache {
    /// `route`'s column types when it is in the `debezium` profile (`None` otherwise).
    pub fn get(&mut self, route: &Arc<Route>, connector: &str) -> Option<Arc<Columns>> {
        if route.values.profile != ValueProfile::Debezium {
            return None;
        }
        if let Some((r, c)) = &self.last {
            if Arc::ptr_eq(r, route) {
                return Some(c.clone());
            }
        }
        let columns = match self.by_table.get(&route.schema.id) {
            Some((r, c)) if Arc::ptr_eq(r, route) => c.clone(),
            _ => {
                let c = Arc::new(Columns::new(route, connector));
                self.by_table
                    .insert(route.schema.id.clone(), (route.clone(), c.clone()));
                c
            }
        };
        self.last = Some((route.clone(), columns.clone()));
        Some(columns)
    }
}
