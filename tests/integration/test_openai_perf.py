"""The fast path of the OpenAI face (issue 11): upstream connections are
reused, every answer is acknowledged only after its session and
transcript rows committed (also when many requests share one store
commit), and one session-key rule serves every face."""

import json
import socket
import os
import sqlite3
import threading

import pytest

from oahelp import auth, chat, oagw, post, up, upstream  # noqa: F401


def db_rows(gw, sql, args=()):
    path = os.path.join(gw.state_dir, "state", "clawgate.sqlite")
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


# ---- upstream connection pool -----------------------------------------------

def test_upstream_connection_reused(oagw, up):
    """Sequential completions to a keep-alive upstream share one TCP
    connection (the multi handle's cache outlives each request)."""
    for i in range(5):
        r = post(oagw, "/v1/chat/completions",
                 chat("hi [[json]] [[reply:ok%d]]" % i))
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "ok%d" % i
    st = up.snapshot()
    assert st["chat"] == 5
    assert st["chat_conns"] == 1


def test_upstream_connection_closed_by_server(oagw, up):
    """An upstream that closes after each answer (Connection: close) still
    gets every request, on a new connection each time."""
    for i in range(3):
        r = post(oagw, "/v1/chat/completions", chat("hi [[reply:c%d]]" % i))
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "c%d" % i
    st = up.snapshot()
    assert st["chat"] == 3
    assert st["chat_conns"] == 3


# ---- every answer after its commit ------------------------------------------

def test_concurrent_answers_after_commit(oagw, up):
    """Many requests at once (their writes share store commits): each
    answer is sent only after its session row and both transcript
    messages are committed, so a reader sees them at once."""
    n = 24
    seen = {}
    errs = []

    def one(i):
        try:
            key = "agent:main:perf-commit-%d" % i
            r = post(oagw, "/v1/chat/completions",
                     chat("q%d [[json]] [[reply:a%d]]" % (i, i)),
                     headers={"x-openclaw-session-key": key})
            assert r.status_code == 200, r.text
            rows = db_rows(oagw, "SELECT role, text FROM transcript "
                           "WHERE session_key = ? ORDER BY seq", (key,))
            srow = db_rows(oagw, "SELECT status FROM sessions WHERE "
                           "key = ?", (key,))
            seen[i] = (rows, srow)
        except Exception as e:  # noqa: BLE001 - reported below
            errs.append(e)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errs, errs
    assert len(seen) == n
    for i, (rows, srow) in seen.items():
        assert rows == [("user", "q%d [[json]] [[reply:a%d]]" % (i, i)),
                        ("assistant", "a%d" % i)]
        assert srow == [("done",)]


def test_session_row_counts_every_message(oagw, up):
    """The start of a run creates or marks the session row and counts its
    new messages in one statement, the end counts the reply in the row's
    end update: seqs stay contiguous across runs, message_count equals
    the rows, last_preview is the latest message, a failed run still
    records its prompt."""
    key = "agent:main:perf-count"
    hdr = {"x-openclaw-session-key": key}
    for i in range(3):
        r = post(oagw, "/v1/chat/completions",
                 chat("c%d [[json]] [[reply:r%d]]" % (i, i)), headers=hdr)
        assert r.status_code == 200, r.text
    rows = db_rows(oagw, "SELECT seq, role, text, session_id FROM "
                   "transcript WHERE session_key = ? ORDER BY seq", (key,))
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r[1] for r in rows] == ["user", "assistant"] * 3
    assert rows[5][2] == "r2"
    assert len({r[3] for r in rows}) == 1
    srow = db_rows(oagw, "SELECT message_count, last_preview, status, "
                   "session_id FROM sessions WHERE key = ?", (key,))
    assert srow == [(6, "r2", "done", rows[0][3])]
    # an upstream error: the prompt is counted, the row says failed
    r = post(oagw, "/v1/chat/completions", chat("boom [[status:500]]"),
             headers=hdr)
    assert r.status_code >= 400, r.text
    rows = db_rows(oagw, "SELECT seq, role, text FROM transcript WHERE "
                   "session_key = ? ORDER BY seq", (key,))
    assert rows[6][:2] == (7, "user")
    srow = db_rows(oagw, "SELECT message_count, status FROM sessions "
                   "WHERE key = ?", (key,))
    assert srow == [(len(rows), "failed")]


# ---- one session-key rule -----------------------------------------------------

BAD_KEYS = [("cron:x", "reserved"), ("agent:main:cron:x", "reserved"),
            ("Agent:Main:SubAgent:y", "reserved"), ("agent:main:", "invalid")]


