"""Device identity, pairing approvals and device tokens (issue 3)."""

import os
import signal
import subprocess
import time

import pytest

from harness import clawgate_only, free_port, is_uuid
from pairing_util import (REMOTE, Device, admin, db_path, db_query,
                          device_connect)

pytestmark = clawgate_only("clawgate pairing store and local policies")


# Upstream's message per reason (connect-error-details.ts).
REQUIREMENT = {
    "not-paired": "device is not approved yet",
    "role-upgrade": "device is asking for a higher role than currently "
                    "approved",
    "scope-upgrade": "device is asking for more scopes than currently "
                     "approved",
    "metadata-upgrade": "device identity changed and must be re-approved",
}


def pairing_required(ws, res):
    assert res["ok"] is False, res
    err = res["error"]
    assert err["code"] == "NOT_PAIRED"
    d = err["details"]
    assert d["code"] == "PAIRING_REQUIRED" and is_uuid(d["requestId"])
    msg = "pairing required: " + REQUIREMENT[d["reason"]]
    assert err["message"] == msg
    assert d["remediationHint"]
    assert d["deviceId"] and d["requestedRole"] in ("operator", "node")
    assert isinstance(d["requestedScopes"], list)
    # Only a Control UI is told to wait and reconnect by itself.
    assert "recommendedNextStep" not in d and "pauseReconnect" not in d
    full = "%s (requestId: %s)" % (msg, d["requestId"])
    # A close reason holds 123 bytes: the request id goes when it does not fit.
    assert ws.expect_close() == (1008, full if len(full) <= 123 else msg)
    return d


def pair_remote(gw, op, dev, scopes=None, role="operator"):
    """Remote connect -> pairing required -> approve; returns requestId."""
    ws, res = device_connect(gw, dev, headers=REMOTE, scopes=scopes,
                             role=role)
    d = pairing_required(ws, res)
    ev = op.wait_event("device.pair.requested",
                       pred=lambda e: e["payload"]["requestId"] ==
                       d["requestId"])
    assert ev["payload"]["deviceId"] == dev.id
    out = op.call("device.pair.approve", {"requestId": d["requestId"]})
    assert out["requestId"] == d["requestId"]
    assert out["device"]["deviceId"] == dev.id
    return d["requestId"]


def connect_ok(gw, dev, **kw):
    ws, res = device_connect(gw, dev, **kw)
    assert res["ok"] is True, res.get("error")
    ws.hello = res["payload"]
    tok = ws.hello["auth"].get("deviceToken")
    if tok:
        dev.token = tok
    return ws


def test_remote_pairing_flow(start_gateway):
    gw = start_gateway()
    op = admin(gw)
    dev = Device()
    ws, res = device_connect(gw, dev, headers=REMOTE)
    d = pairing_required(ws, res)
    assert d["reason"] == "not-paired"
    assert "approvedRoles" not in d and "approvedScopes" not in d
    ev = op.wait_event("device.pair.requested")
    p = ev["payload"]
    assert p["requestId"] == d["requestId"]
    assert p["publicKey"] == dev.public_key
    assert p["remoteIp"] == "127.0.0.1"
    lst = op.call("device.pair.list", {})
    assert [x["requestId"] for x in lst["pending"]] == [d["requestId"]]
    assert lst["paired"] == []
    # An identical retry refreshes the same request.
    ws, res = device_connect(gw, dev, headers=REMOTE)
    assert pairing_required(ws, res)["requestId"] == d["requestId"]
    rows = db_query(gw, "select request_id, reason from pending_pairing")
    assert rows == [(d["requestId"], "not-paired")]
    out = op.call("device.pair.approve", {"requestId": d["requestId"]})
    assert out["device"]["scopes"] == ["operator.read"]
    ev = op.wait_event("device.pair.resolved")
    assert ev["payload"]["decision"] == "approved"
    # Visible to a read-only reader as soon as the answer arrived.
    assert db_query(gw, "select device_id, scopes from paired_devices") == \
        [(dev.id, '["operator.read"]')]
    # Reconnect: hello-ok carries the device token.
    ws = connect_ok(gw, dev, headers=REMOTE)
    a = ws.hello["auth"]
    assert a["scopes"] == ["operator.read"]
    assert len(a["deviceToken"]) == 43 and a["issuedAtMs"] > 0
    ws.close()
    # Only the device token now.
    ws = connect_ok(gw, dev, headers=REMOTE,
                    auth={"deviceToken": dev.token})
    assert "deviceToken" not in ws.hello["auth"]
    assert ws.call("health") is not None
    res = ws.request("device.pair.list", {})
    assert res["error"]["code"] == "FORBIDDEN"
    # auth.token as the device token fallback.
    ws2 = connect_ok(gw, dev, headers=REMOTE, auth={"token": dev.token})
    ws2.close()
    # Tokens are never listed nor stored in clear.
    lst = op.call("device.pair.list", {})
    assert dev.token not in repr(lst)
    assert lst["paired"][0]["tokens"][0]["role"] == "operator"
    for f in os.listdir(os.path.dirname(db_path(gw))):
        with open(os.path.join(os.path.dirname(db_path(gw)), f), "rb") as fh:
            assert dev.token.encode() not in fh.read()
    cols = [r[1] for r in db_query(gw, "pragma table_info(device_tokens)")]
    assert "token_hash" not in cols
    audit = db_query(gw, "select action, device_id from pairing_audit")
    assert ("device.pair.approve", dev.id) in audit


