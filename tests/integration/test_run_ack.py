"""Acknowledged means committed: a run whose transcript rows the store
could not write is answered as an error, never as the reply that was not
stored. The fault is real: a trigger in the gateway's own SQLite file
refuses the rows (as a full disk or an I/O error would refuse them)."""

import sqlite3

from chathelp import new_key, run_events
from oahelp import oagw, post, chat, up, upstream  # noqa: F401
from pairing_util import db_path
from harness import clawgate_only

pytestmark = clawgate_only("needs the fake upstream wired in the config")


def _refuse(gw, name, when):
    db = sqlite3.connect(db_path(gw), timeout=30)
    try:
        db.execute("CREATE TRIGGER IF NOT EXISTS %s BEFORE INSERT ON "
                   "transcript WHEN %s BEGIN SELECT RAISE(ABORT, "
                   "'refused by the test'); END" % (name, when))
        db.commit()
    finally:
        db.close()


def _rows(gw, like):
    db = sqlite3.connect("file:%s?mode=ro" % db_path(gw), uri=True,
                         timeout=30)
    try:
        return db.execute("SELECT role FROM transcript WHERE text LIKE ?",
                          ("%" + like + "%",)).fetchall()
    finally:
        db.close()


def test_refused_start_is_an_error(oagw, up):
    """The user's row is refused: nothing is stored and the caller gets
    a 500, not the upstream's reply."""
    _refuse(oagw, "refuse_user", "NEW.text LIKE '%refuse-user-row%'")
    r = post(oagw, "/v1/chat/completions", chat("refuse-user-row"))
    assert r.status_code == 500, r.text
    assert "transcript write failed" in r.json()["error"]["message"]
    assert _rows(oagw, "refuse-user-row") == []
    # The same gateway still answers (and stores) other runs.
    ok = post(oagw, "/v1/chat/completions", chat("stored fine"))
    assert ok.status_code == 200, ok.text
    assert sorted(_rows(oagw, "stored fine")) == [("assistant",),
                                                  ("user",)]


def test_refused_end_is_an_error(oagw, up):
    """The start is stored (a session key of the caller's: not deferred),
    the assistant's row is refused: 500, and only the user's row."""
    _refuse(oagw, "refuse_reply",
            "NEW.role = 'assistant' AND NEW.text LIKE '%refused-reply%'")
    r = post(oagw, "/v1/chat/completions",
             chat("[[reply:refused-reply]] ask"),
             headers={"x-openclaw-session-key": "ack-" + new_key()})
    assert r.status_code == 500, r.text
    assert "transcript write failed" in r.json()["error"]["message"]
    assert _rows(oagw, "refused-reply") == [("user",)]


def test_refused_end_over_ws_is_an_error_event(oagw, up):
    """chat.send: the run's chat event is state error, never final."""
    _refuse(oagw, "refuse_ws",
            "NEW.role = 'assistant' AND NEW.text LIKE '%refused-ws%'")
    ws = oagw.connect()
    idem = new_key()
    rid = ws.send_req("chat.send", {"sessionKey": "ack-ws",
                                    "message": "[[reply:refused-ws]] hi",
                                    "idempotencyKey": idem})
    assert ws.wait_res(rid)["ok"]
    end = run_events(ws, idem, timeout=15)[-1]
    assert end["state"] == "error", end
    assert "transcript write failed" in end.get("errorMessage", ""), end
    assert _rows(oagw, "refused-ws") == [("user",)]
