#!/usr/bin/env bash
# Benchmark: PostgreSQL logical replication into files, the agent against pg_recvlogical.
#
#   tests/bench/pg_to_file.sh [--json FILE]
#
# Starts a throwaway PostgreSQL 15 (wal_level=logical, otherwise default durability) on a
# free loopback port, generates two workloads, and for each one decodes the same WAL with
#   (a) the baseline: pg_recvlogical, pgoutput proto_version 1, raw messages into one file;
#   (b) the agent: `tributary run`, file sink, snapshot: never;
# one after the other, each from its own copy of the workload's slot, BENCH_REPEATS times
# (default 3), and reports medians. Every figure is a ratio to the baseline run on the same
# data in the same run, plus peak RSS. Exits 0 whether targets are met or not; non-zero only
# when something failed.
#
# Environment:
#   TRIBUTARY_BIN        agent binary to use (default: build it into build/bench)
#   BENCH_INSERT_ROWS    workload 1: rows inserted by one transaction (default 1000000)
#   BENCH_UPDATE_TXNS    workload 2: single-row UPDATE transactions (default 200000)
#   BENCH_REPEATS        runs per contender and workload (default 3)
#   BENCH_TIMEOUT        seconds an agent run may take to deliver every row (default 600)
set -Eeuo pipefail
trap 'echo "pg_to_file: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/../.."

bench_name=pg_to_file
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
parse_json_arg "$@"

insert_rows=${BENCH_INSERT_ROWS:-1000000}
update_txns=${BENCH_UPDATE_TXNS:-200000}
repeats=${BENCH_REPEATS:-3}
timeout_s=${BENCH_TIMEOUT:-600}
[ "$update_txns" -le "$insert_rows" ] || { echo "pg_to_file: BENCH_UPDATE_TXNS > BENCH_INSERT_ROWS" >&2; exit 2; }

# --- tools and the agent --------------------------------------------------------------------
need_deps=
for tool in /usr/lib/postgresql/15/bin/pg_ctl /usr/bin/pg_recvlogical /usr/bin/time /usr/bin/psql /usr/bin/jq; do
  [ -x "$tool" ] || need_deps=1
done
[ -z "$need_deps" ] || bash scripts/install-deps.sh

find_agent

