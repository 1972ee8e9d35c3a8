"""sessions.* methods and the session events (sessions.changed to
sessions.subscribe holders, session.message to per-key subscribers)."""

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import new_key, turn
from harness import clawgate_only

pytestmark = clawgate_only("needs the fake upstream wired in the config")


def test_list_get_preview(cgw, up):
    ws = cgw.connect()
    key = "list-" + new_key()
    turn(ws, key, "[[usage:11,7]] hello list")
    full = "agent:main:" + key
    res = ws.call("sessions.list", {"includeLastMessage": True,
                                    "includeDerivedTitles": True})
    assert res["count"] == len(res["sessions"]) >= 1
    assert res["defaults"]["modelProvider"] == "fake"
    assert res["defaults"]["model"] == "fake-model"
    row = [r for r in res["sessions"] if r["key"] == full][0]
    assert row["kind"] == "direct" and row["agentId"] == "main"
    assert row["status"] == "done"
    assert row["inputTokens"] == 11 and row["outputTokens"] == 7
    assert row["totalTokens"] == 18
    assert row["modelProvider"] == "fake" and row["model"] == "fake-model"
    assert row["lastMessagePreview"] == "echo: hello list"
    assert row["derivedTitle"].startswith("[[usage:11,7]] hello")
    # Newest first.
    assert res["sessions"][0]["updatedAt"] >= res["sessions"][-1][
        "updatedAt"]
    got = ws.call("sessions.get", {"key": key})
    assert got["exists"] is True and got["entry"]["key"] == full
    assert ws.call("sessions.get", {"key": "nope-" + new_key()})[
        "exists"] is False
    pv = ws.call("sessions.preview", {"keys": [key, "ghost-x"],
                                      "limit": 1, "maxChars": 20})
    p = {x["key"]: x for x in pv["previews"]}
    assert p[key]["status"] == "ok"
    assert p[key]["items"] == [{"role": "assistant",
                                "text": "echo: hello list"}]
    assert p["ghost-x"]["status"] == "missing"
    one = ws.call("sessions.list", {"search": key})
    assert [r["key"] for r in one["sessions"]] == [full]
    lim = ws.call("sessions.list", {"limit": 1})
    assert len(lim["sessions"]) == 1


def test_patch_reset_delete(cgw, up):
    ws = cgw.connect()
    key = "patch-" + new_key()
    turn(ws, key, "first")
    res = ws.call("sessions.patch", {"key": key, "label": "My chat",
                                     "thinkingLevel": "low"})
    assert res["ok"] is True and res["key"] == "agent:main:" + key
    assert res["entry"]["label"] == "My chat"
    assert res["entry"]["thinkingLevel"] == "low"
    res = ws.call("sessions.patch", {"key": key, "thinkingLevel": None,
                                     "model": "backup/backup-model"})
    assert "thinkingLevel" not in res["entry"]
    assert res["resolved"] == {"modelProvider": "backup",
                               "model": "backup-model"}
    # The session override picks the model of the next turn.
    turn(ws, key, "second")
    assert up.snapshot()["requests"][-1]["model"] == "backup-model"
    labelled = ws.call("sessions.list", {"label": "My chat"})
    assert [r["key"] for r in labelled["sessions"]] == ["agent:main:" + key]
    bad = ws.request("sessions.patch", {"key": key, "label": 5})
    assert bad["ok"] is False
    old = ws.call("sessions.get", {"key": key})["entry"]["sessionId"]
    res = ws.call("sessions.reset", {"key": key, "reason": "new"})
    assert res["ok"] is True and res["entry"]["sessionId"] != old
    assert ws.call("chat.history", {"sessionKey": key})["messages"] == []
    res = ws.call("sessions.delete", {"key": key})
    assert res == {"ok": True, "key": "agent:main:" + key,
                   "deleted": True, "archived": []}
    assert ws.call("sessions.get", {"key": key})["exists"] is False
    main = ws.request("sessions.delete", {"key": "main"})
    assert main["ok"] is False


def test_subscriptions_and_events(cgw, up):
    sub = cgw.connect()
    other = cgw.connect()
    ws = cgw.connect()
    key = "sub-" + new_key()
    full = "agent:main:" + key
    assert sub.call("sessions.subscribe")["subscribed"] is True
    assert sub.call("sessions.messages.subscribe",
                    {"key": key})["key"] == full
    idem = turn(ws, key, "watch me")
    m1 = sub.wait_event("session.message",
                        pred=lambda f: f["payload"]["sessionKey"] == full)
    assert m1["payload"]["message"]["role"] == "user"
    assert m1["payload"]["messageSeq"] == 1
    m2 = sub.wait_event("session.message",
                        pred=lambda f: f["payload"]["sessionKey"] == full)
    assert m2["payload"]["message"]["role"] == "assistant"
    assert m2["payload"]["message"]["content"][0]["text"] == \
        "echo: watch me"
    ch = sub.wait_event("sessions.changed",
                        pred=lambda f: f["payload"]["sessionKey"] == full
                        and f["payload"].get("reason") == "run.end")
    assert ch["payload"]["runId"] == idem
    assert ch["payload"]["status"] == "done"
    # Not subscribed: no session events (a ping proves the order).
    other.call("health")
    assert not [e for e in other.events
                if e["event"] in ("session.message", "sessions.changed")]
    sub.call("sessions.messages.unsubscribe", {"key": key})
    sub.call("sessions.unsubscribe")
    turn(ws, key, "unwatched")
    sub.call("health")
    late = [e for e in sub.events if e["event"] in (
        "session.message", "sessions.changed") and
        e["payload"]["sessionKey"] == full and
        e["payload"].get("message", {}).get("content", [{}])[0].get(
            "text") == "unwatched"]
    assert late == []


def test_reserved_and_invalid_keys(cgw, up):
    ws = cgw.connect()
    for k in ("subagent:x", "acp:y", "agent:main:cron:z"):
        r = ws.request("sessions.patch", {"key": k, "label": "x"})
        assert r["ok"] is False, k
        assert r["error"]["code"] == "INVALID_REQUEST"
    r = ws.request("sessions.preview", {"keys": []})
    assert r["ok"] is False
    ro = cgw.connect(scopes=["operator.read"])
    assert ro.request("sessions.reset", {"key": "x"})["error"]["code"] == \
        "FORBIDDEN"
