//! The Kafka sink: rdkafka's `FutureProducer`, idempotent, `acks=all`.
//!
//! Each record's delivery future is its acknowledgement. A full producer queue makes `send`
//! wait (backpressure). A delivery that fails after librdkafka's own retries (for
//! `delivery_timeout_ms`) fails the connector, which restarts from its last committed
//! position: nothing is lost, and the idempotent producer never reorders a partition.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use tokio::sync::Mutex;

use super::Ack;
use crate::config::daemon::KafkaConfig;
use crate::error::{Error, Result};
use crate::schema::OutRecord;

pub struct KafkaSink {
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    settings: KafkaConfig,
    known_topics: Mutex<HashSet<String>>,
}

/// The producer properties tidemark sets; `kafka.producer` entries override them.
pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set(
        "bootstrap.servers",
        k.brokers.as_deref().unwrap_or_default(),
    )
    .set("enable.idempotence", "true")
    .set("acks", "all")
    .set("compression.type", &k.compression)
    .set("linger.ms", "5")
    .set("batch.num.messages", "10000")
    .set("queue.buffering.max.messages", "200000")
    .set("queue.buffering.max.kbytes", "262144")
    .set("message.timeout.ms", k.delivery_timeout_ms.to_string())
    .set("client.id", "tidemark");
    for (key, value) in &k.producer {
        c.set(key, value);
    }
    c
}

fn kafka_error(what: impl Into<String>, e: KafkaError) -> Error {
    let transient = match e.rdkafka_error_code() {
        Some(code) => !matches!(
            code,
            RDKafkaErrorCode::InvalidConfig
                | RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::UnknownTopicOrPartition
        ),
        None => !matches!(
            e,
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)
        ),
    };
    let err = if transient {
        Error::transient(what)
    } else {
        Error::definite(what)
    };
    err.with_source(e)
}

impl KafkaSink {
    pub fn new(settings: &KafkaConfig) -> Result<Self> {
        let producer: FutureProducer = producer_config(settings)
            .create()
            .map_err(|e| kafka_error("creating the Kafka producer (check kafka.producer)", e))?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set(
                "bootstrap.servers",
                settings.brokers.as_deref().unwrap_or_default(),
            )
            .create()
            .map_err(|e| kafka_error("creating the Kafka admin client", e))?;
        Ok(Self {
            producer,
            admin,
            settings: settings.clone(),
            known_topics: Mutex::new(HashSet::new()),
        })
    }

    pub async fn ensure_topic(&self, topic: &str) -> Result<()> {
        if !self.settings.create_topics || self.known_topics.lock().await.contains(topic) {
            return Ok(());
        }
        create_topic(
            &self.admin,
            topic,
            self.settings.topic_partitions,
            self.settings.topic_replication_factor,
            self.settings.compact_topics,
        )
        .await?;
        self.known_topics.lock().await.insert(topic.to_string());
        Ok(())
    }

    pub async fn send(&self, record: OutRecord) -> Result<Ack> {
        let time = record.event_time_ms.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(2).insert(Header {
            key: "tidemark.event_time_ms",
            value: Some(time.as_bytes()),
        });
        if let Some(op) = record.op {
            headers = headers.insert(Header {
                key: "tidemark.op",
                value: Some(op.as_bytes()),
            });
        }
        loop {
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic)
                .headers(headers.clone())
                .timestamp(record.event_time_ms);
            if let Some(k) = &record.key {
                fr = fr.key(k.as_slice());
            }
            if let Some(v) = &record.value {
                fr = fr.payload(v.as_slice());
            }
            match self.producer.send_result(fr) {
                Ok(delivery) => {
                    let topic = record.topic.clone();
                    return Ok(Box::pin(async move {
                        match delivery.await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err((e, _))) => Err(kafka_error(
                                format!("delivering a message to topic {topic}"),
                                e,
                            )),
                            Err(_) => Err(Error::transient(format!(
                                "delivering a message to topic {topic}: the producer was dropped"
                            ))),
                        }
                    }));
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => {
                    return Err(kafka_error(
                        format!("producing to topic {}", record.topic),
                        e,
                    ))
                }
            }
        }
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
    admin: &AdminClient<DefaultClientContext>,
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
