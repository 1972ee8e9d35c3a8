"""kill -9 at a random moment during config writes: after a restart every
acknowledged write is in the file and in config_snapshots, and SQLite's
integrity_check is ok. Trials: 3 (short), CLAWGATE_KILL_TRIALS or 200
(full)."""

import json
import os
import random
import signal
import sqlite3
import threading
import time

from relhelp import FULL, figure

TRIALS = int(os.environ.get("CLAWGATE_KILL_TRIALS") or
             (200 if FULL else 3))


def _config(k):
    return {"gateway": {"mode": "local", "reload": {"debounceMs": 50},
                        "auth": {"mode": "token", "token": "tok-1",
                                 "rateLimit": {"maxAttempts": k}}}}


def _writer(gw, acked, stop):
    try:
        c = gw.connect(token="tok-1")
        k = acked[-1] if acked else 1
        while not stop.is_set() and k < 1000:
            got = c.call("config.get")
            k += 1
            res = c.request("config.patch", {
                "raw": json.dumps({"gateway": {"auth": {"rateLimit": {
                    "maxAttempts": k}}}}),
                "baseHash": got["hash"]}, timeout=5)
            if not res.get("ok"):
                break
            acked.append(k)
    except Exception:
        pass


def _integrity(db):
    """(integrity_check, set of maxAttempts values in config_snapshots)."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        vals = set()
        for (text,) in con.execute("SELECT text FROM config_snapshots "
                                   "WHERE text IS NOT NULL"):
            g = json.loads(text).get("gateway", {})
            v = g.get("auth", {}).get("rateLimit", {}).get("maxAttempts")
            if v is not None:
                vals.add(v)
        return ok, vals
    finally:
        con.close()


def test_kill9_during_config_writes(launcher):
    rnd = random.Random(int(os.environ.get("CLAWGATE_KILL_SEED") or 1))
    gw = launcher.start(config={"gateway": _config(1)["gateway"]},
                        token=None, auth=None)
    state = gw.state_dir
    total_acked, lost, restarts_failed = 0, 0, 0
    last = 1
    all_acked = []
    for trial in range(TRIALS):
        acked = [last]
        stop = threading.Event()
        t = threading.Thread(target=_writer, args=(gw, acked, stop))
        t.start()
        time.sleep(rnd.uniform(0.02, 0.6))
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(10)
        stop.set()
        t.join(10)
        total_acked += len(acked) - 1
        all_acked += acked[1:]
        last = acked[-1]
        on_disk = json.load(open(gw.config_path))
        got = on_disk["gateway"]["auth"]["rateLimit"]["maxAttempts"]
        # the last acknowledged value, or the one in flight at the kill
        if got not in (last, last + 1):
            lost += 1
        last = got
        gw = launcher.start(state_dir=state, token=None, auth=None)
        if gw.proc.poll() is not None:
            restarts_failed += 1
    gw.stop()
    db = os.path.join(state, "state", "clawgate.sqlite")
    ok, snaps = _integrity(db)
    lost += len([k for k in all_acked if k not in snaps])
    figure("kill9_config_trials", TRIALS)
    figure("kill9_config_acked_writes", total_acked)
    figure("kill9_config_lost", lost)
    assert ok == "ok"
    assert lost == 0
    assert restarts_failed == 0
