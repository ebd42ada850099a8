//! The stdout sink: one JSON line per message (`topic`, `key`, `value`, `headers`), for
//! trying tidemark without a broker.
//!
//! Lines are buffered and written at the end of each pipeline batch (or when 64 KiB are
//! waiting); a message is acknowledged only after its line was written and flushed. The
//! write blocks its thread while the reader of stdout is slow, which is the backpressure
//! this sink has.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{AckWindow, Message};
use crate::error::{Error, Result};

const FLUSH_AT: usize = 64 * 1024;

#[derive(Default)]
struct Buffered {
    text: Vec<u8>,
    /// Messages in `text`, per connector window: `(window, first, last)`.
    waiting: Vec<(Arc<AckWindow>, u64, u64)>,
}

#[derive(Default)]
pub struct StdoutSink {
    buffered: Mutex<Buffered>,
}

/// Writes `bytes` as JSON: as they are when they are JSON (the envelope and key formats),
/// else as a JSON string (lossy UTF-8).
fn write_json(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<()> {
    let text_err = |e: serde_json::Error| Error::definite("writing a stdout line").with_source(e);
    match bytes {
        None => out.extend_from_slice(b"null"),
        Some(b) if serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok() => {
            out.extend_from_slice(b)
        }
        Some(b) => {
            serde_json::to_writer(&mut *out, &String::from_utf8_lossy(b)).map_err(text_err)?
        }
    }
    Ok(())
}

impl StdoutSink {
    fn lock(&self) -> MutexGuard<'_, Buffered> {
        match self.buffered.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn send(&self, m: Message<'_>, window: &Arc<AckWindow>, seq: u64) -> Result<()> {
        let mut b = self.lock();
        let text_err =
            |e: serde_json::Error| Error::definite("writing a stdout line").with_source(e);
        b.text.extend_from_slice(b"{\"topic\":");
        serde_json::to_writer(&mut b.text, m.topic).map_err(text_err)?;
        b.text.extend_from_slice(b",\"key\":");
        write_json(&mut b.text, m.key)?;
        b.text.extend_from_slice(b",\"value\":");
        write_json(&mut b.text, m.value)?;
        b.text
            .extend_from_slice(b",\"headers\":{\"tidemark.event_time_ms\":\"");
        b.text
            .extend_from_slice(itoa::Buffer::new().format(m.event_time_ms).as_bytes());
        b.text.extend_from_slice(b"\",\"tidemark.op\":");
        serde_json::to_writer(&mut b.text, &m.op).map_err(text_err)?;
        for h in m.headers {
            b.text.push(b',');
            serde_json::to_writer(&mut b.text, &*h.name).map_err(text_err)?;
            b.text.push(b':');
            let value = h.value.as_deref().map(String::from_utf8_lossy);
            serde_json::to_writer(&mut b.text, &value).map_err(text_err)?;
        }
        b.text.extend_from_slice(b"}}\n");
        match b.waiting.last_mut() {
            Some((w, _, last)) if Arc::ptr_eq(w, window) && *last + 1 == seq => *last = seq,
            _ => b.waiting.push((window.clone(), seq, seq)),
        }
        if b.text.len() >= FLUSH_AT {
            Self::write_out(&mut b)?;
        }
        Ok(())
    }

    pub fn end_batch(&self) -> Result<()> {
        Self::write_out(&mut self.lock())
    }

    pub fn flush(&self) -> Result<()> {
        self.end_batch()
    }

    fn write_out(b: &mut Buffered) -> Result<()> {
        if b.text.is_empty() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&b.text).and_then(|()| out.flush());
        b.text.clear();
        let waiting = std::mem::take(&mut b.waiting);
        match written {
            Ok(()) => {
                for (w, first, last) in waiting {
                    for seq in first..=last {
                        w.report(seq, Ok(()));
                    }
                }
                Ok(())
            }
            Err(e) => {
                for (w, first, last) in waiting {
                    for seq in first..=last {
                        w.report(
                            seq,
                            Err(Error::definite(format!("writing to standard output: {e}"))),
                        );
                    }
                }
                Err(Error::definite("writing to standard output").with_source(e))
            }
        }
    }
}
