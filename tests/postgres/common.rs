//! Helpers for the integration tests: the servers of `scripts/dev-env.sh`, a tidemark
//! process with its own configuration, and an independent Kafka consumer.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value as Json;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh (it starts the servers with scripts/dev-env.sh up and sources target/dev-env/env)")
    })
}

pub fn kafka_brokers() -> String {
    var("TIDEMARK_TEST_KAFKA_BROKERS")
}

/// The parts of `TIDEMARK_TEST_PG_URL` (postgres://user:pass@host:port/db).
#[derive(Clone, Debug)]
pub struct PgUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

pub fn pg_url() -> PgUrl {
    parse_pg_url(&var("TIDEMARK_TEST_PG_URL"))
}

pub fn parse_pg_url(url: &str) -> PgUrl {
    let rest = url.strip_prefix("postgres://").expect("postgres:// URL");
    let (auth, rest) = rest.split_once('@').expect("user@ in URL");
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, database) = rest.split_once('/').expect("/database in URL");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    PgUrl {
        user: user.into(),
        password: password.into(),
        host: host.into(),
        port: port.parse().expect("port"),
        database: database.into(),
    }
}

pub async fn pg_connect(url: &PgUrl) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::Config::new()
        .host(&url.host)
        .port(url.port)
        .user(&url.user)
        .password(&url.password)
        .dbname(&url.database)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

pub async fn pg() -> tokio_postgres::Client {
    pg_connect(&pg_url()).await
}

/// The rows of a test table `(id bigint, v bigint, s text)` as the topic checks see them:
/// `id -> {"id", "v", "s"}`.
pub async fn id_v_s_rows(
    client: &tokio_postgres::Client,
    t: &str,
) -> std::collections::BTreeMap<i64, Json> {
    client
        .query(&format!("SELECT id, v, s FROM {t}"), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let v: i64 = r.get(1);
            let s: Option<String> = r.get(2);
            (id, serde_json::json!({"id": id, "v": v, "s": s}))
        })
        .collect()
}

/// A name unique to this test run (lower case, for slots and tables).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000_000;
    format!(
        "{prefix}_{}_{t}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A tidemark configuration in a temporary directory.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub slot: String,
    pub prefix: String,
}

