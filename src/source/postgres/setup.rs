//! Prerequisites of a PostgreSQL source: what `tidemark check` reports and what `run` creates.
//!
//! Owns: the SQL connection, the inspection of the server (wal_level, privileges, slot,
//! publication, tables and their replica identity) and the creation of a missing slot or
//! publication. Must not: stream the WAL.

use std::time::Duration;

use tokio_postgres::Client;

use super::error::classify_postgres;
use crate::config::{ConnectorConfig, OnLostPosition, PostgresSettings, SslMode};
use crate::error::{Error, Result};
use crate::event::TableId;

/// Opens a SQL connection and drives it on a task.
pub async fn connect(cfg: &ConnectorConfig) -> Result<Client> {
    connect_with_options(cfg, None).await
}

/// [`connect`] with session `options` (`-c name=value ...`).
pub async fn connect_with_options(cfg: &ConnectorConfig, options: Option<&str>) -> Result<Client> {
    let c = &cfg.connection;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&c.host)
        .port(c.port)
        .user(&c.user)
        .dbname(&c.database)
        .application_name("tidemark")
        .connect_timeout(Duration::from_millis(c.connect_timeout_ms));
    if let Some(o) = options {
        pg.options(o);
    }
    if !c.password.expose().is_empty() {
        pg.password(c.password.expose());
    }
    let what = || {
        format!(
            "connector {}: cannot connect to PostgreSQL at {}:{} (database {}, user {}, sslmode {})",
            cfg.name,
            c.host,
            c.port,
            c.database,
            c.user,
            c.sslmode.as_str()
        )
    };
    let name = cfg.name.clone();
    let closed = move |e: tokio_postgres::Error| {
        tracing::debug!(connector = %name, error = %e, "SQL connection closed");
    };
    match super::tls::client_config(c).map_err(|e| e.context(what()))? {
        None => {
            let (client, connection) = pg
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| classify_postgres(what(), e))?;
            tokio::spawn(async move { connection.await.unwrap_or_else(closed) });
            Ok(client)
        }
        Some(tls) => {
            pg.ssl_mode(match c.sslmode {
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
            let (client, connection) = pg
                .connect(super::tls::MakeRustls(tls))
                .await
                .map_err(|e| classify_postgres(what(), e))?;
            tokio::spawn(async move { connection.await.unwrap_or_else(closed) });
            Ok(client)
        }
    }
}

/// The facts `check` and `prepare` decide on.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub server_version: String,
    pub server_version_num: i32,
    pub wal_level: String,
    pub max_replication_slots: i64,
    pub max_wal_senders: i64,
    pub is_superuser: bool,
    pub has_replication: bool,
    pub can_create_in_db: bool,
    /// `synchronous_standby_names` (empty: commits wait for no standby).
    pub synchronous_standby_names: String,
    /// Member of `pg_read_all_stats`: may read other roles' `backend_xid` and wait events.
    pub reads_all_stats: bool,
    pub slot: Option<SlotInfo>,
    pub publication: Option<PublicationInfo>,
    pub tables: Vec<TableInfo>,
}

#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub slot_type: String,
    pub active_pid: Option<i32>,
    pub confirmed_flush_lsn: Option<String>,
    /// `reserved`, `extended`, `unreserved` or `lost` (the WAL it needs was removed: the slot
    /// is invalidated and cannot stream).
    pub wal_status: Option<String>,
    /// WAL the slot keeps on the server (from its restart position to the current one).
    pub retained_bytes: Option<i64>,
}

impl SlotInfo {
    pub fn confirmed_flush(&self) -> Option<u64> {
        self.confirmed_flush_lsn
            .as_deref()
            .and_then(super::pgoutput::parse_lsn)
    }

    pub fn invalidated(&self) -> bool {
        self.wal_status.as_deref() == Some("lost")
    }
}

#[derive(Debug, Clone)]
pub struct PublicationInfo {
    pub all_tables: bool,
    pub tables: Vec<TableId>,
    pub publishes: [bool; 4], // insert, update, delete, truncate
}

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub id: TableId,
    pub exists: bool,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: Option<char>,
    pub primary_key: Vec<String>,
    pub columns: Vec<String>,
    pub can_select: bool,
    pub is_owner: bool,
}

fn q(context: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| classify_postgres(context.to_string(), e)
}

