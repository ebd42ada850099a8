//! The event router: which topic, which key and which columns each change goes out with.
//!
//! Owns: per-table routes from the table files (`configs/tables/<connector>/<schema>.<table>.yaml`):
//! topic templates ([`template`]), key columns, column include/exclude and masks ([`mask`]),
//! row filters ([`filter`]), the event-time column, outbox tables ([`outbox`]); compiled per
//! table shape in [`rules`]. And the expansion of one change into the messages a compacted
//! topic needs: a delete is followed by a tombstone; an update that changes the key becomes a
//! delete (and tombstone) of the old key and a create of the new one.
//! Must not: encode (see `schema`) or produce (see `sink`).
//!
//! # Several tables on one topic
//!
//! When the topics of two or more of a connector's tables are the same, each message key of
//! that topic carries the table as its first field, `"__table": "<schema>.<table>"`, so equal
//! primary keys of different tables stay different keys (compaction would otherwise drop one
//! table's row for the other's). A header would not do: compaction looks at the key only.
//!
//! # Filters and updates that cross them
//!
//! A row filter keeps a topic equal to the filtered table. An insert (or snapshot row) that
//! fails it produces nothing. An update whose new row passes is produced as it is (an update
//! into the filter is an update: a consumer upserts it). An update whose new row fails while
//! its old row passed (or is not known) leaves the filtered table: it is produced as a delete
//! (`op: d`, `before` the old row, even a key-only one, else the new row) with the header
//! `tidemark.filter: left`, followed by a tombstone under the old key, so the compacted topic
//! drops the row. A delete is produced unless
//! its old row is known to fail. The filter reads the values before masks, so it may use
//! columns the messages leave out.

pub mod filter;
pub mod mask;
pub mod outbox;
pub mod rules;
pub mod template;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{ConnectorConfig, DaemonConfig, Format, Secret, Values};
use crate::error::{Error, Result};
use crate::event::{ChangeEvent, Header, Op, Row, TableId, TableSchema};
use crate::value::Value;
use rules::{RuleContext, TableRules};
use template::{TableNames, Template};

/// The key field that names the table on a topic several tables share.
pub const TABLE_KEY_FIELD: &str = "__table";

/// Where and under which key one table's messages go.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub topic: Arc<str>,
    /// Indices of the key columns in `schema`; empty for a keyless table.
    pub key_columns: Arc<[usize]>,
    /// The table as its messages carry it (after `columns` rules).
    pub schema: Arc<TableSchema>,
    /// `Some("<schema>.<table>")` when the topic carries several tables: the key names it.
    pub table_in_key: Option<Arc<str>>,
    /// The format the table's messages are written in.
    pub format: Format,
    /// How the table's column values are written.
    pub values: Values,
}

/// What one message carries.
#[derive(Debug, Clone)]
pub enum Body {
    /// A change in the envelope of the connector's format.
    Change(ChangeEvent),
    /// A null value after a delete: compaction removes the key.
    Tombstone,
    /// An outbox event: key and value bytes as they are.
    Outbox {
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        /// The row's place in the log (for errors and dead letters).
        location: crate::event::SourceLocation,
    },
    /// A change the router could not route ([`crate::error::EventFault::Routing`]): the
    /// pipeline applies the table's `on_error` policy to it.
    Rejected { event: ChangeEvent, reason: String },
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Routed {
    pub route: Arc<Route>,
    /// The key's values, in key-column order; `None` for a truncate (and an outbox event).
    pub key: Option<Row>,
    pub body: Body,
    /// The event time (the `event_time` column, else the commit time), ms since epoch.
    pub event_time_ms: i64,
    /// Headers beyond tidemark's own (usually none).
    pub headers: Vec<Header>,
    /// The delete and the create an update that changes the key becomes carry the other
    /// key: the new one on the delete, the old one on the create (the `debezium` profile
    /// writes it as Debezium's `__debezium.newkey` / `__debezium.oldkey` header).
    pub key_change: Option<Row>,
}

impl Routed {
    /// The change this message carries, if it is one.
    pub fn change(&self) -> Option<&ChangeEvent> {
        match &self.body {
            Body::Change(e) => Some(e),
            _ => None,
        }
    }
}

/// One configured table's topic.
struct TableTopic {
    /// The topic (none for an outbox table: each row names its own).
    topic: Option<Arc<str>>,
    /// An outbox table's template, table placeholders filled in.
    outbox: Option<Template>,
    shared: bool,
}

pub struct Router {
    connector: Arc<ConnectorConfig>,
    prefix: String,
    default_template: Template,
    format: Format,
    values: Values,
    compacted: bool,
    salt: Option<Secret>,
    topics: foldhash::HashMap<TableId, TableTopic>,
    /// Compiled rules by table, valid for one schema (compared by pointer).
    rules: foldhash::HashMap<TableId, (Arc<TableSchema>, TableRules)>,
    /// Changes a row filter left out (the filtered table does not hold them).
    filtered: u64,
}

impl Router {
    pub fn new(
        connector: Arc<ConnectorConfig>,
        daemon: &DaemonConfig,
        salt: Option<Secret>,
    ) -> Result<Self> {
        let default_template = Template::parse(&daemon.router.topic)
            .map_err(|e| Error::definite(format!("router.topic: {e}")))?;
        let mut router = Self {
            connector: connector.clone(),
            prefix: daemon.kafka.topic_prefix.clone(),
            default_template,
            format: daemon.format,
            values: Values {
                profile: daemon.values,
                decimals: daemon.decimal_handling.unwrap_or_default(),
            },
            compacted: daemon.kafka.compact_topics,
            salt,
            topics: foldhash::HashMap::default(),
            rules: foldhash::HashMap::default(),
            filtered: 0,
        };
        let mut count: HashMap<Arc<str>, usize> = HashMap::new();
        for t in &connector.tables {
            let topic = router.table_topic(&t.id)?;
            if let Some(name) = &topic.topic {
                *count.entry(name.clone()).or_default() += 1;
            }
            router.topics.insert(t.id.clone(), topic);
        }
        for topic in router.topics.values_mut() {
            topic.shared = topic.topic.as_ref().is_some_and(|t| count[t] > 1);
        }
        Ok(router)
    }