def test_wrong_device_token(start_gateway):
    gw = start_gateway()
    dev = Device()
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             auth={"deviceToken": "x" * 43})
    assert res["ok"] is False
    e = res["error"]
    assert e["message"] == ("unauthorized: device token mismatch "
                            "(rotate/reissue device token)")
    assert e["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH"
    assert ws.expect_close()[0] == 1008


def test_local_device_approved_silently(start_gateway):
    gw = start_gateway()
    op = admin(gw)
    dev = Device()
    ws = connect_ok(gw, dev)
    assert ws.hello["auth"]["deviceToken"]
    ev = op.wait_event("device.pair.resolved")
    assert ev["payload"]["deviceId"] == dev.id
    assert db_query(gw, "select approved_via from paired_devices") == \
        [("silent",)]
    # The next local connect reuses the pairing: no new token.
    ws2 = connect_ok(gw, dev)
    assert "deviceToken" not in ws2.hello["auth"]


def test_auto_approve_local_off(start_gateway):
    gw = start_gateway(config={"gateway": {"nodes": {"pairing": {
        "autoApproveLocal": False}}}})
    ws, res = device_connect(gw, Device())
    assert pairing_required(ws, res)["reason"] == "not-paired"


def test_signature_failures(start_gateway):
    gw = start_gateway()
    dev, other = Device(), Device()

    def fail(code, reason, message, **kw):
        ws, res = device_connect(gw, dev, **kw)
        assert res["ok"] is False, res
        e = res["error"]
        assert (e["code"], e["message"]) == ("INVALID_REQUEST", message)
        assert e["details"] == {"code": code, "reason": reason}
        assert ws.expect_close() == (1008, message)

    fail("DEVICE_AUTH_DEVICE_ID_MISMATCH", "device-id-mismatch",
         "device identity mismatch", id=other.id)
    fail("DEVICE_AUTH_DEVICE_ID_MISMATCH", "device-id-mismatch",
         "device identity mismatch", publicKey="AAAA")
    fail("DEVICE_AUTH_SIGNATURE_EXPIRED", "device-signature-stale",
         "device signature expired",
         signed_at=int(time.time() * 1000) - 121000)
    fail("DEVICE_AUTH_SIGNATURE_EXPIRED", "device-signature-stale",
         "device signature expired",
         signed_at=int(time.time() * 1000) + 121000)
    fail("DEVICE_AUTH_NONCE_REQUIRED", "device-nonce-missing",
         "device nonce required", nonce="   ")
    fail("DEVICE_AUTH_NONCE_MISMATCH", "device-nonce-mismatch",
         "device nonce mismatch", nonce="not-the-challenge")
    fail("DEVICE_AUTH_SIGNATURE_INVALID", "device-signature",
         "device signature invalid", signature="AAAA")
    sig = "A" * 86
    fail("DEVICE_AUTH_SIGNATURE_INVALID", "device-signature",
         "device signature invalid", signature=sig)
    # v2 is accepted; so are a std-base64 signature and a PEM key.
    connect_ok(gw, dev, version=2).close()
    ws = gw.ws()
    params = gw.connect_params(scopes=["operator.read"])
    dev.sign(params, ws.challenge["payload"]["nonce"])
    s = params["device"]["signature"]
    params["device"]["signature"] = s.replace("-", "+").replace("_", "/") \
        + "=" * (-len(s) % 4)
    assert ws.request("connect", params)["ok"] is True
    import base64
    pem = ("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(
        bytes.fromhex("302a300506032b6570032100") + dev.pub).decode() +
        "\n-----END PUBLIC KEY-----\n")
    connect_ok(gw, dev, publicKey=pem).close()


