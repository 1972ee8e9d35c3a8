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
import threading
import time

import pytest

from chathelp import chat_config, new_key, run_events, send
from fakeupstream import FakeUpstream
from harness import clawgate_only
from oahelp import chat, post

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


class Gated:
    """A gateway whose first run (key, id a) holds the upstream (or the
    only lane slot with cap 1) until the test opens the gate."""

    def __init__(self, launcher, upstream, prefix, cap=None, env=None,
                 text="[[gate]] first"):
        extra = {"agents": {"defaults": {"maxConcurrent": cap}}} \
            if cap else None
        self.cfg = chat_config(upstream, extra)
        self.gw = launcher.start(config=self.cfg, env=env)
        self.ws = self.gw.connect()
        self.key = prefix + new_key()
        self.a = new_key()
        assert send(self.ws, self.key, text, idem=self.a)["ok"]
        upstream.wait(lambda s: s["chat"] == 1)


def _restart(launcher, gw, cfg):
    gw2 = launcher.start(config=cfg, state_dir=gw.state_dir, port=gw.port)
    return gw2, gw2.connect()


def test_queued_chat_send_survives_kill9(launcher, upstream):
    g = Gated(launcher, upstream, "pend-q-")
    gw, ws, key, a, b = g.gw, g.ws, g.key, g.a, new_key()
    assert send(ws, key, "second, queued", idem=b)["payload"] == \
        {"runId": b, "status": "started"}
    # Acknowledged: stored (the pending row and its idempotency row).
    assert _pending(gw) == [(b, _canon(key))]
    assert _idem(gw, b) == [("running", None)]
    _kill9(gw)

    gw2, ws2 = _restart(launcher, gw, g.cfg)
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
    g = Gated(launcher, upstream, "pend-ag-")
    gw, ws, key, b = g.gw, g.ws, g.key, new_key()
    rid = ws.send_req("agent", {"sessionKey": key, "message": "by agent",
                                "idempotencyKey": b})
    res = ws.wait_res(rid)
    assert res["ok"] and res["payload"]["status"] == "accepted", res
    assert _pending(gw) == [(b, _canon(key))]
    _kill9(gw)

    gw2, ws2 = _restart(launcher, gw, g.cfg)
    assert _history_users(ws2, key) == ["[[gate]] first", "by agent"]
    assert _pending(gw2) == []
    _assert_interrupted_replay(gw2, ws2, key, b)
    assert upstream.snapshot()["chat"] == 1


def test_lane_waiting_run_survives_kill9(launcher, upstream):
    """maxConcurrent 1: a run of another session waits for the slot. Its
    start is stored when it is acknowledged (readable at once), only its
    upstream request waits; a kill -9 leaves what a started run cut by a
    restart leaves."""
    g = Gated(launcher, upstream, "pend-l1-", cap=1)
    gw, ws, k2, b = g.gw, g.ws, "pend-l2-" + new_key(), new_key()
    assert send(ws, k2, "waits for the slot", idem=b)["payload"] == \
        {"runId": b, "status": "started"}
    assert ws.call("status")["gateway"]["runs"] == {
        "active": 1, "waiting": 1, "maxConcurrent": 1}
    assert _history_users(ws, k2) == ["waits for the slot"]
    assert _idem(gw, b) == [("running", None)]
    assert _pending(gw) == []
    _kill9(gw)

    gw2, ws2 = _restart(launcher, gw, g.cfg)
    assert _history_users(ws2, k2) == ["waits for the slot"]
    st = _rows(gw2, "SELECT status, last_error, last_run_id FROM sessions "
               "WHERE key = ?", (_canon(k2),))
    assert st == [("failed", INTERRUPTED, b)]
    _assert_interrupted_replay(gw2, ws2, k2, b)
    assert upstream.snapshot()["chat"] == 1


def test_normal_path_keeps_turn_order(launcher, upstream):
    """A queued run that gets its turn: its user row after the answer of
    the turn before it, its history in its request, no pending row left."""
    g = Gated(launcher, upstream, "pend-n-", text="[[gate]] [[reply:A1]] u1")
    gw, ws, key, a, b = g.gw, g.ws, g.key, g.a, new_key()
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


