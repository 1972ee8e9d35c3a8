"""`agent` (two res frames on one id), agent.wait, wake, models.list,
agents.list, idempotency across a restart, and many concurrent runs."""

import os
import time

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import chat_config, new_key, run_events
from harness import clawgate_only

pytestmark = clawgate_only("needs the fake upstream wired in the config")


def agent_req(ws, message, idem=None, **extra):
    params = {"message": message, "idempotencyKey": idem or new_key()}
    params.update(extra)
    return ws.send_req("agent", params), params["idempotencyKey"]


def test_agent_two_phase(cgw, up):
    ws = cgw.connect()
    rid, idem = agent_req(ws, "two phases")
    first = ws.wait_res(rid)
    assert first["ok"] is True
    p = first["payload"]
    assert p["runId"] == idem and p["status"] == "accepted"
    assert isinstance(p["acceptedAt"], int)
    second = ws.wait_res(rid, timeout=10)
    assert second["ok"] is True, second
    q = second["payload"]
    assert q["runId"] == idem and q["status"] == "ok"
    assert q["summary"] == "completed"
    assert q["result"]["payloads"][0]["text"] == "echo: two phases"
    # agent events between: lifecycle start, assistant deltas, end.
    evs = [e["payload"] for e in ws.events if e["event"] == "agent" and
           e["payload"]["runId"] == idem]
    streams = [e["stream"] for e in evs]
    assert streams[0] == "lifecycle" and evs[0]["data"]["phase"] == "start"
    assert "assistant" in streams
    assert evs[-1]["data"]["phase"] == "end"
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    assert evs[0]["data"]["sessionKey"] == "agent:main:main"


def test_agent_error_final(cgw, up):
    ws = cgw.connect()
    up.push(status=500)
    up.push(status=502)
    rid, idem = agent_req(ws, "fail", sessionKey="agerr-" + new_key())
    assert ws.wait_res(rid)["payload"]["status"] == "accepted"
    second = ws.wait_res(rid, timeout=10)
    assert second["ok"] is False
    assert second["payload"]["status"] == "error"
    assert second["error"]["code"] == "UNAVAILABLE"
    assert "HTTP 502" in second["error"]["message"]


def test_agent_validation_single_res(cgw, up):
    ws = cgw.connect()
    r = ws.request("agent", {"message": "x"})
    assert r["ok"] is False and r["error"]["code"] == "INVALID_REQUEST"
    r = ws.request("agent", {"message": "x", "idempotencyKey": new_key(),
                             "agentId": "ghost"})
    assert r["ok"] is False and "Unknown agent" in r["error"]["message"]


def test_agent_duplicate_key_returns_cached_final(cgw, up):
    ws = cgw.connect()
    idem = new_key()
    rid, _ = agent_req(ws, "cache me", idem=idem)
    ws.wait_res(rid)
    final = ws.wait_res(rid, timeout=10)
    assert final["payload"]["status"] == "ok"
    rid2, _ = agent_req(ws, "cache me", idem=idem)
    again = ws.wait_res(rid2)
    assert again["payload"]["status"] == "ok"
    assert again["payload"]["runId"] == idem
    assert up.snapshot()["chat"] == 1


def test_agent_wait(cgw, up):
    ws = cgw.connect()
    rid, idem = agent_req(ws, "[[delay:100]] wait for me",
                          sessionKey="wait-" + new_key())
    ws.wait_res(rid)
    w = ws.call("agent.wait", {"runId": idem, "timeoutMs": 10000})
    assert w["runId"] == idem and w["status"] == "ok"
    assert w["endedAt"] >= w["startedAt"]
    # A finished run answers at once; an unknown one times out.
    assert ws.call("agent.wait", {"runId": idem})["status"] == "ok"
    t0 = time.monotonic()
    w = ws.call("agent.wait", {"runId": new_key(), "timeoutMs": 200})
    assert w["status"] == "timeout"
    assert time.monotonic() - t0 < 3


def test_agent_wait_timeout_on_live_run(cgw, up):
    ws = cgw.connect()
    key = "wlive-" + new_key()
    rid, idem = agent_req(ws, "[[hang]]", sessionKey=key)
    ws.wait_res(rid)
    w = ws.call("agent.wait", {"runId": idem, "timeoutMs": 100})
    assert w["status"] == "timeout"
    assert ws.call("chat.abort", {"sessionKey": key})["aborted"] is True
    final = ws.wait_res(rid, timeout=10)
    assert final["ok"] is False and final["payload"]["status"] == "error"


