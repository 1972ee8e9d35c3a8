"""Nothing acknowledged is lost (issue 11): a run that cannot start at once
is stored before its ack. A run queued behind its session's live run gets
a run_pending row (migration 0010) with its idempotency row in the
transaction that acknowledges it; a run free in its session but waiting
for a lane slot (agents.defaults.maxConcurrent) has its start written
then, only its upstream request waits. After a kill -9 the restarted
gateway finds the message in its session's transcript (after the turn
before it) and a retry with the same idempotency key replays "interrupted"
instead of starting a new run. The normal path and the abort of a waiting
run leave no pending row; a clean stop ends waiting runs as aborted."""

import os
import signal
import sqlite3

import pytest

from chathelp import chat_config, new_key, run_events, send
from fakeupstream import FakeUpstream
from harness import clawgate_only

pytestmark = clawgate_only("clawgate's store tables, fake upstream")

INTERRUPTED = "run interrupted by a gateway restart"


@pytest.fixture
def upstream():
    """One per test: requests held by a killed gateway stay held (and
    counted in flight) until the upstream stops."""
    u = FakeUpstream(api_key="sk-fake").start()
    yield u
    u.stop()


def _db(gw):
    return sqlite3.connect("file:%s?mode=ro" % os.path.join(
        gw.state_dir, "state", "clawgate.sqlite"), uri=True, timeout=10)


def _rows(gw, sql, args=()):
    db = _db(gw)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _canon(key):
    return "agent:main:" + key


def _transcript(gw, key):
    return _rows(gw, "SELECT role, text, run_id FROM transcript WHERE "
                 "session_key = ? ORDER BY seq", (_canon(key),))


def _pending(gw):
    return _rows(gw, "SELECT run_id, session_key FROM run_pending")


def _idem(gw, run_id):
    return _rows(gw, "SELECT status, json_extract(result, '$.error') FROM "
                 "idempotency WHERE run_id = ?", (run_id,))


def _kill9(gw):
    os.killpg(gw.proc.pid, signal.SIGKILL)
    gw.proc.wait(10)


def _history_users(ws, key):
    hist = ws.call("chat.history", {"sessionKey": key})
    out = []
    for m in hist["messages"]:
        if m["role"] != "user":
            continue
        c = m["content"]
        out.append(c if isinstance(c, str) else c[0]["text"])
    return out


def _assert_interrupted_replay(gw, ws, key, run_id):
    """A retry with the same key replays the interrupted run: no new
    upstream request, an error, the stored error text."""
    r = send(ws, key, "retried", idem=run_id)
    assert r["payload"] == {"runId": run_id, "status": "error"}, r
    w = ws.call("agent.wait", {"runId": run_id, "timeoutMs": 2000})
    assert w["status"] == "error" and w.get("error") == INTERRUPTED, w
    assert _idem(gw, run_id) == [("error", INTERRUPTED)]


def _restart(launcher, gw, cfg):
    gw2 = launcher.start(config=cfg, state_dir=gw.state_dir, port=gw.port)
    return gw2, gw2.connect()


def test_queued_chat_send_survives_kill9(launcher, upstream):
    cfg = chat_config(upstream)
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    key = "pend-q-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, key, "[[gate]] first", idem=a)["ok"]
    upstream.wait(lambda s: s["chat"] == 1)
    assert send(ws, key, "second, queued", idem=b)["payload"] == \
        {"runId": b, "status": "started"}
    # Acknowledged: stored (the pending row and its idempotency row).
    assert _pending(gw) == [(b, _canon(key))]
    assert _idem(gw, b) == [("running", None)]
    _kill9(gw)

    gw2, ws2 = _restart(launcher, gw, cfg)
    assert _history_users(ws2, key) == ["[[gate]] first", "second, queued"]
    assert [(r[0], r[1], r[2]) for r in _transcript(gw2, key)] == [
        ("user", "[[gate]] first", a), ("user", "second, queued", b)]
    assert _pending(gw2) == []
    assert upstream.snapshot()["chat"] == 1
    _assert_interrupted_replay(gw2, ws2, key, b)
    _assert_interrupted_replay(gw2, ws2, key, a)
    assert upstream.snapshot()["chat"] == 1
    # The session goes on: the next turn sees both messages.
    nxt = new_key()
    assert send(ws2, key, "[[reply:on]] third", idem=nxt)["ok"]
    assert run_events(ws2, nxt)[-1]["state"] == "final"
    msgs = upstream.snapshot()["requests"][-1]["messages"]
    assert [m["content"] for m in msgs if m["role"] == "user"] == [
        "[[gate]] first", "second, queued", "[[reply:on]] third"]


