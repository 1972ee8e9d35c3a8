"""The HTTP/2 client of https upstreams (issue 11, src/agent/h2.c).

nginx (tlsnginx.py) is the upstream. Which client sent a request is seen
in the answer: a location echoes the request's Accept-Encoding, which
libcurl sets and h2 does not. Checked: h2 carries chat completions and
streams (CLAWGATE_UPSTREAM_CURL=1 still goes through libcurl); an origin
without HTTP/2 (ALPN http/1.1) answers through libcurl, also a burst that
waited for the first connection; a host name (https://localhost:PORT,
resolved off the agent thread, its certificate for "localhost"); a
certificate for another name refused in the OpenAI error shape; nginx's
http2_max_concurrent_streams 4 with maxPerHost 2: 20 streams all complete
on 2 connections, at most 8 at once; a client that goes away resets its
stream (nginx ends it and closes its upstream request) while the others
on the connection complete; a read timeout and a run's deadline (chat.send timeoutMs) do the same
for their stream; the
upstream stopped mid-stream ends the streams, and once it is back the
daemon serves again; connections ended by GOAWAY (nginx's
keepalive_requests 3) with requests at once: the refused streams are sent
again; an idle connection closes after connectionPool.idleSeconds, and idle
ones past connectionPool.maxIdle at once; a
NODE_EXTRA_CA_CERTS file that appears later is trusted from the next
connection on; a server that never answers TLS: requests sent at once
share one connection attempt and time out.
"""

import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import tlsnginx
from holdupstream import HoldUpstream, stream_request
from chathelp import new_key, run_events, send
from oahelp import TOKEN, sse_json
# the https tests' fixtures (pki: a CA, skips without nginx or openssl;
# hold: holdupstream.py) and helpers
from test_upstream_https import (_provider, check_chat_and_stream,  # noqa
                                 complete, held_model_run, hold, pki)

ECHO_AE = """
    location = /ae/v1/chat/completions {
      default_type application/json;
      return 200 '{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ae=[$http_accept_encoding] t=[$http_x_tenant] k=[$http_x_api_key]"},"finish_reason":"stop"}]}';
    }
"""


