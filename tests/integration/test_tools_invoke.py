"""POST /tools/invoke: built-in gateway tools, the hard deny list,
gateway.tools.allow/deny, status codes and shapes.
Reference: reference/http-config-cli.md §1.8."""

import json

import pytest

from oahelp import auth, oa_config, oagw, post, up, upstream  # noqa: F401


def invoke(gw, body, **kw):
    return post(gw, "/tools/invoke", body, **kw)


def needs_core(r):
    if r.status_code == 503:
        pytest.skip("agent core does not implement this tool yet: %s"
                    % r.text)


def test_agents_list(oagw):
    r = invoke(oagw, {"tool": "agents_list"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["ok"] is True
    content = b["result"]["content"]
    assert content[0]["type"] == "text"
    details = b["result"]["details"]
    assert json.loads(content[0]["text"]) == details
    ids = [a["id"] for a in details["agents"]]
    assert "main" in ids and "helper" in ids


def test_sessions_tools(oagw, up):
    r = post(oagw, "/v1/chat/completions",
             {"model": "openclaw", "user": "tool-test",
              "messages": [{"role": "user", "content": "hi [[reply:yo]]"}]})
    assert r.status_code == 200
    key = "agent:main:openai-user:tool-test"
    r = invoke(oagw, {"tool": "sessions_list", "args": {"limit": 10}})
    needs_core(r)
    assert r.status_code == 200, r.text
    keys = [s["key"] for s in r.json()["result"]["details"]["sessions"]]
    assert key in keys
    r = invoke(oagw, {"name": "sessions_history",
                      "args": {"sessionKey": key}})
    assert r.status_code == 200, r.text
    assert "yo" in json.dumps(r.json()["result"]["details"])
    r = invoke(oagw, {"tool": "session_status", "sessionKey": key})
    assert r.status_code == 200, r.text
    r = invoke(oagw, {"tool": "session_status",
                      "args": {"sessionKey": "agent:main:nope"}})
    assert r.status_code == 404
    assert r.json()["ok"] is False


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