@pytest.mark.parametrize("key,kind", BAD_KEYS)
def test_key_rule_openai_and_responses(oagw, up, key, kind):
    """x-openclaw-session-key follows the WS rule: reserved namespaces are
    refused after an agent:<id>: prefix too, before any upstream call."""
    for path, body in (("/v1/chat/completions", chat("hi")),
                       ("/v1/responses", {"model": "openclaw",
                                          "input": "hi"})):
        r = post(oagw, path, body, headers={"x-openclaw-session-key": key})
        assert r.status_code == 400, (path, r.text)
        assert kind in r.json()["error"]["message"], r.text
    assert up.snapshot()["chat"] == 0


@pytest.mark.parametrize("key,kind", BAD_KEYS)
def test_key_rule_tools_invoke(oagw, up, key, kind):
    r = post(oagw, "/tools/invoke", {"tool": "session_status",
                                     "sessionKey": key})
    assert r.status_code == 400, r.text
    assert kind in json.dumps(r.json())


def test_key_rule_ws(oagw, up):
    ws = oagw.connect(scopes=["operator.write"])
    for key, kind in BAD_KEYS:
        r = ws.request("chat.send", {"sessionKey": key, "message": "hi",
                                     "idempotencyKey": "k-" + key})
        assert r["ok"] is False, key
        assert kind in r["error"]["message"], r
    assert up.snapshot()["chat"] == 0


HOOK = "hook-secret-perf"


@pytest.fixture(scope="module")
def hookgw(tmp_root, upstream):
    from harness import Launcher
    from oahelp import oa_config
    lch = Launcher(tmp_root)
    gw = lch.start(config=oa_config(upstream, {"hooks": {
        "enabled": True, "token": HOOK, "allowRequestSessionKey": True}}))
    yield gw
    lch.cleanup()


@pytest.mark.parametrize("key,kind", BAD_KEYS)
def test_key_rule_hooks(hookgw, up, key, kind):
    for sub in ("/agent", "/wake"):
        body = {"message": "hi", "text": "hi", "sessionKey": key}
        r = hookgw.http("POST", "/hooks" + sub, json=body,
                        headers={"Authorization": "Bearer " + HOOK})
        assert r.status_code == 400, (sub, r.text)
        assert kind in r.text, (sub, r.text)
    assert up.snapshot()["chat"] == 0


# ---- run set-up caches ----------------------------------------------------------

def test_workspace_prompt_follows_edits(launcher, upstream):
    """The workspace prompt is cached, but an edited, added or removed
    file is seen by the next run."""
    from oahelp import oa_config
    upstream.reset()
    gw = launcher.start(config=oa_config(upstream))
    ws_dir = os.path.join(gw.state_dir, "workspace")
    os.makedirs(ws_dir, exist_ok=True)
    agents = os.path.join(ws_dir, "AGENTS.md")
    soul = os.path.join(ws_dir, "SOUL.md")

    def system_seen():
        r = post(gw, "/v1/chat/completions", chat("hi [[json]]"))
        assert r.status_code == 200, r.text
        msgs = upstream.snapshot()["requests"][-1]["messages"]
        return msgs[0]["content"] if msgs[0]["role"] == "system" else None

    assert system_seen() is None
    with open(agents, "w") as f:
        f.write("First rule.")
    assert system_seen() == "First rule."
    assert system_seen() == "First rule."
    with open(agents, "w") as f:
        f.write("Second, longer rule.")
    assert system_seen() == "Second, longer rule."
    with open(soul, "w") as f:
        f.write("Be brief.")
    assert system_seen() == "Second, longer rule.\n\nBe brief."
    os.unlink(agents)
    assert system_seen() == "Be brief."


# ---- a run nobody can see commits its start with its end --------------------

LONG = " ".join("w%d" % i for i in range(200)) + " [[delay:100]]"


def _open_stream(gw, text):
    """A raw streaming completion of a 20 s answer (200 words 100 ms
    apart); returns the socket once the role chunk arrived (the run is in
    flight). Closing it aborts the run at its next chunk."""
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    body = json.dumps(chat(text, stream=True)).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer T\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    got = b""
    while b'"role"' not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    return s


def _wait_rows(gw, sql, want, tries=400):
    """Poll (bounded) until the query returns want."""
    rows = None
    for _ in range(tries):
        rows = db_rows(gw, sql)
        if rows == want:
            return rows
        threading.Event().wait(0.025)
    return rows


