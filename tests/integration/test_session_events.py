"""Session events (session.message, sessions.changed) are built by the
store only while some connection subscribed to them: connected clients
that did not subscribe cost no session events. `status`
gateway.sessionEvents counts the store jobs that built them (built) and
that skipped them (skipped), and the connections subscribed now."""

import time

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import new_key, turn
from harness import clawgate_only

pytestmark = clawgate_only("gateway.sessionEvents is a clawgate figure")


def counts(ws):
    return ws.call("status")["gateway"]["sessionEvents"]


def wait_subscribers(ws, n):
    """The server saw a close (bounded: 10 s of status calls)."""
    deadline = time.monotonic() + 10
    while True:
        c = counts(ws)
        if c["subscribers"] == n or time.monotonic() > deadline:
            return c
        ws.call("health")


def session_events(ws, full):
    return [e for e in ws.events
            if e["event"] in ("session.message", "sessions.changed")
            and e["payload"]["sessionKey"] == full]


def test_no_subscriber_no_session_events(cgw, up):
    ws = cgw.connect()
    other = cgw.connect()
    key = "quiet-" + new_key()
    a = counts(ws)
    assert a["subscribers"] == 0
    for i in range(3):
        turn(ws, key, "nobody subscribed %d" % i)
    b = counts(ws)
    # Clients are connected (they get the chat events), but nobody
    # subscribed: no store job built session events.
    assert b["built"] == a["built"]
    assert b["skipped"] >= a["skipped"] + 6    # a start and an end each
    other.call("health")
    assert session_events(other, "agent:main:" + key) == []
    assert session_events(ws, "agent:main:" + key) == []


def test_subscriber_keeps_events_across_connects(cgw, up):
    sub = cgw.connect()
    ws = cgw.connect()
    key = "kept-" + new_key()
    full = "agent:main:" + key
    assert sub.call("sessions.subscribe")["subscribed"] is True
    assert sub.call("sessions.messages.subscribe",
                    {"key": key})["key"] == full
    assert counts(ws)["subscribers"] == 1
    # Others connect, subscribe (either kind) and leave.
    for kind in ("sessions.subscribe", "sessions.messages.subscribe"):
        tmp = cgw.connect()
        tmp.call(kind, {"key": key} if kind.endswith("messages.subscribe")
                 else None)
        assert counts(ws)["subscribers"] == 2
        tmp.close()
        assert wait_subscribers(ws, 1)["subscribers"] == 1
    plain = cgw.connect()
    plain.close()
    a = counts(ws)
    assert a["subscribers"] == 1
    idem = turn(ws, key, "still watched")
    m1 = sub.wait_event("session.message",
                        pred=lambda f: f["payload"]["sessionKey"] == full)
    assert m1["payload"]["message"]["role"] == "user"
    m2 = sub.wait_event("session.message",
                        pred=lambda f: f["payload"]["sessionKey"] == full)
    assert m2["payload"]["message"]["content"][0]["text"] == \
        "echo: still watched"
    ch = sub.wait_event("sessions.changed",
                        pred=lambda f: f["payload"]["sessionKey"] == full
                        and f["payload"].get("reason") == "run.end")
    assert ch["payload"]["runId"] == idem
    assert counts(ws)["built"] >= a["built"] + 2
    # Only the per-key subscription left: session.message still comes.
    sub.call("sessions.unsubscribe")
    assert counts(ws)["subscribers"] == 1
    turn(ws, key, "keyed only")
    m3 = sub.wait_event("session.message",
                        pred=lambda f: f["payload"]["sessionKey"] == full
                        and f["payload"]["message"]["role"] == "assistant")
    assert m3["payload"]["message"]["content"][0]["text"] == \
        "echo: keyed only"
    # Nothing subscribed any more: the next runs build none.
    sub.call("sessions.messages.unsubscribe", {"key": key})
    b = counts(ws)
    assert b["subscribers"] == 0
    turn(ws, key, "unwatched")
    c = counts(ws)
    assert c["built"] == b["built"]
    assert c["skipped"] >= b["skipped"] + 2
    sub.call("health")
    assert not [e for e in session_events(sub, full)
                if e["payload"].get("message", {}).get(
                    "content", [{}])[0].get("text") == "echo: unwatched"]
