"""The methods the Control UI views and the openclaw CLI call (issue 8,
item 4): system.info, diagnostics.*, the chat/sessions view reads,
agent.identity.get, tools.catalog, and the hello features/capabilities.
Every reply is validated against the official schema by the harness."""

import os
import signal
import time

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import chat_config, new_key, run_events, send, turn
from harness import clawgate_only

pytestmark = clawgate_only("needs the fake upstream wired in the config")


def test_hello_capabilities_and_methods(cgw):
    ws = cgw.connect()
    feats = ws.hello["features"]
    assert "published-model-catalog" in feats["capabilities"]
    for m in ("system.info", "diagnostics.lanes", "diagnostics.stability",
              "chat.startup", "agent.identity.get", "tools.catalog",
              "exec.approvals.get", "update.status"):
        assert m in feats["methods"], m
    # Exactly what is implemented: every advertised method is known.
    for m in feats["methods"]:
        res = ws.request(m, {"__probe": 1})
        err = res.get("error") or {}
        assert "unknown method" not in err.get("message", ""), m


def _meminfo_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def test_system_info_is_the_host(cgw):
    ws = cgw.connect()
    si = ws.call("system.info")
    assert si["hostname"] == os.uname().nodename
    assert si["release"] == os.uname().release
    assert si["cpuCount"] == os.cpu_count()
    assert si["memoryTotalBytes"] == _meminfo_total()
    assert 0 < si["memoryFreeBytes"] <= si["memoryTotalBytes"]
    with open("/proc/uptime") as f:
        up_s = float(f.read().split()[0])
    assert abs(si["uptimeMs"] / 1000.0 - up_s) < 120
    assert len(si["loadAverage"]) == 3
    assert si["pid"] == cgw.proc.pid
    assert si["diskTotalBytes"] > 0 and si["diskPath"]


def test_status_process_memory_and_event_loop(cgw):
    ws = cgw.connect()
    st = ws.call("status")
    with open("/proc/%d/status" % cgw.proc.pid) as f:
        rss = [int(ln.split()[1]) * 1024 for ln in f
               if ln.startswith("VmRSS:")][0]
    assert st["processMemory"]["rssBytes"] > 0
    # Same order of magnitude as the kernel's figure right now.
    assert rss / 4 < st["processMemory"]["rssBytes"] < rss * 4
    el = st["eventLoop"]
    assert el["intervalMs"] == 1000 and el["delayMaxMs"] >= 0
    assert el["degraded"] is False
    assert st["workerPools"]["rpcWorkers"]["maxWorkers"] >= 1
    assert st["tasks"]["total"] == 0 and st["channelSummary"] == []
    h = ws.call("health")
    assert h["plugins"] == {"loaded": [], "errors": [], "unavailable": []}
    assert set(h["eventLoop"]) >= {"delayP99Ms", "delayMaxMs",
                                   "utilization", "cpuCoreRatio"}


def _lanes(ws):
    return {ln["lane"]: ln for ln in ws.call("diagnostics.lanes")["lanes"]}


def _lanes_settle(ws, active, queued, timeout=10):
    """Poll diagnostics.lanes until the agent-runs lane shows the counts:
    a run leaves the runtime just after its final event."""
    deadline = time.monotonic() + timeout
    while True:
        ln = _lanes(ws)["agent-runs"]
        if (ln["activeCount"], ln["queuedCount"]) == (active, queued):
            return ln
        assert time.monotonic() < deadline, ln
        time.sleep(0.02)


def test_lanes_count_runs_in_flight(cgw, up):
    ws = cgw.connect()
    assert _lanes(ws)["workers"]["maxConcurrent"] >= 1
    _lanes_settle(ws, 0, 0)
    # A run held open by the upstream is in flight; one behind it in the
    # same session is queued.
    key = "lane-" + new_key()
    a, b = new_key(), new_key()
    assert send(ws, key, "[[hang]]", idem=a)["ok"]
    up.wait(lambda s: s["inflight"] >= 1)
    assert send(ws, key, "queued [[reply:q]]", idem=b)["ok"]
    ln = _lanes(ws)["agent-runs"]
    assert (ln["activeCount"], ln["queuedCount"]) == (1, 1)
    # Its cap is the global lane's (agents.defaults.maxConcurrent, by
    # default at least 8), not the runs counted.
    runs = ws.call("status")["gateway"]["runs"]
    assert ln["maxConcurrent"] == runs["maxConcurrent"] >= 8
    ws.call("chat.abort", {"sessionKey": key})
    assert run_events(ws, a)[-1]["state"] == "aborted"
    assert run_events(ws, b)[-1]["state"] == "aborted"
    _lanes_settle(ws, 0, 0)


