"""Concurrent streams past one libmicrohttpd daemon's 1,024 (issue 11).

The HTTP face runs several libmicrohttpd daemons (shards), each capped by
the front door below MHD's own limit (doc/hardening.md, the 0.9.75
deadlock); gateway.http.maxConnections caps them together. The upstream
(holdupstream.py) holds every stream open until the test releases it, so
the number it holds at once is the number the gateway holds at once."""

import resource
import time

import pytest

from holdupstream import HoldUpstream, StreamRun
from relhelp import (closed_within, figure, nfds, raise_nofile, read_reply,
                     scale, status_of, tcp)

TOKEN = "T"


def _config(up, max_conns):
    return {
        "gateway": {"mode": "local",
                    "http": {"maxConnections": max_conns}},
        "models": {"providers": {"hold": {
            "baseUrl": up.base_url, "apiKey": "sk-hold",
            "api": "openai-completions", "timeoutSeconds": 300,
            "models": [{"id": "hold-model", "name": "Hold"}]}}},
        # Every stream the connections allow is upstream at once: the
        # global run lane (agents.defaults.maxConcurrent) lets them be.
        "agents": {"defaults": {"model": "hold/hold-model",
                                "maxConcurrent": max_conns}},
    }


def _wait_held(up, n, timeout):
    deadline = time.monotonic() + timeout
    while up.held < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return up.held


def test_streams_past_one_daemon(launcher):
    """1,500 streams held at once through shards of 256: every one is
    answered 200, the upstream holds all of them at the same time, and
    every one ends with [DONE] once released."""
    n = scale(1500, 3000)
    raise_nofile(3 * n + 2000)
    up = HoldUpstream().start()
    try:
        gw = launcher.start(config=_config(up, 4096),
                            env={"CLAWGATE_HTTP_SHARD_CONNS": "256"})
        seen = {}

        def on_open():
            seen["held"] = _wait_held(up, n, 120)
            seen["fds"] = nfds(gw.proc.pid)
            up.set_release(True)

        run = StreamRun(gw.port, n, TOKEN, timeout=600).run(on_open)
        ok = sum(1 for st in run.status if st == 200)
        figure("streams_held_at_once", seen["held"], "streams")
        figure("streams_daemon_fds_held", seen["fds"], "fds")
        assert ok == n, "answers: %r" % sorted(set(run.status))
        assert seen["held"] == n
        assert sum(run.done) == n
        assert "HTTP shard" in gw.output()
        assert gw.stop() == 0
    finally:
        up.stop()


def test_503_when_every_shard_is_full(launcher):
    """maxConnections 16 in shards of 8: 16 held streams use both
    shards; the 17th connection is answered 503 + Connection: close by
    the front door; once the streams end, new ones are served again."""
    up = HoldUpstream().start()
    try:
        gw = launcher.start(config=_config(up, 16),
                            env={"CLAWGATE_HTTP_SHARD_CONNS": "8"})
        seen = {}

        def on_open():
            seen["held"] = _wait_held(up, 16, 60)
            s = tcp(gw.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            rep = read_reply(s, 15) or b""
            seen["status"] = status_of(rep)
            seen["close"] = b"connection: close" in rep.lower()
            seen["closed"] = closed_within(s, 3)
            s.close()
            up.set_release(True)

        # /readyz's probes may still count until the HTTP thread saw them
        # close: a 503 before the 16 are held is retried
        run = StreamRun(gw.port, 16, TOKEN, timeout=120,
                        retries=100).run(on_open)
        assert run.status == [200] * 16
        assert seen["held"] == 16
        assert seen["status"] == 503
        assert seen["close"] and seen["closed"]
        assert sum(run.done) == 16
        # the slots come back (MHD reports the closes in its own time)
        again = StreamRun(gw.port, 1, TOKEN, timeout=60,
                          retries=200).run(lambda: None)
        assert again.status == [200] and again.done == [True]
        assert gw.stop() == 0
    finally:
        up.stop()


def _stream_once(port, extra_head=b"", content="hold"):
    """One streaming completion on a fresh connection: (status, done)."""
    body = ('{"model":"openclaw","stream":true,"messages":[{"role":"user",'
            '"content":"%s"}]}' % content).encode()
    s = tcp(port, timeout=60)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer T\r\nContent-Type: application/json"
              b"\r\n" + extra_head + b"Content-Length: %d\r\n"
              b"Connection: close\r\n\r\n" % len(body) + body)
    buf = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    return status_of(buf), b"data: [DONE]" in buf


def test_big_heads_and_bodies_still_work(launcher):
    """Connections whose first head is small get a small libmicrohttpd
    memory pool (RSS per stream); a 12 KiB head goes to a shard with the
    big pool and a 1 MB body streams through the small one; a keep-alive
    connection that began small takes a 6 KiB follow-up head."""
    up = HoldUpstream().start()
    up.set_release(True)
    try:
        gw = launcher.start(config=_config(up, 64))
        pad = b"X-Pad: " + b"a" * 12000 + b"\r\n"
        assert _stream_once(gw.port, pad) == (200, True)
        assert _stream_once(gw.port, content="x" * 1000000) == (200, True)
        s = tcp(gw.port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(read_reply(s)) == 200
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                  b"a" * 6000 + b"\r\n\r\n")
        assert status_of(read_reply(s)) == 200
        s.close()
        assert "big pool" in gw.output()
        assert gw.stop() == 0
    finally:
        up.stop()


def test_fd_limit_raised_at_start(launcher):
    """Each stream holds two sockets: the daemon raises its soft open-file
    limit toward 2 x maxConnections + 512 (at most the hard limit) before
    any transport sizes itself, and says so."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.skip("hard open-file limit %d" % hard)
    up = HoldUpstream().start()
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        gw = launcher.start(config=_config(up, 1500))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        with open("/proc/%d/limits" % gw.proc.pid) as f:
            row = [ln for ln in f if ln.startswith("Max open files")][0]
        now = int(row.split()[3])
        assert now == min(hard, 2 * 1500 + 512)
        assert "open-file limit raised from 1024" in gw.output()
        assert gw.stop() == 0
    finally:
        up.stop()
