//! The Kafka sink: one idempotent librdkafka producer (`acks=all`) for every connector.
//!
//! A message carries its connector's [`AckWindow`] and sequence number to librdkafka's
//! delivery report, which marks it acknowledged (or failed) there; nothing waits per
//! message. A full producer queue makes `send` wait (backpressure). A delivery that fails
//! after librdkafka's own retries (for `delivery_timeout_ms`) fails the connector, which
//! restarts from its last committed position: nothing is lost, and the idempotent producer
//! never reorders a partition.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use tokio::sync::Mutex;

pub mod error;
pub mod events;

use super::{AckWindow, Message};
use crate::config::daemon::KafkaConfig;
use crate::error::{Error, Result};
use error::kafka_error;
pub use events::BrokerEvents;

/// How often the brokers are asked whether they answer while they are reported down.
const OUTAGE_PROBE_EVERY: Duration = Duration::from_secs(2);

/// What a message carries to its delivery report.
pub struct Delivery {
    window: Arc<AckWindow>,
    seq: u64,
    /// When the record was handed to the producer.
    sent_at: Instant,
}

/// Routes librdkafka's delivery reports to the connectors' windows, and its broker reports
/// to the log.
pub struct AckContext(BrokerEvents);

impl ClientContext for AckContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.0.log(level, facility, message)
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.0.error(error, reason)
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Box<Delivery>) {
        let outcome = match result {
            Ok(_) => {
                // An acknowledgement: the brokers answer (also when their return was not
                // logged).
                crate::status::registry().kafka_answered();
                Ok(())
            }
            Err((e, m)) => {
                use rdkafka::Message as _;
                let what = match e.rdkafka_error_code() {
                    Some(RDKafkaErrorCode::MessageSizeTooLarge) => too_large(
                        "the broker refused",
                        m.topic(),
                        m.key(),
                        m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len),
                    ),
                    _ => format!("delivering a message to topic {}", m.topic()),
                };
                Err(kafka_error(what, e.clone()))
            }
        };
        if let (Ok(()), Some(latency)) = (&outcome, delivery.window.latency()) {
            latency.produce_ack.observe(delivery.sent_at.elapsed());
        }
        delivery.window.report(delivery.seq, outcome);
    }
}

pub struct KafkaSink {
    producer: Arc<ThreadedProducer<AckContext>>,
    admin: AdminClient<BrokerEvents>,
    settings: KafkaConfig,
    known_topics: Mutex<HashSet<String>>,
    /// The producer's `message.max.bytes`.
    producer_limit: usize,
    /// Each ensured topic's `max.message.bytes`, where the broker said.
    topic_limits: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// `queue.buffering.max.kbytes`: 16 MiB of messages (keys and values) in the producer at once,
/// for all connectors of the daemon; a full queue makes `send` wait.
pub const QUEUE_MAX_KBYTES: u64 = 16_384;

/// The producer's byte bound: [`QUEUE_MAX_KBYTES`], or room for two messages of the largest size
/// allowed when `message.max.bytes` is raised above half of it (a message larger than the bound
/// would be refused as "queue full" for ever). A `queue.buffering.max.kbytes` of the user's wins.
fn queue_max_kbytes(k: &KafkaConfig) -> u64 {
    let message_max_kbytes = k
        .producer
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |b| b.div_ceil(1024));
    QUEUE_MAX_KBYTES.max(message_max_kbytes.saturating_mul(2))
}

/// The producer properties tidemark sets; `kafka.producer` entries override them.
pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = k.client_config();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", &k.compression)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        // The bytes of the messages waiting for their acknowledgement (librdkafka holds a copy
        // of each): bounds the memory of wide rows, which `pipeline.max_in_flight` counts only.
        .set(
            "queue.buffering.max.kbytes",
            queue_max_kbytes(k).to_string(),
        )
        .set("message.timeout.ms", k.delivery_timeout_ms.to_string())
        .set("client.id", "tidemark");
    for (key, value) in &k.producer {
        c.set(key, value);
    }
    c
}