def test_queued_agent_run_survives_kill9(launcher, upstream):
    """The `agent` RPC (a start on a worker, run_start): its "accepted"
    comes after the pending row's commit."""
    cfg = chat_config(upstream)
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    key = "pend-ag-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, key, "[[gate]] first", idem=a)["ok"]
    upstream.wait(lambda s: s["chat"] == 1)
    rid = ws.send_req("agent", {"sessionKey": key, "message": "by agent",
                                "idempotencyKey": b})
    res = ws.wait_res(rid)
    assert res["ok"] and res["payload"]["status"] == "accepted", res
    assert _pending(gw) == [(b, _canon(key))]
    _kill9(gw)

    gw2, ws2 = _restart(launcher, gw, cfg)
    assert _history_users(ws2, key) == ["[[gate]] first", "by agent"]
    assert _pending(gw2) == []
    _assert_interrupted_replay(gw2, ws2, key, b)
    assert upstream.snapshot()["chat"] == 1


def test_lane_waiting_run_survives_kill9(launcher, upstream):
    """maxConcurrent 1: a run of another session waits for the slot. Its
    start is stored when it is acknowledged (readable at once), only its
    upstream request waits; a kill -9 leaves what a started run cut by a
    restart leaves."""
    cfg = chat_config(upstream,
                      {"agents": {"defaults": {"maxConcurrent": 1}}})
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    k1, k2 = "pend-l1-" + new_key(), "pend-l2-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, k1, "[[gate]] holds the slot", idem=a)["ok"]
    upstream.wait(lambda s: s["chat"] == 1)
    assert send(ws, k2, "waits for the slot", idem=b)["payload"] == \
        {"runId": b, "status": "started"}
    assert ws.call("status")["gateway"]["runs"] == {
        "active": 1, "waiting": 1, "maxConcurrent": 1}
    assert _history_users(ws, k2) == ["waits for the slot"]
    assert _idem(gw, b) == [("running", None)]
    assert _pending(gw) == []
    _kill9(gw)

    gw2, ws2 = _restart(launcher, gw, cfg)
    assert _history_users(ws2, k2) == ["waits for the slot"]
    st = _rows(gw2, "SELECT status, last_error, last_run_id FROM sessions "
               "WHERE key = ?", (_canon(k2),))
    assert st == [("failed", INTERRUPTED, b)]
    _assert_interrupted_replay(gw2, ws2, k2, b)
    assert upstream.snapshot()["chat"] == 1


def test_normal_path_keeps_turn_order(launcher, upstream):
    """A queued run that gets its turn: its user row after the answer of
    the turn before it, its history in its request, no pending row left."""
    cfg = chat_config(upstream)
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    key = "pend-n-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, key, "[[gate]] [[reply:A1]] u1", idem=a)["ok"]
    upstream.wait(lambda s: s["chat"] == 1)
    assert send(ws, key, "[[reply:A2]] u2", idem=b)["ok"]
    assert _pending(gw) == [(b, _canon(key))]
    upstream.open_gate()
    assert run_events(ws, a)[-1]["state"] == "final"
    assert run_events(ws, b)[-1]["state"] == "final"
    assert [(r[0], r[1]) for r in _transcript(gw, key)] == [
        ("user", "[[gate]] [[reply:A1]] u1"), ("assistant", "A1"),
        ("user", "[[reply:A2]] u2"), ("assistant", "A2")]
    assert _pending(gw) == []
    msgs = upstream.snapshot()["requests"][-1]["messages"]
    assert [(m["role"], m["content"]) for m in msgs
            if m["role"] != "system"] == [
        ("user", "[[gate]] [[reply:A1]] u1"), ("assistant", "A1"),
        ("user", "[[reply:A2]] u2")]
    assert send(ws, key, "x", idem=b)["payload"] == \
        {"runId": b, "status": "ok"}


