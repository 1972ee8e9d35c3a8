"""Upstream requests reuse libcurl handles configured once (issue 11): a
handle goes back to the agent thread's spare list without curl_easy_reset,
so every option that can differ between two requests is set again on each
one. Request A sets something (a provider's header and key, a run's total
timeout); request B, on the same handle right after it, must not see it."""

import json
import os
import threading
import uuid

import pytest

from fakeupstream import FakeUpstream
from oahelp import TOKEN, chat, oa_config

A_KEY = "sk-only-a"


@pytest.fixture(scope="module")
def plainup():
    """An upstream that checks no key (so a request without one is
    answered and its headers can be read)."""
    up = FakeUpstream().start()
    yield up
    up.stop()


@pytest.fixture
def gw(launcher, plainup):
    plainup.reset()
    cfg = oa_config(plainup, {"models": {"providers": {
        "a": {"baseUrl": plainup.base_url, "apiKey": A_KEY,
              "api": "openai-completions", "timeoutSeconds": 30,
              "headers": {"X-Only-A": "yes"},
              "models": [{"id": "m"}]},
        "b": {"baseUrl": plainup.base_url, "api": "openai-completions",
              "timeoutSeconds": 30, "models": [{"id": "m"}]}}}})
    # The default provider "fake" of oa_config has a key too: not used.
    return launcher.start(config=cfg)


def complete(gw, provider, text):
    r = gw.http("POST", "/v1/chat/completions", json=chat(text),
                headers={"Authorization": "Bearer " + TOKEN,
                         "x-openclaw-model": provider + "/m"},
                timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def lower(h):
    return {k.lower(): v for k, v in h.items()}


def test_headers_and_key_do_not_leak_to_the_next_request(gw, plainup):
    """A's provider sends a key and a custom header; B's provider has
    neither: B's requests (on A's handle, one at a time) carry none of
    them, and A's still carry both."""
    order = ["a", "b", "a", "b", "b", "a"]
    for i, p in enumerate(order):
        assert complete(gw, p, "q%d [[json]] [[reply:r%d]]" % (i, i)) == "r%d" % i
    st = plainup.snapshot()
    assert st["chat"] == len(order)
    hs = [lower(h) for h in st["headers"]]
    for p, h in zip(order, hs):
        if p == "a":
            assert h.get("authorization") == "Bearer " + A_KEY, h
            assert h.get("x-only-a") == "yes", h
        else:
            assert "authorization" not in h, h
            assert "x-only-a" not in h, h
        assert h.get("content-type") == "application/json", h
        assert "expect" not in h, h
    # The handles still share the multi handle's connection cache.
    assert st["chat_conns"] == 1


def test_run_timeout_does_not_leak_to_the_next_request(gw, plainup):
    """A run with a total timeout of 1 s (the `agent` method's timeout)
    is answered at once; the next request on that handle has no total
    timeout and its upstream answers after 1.5 s: it must succeed."""
    ws = gw.connect()
    idem = uuid.uuid4().hex
    rid = ws.send_req("agent", {"message": "quick [[reply:fast]]",
                                "idempotencyKey": idem, "timeout": 1,
                                "sessionKey": "reuse-" + idem})
    ws.wait_res(rid)
    final = ws.wait_res(rid, timeout=20)
    assert final["ok"] is True and final["payload"]["status"] == "ok", final
    ws.close()
    assert complete(gw, "b", "slow [[slow:1500]] [[reply:late]]") == "late"


def test_model_chain_follows_a_reload(gw, plainup):
    """The model chain is resolved once per config snapshot (cached by
    snapshot and agent): a reload that changes the agent's model is seen
    by the next runs."""
    def last_headers(text):
        r = gw.http("POST", "/v1/chat/completions", json=chat(text),
                    headers={"Authorization": "Bearer " + TOKEN},
                    timeout=30)
        assert r.status_code == 200, r.text
        return lower(plainup.snapshot()["headers"][-1])

    with open(gw.config_path) as f:
        cfg = json.load(f)
    cfg["agents"]["defaults"]["model"] = "a/m"
    with open(gw.config_path + ".tmp", "w") as f:
        json.dump(cfg, f)
    os.replace(gw.config_path + ".tmp", gw.config_path)
    for _ in range(400):
        if last_headers("x [[json]]").get("x-only-a") == "yes":
            break
        threading.Event().wait(0.025)
    assert last_headers("y [[json]]").get("x-only-a") == "yes"
    cfg["agents"]["defaults"]["model"] = "b/m"
    with open(gw.config_path + ".tmp", "w") as f:
        json.dump(cfg, f)
    os.replace(gw.config_path + ".tmp", gw.config_path)
    for _ in range(400):
        if "x-only-a" not in last_headers("z [[json]]"):
            break
        threading.Event().wait(0.025)
    h = last_headers("w [[json]]")
    assert "x-only-a" not in h and "authorization" not in h, h
