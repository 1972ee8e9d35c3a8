"""The plain-http upstream client (src/agent/h1.c, issue 11): requests to
an http:// upstream on an IP literal go out without libcurl. A scripted
raw-socket upstream checks what the protocol allows and the fake upstream
does not do: chunked streams cut at odd places, a keep-alive connection
the server drops while it is idle (the request is sent again on a new
one), a refused connection; and that libcurl still serves a host name or
CLAWGATE_UPSTREAM_CURL=1 (libcurl asks for compressed answers, h1 does
not: the Accept-Encoding header tells them apart)."""

import json
import os
import socket
import threading

import pytest

from harness import clawgate_only
from oahelp import TOKEN, chat, sse_json

pytestmark = clawgate_only("the upstream client is clawgate's")

CHUNK = ('{"id":"c","object":"chat.completion.chunk","created":1,'
         '"model":"m","choices":[{"index":0,"delta":%s,'
         '"finish_reason":%s}]}')


def sse_body(words):
    ev = ["data: " + CHUNK % ('{"role":"assistant"}', "null")]
    for w in words:
        ev.append("data: " + CHUNK % (json.dumps({"content": w}), "null"))
    ev.append("data: " + CHUNK % ("{}", '"stop"'))
    ev.append("data: [DONE]")
    return "".join(e + "\n\n" for e in ev).encode()


class RawUpstream:
    """A loopback HTTP/1.1 server answering every POST with an SSE
    stream of self.words. mode: "chunked" (odd chunk sizes, keep-alive),
    "drop-idle" (Content-Length, keep-alive announced, but the
    connection is closed right after each answer), "drop-reuse" (the
    same, but a connection is closed when a second request arrives on
    it, unanswered: a close that crossed the request)."""

    def __init__(self, mode):
        self.mode = mode
        self.words = ["alpha ", "beta ", "gamma"]
        self.lock = threading.Lock()
        self.requests = []		# (connection number, headers)
        self.conns = 0
        self.dropped = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.stop = True
        self.sock.close()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
            threading.Thread(target=self._serve, args=(c, n),
                             daemon=True).start()

    def _read_request(self, c, buf):
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None, b""
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(rest) < n:
            d = c.recv(65536)
            if not d:
                return None, b""
            rest += d
        return hdrs, rest[n:]

    def _serve(self, c, n):
        c.settimeout(30)
        buf = b""
        served = 0
        try:
            while True:
                hdrs, buf = self._read_request(c, buf)
                if hdrs is None:
                    return
                if self.mode == "drop-reuse" and served:
                    with self.lock:
                        self.dropped += 1
                    return
                served += 1
                with self.lock:
                    self.requests.append((n, hdrs))
                body = sse_body(self.words)
                if self.mode == "chunked":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: "
                              b"text/event-stream\r\nTransfer-Encoding: "
                              b"chunked\r\n\r\n")
                    i, k = 0, 1
                    while i < len(body):
                        part = body[i:i + k]
                        c.sendall(b"%x;ext=1\r\n" % len(part) + part +
                                  b"\r\n")
                        i += k
                        k = k % 97 + 13
                    c.sendall(b"0\r\nX-Trailer: done\r\n\r\n")
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: "
                              b"text/event-stream\r\nContent-Length: %d"
                              b"\r\n\r\n" % len(body) + body)
                    if self.mode == "drop-idle":
                        c.shutdown(socket.SHUT_RDWR)
                        return
        except OSError:
            return
        finally:
            c.close()


def raw_config(base_url):
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"raw": {
            "baseUrl": base_url, "apiKey": "sk-raw",
            "api": "openai-completions", "timeoutSeconds": 20,
            "models": [{"id": "m"}]}}},
        "agents": {"defaults": {"model": "raw/m"}},
    }


def libcurl_mapped(gw):
    with open("/proc/%d/maps" % gw.proc.pid) as f:
        return any(os.path.basename(line.split()[-1]).startswith("libcurl")
                   for line in f if ".so" in line)


def post(gw, body, stream=False):
    return gw.http("POST", "/v1/chat/completions", json=body,
                   headers={"Authorization": "Bearer " + TOKEN},
                   stream=stream, timeout=30)


@pytest.fixture
def raw(request):
    up = RawUpstream(request.param)
    yield up
    up.close()


@pytest.mark.parametrize("raw", ["chunked"], indirect=True)
def test_chunked_stream_complete_and_in_order(launcher, raw):
    """A chunked SSE stream cut at odd places (chunk extensions, a
    trailer) reaches the client complete and in order, streamed and not,
    and the keep-alive connection carries every request."""
    gw = launcher.start(config=raw_config("http://127.0.0.1:%d/v1"
                                          % raw.port))
    for i in range(3):
        raw.words = ["w%d-%d " % (i, j) for j in range(30)]
        r = post(gw, chat("hi"))
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == \
            "".join(raw.words)
        r = post(gw, chat("hi", stream=True), stream=True)
        assert r.status_code == 200
        got = sse_json(r)
        assert got[-1] == "[DONE]"
        text = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in got[:-1] if c["choices"])
        assert text == "".join(raw.words)
    with raw.lock:
        assert len(raw.requests) == 6
        assert {n for n, _ in raw.requests} == {1}
        h = raw.requests[0][1]
    assert h["authorization"] == "Bearer sk-raw"
    assert h["host"] == "127.0.0.1:%d" % raw.port
    assert "accept-encoding" not in h, h	# not libcurl
    # libcurl is loaded by the first request that needs it: none here.
    assert not libcurl_mapped(gw)


@pytest.mark.parametrize("raw", ["drop-idle", "drop-reuse"], indirect=True)
def test_dropped_keepalive_connection(launcher, raw):
    """The server announces keep-alive but closes the connection after
    its answer (seen while the connection is idle), or when the next
    request arrives on it (the close crossed the request, which is then
    sent again on a new connection): every request is answered."""
    gw = launcher.start(config=raw_config("http://127.0.0.1:%d/v1"
                                          % raw.port))
    for i in range(4):
        raw.words = ["r%d" % i]
        r = post(gw, chat("hi"))
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "r%d" % i
    with raw.lock:
        assert len(raw.requests) == 4
        assert len({n for n, _ in raw.requests}) == 4
        if raw.mode == "drop-reuse":
            assert raw.dropped == 3


def test_refused_connection_is_a_clear_error(launcher):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()		# nothing listens there now
    gw = launcher.start(config=raw_config("http://127.0.0.1:%d/v1" % port))
    r = post(gw, chat("hi"))
    assert r.status_code == 502, r.text
    msg = r.json()["error"]["message"]
    assert "upstream request failed" in msg and "Failed to connect" in msg, \
        msg


@pytest.mark.parametrize("raw", ["chunked"], indirect=True)
@pytest.mark.parametrize("how", ["env", "hostname"])
def test_libcurl_still_serves_the_rest(launcher, raw, how):
    """CLAWGATE_UPSTREAM_CURL=1, or a host name in baseUrl: libcurl sends
    the request (with its Accept-Encoding) and the answer is the same."""
    if how == "env":
        gw = launcher.start(config=raw_config("http://127.0.0.1:%d/v1"
                                              % raw.port),
                            env={"CLAWGATE_UPSTREAM_CURL": "1"})
    else:
        gw = launcher.start(config=raw_config("http://localhost:%d/v1"
                                              % raw.port))
    r = post(gw, chat("hi"))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == \
        "".join(raw.words)
    with raw.lock:
        h = raw.requests[-1][1]
    assert "accept-encoding" in h, h
    assert libcurl_mapped(gw)
