#!/usr/bin/env bash
# The realtime benchmark: builds underhood, starts it on a fresh data
# directory on loopback, and for each N given (default 1000) runs N SSE
# subscribers on posts/* against a steady write rate, printing one line of
# a Markdown table each. The open-files limit is raised here, for the
# server and the client, not in the server.
#
#   bench/realtime/run.sh 1000 10000          # RATE=100 DURATION=20s by default
#   RATE=50 DURATION=30s bench/realtime/run.sh 5000
#   PROFILE=/tmp/rt bench/realtime/run.sh 10000   # CPU profiles of the write
#       phase: /tmp/rt.n10000.server.pprof and /tmp/rt.n10000.client.pprof
#   SERVER=/tmp/old/underhood bench/realtime/run.sh 10000   # another build,
#       measured with this client
#   READERS=goroutines bench/realtime/run.sh 10000   # a goroutine per stream
#       in the client instead of epoll
#   TRANSPORT=ws bench/realtime/run.sh 10000   # the WebSocket endpoint
#       instead of SSE
#   FLOOR=1 bench/realtime/run.sh 10000   # first, what the kernel alone
#       takes to write a round to N loopback streams (rtbench -floor), on
#       stderr
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-100}
DURATION=${DURATION:-20s}
RULE=${RULE:-public = true}
[ $# -gt 0 ] || set -- 1000

ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536
echo "open files limit: $(ulimit -n)" >&2

tmp=$(mktemp -d)
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${SERVER:-}" ]; then
	cp "$SERVER" "$tmp/underhood"
else
	go build -o "$tmp/underhood" ./cmd/underhood
fi
go build -o "$tmp/rtbench" ./bench/realtime

echo "| run | subscribers | writes/s asked | writes/s done | latency p50 (from request / after answer) | p99 (same) | max | write p50 | events received | streams lost | CPU cores used (server / client / rest of machine) | CPU per 1000 events (server / client) | load avg | server RSS per idle connection | RSS idle | RSS peak | connect time |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in "$@"; do
	[ -z "${FLOOR:-}" ] || "$tmp/rtbench" -floor -n "$n" >&2
	rm -rf "$tmp/data"
	"$tmp/underhood" superuser upsert bench@example.com benchbench123 --dir "$tmp/data" >/dev/null
	"$tmp/underhood" serve --http 127.0.0.1:0 --dir "$tmp/data" >"$tmp/out" 2>"$tmp/log" &
	server_pid=$!
	url=
	for _ in $(seq 100); do
		url=$(sed -n 's/^Server started at \(http:[^ ]*\).*/\1/p' "$tmp/out")
		[ -n "$url" ] && break
		sleep 0.1
	done
	[ -n "$url" ] || { echo "server did not start" >&2; cat "$tmp/log" >&2; exit 1; }
	"$tmp/rtbench" -url "$url" -pid "$server_pid" -n "$n" -rate "$RATE" -duration "$DURATION" -rule "$RULE" -label "N=$n" ${PROFILE:+-profile "$PROFILE.n$n"} ${READERS:+-readers "$READERS"} ${TRANSPORT:+-transport "$TRANSPORT"}
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
	if grep -q "level=ERROR" "$tmp/log"; then
		echo "server errors:" >&2
		grep "level=ERROR" "$tmp/log" | sort | uniq -c | sort -rn | head -5 >&2
	fi
done
