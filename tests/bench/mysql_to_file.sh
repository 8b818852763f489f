#!/usr/bin/env bash
# Benchmark: MariaDB binlog into files, the agent against mysqlbinlog.
#
#   tests/bench/mysql_to_file.sh
#
# Starts a throwaway MariaDB 10.11 (log_bin, ROW, FULL image and metadata) on a free loopback
# port and writes two workloads into one binlog, one after the other: (1) one transaction
# inserting BENCH_INSERT_ROWS rows; (2) BENCH_UPDATE_TXNS single-row UPDATE transactions. Right
# after each is written (so the binlog ends where it ends), the same binlog range is read by
#   (a) the baseline: mysqlbinlog --read-from-remote-server -v --base64-output=decode-rows,
#       into one file;
#   (b) the agent: `tributary run`, file sink, started from a checkpoint at the range's start,
#       until its checkpoint reaches the range's end (every row durable in the files).
# Reports wall time as a ratio (baseline / agent: above 1 means the agent is faster), agent CPU
# per row and peak RSS. Exits 0 whether targets are met or not; non-zero only on failure.
#
# Environment:
#   TRIBUTARY_BIN        agent binary to use (default: build it into build/bench)
#   BENCH_INSERT_ROWS    workload 1 rows (default 1000000)
#   BENCH_UPDATE_TXNS    workload 2 transactions (default 200000)
#   BENCH_TIMEOUT        seconds an agent run may take (default 600)
set -Eeuo pipefail
trap 'echo "mysql_to_file: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/../.."

insert_rows=${BENCH_INSERT_ROWS:-1000000}
update_txns=${BENCH_UPDATE_TXNS:-200000}
timeout_s=${BENCH_TIMEOUT:-600}
[ "$update_txns" -le "$insert_rows" ] || { echo "mysql_to_file: BENCH_UPDATE_TXNS > BENCH_INSERT_ROWS" >&2; exit 2; }

bench_name=mysql_to_file
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh

for tool in /usr/sbin/mariadbd /usr/bin/mariadb-install-db /usr/bin/mariadb /usr/bin/mysqlbinlog /usr/bin/time; do
  [ -x "$tool" ] || bash scripts/install-deps.sh
done
find_agent

