#!/bin/bash
# openai-overhead.sh: what clawgate adds in front of an OpenAI upstream
# (issue 11). nginx (Debian's nginx-light) is the mock upstream on a free
# loopback port, answering a fixed chat.completion (JSON) and a fixed SSE
# stream; clawgate fronts it. wrk runs the same load straight at nginx and
# through clawgate and the figures are printed side by side.
#
#   tests/bench/openai-overhead.sh [--duration S] [--conns N] [--json FILE]
#
#   CLAWGATE_BIN  the daemon (default ./clawgate; use a build without
#                 sanitizers)
#   WSBENCH       the WS load generator for chat.send (default next to the
#                 daemon: tests/bench/wsbench; skipped when absent)
#   BENCH_PERF    a file: record the daemon with `perf record -g` during
#                 the 16-connection chat run (`perf report -i FILE`)
#   BENCH_STRACE  a file: `strace -f -c` of the daemon during that run
#   BENCH_CALLGRIND  a file: run the daemon under valgrind's callgrind
#                 and count instructions during the 16-connection chat run
#                 (repeatable, unlike req/s on a shared machine; implies
#                 BENCH_ONLY=chat; `callgrind_annotate FILE` for where)
#   TTFT          the time-to-first-token client (default next to the
#                 daemon: tests/bench/ttft; those rows are skipped when
#                 absent)
#   BENCH_ONLY    "chat": only the chat rows (quick before/after checks);
#                 "ttft": only the time-to-first-token rows;
#                 "chatsend": only the 16-connection chat run and the WS
#                 chat.send run, with BENCH_PERF/STRACE/CALLGRIND on the
#                 chat.send run instead (the WS fan-out)
#
# Needs nginx, wrk, python3 (free ports) and curl. Loopback only; every
# step is bounded; nothing is left running. See tests/bench/README.md.
set -u

DURATION=5
CONNS=16
JSON_OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION="$2"; shift 2 ;;
	--conns) CONNS="$2"; shift 2 ;;
	--json) JSON_OUT="$2"; shift 2 ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "openai-overhead.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

BIN="${CLAWGATE_BIN:-./clawgate}"
WSBENCH="${WSBENCH:-$(dirname "$BIN")/tests/bench/wsbench}"
TTFT="${TTFT:-$(dirname "$BIN")/tests/bench/ttft}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
PY="${CLAWGATE_PYTHON:-python3}"
for t in "$NGINX" wrk curl "$PY"; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "openai-overhead.sh: $t not found" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "openai-overhead.sh: no clawgate at $BIN" >&2
	exit 2; }
if ldd "$BIN" 2>/dev/null | grep -q libasan; then
	echo "openai-overhead.sh: warning: $BIN is an ASan build" >&2
fi

CG="${BENCH_CALLGRIND:-}"
WAIT_N=500
STOP_N=300
VG=()
if [ -n "$CG" ]; then
	case "${BENCH_ONLY:-}" in chatsend|resp) ;; *) BENCH_ONLY=chat ;; esac
	WAIT_N=6000
	STOP_N=3000
	VG=(valgrind --tool=callgrind --instr-atstart=no
		--callgrind-out-file="$CG")
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-oaover.XXXXXX")
NGX_PID=""
GW_PID=""

