"""kill -9 during a steady write load with small WAL bounds (issue 11):
the checkpointer copies the WAL in batches, copies what a round left
behind when the writer goes quiet, and the writer checkpoints past the hard
bound; none of that may lose an acknowledged run. Every completion the
gateway answered before SIGKILL has its reply in the transcript after a
restart, and the file passes integrity_check."""

import os
import signal
import sqlite3
import threading
import time

from harness import Launcher, clawgate_only
from oahelp import chat, oa_config, post, upstream  # noqa: F401

pytestmark = clawgate_only("store checkpoint figures")

SOFT, HARD = 16, 160    # batches of 36 pages, forced checkpoints often
THREADS = 4
ACKED_BEFORE_KILL = 120


def store_wal(gw):
    with gw.connect(scopes=["operator.read"]) as c:
        return c.call("status")["gateway"]["store"]["wal"]


def test_kill9_keeps_every_acknowledged_run(tmp_root, upstream):  # noqa: F811
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=oa_config(upstream),
                       env={"CLAWGATE_STORE_WAL_PAGES": "%d:%d" % (SOFT,
                                                                   HARD)})
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(t):
            i = 0
            while not stop.is_set():
                text = "kill9-%d-%d" % (t, i)
                body = chat("%s [[reply:%s]]" % (text, text))
                if t % 2:    # a caller's session: start and end commits
                    body["user"] = "kill9-user-%d" % t
                try:
                    r = post(gw, "/v1/chat/completions", body, timeout=10)
                except Exception:   # the daemon was killed under it
                    return
                if r.status_code == 200:
                    assert r.json()["choices"][0]["message"]["content"] \
                        == text
                    with lock:
                        acked.append(text)
                i += 1

        threads = [threading.Thread(target=load, args=(t,), daemon=True)
                   for t in range(THREADS)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 120
        while True:
            with lock:
                n = len(acked)
            wal = store_wal(gw)
            if (n >= ACKED_BEFORE_KILL and wal["checkpoints"] >= 1 and
                    wal["resets"] >= 1) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert n >= ACKED_BEFORE_KILL, n
        # the changed paths ran: checkpointer batches, WAL rewinds
        assert wal["checkpoints"] >= 1 and wal["resets"] >= 1, wal
        os.killpg(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(10)
        stop.set()
        for th in threads:
            th.join(20)
        with lock:
            done = list(acked)

        gw2 = lch.start(state_dir=gw.state_dir, port=gw.port)
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
            gw2.state_dir, "state", "clawgate.sqlite"), uri=True,
            timeout=10)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            texts = {r[0] for r in db.execute(
                "SELECT text FROM transcript WHERE role = 'assistant'")}
            prompts = db.execute("SELECT count(*) FROM transcript "
                                 "WHERE role = 'user'").fetchone()[0]
            # runs cut by the kill were marked failed at the restart
            running = db.execute("SELECT count(*) FROM idempotency WHERE "
                                 "status = 'running'").fetchone()[0]
            idem = db.execute("SELECT count(*) FROM idempotency"
                              ).fetchone()[0]
        finally:
            db.close()
        missing = [t for t in done if t not in texts]
        assert not missing, (len(missing), len(done), missing[:5])
        assert prompts >= len(done)
        assert running == 0
        assert idem >= len(done)
        # and the restarted gateway keeps answering and writing
        r = post(gw2, "/v1/chat/completions", chat("after [[reply:after]]"))
        assert r.status_code == 200, r.text
    finally:
        lch.cleanup()
