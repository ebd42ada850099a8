//! `format: avro`: keys and values in Avro, in the Confluent wire format (byte `0`, the
//! schema id as a big-endian 4-byte integer, the Avro binary datum), under schemas registered
//! in the schema registry.
//!
//! # When schemas are registered and checked
//!
//! The router makes one [`Route`] per table shape, so a route is the unit of schema: the
//! first message of a route (the table's first event, or its first after a DDL statement
//! changed its columns) is [`prepared`](AvroEncoder::prepare) before it is encoded. Preparing
//! derives the key and value schemas ([`super::avro_schema`]), sets the subject's
//! compatibility level when `schema_registry.compatibility` says so, asks the registry whether
//! the schema is compatible with the subject's versions, and registers it, keeping the ids.
//! Every later message of the route is encoded with the kept ids: no registry call per event.
//!
//! A schema the registry refuses (incompatible with the subject's rule, or invalid) makes
//! every event of that shape an event at fault ([`EventFault::Incompatible`]): the table's
//! `on_error` policy decides (halt before anything of the new shape is produced, dead-letter,
//! skip). The refusal is kept with the route, so the registry is not asked again per event.
//! A registry that cannot be reached is a transient error: the connector restarts from its
//! last committed position with backoff and asks again; nothing of the new shape was
//! produced meanwhile.
//!
//! # Subjects
//!
//! `schema_registry.subject_strategy`: `topic` (`<topic>-key`, `<topic>-value`, the
//! default), `record` (the record's full name: `<namespace>.Key`, `<namespace>.Envelope`) or
//! `topic_record` (`<topic>-<full name>`). A topic that several tables share needs one of the
//! record strategies: each table's records are named after the table too.
//!
//! # Contracts
//!
//! A table with `contract:` is registered as the envelope around the contract's record, and
//! its rows are written by the contract ([`super::contract`]); a column the contract lacks
//! makes each event of that shape a violation. An outbox table in the avro format needs a
//! contract: its payloads (JSON) are written as that record, its keys as Avro strings.
//!
//! # Values
//!
//! Each value is checked against its column's schema on the way ([`super::avro_value`]): a
//! misfit is an event at fault ([`EventFault::Validation`]) naming the column. Truncates have
//! a null key (as Debezium's); tombstones a null value. A PostgreSQL old row that holds only
//! the key (REPLICA IDENTITY DEFAULT) is written as a null `before`: its other columns are
//! unknown and a required Avro field cannot say so; the key is the message's key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::avro_binary::{write, write_bytes, write_long};
use super::avro_schema::{envelope_schema, key_schema, value_schema};
use super::avro_value::field;
use super::contract::ContractPlan;
use super::debezium;
use super::registry::{Compatibility, RegistryClient};
use crate::config::{Contract, RegistrySettings, SubjectStrategy, ValueProfile};
use crate::error::{Error, EventFault, Result};
use crate::event::{ChangeEvent, Message, Row, SourceLocation, TableId, TableSchema};
use crate::router::{Body, Route, Routed};

/// The ids (and contract) a prepared route's messages are written with.
#[derive(Debug, Clone)]
struct Ready {
    /// No key id for a keyless table.
    key_id: Option<u32>,
    value_id: u32,
    /// The table's contract, applied to its rows (or an outbox's payloads).
    contract: Option<Arc<ContractPlan>>,
    /// The columns' Connect types in the `debezium` value profile.
    debezium: Option<Arc<debezium::Columns>>,
}

/// What preparing one route gave.
#[derive(Debug, Clone)]
enum Shape {
    Ready(Ready),
    /// The route's schema was refused (by the registry, or by the table's contract): each of
    /// its events is at fault.
    Refused {
        fault: EventFault,
        reason: String,
    },
}