stop_pid() {
	local pid="$1" i=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	while [ $i -lt "$STOP_N" ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.02; i=$((i + 1))
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
cleanup() {
	stop_pid "$GW_PID"
	stop_pid "$NGX_PID"
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

freeport() {
	"$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
wait_http() {	# url: until it answers (bounded, ~10 s)
	local i=0
	until curl -s -o /dev/null "$1"; do
		i=$((i + 1)); [ $i -lt "$WAIT_N" ] || return 1; sleep 0.02
	done
}

# ---- the mock upstream --------------------------------------------------
UP=$(freeport)
CHUNK='{"id":"c","object":"chat.completion.chunk","created":1,"model":"mock","choices":[{"index":0,'
mkdir -p "$TMP/ngx"
cat >"$TMP/ngx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
error_log $TMP/ngx/error.log warn;
pid $TMP/ngx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/ngx/body;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$UP backlog=4096;
    location = /json/v1/chat/completions {
      default_type application/json;
      return 200 '{"id":"chatcmpl-mock","object":"chat.completion","created":1,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}';
    }
    location = /sse/v1/chat/completions {
      default_type text/event-stream;
      return 200 'data: $CHUNK"delta":{"role":"assistant"},"finish_reason":null}]}\n\ndata: $CHUNK"delta":{"content":"Hello"},"finish_reason":null}]}\n\ndata: $CHUNK"delta":{"content":" from the mock."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}\n\ndata: [DONE]\n\n';
    }
  }
}
EOF
"$NGINX" -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf" >"$TMP/ngx/out.log" 2>&1 &
NGX_PID=$!
wait_http "http://127.0.0.1:$UP/" || { cat "$TMP/ngx/out.log"
	echo "openai-overhead.sh: nginx did not start" >&2; exit 1; }

# ---- clawgate in front ----------------------------------------------------
GP=$(freeport)
mkdir -p "$TMP/state"
cat >"$TMP/state/openclaw.json" <<EOF
{ "gateway": { "mode": "local" },
  "models": { "providers": { "mock": {
    "baseUrl": "http://127.0.0.1:$UP/sse/v1", "api": "openai-completions",
    "models": [ { "id": "mock" } ] } } },
  "agents": { "defaults": { "model": "mock/mock" } } }
EOF
OPENCLAW_STATE_DIR=$TMP/state OPENCLAW_CONFIG_PATH=$TMP/state/openclaw.json \
	HOME=$TMP "${VG[@]}" "$BIN" gateway run --port "$GP" --auth token --token T \
	--allow-unconfigured >"$TMP/gw.log" 2>&1 &
GW_PID=$!
wait_http "http://127.0.0.1:$GP/readyz" || { tail -20 "$TMP/gw.log"
	echo "openai-overhead.sh: clawgate did not start" >&2; exit 1; }

# ---- wrk ------------------------------------------------------------------
lua() {	# file body: a POST script
	cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
EOF
}
MSGS='"messages":[{"role":"user","content":"Say hello."}]'
lua "$TMP/direct.lua" "{\"model\":\"mock\",$MSGS}"
lua "$TMP/direct-stream.lua" "{\"model\":\"mock\",\"stream\":true,$MSGS}"
lua "$TMP/gw.lua" "{\"model\":\"openclaw\",$MSGS}"
lua "$TMP/gw-stream.lua" "{\"model\":\"openclaw\",\"stream\":true,$MSGS}"
lua "$TMP/resp.lua" '{"model":"openclaw","input":"Say hello."}'
lua "$TMP/resp-stream.lua" '{"model":"openclaw","stream":true,"input":"Say hello."}'

# wrk output → "rps p50_ms p99_ms errors"
wrk_parse() {
	awk '
	function ms(v) {
		if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
		if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
		if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
		return v + 0
	}
	/Requests\/sec/ { rps = $2 }
	/^ +50%/ { p50 = ms($2) }
	/^ +99%/ { p99 = ms($2) }
	/Non-2xx|Socket errors/ { err += $NF; if ($0 ~ /Socket/) {
		err = 0; for (i = 4; i <= NF; i += 2) err += $i + 0 } }
	END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, err }'
}
# CPU ticks (user + system) of a process
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
# CPU ticks per thread name of a process ("name ticks" lines, threads of
# one name summed; the libmicrohttpd thread keeps the name "clawgate")
thread_ticks() {
	local t
	for t in /proc/"$1"/task/*; do
		# comm may hold spaces: the fields after ") "
		sed -e 's/^[0-9]* (\(.*\)) /\1\t/' "$t/stat" 2>/dev/null
	done | awk -F'\t' '{ split($2, f, " "); n[$1] += f[12] + f[13] }
		END { for (k in n) print k, n[k] }'
}
# context switches (voluntary: it slept; + involuntary) per thread name
thread_cs() {
	local t
	for t in /proc/"$1"/task/*; do
		awk '/^Name:/ { n = $2 } /ctxt_switches/ { c += $2 }
			END { print n, c }' "$t/status" 2>/dev/null
	done | awk '{ n[$1] += $2 } END { for (k in n) print k, n[k] }'
}
# run name conns url script [auth]: R[name] = "rps p50 p99 errors";
# C[name] = CPU microseconds per request of the process that served it
declare -A R C
run() {
	local name="$1" c="$2" url="$3" script="$4" auth="${5:-}" t=2 out
	local pid=$NGX_PID t0 t1 n
	[ -n "$auth" ] && pid=$GW_PID
	[ "$c" -lt 2 ] && t=1
	t0=$(ticks "$pid")
	if [ -n "$auth" ]; then
		out=$(wrk -t$t -c"$c" -d"${DURATION}s" --latency -s "$script" \
			-H "Authorization: Bearer T" "$url" 2>&1)
	else
		out=$(wrk -t$t -c"$c" -d"${DURATION}s" --latency -s "$script" \
			"$url" 2>&1)
	fi
	t1=$(ticks "$pid")
	echo "$out" >"$TMP/wrk-$name.txt"
	R[$name]=$(echo "$out" | wrk_parse)
	n=$(echo "$out" | awk '/requests in/ {print $1}')
	C[$name]=$(awk -v a="$t0" -v b="$t1" -v n="${n:-0}" -v hz="$HZ" \
		'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "n/a" }')
}
D="http://127.0.0.1:$UP"
G="http://127.0.0.1:$GP"
# warm-up (libcurl load, first connections, SQLite pages)
wrk -t1 -c4 -d1s -s "$TMP/gw.lua" -H "Authorization: Bearer T" \
	"$G/v1/chat/completions" >/dev/null 2>&1

# profilers (BENCH_PERF / BENCH_STRACE / BENCH_CALLGRIND) on one run
PERF_PID=""
prof_start() {
	[ -n "$CG" ] && callgrind_control -i on "$GW_PID" >/dev/null
	if [ -n "${BENCH_PERF:-}" ]; then
		perf record -q ${BENCH_PERF_ARGS:--g} -p "$GW_PID" \
			-o "$BENCH_PERF" -- sleep "$DURATION" >/dev/null 2>&1 &
		PERF_PID=$!
	elif [ -n "${BENCH_STRACE:-}" ]; then
		# syscall counts (strace slows the daemon: only the counts matter)
		timeout -s INT "$DURATION" strace -f -c -o "$BENCH_STRACE" \
			-p "$GW_PID" >/dev/null 2>&1 &
		PERF_PID=$!
	fi
}
prof_stop() {
	[ -n "$PERF_PID" ] && wait "$PERF_PID"
	PERF_PID=""
	[ -n "$CG" ] && callgrind_control -i off "$GW_PID" >/dev/null
}
# alt A urlA scriptA B urlB scriptB: the two loads through clawgate
# alternated in SLICE-second wrk runs, A B B A A B ... (so a load that
# drifts during the series weighs on both alike), DURATION seconds of each
# in all (at least 2 slices each). ALT[name] = "requests cpu_ticks seconds
# errors" summed over its slices. With callgrind, instrumented only during
# B's slices (the daemon's counts are reset before B and dumped after it,
# so CG_A / CG_B are instructions per request of each). A script "WS"
# is a wsbench slice instead: chat.send (run1), the run1 row's load.
# BLK[B] lists B's requests per A's in each whole ABBA block (its own
# two slices of each), the spread within the series.
# a as a percentage of b ("n/a" when b is not positive)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "n/a" }'; }
SLICE="${BENCH_SLICE:-1}"
declare -A ALT BLK
alt() {
	local a="$1" ua="$2" sa="$3" b="$4" ub="$5" sb="$6"
	local n i k name url script t0 t1 out req err ra=0 rb=0
	n=$(( (DURATION + SLICE - 1) / SLICE ))
	[ "$n" -lt 2 ] && n=2
	ALT[$a]="0 0 0 0"; ALT[$b]="0 0 0 0"; BLK[$b]=""
	for i in $(seq 0 $((2 * n - 1))); do
		# ABBA ABBA ...: slice i is B when i mod 4 is 1 or 2
		k=$((i % 4))
		if [ $k = 1 ] || [ $k = 2 ]; then name=$b url=$ub script=$sb
		else name=$a url=$ua script=$sa; fi
		t0=$(ticks "$GW_PID")
		if [ "$script" = WS ]; then
			out=$(cs_bench -c 1 -p "$CONNS" -W -d "$SLICE" -w 0)
			t1=$(ticks "$GW_PID")
			req=$(result_of requests "$out")
			err=$(result_of errors "$out")
			[ -n "$req" ] || err=1
		else
			out=$(wrk -t2 -c"$CONNS" -d"${SLICE}s" -s "$script" \
				-H "Authorization: Bearer T" "$url" 2>&1)
			t1=$(ticks "$GW_PID")
			req=$(echo "$out" | awk '/requests in/ {print $1}')
			err=$(echo "$out" | wrk_parse | awk '{print $4}')
		fi
		ALT[$name]=$(echo "${ALT[$name]}" | awk -v r="${req:-0}" \
			-v c=$((t1 - t0)) -v s="$SLICE" -v e="${err:-0}" \
			'{ print $1 + r, $2 + c, $3 + s, $4 + e }')
		if [ "$name" = "$a" ]; then ra=$((ra + ${req:-0}))
		else rb=$((rb + ${req:-0})); fi
		if [ $k = 3 ]; then
			BLK[$b]="${BLK[$b]} $(ratio "$rb" "$ra")"
			ra=0; rb=0
		fi
	done
}
# "req/s cpu_us_per_request" of an ALT entry
altf() {
	echo "${ALT[$1]:-0 0 0 0}" | awk -v hz="$HZ" '{ if ($1 > 0)
		printf "%.0f %.1f\n", $1 / $3, $2 * 1e6 / hz / $1
		else print "n/a n/a" }'
}
ONLY="${BENCH_ONLY:-}"
# The time to the first token of a stream, 1 connection (tests/bench/ttft):
# wrk's stream rows time the last byte, which through clawgate waits for
# the run's end to commit. "requests errors ttft_p50 ttft_p99 last_p50
# last_p99" per target.
declare -A TT
ttft_run() {	# name url body [auth]
	local o
	[ -x "$TTFT" ] || return 0
	if [ -n "${4:-}" ]; then
		o=$("$TTFT" -u "$2" -b "$3" -H "Authorization: Bearer T" \
			-d "$DURATION" -w 1 2>&1 | grep '^RESULT')
	else
		o=$("$TTFT" -u "$2" -b "$3" -d "$DURATION" -w 1 2>&1 |
			grep '^RESULT')
	fi
	TT[$1]=$(echo "$o" | sed -n 's/.*requests=\([0-9]*\) errors=\([0-9]*\) ttft_p50_ms=\([0-9.]*\) ttft_p99_ms=\([0-9.]*\) last_p50_ms=\([0-9.]*\) last_p99_ms=\([0-9.]*\).*/\1 \2 \3 \4 \5 \6/p')
}
ttft_rows() {
	local sub
	sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }
	tt() { echo "${TT[$1]}" | awk -v i="$2" '{print $i}'; }
	[ -n "${TT[gw]:-}" ] && [ -n "${TT[direct]:-}" ] || return 0
	printf '%-34s %12s %12s %10s\n' "stream TTFT p50 ms, 1 conn" \
		"$(tt direct 3)" "$(tt gw 3)" "$(sub "$(tt gw 3)" "$(tt direct 3)")"
	printf '%-34s %12s %12s %10s\n' "stream TTFT p99 ms, 1 conn" \
		"$(tt direct 4)" "$(tt gw 4)" "$(sub "$(tt gw 4)" "$(tt direct 4)")"
	printf '%-34s %12s %12s %10s\n' "  (same requests) last byte p99" \
		"$(tt direct 6)" "$(tt gw 6)" "$(sub "$(tt gw 6)" "$(tt direct 6)")"
	printf '%-34s %12s %12s %10s\n' "  TTFT requests / errors" \
		"$(tt direct 1)/$(tt direct 2)" "$(tt gw 1)/$(tt gw 2)" ""
}
SBODY="{\"model\":\"openclaw\",\"stream\":true,$MSGS}"
SDBODY="{\"model\":\"mock\",\"stream\":true,$MSGS}"
if [ "$ONLY" = ttft ]; then
	ttft_run direct "$D/sse/v1/chat/completions" "$SDBODY"
	ttft_run gw "$G/v1/chat/completions" "$SBODY" auth
	printf '%-34s %12s %12s %10s\n' "figure" "direct" "clawgate" "ratio/add"
	ttft_rows
	exit 0
