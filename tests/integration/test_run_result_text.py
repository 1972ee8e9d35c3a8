"""The stored result of a run (issue 11): the end's idempotency row holds
the run's result object as JSON text written straight, no longer dumped
from a jansson tree. It must be the bytes the tree gave: jansson's compact
form (members in insertion order, its escaping: \\" \\\\ \\b \\f \\n \\r \\t,
other control characters as \\u00XX in upper case, everything else raw
UTF-8), for texts with quotes, backslashes, every control character,
2/3/4-byte UTF-8 and U+2028, for ended runs ok, failed (error and
httpStatus members) and with tool calls; and a replay gives it back."""

import json
import re

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import new_key, run_events, send
from pairing_util import db_query

ORDER = ["runId", "sessionKey", "status", "text", "startedAt", "endedAt",
         "usage", "agentId", "finishReason", "model", "error",
         "httpStatus", "toolCalls"]


def _jansson(v):
    """json_dumps(v, JSON_COMPACT) as jansson writes it."""
    if isinstance(v, dict):
        return "{" + ",".join(_jansson(k) + ":" + _jansson(x)
                              for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_jansson(x) for x in v) + "]"
    if isinstance(v, str):
        def esc(m):
            c = m.group(0)
            return {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f",
                    "\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(
                        c, "\\u%04X" % ord(c))
        return '"' + re.sub(r'["\\\x00-\x1f]', esc, v) + '"'
    return json.dumps(v)


def _stored(cgw, run_id):
    rows = db_query(cgw, "SELECT status, result FROM idempotency "
                         "WHERE run_id = ?", (run_id,))
    assert len(rows) == 1, rows
    return rows[0]


def _check(cgw, run_id, status):
    st, text = _stored(cgw, run_id)
    assert st == status
    obj = json.loads(text)
    assert text == _jansson(obj)
    keys = list(obj)
    assert keys == [k for k in ORDER if k in keys], keys
    assert list(obj["usage"]) == ["input", "output"]
    return obj


TEXTS = [
    'quote " backslash \\ slash / done',
    "".join(chr(c) for c in range(1, 32)) + "\x7f end",
    "caf\u00e9 \u20ac \u2028 \u2029 \U0001F600 \u4e2d\u6587",
    "",
]


def test_result_text_as_jansson(cgw, up):
    ws = cgw.connect()
    for i, t in enumerate(TEXTS):
        idem = new_key()
        up.push(reply=t, usage=[3, 4 + i])
        assert send(ws, "rt-" + new_key(), "hello", idem=idem)["ok"]
        assert run_events(ws, idem)[-1]["state"] == "final"
        obj = _check(cgw, idem, "ok")
        assert obj["text"] == t
        assert obj["usage"] == {"input": 3, "output": 4 + i}
        assert obj["status"] == "ok" and obj["runId"] == idem
        # a replay reads the row back
        assert send(ws, "rt-x", "again", idem=idem)["payload"] == \
            {"runId": idem, "status": "ok"}


def test_result_text_failed_and_tools(cgw, up):
    ws = cgw.connect()
    bad = new_key()
    up.push(status=503)
    up.push(status=503)
    assert send(ws, "rt-" + new_key(), "fails", idem=bad)["ok"]
    assert run_events(ws, bad)[-1]["state"] == "error"
    obj = _check(cgw, bad, "error")
    assert obj["error"] and obj["httpStatus"] >= 400
    tool = new_key()
    up.push(tool={"name": "get_weather",
                  "arguments": '{"city":"Z\\u00fcrich \\"old\\""}'})
    assert send(ws, "rt-" + new_key(), "tools", idem=tool)["ok"]
    assert run_events(ws, tool)[-1]["state"] == "final"
    obj = _check(cgw, tool, "ok")
    assert obj["toolCalls"][0]["function"]["name"] == "get_weather"
    assert obj["finishReason"] == "tool_calls"
