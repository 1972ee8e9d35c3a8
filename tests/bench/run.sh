#!/bin/bash
# run.sh: measure clawgate's performance figures and compare them with the
# targets. Builds nothing: it uses $CLAWGATE_BIN (default ./clawgate) and the
# wsbench binary next to it ($WSBENCH, default
# $(dirname $CLAWGATE_BIN)/tests/bench/wsbench). See tests/bench/README.md.
#
#   tests/bench/run.sh [--json FILE] [--duration S] [--starts N]
#                      [--idle-conns N] [--peer URL TOKEN PID]
#
# Only loopback addresses are used; every step is bounded in time.
set -u

JSON_OUT=""
DURATION=10
STARTS=3
IDLE_CONNS=1000
HS_CONC=4
PEER_URL=""
PEER_TOKEN=""
PEER_PID=""

usage() {
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case "$1" in
	--json) JSON_OUT="$2"; shift 2 ;;
	--duration) DURATION="$2"; shift 2 ;;
	--starts) STARTS="$2"; shift 2 ;;
	--idle-conns) IDLE_CONNS="$2"; shift 2 ;;
	--hs-conc) HS_CONC="$2"; shift 2 ;;
	--peer)
		[ $# -ge 4 ] || { usage >&2; exit 2; }
		PEER_URL="$2"; PEER_TOKEN="$3"; PEER_PID="$4"; shift 4 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done

BIN="${CLAWGATE_BIN:-./clawgate}"
WSBENCH="${WSBENCH:-$(dirname "$BIN")/tests/bench/wsbench}"
if [ ! -x "$WSBENCH" ]; then
	echo "run.sh: no wsbench at $WSBENCH (make tests/bench/wsbench)" >&2
	exit 2
fi
if [ -z "$PEER_URL" ] && [ ! -x "$BIN" ]; then
	echo "run.sh: no clawgate at $BIN (set CLAWGATE_BIN)" >&2
	exit 2
fi
case "$PEER_URL" in
""|ws://127.*|ws://localhost:*|ws://\[::1\]:*) ;;
*) echo "run.sh: only loopback peers are allowed" >&2; exit 2 ;;
esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-bench.XXXXXX")
DAEMON_PID=""
IDLE_PID=""

# Stop one process by PID: SIGTERM, wait up to $2 deciseconds, then SIGKILL.
# Prints the milliseconds it took.
stop_pid() {
	local pid="$1" max="${2:-100}" i=0 t0 t1 st
	t0=$(date +%s%N)
	kill -TERM "$pid" 2>/dev/null || { echo 0; return; }
	while [ $i -lt "$max" ]; do
		st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
		[ -z "$st" ] || [ "$st" = Z ] && break
		sleep 0.01
		i=$((i + 1))
	done
	if [ $i -ge "$max" ]; then
		kill -KILL "$pid" 2>/dev/null
		echo "run.sh: pid $pid ignored SIGTERM; killed" >&2
	fi
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000000 ))
}

cleanup() {
	[ -n "$IDLE_PID" ] && kill -TERM "$IDLE_PID" 2>/dev/null
	[ -n "$DAEMON_PID" ] && stop_pid "$DAEMON_PID" 50 >/dev/null
	if [ -n "${BENCH_KEEP_TMP:-}" ]; then
		echo "run.sh: kept $TMP (daemon logs)" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

rss_kb() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# kv "RESULT k=v ..." KEY -> v
kv() {
	echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2; exit}'
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1}
	    END {if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2];
	    else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# Results: parallel arrays, printed as a table and as JSON at the end.
R_KEY=(); R_NAME=(); R_VAL=(); R_UNIT=(); R_TARGET=(); R_CMP=(); R_NOTE=()
result() {	# key name value unit cmp(ge|lt|-) target note
	R_KEY+=("$1"); R_NAME+=("$2"); R_VAL+=("$3"); R_UNIT+=("$4")
	R_CMP+=("$5"); R_TARGET+=("$6"); R_NOTE+=("${7:-}")
}
verdict() {	# value cmp target
	[ -z "$1" ] && { echo "n/a"; return; }
	[ "$2" = "-" ] && { echo "info"; return; }
	awk -v v="$1" -v c="$2" -v t="$3" 'BEGIN {
	    ok = (c == "ge") ? (v >= t) : (v < t); print ok ? "PASS" : "MISS" }'
}