def test_stability_lists_reload_history(cgw):
    ws = cgw.connect()
    st = ws.call("diagnostics.stability", {"limit": 25})
    assert st["count"] >= 1
    types = [e["type"] for e in st["events"]]
    assert "gateway.config.startup" in types
    assert st["summary"]["byType"]["gateway.config.startup"] >= 1
    assert st["summary"]["memory"]["latest"]["rssBytes"] > 0
    # A config.set is a reload: one more event.
    snap = ws.call("config.get")
    ws.call("config.patch", {"raw": '{"logging":{"level":"info"}}',
                             "baseHash": snap["hash"]})
    st2 = ws.call("diagnostics.stability", {"limit": 25})
    assert st2["count"] == st["count"] + 1
    assert st2["lastSeq"] > st["lastSeq"]
    bad = ws.request("diagnostics.stability", {"limit": 0})
    assert bad["ok"] is False and bad["error"]["code"] == "INVALID_REQUEST"


def test_chat_startup_describe_branches(cgw, up):
    ws = cgw.connect()
    key = "view-" + new_key()
    full = "agent:main:" + key
    turn(ws, key, "hello view")
    st = ws.call("chat.startup", {"sessionKey": key})
    assert st["resolution"] == {"ok": True, "key": full, "agentId": "main"}
    texts = [m["content"][0]["text"] for m in st["messages"]]
    assert texts == ["hello view", "echo: hello view"]
    main = ws.call("chat.startup")
    assert main["resolution"]["key"] == "agent:main:main"
    d = ws.call("sessions.describe", {"key": key})
    assert d["session"]["key"] == full
    assert ws.call("sessions.describe", {"key": "ghost-" + new_key()})[
        "session"] is None
    br = ws.call("sessions.branches.list", {"sessionKey": key})["branches"]
    assert len(br) == 1 and br[0]["active"] is True
    assert br[0]["messageCount"] == 2
    assert br[0]["leafEntryId"] == st["messages"][-1]["messageId"]
    empty = ws.call("sessions.branches.list",
                    {"sessionKey": "ghost-" + new_key()})
    assert empty["branches"] == []
    assert ws.call("sessions.companion.state",
                   {"sessionKey": key})["exchanges"] == []
    assert ws.call("sessions.observer.visibility",
                   {"sessionKey": key, "visible": True}) == {"ok": True}
    meta = ws.call("chat.metadata", {"sessionKey": key})
    ids = sorted(m["id"] for m in meta["models"])
    assert ids == ["backup-model", "fake-model"]


def test_agent_identity_sources(cgw):
    ws = cgw.connect()
    main = ws.call("agent.identity.get", {})
    assert main["agentId"] == "main"
    assert main["name"] == "Assistant" and main["nameSource"] == "default"
    helper = ws.call("agent.identity.get", {"agentId": "helper"})
    assert helper["name"] == "Helper" and helper["nameSource"] == "agent"
    ws_dir = os.path.join(cgw.state_dir, "workspace")
    os.makedirs(ws_dir, exist_ok=True)
    with open(os.path.join(ws_dir, "IDENTITY.md"), "w") as f:
        f.write("# Identity\n- **Name:** Molty\n- Emoji: \U0001F99E\n"
                "- Avatar: avatars/molty.png\n- Vibe: (fill me)\n")
    try:
        main = ws.call("agent.identity.get", {})
        assert main["name"] == "Molty"
        assert main["nameSource"] == "workspace"
        assert main["emoji"] == "\U0001F99E"
        assert main["avatar"] == "avatars/molty.png"
        assert main["avatarStatus"] == "local"
    finally:
        os.unlink(os.path.join(ws_dir, "IDENTITY.md"))
    bad = ws.request("agent.identity.get", {"agentId": "nobody"})
    assert bad["ok"] is False


def test_tools_catalog_and_models_auth(cgw):
    ws = cgw.connect()
    cat = ws.call("tools.catalog")
    tools = [t["id"] for g in cat["groups"] for t in g["tools"]]
    assert tools == ["sessions_list", "sessions_history", "session_status",
                     "agents_list"]
    auth = ws.call("models.authStatus")
    assert auth["providers"] == [] and auth["unavailable"]["code"]


def _priced_config(upstream):
    cfg = chat_config(upstream)
    fake = cfg["models"]["providers"]["fake"]["models"][0]
    fake["cost"] = {"input": 3.0, "output": 15.0}
    return cfg


