"""https upstreams (issue 11): HTTP/2 over TLS through libcurl, trusted
like OpenClaw (the system roots plus NODE_EXTRA_CA_CERTS).

nginx (tlsnginx.py) is the upstream on a free loopback port with a
certificate for 127.0.0.1 from a CA made for the test: a chat completion
and a streamed one succeed when the gateway has NODE_EXTRA_CA_CERTS set
to that CA, fail with an OpenAI-shaped error naming the certificate
without it (or with a file that does not exist: one warning, the system
roots only), 40 concurrent held streams share one or two HTTP/2
connections, and a TLS server without HTTP/2 still works over HTTP/1.1.
"""

import json
import threading
import time

import pytest

import tlsnginx
from fakeupstream import FakeUpstream
from holdupstream import HoldUpstream, StreamRun
from oahelp import TOKEN, chat, oa_config, sse_json

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Every nginx test's CA (so they skip without nginx or openssl)."""
    why = tlsnginx.available()
    if why:
        pytest.skip(why)
    return tlsnginx.make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def hold():
    up = HoldUpstream().start()
    yield up
    up.stop()


def _nginx(tmp_path_factory, pki, hold, http2):
    locs = tlsnginx.MOCK_LOCATIONS + tlsnginx.proxy_location(
        "/hold/", hold.port)
    return tlsnginx.TlsNginx(str(tmp_path_factory.mktemp("ngx")), pki,
                             locs, http2=http2).start()


@pytest.fixture(scope="module")
def h2(tmp_path_factory, pki, hold):
    n = _nginx(tmp_path_factory, pki, hold, True)
    yield n
    n.stop()


@pytest.fixture(scope="module")
def h1only(tmp_path_factory, pki, hold):
    n = _nginx(tmp_path_factory, pki, hold, False)
    yield n
    n.stop()


def _provider(url):
    return {"baseUrl": url, "apiKey": "k", "api": "openai-completions",
            "timeoutSeconds": 60, "models": [{"id": "m"}]}


def start_gw(launcher, ngx, extra_ca=None, streams=64, pool=None,
             env=None):
    cfg = {"gateway": {"mode": "local"},
           "models": {"providers": {
               "tj": _provider(ngx.url("/json/v1")),
               "ts": _provider(ngx.url("/sse/v1")),
               "th": _provider(ngx.url("/hold/v1"))},
               "connectionPool": pool or {}},
           "agents": {"defaults": {"model": "tj/m",
                                   "maxConcurrent": streams}}}
    env = dict(env or {})
    if extra_ca:
        env["NODE_EXTRA_CA_CERTS"] = extra_ca
    return launcher.start(config=cfg, env=env)


def complete(gw, model, stream=False):
    return gw.http("POST", "/v1/chat/completions",
                   json=chat("hi", stream=stream),
                   headers={"Authorization": "Bearer " + TOKEN,
                            "x-openclaw-model": model},
                   stream=stream, timeout=60)


def held_model_run(gw, n):
    """n streamed completions on the held upstream's model (th/m), for
    StreamRun.run."""
    run = StreamRun(gw.port, n, token=TOKEN, timeout=120)
    run.req = run.req.replace(
        b"Content-Type:", b"x-openclaw-model: th/m\r\nContent-Type:")
    return run


def check_chat_and_stream(gw):
    r = complete(gw, "tj/m")
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == \
        "Hello from the mock."
    r = complete(gw, "ts/m", stream=True)
    assert r.status_code == 200, r.text
    ev = sse_json(r)
    assert ev[-1] == "[DONE]", ev
    text = "".join(e["choices"][0]["delta"].get("content") or ""
                   for e in ev[:-1] if e.get("choices"))
    assert text == "Hello from the mock.", ev


def wait_logged(ngx, n, prefix):
    """nginx logs a request once it has ended: bounded wait for n."""
    deadline = time.monotonic() + 30
    while True:
        rows = [r for r in ngx.log_lines() if r[2].startswith(prefix)]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def test_chat_and_stream_over_http2_with_extra_ca(launcher, h2, pki):
    gw = start_gw(launcher, h2, extra_ca=pki["ca"])
    before = len(h2.log_lines())
    check_chat_and_stream(gw)
    rows = wait_logged(h2, before + 2, "/")[before:]
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("HTTP/2.0", "/json/v1/chat/completions", "200"),
        ("HTTP/2.0", "/sse/v1/chat/completions", "200")], rows
    assert "NODE_EXTRA_CA_CERTS" in gw.output()
    gw.check_sanitizers()


def check_untrusted(gw):
    r = complete(gw, "tj/m")
    assert r.status_code >= 500, r.text
    err = r.json()["error"]
    assert isinstance(err.get("message"), str) and \
        isinstance(err.get("type"), str), err
    assert "certificate" in err["message"].lower(), err
    # a streamed request fails the same way, in its own shape
    r = complete(gw, "ts/m", stream=True)
    body = r.text
    assert "certificate" in body.lower(), body
    assert "Hello from the mock" not in body
    # and the gateway goes on serving
    assert gw.http("GET", "/readyz", timeout=10).status_code == 200
    assert gw.alive()


def test_extra_ca_with_the_system_bundle(launcher, h2, pki):
    """Where libcurl's CA directory is not used (no hashed one; forced
    here), the blob is the system bundle followed by the extra file: the
    test CA is trusted all the same, and a server it did not sign is
    not."""
    bundle = {"CLAWGATE_UPSTREAM_CA_BUNDLE": "1"}
    gw = start_gw(launcher, h2, extra_ca=pki["ca"], env=bundle)
    check_chat_and_stream(gw)
    assert "cannot read the system CA bundle" not in gw.output()
    gw.check_sanitizers()
    gw = start_gw(launcher, h2, env=bundle)
    check_untrusted(gw)


