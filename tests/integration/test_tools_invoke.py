"""POST /tools/invoke: built-in gateway tools, the hard deny list,
gateway.tools.allow/deny, status codes and shapes.
Reference: reference/http-config-cli.md §1.8."""

import json

import pytest

from oahelp import auth, oa_config, oagw, post, up, upstream  # noqa: F401


def invoke(gw, body, **kw):
    return post(gw, "/tools/invoke", body, **kw)


def test_sessions_tools(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             {"model": "openclaw", "user": "tool-test",
              "messages": [{"role": "user", "content": "hi [[reply:yo]]"}]})
    assert r.status_code == 200
    key = "agent:main:openai-user:tool-test"
    r = invoke(oagw, {"tool": "sessions_list", "args": {"limit": 10}})
    assert r.status_code == 200, r.text
    det = r.json()["result"]["details"]
    assert json.loads(r.json()["result"]["content"][0]["text"]) == det
    # the upstream tool shape (peer-http-enabled.txt)
    assert det["count"] == len(det["sessions"]) >= 1
    assert det["hasMore"] is False and det["limitApplied"] == 10
    row = [s for s in det["sessions"] if s["key"] == key][0]
    assert row["agentId"] == "main" and row["sessionId"]
    assert row["kind"] == "other" and row["channel"]
    assert row["archived"] is False and row["pinned"] is False
    assert isinstance(row["updatedAt"], int)
    assert row["status"] == "done"

    r = invoke(oagw, {"name": "sessions_history",
                      "args": {"sessionKey": key}})
    assert r.status_code == 200, r.text
    det = r.json()["result"]["details"]
    assert det["sessionKey"] == key
    assert [m["role"] for m in det["messages"]] == ["user", "assistant"]
    assert "yo" in json.dumps(det["messages"][-1])
    assert "usage" not in det["messages"][-1]
    for k in ("truncated", "droppedMessages", "contentTruncated",
              "contentRedacted"):
        assert isinstance(det[k], bool)
    assert det["bytes"] > 0
    r = invoke(oagw, {"name": "sessions_history",
                      "args": {"sessionKey": "agent:main:nope"}})
    assert r.status_code == 200
    assert r.json()["result"]["details"]["status"] == "error"
    assert "Session not found" in r.json()["result"]["details"]["error"]
    r = invoke(oagw, {"name": "sessions_history", "args": {}})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "tool_error"

    r = invoke(oagw, {"tool": "session_status", "sessionKey": key})
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    det = res["details"]
    assert det["ok"] is True and det["sessionKey"] == key
    assert det["agentId"] == "main" and det["changedModel"] is False
    assert isinstance(det["stateVersion"], int)
    assert res["content"][0]["text"] == det["statusText"]
    assert "fake/fake-model" in det["statusText"]
    # a model override through the tool
    r = invoke(oagw, {"tool": "session_status",
                      "args": {"sessionKey": key, "model": "fake/other"}})
    det = r.json()["result"]["details"]
    assert det["changedModel"] is True
    assert det["modelOverride"] == "fake/other"
    assert det["model"] == "other" and det["modelProvider"] == "fake"
    r = invoke(oagw, {"tool": "session_status",
                      "args": {"sessionKey": key, "model": "default"}})
    det = r.json()["result"]["details"]
    assert det["changedModel"] is True and det["modelOverride"] is None
    # an unknown session fails the tool (upstream: sanitized 500)
    r = invoke(oagw, {"tool": "session_status",
                      "args": {"sessionKey": "agent:main:nope"}})
    assert r.status_code == 500
    assert r.json() == {"ok": False, "error": {
        "type": "tool_error", "message": "tool execution failed"}}


def test_sessions_list_filters(oagw, up):
    for u in ("flt-a", "flt-b", "flt-c"):
        r = post(oagw, "/v1/chat/completions",
                 {"model": "openclaw", "user": u,
                  "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200
    r = invoke(oagw, {"tool": "sessions_list",
                      "args": {"limit": 2, "search": "flt-"}})
    det = r.json()["result"]["details"]
    assert det["count"] == 2 and det["hasMore"] is True
    assert det["nextOffset"] == 2
    r = invoke(oagw, {"tool": "sessions_list",
                      "args": {"search": "flt-", "offset": 2,
                               "messageLimit": 1}})
    det = r.json()["result"]["details"]
    assert det["count"] == 1 and det["hasMore"] is False
    assert len(det["sessions"][0]["messages"]) == 1
    assert det["sessions"][0]["messages"][0]["role"] == "assistant"
    r = invoke(oagw, {"tool": "sessions_list",
                      "args": {"search": "flt-", "kinds": ["main"]}})
    assert r.json()["result"]["details"]["count"] == 0


@pytest.mark.parametrize("tool", ["exec", "shell", "fs_write", "cron",
                                  "gateway", "nodes", "sessions_spawn",
                                  "no_such_tool"])
def test_denied_or_unknown(oagw, tool):
    r = invoke(oagw, {"tool": tool, "args": {}})
    assert r.status_code == 404
    assert r.json() == {"ok": False, "error": {
        "type": "not_found", "message": "Tool not available: " + tool}}


@pytest.mark.parametrize("body", [{}, {"tool": ""}, {"args": {}},
                                  {"tool": "agents_list", "args": [1]}])
def test_bad_request(oagw, body):
    r = invoke(oagw, body)
    assert r.status_code == 400
    b = r.json()
    assert b["ok"] is False and b["error"]["message"]


def test_agent_conflict_and_unknown(oagw):
    r = invoke(oagw, {"tool": "agents_list", "agentId": "ghost"})
    assert r.status_code == 400
    r = invoke(oagw, {"tool": "session_status", "agentId": "helper",
                      "sessionKey": "agent:main:main"})
    assert r.status_code == 400
    assert "conflict" in r.json()["error"]["message"]


def test_auth_and_limits(oagw):
    r = oagw.http("POST", "/tools/invoke", json={"tool": "agents_list"})
    assert r.status_code == 401
    assert r.json() == {"error": {"message": "Unauthorized",
                                  "type": "unauthorized"}}
    r = oagw.http("GET", "/tools/invoke", headers=auth())
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    big = b'{"tool":"agents_list","args":{"x":"' + b"x" * (2 * 1024 * 1024) \
        + b'"}}'
    r = oagw.http("POST", "/tools/invoke", data=big, timeout=20,
                  headers=dict(auth(), **{"Content-Type":
                                          "application/json"}))
    assert r.status_code == 413


def test_config_allow_deny(launcher, upstream):
    gw = launcher.start(config=oa_config(upstream, {"gateway": {"tools": {
        "deny": ["agents_list"], "allow": ["exec"]}}}))
    r = invoke(gw, {"tool": "agents_list"})
    assert r.status_code == 404
    # allow lifts the hard deny, but clawgate has no exec tool
    r = invoke(gw, {"tool": "exec"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Tool not available: exec"
