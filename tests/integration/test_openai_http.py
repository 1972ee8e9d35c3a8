"""The OpenAI-compatible HTTP face: /v1/models, /v1/chat/completions (JSON
and SSE), against a deterministic fake upstream (fakeupstream.py).
Reference: reference/http-config-cli.md §1.1-1.5, SPEC §3."""

import json
import socket
import time

import pytest

from harness import Launcher
from oahelp import (auth, chat, oa_config, oagw, post, sse_json,  # noqa: F401
                    up, upstream)

UNAUTH = {"error": {"message": "Unauthorized", "type": "unauthorized"}}


# ---- /v1/models -------------------------------------------------------------

def test_models_list(oagw):
    r = oagw.http("GET", "/v1/models", headers=auth())
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids[:3] == ["openclaw", "openclaw/default", "openclaw/main"]
    assert "openclaw/helper" in ids
    assert "fake/fake-model" not in ids  # provider models are opt-in
    assert body["data"][0] == {"id": "openclaw", "object": "model",
                               "created": 0, "owned_by": "openclaw",
                               "permission": []}


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/openclaw"])
@pytest.mark.parametrize("hdr", [None, "Bearer wrong", "Basic Zm9v"])
def test_models_unauthorized(oagw, path, hdr):
    r = oagw.http("GET", path,
                  headers={"Authorization": hdr} if hdr else {})
    assert r.status_code == 401
    assert r.json() == UNAUTH


def test_model_get(oagw):
    r = oagw.http("GET", "/v1/models/openclaw", headers=auth())
    assert r.status_code == 200
    assert r.json()["id"] == "openclaw"
    r = oagw.http("GET", "/v1/models/openclaw%2Fdefault", headers=auth())
    assert r.status_code == 200 and r.json()["id"] == "openclaw/default"
    r = oagw.http("GET", "/v1/models/openclaw/helper", headers=auth())
    assert r.status_code == 200 and r.json()["id"] == "openclaw/helper"


@pytest.mark.parametrize("mid,status,msg", [
    ("", 400, "Missing model id."),
    ("gpt-4o", 400, "Invalid model id."),
    ("openclaw/nobody", 404, "Model 'openclaw/nobody' not found."),
])
def test_model_get_errors(oagw, mid, status, msg):
    r = oagw.http("GET", "/v1/models/" + mid, headers=auth())
    assert r.status_code == status
    assert r.json() == {"error": {"message": msg,
                                  "type": "invalid_request_error"}}


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/v1/models", "GET"),
    ("DELETE", "/v1/models/openclaw", "GET"),
    ("GET", "/v1/chat/completions", "POST"),
    ("PUT", "/v1/responses", "POST"),
    ("GET", "/v1/embeddings", "POST"),
])
def test_wrong_method(oagw, method, path, allow):
    r = oagw.http(method, path, headers=auth())
    assert r.status_code == 405
    assert r.headers["Allow"] == allow
    assert r.text == "Method Not Allowed"


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1", "/v1/chat"])
def test_unknown_v1_is_json_404(oagw, path):
    r = oagw.http("GET", path, headers=auth())
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["error"]["type"] == "not_found"


def test_disabled_endpoints_are_json_404(launcher, upstream):
    off = {"enabled": False}
    gw = launcher.start(config=oa_config(upstream, {"gateway": {"http": {
        "endpoints": {"chatCompletions": off, "models": off,
                      "responses": off, "embeddings": off}}}}))
    for m, p in [("GET", "/v1/models"), ("GET", "/v1/models/openclaw"),
                 ("POST", "/v1/chat/completions"),
                 ("POST", "/v1/responses"), ("POST", "/v1/embeddings")]:
        r = gw.http(m, p, headers=auth(), json={})
        assert r.status_code == 404, (p, r.status_code)
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"]["type"] == "not_found"
    # /tools/invoke stays on
    r = gw.http("POST", "/tools/invoke", headers=auth(),
                json={"tool": "agents_list"})
    assert r.status_code != 404 or "not_found" not in r.text


