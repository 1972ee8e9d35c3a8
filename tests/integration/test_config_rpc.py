"""config.get/set/patch/apply/schema over WebSocket: redaction and its
sentinel restore, baseHash rules, validation errors naming the path, the
atomic write keeping the file mode, config.changed, the write limiter,
rollback."""

import json
import time
import os
import stat

import pytest

from harness import clawgate_only
from test_reload import (base_config, rows, wait_ready_again, wait_rows)

pytestmark = clawgate_only("config lifecycle of clawgate")

SENTINEL = "__OPENCLAW_REDACTED__"


@pytest.fixture
def gw(launcher):
    cfg = base_config(auth={"mode": "token", "token": "tok-1"})
    cfg["models"] = {"providers": {"p": {"baseUrl": "http://127.0.0.1:9/v1",
                                         "apiKey": "sk-secret"}}}
    return launcher.start(config=cfg, token=None, auth=None,
                          env={"CLAWGATE_RESTART_COOLDOWN_MS": "0"})


def admin(gw):
    return gw.connect(token="tok-1")


def test_get_is_redacted_with_hash(gw):
    c = admin(gw)
    got = c.call("config.get")
    assert got["exists"] is True and got["valid"] is True
    assert len(got["hash"]) == 64
    text = json.dumps(got)
    assert "tok-1" not in text and "sk-secret" not in text
    assert got["config"]["gateway"]["auth"]["token"] == SENTINEL
    assert got["config"]["models"]["providers"]["p"]["apiKey"] == SENTINEL
    assert SENTINEL in got["raw"]
    assert got["hash"] == got["appliedConfigHash"]


def test_base_hash_rules(gw):
    c = admin(gw)
    raw = json.dumps(base_config(auth={"mode": "token", "token": "tok-1"}))
    res = c.request("config.set", {"raw": raw})
    assert res["ok"] is False
    assert res["error"]["message"] == \
        "config base hash required; re-run config.get and retry"
    res = c.request("config.set", {"raw": raw, "baseHash": "0" * 64})
    assert res["ok"] is False
    assert res["error"]["message"] == \
        "config changed since last load; re-run config.get and retry"


def test_set_restores_sentinels_and_keeps_mode(gw):
    os.chmod(gw.config_path, 0o640)
    c = admin(gw)
    got = c.call("config.get")
    cfg = got["parsed"]
    cfg["gateway"]["controlUi"] = {"allowedOrigins": ["http://set"]}
    n = len(wait_rows(gw, 1))
    res = c.call("config.set", {"raw": json.dumps(cfg),
                                "baseHash": got["hash"]})
    assert res["ok"] is True and res["outcome"] == "applied"
    assert res["config"]["gateway"]["auth"]["token"] == SENTINEL
    on_disk = json.load(open(gw.config_path))
    assert on_disk["gateway"]["auth"]["token"] == "tok-1"
    assert on_disk["models"]["providers"]["p"]["apiKey"] == "sk-secret"
    assert stat.S_IMODE(os.stat(gw.config_path).st_mode) == 0o640
    r = wait_rows(gw, n + 1)
    assert r[-1]["source"] == "rpc" and r[-1]["actor"] == "cli"
    assert r[-1]["method"] == "config.set"
    assert "tok-1" not in json.dumps(rows(gw))
    assert "sk-secret" not in json.dumps(rows(gw))
    # the watcher sees our own write and ignores it (same hash)
    assert c.call("config.get")["hash"] == res["hash"]


def test_invalid_set_names_path_and_keeps_file(gw):
    c = admin(gw)
    got = c.call("config.get")
    before = open(gw.config_path).read()
    res = c.request("config.set", {
        "raw": '{gateway: {mode: "local", port: "x"}}',
        "baseHash": got["hash"]})
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert "gateway.port" in res["error"]["message"]
    assert res["error"]["details"]["issues"][0]["path"] == "gateway.port"
    assert open(gw.config_path).read() == before


def test_patch_merges_and_broadcasts(gw):
    c = admin(gw)
    got = c.call("config.get")
    res = c.call("config.patch", {
        "raw": json.dumps({"gateway": {"auth": {"rateLimit": {
            "maxAttempts": 7}}}}),
        "baseHash": got["hash"]})
    assert res["outcome"] == "applied"
    assert [ch["path"] for ch in res["changes"]] == \
        ["gateway.auth.rateLimit.maxAttempts"]
    ev = c.wait_event("config.changed", timeout=5)
    assert ev["payload"]["hash"] == res["hash"]
    assert ev["payload"]["source"] == "rpc"
    on_disk = json.load(open(gw.config_path))
    assert on_disk["gateway"]["auth"]["token"] == "tok-1"
    assert on_disk["gateway"]["auth"]["rateLimit"]["maxAttempts"] == 7


def test_apply_restarts(gw):
    c = admin(gw)
    got = c.call("config.get")
    pid = gw.proc.pid
    res = c.call("config.apply", {"raw": got["raw"],
                                  "baseHash": got["hash"]})
    assert res["restart"] is True
    c.wait_event("shutdown", timeout=10)
    assert c.expect_close(timeout=10)[0] == 1012
    wait_ready_again(gw)
    assert gw.proc.pid == pid
    assert admin(gw).call("health") is not None


def test_rollback_restores_file_and_running_config(gw):
    c = admin(gw)
    original = open(gw.config_path).read()
    got = c.call("config.get")
    c.call("config.patch", {"raw": json.dumps({"gateway": {"controlUi": {
        "allowedOrigins": ["http://a"]}}}), "baseHash": got["hash"]})
    res = c.call("config.rollback", {})
    assert res["restoredFrom"] >= 1
    assert json.load(open(gw.config_path)) == json.loads(original)
    now = c.call("config.get")
    assert "controlUi" not in now["config"]["gateway"]
    assert now["appliedConfigHash"] == now["hash"]
    assert rows(gw)[-1]["source"] == "rollback"


def test_schema_and_lookup(gw):
    c = admin(gw)
    s = c.call("config.schema")
    assert {"schema", "uiHints", "version", "generatedAt"} <= set(s)
    port = s["schema"]["properties"]["gateway"]["properties"]["port"]
    assert port["type"] == "integer"
    lk = c.call("config.schema.lookup", {"path": "gateway.auth"})
    assert lk["path"] == "gateway.auth"
    assert "token" in [ch["key"] for ch in lk["children"]]


def test_plan_and_history(gw):
    c = admin(gw)
    p = c.call("config.plan", {"raw": json.dumps(base_config(
        port=1234, auth={"mode": "token", "token": "tok-1"}))})
    assert p["valid"] is True and p["restart"] is True
    assert {"path": "gateway.port", "action": "restart",
            "rule": "gateway.port"} in p["changes"]
    # The startup row is recorded just after the gateway starts serving.
    deadline = time.monotonic() + 30
    h = c.call("config.history")
    while not h["snapshots"]:
        assert time.monotonic() < deadline, h
        time.sleep(0.02)
        h = c.call("config.history")
    assert h["snapshots"][0]["current"] is True


def test_write_limiter(gw):
    c = admin(gw)
    got = c.call("config.get")
    last, h = None, got["hash"]
    for _ in range(31):
        last = c.request("config.set", {"raw": got["raw"], "baseHash": h})
        if not last["ok"]:
            break
        h = last["payload"]["hash"]
    assert last["ok"] is False
    err = last["error"]
    assert err["code"] == "UNAVAILABLE" and err["retryable"] is True
    assert err["message"].startswith("rate limit exceeded for config.set")
    assert err["details"] == {"method": "config.set", "limit": "30 per 60s"}
