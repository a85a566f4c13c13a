#!/usr/bin/env bash
# Fail-over time on a large journal (issue 15; docs/BENCHMARKS.md, "Fail-over
# with a standby that follows the table"): the journal of data directory BIGDIR
# (from `cargo bench --bench startup -- --keep BIGDIR`) is copied into a
# database of a throwaway PostgreSQL cluster, a writer and a `--standby` are
# started on it, the writer is SIGKILLed under a light load (one curl loop),
# and the standby's first acknowledged write is timed.
#
#   benches/failover.sh target/release/ccnode BIGDIR
#
# Needs Debian's postgresql package, curl, bc and python3; as root the
# cluster runs as the postgres user. PORT (55432) and the ports 18181/18182
# must be free.
set -euo pipefail
CCNODE=$1; BIG=$2; PORT=${PORT:-55432}
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
W=$(mktemp -d /tmp/failover.XXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chmod 755 "$W"; chown postgres "$W"; fi
as_pg "$BIN/initdb" -D "$W/pg" -U postgres -A trust --no-sync >/dev/null
as_pg "$BIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w \
  -o "-p $PORT -k $W -c listen_addresses=127.0.0.1 -c shared_buffers=256MB" start >/dev/null
trap 'as_pg "$BIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null 2>&1; kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE fo"
URL="postgres://postgres@127.0.0.1:$PORT/fo"
now() { date +%s.%N; }
t=$(now); "$CCNODE" migrate-store --from "file:$BIG" --to "$URL" 2>/dev/null | tail -1
echo "migrate-store: $(echo "$(now) - $t" | bc) s"
mkdir -m 700 "$W/a" "$W/b"; cp "$BIG/node.key" "$W/a/"; cp "$BIG/node.key" "$W/b/"
export CCNODE_ADMIN_KEY=bench-admin CCNODE_LOG=warn
serve() { # DIR PORT [FLAGS…]: starts ccnode serve and waits for its listening line
  local dir=$1 port=$2; shift 2
  local t; t=$(now)
  : > "$W/$port.out"
  CCNODE_LOG=info "$CCNODE" serve --data "$dir" --name big --store "$URL" --listen "127.0.0.1:$port" "$@" \
    > "$W/$port.out" 2> "$W/$port.err" &
  echo $! > "$W/$port.pid"
  until grep -q listening "$W/$port.out"; do sleep 0.05; done
  echo "serve $* on $port: $(echo "$(now) - $t" | bc) s to listening"
}
admin=(-H 'cc-user: admin' -H 'cc-auth: bench-admin' -H 'content-type: application/json')
serve "$W/a" 18181
A=http://127.0.0.1:18181 B=http://127.0.0.1:18182
for m in fa fb; do
  curl -s -o /dev/null "${admin[@]}" "$A/admin/accounts" -d "{\"id\":\"$m\",\"key\":\"$m-key\",\"min\":-1000000,\"max\":1000000}"
done
serve "$W/b" 18182 --standby
pay() {
  curl -s -o /dev/null -w "%{http_code}" -H 'cc-user: fa' -H 'cc-auth: fa-key' -H 'content-type: application/json' \
    "$1/transaction" -d '{"payer":"fa","payee":"fb","quant":1,"type":"pay"}'
}
( while true; do pay $A >/dev/null || true; done ) & loader=$!
sleep 2
kill -9 "$(cat "$W/18181.pid")"; killed=$(now)
kill $loader 2>/dev/null || true
until [ "$(pay $B)" = 201 ]; do :; done
took=$(echo "($(now) - $killed) * 1000" | bc | cut -d. -f1)
echo "SIGKILL at $(date -u +%H:%M:%S.%N -d "@$killed"); the standby's log:"
grep -E "writer lease|writing the journal" "$W/18182.err" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-120
echo "fail-over: the standby acknowledged its first write $took ms after the writer's SIGKILL"