@pytest.fixture
def holdgw(launcher, upstream):
    """A fresh gateway whose provider waits a minute between chunks."""
    from oahelp import oa_config
    upstream.reset()
    return launcher.start(config=oa_config(upstream, {"models": {
        "providers": {"fake": {"timeoutSeconds": 60}}}}))


def test_unseen_run_commits_start_with_end(holdgw, upstream):
    """A completion with a generated session key while no WS client is
    connected: its start (session row, user message, idempotency row) is
    written in the same store job as its end, so nothing is in the
    database while it runs; when the client leaves, the abort records
    the whole run (row killed, the prompt, the aborted result)."""
    s = _open_stream(holdgw, "unseen " + LONG)
    upstream.wait(lambda st: st["inflight"] == 1, timeout=8)
    assert db_rows(holdgw, "SELECT count(*) FROM sessions") == [(0,)]
    assert db_rows(holdgw, "SELECT count(*) FROM transcript") == [(0,)]
    s.close()
    assert _wait_rows(holdgw, "SELECT status FROM sessions",
                      [("killed",)]) == [("killed",)]
    rows = db_rows(holdgw, "SELECT role, text, status FROM transcript "
                   "ORDER BY seq")
    assert rows[0] == ("user", "unseen " + LONG, None)
    # the partial answer, recorded as aborted
    assert [r[0] for r in rows] == ["user", "assistant"]
    assert rows[1][1].startswith("echo: unseen") and rows[1][2] == "aborted"
    assert db_rows(holdgw, "SELECT status FROM idempotency") == \
        [("aborted",)]
    r = post(holdgw, "/v1/chat/completions", chat("after [[reply:fine]]"))
    assert r.status_code == 200, r.text
    assert len(db_rows(holdgw, "SELECT key FROM sessions")) == 2


def test_watched_run_start_committed_first(holdgw, upstream):
    """With a WS client connected (it could list sessions or get their
    events), a run's start is committed before its upstream answers: the
    row says running and holds the prompt while the run is in flight."""
    ws = holdgw.connect(scopes=["operator.read"])
    s = _open_stream(holdgw, "watched " + LONG)
    upstream.wait(lambda st: st["inflight"] == 1, timeout=8)
    assert _wait_rows(holdgw, "SELECT status FROM sessions",
                      [("running",)]) == [("running",)]
    assert db_rows(holdgw, "SELECT role, text FROM transcript") == \
        [("user", "watched " + LONG)]
    s.close()
    assert _wait_rows(holdgw, "SELECT status FROM sessions",
                      [("killed",)]) == [("killed",)]
    ws.close()


def test_unseen_run_rows_as_start_and_end(holdgw, upstream):
    """The one job of an unseen run leaves the rows the start and the end
    would have: the row done with the counts, tokens, model and preview,
    the prompt and the reply at seqs 1 and 2, the ok result kept for
    retries; the row and the prompt carry the run's start time."""
    r = post(holdgw, "/v1/chat/completions",
             chat("q1 [[usage:9,5]] [[reply:hello there]]"))
    assert r.status_code == 200, r.text
    srow = db_rows(holdgw, "SELECT key, status, message_count, "
                   "input_tokens, output_tokens, model, last_preview, "
                   "last_error, channel, created_at, updated_at, "
                   "session_id FROM sessions")
    assert len(srow) == 1
    (key, status, count, tin, tout, model, preview, err, channel, c_at,
     u_at, sid) = srow[0]
    assert key.startswith("agent:main:openai:")
    assert (status, count, tin, tout, preview, err) == \
        ("done", 2, 9, 5, "hello there", None)
    assert model.endswith("fake-model")
    assert c_at <= u_at
    rows = db_rows(holdgw, "SELECT seq, role, text, session_id, run_id, "
                   "status, input_tokens, output_tokens, created_at "
                   "FROM transcript ORDER BY seq")
    assert [x[:3] for x in rows] == [
        (1, "user", "q1 [[usage:9,5]] [[reply:hello there]]"),
        (2, "assistant", "hello there")]
    assert {x[3] for x in rows} == {sid}
    assert rows[0][4] == rows[1][4]
    assert rows[0][5:8] == (None, None, None)
    assert rows[1][5:7] == ("ok", 9) and rows[1][7] == 5
    assert rows[0][8] == c_at
    idem = db_rows(holdgw, "SELECT run_id, session_key, status, result, "
                   "created_at, ended_at FROM idempotency")
    assert len(idem) == 1
    assert idem[0][:3] == (rows[0][4], key, "ok")
    assert json.loads(idem[0][3])["text"] == "hello there"
    assert idem[0][4] == c_at and idem[0][5] >= idem[0][4]
