"""A deterministic OpenAI-compatible upstream for the black-box tests.

Serves POST /v1/chat/completions (and /chat/completions), streaming (SSE)
and not, and POST /v1/embeddings, on a free loopback port. Behaviour is
scripted by the test, either with directives in the last user message:

    [[reply:TEXT]]      answer TEXT (default: "echo: <user text>")
    [[chunks:N]]        stream the answer in N pieces (default: per word)
    [[delay:MS]]        pause MS between stream chunks
    [[slow:MS]]         wait MS before the first byte (headers included)
    [[status:CODE]]     answer an OpenAI error JSON with that HTTP status
    [[cut:N]]           stream N chunks, then drop the connection
    [[hang]]            accept and never answer (until the client leaves)
    [[gate]]            wait before the first byte until the test calls
                        open_gate() (bounded: 120 s)
    [[tool:NAME:JSON]]  answer with a tool call NAME(arguments=JSON)
    [[usage:IN,OUT]]    report these token counts
    [[finish:REASON]]   finish_reason (default stop / tool_calls)
    [[json]]            answer one chat.completion JSON (Content-Length,
                        keep-alive) even when a stream was asked for

or with a queue of scripts pushed to the control endpoint:

    POST /__control  {"push": {"reply": "...", "status": 500, ...}}
                     {"reset": true}
    GET  /__stats    {"chat": n, "embeddings": n, "requests": [bodies],
                      "inflight": n, "disconnects": n,
                      "chat_conns": distinct client connections of chats}

Keys of a pushed script mirror the directives (reply, chunks, delay, slow,
status, cut, hang, tool: {name, arguments}, usage: [in, out], finish).
Run standalone: python3 fakeupstream.py [--port N] (prints the port).
"""

import hashlib
import json
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIRECTIVE = re.compile(r"\[\[(\w+)(?::(.*?))?\]\]", re.S)


def _user_text(messages):
    for m in reversed(messages or []):
        if m.get("role") in ("user", "tool"):
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c
                                if isinstance(p, dict))
    return ""


def script_from_text(text):
    s = {}
    for name, arg in DIRECTIVE.findall(text or ""):
        if name == "reply":
            s["reply"] = arg
        elif name in ("chunks", "delay", "slow", "status", "cut"):
            s[name] = int(arg)
        elif name in ("hang", "json", "gate"):
            s[name] = True
        elif name == "tool":
            tname, _, targs = arg.partition(":")
            s["tool"] = {"name": tname, "arguments": targs or "{}"}
        elif name == "usage":
            a, _, b = arg.partition(",")
            s["usage"] = [int(a), int(b)]
        elif name == "finish":
            s["finish"] = arg
    return s


def embed(text, dims=8):
    """A deterministic unit vector for text."""
    h = hashlib.sha256(text.encode()).digest()
    while len(h) < dims * 2:
        h += hashlib.sha256(h).digest()
    v = [(struct.unpack(">H", h[i * 2:i * 2 + 2])[0] / 65535.0) - 0.5
         for i in range(dims)]
    n = sum(x * x for x in v) ** 0.5 or 1.0
    return [round(x / n, 6) for x in v]