def test_abort_of_a_queued_run_leaves_no_pending_row(launcher, upstream):
    cfg = chat_config(upstream)
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    key = "pend-ab-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, key, "[[gate]] first", idem=a)["ok"]
    upstream.wait(lambda s: s["chat"] == 1)
    assert send(ws, key, "aborted before its turn", idem=b)["ok"]
    assert _pending(gw) == [(b, _canon(key))]
    res = ws.call("chat.abort", {"sessionKey": key, "runId": b})
    assert res["aborted"] is True and res["runIds"] == [b]
    assert run_events(ws, b)[-1]["state"] == "aborted"
    assert ws.call("agent.wait", {"runId": b, "timeoutMs": 2000})[
        "status"] == "error"
    assert _pending(gw) == []
    assert _idem(gw, b)[0][0] == "aborted"
    upstream.open_gate()
    assert run_events(ws, a)[-1]["state"] == "final"
    assert [r[1] for r in _transcript(gw, key) if r[0] == "user"] == [
        "[[gate]] first"]
    assert upstream.snapshot()["chat"] == 1


def test_abort_of_a_lane_waiting_run_is_an_aborted_start(launcher,
                                                         upstream):
    """Its start was stored: its abort ends it as an aborted started run
    (session row killed, idempotency aborted), never reaching upstream."""
    cfg = chat_config(upstream,
                      {"agents": {"defaults": {"maxConcurrent": 1}}})
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    k1, k2 = "pend-la1-" + new_key(), "pend-la2-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, k1, "[[gate]] holds the slot", idem=a)["ok"]
    upstream.wait(lambda s: s["chat"] == 1)
    assert send(ws, k2, "waits", idem=b)["ok"]
    res = ws.call("chat.abort", {"sessionKey": k2})
    assert res["runIds"] == [b]
    assert run_events(ws, b)[-1]["state"] == "aborted"
    assert ws.call("agent.wait", {"runId": b, "timeoutMs": 2000})[
        "status"] == "error"
    assert _idem(gw, b)[0][0] == "aborted"
    assert _rows(gw, "SELECT status, last_run_id FROM sessions WHERE "
                 "key = ?", (_canon(k2),)) == [("killed", b)]
    upstream.open_gate()
    assert run_events(ws, a)[-1]["state"] == "final"
    assert upstream.snapshot()["chat"] == 1


def test_clean_stop_ends_waiting_runs_as_aborted(launcher, upstream):
    """SIGTERM with a queued and a lane-waiting run: both end aborted as
    the run in flight does; nothing is left for the next boot to call
    interrupted."""
    cfg = chat_config(upstream,
                      {"agents": {"defaults": {"maxConcurrent": 1}}})
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    k1, k2 = "pend-s1-" + new_key(), "pend-s2-" + new_key()
    a, q, w = new_key(), new_key(), new_key()
    assert send(ws, k1, "[[gate]] in flight", idem=a)["ok"]
    upstream.wait(lambda s: s["chat"] == 1)
    assert send(ws, k1, "queued", idem=q)["ok"]
    assert send(ws, k2, "lane-waiting", idem=w)["ok"]
    ws.close()
    assert gw.stop() == 0
    assert "stopping: 3 run(s) in flight aborted" in gw.output()
    assert _pending(gw) == []
    for rid in (a, q, w):
        assert _idem(gw, rid)[0][0] == "aborted", rid
    gw2, ws2 = _restart(launcher, gw, cfg)
    assert "interrupted by the last shutdown" not in gw2.output()
    assert "waiting for their turn" not in gw2.output()
    assert _history_users(ws2, k1) == ["[[gate]] in flight"]
    assert _history_users(ws2, k2) == ["lane-waiting"]
