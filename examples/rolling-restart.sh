#!/usr/bin/env bash
# Checks that a rolling restart loses nothing: starts two gateways on one
# PostgreSQL database, sends them steady synchronous and queued load through
# a client that moves on to the other gateway on a 503 or a refused
# connection (as a load balancer does), restarts them one after the other
# with SIGTERM while long queued executions run, waits for every queued
# execution to end and prints what happened. Exits 1 if an execution was
# lost, failed, or ran to a result twice.
#
#   make build
#   examples/rolling-restart.sh 'postgres://USER@HOST/DB?sslmode=disable'
#
# The database should be one for this check: the gateways create their
# tables in it. Needs curl and jq. Settings (environment):
#   GATEWAY_BIN     the gateway binary (bin/gateway)
#   PORTS           the two gateways' ports ("18081 18082")
#   GRACE           their http.shutdown_grace (5s)
#   LONG_MS         how long the long queued executions run (30000: past
#                   GRACE; at most execution.max_timeout less 10 s)
#   ROUNDS          how many times each gateway is restarted (1)
#   RESTART_CMD     a command to run instead of the built-in restart, given
#                   the gateway's number (0 or 1): for gateways you run
set -euo pipefail

url=${1:?usage: $0 POSTGRES_URL}
bin=${GATEWAY_BIN:-bin/gateway}
read -r -a ports <<<"${PORTS:-18081 18082}"
grace=${GRACE:-5s}
long_ms=${LONG_MS:-30000}
rounds=${ROUNDS:-1}
workers=4 # storage.workers of each gateway

dir=$(mktemp -d)
pids=()
cleanup() {
	touch "$dir/stop"
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${KEEP:-}" ] && echo "logs kept in $dir" >&2 || rm -rf "$dir"
}
trap cleanup EXIT

base() { echo "http://127.0.0.1:${ports[$1]}"; }

# start N starts gateway N and waits until it is ready.
start() {
	GATEWAY_STORAGE_URL=$url GATEWAY_STORAGE_WORKERS=$workers \
		GATEWAY_HTTP_SHUTDOWN_GRACE=$grace GATEWAY_HTTP_SHUTDOWN_DELAY=1s \
		"$bin" serve --listen "127.0.0.1:${ports[$1]}" >>"$dir/gateway$1.log" 2>&1 &
	pids[$1]=$!
	for _ in $(seq 600); do
		curl -fsS "$(base "$1")/readyz" >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "gateway $1 did not become ready; its log: $dir/gateway$1.log" >&2
	exit 1
}

# restart N stops gateway N with SIGTERM, waits for it to exit, starts it.
restart() {
	if [ -n "${RESTART_CMD:-}" ]; then
		$RESTART_CMD "$1"
		return
	fi
	local began=$SECONDS
	kill -TERM "${pids[$1]}"
	wait "${pids[$1]}" || echo "gateway $1 exited with $?" >&2
	echo "gateway $1 stopped in $((SECONDS - began)) s" >&2
	start "$1"
}

# guest MS [TAG] is the code of a guest that logs, waits MS and answers.
guest() {
	printf 'export default { async fetch() { console.log("run %s"); await new Promise((r) => setTimeout(r, %d)); return new Response("done"); } }' "${2:-$RANDOM}" "$1"
}

# send PATH BODY posts BODY to PATH on one gateway after the other until one
# answers other than 503 or a refused connection; prints "STATUS BODY".
n=0
send() {
	local code answer="$dir/answer.$BASHPID"
	for _ in $(seq 3000); do
		n=$((n + 1))
		code=$(curl -s -o "$answer" -w '%{http_code}' -H 'Content-Type: application/json' \
			--data-binary "$2" "$(base $((n % 2)))$1" || true)
		if [ "$code" != 000 ] && [ "$code" != 503 ]; then
			echo "$code $(cat "$answer")"
			return
		fi
		sleep 0.02
	done
	echo "000 no gateway took it"
}

# submit MS queues a guest that runs MS and records its id.
submit() {
	local answer
	answer=$(send /executions "$(jq -nc --arg code "$(guest "$1")" --argjson t $(($1 + 10000)) '{code: $code, timeoutMs: $t}')")
	if [ "${answer%% *}" = 202 ]; then
		jq -r .id <<<"${answer#* }" >>"$dir/queued"
	else
		echo "refused: $answer" >>"$dir/queued-refused"
	fi
}

# The load: a queued execution every 100 ms, and two clients running
# synchronous ones back to back.
(while [ ! -e "$dir/stop" ]; do submit 100; sleep 0.1; done) &
for c in 1 2; do
	(while [ ! -e "$dir/stop" ]; do
		answer=$(send /execute "$(jq -nc --arg code "$(guest 20 "$c")" '{code: $code}')")
		if [ "${answer%% *}" = 200 ]; then
			jq -r 'if .success then "success" else (.error.code // "failed") end' <<<"${answer#* }"
		else
			echo "http ${answer%% *}"
		fi >>"$dir/sync"
	done) &
done

start 0
start 1
sleep 2
for _ in $(seq "$rounds"); do
	for g in 0 1; do
		# Long queued executions on every worker: some outlast the grace.
		for _ in $(seq $((workers * 2))); do submit "$long_ms"; done
		sleep 2
		restart "$g"
	done
done
sleep 2
touch "$dir/stop"
sleep 1

# Every queued execution must end, once, successfully.
declare -A outcome
restarts=0 twice=0
while read -r id; do
	state=
	for _ in $(seq 600); do
		state=$(curl -fsS "$(base 0)/executions/$id" | jq -r 'if .status == "finished" then (if .result.success then "success" else "failed " + (.result.error.code // "") end) elif .status == "cancelled" then "cancelled" else "" end')
		[ -n "$state" ] && break
		sleep 0.2
	done
	outcome[${state:-not ended}]=$((${outcome[${state:-not ended}]:-0} + 1))
	events=$(curl -fsS "$(base 0)/executions/$id/events")
	restarts=$((restarts + $(grep -c '"type":"restart"' <<<"$events" || true)))
	[ "$(grep -c '"type":"result"' <<<"$events" || true)" -le 1 ] || twice=$((twice + 1))
done <"$dir/queued"

total=$(wc -l <"$dir/queued")
echo "queued executions: $total submitted, $restarts handed back or re-run after a restart"
for k in "${!outcome[@]}"; do echo "  $k: ${outcome[$k]}"; done
echo "  with two results: $twice"
[ ! -e "$dir/queued-refused" ] || { echo "  submissions refused:"; sort "$dir/queued-refused" | uniq -c; }
echo "synchronous executions: $(wc -l <"$dir/sync")"
sort "$dir/sync" | uniq -c | sed 's/^/  /'
bad=$((total - ${outcome[success]:-0} + twice))
bad=$((bad + $(grep -vc '^success$' "$dir/sync" || true)))
[ ! -e "$dir/queued-refused" ] || bad=$((bad + $(wc -l <"$dir/queued-refused")))
if [ "$total" -eq 0 ] || [ ! -s "$dir/sync" ]; then
	echo "FAILED: no load went through" >&2
	exit 1
fi
if [ "$bad" -ne 0 ]; then
	echo "FAILED: $bad executions lost, failed or run twice" >&2
	exit 1
fi
echo "OK: none lost, none failed"
