//! The connectors' status in Prometheus' text exposition format (version 0.0.4), for
//! `GET /metrics`.
//!
//! Written by hand rather than through a metrics crate: every value already lives in the
//! status registry (counted once per batch, not per event), so the exposition is a walk over
//! it, and the daemon carries no second registry. Names follow Prometheus' conventions:
//! `tidemark_` prefix, `_total` for counters, base units (`_seconds`, `_bytes`).

use std::fmt::Write;

use super::latency::{Histogram, HistogramReading, StageLatency, BOUNDS_MICROS};
use super::{Phase, Registry};
use crate::event::now_ms;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One metric family: its `# HELP` and `# TYPE` lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Self { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's `_bucket` (cumulative, `le` in seconds), `_sum` and `_count` samples.
    fn histogram(&mut self, name: &str, connector: &str, h: &HistogramReading) {
        let bucket = format!("{name}_bucket");
        for (i, n) in h.cumulative.iter().enumerate() {
            let le = BOUNDS_MICROS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |us| (*us as f64 / 1e6).to_string());
            self.sample(&bucket, &[("connector", connector), ("le", &le)], *n as f64);
        }
        self.sample(
            &format!("{name}_sum"),
            &[("connector", connector)],
            h.sum_seconds,
        );
        self.sample(
            &format!("{name}_count"),
            &[("connector", connector)],
            h.count as f64,
        );
    }
}

