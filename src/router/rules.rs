//! One table's routing rules bound to one table shape: the topic and key, which columns the
//! messages carry and how they are masked, the row filter and the event-time column.
//!
//! Rules are compiled when the router first sees a shape (at the first change, and again
//! after a DDL gives the table a new shape), so a rule that no longer fits (a dropped column
//! named by a mask) stops the table with an error naming the file and the column instead of
//! producing something else. A table without column rules keeps its rows untouched (no copy).

use std::sync::Arc;

use super::filter::{CompiledFilter, Filter};
use super::mask::CompiledMask;
use super::outbox::CompiledOutbox;
use super::Route;
use crate::config::{Secret, TableEntry};
use crate::event::{Row, TableSchema};
use crate::value::{ColumnType, JsonText, Value, MICROS_PER_DAY};

/// What the router needs besides the table's file.
pub struct RuleContext<'a> {
    pub connector: &'a str,
    /// The table's topic (table placeholders filled in; an outbox table has none).
    pub topic: Option<Arc<str>>,
    /// The topic carries other tables too: the key names the table.
    pub shared_topic: bool,
    pub compacted: bool,
    /// The daemon's format (a table file may override it).
    pub format: crate::config::Format,
    /// The daemon's value profile (a table file may override it).
    pub values: crate::config::Values,
    pub salt: Option<&'a Secret>,
    /// The outbox topic template with the table placeholders filled in.
    pub outbox_topic: Option<super::template::Template>,
}

/// A table's compiled rules.
pub struct TableRules {
    pub route: Arc<Route>,
    /// Input column indices in output order; `None` keeps every column.
    projection: Option<Vec<usize>>,
    /// Masks by output column index.
    masks: Vec<(usize, CompiledMask)>,
    /// Text columns declared to hold JSON (`columns.json`), by output index, each with whether
    /// a value that is not JSON was already warned about.
    json: Vec<(usize, std::sync::atomic::AtomicBool)>,
    filter: Option<CompiledFilter>,
    /// Input index of the event-time column.
    event_time: Option<usize>,
    pub outbox: Option<CompiledOutbox>,
}

/// A rule that does not fit the table: the file, the key in it and what is wrong.
pub fn rule_error(
    entry: Option<&TableEntry>,
    table: &TableSchema,
    key: &str,
    message: &str,
) -> String {
    let file = entry
        .and_then(|e| e.file.as_ref())
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default();
    let key = if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    };
    format!("table {}: {file}{key}{message}", table.id)
}