fi
[ "$ONLY" = chatsend ] || [ "$ONLY" = resp ] || [ "$ONLY" = ttft ] ||
	run direct16 "$CONNS" "$D/json/v1/chat/completions" "$TMP/direct.lua"
TT0=$(thread_ticks "$GW_PID")
CS0=$(thread_cs "$GW_PID")
[ "$ONLY" = chatsend ] || [ "$ONLY" = ttft ] || prof_start
[ "$ONLY" = ttft ] || run gw16 "$CONNS" "$G/v1/chat/completions" "$TMP/gw.lua" auth
TT1=$(thread_ticks "$GW_PID")
CS1=$(thread_cs "$GW_PID")
[ "$ONLY" = chatsend ] || prof_stop
GWN=$(awk '/requests in/ {print $1}' "$TMP/wrk-gw16.txt")
if [ "$ONLY" != chatsend ] && [ "$ONLY" != resp ] && [ "$ONLY" != ttft ]; then
run direct1 1 "$D/json/v1/chat/completions" "$TMP/direct.lua"
run gw1 1 "$G/v1/chat/completions" "$TMP/gw.lua" auth
fi
if [ -z "$ONLY" ]; then
run sdirect16 "$CONNS" "$D/sse/v1/chat/completions" "$TMP/direct-stream.lua"
run sgw16 "$CONNS" "$G/v1/chat/completions" "$TMP/gw-stream.lua" auth
run sdirect1 1 "$D/sse/v1/chat/completions" "$TMP/direct-stream.lua"
run sgw1 1 "$G/v1/chat/completions" "$TMP/gw-stream.lua" auth
ttft_run direct "$D/sse/v1/chat/completions" "$SDBODY"
ttft_run gw "$G/v1/chat/completions" "$SBODY" auth
run resp16 "$CONNS" "$G/v1/responses" "$TMP/resp.lua" auth
run resp1 1 "$G/v1/responses" "$TMP/resp.lua" auth
fi
if [ "$ONLY" = resp ] && [ -n "$CG" ]; then
	# callgrind: the chat run's counts are dumped (FILE.1), then the
	# responses run is counted alone (FILE.2)
	callgrind_control -d "$GW_PID" >/dev/null
	cg_run() {	# name url script: counted alone, dumped to the next FILE.N
		callgrind_control -i on "$GW_PID" >/dev/null
		run "$@" auth
		callgrind_control -i off "$GW_PID" >/dev/null
		callgrind_control -d "$GW_PID" >/dev/null
	}
	cg_run resp16 "$CONNS" "$G/v1/responses" "$TMP/resp.lua"
	cg_run sgw16 "$CONNS" "$G/v1/chat/completions" "$TMP/gw-stream.lua"
	cg_run sresp16 "$CONNS" "$G/v1/responses" "$TMP/resp-stream.lua"
