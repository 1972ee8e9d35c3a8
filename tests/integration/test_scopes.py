"""Method -> scope policy: FORBIDDEN "missing scope: X" per the published
map (protocol.schema.json `methods`), for every advertised method."""

import pytest

from harness import clawgate_only

SAMPLE = {
    "operator.read": ["health", "status", "system-presence", "logs.tail",
                      "gateway.identity.get", "last-heartbeat"],
    "operator.pairing": ["device.pair.list", "device.pair.approve",
                         "device.token.rotate"],
    "operator.admin": ["system-event", "no.such.method"],
}


def missing(res, scope):
    assert res["ok"] is False, res
    e = res["error"]
    assert e["code"] == "FORBIDDEN"
    assert e["message"] == "missing scope: %s" % scope
    assert e["details"] == {"code": "MISSING_SCOPE", "missingScope": scope,
                            "requiredScopes": [scope]}


@pytest.mark.parametrize("scope", sorted(SAMPLE))
def test_missing_scope_samples(gateway, scope):
    c = gateway.connect(scopes=[])
    for m in SAMPLE[scope]:
        missing(c.request(m, {}), scope)


def test_scope_implication(gateway):
    w = gateway.connect(scopes=["operator.write"])
    assert w.call("health") is not None        # write implies read
    missing(w.request("device.pair.list", {}), "operator.pairing")
    p = gateway.connect(scopes=["operator.pairing"])
    assert p.call("device.pair.list", {}) is not None
    missing(p.request("health", {}), "operator.read")
    a = gateway.connect(scopes=["operator.admin"])
    assert a.call("device.pair.list", {}) is not None


@clawgate_only("compares our advertised methods with the published map")
def test_advertised_methods_follow_published_map(gateway, validator):
    published = validator.methods
    c = gateway.connect(scopes=[])
    methods = c.hello["features"]["methods"]
    checked = 0
    for m in methods:
        sc = published.get(m, {}).get("scope")
        if sc is None or not sc.startswith("operator."):
            continue
        missing(c.request(m, {}), sc)
        checked += 1
    assert checked >= 10


def test_node_method_refused_for_operator(gateway):
    c = gateway.connect()
    res = c.request("node.invoke.result", {})
    assert res["error"]["message"] == "unauthorized role: operator"
