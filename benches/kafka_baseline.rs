//! Baselines for `scripts/bench.sh` (not a criterion bench: it measures whole runs).
//!
//! `produce --brokers B --topic T --messages N --sample FILE [--headers]`: the raw produce rate
//! of rdkafka with tidemark's producer settings (idempotent, acks=all, lz4, linger 5 ms): N
//! messages whose values cycle through the sample (one message value per line: real tidemark
//! envelopes, so size and compressibility match; `b64:<base64>` for a binary value), with
//! distinct keys; prints `produce_rate_msgs_per_s=<f>`. With `--headers` each record also
//! carries what tidemark's records carry besides key and value: the `tidemark.event_time_ms`
//! and `tidemark.op` headers and the event time as the record's timestamp, so the records are
//! the same as tidemark's (librdkafka allocates, copies and frees each header).
//!
//! `wal-read --host H --port P --user U --password W --database D --slot S --publication P
//! --end-lsn L`: the raw replication read rate: tidemark's replication client alone
//! (`source::postgres::replication`), pgoutput proto 1, each message decoded by tidemark's
//! pgoutput decoder (tuples split into columns) and discarded, Insert/Update/Delete counted,
//! each commit confirmed (status every 100 ms, as tidemark in the bench), until the stream
//! passes L; prints `wal_read_rate_changes_per_s=<f>`. The fair floor under tidemark's
//! PostgreSQL path: the same client and wire decoding, without events, routing, encoding or
//! producing. `BENCH_PG_READ_COALESCE_MS` sets the client's read pacing (default: tidemark's
//! default `postgres.read_coalesce_ms`; 0 reads as soon as data arrives).

//! `latency --brokers B --topic T --messages N [--op O] [--ts-column C]`: consumes N messages
//! (of operation O only, when given) from the end of T and prints p50/p99 of (receive time -
//! source.ts_ms), the commit-to-consumer latency, an upper bound of commit-to-ack. With
//! `--ts-column`, the commit time is the row's column C instead (an RFC 3339 timestamp the
//! writer sets to the statement's time): the binlog's `ts_ms` has whole-second resolution.

//!
//! `broker-latency --brokers B --topic T --rate R --messages N [--sample FILE]`: the floor
//! under the latency above: rdkafka with tidemark's producer properties (the library's own
//! `producer_config`) sends N messages at R per second, each carrying its send time as
//! `source.ts_ms`, while the `latency` consumer (the same settings) reads them: the
//! send-to-consumer latency through the broker and the two clients, with no database and no
//! tidemark. The values are the sample's envelopes (tidemark's own messages, so sizes and
//! compressibility match) with the send time set, or a minimal envelope without `--sample`.
//! `--linger-ms` sets the producer's linger over tidemark's 5 (measured here: 0 made p99 ten
//! times worse against tansu).
//!
//! `binlog-latency --url U --table T --column C --messages N`: the floor under the MariaDB
//! source's share of that latency: a raw binlog client (mysql_async's stream from the
//! server's current position, tidemark's own row decoder, nothing else) reads N inserted rows
//! of table T and prints p50/p99 of (arrival time - the row's column C), C being the
//! `TIMESTAMP(6)` the writer sets to the statement's time (index C, from 0): the server's
//! commit and its binlog delivery, with no Kafka and no tidemark.
//!
//! The consumer of `latency` and `broker-latency` fetches with `fetch.wait.max.ms=1`
//! (`BENCH_FETCH_WAIT_MS` overrides it): see `latency`.

// A measuring tool run by the bench scripts, not the daemon: a broken setup may panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn arg(args: &[String], name: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| panic!("missing {name}"))
}

fn opt(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Creates `topic` with one partition (an existing one is fine).
async fn create_topic(brokers: &str, topic: &str) {
    create_topic_with(brokers, topic, &[]).await
}

/// Creates `topic` with one partition and the topic `config` (an existing one is fine).
async fn create_topic_with(brokers: &str, topic: &str, config: &[(&str, &str)]) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .expect("admin");
    let mut new =
        rdkafka::admin::NewTopic::new(topic, 1, rdkafka::admin::TopicReplication::Fixed(1));
    for (key, value) in config {
        new = new.set(key, value);
    }
    let _ = admin
        .create_topics([&new], &rdkafka::admin::AdminOptions::new())
        .await;
}