class FakeUpstream:
    def __init__(self, host="127.0.0.1", port=0, api_key=None):
        self.api_key = api_key
        self.lock = threading.Lock()
        self.queue = []
        self.stats = {"chat": 0, "embeddings": 0, "requests": [],
                      "inflight": 0, "disconnects": 0, "headers": [],
                      "chat_conns": 0}
        self.peers = set()
        self.stop_event = threading.Event()
        self.gate = threading.Event()
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/__stats":
                    with up.lock:
                        body = json.dumps(up.stats).encode()
                    return self._send(200, body)
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    return self._send(200, json.dumps({
                        "object": "list", "data": [
                            {"id": "fake-model", "object": "model",
                             "created": 0, "owned_by": "fake"}]}).encode())
                self._send(404, b'{"error":{"message":"not found"}}')

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self._send(400, b'{"error":{"message":"bad json"}}')
                path = self.path.split("?")[0]
                if path == "/__control":
                    return self._control(body)
                if up.api_key is not None and \
                        self.headers.get("Authorization") != \
                        "Bearer " + up.api_key:
                    return self._send(401, json.dumps({"error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error"}}).encode())
                if path.endswith("/chat/completions"):
                    return self._chat(body)
                if path.endswith("/embeddings"):
                    return self._embeddings(body)
                self._send(404, b'{"error":{"message":"not found"}}')

            def _send(self, status, body, ctype="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _control(self, body):
                with up.lock:
                    if body.get("reset"):
                        up.queue.clear()
                        up.stats.update(chat=0, embeddings=0, requests=[],
                                        disconnects=0, headers=[],
                                        chat_conns=0)
                        up.peers.clear()
                    if "push" in body:
                        up.queue.append(body["push"])
                self._send(200, b'{"ok":true}')

            def _script(self, body):
                with up.lock:
                    if up.queue:
                        return dict(up.queue.pop(0))
                return script_from_text(_user_text(body.get("messages")))

            def _chat(self, body):
                with up.lock:
                    up.stats["chat"] += 1
                    up.peers.add(self.client_address)
                    up.stats["chat_conns"] = len(up.peers)
                    up.stats["requests"].append(body)
                    up.stats["headers"].append(dict(self.headers))
                    del up.stats["requests"][:-50]
                    del up.stats["headers"][:-50]
                    up.stats["inflight"] += 1
                try:
                    self._chat_run(body)
                except (BrokenPipeError, ConnectionResetError):
                    with up.lock:
                        up.stats["disconnects"] += 1
                finally:
                    with up.lock:
                        up.stats["inflight"] -= 1

            def _chat_run(self, body):
                s = self._script(body)
                if s.get("gate"):
                    up.gate.wait(120)
                if s.get("slow"):
                    time.sleep(s["slow"] / 1000.0)
                if s.get("hang"):
                    # Until the client goes away (or the server stops).
                    self.connection.settimeout(0.05)
                    while not up.stop_event.is_set():
                        try:
                            if self.connection.recv(1, socket.MSG_PEEK) \
                                    == b"":
                                raise ConnectionResetError()
                        except socket.timeout:
                            continue
                    return
                if s.get("status"):
                    err = {"error": {"message": "fake upstream error %d"
                                     % s["status"],
                                     "type": "server_error",
                                     "code": s["status"]}}
                    return self._send(s["status"], json.dumps(err).encode())
                model = body.get("model") or "fake-model"
                text = s.get("reply")
                if text is None:
                    text = "echo: " + DIRECTIVE.sub(
                        "", _user_text(body.get("messages"))).strip()
                tool = s.get("tool")
                pin = sum(len(json.dumps(m)) for m in
                          body.get("messages") or []) // 4 + 1
                usage = s.get("usage") or [pin, max(1, len(text.split()))]
                finish = s.get("finish") or ("tool_calls" if tool else
                                             "stop")
                cid = "chatcmpl-fake%d" % up.stats["chat"]
                created = 1700000000
                usage_obj = {"prompt_tokens": usage[0],
                             "completion_tokens": usage[1],
                             "total_tokens": usage[0] + usage[1]}
                if not body.get("stream") or s.get("json"):
                    msg = {"role": "assistant",
                           "content": None if tool and not s.get("reply")
                           else text}
                    if tool:
                        msg["tool_calls"] = [{
                            "id": "call_fake1", "type": "function",
                            "function": {"name": tool["name"],
                                         "arguments": tool["arguments"]}}]
                    out = {"id": cid, "object": "chat.completion",
                           "created": created, "model": model,
                           "choices": [{"index": 0, "message": msg,
                                        "finish_reason": finish}],
                           "usage": usage_obj}
                    return self._send(200, json.dumps(out).encode())
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

                def chunk(delta, fin=None, extra=None):
                    o = {"id": cid, "object": "chat.completion.chunk",
                         "created": created, "model": model,
                         "choices": [{"index": 0, "delta": delta,
                                      "finish_reason": fin}]}
                    if extra:
                        o.update(extra)
                    self.wfile.write(b"data: " + json.dumps(o).encode() +
                                     b"\n\n")
                    self.wfile.flush()

                pieces = []
                if not tool or s.get("reply"):
                    if s.get("chunks"):
                        k = max(1, s["chunks"])
                        step = max(1, -(-len(text) // k))
                        pieces = [text[i:i + step]
                                  for i in range(0, len(text), step)]
                    else:
                        words = text.split(" ")
                        pieces = [w + (" " if i < len(words) - 1 else "")
                                  for i, w in enumerate(words)]
                chunk({"role": "assistant", "content": ""})
                sent = 0
                for p in pieces:
                    if s.get("cut") is not None and sent >= s["cut"]:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    chunk({"content": p})
                    sent += 1
                    if s.get("delay"):
                        time.sleep(s["delay"] / 1000.0)
                if s.get("cut") is not None:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if tool:
                    a = tool["arguments"]
                    half = len(a) // 2
                    chunk({"tool_calls": [{
                        "index": 0, "id": "call_fake1", "type": "function",
                        "function": {"name": tool["name"],
                                     "arguments": a[:half]}}]})
                    chunk({"tool_calls": [{
                        "index": 0, "function": {"arguments": a[half:]}}]})
                chunk({}, finish)
                if (body.get("stream_options") or {}).get("include_usage"):
                    o = {"id": cid, "object": "chat.completion.chunk",
                         "created": created, "model": model, "choices": [],
                         "usage": usage_obj}
                    self.wfile.write(b"data: " + json.dumps(o).encode() +
                                     b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _embeddings(self, body):
                with up.lock:
                    up.stats["embeddings"] += 1
                    up.stats["requests"].append(body)
                    del up.stats["requests"][:-50]
                    s = dict(up.queue.pop(0)) if up.queue else {}
                inp = body.get("input")
                items = [inp] if isinstance(inp, str) else list(inp or [])
                if not s and items:
                    s = script_from_text(items[0])
                if s.get("status"):
                    err = {"error": {"message": "fake upstream error %d"
                                     % s["status"], "type": "server_error"}}
                    return self._send(s["status"], json.dumps(err).encode())
                dims = int(body.get("dimensions") or 8)
                out = {"object": "list", "model": body.get("model"),
                       "data": [{"object": "embedding", "index": i,
                                 "embedding": embed(t, dims)}
                                for i, t in enumerate(items)],
                       "usage": {"prompt_tokens": sum(len(t.split())
                                                      for t in items),
                                 "total_tokens": sum(len(t.split())
                                                     for t in items)}}
                self._send(200, json.dumps(out).encode())

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 1024

            def handle_error(self, request, client_address):
                # Clients (wrk, tests) drop connections on purpose.
                if not isinstance(sys.exc_info()[1], (ConnectionError,
                                                      TimeoutError)):
                    super().handle_error(request, client_address)

        self.server = Server((host, port), Handler)
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = None

    @property
    def base_url(self):
        return "http://%s:%d/v1" % (self.host, self.port)

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    # -- helpers for tests ---------------------------------------------------
    def push(self, **script):
        with self.lock:
            self.queue.append(script)

    def open_gate(self):
        """Let every request held by [[gate]] go on (and later ones pass)."""
        self.gate.set()

    def reset(self):
        self.gate.clear()
        with self.lock:
            self.queue.clear()
            self.stats.update(chat=0, embeddings=0, requests=[],
                              disconnects=0, headers=[])

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.stats))

    def wait(self, pred, timeout=5.0):
        """Wait until pred(stats) is true; returns the stats."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.snapshot()
            if pred(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError("fake upstream: condition not met; "
                                     "stats=%r" % {k: v for k, v in
                                                   st.items()
                                                   if k != "requests"})
            time.sleep(0.01)


def main(argv):
    port = 0
    if "--port" in argv:
        port = int(argv[argv.index("--port") + 1])
    up = FakeUpstream(port=port)
    print(up.port, flush=True)
    try:
        up.server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
