#!/usr/bin/env bash
# Benchmark: PostgreSQL logical replication into Kafka (librdkafka's mock cluster), the agent
# against a bare librdkafka producer sending the same records.
#
#   tests/bench/pg_to_kafka.sh [--json FILE]
#
# Starts a throwaway PostgreSQL 15 (wal_level=logical) on a free loopback port, inserts
# BENCH_INSERT_ROWS rows in one transaction, and captures the agent's records once: `tributary
# run` (kafka sink, snapshot: never) into a mock cluster, read back with `kcat -C -J` (key,
# value, headers). Then, BENCH_REPEATS times (default 3), each against a fresh mock cluster
# (3 brokers, topic of BENCH_PARTITIONS partitions, default 4):
#   (a) the baseline: tributary_bare_producer (tests/tools/bare_producer.cpp) sends the captured
#       records with the agent's producer settings; seconds: first produce until the last
#       delivery report (records loaded into memory and metadata fetched before the clock);
#   (b) the agent: `tributary run` from its own copy of the workload's slot; seconds: start
#       until the topic's end offsets add up to every row (polled with kcat -Q), then SIGTERM;
#   (c) the agent with `exactly_once: true` (transactional producer, offsets topic), measured as
#       (b), unless BENCH_EXACTLY_ONCE=0;
#   (d) a reference, not a contender: the same agent into a file sink, which shows how long
#       PostgreSQL and the source side take on their own;
# and reports medians: throughput as a ratio agent/baseline (target >= 0.8), the same ratio for
# exactly_once and exactly_once against the idempotent agent, CPU per row and peak RSS of each. Exits 0 whether the target is met or not; non-zero only when something
# failed.
#
# Environment:
#   TRIBUTARY_BIN                 agent binary (default: build it into build/bench)
#   TRIBUTARY_MOCK_KAFKA_BIN      tributary_mock_kafka \ (default: build both into
#   TRIBUTARY_BARE_PRODUCER_BIN   tributary_bare_producer / build/bench-tools)
#   BENCH_INSERT_ROWS   rows inserted by one transaction (default 500000)
#   BENCH_PARTITIONS    partitions of the topic (default 4)
#   BENCH_REPEATS       runs per contender (default 3)
#   BENCH_TIMEOUT       seconds an agent run may take to deliver every row (default 600)
#   BENCH_EXACTLY_ONCE  1 (default): also measure the agent with exactly_once: true
set -Eeuo pipefail
trap 'echo "pg_to_kafka: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/../.."

bench_name=pg_to_kafka
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
parse_json_arg "$@"

rows=${BENCH_INSERT_ROWS:-500000}
partitions=${BENCH_PARTITIONS:-4}
repeats=${BENCH_REPEATS:-3}
timeout_s=${BENCH_TIMEOUT:-600}
exactly_once=${BENCH_EXACTLY_ONCE:-1}
topic=bench.public.bench
target=0.8

# --- tools, the agent and the baseline -------------------------------------------------------
for tool in /usr/lib/postgresql/15/bin/pg_ctl /usr/bin/psql /usr/bin/time /usr/bin/jq /usr/bin/kcat; do
  [ -x "$tool" ] || { bash scripts/install-deps.sh; break; }
done
find_agent
find_kafka_tools

# --- throwaway PostgreSQL and mock clusters ---------------------------------------------------
work=$(mktemp -d /tmp/tributary-bench-XXXXXX)
chmod 755 "$work"
child_pid=   # /usr/bin/time wrapping the agent, or the bare producer
mock_pid=
cleanup() {
  local status=$?
  trap - ERR
  stop_child
  [ -z "$mock_pid" ] || { kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; }
  stop_pg
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_pg

# A fresh mock cluster (tests/tools/mock_kafka.cpp) with the row topic of $1 partitions and the
# schema-change topic. Sets bootstrap and mock_pid; the cluster's memory dies with it.
mock_start() {
  local parts=$1 reply
  coproc MOCK { exec "$mock_kafka_bin"; }
  # shellcheck disable=SC2153  # MOCK_PID is set by coproc
  mock_pid=$MOCK_PID
  read -r -t 10 bootstrap <&"${MOCK[0]}" || fail "the mock cluster printed no bootstrap address"
  for t in "$topic $parts" "bench.schema-changes 1" "tributary.offsets 1"; do
    echo "topic $t" >&"${MOCK[1]}"
    read -r -t 10 reply <&"${MOCK[0]}" || fail "the mock cluster did not answer"
    [ "$reply" = ok ] || fail "mock cluster: topic $t: $reply"
  done
}
# Sets mock_cpu: CPU seconds (user+sys) the mock cluster has used so far.
mock_cpu_now() {
  mock_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
    "/proc/$mock_pid/stat")
}
mock_stop() {
  kill -TERM "$mock_pid" 2>/dev/null || true
  wait "$mock_pid" 2>/dev/null || true
  mock_pid=
}