    fn names<'a>(&'a self, id: &'a TableId) -> TableNames<'a> {
        TableNames {
            prefix: &self.prefix,
            connector: &self.connector.name,
            db: &self.connector.connection.database,
            schema: &id.schema,
            table: &id.table,
        }
    }

    /// A table's topic from its file (or the daemon's template).
    fn table_topic(&self, id: &TableId) -> Result<TableTopic> {
        let entry = self.connector.table(id);
        let file = || {
            entry
                .and_then(|e| e.file.as_ref())
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "the daemon file".into())
        };
        let parse = |text: &str, key: &str| {
            Template::parse(text).map_err(|e| {
                Error::definite(format!("table {id}: {}: {key}: {e}", file())).for_table(id)
            })
        };
        if let Some(outbox) = entry.and_then(|e| e.config.outbox.as_ref()) {
            return Ok(TableTopic {
                topic: None,
                outbox: Some(parse(&outbox.topic, "outbox.topic")?.with_table(&self.names(id))),
                shared: false,
            });
        }
        let template = match entry.and_then(|e| e.config.topic.as_deref()) {
            Some(t) => parse(t, "topic")?,
            None => self.default_template.clone(),
        };
        let filled = template.with_table(&self.names(id));
        let topic = filled.as_literal().ok_or_else(|| {
            Error::definite(format!(
                "table {id}: {}: topic: a table's topic template may use only {{prefix}}, {{connector}},                  {{db}}, {{schema}} and {{table}} (column values name topics only in an outbox table)",
                file()
            ))
            .for_table(id)
        })?;
        Ok(TableTopic {
            topic: Some(Arc::from(topic)),
            outbox: None,
            shared: false,
        })
    }

    /// The default topic of a table under the default template.
    pub fn default_topic(prefix: &str, id: &TableId) -> String {
        format!("{prefix}.{}.{}", id.schema, id.table)
    }

    /// Changes left out by row filters so far.
    pub fn filtered(&self) -> u64 {
        self.filtered
    }

    fn rules_for(&mut self, schema: &Arc<TableSchema>) -> Result<&mut TableRules> {
        let fresh = !matches!(self.rules.get(&schema.id), Some((s, _)) if Arc::ptr_eq(s, schema));
        if fresh {
            if !self.topics.contains_key(&schema.id) {
                let topic = self.table_topic(&schema.id)?;
                self.topics.insert(schema.id.clone(), topic);
            }
            let topic = &self.topics[&schema.id];
            let ctx = RuleContext {
                connector: &self.connector.name,
                topic: topic.topic.clone(),
                shared_topic: topic.shared,
                compacted: self.compacted,
                format: self.format,
                values: self.values,
                salt: self.salt.as_ref(),
                outbox_topic: topic.outbox.clone(),
            };
            let rules = TableRules::compile(schema, self.connector.table(&schema.id), &ctx)
                .map_err(|e| Error::definite(e).for_table(&schema.id))?;
            self.rules
                .insert(schema.id.clone(), (schema.clone(), rules));
        }
        match self.rules.get_mut(&schema.id) {
            Some((_, rules)) => Ok(rules),
            None => Err(Error::definite(format!(
                "table {}: no routing rules",
                schema.id
            ))),
        }
    }