elif [ -z "$ONLY" ] || [ "$ONLY" = resp ]; then
	# the ratio of responses to chat from interleaved slices
	alt chat "$G/v1/chat/completions" "$TMP/gw.lua" \
		resp "$G/v1/responses" "$TMP/resp.lua"
	alt schat "$G/v1/chat/completions" "$TMP/gw-stream.lua" \
		sresp "$G/v1/responses" "$TMP/resp-stream.lua"
fi

# chat.send over WS: a new session and idempotency key per request, two
# ways: "ack" counts the res (sent when the run started: the client sends
# its next chat.send while runs still stream, so runs pile up), "run" (-W)
# waits for the run's terminal `chat` event before the next request (16
# runs in flight, like the 16 wrk connections of chat completions). The
# daemon's CPU is sampled after wsbench's 1 s warm-up and at its end: CPU
# us per run = CPU time / (runs/s x wall). The profilers go on "run".
declare -A CS CSE CSN CSEV CSCPU
CSPARAMS='{"sessionKey":"bench-%ID%","message":"Say hello.","idempotencyKey":"%ID%"}'
# wsbench's chat.send load (its options after ours): the RESULT line
cs_bench() {
	"$WSBENCH" rpc -u "ws://127.0.0.1:$GP" -t T -m chat.send \
		-s operator.write -P "$CSPARAMS" "$@" 2>&1 |
		grep '^RESULT' | tail -1
}
# result_of key line: key's number in a RESULT line (empty when absent)
result_of() { echo "$2" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
cs_run() {	# name [wsbench args]
	local name="$1" o t0 t1 bg
	shift
	(sleep 1; echo "$(ticks "$GW_PID") $(date +%s%N)" >"$TMP/$name-t0"
	 thread_ticks "$GW_PID" >"$TMP/$name-tt0"
	 thread_cs "$GW_PID" >"$TMP/$name-cs0"
	 if [ "$ONLY" = chatsend ] && [ "$name" = run ]; then
		prof_start
		[ -n "$CG" ] && sleep "$DURATION"
		prof_stop
	 fi) &
	bg=$!
	o=$(cs_bench -c "$CONNS" -d "$DURATION" -w 1 "$@")
	t1="$(ticks "$GW_PID") $(date +%s%N)"
	thread_ticks "$GW_PID" >"$TMP/$name-tt1"
	thread_cs "$GW_PID" >"$TMP/$name-cs1"
	wait "$bg"
	CS[$name]=$(result_of req_per_s "$o")
	CSE[$name]=$(result_of errors "$o")
	CSN[$name]=$(result_of requests "$o")
	CSEV[$name]=$(result_of events "$o")
	[ -n "${CS[$name]}" ] || CS[$name]="n/a"
	echo "$t1" >"$TMP/$name-t1"
	CSCPU[$name]=$(echo "$(cat "$TMP/$name-t0" 2>/dev/null) $t1" |
		awk -v r="${CS[$name]}" -v hz="$HZ" 'NF == 4 && r > 0 && $4 > $2 {
		printf "%.1f", ($3 - $1) / hz / (($4 - $2) / 1e9) / r * 1e6 }')
	[ -n "${CSCPU[$name]}" ] || CSCPU[$name]="n/a"
}
# chat completions while CONNS operator WS connections watch (wsbench
# idle): each of them gets every run's `chat` and `agent` events, the
# fan-out of the chat.send rows, so chat.send (run) has a comparison that
# does the same work around the run. WEV: frames the watchers got during
# the wrk run (the events before its READY line, their own presence, are
# left out).
WEV=""
watched_run() {
	local w i ev0 ev1
	"$WSBENCH" idle -u "ws://127.0.0.1:$GP" -t T -c "$CONNS" -H 600 \
		-T 30 >"$TMP/watch.out" 2>&1 &
	w=$!
	i=0
	until grep -q '^READY' "$TMP/watch.out"; do
		i=$((i + 1))
		if [ $i -gt 300 ] || ! kill -0 "$w" 2>/dev/null; then
			kill -TERM "$w" 2>/dev/null; wait "$w" 2>/dev/null
			echo "openai-overhead.sh: the WS watchers did not connect" >&2
			return 0
		fi
		sleep 0.1
	done
	ev0=$(sed -n 's/^READY.* events=\([0-9]*\).*/\1/p' "$TMP/watch.out")
	thread_ticks "$GW_PID" >"$TMP/watch-tt0"
	run gwwatch "$CONNS" "$G/v1/chat/completions" "$TMP/gw.lua" auth
	thread_ticks "$GW_PID" >"$TMP/watch-tt1"
	kill -TERM "$w" 2>/dev/null
	wait "$w" 2>/dev/null
	ev1=$(sed -n 's/^RESULT.* events=\([0-9]*\).*/\1/p' "$TMP/watch.out")
	[ -n "$ev1" ] && WEV=$((ev1 - ${ev0:-0}))
}
if [ -x "$WSBENCH" ] && [ "$ONLY" != chat ] && [ "$ONLY" != resp ]; then
	watched_run
	# "run" before "ack": the ack run leaves a backlog of thousands of
	# runs that takes seconds to end (longer under callgrind or load); a
	# run row measured behind it counted the backlog's work (callgrind's
	# instructions/run) or, once, no run at all
	cs_run run -W
	# the same 16 runs in flight from one operator connection: each run's
	# events go to one connection, not 16 (the HTTP rows' fan-out)
	cs_run run1 -W -c 1 -p "$CONNS"
	# the run1 load and chat completions in interleaved slices: their
	# ratio with the host's drift shared (the rows above are minutes
	# apart); not under the profilers
	[ -n "$CG" ] || [ -n "${BENCH_PERF:-}${BENCH_STRACE:-}" ] ||
		alt cschat "$G/v1/chat/completions" "$TMP/gw.lua" \
			csrun1 - WS
	cs_run ack
	# the ack run's backlog of runs ends before the figures below: wait
	# until the daemon idles (under 10 % of a core over 0.2 s; bounded,
	# 20 s)
	i=0
	while [ $i -lt 100 ]; do
		a=$(ticks "$GW_PID"); sleep 0.2; b=$(ticks "$GW_PID")
		[ $((b - a)) -le $((HZ / 50)) ] && break
		i=$((i + 1))
	done
fi
# every chat.send run ends before the figures of the store are read
curl -s -o /dev/null -H "Authorization: Bearer T" "$G/v1/models"
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null)
stop_pid "$GW_PID"; GW_PID=""
STORE=$(grep -o 'store: [0-9]* writes in [0-9]* commits.*' "$TMP/gw.log" |
	tail -1)

