//! The router's table files on the real servers: topic templates and a topic shared by two
//! tables, include/exclude, every mask on snapshot rows, before/after images and keys, a row
//! filter with updates crossing it, the event-time column, the outbox router, and table
//! files naming columns the table lacks.

use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::common::*;

fn is_hash(v: &Json) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn add_salt(cfg: &TestConfig) {
    cfg.append_to_daemon_file("router:\n  hash_salt_file: salt.txt\n");
    write(cfg.dir.path(), "configs/salt.txt", "s3cret-salt\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn table_files_route_mask_filter_and_time_snapshot_and_stream_rows() {
    let client = pg().await;
    let a = unique("route_a");
    let b = unique("route_b");
    client
        .batch_execute(&format!(
            "CREATE TABLE {a} (id int PRIMARY KEY, email text, name text, note text, ssn text,
                               status text, updated_at timestamptz);
             ALTER TABLE {a} REPLICA IDENTITY FULL;
             CREATE TABLE {b} (id int PRIMARY KEY, v text);
             INSERT INTO {a} VALUES
               (1, 'ann@example.com', 'Ann', 'hello world', '111-11-1111', 'paid', '2020-01-02 03:04:05.678+00'),
               (2, 'bob@example.com', 'Bob', 'hi', '222-22-2222', 'draft', NULL);
             INSERT INTO {b} VALUES (1, 'one');"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{a}"), &format!("public.{b}")], "");
    add_salt(&cfg);
    let tables = format!("configs/tables/{}", cfg.name);
    write(
        cfg.dir.path(),
        &format!("{tables}/public.{a}.yaml"),
        "topic: \"{prefix}.shared-{db}\"\n\
         columns:\n  exclude: [ssn]\n  mask: {email: hash, name: redact, note: {truncate: 5}}\n\
         filter: \"status != 'draft'\"\n\
         event_time: updated_at\n",
    );
    write(
        cfg.dir.path(),
        &format!("{tables}/public.{b}.yaml"),
        "topic: \"{prefix}.shared-{db}\"\ncolumns:\n  mask: {id: hash}\n",
    );
    let topic = format!("{}.shared-{}", cfg.prefix, pg_url().database);
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let of = |m: &[Msg], t: &str| -> Vec<Msg> {
        m.iter()
            .filter(|x| x.key.as_ref().unwrap()["__table"] == format!("public.{t}"))
            .cloned()
            .collect()
    };
    // The snapshot: a's paid row (the draft is filtered out) and b's row.
    let snap = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(2),
        |m| m.len() >= 2,
    );
    let show = |m: &[Msg]| format!("{m:#?}\nlog:\n{}", daemon.log_text());
    assert_eq!(snap.len(), 2, "{}", show(&snap));
    let sa = of(&snap, &a);
    assert_eq!(sa.len(), 1, "{}", show(&snap));
    assert_eq!(
        sa[0].key,
        Some(json!({"__table": format!("public.{a}"), "id": 1}))
    );
    let after = &sa[0].value.as_ref().unwrap()["after"];
    let ann_hash = after["email"].clone();
    assert!(is_hash(&ann_hash), "{after}");
    assert_eq!(
        {
            let mut shown = after.clone();
            shown["email"] = json!("#");
            shown
        },
        json!({"id": 1, "email": "#", "name": "***", "note": "hello", "status": "paid",
               "updated_at": "2020-01-02T03:04:05.678000Z"}),
    );
    assert_eq!(
        sa[0].header("tidemark.event_time_ms"),
        Some("1577934245678")
    );
    let sb = of(&snap, &b);
    let b_key = sb[0].key.as_ref().unwrap();
    assert!(is_hash(&b_key["id"]), "{b_key}");
    assert_eq!(sb[0].value.as_ref().unwrap()["after"]["id"], b_key["id"]);
    assert_eq!(sb[0].value.as_ref().unwrap()["after"]["v"], "one");

    client
        .batch_execute(&format!(
            "INSERT INTO {a} VALUES (3, 'ann@example.com', 'Cy', 'short', '3', 'paid', NULL);
             INSERT INTO {a} VALUES (4, 'dee@example.com', 'Dee', 'x', '4', 'draft', NULL);
             UPDATE {a} SET status = 'paid' WHERE id = 4;
             UPDATE {a} SET status = 'draft', updated_at = '2021-05-06 07:08:09+00' WHERE id = 1;
             DELETE FROM {a} WHERE id = 2;
             DELETE FROM {a} WHERE id = 3;
             INSERT INTO {b} VALUES (2, 'two');"
        ))
        .await
        .unwrap();
    // a: c3, u4 (into the filter), d1 + tombstone (out of it), d3 + tombstone; b: c2.
    let all = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| m.len() >= 2 + 7,
    );
    assert_eq!(all.len(), 9, "{}", show(&all));
    let ma = of(&all[2..], &a);
    let ops: Vec<_> = ma
        .iter()
        .map(|m| {
            m.value
                .as_ref()
                .map(|v| v["op"].as_str().unwrap().to_string())
        })
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        ops,
        [some("c"), some("u"), some("d"), None, some("d"), None],
        "{}",
        show(&all)
    );
    let ids: Vec<_> = ma
        .iter()
        .map(|m| m.key.as_ref().unwrap()["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!(3), json!(4), json!(1), json!(1), json!(3), json!(3)]
    );
    // Equal values hash equally (row 3 has Ann's address), in snapshot and stream rows.
    assert_eq!(ma[0].value.as_ref().unwrap()["after"]["email"], ann_hash);
    assert_eq!(ma[0].value.as_ref().unwrap()["after"]["ssn"], Json::Null);
    assert!(ma[0].value.as_ref().unwrap()["after"]
        .as_object()
        .unwrap()
        .get("ssn")
        .is_none());
    // The update into the filter carries both images, masked.
    let into = ma[1].value.as_ref().unwrap();
    assert_eq!(into["before"]["status"], "draft");
    assert_eq!(into["before"]["name"], "***");
    assert_eq!(into["after"]["status"], "paid");
    // The update out of it: a delete of the old row, marked, at the new event time.
    let left = &ma[2];
    assert_eq!(left.header("tidemark.filter"), Some("left"));
    assert_eq!(left.value.as_ref().unwrap()["before"]["status"], "paid");
    assert_eq!(left.value.as_ref().unwrap()["before"]["email"], ann_hash);
    assert_eq!(left.header("tidemark.event_time_ms"), Some("1620284889000"));
    // A row without an event time gets the commit time.
    let commit: i64 = ma[0]
        .header("tidemark.event_time_ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(commit > 1_700_000_000_000, "{commit}");
    let mb = of(&all[2..], &b);
    assert_eq!(mb.len(), 1);
    assert!(is_hash(&mb[0].key.as_ref().unwrap()["id"]));
    assert_ne!(mb[0].key, sb[0].key);

    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {a}, {b};"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_rows_land_on_their_aggregate_topics_in_commit_order() {
    let client = pg().await;
    let t = unique("outbox");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id uuid PRIMARY KEY, aggregate_type text NOT NULL,
                               aggregate_id text NOT NULL, event_type text, tenant text, payload jsonb);"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    write(
        cfg.dir.path(),
        &format!("configs/tables/{}/public.{t}.yaml", cfg.name),
        "outbox:\n  topic: \"{prefix}.{aggregate_type}\"\n  key: aggregate_id\n  payload: payload\n  \
         type: event_type\n  headers: [tenant]\n",
    );
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let mut sql = String::new();
    let kinds = ["order", "customer", "invoice"];
    for i in 0..30 {
        let kind = kinds[i % 3];
        sql.push_str(&format!(
            "INSERT INTO {t} VALUES ('00000000-0000-0000-0000-{i:012}', '{kind}', '{kind}-{}', \
             '{kind}.changed', 'acme', '{{\"seq\": {i}, \"kind\": \"{kind}\"}}');",
            i % 4
        ));
        if i % 5 == 4 {
            // Applications delete delivered outbox rows: that produces nothing.
            sql.push_str(&format!("DELETE FROM {t};"));
        }
    }
    client.batch_execute(&sql).await.unwrap();

    for (k, kind) in kinds.iter().enumerate() {
        let topic = format!("{}.{kind}", cfg.prefix);
        let msgs = consume_until(
            &topic,
            Duration::from_secs(60),
            Duration::from_secs(3),
            |m| m.len() >= 10,
        );
        let show = format!("{msgs:#?}\nlog:\n{}", daemon.log_text());
        assert_eq!(msgs.len(), 10, "{topic}: {show}");
        for (n, m) in msgs.iter().enumerate() {
            let i = k + 3 * n;
            assert_eq!(m.key, Some(json!(format!("{kind}-{}", i % 4))), "{show}");
            assert_eq!(m.value, Some(json!({"seq": i, "kind": kind})), "{show}");
            assert_eq!(
                m.header("id"),
                Some(format!("00000000-0000-0000-0000-{i:012}").as_str())
            );
            assert_eq!(m.header("type"), Some(format!("{kind}.changed").as_str()));
            assert_eq!(m.header("tenant"), Some("acme"));
        }
    }
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t};")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_file_naming_a_missing_column_is_refused_naming_file_and_column() {
    let client = pg().await;
    let t = unique("route_missing");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, email text);"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let file = format!("configs/tables/{}/public.{t}.yaml", cfg.name);
    write(
        cfg.dir.path(),
        &file,
        "columns:\n  mask: {emial: redact}\nfilter: \"statuz = 'x'\"\n",
    );
    let config = cfg.config_file();
    let (status, out) = cfg.run_to_end(
        &["check", "--config", config.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(!status.success(), "{out}");
    for want in [
        "columns.mask.emial",
        "`emial`",
        "filter",
        "`statuz`",
        file.as_str(),
    ] {
        assert!(out.contains(want), "check output lacks {want}:\n{out}");
    }
    let (status, out) = cfg.run_to_end(
        &["run", "--config", config.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("`emial`") && out.contains(file.as_str()),
        "run output:\n{out}"
    );
    cfg.cleanup_and(&client, &format!("DROP TABLE {t};")).await;
}
