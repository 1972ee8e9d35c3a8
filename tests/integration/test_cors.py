"""CORS, opt-in (gateway.http.cors.allowedOrigins): off by default (as
upstream: no Access-Control-* headers, OPTIONS is 405); when set, allowed
origins get the headers and preflights get 204."""

import pytest

from oahelp import auth, oa_config, oagw, upstream  # noqa: F401

ORIGIN = "http://localhost:3000"


def test_off_by_default(oagw):
    r = oagw.http("GET", "/v1/models",
                  headers=dict(auth(), Origin=ORIGIN))
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    r = oagw.http("OPTIONS", "/v1/chat/completions",
                  headers={"Origin": ORIGIN,
                           "Access-Control-Request-Method": "POST"})
    assert r.status_code == 405
    assert "Access-Control-Allow-Origin" not in r.headers


@pytest.fixture(scope="module")
def cgw(tmp_root, upstream):
    from harness import Launcher
    lch = Launcher(tmp_root)
    gw = lch.start(config=oa_config(upstream, {"gateway": {"http": {
        "cors": {"allowedOrigins": [ORIGIN + "/", "https://ui.example"],
                 "maxAgeSeconds": 120}}}}))
    yield gw
    lch.cleanup()


def test_preflight(cgw):
    r = cgw.http("OPTIONS", "/v1/chat/completions", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, "
                                          "x-stainless-os"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert "x-stainless-os" in r.headers["Access-Control-Allow-Headers"]
    assert r.headers["Access-Control-Max-Age"] == "120"
    assert "Origin" in r.headers.get("Vary", "")
    r = cgw.http("OPTIONS", "/v1/models", headers={
        "Origin": "https://ui.example",
        "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"


def test_actual_request_headers(cgw):
    r = cgw.http("GET", "/v1/models", headers=dict(auth(), Origin=ORIGIN))
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    # errors carry them too, so the browser can read the 401
    r = cgw.http("GET", "/v1/models", headers={"Origin": ORIGIN})
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_other_origin_and_paths(cgw):
    r = cgw.http("OPTIONS", "/v1/chat/completions", headers={
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST"})
    assert r.status_code == 405
    assert "Access-Control-Allow-Origin" not in r.headers
    r = cgw.http("GET", "/v1/models", headers=dict(
        auth(), Origin="https://evil.example"))
    assert "Access-Control-Allow-Origin" not in r.headers
    # probes are not API routes
    r = cgw.http("GET", "/healthz", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in r.headers