def test_untrusted_without_extra_ca(launcher, h2):
    gw = start_gw(launcher, h2)
    check_untrusted(gw)
    gw.check_sanitizers()


def test_missing_extra_ca_file_warns_and_trusts_system_roots(
        launcher, h2, tmp_path):
    missing = str(tmp_path / "no-such-ca.pem")
    gw = start_gw(launcher, h2, extra_ca=missing)
    check_untrusted(gw)
    check_untrusted(gw)
    out = gw.output()
    assert out.count("ignoring extra CA certificates from %s" % missing) \
        == 1, out
    gw.check_sanitizers()


def test_not_a_pem_file_is_ignored(launcher, h2, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    gw = start_gw(launcher, h2, extra_ca=str(junk))
    check_untrusted(gw)
    assert "no PEM certificate in it" in gw.output()


def held_streams(launcher, h2, pki, hold, pool=None):
    """40 streams held at once by holdupstream.py behind nginx, then
    released: each ended with [DONE]; returns nginx's log rows."""
    n = 40
    gw = start_gw(launcher, h2, extra_ca=pki["ca"], streams=n, pool=pool)
    before = len(h2.log_lines())
    hold.set_release(False)
    seen = {}

    def on_open():
        deadline = time.monotonic() + 60
        while hold.held < n and time.monotonic() < deadline:
            time.sleep(0.02)
        seen["held"] = hold.held
        hold.set_release(True)

    try:
        run = held_model_run(gw, n)
        run.run(on_open)
    finally:
        hold.set_release(True)
    assert seen["held"] == n
    assert run.status == [200] * n
    assert all(run.done), run.done
    rows = [r for r in wait_logged(h2, before + n, "/")[before:]
            if r[2].startswith("/hold/")]
    assert len(rows) == n, rows
    assert {r[0] for r in rows} == {"HTTP/2.0"}, rows
    gw.check_sanitizers()
    return rows


def test_concurrent_streams_share_one_http2_connection(launcher, h2, pki,
                                                       hold):
    """All HTTP/2 streams on at most two connections (PIPEWAIT: the burst
    waits for the first connection's ALPN instead of opening one
    each)."""
    rows = held_streams(launcher, h2, pki, hold)
    assert 1 <= len({r[1] for r in rows}) <= 2, rows


def test_max_per_host_bounds_http2_connections(launcher, h2, pki, hold):
    """models.connectionPool.maxPerHost: 1 -> the 40 streams on exactly
    one connection."""
    rows = held_streams(launcher, h2, pki, hold, pool={"maxPerHost": 1})
    assert len({r[1] for r in rows}) == 1, rows


def test_tls_server_without_http2(launcher, h1only, pki):
    gw = start_gw(launcher, h1only, extra_ca=pki["ca"])
    before = len(h1only.log_lines())
    check_chat_and_stream(gw)
    rows = wait_logged(h1only, before + 2, "/")[before:]
    assert [r[0] for r in rows] == ["HTTP/1.1", "HTTP/1.1"], rows
    gw.check_sanitizers()



def test_big_request_body(launcher, h2, pki, hold):
    """A 600 KB request body over HTTP/2 goes through libcurl's 16 KiB
    upload buffer many times and under flow control (to holdupstream.py
    behind nginx, which reads it all before it answers): the answers are
    right, and the request's buffers, dropped once all of it is sent,
    are not touched after (ASan)."""
    gw = start_gw(launcher, h2, extra_ca=pki["ca"])
    hold.set_release(True)
    big = "x" * (600 * 1024)
    for stream in (True, False, True):
        r = gw.http("POST", "/v1/chat/completions",
                    json=chat(big, stream=stream),
                    headers={"Authorization": "Bearer " + TOKEN,
                             "x-openclaw-model": "th/m"},
                    stream=stream, timeout=60)
        assert r.status_code == 200, r.text[:500]
        if stream:
            ev = sse_json(r)
            assert ev[-1] == "[DONE]", ev
            assert "held reply" in json.dumps(ev), ev
        else:
            assert r.json()["choices"][0]["message"]["content"] == \
                "held reply", r.text
    check_chat_and_stream(gw)
    gw.check_sanitizers()


def test_plain_http_requests_do_not_wait_for_the_first_head(launcher):
    """PIPEWAIT is for https only: over http:// (here through libcurl,
    CLAWGATE_UPSTREAM_CURL=1) libcurl learns that a host does not
    multiplex only from the first answer's head, so a second request
    would wait for it. The first request is held before its head
    ([[gate]]); the second is answered meanwhile."""
    up = FakeUpstream(api_key="sk-fake").start()
    try:
        gw = launcher.start(config=oa_config(up),
                            env={"CLAWGATE_UPSTREAM_CURL": "1"})
        res = {}

        def first():
            res["a"] = gw.http("POST", "/v1/chat/completions",
                               json=chat("a [[gate]] [[reply:A]]"),
                               headers={"Authorization": "Bearer " + TOKEN},
                               timeout=60)

        t = threading.Thread(target=first)
        t.start()
        try:
            deadline = time.monotonic() + 30
            while up.snapshot()["chat"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert up.snapshot()["chat"] == 1
            r = gw.http("POST", "/v1/chat/completions",
                        json=chat("b [[reply:B]]"),
                        headers={"Authorization": "Bearer " + TOKEN},
                        timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == "B"
            assert t.is_alive()
        finally:
            up.open_gate()
            t.join(60)
        assert res["a"].status_code == 200, res["a"].text
        assert res["a"].json()["choices"][0]["message"]["content"] == "A"
    finally:
        up.stop()
