//! The Kafka position store: a compacted topic, key = connector name, value =
//! [`StoredPosition`] JSON. Each commit is one record, produced alone and awaited, always to
//! partition 0 (tidemark creates the topic with one partition; a topic made beforehand with
//! more, by a broker's `num.partitions` or a user, would otherwise scatter the keys over
//! partitions that loads never read, and every position would be lost at the next start).
//!
//! Loading reads the partition from the beginning to its end (the high watermark) and keeps
//! the last value of the connector's key. A load that cannot reach the end within its time
//! limit is an error (transient: the connector retries), never "no position": an early stop
//! would answer with an older position, or none, and a source that then starts "from now"
//! skips changes. Every record is produced in a batch of its own (`batch.num.messages=1`):
//! tansu misreports the high watermark after a batch of several records.

use std::time::{Duration, Instant};

use crate::sink::kafka::BrokerEvents;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use tokio::sync::watch;

use super::lease::{Epoch, LeaseRecord};
use super::{now_ms, StoredPosition};
use crate::config::daemon::KafkaConfig;
use crate::error::{Error, Result};
use crate::event::Position;
use crate::sink::kafka::create_topic;

/// How long a load may take to read the positions topic to its end.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

pub struct KafkaStore {
    /// `bootstrap.servers` and `kafka.client`: what every client of the store starts from.
    client: ClientConfig,
    topic: String,
    producer: FutureProducer<BrokerEvents>,
    load_timeout: Duration,
    /// This process's claim on the connectors it streams (see [`super::lease`]) ...
    epoch: Epoch,
    /// ... and the epoch each connector was first taken with (kept across its restarts).
    taken: std::sync::Mutex<std::collections::HashMap<String, Epoch>>,
}

impl KafkaStore {
    pub async fn new(kafka: &KafkaConfig, topic: &str) -> Result<Self> {
        let brokers = kafka.brokers.clone().unwrap_or_default();
        let client = kafka.client_config();
        // Not idempotent: each record is awaited before the next of its connector, so no two
        // of one key are ever in flight (a retry can only repeat a record, which a load reads
        // as the same position), and an idempotent producer's state is a liability here: after
        // a broker loses it (tansu 0.6 across a restart panics on the stale producer id;
        // Kafka answers UNKNOWN_PRODUCER_ID), librdkafka stalls until the in-flight records
        // time out.
        let producer: FutureProducer<BrokerEvents> = client
            .clone()
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("batch.num.messages", "1")
            .set("message.timeout.ms", "60000")
            .set("client.id", "tidemark-positions")
            .create_with_context(BrokerEvents::new("position store", &brokers))
            .map_err(|e| Error::definite("creating the position-store producer").with_source(e))?;
        let admin: AdminClient<BrokerEvents> = client
            .create_with_context(BrokerEvents::new("position store admin", &brokers))
            .map_err(|e| Error::definite("creating the Kafka admin client").with_source(e))?;
        match topic_replicas(&producer, topic).await? {
            None => create_topic(&admin, topic, 1, kafka.topic_replication_factor, true).await?,
            Some(replicas) => check_existing_topic(&admin, topic, replicas, &brokers).await,
        }
        Ok(Self {
            client,
            topic: topic.to_string(),
            producer,
            load_timeout: LOAD_TIMEOUT,
            epoch: Epoch::now(),
            taken: Default::default(),
        })
    }

    /// Uses `epoch` as this process's claim (tests: two "processes" in one).
    pub fn with_epoch(mut self, epoch: Epoch) -> Self {
        self.epoch = epoch;
        self
    }

    /// Sets how long a load may take before it is an error.
    pub fn with_load_timeout(mut self, timeout: Duration) -> Self {
        self.load_timeout = timeout;
        self
    }

