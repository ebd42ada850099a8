//! Checks shared by the snapshot tests of both sources: what a compacted topic converges to,
//! the stored snapshot progress, `tidemark snapshot` requests, waiting for completion.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::Message;
use serde_json::{json, Value as Json};

use crate::common::*;

/// What a compacted topic converges to, read incrementally.
#[derive(Default)]
pub struct TopicState {
    pub rows: BTreeMap<i64, Json>,
    /// The newest `v` seen per key, to catch a stale row after a newer one.
    newest: BTreeMap<i64, i64>,
    /// Keys deleted, with the version they had: a later row must be newer (a deleted key may
    /// come back only by a new insert, never as the row it was).
    deleted: BTreeMap<i64, i64>,
    pub reads: u64,
    pub messages: u64,
    /// Whether a version older than one seen before fails the test. Off across a crash: the
    /// restarted connector replays the log after its last committed position (at-least-once),
    /// so a key may show an older version again before it reaches the newer one once more.
    pub check_order: bool,
}

impl TopicState {
    fn apply(&mut self, key: &Json, value: Option<&Json>) {
        self.messages += 1;
        let id = key["id"].as_i64().expect("key id");
        let Some(v) = value else {
            self.rows.remove(&id);
            return;
        };
        if v["op"] == "r" {
            self.reads += 1;
        }
        match v["op"].as_str() {
            Some("d") => {
                let was = v["before"]["v"]
                    .as_i64()
                    .or_else(|| self.newest.get(&id).copied());
                if let Some(was) = was {
                    self.deleted.insert(id, was);
                    let n = self.newest.entry(id).or_insert(was);
                    *n = (*n).max(was);
                }
                self.rows.remove(&id);
            }
            _ => {
                let a = &v["after"];
                let after = json!({"id": a["id"], "v": a["v"], "s": a["s"]});
                let version = after["v"].as_i64().expect("v");
                if let Some(&n) = self.newest.get(&id).filter(|_| self.check_order) {
                    assert!(
                        version >= n,
                        "key {id}: version {version} after {n}: a stale row overwrote newer state ({v})"
                    );
                }
                if let Some(&d) = self.deleted.get(&id).filter(|_| self.check_order) {
                    assert!(
                        version > d,
                        "key {id}: deleted at version {d}, then came back as version {version} ({v})"
                    );
                }
                self.deleted.remove(&id);
                self.newest.insert(id, version);
                self.rows.insert(id, after);
            }
        }
    }
}

/// Reads `topic` from the start until its state equals `want` (checked whenever the topic is
/// idle), or `timeout`.
pub fn read_until_equal(
    topic: &str,
    want: &BTreeMap<i64, Json>,
    timeout: Duration,
    check_order: bool,
) -> TopicState {
    let consumer = consumer_from_start(&kafka_brokers(), topic);
    let start = Instant::now();
    let mut state = TopicState {
        check_order,
        ..TopicState::default()
    };
    while start.elapsed() < timeout {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let key: Json = serde_json::from_slice(m.key().expect("key")).unwrap();
                let value: Option<Json> = m.payload().map(|p| serde_json::from_slice(p).unwrap());
                state.apply(&key, value.as_ref());
            }
            Some(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
            None => {
                if &state.rows == want {
                    return state;
                }
            }
        }
    }
    state
}

pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The snapshot progress the position store holds for the test's connector (`Json::Null`
/// once complete; `None` before the first commit).
pub fn stored_progress(cfg: &TestConfig) -> Option<Json> {
    let topic = format!("{}.positions", cfg.prefix);
    let consumer = consumer_from_start(&kafka_brokers(), &topic);
    // Read up to the partition's end as of now (new commits keep coming during a snapshot).
    let end = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(5))
        .map(|(_, high)| high)
        .unwrap_or(0);
    if end == 0 {
        return None;
    }
    let mut last = None;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if m.key() == Some(cfg.name.as_bytes()) {
                if let Some(p) = m.payload() {
                    let v: Json = serde_json::from_slice(p).unwrap();
                    last = Some(v["position"]["snapshot"].clone());
                }
            }
            if m.offset() >= end - 1 {
                break;
            }
        }
    }
    last
}

