#!/bin/bash
# secrets-throughput.sh: request throughput with 1,000 SecretRefs configured
# vs none (issue 15). nginx (nginx-light) is the mock OpenAI upstream on a
# free loopback port (as openai-overhead.sh); clawgate fronts it twice,
# one instance after the other, with the same 1,000 model providers:
#   plain  every apiKey is a plaintext string (no ref at all)
#   refs   every apiKey is a file SecretRef ({source:"file", provider:"keys",
#          id:"/kN"}) resolved at start from one 0600 JSON file
# Provider p0 (the agent's model) serves the requests in both. wrk runs the
# same load on each and the figures are printed side by side.
#
#   tests/bench/secrets-throughput.sh [--duration S] [--conns N] [--refs N]
#                                     [--rounds N]
#
# The two run alternately --rounds times (default 3: plain, refs, plain,
# ...) and each figure is the median over the rounds, so that a burst of
# load from elsewhere on the machine does not land on one side only.
#
#   CLAWGATE_BIN  the daemon (default ./clawgate; a build without sanitizers)
#
# Needs nginx, wrk, python3 and curl. Loopback only; every wait is bounded;
# nothing is left running. See tests/bench/README.md.
set -u

DURATION=5
CONNS=16
NREFS=1000
ROUNDS=3
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION="$2"; shift 2 ;;
	--conns) CONNS="$2"; shift 2 ;;
	--refs) NREFS="$2"; shift 2 ;;
	--rounds) ROUNDS="$2"; shift 2 ;;
	-h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "secrets-throughput.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

BIN="${CLAWGATE_BIN:-./clawgate}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
PY="${CLAWGATE_PYTHON:-python3}"
for t in "$NGINX" wrk curl "$PY"; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "secrets-throughput.sh: $t not found" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "secrets-throughput.sh: no clawgate at $BIN" >&2
	exit 2; }
if ldd "$BIN" 2>/dev/null | grep -q libasan; then
	echo "secrets-throughput.sh: warning: $BIN is an ASan build" >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-secbench.XXXXXX")
NGX_PID=""
GW_PID=""

stop_pid() {
	local pid="$1" i=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	while [ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
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
		i=$((i + 1)); [ $i -lt 500 ] || return 1; sleep 0.02
	done
}

# ---- the mock upstream (a fixed SSE stream: clawgate asks for one) --------
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
    location = /sse/v1/chat/completions {
      default_type text/event-stream;
      return 200 'data: $CHUNK"delta":{"role":"assistant"},"finish_reason":null}]}\n\ndata: $CHUNK"delta":{"content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}\n\ndata: [DONE]\n\n';
    }
  }
}
EOF
"$NGINX" -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf" >"$TMP/ngx/out.log" 2>&1 &
NGX_PID=$!
wait_http "http://127.0.0.1:$UP/" || { cat "$TMP/ngx/out.log"
	echo "secrets-throughput.sh: nginx did not start" >&2; exit 1; }

# ---- the two configurations ---------------------------------------------------
# gen MODE DIR: DIR/openclaw.json (+ DIR/keys.json for refs)
gen() {
	"$PY" - "$1" "$2" "$UP" "$NREFS" <<'EOF'
import json, os, sys
mode, d, up, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.makedirs(d, exist_ok=True)
keys = {"k%d" % i: "sk-bench-%06d-Zq81xYv7" % i for i in range(n)}
provs = {}
for i in range(n):
    key = keys["k%d" % i] if mode == "plain" else \
        {"source": "file", "provider": "keys", "id": "/k%d" % i}
    provs["p%d" % i] = {"baseUrl": "http://127.0.0.1:%s/sse/v1" % up,
                        "api": "openai-completions", "apiKey": key,
                        "models": [{"id": "mock"}]}
cfg = {"gateway": {"mode": "local"}, "models": {"providers": provs},
       "agents": {"defaults": {"model": "p0/mock"}}}
if mode == "refs":
    p = os.path.join(d, "keys.json")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, json.dumps(keys).encode())
    os.close(fd)
    cfg["secrets"] = {"providers": {"keys": {"source": "file", "path": p}}}
with open(os.path.join(d, "openclaw.json"), "w") as f:
    json.dump(cfg, f)
EOF
}

lua() {	# file body: a POST script
	cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
EOF
}
lua "$TMP/chat.lua" '{"model":"openclaw","messages":[{"role":"user","content":"Say hello."}]}'

# wrk output -> "rps p50_ms p99_ms errors"
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
declare -A R CPU
# CPU ticks (user + system) of a process
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
wrk_run() {	# name conns url [script]; CPU[name]: daemon CPU us/request
	local name="$1" c="$2" url="$3" s="${4:-}" t=2 out t0 t1 n
	[ "$c" -lt 2 ] && t=1
	t0=$(ticks "$GW_PID")
	if [ -n "$s" ]; then
		out=$(wrk -t$t -c"$c" -d"${DURATION}s" --latency -s "$s" \
			-H "Authorization: Bearer T" "$url" 2>&1)
	else
		out=$(wrk -t$t -c"$c" -d"${DURATION}s" --latency \
			-H "Authorization: Bearer T" "$url" 2>&1)
	fi
	t1=$(ticks "$GW_PID")
	echo "$out" >"$TMP/wrk-$name.txt"
	R[$name]=$(echo "$out" | wrk_parse)
	n=$(echo "$out" | awk '/requests in/ {print $1}')
	CPU[$name]=$(awk -v a="$t0" -v b="$t1" -v n="${n:-0}" -v hz="$HZ" \
		'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print 0 }')
}
now_ms() { date +%s%3N; }

