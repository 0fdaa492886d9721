#!/usr/bin/env bash
# herald against nchan, side by side, on this machine: installs nginx and
# nchan from Debian's packages if missing, starts nchan (bench/nchan.conf)
# and herald on 127.0.0.1, runs the same `herald-bench` scenarios against
# both, stops both, and writes BENCHMARKS.md.
#
#   bench/compare.sh                 # the full run (about 10-15 minutes)
#   QUICK=1 bench/compare.sh         # a small smoke run: prints, BENCHMARKS.md untouched
#
# Environment: DATABASE_URL (herald's database; default: an embedded
# PostgreSQL in a temporary directory), HERALD_PORT (18080), NCHAN_PORT
# (18091), FLOOR_PORT (18093: `herald-bench floor-server`, Go's net/http
# serving the long-poll exchange alone, a third column there), RUNS (3;
# QUICK: 1), OUT (BENCHMARKS.md), KEEP=1 keeps the temp directory.
# Every load is bounded: each bench invocation has a count, a per-run cap
# and a timeout around it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

HERALD_PORT=${HERALD_PORT:-18080}
NCHAN_PORT=${NCHAN_PORT:-18091}
FLOOR_PORT=${FLOOR_PORT:-18093}
QUICK=${QUICK:-}
RUNS=${RUNS:-$([[ -n $QUICK ]] && echo 1 || echo 3)}
OUT=${OUT:-$ROOT/BENCHMARKS.md}

