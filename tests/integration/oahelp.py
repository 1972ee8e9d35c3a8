"""Helpers for the OpenAI-face tests: a fake upstream, a gateway wired to
it, and an SSE reader. Import the fixtures into a test module with
`from oahelp import upstream, oagw  # noqa: F401`."""

import copy
import json

import pytest

from fakeupstream import FakeUpstream
from harness import Launcher

TOKEN = "T"


def deep_merge(a, b):
    out = copy.deepcopy(a)
    for k, v in (b or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def oa_config(up, extra=None):
    base = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"fake": {
            "baseUrl": up.base_url, "apiKey": "sk-fake",
            "api": "openai-completions", "timeoutSeconds": 5,
            "models": [{"id": "fake-model", "name": "Fake"},
                       {"id": "fake-embed", "name": "Fake embed"}]}}},
        "agents": {"defaults": {
            "model": "fake/fake-model",
            "memorySearch": {"provider": "fake", "model": "fake-embed"}},
            "entries": {"main": {}, "helper": {"name": "Helper"}}},
    }
    return deep_merge(base, extra)


@pytest.fixture(scope="module")
def upstream():
    up = FakeUpstream(api_key="sk-fake").start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def oagw(tmp_root, upstream):
    """One gateway per module, wired to the module's fake upstream."""
    lch = Launcher(tmp_root)
    gw = lch.start(config=oa_config(upstream))
    yield gw
    lch.cleanup()


@pytest.fixture
def up(upstream):
    upstream.reset()
    return upstream


def auth(gw=None, token=TOKEN):
    return {"Authorization": "Bearer " + token}


def post(gw, path, body, headers=None, stream=False, timeout=10):
    h = auth(gw)
    h.update(headers or {})
    return gw.http("POST", path, json=body, headers=h, stream=stream,
                   timeout=timeout)


def sse(resp):
    """Parse an SSE response into [(event or None, data str)]."""
    out = []
    event, data = None, []
    for raw in resp.iter_lines(decode_unicode=False):
        line = raw.decode("utf-8")
        if line == "":
            if data:
                out.append((event, "\n".join(data)))
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        k, _, v = line.partition(":")
        v = v[1:] if v.startswith(" ") else v
        if k == "event":
            event = v
        elif k == "data":
            data.append(v)
    if data:
        out.append((event, "\n".join(data)))
    return out


def sse_json(resp):
    """SSE data payloads, JSON-decoded except the final [DONE]."""
    return [d if d == "[DONE]" else json.loads(d) for _, d in sse(resp)]


def chat(text, **kw):
    body = {"model": "openclaw",
            "messages": [{"role": "user", "content": text}]}
    body.update(kw)
    return body