/// Gathers every fact about the server that the connector depends on.
pub async fn inspect(client: &Client, cfg: &ConnectorConfig) -> Result<Inspection> {
    let pg = super::settings(cfg)?;
    let ctx = format!("connector {}: inspecting the server", cfg.name);
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('wal_level'), \
             current_setting('server_version_num')::int4, \
             current_setting('max_replication_slots')::int8, current_setting('max_wal_senders')::int8, \
             r.rolsuper, r.rolreplication, has_database_privilege(current_database(), 'CREATE'), \
             current_setting('synchronous_standby_names'), \
             pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') \
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await
        .map_err(q(&ctx))?;
    let slot = client
        .query_opt(
            "SELECT plugin::text, database::text, slot_type, active_pid, confirmed_flush_lsn::text, \
             wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&pg.slot],
        )
        .await
        .map_err(q(&ctx))?
        .map(|r| SlotInfo {
            plugin: r.get(0),
            database: r.get(1),
            slot_type: r.get(2),
            active_pid: r.get(3),
            confirmed_flush_lsn: r.get(4),
            wal_status: r.get(5),
            retained_bytes: r.get(6),
        });
    let publication = match client
        .query_opt(
            "SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate \
             FROM pg_publication WHERE pubname = $1",
            &[&pg.publication],
        )
        .await
        .map_err(q(&ctx))?
    {
        None => None,
        Some(r) => {
            let tables = client
                .query(
                    "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
                    &[&pg.publication],
                )
                .await
                .map_err(q(&ctx))?
                .into_iter()
                .map(|t| TableId::new(t.get::<_, String>(0), t.get::<_, String>(1)))
                .collect();
            Some(PublicationInfo {
                all_tables: r.get(0),
                tables,
                publishes: [r.get(1), r.get(2), r.get(3), r.get(4)],
            })
        }
    };
    let mut tables = Vec::new();
    for entry in &cfg.tables {
        tables.push(inspect_table(client, &entry.id, &ctx).await?);
    }
    Ok(Inspection {
        server_version: row.get(0),
        wal_level: row.get(1),
        server_version_num: row.get(2),
        max_replication_slots: row.get(3),
        max_wal_senders: row.get(4),
        is_superuser: row.get(5),
        has_replication: row.get(6),
        can_create_in_db: row.get(7),
        synchronous_standby_names: row.get(8),
        reads_all_stats: row.get(9),
        slot,
        publication,
        tables,
    })
}

/// The live columns of each configured table that exists, in column order.
pub async fn table_columns(cfg: &ConnectorConfig) -> Result<Vec<(TableId, Vec<String>)>> {
    let client = connect(cfg).await?;
    let ctx = "reading the configured tables' columns";
    let mut out = Vec::new();
    for t in &cfg.tables {
        let info = inspect_table(&client, &t.id, ctx).await?;
        if info.exists {
            out.push((t.id.clone(), info.columns));
        }
    }
    Ok(out)
}

async fn inspect_table(client: &Client, id: &TableId, ctx: &str) -> Result<TableInfo> {
    let row = client
        .query_opt(
            "SELECT c.oid, c.relreplident::text, has_table_privilege(c.oid, 'SELECT'), \
             pg_has_role(c.relowner, 'USAGE') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&id.schema, &id.table],
        )
        .await
        .map_err(q(ctx))?;
    let Some(row) = row else {
        return Ok(TableInfo {
            id: id.clone(),
            exists: false,
            replica_identity: None,
            primary_key: vec![],
            columns: vec![],
            can_select: false,
            is_owner: false,
        });
    };
    let oid: u32 = row.get(0);
    let ident: String = row.get(1);
    let primary_key = primary_key_columns(client, oid).await.map_err(q(ctx))?;
    let columns = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 \
             AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(q(ctx))?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    Ok(TableInfo {
        id: id.clone(),
        exists: true,
        replica_identity: ident.chars().next(),
        primary_key,
        columns,
        can_select: row.get(2),
        is_owner: row.get(3),
    })
}

/// The primary key's column names of the relation `oid`, in key order.
pub async fn primary_key_columns(
    client: &Client,
    oid: u32,
) -> std::result::Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[]) \
             WHERE i.indrelid = $1 AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&oid],
        )
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
}

pub use crate::source::check::{item, CheckItem, CheckStatus};

/// `tidemark check`: connects, inspects the server, and judges what it finds.
pub async fn check(
    cfg: &ConnectorConfig,
    pg: &PostgresSettings,
    compacted: bool,
) -> Result<Vec<CheckItem>> {
    let client = connect(cfg).await?;
    let inspection = inspect(&client, cfg).await?;
    Ok(evaluate(cfg, pg, &inspection, compacted))
}