def test_provider_models_opt_in(launcher, upstream):
    upstream.reset()
    gw = launcher.start(config=oa_config(upstream, {"gateway": {"http": {
        "models": {"includeProviderModels": True}}}}))
    r = gw.http("GET", "/v1/models", headers=auth())
    ids = {m["id"]: m for m in r.json()["data"]}
    assert "fake/fake-model" in ids
    assert ids["fake/fake-model"]["owned_by"] == "fake"
    r = gw.http("GET", "/v1/models/fake%2Ffake-model", headers=auth())
    assert r.status_code == 200
    # A listed provider model is usable as `model` (default agent).
    r = post(gw, "/v1/chat/completions",
             chat("pick [[reply:picked]]", model="fake/fake-model"))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "picked"
    assert r.json()["model"] == "fake/fake-model"


# ---- /v1/chat/completions: JSON -----------------------------------------------

def test_chat_non_stream(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             chat("hello there [[usage:7,3]]",
                  messages=[{"role": "system", "content": "Be brief."},
                            {"role": "user",
                             "content": "hello there [[usage:7,3]]"}]))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["id"].startswith("chatcmpl_")
    assert b["object"] == "chat.completion"
    assert isinstance(b["created"], int)
    assert b["model"] == "openclaw"
    assert b["choices"] == [{"index": 0, "message": {
        "role": "assistant", "content": "echo: hello there"},
        "finish_reason": "stop"}]
    assert b["usage"] == {"prompt_tokens": 7, "completion_tokens": 3,
                          "total_tokens": 10}
    req = up.snapshot()["requests"][-1]
    assert req["model"] == "fake-model"
    sys_text = " ".join(m["content"] if isinstance(m["content"], str)
                        else json.dumps(m["content"])
                        for m in req["messages"] if m["role"] == "system")
    assert "Be brief." in sys_text
    assert up.snapshot()["headers"][-1]["Authorization"] == "Bearer sk-fake"


def test_chat_model_forms(oagw, up):
    for model in ["openclaw/default", "openclaw:helper", "agent:helper",
                  "OpenClaw/Main", None]:
        body = chat("x [[reply:ok]]")
        if model is None:
            del body["model"]
        else:
            body["model"] = model
        r = post(oagw, "/v1/chat/completions", body)
        assert r.status_code == 200, (model, r.text)
        assert r.json()["model"] == (model or "openclaw")