    pub async fn load(&self, connector: &str) -> Result<Option<Position>> {
        let client = self.client.clone();
        let topic = self.topic.clone();
        let connector = connector.to_string();
        let timeout = self.load_timeout;
        tokio::task::spawn_blocking(move || {
            let mut latest: Option<Position> = None;
            let mut latest_offset = None;
            let high = read_to_end(&client, &topic, timeout, |offset, key, payload| {
                if key != Some(connector.as_bytes()) {
                    return Ok(());
                }
                latest_offset = Some(offset);
                latest = match payload {
                    None => None,
                    Some(p) => {
                        let stored: StoredPosition = serde_json::from_slice(p).map_err(|e| {
                            Error::definite(format!(
                                "position topic {topic} offset {offset}: corrupt record for connector {connector}"
                            ))
                            .with_source(e)
                        })?;
                        Some(stored.position)
                    }
                };
                Ok(())
            })?;
            tracing::debug!(connector, end = high, offset = ?latest_offset,
                position = %latest.as_ref().map_or_else(|| "none".to_string(), ToString::to_string),
                "position loaded");
            Ok(latest)
        })
        .await
        .map_err(|e| Error::transient("loading a position").with_source(e))?
    }

    /// Takes `connector` for this process (see [`super::lease`]): refused when a newer process
    /// holds it; the receiver turns to `Some(why)` when a newer process takes it later.
    pub async fn acquire(&self, connector: &str) -> Result<watch::Receiver<Option<String>>> {
        let client = self.client.clone();
        let topic = self.topic.clone();
        let key = LeaseRecord::key(connector);
        let timeout = self.load_timeout;
        let taken = self
            .taken
            .lock()
            .map_or(None, |t| t.get(connector).copied());
        let (newest, high) = {
            let key = key.clone();
            tokio::task::spawn_blocking(move || {
                let mut newest: Option<LeaseRecord> = None;
                let high = read_to_end(&client, &topic, timeout, |_, k, payload| {
                    if k == Some(key.as_bytes()) {
                        if let Some(lease) =
                            payload.and_then(|p| serde_json::from_slice::<LeaseRecord>(p).ok())
                        {
                            newest = Some(lease);
                        }
                    }
                    Ok(())
                })?;
                Ok::<_, Error>((newest, high))
            })
            .await
            .map_err(|e| Error::transient("reading the connector's lease").with_source(e))??
        };
        // The first time: newer than any lease stored (a clock behind another machine's must
        // not lose to a process that is gone). After that: the same epoch, so a restart of the
        // connector does not take it back from a newer process.
        let ours = match taken {
            Some(epoch) => epoch,
            None => {
                let epoch = newest
                    .as_ref()
                    .map_or(self.epoch, |l| self.epoch.max(Epoch(l.epoch.0 + 1)));
                if let Ok(mut t) = self.taken.lock() {
                    t.insert(connector.to_string(), epoch);
                }
                epoch
            }
        };
        if let Some(why) = newest.as_ref().and_then(|l| l.supersedes(ours)) {
            return Err(Error::definite(why));
        }
        let lease = LeaseRecord::new(connector, ours);
        let value = serde_json::to_vec(&lease)
            .map_err(|e| Error::definite("encoding a lease").with_source(e))?;
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .partition(0)
                    .key(&key)
                    .payload(&value),
                Duration::from_secs(60),
            )
            .await
            .map_err(|(e, _)| {
                Error::transient(format!("writing the lease of connector {connector}"))
                    .with_source(e)
            })?;
        let (tx, rx) = watch::channel(None);
        let (client, topic) = (self.client.clone(), self.topic.clone());
        std::thread::Builder::new()
            .name(format!("tidemark-lease-{connector}"))
            .spawn(move || watch_lease(&client, &topic, &key, ours, high, tx))
            .map_err(|e| Error::definite("starting the lease watcher").with_source(e))?;
        Ok(rx)
    }

    pub async fn commit(&self, connector: &str, position: &Position) -> Result<()> {
        let stored = StoredPosition {
            connector: connector.to_string(),
            position: position.clone(),
            committed_at_ms: now_ms(),
        };
        let value = serde_json::to_vec(&stored)
            .map_err(|e| Error::definite("encoding a position").with_source(e))?;
        // Partition 0, the one loads read, whatever partitions the topic has.
        let record = FutureRecord::to(&self.topic)
            .partition(0)
            .key(connector)
            .payload(&value);
        let delivered = self
            .producer
            .send(record, Duration::from_secs(60))
            .await
            .map_err(|(e, _)| {
                Error::transient(format!("committing the position to topic {}", self.topic))
                    .with_source(e)
            })?;
        tracing::debug!(connector, offset = delivered.offset, %position, "position stored");
        Ok(())
    }
}