# ---- figures --------------------------------------------------------------
f() { echo "${R[$1]:-}" | awk -v i="$2" '{print $i}'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }

printf '%-34s %12s %12s %10s\n' "figure" "direct" "clawgate" "ratio/add"
printf '%-34s %12s %12s %10s\n' "chat req/s, $CONNS conns" \
	"$(f direct16 1)" "$(f gw16 1)" "$(ratio "$(f gw16 1)" "$(f direct16 1)")"
printf '%-34s %12s %12s %10s\n' "CPU us/request, $CONNS conns" \
	"${C[direct16]:-}" "${C[gw16]:-}" "(nginx / clawgate)"
if [ -n "${R[gw1]:-}" ]; then
printf '%-34s %12s %12s %10s\n' "chat p50 ms, 1 conn" \
	"$(f direct1 2)" "$(f gw1 2)" "$(sub "$(f gw1 2)" "$(f direct1 2)")"
printf '%-34s %12s %12s %10s\n' "chat p99 ms, 1 conn" \
	"$(f direct1 3)" "$(f gw1 3)" "$(sub "$(f gw1 3)" "$(f direct1 3)")"
fi
if [ -n "${R[sgw16]:-}" ]; then
printf '%-34s %12s %12s %10s\n' "stream req/s, $CONNS conns" \
	"$(f sdirect16 1)" "$(f sgw16 1)" "$(ratio "$(f sgw16 1)" "$(f sdirect16 1)")"