def _aborted(gw, ws, key, run_id, only=None):
    """chat.abort of a waiting run: aborted, agent.wait an error, its
    idempotency row 'aborted'."""
    params = {"sessionKey": key}
    if only:
        params["runId"] = run_id
    res = ws.call("chat.abort", params)
    assert res["aborted"] is True and res["runIds"] == [run_id]
    assert run_events(ws, run_id)[-1]["state"] == "aborted"
    assert ws.call("agent.wait", {"runId": run_id, "timeoutMs": 2000})[
        "status"] == "error"
    assert _idem(gw, run_id)[0][0] == "aborted"


def test_abort_of_a_queued_run_leaves_no_pending_row(launcher, upstream):
    g = Gated(launcher, upstream, "pend-ab-")
    gw, ws, key, b = g.gw, g.ws, g.key, new_key()
    assert send(ws, key, "aborted before its turn", idem=b)["ok"]
    assert _pending(gw) == [(b, _canon(key))]
    _aborted(gw, ws, key, b, only=True)
    assert _pending(gw) == []
    upstream.open_gate()
    assert run_events(ws, g.a)[-1]["state"] == "final"
    assert [r[1] for r in _transcript(gw, key) if r[0] == "user"] == [
        "[[gate]] first"]
    assert upstream.snapshot()["chat"] == 1


def test_abort_of_a_lane_waiting_run_is_an_aborted_start(launcher,
                                                         upstream):
    """Its start was stored: its abort ends it as an aborted started run
    (session row killed, idempotency aborted), never reaching upstream."""
    g = Gated(launcher, upstream, "pend-la1-", cap=1)
    gw, ws, k2, b = g.gw, g.ws, "pend-la2-" + new_key(), new_key()
    assert send(ws, k2, "waits", idem=b)["ok"]
    _aborted(gw, ws, k2, b)
    assert _rows(gw, "SELECT status, last_run_id FROM sessions WHERE "
                 "key = ?", (_canon(k2),)) == [("killed", b)]
    upstream.open_gate()
    assert run_events(ws, g.a)[-1]["state"] == "final"
    assert upstream.snapshot()["chat"] == 1


def test_clean_stop_ends_waiting_runs_as_aborted(launcher, upstream):
    """SIGTERM with a queued and a lane-waiting run: both end aborted as
    the run in flight does; nothing is left for the next boot to call
    interrupted."""
    g = Gated(launcher, upstream, "pend-s1-", cap=1)
    gw, ws, k1, k2 = g.gw, g.ws, g.key, "pend-s2-" + new_key()
    q, w = new_key(), new_key()
    assert send(ws, k1, "queued", idem=q)["ok"]
    assert send(ws, k2, "lane-waiting", idem=w)["ok"]
    ws.close()
    assert gw.stop() == 0
    assert "stopping: 3 run(s) in flight aborted" in gw.output()
    assert _pending(gw) == []
    for rid in (g.a, q, w):
        assert _idem(gw, rid)[0][0] == "aborted", rid
    gw2, ws2 = _restart(launcher, gw, g.cfg)
    assert "interrupted by the last shutdown" not in gw2.output()
    assert "waiting for their turn" not in gw2.output()
    assert _history_users(ws2, k1) == ["[[gate]] first"]
    assert _history_users(ws2, k2) == ["lane-waiting"]