/// The replica count of `topic`'s partition 0, or `None` when the topic does not exist.
async fn topic_replicas(
    producer: &FutureProducer<BrokerEvents>,
    topic: &str,
) -> Result<Option<usize>> {
    let producer = producer.clone();
    let name = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let metadata = producer
            .client()
            .fetch_metadata(Some(&name), Duration::from_secs(10))
            .map_err(|e| {
                Error::transient(format!("reading the metadata of position topic {name}"))
                    .with_source(e)
            })?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions()[0].replicas().len()))
    })
    .await
    .map_err(|e| Error::transient("reading topic metadata").with_source(e))?
}

/// Warns about an existing positions topic that may lose positions: not compacted (records
/// expire with the topic's retention, and a connector idle for that long would find none),
/// or with one replica on a broker that is not local (one disk from losing every position).
async fn check_existing_topic(
    admin: &AdminClient<BrokerEvents>,
    topic: &str,
    replicas: usize,
    brokers: &str,
) {
    let local = brokers.split(',').all(|b| {
        let host = b.trim().rsplit_once(':').map_or(b.trim(), |(h, _)| h);
        matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]")
    });
    if replicas == 1 && !local {
        tracing::warn!(topic, "the positions topic has a single replica: losing that broker's disk loses every connector's position; create it with a replication factor of 3");
    }
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let policy = match admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await
    {
        Ok(mut results) => match results.pop() {
            Some(Ok(resource)) => resource.get("cleanup.policy").and_then(|e| e.value.clone()),
            _ => None,
        },
        Err(_) => None,
    };
    match policy {
        Some(p) if p.contains("compact") => {}
        Some(p) => tracing::warn!(topic, cleanup_policy = %p,
            "the positions topic is not compacted: its records expire with the topic's retention, and a connector \
             idle that long would find no position; set cleanup.policy=compact on it"),
        None => tracing::warn!(
            topic,
            "could not read the positions topic's cleanup.policy; it should be compact"
        ),
    }
}