def test_models_and_agents_list(cgw, up):
    ws = cgw.connect()
    models = ws.call("models.list")["models"]
    ids = {(m["provider"], m["id"]) for m in models}
    assert ("fake", "fake-model") in ids and \
        ("backup", "backup-model") in ids
    fm = [m for m in models if m["id"] == "fake-model"][0]
    assert fm["name"] == "Fake" and fm["contextWindow"] == 32000
    al = ws.call("agents.list")
    assert al["defaultId"] == "main" and al["mainKey"] == "main"
    agents = {a["id"]: a for a in al["agents"]}
    assert set(agents) == {"main", "helper"}
    assert agents["helper"]["name"] == "Helper"
    assert agents["main"]["model"] == {
        "primary": "fake/fake-model", "fallbacks": ["backup/backup-model"]}


def test_wake_now_runs_the_main_session(cgw, up):
    ws = cgw.connect()
    res = ws.call("wake", {"mode": "now", "text": "ping"})
    assert res["ok"] is True
    evs = run_events(ws, res["runId"])
    assert evs[-1]["state"] == "final"
    assert ws.call("wake", {"mode": "next-heartbeat",
                            "text": "later"})["ok"] is True
    bad = ws.request("wake", {"mode": "soon", "text": "x"})
    assert bad["ok"] is False


def test_workspace_prompt_and_extra_system(start_gateway, upstream):
    upstream.reset()
    gw = start_gateway(config=chat_config(upstream))
    ws_dir = os.path.join(gw.state_dir, "workspace")
    os.makedirs(ws_dir, exist_ok=True)
    with open(os.path.join(ws_dir, "AGENTS.md"), "w") as f:
        f.write("You are the test agent.")
    with open(os.path.join(ws_dir, "SOUL.md"), "w") as f:
        f.write("Be brief.")
    ws = gw.connect()
    rid, idem = agent_req(ws, "hi", extraSystemPrompt="Extra rule.")
    ws.wait_res(rid)
    assert ws.wait_res(rid, timeout=10)["payload"]["status"] == "ok"
    msgs = upstream.snapshot()["requests"][-1]["messages"]
    assert msgs[0]["role"] == "system"
    assert msgs[0]["content"] == \
        "You are the test agent.\n\nBe brief.\n\nExtra rule."


def test_idempotent_retry_across_restart(launcher, upstream):
    upstream.reset()
    cfg = chat_config(upstream)
    gw = launcher.start(config=cfg)
    ws = gw.connect()
    idem = new_key()
    rid, _ = agent_req(ws, "survive restart", idem=idem)
    ws.wait_res(rid)
    assert ws.wait_res(rid, timeout=10)["payload"]["status"] == "ok"
    assert gw.stop() == 0
    gw2 = launcher.start(config=cfg, state_dir=gw.state_dir, port=gw.port)
    ws2 = gw2.connect()
    rid2, _ = agent_req(ws2, "survive restart", idem=idem)
    res = ws2.wait_res(rid2)
    assert res["ok"] is True
    assert res["payload"]["runId"] == idem
    assert res["payload"]["status"] == "ok"
    assert res["payload"]["result"]["text"] == "echo: survive restart"
    r = ws2.request("chat.send", {"sessionKey": "main", "message": "x",
                                  "idempotencyKey": idem})
    assert r["payload"] == {"runId": idem, "status": "ok"}
    assert upstream.snapshot()["chat"] == 1


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_many_concurrent_runs(start_gateway, upstream):
    upstream.reset()
    n = 200
    # All of them upstream at once: the global lane lets n run.
    gw = start_gateway(config=chat_config(upstream, {
        "agents": {"defaults": {"maxConcurrent": n}}}))
    ws = gw.connect()
    before = _rss_kb(gw.proc.pid)
    ids = []
    for i in range(n):
        idem = new_key()
        ids.append(idem)
        ws.send_req("chat.send", {"sessionKey": "c%d" % i,
                                  "message": "[[reply:x y z]] [[gate]]",
                                  "idempotencyKey": idem})
    upstream.wait(lambda s: s["inflight"] >= n, timeout=60)
    during = _rss_kb(gw.proc.pid)
    upstream.open_gate()
    done = set()
    deadline = time.monotonic() + 60
    while len(done) < n:
        assert time.monotonic() < deadline, "%d/%d done" % (len(done), n)
        f = ws.recv_json(10)
        if f.get("event") == "chat" and f["payload"]["state"] in (
                "final", "error", "aborted"):
            assert f["payload"]["state"] == "final", f
            done.add(f["payload"]["runId"])
    assert done == set(ids)
    print("RSS before %d KB, with %d runs in flight %d KB (+%d KB)"
          % (before, n, during, during - before))
