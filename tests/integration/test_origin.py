"""Browser origin checks and the Control UI device requirement."""

from harness import clawgate_only
from pairing_util import Device, device_connect

MSG = ("origin not allowed (open the Control UI from the gateway host or "
       "allow it in gateway.controlUi.allowedOrigins)")


def ui(gw, ws, **kw):
    return gw.handshake(ws, client_id="openclaw-control-ui", mode="ui", **kw)


def refused(ws, res):
    assert res["ok"] is False, res
    assert res["error"]["message"] == MSG
    assert res["error"]["details"]["code"] == \
        "CONTROL_UI_ORIGIN_NOT_ALLOWED"
    assert ws.expect_close() == (1008, MSG[:120])


def test_loopback_origin_accepted(gateway):
    ws = gateway.ws(headers={"Origin": "http://127.0.0.1:%d" %
                             gateway.port})
    res = gateway.handshake(ws)
    assert res["ok"] is True, res


def test_foreign_origin_refused(gateway):
    ws = gateway.ws(headers={"Origin": "https://evil.example"})
    refused(ws, gateway.handshake(ws))


@clawgate_only("configures allowedOrigins")
def test_allowed_origins(launcher):
    gw = launcher.start(config={"gateway": {"controlUi": {
        "allowedOrigins": ["https://ui.example.com"]}}})
    ws = gw.ws(headers={"Origin": "https://UI.example.com"})
    assert gw.handshake(ws)["ok"] is True
    ws = gw.ws(headers={"Origin": "https://other.example.com"})
    refused(ws, gw.handshake(ws))
    gw2 = launcher.start(config={"gateway": {"controlUi": {
        "allowedOrigins": ["*"]}}})
    ws = gw2.ws(headers={"Origin": "https://any.example"})
    assert gw2.handshake(ws)["ok"] is True


def test_control_ui_needs_device(gateway):
    ws = gateway.ws(headers={"Origin": "http://localhost:%d" %
                             gateway.port})
    res = ui(gateway, ws)
    assert res["ok"] is False
    e = res["error"]
    assert e["message"] == ("control ui requires device identity (use "
                            "HTTPS or localhost secure context)")
    assert e["details"]["code"] == "CONTROL_UI_DEVICE_IDENTITY_REQUIRED"
    assert ws.expect_close()[0] == 1008


@clawgate_only("local Control UI pairing is silent in clawgate")
def test_control_ui_with_device_local(gateway):
    dev = Device()
    ws, res = device_connect(gateway, dev, client_id="openclaw-control-ui",
                             mode="ui", headers={
                                 "Origin": "http://127.0.0.1:%d" %
                                 gateway.port})
    assert res["ok"] is True, res
    assert res["payload"]["auth"]["deviceToken"]
