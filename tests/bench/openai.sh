#!/bin/sh
# Figures of the OpenAI face against the fake upstream on loopback
# (issue 4): time to first token through clawgate minus direct (p50, p99),
# non-streaming chat completions per second, 200 concurrent streams with
# RSS, and /v1/models requests per second (wrk, keep-alive).
#   CLAWGATE_BIN  the daemon (use a build without sanitizers)
#   BENCH_N       TTFT samples (default 300)
#   BENCH_STREAMS concurrent streams (default 200, at most 1000: the
#                 HTTP front door holds 1024 connections)
#   BENCH_SECS    wrk duration (default 5)
# Needs python3 and wrk. Prints one "name: value" line per figure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${CLAWGATE_BIN:-./clawgate}
secs=${BENCH_SECS:-5}
py=${CLAWGATE_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-oabench.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
streams=${BENCH_STREAMS:-200}
case $streams in ''|*[!0-9]*) echo "BENCH_STREAMS: a number" >&2; exit 2;; esac
[ "$streams" -le 1000 ] || { echo "BENCH_STREAMS: at most 1000" >&2; exit 2; }
# a socket per stream on each side, plus the upstream's
ulimit -n $((streams * 3 + 256)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

freeport() {
	"$py" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# fake upstream
"$py" "$src/tests/integration/fakeupstream.py" >"$tmp/up.port" &
pids="$pids $!"
i=0
while [ ! -s "$tmp/up.port" ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.05; done
uport=$(cat "$tmp/up.port")

port=$(freeport)
cat >"$tmp/openclaw.json" <<JSON
{ "gateway": { "mode": "local" },
  "models": { "providers": { "fake": {
    "baseUrl": "http://127.0.0.1:$uport/v1", "api": "openai-completions",
    "models": [ { "id": "fake-model" } ] } } },
  "agents": { "defaults": { "model": "fake/fake-model" } },
  "logging": { "level": "warn" } }
JSON
OPENCLAW_STATE_DIR=$tmp OPENCLAW_CONFIG_PATH=$tmp/openclaw.json HOME=$tmp \
	"$bin" gateway run --port "$port" --token T --allow-unconfigured \
	>"$tmp/gw.log" 2>&1 &
gpid=$!
pids="$pids $gpid"
i=0
until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
	i=$((i+1)); [ $i -lt 200 ] || { cat "$tmp/gw.log"; exit 1; }; sleep 0.05
done

"$py" - "$uport" "$port" "$gpid" "${BENCH_N:-300}" "$streams" <<'PY'
import json, socket, sys, threading, time
uport, gport, gpid, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], \
    int(sys.argv[4])
N = int(sys.argv[5])

def ttft(port, path, auth):
    body = json.dumps({"model": "openclaw" if auth else "fake-model",
                       "stream": True,
                       "messages": [{"role": "user",
                                     "content": "hi [[reply:x y]]"}]})
    req = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
           "\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s" %
           (path, "Authorization: Bearer T\r\n" if auth else "",
            len(body), body)).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    # first token = the first content delta (the role chunk comes first)
    while b'"content": "x ' not in buf and b'"content":"x ' not in buf:
        c = s.recv(65536)
        if not c:
            break
        buf += c
    t = time.perf_counter() - t0
    while s.recv(65536):
        pass
    s.close()
    return t

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]

for _ in range(20):
    ttft(uport, "/v1/chat/completions", False)
    ttft(gport, "/v1/chat/completions", True)
d, g = [], []
for _ in range(n):   # interleaved, so drift hits both alike
    d.append(ttft(uport, "/v1/chat/completions", False))
    g.append(ttft(gport, "/v1/chat/completions", True))
ms = lambda x: "%.3f" % (x * 1000)
print("ttft_direct_ms: p50 %s p99 %s" % (ms(pct(d, .5)), ms(pct(d, .99))))
print("ttft_gateway_ms: p50 %s p99 %s" % (ms(pct(g, .5)), ms(pct(g, .99))))
print("ttft_added_ms: p50 %s p99 %s" % (ms(pct(g, .5) - pct(d, .5)),
                                         ms(pct(g, .99) - pct(d, .99))))

def rss_kb(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

# N concurrent streams (BENCH_STREAMS): each 40 chunks, 100 ms apart (~4 s)
base = rss_kb(gpid)
peak = [base]
done = []
body = json.dumps({"model": "openclaw", "stream": True, "messages": [
    {"role": "user", "content": " ".join("w%d" % i for i in range(40)) +
     " [[delay:100]]"}]})
req = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
       "application/json\r\nAuthorization: Bearer T\r\nContent-Length: %d"
       "\r\nConnection: close\r\n\r\n%s" % (len(body), body)).encode()

def stream():
    s = socket.create_connection(("127.0.0.1", gport))
    s.sendall(req)
    buf = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        buf += c
    s.close()
    done.append(b"[DONE]" in buf)

ts = [threading.Thread(target=stream) for _ in range(N)]
for t in ts:
    t.start()
while any(t.is_alive() for t in ts):
    peak.append(rss_kb(gpid))
    time.sleep(0.05)
for t in ts:
    t.join()
print("streams_%d: completed %d/%d rss_base_mb %.1f rss_peak_mb %.1f "
      "added_per_stream_kb %.1f" % (N, sum(done), N, base / 1024.0,
                                    max(peak) / 1024.0,
                                    (max(peak) - base) / float(N)))
PY

# wrk: /v1/models keep-alive; non-streaming chat through the gateway and
# direct (the Python fake upstream bounds the latter two).
cat >"$tmp/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"openclaw","messages":[{"role":"user","content":"hi [[reply:ok]]"}]}'
LUA
rps() { awk '/Requests\/sec/ {print $2}'; }
m=$(wrk -t2 -c64 -d"${secs}s" -H 'Authorization: Bearer T' \
	"http://127.0.0.1:$port/v1/models" | rps)
echo "models_rps: $m"
c=$(wrk -t2 -c16 -d"${secs}s" -s "$tmp/chat.lua" -H 'Authorization: Bearer T' \
	"http://127.0.0.1:$port/v1/chat/completions" | rps)
u=$(wrk -t2 -c16 -d"${secs}s" -s "$tmp/chat.lua" \
	"http://127.0.0.1:$uport/v1/chat/completions" | rps)
echo "chat_nonstream_rps: gateway $c direct-upstream $u"
