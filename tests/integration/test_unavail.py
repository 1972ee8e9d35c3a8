"""Features clawgate does not have (doc/unavailable-methods.md): each
method of the doc's table answers the true state (reads) or UNAVAILABLE
naming the feature (writes), and is advertised unless the published schema
lacks it. The doc and the gateway must agree row by row."""

import os
import re

from harness import SRCDIR, clawgate_only
from nodehelp import node_connect

pytestmark = clawgate_only("clawgate's own list of unavailable features")

DOC = os.path.join(SRCDIR, "doc", "unavailable-methods.md")


def doc_rows():
    rows = []
    with open(DOC) as f:
        for line in f:
            m = re.match(r"\| `([\w.]+)` \| ([^|]+) \| ([^|]+) \|", line)
            if m:
                rows.append((m.group(1), m.group(2).strip(),
                             m.group(3).strip()))
    return rows


def line_of(method):
    with open(DOC) as f:
        return [ln for ln in f if ln.startswith("| `%s` |" % method)][0]


def test_doc_table_matches_gateway(gateway):
    rows = doc_rows()
    assert len(rows) >= 20
    ws = gateway.connect()
    node, nres, _ = node_connect(gateway)
    assert nres["ok"] is True, nres
    advertised = set(ws.hello["features"]["methods"])
    for method, feature, answer in rows:
        res = (node if "Node role" in line_of(method) else ws).request(
            method, {})
        if answer == "UNAVAILABLE":
            assert res["ok"] is False, method
            err = res["error"]
            assert err["code"] == "UNAVAILABLE", method
            assert feature in err["message"], (method, err)
            assert err["details"] == {"code": "FEATURE_UNAVAILABLE",
                                      "feature": feature}, method
        else:
            assert res["ok"] is True, (method, res.get("error"))
        if not method.startswith("themes."):
            assert method in advertised, method


def test_true_state_answers(gateway):
    ws = gateway.connect()
    pol = ws.call("exec.approvals.get")
    assert pol["exists"] is False
    assert pol["resolvedDefaults"]["security"] == "deny"
    assert pol["file"]["defaults"]["security"] == "deny"
    assert len(pol["hash"]) == 64
    assert ws.call("exec.approval.list") == []
    assert ws.call("plugin.approval.list") == []
    assert ws.call("question.list") == {"questions": []}
    assert ws.call("tasks.list") == {"tasks": []}
    assert ws.call("progressCard.get", {"sessionKey": "main"}) == {
        "card": None}
    talk = ws.call("talk.catalog")
    assert talk["speech"]["providers"] == [] and talk["modes"] == []
    up = ws.call("update.status")
    assert up["updateAvailable"] is None
    assert ws.call("skills.status")["skills"] == []
    th = ws.call("themes.list")
    assert th["current"]["id"] == th["theme"]["id"] == "claw"
    assert [t["id"] for t in th["themes"]] == ["claw"]

