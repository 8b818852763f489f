#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL on a loopback port, a table, the agent streaming its
# changes into files, some inserts/updates/deletes, and the resulting events. Everything it
# starts is stopped and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
# The same configuration as scripts/test.sh's, so either command reuses the other's build.
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" >/dev/null
ninja -C build/release tributary

pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/tributary-demo-XXXXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
agent_pid=
cleanup() {
  [ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null || true
  as_pg "$pgbin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=
for candidate in $(shuf -i 20000-60000 -n 50); do
  if port_free "$candidate"; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "demo: no free port found" >&2; exit 1; }

echo "== Starting a throwaway PostgreSQL 15 on 127.0.0.1:$port"
[ "$(id -u)" -ne 0 ] || chown postgres: "$work"
as_pg "$pgbin/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start -o \
  "-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c wal_level=logical" \
  >/dev/null
psql() { command psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
psql -c "CREATE TABLE public.orders (id int PRIMARY KEY, customer text, amount numeric(10,2),
         placed_at timestamptz DEFAULT now(), tags text[])"

cat > "$work/tributary.yaml" <<YAML
state_dir: $work/state
log: { level: info }
sources:
  - name: shop
    type: postgres
    dsn: "host=127.0.0.1 port=$port dbname=postgres user=postgres"
    tables: [public.orders]
    snapshot: never
    sinks: [files]
sinks:
  - name: files
    type: file
    path: $work/out
    flush_interval_ms: 100
YAML

echo "== Starting the agent"
"$root/build/release/tributary" run --config "$work/tributary.yaml" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do
  [ "$(psql -tAc "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ] && break
  sleep 0.1
done

echo "== Changing data"
psql <<'SQL'
INSERT INTO orders (id, customer, amount, tags) VALUES (1, 'ada', 12.50, '{new}'), (2, 'bob', 7.00, NULL);
UPDATE orders SET amount = 15.25, tags = '{new,priority}' WHERE id = 1;
DELETE FROM orders WHERE id = 2;
SQL

topic="$work/out/shop.public.orders"
# Completed segments, then the open one (hidden: a leading dot).
events_of() { cat "$1"/*.jsonl "$1"/.*.jsonl.inprogress 2>/dev/null || true; }
events() { events_of "$topic"; }
for _ in $(seq 100); do
  [ "$(events | wc -l)" -ge 4 ] && break
  sleep 0.1
done
kill -TERM "$agent_pid"
wait "$agent_pid" && status=0 || status=$?
agent_pid=
echo "== Agent log"
cat "$work/agent.log"
echo "== Events in $topic (exit status $status)"
events | jq -c '{op, before, after, position: .source.position}'
echo "== One full event"
events | head -n 1 | jq .
echo "== Schema-change events in $work/out/shop.schema-changes (docs/schemas.md)"
events_of "$work/out/shop.schema-changes" |
  jq -c '{table, version, previous_version, compatible, columns: [.columns[] | "\(.name) \(.canonical_type)"]}'
echo "== Checkpoint"
cat "$work/state/shop/checkpoint.json"; echo