# bench MODE ROUND: start clawgate on MODE's config, load it, stop it
bench() {
	local mode="$1" k="$1-$2" d="$TMP/$1" port t0 t1 code
	rm -rf "$d"
	gen "$mode" "$d" || return 1
	port=$(freeport)
	t0=$(now_ms)
	OPENCLAW_STATE_DIR=$d OPENCLAW_CONFIG_PATH=$d/openclaw.json HOME=$TMP \
		"$BIN" gateway run --port "$port" --auth token --token T \
		--allow-unconfigured >"$d/gw.log" 2>&1 &
	GW_PID=$!
	wait_http "http://127.0.0.1:$port/readyz" || { tail -20 "$d/gw.log"
		echo "secrets-throughput.sh: clawgate ($mode) did not start" >&2
		return 1; }
	t1=$(now_ms)
	START[$k]=$((t1 - t0))
	G="http://127.0.0.1:$port"
	# the key really reaches the upstream path (200, not a cold owner)
	code=$(curl -s -o "$d/first.json" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer T" -H "Content-Type: application/json" \
		-d '{"model":"openclaw","messages":[{"role":"user","content":"hi"}]}' \
		"$G/v1/chat/completions")
	[ "$code" = 200 ] || { cat "$d/first.json"; tail -20 "$d/gw.log"
		echo "secrets-throughput.sh: first request ($mode): $code" >&2
		return 1; }
	wrk -t1 -c4 -d1s -s "$TMP/chat.lua" -H "Authorization: Bearer T" \
		"$G/v1/chat/completions" >/dev/null 2>&1	# warm-up
	wrk_run "chat16-$k" "$CONNS" "$G/v1/chat/completions" "$TMP/chat.lua"
	wrk_run "chat1-$k" 1 "$G/v1/chat/completions" "$TMP/chat.lua"
	wrk_run "models16-$k" "$CONNS" "$G/v1/models"
	RSS[$k]=$(awk '/VmRSS/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null)
	stop_pid "$GW_PID"; GW_PID=""
}
declare -A START RSS
for r in $(seq 1 "$ROUNDS"); do
	bench plain "$r" || exit 1
	bench refs "$r" || exit 1
done

# f NAME FIELD: the median over the rounds of field FIELD of R[NAME-MODE-r]
# (NAME is "chat16-plain" etc.)
f() {
	local r v=""
	for r in $(seq 1 "$ROUNDS"); do
		v="$v $(echo "${R[$1-$r]}" | awk -v i="$2" '{print $i}')"
	done
	echo $v | tr ' ' '\n' | sort -g | awk '{a[NR] = $1}
		END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
med() {	# med ARRAY-NAME MODE: median of ARRAY[MODE-r]
	local -n arr="$1"
	local r v=""
	for r in $(seq 1 "$ROUNDS"); do v="$v ${arr[$2-$r]:-0}"; done
	echo $v | tr ' ' '\n' | sort -g | awk '{a[NR] = $1}
		END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "n/a" }'; }

echo "$("$BIN" --version 2>/dev/null | head -1), $NREFS model providers, wrk ${DURATION}s, median of $ROUNDS alternating rounds"
printf '%-32s %14s %14s %10s\n' "figure" "0 refs" "$NREFS refs" "refs/plain"
printf '%-32s %14s %14s %10s\n' "chat req/s, $CONNS conns" \
	"$(f chat16-plain 1)" "$(f chat16-refs 1)" \
	"$(ratio "$(f chat16-refs 1)" "$(f chat16-plain 1)")"
printf '%-32s %14s %14s %10s\n' "daemon CPU us/chat, $CONNS conns" \
	"$(med CPU chat16-plain)" "$(med CPU chat16-refs)" \
	"$(ratio "$(med CPU chat16-refs)" "$(med CPU chat16-plain)")"
printf '%-32s %14s %14s %10s\n' "daemon CPU us/models, $CONNS c" \
	"$(med CPU models16-plain)" "$(med CPU models16-refs)" \
	"$(ratio "$(med CPU models16-refs)" "$(med CPU models16-plain)")"
printf '%-32s %14s %14s %10s\n' "chat p50 ms, $CONNS conns" \
	"$(f chat16-plain 2)" "$(f chat16-refs 2)" ""
printf '%-32s %14s %14s %10s\n' "chat req/s, 1 conn" \
	"$(f chat1-plain 1)" "$(f chat1-refs 1)" \
	"$(ratio "$(f chat1-refs 1)" "$(f chat1-plain 1)")"
printf '%-32s %14s %14s %10s\n' "chat p50/p99 ms, 1 conn" \
	"$(f chat1-plain 2)/$(f chat1-plain 3)" \
	"$(f chat1-refs 2)/$(f chat1-refs 3)" ""
printf '%-32s %14s %14s %10s\n' "/v1/models req/s, $CONNS conns" \
	"$(f models16-plain 1)" "$(f models16-refs 1)" \
	"$(ratio "$(f models16-refs 1)" "$(f models16-plain 1)")"
printf '%-32s %14s %14s %10s\n' "exec -> /readyz 200, ms" \
	"$(med START plain)" "$(med START refs)" ""
printf '%-32s %14s %14s %10s\n' "RSS after load, kB" \
	"$(med RSS plain)" "$(med RSS refs)" ""
ERRS=0
for k in "${!R[@]}"; do
	ERRS=$((ERRS + $(echo "${R[$k]}" | awk '{print $4}')))
done
echo "errors (non-2xx + socket, all wrk runs): $ERRS"