/// Runs `tidemark snapshot <connector> <args>` for `cfg`; it must succeed.
pub fn request(cfg: &TestConfig, args: &[&str]) {
    let config = cfg.config_file();
    let mut all = vec!["snapshot", cfg.name.as_str()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config.to_str().unwrap()]);
    let out = cfg.tidemark(&all).output().unwrap();
    assert!(
        out.status.success(),
        "tidemark snapshot {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until the daemon logs that its snapshot is complete (at most `limit` from `since`).
pub async fn wait_snapshot_complete(daemon: &mut Daemon, since: Instant, limit: Duration) {
    wait_for_log(daemon, "snapshot complete", since, limit).await;
}

/// Reads `topic` until it equals `want` (see [`read_until_equal`]), off the async runtime.
pub async fn topic_equal_to(
    topic: String,
    want: BTreeMap<i64, Json>,
    check_order: bool,
) -> TopicState {
    tokio::task::spawn_blocking(move || {
        read_until_equal(&topic, &want, Duration::from_secs(300), check_order)
    })
    .await
    .unwrap()
}

/// The connector file lines of the kill -9 tests: 500-row chunks at 5,000 rows/s, so that a
/// 100,000-row snapshot takes 20 s and the kill lands in its middle.
pub const KILL_TEST_SNAPSHOT: &str = "snapshot:\n  chunk_size: 500\n  max_rows_per_second: 5000\n";

/// Starts `cfg` (see [`KILL_TEST_SNAPSHOT`]) on a table of `rows` rows, kills it with SIGKILL
/// once 20,000 rows are committed, checks the stored progress, restarts it and waits until the
/// snapshot completes, checking from the log that the second life resumed after the stored
/// last key. Returns the restarted daemon.
pub async fn kill_9_mid_snapshot_and_restart(cfg: &TestConfig, rows: i64) -> Daemon {
    let mut daemon = cfg.start();
    let started = Instant::now();
    let progress = loop {
        daemon.assert_running();
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no progress stored; log:\n{}",
            tail(&daemon.log_text())
        );
        let stored = tokio::task::block_in_place(|| stored_progress(cfg));
        if let Some(p) = stored.filter(|p| p["rows"].as_u64().unwrap_or(0) >= 20_000) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    daemon.kill9();
    let stored = tokio::task::block_in_place(|| stored_progress(cfg)).unwrap();
    let resumed_rows = stored["rows"].as_u64().unwrap();
    assert!(resumed_rows >= progress["rows"].as_u64().unwrap());
    assert!(
        resumed_rows < rows as u64,
        "the kill came too late: {stored}"
    );
    // Every task (a key range of a split table included) that had released rows resumes
    // after its own stored key.
    let afters: Vec<i64> = stored["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["after"][0].as_str())
        .map(|k| k.parse::<i64>().unwrap())
        .collect();
    assert!(!afters.is_empty(), "no task stored a key: {stored}");

    let mut daemon = cfg.start();
    let restarted = Instant::now();
    wait_snapshot_complete(&mut daemon, restarted, Duration::from_secs(300)).await;
    let log = daemon.log_text();
    let starting = log
        .lines()
        .find(|l| l.contains("snapshot starting"))
        .unwrap_or_default();
    for key in &afters {
        assert!(
            starting.contains(&format!("after {key}")),
            "the second life did not resume after key {key}:\n{}",
            tail(&log)
        );
    }
    daemon
}

/// After [`kill_9_mid_snapshot_and_restart`]: rows before the stored key were not read again
/// (at most the chunks in flight at the kill are repeated).
pub fn assert_not_started_over(state: &TopicState, rows: i64) {
    assert!(
        state.reads < rows as u64 + 10 * 500,
        "{} reads for {rows} rows: the snapshot started over",
        state.reads
    );
}

/// The rows of the stored snapshot progress (0 before the first commit and once complete).
pub fn stored_rows(cfg: &TestConfig) -> u64 {
    tokio::task::block_in_place(|| stored_progress(cfg))
        .and_then(|p| p["rows"].as_u64())
        .unwrap_or(0)
}

/// Waits until the stored progress counts rows (at most 60 s from `since`).
pub async fn wait_snapshot_started(daemon: &mut Daemon, cfg: &TestConfig, since: Instant) {
    while stored_rows(cfg) == 0 {
        daemon.assert_running();
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "snapshot did not start:\n{}",
            tail(&daemon.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the daemon's log contains `text` (at most `limit` from `since`).
pub async fn wait_for_log(daemon: &mut Daemon, text: &str, since: Instant, limit: Duration) {
    while !daemon.log_text().contains(text) {
        daemon.assert_running();
        assert!(
            since.elapsed() < limit,
            "`{text}` not logged after {limit:?}:\n{}",
            tail(&daemon.log_text())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every row a snapshot read (`read`, `op=r`) equals the same row streamed (`streamed(i)`,
/// the `after` image), column for column, and has the same columns.
pub fn assert_snapshot_equals_stream(read: &[Msg], streamed: impl Fn(usize) -> Json) {
    for (i, m) in read.iter().enumerate() {
        let v = m.value.as_ref().unwrap();
        assert_eq!(v["op"], "r");
        assert_eq!(v["source"]["snapshot"], "true");
        let streamed = streamed(i);
        let differs: Vec<String> = streamed
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, sv)| v["after"][k.as_str()] != **sv)
            .map(|(k, sv)| format!("{k}: streamed {sv}, snapshot {}", v["after"][k.as_str()]))
            .collect();
        assert!(
            differs.is_empty(),
            "row {} read by the snapshot: {differs:?}",
            i + 1
        );
        assert_eq!(
            v["after"].as_object().unwrap().len(),
            streamed.as_object().unwrap().len(),
            "row {}: the snapshot's columns differ from the stream's",
            i + 1
        );
    }
}

/// What the DDL tests' topic says per key (`{"a", "c"}`), checking that each update carries the
/// shape of its time: `a = 1` was written before `DROP COLUMN b, ADD COLUMN c` (columns id, a,
/// b, with `b = "b<id>"`), any other update after it (id, a, c, with `c = "c<id>"`).
pub fn ddl_topic_state(messages: &[Msg]) -> BTreeMap<i64, Json> {
    let mut state = BTreeMap::new();
    for m in messages {
        let Some(v) = &m.value else { continue };
        let after = &v["after"];
        let id = after["id"].as_i64().unwrap();
        if v["op"] == "u" {
            let fields: Vec<&String> = after.as_object().unwrap().keys().collect();
            if after["a"] == 1 {
                assert_eq!(fields, ["id", "a", "b"], "an update before the DDL: {v}");
                assert_eq!(after["b"], json!(format!("b{id}")), "{v}");
            } else {
                assert_eq!(fields, ["id", "a", "c"], "an update after the DDL: {v}");
                assert_eq!(after["c"], json!(format!("c{id}")), "{v}");
            }
        }
        state.insert(
            id,
            json!({"a": after["a"], "c": after.get("c").cloned().unwrap_or(Json::Null)}),
        );
    }
    state
}