def test_waiting_runs_are_bounded(launcher, upstream):
    """Runs that wait (queued or for a lane slot) are bounded (here 2 by
    CLAWGATE_RUN_WAIT_MAX): past it a run that would wait is refused with
    UNAVAILABLE (WS) or 503 (HTTP), nothing of it stored; a join is not
    affected, and once the waiting runs started a new one is accepted
    again."""
    g = Gated(launcher, upstream, "pend-b1-", cap=1,
              env={"CLAWGATE_RUN_WAIT_MAX": "2"},
              text="[[gate]] [[reply:A]] holds the slot")
    gw, ws, k1 = g.gw, g.ws, g.key
    k2, k3 = "pend-b2-" + new_key(), "pend-b3-" + new_key()
    b, c, d, e = (new_key() for _ in range(4))
    assert send(ws, k2, "[[reply:B]] lane-waiting", idem=b)["ok"]
    assert send(ws, k1, "[[reply:C]] queued", idem=c)["ok"]
    r = send(ws, k3, "one too many", idem=d)
    assert not r["ok"] and r["error"]["code"] == "UNAVAILABLE", r
    assert "too many runs waiting" in r["error"]["message"]
    rid = ws.send_req("agent", {"sessionKey": k3, "message": "by agent",
                                "idempotencyKey": e})
    res = ws.wait_res(rid)
    assert not res["ok"] and res["error"]["code"] == "UNAVAILABLE", res
    h = post(gw, "/v1/chat/completions", chat("[[reply:no]] http"))
    assert h.status_code == 503, h.text
    assert "too many runs waiting" in h.text
    # A retry of an acknowledged one joins it.
    assert send(ws, k2, "[[reply:B]] lane-waiting", idem=b)["payload"] == \
        {"runId": b, "status": "in_flight"}
    assert _idem(gw, d) == [] and _idem(gw, e) == []
    assert _rows(gw, "SELECT count(*) FROM sessions WHERE key = ?",
                 (_canon(k3),)) == [(0,)]
    upstream.open_gate()
    for rid_, want in ((g.a, "A"), (b, "B"), (c, "C")):
        fin = run_events(ws, rid_)[-1]
        assert fin["state"] == "final", fin
        assert fin["message"]["content"][0]["text"] == want
    assert send(ws, k3, "[[reply:D]] now", idem=d)["payload"] == \
        {"runId": d, "status": "started"}
    assert run_events(ws, d)[-1]["state"] == "final"
    assert upstream.snapshot()["chat"] == 4


def _first_res(ws, ids, timeout=30):
    """The first res of each request id (an `agent` request has two)."""
    deadline = time.monotonic() + timeout
    while True:
        got = {}
        for f in ws.frames:
            if f.get("type") == "res" and f["id"] in ids:
                got.setdefault(f["id"], f)
        if len(got) == len(ids):
            return got
        left = deadline - time.monotonic()
        assert left > 0, "no res for %d request(s)" % (len(ids) - len(got))
        ws.recv_json(left)


def test_mixed_waiting_runs_end_consistent(launcher, upstream):
    """Chat sends, `agent` runs and aborts racing over three sessions with
    one lane slot (queued and lane-waiting runs acknowledged on the store
    writer and on workers, slots and aborts arriving while their
    acknowledgement commits): every acknowledged run ends, nothing is left
    in run_pending, each session's transcript keeps its turns whole (an
    answer right after its own prompt) and every run that answered has
    exactly one prompt row."""
    cfg = chat_config(upstream,
                      {"agents": {"defaults": {"maxConcurrent": 1}}})
    gw = launcher.start(config=cfg)
    keys = ["pend-mx%d-%s" % (i, new_key()) for i in range(3)]
    acked, lock, errors = [], threading.Lock(), []

    def sender(method, n):
        try:
            with gw.connect() as ws:
                reqs = []
                for i in range(n):
                    idem = new_key()
                    p = {"sessionKey": keys[i % 3], "idempotencyKey": idem,
                         "message": "%s %d [[reply:%s]]" % (method, i,
                                                            idem)}
                    reqs.append((ws.send_req(method, p), idem))
                got = _first_res(ws, [rid for rid, _ in reqs])
                for rid, idem in reqs:
                    assert got[rid]["ok"], got[rid]
                    with lock:
                        acked.append(idem)
                if method == "chat.send":
                    for k in keys[1:]:
                        ws.call("chat.abort", {"sessionKey": k})
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=("chat.send", 18)),
               threading.Thread(target=sender, args=("agent", 12))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(acked) == 30
    ws = gw.connect()
    for idem in acked:
        w = ws.call("agent.wait", {"runId": idem, "timeoutMs": 30000})
        assert w["status"] in ("ok", "error"), w
    assert _pending(gw) == []
    status = dict(_rows(gw, "SELECT run_id, status FROM idempotency"))
    assert all(status.get(i) in ("ok", "aborted") for i in acked), status
    for key in keys:
        rows = _transcript(gw, key)
        for prev, row in zip(rows, rows[1:]):
            if row[0] == "assistant":
                assert prev[0] == "user" and prev[2] == row[2], rows
    prompts = _rows(gw, "SELECT run_id, count(*) FROM transcript WHERE "
                    "role = 'user' GROUP BY run_id")
    counts = dict(prompts)
    assert all(counts.get(i) == 1 for i in acked
               if status[i] == "ok"), counts
    assert all(n == 1 for n in counts.values()), counts
