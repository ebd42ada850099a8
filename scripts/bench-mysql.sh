#!/usr/bin/env bash
# MySQL/MariaDB throughput of tidemark against raw baselines, in one run on one machine:
#   (1) raw binlog read: mariadb-binlog --read-from-remote-server --raw (bytes as they come,
#       no decoding) and the same without --raw, decoding rows (-v) to /dev/null
#   (2) raw produce: rdkafka with tidemark's producer settings, same count and mean size
#   (3) tidemark end to end: binlog -> Kafka, until the committed position reaches the end
#   (4) tidemark's peak RSS, including one transaction of BENCH_BIG_TX rows
#   (5) commit-to-consumer latency p50/p99 at fixed rates (BENCH_RATES, BENCH_SECONDS each),
#       the floors under it: the broker and clients alone, and a raw binlog client's commit to
#       arrival (kafka_baseline binlog-latency) while the same writer commits
# Usage: scripts/bench-mysql.sh   (BENCH_CHANGES=500000 BENCH_BIG_TX=1000000 BENCH_RATES="1000 10000" BENCH_SECONDS=20 BENCH_FORMAT=json|json-schema|avro BENCH_VALUES=tidemark|debezium BENCH_MYSQL_READ_COALESCE_MS=N)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
N=${BENCH_CHANGES:-500000}
BIG=${BENCH_BIG_TX:-1000000}
RATES=${BENCH_RATES:-1000 10000}
SECS=${BENCH_SECONDS:-20}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
bench_run_dir m
mkdir -p "$OUT/raw"
PORT=${TIDEMARK_DEV_MYSQL_PORT:-53306}
MY=(mariadb --no-defaults -h 127.0.0.1 -P "$PORT" -u tidemark --password=tidemark -D tidemark_test -N -B)
T="bench_$RUN"
"${MY[@]}" -e "CREATE TABLE $T (id BIGINT PRIMARY KEY, c1 INT, c2 BIGINT, c3 VARCHAR(64), c4 DECIMAL(12,2),
  c5 TIMESTAMP(6), c6 BOOLEAN, c7 DOUBLE, c8 CHAR(32), c9 DATE)"
# The latency step's load table: the same writer, not captured (the floor under equal load).
LOAD_T="${T}_load"
"${MY[@]}" -e "CREATE TABLE $LOAD_T LIKE $T"
read -r START_FILE START_POS < <("${MY[@]}" -e "SHOW MASTER STATUS" | awk '{print $1, $2}')