# Sets offsets_now: the sum of the row topic's end offsets (kcat -Q, timestamp -1 = end).
# The mock keeps only 5 MB a partition but its offsets count every record ever written.
query_offsets() {
  local parts=$1 args=() p out
  for p in $(seq 0 $((parts - 1))); do args+=(-t "$topic:$p:-1"); done
  out=$(kcat -Q -b "$bootstrap" "${args[@]}" 2>/dev/null) || return 1
  offsets_now=$(awk '$3 == "offset" { s += $4; n++ } END { if (n) print s; else print "x" }' <<<"$out")
  [ "$offsets_now" != x ]
}

# Reads "elapsed user sys maxrss_kb" from a GNU time output file (last line).
time_fields() { tail -n 1 "$1"; }

# Runs the agent from `slot` until `expected` rows are out: into the current mock cluster's topic
# of `parts` partitions (`kafka`, or `eos` for exactly_once: true), or with `file`, into a file
# sink (the reference run). The mock writes no transaction markers, so end offsets count records. Sets result_wall,
# result_stream (first record out until the last), result_cpu, result_rss_kb.
run_agent() {  # slot expected parts dir [file]
  local slot=$1 expected=$2 parts=$3 dir=$4 sink=${5:-kafka} t0 t_first='' t_done='' agent_pid
  local status=0 deadline n=0
  mkdir -p "$dir"
  cat >"$dir/tributary.yaml" <<YAML
state_dir: $dir/state
log: { level: info }
sources:
  - name: bench
    type: postgres
    dsn: "$dsn"
    tables: [public.bench]
    snapshot: never
    slot: $slot
    publication: bench_pub
    sinks: [out]
sinks:
YAML
  if [ "$sink" = file ]; then
    printf '  - { name: out, type: file, path: "%s" }\n' "$dir/out" >>"$dir/tributary.yaml"
  elif [ "$sink" = eos ]; then
    printf '  - { name: out, type: kafka, brokers: "%s", exactly_once: true }\n' "$bootstrap" \
      >>"$dir/tributary.yaml"
  else
    printf '  - { name: out, type: kafka, brokers: "%s" }\n' "$bootstrap" >>"$dir/tributary.yaml"
  fi
  count_reset
  t0=$(now_ns)
  deadline=$(( t0 + timeout_s * 1000000000 ))
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" \
    "$agent_bin" run --config "$dir/tributary.yaml" 2>"$dir/agent.log" &
  child_pid=$!
  while :; do
    if [ "$sink" = file ]; then
      count_lines "$dir/out/$topic"; n=$lines_now
    else
      query_offsets "$parts" || offsets_now=0
      n=$offsets_now
    fi
    if [ "$n" -gt 0 ] && [ -z "$t_first" ]; then t_first=$(now_ns); fi
    if [ "$n" -ge "$expected" ]; then t_done=$(now_ns); break; fi
    if ! kill -0 "$child_pid" 2>/dev/null; then
      tail -n 30 "$dir/agent.log" >&2
      fail "the agent exited before delivering every row ($n of $expected records)"
    fi
    if [ "$(now_ns)" -gt "$deadline" ]; then
      tail -n 30 "$dir/agent.log" >&2
      fail "the agent delivered $n of $expected records in ${timeout_s}s"
    fi
    sleep 0.05
  done
  agent_pid=$(pgrep -P "$child_pid" | head -n 1) || true
  [ -n "$agent_pid" ] || fail "cannot find the agent process under /usr/bin/time (pid $child_pid)"
  kill -TERM "$agent_pid"
  wait "$child_pid" || status=$?
  child_pid=
  [ "$status" -eq 0 ] || { tail -n 30 "$dir/agent.log" >&2; fail "the agent exited with status $status after SIGTERM"; }
  # Idempotent and never restarted, the agent must write every row exactly once.
  if [ "$sink" = file ]; then
    count_lines "$dir/out/$topic"; n=$lines_now
  else
    query_offsets "$parts" || fail "cannot read the end offsets of $topic"
    n=$offsets_now
  fi
  [ "$n" -eq "$expected" ] || fail "the agent wrote $n records, expected $expected"
  read -r _ user sys rss < <(time_fields "$dir/time")
  result_wall=$(awk -v a="$t0" -v b="$t_done" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  result_stream=$(awk -v a="$t_first" -v b="$t_done" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  result_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
  result_rss_kb=$rss
}

# Sends the captured records with the bare producer into the current mock cluster. Sets
# result_wall, result_cpu, result_rss_kb, result_loaded_kb.
run_bare() {  # records expected parts dir
  local records=$1 expected=$2 parts=$3 dir=$4 status=0 out
  mkdir -p "$dir"
  "$bare_producer_bin" "$bootstrap" "$topic" "$records" >"$dir/out" 2>"$dir/stderr" &
  child_pid=$!
  wait "$child_pid" || status=$?
  child_pid=
  [ "$status" -eq 0 ] || { cat "$dir/stderr" >&2; fail "the bare producer exited with status $status"; }
  out=$(tail -n 1 "$dir/out")
  [ "$(jq -r .records <<<"$out")" -eq "$expected" ] || fail "the bare producer sent $(jq -r .records <<<"$out") records, expected $expected"
  query_offsets "$parts" || fail "cannot read the end offsets of $topic"
  [ "$offsets_now" -eq "$expected" ] || fail "the bare producer wrote $offsets_now records, expected $expected"
  result_wall=$(jq -r '.seconds * 1000 | round / 1000' <<<"$out")
  result_cpu=$(jq -r '.cpu_seconds * 100 | round / 100' <<<"$out")
  result_rss_kb=$(jq -r .peak_rss_kb <<<"$out")
  result_loaded_kb=$(jq -r .rss_loaded_kb <<<"$out")
}

# --- the workload ------------------------------------------------------------------------------
sql -c "CREATE TABLE public.bench (id int PRIMARY KEY, qty int, note text)" \
    -c "CREATE PUBLICATION bench_pub FOR TABLE public.bench" \
    -c "SELECT pg_create_logical_replication_slot('bench_src', 'pgoutput')" >/dev/null
log "Workload: one transaction inserting $rows rows"
sql -c "INSERT INTO public.bench SELECT g, g % 1000, md5(g::text) || lpad(g::text, 8, '0')
        FROM generate_series(1, $rows) g"

# --- the agent's records, captured once -----------------------------------------------------
# Many partitions, so that the mock's 5 MB a partition holds every record until kcat reads it.
capture_parts=128
log "Capturing the agent's records (untimed run, $capture_parts partitions)"
mock_start "$capture_parts"
sql -c "SELECT pg_copy_logical_replication_slot('bench_src', 'bench_capture')" >/dev/null
run_agent bench_capture "$rows" "$capture_parts" "$work/run/capture"
sql -c "SELECT pg_drop_replication_slot('bench_capture')" >/dev/null
records=$work/records.jsonl
kcat -C -J -q -e -o beginning -b "$bootstrap" -t "$topic" >"$records"
mock_stop
# One pass: every record's key, its op header and its size (key + value + headers).
read -r got ids creates record_bytes < <(jq -r '[.key,
    (.headers as $h | ($h | index("op")) as $i | if $i == null then "" else $h[$i + 1] end),
    ((.key | utf8bytelength) + (.payload | utf8bytelength) + ([.headers[] | utf8bytelength] | add))] | @tsv' "$records" |
  awk -F'\t' '{ n++; if (!($1 in seen)) { seen[$1] = 1; k++ } if ($2 == "c") c++; b += $3 }
               END { print n + 0, k + 0, c + 0, b + 0 }')
if [ "$got" -ne "$rows" ] || [ "$ids" -ne "$rows" ] || [ "$creates" -ne "$rows" ]; then
  fail "captured $got records, $ids distinct keys, $creates with header op=c; expected $rows each"
fi
record_mb=$(awk -v b="$record_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
log "Captured $got records, $record_mb MB of keys, values and headers"

# --- measuring --------------------------------------------------------------------------------
declare -a bw bc br bl bm aw ast ac ar am ew est ec er em fw fst fc fr
contenders="baseline agent file"
[ "$exactly_once" = 0 ] || contenders="baseline agent eos file"
for i in $(seq "$repeats"); do
  for who in $contenders; do
    if [ "$who" = baseline ]; then
      mock_start "$partitions"
      run_bare "$records" "$rows" "$partitions" "$work/run/$who-$i"
      mock_cpu_now; mock_stop
      bw+=("$result_wall"); bc+=("$result_cpu"); br+=("$result_rss_kb"); bl+=("$result_loaded_kb")
      bm+=("$mock_cpu")
      log "run $i $who: ${result_wall}s, ${result_cpu}s CPU (mock cluster ${mock_cpu}s), $((result_rss_kb / 1024)) MB peak RSS ($((result_loaded_kb / 1024)) MB after loading)"
    else
      copy=bench_${who}_$i
      sql -c "SELECT pg_copy_logical_replication_slot('bench_src', '$copy')" >/dev/null
      if [ "$who" = agent ]; then
        mock_start "$partitions"
        run_agent "$copy" "$rows" "$partitions" "$work/run/$who-$i"
        mock_cpu_now; mock_stop
        aw+=("$result_wall"); ast+=("$result_stream"); ac+=("$result_cpu"); ar+=("$result_rss_kb")
        am+=("$mock_cpu")
        extra=" (mock cluster ${mock_cpu}s)"
      elif [ "$who" = eos ]; then
        mock_start "$partitions"
        run_agent "$copy" "$rows" "$partitions" "$work/run/$who-$i" eos
        mock_cpu_now; mock_stop
        ew+=("$result_wall"); est+=("$result_stream"); ec+=("$result_cpu"); er+=("$result_rss_kb")
        em+=("$mock_cpu")
        extra=" (mock cluster ${mock_cpu}s)"
      else
        extra=
        run_agent "$copy" "$rows" "$partitions" "$work/run/$who-$i" file
        fw+=("$result_wall"); fst+=("$result_stream"); fc+=("$result_cpu"); fr+=("$result_rss_kb")
      fi
      sql -c "SELECT pg_drop_replication_slot('$copy')" >/dev/null
      log "run $i $who: ${result_wall}s (${result_stream}s from the first record to the last), ${result_cpu}s CPU$extra, $((result_rss_kb / 1024)) MB peak RSS"
    fi
    rm -rf "$work/run/$who-$i"
  done
done

# --- report ------------------------------------------------------------------------------------
# Medians of the exactly_once runs, or null when they were not measured.
eos_median() { if [ $# -gt 0 ]; then median "$@"; else echo null; fi; }
report=$(jq -n --argjson rows "$rows" --argjson parts "$partitions" --argjson n "$repeats" \
  --argjson mb "$record_mb" --argjson target "$target" \
  --argjson bs "$(median "${bw[@]}")" --argjson bc "$(median "${bc[@]}")" \
  --argjson br "$(median "${br[@]}")" --argjson bl "$(median "${bl[@]}")" \
  --argjson ags "$(median "${aw[@]}")" --argjson ass "$(median "${ast[@]}")" \
  --argjson ac "$(median "${ac[@]}")" --argjson ar "$(median "${ar[@]}")" \
  --argjson bm "$(median "${bm[@]}")" --argjson am "$(median "${am[@]}")" \
  --argjson fs "$(median "${fw[@]}")" --argjson fss "$(median "${fst[@]}")" \
  --argjson fc "$(median "${fc[@]}")" --argjson fr "$(median "${fr[@]}")" \
  --argjson es "$(eos_median "${ew[@]}")" --argjson ess "$(eos_median "${est[@]}")" \
  --argjson ec "$(eos_median "${ec[@]}")" --argjson er "$(eos_median "${er[@]}")" \
  --argjson em "$(eos_median "${em[@]}")" --arg ew "${ew[*]}" \
  --arg bw "${bw[*]}" --arg aw "${aw[*]}" --arg asw "${ast[*]}" --arg fw "${fw[*]}" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --argjson nproc "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
  def r(x; d): (x * pow(10; d) | round) / pow(10; d);
  def nums: split(" ") | map(tonumber);
  ($bs / $ags) as $tr |
  {machine: {nproc: $nproc, cpu: $cpu, loadavg_at_end: $load},
   targets: {throughput_ratio_min: $target},
   workload: {name: "insert", rows: $rows, partitions: $parts, runs: $n, record_mb: $mb},
   baseline_seconds: $bs, agent_seconds: $ags, agent_stream_seconds: $ass,
   throughput_ratio: r($tr; 3), stream_throughput_ratio: r($bs / $ass; 3),
   baseline_rows_per_second: r($rows / $bs; 0), agent_rows_per_second: r($rows / $ags; 0),
   baseline_cpu_us_per_row: r($bc / $rows * 1e6; 3), agent_cpu_us_per_row: r($ac / $rows * 1e6; 3),
   baseline_peak_rss_mb: r($br / 1024; 1), baseline_loaded_rss_mb: r($bl / 1024; 1),
   agent_peak_rss_mb: r($ar / 1024; 1),
   mock_cpu_us_per_row_baseline: r($bm / $rows * 1e6; 3), mock_cpu_us_per_row_agent: r($am / $rows * 1e6; 3),
   file_agent_seconds: $fs, file_agent_stream_seconds: $fss,
   file_agent_cpu_us_per_row: r($fc / $rows * 1e6; 3), file_agent_peak_rss_mb: r($fr / 1024; 1),
   source_bound_ratio: r($bs / $fs; 3),
   exactly_once: (if $es == null then null else
     {seconds: $es, stream_seconds: $ess, throughput_ratio: r($bs / $es; 3),
      stream_throughput_ratio: r($bs / $ess; 3), vs_idempotent_agent: r($ags / $es; 3),
      stream_vs_idempotent_agent: r($ass / $ess; 3), rows_per_second: r($rows / $es; 0),
      cpu_us_per_row: r($ec / $rows * 1e6; 3), peak_rss_mb: r($er / 1024; 1),
      mock_cpu_us_per_row: r($em / $rows * 1e6; 3), seconds_all: ($ew | nums)} end),
   baseline_seconds_all: ($bw | nums), agent_seconds_all: ($aw | nums),
   agent_stream_seconds_all: ($asw | nums), file_agent_seconds_all: ($fw | nums),
   throughput_pass: ($tr >= $target)}')
[ -z "$json_out" ] || printf '%s\n' "$report" >"$json_out"

echo
echo "Tributary vs a bare librdkafka producer, medians of $repeats runs ($(nproc) cores, load average $(jq -r .machine.loadavg_at_end <<<"$report"))"
printf '%-8s %8s %6s %10s %9s %12s %9s %12s %12s %8s %9s\n' workload rows parts baseline_s agent_s \
  throughput_x stream_x base_us/row agent_us/row base_MB agent_MB
jq -r '[.workload.name, .workload.rows, .workload.partitions, .baseline_seconds, .agent_seconds,
  .throughput_ratio, (if .throughput_pass then "PASS" else "MISS" end), .stream_throughput_ratio,
  .baseline_cpu_us_per_row, .agent_cpu_us_per_row, .baseline_peak_rss_mb, .agent_peak_rss_mb] | @tsv' <<<"$report" |
while IFS=$'\t' read -r w n p bs as tr tp sr bus aus brss arss; do
  printf '%-8s %8d %6d %10.2f %9.2f %7.2f %-4s %9.2f %12.2f %12.2f %8.1f %9.1f\n' "$w" "$n" "$p" \
    "$bs" "$as" "$tr" "$tp" "$sr" "$bus" "$aus" "$brss" "$arss"
done
echo "target: throughput_x (baseline seconds / agent seconds) >= $target"
echo "agent_s: start until every row is in Kafka, including PostgreSQL decoding the transaction;"
echo "stream_x: baseline seconds / the agent's seconds from the first record in Kafka to the last"
jq -r '"CPU per row is the contender'"'"'s own; the mock cluster used \(.mock_cpu_us_per_row_baseline) us/row (baseline runs) and \(.mock_cpu_us_per_row_agent) us/row (agent runs)",
  "baseline: holds the \(.workload.record_mb) MB of records in memory (\(.baseline_loaded_rss_mb) MB RSS before producing)",
  "reference, the same agent into a file sink: \(.file_agent_seconds)s (\(.file_agent_stream_seconds)s from the first record to the last), \(.file_agent_cpu_us_per_row) us CPU/row, \(.file_agent_peak_rss_mb) MB peak RSS",
  "  baseline seconds / file-sink seconds = \(.source_bound_ratio)x: the ratio an agent whose Kafka sink cost no more than its file sink would reach",
  (.exactly_once // empty | "exactly_once: true: \(.seconds)s (\(.stream_seconds)s from the first record to the last): \(.throughput_ratio)x the baseline (stream \(.stream_throughput_ratio)x), \(.vs_idempotent_agent)x the idempotent agent (stream \(.stream_vs_idempotent_agent)x), \(.cpu_us_per_row) us CPU/row, \(.peak_rss_mb) MB peak RSS")' <<<"$report"
[ -z "$json_out" ] || echo "JSON written to $json_out"