printf '%-34s %12s %12s %10s\n' "stream CPU us/request, $CONNS conns" \
	"${C[sdirect16]:-}" "${C[sgw16]:-}" "(nginx / clawgate)"
printf '%-34s %12s %12s %10s\n' "stream (last byte) p50 ms, 1 conn" \
	"$(f sdirect1 2)" "$(f sgw1 2)" "$(sub "$(f sgw1 2)" "$(f sdirect1 2)")"
printf '%-34s %12s %12s %10s\n' "stream (last byte) p99 ms, 1 conn" \
	"$(f sdirect1 3)" "$(f sgw1 3)" "$(sub "$(f sgw1 3)" "$(f sdirect1 3)")"
fi
ttft_rows
if [ -n "${R[resp16]:-}" ]; then
printf '%-34s %12s %12s %10s\n' "responses req/s, $CONNS conns" \
	"-" "$(f resp16 1)" "$(ratio "$(f resp16 1)" "$(f gw16 1)") of chat"
printf '%-34s %12s %12s %10s\n' "responses CPU us/request" \
	"-" "${C[resp16]:-}" ""
printf '%-34s %12s %12s %10s\n' "responses p50/p99 ms, 1 conn" \
	"-" "$(f resp1 2)/$(f resp1 3)" ""
fi
# alt_rows A B label: the interleaved pair's rows and B's ratio to A
alt_rows() {
	[ -n "${ALT[$2]:-}" ] || return 0
	set -- $(altf "$1") $(altf "$2") "$3"
	printf '%-34s %12s %12s %10s\n' "interleaved $5 chat req/s, CPU" \
		"-" "$1 / $2" ""
	printf '%-34s %12s %12s %10s\n' "interleaved $5 resp req/s, CPU" \
		"-" "$3 / $4" ""
	printf '%-34s %12s %12s %10s\n' "$5 responses/chat, interleaved" "-" \
		"$(ratio "$3" "$1") req/s" "$(ratio "$4" "$2") CPU"
}
alt_rows chat resp json
alt_rows schat sresp stream
if [ -n "${R[gwwatch]:-}" ]; then
	GWWN=$(awk '/requests in/ {print $1}' "$TMP/wrk-gwwatch.txt")
	printf '%-34s %12s %12s %10s\n' "chat req/s, $CONNS conns, $CONNS WS watching" \
		"-" "$(f gwwatch 1)" "$(ratio "$(f gwwatch 1)" "$(f gw16 1)") of chat"
	printf '%-34s %12s %12s %10s\n' "  CPU us/request, watched" \
		"-" "${C[gwwatch]:-}" ""
	[ -n "$WEV" ] && [ "${GWWN:-0}" -gt 0 ] 2>/dev/null &&
		printf '%-34s %12s %12s %10s\n' "  frames/request, watched" \
		"-" "$(awk -v a="$WEV" -v b="$GWWN" 'BEGIN { printf "%.1f", a / b }')" "(all watchers)"
