"""The node role end to end (issue 8): a node client over the wire with a
signed device identity; node pairing of its command surface
(node.pair.*), node.list/describe/rename, node.invoke relayed to the node
and node.invoke.result back (timeout, node gone, idempotency), node.event.
"""

import signal
import uuid

from harness import clawgate_only
from nodehelp import answer, collect_res, next_invoke, node_connect
from wsclient import WsClosed, WsTimeout

pytestmark = clawgate_only("drives clawgate's node registry")


def paired_node(gw, admin, **kw):
    """Connect a node and approve its surface; returns (ws, device)."""
    ws, res, dev = node_connect(gw, **kw)
    assert res["ok"] is True, res
    ev = admin.wait_event("node.pair.requested",
                          pred=lambda f: f["payload"]["nodeId"] == dev.id)
    rid = ev["payload"]["requestId"]
    out = admin.call("node.pair.approve", {"requestId": rid})
    assert out["requestId"] == rid and out["node"]["nodeId"] == dev.id
    resolved = ws.wait_event("node.pair.resolved")["payload"]
    assert resolved["decision"] == "approved"
    return ws, dev


def invoke(admin, node_id, command="echo", key=None, **extra):
    params = {"nodeId": node_id, "command": command,
              "idempotencyKey": key or str(uuid.uuid4())}
    params.update(extra)
    return admin.send_req("node.invoke", params)


def test_pairing_then_invoke_roundtrip(gateway):
    admin = gateway.connect()
    ws, res, dev = node_connect(gateway)
    assert res["ok"] is True, res
    assert res["payload"]["auth"]["role"] == "node"
    ev = admin.wait_event("node.pair.requested",
                          pred=lambda f: f["payload"]["nodeId"] == dev.id)
    req = ev["payload"]
    assert req["commands"] == ["echo", "slow"] and req["caps"] == ["system"]
    assert req["displayName"] == "build-box"
    pend = admin.call("node.pair.list")
    assert [p["requestId"] for p in pend["pending"]
            if p["nodeId"] == dev.id] == [req["requestId"]]
    # Connected but not approved: nothing can be invoked yet.
    lst = {n["nodeId"]: n for n in admin.call("node.list")["nodes"]}
    assert lst[dev.id]["connected"] is True
    assert lst[dev.id]["paired"] is False
    assert lst[dev.id]["commands"] == []
    assert lst[dev.id]["pendingRequestId"] == req["requestId"]
    r = admin.request("node.invoke", {"nodeId": dev.id, "command": "echo",
                                      "idempotencyKey": "k0"})
    assert r["ok"] is False and r["error"]["code"] == "INVALID_REQUEST"
    assert r["error"]["details"]["reason"] == "command-not-approved"
    admin.call("node.pair.approve", {"requestId": req["requestId"]})
    assert ws.wait_event("node.pair.resolved")["payload"][
        "decision"] == "approved"
    d = admin.call("node.describe", {"nodeId": dev.id})
    assert d["paired"] is True and d["connected"] is True
    assert d["commands"] == ["echo", "slow"]
    envs = {e["id"]: e for e in admin.call("environments.list")[
        "environments"]}
    assert envs["gateway"]["type"] == "local"
    env = envs["node:" + dev.id]
    assert env["type"] == "node" and env["status"] == "available"
    assert env["label"] == "build-box"
    assert env["invocableCommands"] == ["echo", "slow"]
    assert env["capabilities"] == ["echo", "slow", "system"]
    assert admin.call("node.pair.list")["pending"] == [] or all(
        p["nodeId"] != dev.id for p in admin.call("node.pair.list")[
            "pending"])
    # The relay: operator -> node.invoke.request -> node -> result.
    rid = invoke(admin, dev.id, params={"text": "hi"}, timeoutMs=20000)
    got = next_invoke(ws)
    assert got["command"] == "echo" and got["nodeId"] == dev.id
    assert got["paramsJSON"] == '{"text": "hi"}'.replace(" ", "")
    assert got["timeoutMs"] == 20000
    assert answer(ws, got, payload={"echo": "hi"}) == {"ok": True}
    out = admin.wait_res(rid)
    assert out["ok"] is True, out
    assert out["payload"]["payload"] == {"echo": "hi"}
    assert out["payload"]["command"] == "echo"
    # An undeclared command is refused by the gateway, not relayed.
    r = admin.request("node.invoke", {"nodeId": dev.id, "command": "rm",
                                      "idempotencyKey": "k1"})
    assert r["error"]["details"]["reason"] == "command-not-declared"
    # A node error comes back as UNAVAILABLE with the node's error.
    rid = invoke(admin, dev.id)
    answer(ws, next_invoke(ws), ok=False,
           error={"code": "E_FAIL", "message": "boom"})
    out = admin.wait_res(rid)
    assert out["ok"] is False and out["error"]["code"] == "UNAVAILABLE"
    assert out["error"]["message"] == "E_FAIL: boom"
    assert out["error"]["details"]["nodeError"]["code"] == "E_FAIL"
    ws.close()


