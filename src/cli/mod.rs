//! The `tidemark` command line: `run`, `check`, `tail`, `snapshot`.

pub mod check;
pub mod check_kafka;
pub mod logging;
pub mod run;
pub mod snapshot;
pub mod status;
pub mod tail;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tidemark",
    version,
    about = "Change-data-capture from PostgreSQL and MySQL/MariaDB into Kafka",
    after_help = "Configuration: configs/tidemark.yaml (or --config, or TIDEMARK_CONFIG), the connector \
files beside it, and table files. Every key can be overridden from the environment: \
TIDEMARK__KAFKA__BROKERS=host:9092 for the daemon file, TIDEMARK__CONNECTORS__<NAME>__CONNECTION__HOST=... \
for a connector's. See README.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: stream every enabled connector until SIGTERM/SIGINT.
    Run {
        /// The daemon file; connector and table files are found from it.
        #[arg(
            long,
            short,
            env = "TIDEMARK_CONFIG",
            default_value = "configs/tidemark.yaml"
        )]
        config: PathBuf,
    },
    /// Validate every configuration file and each source's prerequisites; say how to fix each.
    Check {
        /// The daemon file; connector and table files are found from it.
        #[arg(
            long,
            short,
            env = "TIDEMARK_CONFIG",
            default_value = "configs/tidemark.yaml"
        )]
        config: PathBuf,
        /// Only validate the files; do not connect to anything.
        #[arg(long)]
        offline: bool,
    },
    /// Print the messages of a topic as JSON lines (key, value, headers), then exit.
    Tail {
        /// The topic to read.
        topic: String,
        /// Bootstrap servers; default: kafka.brokers of the config file.
        #[arg(long)]
        brokers: Option<String>,
        /// The daemon file; connector and table files are found from it.
        #[arg(
            long,
            short,
            env = "TIDEMARK_CONFIG",
            default_value = "configs/tidemark.yaml"
        )]
        config: PathBuf,
        /// Start at the beginning of each partition (default: only new messages).
        #[arg(long)]
        from_beginning: bool,
        /// Exit after this many messages.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Exit when no message arrived for this long.
        #[arg(long, default_value_t = 5000)]
        idle_timeout_ms: u64,
        /// Print keys and values as base64 of their bytes (binary formats such as avro).
        #[arg(long)]
        base64: bool,
    },
    /// Print the state of a running daemon's connectors (from its admin API): phase, events,
    /// lag, position, snapshot progress, last error.
    Status {
        /// The daemon file (its `admin:` says where the API is).
        #[arg(
            long,
            short,
            env = "TIDEMARK_CONFIG",
            default_value = "configs/tidemark.yaml"
        )]
        config: PathBuf,
        /// Print the API's JSON as it is.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when a running daemon is ready (every connector streaming or snapshotting), 1
    /// otherwise, saying why: for a container's healthcheck.
    Health {
        /// The daemon file (its `admin:` says where the API is).
        #[arg(
            long,
            short,
            env = "TIDEMARK_CONFIG",
            default_value = "configs/tidemark.yaml"
        )]
        config: PathBuf,
    },
    /// Ask a running connector for a snapshot of its tables, one table, or a key range of one
    /// table (rows arrive as `op=r`); or pause, resume or stop the snapshot in progress.
    Snapshot {
        /// The connector (its file name without `.yaml`).
        connector: String,
        /// `schema.table`; default: every table of the connector.
        table: Option<String>,
        /// Lowest key to read (inclusive): a value, or a JSON array for a composite key.
        #[arg(long)]
        from: Option<String>,
        /// Highest key to read (inclusive).
        #[arg(long)]
        to: Option<String>,
        /// Only rows matching this SQL condition (one table; the signal is signed with the
        /// connector's `snapshot.signing_key_env`/`signing_key_file`, which the connector checks).
        #[arg(long = "where", value_name = "SQL")]
        condition: Option<String>,
        /// Pause the snapshot in progress (the chunks already read complete).
        #[arg(long, conflicts_with_all = ["resume", "stop", "from", "to", "table", "condition"])]
        pause: bool,
        /// Resume a paused snapshot.
        #[arg(long, conflicts_with_all = ["stop", "from", "to", "table", "condition"])]
        resume: bool,
        /// Stop the snapshot in progress for good.
        #[arg(long, conflicts_with_all = ["from", "to", "table", "condition"])]
        stop: bool,
        /// The daemon file; connector and table files are found from it.
        #[arg(
            long,
            short,
            env = "TIDEMARK_CONFIG",
            default_value = "configs/tidemark.yaml"
        )]
        config: PathBuf,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tidemark: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Run { config } => run::run(&config).await,
            Command::Check { config, offline } => check::check(&config, offline).await,
            Command::Status { config, json } => status::status(&config, json).await,
            Command::Health { config } => status::health(&config).await,
            Command::Tail {
                topic,
                brokers,
                config,
                from_beginning,
                max_messages,
                idle_timeout_ms,
                base64,
            } => {
                tail::tail(
                    &topic,
                    brokers,
                    &config,
                    tail::Reading {
                        from_beginning,
                        max_messages,
                        idle_timeout_ms,
                        base64,
                    },
                )
                .await
            }
            Command::Snapshot {
                connector,
                table,
                from,
                to,
                condition,
                pause,
                resume,
                stop,
                config,
            } => {
                use crate::snapshot::signal::Action;
                let action = if pause {
                    Action::Pause
                } else if resume {
                    Action::Resume
                } else if stop {
                    Action::Stop
                } else {
                    Action::Snapshot
                };
                let request = snapshot::Request {
                    table,
                    from,
                    to,
                    condition,
                    action,
                };
                snapshot::snapshot(&config, &connector, request).await
            }
        }
    });
    // A client call still blocking a thread (a broker that does not answer) does not hold
    // the exit up: what had to be committed was committed before block_on returned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