fi
for k in ack run run1; do
	[ -n "${CS[$k]:-}" ] || continue
	how="$CONNS conns"
	[ "$k" = run1 ] && how="1 conn x $CONNS"
	printf '%-34s %12s %12s %10s\n' "chat.send ($k) runs/s, $how" \
		"-" "${CS[$k]}" "$(ratio "${CS[$k]}" "$(f gw16 1)") of chat"
	[ -n "${R[gwwatch]:-}" ] &&
		printf '%-34s %12s %12s %10s\n' "" "-" "" \
		"$(ratio "${CS[$k]}" "$(f gwwatch 1)") of watched"
	printf '%-34s %12s %12s %10s\n' "chat.send ($k) CPU us/run" "-" \
		"${CSCPU[$k]}" "${C[gwwatch]:+$(ratio "${CSCPU[$k]}" "${C[gwwatch]}") of watched}"
	[ "${CSN[$k]:-0}" -gt 0 ] 2>/dev/null &&
		printf '%-34s %12s %12s %10s\n' "chat.send ($k) frames/run" \
		"-" "$(awk -v a="${CSEV[$k]}" -v b="${CSN[$k]}" 'BEGIN { printf "%.1f", a / b }')" "(all conns)"
done
if [ -n "${ALT[csrun1]:-}" ]; then
	set -- $(altf cschat) $(altf csrun1)
	printf '%-34s %12s %12s %10s\n' "interleaved chat req/s, CPU" \
		"-" "$1 / $2" ""
	printf '%-34s %12s %12s %10s\n' "interleaved run1 runs/s, CPU" \
		"-" "$3 / $4" ""
	printf '%-34s %12s %12s %10s\n' "chat.send (run1)/chat, interleaved" \
		"-" "$(ratio "$3" "$1") runs/s" "$(ratio "$4" "$2") CPU"
	echo "  runs/s to chat in each ABBA block:${BLK[csrun1]:- n/a}"
fi
ERRS=0
for k in "${!R[@]}"; do ERRS=$((ERRS + $(f "$k" 4))); done
for k in "${!ALT[@]}"; do ERRS=$((ERRS + $(echo "${ALT[$k]}" | awk '{print $4}'))); done
echo "errors (non-2xx + socket, all wrk runs): $ERRS${CS[ack]:+; chat.send errors: ${CSE[ack]:-?} ${CSE[run]:-?} ${CSE[run1]:-?}}"
echo "daemon RSS after load: ${RSS:-?} kB"
# CPU per request of each thread during the chat run, largest first
printf '%s\n--\n%s\n' "$TT0" "$TT1" | awk -v n="${GWN:-0}" -v hz="$HZ" '
	/^--$/ { after = 1; next }
	{ if (after) b[$1] = $2; else a[$1] = $2 }
	END { if (n <= 0) exit
		for (k in b) { us = (b[k] - a[k]) * 1e6 / hz / n
			if (us >= 0.5) printf "%.1f %s\n", us, k }
	}' | sort -rn | awk '{ s = s sep $2 " " $1; sep = ", " }
	END { print "CPU us/request by thread (chat, '"$CONNS"' conns): " s }'
printf '%s\n--\n%s\n' "$CS0" "$CS1" | awk -v n="${GWN:-0}" '
	/^--$/ { after = 1; next }
	{ if (after) b[$1] = $2; else a[$1] = $2 }
	END { if (n <= 0) exit
		for (k in b) { c = (b[k] - a[k]) / n; t += c
			if (c >= 0.01) printf "%.2f %s\n", c, k }
		printf "%.2f total\n", t
	}' | sort -rn | awk '{ s = s sep $2 " " $1; sep = ", " }
	END { print "context switches/request by thread (chat, '"$CONNS"' conns): " s }'
