"""chat.send without the worker hop (issue 11): the method runs on the
lws thread (validation, /stop, the join of a live run), and what needs the
store (the idempotency row: a stored run replays; the session's model
override; the history; the start's rows) is one store job, the `res` going
out after its commit. What could break with the move: a replay once the
run ended, a second chat.send with the same key racing the first (two
connections, back to back: one run, both answered), a replay across a
restart, and the ack before the start's rows are readable."""

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import chat_config, new_key, run_events, send


def _users(ws, key):
    hist = ws.request("chat.history", {"sessionKey": key})
    assert hist["ok"], hist
    return [m for m in hist["payload"]["messages"] if m["role"] == "user"]


def test_replay_after_the_run_ended(cgw, up):
    """A run that ended replays its stored status, an error as an error,
    without a new run: no upstream request, no second user row."""
    ws = cgw.connect()
    key = "replay-" + new_key()
    up.push(status=503)
    up.push(status=503)
    bad = new_key()
    assert send(ws, key, "fails", idem=bad)["payload"] == \
        {"runId": bad, "status": "started"}
    assert run_events(ws, bad)[-1]["state"] == "error"
    calls = up.snapshot()["chat"]
    for msg in ("fails", "another text, same key"):
        r = send(ws, key, msg, idem=bad)
        assert r["payload"] == {"runId": bad, "status": "error"}
    good = new_key()
    assert send(ws, key, "[[reply:fine]]", idem=good)["ok"]
    assert run_events(ws, good)[-1]["state"] == "final"
    assert send(ws, key, "x", idem=good)["payload"] == \
        {"runId": good, "status": "ok"}
    assert up.snapshot()["chat"] == calls + 1
    assert len(_users(ws, key)) == 2


def test_duplicate_key_racing_the_first(cgw, up):
    """Two connections send the same key back to back, before either is
    answered: one run (one upstream request, one user row), both get a
    res with its id, one `started` and one `in_flight`."""
    a = cgw.connect()
    b = cgw.connect()
    key = "race-" + new_key()
    idem = new_key()
    params = {"sessionKey": key, "message": "[[gate]] raced",
              "idempotencyKey": idem}
    ra = a.send_req("chat.send", params)
    rb = b.send_req("chat.send", params)
    got = [a.wait_res(ra), b.wait_res(rb)]
    assert all(g["ok"] for g in got), got
    assert {g["payload"]["runId"] for g in got} == {idem}
    assert sorted(g["payload"]["status"] for g in got) == \
        ["in_flight", "started"]
    up.wait(lambda s: s["inflight"] >= 1)
    up.open_gate()
    assert run_events(a, idem)[-1]["state"] == "final"
    assert up.snapshot()["chat"] == 1
    assert [u["content"] for u in _users(a, key)] in (
        ["[[gate]] raced"], [[{"type": "text", "text": "[[gate]] raced"}]])


def test_ack_after_the_start_is_stored(cgw, up):
    """The `started` res comes after the start's commit: the user row is
    readable as soon as it arrives, while the answer is still held."""
    ws = cgw.connect()
    key = "acked-" + new_key()
    idem = new_key()
    assert send(ws, key, "[[gate]] stored first", idem=idem)["payload"] \
        == {"runId": idem, "status": "started"}
    assert len(_users(ws, key)) == 1
    up.open_gate()
    assert run_events(ws, idem)[-1]["state"] == "final"


def test_replay_across_a_restart(launcher, upstream):
    upstream.reset()
    cfg = chat_config(upstream)
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    key = "restart-" + new_key()
    idem = new_key()
    assert send(ws, key, "[[reply:kept]]", idem=idem)["ok"]
    assert run_events(ws, idem)[-1]["state"] == "final"
    assert gw.stop() == 0
    gw2 = launcher.start(config=cfg, state_dir=gw.state_dir, port=gw.port)
    ws2 = gw2.connect()
    r = send(ws2, key, "[[reply:new]]", idem=idem)
    assert r["payload"] == {"runId": idem, "status": "ok"}
    assert upstream.snapshot()["chat"] == 1
    # The session goes on with a new key, its history read in the job.
    nxt = new_key()
    assert send(ws2, key, "next", idem=nxt)["payload"]["status"] == \
        "started"
    assert run_events(ws2, nxt)[-1]["state"] == "final"
    msgs = upstream.snapshot()["requests"][-1]["messages"]
    assert [m["role"] for m in msgs if m["role"] != "system"] == \
        ["user", "assistant", "user"]


def test_agent_and_chat_send_racing_one_key(cgw, up):
    """An `agent` request (started on a worker) and a chat.send (started
    in a store job) with the same key, back to back on two connections:
    whichever goes live second joins the first; one run, one user row."""
    a = cgw.connect()
    b = cgw.connect()
    key = "mixed-" + new_key()
    idem = new_key()
    ra = a.send_req("agent", {"sessionKey": key, "message": "[[gate]] one",
                              "idempotencyKey": idem})
    rb = b.send_req("chat.send", {"sessionKey": key,
                                  "message": "[[gate]] one",
                                  "idempotencyKey": idem})
    got = [a.wait_res(ra), b.wait_res(rb)]
    assert all(g["ok"] for g in got), got
    assert {g["payload"]["runId"] for g in got} == {idem}
    up.wait(lambda s: s["inflight"] >= 1)
    up.open_gate()
    assert a.wait_res(ra, timeout=10)["payload"]["status"] == "ok"
    assert up.snapshot()["chat"] == 1
    assert len(_users(a, key)) == 1