def test_usage_from_transcripts(start_gateway, upstream):
    gw = start_gateway(config=_priced_config(upstream))
    ws = gw.connect()
    h0 = ws.call("health")
    assert h0["sessions"]["count"] == 0
    k1, k2 = "agent:helper:u1-" + new_key(), "agent:helper:u2-" + new_key()
    turn(ws, k1, "[[usage:11,7]] one")
    turn(ws, k2, "[[usage:5,3]] two")
    turn(ws, "main-" + new_key(), "[[usage:100,100]] main agent")
    # health and status count the session rows.
    assert ws.call("health")["sessions"]["count"] == 3
    st = ws.call("status")
    assert st["sessions"]["count"] == 3
    by = {a["agentId"]: a["count"] for a in st["sessions"]["byAgent"]}
    assert by == {"helper": 2, "main": 1}
    # usage.cost: per day, per agent, priced from the config.
    cost = ws.call("usage.cost", {"agentId": "helper", "days": 7})
    assert cost["days"] == 7 and len(cost["daily"]) == 7
    t = cost["totals"]
    assert (t["input"], t["output"], t["totalTokens"]) == (16, 10, 26)
    assert abs(t["totalCost"] - (16 * 3.0 + 10 * 15.0) / 1e6) < 1e-12
    assert t["missingCostEntries"] == 0
    today = cost["daily"][-1]
    assert today["totalTokens"] == 26
    assert sum(d["totalTokens"] for d in cost["daily"]) == 26
    allc = ws.call("usage.cost", {"agentScope": "all", "days": 1})
    assert allc["totals"]["totalTokens"] == 226
    mainc = ws.call("usage.cost", {})
    assert mainc["totals"]["totalTokens"] == 200 and mainc["days"] == 30
    bad = ws.request("usage.cost", {"startDate": "2026-13-01"})
    assert bad["ok"] is False and bad["error"]["code"] == "INVALID_REQUEST"
    # sessions.usage: per session and aggregated per model/agent/day.
    su = ws.call("sessions.usage", {"agentId": "helper"})
    keys = sorted(s["key"] for s in su["sessions"])
    assert keys == sorted([k1, k2])
    one = [s for s in su["sessions"] if s["key"] == k1][0]["usage"]
    assert (one["input"], one["output"]) == (11, 7)
    assert one["messageCounts"]["user"] == 1
    assert one["messageCounts"]["assistant"] == 1
    assert one["modelUsage"][0]["model"] == "fake-model"
    agg = su["aggregates"]
    assert agg["sessionCount"] == 2
    assert [(m["provider"], m["model"], m["count"], m["totals"]["input"])
            for m in agg["byModel"]] == [("fake", "fake-model", 2, 16)]
    assert [(a["agentId"], a["totals"]["totalTokens"])
            for a in agg["byAgent"]] == [("helper", 26)]
    assert agg["daily"][-1]["tokens"] == 26
    assert su["totals"]["totalTokens"] == 26
    only = ws.call("sessions.usage", {"key": k2})
    assert [s["key"] for s in only["sessions"]] == [k2]
    assert ws.call("usage.status")["providers"] == []


def test_device_pair_rename(cgw):
    from pairing_util import Device, device_connect
    dev = Device()
    ws, res = device_connect(cgw, dev)
    assert res["ok"] is True, res
    ws.close()
    admin = cgw.connect()
    out = admin.call("device.pair.rename", {"deviceId": dev.id,
                                            "label": "laptop"})
    assert out == {"deviceId": dev.id, "label": "laptop"}
    paired = [d for d in admin.call("device.pair.list")["paired"]
              if d["deviceId"] == dev.id]
    assert paired[0]["displayName"] == "laptop"
    bad = admin.request("device.pair.rename", {"deviceId": "nope",
                                               "label": "x"})
    assert bad["ok"] is False and bad["error"]["message"] == \
        "unknown deviceId"
    bad = admin.request("device.pair.rename", {"deviceId": dev.id})
    assert bad["ok"] is False
    # DevicePairRenameParams: label maxLength 64 characters (not bytes)
    out = admin.call("device.pair.rename", {"deviceId": dev.id,
                                            "label": "\u00e9" * 64})
    assert out["label"] == "\u00e9" * 64
    bad = admin.request("device.pair.rename", {"deviceId": dev.id,
                                               "label": "n" * 65})
    assert bad["ok"] is False and "at most 64" in bad["error"]["message"]


def test_stability_records_restarts(start_gateway):
    from test_reload import wait_ready_again, wait_rows
    gw = start_gateway()
    n = len(wait_rows(gw, 1))
    gw.proc.send_signal(signal.SIGUSR1)
    wait_rows(gw, n + 1)
    wait_ready_again(gw)
    ws = gw.connect()
    st = ws.call("diagnostics.stability")
    types = [e["type"] for e in st["events"]]
    assert types[0] == "gateway.config.startup"
    assert "gateway.config.restart" in types
    assert st["summary"]["byType"]["gateway.config.restart"] == 1


def test_branch_headline_cut_on_utf8(cgw, up):
    ws = cgw.connect()
    key = "utf8-" + new_key()
    reply = "\u00e9" * 61 + "x"          # 123 bytes: the cut is mid-é
    turn(ws, key, "[[reply:%s]] go" % reply)
    br = ws.call("sessions.branches.list", {"sessionKey": key})["branches"]
    assert len(br) == 1
    head = br[0]["headline"]
    assert reply.startswith(head) and len(head.encode()) <= 120
