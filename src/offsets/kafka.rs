//! The Kafka position store: a compacted topic (one partition), key = connector name, value =
//! [`StoredPosition`] JSON. Each commit is one record, produced alone and awaited.
//!
//! Loading reads the partition from the beginning to its end and keeps the last value of the
//! connector's key. "The end" is the high watermark, but some brokers (tansu) misreport it
//! after multi-record batches, so reading also stops after an idle timeout: the worst case of
//! an early stop is an older position, i.e. duplicates, never a loss.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{now_ms, StoredPosition};
use crate::config::daemon::KafkaConfig;
use crate::error::{Error, Result};
use crate::event::Position;
use crate::sink::kafka::create_topic;

pub struct KafkaStore {
    brokers: String,
    topic: String,
    producer: FutureProducer,
}

impl KafkaStore {
    pub async fn new(kafka: &KafkaConfig, topic: &str) -> Result<Self> {
        let brokers = kafka.brokers.clone().unwrap_or_default();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "60000")
            .set("client.id", "tidemark-positions")
            .create()
            .map_err(|e| Error::definite("creating the position-store producer").with_source(e))?;
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .map_err(|e| Error::definite("creating the Kafka admin client").with_source(e))?;
        create_topic(&admin, topic, 1, kafka.topic_replication_factor, true).await?;
        Ok(Self {
            brokers,
            topic: topic.to_string(),
            producer,
        })
    }

    pub async fn load(&self, connector: &str) -> Result<Option<Position>> {
        let brokers = self.brokers.clone();
        let topic = self.topic.clone();
        let connector = connector.to_string();
        tokio::task::spawn_blocking(move || load_blocking(&brokers, &topic, &connector))
            .await
            .map_err(|e| Error::transient("loading a position").with_source(e))?
    }

    pub async fn commit(&self, connector: &str, position: &Position) -> Result<()> {
        let stored = StoredPosition {
            connector: connector.to_string(),
            position: position.clone(),
            committed_at_ms: now_ms(),
        };
        let value = serde_json::to_vec(&stored)
            .map_err(|e| Error::definite("encoding a position").with_source(e))?;
        let record = FutureRecord::to(&self.topic).key(connector).payload(&value);
        self.producer
            .send(record, Duration::from_secs(60))
            .await
            .map(|_| ())
            .map_err(|(e, _)| {
                Error::transient(format!("committing the position to topic {}", self.topic))
                    .with_source(e)
            })
    }
}

fn load_blocking(brokers: &str, topic: &str, connector: &str) -> Result<Option<Position>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tidemark-positions-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| Error::definite("creating the position-store consumer").with_source(e))?;
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .map_err(|e| {
            Error::transient(format!("reading the end of position topic {topic}")).with_source(e)
        })?;
    if high <= 0 {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| Error::definite("assigning the position topic").with_source(e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| Error::transient("assigning the position topic").with_source(e))?;
    let mut latest: Option<Position> = None;
    let idle = Duration::from_secs(3);
    let mut last_message = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_message = Instant::now();
                if m.key() == Some(connector.as_bytes()) {
                    match m.payload() {
                        None => latest = None,
                        Some(p) => {
                            let stored: StoredPosition = serde_json::from_slice(p).map_err(|e| {
                                Error::definite(format!(
                                    "position topic {topic} offset {}: corrupt record for connector {connector}",
                                    m.offset()
                                ))
                                .with_source(e)
                            })?;
                            latest = Some(stored.position);
                        }
                    }
                }
                if m.offset() + 1 >= high {
                    break;
                }
            }
            Some(Err(e)) => {
                return Err(
                    Error::transient(format!("reading position topic {topic}")).with_source(e)
                )
            }
            None => {
                if last_message.elapsed() > idle {
                    break;
                }
            }
        }
    }
    Ok(latest)
}
