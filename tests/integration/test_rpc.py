"""RPC after hello: errors, scopes, seq, the foundation methods, presence.

Checked against the real gateway 2026.9.6 where marked shared. Differences:
- upstream `last-heartbeat` returns the last heartbeat (it runs agents; we
  have none yet, so ours is null);
- upstream `health` answers a cached snapshot and emits `health` events on
  its own schedule; the shapes agree.
"""

import base64
import hashlib
import re
import time

import pytest

from harness import ALL_SCOPES, PEER, clawgate_only

READ = ["operator.read"]
ADMIN = ["operator.admin"]


@pytest.fixture(scope="module")
def admin(gateway):
    return gateway.connect(scopes=ALL_SCOPES)


@pytest.fixture(scope="module")
def reader(gateway):
    return gateway.connect(scopes=READ)


# ---- errors after hello ------------------------------------------------------

def test_unknown_method_admin(admin):
    res = admin.request("no.such.method")
    assert res["ok"] is False
    assert res["error"] == {"code": "INVALID_REQUEST",
                            "message": "unknown method: no.such.method"}


def test_unknown_method_read_only(reader):
    res = reader.request("no.such.method")
    assert res["error"] == {
        "code": "FORBIDDEN", "message": "missing scope: operator.admin",
        "details": {"code": "MISSING_SCOPE", "missingScope": "operator.admin",
                    "requiredScopes": ["operator.admin"]}}


def test_admin_method_forbidden_for_reader(reader):
    res = reader.request("system-event", {"text": "x"})
    assert res["error"]["code"] == "FORBIDDEN"
    assert res["error"]["details"]["missingScope"] == "operator.admin"


@clawgate_only("params shape is checked once by our dispatcher")
def test_params_must_be_an_object(reader):
    for bad in ([], "x", 5):
        res = reader.request("health", bad)
        assert res["error"] == {
            "code": "INVALID_REQUEST",
            "message": "invalid health params: must be object"}
    # The socket stays usable.
    assert reader.request("health")["ok"] is True


def test_invalid_frame_after_hello_keeps_socket(reader):
    reader.send_text('{"type":"req","id":"bad-1"}')
    res = reader.recv_json()
    assert res == {"type": "res", "id": "bad-1", "ok": False, "error": {
        "code": "INVALID_REQUEST",
        "message": "invalid request frame: must have required property "
                   "'method'"}}
    reader.send_text('{"type":"event","event":"x"}')
    res = reader.recv_json()
    assert res["id"] == "invalid" and res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["message"].startswith("invalid request frame")
    # Non-JSON after hello is ignored; the socket still answers.
    reader.send_text("{nope")
    assert reader.request("health")["ok"] is True


def test_second_connect_after_hello(admin):
    res = admin.request("connect", {})
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"


def test_params_may_be_omitted(reader):
    rid = reader.send_req("health", omit_params=True)
    assert reader.wait_res(rid)["ok"] is True


def test_pipelined_requests_all_answered(reader):
    ids = [reader.send_req("health") for _ in range(10)]
    got = set()
    while len(got) < len(ids):
        f = reader.recv_json()
        if f["type"] == "res":
            assert f["ok"] is True
            got.add(f["id"])
    assert got == set(ids)


# ---- methods ---------------------------------------------------------------

def test_health(reader):
    h = reader.call("health")
    assert h["ok"] is True
    assert isinstance(h["ts"], int)
    assert isinstance(h["durationMs"], int) and h["durationMs"] >= 0
    assert abs(h["ts"] - time.time() * 1000) < 120000


def test_health_probe(reader):
    h = reader.call("health", {"probe": True})
    assert h["ok"] is True


def test_status(reader):
    st = reader.call("status")
    assert isinstance(st, dict)


def test_system_presence_has_self(reader):
    pres = reader.call("system-presence")
    assert isinstance(pres, list) and pres
    selfs = [p for p in pres if p.get("reason") == "self"]
    assert len(selfs) == 1
    s = selfs[0]
    assert s["mode"] == "gateway"
    assert s["host"] and s["text"].startswith("Gateway: ")
    assert "· mode gateway · reason self" in s["text"]
    ts = [p["ts"] for p in pres]
    assert ts == sorted(ts, reverse=True), "presence must be newest first"


def test_cli_connections_not_in_presence(gateway, reader):
    c = gateway.connect(scopes=READ, client={
        "id": "cli", "version": "t", "platform": "linux", "mode": "cli",
        "instanceId": "cli-instance-xyz"})
    pres = reader.call("system-presence")
    assert not [p for p in pres if p.get("instanceId") == "cli-instance-xyz"]
    c.close()