# --- throwaway PostgreSQL ------------------------------------------------------------------
work=$(mktemp -d /tmp/tributary-bench-XXXXXX)
chmod 755 "$work"
child_pid=   # /usr/bin/time wrapping the contender currently running
cleanup() {
  local status=$?
  trap - ERR
  stop_child
  stop_pg
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_pg

sql -c "CREATE TABLE public.bench (id int PRIMARY KEY, qty int, note text)" \
    -c "CREATE PUBLICATION bench_pub FOR TABLE public.bench"
relid=$(sql -c "SELECT 'public.bench'::regclass::oid")

# --- measuring -------------------------------------------------------------------------------

# Reads "elapsed user sys maxrss_kb" from a GNU time output file (last line).
time_fields() { tail -n 1 "$1"; }

# Sets result_wall, result_cpu, result_rss_kb.
run_baseline() {  # slot endpos expected out_dir message_type
  local slot=$1 endpos=$2 expected=$3 dir=$4 msg=$5 t0 t1 status=0 got
  mkdir -p "$dir"
  t0=$(now_ns)
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" \
    pg_recvlogical -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot="$slot" --start \
      -o proto_version=1 -o publication_names=bench_pub -f "$dir/out.bin" \
      --endpos="$endpos" --no-loop 2>"$dir/stderr" &
  child_pid=$!
  wait "$child_pid" || status=$?
  t1=$(now_ns)
  child_pid=
  [ "$status" -eq 0 ] || { cat "$dir/stderr" >&2; fail "pg_recvlogical exited with status $status"; }
  # Each row change is a pgoutput message: 'I' (or 'U'), the relation's OID, 'N' (new tuple).
  got=$(perl -0777 -ne 'BEGIN { $m = shift; $p = pack("N", shift) }
                        my $c = () = /\Q$m$p\EN/g; print "$c\n"' "$msg" "$relid" "$dir/out.bin")
  [ "$got" -eq "$expected" ] || fail "pg_recvlogical wrote $got row messages, expected $expected"
  read -r _ user sys rss < <(time_fields "$dir/time")
  result_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  result_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
  result_rss_kb=$rss
}

# The masking variant: a handful of rules (one of which matches a column of the table) and
# detection in mask mode, which scans the unruled text column `note` on every row.
masking_yaml() {
  cat <<YAML
masking:
  key: "bench-masking-key-0123456789"
  detect: mask
  rules:
    - { columns: "*.*.email", action: hash }
    - { columns: "*.*.ssn", action: redact }
    - { columns: "*.*.phone", action: keep_last, n: 4 }
    - { columns: "public.bench.qty", action: keep_last, n: 2 }
YAML
}

run_agent() {  # slot expected out_dir expected_op [masked]
  local slot=$1 expected=$2 dir=$3 op=$4 masked=${5:-} t0 t_done='' n=0 agent_pid status=0 deadline
  mkdir -p "$dir"
  { [ -z "$masked" ] || masking_yaml; } >"$dir/masking.yaml"
  cat - "$dir/masking.yaml" >"$dir/tributary.yaml" <<YAML
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
    sinks: [files]
sinks:
  - name: files
    type: file
    path: $dir/out
YAML
  local topic=$dir/out/bench.public.bench
  count_reset
  t0=$(now_ns)
  deadline=$(( t0 + timeout_s * 1000000000 ))
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" \
    "$agent_bin" run --config "$dir/tributary.yaml" 2>"$dir/agent.log" &
  child_pid=$!
  while :; do
    count_lines "$topic"; n=$lines_now
    if [ "$n" -ge "$expected" ]; then t_done=$(now_ns); break; fi
    if ! kill -0 "$child_pid" 2>/dev/null; then
      tail -n 30 "$dir/agent.log" >&2
      fail "the agent exited before delivering every row ($n of $expected lines)"
    fi
    if [ "$(now_ns)" -gt "$deadline" ]; then
      tail -n 30 "$dir/agent.log" >&2
      fail "the agent delivered $n of $expected lines in ${timeout_s}s"
    fi
    sleep 0.05
  done
  agent_pid=$(pgrep -P "$child_pid" | head -n 1) || true
  [ -n "$agent_pid" ] || fail "cannot find the agent process under /usr/bin/time (pid $child_pid)"
  kill -TERM "$agent_pid"
  wait "$child_pid" || status=$?
  child_pid=
  [ "$status" -eq 0 ] || { tail -n 30 "$dir/agent.log" >&2; fail "the agent exited with status $status after SIGTERM"; }
  # Check the files as a whole, after the timing: every row exactly once, with the right op.
  local segments lines ids ops
  shopt -s nullglob
  segments=("$topic"/*.jsonl "$topic"/.*.jsonl.inprogress)
  shopt -u nullglob
  lines=$(cat "${segments[@]}" | wc -l)
  ids=$(cat "${segments[@]}" | grep -o '"after":{"id":[0-9]*' | sort -u | wc -l)
  ops=$(cat "${segments[@]}" | grep -c "\"op\":\"$op\"" || true)
  if [ "$lines" -ne "$expected" ] || [ "$ids" -ne "$expected" ] || [ "$ops" -ne "$expected" ]; then
    fail "the agent wrote $lines lines, $ids distinct ids, $ops with op \"$op\"; expected $expected each"
  fi
  read -r _ user sys rss < <(time_fields "$dir/time")
  result_wall=$(awk -v a="$t0" -v b="$t_done" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  result_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
  result_rss_kb=$rss
}


rows_json=()
measure() {  # name slot endpos rows envelope_op pgoutput_message_type [with_masked_variant]
  local name=$1 slot=$2 endpos=$3 rows=$4 op=$5 msg=$6 variant=${7:-} i copy
  local -a bw bc br aw ac ar mw mc mr
  local contenders="baseline agent"
  [ -z "$variant" ] || contenders="baseline agent masked"
  for i in $(seq "$repeats"); do
    for who in $contenders; do
      copy=${slot}_${who}_$i
      sql -c "SELECT pg_copy_logical_replication_slot('$slot', '$copy')" >/dev/null
      if [ "$who" = baseline ]; then
        run_baseline "$copy" "$endpos" "$rows" "$work/run/$name-$who-$i" "$msg"
        bw+=("$result_wall"); bc+=("$result_cpu"); br+=("$result_rss_kb")
      elif [ "$who" = agent ]; then
        run_agent "$copy" "$rows" "$work/run/$name-$who-$i" "$op"
        aw+=("$result_wall"); ac+=("$result_cpu"); ar+=("$result_rss_kb")
      else
        run_agent "$copy" "$rows" "$work/run/$name-$who-$i" "$op" masked
        mw+=("$result_wall"); mc+=("$result_cpu"); mr+=("$result_rss_kb")
      fi
      log "$name run $i $who: ${result_wall}s wall, ${result_cpu}s CPU, $((result_rss_kb / 1024)) MB peak RSS"
      rm -rf "$work/run/$name-$who-$i"
      sql -c "SELECT pg_drop_replication_slot('$copy')" >/dev/null
    done
  done
  local b_s a_s b_cpu a_cpu b_rss a_rss
  b_s=$(median "${bw[@]}"); a_s=$(median "${aw[@]}")
  b_cpu=$(median "${bc[@]}"); a_cpu=$(median "${ac[@]}")
  b_rss=$(median "${br[@]}"); a_rss=$(median "${ar[@]}")
  local m_s=null m_cpu=null m_rss=null
  if [ -n "$variant" ]; then
    m_s=$(median "${mw[@]}"); m_cpu=$(median "${mc[@]}"); m_rss=$(median "${mr[@]}")
  fi
  rows_json+=("$(jq -n --arg w "$name" --argjson rows "$rows" --argjson bs "$b_s" --argjson ags "$a_s" \
    --argjson bc "$b_cpu" --argjson ac "$a_cpu" --argjson br "$b_rss" --argjson ar "$a_rss" \
    --argjson n "$repeats" --arg bw "${bw[*]}" --arg aw "${aw[*]}" \
    --argjson ms "$m_s" --argjson mc "$m_cpu" --argjson mr "$m_rss" '
    def r(x; d): (x * pow(10; d) | round) / pow(10; d);
    ($bc / $rows * 1e6) as $bus | ($ac / $rows * 1e6) as $aus | ($bs / $ags) as $tr |
    {workload: $w, rows: $rows, runs: $n,
     baseline_seconds: $bs, agent_seconds: $ags, throughput_ratio: r($tr; 3),
     baseline_cpu_us_per_row: r($bus; 3), agent_cpu_us_per_row: r($aus; 3),
     cpu_ratio: r($aus / $bus; 3),
     baseline_peak_rss_mb: r($br / 1024; 1), agent_peak_rss_mb: r($ar / 1024; 1),
     baseline_seconds_all: ($bw | split(" ") | map(tonumber)),
     agent_seconds_all: ($aw | split(" ") | map(tonumber)),
     throughput_pass: ($tr >= 0.95), cpu_pass: ($aus / $bus <= 0.5),
     rss_pass: ($ar / 1024 <= 32)}
    + (if $mc == null then {} else
        {masked_seconds: $ms, masked_cpu_us_per_row: r($mc / $rows * 1e6; 3),
         masked_peak_rss_mb: r($mr / 1024; 1), masking_cpu_overhead: r($mc / $ac - 1; 3),
         masking_pass: ($mc / $ac - 1 <= 0.20)} end)')")
}

# The WAL position after a workload: pg_recvlogical's --endpos.
wal_end() { sql -c "SELECT pg_current_wal_lsn()"; }

# --- workload 1: one transaction inserting rows ------------------------------------------------
sql -c "SELECT pg_create_logical_replication_slot('bench_src', 'pgoutput')" >/dev/null
log "Workload 1: one transaction inserting $insert_rows rows"
sql -c "INSERT INTO public.bench SELECT g, g % 1000, md5(g::text) || lpad(g::text, 8, '0')
        FROM generate_series(1, $insert_rows) g"
end1=$(wal_end)
log "Workload 1 WAL ends at $end1"
measure insert bench_src "$end1" "$insert_rows" c I masked
sql -c "SELECT pg_drop_replication_slot('bench_src')" >/dev/null

# --- workload 2: single-row UPDATE transactions ------------------------------------------------
sql -c "VACUUM ANALYZE public.bench" -c "CHECKPOINT"
sql -c "SELECT pg_create_logical_replication_slot('bench_src_upd', 'pgoutput')" >/dev/null
log "Workload 2: $update_txns single-row UPDATE transactions"
sql -c "DO \$\$ BEGIN
          FOR i IN 1..$update_txns LOOP
            UPDATE public.bench SET qty = qty + 1 WHERE id = i;
            COMMIT;
          END LOOP;
        END \$\$"
end2=$(wal_end)
log "Workload 2 WAL ends at $end2"
measure update bench_src_upd "$end2" "$update_txns" u U

# --- report ------------------------------------------------------------------------------------
report=$(printf '%s\n' "${rows_json[@]}" | jq -s \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --argjson nproc "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{machine: {nproc: $nproc, cpu: $cpu, loadavg_at_end: $load},
    targets: {throughput_ratio_min: 0.95, cpu_ratio_max: 0.5, agent_peak_rss_mb_max: 32},
    workloads: .}')
[ -z "$json_out" ] || printf '%s\n' "$report" >"$json_out"

pf() { if [ "$1" = true ]; then echo PASS; else echo MISS; fi; }
echo
echo "Tributary vs pg_recvlogical, medians of $repeats runs ($(nproc) cores, load average $(jq -r .machine.loadavg_at_end <<<"$report"))"
printf '%-8s %8s %10s %9s %12s %12s %12s %12s %9s %13s\n' workload rows baseline_s agent_s \
  throughput_x base_us/row agent_us/row cpu_ratio_x base_MB agent_MB
jq -r '.workloads[] | [.workload, .rows, .baseline_seconds, .agent_seconds, .throughput_ratio,
  .baseline_cpu_us_per_row, .agent_cpu_us_per_row, .cpu_ratio, .baseline_peak_rss_mb,
  .agent_peak_rss_mb, .throughput_pass, .cpu_pass, .rss_pass] | @tsv' <<<"$report" |
while IFS=$'\t' read -r w rows bs as tr bus aus cr brss arss tp cp rp; do
  printf '%-8s %8d %10.2f %9.2f %7.2f %-4s %12.2f %12.2f %7.2f %-4s %9.1f %8.1f %-4s\n' "$w" "$rows" \
    "$bs" "$as" "$tr" "$(pf "$tp")" "$bus" "$aus" "$cr" "$(pf "$cp")" "$brss" "$arss" "$(pf "$rp")"
done
echo "targets: throughput_x >= 0.95, cpu_ratio_x (agent/baseline CPU per row) <= 0.5, agent peak RSS <= 32 MB"
echo "agent seconds: start until every row is in the files; agent CPU includes start-up and shutdown"
jq -r '.workloads[] | select(.masking_cpu_overhead != null) |
  "masking variant (\(.workload)): detect=mask + 4 rules, \(.masked_cpu_us_per_row) us CPU/row, " +
  "+\(.masking_cpu_overhead * 100 | round)% CPU per row over the plain agent " +
  "(target <= +20%: \(if .masking_pass then "PASS" else "MISS" end)), " +
  "\(.masked_peak_rss_mb) MB peak RSS"' <<<"$report"
[ -z "$json_out" ] || echo "JSON written to $json_out"
