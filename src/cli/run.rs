//! `tidemark run`: the daemon.

use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::config::{self, PositionStoreKind, SinkKind};
use crate::error::Result;
use crate::offsets::{file::FileStore, kafka::KafkaStore, PositionStore};
use crate::sink::{kafka::KafkaSink, stdout::StdoutSink, Sink};

pub async fn run(config_path: &Path) -> i32 {
    let settings = match config::load(config_path, std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tidemark: configuration error: {e}");
            return 2;
        }
    };
    super::logging::init(&settings.daemon.logging);
    match run_daemon(Arc::new(settings)).await {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            tracing::error!(error = %e, "tidemark stopped");
            eprintln!("tidemark: {e}");
            1
        }
    }
}

/// Runs every enabled connector; `Ok(true)` after a clean shutdown, `Ok(false)` when a
/// connector stopped with a definite error.
async fn run_daemon(settings: Arc<config::Settings>) -> Result<bool> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).map_err(|e| {
        crate::error::Error::definite("installing the SIGTERM handler").with_source(e)
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| {
        crate::error::Error::definite("installing the SIGINT handler").with_source(e)
    })?;
    let deadline = std::time::Duration::from_millis(settings.daemon.shutdown_timeout_ms);
    let signals = tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping (the sink drains, the last positions are committed)"),
            _ = int.recv() => tracing::info!("SIGINT: stopping (the sink drains, the last positions are committed)"),
        }
        let _ = shutdown_tx.send(true);
        // The hard deadline: a second signal, or the drain taking too long.
        let why = tokio::select! {
            _ = term.recv() => "a second SIGTERM",
            _ = int.recv() => "a second SIGINT",
            _ = tokio::time::sleep(deadline) => "shutdown_timeout_ms passed",
        };
        tracing::error!(timeout_ms = deadline.as_millis() as u64,
            "{why}: exiting now without committing more positions; changes after the last committed position are sent again at the next start");
        std::process::exit(1);
    });

    let sink = Arc::new(match settings.daemon.sink {
        SinkKind::Kafka => Sink::Kafka(KafkaSink::new(&settings.daemon.kafka)?),
        SinkKind::Stdout => Sink::Stdout(StdoutSink::default()),
    });
    if let Sink::Kafka(k) = sink.as_ref() {
        crate::status::registry().set_producer_queue(k.queue_reader());
        k.spawn_outage_probe(shutdown_rx.clone());
    }
    for c in settings.connectors.iter().filter(|c| c.enabled) {
        crate::status::register(c);
    }
    if let Some(admin) = &settings.admin {
        crate::admin::start(admin, settings.clone(), shutdown_rx.clone()).await?;
    }
    let store = Arc::new(match settings.position_store {
        PositionStoreKind::File => {
            PositionStore::File(FileStore::new(settings.positions_dir.clone()))
        }
        PositionStoreKind::Kafka => match connect_kafka_store(&settings, shutdown_rx.clone())
            .await?
        {
            Some(store) => PositionStore::Kafka(store),
            None => {
                tracing::info!("stopped before the position store was reachable: nothing to drain");
                signals.abort();
                return Ok(true);
            }
        },
    });

    if let Some(every) = settings.admin.as_ref().and_then(|a| a.source_poll) {
        for c in settings.connectors.iter().filter(|c| c.enabled) {
            tokio::spawn(crate::source::backlog::watch(
                Arc::new(c.clone()),
                every,
                shutdown_rx.clone(),
            ));
        }
    }
    let mut tasks = Vec::new();
    for c in settings.connectors.iter().filter(|c| c.enabled) {
        tasks.push(tokio::spawn(crate::pipeline::supervise(
            Arc::new(c.clone()),
            settings.clone(),
            sink.clone(),
            store.clone(),
            shutdown_rx.clone(),
        )));
    }
    if tasks.is_empty() {
        tracing::warn!("no enabled connector");
    }
    let mut clean = true;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => clean = false,
            Err(e) => {
                tracing::error!(error = %e, "connector task panicked");
                clean = false;
            }
        }
    }
    if let Err(e) = sink.flush().await {
        tracing::warn!(error = %e, "flushing the sink at exit");
    }
    signals.abort();
    Ok(clean)
}

/// The Kafka position store, retried while the broker is unreachable; `None` when a signal
/// stops the daemon first (at once, even in the middle of an attempt).
async fn connect_kafka_store(
    settings: &config::Settings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<KafkaStore>> {
    let mut backoff = crate::retry::Backoff::new(
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(30),
        std::time::Duration::MAX,
    );
    loop {
        let started = std::time::Instant::now();
        let attempt = KafkaStore::new(&settings.daemon.kafka, &settings.daemon.offsets.topic);
        let mut stopped = shutdown.clone();
        let result = tokio::select! {
            r = attempt => r,
            _ = stopped.wait_for(|s| *s) => return Ok(None),
        };
        match result {
            Ok(s) => return Ok(Some(s)),
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay(started);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    attempt = backoff.attempt(), unclassified = e.unclassified, "position store not reachable");
                if !crate::retry::sleep_unless_stopped(delay, &mut shutdown).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}