/// The Avro encoder of one connector.
pub struct AvroEncoder {
    registry: Option<(RegistryClient, RegistrySettings)>,
    /// The source block's flavour: `postgresql` or `mysql`.
    connector_kind: &'static str,
    /// The contracts of the connector's tables.
    contracts: HashMap<TableId, Arc<Contract>>,
    /// Prepared routes by address (the map holds the `Arc`, so an address is never reused).
    shapes: HashMap<usize, (Arc<Route>, Shape)>,
    /// Prepared outbox topics (the router makes a route per outbox row, so they are kept by
    /// topic: one registration per topic, not per event).
    outbox_shapes: HashMap<Arc<str>, Shape>,
    /// The route of the previous message and how it is written (most messages share it).
    last: Option<(Arc<Route>, Ready)>,
    /// The schema ids of transaction metadata topics.
    transaction_ids: HashMap<String, (u32, u32)>,
    /// Subjects whose compatibility level this connector has set.
    leveled: HashSet<String>,
    /// Each table's shape as last registered (to say what changed when a new one is refused).
    registered: HashMap<TableId, Arc<TableSchema>>,
    /// The headers of a message that carries more than its route's (a key change's).
    headers: Vec<crate::event::Header>,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Default for AvroEncoder {
    fn default() -> Self {
        Self::new(None, "postgresql", HashMap::new())
    }
}

fn frame(out: &mut Vec<u8>, id: u32) {
    out.clear();
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
}

/// The subject of a route's key or value schema under `strategy`.
fn subject(strategy: SubjectStrategy, topic: &str, part: &str, schema: &Json) -> String {
    let full_name = match (schema["namespace"].as_str(), schema["name"].as_str()) {
        (Some(ns), Some(name)) if !ns.is_empty() => format!("{ns}.{name}"),
        (_, Some(name)) => name.to_string(),
        // A primitive schema (an outbox key): named after its type.
        _ => schema.as_str().unwrap_or("string").to_string(),
    };
    match strategy {
        SubjectStrategy::Topic => format!("{topic}-{part}"),
        SubjectStrategy::Record => full_name,
        SubjectStrategy::TopicRecord => format!("{topic}-{full_name}"),
    }
}

impl AvroEncoder {
    pub fn new(
        registry: Option<(RegistryClient, RegistrySettings)>,
        connector_kind: &'static str,
        contracts: HashMap<TableId, Arc<Contract>>,
    ) -> Self {
        Self {
            registry,
            connector_kind,
            contracts,
            shapes: HashMap::new(),
            outbox_shapes: HashMap::new(),
            last: None,
            transaction_ids: HashMap::new(),
            leveled: HashSet::new(),
            registered: HashMap::new(),
            headers: Vec::new(),
            key: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Marks `route` as registered under these ids (tests without a registry).
    #[cfg(test)]
    pub fn assume_registered(&mut self, route: &Arc<Route>, key_id: Option<u32>, value_id: u32) {
        self.shapes.insert(
            Arc::as_ptr(route) as usize,
            (
                route.clone(),
                Shape::Ready(Ready {
                    key_id,
                    value_id,
                    contract: None,
                    debezium: (route.values.profile == ValueProfile::Debezium)
                        .then(|| Arc::new(debezium::Columns::new(route, self.connector_kind))),
                }),
            ),
        );
    }

    /// Makes sure `routed`'s route has registered schemas. Returns the fault of this event
    /// when its route's schema was refused (the caller applies the table's policy).
    pub async fn prepare(&mut self, routed: &Routed) -> Result<Option<(EventFault, String)>> {
        let shape = if matches!(routed.body, Body::Outbox { .. }) {
            if !self.outbox_shapes.contains_key(&routed.route.topic) {
                let shape = self.register_outbox(&routed.route).await?;
                self.outbox_shapes.insert(routed.route.topic.clone(), shape);
            }
            self.outbox_shapes.get(&routed.route.topic)
        } else {
            let key = Arc::as_ptr(&routed.route) as usize;
            if !self.shapes.contains_key(&key) {
                let shape = self.register_table(&routed.route).await?;
                self.shapes.insert(key, (routed.route.clone(), shape));
            }
            self.shapes.get(&key).map(|(_, s)| s)
        };
        Ok(match shape {
            Some(Shape::Refused { fault, reason }) => Some((*fault, reason.clone())),
            _ => None,
        })
    }

    /// The key and value schema ids of the transaction topic `topic` (registered once).
    pub async fn transaction_ids(&mut self, topic: &str) -> Result<(u32, u32)> {
        if let Some(ids) = self.transaction_ids.get(topic) {
            return Ok(*ids);
        }
        let Some((client, settings)) = &self.registry else {
            return Err(Error::definite(
                "transaction metadata in the avro format needs a schema_registry",
            ));
        };
        let mut ids = [0u32; 2];
        for (slot, (part, schema)) in ids.iter_mut().zip([
            ("key", super::transaction::avro_key_schema()),
            ("value", super::transaction::avro_value_schema()),
        ]) {
            let subject = subject(settings.subject_strategy, topic, part, &schema);
            *slot = client
                .register(&subject, &schema.to_string())
                .await?
                .map_err(|refusal| {
                    Error::definite(format!(
                        "the schema registry refused the transaction metadata {part} schema under \
                         subject {subject}: {refusal} (another schema is registered there: use another \
                         transaction_metadata.topic)"
                    ))
                })?;
        }
        self.transaction_ids
            .insert(topic.to_string(), (ids[0], ids[1]));
        Ok((ids[0], ids[1]))
    }

    /// Encodes a transaction metadata record with the ids of [`Self::transaction_ids`].
    pub fn encode_transaction<'a>(
        &'a mut self,
        record: &super::transaction::TransactionRecord,
        topic: &'a str,
        (key_id, value_id): (u32, u32),
    ) -> Message<'a> {
        frame(&mut self.key, key_id);
        record.write_avro_key(&mut self.key);
        frame(&mut self.value, value_id);
        record.write_avro_value(&mut self.value);
        Message {
            topic,
            key: Some(&self.key),
            value: Some(&self.value),
            event_time_ms: record.ts_ms,
            op: None,
            headers: &[],
        }
    }