@pytest.mark.parametrize("patch,msg", [
    ({"model": "gpt-4o"},
     "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`."),
    ({"messages": []}, "Missing user message in `messages`."),
    ({"messages": [{"role": "system", "content": "only system"}]},
     "Missing user message in `messages`."),
    ({"temperature": 3}, None),
    ({"top_p": -0.1}, None),
    ({"presence_penalty": 2.5}, None),
    ({"seed": 1.5}, None),
    ({"max_tokens": 0}, None),
    ({"stop": ["a", "b", "c", "d", "e"]}, None),
    ({"tools": [{"type": "code_interpreter"}]}, None),
    ({"tool_choice": {"type": "allowed_tools"}}, None),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,xx"}}]}]},
     "Invalid image_url content in `messages`."),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, None),
])
def test_chat_validation(oagw, up, patch, msg):
    body = chat("hi")
    body.update(patch)
    r = post(oagw, "/v1/chat/completions", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    if msg:
        assert err["message"] == msg
    assert up.snapshot()["chat"] == 0


def test_chat_bad_json_and_agent(oagw):
    r = oagw.http("POST", "/v1/chat/completions", data=b"{nope",
                  headers=dict(auth(), **{"Content-Type":
                                          "application/json"}))
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = post(oagw, "/v1/chat/completions", chat("hi"),
             headers={"x-openclaw-agent-id": "ghost"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Unknown agent 'ghost'."
    r = post(oagw, "/v1/chat/completions", chat("hi"),
             headers={"x-openclaw-session-key": "cron:abc"})
    assert r.status_code == 400
    assert "reserved" in r.json()["error"]["message"]


def test_chat_tool_calls_non_stream(oagw, up):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object"}}}]
    r = post(oagw, "/v1/chat/completions",
             chat('weather? [[tool:get_weather:{"city":"Paris"}]]',
                  tools=tools, tool_choice="auto"))
    assert r.status_code == 200, r.text
    ch = r.json()["choices"][0]
    assert ch["finish_reason"] == "tool_calls"
    tc = ch["message"]["tool_calls"]
    assert tc[0]["type"] == "function"
    assert tc[0]["function"]["name"] == "get_weather"
    assert json.loads(tc[0]["function"]["arguments"]) == {"city": "Paris"}
    req = up.snapshot()["requests"][-1]
    assert req["tools"][0]["function"]["name"] == "get_weather"
    assert req["tool_choice"] == "auto"
    # The tool result goes back upstream as a tool message.
    msgs = [{"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": tc},
            {"role": "tool", "tool_call_id": tc[0]["id"],
             "content": "sunny [[reply:It is sunny.]]"}]
    r = post(oagw, "/v1/chat/completions",
             {"model": "openclaw", "messages": msgs, "tools": tools})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "It is sunny."
    sent = up.snapshot()["requests"][-1]["messages"]
    assert any(m["role"] == "tool" and m.get("tool_call_id") == tc[0]["id"]
               for m in sent)


def test_chat_params_passed_through(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             chat("p [[reply:ok]]", temperature=0.5, top_p=0.9, seed=7,
                  max_completion_tokens=33, max_tokens=99, stop=["\n"]))
    assert r.status_code == 200, r.text
    req = up.snapshot()["requests"][-1]
    assert req["temperature"] == 0.5 and req["top_p"] == 0.9
    assert req["seed"] == 7 and req["stop"] == ["\n"]
    assert req["max_tokens"] == 33 or req.get("max_completion_tokens") == 33


def test_chat_upstream_error(oagw, up):
    r = post(oagw, "/v1/chat/completions", chat("boom [[status:500]]"))
    assert 500 <= r.status_code <= 599
    err = r.json()["error"]
    assert "fake" in err["message"] and "500" in err["message"]
    r = post(oagw, "/v1/chat/completions", chat("boom [[status:429]]"))
    assert r.status_code >= 400
    assert "429" in r.json()["error"]["message"]


def test_chat_body_limit(oagw):
    big = b'{"model":"openclaw","messages":[{"role":"user","content":"' + \
        b"x" * (20 * 1024 * 1024) + b'"}]}'
    r = oagw.http("POST", "/v1/chat/completions", data=big,
                  headers=dict(auth(), **{"Content-Type":
                                          "application/json"}),
                  timeout=30)
    assert r.status_code == 413
    assert r.json() == {"error": {"message": "Payload too large",
                                  "type": "invalid_request_error"}}


# ---- /v1/chat/completions: SSE ------------------------------------------------

def test_chat_stream(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             chat("one two three", stream=True), stream=True)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert r.headers.get("Cache-Control") == "no-cache"
    # Every reply header arrives (the gateway drops its copies of them
    # once the head is built, at the stream's first read).
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("Referrer-Policy") == "no-referrer"
    ev = sse_json(r)
    assert ev[-1] == "[DONE]"
    chunks = ev[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl_")
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in chunks)
    assert text == "echo: one two three"
    assert len([c for c in chunks
                if c["choices"][0]["delta"].get("content")]) >= 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in c for c in chunks)
    assert up.snapshot()["requests"][-1]["stream"] is True


def test_chat_stream_include_usage(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             chat("u [[usage:11,4]]", stream=True,
                  stream_options={"include_usage": True}), stream=True)
    ev = sse_json(r)
    assert ev[-1] == "[DONE]"
    last = ev[-2]
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 11, "completion_tokens": 4,
                             "total_tokens": 15}


def test_chat_stream_tool_calls(oagw, up):
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    r = post(oagw, "/v1/chat/completions",
             chat('t [[tool:lookup:{"q":"abc"}]]', stream=True,
                  tools=tools), stream=True)
    ev = sse_json(r)
    assert ev[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in ev[:-1]
              if c["choices"] and
              c["choices"][0]["delta"].get("tool_calls")]
    assert deltas, ev
    assert deltas[0]["function"]["name"] == "lookup"
    assert deltas[0]["id"] == "call_fake1"
    args = "".join(d["function"].get("arguments") or "" for d in deltas)
    assert json.loads(args) == {"q": "abc"}
    assert ev[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_stream_upstream_error(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             chat("e [[status:502]]", stream=True), stream=True)
    assert r.status_code == 200
    ev = sse_json(r)
    assert ev[-1] == "[DONE]"
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in ev[:-1] if c["choices"])
    assert text.startswith("Error: ")
    assert ev[-2]["choices"][0]["finish_reason"] == "stop"


def test_chat_stream_cut_mid_way(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             chat("a b c d e f [[cut:2]]", stream=True), stream=True,
             timeout=10)
    ev = sse_json(r)
    assert ev[-1] == "[DONE]"
    # what arrived before the cut was relayed
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in ev[:-1] if c["choices"])
    assert text.startswith("echo: a")


