//! `configs/tidemark.yaml`: the daemon's settings (Kafka, positions, logging).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Where events go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Kafka through rdkafka (idempotent producer, acks=all).
    #[default]
    Kafka,
    /// JSON lines on standard output, for trying tidemark without a broker.
    Stdout,
}

/// Where committed source positions are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionStoreKind {
    /// A compacted Kafka topic (the default with the Kafka sink).
    Kafka,
    /// A JSON file per connector in a local directory (development).
    File,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// How messages are written (per daemon; a table file may override it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The Debezium JSON envelope, without a schema.
    #[default]
    Json,
    /// The envelope in Kafka Connect's `{"schema", "payload"}` wrapper (JsonConverter with
    /// `schemas.enable=true`).
    JsonSchema,
    /// Avro in the Confluent wire format, schemas registered in `schema_registry`.
    Avro,
}

/// How column values are written (the `values:` key; per daemon, a table file may override it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueProfile {
    /// tidemark's readable values: decimals as exact strings, times in ISO 8601.
    #[default]
    Tidemark,
    /// Each type as Debezium's connectors write it by default (`crate::schema::debezium`), so
    /// a consumer built for Debezium topics reads tidemark's unchanged.
    Debezium,
}

/// How the `debezium` profile writes decimals (Debezium's `decimal.handling.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecimalHandling {
    /// Connect `Decimal`: the unscaled value's bytes (base64 in JSON), exact.
    #[default]
    Precise,
    /// The exact digits as a string.
    String,
    /// A double (may lose digits).
    Double,
}

/// A table's value profile with its decimal handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Values {
    pub profile: ValueProfile,
    pub decimals: DecimalHandling,
}

impl Values {
    /// The `debezium` profile with `decimals`.
    pub fn debezium(decimals: DecimalHandling) -> Self {
        Self {
            profile: ValueProfile::Debezium,
            decimals,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Directory of connector files, relative to this file.
    #[serde(default = "default_connectors_dir")]
    pub connectors_dir: PathBuf,
    /// Directory of per-table files (`<connector>/<schema>.<table>.yaml`), relative to this file.
    #[serde(default = "default_tables_dir")]
    pub tables_dir: PathBuf,
    #[serde(default)]
    pub sink: SinkKind,
    /// The message format of every table whose file sets none.
    #[serde(default)]
    pub format: Format,
    /// The value profile of every table whose file sets none.
    #[serde(default)]
    pub values: ValueProfile,
    /// How the `debezium` profile writes decimals (unset: `precise`).
    #[serde(default)]
    pub decimal_handling: Option<DecimalHandling>,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub offsets: OffsetsConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub router: RouterConfig,
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    #[serde(default)]
    pub transaction_metadata: TransactionMetadataConfig,
    /// The schema registry of the `avro` format (required when a table is in that format).
    #[serde(default)]
    pub schema_registry: Option<super::registry::SchemaRegistryConfig>,
    /// After SIGTERM/SIGINT, how long the daemon may take to drain the sink and commit its
    /// last positions; then (or at a second signal) it exits at once with status 1, committing
    /// nothing more (what was not committed is sent again after the restart).
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// The admin HTTP API: health, metrics, connectors.
    #[serde(default)]
    pub admin: AdminConfig,
    /// What the daemon does when a connector stops on a definite error: `keep_running` (the
    /// default while the admin API is on: the process stays up, not ready, the error in
    /// `GET /connectors/{name}`, until `POST /connectors/{name}/restart` or a signal) or
    /// `exit` (the default without the admin API: exit with status 1 once no connector runs).
    #[serde(default)]
    pub on_connector_failure: Option<OnConnectorFailure>,
}

/// See [`DaemonConfig::on_connector_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConnectorFailure {
    KeepRunning,
    Exit,
}

/// `admin:` in the daemon file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port` the admin API listens on (`127.0.0.1:8083`), or `off`.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// The environment variable holding the bearer token every request must carry (required
    /// when `listen` is not a loopback address).
    #[serde(default)]
    pub token_env: Option<String>,
    /// A file holding the token, relative to this file.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How often each connector's source watcher reads how far behind the server's log the
    /// connector is (lag in bytes, a slot's retained WAL), over one connection of its own;
    /// `0`: never (no extra connection).
    #[serde(default = "default_source_poll_ms")]
    pub source_poll_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
            token_env: None,
            token_file: None,
            source_poll_ms: default_source_poll_ms(),
        }
    }
}