/// What to say about a message over a size limit: which one, and the two settings to raise.
fn too_large(who: &str, topic: &str, key: Option<&[u8]>, size: usize) -> String {
    let key = key.map_or_else(
        || "null".to_string(),
        |k| String::from_utf8_lossy(&k[..k.len().min(200)]).into_owned(),
    );
    format!(
        "{who} a message of {size} bytes for key {key} on topic {topic}: it is larger than a size limit; \
         raise `message.max.bytes` under `kafka.producer` in tidemark.yaml (librdkafka's limit, 1000000 by \
         default) and the topic's `max.message.bytes` on the broker; until then the connector stops at this \
         row, and meets it again after a restart"
    )
}

impl KafkaSink {
    pub fn new(settings: &KafkaConfig) -> Result<Self> {
        let producer: ThreadedProducer<AckContext> = producer_config(settings)
            .create_with_context(AckContext(BrokerEvents::new(
                events::PRODUCER,
                settings.brokers.as_deref().unwrap_or_default(),
            )))
            .map_err(|e| kafka_error("creating the Kafka producer (check kafka.producer)", e))?;
        let brokers = settings.brokers.as_deref().unwrap_or_default();
        let admin: AdminClient<BrokerEvents> = settings
            .client_config()
            .create_with_context(BrokerEvents::new("admin", brokers))
            .map_err(|e| kafka_error("creating the Kafka admin client", e))?;
        Ok(Self {
            producer: Arc::new(producer),
            admin,
            settings: settings.clone(),
            known_topics: Mutex::new(HashSet::new()),
            producer_limit: settings
                .producer
                .get("message.max.bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1_000_000),
            topic_limits: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Reads the messages and requests librdkafka's producer holds (for the metrics).
    pub fn queue_reader(&self) -> Arc<dyn Fn() -> u64 + Send + Sync> {
        use rdkafka::producer::Producer;
        let producer = Arc::downgrade(&self.producer);
        Arc::new(move || {
            producer
                .upgrade()
                .map_or(0, |p| p.in_flight_count().max(0) as u64)
        })
    }

    /// While the producer's brokers are reported down, asks them for metadata every
    /// `OUTAGE_PROBE_EVERY` and clears the outage when one answers. An idle connector
    /// produces nothing, so no acknowledgement would clear it; without the probe readiness
    /// would say "Kafka unreachable" long after the brokers came back. Ends at `shutdown`.
    pub fn spawn_outage_probe(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let producer = Arc::downgrade(&self.producer);
        tokio::spawn(async move {
            loop {
                if !crate::retry::sleep_unless_stopped(OUTAGE_PROBE_EVERY, &mut shutdown).await {
                    return;
                }
                if crate::status::registry().kafka_outage().is_none() {
                    continue;
                }
                let Some(p) = producer.upgrade() else { return };
                let answered = tokio::task::spawn_blocking(move || {
                    p.client()
                        .fetch_metadata(None, OUTAGE_PROBE_EVERY)
                        .is_ok_and(|m| !m.brokers().is_empty())
                })
                .await
                .unwrap_or(false);
                if answered && crate::status::registry().kafka_outage().is_some() {
                    tracing::info!("Kafka: a broker answers metadata requests again");
                    crate::status::registry().kafka_up();
                }
            }
        });
    }

    pub async fn ensure_topic(&self, topic: &str, compact: bool) -> Result<()> {
        if self.known_topics.lock().await.contains(topic) {
            return Ok(());
        }
        if self.settings.create_topics {
            create_topic(
                &self.admin,
                topic,
                self.settings.topic_partitions,
                self.settings.topic_replication_factor,
                self.settings.compact_topics && compact,
            )
            .await?;
        }
        if let Some(limit) = self.topic_max_message_bytes(topic).await {
            if let Ok(mut limits) = self.topic_limits.lock() {
                limits.insert(topic.to_string(), limit);
            }
        }
        self.known_topics.lock().await.insert(topic.to_string());
        Ok(())
    }

    /// The topic's `max.message.bytes`, when the broker tells (best effort: a broker without
    /// DescribeConfigs leaves the producer's own limit).
    async fn topic_max_message_bytes(&self, topic: &str) -> Option<usize> {
        use rdkafka::admin::{AdminOptions, ResourceSpecifier};
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
            .await
            .ok()?;
        let resource = results.into_iter().next()?.ok()?;
        let limit = resource
            .get("max.message.bytes")
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse().ok());
        tracing::debug!(topic, max_message_bytes = limit, "topic size limit");
        limit
    }

    /// The largest record `topic` takes: the smaller of the producer's `message.max.bytes`
    /// and the topic's `max.message.bytes` (when known).
    pub fn max_message_bytes(&self, topic: &str) -> usize {
        let topic_limit = self
            .topic_limits
            .lock()
            .ok()
            .and_then(|l| l.get(topic).copied());
        topic_limit.map_or(self.producer_limit, |t| t.min(self.producer_limit))
    }

    /// Hands `m` to the producer as message `seq` of `window`.
    pub async fn send(&self, m: Message<'_>, window: &Arc<AckWindow>, seq: u64) -> Result<()> {
        let mut time = itoa::Buffer::new();
        let mut headers = OwnedHeaders::new_with_capacity(2).insert(Header {
            key: "tidemark.event_time_ms",
            value: Some(time.format(m.event_time_ms).as_bytes()),
        });
        if let Some(op) = m.op {
            headers = headers.insert(Header {
                key: "tidemark.op",
                value: Some(op.as_bytes()),
            });
        }
        for h in m.headers {
            headers = headers.insert(Header {
                key: &h.name,
                value: h.value.as_deref(),
            });
        }
        let delivery = Box::new(Delivery {
            window: window.clone(),
            seq,
            sent_at: Instant::now(),
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<Delivery>> =
            BaseRecord::with_opaque_to(m.topic, delivery)
                .headers(headers)
                .timestamp(m.event_time_ms);
        if let Some(k) = m.key {
            record = record.key(k);
        }
        if let Some(v) = m.value {
            record = record.payload(v);
        }
        loop {
            // A full local queue hands the record back: retry it after a short pause
            // (backpressure), without rebuilding it.
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => {
                    return Err(match e.rdkafka_error_code() {
                        Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
                            let what = too_large(
                                "the producer refused",
                                m.topic,
                                m.key,
                                m.key.map_or(0, <[u8]>::len) + m.value.map_or(0, <[u8]>::len),
                            );
                            kafka_error(what, e).with_fault(crate::error::EventFault::TooLarge)
                        }
                        _ => kafka_error(format!("producing to topic {}", m.topic), e),
                    });
                }
            }
        }
    }

    /// Whether any partition of any of `topics` holds a message (missing topics hold none).
    pub async fn holds_messages(&self, topics: &[String]) -> Result<bool> {
        let producer = self.producer.clone();
        let topics = topics.to_vec();
        tokio::task::spawn_blocking(move || -> Result<bool> {
            let client = producer.client();
            let timeout = Duration::from_secs(10);
            for topic in &topics {
                let metadata = client.fetch_metadata(Some(topic), timeout).map_err(|e| {
                    kafka_error(format!("reading the metadata of topic {topic}"), e)
                })?;
                for t in metadata.topics() {
                    if t.error().is_some() {
                        continue; // does not exist
                    }
                    for p in t.partitions() {
                        let (low, high) =
                            client
                                .fetch_watermarks(topic, p.id(), timeout)
                                .map_err(|e| {
                                    kafka_error(format!("reading the offsets of topic {topic}"), e)
                                })?;
                        if high > low {
                            return Ok(true);
                        }
                    }
                }
            }
            Ok(false)
        })
        .await
        .map_err(|e| Error::transient("reading topic offsets").with_source(e))?
    }

    pub async fn flush(&self) -> Result<()> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(60)))
            .await
            .map_err(|e| Error::transient("flushing the producer").with_source(e))?
            .map_err(|e| kafka_error("flushing the producer", e))
    }
}

