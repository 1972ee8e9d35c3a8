"""Auth before body (finding D3): an unauthenticated request is answered
401 from its headers, its body is never buffered, the connection is
closed."""

import socket
import threading
import time

from relhelp import (figure, rss_kb, raise_nofile, read_reply, scale,
                     status_of, tcp)

BODY_MB = 19


def _flood_one(port, out, i, path):
    chunk = b"x" * 65536
    size = BODY_MB * 1024 * 1024
    try:
        s = tcp(port, timeout=10)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n"
                  % (path, size))
        sent = 0
        s.settimeout(0.5)
        try:
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
        except (socket.timeout, OSError):
            pass
        out[i] = (sent, read_reply(s, 10))
        s.close()
    except OSError as e:
        out[i] = (0, repr(e).encode())


def test_unauthenticated_bodies_are_not_buffered(launcher):
    n = scale(6, 30)
    raise_nofile(n + 500)
    gw = launcher.start()
    pid = gw.proc.pid
    before = rss_kb(pid)
    out = [None] * n
    threads = [threading.Thread(target=_flood_one, args=(
        gw.port, out, i, b"/v1/chat/completions" if i % 2 else
        b"/v1/responses")) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    peak = rss_kb(pid, "VmHWM")
    figure("unauth_body_flood", "%d x %d MB" % (n, BODY_MB))
    figure("unauth_body_flood_rss_before", before // 1024, "MB")
    figure("unauth_body_flood_rss_peak", peak // 1024, "MB")
    figure("unauth_body_flood_seconds", round(time.monotonic() - t0, 1),
           "s")
    for sent, rep in out:
        assert status_of(rep) == 401, rep[:200] if rep else rep
        assert sent < BODY_MB * 1024 * 1024, "the whole body was read"
    assert peak - before < 40 * 1024, \
        "RSS grew by %d KB under the flood" % (peak - before)


def test_hooks_token_checked_before_body(launcher):
    gw = launcher.start(config={"gateway": {"mode": "local"},
                                "hooks": {"enabled": True,
                                          "token": "hook-secret"}})
    s = tcp(gw.port)
    s.sendall(b"POST /hooks/wake HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 200000\r\n\r\n")
    rep = read_reply(s, 5)
    assert status_of(rep) == 401
    s.close()
    # with the token the request goes on to the body
    r = gw.http("POST", "/hooks/wake", json={"text": "hi"},
                headers={"Authorization": "Bearer hook-secret"})
    assert r.status_code != 401


def test_hooks_secret_resolved_once_per_snapshot(launcher, tmp_path):
    """An exec SecretRef hooks.token runs once per config snapshot, not
    once per request, and never for a request that offers no token."""
    count = tmp_path / "count"
    script = tmp_path / "tok.sh"
    script.write_text(
        "#!/bin/sh\necho x >> %s\ncat >/dev/null\n"
        "echo '{\"protocolVersion\": 1, \"values\": "
        "{\"hooks/token\": \"hook-secret\"}}'\n" % count)
    script.chmod(0o700)
    gw = launcher.start(config={
        "gateway": {"mode": "local"},
        "secrets": {"providers": {"hx": {"source": "exec",
                                         "command": str(script)}}},
        "hooks": {"enabled": True, "token": {
            "source": "exec", "provider": "hx", "id": "hooks/token"}}})
    at_start = len(count.read_text().splitlines())
    for _ in range(3):
        r = gw.http("POST", "/hooks/wake", json={"text": "hi"})
        assert r.status_code == 401
    assert len(count.read_text().splitlines()) == at_start
    for _ in range(5):
        r = gw.http("POST", "/hooks/wake", json={"text": "hi"},
                    headers={"Authorization": "Bearer hook-secret"})
        assert r.status_code != 401
    assert len(count.read_text().splitlines()) <= at_start + 1
