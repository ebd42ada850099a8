//! The outbox router: a table whose rows are events (the transactional outbox pattern).
//!
//! Each inserted row becomes one message: its topic is the `outbox.topic` template filled in
//! with the row's columns (`{prefix}.{aggregate_type}`), its key the text of the `key` column
//! (the aggregate id), its value the `payload` column as is (JSON text unchanged, text as its
//! bytes, binary as is; NULL gives a null value), and the `id` and `type` columns and any
//! `headers` columns become record headers. Messages follow the outbox table's commit order
//! (one connector, one ordered stream).
//!
//! What produces nothing: a delete (applications delete outbox rows once written, which is
//! not an event), a truncate, and an update (an outbox row is written once; an update is
//! logged at WARN because it usually means the table is not an outbox). Rows a snapshot
//! reads are events like inserts: set `snapshot: {mode: never}` on a connector whose outbox
//! table keeps rows that were already delivered.
//!
//! Outbox topics are event streams: they are created with `cleanup.policy=delete`, never
//! compacted (compaction would keep only the last event of each aggregate).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::template::Template;
use crate::config::table::OutboxConfig;
use crate::config::valid_topic_name;
use crate::event::{Header, TableSchema};
use crate::value::{text_form, Value};

/// An outbox table's rules bound to one shape.
pub struct CompiledOutbox {
    topic: Template,
    /// The template's column placeholders and their column indices.
    topic_columns: Vec<(String, usize)>,
    key: usize,
    payload: usize,
    /// Header name and column index.
    headers: Vec<(Cow<'static, str>, usize)>,
    /// Topics made so far, shared so the pipeline sees the same pointer for the same topic.
    topics: HashMap<String, Arc<str>>,
}

/// One outbox message, before encoding.
pub struct OutboxRecord {
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

impl CompiledOutbox {
    pub fn compile(
        config: &OutboxConfig,
        topic: Template,
        schema: &TableSchema,
        column: &dyn Fn(&str, &str) -> Result<usize, String>,
    ) -> Result<Self, String> {
        let topic_columns = topic
            .column_placeholders()
            .map(|name| Ok((name.to_string(), column("outbox.topic", name)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let mut headers = Vec::new();
        match &config.id {
            Some(c) => headers.push((Cow::Borrowed("id"), column("outbox.id", c)?)),
            None => {
                if let Some(i) = schema.column_index("id") {
                    headers.push((Cow::Borrowed("id"), i));
                }
            }
        }
        if let Some(c) = &config.event_type {
            headers.push((Cow::Borrowed("type"), column("outbox.type", c)?));
        }
        for (k, c) in config.headers.iter().enumerate() {
            headers.push((
                Cow::Owned(c.clone()),
                column(&format!("outbox.headers[{k}]"), c)?,
            ));
        }
        Ok(Self {
            topic,
            topic_columns,
            key: column("outbox.key", &config.key)?,
            payload: column("outbox.payload", &config.payload)?,
            headers,
            topics: HashMap::new(),
        })
    }

    /// The message of one outbox row; the error names the column at fault.
    pub fn record(&mut self, row: &[Value]) -> Result<OutboxRecord, String> {
        let text = |i: usize| row.get(i).and_then(text_form);
        let mut missing = None;
        let topic = self.topic.render(|name| {
            let value = self
                .topic_columns
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, i)| text(*i));
            if value.is_none() {
                missing = Some(name.to_string());
            }
            value.map(Cow::Owned)
        });
        let topic = match (topic, missing) {
            (Ok(t), _) => t,
            (Err(_), Some(column)) => {
                return Err(format!(
                    "column `{column}` is NULL, and the outbox topic template needs its value"
                ))
            }
            (Err(e), None) => return Err(e),
        };
        let topic = match self.topics.get(&topic) {
            Some(t) => t.clone(),
            None => {
                if !valid_topic_name(&topic) {
                    return Err(format!(
                        "the outbox topic `{topic}` is not a valid topic name (ASCII letters, digits, \
                         '.', '_' and '-', at most 249)"
                    ));
                }
                let t: Arc<str> = Arc::from(topic.as_str());
                self.topics.insert(topic, t.clone());
                t
            }
        };
        let value = match row.get(self.payload) {
            None | Some(Value::Null) => None,
            Some(Value::Unavailable) => {
                return Err(
                    "the payload column's value is not in the log (an unchanged TOAST value)"
                        .into(),
                )
            }
            Some(Value::Json(j)) => Some(j.get().as_bytes().to_vec()),
            Some(Value::Text(t)) => Some(t.as_bytes().to_vec()),
            Some(Value::Bytes(b)) => Some(b.clone()),
            Some(other) => text_form(other).map(String::into_bytes),
        };
        Ok(OutboxRecord {
            topic,
            key: text(self.key).map(String::into_bytes),
            value,
            headers: self
                .headers
                .iter()
                .map(|(name, i)| Header {
                    name: name.clone(),
                    value: text(*i).map(String::into_bytes),
                })
                .collect(),
        })
    }
}