/// Creates `topic` unless it exists.
pub async fn create_topic(
    admin: &AdminClient<BrokerEvents>,
    topic: &str,
    partitions: i32,
    replication: i32,
    compact: bool,
) -> Result<()> {
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    if compact {
        new = new.set("cleanup.policy", "compact");
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .map_err(|e| kafka_error(format!("creating topic {topic}"), e))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic, compact, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(kafka_error(
                    format!("creating topic {name}"),
                    KafkaError::AdminOp(code),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Broker outages with librdkafka's mock cluster (a real Kafka protocol peer in process,
    //! with fault injection; tansu loses or hides acknowledged records across its own restart,
    //! so it cannot serve this test).
    use super::*;
    use crate::event::Position;
    use crate::offsets::file::FileStore;
    use crate::offsets::tracker::{self, Checkpoint};
    use crate::offsets::PositionStore;
    use crate::sink::{Message as OutMessage, Output, Sink};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::mocking::MockCluster;
    use rdkafka::{Message, Offset, TopicPartitionList};
    use tokio::sync::{mpsc, watch};

    async fn send(output: &mut Output, i: u32) {
        let key = format!("{{\"id\":{}}}", i % 10);
        let value = format!("{{\"seq\":{i}}}");
        output
            .send(OutMessage {
                topic: "t",
                key: Some(key.as_bytes()),
                value: Some(value.as_bytes()),
                event_time_ms: 0,
                headers: &[],
                op: Some("c"),
            })
            .await
            .unwrap();
    }

    #[test]
    fn the_queue_byte_bound_holds_the_largest_message_allowed() {
        let kbytes = |producer: &[(&str, &str)]| {
            let k = KafkaConfig {
                producer: producer
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                ..KafkaConfig::default()
            };
            producer_config(&k)
                .get("queue.buffering.max.kbytes")
                .map(str::to_string)
        };
        assert_eq!(kbytes(&[]).as_deref(), Some("16384"));
        // librdkafka's default message.max.bytes (1 MB) fits: the bound stays.
        assert_eq!(
            kbytes(&[("message.max.bytes", "1000000")]).as_deref(),
            Some("16384")
        );
        // 20 MB messages: the bound holds two.
        assert_eq!(
            kbytes(&[("message.max.bytes", "20000000")]).as_deref(),
            Some("39064")
        );
        // The user's own bound wins.
        assert_eq!(
            kbytes(&[
                ("message.max.bytes", "20000000"),
                ("queue.buffering.max.kbytes", "1024")
            ])
            .as_deref(),
            Some("1024")
        );
    }

    fn pos(n: u64) -> Position {
        Position(serde_json::json!({ "n": n }))
    }

    async fn wait_acked(rx: &mut watch::Receiver<Option<Position>>, want: Position) {
        tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|p| p.as_ref() == Some(&want)),
        )
        .await
        .expect("position acknowledged in time")
        .expect("tracker alive");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn broker_outage_holds_the_position_back_and_loses_nothing() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("t", 1, 1).unwrap();
        let settings = KafkaConfig {
            brokers: Some(mock.bootstrap_servers()),
            create_topics: false,
            compression: "none".into(),
            ..KafkaConfig::default()
        };
        let sink = Arc::new(Sink::Kafka(KafkaSink::new(&settings).unwrap()));
        let mut output = Output::new(sink);
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PositionStore::File(FileStore::new(
            dir.path().to_path_buf(),
        )));
        let (pending_tx, pending_rx) = mpsc::channel(1000);
        let (acked_tx, mut acked_rx) = watch::channel(None);
        let tracker = tokio::spawn(tracker::run(
            "c".into(),
            pending_rx,
            output.window().clone(),
            store.clone(),
            Duration::ZERO,
            acked_tx,
        ));

        for i in 0..100 {
            send(&mut output, i).await;
        }
        pending_tx
            .send(Checkpoint {
                position: pos(1),
                after: output.sent(),
                newest_commit_ms: None,
            })
            .await
            .unwrap();
        wait_acked(&mut acked_rx, pos(1)).await;

        mock.broker_down(1).unwrap();
        for i in 100..200 {
            send(&mut output, i).await;
        }
        pending_tx
            .send(Checkpoint {
                position: pos(2),
                after: output.sent(),
                newest_commit_ms: None,
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            store.load("c").await.unwrap(),
            Some(pos(1)),
            "no position past an unacknowledged record may be committed"
        );

        mock.broker_up(1).unwrap();
        wait_acked(&mut acked_rx, pos(2)).await;
        drop(pending_tx);
        tracker.await.unwrap().unwrap();

        // Every record is there once, in order.
        let brokers = mock.bootstrap_servers();
        let seqs = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", "g")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("t", 0, Offset::Beginning).unwrap();
            consumer.assign(&tpl).unwrap();
            let mut seqs = Vec::new();
            let start = std::time::Instant::now();
            while seqs.len() < 200 && start.elapsed() < Duration::from_secs(30) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    let v: serde_json::Value =
                        serde_json::from_slice(m.payload().unwrap()).unwrap();
                    seqs.push(v["seq"].as_u64().unwrap());
                }
            }
            seqs
        })
        .await
        .unwrap();
        assert_eq!(seqs, (0..200).collect::<Vec<u64>>());
    }
}