    /// The messages for one change, in the order they must be produced.
    pub fn route(&mut self, event: ChangeEvent) -> Result<Vec<Routed>> {
        let mut out = Vec::with_capacity(1);
        self.route_into(event, &mut out)?;
        Ok(out)
    }

    /// Appends the messages for one change to `out`, in the order they must be produced
    /// (the pipeline reuses one vector for every change). A change a filter leaves out
    /// appends nothing.
    pub fn route_into(&mut self, mut event: ChangeEvent, out: &mut Vec<Routed>) -> Result<()> {
        let table = event.table.clone();
        let rules = self.rules_for(&table)?;
        let commit_ms = event.source.ts_ms;

        // The filter decides on the rows as the log has them (before masks).
        let crossing = match rules.filter() {
            Some(f) => filter_decision(f, &event),
            None => Crossing::Keep,
        };
        // The event time of the change as the log has it (a row leaving the filter: its new row).
        let event_time_ms =
            rules.event_time_ms(event.after.as_ref().or(event.before.as_ref()), commit_ms);
        let left_filter = match crossing {
            Crossing::Drop => {
                self.filtered += 1;
                return Ok(());
            }
            Crossing::Keep => false,
            Crossing::Left => {
                // The delete of the row as it was: the old row (a key-only old row still holds
                // the old key, which may differ from the new row's), else the new row.
                event.op = Op::Delete;
                let after = event.after.take();
                if event.before.is_none() {
                    event.before = after;
                }
                true
            }
        };

        if let Some(outbox) = rules.outbox.as_mut() {
            return route_outbox(outbox, &rules.route, event, event_time_ms, out);
        }
        let route = rules.route.clone();
        if !rules.keeps_rows() {
            event.before = event.before.take().map(|r| rules.shape(r));
            event.after = event.after.take().map(|r| rules.shape(r));
            event.table = route.schema.clone();
        }
        let headers = if left_filter {
            vec![Header {
                name: Cow::Borrowed("tidemark.filter"),
                value: Some(b"left".to_vec()),
            }]
        } else {
            Vec::new()
        };
        expand(route, event, event_time_ms, headers, out);
        Ok(())
    }

    /// The topics of the configured tables (outbox tables name theirs per row), one per
    /// table in the connector's order, for creating them up front and for the start hints.
    pub fn table_topics(&self) -> Vec<(TableId, String)> {
        self.connector
            .tables
            .iter()
            .filter_map(|t| {
                let topic = self.topics.get(&t.id)?.topic.as_ref()?;
                Some((t.id.clone(), topic.to_string()))
            })
            .collect()
    }

    /// Every configured table's topic, each once.
    pub fn configured_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        for (_, t) in self.table_topics() {
            if !topics.contains(&t) {
                topics.push(t);
            }
        }
        topics
    }
}

/// What a row filter makes of one change (see the module doc's table).
enum Crossing {
    Keep,
    Drop,
    /// An update that takes the row out of the filtered table: sent as a delete.
    Left,
}

fn filter_decision(f: &filter::CompiledFilter, event: &ChangeEvent) -> Crossing {
    let key_only = event.before_key_only;
    let pk = &event.table.primary_key;
    let before_could_pass = match &event.before {
        Some(b) => f.could_pass(b, |i| !key_only || pk.contains(&i)),
        None => true,
    };
    let after_could_pass = event
        .after
        .as_ref()
        .is_none_or(|a| f.could_pass(a, |_| true));
    let keep = |pass: bool| if pass { Crossing::Keep } else { Crossing::Drop };
    match event.op {
        Op::Create | Op::Read => keep(after_could_pass),
        Op::Delete => keep(before_could_pass),
        Op::Update if after_could_pass => Crossing::Keep,
        Op::Update if before_could_pass => Crossing::Left,
        Op::Update => Crossing::Drop,
        Op::Truncate => Crossing::Keep,
    }
}

/// Every column a table file names that its live table lacks, as messages naming the file,
/// the key in it and the column (`live`: each existing table's columns). Tables that do not
/// exist are left to the source's own checks.
pub fn check_columns(cfg: &ConnectorConfig, live: &[(TableId, Vec<String>)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, columns) in live {
        let Some(entry) = cfg.table(id) else { continue };
        let file = entry
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| cfg.file.display().to_string());
        let mut named: Vec<(String, String, bool)> = entry
            .config
            .named_columns()
            .into_iter()
            .map(|(key, c)| (key, c.to_string(), false))
            .collect();
        if let Some(f) = entry
            .config
            .filter
            .as_deref()
            .and_then(|f| filter::Filter::parse(f).ok())
        {
            named.extend(
                f.columns()
                    .into_iter()
                    .map(|c| ("filter".into(), c.to_string(), true)),
            );
        }
        if let Some(o) = &entry.config.outbox {
            if let Ok(t) = Template::parse(&o.topic) {
                named.extend(
                    t.column_placeholders()
                        .map(|c| ("outbox.topic".into(), c.to_string(), false)),
                );
            }
        }
        for (key, column, any_case) in named {
            let found = columns
                .iter()
                .any(|c| *c == column || (any_case && c.eq_ignore_ascii_case(&column)));
            if !found {
                problems.push(format!(
                    "{file}: {key}: table {id} has no column `{column}` (its columns: {})",
                    columns.join(", ")
                ));
            }
        }
    }
    problems
}

