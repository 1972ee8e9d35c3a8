"""A fallback sends the whole request again. A run's request body is kept
as text once it is first sent (its JSON trees are dropped then, to keep a
held stream small) and only while a fallback may still need it: these
tests fail if a later model of the chain gets less than the first one
did (messages, system prompt, history, parameters, tools), or if the
transcript a deferred start writes with the run's end loses its prompt."""

import json
import sqlite3
import threading

import pytest

from chathelp import new_key, run_events, send
from harness import Launcher, clawgate_only
from oahelp import oa_config, post, sse_json, up, upstream  # noqa: F401
from pairing_util import db_path

pytestmark = clawgate_only("needs the fake upstream wired in the config")


def _config(up):
    prov = {"baseUrl": up.base_url, "apiKey": "sk-fake",
            "api": "openai-completions", "timeoutSeconds": 5}
    return oa_config(up, {
        "models": {"providers": {
            "backup": dict(prov, models=[{"id": "backup-model"}]),
            "third": dict(prov, models=[{"id": "third-model"}])}},
        "agents": {"defaults": {"model": {
            "primary": "fake/fake-model",
            "fallbacks": ["backup/backup-model", "third/third-model"]}}}})


@pytest.fixture(scope="module")
def fgw(tmp_root, upstream):  # noqa: F811
    lch = Launcher(tmp_root)
    gw = lch.start(config=_config(upstream))
    yield gw
    lch.cleanup()


def _without_model(body):
    return {k: v for k, v in body.items() if k != "model"}


TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "look a thing up",
    "parameters": {"type": "object", "properties": {
        "q": {"type": "string"}}}}}]