/// Judges an inspection: what is fine, what will fail, and how to fix each.
/// With a synchronous standby, a snapshot chunk reads which commits wait for it from
/// `pg_stat_activity` (see `crate::snapshot`, PostgreSQL); a role that may not read other
/// roles' activity gets a warning.
fn standby_waits_item(i: &Inspection, user: &str) -> Option<CheckItem> {
    if i.synchronous_standby_names.trim().is_empty() || i.is_superuser || i.reads_all_stats {
        return None;
    }
    Some(item(
        CheckStatus::Warn,
        format!(
            "synchronous_standby_names = '{}' and user {user} is not a member of pg_read_all_stats: \
             a snapshot chunk cannot see which commits wait for the standby, and a commit that \
             waited from before a restart of tidemark until a chunk is read may be overwritten \
             on its topic by the chunk's older row",
            i.synchronous_standby_names
        ),
        format!("GRANT pg_read_all_stats TO {user};"),
    ))
}

pub fn evaluate(
    cfg: &ConnectorConfig,
    pg: &PostgresSettings,
    i: &Inspection,
    compacted: bool,
) -> Vec<CheckItem> {
    use CheckStatus::*;
    let mut out = Vec::new();
    out.push(item(Ok, format!("PostgreSQL {}", i.server_version), ""));
    if i.wal_level == "logical" {
        out.push(item(Ok, "wal_level = logical", ""));
    } else {
        out.push(item(
            Fail,
            format!(
                "wal_level = {} (logical decoding needs `logical`)",
                i.wal_level
            ),
            "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
        ));
    }
    if i.max_replication_slots < 1 || i.max_wal_senders < 1 {
        out.push(item(
            Fail,
            format!(
                "max_replication_slots = {}, max_wal_senders = {}",
                i.max_replication_slots, i.max_wal_senders
            ),
            "set both to at least 1 more than in use (postgresql.conf) and restart",
        ));
    }
    if i.is_superuser || i.has_replication {
        out.push(item(
            Ok,
            "user may replicate (REPLICATION or superuser)",
            "",
        ));
    } else {
        out.push(item(
            Fail,
            format!(
                "user {} lacks the REPLICATION attribute",
                cfg.connection.user
            ),
            format!("ALTER ROLE {} WITH REPLICATION;", cfg.connection.user),
        ));
    }
    out.extend(standby_waits_item(i, &cfg.connection.user));
    let slot = &pg.slot;
    match &i.slot {
        None if pg.create_slot => out.push(item(
            Ok,
            format!("slot {slot} does not exist yet; tidemark will create it"),
            "",
        )),
        None => out.push(item(
            Fail,
            format!("slot {slot} does not exist and postgres.create_slot is false"),
            format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput');"),
        )),
        Some(s) if s.slot_type != "logical" || s.plugin.as_deref() != Some("pgoutput") => {
            out.push(item(
                Fail,
                format!(
                    "slot {slot} exists but is a {} slot of plugin {}, not pgoutput",
                    s.slot_type,
                    s.plugin.as_deref().unwrap_or("(none)")
                ),
                format!(
                    "choose another postgres.slot in {}, or drop it: SELECT pg_drop_replication_slot('{slot}');",
                    cfg.file.display()
                ),
            ))
        }
        Some(s) if s.database.as_deref() != Some(cfg.connection.database.as_str()) => out.push(item(
            Fail,
            format!(
                "slot {slot} belongs to database {}, not {}",
                s.database.as_deref().unwrap_or("?"),
                cfg.connection.database
            ),
            format!("choose another postgres.slot in {}", cfg.file.display()),
        )),
        Some(s) if s.invalidated() => out.push(item(
            Fail,
            format!("slot {slot} is invalidated (wal_status lost): the WAL it needed was removed (max_slot_wal_keep_size)"),
            format!(
                "changes were lost from the slot; set `snapshot: {{on_lost_position: resnapshot}}` in {} to re-create it and \
                 snapshot every table again",
                cfg.file.display()
            ),
        )),
        Some(s) => {
            let mut what = format!(
                "slot {slot} (pgoutput, confirmed_flush_lsn {}, wal_status {}, {} bytes of WAL retained)",
                s.confirmed_flush_lsn.as_deref().unwrap_or("-"),
                s.wal_status.as_deref().unwrap_or("-"),
                s.retained_bytes.map_or("?".to_string(), |b| b.to_string())
            );
            let status = if let Some(pid) = s.active_pid {
                what.push_str(&format!(", in use by pid {pid}"));
                Warn
            } else {
                Ok
            };
            out.push(item(
                status,
                what,
                if status == Warn {
                    "another client streams from this slot; stop it, or tidemark waits"
                } else {
                    ""
                },
            ));
        }
    }
    let publication = &pg.publication;
    match &i.publication {
        None if pg.create_publication => out.push(item(
            Ok,
            format!("publication {publication} does not exist yet; tidemark will create it"),
            "",
        )),
        None => out.push(item(
            Fail,
            format!(
                "publication {publication} does not exist and postgres.create_publication is false"
            ),
            format!(
                "CREATE PUBLICATION {publication} FOR TABLE {};",
                cfg.tables
                    .iter()
                    .map(|t| t.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Some(p) => {
            let missing: Vec<String> = cfg
                .tables
                .iter()
                .filter(|t| !p.all_tables && !p.tables.contains(&t.id))
                .map(|t| t.id.to_string())
                .collect();
            if missing.is_empty() {
                out.push(item(
                    Ok,
                    format!("publication {publication} covers every table"),
                    "",
                ));
            } else if pg.create_publication {
                out.push(item(
                    Ok,
                    format!(
                        "publication {publication} lacks {}; tidemark will add them",
                        missing.join(", ")
                    ),
                    "",
                ));
            } else {
                out.push(item(
                    Fail,
                    format!("publication {publication} lacks {}", missing.join(", ")),
                    format!(
                        "ALTER PUBLICATION {publication} ADD TABLE {};",
                        missing.join(", ")
                    ),
                ));
            }
            if p.publishes.iter().any(|b| !b) {
                out.push(item(
                    Warn,
                    format!("publication {publication} does not publish every operation (insert, update, delete, truncate = {:?})", p.publishes),
                    format!("ALTER PUBLICATION {publication} SET (publish = 'insert, update, delete, truncate');"),
                ));
            }
        }
    }
    let needs_create = (i.publication.is_none() && pg.create_publication)
        || i.publication.as_ref().is_some_and(|p| {
            pg.create_publication
                && cfg
                    .tables
                    .iter()
                    .any(|t| !p.all_tables && !p.tables.contains(&t.id))
        });
    if !i.tables.is_empty() && i.tables.iter().all(|t| !t.exists) {
        out.push(item(
            Fail,
            format!(
                "none of the connector's tables exists in database {}",
                cfg.connection.database
            ),
            format!("check `tables` in {}", cfg.file.display()),
        ));
    }
    for t in &i.tables {
        let entry = cfg.table(&t.id);
        if !t.exists {
            // Dropped (or not created yet): the other tables go on; its changes are captured
            // again once it exists and is in the publication (at the next start).
            out.push(item(
                Warn,
                format!(
                    "table {} does not exist in database {}: it is skipped, the other tables are captured",
                    t.id, cfg.connection.database
                ),
                format!(
                    "create it, or remove it from `tables` in {}",
                    cfg.file.display()
                ),
            ));
            continue;
        }
        if !t.can_select {
            out.push(item(
                Fail,
                format!("no SELECT privilege on {}", t.id),
                format!("GRANT SELECT ON {} TO {};", t.id, cfg.connection.user),
            ));
        }
        if needs_create && !t.is_owner && !i.is_superuser {
            out.push(item(
                Fail,
                format!("user {} does not own {} (needed to add it to a publication)", cfg.connection.user, t.id),
                "create the publication as the table owner, and set postgres.create_publication: false",
            ));
        }
        let configured_key = entry.and_then(|e| e.config.key.as_ref());
        if let Some(key) = configured_key {
            for k in key {
                if !t.columns.contains(k) {
                    out.push(item(
                        Fail,
                        format!("key column {k} of {} does not exist", t.id),
                        format!(
                            "fix `key` in {}",
                            entry
                                .and_then(|e| e.file.as_ref())
                                .map(|f| f.display().to_string())
                                .unwrap_or_default()
                        ),
                    ));
                }
            }
        } else if t.primary_key.is_empty() && compacted {
            out.push(item(
                Fail,
                format!(
                    "table {} has no primary key, so its messages have no key",
                    t.id
                ),
                format!(
                    "add a primary key, or set `key: [columns]` in configs/tables/{}/{}.yaml",
                    cfg.name, t.id
                ),
            ));
        }
        if t.primary_key.is_empty() && cfg.snapshot.mode == crate::config::SnapshotMode::Initial {
            out.push(crate::source::check::keyless_initial_snapshot(cfg, &t.id));
        }
        match t.replica_identity {
            Some('f') => out.push(item(Ok, format!("{}: REPLICA IDENTITY FULL (full before images)", t.id), "")),
            Some('n') => out.push(item(
                Fail,
                format!("{}: REPLICA IDENTITY NOTHING: updates and deletes fail on a published table", t.id),
                format!("ALTER TABLE {} REPLICA IDENTITY FULL;", t.id),
            )),
            Some('i') => out.push(item(
                Warn,
                format!("{}: REPLICA IDENTITY USING INDEX: before images hold only the index's columns", t.id),
                format!("ALTER TABLE {} REPLICA IDENTITY FULL;  (optional)", t.id),
            )),
            Some('d') if t.primary_key.is_empty() => out.push(item(
                Fail,
                format!("{}: REPLICA IDENTITY DEFAULT without a primary key: updates and deletes fail", t.id),
                format!("ALTER TABLE {} REPLICA IDENTITY FULL;", t.id),
            )),
            _ => out.push(item(
                Warn,
                format!("{}: REPLICA IDENTITY DEFAULT: before images hold only the key columns, and unchanged TOAST values are sent as a marker", t.id),
                format!("ALTER TABLE {} REPLICA IDENTITY FULL;  (optional)", t.id),
            )),
        }
    }
    out
}

/// Creates what is missing (slot, publication, publication tables) and fails with the first
/// definite problem `evaluate` finds.
pub async fn prepare(
    client: &Client,
    cfg: &ConnectorConfig,
    compacted: bool,
    resume: &Resume,
) -> Result<Prepared> {
    let pg = super::settings(cfg)?;
    let mut inspection = inspect(client, cfg).await?;
    let lost = lost_slot(pg, &inspection, resume);
    if let Some(why) = &lost {
        if cfg.snapshot.on_lost_position == OnLostPosition::Fail {
            return Err(Error::definite(format!(
                "connector {} ({}): {why}. Streaming from the slot would skip the changes in between without \
                 an error. To go on: set `snapshot: {{on_lost_position: resnapshot}}` in the connector file \
                 (tidemark re-creates the slot and snapshots every table again, so the topics converge to the \
                 tables), or restore the slot and position deliberately",
                cfg.name,
                cfg.file.display()
            )));
        }
        tracing::warn!(connector = %cfg.name, reason = %why,
            "re-creating the slot and snapshotting every table again (snapshot.on_lost_position: resnapshot)");
        if inspection.slot.is_some() {
            client
                .execute("SELECT pg_drop_replication_slot($1)", &[&pg.slot])
                .await
                .map_err(q(&format!(
                    "connector {}: dropping the lost slot",
                    cfg.name
                )))?;
            inspection.slot = None;
        }
    }
    let problems: Vec<CheckItem> = evaluate(cfg, pg, &inspection, compacted)
        .into_iter()
        .filter(|i| i.status == CheckStatus::Fail)
        .collect();
    if !problems.is_empty() {
        let text = problems
            .iter()
            .map(|p| format!("{} (fix: {})", p.what, p.fix))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::definite(format!(
            "connector {} ({}): {text}",
            cfg.name,
            cfg.file.display()
        )));
    }
    let ctx = format!("connector {}: preparing the publication and slot", cfg.name);
    let publication = quote_ident(&pg.publication);
    let table_list = |ids: &mut dyn Iterator<Item = &TableId>| {
        ids.map(|t| format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.table)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Tables that do not exist are skipped (reported by `evaluate`).
    let existing: Vec<&TableId> = cfg
        .tables
        .iter()
        .map(|t| &t.id)
        .filter(|id| inspection.tables.iter().any(|t| &t.id == *id && t.exists))
        .collect();
    for t in cfg.tables.iter().filter(|t| !existing.contains(&&t.id)) {
        tracing::warn!(connector = %cfg.name, table = %t.id,
            "table does not exist: skipped; the other tables are captured");
    }
    match &inspection.publication {
        None => {
            let sql = if existing.is_empty() {
                format!("CREATE PUBLICATION {publication}")
            } else {
                format!(
                    "CREATE PUBLICATION {publication} FOR TABLE {}",
                    table_list(&mut existing.iter().copied())
                )
            };
            client.batch_execute(&sql).await.map_err(q(&ctx))?;
            tracing::info!(connector = %cfg.name, publication = %pg.publication, "created publication");
        }
        Some(p) if !p.all_tables => {
            let missing: Vec<&TableId> = existing
                .iter()
                .copied()
                .filter(|id| !p.tables.contains(id))
                .collect();
            if !missing.is_empty() {
                let sql = format!(
                    "ALTER PUBLICATION {publication} ADD TABLE {}",
                    table_list(&mut missing.iter().copied())
                );
                client.batch_execute(&sql).await.map_err(q(&ctx))?;
                tracing::info!(connector = %cfg.name, tables = %missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "), "added tables to publication");
            }
        }
        Some(_) => {}
    }
    let slot_confirmed = match &inspection.slot {
        Some(s) => s.confirmed_flush(),
        None => {
            // PostgreSQL 17+: a failover slot, which `sync_replication_slots` on a standby
            // keeps in step, so the connector can go on after a promotion.
            let sql = if inspection.server_version_num >= 170_000 {
                "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
            } else {
                "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')"
            };
            let row = client.query_one(sql, &[&pg.slot]).await.map_err(q(&ctx))?;
            tracing::info!(connector = %cfg.name, slot = %pg.slot, "created replication slot");
            row.get::<_, Option<String>>(0)
                .as_deref()
                .and_then(super::pgoutput::parse_lsn)
        }
    };
    Ok(Prepared {
        inspection,
        resnapshot: lost.is_some(),
        slot_confirmed,
    })
}

/// Where the connector would resume: its stored position, or that it has produced before
/// although none is stored.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub stored_lsn: Option<u64>,
    pub lost_position: bool,
}

/// What [`prepare`] found and did.
pub struct Prepared {
    pub inspection: Inspection,
    /// The slot was lost and is new: stream from it and snapshot every table again.
    pub resnapshot: bool,
    /// The slot's confirmed_flush_lsn as the stream starts (a new slot's consistent point).
    pub slot_confirmed: Option<u64>,
}

/// Why the slot cannot carry on from where the connector stopped, if it cannot: it is missing
/// while a position is stored (or the connector has produced before), it is invalidated, or
/// its confirmed position is past the stored one (tidemark moves it only to committed
/// positions, so something else moved it).
pub fn lost_slot(pg: &PostgresSettings, i: &Inspection, resume: &Resume) -> Option<String> {
    let slot = &pg.slot;
    match (&i.slot, resume.stored_lsn) {
        (None, Some(lsn)) => Some(format!(
            "slot {slot} does not exist, but a position is stored at LSN {} (the slot was dropped, or this is another server)",
            super::pgoutput::format_lsn(lsn)
        )),
        (None, None) if resume.lost_position => Some(format!(
            "slot {slot} does not exist and no position is stored, but the connector's topics hold messages it produced"
        )),
        (Some(s), _) if s.invalidated() => Some(format!(
            "slot {slot} is invalidated (wal_status lost): the WAL it needed was removed (max_slot_wal_keep_size)"
        )),
        (Some(s), Some(lsn)) if s.confirmed_flush().is_some_and(|c| c > lsn) => Some(format!(
            "slot {slot}'s confirmed_flush_lsn {} is past the stored position {}: something other than tidemark advanced it",
            s.confirmed_flush_lsn.as_deref().unwrap_or("-"),
            super::pgoutput::format_lsn(lsn)
        )),
        _ => None,
    }
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn a_synchronous_standby_asks_for_pg_read_all_stats() {
        let mut i = Inspection {
            server_version: "15.19".into(),
            server_version_num: 150019,
            wal_level: "logical".into(),
            max_replication_slots: 10,
            max_wal_senders: 10,
            is_superuser: false,
            has_replication: true,
            can_create_in_db: false,
            synchronous_standby_names: String::new(),
            reads_all_stats: false,
            slot: None,
            publication: None,
            tables: Vec::new(),
        };
        assert!(standby_waits_item(&i, "cdc").is_none(), "no standby");
        i.synchronous_standby_names = "FIRST 1 (s1, s2)".into();
        let warn = standby_waits_item(&i, "cdc").unwrap();
        assert_eq!(warn.status, CheckStatus::Warn);
        assert!(warn.what.contains("'FIRST 1 (s1, s2)'"), "{}", warn.what);
        assert_eq!(warn.fix, "GRANT pg_read_all_stats TO cdc;");
        i.reads_all_stats = true;
        assert!(standby_waits_item(&i, "cdc").is_none(), "a member");
        i.reads_all_stats = false;
        i.is_superuser = true;
        assert!(standby_waits_item(&i, "cdc").is_none(), "a superuser");
    }
}