HALF=$((N / 2))
echo "workload: $HALF single-row INSERT transactions, $HALF UPDATEs in 1000-row transactions, then one transaction of $BIG inserted rows" >&2
W0=$(date +%s.%N)
mysql_stream_workload "$T" "$HALF"
"${MY[@]}" <<SQL
INSERT INTO $T SELECT $N + seq, seq, seq, 'big', 1.5, NOW(6), 1, 0.5, MD5(seq), CURDATE() FROM seq_1_to_$BIG;
SQL
W1=$(date +%s.%N)
TOTAL=$((N + BIG))
read -r END_FILE END_POS < <("${MY[@]}" -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
BYTES=$("${MY[@]}" -e "SHOW BINARY LOGS" | awk -v s="$START_FILE" -v sp="$START_POS" -v e="$END_FILE" -v ep="$END_POS" \
  '$1>=s && $1<=e { from = ($1==s) ? sp : 4; to = ($1==e) ? ep : $2; t += to - from } END {print t}')
echo "workload written in $(calc "$W1 - $W0") s: $TOTAL changes, $BYTES binlog bytes, $START_FILE:$START_POS .. $END_FILE:$END_POS" >&2

# (1) raw binlog read, before and after tidemark; the faster one counts
# raw_read TAG prints the rate and writes the reader's own CPU per change to $OUT/binlog-TAG.us.
raw_read() {
  local r0 r1
  rm -rf "$OUT/raw" && mkdir -p "$OUT/raw"
  r0=$(date +%s.%N)
  (cd "$OUT/raw" && cpu_run "../binlog-$1.s" mariadb-binlog --no-defaults --read-from-remote-server --raw -h 127.0.0.1 -P "$PORT" -u tidemark \
    --password=tidemark --start-position="$START_POS" --to-last-log "$START_FILE" >/dev/null)
  r1=$(date +%s.%N)
  cpu_us "$OUT/binlog-$1.s" "$READ_COUNT" > "$OUT/binlog-$1.us"
  calc "$READ_COUNT / ($r1 - $r0)"
}
decoded_read() {
  local r0 r1
  r0=$(date +%s.%N)
  cpu_run "$OUT/binlog-decoded.s" mariadb-binlog --no-defaults --read-from-remote-server -v -h 127.0.0.1 -P "$PORT" -u tidemark --password=tidemark \
    --start-position="$START_POS" --to-last-log "$START_FILE" >/dev/null
  r1=$(date +%s.%N)
  cpu_us "$OUT/binlog-decoded.s" "$READ_COUNT" > "$OUT/binlog-decoded.us"
  calc "$READ_COUNT / ($r1 - $r0)"
}
# The changes in the binlog from the start position to its end (the latency runs add theirs).
READ_COUNT=$TOTAL
RAW_1=$(raw_read 1)

# (3) tidemark end to end, from the workload's start position
CFG="$OUT/configs"
write_daemon_config warn
mysql_stream_connector "$T" "$START_FILE" "$START_POS"
committed() { mysql_position_reached "$END_FILE" "$END_POS"; }
tidemark_start "$CFG/tidemark.yaml"
trap 'kill $TM 2>/dev/null || true' EXIT
tidemark_wait "$TOTAL" committed
RSS=$PEAK_RSS_KB

# (5) latency at fixed rates, tidemark still running: paced single-row inserts (autocommit);
# the binlog's ts_ms has whole seconds, so the commit time is the row's c5 (NOW(6)).
write_late() {
  "${MY[@]}" <<SQL
DELIMITER //
BEGIN NOT ATOMIC
  DECLARE t0 DOUBLE DEFAULT UNIX_TIMESTAMP(NOW(6));
  DECLARE lag DOUBLE;
  FOR i IN 1..$LN DO
    INSERT INTO $T VALUES ($NEXT_ID + i, i, i, 'late', 1, NOW(6), 1, 1, 'x', CURDATE());
    SET lag = t0 + i / $RATE - UNIX_TIMESTAMP(NOW(6));
    IF lag > 0 THEN DO SLEEP(lag); END IF;
  END FOR;
END //
DELIMITER ;
SQL
}
NEXT_ID=$((TOTAL + 1))
# The MariaDB source's floor: a raw binlog client (mysql_async and tidemark's row decoder, no
# Kafka, no tidemark) reads the load table's inserts and measures arrival minus c5 (column 5).
log_floor() {
  "$BASE" binlog-latency --url "$TIDEMARK_TEST_MYSQL_URL" --table "$1" --column 5 --messages "$2" | tail -1
}
latency_at_rates "$RUN.tidemark_test.$T" write_late --op c --ts-column c5
READ_COUNT=$((TOTAL + LAT_TOTAL + LOAD_TOTAL))
kill -TERM $TM; wait $TM || true
trap - EXIT
DELIVERED=$(count_topic "$RUN.tidemark_test.$T")
SIZE=$(sample_values "$RUN.tidemark_test.$T" "$OUT/sample.jsonl")
RAW_2=$(raw_read 2)
RAW=$(python3 -c "print(max($RAW_1, $RAW_2))")
DECODED=$(decoded_read)

# (2) raw produce: the same count, values sampled from tidemark's own messages
raw_produce "$TOTAL" "$OUT/sample.jsonl" "raw_$RUN" > "$OUT/produce.txt"
PRODUCE=$(cat "$OUT/produce.txt")
# The raw clients' own CPU per change (not the servers'), and tidemark's against them.
READER_US=$(python3 -c "print(min($(cat "$OUT/binlog-1.us"), $(cat "$OUT/binlog-2.us")))")
DECODER_US=$(cat "$OUT/binlog-decoded.us")

MIN=$(python3 -c "print(min($RAW, $PRODUCE))")
RATIO=$(python3 -c "print(round($E2E / $MIN * 100, 1))")
{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); MariaDB $("${MY[@]}" -e 'SELECT VERSION()')"
  echo "workload: $TOTAL changes ($HALF single-row inserts, $HALF updates in 1000-row transactions, one transaction of $BIG inserts), $BYTES binlog bytes, mean message $SIZE bytes"
  printf "raw binlog read (mariadb-binlog --raw): %.0f changes/s (%.0f before, %.0f after tidemark); decoding rows (-v): %.0f changes/s\n" "$RAW" "$RAW_1" "$RAW_2" "$DECODED"
  printf "raw produce (rdkafka, idempotent, acks=all, lz4; tidemark's records: key, value, two headers, timestamp): %.0f msgs/s; machine CPU %s us/msg, of which the producer process %s us (key and value alone: %s us, ratio %s)\n" \
    "$PRODUCE" "$PRODUCE_CPU_US" "$PRODUCE_CLIENT_US" "$PRODUCE_PLAIN_CLIENT_US" "$(calc "round($TM_CPU_US / $PRODUCE_PLAIN_CLIENT_US, 2)")"
  printf "tidemark end to end: %.0f events/s = %s%% of min(raw binlog read, raw produce); machine CPU %s us/event, of which tidemark %s us\n" "$E2E" "$RATIO" "$E2E_CPU_US" "$TM_CPU_US"
  printf "own CPU per change: tidemark %s us; raw producer %s us (ratio %s, target <= 2); mariadb-binlog --raw %s us; decoding rows (-v) %s us; producer + raw reader %s us (ratio %s)\n" \
    "$TM_CPU_US" "$PRODUCE_CLIENT_US" "$(calc "round($TM_CPU_US / $PRODUCE_CLIENT_US, 2)")" "$READER_US" "$DECODER_US" \
    "$(calc "round($PRODUCE_CLIENT_US + $READER_US, 2)")" "$(calc "round($TM_CPU_US / ($PRODUCE_CLIENT_US + $READER_US), 2)")"
  echo "messages in the topic: $DELIVERED (expected $((TOTAL + LAT_TOTAL)): the workload and the latency runs)"
  echo "peak RSS: $((RSS / 1024)) MiB (the run includes the $BIG-row transaction; $(rss_detail))"
  echo "latency, commit to consumer, $SECS s per rate:"
  sed 's/^/  /' "$OUT/latency.txt"
} | tee "$OUT/results.txt"
"${MY[@]}" -e "DROP TABLE $T, $LOAD_T" >/dev/null
