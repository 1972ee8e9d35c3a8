"""Trusted-proxy auth and client IPs behind trusted proxies (issue 3)."""

import pytest

from harness import clawgate_only
from pairing_util import Device, device_connect

pytestmark = clawgate_only("trusted-proxy settings of clawgate")

TP = {"gateway": {
    "mode": "local",
    "trustedProxies": ["127.0.0.1", "::1"],
    "auth": {"mode": "trusted-proxy", "trustedProxy": {
        "userHeader": "x-forwarded-user",
        "requiredHeaders": ["x-forwarded-proto"],
        "allowUsers": ["alice@example.com"],
        "allowLoopback": True}}}}

GOOD = {"X-Forwarded-For": "198.51.100.20",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-User": "alice@example.com"}


def start(launcher, cfg=TP):
    return launcher.start(config=cfg, auth=None)


def test_trusted_proxy_accepted(launcher):
    gw = start(launcher)
    c = gw.ws(headers=GOOD)
    res = gw.handshake(c, auth=False, scopes=["operator.read"])
    assert res["ok"] is True, res
    assert res["payload"]["auth"]["scopes"] == ["operator.read"]
    # The same decision over HTTP: the readiness details.
    r = gw.http("GET", "/readyz", headers=GOOD)
    assert "uptimeMs" in r.json()


@pytest.mark.parametrize("headers,reason", [
    ({k: v for k, v in GOOD.items() if k != "X-Forwarded-User"},
     "trusted_proxy_user_missing"),
    (dict(GOOD, **{"X-Forwarded-User": "mallory@example.com"}),
     "trusted_proxy_user_not_allowed"),
    ({k: v for k, v in GOOD.items() if k != "X-Forwarded-Proto"},
     "trusted_proxy_missing_header_x-forwarded-proto"),
])
def test_trusted_proxy_refused(launcher, headers, reason):
    gw = start(launcher)
    c = gw.ws(headers=headers)
    res = gw.handshake(c, auth=False)
    assert res["ok"] is False
    assert res["error"]["details"]["authReason"] == reason
    assert c.expect_close()[0] == 1008
    r = gw.http("GET", "/readyz", headers=headers)
    assert "uptimeMs" not in r.json()


def test_loopback_refused_without_allow_loopback(launcher):
    cfg = {"gateway": dict(TP["gateway"])}
    cfg["gateway"]["auth"] = {"mode": "trusted-proxy", "trustedProxy": {
        "userHeader": "x-forwarded-user"}}
    gw = start(launcher, cfg)
    c = gw.ws(headers=GOOD)
    res = gw.handshake(c, auth=False)
    assert res["error"]["details"]["authReason"] == \
        "trusted_proxy_loopback_source"


def test_untrusted_source_refused(launcher):
    cfg = {"gateway": dict(TP["gateway"], trustedProxies=["10.0.0.0/8"])}
    gw = start(launcher, cfg)
    c = gw.ws(headers=GOOD)
    res = gw.handshake(c, auth=False)
    assert res["error"]["details"]["authReason"] == \
        "trusted_proxy_untrusted_source"


def test_startup_errors(launcher):
    rc, out, err = launcher.run(["gateway", "run", "--allow-unconfigured"],
                                config={"gateway": {"mode": "local",
                                        "auth": {"mode": "trusted-proxy"}}})
    assert rc == 78
    assert "gateway.trustedProxies" in err
    assert "gateway.auth.trustedProxy.userHeader" in err


def test_client_ip_from_trusted_proxy(launcher):
    gw = launcher.start(config={"gateway": {
        "mode": "local", "trustedProxies": ["127.0.0.1"]}})
    op = gw.connect()
    dev = Device()
    ws, res = device_connect(gw, dev, headers={
        "X-Forwarded-For": "192.0.2.55, 127.0.0.1"})
    assert res["error"]["details"]["code"] == "PAIRING_REQUIRED"
    ev = op.wait_event("device.pair.requested")
    assert ev["payload"]["remoteIp"] == "192.0.2.55"
