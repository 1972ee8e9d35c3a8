"""HTTP probes on the gateway port (SPEC §3, reference §1.9).

Shared with the real gateway: /health, /healthz, /readyz shapes, 405 on a
non-GET probe, the security headers. Difference: upstream answers unknown
paths with the Control UI page (SPA fallback); ours is a JSON 404 for paths
that are not UI routes (SPEC §3 requires it for /v1/...).
"""

import pytest

from harness import PEER, clawgate_only

PROBES = ["/health", "/healthz", "/ready", "/readyz"]


@pytest.mark.parametrize("path", ["/health", "/healthz"])
def test_liveness(gateway, path):
    r = gateway.http("GET", path)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"ok": True, "status": "live"}


@pytest.mark.parametrize("path", ["/ready", "/readyz"])
def test_readiness_local_details(gateway, path):
    r = gateway.http("GET", path)
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True
    assert body["failing"] == []
    assert isinstance(body["uptimeMs"], int) and body["uptimeMs"] >= 0


@pytest.mark.parametrize("path", PROBES)
def test_probe_head(gateway, path):
    r = gateway.http("HEAD", path)
    assert r.status_code == 200


@pytest.mark.parametrize("path", PROBES + ["/", "/no/such/path",
                                           "/v1/no-such-endpoint"])
def test_security_headers(gateway, path):
    r = gateway.http("GET", path)
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("Referrer-Policy") == "no-referrer"


def test_probe_cache_control(gateway):
    r = gateway.http("GET", "/healthz")
    assert "no-store" in r.headers.get("Cache-Control", "")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_probe_wrong_method(gateway, method):
    r = gateway.http(method, "/healthz", data=b"{}")
    assert r.status_code == 405
    assert r.headers.get("Allow") == "GET, HEAD"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"


@clawgate_only("upstream serves the Control UI page for unknown paths")
def test_unknown_path_json_404(gateway):
    # No UI installed (the test HOME is empty): a JSON client gets JSON.
    r = gateway.http("GET", "/definitely/not/here.json",
                     headers={"Accept": "application/json"})
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    r.json()


@clawgate_only("upstream 404s /v1 as text/plain when the endpoints are off")
def test_unknown_v1_path_json_404(gateway):
    r = gateway.http("GET", "/v1/no-such-endpoint")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert "error" in r.json()


def test_ws_upgrade_on_root_only_needs_no_auth(gateway):
    # The upgrade itself is unauthenticated; auth happens in connect.
    c = gateway.ws()
    assert c.challenge["event"] == "connect.challenge"
    c.close()


def test_plain_http_keepalive(gateway):
    import requests
    with requests.Session() as s:
        for _ in range(5):
            r = s.get(gateway.http_base + "/healthz", timeout=5)
            assert r.status_code == 200
    if not PEER:
        assert r.headers.get("Connection", "keep-alive").lower() != "close"
