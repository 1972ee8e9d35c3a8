"""A node client over the wire (role "node", signed device identity), as
the real node hosts connect, for the node tests."""

import json

from pairing_util import Device

NODE_CLIENT = {"id": "node-host", "version": "2026.9.6", "platform": "linux",
               "mode": "node", "displayName": "build-box"}


def node_connect(gw, dev=None, caps=("system",), commands=("echo", "slow"),
                 client=None, permissions=None):
    """Connect a node; returns (ws, res, device)."""
    dev = dev or Device()
    ws = gw.ws()
    nonce = ws.challenge["payload"]["nonce"]
    extra = {"caps": list(caps), "commands": list(commands)}
    if permissions is not None:
        extra["permissions"] = permissions
    params = gw.connect_params(scopes=[], role="node",
                               client=dict(client or NODE_CLIENT), **extra)
    dev.sign(params, nonce)
    res = ws.request("connect", params)
    return ws, res, dev


def next_invoke(node_ws, timeout=10):
    """The next node.invoke.request event the node receives."""
    return node_ws.wait_event("node.invoke.request", timeout=timeout)[
        "payload"]


def answer(node_ws, req, ok=True, payload=None, error=None):
    params = {"id": req["id"], "nodeId": req["nodeId"], "ok": ok}
    if ok:
        params["payloadJSON"] = json.dumps(payload)
    else:
        params["error"] = error
    return node_ws.call("node.invoke.result", params)


def collect_res(ws, ids, timeout=10):
    """Read frames until the res of every id arrived; {id: frame}."""
    got = {}
    while len(got) < len(ids):
        f = ws.recv_json(timeout)
        if f.get("type") == "res" and f.get("id") in ids:
            got[f["id"]] = f
    return got