    fn client(&self, table: &TableId) -> Result<&(RegistryClient, RegistrySettings)> {
        self.registry.as_ref().ok_or_else(|| {
            Error::definite(format!(
                "table {table} is in the avro format, but no schema_registry is configured"
            ))
        })
    }

    /// The shape of a table's route: the key and envelope schemas, registered.
    async fn register_table(&mut self, route: &Arc<Route>) -> Result<Shape> {
        let table = &route.schema.id;
        let strategy = self.client(table)?.1.subject_strategy;
        if route.table_in_key.is_some() && strategy == SubjectStrategy::Topic {
            return Err(Error::definite(format!(
                "topic {} carries several tables, so in the avro format its subjects cannot be named after \
                 the topic alone: set schema_registry.subject_strategy to record or topic_record in tidemark.yaml",
                route.topic
            ))
            .for_table(table));
        }
        let contract = match self.contracts.get(table) {
            Some(c) => match ContractPlan::new(c, Some(&route.schema)) {
                Ok(plan) => Some(Arc::new(plan)),
                Err(reason) => {
                    return Ok(Shape::Refused {
                        fault: EventFault::Validation,
                        reason,
                    })
                }
            },
            None => None,
        };
        let key = (!route.key_columns.is_empty())
            .then(|| key_schema(route, self.connector_kind))
            .transpose();
        let value = match &contract {
            Some(plan) => Ok(envelope_schema(
                route,
                self.connector_kind,
                plan.record.clone(),
            )),
            None => value_schema(route, self.connector_kind),
        };
        let (key, value) = match (key, value) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) | (_, Err(e)) => {
                return Ok(Shape::Refused {
                    fault: EventFault::Validation,
                    reason: e,
                })
            }
        };
        let describe = describe_change(self.registered.get(table).map(|t| &**t), &route.schema);
        let key_id = match &key {
            Some(k) => match self
                .register(table, &route.topic, "key", k, &describe)
                .await?
            {
                Ok(id) => Some(id),
                Err(refused) => return Ok(refused),
            },
            None => None,
        };
        let value_id = match self
            .register(table, &route.topic, "value", &value, &describe)
            .await?
        {
            Ok(id) => id,
            Err(refused) => return Ok(refused),
        };
        self.registered.insert(table.clone(), route.schema.clone());
        Ok(Shape::Ready(Ready {
            key_id,
            value_id,
            contract,
            debezium: (route.values.profile == ValueProfile::Debezium)
                .then(|| Arc::new(debezium::Columns::new(route, self.connector_kind))),
        }))
    }

    /// The shape of an outbox topic: a string key, the payload's contract as the value.
    async fn register_outbox(&mut self, route: &Arc<Route>) -> Result<Shape> {
        let table = &route.schema.id;
        let Some(contract) = self.contracts.get(table) else {
            return Err(Error::definite(format!(
                "outbox table {table} is in the avro format without a contract (the payload's schema)"
            )));
        };
        let plan = match ContractPlan::new(contract, None) {
            Ok(p) => Arc::new(p),
            Err(reason) => {
                return Ok(Shape::Refused {
                    fault: EventFault::Validation,
                    reason,
                })
            }
        };
        let describe = "an outbox payload";
        let key_id = match self
            .register(table, &route.topic, "key", &json!("string"), describe)
            .await?
        {
            Ok(id) => id,
            Err(refused) => return Ok(refused),
        };
        let record = plan.record.clone();
        let value_id = match self
            .register(table, &route.topic, "value", &record, describe)
            .await?
        {
            Ok(id) => id,
            Err(refused) => return Ok(refused),
        };
        Ok(Shape::Ready(Ready {
            key_id: Some(key_id),
            value_id,
            contract: Some(plan),
            debezium: None,
        }))
    }

    /// Sets the subject's level (once), checks compatibility and registers one schema.
    /// `Ok(Err(shape))` is a refusal, for the table's policy.
    async fn register(
        &mut self,
        table: &TableId,
        topic: &str,
        part: &str,
        schema: &Json,
        describe: &str,
    ) -> Result<std::result::Result<u32, Shape>> {
        let (client, settings) = self.client(table)?;
        let subject = subject(settings.subject_strategy, topic, part, schema);
        let text = schema.to_string();
        if let Some(level) = settings.compatibility {
            if !self.leveled.contains(&subject) {
                client.set_level(&subject, level).await?;
                self.leveled.insert(subject.clone());
            }
        }
        let (client, _) = self.client(table)?;
        if let Compatibility::Incompatible(reasons) = client.check(&subject, &text).await? {
            return Ok(Err(Shape::Refused {
                fault: EventFault::Incompatible,
                reason: format!(
                    "the table's new {part} schema ({}) breaks the compatibility rule of subject {subject} \
                     in the schema registry: {}; make the change compatible (a new column nullable, no type \
                     change), or change the subject's compatibility level in the registry",
                    describe,
                    if reasons.is_empty() {
                        "the registry gave no reason".into()
                    } else {
                        reasons.join("; ")
                    }
                ),
            }));
        }
        match client.register(&subject, &text).await? {
            Ok(id) => {
                tracing::info!(table = %table, subject, schema_id = id, "schema registered");
                Ok(Ok(id))
            }
            Err(refusal) => Ok(Err(Shape::Refused {
                fault: if refusal.status == 409 {
                    EventFault::Incompatible
                } else {
                    EventFault::Validation
                },
                reason: format!(
                    "the schema registry refused the table's {part} schema ({describe}) under subject {subject}: {refusal}",
                ),
            })),
        }
    }

    /// How a prepared route's messages are written.
    fn ready(&mut self, routed: &Routed) -> Result<Ready> {
        let route = &routed.route;
        if let Some((r, ready)) = &self.last {
            if Arc::ptr_eq(r, route) {
                return Ok(ready.clone());
            }
        }
        let outbox = matches!(routed.body, Body::Outbox { .. });
        let shape = if outbox {
            self.outbox_shapes.get(&route.topic)
        } else {
            self.shapes
                .get(&(Arc::as_ptr(route) as usize))
                .map(|(_, s)| s)
        };
        match shape {
            Some(Shape::Ready(ready)) => {
                if !outbox {
                    self.last = Some((route.clone(), ready.clone()));
                }
                Ok(ready.clone())
            }
            Some(Shape::Refused { reason, .. }) => Err(Error::definite(format!(
                "an event of table {} whose schema was refused reached the encoder: {reason}",
                route.schema.id
            ))),
            None => Err(Error::definite(format!(
                "an event of table {} reached the avro encoder before its schema was registered",
                route.schema.id
            ))),
        }
    }

    /// Encodes one routed message of a prepared route; the result borrows this encoder.
    pub fn encode<'a>(&'a mut self, routed: &'a Routed, now_ms: i64) -> Result<Message<'a>> {
        let ready = self.ready(routed)?;
        let route = &routed.route;
        let misfit = |e: String| {
            Error::definite(format!("table {}: {e}", route.schema.id))
                .with_fault(EventFault::Validation)
        };
        let (has_key, has_value, op) = match &routed.body {
            Body::Change(event) => {
                frame(&mut self.value, ready.value_id);
                let contract = ready.contract.as_deref();
                let dbz = ready.debezium.as_deref();
                let row = |out: &mut Vec<u8>, row: &Row| match (contract, dbz) {
                    (Some(plan), _) => plan.write_row(out, &event.table, row),
                    (None, Some(columns)) => write_debezium_row(out, route, columns, row),
                    (None, None) => write_row(out, &event.table, row),
                };
                write_envelope(&mut self.value, event, now_ms, dbz.is_some(), &row)
                    .map_err(misfit)?;
                let has_key = self.write_table_key(&ready, routed).map_err(misfit)?;
                (has_key, true, Some(event.op.code()))
            }
            Body::Tombstone => {
                let has_key = self.write_table_key(&ready, routed).map_err(misfit)?;
                (has_key, false, None)
            }
            Body::Outbox { key, value, .. } => {
                if let (Some(k), Some(id)) = (key, ready.key_id) {
                    frame(&mut self.key, id);
                    write_bytes(&mut self.key, k);
                }
                if let (Some(v), Some(plan)) = (value, &ready.contract) {
                    frame(&mut self.value, ready.value_id);
                    plan.write_payload(&mut self.value, v).map_err(misfit)?;
                }
                (
                    key.is_some(),
                    value.is_some(),
                    Some(crate::event::Op::Create.code()),
                )
            }
            Body::Rejected { .. } => {
                return Err(Error::definite(format!(
                    "table {}: a rejected change reached the avro encoder",
                    route.schema.id
                )))
            }
        };
        let mut headers: &[crate::event::Header] = &routed.headers;
        if let (Some(columns), Some(_)) = (&ready.debezium, &routed.key_change) {
            let names = super::json::TableNames::new(&route.schema);
            let style = super::json::Style::default();
            if let Some(h) = super::json::key_change_header(routed, &names, columns, style)? {
                self.headers.clear();
                self.headers.extend(routed.headers.iter().cloned());
                self.headers.push(h);
                headers = &self.headers;
            }
        }
        Ok(Message {
            topic: &route.topic,
            key: has_key.then_some(self.key.as_slice()),
            value: has_value.then_some(self.value.as_slice()),
            event_time_ms: routed.event_time_ms,
            op,
            headers,
        })
    }

    /// Writes a table message's key, if it has one (a truncate's and a keyless table's are null).
    fn write_table_key(&mut self, ready: &Ready, routed: &Routed) -> Result<bool, String> {
        match (ready.key_id, &routed.key) {
            (Some(id), Some(key)) => {
                frame(&mut self.key, id);
                write_key(&mut self.key, &routed.route, ready.debezium.as_deref(), key)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// What changed between two shapes of a table, column by column, for errors.
fn describe_change(before: Option<&TableSchema>, after: &TableSchema) -> String {
    let Some(before) = before else {
        let columns: Vec<&str> = after.columns.iter().map(|c| c.name.as_str()).collect();
        return format!("columns {columns:?}");
    };
    let mut changes = Vec::new();
    for c in &after.columns {
        match before.columns.iter().find(|b| b.name == c.name) {
            None => changes.push(format!(
                "column `{}` is new{}",
                c.name,
                if c.nullable { "" } else { " and NOT NULL" }
            )),
            Some(b) if b.column_type != c.column_type => changes.push(format!(
                "column `{}` changed type from {} to {}",
                c.name, b.column_type, c.column_type
            )),
            Some(b) if b.nullable && !c.nullable => {
                changes.push(format!("column `{}` became NOT NULL", c.name))
            }
            Some(_) => {}
        }
    }
    for b in &before.columns {
        if !after.columns.iter().any(|c| c.name == b.name) {
            changes.push(format!("column `{}` was dropped", b.name));
        }
    }
    if changes.is_empty() {
        "no column changed".into()
    } else {
        changes.join(", ")
    }
}

fn write_key(
    out: &mut Vec<u8>,
    route: &Route,
    dbz: Option<&debezium::Columns>,
    key: &Row,
) -> Result<(), String> {
    if let Some(table) = &route.table_in_key {
        write_bytes(out, table.as_bytes());
    }
    for (i, v) in route.key_columns.iter().zip(key) {
        let Some(column) = route.schema.columns.get(*i) else {
            return Err(format!("key column {i} is not in the table"));
        };
        match dbz {
            Some(columns) => write_debezium_value(out, route, columns, *i, v, column.nullable)?,
            None => write(out, &field(column, v)?)?,
        }
    }
    Ok(())
}

/// Column `i`'s value `v` in the `debezium` profile, a union branch when `nullable`.
fn write_debezium_value(
    out: &mut Vec<u8>,
    route: &Route,
    columns: &debezium::Columns,
    i: usize,
    v: &crate::value::Value,
    nullable: bool,
) -> Result<(), String> {
    let c = columns.convert(route, i, v)?;
    let name = || route.schema.columns.get(i).map_or("?", |c| c.name.as_str());
    match (c, nullable) {
        (debezium::ConnectValue::Null, true) => write_long(out, 0),
        (debezium::ConnectValue::Null, false) => {
            return Err(format!(
                "column `{}`: NULL in a column that is not nullable",
                name()
            ))
        }
        (c, nullable) => {
            if nullable {
                write_long(out, 1);
            }
            let value = debezium::avro::value(&columns.types[i], &c)
                .map_err(|e| format!("column `{}`: {e}", name()))?;
            write(out, &value)?;
        }
    }
    Ok(())
}

/// A row as the `debezium` profile's row record.
fn write_debezium_row(
    out: &mut Vec<u8>,
    route: &Route,
    columns: &debezium::Columns,
    row: &Row,
) -> Result<(), String> {
    for (i, (column, v)) in route.schema.columns.iter().zip(row).enumerate() {
        write_debezium_value(out, route, columns, i, v, column.nullable)?;
    }
    Ok(())
}

/// A row as the derived row record.
fn write_row(out: &mut Vec<u8>, table: &TableSchema, row: &Row) -> Result<(), String> {
    for (column, v) in table.columns.iter().zip(row) {
        write(out, &field(column, v)?)?;
    }
    Ok(())
}

/// A row writer: the derived row record, or a table's contract.
type RowWriter<'a> = dyn Fn(&mut Vec<u8>, &Row) -> Result<(), String> + 'a;

fn write_envelope(
    out: &mut Vec<u8>,
    e: &ChangeEvent,
    now_ms: i64,
    debezium: bool,
    row: &RowWriter<'_>,
) -> Result<(), String> {
    let table = &e.table;
    match &e.before {
        Some(r) if !e.before_key_only => {
            write_long(out, 1);
            row(out, r)?;
        }
        _ => write_long(out, 0),
    }
    match &e.after {
        Some(r) => {
            write_long(out, 1);
            row(out, r)?;
        }
        None => write_long(out, 0),
    }
    // source
    let src = &e.source;
    let string = |out: &mut Vec<u8>, s: &str| write_bytes(out, s.as_bytes());
    string(out, env!("CARGO_PKG_VERSION"));
    string(out, src.connector);
    string(out, &src.name);
    write_long(out, src.ts_ms);
    write_long(out, 0); // ["string", "null"]: the string
    string(
        out,
        match (debezium, src.snapshot.is_snapshot()) {
            (true, _) => src.snapshot.debezium(),
            (false, true) => "true",
            (false, false) => "false",
        },
    );
    string(out, &src.db);
    if debezium {
        // sequence, ts_us, ts_ns: each ["null", T], the second branch.
        match &src.location {
            SourceLocation::Postgres {
                lsn, commit_lsn, ..
            } => {
                // The string `["<commit_lsn>","<lsn>"]`, without an allocation.
                let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
                let (a, b) = (a.format(*commit_lsn), b.format(*lsn));
                write_long(out, 1);
                write_long(out, (a.len() + b.len() + 7) as i64);
                out.extend_from_slice(b"[\"");
                out.extend_from_slice(a.as_bytes());
                out.extend_from_slice(b"\",\"");
                out.extend_from_slice(b.as_bytes());
                out.extend_from_slice(b"\"]");
            }
            SourceLocation::Mysql { .. } => write_long(out, 0),
        }
        write_long(out, 1);
        write_long(out, src.ts_ms.saturating_mul(1_000));
        write_long(out, 1);
        write_long(out, src.ts_ms.saturating_mul(1_000_000));
    }
    string(out, &table.id.schema);
    string(out, &table.id.table);
    match &src.location {
        SourceLocation::Postgres {
            lsn,
            commit_lsn,
            tx_id,
        } => {
            write_long(out, i64::from(*tx_id));
            write_long(out, *lsn as i64);
            write_long(out, *commit_lsn as i64);
            if debezium {
                write_long(out, 0); // xmin: null
            }
        }
        SourceLocation::Mysql {
            file,
            pos,
            row,
            gtid,
            server_id,
        } => {
            write_long(out, i64::from(*server_id));
            match gtid {
                Some(g) => {
                    write_long(out, 1);
                    string(out, g);
                }
                None => write_long(out, 0),
            }
            string(out, file);
            write_long(out, *pos as i64);
            write_long(out, i64::from(*row));
            if debezium {
                write_long(out, 0); // thread: null
                write_long(out, 0); // query: null
            }
        }
    }
    string(out, e.op.code());
    write_long(out, 1);
    write_long(out, now_ms);
    if debezium {
        write_long(out, 1);
        write_long(out, now_ms.saturating_mul(1_000));
        write_long(out, 1);
        write_long(out, now_ms.saturating_mul(1_000_000));
    }
    match &e.transaction {
        Some(t) => {
            write_long(out, 1);
            string(out, &t.id);
            write_long(out, t.total_order as i64);
            write_long(out, t.data_collection_order as i64);
        }
        None => write_long(out, 0),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::event::{Op, TransactionInfo};
    use crate::test_fixtures::{change, column, route, table};
    use crate::value::{ColumnType, Value};
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::types::Value as Avro;
    use apache_avro::Schema;

    fn decode(schema: &serde_json::Value, framed: &[u8], id: u32) -> Avro {
        assert_eq!(framed[0], 0, "magic byte");
        assert_eq!(u32::from_be_bytes(framed[1..5].try_into().unwrap()), id);
        let schema = Schema::parse(schema).unwrap();
        let mut datum = &framed[5..];
        let v = GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut datum)
            .unwrap();
        assert!(datum.is_empty(), "bytes left after the datum");
        v
    }

    fn get<'a>(record: &'a Avro, name: &str) -> &'a Avro {
        let Avro::Record(fields) = record else {
            panic!("not a record: {record:?}")
        };
        &fields.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn routed(r: &Arc<Route>, body: Body, key: Option<Row>) -> Routed {
        Routed {
            route: r.clone(),
            key,
            body,
            event_time_ms: 5,
            headers: Vec::new(),
            key_change: None,
        }
    }

    #[test]
    fn changes_keys_and_tombstones_round_trip_in_the_wire_format() {
        let t = table(
            "public",
            "t",
            vec![
                column("id", ColumnType::Int64, false),
                column("name", ColumnType::Text, true),
            ],
            vec![0],
        );
        let r = Arc::new(route("tm.public.t", t.clone(), vec![0], Format::Avro));
        let mut enc = AvroEncoder::default();
        enc.assume_registered(&r, Some(7), 8);
        let mut update = change(
            t.clone(),
            Op::Update,
            Some(vec![Value::Int(1), Value::Null]),
            Some(vec![Value::Int(1), Value::Text("b".into())]),
            1000,
        );
        update.transaction = Some(TransactionInfo {
            id: "9:1".into(),
            total_order: 2,
            data_collection_order: 1,
        });
        let m = routed(&r, Body::Change(update), Some(vec![Value::Int(1)]));
        let msg = enc.encode(&m, 2000).unwrap();
        assert_eq!(msg.op, Some("u"));
        let key = decode(&key_schema(&r, "postgresql").unwrap(), msg.key.unwrap(), 7);
        assert_eq!(get(&key, "id"), &Avro::Long(1));
        let value = decode(
            &value_schema(&r, "postgresql").unwrap(),
            msg.value.unwrap(),
            8,
        );
        let Avro::Union(1, after) = get(&value, "after") else {
            panic!("after")
        };
        assert_eq!(
            get(after, "name"),
            &Avro::Union(1, Box::new(Avro::String("b".into())))
        );
        let Avro::Union(1, before) = get(&value, "before") else {
            panic!("before")
        };
        assert_eq!(get(before, "name"), &Avro::Union(0, Box::new(Avro::Null)));
        assert_eq!(get(&value, "op"), &Avro::String("u".into()));
        assert_eq!(
            get(&value, "ts_ms"),
            &Avro::Union(1, Box::new(Avro::Long(2000)))
        );
        let source = get(&value, "source");
        assert_eq!(get(source, "table"), &Avro::String("t".into()));
        assert_eq!(get(source, "ts_ms"), &Avro::Long(1000));
        let Avro::Union(1, tx) = get(&value, "transaction") else {
            panic!("transaction")
        };
        assert_eq!(get(tx, "total_order"), &Avro::Long(2));

        // A key-only old row is a null `before`; a tombstone has a null value.
        let mut delete = change(
            t.clone(),
            Op::Delete,
            Some(vec![Value::Int(1), Value::Null]),
            None,
            1,
        );
        delete.before_key_only = true;
        let m = routed(&r, Body::Change(delete), Some(vec![Value::Int(1)]));
        let msg = enc.encode(&m, 2000).unwrap();
        let value = decode(
            &value_schema(&r, "postgresql").unwrap(),
            msg.value.unwrap(),
            8,
        );
        assert_eq!(get(&value, "before"), &Avro::Union(0, Box::new(Avro::Null)));
        let m = routed(&r, Body::Tombstone, Some(vec![Value::Int(1)]));
        let msg = enc.encode(&m, 2000).unwrap();
        assert!(msg.value.is_none() && msg.key.is_some());
        // A truncate has a null key.
        let m = routed(
            &r,
            Body::Change(change(t, Op::Truncate, None, None, 1)),
            None,
        );
        let msg = enc.encode(&m, 2000).unwrap();
        assert!(msg.key.is_none() && msg.value.is_some());
    }

    #[test]
    fn a_value_that_misfits_its_schema_is_a_validation_fault() {
        let t = table(
            "public",
            "t",
            vec![column("id", ColumnType::Int32, false)],
            vec![0],
        );
        let r = Arc::new(route("tm.public.t", t.clone(), vec![0], Format::Avro));
        let mut enc = AvroEncoder::default();
        enc.assume_registered(&r, Some(1), 2);
        let row = vec![Value::Int(1 << 40)];
        let m = routed(
            &r,
            Body::Change(change(t, Op::Create, None, Some(row.clone()), 1)),
            Some(row),
        );
        let e = enc.encode(&m, 1).unwrap_err();
        assert_eq!(e.fault, Some(EventFault::Validation));
        assert!(e.to_string().contains("column `id`"), "{e}");
    }

    #[test]
    fn an_unprepared_route_is_an_error_not_a_guess() {
        let t = table(
            "public",
            "t",
            vec![column("id", ColumnType::Int32, false)],
            vec![0],
        );
        let r = Arc::new(route("tm.public.t", t, vec![0], Format::Avro));
        let mut enc = AvroEncoder::default();
        let e = enc
            .encode(&routed(&r, Body::Tombstone, Some(vec![Value::Int(1)])), 1)
            .unwrap_err();
        assert!(
            e.to_string().contains("before its schema was registered"),
            "{e}"
        );
    }

    #[test]
    fn a_refused_change_is_described_column_by_column() {
        let old = table(
            "public",
            "t",
            vec![
                column("id", ColumnType::Int32, false),
                column("qty", ColumnType::Int32, false),
                column("gone", ColumnType::Text, true),
            ],
            vec![0],
        );
        let new = table(
            "public",
            "t",
            vec![
                column("id", ColumnType::Int32, false),
                column("qty", ColumnType::Text, false),
                column("more", ColumnType::Int32, false),
            ],
            vec![0],
        );
        assert_eq!(
            describe_change(Some(&old), &new),
            "column `qty` changed type from int32 to text, column `more` is new and NOT NULL, \
             column `gone` was dropped"
        );
        assert_eq!(
            describe_change(None, &old),
            r#"columns ["id", "qty", "gone"]"#
        );
    }

    #[test]
    fn subjects_follow_the_strategy() {
        let t = table(
            "public",
            "t",
            vec![column("id", ColumnType::Int32, false)],
            vec![0],
        );
        let r = route("tm.public.t", t, vec![0], Format::Avro);
        let v = value_schema(&r, "mysql").unwrap();
        assert_eq!(
            subject(SubjectStrategy::Topic, &r.topic, "value", &v),
            "tm.public.t-value"
        );
        assert_eq!(
            subject(SubjectStrategy::Record, &r.topic, "value", &v),
            "tm.public.t.Envelope"
        );
        assert_eq!(
            subject(SubjectStrategy::TopicRecord, &r.topic, "value", &v),
            "tm.public.t-tm.public.t.Envelope"
        );
        assert_eq!(
            subject(SubjectStrategy::Record, "o", "key", &json!("string")),
            "string"
        );
    }
}
