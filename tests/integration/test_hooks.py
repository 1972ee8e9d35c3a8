"""Hooks: hooks.enabled/token/path, POST <path>/wake and <path>/agent,
header-only token, own failure limiter, 256 KB limit, start-up checks.
Reference: reference/http-config-cli.md §2.1."""

import pytest

from harness import Launcher
from oahelp import oa_config, up, upstream  # noqa: F401

HOOK = "hook-secret"


@pytest.fixture(scope="module")
def hgw(tmp_root, upstream):
    lch = Launcher(tmp_root)
    gw = lch.start(config=oa_config(upstream, {"hooks": {
        "enabled": True, "token": HOOK, "path": "/in/hooks/"}}))
    yield gw
    lch.cleanup()


def hook(gw, sub, body=None, token=HOOK, header="authorization", **kw):
    h = {}
    if token is not None:
        h[header] = ("Bearer " + token) if header == "authorization" \
            else token
    return gw.http("POST", "/in/hooks" + sub, json=body, headers=h, **kw)


def test_startup_checks(launcher, upstream):
    cases = [({"enabled": True}, "hooks.enabled requires hooks.token"),
             ({"enabled": True, "token": "T"},
              "hooks.token must not match gateway auth token"),
             ({"enabled": True, "token": "x", "path": "/"},
              "hooks.path may not be '/'")]
    for hooks, msg in cases:
        rc, out, err = launcher.run(
            ["gateway", "run", "--port", "1", "--token", "T",
             "--allow-unconfigured"],
            config=oa_config(upstream, {"hooks": hooks}))
        assert rc == 78, (hooks, rc, err)
        assert msg in err


def test_query_token_refused(hgw):
    r = hgw.http("POST", "/in/hooks/wake?token=" + HOOK, json={"text": "x"})
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "query parameters are not allowed" in r.text


def test_method_and_auth(hgw):
    r = hgw.http("GET", "/in/hooks/wake")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = hook(hgw, "/wake", {"text": "x"}, token=None)
    assert r.status_code == 401 and r.text == "Unauthorized"
    r = hook(hgw, "/wake", {"text": "x"}, token="T")  # gateway token
    assert r.status_code == 401
    r = hook(hgw, "", {"text": "x"})
    assert r.status_code == 404
    r = hook(hgw, "/nope", {"text": "x"})
    assert r.status_code == 404


def test_wake(hgw, up):
    # next-heartbeat: queued for the next turn of the main session
    r = hook(hgw, "/wake", {"text": "door bell", "mode": "next-heartbeat"})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "mode": "next-heartbeat"}
    assert up.snapshot()["chat"] == 0
    # now: a turn of the main session at once, carrying both events
    r = hook(hgw, "/wake", {"text": "ping"}, header="x-openclaw-token")
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "mode": "now"}
    st = up.wait(lambda s: s["chat"] >= 1)
    msgs = st["requests"][-1]["messages"]
    assert msgs[0]["role"] == "system"
    assert "System: door bell" in msgs[0]["content"]
    assert "ping" in msgs[-1]["content"]


@pytest.mark.parametrize("sub,body", [
    ("/wake", {}), ("/wake", {"text": ""}),
    ("/wake", {"text": "x", "mode": "later"}),
    ("/agent", {}), ("/agent", {"message": 5}),
    ("/agent", {"message": "x", "agentId": "ghost"}),
    ("/agent", {"message": "x", "sessionKey": "mine"}),
    ("/agent", {"message": "x", "timeoutSeconds": 0}),
])
def test_validation(hgw, sub, body):
    r = hook(hgw, sub, body)
    assert r.status_code == 400, r.text
    b = r.json()
    assert b["ok"] is False and isinstance(b["error"], str)


def test_agent_run(hgw, up):
    r = hook(hgw, "/agent", {"message": "from a hook [[reply:done]]",
                             "name": "CI"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["ok"] is True and b["runId"]
    st = up.wait(lambda s: s["chat"] >= 1)
    assert "from a hook" in str(st["requests"][-1]["messages"])
    # the same idempotency key gives the same run
    r1 = hook(hgw, "/agent", {"message": "once [[reply:x]]",
                              "idempotencyKey": "idem-1"})
    r2 = hook(hgw, "/agent", {"message": "once [[reply:x]]",
                              "idempotencyKey": "idem-1"})
    assert r1.status_code == r2.status_code == 200
    assert r1.json()["runId"] == r2.json()["runId"]


def test_body_limit(hgw):
    r = hgw.http("POST", "/in/hooks/agent",
                 data=b'{"message":"' + b"x" * (256 * 1024) + b'"}',
                 headers={"Authorization": "Bearer " + HOOK,
                          "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"ok": False, "error": "payload too large"}


def test_failure_limiter(launcher, upstream):
    gw = launcher.start(config=oa_config(upstream, {"hooks": {
        "enabled": True, "token": HOOK}}))
    for _ in range(20):
        r = gw.http("POST", "/hooks/wake", json={"text": "x"},
                    headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
    r = gw.http("POST", "/hooks/wake", json={"text": "x"},
                headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 429
    assert r.text == "Too Many Requests"
    assert int(r.headers["Retry-After"]) > 0
    # even the right token waits (loopback is not exempt)
    r = gw.http("POST", "/hooks/wake", json={"text": "x"},
                headers={"Authorization": "Bearer " + HOOK})
    assert r.status_code == 429
    assert "hook auth throttled for 127.0.0.1" in gw.output()


def test_disabled_hooks_are_404(launcher, upstream):
    gw = launcher.start(config=oa_config(upstream))
    r = gw.http("POST", "/hooks/wake", json={"text": "x"},
                headers={"Authorization": "Bearer " + HOOK})
    assert r.status_code == 404
