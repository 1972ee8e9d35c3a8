"""The throttle of `chat` delta events (as upstream OpenClaw): at most one
per 150 ms per run, the text in between coalesced into the next one, the
pending text flushed before the terminal event; `agent` assistant events
still go out once per upstream chunk. The counts are checked against the
run's own duration (the agent lifecycle's startedAt/endedAt), so a slow
machine makes the bound looser, never the test flaky."""

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import deltas_text, new_key, send
from harness import clawgate_only

pytestmark = clawgate_only("needs the fake upstream wired in the config")

THROTTLE_MS = 150


def run_frames(ws, run_id, timeout=20):
    """Every chat/agent event payload of one run, in arrival order, up to
    the agent lifecycle end/error (sent after the terminal chat event)."""
    end = ws.wait_event("agent", timeout=timeout, pred=lambda f:
                  f["payload"]["runId"] == run_id and
                  f["payload"]["stream"] == "lifecycle" and
                  f["payload"]["data"].get("phase") in ("end", "error"))
    out = [(e["event"], e["payload"]) for e in ws.events
           if e["event"] in ("chat", "agent") and
           e["payload"].get("runId") == run_id]
    ws.events[:] = [e for e in ws.events if
                    e.get("payload", {}).get("runId") != run_id]
    return out + [("agent", end["payload"])]


def stream(ws, prefix, message):
    """chat.send message on a new session; the run's frames (run_frames)."""
    idem = new_key()
    assert send(ws, prefix + new_key(), message, idem=idem)["ok"]
    return run_frames(ws, idem)


def stream_words(ws, tag, n, directives):
    """A reply of n numbered words, one chunk each (plus directives)."""
    words = ["%s%02d" % (tag, i) for i in range(n)]
    reply = " ".join(words)
    return words, reply, stream(ws, tag + "-", "[[reply:%s]] [[chunks:%d]] "
                                "%s" % (reply, n, directives))


def kinds_of(frames):
    return [(ev, p.get("stream") or p.get("state")) for ev, p in frames]


def chat_of(frames):
    return [p for ev, p in frames if ev == "chat"]


def assistant_of(frames):
    return [p for ev, p in frames if ev == "agent" and
            p["stream"] == "assistant"]


def lifecycle(frames, phase):
    return [p for ev, p in frames if ev == "agent" and
            p["stream"] == "lifecycle" and p["data"]["phase"] == phase][0]


def max_deltas(frames):
    """Throttled deltas are >= 150 ms apart inside [startedAt, endedAt];
    one more may be the flush before the terminal event."""
    start = lifecycle(frames, "start")["data"]["startedAt"]
    last = [p for ev, p in frames if ev == "agent" and
            p["stream"] == "lifecycle" and p["data"]["phase"] != "start"][0]
    return (last["data"]["endedAt"] - start + 2) // THROTTLE_MS + 2


def test_fast_chunks_are_coalesced(cgw, up):
    words, reply, frames = stream_words(cgw.connect(), "w", 50, "[[delay:1]]")
    chat = chat_of(frames)
    assert chat[-1]["state"] == "final", chat
    deltas = [p for p in chat if p["state"] == "delta"]
    # Every chunk is an agent assistant event (not throttled upstream).
    assert len(assistant_of(frames)) == 50
    assert "".join(p["data"]["delta"] for p in assistant_of(frames)) == \
        reply
    # Far fewer chat deltas, and together they still carry the whole text.
    assert 1 <= len(deltas) <= max_deltas(frames), \
        (len(deltas), max_deltas(frames))
    assert len(deltas) < 50
    assert deltas_text(chat) == reply
    assert chat[-1]["message"]["content"][0]["text"] == reply
    assert [p["seq"] for p in chat] == list(range(1, len(chat) + 1))
    # The first delta is not held back: it follows the first chunk.
    kinds = kinds_of(frames)
    assert kinds[:3] == [("agent", "lifecycle"), ("agent", "assistant"),
                         ("chat", "delta")], kinds[:5]
    assert deltas[0]["deltaText"].strip() == words[0]
    # No empty delta.
    assert all(p["deltaText"] for p in deltas)


def test_spaced_chunks_get_one_delta_each(cgw, up):
    frames = stream(cgw.connect(), "spaced-", "[[reply:one two three]] "
                    "[[chunks:3]] [[delay:600]]")
    kinds = kinds_of(frames)
    assert kinds == [("agent", "lifecycle")] + \
        [("agent", "assistant"), ("chat", "delta")] * 3 + \
        [("chat", "final"), ("agent", "lifecycle")], kinds
    chat = chat_of(frames)
    assert [p["deltaText"] for p in chat[:3]] == \
        [p["data"]["delta"] for p in assistant_of(frames)]
    assert deltas_text(chat) == "one two three"


def test_pending_text_flushed_before_error(cgw, up):
    words, _, frames = stream_words(cgw.connect(), "e", 40,
                                    "[[delay:1]] [[cut:30]]")
    chat = chat_of(frames)
    assert chat[-1]["state"] == "error", chat
    deltas = [p for p in chat if p["state"] == "delta"]
    streamed = "".join(p["data"]["delta"] for p in assistant_of(frames))
    assert streamed.startswith(" ".join(words[:29]))
    assert deltas_text(chat) == streamed
    assert len(deltas) <= max_deltas(frames)
    assert len(deltas) < len(assistant_of(frames))


def test_pending_text_flushed_before_aborted(cgw, up):
    ws = cgw.connect()
    key = "abd-" + new_key()
    idem = new_key()
    words = ["a%03d" % i for i in range(400)]
    assert send(ws, key, "[[reply:%s]] [[chunks:400]] [[delay:5]]" %
                " ".join(words), idem=idem)["ok"]
    # Abort once some text went out (the second assistant chunk, which is
    # throttled: it arrives within 150 ms of the first delta or not).
    ws.wait_event("agent", pred=lambda f: f["payload"]["runId"] == idem and
                  f["payload"]["stream"] == "assistant" and
                  f["payload"]["data"]["delta"].strip() == words[1],
                  timeout=10)
    res = ws.call("chat.abort", {"sessionKey": key})
    assert res["ok"] is True and res["aborted"] is True
    frames = run_frames(ws, idem)
    chat = chat_of(frames)
    assert chat[-1]["state"] == "aborted", chat
    # The aborted message holds what the run streamed: all of it went out
    # in deltas before the terminal event.
    text = chat[-1]["message"]["content"][0]["text"]
    assert text.startswith("a000 a001")
    assert deltas_text(chat) == text


def test_pending_text_flushed_before_tool_event(cgw, up):
    _, reply, frames = stream_words(cgw.connect(), "t", 30,
                                    '[[tool:lookup:{"q":"x"}]]')
    kinds = kinds_of(frames)
    assert ("agent", "tool") in kinds, kinds
    before_tool = [p for ev, p in frames[:kinds.index(("agent", "tool"))]
                   if ev == "chat"]
    # The whole text before the call went out in deltas before it.
    assert deltas_text(before_tool) == reply
    assert len(before_tool) < 30