def test_idempotent_retries(gateway):
    admin = gateway.connect()
    ws, dev = paired_node(gateway, admin)
    key = str(uuid.uuid4())
    # Two calls with one key while in flight: one request to the node.
    a = invoke(admin, dev.id, key=key)
    b = invoke(admin, dev.id, key=key)
    req = next_invoke(ws)
    # The second call joined: answering once answers both.
    answer(ws, req, payload={"n": 1})
    got = collect_res(admin, {a, b})
    assert got[a]["payload"]["payload"] == {"n": 1}
    assert got[b]["payload"]["payload"] == {"n": 1}
    # A retry after the end gets the same result without a new request.
    again = admin.call("node.invoke", {"nodeId": dev.id, "command": "echo",
                                       "idempotencyKey": key})
    assert again["payload"] == {"n": 1}
    ws.call("health")   # a round trip: any request would be here by now
    assert not [e for e in ws.events
                if e["event"] == "node.invoke.request"]
    ws.close()


def test_timeout_and_late_result(gateway):
    admin = gateway.connect()
    ws, dev = paired_node(gateway, admin)
    rid = invoke(admin, dev.id, command="slow", timeoutMs=200)
    req = next_invoke(ws)
    out = admin.wait_res(rid, timeout=10)
    assert out["ok"] is False
    assert out["error"]["message"] == "node invoke timed out"
    assert out["error"]["details"]["code"] == "TIMEOUT"
    assert out["error"]["details"]["nodeCommandDispatched"] is True
    # The node's late answer is accepted and ignored.
    late = answer(ws, req, payload={"late": True})
    assert late == {"ok": True, "ignored": True}
    ws.close()


def test_node_disconnect_fails_inflight_and_not_connected(gateway):
    admin = gateway.connect()
    ws, dev = paired_node(gateway, admin)
    rid = invoke(admin, dev.id, command="slow", timeoutMs=60000)
    next_invoke(ws)
    ws.close()
    out = admin.wait_res(rid, timeout=10)
    assert out["ok"] is False
    assert out["error"]["details"]["code"] == "DISCONNECTED"
    assert out["error"]["message"] == "node disconnected (slow)"
    d = admin.call("node.describe", {"nodeId": dev.id})
    assert d["connected"] is False and d["paired"] is True
    envs = {e["id"]: e for e in admin.call("environments.list")[
        "environments"]}
    assert envs["node:" + dev.id]["status"] == "unavailable"
    assert "invocableCommands" not in envs["node:" + dev.id]
    r = admin.request("node.invoke", {"nodeId": dev.id, "command": "echo",
                                      "idempotencyKey": "gone"})
    assert r["ok"] is False and r["error"]["code"] == "UNAVAILABLE"
    assert r["error"]["details"]["code"] == "NOT_CONNECTED"
    assert r["error"]["details"]["nodeCommandDispatched"] is False


def test_reconnect_wider_surface_needs_approval(gateway):
    admin = gateway.connect()
    ws, dev = paired_node(gateway, admin)
    ws.close()
    ws2, res, _ = node_connect(gateway, dev=dev,
                               commands=("echo", "slow", "camera.snap"))
    assert res["ok"] is True
    ev = admin.wait_event("node.pair.requested",
                          pred=lambda f: f["payload"]["nodeId"] == dev.id)
    assert ev["payload"]["isRepair"] is True
    d = admin.call("node.describe", {"nodeId": dev.id})
    assert d["commands"] == ["echo", "slow"]   # approved ones still work
    assert d["pendingRequestId"] == ev["payload"]["requestId"]
    rid = invoke(admin, dev.id)
    answer(ws2, next_invoke(ws2), payload=1)
    assert admin.wait_res(rid)["ok"] is True
    r = admin.request("node.invoke", {"nodeId": dev.id,
                                      "command": "camera.snap",
                                      "idempotencyKey": "cam"})
    assert r["error"]["details"]["reason"] == "command-not-approved"
    # Rejected: the wider surface stays refused.
    admin.call("node.pair.reject", {"requestId": ev["payload"][
        "requestId"]})
    assert all(p["nodeId"] != dev.id
               for p in admin.call("node.pair.list")["pending"])
    ws2.close()


