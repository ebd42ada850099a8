//! `on_error: dead_letter` and `skip`: events that cannot be produced (too large) or routed
//! (an outbox row without its topic column) are set aside, and every other event goes on.
//! (`halt`, the default, is `bad_input::a_row_larger_than_the_message_limit_is_a_clear_error`.)

use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn dead_letter_and_skip_set_events_aside_and_the_rest_goes_on() {
    let client = pg().await;
    let a = unique("dlq_a");
    let b = unique("dlq_b");
    let o = unique("dlq_outbox");
    client
        .batch_execute(&format!(
            "CREATE TABLE {a} (id int PRIMARY KEY, doc text);
             CREATE TABLE {b} (id int PRIMARY KEY, doc text);
             CREATE TABLE {o} (id int PRIMARY KEY, kind text, agg text, payload jsonb);"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(
        &[
            &format!("public.{a}"),
            &format!("public.{b}"),
            &format!("public.{o}"),
        ],
        "snapshot:\n  mode: never\n",
    );
    // A 200 kB producer limit, so a 300 kB row is too large.
    let daemon_file = cfg.config_file();
    let text = std::fs::read_to_string(&daemon_file).unwrap().replace(
        "kafka:\n",
        "kafka:\n  producer:\n    message.max.bytes: \"200000\"\n",
    );
    std::fs::write(&daemon_file, text).unwrap();
    let tables = format!("configs/tables/{}", cfg.name);
    write(
        cfg.dir.path(),
        &format!("{tables}/public.{a}.yaml"),
        "on_error: dead_letter\n",
    );
    write(
        cfg.dir.path(),
        &format!("{tables}/public.{b}.yaml"),
        "on_error: skip\n",
    );
    write(
        cfg.dir.path(),
        &format!("{tables}/public.{o}.yaml"),
        "on_error: dead_letter\noutbox: {topic: \"{prefix}.ev.{kind}\", key: agg, payload: payload}\n",
    );
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    // 300 kB of text that does not compress away.
    let big = "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 9400) g)";
    client
        .batch_execute(&format!(
            "INSERT INTO {a} VALUES (1, 'small');
             INSERT INTO {a} VALUES (2, {big});
             INSERT INTO {a} VALUES (3, 'after');
             INSERT INTO {b} VALUES (1, {big});
             INSERT INTO {b} VALUES (2, 'after');
             INSERT INTO {o} VALUES (1, 'order', 'o-1', '{{\"n\": 1}}');
             INSERT INTO {o} VALUES (2, NULL, 'o-2', '{{\"n\": 2}}');
             INSERT INTO {o} VALUES (3, 'order', 'o-3', '{{\"n\": 3}}');"
        ))
        .await
        .unwrap();

    let show = |m: &[Msg]| format!("{m:#?}\nlog:\n{}", daemon.log_text());
    let ta = consume_n(
        &cfg.topic(&format!("public.{a}")),
        2,
        Duration::from_secs(60),
    );
    let ids = |m: &[Msg]| -> Vec<_> { m.iter().map(|x| x.key.clone().unwrap()).collect() };
    assert_eq!(
        ids(&ta),
        [json!({"id": 1}), json!({"id": 3})],
        "{}",
        show(&ta)
    );
    let tb = consume_n(
        &cfg.topic(&format!("public.{b}")),
        1,
        Duration::from_secs(60),
    );
    assert_eq!(ids(&tb), [json!({"id": 2})], "{}", show(&tb));
    let orders = consume_n(
        &format!("{}.ev.order", cfg.prefix),
        2,
        Duration::from_secs(60),
    );
    assert_eq!(
        ids(&orders),
        [json!("o-1"), json!("o-3")],
        "{}",
        show(&orders)
    );

    let dlq = consume_n(&format!("{}.dlq", cfg.prefix), 2, Duration::from_secs(60));
    assert_eq!(dlq.len(), 2, "{}", show(&dlq));
    // The row too large: its key and headers, no value (it would be too large here too).
    let large = &dlq[0];
    assert_eq!(large.key, Some(json!({"id": 2})), "{}", show(&dlq));
    assert_eq!(large.value, None);
    assert_eq!(large.header("tidemark.dlq.error_kind"), Some("too_large"));
    assert_eq!(
        large.header("tidemark.dlq.table"),
        Some(format!("public.{a}").as_str())
    );
    assert_eq!(
        large.header("tidemark.dlq.topic"),
        Some(cfg.topic(&format!("public.{a}")).as_str())
    );
    assert_eq!(
        large.header("tidemark.dlq.connector"),
        Some(cfg.name.as_str())
    );
    assert!(large
        .header("tidemark.dlq.position")
        .is_some_and(|p| p.starts_with("WAL position ")));
    assert!(large
        .header("tidemark.dlq.error")
        .is_some_and(|e| e.contains("message.max.bytes")));
    // The outbox row without a topic: the change's envelope, and why.
    let unrouted = &dlq[1];
    assert_eq!(unrouted.header("tidemark.dlq.error_kind"), Some("routing"));
    assert_eq!(unrouted.header("tidemark.dlq.topic"), None);
    assert!(unrouted
        .header("tidemark.dlq.error")
        .is_some_and(|e| e.contains("`kind` is NULL")));
    let v = unrouted.value.as_ref().unwrap();
    assert_eq!(v["after"]["agg"], "o-2", "{v}");
    assert_eq!(v["op"], "c");
    assert_eq!(unrouted.key, Some(json!({"id": 2})));
    // The skipped row: counted in the log.
    let log = daemon.log_text();
    assert!(log.contains("event skipped (on_error: skip)"), "{log}");
    assert_eq!(
        log.matches("event sent to the dead-letter topic").count(),
        2,
        "{log}"
    );
    daemon.assert_running();
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {a}, {b}, {o};"))
        .await;
}
