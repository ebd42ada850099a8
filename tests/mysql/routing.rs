//! The router on MariaDB rows: masks, `include`, a filter crossed by updates, a DATETIME
//! event time, and an outbox table with a JSON payload.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::common::*;
use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn masks_filters_event_time_and_an_outbox_on_binlog_rows() {
    let mut c = my().await;
    let t = unique("my_route");
    let o = unique("my_outbox");
    c.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, email VARCHAR(50), secret TEXT, note VARCHAR(50),
                           status ENUM('draft','paid'), changed DATETIME(3))"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "CREATE TABLE {o} (id BIGINT AUTO_INCREMENT PRIMARY KEY, aggregate_type VARCHAR(20),
                           aggregate_id VARCHAR(20), event_type VARCHAR(40), payload JSON)"
    ))
    .await
    .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{t}"), &format!("{d}.{o}")], "");
    cfg.append_to_daemon_file("router:\n  hash_salt_file: salt.txt\n");
    write(cfg.dir.path(), "configs/salt.txt", "pepper");
    let tables = format!("configs/tables/{}", cfg.name);
    write(
        cfg.dir.path(),
        &format!("{tables}/{d}.{t}.yaml"),
        "columns:\n  include: [id, email, note, status, changed]\n  mask: {email: hash, note: {truncate: 3}}\n\
         filter: \"status = 'paid'\"\nevent_time: changed\n",
    );
    write(
        cfg.dir.path(),
        &format!("{tables}/{d}.{o}.yaml"),
        "outbox: {topic: \"{prefix}.ob.{aggregate_type}\", key: aggregate_id, payload: payload, type: event_type}\n",
    );
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    for stmt in [
        format!("INSERT INTO {t} VALUES (1, 'a@x.io', 's1', 'abcdef', 'paid', '2022-03-04 05:06:07.890')"),
        format!("INSERT INTO {t} VALUES (2, 'b@x.io', 's2', 'zz', 'draft', NULL)"),
        format!("UPDATE {t} SET status = 'paid' WHERE id = 2"),
        format!("UPDATE {t} SET status = 'draft' WHERE id = 1"),
        format!("DELETE FROM {t} WHERE id = 1"),
        format!("INSERT INTO {o} (aggregate_type, aggregate_id, event_type, payload) VALUES ('cart', 'c-1', 'added', '{{\"sku\": \"A\"}}')"),
        format!("INSERT INTO {o} (aggregate_type, aggregate_id, event_type, payload) VALUES ('user', 'u-9', 'joined', '{{\"n\": 1}}')"),
        format!("INSERT INTO {o} (aggregate_type, aggregate_id, event_type, payload) VALUES ('cart', 'c-1', 'paid', '{{\"sku\": \"A\", \"q\": 2}}')"),
        format!("DELETE FROM {o}"),
    ] {
        c.query_drop(stmt).await.unwrap();
    }
    let topic = cfg.topic(&format!("{d}.{t}"));
    let m = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| m.len() >= 4,
    );
    let show = |m: &[Msg]| format!("{m:#?}\nlog:\n{}", daemon.log_text());
    // c1, u2 (into the filter), d1 + tombstone (out of it); the draft insert and the delete
    // of a draft produce nothing.
    let ops: Vec<_> = m
        .iter()
        .map(|x| {
            x.value
                .as_ref()
                .map(|v| v["op"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        ops,
        [
            Some("c".to_string()),
            Some("u".into()),
            Some("d".into()),
            None
        ],
        "{}",
        show(&m)
    );
    let first = &m[0].value.as_ref().unwrap()["after"];
    assert!(first.get("secret").is_none(), "{first}");
    assert_eq!(first["note"], "abc");
    assert_eq!(first["status"], "paid");
    let h = first["email"].as_str().unwrap();
    assert!(
        h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
        "{h}"
    );
    assert_eq!(m[0].header("tidemark.event_time_ms"), Some("1646370367890"));
    assert_eq!(m[2].header("tidemark.filter"), Some("left"));
    assert_eq!(
        m[2].value.as_ref().unwrap()["before"]["email"],
        first["email"]
    );

    let cart = consume_until(
        &format!("{}.ob.cart", cfg.prefix),
        Duration::from_secs(60),
        Duration::from_secs(2),
        |m| m.len() >= 2,
    );
    assert_eq!(cart.len(), 2, "{}", show(&cart));
    assert_eq!(cart[0].key, Some(json!("c-1")));
    assert_eq!(cart[0].value, Some(json!({"sku": "A"})));
    assert_eq!(cart[1].value, Some(json!({"sku": "A", "q": 2})));
    assert_eq!(cart[1].header("type"), Some("paid"));
    let user = consume_until(
        &format!("{}.ob.user", cfg.prefix),
        Duration::from_secs(60),
        Duration::from_secs(2),
        |m| !m.is_empty(),
    );
    assert_eq!(user.len(), 1, "{}", show(&user));
    assert_eq!(user[0].key, Some(json!("u-9")));
    assert!(user[0].header("id").is_some());
    daemon.stop_cleanly();
    c.query_drop(format!("DROP TABLE {t}, {o}")).await.unwrap();
}