def test_rename_event_remove(gateway):
    admin = gateway.connect()
    ws, dev = paired_node(gateway, admin)
    assert admin.call("node.rename", {"nodeId": dev.id,
                                      "displayName": "lab"}) == {
        "nodeId": dev.id, "displayName": "lab"}
    assert admin.call("node.describe", {"nodeId": dev.id})[
        "displayName"] == "lab"
    paired = [p for p in admin.call("node.pair.list")["paired"]
              if p["nodeId"] == dev.id]
    assert paired[0]["displayName"] == "lab"
    ev = ws.call("node.event", {"event": "custom.thing",
                                "payloadJSON": "{}"})
    assert ev == {"ok": True, "event": "custom.thing", "handled": False,
                  "reason": "clawgate handles no node events"}
    # Role policy: an operator cannot answer invocations, a node cannot
    # invoke.
    r = admin.request("node.invoke.result", {"id": "x", "nodeId": dev.id,
                                             "ok": True})
    assert r["ok"] is False and "unauthorized role" in r["error"][
        "message"]
    r = ws.request("node.invoke", {"nodeId": dev.id, "command": "echo",
                                   "idempotencyKey": "self"})
    assert r["ok"] is False and "unauthorized role" in r["error"][
        "message"]
    # nodeId mismatch in a result.
    r = ws.request("node.invoke.result", {"id": "x", "nodeId": "other",
                                          "ok": True})
    assert r["error"]["message"] == "nodeId mismatch"
    assert admin.call("node.pair.remove", {"nodeId": dev.id}) == {
        "nodeId": dev.id}
    try:
        code, _ = ws.expect_close(timeout=10)
    except (WsClosed, WsTimeout) as e:
        raise AssertionError("node not closed: %r" % e)
    assert code == 4001
    bad = admin.request("node.describe", {"nodeId": dev.id})
    assert bad["ok"] is False
    bad = admin.request("node.pair.approve", {"requestId": "nope"})
    assert bad["error"]["message"] == "unknown requestId"


def test_shutdown_with_an_invocation_in_flight(start_gateway):
    gw = start_gateway()
    admin = gw.connect()
    ws, dev = paired_node(gw, admin)
    rid = invoke(admin, dev.id, command="slow", timeoutMs=60000)
    next_invoke(ws)
    gw.proc.send_signal(signal.SIGTERM)
    # The caller gets an answer or the socket closes: never a hang.
    try:
        res = admin.wait_res(rid, timeout=10)
        assert res["ok"] is False
        assert res["error"]["code"] == "UNAVAILABLE"
    except WsClosed:
        pass
    assert gw.wait_exit() == 0
    gw.check_sanitizers()


def test_invoke_policy(start_gateway):
    gw = start_gateway(config={"gateway": {"mode": "local", "nodes": {
        "commands": {"deny": ["slow", 7]}}}})
    admin = gw.connect()
    ws, dev = paired_node(gw, admin, commands=("echo", "slow",
                                               "fs.listDir"))
    writer = gw.connect(scopes=["operator.read", "operator.write"])

    def call(c, command):
        return c.request("node.invoke", {"nodeId": dev.id, "command":
                                         command, "idempotencyKey":
                                         str(uuid.uuid4())})
    r = call(writer, "fs.listDir")
    assert r["error"]["code"] == "FORBIDDEN"
    assert r["error"]["details"]["missingScope"] == "operator.admin"
    r = call(admin, "worker.launch.v1")
    assert "private node controls" in r["error"]["message"]
    r = call(admin, "system.execApprovals.get")
    assert r["error"]["code"] == "INVALID_REQUEST"
    r = call(admin, "slow")
    assert r["error"]["details"]["reason"] == "command-denied"
    # An admin may use the admin-only command; a writer the plain one.
    rid = invoke(admin, dev.id, command="fs.listDir")
    answer(ws, next_invoke(ws), payload=[])
    assert admin.wait_res(rid)["ok"] is True
    rid = invoke(writer, dev.id, command="echo")
    answer(ws, next_invoke(ws), payload="ok")
    assert writer.wait_res(rid)["ok"] is True
    ws.close()