fn default_source_poll_ms() -> u64 {
    15_000
}

fn default_admin_listen() -> String {
    "127.0.0.1:8083".into()
}

fn default_shutdown_timeout_ms() -> u64 {
    30_000
}

fn default_connectors_dir() -> PathBuf {
    PathBuf::from("../connectors")
}

fn default_tables_dir() -> PathBuf {
    PathBuf::from("tables")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`. Required with the Kafka sink or store.
    #[serde(default)]
    pub brokers: Option<String>,
    /// Default topic name is `<topic_prefix>.<schema>.<table>`.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// `none`, `gzip`, `snappy` or `lz4`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Create missing topics at startup.
    #[serde(default = "default_true")]
    pub create_topics: bool,
    /// Create topics with `cleanup.policy=compact`.
    #[serde(default = "default_true")]
    pub compact_topics: bool,
    #[serde(default = "default_partitions")]
    pub topic_partitions: i32,
    #[serde(default = "default_replication")]
    pub topic_replication_factor: i32,
    /// How long the producer retries one message before the connector fails (and restarts
    /// from its last committed position).
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// Extra librdkafka producer properties (`linger.ms`, `batch.size`, ...), over tidemark's own.
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
    /// librdkafka properties for **every** Kafka client tidemark makes (the producer, the
    /// admin client, the position store's producer and consumers, `check`, `tail`):
    /// `security.protocol`, `ssl.*`, `sasl.mechanism`, `sasl.username`, ... Relative
    /// `ssl.*.location` paths are relative to this file. No secret here: see
    /// `sasl_password_env` and `ssl_key_password_env`.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
    /// The SASL password (`sasl.password`): an environment variable's name ...
    #[serde(default)]
    pub sasl_password_env: Option<String>,
    /// ... or a file, relative to this file.
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// The password of `ssl.key.location`'s key (`ssl.key.password`), from the environment ...
    #[serde(default)]
    pub ssl_key_password_env: Option<String>,
    /// ... or a file.
    #[serde(default)]
    pub ssl_key_password_file: Option<PathBuf>,
    /// The secrets above, resolved when the files are loaded (`sasl.password`,
    /// `ssl.key.password`), and `client` with its paths resolved.
    #[serde(skip)]
    pub resolved: ResolvedClient,
}

/// `kafka.client` as the clients take it: properties with absolute paths, and the secrets.
#[derive(Debug, Clone, Default)]
pub struct ResolvedClient {
    pub properties: BTreeMap<String, String>,
    pub secrets: Vec<(&'static str, super::Secret)>,
}

impl KafkaConfig {
    /// The properties every Kafka client starts from: `bootstrap.servers` and `kafka.client`
    /// (with its secrets).
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set(
            "bootstrap.servers",
            self.brokers.as_deref().unwrap_or_default(),
        );
        let properties = if self.resolved.properties.is_empty() {
            &self.client
        } else {
            &self.resolved.properties
        };
        for (key, value) in properties {
            c.set(key, value);
        }
        for (key, secret) in &self.resolved.secrets {
            c.set(*key, secret.expose());
        }
        c
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            topic_prefix: default_topic_prefix(),
            compression: default_compression(),
            create_topics: true,
            compact_topics: true,
            topic_partitions: default_partitions(),
            topic_replication_factor: default_replication(),
            delivery_timeout_ms: default_delivery_timeout_ms(),
            producer: BTreeMap::new(),
            client: BTreeMap::new(),
            sasl_password_env: None,
            sasl_password_file: None,
            ssl_key_password_env: None,
            ssl_key_password_file: None,
            resolved: ResolvedClient::default(),
        }
    }
}

fn default_topic_prefix() -> String {
    "tidemark".into()
}
fn default_compression() -> String {
    "lz4".into()
}
fn default_true() -> bool {
    true
}
fn default_partitions() -> i32 {
    1
}
fn default_replication() -> i32 {
    1
}
fn default_delivery_timeout_ms() -> u64 {
    300_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetsConfig {
    /// `kafka` (default with the Kafka sink) or `file` (default with the stdout sink).
    #[serde(default)]
    pub store: Option<PositionStoreKind>,
    /// The compacted topic of the Kafka store.
    #[serde(default = "default_offsets_topic")]
    pub topic: String,
    /// The directory of the file store, relative to this file.
    #[serde(default = "default_offsets_path")]
    pub path: PathBuf,
    /// How often the newest acknowledged position is committed.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
}

impl Default for OffsetsConfig {
    fn default() -> Self {
        Self {
            store: None,
            topic: default_offsets_topic(),
            path: default_offsets_path(),
            commit_interval_ms: default_commit_interval_ms(),
        }
    }
}

fn default_offsets_topic() -> String {
    "tidemark.positions".into()
}
fn default_offsets_path() -> PathBuf {
    PathBuf::from("../positions")
}
fn default_commit_interval_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `tidemark=debug,info`); `RUST_LOG` wins when set.
    #[serde(default = "default_level")]
    pub level: String,
    /// How often each connector logs its stream line (events/s, lag, position, caught up);
    /// `0`: never.
    #[serde(default = "default_progress_interval_ms")]
    pub progress_interval_ms: u64,
}

fn default_progress_interval_ms() -> u64 {
    30_000
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: default_level(),
            progress_interval_ms: default_progress_interval_ms(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Capacity of the channel between the source and the router (events).
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
    /// At most this many produced records wait for their acknowledgement at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            channel_capacity: default_channel_capacity(),
            max_in_flight: default_max_in_flight(),
        }
    }
}

fn default_channel_capacity() -> usize {
    4096
}
/// 10,000 keeps a snapshot's peak RSS under 64 MB also with `snapshot.parallelism: 4`
/// (BENCHMARKS.md, session 16); the stream and snapshot rates were the same at 50,000.
fn default_max_in_flight() -> usize {
    10_000
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            connectors_dir: default_connectors_dir(),
            tables_dir: default_tables_dir(),
            sink: SinkKind::default(),
            format: Format::default(),
            values: ValueProfile::default(),
            decimal_handling: None,
            kafka: KafkaConfig::default(),
            offsets: OffsetsConfig::default(),
            logging: LoggingConfig::default(),
            pipeline: PipelineConfig::default(),
            router: RouterConfig::default(),
            dead_letter: DeadLetterConfig::default(),
            transaction_metadata: TransactionMetadataConfig::default(),
            schema_registry: None,
            shutdown_timeout_ms: default_shutdown_timeout_ms(),
            admin: AdminConfig::default(),
            on_connector_failure: None,
        }
    }
}

/// `router:`: the defaults of every table's routing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// The topic template of tables whose file sets no `topic`: `{prefix}` (kafka.topic_prefix),
    /// `{connector}`, `{db}`, `{schema}`, `{table}`.
    #[serde(default = "default_topic_template")]
    pub topic: String,
    /// The environment variable that holds the salt of `hash` masks.
    #[serde(default)]
    pub hash_salt_env: Option<String>,
    /// A file whose content (trailing newline trimmed) is the salt of `hash` masks.
    #[serde(default)]
    pub hash_salt_file: Option<PathBuf>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            topic: default_topic_template(),
            hash_salt_env: None,
            hash_salt_file: None,
        }
    }
}

/// The default topic of a table.
pub const DEFAULT_TOPIC_TEMPLATE: &str = "{prefix}.{schema}.{table}";

fn default_topic_template() -> String {
    DEFAULT_TOPIC_TEMPLATE.into()
}

/// `transaction_metadata:`: Debezium's transaction metadata records (`provide.transaction.
/// metadata`): a BEGIN and an END per transaction on their own topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionMetadataConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The topic: a name or a template of `{prefix}` and `{connector}`.
    #[serde(default = "default_transaction_topic")]
    pub topic: String,
}

impl Default for TransactionMetadataConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            topic: default_transaction_topic(),
        }
    }
}

fn default_transaction_topic() -> String {
    "{prefix}.transaction".into()
}

/// `dead_letter:`: where events under `on_error: dead_letter` go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The dead-letter topic: a name or a template of `{prefix}` and `{connector}`.
    #[serde(default = "default_dead_letter_topic")]
    pub topic: String,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            topic: default_dead_letter_topic(),
        }
    }
}

fn default_dead_letter_topic() -> String {
    "{prefix}.dlq".into()
}