def _request(text, stream):
    return {"model": "openclaw", "stream": stream, "temperature": 0.25,
            "max_tokens": 77, "tools": TOOLS, "tool_choice": "none",
            "stop": ["\n\n"], "response_format": {"type": "text"},
            "messages": [
                {"role": "developer", "content": "Answer briefly."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": text}]}


@pytest.mark.parametrize("stream", [True, False])
def test_third_model_gets_the_whole_request(fgw, up, stream):
    """The first model fails before any byte (500), the second after its
    role chunk and before any token (the connection dropped): the third
    gets the same body as the first, its own model excepted."""
    up.push(status=500)
    up.push(cut=0)
    text = "fallback body %s %s" % (stream, new_key())
    r = post(fgw, "/v1/chat/completions", _request(text, stream),
             stream=stream)
    assert r.status_code == 200, r.text
    if stream:
        evs = sse_json(r)
        assert evs[-1] == "[DONE]", evs
        got = "".join(e["choices"][0]["delta"].get("content") or ""
                      for e in evs[:-1] if e.get("choices"))
    else:
        got = r.json()["choices"][0]["message"]["content"]
    assert got == "echo: " + text
    reqs = up.snapshot()["requests"]
    assert [q["model"] for q in reqs] == ["fake-model", "backup-model",
                                          "third-model"], reqs
    first = reqs[0]
    assert first["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": text}]
    assert first["temperature"] == 0.25 and first["max_tokens"] == 77
    assert first["tools"] == TOOLS and first["tool_choice"] == "none"
    assert first["stop"] == ["\n\n"]
    assert first["response_format"] == {"type": "text"}
    assert first["stream"] is True
    assert first["stream_options"] == {"include_usage": True}
    for q in reqs[1:]:
        assert _without_model(q) == _without_model(first)


def test_fallback_over_ws_sends_history_and_system(fgw, up):
    """chat.send with stored history: the second model gets the history
    and the new message, as the first did."""
    ws = fgw.connect()
    key = "fbh-" + new_key()
    idem = new_key()
    assert send(ws, key, "earlier turn", idem=idem)["ok"]
    assert run_events(ws, idem)[-1]["state"] == "final"
    up.reset()
    up.push(status=500)
    idem = new_key()
    assert send(ws, key, "later turn", idem=idem)["ok"]
    evs = run_events(ws, idem)
    assert evs[-1]["state"] == "final", evs
    reqs = up.snapshot()["requests"]
    assert [q["model"] for q in reqs] == ["fake-model", "backup-model"]
    assert [(m["role"], m["content"]) for m in reqs[0]["messages"]] == [
        ("user", "earlier turn"), ("assistant", "echo: earlier turn"),
        ("user", "later turn")]
    assert _without_model(reqs[1]) == _without_model(reqs[0])


def _transcript(gw, like):
    db = sqlite3.connect("file:%s?mode=ro" % db_path(gw), uri=True,
                         timeout=30)
    try:
        return db.execute("SELECT role, text, message, session_key, run_id "
                          "FROM transcript WHERE text LIKE ? ORDER BY seq",
                          ("%" + like + "%",)).fetchall()
    finally:
        db.close()


def test_deferred_start_written_with_the_end(tmp_root, up):
    """A request with a generated session key writes its start with its
    end; while the run is held its prompt's row waits in short
    (CLAWGATE_RUN_SHRINK_MS=0: at once, not after a second). Held at the
    upstream's gate, then answered after a fallback: both rows are there,
    the prompt whole. (A gateway of its own: no WS client connected,
    which would make the start go first.)"""
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=_config(up),
                       env={"CLAWGATE_RUN_SHRINK_MS": "0"})
        _deferred(gw, up)
    finally:
        up.open_gate()
        lch.cleanup()


def _deferred(gw, up):
    text = "deferred prompt \u00e9\u4e2d \"quoted\" " + new_key()
    out = {}

    def client():
        r = post(gw, "/v1/chat/completions",
                 {"model": "openclaw", "stream": True,
                  "messages": [{"role": "user",
                                "content": text + " [[gate]]"}]},
                 stream=True, timeout=60)
        out["status"] = r.status_code
        out["events"] = sse_json(r)

    up.push(status=500)
    t = threading.Thread(target=client, daemon=True)
    t.start()
    # the first model failed, the second holds the run at its gate
    up.wait(lambda st: st["inflight"] >= 1 and len(st["requests"]) >= 2,
            timeout=20)
    up.open_gate()
    t.join(60)
    assert not t.is_alive()
    assert out["status"] == 200, out
    assert out["events"][-1] == "[DONE]"
    rows = _transcript(gw, text)
    full = text + " [[gate]]"
    assert [row[:2] for row in rows] == [
        ("user", full), ("assistant", "echo: " + text)], rows
    # the start's key and run id (taken from the run again) are the end's
    assert rows[0][3:] == rows[1][3:] and rows[0][4], rows
    msg = json.loads(rows[0][2])
    assert msg["role"] == "user"
    assert msg["content"] == [{"type": "text", "text": full}]
    assert isinstance(msg["timestamp"], int)


def test_model_ids_to_escape(tmp_root, up):
    """A model id with characters JSON escapes (a quote, a backslash,
    non-ASCII) reaches the upstream as configured, on the first model and
    on a fallback."""
    odd1, odd2 = 'first"m\\odel', "second-mod\u00e8le"
    prov = {"baseUrl": up.base_url, "apiKey": "sk-fake",
            "api": "openai-completions", "timeoutSeconds": 5}
    cfg = oa_config(up, {
        "models": {"providers": {
            "odd": dict(prov, models=[{"id": odd1}, {"id": odd2}])}},
        "agents": {"defaults": {"model": {
            "primary": "odd/" + odd1, "fallbacks": ["odd/" + odd2]}}}})
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=cfg)
        up.push(status=500)
        r = post(gw, "/v1/chat/completions",
                 {"model": "openclaw", "stream": True,
                  "messages": [{"role": "user", "content": "odd"}]},
                 stream=True)
        assert r.status_code == 200, r.text
        assert sse_json(r)[-1] == "[DONE]"
        reqs = up.snapshot()["requests"]
        assert [q["model"] for q in reqs] == [odd1, odd2]
        assert _without_model(reqs[0]) == _without_model(reqs[1])
    finally:
        lch.cleanup()
