//! The stdout sink: one JSON line per message (`topic`, `key`, `value`, `headers`), for
//! trying tidemark without a broker. A line is acknowledged once written and flushed.

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::Ack;
use crate::error::{Error, Result};
use crate::schema::OutRecord;

pub struct StdoutSink {
    out: Mutex<tokio::io::Stdout>,
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self {
            out: Mutex::new(tokio::io::stdout()),
        }
    }
}

fn as_json(bytes: &Option<Vec<u8>>) -> serde_json::Value {
    match bytes {
        None => serde_json::Value::Null,
        Some(b) => serde_json::from_slice(b)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned())),
    }
}

impl StdoutSink {
    pub async fn send(&self, record: OutRecord) -> Result<Ack> {
        let line = serde_json::json!({
            "topic": &*record.topic,
            "key": as_json(&record.key),
            "value": as_json(&record.value),
            "headers": {"tidemark.event_time_ms": record.event_time_ms.to_string(), "tidemark.op": record.op},
        });
        let mut text = line.to_string();
        text.push('\n');
        let mut out = self.out.lock().await;
        out.write_all(text.as_bytes())
            .await
            .map_err(|e| Error::definite("writing to standard output").with_source(e))?;
        Ok(Box::pin(async { Ok(()) }))
    }

    pub async fn flush(&self) -> Result<()> {
        self.out
            .lock()
            .await
            .flush()
            .await
            .map_err(|e| Error::definite("flushing standard output").with_source(e))
    }
}