impl TestConfig {
    /// `tables` as `schema.table`; `extra_connector` is appended to the connector file.
    pub fn new(tables: &[&str], extra_connector: &str) -> Self {
        let url = pg_url();
        let name = unique("c");
        let slot = unique("tm_slot");
        let prefix = unique("tp");
        let dir = tempfile::tempdir().expect("tempdir");
        let daemon = format!(
            "connectors_dir: ../connectors\nkafka:\n  brokers: {}\n  topic_prefix: {prefix}\n  delivery_timeout_ms: 60000\noffsets:\n  store: kafka\n  topic: {prefix}.positions\n  commit_interval_ms: 200\nlogging:\n  level: info,tidemark=debug\n",
            kafka_brokers()
        );
        write(dir.path(), "configs/tidemark.yaml", &daemon);
        let connector = format!(
            "kind: postgres\nconnection:\n  host: {}\n  port: {}\n  database: {}\n  user: {}\n  password_env: TIDEMARK_TEST_PG_PASSWORD\npostgres:\n  slot: {slot}\n  publication: {slot}\n  status_interval_ms: 300\ntables:\n{}\n{extra_connector}",
            url.host,
            url.port,
            url.database,
            url.user,
            tables
                .iter()
                .map(|t| format!("  - {t}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        write(dir.path(), &format!("connectors/{name}.yaml"), &connector);
        Self {
            dir,
            name,
            slot,
            prefix,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_file(&self) -> PathBuf {
        self.path("configs/tidemark.yaml")
    }

    /// Appends top-level keys (`format: json-schema\n`, a `router:` block) to the daemon file.
    pub fn append_to_daemon_file(&self, yaml: &str) {
        let file = self.config_file();
        let mut text = std::fs::read_to_string(&file).expect("daemon file");
        text.push_str(yaml);
        std::fs::write(&file, text).expect("daemon file");
    }

    pub fn topic(&self, table: &str) -> String {
        format!("{}.{table}", self.prefix)
    }

    pub fn tidemark(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        // Each daemon's admin API on a port of its own (tests run side by side); a definite
        // error ends the process, as the tests of it expect (tests/postgres/admin.rs sets
        // the defaults of a deployment).
        c.args(args)
            .env("TIDEMARK_TEST_PG_PASSWORD", pg_url().password)
            .env("TIDEMARK__ADMIN__LISTEN", "127.0.0.1:0")
            .env("TIDEMARK__ON_CONNECTOR_FAILURE", "exit")
            .env_remove("RUST_LOG");
        c
    }

    /// Starts `tidemark run`; its log goes to `<dir>/tidemark-<n>.log`.
    pub fn start(&self) -> Daemon {
        self.start_with_stdout(Stdio::null())
    }

    /// Starts `tidemark run` with its standard output going to `stdout`.
    pub fn start_with_stdout(&self, stdout: impl Into<Stdio>) -> Daemon {
        self.start_with(stdout, &[])
    }

    /// Starts `tidemark run` with `vars` set in its environment (over the tests' defaults).
    pub fn start_with_env(&self, vars: &[(&str, &str)]) -> Daemon {
        self.start_with(Stdio::null(), vars)
    }

    fn start_with(&self, stdout: impl Into<Stdio>, vars: &[(&str, &str)]) -> Daemon {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let log = self.path(&format!(
            "tidemark-{}.log",
            RUN.fetch_add(1, Ordering::SeqCst)
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = self
            .tidemark(&["run", "--config", self.config_file().to_str().unwrap()])
            .envs(vars.iter().copied())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .expect("spawn tidemark");
        Daemon { child, log }
    }

    /// Runs tidemark to completion: (exit status, stdout + stderr).
    pub fn run_to_end(&self, args: &[&str], timeout: Duration) -> (ExitStatus, String) {
        let mut child = self
            .tidemark(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidemark");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                return (status, text);
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "tidemark {args:?} did not exit within {timeout:?}; output:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// [`TestConfig::cleanup`], then the test's own SQL (dropping its tables, roles, ...).
    pub async fn cleanup_and(&self, client: &tokio_postgres::Client, sql: &str) {
        self.cleanup(client).await;
        client.batch_execute(sql).await.unwrap();
    }

    /// Drops the slot and publication (after the daemon stopped).
    pub async fn cleanup(&self, client: &tokio_postgres::Client) {
        for _ in 0..50 {
            let active: Option<bool> = client
                .query_opt(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                    &[&self.slot],
                )
                .await
                .unwrap()
                .map(|r| r.get(0));
            match active {
                None => break,
                Some(false) => {
                    let _ = client
                        .execute("SELECT pg_drop_replication_slot($1)", &[&self.slot])
                        .await;
                    break;
                }
                Some(true) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let _ = client
            .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", self.slot))
            .await;
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it), for a private
/// server. Fixed formulas from the process id collided between concurrent test processes.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A free port below the kernel's ephemeral range (32768 up), for a server a test stops and
/// starts again on the same port: while it is down no other test's `free_port()` (nor an
/// outgoing connection's local port) can take it, as one did from the port of a restarted
/// broker when the tests ran side by side.
pub fn restartable_port() -> u16 {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (start..30_000)
        .chain(20_000..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 20000..30000")
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The CPU time (user + system) the daemon has used so far, from `/proc/<pid>/stat`.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the daemon's /proc stat");
        // The fields after the command name (which may hold spaces, in parentheses).
        let rest = &stat[stat.rfind(')').expect("(comm)") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        let per_second: f64 = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        ticks / per_second
    }

    /// Waits until the log contains `needle` (case-insensitive), 30 s at most; the log.
    pub fn wait_log(&mut self, needle: &str) -> String {
        let start = Instant::now();
        let needle = needle.to_lowercase();
        loop {
            let log = self.log_text();
            if log.to_lowercase().contains(&needle) {
                return log;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no `{needle}` in the log within 30 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The admin API's address (`host:port`), from the daemon's log.
    pub fn admin_address(&mut self) -> String {
        let start = Instant::now();
        loop {
            let log = self.log_text();
            if let Some(address) = log
                .lines()
                .filter(|l| l.contains("admin API listening"))
                .find_map(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("address="))
                })
            {
                return address.to_string();
            }
            self.assert_running();
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no admin API address in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            if start.elapsed() > timeout {
                self.kill9();
                panic!(
                    "tidemark did not stop within {timeout:?} of SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and fails the test unless the daemon exits 0 within 30 s.
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate(Duration::from_secs(30));
        assert!(status.success(), "exit {status}; log:\n{}", self.log_text());
    }

    /// Waits until the daemon exits on its own (within `limit`, else fails the test with its
    /// log) and returns its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                started.elapsed() < limit,
                "still running; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fails the test if the daemon exited.
    pub fn assert_running(&mut self) {
        if let Some(s) = self.child.try_wait().expect("wait") {
            panic!("tidemark exited with {s}; log:\n{}", self.log_text());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the daemon streams from `slot` (the slot exists and is active).
pub async fn wait_streaming(client: &tokio_postgres::Client, slot: &str, daemon: &mut Daemon) {
    let start = Instant::now();
    loop {
        daemon.assert_running();
        let active: Option<bool> = client
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        if active == Some(true) {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!(
                "slot {slot} not active after 60 s; log:\n{}",
                daemon.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One consumed message, with key and value parsed as JSON.
#[derive(Debug, Clone)]
pub struct Msg {
    pub offset: i64,
    pub key: Option<Json>,
    pub value: Option<Json>,
    pub headers: Vec<(String, String)>,
}

impl Msg {
    /// The value of header `name`, if the message has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads partition 0 of `topic` from the beginning until `done(messages)` holds and then no
/// message came for `settle` (to catch extras), or `timeout` (plus `settle`) passed.
pub fn consume_until(
    topic: &str,
    timeout: Duration,
    settle: Duration,
    done: impl Fn(&[Msg]) -> bool,
) -> Vec<Msg> {
    consume_until_at(&kafka_brokers(), topic, timeout, settle, done)
}

/// [`consume_until`] from the broker at `brokers`.
pub fn consume_until_at(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    settle: Duration,
    done: impl Fn(&[Msg]) -> bool,
) -> Vec<Msg> {
    let mut consumer = consumer_from_start(brokers, topic);
    let start = Instant::now();
    let mut last_error: Option<String> = None;
    let mut out: Vec<Msg> = Vec::new();
    let mut done_at: Option<Instant> = None;
    loop {
        if let Some(t) = done_at {
            if t.elapsed() >= settle || start.elapsed() > timeout + settle {
                return out;
            }
        } else if start.elapsed() > timeout {
            return out;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                // JSON where it is JSON; other bytes (an outbox key) as a JSON string.
                let parse = |b: Option<&[u8]>| {
                    b.map(|b| {
                        serde_json::from_slice(b).unwrap_or_else(|_| {
                            Json::String(String::from_utf8_lossy(b).into_owned())
                        })
                    })
                };
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (
                                    x.key.to_string(),
                                    String::from_utf8_lossy(x.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Msg {
                    offset: m.offset(),
                    key: parse(m.key()),
                    value: parse(m.payload()),
                    headers,
                });
                // Still flowing: the settle time counts from the last message.
                if done_at.is_some() {
                    done_at = Some(Instant::now());
                }
            }
            Some(Err(e)) => {
                // The topic may not exist yet: a new consumer asks the broker again (one
                // that was told the topic is unknown may keep that answer for minutes).
                // The caller's own check says what is missing, with the daemon's log.
                if last_error.is_none() {
                    eprintln!("consuming {topic}: {e} (retrying until the timeout)");
                }
                last_error = Some(e.to_string());
                std::thread::sleep(Duration::from_millis(200));
                if out.is_empty() {
                    consumer = consumer_from_start(brokers, topic);
                }
            }
            None => {}
        }
        if done_at.is_none() && done(&out) {
            done_at = Some(Instant::now());
        }
    }
}

/// A consumer of partition 0 of `topic` at `brokers`, from its first message.
pub fn consumer_from_start(brokers: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tidemark-tests")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Reads `topic` until at least `n` messages arrived (and `settle` more passed).
pub fn consume_n(topic: &str, n: usize, timeout: Duration) -> Vec<Msg> {
    consume_until(topic, timeout, Duration::from_millis(1500), |m| {
        m.len() >= n
    })
}

/// A PostgreSQL of the test's own (from the dev-env binaries), for tests that must restart or
/// misconfigure a server without disturbing the shared one. User `postgres`, trust auth.
pub struct PrivatePostgres {
    dir: String,
    bin: String,
    pub port: u16,
    opts: String,
}

impl PrivatePostgres {
    pub fn start(wal_level: &str) -> Option<Self> {
        Self::start_with(wal_level, "")
    }

    /// [`PrivatePostgres::start`] with more server options (`-c name=value ...`).
    pub fn start_with(wal_level: &str, extra: &str) -> Option<Self> {
        Self::start_prepared(wal_level, extra, |_| {})
    }

    /// A server with `wal_level=logical` that takes TCP connections over TLS only (`hostssl`
    /// lines alone in pg_hba.conf; the socket stays open for the test's own client), with
    /// `certs`' `server.pem` and `server.key`.
    pub fn start_tls(certs: &std::path::Path) -> Option<Self> {
        Self::start_tls_with(certs, "trust")
    }

    /// [`PrivatePostgres::start_tls`] with pg_hba's `method` for TCP (`cert`: a client
    /// certificate signed by `ca.pem` whose CN is the user).
    pub fn start_tls_with(certs: &std::path::Path, method: &str) -> Option<Self> {
        Self::start_prepared(
            "logical",
            "-c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key -c ssl_ca_file=ca.pem",
            |data| {
                for f in ["server.pem", "server.key", "ca.pem"] {
                    let to = format!("{data}/{f}");
                    std::fs::copy(certs.join(f), &to).unwrap();
                    assert!(Command::new("chown")
                        .args(["postgres", &to])
                        .status()
                        .unwrap()
                        .success());
                    assert!(Command::new("chmod")
                        .args(["600", &to])
                        .status()
                        .unwrap()
                        .success());
                }
                std::fs::write(
                format!("{data}/pg_hba.conf"),
                format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\nhostssl replication all 127.0.0.1/32 {method}\n"),
            )
            .unwrap();
            },
        )
    }

    /// The directory of the server's Unix socket (a client there needs no TLS).
    pub fn socket_dir(&self) -> &str {
        &self.dir
    }

    /// A client over the server's Unix socket, as `postgres` (no TLS, whatever pg_hba says
    /// of TCP).
    pub async fn socket_client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host={} port={} user=postgres dbname=postgres",
                self.dir, self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        client
    }

    /// Starts a server after `prepare` has seen its data directory.
    pub fn start_prepared(
        wal_level: &str,
        extra: &str,
        prepare: impl FnOnce(&str),
    ) -> Option<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = std::env::var("TIDEMARK_DEV_PG_BIN").ok()?;
        let n = N.fetch_add(1, Ordering::SeqCst);
        let port = free_port();
        let dir = format!("/tmp/tidemark-test-pg-{}-{n}", std::process::id());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(Command::new("chown")
            .args(["postgres", &dir])
            .status()
            .unwrap()
            .success());
        let data = format!("{dir}/data");
        let ok = Self::as_postgres(&[
            &format!("{bin}/initdb"),
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
        assert!(ok, "initdb failed");
        prepare(&data);
        let opts = format!(
            "-c wal_level={wal_level} -c listen_addresses=127.0.0.1 -p {port} -k {dir} -c fsync=off {extra}"
        );
        let server = Self {
            dir,
            bin,
            port,
            opts,
        };
        server.pg_ctl(&["-w", "start"]);
        Some(server)
    }

    fn as_postgres(args: &[&str]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(args);
        c
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = format!("{}/data", self.dir);
        let log = format!("{}/log", self.dir);
        let mut full: Vec<&str> = vec!["-D", &data, "-o", &self.opts, "-l", &log];
        full.extend_from_slice(args);
        let ok = Self::as_postgres(
            &[&[format!("{}/pg_ctl", self.bin).as_str()][..], &full[..]].concat(),
        )
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
        assert!(
            ok,
            "pg_ctl {args:?} failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// A fast restart: every connection is cut.
    pub fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "restart"]);
    }

    pub fn url(&self) -> PgUrl {
        PgUrl {
            user: "postgres".into(),
            password: String::new(),
            host: "127.0.0.1".into(),
            port: self.port,
            database: "postgres".into(),
        }
    }

    /// Points `cfg`'s connector at this server.
    pub fn use_in(&self, cfg: &TestConfig) {
        let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
        let url = pg_url();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(
                &format!("port: {}", url.port),
                &format!("port: {}", self.port),
            )
            .replace(&format!("database: {}", url.database), "database: postgres")
            .replace(&format!("user: {}", url.user), "user: postgres");
        std::fs::write(&path, text).unwrap();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Self::as_postgres(&[
            &format!("{}/pg_ctl", self.bin),
            "-D",
            &format!("{}/data", self.dir),
            "-m",
            "immediate",
            "stop",
        ])
        .stdout(Stdio::null())
        .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The WAL position an error in `log` names (`WAL position 0/16B3748`).
pub fn wal_position(log: &str) -> String {
    let i = log
        .find("WAL position ")
        .expect("a WAL position in the error");
    log[i..]
        .split([' ', ':', ')'])
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value of the sample `family{connector="<connector>"}` in a Prometheus exposition
/// (`/metrics`); panics, showing the exposition, when it has none.
pub fn metric_sample(metrics: &str, family: &str, connector: &str) -> u64 {
    let prefix = format!("{family}{{connector=\"{connector}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}N` in:\n{metrics}"))
}

/// One HTTP/1.1 request to the admin API at `address`: (status, body).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the admin API");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

pub fn get_json(address: &str, path: &str) -> (u16, Json) {
    let (status, body) = http(address, "GET", path, None, "");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}