/// The messages of one outbox row (none for anything but an insert or a snapshot row).
fn route_outbox(
    outbox: &mut outbox::CompiledOutbox,
    route: &Arc<Route>,
    event: ChangeEvent,
    event_time_ms: i64,
    out: &mut Vec<Routed>,
) -> Result<()> {
    let row = match (event.op, &event.after) {
        (Op::Create | Op::Read, Some(row)) => row,
        (Op::Update, _) => {
            tracing::warn!(table = %event.table.id, "an outbox row was updated: outbox rows are written \
                once, so the update produces nothing (is this table really an outbox?)");
            return Ok(());
        }
        _ => return Ok(()),
    };
    let record = match outbox.record(row) {
        Ok(r) => r,
        Err(reason) => {
            out.push(Routed {
                route: route.clone(),
                key: None,
                body: Body::Rejected {
                    reason: format!(
                        "outbox table {} at {}: {reason}",
                        event.table.id, event.source.location
                    ),
                    event,
                },
                event_time_ms,
                headers: Vec::new(),
                key_change: None,
            });
            return Ok(());
        }
    };
    out.push(Routed {
        route: Arc::new(Route {
            topic: record.topic,
            key_columns: route.key_columns.clone(),
            schema: route.schema.clone(),
            table_in_key: None,
            format: route.format,
            values: route.values,
        }),
        key: None,
        body: Body::Outbox {
            key: record.key,
            value: record.value,
            location: event.source.location,
        },
        event_time_ms,
        headers: record.headers,
        key_change: None,
    });
    Ok(())
}

/// The messages of one change on a compacted-topic route: the change, a tombstone after a
/// delete, and a delete, tombstone and create for an update that changes the key.
fn expand(
    route: Arc<Route>,
    event: ChangeEvent,
    event_time_ms: i64,
    headers: Vec<Header>,
    out: &mut Vec<Routed>,
) {
    let key_of = |row: &Row| -> Option<Row> {
        if route.key_columns.is_empty() {
            return None;
        }
        Some(
            route
                .key_columns
                .iter()
                .map(|i| row.get(*i).cloned().unwrap_or(Value::Null))
                .collect(),
        )
    };
    let message = |route: &Arc<Route>, key: Option<Row>, body: Body, headers: Vec<Header>| Routed {
        route: route.clone(),
        key,
        body,
        event_time_ms,
        headers,
        key_change: None,
    };
    match event.op {
        Op::Create | Op::Read => {
            let key = event.after.as_ref().and_then(key_of);
            out.push(message(&route, key, Body::Change(event), headers))
        }
        Op::Delete => {
            let key = event.before.as_ref().and_then(key_of);
            out.push(message(&route, key.clone(), Body::Change(event), headers));
            out.push(message(&route, key, Body::Tombstone, Vec::new()));
        }
        Op::Update => {
            let new_key = event.after.as_ref().and_then(key_of);
            let old_key = event.before.as_ref().and_then(key_of).filter(|k| {
                !k.iter()
                    .any(|v| matches!(v, Value::Null | Value::Unavailable))
            });
            match old_key {
                Some(old) if Some(&old) != new_key.as_ref() => {
                    let mut delete = event.clone();
                    delete.op = Op::Delete;
                    delete.after = None;
                    let mut create = event;
                    create.op = Op::Create;
                    create.before = None;
                    let mut deleted = message(
                        &route,
                        Some(old.clone()),
                        Body::Change(delete),
                        headers.clone(),
                    );
                    deleted.key_change = new_key.clone();
                    out.push(deleted);
                    out.push(message(
                        &route,
                        Some(old.clone()),
                        Body::Tombstone,
                        Vec::new(),
                    ));
                    let mut created = message(&route, new_key, Body::Change(create), headers);
                    created.key_change = Some(old);
                    out.push(created);
                }
                _ => out.push(message(&route, new_key, Body::Change(event), headers)),
            }
        }
        Op::Truncate => out.push(message(&route, None, Body::Change(event), headers)),
    }
}

#[cfg(test)]
mod tests;