/// Reads `topic` from its start to its end (the high watermark when the read starts), within
/// `timeout`, handing each record (offset, key, payload) to `on_record`; returns that end.
/// Not reaching it is an error, never a shorter answer.
fn read_to_end(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
    mut on_record: impl FnMut(i64, Option<&[u8]>, Option<&[u8]>) -> Result<()>,
) -> Result<i64> {
    let deadline = Instant::now() + timeout;
    let brokers = client.get("bootstrap.servers").unwrap_or_default();
    let consumer: BaseConsumer<BrokerEvents> = client
        .clone()
        .set("group.id", "tidemark-positions-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create_with_context(BrokerEvents::new("position store reader", brokers))
        .map_err(|e| Error::definite("creating the position-store consumer").with_source(e))?;
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, deadline.saturating_duration_since(Instant::now()))
        .map_err(|e| {
            Error::transient(format!(
                "reading the end of position topic {topic} (the connector's position cannot be known until it is read)"
            ))
            .with_source(e)
        })?;
    if high <= 0 {
        // Read to its end: it holds nothing.
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| Error::definite("assigning the position topic").with_source(e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| Error::transient("assigning the position topic").with_source(e))?;
    let mut read_to: i64 = 0;
    while read_to < high {
        if Instant::now() >= deadline {
            return Err(Error::transient(format!(
                "could not read position topic {topic} to its end within {} s (read to offset {read_to} of {high}); \
                 the connector waits and tries again rather than start from an older position or none",
                timeout.as_secs()
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                read_to = read_to.max(m.offset() + 1);
                on_record(m.offset(), m.key(), m.payload())?;
            }
            Some(Err(e)) => {
                return Err(
                    Error::transient(format!("reading position topic {topic}")).with_source(e)
                )
            }
            None => {
                // Offsets a compacted topic no longer holds (or control records) are skipped
                // by the consumer's position, not by any message.
                if let Ok(p) = consumer.position() {
                    if let Some(Offset::Offset(o)) = p.find_partition(topic, 0).map(|e| e.offset())
                    {
                        read_to = read_to.max(o);
                    }
                }
            }
        }
    }
    Ok(high)
}

/// Follows `topic` from offset `from` until `tx` has no receiver, and reports the first lease
/// under `key` newer than `ours`.
fn watch_lease(
    client: &ClientConfig,
    topic: &str,
    key: &str,
    ours: Epoch,
    from: i64,
    tx: watch::Sender<Option<String>>,
) {
    let brokers = client.get("bootstrap.servers").unwrap_or_default();
    let consumer: BaseConsumer<BrokerEvents> = match client
        .clone()
        .set("group.id", "tidemark-lease-watcher")
        .set("enable.auto.commit", "false")
        .create_with_context(BrokerEvents::new("lease watcher", brokers))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "lease watcher: cannot create a consumer; the connector is not fenced");
            return;
        }
    };
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition_offset(topic, 0, Offset::Offset(from))
        .and_then(|()| consumer.assign(&tpl))
        .is_err()
    {
        tracing::error!(
            topic,
            "lease watcher: cannot follow the positions topic; the connector is not fenced"
        );
        return;
    }
    while !tx.is_closed() {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        if m.key() != Some(key.as_bytes()) {
            continue;
        }
        let Some(lease) = m
            .payload()
            .and_then(|p| serde_json::from_slice::<LeaseRecord>(p).ok())
        else {
            continue;
        };
        if let Some(why) = lease.supersedes(ours) {
            let _ = tx.send(Some(why));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;

    fn position(n: u64) -> Position {
        Position::encode(&serde_json::json!({ "n": n })).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_slow_broker_makes_load_an_error_never_no_position() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("positions", 1, 1).unwrap();
        let kafka = KafkaConfig {
            brokers: Some(mock.bootstrap_servers()),
            ..KafkaConfig::default()
        };
        let store = KafkaStore::new(&kafka, "positions")
            .await
            .unwrap()
            .with_load_timeout(Duration::from_secs(3));
        assert_eq!(
            store.load("c").await.unwrap(),
            None,
            "empty: read to its end"
        );
        store.commit("c", &position(1)).await.unwrap();
        store.commit("other", &position(9)).await.unwrap();
        store.commit("c", &position(2)).await.unwrap();
        assert_eq!(store.load("c").await.unwrap(), Some(position(2)));
        // Every request now takes longer than the whole load may.
        mock.broker_round_trip_time(1, Duration::from_secs(5))
            .unwrap();
        let err = store.load("c").await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("positions"), "{err}");
        mock.broker_round_trip_time(1, Duration::ZERO).unwrap();
        assert_eq!(store.load("c").await.unwrap(), Some(position(2)));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_newer_process_takes_a_connector_and_the_older_is_told() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("positions", 1, 1).unwrap();
        let kafka = KafkaConfig {
            brokers: Some(mock.bootstrap_servers()),
            ..KafkaConfig::default()
        };
        let older = KafkaStore::new(&kafka, "positions")
            .await
            .unwrap()
            .with_epoch(Epoch(1));
        let newer = KafkaStore::new(&kafka, "positions")
            .await
            .unwrap()
            .with_epoch(Epoch(2));
        let mut old_lease = older.acquire("c").await.unwrap();
        assert!(old_lease.borrow().is_none());
        let _new_lease = newer.acquire("c").await.unwrap();
        let why =
            tokio::time::timeout(Duration::from_secs(30), old_lease.wait_for(Option::is_some))
                .await
                .expect("the older process is told within 30 s")
                .unwrap()
                .clone()
                .unwrap();
        assert!(why.contains("newer tidemark process"), "{why}");
        // Coming back, the older one is refused; another connector is unaffected.
        let err = older.acquire("c").await.unwrap_err();
        assert!(
            !err.is_transient() && err.to_string().contains("newer"),
            "{err}"
        );
        older.acquire("other").await.unwrap();
    }
}
