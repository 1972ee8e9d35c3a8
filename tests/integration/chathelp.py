"""Helpers for the WS agent tests (test_chat.py, test_agent.py,
test_sessions.py): a gateway wired to the fake upstream with a fallback
chain, and readers for the per-run chat/agent event streams. Import the
fixtures with `from chathelp import upstream, cgw, up  # noqa: F401`."""

import time
import uuid

import pytest

from fakeupstream import FakeUpstream
from harness import Launcher
from oahelp import deep_merge

TOKEN = "T"


def chat_config(up, extra=None):
    base = {
        "gateway": {"mode": "local"},
        "models": {"providers": {
            "fake": {"baseUrl": up.base_url, "apiKey": "sk-fake",
                     "api": "openai-completions", "timeoutSeconds": 5,
                     "models": [{"id": "fake-model", "name": "Fake",
                                 "contextWindow": 32000,
                                 "input": ["text"]}]},
            "backup": {"baseUrl": up.base_url, "apiKey": "sk-fake",
                       "api": "ollama", "timeoutSeconds": 5,
                       "models": [{"id": "backup-model"}]}}},
        "agents": {"defaults": {"model": {
            "primary": "fake/fake-model",
            "fallbacks": ["backup/backup-model"]}},
            "entries": {"main": {}, "helper": {"name": "Helper"}}},
    }
    return deep_merge(base, extra)


@pytest.fixture(scope="module")
def upstream():
    u = FakeUpstream(api_key="sk-fake").start()
    yield u
    u.stop()


@pytest.fixture(scope="module")
def cgw(tmp_root, upstream):
    lch = Launcher(tmp_root)
    gw = lch.start(config=chat_config(upstream))
    yield gw
    lch.cleanup()


@pytest.fixture
def up(upstream):
    upstream.reset()
    return upstream


def new_key():
    return str(uuid.uuid4())


def run_events(ws, run_id, event="chat", timeout=10):
    """Events `event` of one run until its terminal one; returns them."""
    out = []
    deadline = time.monotonic() + timeout
    terminal = {"final", "aborted", "error"}
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "run %s did not end; got %r" % (run_id, out)
        ev = ws.wait_event(event, timeout=left,
                           pred=lambda f: f["payload"]["runId"] == run_id)
        out.append(ev["payload"])
        p = ev["payload"]
        if event == "chat" and p["state"] in terminal:
            return out
        if event == "agent" and p["stream"] == "lifecycle" and \
                p["data"].get("phase") in ("end", "error"):
            return out


def deltas_text(events):
    return "".join(e.get("deltaText", "") for e in events
                   if e["state"] == "delta")


def send(ws, key, message, idem=None, **extra):
    params = {"sessionKey": key, "message": message,
              "idempotencyKey": idem or new_key()}
    params.update(extra)
    return ws.request("chat.send", params)


def turn(ws, key, msg):
    """One chat.send turn to its final chat event; returns its run id."""
    idem = new_key()
    assert send(ws, key, msg, idem=idem)["ok"]
    assert run_events(ws, idem)[-1]["state"] == "final"
    return idem
