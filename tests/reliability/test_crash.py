"""kill -9 at a random moment during config writes, pairing approvals,
device-token rotations (and the tokens approvals issue) and transcript
appends (OpenAI HTTP, streamed and not, and WS chat.send): after a restart
every acknowledged write is there (the file and config_snapshots;
paired_device; device_token; sessions and transcript), and SQLite's
integrity_check of the file the kill left is ok after every trial.
Trials: 3 + 2 + 3 + 3 (short); in the full run CLAWGATE_KILL_TRIALS
(default 1,000) in all, shared 20 % config, 5 % pairing, 37.5 % token
rotation, 37.5 % transcript."""

import hashlib
import json
import os
import random
import signal
import sqlite3
import threading
import time

from pairing_util import REMOTE, Device, device_connect
from relhelp import FULL, figure

TOTAL = int(os.environ.get("CLAWGATE_KILL_TRIALS") or 1000)


def _share(short, part):
    """Trials of one kind: short in make check, part/1000 of the total
    in the full run (at least 1)."""
    return max(1, TOTAL * part // 1000) if FULL else short


TOTALS = {"trials": 0, "acked": 0, "lost": 0, "integrity": 0}


def _report(kind, trials, acked, lost, bad_db, **extra):
    """The figures of one kind: trials, acknowledged writes, lost,
    integrity failures (then extra ones), and one summary line."""
    figure("kill9_%s_trials" % kind, trials)
    figure("kill9_%s_acked_writes" % kind, acked)
    figure("kill9_%s_lost" % kind, lost)
    figure("kill9_%s_integrity_failures" % kind, bad_db)
    for k, v in extra.items():
        figure("kill9_%s_%s" % (kind, k), v)
    print("KILL9 %s: %d trials, %d acknowledged writes, %d lost, %d "
          "integrity failures" % (kind, trials, acked, lost, bad_db))
    for k, v in (("trials", trials), ("acked", acked), ("lost", lost),
                 ("integrity", bad_db)):
        TOTALS[k] += v


def teardown_module(module):
    if TOTALS["trials"]:
        figure("kill9_total_trials", TOTALS["trials"])
        figure("kill9_total_acked_writes", TOTALS["acked"])
        figure("kill9_total_lost", TOTALS["lost"])
        figure("kill9_total_integrity_failures", TOTALS["integrity"])


# ---- one trial -------------------------------------------------------------

class _Acks:
    """A count of acknowledged writes that the kill can wait on."""

    def __init__(self):
        self.cv = threading.Condition()
        self.n = 0

    def add(self):
        with self.cv:
            self.n += 1
            self.cv.notify_all()

    def wait(self, n, timeout):
        with self.cv:
            return self.cv.wait_for(lambda: self.n >= n, timeout)


def _db(state):
    return os.path.join(state, "state", "clawgate.sqlite")


def _ro(state):
    return sqlite3.connect("file:%s?mode=ro" % _db(state), uri=True,
                           timeout=5)


def _integrity_ok(state):
    """PRAGMA integrity_check of the file as the kill left it."""
    con = _ro(state)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def _kill_trial(launcher, gw, rnd, workers, start_kw, after_kill=None):
    """One trial: start the worker threads (fn(gw, acks, stop)), kill -9
    once a random number (0-8) of writes were acknowledged plus a random
    jitter, join them, check the file the kill left (integrity_check,
    then after_kill(state)) and restart on the same state. Returns (new
    gw, acknowledged this trial, integrity ok, restart ok)."""
    acks, stop = _Acks(), threading.Event()
    ts = [threading.Thread(target=w, args=(gw, acks, stop))
          for w in workers]
    for t in ts:
        t.start()
    acks.wait(rnd.randint(0, 8), 10)
    time.sleep(rnd.uniform(0, 0.03))   # the kill moment, not a sync
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait(10)
    stop.set()
    for t in ts:
        t.join(15)
    ok = _integrity_ok(gw.state_dir)
    state = gw.state_dir
    if after_kill:
        after_kill(state)
    gw = launcher.start(state_dir=state, **start_kw)
    return gw, acks.n, ok, gw.proc.poll() is None


# ---- config writes ---------------------------------------------------------

def _config(k):
    return {"gateway": {"mode": "local", "reload": {"debounceMs": 50},
                        "auth": {"mode": "token", "token": "tok-1",
                                 "rateLimit": {"maxAttempts": k}}}}


def _writer(acked):
    """config.patch of maxAttempts k+1, k+2, ... (the last acknowledged
    value is acked[-1])."""
    def run(gw, acks, stop):
        try:
            c = gw.connect(token="tok-1")
            k = acked[-1]
            while not stop.is_set() and k < 1000000:
                got = c.call("config.get")
                k += 1
                res = c.request("config.patch", {
                    "raw": json.dumps({"gateway": {"auth": {"rateLimit": {
                        "maxAttempts": k}}}}),
                    "baseHash": got["hash"]}, timeout=5)
                if not res.get("ok"):
                    break
                acked.append(k)
                acks.add()
        except Exception:
            pass
    return run


def _snapshots(state):
    """The maxAttempts values in config_snapshots."""
    con = _ro(state)
    try:
        vals = set()
        for (text,) in con.execute("SELECT text FROM config_snapshots "
                                   "WHERE text IS NOT NULL"):
            g = json.loads(text).get("gateway", {})
            v = g.get("auth", {}).get("rateLimit", {}).get("maxAttempts")
            if v is not None:
                vals.add(v)
        return vals
    finally:
        con.close()


def test_kill9_during_config_writes(launcher):
    """kill -9 while config.patch writes: the file holds the last
    acknowledged value (or the one in flight), config_snapshots every
    acknowledged one."""
    trials = _share(3, 200)
    rnd = random.Random(int(os.environ.get("CLAWGATE_KILL_SEED") or 1))
    kw = {"token": None, "auth": None}
    gw = launcher.start(config={"gateway": _config(1)["gateway"]}, **kw)
    acked, lost, bad_db, restarts_failed = [1], 0, 0, 0

    def on_disk(state):
        nonlocal lost
        with open(os.path.join(state, "openclaw.json")) as f:
            got = json.load(f)["gateway"]["auth"]["rateLimit"][
                "maxAttempts"]
        # the last acknowledged value, or the one in flight at the kill
        if got not in (acked[-1], acked[-1] + 1):
            lost += 1
        if got != acked[-1]:
            acked.append(got)   # the next writer continues from it
            unacked.append(got)

    unacked = []
    for _ in range(trials):
        gw, n, ok, up = _kill_trial(launcher, gw, rnd, [_writer(acked)],
                                    kw, on_disk)
        bad_db += not ok
        restarts_failed += not up
    snaps = _snapshots(gw.state_dir)
    gw.stop()
    lost += len([k for k in acked[1:] if k not in snaps and
                 k not in unacked])
    _report("config", trials, len(acked) - 1 - len(unacked), lost, bad_db,
            cut_committed=len(unacked))
    assert bad_db == 0
    assert lost == 0
    assert restarts_failed == 0


# ---- pairing approvals -----------------------------------------------------

def _pairing_writer(acked):
    def run(gw, acks, stop):
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
                acks.add()
        except Exception:
            pass
    return run


def test_kill9_during_pairing_approvals(launcher):
    """kill -9 while devices are being approved: every approval that was
    acknowledged is a paired device after the restart."""
    trials = _share(2, 50)
    rnd = random.Random(int(os.environ.get("CLAWGATE_KILL_SEED") or 2))
    gw = launcher.start()
    acked, restarts_failed, bad_db = [], 0, 0
    for _ in range(trials):
        gw, n, ok, up = _kill_trial(launcher, gw, rnd,
                                    [_pairing_writer(acked)], {})
        bad_db += not ok
        restarts_failed += not up
    con = _ro(gw.state_dir)
    try:
        paired = {r[0] for r in con.execute(
            "SELECT device_id FROM paired_device")}
    finally:
        con.close()
    gw.stop()
    lost = len([d for d in acked if d not in paired])
    _report("pairing", trials, len(acked), lost, bad_db)
    assert bad_db == 0
    assert lost == 0
    assert restarts_failed == 0


# ---- device-token rotation and tokens issued by approvals ------------------

ROT_SCOPES = ["operator.read", "operator.pairing"]
ROT_DEVICES = 2


def _sha(tok):
    return hashlib.sha256(tok.encode()).hexdigest()


class _RotDev:
    """A paired device and the tokens it was acknowledged, in order."""

    def __init__(self):
        self.dev = Device()
        self.tokens = []
        self.inflight = False


def _pair(gw, op, dev):
    """Pair dev (operator approval); returns the token of its first
    connect (hello-ok.auth.deviceToken)."""
    ws, res = device_connect(gw, dev, headers=REMOTE, scopes=ROT_SCOPES)
    rid = res["error"]["details"]["requestId"]
    ws.close()
    out = op.request("device.pair.approve", {"requestId": rid}, timeout=5)
    if not out.get("ok"):
        return None
    ws, res = device_connect(gw, dev, headers=REMOTE, scopes=ROT_SCOPES)
    ws.close()
    if not res.get("ok"):
        return None
    return res["payload"]["auth"]["deviceToken"]


def _mismatch(res):
    err = res.get("error") or {}
    return (err.get("details") or {}).get("code") == \
        "AUTH_DEVICE_TOKEN_MISMATCH"


def _rotator(rd, refused):
    """The device connects with its last token and rotates it, again and
    again; a refused last token while the daemon runs is a loss."""
    def run(gw, acks, stop):
        try:
            while not stop.is_set():
                ws, res = device_connect(
                    gw, rd.dev, headers=REMOTE, scopes=ROT_SCOPES,
                    auth={"deviceToken": rd.tokens[-1]})
                if not res.get("ok"):
                    if _mismatch(res):
                        refused.append(rd.dev.id)
                    ws.close()
                    return
                rd.inflight = True
                out = ws.request("device.token.rotate", {
                    "deviceId": rd.dev.id, "role": "operator"}, timeout=5)
                ws.close()
                if not out.get("ok"):
                    return
                rd.tokens.append(out["payload"]["token"])
                rd.inflight = False
                acks.add()
        except Exception:
            pass
    return run


def _issuer(issued):
    """New devices approved by an operator; the token of each one's
    first connect is an acknowledged write."""
    def run(gw, acks, stop):
        try:
            op = gw.connect()
            while not stop.is_set():
                dev = Device()
                tok = _pair(gw, op, dev)
                if tok is None:
                    return
                issued.append((dev, tok))
                acks.add()
        except Exception:
            pass
    return run


def _token_row(gw, dev_id):
    con = _ro(gw.state_dir)
    try:
        r = con.execute("SELECT token_hash FROM device_token WHERE "
                        "device_id = ? AND role = 'operator' AND "
                        "revoked_at IS NULL", (dev_id,)).fetchone()
        return r[0] if r else None
    finally:
        con.close()


def _token_connects(gw, dev, tok):
    ws, res = device_connect(gw, dev, headers=REMOTE, scopes=ROT_SCOPES,
                             auth={"deviceToken": tok})
    ws.close()
    return res


def _rotate_shared(gw, rd):
    """The device, connected by the shared secret, rotates its token and
    receives the new one in-band (tokens are stored hashed, so this is
    how a device whose token it no longer knows gets one)."""
    ws, res = device_connect(gw, rd.dev, headers=REMOTE, scopes=ROT_SCOPES)
    assert res.get("ok"), res
    out = ws.request("device.token.rotate", {"deviceId": rd.dev.id,
                                             "role": "operator"}, timeout=5)
    ws.close()
    assert out.get("ok"), out
    rd.tokens.append(out["payload"]["token"])


def _check_rotated(gw, rd, cut):
    """After a restart: (lost, stale) of one rotating device; cut counts
    [rotations in flight at the kill, of which committed]. The last
    acknowledged token is in effect, or a rotation in flight at the kill
    (never answered) replaced it; the token before is refused."""
    lost = stale = 0
    have = _token_row(gw, rd.dev.id)
    last = rd.tokens[-1]
    cut[0] += rd.inflight
    cut[1] += rd.inflight and have != _sha(last)
    if have != _sha(last):
        if not (rd.inflight and have is not None and
                have not in {_sha(t) for t in rd.tokens}):
            lost += 1
        res = _token_connects(gw, rd.dev, last)
        if res.get("ok") or not _mismatch(res):
            stale += 1
        _rotate_shared(gw, rd)
        if _token_row(gw, rd.dev.id) != _sha(rd.tokens[-1]):
            lost += 1
    elif len(rd.tokens) > 1:
        res = _token_connects(gw, rd.dev, rd.tokens[-2])
        if res.get("ok") or not _mismatch(res):
            stale += 1
    rd.inflight = False
    if not _token_connects(gw, rd.dev, rd.tokens[-1]).get("ok"):
        lost += 1
    return lost, stale


def test_kill9_during_token_rotation(launcher):
    """kill -9 while paired devices rotate their own tokens and new
    devices are approved: after the restart each device's last
    acknowledged token authenticates a connect (or a rotation the kill
    cut before its answer replaced it), the token before it is refused,
    every token an approval issued works, and integrity_check is ok."""
    trials = _share(3, 375)
    rnd = random.Random(int(os.environ.get("CLAWGATE_KILL_SEED") or 3))
    cfg = {"gateway": {"mode": "local", "auth": {
        "rateLimit": {"maxAttempts": 1000000}}}}
    gw = launcher.start(config=cfg)
    op = gw.connect()
    devs = [_RotDev() for _ in range(ROT_DEVICES)]
    for rd in devs:
        rd.tokens.append(_pair(gw, op, rd.dev))
        assert rd.tokens[0]
    op.close()
    acked = lost = stale = bad_db = restarts_failed = 0
    refused, issued, checked, cut = [], [], 0, [0, 0]
    for _ in range(trials):
        workers = [_rotator(rd, refused) for rd in devs] + \
            [_issuer(issued)]
        gw, n, ok, up = _kill_trial(launcher, gw, rnd, workers, {})
        acked += n
        bad_db += not ok
        restarts_failed += not up
        for rd in devs:
            lo, st = _check_rotated(gw, rd, cut)
            lost += lo
            stale += st
        for dev, tok in issued[checked:]:
            if not _token_connects(gw, dev, tok).get("ok"):
                lost += 1
        checked = len(issued)
    con = _ro(gw.state_dir)
    try:
        hashes = {r[0]: r[1] for r in con.execute(
            "SELECT device_id, token_hash FROM device_token WHERE "
            "role = 'operator' AND revoked_at IS NULL")}
    finally:
        con.close()
    gw.stop()
    lost += len([d for d, tok in issued if hashes.get(d.id) != _sha(tok)])
    lost += len(refused)
    _report("token", trials, acked, lost, bad_db,
            rotations_acked=acked - len(issued), issued_acked=len(issued),
            rotations_cut=cut[0], rotations_cut_committed=cut[1],
            stale_accepted=stale)
    assert bad_db == 0
    assert lost == 0
    assert stale == 0
    assert restarts_failed == 0


# ---- transcript appends ----------------------------------------------------

def _http_chat(key, text, stream):
    """(body, headers) of one turn on session key."""
    return {"model": "openclaw", "stream": stream,
            "messages": [{"role": "user", "content": text}]}, \
        {"Authorization": "Bearer T", "x-openclaw-session-key": key}


def _oa_worker(tag, stream, acked, sent):
    """Sequential /v1/chat/completions on one session: a complete 200
    answer (the JSON, or the stream to its [DONE]) is acknowledged."""
    def run(gw, acks, stop):
        key = "agent:main:k9-%s-%s" % (tag, gw.port)
        i = 0
        try:
            while not stop.is_set():
                i += 1
                text = "%s-%d" % (tag, i)
                body, hdr = _http_chat(key, text, stream)
                sent.append(text)
                r = gw.http("POST", "/v1/chat/completions", json=body,
                            headers=hdr, stream=stream, timeout=10)
                if r.status_code != 200:
                    return
                if stream:
                    reply, done = "", False
                    for ln in r.iter_lines():
                        if not ln.startswith(b"data: "):
                            continue
                        if ln == b"data: [DONE]":
                            done = True
                            break
                        for ch in json.loads(ln[6:])["choices"]:
                            reply += ch.get("delta", {}).get(
                                "content") or ""
                    r.close()
                    if not done:
                        return
                else:
                    reply = r.json()["choices"][0]["message"]["content"]
                acked.append((key, text, reply))
                acks.add()
        except Exception:
            pass
    return run


def _ws_worker(tag, acked, sent):
    """Sequential WS chat.send on one session: the run's `chat` final
    event is the acknowledgement."""
    def run(gw, acks, stop):
        i = 0
        try:
            ws = gw.connect()
            while not stop.is_set():
                i += 1
                text = "%s-%d" % (tag, i)
                rid = "k9-%s-%d-%d" % (tag, gw.port, i)
                sent.append(text)
                res = ws.request("chat.send", {
                    "sessionKey": "k9-%s-%d" % (tag, gw.port),
                    "message": text, "idempotencyKey": rid}, timeout=10)
                if not res.get("ok"):
                    return
                while True:
                    ev = ws.wait_event("chat", timeout=10, pred=lambda f:
                                       f["payload"]["runId"] == rid)
                    p = ev["payload"]
                    if p["state"] in ("final", "aborted", "error"):
                        break
                if p["state"] != "final":
                    return
                reply = p["message"]["content"][0]["text"]
                acked.append((p["sessionKey"], text, reply))
                acks.add()
        except Exception:
            pass
    return run


def _check_transcript(state, acked):
    """(integrity ok, lost, inconsistent sessions) of the killed file:
    each acknowledged turn has its session row and its user and
    assistant transcript rows; each touched session row counts exactly
    its transcript rows."""
    con = _ro(state)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        lost = 0
        for key, text, reply in acked:
            rows = con.execute(
                "SELECT role FROM transcript WHERE session_key = ? AND "
                "((role = 'user' AND text = ?) OR (role = 'assistant' "
                "AND text = ?))", (key, text, reply)).fetchall()
            srow = con.execute("SELECT 1 FROM sessions WHERE key = ?",
                               (key,)).fetchone()
            if sorted(r[0] for r in rows) != ["assistant", "user"] or \
                    not srow:
                lost += 1
        bad = 0
        for (key,) in {(k,) for k, _, _ in acked}:
            n, cnt = con.execute(
                "SELECT (SELECT count(*) FROM transcript WHERE "
                "session_key = ?1), message_count FROM sessions WHERE "
                "key = ?1", (key,)).fetchone() or (0, -1)
            bad += n != cnt
        return ok, lost, bad
    finally:
        con.close()


def test_kill9_during_transcript_appends(launcher):
    """kill -9 while OpenAI requests (streamed and not) and WS chat.send
    runs append to transcripts through the store's group commit: every
    answered turn (a complete 200, a stream to [DONE], a `chat` final
    event) has its session row and both transcript rows after the
    restart, the rows agree with message_count, and integrity_check of
    the file the kill left is ok."""
    from fakeupstream import FakeUpstream
    from oahelp import oa_config
    trials = _share(3, 375)
    rnd = random.Random(int(os.environ.get("CLAWGATE_KILL_SEED") or 4))
    up = FakeUpstream(api_key="sk-fake").start()
    try:
        gw = launcher.start(config=oa_config(up))
        acked, total, lost, bad_rows, bad_db, cut = [], 0, 0, 0, 0, 0
        restarts_failed = 0
        kinds = {"h": 0, "s": 0, "w": 0}
        for trial in range(trials):
            acked = []
            sent = []
            workers = [_oa_worker("h%d-a" % trial, False, acked, sent),
                       _oa_worker("h%d-b" % trial, False, acked, sent),
                       _oa_worker("s%d" % trial, True, acked, sent),
                       _ws_worker("w%d" % trial, acked, sent)]
            state = gw.state_dir
            gw, n, ok, alive = _kill_trial(launcher, gw, rnd, workers, {})
            ok2, lo, bad = _check_transcript(state, acked)
            for k, _, _ in acked:
                kinds[k.split("k9-")[1][0]] += 1
            total += len(acked)
            cut += len(sent) - len(acked)
            lost += lo
            bad_rows += bad
            bad_db += not (ok and ok2)
            restarts_failed += not alive
        gw.stop()
    finally:
        up.stop()
    _report("transcript", trials, total, lost, bad_db,
            acked_http=kinds["h"], acked_http_stream=kinds["s"],
            acked_ws=kinds["w"], cut_turns=cut, count_mismatch=bad_rows)
    assert bad_db == 0
    assert lost == 0
    assert bad_rows == 0
    assert restarts_failed == 0