TOKEN="bench-$(date +%s%N | sha256sum | cut -c1-24)"
export OPENCLAW_GATEWAY_TOKEN="$TOKEN"

# Start clawgate on a fresh state dir; sets URL, DAEMON_PID, LAST_READY.
start_daemon() {
	local n="$1" state="$TMP/state$1" port out
	mkdir -p "$state/home"
	port=$(free_port)
	URL="ws://127.0.0.1:$port"
	out=$(env OPENCLAW_STATE_DIR="$state" \
	    OPENCLAW_CONFIG_PATH="$state/openclaw.json" HOME="$state/home" \
	    "$WSBENCH" ready -u "$URL" -t "$TOKEN" -T 20 \
	    -l "$TMP/daemon$n.log" -- \
	    "$BIN" gateway run --port "$port" --auth token --token "$TOKEN" \
	    --allow-unconfigured)
	local rc=$?
	DAEMON_PID=$(echo "$out" | awk '/^PID/ {print $2}')
	LAST_READY=$(echo "$out" | grep '^RESULT' || true)
	if [ $rc -ne 0 ] || [ -z "$LAST_READY" ]; then
		echo "run.sh: clawgate did not become ready; log:" >&2
		tail -20 "$TMP/daemon$n.log" >&2
		exit 1
	fi
}

echo "clawgate bench: $(nproc) cores; load generator and daemon share them" \
    "(figures are lower bounds)"
if [ -z "$PEER_URL" ] && ldd "$BIN" 2>/dev/null | grep -q 'libasan\|libubsan'; then
	echo "WARNING: $BIN is a sanitizer build; configure without" \
	    "--enable-sanitizers for representative figures"
fi

# ---- start-to-ready (clawgate only) ----------------------------------------
if [ -z "$PEER_URL" ]; then
	RZ=(); HO=()
	for i in $(seq 1 "$STARTS"); do
		start_daemon "$i"
		RZ+=("$(kv "$LAST_READY" readyz_ms)")
		HO+=("$(kv "$LAST_READY" hello_ms)")
		echo "  start $i: readyz ${RZ[-1]} ms, hello-ok ${HO[-1]} ms"
		if [ "$i" -lt "$STARTS" ]; then
			stop_pid "$DAEMON_PID" >/dev/null
			DAEMON_PID=""
		fi
	done
	result start_readyz_ms "start-to-ready (exec -> GET /readyz 200)" \
	    "$(median "${RZ[@]}")" ms lt 50 "median of $STARTS cold starts"
	result start_hello_ms "start-to-ready (exec -> hello-ok)" \
	    "$(median "${HO[@]}")" ms lt 50 "median of $STARTS cold starts"
	PID="$DAEMON_PID"
	# Let the daemon settle before reading its idle RSS.
	sleep 1
else
	URL="$PEER_URL"
	TOKEN="$PEER_TOKEN"
	export OPENCLAW_GATEWAY_TOKEN="$TOKEN"
	PID="$PEER_PID"
	kill -0 "$PID" 2>/dev/null || { echo "run.sh: no pid $PID" >&2; exit 2; }
fi
PORT="${URL##*:}"
PORT="${PORT%%/*}"
HOSTPART="${URL#ws://}"
HOSTPART="${HOSTPART%%/*}"

# ---- RSS idle and with N idle authenticated connections --------------------
RSS_IDLE=$(rss_kb "$PID")
result rss_idle_mb "idle RSS (VmRSS)" \
    "$(awk -v k="$RSS_IDLE" 'BEGIN {printf "%.1f", k / 1024}')" MB lt 10 \
    "${PEER_URL:+current RSS of the peer}"

IDLE_OUT="$TMP/idle.out"
"$WSBENCH" idle -u "$URL" -t "$TOKEN" -c "$IDLE_CONNS" -H 300 -T 120 \
    >"$IDLE_OUT" 2>&1 &