async fn produce(brokers: &str, topic: &str, n: usize, sample: &str, headers: bool) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .expect("producer");
    create_topic(brokers, topic).await;
    let text = std::fs::read_to_string(sample).expect("sample file");
    // A line is a value as it is, or `b64:<base64>` of a binary value (the avro format).
    let payloads: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| match l.strip_prefix("b64:") {
            Some(b) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .expect("base64 sample line")
            }
            None => l.as_bytes().to_vec(),
        })
        .collect();
    assert!(!payloads.is_empty(), "empty sample {sample}");
    let start = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    let event_time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let event_time = event_time_ms.to_string();
    for i in 0..n {
        let key = format!("{{\"id\":{i}}}");
        loop {
            let mut record = FutureRecord::to(topic)
                .key(&key)
                .payload(&payloads[i % payloads.len()]);
            if headers {
                record = record.timestamp(event_time_ms).headers(
                    rdkafka::message::OwnedHeaders::new_with_capacity(2)
                        .insert(rdkafka::message::Header {
                            key: "tidemark.event_time_ms",
                            value: Some(event_time.as_bytes()),
                        })
                        .insert(rdkafka::message::Header {
                            key: "tidemark.op",
                            value: Some("c".as_bytes()),
                        }),
                );
            }
            match producer.send_result(record) {
                Ok(f) => {
                    pending.push_back(f);
                    break;
                }
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        while pending.len() > 50_000 {
            pending.pop_front().unwrap().await.unwrap().unwrap();
        }
    }
    for f in pending {
        f.await.unwrap().unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "produce_messages={n} produce_seconds={secs:.3} produce_rate_msgs_per_s={:.0}",
        n as f64 / secs
    );
}

async fn wal_read(args: &[String]) {
    use tidemark::source::postgres::pgoutput::{decode, PgOutputMessage};
    use tidemark::source::postgres::replication::{
        Pacing, ReplicationStream, StartOptions, WalItem,
    };
    let end = parse_lsn(&arg(args, "--end-lsn"));
    let connection = tidemark::config::Connection {
        host: arg(args, "--host"),
        port: arg(args, "--port").parse().unwrap(),
        database: arg(args, "--database"),
        user: arg(args, "--user"),
        password: tidemark::config::Secret::new(arg(args, "--password")),
        sslmode: tidemark::config::SslMode::Disable,
        sslrootcert: None,
        sslcert: None,
        sslkey: None,
        connect_timeout_ms: 10_000,
    };
    // BENCH_PG_READ_COALESCE_MS: the reads' pacing (tidemark's default unless set).
    let read_coalesce = Duration::from_millis(
        std::env::var("BENCH_PG_READ_COALESCE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(tidemark::source::read_pacing::DEFAULT_COALESCE_MS),
    );
    let start = Instant::now();
    let (slot, publication) = (arg(args, "--slot"), arg(args, "--publication"));
    let mut client = ReplicationStream::start(
        &connection,
        StartOptions {
            slot: &slot,
            publication: &publication,
            start_lsn: 0,
            options: "",
            application_name: "tidemark-bench-wal-read",
            tls: None,
        },
        Pacing {
            status_interval: Duration::from_millis(100),
            read_coalesce,
            latency: None,
        },
    )
    .await
    .expect("start replication");
    let mut changes = 0u64;
    loop {
        match client.recv().await.expect("recv") {
            WalItem::Data { data, .. } => {
                // Decoded as tidemark decodes it (tuples split into columns), then discarded.
                match decode(&data).expect("pgoutput") {
                    PgOutputMessage::Insert { .. }
                    | PgOutputMessage::Update { .. }
                    | PgOutputMessage::Delete { .. } => changes += 1,
                    // Confirm like a CDC client does (tidemark confirms after Kafka acks).
                    PgOutputMessage::Commit { end_lsn, .. } => {
                        client.set_applied(end_lsn);
                        if end_lsn >= end {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            WalItem::KeepAlive { wal_end } if wal_end >= end => break,
            WalItem::KeepAlive { .. } => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    client.shutdown().await.expect("end replication");
    println!(
        "wal_read_changes={changes} wal_read_seconds={secs:.3} wal_read_rate_changes_per_s={:.0}",
        changes as f64 / secs
    );
}

/// `X/Y` (hexadecimal halves) as a number.
fn parse_lsn(text: &str) -> u64 {
    let (hi, lo) = text.split_once('/').expect("an LSN X/Y");
    (u64::from_str_radix(hi, 16).expect("LSN") << 32) | u64::from_str_radix(lo, 16).expect("LSN")
}

fn latency(brokers: &str, topic: &str, n: usize, op: Option<&str>, ts_column: Option<&str>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tidemark-bench")
        // tansu 0.6 holds a fetch for the whole fetch.wait.max.ms even when data arrives
        // (Kafka answers as soon as fetch.min.bytes is there): measured here, the consumer's
        // wait was the larger part of the latency (p50 21 ms with 10 ms, 7 ms with 1 ms,
        // 150 ms with 100 ms, the same producer). 1 ms keeps the measuring consumer out of it.
        .set(
            "fetch.wait.max.ms",
            std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "1".into()),
        )
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::End).unwrap();
    consumer.assign(&tpl).unwrap();
    println!("latency_ready=1");
    let mut lat = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(600);
    while lat.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let Some(p) = m.payload() else { continue };
            let v: serde_json::Value = serde_json::from_slice(p).unwrap();
            if op.is_some_and(|o| v["op"] != o) {
                continue;
            }
            let ts = match ts_column {
                Some(c) => v["after"][c]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis()),
                None => v["source"]["ts_ms"].as_i64(),
            };
            if let Some(ts) = ts {
                lat.push(now_ms() - ts);
            }
        }
    }
    let (p50, p99, max) = quantiles(&mut lat);
    println!(
        "latency_messages={} latency_p50_ms={p50} latency_p99_ms={p99} latency_max_ms={max}",
        lat.len()
    );
}

/// p50, p99 and the maximum of `values` (sorted in place; not empty).
fn quantiles(values: &mut [i64]) -> (i64, i64, i64) {
    values.sort_unstable();
    let at = |p: f64| values[((values.len() as f64 - 1.0) * p) as usize];
    (at(0.5), at(0.99), values[values.len() - 1])
}

/// The values `broker-latency` sends: `sample`'s envelopes (one JSON value per line, as
/// `sample_values` in scripts/bench-lib.sh writes them from tidemark's own messages; its
/// inserts where it has some), or a minimal envelope when there is none.
fn latency_values(sample: Option<&str>) -> Vec<serde_json::Value> {
    let text = sample.map(|f| std::fs::read_to_string(f).expect("sample file"));
    let values: Vec<serde_json::Value> = text
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["source"].is_object())
        .collect();
    // The latency step's changes are inserts: their envelopes, where the sample has some.
    let inserts: Vec<serde_json::Value> =
        values.iter().filter(|v| v["op"] == "c").cloned().collect();
    let values = if inserts.is_empty() { values } else { inserts };
    if values.is_empty() {
        vec![serde_json::json!({"source": {"ts_ms": 0}})]
    } else {
        values
    }
}

async fn broker_latency(
    brokers: &str,
    topic: &str,
    rate: u64,
    n: usize,
    linger_ms: Option<&str>,
    sample: Option<&str>,
) {
    // tidemark's own producer properties (`sink::kafka::producer_config` at the defaults),
    // with `--linger-ms` over them when given.
    let settings: tidemark::config::daemon::KafkaConfig =
        serde_json::from_value(serde_json::json!({ "brokers": brokers })).expect("settings");
    let mut config = tidemark::sink::kafka::producer_config(&settings);
    if let Some(linger) = linger_ms {
        config.set("linger.ms", linger);
    }
    // BENCH_FLOOR_PRODUCER="key=value,...": more properties over those (for experiments).
    for pair in std::env::var("BENCH_FLOOR_PRODUCER")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((key, value)) = pair.split_once('=') {
            config.set(key.trim(), value.trim());
        }
    }
    let producer: FutureProducer = config.create().expect("producer");
    let mut values = latency_values(sample);
    // The topic exists before the consumer starts at its end; compacted, as tidemark creates
    // its topics by default (`kafka.compact_topics`), unless BENCH_FLOOR_COMPACT=0.
    let compact = std::env::var("BENCH_FLOOR_COMPACT").map_or(true, |v| v != "0");
    let config: &[(&str, &str)] = if compact {
        &[("cleanup.policy", "compact")]
    } else {
        &[]
    };
    create_topic_with(brokers, topic, config).await;
    producer
        .send(
            FutureRecord::to(topic).key("setup").payload("{}"),
            Duration::from_secs(30),
        )
        .await
        .expect("the first message");
    let (brokers_c, topic_c) = (brokers.to_string(), topic.to_string());
    let consumer = std::thread::spawn(move || latency(&brokers_c, &topic_c, n, None, None));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = Instant::now();
    let mut pending = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let count = values.len();
        let envelope = &mut values[i % count];
        envelope["source"]["ts_ms"] = now_ms().into();
        let value = serde_json::to_vec(envelope).unwrap();
        let key = format!("{{\"id\":{i}}}");
        let record = FutureRecord::to(topic).key(&key).payload(&value);
        pending.push(producer.send_result(record).expect("queued"));
    }
    for p in pending {
        let _ = p.await;
    }
    consumer.join().unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && args.len() <= 2 {
        // `cargo bench` without arguments: nothing to do (scripts/bench.sh drives this).
        return;
    }
    match args.get(1).map(String::as_str) {
        Some("produce") => {
            produce(
                &arg(&args, "--brokers"),
                &arg(&args, "--topic"),
                arg(&args, "--messages").parse().unwrap(),
                &arg(&args, "--sample"),
                args.iter().any(|a| a == "--headers"),
            )
            .await
        }
        Some("wal-read") => wal_read(&args).await,
        Some("latency") => latency(
            &arg(&args, "--brokers"),
            &arg(&args, "--topic"),
            arg(&args, "--messages").parse().unwrap(),
            args.iter()
                .position(|a| a == "--op")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str),
            args.iter()
                .position(|a| a == "--ts-column")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str),
        ),
        Some("broker-latency") => {
            broker_latency(
                &arg(&args, "--brokers"),
                &arg(&args, "--topic"),
                arg(&args, "--rate").parse().unwrap(),
                arg(&args, "--messages").parse().unwrap(),
                opt(&args, "--linger-ms").as_deref(),
                opt(&args, "--sample").as_deref(),
            )
            .await
        }
        Some("binlog-latency") => binlog_latency(&args).await,
        _ => eprintln!(
            "usage: kafka_baseline produce|wal-read|latency|broker-latency|binlog-latency ... (see scripts/bench.sh)"
        ),
    }
}

