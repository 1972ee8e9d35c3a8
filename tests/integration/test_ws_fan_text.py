"""The run fan-out's `chat` / `agent` events and the `res` frames are
written as text by clawgate's own JSON writer, not built as JSON objects
and dumped (issue 11, round 6): the bytes on the wire must stay what
jansson's compact output was. These tests read the raw text of the frames
(every frame is still validated against the protocol schema) and compare
it with jansson's escaping (\\" \\\\ \\b \\f \\n \\r \\t, other controls
as \\u00XX upper-case, everything else, UTF-8 included, as is) for
strings that need it: quotes, backslashes, control characters, multi-byte
UTF-8, U+2028, empty."""

import json

import pytest

from chathelp import cgw, new_key, up, upstream  # noqa: F401
from harness import clawgate_only

pytestmark = clawgate_only("byte-exact frame text of clawgate's writer")

TRICKY = [
    'q"uo\\te/',
    "\x01\x1f\b\f\n\r\t\x7f",
    "caf\u00e9 \u20ac \U0001F600 \u2028.",
    "</script>\\u0000",
]


def jstr(s):
    """A JSON string as jansson writes it (compact, UTF-8 kept)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t"}[ch])
        elif o < 0x20:
            out.append("\\u%04X" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def raw_frames(ws, run_id, timeout=20):
    """Raw text of the chat/agent event frames of one run, until its
    lifecycle end (each also parsed and schema-checked by recv_json's
    validator through ws.frames)."""
    out = []
    while True:
        text = ws.recv_message(timeout)
        frame = json.loads(text)
        ws.frames.append(frame)
        if ws.validator:
            ws.validator(frame, ws.pending)
        p = frame.get("payload") or {}
        if frame.get("event") not in ("chat", "agent") or \
                p.get("runId") != run_id:
            continue
        out.append((frame, text))
        if frame["event"] == "agent" and p["stream"] == "lifecycle" and \
                p["data"]["phase"] in ("end", "error"):
            return out


def start_run(gw, up, script, message="hi", times=1):  # noqa: F811
    writer = gw.connect(scopes=["operator.write", "operator.read"])
    reader = gw.connect(scopes=["operator.read"])
    for _ in range(times):
        up.push(**script)
    idem = new_key()
    key = "fan-" + new_key()
    res = writer.request("chat.send", {"sessionKey": key,
                                       "message": message,
                                       "idempotencyKey": idem})
    assert res["ok"], res
    return writer, reader, idem, key


@pytest.mark.parametrize("text", TRICKY)
def test_run_events_text(cgw, up, text):  # noqa: F811
    """Deltas, the final chat event and the lifecycle events carry the
    strings escaped exactly as jansson did, in the same key order."""
    reply = text + "|" + text
    writer, reader, idem, key = start_run(
        cgw, up, {"reply": reply, "chunks": 2, "usage": [3, 4],
                  "finish": "length"})
    frames = raw_frames(reader, idem)
    canon = "agent:main:" + key
    for frame, raw in frames:
        p = frame["payload"]
        assert raw.endswith(',"seq":%d}' % frame["seq"]), raw
        if frame["event"] == "chat":
            assert raw.startswith(
                '{"type":"event","event":"chat","payload":{"runId":%s,'
                '"sessionKey":%s,"agentId":"main","seq":%d,"state":"%s"'
                % (jstr(idem), jstr(canon), p["seq"], p["state"])), raw
        else:
            assert raw.startswith(
                '{"type":"event","event":"agent","payload":{"runId":%s,'
                '"seq":%d,"stream":"%s","ts":%d,"data":{'
                % (jstr(idem), p["seq"], p["stream"], p["ts"])), raw
            assert raw.endswith('"sessionKey":%s}},"seq":%d}'
                                % (jstr(canon), frame["seq"])), raw
        if frame["event"] == "agent" and p["stream"] == "assistant":
            assert '"data":{"delta":%s,' % jstr(p["data"]["delta"]) in raw
    final = [raw for f, raw in frames if f["event"] == "chat" and
             f["payload"]["state"] == "final"]
    assert len(final) == 1
    ended = [f for f, _ in frames if f["event"] == "chat"][-1]["payload"]
    assert final[0].endswith(
        ',"message":{"role":"assistant","content":[{"type":"text",'
        '"text":%s}],"timestamp":%d},"usage":{"input":3,"output":4,'
        '"totalTokens":7},"stopReason":"length"},"seq":%d}'
        % (jstr(reply), ended["message"]["timestamp"],
           [f for f, _ in frames if f["event"] == "chat"][-1]["seq"])), \
        final[0]
    deltas = "".join(f["payload"].get("deltaText", "") for f, _ in frames
                     if f["event"] == "chat" and
                     f["payload"]["state"] == "delta")
    assert deltas == reply
    for f, raw in frames:
        if f["event"] == "chat" and f["payload"]["state"] == "delta":
            assert '"state":"delta","deltaText":%s}' % jstr(
                f["payload"]["deltaText"]) in raw


def test_error_event_text(cgw, up):  # noqa: F811
    """An upstream error (the primary and its fallback): errorMessage, errorKind, errorDetail {provider,
    model, httpStatus} and the lifecycle error, in that order."""
    writer, reader, idem, key = start_run(
        cgw, up, {"status": 429, "reply": "slow \"down\"\n"}, times=2)
    frames = raw_frames(reader, idem)
    chat = [(f, raw) for f, raw in frames if f["event"] == "chat"]
    f, raw = chat[-1]
    p = f["payload"]
    assert p["state"] == "error"
    detail = p["errorDetail"]
    want = ',"state":"error","errorMessage":%s,"errorKind":%s,' \
        '"errorDetail":{' % (jstr(p["errorMessage"]), jstr(p["errorKind"]))
    parts = []
    if "provider" in detail:
        parts.append('"provider":%s,"model":%s' % (
            jstr(detail["provider"]), jstr(detail["model"])))
    if "httpStatus" in detail:
        parts.append('"httpStatus":%d' % detail["httpStatus"])
    want += ",".join(parts) + "}"
    assert want in raw, raw
    f, raw = frames[-1]
    d = f["payload"]["data"]
    assert '"data":{"phase":"error","startedAt":%d,"endedAt":%d,' \
        '"error":%s,"sessionKey":' % (d["startedAt"], d["endedAt"],
                                      jstr(d["error"])) in raw, raw


def test_tool_event_text(cgw, up):  # noqa: F811
    """A streamed tool call: the `tool` agent event's data is
    {"phase":"update","call":<the delta as the upstream sent it>,
    "sessionKey":...}."""
    writer, reader, idem, key = start_run(
        cgw, up, {"tool": {"name": "get_\"w\"",
                           "arguments": "{\"city\":\"Z\u00fcrich\\n\"}"}})
    frames = raw_frames(reader, idem)
    tools = [(f, raw) for f, raw in frames if f["event"] == "agent" and
             f["payload"]["stream"] == "tool"]
    assert tools
    for f, raw in tools:
        d = f["payload"]["data"]
        assert raw.startswith(
            '{"type":"event","event":"agent","payload":{"runId":%s,'
            '"seq":%d,"stream":"tool","ts":%d,"data":{"phase":"update",'
            '"call":{' % (jstr(idem), f["payload"]["seq"],
                          f["payload"]["ts"])), raw
        assert d["phase"] == "update" and isinstance(d["call"], dict)


@pytest.mark.parametrize("req_id", TRICKY + ["\u00e9t\u00e9"])
def test_res_text(cgw, req_id):  # noqa: F811
    """A res frame echoes the request id escaped as jansson would."""
    ws = cgw.connect(scopes=["operator.read"])
    ws.send_json({"type": "req", "id": req_id, "method": "health",
                  "params": {}})
    ws.pending[req_id] = "health"
    while True:
        raw = ws.recv_message(10)
        frame = json.loads(raw)
        if frame.get("type") == "res":
            break
    ws.validator(frame, ws.pending)
    assert frame["id"] == req_id and frame["ok"] is True
    assert raw.startswith('{"type":"res","id":%s,"ok":true,"payload":{'
                          % jstr(req_id)), raw
