"""The global run lane, agents.defaults.maxConcurrent (upstream: at most
that many agent runs in flight across sessions, each session still
serialized, the rest waiting in arrival order). Observed through the fake
upstream (which requests arrive) and status gateway.runs."""

import os
import threading
import time

from chathelp import upstream  # noqa: F401
from chathelp import chat_config, new_key, run_events, send
from harness import clawgate_only
from oahelp import chat, post

pytestmark = clawgate_only("clawgate's status gateway.runs, fake upstream")


def lane_config(up, cap=None):
    extra = {}
    if cap is not None:
        extra = {"agents": {"defaults": {"maxConcurrent": cap}}}
    return chat_config(up, extra)


def _start(start_gateway, up, cap=None):
    up.reset()
    gw = start_gateway(config=lane_config(up, cap))
    return gw, gw.connect()


def runs(ws):
    return ws.call("status")["gateway"]["runs"]


def wait_runs(ws, want, timeout=20):
    """Poll status until gateway.runs equals want (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        got = runs(ws)
        if got == want:
            return got
        assert time.monotonic() < deadline, "runs %r, want %r" % (got, want)
        time.sleep(0.02)


def user_texts(st):
    return [r["messages"][-1]["content"] for r in st["requests"]]


def test_cap_holds_runs_and_starts_them_in_arrival_order(start_gateway,
                                                         upstream):
    up = upstream
    gw, ws = _start(start_gateway, up, 2)
    keys = ["lane%d-%s" % (i, new_key()) for i in range(5)]
    ids = [new_key() for _ in keys]
    for i, (key, idem) in enumerate(zip(keys, ids)):
        # A waiting run is accepted at once, like a running one.
        assert send(ws, key, "[[hang]] lane-%d" % i, idem=idem)[
            "payload"] == {"runId": idem, "status": "started"}
    assert runs(ws) == {"active": 2, "waiting": 3, "maxConcurrent": 2}
    st = up.wait(lambda s: s["chat"] >= 2 and s["inflight"] == 2)
    # The first two start together (each its own upstream connection,
    # which the fake upstream serves on its own thread): the order they
    # are seen upstream is not the lane's. The later ones start one at a
    # time, in arrival order.
    assert sorted(user_texts(st)) == ["[[hang]] lane-0", "[[hang]] lane-1"]
    # As runs end (here aborted), the waiting ones start, oldest first,
    # never more than two upstream.
    for n in range(3):
        res = ws.call("chat.abort", {"sessionKey": keys[n]})
        assert res["runIds"] == [ids[n]]
        assert run_events(ws, ids[n])[-1]["state"] == "aborted"
        st = up.wait(lambda s: s["chat"] >= 3 + n and s["inflight"] == 2)
        assert st["chat"] == 3 + n
        assert user_texts(st)[-1] == "[[hang]] lane-%d" % (2 + n)
        assert runs(ws) == {"active": 2, "waiting": 2 - n,
                            "maxConcurrent": 2}
    for n in (3, 4):
        ws.call("chat.abort", {"sessionKey": keys[n]})
        assert run_events(ws, ids[n])[-1]["state"] == "aborted"
    wait_runs(ws, {"active": 0, "waiting": 0, "maxConcurrent": 2})
    assert up.snapshot()["chat"] == 5


def test_a_run_that_ends_starts_the_next(start_gateway, upstream):
    up = upstream
    gw, ws = _start(start_gateway, up, 1)
    a, b = new_key(), new_key()
    assert send(ws, "ln-a-" + new_key(), "[[gate]] [[reply:A]]",
                idem=a)["ok"]
    # Same session queue or not, b waits: the lane is full.
    assert send(ws, "ln-b-" + new_key(), "[[reply:B]]", idem=b)["ok"]
    up.wait(lambda s: s["inflight"] == 1)
    assert runs(ws) == {"active": 1, "waiting": 1, "maxConcurrent": 1}
    # agent.wait on a waiting run: it has not ended yet.
    assert ws.call("agent.wait", {"runId": b, "timeoutMs": 50})[
        "status"] == "timeout"
    assert up.snapshot()["chat"] == 1
    up.open_gate()
    assert run_events(ws, a)[-1]["state"] == "final"
    fin = run_events(ws, b)[-1]
    assert fin["state"] == "final"
    assert fin["message"]["content"][0]["text"] == "B"
    st = up.snapshot()
    assert st["chat"] == 2
    assert user_texts(st) == ["[[gate]] [[reply:A]]", "[[reply:B]]"]
    wait_runs(ws, {"active": 0, "waiting": 0, "maxConcurrent": 1})


def test_reload_raising_the_cap_starts_waiting_runs(start_gateway, upstream):
    up = upstream
    gw, ws = _start(start_gateway, up, 1)
    keys = ["lr%d-%s" % (i, new_key()) for i in range(4)]
    ids = [new_key() for _ in keys]
    for key, idem in zip(keys, ids):
        assert send(ws, key, "[[hang]]", idem=idem)["ok"]
    up.wait(lambda s: s["inflight"] == 1)
    assert runs(ws) == {"active": 1, "waiting": 3, "maxConcurrent": 1}
    got = ws.call("config.get")
    res = ws.call("config.patch", {
        "raw": '{"agents": {"defaults": {"maxConcurrent": 3}}}',
        "baseHash": got["hash"]})
    assert res["outcome"] == "applied"
    # At once: no run had to end for them to start.
    st = up.wait(lambda s: s["inflight"] == 3)
    assert st["chat"] == 3
    assert runs(ws) == {"active": 3, "waiting": 1, "maxConcurrent": 3}
    for i, (key, idem) in enumerate(zip(keys, ids)):
        ws.call("chat.abort", {"sessionKey": key})
        assert run_events(ws, idem)[-1]["state"] == "aborted"
        if i == 0:
            # The freed slot goes to the waiting run: its request reaches
            # the upstream (before it too is aborted below).
            up.wait(lambda s: s["chat"] == 4, timeout=30)
    wait_runs(ws, {"active": 0, "waiting": 0, "maxConcurrent": 3})
    assert up.snapshot()["chat"] == 4


def test_abort_join_and_session_order_of_a_waiting_run(start_gateway,
                                                       upstream):
    up = upstream
    gw, ws = _start(start_gateway, up, 1)
    busy, w, w2 = new_key(), new_key(), new_key()
    key, bkey = "lw-" + new_key(), "lbusy-" + new_key()
    assert send(ws, bkey, "[[hang]]", idem=busy)["ok"]
    up.wait(lambda s: s["inflight"] == 1)
    assert send(ws, key, "never sent [[reply:no]]", idem=w)["ok"]
    # A second run of the same session queues behind the waiting one.
    assert send(ws, key, "[[reply:after]]", idem=w2)["ok"]
    assert runs(ws) == {"active": 1, "waiting": 1, "maxConcurrent": 1}
    # An idempotent retry joins the waiting run.
    assert send(ws, key, "never sent [[reply:no]]", idem=w)["payload"][
        "runId"] == w
    res = ws.call("chat.abort", {"sessionKey": key, "runId": w})
    assert res["aborted"] is True and res["runIds"] == [w]
    assert run_events(ws, w)[-1]["state"] == "aborted"
    # Its session's next run now waits for the lane in its place.
    wait_runs(ws, {"active": 1, "waiting": 1, "maxConcurrent": 1})
    assert up.snapshot()["chat"] == 1
    ws.call("chat.abort", {"sessionKey": bkey})
    assert run_events(ws, busy)[-1]["state"] == "aborted"
    assert run_events(ws, w2)[-1]["state"] == "final"
    st = up.snapshot()
    assert st["chat"] == 2 and user_texts(st)[-1] == "[[reply:after]]"
    hist = ws.call("chat.history", {"sessionKey": key})
    # Its start was stored with its ack (issue 11, test_run_pending.py):
    # aborted, it leaves what an aborted started run leaves, its user
    # message without an answer.
    assert [m["content"][0]["text"] for m in hist["messages"]] == [
        "never sent [[reply:no]]", "[[reply:after]]", "after"]


def test_default_cap_from_the_cpus(start_gateway, upstream):
    up = upstream
    gw, ws = _start(start_gateway, up)
    try:
        cpus = len(os.sched_getaffinity(gw.proc.pid))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    cap = max(8, 4 * cpus)
    assert runs(ws) == {"active": 0, "waiting": 0, "maxConcurrent": cap}
    ids = [new_key() for _ in range(cap + 2)]
    for idem in ids:
        assert send(ws, "ld-" + new_key(), "[[gate]]", idem=idem)["ok"]
    up.wait(lambda s: s["inflight"] == cap, timeout=20)
    assert runs(ws) == {"active": cap, "waiting": 2, "maxConcurrent": cap}
    assert up.snapshot()["chat"] == cap
    up.open_gate()
    for idem in ids:
        assert run_events(ws, idem, timeout=30)[-1]["state"] == "final"
    assert up.snapshot()["chat"] == cap + 2


def test_http_chat_completions_wait_in_the_lane(start_gateway, upstream):
    up = upstream
    gw, ws = _start(start_gateway, up, 1)
    busy = new_key()
    key = "lh-" + new_key()
    assert send(ws, key, "[[hang]]", idem=busy)["ok"]
    up.wait(lambda s: s["inflight"] == 1)
    out = {}

    def call():
        out["r"] = post(gw, "/v1/chat/completions",
                        chat("[[reply:http]]"), timeout=30)

    t = threading.Thread(target=call)
    t.start()
    wait_runs(ws, {"active": 1, "waiting": 1, "maxConcurrent": 1})
    assert up.snapshot()["chat"] == 1
    ws.call("chat.abort", {"sessionKey": key})
    t.join(30)
    assert not t.is_alive()
    r = out["r"]
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "http"
    assert up.snapshot()["chat"] == 2


def test_shutdown_ends_waiting_runs(start_gateway, upstream):
    up = upstream
    gw, ws = _start(start_gateway, up, 1)
    for _ in range(20):
        assert send(ws, "ls-" + new_key(), "[[hang]]")["ok"]
    up.wait(lambda s: s["inflight"] == 1)
    assert runs(ws)["waiting"] == 19
    assert gw.stop() == 0
    assert up.snapshot()["chat"] == 1


def _http_threads(gw, texts, out, first=0):
    def one(i, text):
        try:
            out[i] = post(gw, "/v1/chat/completions", chat(text),
                          timeout=60)
        except Exception as e:  # noqa: BLE001 - the test looks at it
            out[i] = e

    ts = [threading.Thread(target=one, args=(i, t), daemon=True)
          for i, t in enumerate(texts, first)]
    for t in ts:
        t.start()
    return ts


def _http_waiting(start_gateway, up, first):
    """cap 1: HTTP run `first` upstream, two more HTTP runs of new sessions
    started with no WS client (their start is written with their end)
    waiting; then a client watches. Returns (gw, ws, threads, out)."""
    up.reset()
    gw = start_gateway(config=lane_config(up, 1))
    out = {}
    ts = _http_threads(gw, [first], out)
    up.wait(lambda s: s["inflight"] == 1)
    ts += _http_threads(gw, ["[[reply:b]]", "[[reply:c]]"], out, 1)
    # Watch only once both wait (a client connected from here on does
    # not change how their start is written).
    ws = gw.connect()
    wait_runs(ws, {"active": 1, "waiting": 2, "maxConcurrent": 1})
    assert up.snapshot()["chat"] == 1
    return gw, ws, ts, out


def test_http_runs_nobody_watches_wait_and_start(start_gateway, upstream):
    """Waiting in the lane keeps a start deferred to the end for the run's
    turn."""
    gw, ws, ts, out = _http_waiting(start_gateway, upstream,
                                    "[[gate]] [[reply:a]]")
    upstream.open_gate()
    for t in ts:
        t.join(30)
    got = sorted(out[i].json()["choices"][0]["message"]["content"]
                 for i in range(3))
    assert got == ["a", "b", "c"]
    assert upstream.snapshot()["chat"] == 3
    wait_runs(ws, {"active": 0, "waiting": 0, "maxConcurrent": 1})


def test_shutdown_ends_waiting_http_runs(start_gateway, upstream):
    gw, ws, ts, out = _http_waiting(start_gateway, upstream, "[[hang]]")
    assert gw.stop() == 0
    for t in ts:
        t.join(30)
    assert not any(getattr(out[i], "status_code", 0) == 200
                   for i in range(3))
    assert upstream.snapshot()["chat"] == 1
