//! `tidemark tail <topic>`: a small consumer that prints messages as JSON lines. Every
//! partition is assigned directly (no consumer group), so it starts at once.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// What to read and how to print it.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Start at the beginning of each partition (else only new messages).
    pub from_beginning: bool,
    /// Exit after this many messages.
    pub max_messages: Option<u64>,
    /// Exit when no message arrived for this long.
    pub idle_timeout_ms: u64,
    /// Keys and values as base64 of their bytes (else JSON where they are JSON, else text).
    pub base64: bool,
}

fn as_json(bytes: Option<&[u8]>, base64: bool) -> serde_json::Value {
    match bytes {
        None => serde_json::Value::Null,
        Some(b) if base64 => {
            use base64::Engine;
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(b) => serde_json::from_slice(b)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned())),
    }
}

pub async fn tail(
    topic: &str,
    brokers: Option<String>,
    config_path: &Path,
    reading: Reading,
) -> i32 {
    // The daemon file alone (tail needs no database, nor its password): its brokers and
    // `kafka.client` (TLS, SASL). With --brokers and no usable file, a plain connection.
    let client = match (
        crate::config::load_daemon(config_path, std::env::vars()),
        brokers,
    ) {
        (Ok(d), brokers) => {
            let mut c = d.kafka.client_config();
            if let Some(b) = brokers {
                c.set("bootstrap.servers", b);
            }
            c
        }
        (Err(_), Some(b)) => {
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", b);
            c
        }
        (Err(e), None) => {
            eprintln!("tidemark tail: pass --brokers, or fix the configuration: {e}");
            return 2;
        }
    };
    let topic = topic.to_string();
    let result = tokio::task::spawn_blocking(move || tail_blocking(&topic, client, reading)).await;
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("tidemark tail: {e}");
            1
        }
        Err(e) => {
            eprintln!("tidemark tail: {e}");
            1
        }
    }
}

fn tail_blocking(topic: &str, mut client: ClientConfig, reading: Reading) -> Result<(), String> {
    let brokers = client
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    let Reading {
        from_beginning,
        max_messages,
        idle_timeout_ms,
        base64,
    } = reading;
    let consumer: BaseConsumer = client
        .set("group.id", "tidemark-tail")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("reading metadata of {topic} from {brokers}: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {topic} does not exist at {brokers}"));
    }
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(
            topic,
            p,
            if from_beginning {
                Offset::Beginning
            } else {
                Offset::End
            },
        )
        .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let idle = Duration::from_millis(idle_timeout_ms);
    let mut last = Instant::now();
    let mut count = 0u64;
    while max_messages.is_none_or(|m| count < m) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last = Instant::now();
                count += 1;
                let mut headers = serde_json::Map::new();
                if let Some(h) = m.headers() {
                    for header in h.iter() {
                        headers.insert(
                            header.key.to_string(),
                            serde_json::Value::String(
                                String::from_utf8_lossy(header.value.unwrap_or_default())
                                    .into_owned(),
                            ),
                        );
                    }
                }
                let line = serde_json::json!({
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "key": as_json(m.key(), base64),
                    "value": as_json(m.payload(), base64),
                    "headers": headers,
                });
                println!("{line}");
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => {
                if last.elapsed() >= idle {
                    break;
                }
            }
        }
    }
    Ok(())
}
