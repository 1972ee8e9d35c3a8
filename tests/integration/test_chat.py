"""chat.send / chat.history / chat.abort / chat.inject over WebSocket,
answered by the fake upstream (tests/integration/fakeupstream.py)."""

import time

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import deltas_text, new_key, run_events, send
from harness import clawgate_only

pytestmark = clawgate_only("needs the fake upstream wired in the config")


def test_send_streams_deltas_and_final(cgw, up):
    ws = cgw.connect()
    idem = new_key()
    res = send(ws, "main", "hello there world", idem=idem)
    assert res["ok"], res
    assert res["payload"] == {"runId": idem, "status": "started"}
    evs = run_events(ws, idem)
    final = evs[-1]
    assert final["state"] == "final", evs
    assert final["sessionKey"] == "agent:main:main"
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    assert deltas_text(evs) == "echo: hello there world"
    assert final["message"]["content"][0]["text"] == \
        "echo: hello there world"
    assert final["usage"]["output"] >= 1
    # The upstream got the user message, streaming, usage requested.
    body = up.snapshot()["requests"][-1]
    assert body["model"] == "fake-model"
    assert body["stream"] is True
    assert body["messages"][-1] == {"role": "user",
                                    "content": "hello there world"}
    hist = ws.call("chat.history", {"sessionKey": "main"})
    assert hist["sessionKey"] == "agent:main:main"
    texts = [(m["role"], m["content"][0]["text"]) for m in hist["messages"]]
    assert texts[-2:] == [("user", "hello there world"),
                          ("assistant", "echo: hello there world")]


def test_history_is_sent_upstream(cgw, up):
    ws = cgw.connect()
    key = "hist-" + new_key()
    for msg in ("first", "second"):
        idem = new_key()
        assert send(ws, key, msg, idem=idem)["ok"]
        assert run_events(ws, idem)[-1]["state"] == "final"
    msgs = up.snapshot()["requests"][-1]["messages"]
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("user", "first"), ("assistant", "echo: first"),
        ("user", "second")]


def test_fallback_when_primary_fails_before_first_token(cgw, up):
    ws = cgw.connect()
    up.push(status=500)
    idem = new_key()
    assert send(ws, "fb-" + new_key(), "fallback please", idem=idem)["ok"]
    evs = run_events(ws, idem)
    assert evs[-1]["state"] == "final", evs
    assert deltas_text(evs) == "echo: fallback please"
    reqs = up.snapshot()["requests"]
    assert [r["model"] for r in reqs[-2:]] == ["fake-model", "backup-model"]


def test_all_models_fail_gives_error_event(cgw, up):
    ws = cgw.connect()
    up.push(status=503)
    up.push(status=429)
    idem = new_key()
    assert send(ws, "err-" + new_key(), "x", idem=idem)["ok"]
    evs = run_events(ws, idem)
    err = evs[-1]
    assert err["state"] == "error", evs
    assert "backup" in err["errorMessage"] and "429" in \
        err["errorMessage"], err
    assert err["errorKind"] == "rate_limit"
    assert err["errorDetail"]["httpStatus"] == 429


def test_stream_cut_mid_answer_is_an_error(cgw, up):
    ws = cgw.connect()
    idem = new_key()
    assert send(ws, "cut-" + new_key(),
                "[[reply:one two three four]] [[cut:2]]", idem=idem)["ok"]
    evs = run_events(ws, idem)
    assert evs[-1]["state"] == "error", evs
    assert "ended before" in evs[-1]["errorMessage"]
    # Tokens had been streamed: no fallback attempt.
    assert up.snapshot()["chat"] == 1


def test_abort_mid_stream_recorded_as_aborted(cgw, up):
    ws = cgw.connect()
    key = "abort-" + new_key()
    idem = new_key()
    assert send(ws, key, "[[reply:a b c d e f g h i j]] [[delay:300]]",
                idem=idem)["ok"]
    ws.wait_event("chat", pred=lambda f: f["payload"]["runId"] == idem and
                  f["payload"]["state"] == "delta")
    res = ws.call("chat.abort", {"sessionKey": key})
    assert res["ok"] is True and res["aborted"] is True
    assert res["runIds"] == [idem]
    evs = run_events(ws, idem)
    assert evs[-1]["state"] == "aborted", evs
    up.wait(lambda s: s["disconnects"] >= 1 or s["inflight"] == 0)
    hist = ws.call("chat.history", {"sessionKey": key})
    last = hist["messages"][-1]
    assert last["role"] == "assistant"
    assert last["stopReason"] == "aborted"
    assert last["content"][0]["text"].startswith("a ")
    row = ws.call("sessions.get", {"key": key})["entry"]
    assert row["status"] == "killed"


def test_sends_on_one_session_queue_in_order(cgw, up):
    """A send while the session is busy waits for its turn (FIFO): each
    turn sees the answers before it and the transcript keeps send order."""
    ws = cgw.connect()
    key = "fifo-" + new_key()
    ids = [new_key() for _ in range(3)]
    texts = ["first [[reply:A1]] [[slow:300]]", "second [[reply:A2]]",
             "third [[reply:A3]]"]
    for idem, text in zip(ids, texts):
        assert send(ws, key, text, idem=idem)["payload"] == {
            "runId": idem, "status": "started"}
    finals = [run_events(ws, idem)[-1] for idem in ids]
    assert [f["state"] for f in finals] == ["final"] * 3
    st = up.snapshot()
    assert st["chat"] == 3
    seen = [[(m["role"], m["content"]) for m in r["messages"]]
            for r in st["requests"][-3:]]
    assert seen[2] == [("user", texts[0]), ("assistant", "A1"),
                       ("user", texts[1]), ("assistant", "A2"),
                       ("user", texts[2])]
    hist = ws.call("chat.history", {"sessionKey": key})
    assert [(m["role"], m["content"][0]["text"])
            for m in hist["messages"]] == [
        ("user", texts[0]), ("assistant", "A1"), ("user", texts[1]),
        ("assistant", "A2"), ("user", texts[2]), ("assistant", "A3")]
    # other sessions do not wait for this one
    other, busy = new_key(), new_key()
    assert send(ws, key, "[[hang]]", idem=busy)["ok"]
    up.wait(lambda s: s["inflight"] >= 1)
    assert send(ws, "fifo-other-" + new_key(), "[[reply:free]]",
                idem=other)["ok"]
    assert run_events(ws, other)[-1]["state"] == "final"
    ws.call("chat.abort", {"sessionKey": key})
    assert run_events(ws, busy)[-1]["state"] == "aborted"