async fn binlog_latency(args: &[String]) {
    use mysql_async::prelude::Queryable;
    use tidemark::source::mysql::binlog::charset::CharsetMap;
    use tidemark::source::mysql::binlog::rows::{self, RowsKind};
    use tidemark::source::mysql::binlog::table_map::TableMap;
    let url = arg(args, "--url");
    let table = arg(args, "--table");
    let column: usize = arg(args, "--column").parse().expect("--column: an index");
    let n: usize = arg(args, "--messages")
        .parse()
        .expect("--messages: a count");
    let mut conn = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect");
    let status: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("SHOW MASTER STATUS")
        .expect("binary logging is on");
    let file: String = status.get(0).expect("File");
    let pos: u64 = status.get(1).expect("Position");
    let server_id = 7000 + (std::process::id() % 1000);
    let mut stream = conn
        .get_binlog_stream(
            mysql_async::BinlogStreamRequest::new(server_id)
                .with_filename(file.as_bytes())
                .with_pos(pos),
        )
        .await
        .expect("binlog stream");
    let charsets = CharsetMap::default();
    let mut maps: std::collections::HashMap<u64, TableMap> = std::collections::HashMap::new();
    let mut lat: Vec<i64> = Vec::with_capacity(n);
    let mut notices = Vec::new();
    while lat.len() < n {
        let event = futures::StreamExt::next(&mut stream)
            .await
            .expect("the stream ended")
            .expect("a binlog event");
        let arrived_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let ty = event.header().event_type_raw();
        let body = event.data();
        if ty == tidemark::source::mysql::binlog::events::TABLE_MAP {
            let map = TableMap::decode(body, true).expect("table map");
            maps.insert(map.table_id, map);
            continue;
        }
        let Some((RowsKind::Insert, v2)) = RowsKind::of(ty) else {
            continue;
        };
        let id = rows::table_id(body).expect("rows event");
        let Some(map) = maps.get(&id).filter(|m| m.table == table) else {
            continue;
        };
        let changes = rows::decode(
            body,
            RowsKind::Insert,
            v2,
            false,
            map,
            &charsets,
            &mut notices,
        )
        .expect("rows");
        for change in changes {
            if let Some(tidemark::value::Value::TimestampTz(us)) =
                change.after.as_ref().and_then(|r| r.get(column))
            {
                lat.push((arrived_us - us) / 1000);
            }
        }
    }
    let (p50, p99, max) = quantiles(&mut lat);
    println!(
        "binlog_latency_rows={} binlog_latency_p50_ms={p50} binlog_latency_p99_ms={p99} binlog_latency_max_ms={max}",
        lat.len()
    );
}