IDLE_PID=$!
READY=""
for _ in $(seq 1 1200); do
	READY=$(grep '^READY' "$IDLE_OUT" || true)
	[ -n "$READY" ] && break
	kill -0 "$IDLE_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -n "$READY" ]; then
	sleep 0.5
	RSS_N=$(rss_kb "$PID")
	OPENED=$(echo "$READY" | awk '{print $2}')
	echo "  idle: $READY; RSS $RSS_IDLE -> $RSS_N kB"
else
	RSS_N=""
	OPENED=0
	echo "  idle: wsbench did not get ready: $(cat "$IDLE_OUT")"
fi
kill -TERM "$IDLE_PID" 2>/dev/null
wait "$IDLE_PID" 2>/dev/null
IDLE_PID=""
grep -q '^FIRST_ERROR' "$IDLE_OUT" && grep '^FIRST_ERROR' "$IDLE_OUT" | sed 's/^/  /'
if [ -n "$RSS_N" ] && [ "$OPENED" -gt 0 ]; then
	result rss_conns_mb "RSS with $OPENED idle authenticated conns" \
	    "$(awk -v k="$RSS_N" 'BEGIN {printf "%.1f", k / 1024}')" MB - "" \
	    "$OPENED of $IDLE_CONNS opened"
	result per_conn_kb "RSS per idle connection" \
	    "$(awk -v a="$RSS_N" -v b="$RSS_IDLE" -v n="$OPENED" \
	    'BEGIN {printf "%.1f", (a - b) / n}')" KB lt 20 \
	    "(RSS_N - RSS_idle) / N"
else
	result per_conn_kb "RSS per idle connection" "" KB lt 20 \
	    "idle connections failed"
fi

# ---- health RPC round trips ------------------------------------------------
run_rpc() {	# conns
	local out
	out=$("$WSBENCH" rpc -u "$URL" -t "$TOKEN" -c "$1" -d "$DURATION" \
	    -w 1 2>&1)
	echo "$out" | grep '^FIRST_ERROR' | sed 's/^/  /' >&2
	echo "$out" | grep '^RESULT' || echo "RESULT failed=1"
}
R1=$(run_rpc 1)
echo "  rpc 1 conn:  $R1 [RSS $(rss_kb "$PID") kB]"
result rpc1_per_s "health RPC/s, 1 connection" "$(kv "$R1" req_per_s)" \
    req/s - "" "p50 $(kv "$R1" p50_ms) ms, p99 $(kv "$R1" p99_ms) ms, errors $(kv "$R1" errors)"
R8=$(run_rpc 8)
echo "  rpc 8 conns: $R8 [RSS $(rss_kb "$PID") kB]"
result rpc8_per_s "health RPC/s, 8 connections" "$(kv "$R8" req_per_s)" \
    req/s ge 20000 "p50 $(kv "$R8" p50_ms) ms, p99 $(kv "$R8" p99_ms) ms, errors $(kv "$R8" errors)"

# ---- handshakes ------------------------------------------------------------
run_hs() {	# concurrency
	local out
	out=$("$WSBENCH" handshake -u "$URL" -t "$TOKEN" -c "$1" \
	    -d "$DURATION" 2>&1)
	echo "$out" | grep '^FIRST_ERROR' | sed 's/^/  /' >&2
	echo "$out" | grep '^RESULT' || echo "RESULT failed=1"
}
H1=$(run_hs 1)
echo "  handshake c1: $H1 [RSS $(rss_kb "$PID") kB]"
result hs1_per_s "handshakes/s, 1 worker" "$(kv "$H1" handshakes_per_s)" \
    1/s - "" "p50 $(kv "$H1" p50_ms) ms, p99 $(kv "$H1" p99_ms) ms, failed $(kv "$H1" failed)"
HN=$(run_hs "$HS_CONC")
echo "  handshake c$HS_CONC: $HN [RSS $(rss_kb "$PID") kB]"
result hs_per_s "handshakes/s, $HS_CONC workers" \
    "$(kv "$HN" handshakes_per_s)" 1/s ge 1500 \
    "p50 $(kv "$HN" p50_ms) ms, p99 $(kv "$HN" p99_ms) ms, failed $(kv "$HN" failed)"