work=$(mktemp -d /tmp/tributary-bench-XXXXXX)
chmod 755 "$work"
server_pid=
agent_pid=
cleanup() {
  local status=$?
  trap - ERR
  [ -z "$agent_pid" ] || { kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; }
  [ -z "$server_pid" ] || { kill -9 "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

find_free_port

user_opt=
[ "$(id -u)" -ne 0 ] || { chown mysql: "$work"; user_opt=--user=mysql; }
log "Starting a throwaway MariaDB on 127.0.0.1:$port ($work)"
mariadb-install-db --no-defaults $user_opt --datadir="$work/data" --auth-root-authentication-method=socket \
  --skip-test-db >/dev/null 2>&1 || fail "mariadb-install-db"
/usr/sbin/mariadbd --no-defaults $user_opt --datadir="$work/data" --port="$port" --bind-address=127.0.0.1 \
  --socket="$work/mysqld.sock" --pid-file="$work/mysqld.pid" --log-error="$work/error.log" \
  --log-bin="$work/data/binlog" --server-id=1 --binlog-format=ROW --binlog-row-image=FULL \
  --binlog-row-metadata=FULL --max-binlog-size=1073741824 --innodb-buffer-pool-size=512M \
  --innodb-log-file-size=512M --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
  --max-allowed-packet=256M --skip-name-resolve >/dev/null 2>&1 &
server_pid=$!
sql() { mariadb --socket="$work/mysqld.sock" -uroot -N -B "$@"; }
for _ in $(seq 1 300); do sql -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
sql -e "SELECT 1" >/dev/null || { cat "$work/error.log" >&2; fail "MariaDB did not start"; }
sql -e "CREATE USER cdc@'%' IDENTIFIED BY 'cdc-pass';
  GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO cdc@'%';
  CREATE DATABASE bench; CREATE TABLE bench.bench (id INT PRIMARY KEY, qty INT, note VARCHAR(64));"

binlog_pos() { sql -e "SHOW MASTER STATUS" | cut -f1,2; }


# Runs mysqlbinlog over [start, end); prints "elapsed user sys maxrss_kb rows".
run_baseline() {
  local start=$1 end=$2
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.base" mysqlbinlog --read-from-remote-server \
    --host=127.0.0.1 --port="$port" --user=cdc --password=cdc-pass -v --base64-output=decode-rows \
    --start-position="$start" --stop-position="$end" "$file1" > "$work/baseline.out" 2>/dev/null
  # Rows the baseline decoded: each starts with "### INSERT INTO", "### UPDATE", "### DELETE FROM".
  echo "$(cat "$work/time.base") $(grep -c -E '^### (INSERT INTO|UPDATE|DELETE FROM) ' "$work/baseline.out" || true)"
}

# Runs the agent from a checkpoint at `start` until its checkpoint reaches `end`, registered as
# replica `server_id`; prints "elapsed user sys maxrss_kb rows". Each run has its own id: a
# replica that reconnects with the id of one that just left waits while the server kills the
# old dump thread (which lingers until its next heartbeat finds the connection gone). That held
# the second run's first event back about 100 ms, a restart's cost and not the stream's.
run_agent() {
  local start=$1 end=$2 name=$3 server_id=$4
  rm -rf "$work/state" "$work/out"
  mkdir -p "$work/state/bench"
  printf '{"source":"bench","position":"%s:%s:"}\n' "$file1" "$start" > "$work/state/bench/checkpoint.json"
  cat > "$work/agent.yaml" <<YAML
state_dir: $work/state
log: { level: info }
sources:
  - name: bench
    type: mysql
    dsn: "mysql://cdc:cdc-pass@127.0.0.1:$port"
    tables: ["bench.bench"]
    server_id: $server_id
    snapshot: never
    sinks: [files]
sinks:
  - name: files
    type: file
    path: $work/out
YAML
  chmod 600 "$work/agent.yaml"
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.agent" "$agent_bin" run --config "$work/agent.yaml" \
    2> "$work/agent-$name.log" &
  agent_pid=$!
  local deadline=$(( SECONDS + timeout_s ))
  # Until the checkpoint reaches `end` or beyond (it lands on a transaction's end). Checked with
  # bash builtins every 20 ms, as pg_snapshot.sh does: a `sed` and a `date` every 50 ms took CPU
  # from the agent, and the 50 ms steps added 25 ms to its time on average.
  reached_end() {
    local text
    [ -f "$work/state/bench/checkpoint.json" ] || return 1
    read -r text < "$work/state/bench/checkpoint.json" || true
    [[ $text =~ \"position\":\"[^:]*:([0-9]+): ]] && (( BASH_REMATCH[1] >= end ))
  }
  until reached_end; do
    kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent-$name.log" >&2; fail "agent exited"; }
    (( SECONDS < deadline )) || fail "agent did not catch up in ${timeout_s}s"
    nap 0.02
  done
  t1=$(date +%s%N)
  kill -TERM "$(pgrep -P "$agent_pid")" 2>/dev/null || true
  wait "$agent_pid" || true
  agent_pid=
  local rows
  rows=$( (cat "$work/out/bench.bench.bench"/*.jsonl "$work/out/bench.bench.bench"/.*.jsonl.inprogress 2>/dev/null || true) | wc -l)
  read -r _ user sys rss < "$work/time.agent"
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $user $sys $rss $rows"
}

report() {
  local name=$1 rows=$2 base=$3 agent=$4
  read -r b_el b_us b_sy b_rss b_rows <<< "$base"
  [ "$b_rows" -eq "$rows" ] || fail "$name: mysqlbinlog decoded $b_rows rows, expected $rows"
  read -r a_el a_us a_sy a_rss a_rows <<< "$agent"
  [ "$a_rows" -eq "$rows" ] || fail "$name: the agent wrote $a_rows events, expected $rows"
  printf '%-28s baseline %7.2fs  agent %7.2fs  ratio %5.2fx  agent CPU %6.2f us/row  agent peak RSS %6d KiB  (mysqlbinlog RSS %d KiB)\n' \
    "$name" "$b_el" "$a_el" "$(awk -v b="$b_el" -v a="$a_el" 'BEGIN { printf "%.3f", b / a }')" \
    "$(awk -v u="$a_us" -v s="$a_sy" -v n="$rows" 'BEGIN { printf "%.3f", (u + s) * 1e6 / n }')" \
    "$a_rss" "$b_rss"
}

# Each workload is read right after it is written, so the binlog ends where its range ends for
# the agent too: mysqlbinlog stops at --stop-position, and the agent, which reads on, would
# otherwise spend part of its timed run on the next workload.
log "Workload 1: one transaction inserting $insert_rows rows"
read -r file1 start1 < <(binlog_pos)
sql bench -e "INSERT INTO bench.bench SELECT seq, seq, CONCAT('note ', seq) FROM seq_1_to_${insert_rows}"
read -r _ end1 < <(binlog_pos)
log "Reading workload 1"
base1=$(run_baseline "$start1" "$end1")
agent1=$(run_agent "$start1" "$end1" insert 4242)
log "Workload 2: $update_txns single-row UPDATE transactions"
seq 1 "$update_txns" | awk '{print "UPDATE bench.bench SET qty = qty + 1 WHERE id = " $1 ";"}' > "$work/updates.sql"
read -r _ start2 < <(binlog_pos)
sql bench < "$work/updates.sql"
read -r file_end2 end2 < <(binlog_pos)
[ "$file1" = "$file_end2" ] || fail "the binlog rotated during the workloads"
rm -f "$work/updates.sql"
log "Reading workload 2"
base2=$(run_baseline "$start2" "$end2")
agent2=$(run_agent "$start2" "$end2" update 4243)
echo "MariaDB -> file, $(mariadbd --version | awk '{print $3}')"
report "1 txn x $insert_rows inserts" "$insert_rows" "$base1" "$agent1"
report "$update_txns update txns" "$update_txns" "$base2" "$agent2"