def test_abort_of_a_queued_run(cgw, up):
    ws = cgw.connect()
    key = "qabort-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, key, "[[hang]]", idem=a)["ok"]
    up.wait(lambda s: s["inflight"] >= 1)
    assert send(ws, key, "never sent [[reply:no]]", idem=b)["ok"]
    res = ws.call("chat.abort", {"sessionKey": key, "runId": b})
    assert res["aborted"] is True and res["runIds"] == [b]
    assert run_events(ws, b)[-1]["state"] == "aborted"
    assert ws.call("agent.wait", {"runId": b, "timeoutMs": 2000})[
        "status"] == "error"
    res = ws.call("chat.abort", {"sessionKey": key})
    assert res["runIds"] == [a]
    assert run_events(ws, a)[-1]["state"] == "aborted"
    assert up.snapshot()["chat"] == 1
    hist = ws.call("chat.history", {"sessionKey": key})
    assert "never sent" not in str(hist["messages"])
    # the session is free again
    c = new_key()
    assert send(ws, key, "[[reply:back]]", idem=c)["ok"]
    assert run_events(ws, c)[-1]["state"] == "final"


def test_idempotent_retry_returns_same_run(cgw, up):
    ws = cgw.connect()
    key = "idem-" + new_key()
    idem = new_key()
    assert send(ws, key, "[[delay:100]] once", idem=idem)["ok"]
    dup = send(ws, key, "[[delay:100]] once", idem=idem)
    assert dup["payload"] == {"runId": idem, "status": "in_flight"}
    assert run_events(ws, idem)[-1]["state"] == "final"
    again = send(ws, key, "[[delay:100]] once", idem=idem)
    assert again["payload"] == {"runId": idem, "status": "ok"}
    assert up.snapshot()["chat"] == 1


def test_disconnecting_client_does_not_break_the_run(cgw, up):
    a = cgw.connect()
    b = cgw.connect()
    key = "multi-" + new_key()
    idem = new_key()
    assert send(a, key, "[[reply:p q r s t]] [[delay:150]]",
                idem=idem)["ok"]
    a.wait_event("chat", pred=lambda f: f["payload"]["runId"] == idem)
    a.close()
    evs = run_events(b, idem)
    assert evs[-1]["state"] == "final"
    assert evs[-1]["message"]["content"][0]["text"] == "p q r s t"


def test_stop_message_aborts(cgw, up):
    ws = cgw.connect()
    key = "stop-" + new_key()
    idem = new_key()
    assert send(ws, key, "[[hang]]", idem=idem)["ok"]
    up.wait(lambda s: s["inflight"] >= 1)
    res = send(ws, key, "/stop")
    assert res["ok"] and res["payload"]["aborted"] is True
    assert run_events(ws, idem)[-1]["state"] == "aborted"


def test_inject_and_history_limits(cgw, up):
    ws = cgw.connect()
    key = "inj-" + new_key()
    res = ws.call("chat.inject", {"sessionKey": key, "message": "note",
                                  "label": "ops"})
    assert res["ok"] is True and res["messageId"]
    hist = ws.call("chat.history", {"sessionKey": key, "limit": 1})
    assert len(hist["messages"]) == 1
    assert hist["messages"][0]["content"][0]["text"] == "note"
    bad = ws.request("chat.history", {"sessionKey": key, "limit": 0})
    assert bad["ok"] is False
    assert bad["error"]["code"] == "INVALID_REQUEST"


def test_send_validation(cgw, up):
    ws = cgw.connect()
    r = ws.request("chat.send", {"sessionKey": "main", "message": "x"})
    assert r["ok"] is False and "idempotencyKey" in r["error"]["message"]
    r = send(ws, "cron:job", "x")
    assert r["ok"] is False and "reserved" in r["error"]["message"]
    r = send(ws, "agent:nobody:main", "x")
    assert r["ok"] is False and "Unknown agent" in r["error"]["message"]
    ro = cgw.connect(scopes=["operator.read"])
    r = send(ro, "main", "x")
    assert r["ok"] is False and r["error"]["code"] == "FORBIDDEN"


def test_hung_upstream_times_out(start_gateway, upstream):
    from chathelp import chat_config
    upstream.reset()
    cfg = chat_config(upstream, {"models": {"providers": {
        "fake": {"timeoutSeconds": 1}, "backup": {"timeoutSeconds": 1}}}})
    gw = start_gateway(config=cfg)
    ws = gw.connect()
    idem = new_key()
    t0 = time.monotonic()
    assert send(ws, "hang-" + new_key(), "[[hang]]", idem=idem)["ok"]
    evs = run_events(ws, idem, timeout=15)
    assert evs[-1]["state"] == "error"
    assert evs[-1]["errorKind"] == "timeout"
    assert time.monotonic() - t0 < 10