log() { printf '%s compare: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- nginx + nchan from Debian's packages ---------------------------------
find_module() {
	local m
	for m in /usr/lib/nginx/modules/ngx_nchan_module.so \
		$(dpkg -L libnginx-mod-nchan 2>/dev/null | grep 'ngx_nchan_module\.so$' || true); do
		[[ -f $m ]] && { echo "$m"; return 0; }
	done
	return 1
}
if ! command -v nginx >/dev/null 2>&1 || ! find_module >/dev/null; then
	log "installing nginx and libnginx-mod-nchan (apt-get)"
	# Never let the package start a system nginx on port 80.
	policy_added=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
		as_root chmod 755 /usr/sbin/policy-rc.d
		policy_added=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx libnginx-mod-nchan >/dev/null
	[[ -n $policy_added ]] && as_root rm -f /usr/sbin/policy-rc.d
fi
MODULE=$(find_module) || die "ngx_nchan_module.so not found after installing libnginx-mod-nchan"
NGINX=$(command -v nginx)

# --- temp dir and cleanup ---------------------------------------------------
# Under /tmp with mode 0755: as root, the embedded PostgreSQL runs as the
# postgres user, who must reach its data directory.
TMP=$(mktemp -d /tmp/herald-compare-XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/nchan" "$TMP/results"
HERALD_PID= HERALD2_PID= NGINX_PID= FLOOR_PID=
stop_pid() { # pid name: TERM, wait up to 30 s, then KILL
	local pid=$1 name=$2 i
	[[ -z $pid ]] && return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "$name ($pid) did not stop in 30 s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	stop_pid "$HERALD2_PID" "second herald"
	stop_pid "$HERALD_PID" herald
	stop_pid "$NGINX_PID" nginx
	stop_pid "$FLOOR_PID" "net/http floor"
	if [[ -n ${KEEP:-} || $rc -ne 0 ]]; then
		log "kept $TMP (logs and results)"
	else
		rm -rf "$TMP"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free "$HERALD_PORT" || die "port $HERALD_PORT is in use (set HERALD_PORT)"
port_free "$NCHAN_PORT" || die "port $NCHAN_PORT is in use (set NCHAN_PORT)"
port_free "$FLOOR_PORT" || die "port $FLOOR_PORT is in use (set FLOOR_PORT)"

# --- build herald and the load generator ------------------------------------
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
log "building herald and herald-bench"
go build -o "$TMP/herald" ./cmd/herald
go build -o "$TMP/herald-bench" ./cmd/herald-bench
HERALD=$TMP/herald
BENCH=$TMP/herald-bench

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T0=$SECONDS

# --- start nchan ------------------------------------------------------------
sed -e "s|listen 127.0.0.1:8091;|listen 127.0.0.1:$NCHAN_PORT;|" \
	-e "s|load_module /usr/lib/nginx/modules/ngx_nchan_module.so;|load_module $MODULE;|" \
	bench/nchan.conf >"$TMP/nchan/nchan.conf"
"$NGINX" -q -t -p "$TMP/nchan/" -e "$TMP/nchan/error.log" -c "$TMP/nchan/nchan.conf"
"$NGINX" -p "$TMP/nchan/" -e "$TMP/nchan/error.log" -c "$TMP/nchan/nchan.conf" -g 'daemon off;' \
	>"$TMP/nchan/stdout.log" 2>&1 &
NGINX_PID=$!
for ((i = 0; ; i++)); do
	curl -sf -o /dev/null -X POST -d '{}' "http://127.0.0.1:$NCHAN_PORT/pub/compare-ping" && break
	((i < 100)) || die "nchan did not answer within 10 s: $(cat "$TMP/nchan/error.log")"
	sleep 0.1
done
log "nchan up (nginx master $NGINX_PID)"

# --- start the net/http floor -------------------------------------------------
# The long-poll exchange served by Go's net/http and nothing else
# (cmd/herald-bench/floor.go): how much of herald's long-poll figure is
# net/http's own.
"$BENCH" floor-server --listen "127.0.0.1:$FLOOR_PORT" >"$TMP/floor.log" 2>&1 &
FLOOR_PID=$!
for ((i = 0; ; i++)); do
	curl -sf -o /dev/null -X POST -d '{}' "http://127.0.0.1:$FLOOR_PORT/pub/compare-ping" && break
	kill -0 "$FLOOR_PID" 2>/dev/null || die "net/http floor exited: $(cat "$TMP/floor.log")"
	((i < 100)) || die "net/http floor did not answer within 10 s"
	sleep 0.1
done
log "net/http floor up (pid $FLOOR_PID)"

# --- start herald -----------------------------------------------------------
herald_env=(HERALD_LOG_LEVEL=warn)
if [[ -n ${DATABASE_URL:-} ]]; then
	DB_NOTE="the database at DATABASE_URL"
else
	herald_env+=(HERALD_DATA_DIR="$TMP/herald-data")
	DB_NOTE="herald's embedded PostgreSQL (durable: fsync and synchronous_commit on) in a temporary directory"
fi
env "${herald_env[@]}" "$HERALD" serve --listen "127.0.0.1:$HERALD_PORT" >"$TMP/herald.log" 2>&1 &
HERALD_PID=$!
for ((i = 0; ; i++)); do
	curl -sf -o /dev/null "http://127.0.0.1:$HERALD_PORT/readyz" && break
	kill -0 "$HERALD_PID" 2>/dev/null || die "herald exited: $(cat "$TMP/herald.log")"
	((i < 600)) || die "herald not ready within 60 s: $(cat "$TMP/herald.log")"
	sleep 0.1
done
log "herald up (pid $HERALD_PID)"

# A second replica on the same database (the embedded cluster the first
# one started, or DATABASE_URL), for the two-replica idle figure.
HERALD2_PORT=${HERALD2_PORT:-$((HERALD_PORT + 1))}
start_second_herald() {
	port_free "$HERALD2_PORT" || die "port $HERALD2_PORT is in use (set HERALD2_PORT)"
	env "${herald_env[@]}" "$HERALD" serve --listen "127.0.0.1:$HERALD2_PORT" >"$TMP/herald2.log" 2>&1 &
	HERALD2_PID=$!
	for ((i = 0; ; i++)); do
		curl -sf -o /dev/null "http://127.0.0.1:$HERALD2_PORT/readyz" && break
		kill -0 "$HERALD2_PID" 2>/dev/null || die "second herald exited: $(cat "$TMP/herald2.log")"
		((i < 600)) || die "second herald not ready within 60 s: $(cat "$TMP/herald2.log")"
		sleep 0.1
	done
	log "second herald up (pid $HERALD2_PID)"
}

# settle lets the servers finish their start-up work (initdb, migrations,
# the first checkpoint, a new replica joining) and reach their idle steady
# state for 130 s, then waits (up to 3 minutes) for the 1-minute load average
# to fall below 0.5, so neither that nor a build or test suite run just
# before lands in the quiet figures. 130 s because Postgres's background
# writer wakes every 200 ms until it has swept all of shared_buffers with no
# new buffer needed, which takes it 2 minutes; then it sleeps 10 s at a time
# (0.5 ms/s of CPU before, about 0 after).
settle() {
	local i
	sleep 130
	for ((i = 0; i < 180; i++)); do
		awk '{ exit !($1 < 0.5) }' /proc/loadavg && return 0
		sleep 1
	done
	log "load average still $(cut -d' ' -f1-3 /proc/loadavg) after 3 minutes; measuring anyway"
}

# --- scenarios --------------------------------------------------------------
# bench LABEL TARGETS SCENARIO FLAGS...: one invocation per target, JSON
# kept for the report, the command kept for the reproduction list.
N=0
COMMANDS=()
bench() {
	local label=$1 targets=$2 scenario=$3 t url
	shift 3
	for t in $targets; do
		N=$((N + 1))
		url="http://127.0.0.1:$HERALD_PORT"
		[[ $t == nchan ]] && url="http://127.0.0.1:$NCHAN_PORT"
		[[ $t == nethttp ]] && url="http://127.0.0.1:$FLOOR_PORT"
		log "[$N] $label: $t"
		local cmd=("$BENCH" "$scenario" --target "$t" --url "$url" --runs "$RUNS" --label "$label" --json "$@")
		COMMANDS+=("herald-bench $scenario --target $t --url $url --runs $RUNS --label '$label' --json $*")
		if ! timeout 600 env "${herald_env[@]}" "${cmd[@]}" >"$TMP/results/$(printf %02d "$N")-$t.json" 2>"$TMP/bench.err"; then
			log "[$N] $label against $t reported a failure (see the table and $TMP/bench.log)"
			FAILURES+=("$label ($t)")
		fi
		# A figure herald-bench could not measure is left out of the
		# table; say which and why rather than leave a row missing.
		if grep -q 'not measured' "$TMP/bench.err"; then
			UNMEASURED+=("$label ($t): $(grep -m1 'not measured' "$TMP/bench.err" | sed 's/^herald-bench: //')")
		fi
		cat "$TMP/bench.err" >>"$TMP/bench.log"
	done
}
FAILURES=() UNMEASURED=()
if [[ -n $QUICK ]]; then
	S1=100 S2=300 SI=300 EV=10 FLAT=100 HIST=2000 CH=200 PUBD=1s QD=3s EV10=50 EV5=25
else
	S1=1000 S2=5000 SI=5000 EV=50 FLAT=1000 HIST=20000 CH=2000 PUBD=3s QD=10s EV10=300 EV5=150
fi
both="herald nchan"
# No traffic, no connections: CPU per second of the server and its
# Postgres; then with a second herald replica on the same database.
[[ -n $QUICK ]] || settle
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg) # as the scenarios start
bench "quiet, no traffic, 1 replica" "$both" quiet --duration $QD
start_second_herald
[[ -n $QUICK ]] || settle
bench "quiet, no traffic, 2 replicas" herald quiet --duration $QD --server-pid "$HERALD_PID,$HERALD2_PID"
stop_pid "$HERALD2_PID" "second herald"
HERALD2_PID=
# Idle first, on fresh servers: later scenarios leave freed memory behind
# that new connections would reuse.
bench "idle, $SI connections per run" "$both" idle --subscribers $SI
bench "fanout, $S1 subscribers, 5 events/s" "$both" fanout --subscribers $S1 --events $EV --rate 5
bench "fanout, $S2 subscribers, 5 events/s" "$both" fanout --subscribers $S2 --events $EV --rate 5
bench "fanout flat out, $S1 subscribers, $FLAT events" "$both" fanout --subscribers $S1 --events $FLAT --rate 0 --writers 16
bench "channels, $S1 subscribers, 200 events/s" "$both" channels --subscribers $S1 --events $CH --rate 200
bench "channels, $S2 subscribers, 200 events/s" "$both" channels --subscribers $S2 --events $CH --rate 200
bench "resume, 10 subscribers, $HIST events of history" "$both" resume --subscribers 10 --events $HIST --writers 8
bench "longpoll, $S1 clients, 5 events/s" "$both nethttp" longpoll --subscribers $S1 --events $EV --rate 5
bench "fanout, 100 subscribers, 10 events/s" "$both" fanout --subscribers 100 --events $EV10 --rate 10
bench "fanout, 100 subscribers, 5 events/s" "$both" fanout --subscribers 100 --events $EV5 --rate 5
bench "commit→feed, 1,000 events/s" herald feed --events $((EV * 100)) --rate 1000 --writers 16
bench "publish" herald publish --writers 1,4,8,32 --duration $PUBD

# The sequencer's tick is a setting (docs/WAKE.md): the latency-bound
# scenarios again against a herald started with --sequencer-tick 1ms, on
# an embedded database of its own (the tick belongs to the database's one
# leader), to show what the shorter tick buys and what it costs.
if [[ -z ${DATABASE_URL:-} ]]; then
	stop_pid "$HERALD_PID" herald
	HERALD_PID=
	HERALD_PORT=$((HERALD_PORT + 2))
	port_free "$HERALD_PORT" || die "port $HERALD_PORT is in use (set HERALD_PORT)"
	herald_env=(HERALD_LOG_LEVEL=warn HERALD_DATA_DIR="$TMP/herald-tick-data")
	env "${herald_env[@]}" "$HERALD" serve --listen "127.0.0.1:$HERALD_PORT" --sequencer-tick 1ms >"$TMP/herald-tick.log" 2>&1 &
	HERALD_PID=$!
	for ((i = 0; ; i++)); do
		curl -sf -o /dev/null "http://127.0.0.1:$HERALD_PORT/readyz" && break
		kill -0 "$HERALD_PID" 2>/dev/null || die "herald (1 ms tick) exited: $(cat "$TMP/herald-tick.log")"
		((i < 600)) || die "herald (1 ms tick) not ready within 60 s: $(cat "$TMP/herald-tick.log")"
		sleep 0.1
	done
	log "herald with --sequencer-tick 1ms up (pid $HERALD_PID)"
	bench "commit→feed, 1,000 events/s, --sequencer-tick 1ms" herald feed --events $((EV * 100)) --rate 1000 --writers 16
	bench "channels, $S1 subscribers, 200 events/s, --sequencer-tick 1ms" herald channels --subscribers $S1 --events $CH --rate 200
	bench "publish, --sequencer-tick 1ms" herald publish --writers 1,4 --duration $PUBD
fi

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - T0))
stop_pid "$HERALD_PID" herald
HERALD_PID=
stop_pid "$NGINX_PID" nginx
NGINX_PID=
stop_pid "$FLOOR_PID" "net/http floor"
FLOOR_PID=
log "scenarios done in ${ELAPSED}s"