def test_scope_upgrade_reject_remove(start_gateway):
    gw = start_gateway()
    op = admin(gw)
    dev = Device()
    pair_remote(gw, op, dev)
    connect_ok(gw, dev, headers=REMOTE).close()
    # More scopes -> scope-upgrade.
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             scopes=["operator.read", "operator.write"])
    d = pairing_required(ws, res)
    assert d["reason"] == "scope-upgrade"
    # What the device holds already comes with the request.
    assert d["approvedRoles"] == ["operator"]
    assert d["approvedScopes"] == ["operator.read"]
    assert d["requestedScopes"] == ["operator.read", "operator.write"]
    op.call("device.pair.reject", {"requestId": d["requestId"]})
    ev = op.wait_event("device.pair.resolved",
                       pred=lambda e: e["payload"]["decision"] ==
                       "rejected")
    assert ev["payload"]["deviceId"] == dev.id
    assert op.call("device.pair.list", {})["pending"] == []
    res = op.request("device.pair.approve", {"requestId": d["requestId"]})
    assert res["error"]["message"] == "unknown requestId"
    # Ask again and approve: the approval is the union.
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             scopes=["operator.read", "operator.write"])
    d = pairing_required(ws, res)
    op.call("device.pair.approve", {"requestId": d["requestId"]})
    ws = connect_ok(gw, dev, headers=REMOTE, auth={"deviceToken": dev.token},
                    scopes=["operator.write"])
    assert ws.hello["auth"]["scopes"] == ["operator.write"]
    # Role upgrade.
    ws2, res = device_connect(gw, dev, headers=REMOTE, role="node",
                              mode="node", client_id="node-host",
                              scopes=[])
    d = pairing_required(ws2, res)
    assert d["reason"] == "role-upgrade" and d["requestedRole"] == "node"
    assert d["approvedRoles"] == ["operator"]
    # Metadata change.
    ws2, res = device_connect(gw, dev, headers=REMOTE, client={
        "id": "cli", "version": "t", "platform": "darwin", "mode": "cli"})
    assert pairing_required(ws2, res)["reason"] == "metadata-upgrade"
    # Remove closes the device's sockets with 4001.
    out = op.call("device.pair.remove", {"deviceId": dev.id})
    assert out["deviceId"] == dev.id
    assert ws.expect_close() == (4001, "device removed")
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             auth={"deviceToken": dev.token})
    assert res["ok"] is False
    assert res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH"


def test_rotate_and_revoke(start_gateway):
    gw = start_gateway()
    op = admin(gw)
    dev = Device()
    sc = ["operator.read", "operator.write", "operator.pairing"]
    pair_remote(gw, op, dev, scopes=sc)
    ws = connect_ok(gw, dev, headers=REMOTE, scopes=sc)
    old = dev.token
    res = op.request("device.token.rotate", {
        "deviceId": dev.id, "role": "operator",
        "scopes": ["operator.admin"]})
    assert res["ok"] is False and "exceed" in res["error"]["message"]
    # Another caller (here the shared secret) never receives the token.
    out = op.call("device.token.rotate", {"deviceId": dev.id,
                                          "role": "operator",
                                          "scopes": sc})
    assert "token" not in out
    assert out["tokenDelivery"] == "withheld-cross-device"
    assert ws.expect_close() == (4001, "device removed")
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             auth={"deviceToken": old})
    assert res["ok"] is False
    # The device itself, with the shared secret, rotates and receives it.
    ws = connect_ok(gw, dev, headers=REMOTE, scopes=sc)
    old = dev.token
    out = ws.call("device.token.rotate", {"deviceId": dev.id,
                                          "role": "operator",
                                          "scopes": ["operator.read"]})
    assert out["tokenDelivery"] == "in-band"
    assert out["token"] != old and out["scopes"] == ["operator.read"]
    assert out["rotatedAtMs"] > 0
    assert ws.expect_close() == (4001, "device removed")
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             auth={"deviceToken": old})
    assert res["ok"] is False
    ws = connect_ok(gw, dev, headers=REMOTE,
                    auth={"deviceToken": out["token"]},
                    scopes=["operator.read", "operator.write"])
    # The token is bounded to its scopes.
    assert ws.hello["auth"]["scopes"] == ["operator.read"]
    out2 = op.call("device.token.revoke", {"deviceId": dev.id,
                                           "role": "operator"})
    assert out2["revokedAtMs"] > 0
    assert ws.expect_close() == (4001, "device removed")
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             auth={"deviceToken": out["token"]})
    assert res["ok"] is False
    assert db_query(gw, "select state from device_tokens") == [("revoked",)]
    # A shared-secret connect of the paired device re-issues a token.
    ws = connect_ok(gw, dev, headers=REMOTE)
    assert ws.hello["auth"]["deviceToken"]