def test_ui_connection_in_presence_and_disconnect_event(gateway):
    watcher = gateway.connect(scopes=ALL_SCOPES)
    before = watcher.call("system-presence")
    ui = gateway.connect(scopes=READ, client={
        "id": "test", "version": "9.9.9", "platform": "linux",
        "mode": "ui", "displayName": "ui-presence-test"})
    pres = watcher.call("system-presence")
    mine = [p for p in pres if p.get("host") == "ui-presence-test"]
    assert mine, pres
    assert mine[0]["mode"] == "ui"
    assert mine[0]["reason"] == "connect"
    assert mine[0]["version"] == "9.9.9"
    assert len(pres) >= len(before)
    sv = watcher.hello["snapshot"]["stateVersion"]["presence"]
    ui.close()
    ev = watcher.wait_event(
        "presence", timeout=5,
        pred=lambda e: any(p.get("host") == "ui-presence-test" and
                           p.get("reason") == "disconnect"
                           for p in e["payload"]["presence"]))
    assert ev["stateVersion"]["presence"] > sv
    assert isinstance(ev["seq"], int)


def test_system_event_broadcasts_presence(gateway, admin):
    other = gateway.connect(scopes=READ)
    assert admin.call("system-event", {"text": "hello from the suite"}) == \
        {"ok": True}
    for c in (admin, other):
        ev = c.wait_event(
            "presence", timeout=5,
            pred=lambda e: any(p.get("text") == "hello from the suite"
                               for p in e["payload"]["presence"]))
        assert isinstance(ev["stateVersion"]["presence"], int)
        assert isinstance(ev["stateVersion"]["health"], int)
        assert isinstance(ev["seq"], int) and ev["seq"] >= 1
    other.close()


def test_system_event_requires_text(admin):
    res = admin.request("system-event", {})
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"


@clawgate_only("upstream runs heartbeats, so it has a last one")
def test_last_heartbeat_null(reader):
    assert reader.call("last-heartbeat") is None


def test_gateway_identity(reader):
    ident = reader.call("gateway.identity.get")
    assert re.fullmatch(r"[0-9a-f]{64}", ident["deviceId"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", ident["publicKey"])
    raw = base64.urlsafe_b64decode(ident["publicKey"] + "=")
    assert len(raw) == 32
    assert hashlib.sha256(raw).hexdigest() == ident["deviceId"]


def test_logs_tail(reader):
    first = reader.call("logs.tail", {"limit": 5})
    assert isinstance(first["file"], str) and first["file"]
    assert isinstance(first["lines"], list)
    assert len(first["lines"]) <= 5
    assert first["cursor"] <= first["size"] or first.get("reset")
    if not PEER:
        assert "/logs/" in first["file"]
    # Generate log traffic, then continue from the cursor.
    for _ in range(3):
        reader.request("no.such.method")
    nxt = reader.call("logs.tail", {"cursor": first["cursor"],
                                    "limit": 1000})
    assert nxt["cursor"] >= first["cursor"]
    assert isinstance(nxt["lines"], list)


def test_logs_tail_limit(reader):
    for _ in range(5):
        reader.call("health")
    out = reader.call("logs.tail", {"limit": 2})
    assert len(out["lines"]) <= 2


def test_logs_tail_bad_params(reader):
    res = reader.request("logs.tail", {"limit": 0})
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"


# ---- seq / events ----------------------------------------------------------------

def test_seq_per_connection_starts_at_1(gateway, admin):
    a = gateway.connect(scopes=READ)
    b = gateway.connect(scopes=READ)
    admin.call("system-event", {"text": "seq test 1"})
    admin.call("system-event", {"text": "seq test 2"})
    for c in (a, b):
        c.wait_event("presence", pred=lambda e: any(
            p.get("text") == "seq test 2" for p in e["payload"]["presence"]))
        seqs = [e["seq"] for e in c.frames
                if e.get("type") == "event" and "seq" in e]
        assert seqs[0] == 1, seqs
        assert seqs == list(range(1, len(seqs) + 1)), seqs
    a.close()
    b.close()


def test_health_event_carries_state_version(gateway):
    c = gateway.connect(scopes=READ)
    c.call("health", {"probe": True})
    if PEER:
        pytest.skip("upstream emits health events on its own schedule")
    ev = c.wait_event("health", timeout=5)
    assert isinstance(ev["stateVersion"]["health"], int)
    assert ev["payload"]["ok"] is True


@clawgate_only("CLAWGATE_TICK_INTERVAL_MS is ours")
def test_tick(start_gateway):
    gw = start_gateway(env={"CLAWGATE_TICK_INTERVAL_MS": "200"})
    c = gw.connect(scopes=READ)
    assert c.hello["policy"]["tickIntervalMs"] == 200
    t1 = c.wait_event("tick", timeout=3)
    t2 = c.wait_event("tick", timeout=3)
    assert set(t1["payload"]) == {"ts"}
    assert t2["payload"]["ts"] >= t1["payload"]["ts"]
    assert t2["seq"] > t1["seq"] >= 1
    assert "stateVersion" not in t1