def name_cert(d, pki, name):
    """A server key/cert for DNS name `name` signed by pki's CA (also for
    IP 127.0.0.1, which tlsnginx's start-up check connects to: a client
    that checked the address instead of the name would accept it)."""
    os.makedirs(d, exist_ok=True)
    cadir = os.path.dirname(pki["ca"])
    tlsnginx._openssl("req", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", "n.key", "-out", "n.csr",
                      "-subj", "/CN=" + name, cwd=d)
    with open(os.path.join(d, "n.ext"), "w") as f:
        f.write("subjectAltName=DNS:%s,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % name)
    tlsnginx._openssl("x509", "-req", "-in", "n.csr", "-CA", pki["ca"],
                      "-CAkey", os.path.join(cadir, "ca.key"),
                      "-set_serial", str(int(time.time() * 1000)),
                      "-out", "n.pem", "-days", "2", "-extfile", "n.ext",
                      cwd=d)
    return {"ca": pki["ca"], "key": os.path.join(d, "n.key"),
            "cert": os.path.join(d, "n.pem")}


# what the "ta" provider's answer says when h2 sent the request: no
# Accept-Encoding, the provider's headers
AE_H2 = "ae=[] t=[t-1] k=[hk]"


def nginx(tmp_path_factory, pki, hold=None, **kw):
    locs = tlsnginx.MOCK_LOCATIONS + ECHO_AE
    if hold:
        locs += tlsnginx.proxy_location("/hold/", hold.port)
    return tlsnginx.TlsNginx(str(tmp_path_factory.mktemp("ngx")), pki,
                             locs, **kw).start()


def start_gw(launcher, base, pki, pool=None, env=None, streams=64,
             model="tj/m"):
    cfg = {"gateway": {"mode": "local"},
           "models": {"providers": {
               "tj": _provider(base + "/json/v1"),
               "ts": _provider(base + "/sse/v1"),
               "ta": dict(_provider(base + "/ae/v1"), headers={
                   "X-Tenant": "t-1", "X-Api-Key": "hk"}),
               "th": _provider(base + "/hold/v1"),
               # the same held upstream with a 1 s read timeout
               "tq": dict(_provider(base + "/hold/v1"), timeoutSeconds=1)},
               "connectionPool": pool or {}},
           "agents": {"defaults": {"model": model,
                                   "maxConcurrent": streams}}}
    e = {"NODE_EXTRA_CA_CERTS": pki["ca"]}
    e.update(env or {})
    return launcher.start(config=cfg, env=e)


def content(r):
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def at_once(gw, pairs):
    """pairs x (a chat completion, a streamed one) sent at once:
    [(status, body)] as they ended."""
    res = []

    def one(model, stream):
        r = complete(gw, model, stream=stream)
        res.append((r.status_code, r.text))

    ts = [threading.Thread(target=one, args=(m, s))
          for m, s in [("tj/m", False), ("ts/m", True)] * pairs]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    return res


def rows_for(ngx, prefix, before=0, n=0):
    """nginx's log rows under prefix; with n, a bounded wait until at
    least n are there (nginx logs a request once it has ended, which may
    be after its client read the whole answer)."""
    def rows():
        return [r for r in ngx.log_lines()[before:]
                if r[2].startswith(prefix)]
    if n:
        wait_for(lambda: len(rows()) >= n, "%d rows logged" % n)
    return rows()


@pytest.fixture(scope="module")
def h2(tmp_path_factory, pki, hold):
    n = nginx(tmp_path_factory, pki, hold)
    yield n
    n.stop()


def test_h2_client_carries_requests_and_curl_opt_out(launcher, h2, pki):
    gw = start_gw(launcher, h2.url(), pki)
    check_chat_and_stream(gw)
    # h2 sends no Accept-Encoding (libcurl does)
    assert content(complete(gw, "ta/m")) == AE_H2
    assert {r[0] for r in rows_for(h2, "/")} == {"HTTP/2.0"}
    gw.check_sanitizers()
    gw = start_gw(launcher, h2.url(), pki,
                  env={"CLAWGATE_UPSTREAM_CURL": "1"})
    check_chat_and_stream(gw)
    ae = content(complete(gw, "ta/m"))
    assert "gzip" in ae and ae.endswith(" t=[t-1] k=[hk]"), ae
    gw.check_sanitizers()


def test_origin_without_http2_goes_through_libcurl(launcher,
                                                   tmp_path_factory, pki):
    """ALPN http/1.1: the first requests, sent at once, waited for the
    first connection, then all went to libcurl (HTTP/1.1), streamed and
    not; later ones go there straight."""
    ngx = nginx(tmp_path_factory, pki, http2=False)
    try:
        gw = start_gw(launcher, ngx.url(), pki)
        res = at_once(gw, 3)
        assert len(res) == 6, res
        assert all(st == 200 for st, _ in res), res
        assert all("Hello" in txt for _, txt in res), res
        check_chat_and_stream(gw)
        ae = content(complete(gw, "ta/m"))
        assert "gzip" in ae, ae     # libcurl's
        rows = rows_for(ngx, "/", n=9)
        assert len(rows) == 9 and {r[0] for r in rows} == {"HTTP/1.1"}, \
            rows
        gw.check_sanitizers()
    finally:
        ngx.stop()


def test_host_name_and_its_certificate(launcher, tmp_path_factory, pki):
    """https://localhost:PORT: resolved off the agent thread (localhost
    may give ::1 first, where nginx does not listen: the next address),
    verified against a certificate for the name; a certificate for
    another name is refused in the OpenAI error shape."""
    good = name_cert(str(tmp_path_factory.mktemp("lc")), pki, "localhost")
    ngx = nginx(tmp_path_factory, good)
    try:
        base = "https://localhost:%d" % ngx.port
        gw = start_gw(launcher, base, pki)
        check_chat_and_stream(gw)
        assert content(complete(gw, "ta/m")) == AE_H2
        rows = rows_for(ngx, "/")
        assert {r[0] for r in rows} == {"HTTP/2.0"}, rows
        gw.check_sanitizers()
    finally:
        ngx.stop()
    bad = name_cert(str(tmp_path_factory.mktemp("wc")), pki,
                    "other.example")
    ngx = nginx(tmp_path_factory, bad)
    try:
        gw = start_gw(launcher, "https://localhost:%d" % ngx.port, pki)
        r = complete(gw, "tj/m")
        assert r.status_code >= 500, r.text
        err = r.json()["error"]
        assert isinstance(err.get("type"), str), err
        assert "certificate" in err["message"].lower(), err
        r = complete(gw, "ts/m", stream=True)
        assert "certificate" in r.text.lower(), r.text
        assert "Hello from the mock" not in r.text
        assert rows_for(ngx, "/") == []
        assert gw.http("GET", "/readyz", timeout=10).status_code == 200
        gw.check_sanitizers()
    finally:
        ngx.stop()


def test_server_stream_limit_and_max_per_host(launcher, tmp_path_factory,
                                              pki, hold):
    """http2_max_concurrent_streams 4, maxPerHost 2: 20 streams, at most
    8 at the upstream at once, the rest wait for a free stream; all
    complete, on 2 connections."""
    ngx = nginx(tmp_path_factory, pki, hold, streams=4)
    n = 20
    try:
        gw = start_gw(launcher, ngx.url(), pki, pool={"maxPerHost": 2},
                      streams=n)
        hold.set_release(False)
        base = hold.stats()["served"]
        seen = {}

        def on_open():
            wait_for(lambda: hold.held >= 8, "8 streams held")
            # no more come while those are held (a bounded look)
            t = time.monotonic() + 0.5
            while time.monotonic() < t:
                time.sleep(0.02)
            seen["held"] = hold.held
            seen["served"] = hold.stats()["served"] - base
            hold.set_release(True)

        try:
            run = held_model_run(gw, n)
            run.run(on_open)
        finally:
            hold.set_release(True)
        assert seen == {"held": 8, "served": 8}, seen
        assert run.status == [200] * n
        assert all(run.done), run.done
        wait_for(lambda: len(rows_for(ngx, "/hold/")) >= n, "logged")
        rows = rows_for(ngx, "/hold/")
        assert {r[3] for r in rows} == {"200"}, rows
        assert len({r[1] for r in rows}) == 2, rows
        gw.check_sanitizers()
    finally:
        ngx.stop()


def release_on_one_connection(hold, ngx, rs, n):
    """Release the held streams: each of rs ends with [DONE], and nginx
    logged n requests under /hold/, all on one connection; their rows."""
    hold.set_release(True)
    for r in rs:
        ev = sse_json(r)
        assert ev[-1] == "[DONE]", ev
    rows = rows_for(ngx, "/hold/", n=n)
    assert len(rows) == n, rows
    assert len({r[1] for r in rows}) == 1, rows     # one connection
    return rows


def open_stream(gw):
    r = complete(gw, "th/m", stream=True)
    assert r.status_code == 200, r.text
    return r


def test_client_gone_resets_only_its_stream(launcher, tmp_path_factory,
                                            pki):
    """The held streams trickle content (the gateway notices a client
    that went away when it writes to it): the gone client's stream is
    reset upstream (nginx ends it: logged, its upstream request closed,
    while the others are held; 200 as its head had been sent) and the
    three others on the same connection complete."""
    hold = HoldUpstream(trickle_ms=50).start()
    ngx = nginx(tmp_path_factory, pki, hold)
    try:
        gw = start_gw(launcher, ngx.url(), pki)
        hold.set_release(False)
        gone = socket.create_connection(("127.0.0.1", gw.port), 10)
        gone.sendall(stream_request(TOKEN).replace(
            b"Content-Type:", b"x-openclaw-model: th/m\r\nContent-Type:"))
        head = b""
        while b"\r\n\r\n" not in head:
            d = gone.recv(4096)
            assert d, head
            head += d
        assert head.startswith(b"HTTP/1.1 200"), head
        rs = [open_stream(gw) for _ in range(3)]
        wait_for(lambda: hold.held >= 4, "4 held")
        gone.close()
        wait_for(lambda: len(rows_for(ngx, "/hold/")) == 1,
                 "nginx ends the reset stream")
        wait_for(lambda: hold.held == 3, "its upstream request closed")
        assert hold.stats()["finished"] == 0
        rows = release_on_one_connection(hold, ngx, rs, 4)
        assert {r[3] for r in rows} == {"200"}, rows
        gw.check_sanitizers()
    finally:
        ngx.stop()
        hold.stop()


def test_read_timeout_resets_only_its_stream(launcher, tmp_path_factory,
                                             pki):
    """A held stream whose provider has a 1 s read timeout: its run ends
    with the timeout after a second of silence (the client's stream ends,
    the upstream sees its stream reset: nginx ends it) while the two streams of a 60 s provider on the
    same connection stay held, and complete once released."""
    hold = HoldUpstream().start()
    ngx = nginx(tmp_path_factory, pki, hold)
    try:
        gw = start_gw(launcher, ngx.url(), pki)
        hold.set_release(False)
        rs = [open_stream(gw) for _ in range(2)]
        wait_for(lambda: hold.held >= 2, "2 held")
        t0 = time.monotonic()
        q = complete(gw, "tq/m", stream=True)
        assert q.status_code == 200, q.text
        body = q.text           # ends with the run (read timeout)
        assert time.monotonic() - t0 < 20, body
        assert "timeout" in body.lower(), body
        # nginx logs a request once it ended: only the reset one has
        # (the silent hold notices no close until it writes)
        wait_for(lambda: len(rows_for(ngx, "/hold/")) == 1,
                 "nginx ends the reset stream")
        assert hold.stats()["finished"] == 0
        release_on_one_connection(hold, ngx, rs, 3)
        gw.check_sanitizers()
    finally:
        ngx.stop()
        hold.stop()


def test_run_deadline_resets_only_its_stream(launcher, tmp_path_factory,
                                             pki):
    """chat.send's timeoutMs is the whole run's deadline, carried to the
    h2 stream: a run on a held upstream that trickles content (so no
    read timeout) ends as a timeout after its deltas, its stream is reset
    (nginx ends it, the held upstream sees its request closed), and two
    streams on the same connection stay held, then complete."""
    hold = HoldUpstream(trickle_ms=50).start()
    ngx = nginx(tmp_path_factory, pki, hold)
    try:
        gw = start_gw(launcher, ngx.url(), pki, model="th/m")
        hold.set_release(False)
        rs = [open_stream(gw) for _ in range(2)]
        wait_for(lambda: hold.held >= 2, "2 held")
        ws = gw.connect()
        idem = new_key()
        t0 = time.monotonic()
        assert send(ws, "dl-" + new_key(), "hi", idem=idem,
                    timeoutMs=1500)["ok"]
        evs = run_events(ws, idem, timeout=30)
        assert evs[-1]["state"] == "error", evs
        assert evs[-1]["errorKind"] == "timeout", evs
        assert any(e["state"] == "delta" for e in evs), evs
        assert 1.4 < time.monotonic() - t0 < 20
        wait_for(lambda: len(rows_for(ngx, "/hold/")) == 1,
                 "nginx ends the reset stream")
        wait_for(lambda: hold.held == 2, "its upstream request closed")
        assert hold.stats()["finished"] == 0
        release_on_one_connection(hold, ngx, rs, 3)
        gw.check_sanitizers()
    finally:
        ngx.stop()
        hold.stop()


def test_idle_connections_beyond_max_idle_closed(launcher, tmp_path_factory,
                                                 pki, hold):
    """http2_max_concurrent_streams 4, maxPerHost 3: 12 held streams on 3
    connections; once they end, connectionPool.maxIdle 1 keeps one idle
    connection (idleSeconds 600 would keep all three), and the next
    requests ride on it."""
    ngx = nginx(tmp_path_factory, pki, hold, streams=4)
    try:
        gw = start_gw(launcher, ngx.url(), pki, pool={
            "maxPerHost": 3, "maxIdle": 1, "idleSeconds": 600})
        hold.set_release(False)
        base = hold.held
        try:
            rs = [open_stream(gw) for _ in range(12)]
            wait_for(lambda: hold.held >= base + 12, "12 held")
            assert client_conns(ngx.port) == 3
        finally:
            hold.set_release(True)
        for r in rs:
            assert sse_json(r)[-1] == "[DONE]"
        wait_for(lambda: client_conns(ngx.port) == 1, "one kept idle")
        before = len(ngx.log_lines())
        check_chat_and_stream(gw)
        rows = rows_for(ngx, "/", before, n=2)
        assert len({r[1] for r in rows_for(ngx, "/hold/") + rows}) == 3
        assert client_conns(ngx.port) == 1
        gw.check_sanitizers()
    finally:
        ngx.stop()


def restart_same_port(ngx, timeout=20):
    conf = os.path.join(ngx.dir, "nginx.conf")
    out = open(os.path.join(ngx.dir, "out2.log"), "wb")
    ngx.proc = subprocess.Popen([tlsnginx.NGINX, "-p", ngx.dir, "-c", conf],
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out)
    out.close()
    ctx = ssl.create_default_context(cafile=ngx.pki["ca"])
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", ngx.port), 1) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                    return
        except OSError:
            assert time.monotonic() < deadline, "nginx did not restart"
            assert ngx.proc.poll() is None, "nginx exited"
            time.sleep(0.02)


def test_upstream_stopped_mid_stream(launcher, tmp_path_factory, pki,
                                     hold):
    ngx = nginx(tmp_path_factory, pki, hold)
    try:
        gw = start_gw(launcher, ngx.url(), pki)
        hold.set_release(False)
        try:
            held0 = hold.held
            rs = [open_stream(gw) for _ in range(3)]
            wait_for(lambda: hold.held >= held0 + 3, "3 held")
            ngx.proc.send_signal(signal.SIGKILL)
            ngx.proc.wait(10)
            for r in rs:
                body = r.text     # ends (bounded by the request timeout)
                assert "held reply" not in body, body
                assert "error" in body.lower() or "[DONE]" in body, body
        finally:
            hold.set_release(True)
        assert gw.alive()
        restart_same_port(ngx)
        check_chat_and_stream(gw)
        assert content(complete(gw, "ta/m")) == AE_H2
        gw.check_sanitizers()
    finally:
        ngx.stop()


def client_conns(port):
    """ESTABLISHED TCP connections on this host to 127.0.0.1:port."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for ln in fh:
                    p = ln.split()
                    if p[3] == "01" and \
                            int(p[2].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except FileNotFoundError:
            pass
    return n


def test_idle_connection_closed_after_idle_seconds(launcher, h2, pki):
    """connectionPool.idleSeconds 1: the connection is reused while
    busy, then closed by the daemon once idle that long (nginx would keep
    it 600 s)."""
    gw = start_gw(launcher, h2.url(), pki, pool={"idleSeconds": 1})
    before = len(h2.log_lines())
    check_chat_and_stream(gw)
    rows = rows_for(h2, "/", before, n=2)
    assert len(rows) == 2 and len({r[1] for r in rows}) == 1, rows
    wait_for(lambda: client_conns(h2.port) == 0, "idle connection closed")
    check_chat_and_stream(gw)
    gw.check_sanitizers()


class GoawayNginx(tlsnginx.TlsNginx):
    """nginx that ends each connection after 3 requests (GOAWAY: the
    streams past it are refused, never processed)."""

    def _conf(self):
        return super()._conf().replace("keepalive_requests 1000000;",
                                       "keepalive_requests 3;")


def test_goaway_refused_streams_are_resent(launcher, tmp_path_factory,
                                           pki):
    """12 requests at once over connections that nginx ends after 3
    requests each: the refused streams (no answer byte) are sent again on
    a new connection; all are answered, over 4 or more connections."""
    ngx = GoawayNginx(str(tmp_path_factory.mktemp("ngx")), pki,
                      tlsnginx.MOCK_LOCATIONS + ECHO_AE).start()
    try:
        gw = start_gw(launcher, ngx.url(), pki)
        res = at_once(gw, 6)
        assert len(res) == 12, res
        assert all(st == 200 and "Hello" in txt for st, txt in res), res
        for _ in range(3):      # one after another: new connections too
            check_chat_and_stream(gw)
        rows = rows_for(ngx, "/", n=18)
        assert len(rows) == 18 and {r[3] for r in rows} == {"200"}, rows
        assert len({r[1] for r in rows}) >= 6, rows
        assert {r[0] for r in rows} == {"HTTP/2.0"}, rows
        gw.check_sanitizers()
    finally:
        ngx.stop()


def test_extra_ca_file_that_appears_is_trusted(launcher, h2, pki, tmp_path):
    """NODE_EXTRA_CA_CERTS names a file that does not exist yet: one
    warning, the test CA's server is refused; once the file is there the
    next connection's trust store is rebuilt with it (libcurl would need
    a restart)."""
    path = str(tmp_path / "later-ca.pem")
    gw = start_gw(launcher, h2.url(), pki, env={"NODE_EXTRA_CA_CERTS": path})
    r = complete(gw, "tj/m")
    assert r.status_code >= 500 and \
        "certificate" in r.json()["error"]["message"].lower(), r.text
    with open(pki["ca"]) as src, open(path + ".tmp", "w") as dst:
        dst.write(src.read())
    os.rename(path + ".tmp", path)
    check_chat_and_stream(gw)
    out = gw.output()
    assert out.count("ignoring extra CA certificates from %s" % path) == 1
    assert "1 certificate(s) of %s" % path in out, out
    gw.check_sanitizers()


class SilentServer:
    """A TCP listener on loopback that accepts and never says a word
    (no TLS handshake); counts the connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def test_silent_server_times_out(launcher, pki):
    """A server that never completes TLS: three requests sent at once
    wait for the one connection (no connection each), all end as timed
    out (504, the provider's timeoutSeconds: 2), and the daemon goes on
    serving."""
    srv = SilentServer()
    try:
        base = "https://127.0.0.1:%d" % srv.port
        cfg = {"gateway": {"mode": "local"},
               "models": {"providers": {"tj": dict(
                   _provider(base + "/json/v1"), timeoutSeconds=2)}},
               "agents": {"defaults": {"model": "tj/m"}}}
        gw = launcher.start(config=cfg,
                            env={"NODE_EXTRA_CA_CERTS": pki["ca"]})
        res = []

        def one():
            r = complete(gw, "tj/m")
            res.append((r.status_code, r.json()["error"]["message"]))

        ts = [threading.Thread(target=one) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert len(res) == 3 and {st for st, _ in res} == {504}, res
        assert all("timed out" in m for _, m in res), res
        assert len(srv.conns) == 1, srv.conns
        assert gw.http("GET", "/readyz", timeout=10).status_code == 200
        gw.check_sanitizers()
    finally:
        srv.close()