impl TableRules {
    pub fn compile(
        input: &Arc<TableSchema>,
        entry: Option<&TableEntry>,
        ctx: &RuleContext<'_>,
    ) -> Result<Self, String> {
        let err = |key: &str, message: String| rule_error(entry, input, key, &message);
        let config = entry.map(|e| &e.config);
        let format = config.and_then(|c| c.format).unwrap_or(ctx.format);
        let values = crate::config::Values {
            profile: config.and_then(|c| c.values).unwrap_or(ctx.values.profile),
            decimals: config
                .and_then(|c| c.decimal_handling)
                .unwrap_or(ctx.values.decimals),
        };
        let column = |key: &str, name: &str| {
            input.column_index(name).ok_or_else(|| {
                err(
                    key,
                    format!(
                        "`{name}` is not a column of the table (its columns: {})",
                        input
                            .columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        };

        let filter = match config.and_then(|c| c.filter.as_deref()) {
            Some(text) => Some(
                Filter::parse(text)
                    .and_then(|f| f.compile(input))
                    .map_err(|e| err("filter", e))?,
            ),
            None => None,
        };
        let event_time = match config.and_then(|c| c.event_time.as_deref()) {
            Some(name) => {
                let i = column("event_time", name)?;
                match input.columns[i].column_type {
                    ColumnType::Timestamp { .. }
                    | ColumnType::TimestampTz
                    | ColumnType::Date
                    | ColumnType::Int64
                    | ColumnType::UInt64 => Some(i),
                    ref t => {
                        return Err(err(
                            "event_time",
                            format!(
                            "column `{name}` is {t}: the event time must be a timestamp, a date, \
                                 or a BIGINT of milliseconds since the epoch"
                        ),
                        ))
                    }
                }
            }
            None => None,
        };

        if let Some(outbox) = config.and_then(|c| c.outbox.as_ref()) {
            let template = ctx.outbox_topic.clone().ok_or_else(|| {
                err(
                    "outbox.topic",
                    "the outbox topic template is missing".into(),
                )
            })?;
            let compiled = CompiledOutbox::compile(outbox, template, input, &column)?;
            return Ok(Self {
                route: Arc::new(Route {
                    topic: Arc::from(""),
                    key_columns: Arc::from(Vec::new()),
                    schema: input.clone(),
                    table_in_key: None,
                    format,
                    values,
                }),
                projection: None,
                masks: Vec::new(),
                json: Vec::new(),
                filter,
                event_time,
                outbox: Some(compiled),
            });
        }

        // Projection.
        let columns = config.map(|c| &c.columns);
        let projection: Option<Vec<usize>> = match columns {
            Some(c) if c.include.is_some() => {
                let names = c.include.iter().flatten();
                let mut keep = Vec::new();
                for (k, name) in names.enumerate() {
                    keep.push(column(&format!("columns.include[{k}]"), name)?);
                }
                keep.sort_unstable();
                keep.dedup();
                Some(keep)
            }
            Some(c) if c.exclude.is_some() => {
                let mut drop = Vec::new();
                for (k, name) in c.exclude.iter().flatten().enumerate() {
                    drop.push(column(&format!("columns.exclude[{k}]"), name)?);
                }
                Some(
                    (0..input.columns.len())
                        .filter(|i| !drop.contains(i))
                        .collect(),
                )
            }
            _ => None,
        };
        let output_index = |input_index: usize| match &projection {
            Some(p) => p.iter().position(|i| *i == input_index),
            None => Some(input_index),
        };

        // Key columns, as input indices, then output indices.
        let key_input: Vec<usize> = match config.and_then(|c| c.key.as_ref()) {
            Some(names) => names
                .iter()
                .enumerate()
                .map(|(k, n)| column(&format!("key[{k}]"), n))
                .collect::<Result<_, _>>()?,
            None => input.primary_key.clone(),
        };
        if key_input.is_empty() && ctx.compacted {
            return Err(err(
                "",
                format!(
                    "the table has no primary key and its file sets no `key`; a compacted topic needs a key: \
                     set `key: [columns]` in configs/tables/{}/{}.yaml, or kafka.compact_topics: false",
                    ctx.connector, input.id
                ),
            ));
        }
        let mut key_columns = Vec::with_capacity(key_input.len());
        for i in &key_input {
            let out = output_index(*i).ok_or_else(|| {
                err(
                    "columns",
                    format!(
                        "key column `{}` is left out by columns.include/exclude: the key is made of \
                         message columns, keep it",
                        input.columns[*i].name
                    ),
                )
            })?;
            key_columns.push(out);
        }

        // Masks.
        let mut masks = Vec::new();
        for (name, mask) in columns.map(|c| &c.mask).into_iter().flatten() {
            let key = format!("columns.mask.{name}");
            let i = column(&key, name)?;
            let out = output_index(i).ok_or_else(|| {
                err(
                    &key,
                    format!("column `{name}` is masked but left out by columns.include/exclude"),
                )
            })?;
            if key_input.contains(&i) && *mask != crate::config::table::Mask::Hash {
                return Err(err(
                    &key,
                    format!(
                        "column `{name}` is a key column: only `hash` keeps distinct keys distinct \
                         (redact or truncate would merge rows in a compacted topic)"
                    ),
                ));
            }
            let compiled =
                CompiledMask::new(mask, &input.columns[i], ctx.salt).map_err(|e| err(&key, e))?;
            masks.push((out, compiled));
        }

        // Text columns that hold JSON.
        let mut json = Vec::new();
        for (k, name) in columns
            .map(|c| c.json.iter())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let key = format!("columns.json[{k}]");
            let i = column(&key, name)?;
            let Some(out) = output_index(i) else {
                continue;
            };
            if input.columns[i].column_type != ColumnType::Text {
                return Err(err(
                    &key,
                    format!(
                        "column `{name}` is {}: only a text column can be declared to hold JSON",
                        input.columns[i].column_type
                    ),
                ));
            }
            if masks.iter().any(|(m, _)| *m == out) {
                return Err(err(
                    &key,
                    format!("column `{name}` is masked: its values are no longer JSON"),
                ));
            }
            json.push((out, std::sync::atomic::AtomicBool::new(false)));
        }

        let schema = if projection.is_none() && masks.is_empty() && json.is_empty() {
            input.clone()
        } else {
            let mut columns: Vec<_> = match &projection {
                Some(p) => p.iter().map(|i| input.columns[*i].clone()).collect(),
                None => input.columns.clone(),
            };
            for (i, m) in &masks {
                columns[*i] = m.masked_column(&columns[*i]);
            }
            for (i, _) in &json {
                columns[*i].column_type = ColumnType::Json;
            }
            let primary_key = input
                .primary_key
                .iter()
                .filter_map(|i| output_index(*i))
                .collect();
            Arc::new(TableSchema {
                id: input.id.clone(),
                columns,
                primary_key,
            })
        };
        let topic = ctx
            .topic
            .clone()
            .ok_or_else(|| err("topic", "the table has no topic".into()))?;
        Ok(Self {
            route: Arc::new(Route {
                topic,
                key_columns: key_columns.into(),
                schema,
                table_in_key: ctx
                    .shared_topic
                    .then(|| Arc::from(input.id.to_string().as_str())),
                format,
                values,
            }),
            projection,
            masks,
            json,
            filter,
            event_time,
            outbox: None,
        })
    }

    /// Whether rows are sent as they come (no column rule).
    pub fn keeps_rows(&self) -> bool {
        self.projection.is_none() && self.masks.is_empty() && self.json.is_empty()
    }

    /// The row as the messages carry it: projected and masked.
    pub fn shape(&self, row: Row) -> Row {
        if self.keeps_rows() {
            return row;
        }
        let mut out = match &self.projection {
            Some(p) => p
                .iter()
                .map(|i| row.get(*i).cloned().unwrap_or(Value::Null))
                .collect(),
            None => row,
        };
        for (i, m) in &self.masks {
            if let Some(v) = out.get_mut(*i) {
                m.apply(v);
            }
        }
        for (i, warned) in &self.json {
            let Some(v) = out.get_mut(*i) else { continue };
            let Value::Text(text) = v else { continue };
            let is_json = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            match is_json.then(|| JsonText::parse(std::mem::take(text))) {
                Some(Ok(j)) => *v = Value::Json(j),
                _ => {
                    // Kept as the text it is (a JSON string), never dropped.
                    if !warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(table = %self.route.schema.id,
                            column = %self.route.schema.columns.get(*i).map_or("?", |c| c.name.as_str()),
                            "a value of a column declared in columns.json is not JSON: it is sent as \
                            a string (shown once per column)");
                    }
                }
            }
        }
        out
    }

    pub fn filter(&self) -> Option<&CompiledFilter> {
        self.filter.as_ref()
    }

    /// The event time of a change whose row is `row`: the event-time column's value, or
    /// `commit_ms` when there is none or it is NULL.
    pub fn event_time_ms(&self, row: Option<&Row>, commit_ms: i64) -> i64 {
        let Some(v) = self.event_time.and_then(|i| row.and_then(|r| r.get(i))) else {
            return commit_ms;
        };
        match v {
            Value::Timestamp(us) | Value::TimestampTz(us) if *us != i64::MAX && *us != i64::MIN => {
                us.div_euclid(1000)
            }
            Value::Date(d) if *d != i32::MAX && *d != i32::MIN => {
                i64::from(*d).saturating_mul(MICROS_PER_DAY / 1000)
            }
            Value::Int(ms) => *ms,
            Value::UInt(ms) => i64::try_from(*ms).unwrap_or(commit_ms),
            _ => commit_ms,
        }
    }
}