def test_chat_slow_first_byte(oagw, up):
    t0 = time.monotonic()
    r = post(oagw, "/v1/chat/completions",
             chat("slow [[slow:400]] [[reply:late]]"))
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "late"
    assert time.monotonic() - t0 >= 0.4


def test_chat_hung_upstream_times_out(launcher, upstream):
    upstream.reset()
    gw = launcher.start(config=oa_config(upstream, {"models": {"providers": {
        "fake": {"timeoutSeconds": 1}}}}))
    t0 = time.monotonic()
    r = post(gw, "/v1/chat/completions", chat("[[hang]]"), timeout=15)
    assert r.status_code in (502, 504), r.text
    assert time.monotonic() - t0 < 10
    assert r.json()["error"]["message"]


def test_chat_client_disconnect(oagw, up):
    """A client that leaves mid-stream: the stateless run is cancelled
    upstream and the gateway keeps serving."""
    s = socket.create_connection(("127.0.0.1", oagw.port), timeout=5)
    body = json.dumps(chat("w1 w2 w3 w4 w5 w6 w7 w8 w9 [[delay:150]]",
                           stream=True)).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer T\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    got = b""
    while b"echo" not in got:
        chunk = s.recv(4096)
        assert chunk
        got += chunk
    s.close()
    up.wait(lambda st: st["chat"] >= 1 and st["inflight"] == 0, timeout=8)
    r = post(oagw, "/v1/chat/completions", chat("after [[reply:fine]]"))
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "fine"


def test_chat_concurrent_streams(oagw, up):
    import concurrent.futures as cf

    def one(i):
        r = post(oagw, "/v1/chat/completions",
                 chat("n%d x y [[delay:20]]" % i, stream=True), stream=True)
        ev = sse_json(r)
        return "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in ev[:-1] if c["choices"])

    with cf.ThreadPoolExecutor(16) as ex:
        res = list(ex.map(one, range(32)))
    assert res == ["echo: n%d x y" % i for i in range(32)]


def test_provider_headers_sent_and_redacted(launcher, upstream):
    upstream.reset()
    gw = launcher.start(config=oa_config(upstream, {"models": {"providers": {
        "fake": {"headers": {"Ocp-Apim-Subscription-Key": "hdr-secret",
                             "X-Tenant": "t-1"}}}}}))
    r = post(gw, "/v1/chat/completions", chat("x [[reply:ok]]"))
    assert r.status_code == 200, r.text
    sent = upstream.snapshot()["headers"][-1]
    assert sent["Ocp-Apim-Subscription-Key"] == "hdr-secret"
    assert sent["X-Tenant"] == "t-1"
    # header values may carry keys: config.get never shows them
    got = gw.connect().call("config.get")
    assert "hdr-secret" not in json.dumps(got)
    hdrs = got["config"]["models"]["providers"]["fake"]["headers"]
    assert hdrs["Ocp-Apim-Subscription-Key"] == hdrs["X-Tenant"] == \
        "__OPENCLAW_REDACTED__"
    # writing the redacted config back keeps the real values
    c = gw.connect()
    res = c.request("config.set", {"raw": got["raw"],
                                   "baseHash": got["hash"]})
    assert res["ok"] is True, res
    r = post(gw, "/v1/chat/completions", chat("y [[reply:ok]]"))
    assert r.status_code == 200, r.text
    sent = upstream.snapshot()["headers"][-1]
    assert sent["Ocp-Apim-Subscription-Key"] == "hdr-secret"
