"""POST /v1/responses (OpenResponses): input items, instructions, function
tools, previous_response_id, the typed SSE event sequence, response.failed.
Reference: reference/http-config-cli.md §1.7."""

import json

import pytest

from oahelp import auth, oagw, post, sse, up, upstream  # noqa: F401


def resp(inp, **kw):
    body = {"model": "openclaw", "input": inp}
    body.update(kw)
    return body


def test_responses_non_stream(oagw, up):
    r = post(oagw, "/v1/responses", resp("hi there [[usage:5,2]]"))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["id"].startswith("resp_")
    assert b["object"] == "response"
    assert b["status"] == "completed"
    assert b["model"] == "openclaw"
    assert isinstance(b["created_at"], int)
    assert len(b["output"]) == 1
    item = b["output"][0]
    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["id"].startswith("msg_")
    assert item["status"] == "completed"
    assert item["content"][0]["type"] == "output_text"
    assert item["content"][0]["text"] == "echo: hi there"
    u = b["usage"]
    assert (u["input_tokens"], u["output_tokens"], u["total_tokens"]) == \
        (5, 2, 7)


def test_responses_items_and_instructions(oagw, up):
    inp = [{"type": "message", "role": "developer",
            "content": "Dev rule."},
           {"role": "user", "content": [
               {"type": "input_text", "text": "first"}]},
           {"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}]},
           {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "second"}]}]
    r = post(oagw, "/v1/responses", resp(inp, instructions="Be terse."))
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["content"][0]["text"] == "echo: second"
    req = up.snapshot()["requests"][-1]
    system = json.dumps([m for m in req["messages"]
                         if m["role"] == "system"])
    assert "Be terse." in system and "Dev rule." in system
    roles = [m["role"] for m in req["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"]


@pytest.mark.parametrize("body,frag", [
    ({"model": "openclaw"}, "input"),
    ({"model": "openclaw", "input": ""}, "Missing user message"),
    ({"model": "openclaw", "input": 5}, "input"),
    ({"model": "openclaw", "input": [{"type": "bogus"}]}, "input.0"),
    ({"model": "gpt-4o", "input": "x"}, "Invalid `model`"),
    ({"model": "openclaw", "input": "x", "temperature": 9}, "temperature"),
    ({"model": "openclaw", "input": "x", "tools": [{"type": "web"}]},
     "tools.0"),
    ({"model": "openclaw", "input": "x", "tool_choice": {"type": "x"}},
     "tool_choice"),
])
def test_responses_validation(oagw, up, body, frag):
    r = post(oagw, "/v1/responses", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert frag in err["message"]
    assert up.snapshot()["chat"] == 0


def test_responses_stream_sequence(oagw, up):
    r = post(oagw, "/v1/responses", resp("a b c", stream=True), stream=True)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    ev = sse(r)
    assert ev[-1] == (None, "[DONE]")
    types = [e for e, _ in ev[:-1]]
    data = [json.loads(d) for _, d in ev[:-1]]
    assert all(d["type"] == t for t, d in zip(types, data))
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    head = ["response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added"]
    tail = ["response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed"]
    assert types[:4] == head
    assert types[-4:] == tail
    deltas = [d for d in data if d["type"] == "response.output_text.delta"]
    assert len(deltas) >= 3
    assert "".join(d["delta"] for d in deltas) == "echo: a b c"
    assert all(d["output_index"] == 0 and d["content_index"] == 0
               for d in deltas)
    assert data[0]["response"]["status"] == "in_progress"
    done = data[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["text"] == "echo: a b c"
    assert data[-4]["text"] == "echo: a b c"
    assert deltas[0]["item_id"] == data[2]["item"]["id"]


def test_responses_function_tools(oagw, up):
    tools = [{"type": "function", "name": "get_time",
              "parameters": {"type": "object"}}]
    r = post(oagw, "/v1/responses",
             resp('time? [[tool:get_time:{"tz":"UTC"}]]', tools=tools,
                  tool_choice={"type": "function", "name": "get_time"}))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["status"] == "incomplete"
    calls = [o for o in b["output"] if o["type"] == "function_call"]
    assert calls[0]["name"] == "get_time"
    assert json.loads(calls[0]["arguments"]) == {"tz": "UTC"}
    assert calls[0]["call_id"] == "call_fake1"
    req = up.snapshot()["requests"][-1]
    assert req["tools"] == [{"type": "function", "function": {
        "name": "get_time", "parameters": {"type": "object"}}}]
    assert req["tool_choice"] == {"type": "function",
                                  "function": {"name": "get_time"}}
    # Send the result back.
    inp = [{"role": "user", "content": "time?"},
           {"type": "function_call", "call_id": "call_fake1",
            "name": "get_time", "arguments": '{"tz":"UTC"}'},
           {"type": "function_call_output", "call_id": "call_fake1",
            "output": "12:00 [[reply:It is noon.]]"}]
    r = post(oagw, "/v1/responses", resp(inp, tools=tools))
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["content"][0]["text"] == "It is noon."
    msgs = up.snapshot()["requests"][-1]["messages"]
    assert any(m["role"] == "assistant" and m.get("tool_calls") and
               m["tool_calls"][0]["id"] == "call_fake1" for m in msgs)
    assert any(m["role"] == "tool" and m["tool_call_id"] == "call_fake1"
               for m in msgs)


def test_responses_stream_function_call(oagw, up):
    tools = [{"type": "function", "name": "f"}]
    r = post(oagw, "/v1/responses",
             resp('x [[tool:f:{"a":1}]]', tools=tools, stream=True),
             stream=True)
    ev = sse(r)
    assert ev[-1] == (None, "[DONE]")
    data = [json.loads(d) for _, d in ev[:-1]]
    added = [d for d in data if d["type"] == "response.output_item.added"
             and d["item"]["type"] == "function_call"]
    assert added and added[0]["output_index"] == 1
    args = "".join(d["delta"] for d in data if d["type"] ==
                   "response.function_call_arguments.delta")
    assert json.loads(args) == {"a": 1}
    final = data[-1]
    assert final["type"] == "response.completed"
    assert final["response"]["status"] == "incomplete"
    fc = [o for o in final["response"]["output"]
          if o["type"] == "function_call"]
    assert fc[0]["name"] == "f" and json.loads(fc[0]["arguments"]) == \
        {"a": 1}


def test_responses_previous_response_id(oagw, up):
    r1 = post(oagw, "/v1/responses", resp("remember 42 [[reply:noted]]"))
    assert r1.status_code == 200
    rid = r1.json()["id"]
    r2 = post(oagw, "/v1/responses",
              resp("what number? [[reply:42]]", previous_response_id=rid))
    assert r2.status_code == 200, r2.text
    msgs = up.snapshot()["requests"][-1]["messages"]
    text = json.dumps(msgs)
    assert "remember 42" in text and "noted" in text
    # an unknown id starts a fresh session
    r3 = post(oagw, "/v1/responses",
              resp("fresh [[reply:x]]", previous_response_id="resp_nope"))
    assert r3.status_code == 200
    assert "remember 42" not in json.dumps(
        up.snapshot()["requests"][-1]["messages"])


def test_responses_failed(oagw, up):
    r = post(oagw, "/v1/responses", resp("f [[status:500]]"))
    assert r.status_code >= 500
    b = r.json()
    assert b["status"] == "failed"
    assert b["error"]["code"] == "api_error"
    assert "500" in b["error"]["message"]
    r = post(oagw, "/v1/responses", resp("f [[status:503]]", stream=True),
             stream=True)
    ev = sse(r)
    assert ev[-1] == (None, "[DONE]")
    types = [e for e, _ in ev[:-1]]
    assert types[0] == "response.created"
    assert types[-1] == "response.failed"
    assert "response.completed" not in types
    last = json.loads(ev[-2][1])
    assert last["response"]["status"] == "failed"
    assert "503" in last["response"]["error"]["message"]


def test_responses_unauthorized(oagw):
    r = oagw.http("POST", "/v1/responses", json=resp("x"))
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "unauthorized"
