"""kill -9 at a random moment during config writes and during pairing
approvals: after a restart every acknowledged write is there (the file and
config_snapshots; paired_device), and SQLite's integrity_check is ok.
Trials: 3 + 2 (short), CLAWGATE_KILL_TRIALS or 200 (+ a quarter as many
pairing trials) in the full run."""

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


def _pairing_writer(gw, acked, stop):
    from pairing_util import REMOTE, Device, device_connect
    try:
        op = gw.connect()
        while not stop.is_set():
            dev = Device()
            ws, res = device_connect(gw, dev, headers=REMOTE)
            rid = res["error"]["details"]["requestId"]
            ws.close()
            out = op.request("device.pair.approve", {"requestId": rid},
                             timeout=5)
            if not out.get("ok"):
                break
            acked.append(dev.id)
    except Exception:
        pass


def test_kill9_during_pairing_approvals(launcher):
    """kill -9 while devices are being approved: every approval that was
    acknowledged is a paired device after the restart."""
    trials = max(1, TRIALS // 4) if FULL else 2
    rnd = random.Random(int(os.environ.get("CLAWGATE_KILL_SEED") or 2))
    gw = launcher.start()
    state = gw.state_dir
    acked, restarts_failed = [], 0
    for _ in range(trials):
        stop = threading.Event()
        t = threading.Thread(target=_pairing_writer, args=(gw, acked, stop))
        t.start()
        time.sleep(rnd.uniform(0.05, 0.6))
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(10)
        stop.set()
        t.join(10)
        gw = launcher.start(state_dir=state)
        if gw.proc.poll() is not None:
            restarts_failed += 1
    gw.stop()
    db = os.path.join(state, "state", "clawgate.sqlite")
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        paired = {r[0] for r in con.execute(
            "SELECT device_id FROM paired_device")}
    finally:
        con.close()
    lost = len([d for d in acked if d not in paired])
    figure("kill9_pairing_trials", trials)
    figure("kill9_pairing_acked_approvals", len(acked))
    figure("kill9_pairing_lost", lost)
    assert ok == "ok"
    assert lost == 0
    assert restarts_failed == 0