# the same for the watched chat run
if [ -s "$TMP/watch-tt1" ] && [ "${GWWN:-0}" -gt 0 ] 2>/dev/null; then
	printf '%s\n--\n%s\n' "$(cat "$TMP/watch-tt0")" "$(cat "$TMP/watch-tt1")" |
		awk -v n="$GWWN" -v hz="$HZ" '
	/^--$/ { after = 1; next }
	{ if (after) b[$1] = $2; else a[$1] = $2 }
	END { for (k in b) { us = (b[k] - a[k]) * 1e6 / hz / n
			if (us >= 0.5) printf "%.1f %s\n", us, k } }' |
		sort -rn | awk '{ s = s sep $2 " " $1; sep = ", " }
	END { print "CPU us/request by thread (chat, '"$CONNS"' WS watching): " s }'
fi
# the same for the chat.send runs (per run; the window of CSCPU)
for k in ack run run1; do
	[ -s "$TMP/$k-tt1" ] && [ "${CSCPU[$k]:-n/a}" != n/a ] || continue
	RUNS=$(echo "$(cat "$TMP/$k-t0") $(cat "$TMP/$k-t1")" | awk -v r="${CS[$k]}" \
		'{ printf "%.0f", r * ($4 - $2) / 1e9 }')
	for w in tt cs; do
		printf '%s\n--\n%s\n' "$(cat "$TMP/$k-${w}0")" \
			"$(cat "$TMP/$k-${w}1")" | awk -v n="$RUNS" -v hz="$HZ" -v w=$w '
		/^--$/ { after = 1; next }
		{ if (after) b[$1] = $2; else a[$1] = $2 }
		END { if (n <= 0) exit
			for (k in b) { d = b[k] - a[k]
				v = w == "tt" ? d * 1e6 / hz / n : d / n
				if (v >= (w == "tt" ? 0.5 : 0.01)) printf "%.2f %s\n", v, k }
		}' | sort -rn | awk -v w=$w -v k=$k '{ s = s sep $2 " " $1; sep = ", " }
		END { print (w == "tt" ? "CPU us" : "context switches") \
			"/run by thread (chat.send " k "): " s }'
	done
done
echo "${STORE:-store: figures not logged}"
WALF=$(grep -o 'store: [0-9.]* WAL pages per commit.*' "$TMP/gw.log" | tail -1)
[ -n "$WALF" ] && echo "$WALF"
WSF=$(grep -o 'ws: [0-9]* frames in [0-9]* writes.*' "$TMP/gw.log" | tail -1)
[ -n "$WSF" ] && echo "$WSF"
if [ -n "$CG" ] && [ "$ONLY" = chatsend ]; then
	# instrumented over wsbench's measured window of the run row
	awk -v n="${CSN[run]:-0}" '/^(summary|totals):/ { ir = $2 }
		END { if (n > 0) printf "instructions/run (callgrind, chat.send run, all threads, user space): %.0f (%d runs)\n", ir / n, n }' "$CG"
elif [ -n "$CG" ] && [ "$ONLY" = resp ]; then
	# instructions per request of dump FILE.N, wrk run name
	cgreq() { awk -v n="$(awk '/requests in/ {print $1}' "$TMP/wrk-$2.txt")" \
		'/^(summary|totals):/ { ir = $2 } END { if (n > 0) printf "%.0f", ir / n }' "$CG.$1"; }
	set -- "$(cgreq 1 gw16)" "$(cgreq 2 resp16)" "$(cgreq 3 sgw16)" "$(cgreq 4 sresp16)"
	echo "instructions/request (callgrind, all threads): chat $1, responses $2 ($(ratio "$2" "$1") of chat); streamed: chat $3, responses $4 ($(ratio "$4" "$3"))"
elif [ -n "$CG" ]; then
	awk -v n="${GWN:-0}" '/^(summary|totals):/ { ir = $2 }
		END { if (n > 0) printf "instructions/request (callgrind, chat, all threads): %.0f (%d requests)\n", ir / n, n }' "$CG"
fi
if [ -n "$JSON_OUT" ]; then
	{
		echo "{"
		for k in "${!R[@]}"; do
			set -- ${R[$k]}
			echo "\"$k\": {\"rps\": $1, \"p50_ms\": $2, \"p99_ms\": $3, \"errors\": $4},"
		done
		for k in "${!ALT[@]}"; do
			set -- $(altf "$k")
			echo "\"interleaved_$k\": {\"rps\": \"$1\", \"cpu_us\": \"$2\"},"
		done
		echo "\"chat_send_rps\": \"${CS[ack]:-n/a}\","
		echo "\"chat_send_run_rps\": \"${CS[run]:-n/a}\","
		echo "\"chat_send_run1_rps\": \"${CS[run1]:-n/a}\"}"
	} >"$JSON_OUT"
fi
