"""POST /v1/embeddings: string or array input, limits, encoding_format
float|base64, through the agent's embedding provider (fake upstream).
Reference: reference/http-config-cli.md §1.6."""

import base64
import struct

import pytest

from fakeupstream import embed
from oahelp import auth, oagw, post, up, upstream  # noqa: F401


def close(a, b):
    return all(abs(x - y) < 1e-5 for x, y in zip(a, b)) and len(a) == len(b)


def test_embeddings_string(oagw, up):
    r = post(oagw, "/v1/embeddings", {"model": "openclaw", "input": "hello"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["object"] == "list" and b["model"] == "openclaw"
    assert len(b["data"]) == 1
    d = b["data"][0]
    assert d["object"] == "embedding" and d["index"] == 0
    assert close(d["embedding"], embed("hello"))
    assert set(b["usage"]) == {"prompt_tokens", "total_tokens"}
    req = up.snapshot()["requests"][-1]
    assert req["model"] == "fake-embed"


def test_embeddings_array_and_base64(oagw, up):
    inputs = ["a b", "c", "d e f"]
    r = post(oagw, "/v1/embeddings", {"model": "openclaw/main",
                                      "input": inputs})
    assert r.status_code == 200
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1, 2]
    for d, t in zip(data, inputs):
        assert close(d["embedding"], embed(t))
    r = post(oagw, "/v1/embeddings", {"model": "openclaw", "input": inputs,
                                      "encoding_format": "base64"})
    assert r.status_code == 200
    for d, t in zip(r.json()["data"], inputs):
        raw = base64.b64decode(d["embedding"])
        vec = struct.unpack("<%df" % (len(raw) // 4), raw)
        assert close(vec, embed(t))


@pytest.mark.parametrize("body,msg", [
    ({"input": "x"}, "Missing `model`."),
    ({"model": "gpt-4o", "input": "x"},
     "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`."),
    ({"model": "openclaw", "input": 3},
     "`input` must be a string or an array of strings."),
    ({"model": "openclaw", "input": ["a", 1]},
     "`input` must be a string or an array of strings."),
    ({"model": "openclaw", "input": ["x"] * 129}, "Too many inputs (max 128)."),
    ({"model": "openclaw", "input": "x" * 8193},
     "Input too long (max 8192 chars)."),
    ({"model": "openclaw", "input": ["x" * 8000] * 9},
     "Total input too large (max 65536 chars)."),
    ({"model": "openclaw", "input": "x", "encoding_format": "int8"}, None),
])
def test_embeddings_validation(oagw, up, body, msg):
    r = post(oagw, "/v1/embeddings", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    if msg:
        assert err["message"] == msg
    assert up.snapshot()["embeddings"] == 0


def test_embeddings_upstream_error(oagw, up):
    up.push(status=500)
    r = post(oagw, "/v1/embeddings", {"model": "openclaw", "input": "x"})
    assert r.status_code >= 500
    assert r.json()["error"]["message"]


def test_embeddings_limits_and_auth(oagw):
    r = oagw.http("POST", "/v1/embeddings",
                  json={"model": "openclaw", "input": "x"})
    assert r.status_code == 401
    big = b'{"model":"openclaw","input":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    r = oagw.http("POST", "/v1/embeddings", data=big, timeout=20,
                  headers=dict(auth(), **{"Content-Type":
                                          "application/json"}))
    assert r.status_code == 413