/// The exposition of every connector in `registry`.
pub fn render(registry: &Registry) -> String {
    let connectors: Vec<_> = registry
        .all()
        .into_iter()
        .map(|c| (c.name.clone(), c.kind, c.snapshot()))
        .collect();
    let now = now_ms();
    let kafka_ok = registry.kafka_outage().is_none();
    let mut out = String::new();

    macro_rules! family {
        ($name:expr, $kind:expr, $help:expr, |$f:ident, $c:ident, $kind_label:ident, $s:ident| $body:block) => {{
            let mut $f = Family::new(&mut out, $name, $kind, $help);
            for ($c, $kind_label, $s) in &connectors {
                let _ = $kind_label;
                $body
            }
        }};
    }

    family!(
        "tidemark_connector_state",
        "gauge",
        "1 for the phase the connector is in (starting, snapshotting, streaming, paused, retrying, failed, stopped), 0 for the others.",
        |f, c, kind, s| {
            for phase in Phase::ALL {
                let v = if s.phase == phase { 1.0 } else { 0.0 };
                f.sample(
                    "tidemark_connector_state",
                    &[("connector", c), ("source", kind), ("state", phase.as_str())],
                    v,
                );
            }
        }
    );
    family!(
        "tidemark_connector_ready",
        "gauge",
        "1 when the connector is streaming or snapshotting and its Kafka brokers answer (what /health/ready says).",
        |f, c, kind, s| {
            let v = if s.phase.is_ready() && kafka_ok { 1.0 } else { 0.0 };
            f.sample("tidemark_connector_ready", &[("connector", c)], v);
        }
    );
    family!(
        "tidemark_connector_restarts_total",
        "counter",
        "Lives of the connector after its first (transient errors, restart and resume requests).",
        |f, c, kind, s| {
            f.sample(
                "tidemark_connector_restarts_total",
                &[("connector", c)],
                s.restarts as f64,
            );
        }
    );
    family!(
        "tidemark_events_total",
        "counter",
        "Change events produced and handed to Kafka, per table and operation.",
        |f, c, kind, s| {
            for (table, counts) in &s.tables {
                for (op, n) in counts.by_op() {
                    f.sample(
                        "tidemark_events_total",
                        &[("connector", c), ("table", table), ("op", op)],
                        n as f64,
                    );
                }
            }
        }
    );
    family!(
        "tidemark_produced_bytes_total",
        "counter",
        "Bytes of the records produced (key, value and headers), per table.",
        |f, c, kind, s| {
            for (table, counts) in &s.tables {
                f.sample(
                    "tidemark_produced_bytes_total",
                    &[("connector", c), ("table", table)],
                    counts.bytes as f64,
                );
            }
        }
    );
    family!(
        "tidemark_errors_total",
        "counter",
        "Errors that restarted (transient) or stopped (definite) the connector.",
        |f, c, kind, s| {
            for k in ["transient", "definite"] {
                let n = s.errors.get(k).copied().unwrap_or(0);
                f.sample(
                    "tidemark_errors_total",
                    &[("connector", c), ("kind", k)],
                    n as f64,
                );
            }
        }
    );
    family!(
        "tidemark_event_faults_total",
        "counter",
        "Events at fault per kind (routing, encoding, too_large, validation, incompatible), whatever on_error did with them.",
        |f, c, kind, s| {
            for (k, n) in &s.faults {
                f.sample(
                    "tidemark_event_faults_total",
                    &[("connector", c), ("kind", k)],
                    *n as f64,
                );
            }
        }
    );
    for (name, help, pick) in [
        (
            "tidemark_dead_lettered_total",
            "Events sent to the dead-letter topic (on_error: dead_letter).",
            (|s: &super::Snapshot| s.dead_lettered) as fn(&super::Snapshot) -> u64,
        ),
        (
            "tidemark_skipped_total",
            "Events skipped by on_error: skip.",
            |s: &super::Snapshot| s.skipped,
        ),
        (
            "tidemark_filtered_total",
            "Events left out by a table's row filter.",
            |s: &super::Snapshot| s.filtered,
        ),
    ] {
        family!(name, "counter", help, |f, c, kind, s| {
            f.sample(name, &[("connector", c)], pick(s) as f64);
        });
    }
    family!(
        "tidemark_source_lag_seconds",
        "gauge",
        "From the source's commit of the newest event to the commit of its position in tidemark (acknowledged by Kafka, stored), at the newest position commit; 0 when nothing waited.",
        |f, c, kind, s| {
            if let Some(lag) = s.lag_ms {
                f.sample(
                    "tidemark_source_lag_seconds",
                    &[("connector", c)],
                    lag as f64 / 1000.0,
                );
            }
        }
    );
    family!(
        "tidemark_source_lag_bytes",
        "gauge",
        "Log bytes (WAL or binlog) between the connector's committed position and the server's current position, as last read (admin.source_poll_ms).",
        |f, c, kind, s| {
            if let Some(b) = s.backlog.as_ref().and_then(|b| b.behind_bytes) {
                f.sample("tidemark_source_lag_bytes", &[("connector", c)], b as f64);
            }
        }
    );
    family!(
        "tidemark_replication_slot_retained_bytes",
        "gauge",
        "PostgreSQL: WAL the server keeps for the connector's replication slot (restart_lsn to the current position), also while the connector is paused or failed.",
        |f, c, kind, s| {
            if let Some(b) = s.backlog.as_ref().and_then(|b| b.retained_bytes) {
                f.sample(
                    "tidemark_replication_slot_retained_bytes",
                    &[("connector", c)],
                    b as f64,
                );
            }
        }
    );
    family!(
        "tidemark_last_commit_age_seconds",
        "gauge",
        "Time since the connector last committed a position.",
        |f, c, kind, s| {
            if let Some(at) = s.committed_at_ms {
                f.sample(
                    "tidemark_last_commit_age_seconds",
                    &[("connector", c)],
                    (now - at).max(0) as f64 / 1000.0,
                );
            }
        }
    );
    family!(
        "tidemark_in_flight_messages",
        "gauge",
        "Messages handed to the producer and not yet acknowledged by Kafka.",
        |f, c, kind, s| {
            f.sample(
                "tidemark_in_flight_messages",
                &[("connector", c)],
                s.in_flight as f64,
            );
        }
    );
    family!(
        "tidemark_snapshot_rows",
        "gauge",
        "Rows the snapshot in progress has emitted from each table it reads now.",
        |f, c, kind, s| {
            if let Some(p) = &s.snapshot {
                for t in &p.reading {
                    f.sample(
                        "tidemark_snapshot_rows",
                        &[("connector", c), ("table", &t.table)],
                        t.rows as f64,
                    );
                }
            }
        }
    );
    family!(
        "tidemark_snapshot_rows_estimated",
        "gauge",
        "The database statistics' row estimate of each table the snapshot reads now.",
        |f, c, kind, s| {
            if let Some(p) = &s.snapshot {
                for t in &p.reading {
                    f.sample(
                        "tidemark_snapshot_rows_estimated",
                        &[("connector", c), ("table", &t.table)],
                        t.estimated_total as f64,
                    );
                }
            }
        }
    );
    family!(
        "tidemark_snapshot_tables_remaining",
        "gauge",
        "Snapshot tasks (tables or key ranges) not finished, the current one included.",
        |f, c, kind, s| {
            let n = s.snapshot.as_ref().map_or(0, |p| p.tables_left);
            f.sample(
                "tidemark_snapshot_tables_remaining",
                &[("connector", c)],
                n as f64,
            );
        }
    );
    if registry.producer_queue().is_some() {
        let mut f = Family::new(
            &mut out,
            "tidemark_kafka_up",
            "gauge",
            "0 while the producer reports every broker down, else 1.",
        );
        let up = if registry.kafka_outage().is_some() {
            0.0
        } else {
            1.0
        };
        f.sample("tidemark_kafka_up", &[], up);
    }
    if let Some(queue) = registry.producer_queue() {
        let mut f = Family::new(
            &mut out,
            "tidemark_producer_queue_messages",
            "gauge",
            "Messages and requests librdkafka's producer holds (queued or waiting for the broker).",
        );
        f.sample("tidemark_producer_queue_messages", &[], queue as f64);
    }
    let statuses = registry.all();
    for (name, help, stage) in [
        (
            "tidemark_commit_to_read_seconds",
            "From a transaction's commit (the server's timestamp and clock) to tidemark reading it; PostgreSQL only, per transaction.",
            (|l: &StageLatency| &l.commit_to_read) as fn(&StageLatency) -> &Histogram,
        ),
        (
            "tidemark_read_wait_seconds",
            "How long a read of the log waited to coalesce under load (mysql.read_coalesce_ms, postgres.read_coalesce_ms), per read that waited.",
            |l: &StageLatency| &l.read_wait,
        ),
        (
            "tidemark_source_seconds",
            "From the source reading the log data holding an event to handing the event to the pipeline.",
            |l: &StageLatency| &l.source,
        ),
        (
            "tidemark_pipeline_seconds",
            "From the pipeline taking an event's batch from the source to handing its record to the producer.",
            |l: &StageLatency| &l.pipeline,
        ),
        (
            "tidemark_produce_ack_seconds",
            "From handing a record to the producer to Kafka's acknowledgement of it.",
            |l: &StageLatency| &l.produce_ack,
        ),
    ] {
        let mut f = Family::new(&mut out, name, "histogram", help);
        for c in &statuses {
            f.histogram(name, &c.name, &stage(&c.latency).read());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Op, TableId};
    use crate::status::BatchCounts;

    #[test]
    fn the_exposition_has_help_type_and_escaped_labels() {
        let r = Registry::default();
        let c = r.register("shop \"eu\"", "postgres");
        c.reading();
        let mut counts = BatchCounts::default();
        let t = TableId {
            schema: "public".into(),
            table: "orders".into(),
        };
        counts.produced(&t, Op::Create, 120);
        c.batch(&mut counts, 2);
        r.set_producer_queue(std::sync::Arc::new(|| 7));
        c.latency
            .produce_ack
            .observe(std::time::Duration::from_millis(3));
        let text = render(&r);
        assert!(
            text.contains("# TYPE tidemark_produce_ack_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("tidemark_produce_ack_seconds_bucket{connector=\"shop \\\"eu\\\"\",le=\"0.002\"} 0\n")
                && text.contains("tidemark_produce_ack_seconds_bucket{connector=\"shop \\\"eu\\\"\",le=\"0.005\"} 1\n")
                && text.contains("tidemark_produce_ack_seconds_bucket{connector=\"shop \\\"eu\\\"\",le=\"+Inf\"} 1\n")
                && text.contains("tidemark_produce_ack_seconds_count{connector=\"shop \\\"eu\\\"\"} 1\n")
                && text.contains("tidemark_pipeline_seconds_count{connector=\"shop \\\"eu\\\"\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tidemark_events_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "tidemark_events_total{connector=\"shop \\\"eu\\\"\",table=\"public.orders\",op=\"create\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "tidemark_connector_state{connector=\"shop \\\"eu\\\"\",source=\"postgres\",state=\"streaming\"} 1\n"
        ));
        assert!(text.contains("tidemark_in_flight_messages{connector=\"shop \\\"eu\\\"\"} 2\n"));
        assert!(text.contains("tidemark_producer_queue_messages 7\n"));
        // Every sample line belongs to a family declared before it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{line}");
            }
        }
    }
}