# --- BENCHMARKS.md ----------------------------------------------------------
results=("$TMP"/results/*.json)
TABLE=$("$BENCH" report "${results[@]}")
READING=$("$BENCH" report --reading "${results[@]}")
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
RAM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PG_VERSION=$("$PG_BIN/postgres" --version 2>/dev/null || echo unknown)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
NCHAN_VERSION=$(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo unknown)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"
CRASHES=$(grep -c 'exited on signal' "$TMP/nchan/error.log" || true)
NOTES=()
if awk -v a="${LOAD_START%% *}" 'BEGIN { exit !(a > 0.5) }'; then
	NOTES+=("**Other work was running on this machine during the run** (load average ${LOAD_START} at the start, ${LOAD_END} at the end, on $(nproc) cores): latencies are inflated and noisy; CPU time per delivery, the figure to compare, is much less affected.")
else
	NOTES+=("The machine was otherwise idle (load average ${LOAD_START} at the start, ${LOAD_END} at the end).")
fi
((CRASHES > 0)) && NOTES+=("nchan's error log shows **${CRASHES} worker crash(es)** (\"exited on signal\") during the run.")
((${#FAILURES[@]} > 0)) && NOTES+=("Scenarios that reported a failure: ${FAILURES[*]}.")
((${#UNMEASURED[@]} > 0)) && NOTES+=("Figures not measured, so missing from their rows: ${UNMEASURED[*]}.")

{
	cat <<EOF
# Benchmarks: herald and nchan, side by side

Generated by \`bench/compare.sh\` on ${STARTED} (scenarios took ${ELAPSED} s).

- **Machine**: $(nproc) cores, ${CPU_MODEL}, ${RAM} RAM, Linux $(uname -r); the load generator runs on the same machine.
- **herald**: ${COMMIT}, $(go version | cut -d' ' -f3), ${DB_NOTE}; ${PG_VERSION}.
- **nchan**: libnginx-mod-nchan ${NCHAN_VERSION} on nginx ${NGINX_VERSION} (Debian packages), \`bench/nchan.conf\` (one worker per core, in-memory store).
$(printf -- '- %s\n' "${NOTES[@]}")

Each cell is the median over ${RUNS} runs, with the range in brackets. Latency runs from the
start of the publishing call (herald: the \`INSERT\`'s transaction; nchan: the HTTP POST) to
receipt by the subscriber. CPU times are read from each process's CPU-time clock
(\`clock_getcpuclockid\`: nanoseconds, all threads; \`/proc/PID/stat\` only for backends that
exited during the window) for the server (every process holding the listening socket, i.e.
herald, or nginx's master and workers) and Postgres (the postmaster and all its backends) over
the measuring window. They include each server's idle
work during the window: herald's sequencer sleeps until an inbox INSERT notifies it (1 s safety
net) and ticks every 10 ms only while rows flow (docs/WAKE.md); rows marked
\`--sequencer-tick 1ms\` come from a second herald on its own database with that tick.

${TABLE}

## Reading

${READING}

How the two differ, beyond the numbers:

- herald's publish path is an \`INSERT\` into Postgres, sequenced into a dense, commit-ordered log
  and read by one query per wake-up; nchan's is an HTTP POST into shared memory. nchan's server
  CPU therefore includes publishing, while herald's publishing cost is in Postgres (its own row).
  Latency at low rates is a commit with fsync, the app's notice waking the sequencer, the
  sequencer's own commit and its NOTIFY to the feed; under a steady flow the sequencer ticks
  every 10 ms instead. nchan has none of that, and does not persist anything.
- The long-poll scenario has a third column, \`nethttp\`: \`herald-bench floor-server\`, the same
  exchange (nchan's long-poll API) served by Go's net/http with no router, authorisation,
  metrics or database. It is how much of herald's long-poll figure is net/http's own cost per
  request (parsing, the response, its background read and goroutines), which no handler
  behind net/http can go below.
- herald's resume works from any cursor the retained history covers (here beyond its 16,384-event
  ring, from the database); nchan's from its in-memory buffer (\`nchan_message_buffer_length\`).
- In the resume scenario herald's subscribers are herald's Go client (\`client.Subscribe\`), which
  also drops any seq not above the last one it delivered; nchan's are the lean SSE client.
- Flat out, herald hands a subscriber every event pending for it in one write; nchan writes each
  message separately and answers a POST only once it is fanned out, so its figure is bound by
  the 16 concurrent publishers and by the load generator reading message by message.
- The idle scenario adds ${SI} connections per run on top of the previous runs' (run k has k×${SI}
  open) and counts the memory the new ones took: closing them between runs would let the next
  run reuse freed memory and understate the cost.
- The publish scenario is herald only: inserts/s into \`herald.events\`, one event per transaction,
  with the sequencer running, and in a scratch database on the same server with no sequencer and
  no wake trigger (a plain table), runs alternated; the INSERT share is each pair's ratio.
- The quiet scenario opens no connection to the server and sends nothing: the CPU a server and its
  Postgres spend doing nothing, for one herald and for two replicas on one database. The Postgres
  figure is the whole cluster; it is also split into herald's own sessions (backends with
  \`application_name\` herald in its database, listed from \`pg_stat_activity\` over one connection
  held idle across the window) and the rest: autovacuum's workers (one per database every
  \`autovacuum_naptime\`), the checkpointer, the background writer, which a Postgres pays with or
  without herald. "herald + its Postgres sessions" is what herald itself costs when idle.
  With durable commits each \`INSERT\` waits for an fsync, so a single writer measures the disk.

## Reproduce

\`\`\`sh
bench/compare.sh            # everything below, and this file
\`\`\`

or by hand, against a running herald (\`herald serve\`) and nchan (\`nginx -p DIR -e DIR/error.log -c bench/nchan.conf\`),
with \`DATABASE_URL\` (or \`--data-dir\`) pointing at herald's database:

\`\`\`sh
$(printf '%s\n' "${COMMANDS[@]}")
herald-bench report RESULT.json...
\`\`\`
EOF
	if [[ -f bench/NOTES.md ]]; then
		echo
		cat bench/NOTES.md
	fi
} >"$TMP/BENCHMARKS.md"
if [[ -n $QUICK ]]; then
	cat "$TMP/BENCHMARKS.md"
	log "QUICK run: $OUT left as it was"
else
	cp "$TMP/BENCHMARKS.md" "$OUT"
	log "wrote $OUT"
fi