# ---- /healthz with wrk -----------------------------------------------------
if command -v wrk >/dev/null 2>&1; then
	WRK=$(wrk -t2 -c32 -d"${DURATION}s" --latency \
	    "http://$HOSTPART/healthz" 2>&1)
	echo "$WRK" >"$TMP/wrk.out"
	RPS=$(echo "$WRK" | awk '/^Requests\/sec:/ {print $2}')
	P50=$(echo "$WRK" | awk '$1 == "50%" {print $2}')
	P99=$(echo "$WRK" | awk '$1 == "99%" {print $2}')
	NON2=$(echo "$WRK" | awk '/Non-2xx/ {print $NF}')
	SERR=$(echo "$WRK" | grep 'Socket errors' | sed 's/^ *//')
	echo "  wrk /healthz: $RPS req/s, p50 $P50, p99 $P99 ${NON2:+non-2xx $NON2} $SERR [RSS $(rss_kb "$PID") kB]"
	result healthz_per_s "/healthz req/s (wrk -t2 -c32)" "$RPS" req/s \
	    ge 40000 "p50 $P50, p99 $P99${NON2:+, non-2xx $NON2}"
else
	result healthz_per_s "/healthz req/s (wrk -t2 -c32)" "" req/s ge 40000 \
	    "wrk not installed (apt-get install wrk)"
fi

RSS_AFTER=$(rss_kb "$PID")
result rss_after_mb "RSS after the load above" \
    "$(awk -v k="$RSS_AFTER" 'BEGIN {printf "%.1f", k / 1024}')" MB - "" ""

if [ -z "$PEER_URL" ]; then
	STOP_MS=$(stop_pid "$DAEMON_PID")
	DAEMON_PID=""
	result stop_ms "SIGTERM -> process gone" "$STOP_MS" ms - "" ""
fi

# ---- report ----------------------------------------------------------------
echo
printf '%-44s %14s %12s  %-5s %s\n' figure measured target result notes
printf '%-44s %14s %12s  %-5s %s\n' ------ -------- ------ ------ -----
MISSES=0
for i in "${!R_KEY[@]}"; do
	v="${R_VAL[$i]}"
	vd=$(verdict "$v" "${R_CMP[$i]}" "${R_TARGET[$i]}")
	[ "$vd" = MISS ] && MISSES=$((MISSES + 1))
	case "${R_CMP[$i]}" in
	ge) tg=">= ${R_TARGET[$i]}" ;;
	lt) tg="< ${R_TARGET[$i]}" ;;
	*) tg="-" ;;
	esac
	printf '%-44s %14s %12s  %-5s %s\n' "${R_NAME[$i]}" \
	    "${v:-n/a} ${R_UNIT[$i]}" "$tg" "$vd" "${R_NOTE[$i]}"
done

if [ -n "$JSON_OUT" ]; then
	{
		printf '{\n  "target": "%s",\n' "${PEER_URL:-clawgate}"
		printf '  "date": "%s",\n  "cpus": %s,\n  "duration_s": %s,\n' \
		    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$DURATION"
		printf '  "figures": {\n'
		n=${#R_KEY[@]}
		for i in "${!R_KEY[@]}"; do
			v="${R_VAL[$i]}"
			vd=$(verdict "$v" "${R_CMP[$i]}" "${R_TARGET[$i]}")
			printf '    "%s": {"name": "%s", "value": %s, "unit": "%s", ' \
			    "${R_KEY[$i]}" "${R_NAME[$i]}" "${v:-null}" \
			    "${R_UNIT[$i]}"
			printf '"target": "%s %s", "result": "%s", "note": "%s"}' \
			    "${R_CMP[$i]}" "${R_TARGET[$i]}" "$vd" \
			    "$(echo "${R_NOTE[$i]}" | sed 's/["\\]/\\&/g')"
			[ "$i" -lt $((n - 1)) ] && printf ','
			printf '\n'
		done
		printf '  }\n}\n'
	} >"$JSON_OUT"
	echo "JSON written to $JSON_OUT"
fi
echo "$MISSES figure(s) missed their target"
exit 0