def test_pairing_events_need_pairing_scope(start_gateway):
    gw = start_gateway()
    reader = gw.connect(scopes=["operator.read"])
    pairer = gw.connect(scopes=["operator.pairing"])
    ws, res = device_connect(gw, Device(), headers=REMOTE)
    pairing_required(ws, res)
    pairer.wait_event("device.pair.requested")
    reader.call("health")
    assert not [e for e in reader.events
                if e["event"].startswith("device.pair")]


def test_approve_bounded_by_caller(start_gateway):
    gw = start_gateway()
    pairer = gw.connect(scopes=["operator.pairing", "operator.read"])
    dev = Device()
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             scopes=["operator.admin"])
    d = pairing_required(ws, res)
    res = pairer.request("device.pair.approve",
                         {"requestId": d["requestId"]})
    assert res["error"]["code"] == "FORBIDDEN"
    assert res["error"]["message"] == "missing scope: operator.admin"
    node = Device()
    ws, res = device_connect(gw, node, headers=REMOTE, role="node",
                             mode="node", client_id="node-host", scopes=[])
    d2 = pairing_required(ws, res)
    res = pairer.request("device.pair.approve",
                         {"requestId": d2["requestId"]})
    assert res["error"]["details"]["missingScope"] == "operator.admin"
    ok = admin(gw).call("device.pair.approve", {"requestId": d2["requestId"]})
    assert ok["device"]["roles"] == ["node"]


def test_kill9_after_approve(launcher):
    gw = launcher.start()
    op = admin(gw)
    dev = Device()
    pair_remote(gw, op, dev)
    os.killpg(gw.proc.pid, signal.SIGKILL)
    gw.proc.wait(10)
    gw2 = launcher.start(state_dir=gw.state_dir, port=gw.port)
    ws = connect_ok(gw2, dev, headers=REMOTE)
    assert ws.hello["auth"]["deviceToken"]
    os.killpg(gw2.proc.pid, signal.SIGKILL)
    gw2.proc.wait(10)
    gw3 = launcher.start(state_dir=gw.state_dir, port=gw.port)
    ws = connect_ok(gw3, dev, headers=REMOTE,
                    auth={"deviceToken": dev.token})
    assert ws.hello["auth"]["scopes"] == ["operator.read"]


def test_approval_visible_to_sqlite3_cli(start_gateway):
    gw = start_gateway()
    op = admin(gw)
    dev = Device()
    pair_remote(gw, op, dev)
    out = subprocess.run(["sqlite3", "-readonly", db_path(gw),
                          "select device_id from paired_devices"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == dev.id, out.stderr


def test_cli_devices(start_gateway, launcher):
    gw = start_gateway()
    op = admin(gw)
    base = ["--url", gw.url, "--token", "T"]
    cli_state = launcher.prepare()

    def cli(*args):
        return launcher.run(["devices"] + list(args) + base,
                            state_dir=cli_state)

    rc, out, err = cli("list", "--json")
    assert rc == 0, err
    import json
    lst = json.loads(out)
    # The CLI signed its connect: it is paired (locally, silently).
    assert len(lst["paired"]) == 1 and lst["pending"] == []
    ident = json.load(open(os.path.join(cli_state, "identity",
                                        "device.json")))
    assert lst["paired"][0]["deviceId"] == ident["deviceId"]
    assert os.stat(os.path.join(cli_state, "identity",
                                "device.json")).st_mode & 0o777 == 0o600
    dev = Device()
    ws, res = device_connect(gw, dev, headers=REMOTE)
    rid = pairing_required(ws, res)["requestId"]
    rc, out, err = cli("approve")
    assert rc == 1 and rid in out
    rc, out, err = cli("list")
    assert rc == 0 and rid in out
    rc, out, err = cli("approve", rid)
    assert rc == 0, err
    assert "Approved %s" % dev.id in out
    connect_ok(gw, dev, headers=REMOTE).close()
    rc, out, err = cli("rotate", "--device", dev.id, "--role", "operator",
                       "--json")
    assert rc == 0, err
    # The CLI is another caller: the token stays with the device.
    out = json.loads(out)
    assert out["tokenDelivery"] == "withheld-cross-device"
    assert "token" not in out
    rc, out, err = cli("rotate", "--device", dev.id, "--role", "operator")
    assert rc == 0 and "Token: withheld" in out, err
    rc, out, err = cli("revoke", "--device", dev.id, "--role", "operator")
    assert rc == 0, err
    rc, out, err = cli("remove", dev.id)
    assert rc == 0, err
    other = Device()
    ws, res = device_connect(gw, other, headers=REMOTE)
    rid = pairing_required(ws, res)["requestId"]
    rc, out, err = cli("reject", rid)
    assert rc == 0, err
    rc, out, err = cli("reject", rid)
    assert rc == 1 and "unknown requestId" in err
    assert op.call("device.pair.list", {})["pending"] == []
