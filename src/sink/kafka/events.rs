//! librdkafka's own reports about its brokers (connection refused, a name that does not
//! resolve, a TLS or authentication failure, all brokers down) as tidemark log lines naming the
//! client and its `bootstrap.servers`, within seconds of the cause instead of a bare timeout a
//! minute later. librdkafka repeats a failing connection every few seconds: each distinct
//! report is logged at most once per [`REPEAT`], and the return of a client's brokers once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// The name of the sink's producer client (whose outages the status reports).
pub const PRODUCER: &str = "producer";

/// How long a report is not repeated.
pub const REPEAT: Duration = Duration::from_secs(30);

/// A Kafka client's context that logs its broker problems.
pub struct BrokerEvents {
    /// What the client is for (`producer`, `position store`, ...).
    client: &'static str,
    brokers: String,
    said: Mutex<HashMap<String, Instant>>,
    /// All brokers were reported down, and not yet back.
    down: AtomicBool,
}

impl BrokerEvents {
    pub fn new(client: &'static str, brokers: &str) -> Self {
        Self {
            client,
            brokers: brokers.to_string(),
            said: Mutex::new(HashMap::new()),
            down: AtomicBool::new(false),
        }
    }

    /// Whether `text` was not said within [`REPEAT`] (and is now). Reports that differ only in
    /// numbers or in librdkafka's parenthesised details (`(after 0ms in state CONNECT, 1
    /// identical error(s) suppressed)`, `1/1 brokers`) count as one.
    fn fresh(&self, text: &str) -> bool {
        let text: String = text
            .split(" (")
            .next()
            .unwrap_or(text)
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let text = text.as_str();
        let Ok(mut said) = self.said.lock() else {
            return true;
        };
        let now = Instant::now();
        match said.get(text) {
            Some(at) if now.duration_since(*at) < REPEAT => false,
            _ => {
                said.retain(|_, at| now.duration_since(*at) < REPEAT);
                said.insert(text.to_string(), now);
                true
            }
        }
    }
}

impl ClientContext for BrokerEvents {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                // A failed connection (facility FAIL) also reaches `error` below: said there.
                if facility != "FAIL" && self.fresh(message) {
                    tracing::warn!(client = %self.client, brokers = %self.brokers, facility,
                        "Kafka: {message}");
                }
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                // A broker that answers again after all were down.
                if self.down.load(Ordering::Relaxed)
                    && (facility == "CONNECT" || message.contains("Connected"))
                    && self.down.swap(false, Ordering::Relaxed)
                {
                    tracing::info!(client = %self.client, brokers = %self.brokers,
                        "Kafka: a broker answers again");
                    if self.client == PRODUCER {
                        crate::status::registry().kafka_up();
                    }
                }
            }
            RDKafkaLogLevel::Debug => {}
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let all_down = matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown));
        if all_down {
            self.down.store(true, Ordering::Relaxed);
            // The producer's brokers gone: every connector waits (readiness says so).
            if self.client == PRODUCER {
                crate::status::registry().kafka_down(&format!("{error}: {reason}"));
            }
        }
        if self.fresh(reason) {
            tracing::warn!(client = %self.client, brokers = %self.brokers, error = %error,
                "Kafka: {reason}{}",
                if all_down { " (retrying; nothing is lost while it lasts)" } else { "" });
        }
    }
}

/// The position store's consumers: no rebalance handling beyond librdkafka's own.
impl rdkafka::consumer::ConsumerContext for BrokerEvents {}

/// The position store's producer: delivery results come back through its futures.
impl rdkafka::producer::ProducerContext for BrokerEvents {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_said_once_per_period() {
        let e = BrokerEvents::new("producer", "127.0.0.1:9");
        assert!(e.fresh("connection refused"));
        assert!(!e.fresh("connection refused"));
        assert!(e.fresh("another cause"));
        assert!(e.fresh("Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 0ms)"));
        assert!(!e.fresh(
            "Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 1ms, 1 identical error(s) suppressed)"
        ));
        assert!(e.fresh("1/1 brokers are down"));
        assert!(!e.fresh("0/1 brokers are down"));
    }
}
