"""Automations (issue 12): the cron.* methods over the wire against the
scripted fake upstream, a due one-shot job firing on its own, durability
across kill -9 (interrupted run, overdue job runs once at start-up), and
the scheduler's limits. Every received frame is schema-validated (cron.add,
cron.get and cron.update results, CRON_JOB_NOT_FOUND details)."""

import datetime
import hashlib
import json
import os
import signal
import sqlite3
import time

import pytest

from chathelp import cgw, up, upstream  # noqa: F401
from chathelp import chat_config
from gwschema import FrameValidator, locate
from harness import Launcher, clawgate_only

pytestmark = clawgate_only("needs the fake upstream wired in the config")

_FV = FrameValidator(locate())


def check_entry(e):
    _FV.check("cron run entry", "#/definitions/CronRunLogEntry", e)


def iso_in(ms):
    t = datetime.datetime.now(datetime.timezone.utc) + \
        datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (
        t.microsecond // 1000)


def job_params(message="hello from cron", **kw):
    p = {"name": kw.pop("name", "test job"),
         "schedule": kw.pop("schedule", {"kind": "cron",
                                         "expr": "7 9 1 1 *",
                                         "tz": "Europe/Berlin"}),
         "sessionTarget": kw.pop("sessionTarget", "isolated"),
         "wakeMode": "now",
         "payload": kw.pop("payload", {"kind": "agentTurn",
                                       "message": message}),
         "delivery": kw.pop("delivery", {"mode": "none"})}
    p.update(kw)
    return p


def wait_cron(ws, action, job_id=None, run_id=None, timeout=15):
    def pred(f):
        p = f["payload"]
        return p.get("action") == action and \
            (job_id is None or p.get("jobId") == job_id) and \
            (run_id is None or p.get("runId") == run_id)
    return ws.wait_event("cron", timeout=timeout, pred=pred)["payload"]


def test_add_list_get_update_remove(cgw, up):
    ws = cgw.connect()
    job = ws.call("cron.add", job_params(name="crud"))
    jid = job["id"]
    assert job["enabled"] is True and job["name"] == "crud"
    assert job["schedule"] == {"kind": "cron", "expr": "7 9 1 1 *",
                               "tz": "Europe/Berlin"}
    # next 1 January 09:07 in Berlin (CET, UTC+1) = 08:07Z
    nxt = datetime.datetime.fromtimestamp(
        job["state"]["nextRunAtMs"] / 1000, datetime.timezone.utc)
    assert (nxt.month, nxt.day, nxt.hour, nxt.minute, nxt.second) == \
        (1, 1, 8, 7, 0)
    ev = wait_cron(ws, "added", jid)
    assert ev["job"]["id"] == jid

    lst = ws.call("cron.list", {})
    assert jid in [j["id"] for j in lst["jobs"]]
    assert lst["total"] >= 1 and lst["hasMore"] is False
    row = [j for j in lst["jobs"] if j["id"] == jid][0]
    assert row["effectiveAgentId"] == "main"
    assert ws.call("cron.get", {"id": jid}) == job
    assert isinstance(lst["snapshotRevision"], str) and \
        lst["snapshotRevision"]
    # the Control UI's compact rows
    comp = ws.call("cron.list", {"compact": True, "limit": 200})
    crow = [j for j in comp["jobs"] if j["id"] == jid][0]
    assert crow["nextRunAtMs"] == job["state"]["nextRunAtMs"]
    assert crow["nextRunAt"].endswith("Z") and crow["lastRunAtMs"] is None
    assert crow["lastRunStatus"] is None and crow["scheduleKind"] == "cron"
    assert "payload" not in crow
    st = ws.call("cron.status", {})
    assert st["enabled"] is True and st["storage"] == "sqlite"
    assert st["jobs"] >= 1 and isinstance(st["nextWakeAtMs"], int)

    upd = ws.call("cron.update", {"id": jid, "patch": {
        "name": "crud renamed", "enabled": False,
        "payload": {"kind": "agentTurn", "model": "fake/fake-model"}}})
    assert upd["name"] == "crud renamed" and upd["enabled"] is False
    assert upd["payload"] == {"kind": "agentTurn",
                              "message": "hello from cron",
                              "model": "fake/fake-model"}
    assert "nextRunAtMs" not in upd["state"]
    assert wait_cron(ws, "updated", jid)["job"]["enabled"] is False
    assert jid not in [j["id"] for j in ws.call("cron.list", {})["jobs"]]
    assert jid in [j["id"] for j in
                   ws.call("cron.list", {"includeDisabled": True})["jobs"]]
    assert jid in [j["id"] for j in
                   ws.call("cron.list", {"enabled": "disabled"})["jobs"]]

    rm = ws.call("cron.remove", {"id": jid})
    assert rm == {"ok": True, "removed": True}
    wait_cron(ws, "removed", jid)
    res = ws.request("cron.get", {"id": jid})
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["details"] == {"code": "CRON_JOB_NOT_FOUND",
                                       "jobId": jid}
    res = ws.request("cron.remove", {"id": jid})
    assert res["error"]["details"]["code"] == "CRON_JOB_NOT_FOUND"


def test_run_now_reaches_the_model(cgw, up):
    ws = cgw.connect()
    up.push(reply="cron says hi", usage=[11, 4])
    job = ws.call("cron.add", job_params("the cron message"))
    jid = job["id"]
    res = ws.call("cron.run", {"id": jid, "mode": "force"})
    assert res["ok"] is True and res["enqueued"] is True
    rid = res["runId"]
    started = wait_cron(ws, "started", jid, rid)
    assert started["sessionKey"] == "agent:main:cron:%s:run:%s" % (jid, rid)
    fin = wait_cron(ws, "finished", jid, rid)
    assert fin["status"] == "ok" and fin["completionStatus"] == "succeeded"
    assert fin["summary"] == "cron says hi"
    assert fin["deliveryStatus"] == "not-requested"
    st = up.snapshot()
    msgs = st["requests"][-1]["messages"]
    assert msgs[-1]["role"] == "user"
    assert msgs[-1]["content"] == "the cron message"

    page = ws.call("cron.runs", {"id": jid, "runId": rid, "limit": 1})
    assert page["total"] == 1 and len(page["entries"]) == 1
    e = page["entries"][0]
    check_entry(e)
    assert e["runId"] == rid and e["jobId"] == jid
    assert e["status"] == "ok" and e["completionStatus"] == "succeeded"
    assert e["summary"] == "cron says hi"
    assert e["usage"] == {"input_tokens": 11, "output_tokens": 4,
                          "total_tokens": 15}
    assert e["model"] == "fake-model" and e["provider"] == "fake"
    assert e["durationMs"] >= 0 and e["jobName"] == "test job"
    got = ws.call("cron.get", {"id": jid})
    assert got["state"]["lastRunStatus"] == "ok"
    assert got["state"]["consecutiveErrors"] == 0
    # the recurring job keeps its schedule after a manual run
    assert got["state"]["nextRunAtMs"] == job["state"]["nextRunAtMs"]
    # all runs, any job
    allp = ws.call("cron.runs", {"scope": "all", "limit": 200})
    assert rid in [x["runId"] for x in allp["entries"]]
    for x in allp["entries"]:
        check_entry(x)
    ws.call("cron.remove", {"id": jid})
    # history outlives the job
    assert ws.call("cron.runs", {"id": jid})["total"] == 1


def test_run_modes_and_failures(cgw, up):
    ws = cgw.connect()
    job = ws.call("cron.add", job_params("[[status:500]] fail please",
                                         enabled=False))
    jid = job["id"]
    assert ws.call("cron.run", {"id": jid, "mode": "due"}) == \
        {"ok": True, "ran": False, "reason": "not-due"}
    assert ws.call("cron.run", {"id": jid, "mode": "if-enabled"}) == \
        {"ok": True, "ran": False, "reason": "disabled"}
    rid = ws.call("cron.run", {"id": jid})["runId"]
    fin = wait_cron(ws, "finished", jid, rid)
    assert fin["status"] == "error" and fin["completionStatus"] == "failed"
    assert fin["error"]
    e = ws.call("cron.runs", {"id": jid, "status": "error"})["entries"][0]
    check_entry(e)
    assert e["runId"] == rid and e["status"] == "error"
    assert ws.call("cron.runs", {"id": jid, "status": "ok"})["total"] == 0
    got = ws.call("cron.get", {"id": jid})
    assert got["state"]["lastRunStatus"] == "error"
    assert got["state"]["consecutiveErrors"] == 1
    res = ws.request("cron.run", {"id": "no-such-job"})
    assert res["error"]["details"] == {"code": "CRON_JOB_NOT_FOUND",
                                       "jobId": "no-such-job"}
    res = ws.request("cron.runs", {"id": "no-such-job"})
    assert res["error"]["details"]["code"] == "CRON_JOB_NOT_FOUND"


def test_delivery_is_stored_and_reported_not_delivered(cgw, up):
    ws = cgw.connect()
    job = ws.call("cron.add", job_params("deliver me", delivery={
        "mode": "announce", "channel": "telegram", "to": "12345"}))
    assert job["delivery"] == {"mode": "announce", "channel": "telegram",
                               "to": "12345"}
    rid = ws.call("cron.run", {"id": job["id"]})["runId"]
    fin = wait_cron(ws, "finished", job["id"], rid)
    assert fin["status"] == "ok"
    assert fin["deliveryStatus"] == "not-delivered"
    assert fin["completionStatus"] == "failed"
    e = ws.call("cron.runs", {"id": job["id"]})["entries"][0]
    check_entry(e)
    assert e["delivered"] is False and "not delivered" in e["deliveryError"]
    # best effort: the run still completes
    ws.call("cron.update", {"id": job["id"], "patch": {
        "delivery": {"bestEffort": True}}})
    rid = ws.call("cron.run", {"id": job["id"]})["runId"]
    fin = wait_cron(ws, "finished", job["id"], rid)
    assert fin["completionStatus"] == "succeeded"


@pytest.mark.parametrize("patch,needle", [
    ({"schedule": {"kind": "cron", "expr": "61 * * * *"}},
     "invalid cron expression"),
    ({"schedule": {"kind": "cron", "expr": "0 9 * * *",
                   "tz": "Mars/Olympus"}}, "Invalid time zone"),
    ({"schedule": {"kind": "cron", "expr": "0 0 30 2 *"}}, "never matches"),
    ({"schedule": {"kind": "at", "at": "tomorrow-ish"}}, "schedule.at"),
    ({"schedule": {"kind": "every", "everyMs": 10}}, "everyMs"),
    ({"schedule": {"kind": "on-exit", "command": "x"}}, "not supported"),
    ({"payload": {"kind": "command", "argv": ["/bin/true"]}},
     "cron.allowCommandPayload"),
    ({"payload": {"kind": "script", "script": "x"}}, "not supported"),
    ({"sessionTarget": "elsewhere"}, "sessionTarget"),
    ({"agentId": "ghost"}, "unknown agent"),
    ({"bogus": 1}, "unexpected property"),
    ({"schedule": {"kind": "cron", "expr": "0 9 * * *", "every": 5}},
     'unexpected property "schedule.every"'),
    ({"payload": {"kind": "agentTurn", "message": "m", "extra": 1}},
     'unexpected property "payload.extra"'),
    ({"payload": {"kind": "agentTurn", "message": "m", "model": 5}},
     "payload.model must be a string"),
    ({"delivery": {"mode": "announce", "where": "x"}},
     'unexpected property "delivery.where"'),
    ({"delivery": {"mode": "carrier-pigeon"}}, "delivery.mode"),
    ({"description": 7}, "description must be a string"),
])
def test_add_refuses_bad_jobs(cgw, patch, needle):
    ws = cgw.connect()
    p = job_params()
    p.update(patch)
    res = ws.request("cron.add", p)
    assert res["ok"] is False, res
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["message"].startswith("invalid cron.add params: ")
    assert needle in res["error"]["message"], res["error"]["message"]


def test_scopes(cgw):
    ws = cgw.connect(scopes=["operator.read"])
    assert "jobs" in ws.call("cron.list", {})
    res = ws.request("cron.add", job_params())
    assert res["error"]["code"] == "FORBIDDEN"
    assert res["error"]["details"]["missingScope"] == "operator.admin"
    for m in ("cron.run", "cron.remove", "cron.update"):
        assert ws.request(m, {"id": "x"})["error"]["code"] == "FORBIDDEN"
    hello = cgw.connect().hello
    for m in ("cron.list", "cron.status", "cron.get", "cron.add",
              "cron.update", "cron.remove", "cron.run", "cron.runs"):
        assert m in hello["features"]["methods"]
    assert "cron" in hello["features"]["events"]


def test_due_at_job_fires_on_its_own(cgw, up):
    """A one-shot job due in 1.5 s runs by itself (the scheduler's timer,
    no call), then is deleted (deleteAfterRun defaults to true for at)."""
    ws = cgw.connect()
    up.push(reply="on time")
    job = ws.call("cron.add", job_params(
        "fire by yourself", name="one-shot",
        schedule={"kind": "at", "at": iso_in(1500)}))
    jid = job["id"]
    assert job["deleteAfterRun"] is True
    due = job["state"]["nextRunAtMs"]
    st = wait_cron(ws, "started", jid, timeout=20)
    assert st["runAtMs"] >= due
    fin = wait_cron(ws, "finished", jid, st["runId"], timeout=20)
    assert fin["status"] == "ok" and fin["summary"] == "on time"
    wait_cron(ws, "removed", jid)
    e = ws.call("cron.runs", {"id": jid})["entries"][0]
    assert e["status"] == "ok" and e["runAtMs"] >= due


def test_at_duration_and_every(cgw):
    ws = cgw.connect()
    before = int(time.time() * 1000)
    job = ws.call("cron.add", job_params(schedule={"kind": "at",
                                                   "at": "20m"}))
    n = job["state"]["nextRunAtMs"]
    assert before + 20 * 60000 <= n <= int(time.time() * 1000) + 20 * 60000
    assert job["schedule"]["at"].endswith("Z")
    ws.call("cron.remove", {"id": job["id"]})
    job = ws.call("cron.add", job_params(schedule={
        "kind": "every", "everyMs": 3600000, "anchorMs": 1000}))
    n = job["state"]["nextRunAtMs"]
    assert (n - 1000) % 3600000 == 0 and n > before
    ws.call("cron.remove", {"id": job["id"]})


# ---- durability: kill -9, restart ------------------------------------------

def _db(gw):
    for root, _dirs, files in os.walk(gw.state_dir):
        for f in files:
            if f.endswith(".sqlite"):
                return os.path.join(root, f)
    raise AssertionError("no database under %s" % gw.state_dir)


def test_kill9_interrupts_run_and_keeps_jobs(tmp_root, upstream):
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=chat_config(upstream))
        ws = gw.connect()
        keep = ws.call("cron.add", job_params("kept", name="survivor"))
        job = ws.call("cron.add", job_params("[[hang]] never answers",
                                             name="hanging"))
        rid = ws.call("cron.run", {"id": job["id"]})["runId"]
        wait_cron(ws, "started", job["id"], rid)
        upstream.wait(lambda s: s["inflight"] >= 1)
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(10)
        gw2 = lch.start(state_dir=gw.state_dir, port=gw.port)
        ws = gw2.connect()
        page = ws.call("cron.runs", {"id": job["id"], "runId": rid})
        e = page["entries"][0]
        check_entry(e)
        assert e["status"] == "error" and "interrupted" in e["error"]
        assert e["completionStatus"] == "failed"
        got = ws.call("cron.get", {"id": job["id"]})
        assert got["state"]["lastRunStatus"] == "error"
        assert "interrupted" in got["state"]["lastError"]
        assert "runningAtMs" not in got["state"]
        assert ws.call("cron.get", {"id": keep["id"]}) == keep
        st = ws.call("cron.status", {})
        assert st["running"] == 0 and st["jobs"] == 2
    finally:
        lch.cleanup()


def test_overdue_job_runs_once_at_startup(tmp_root, upstream):
    """A recurring job whose slots passed while the gateway was down runs
    once at start-up (not once per missed slot), then is rescheduled."""
    lch = Launcher(tmp_root)
    try:
        upstream.reset()
        gw = lch.start(config=chat_config(upstream))
        ws = gw.connect()
        job = ws.call("cron.add", job_params(
            "missed me", name="every minute",
            schedule={"kind": "every", "everyMs": 60000}))
        jid = job["id"]
        assert gw.stop() == 0
        # Ten minutes of downtime, as the database sees it.
        past = int(time.time() * 1000) - 600000
        db = sqlite3.connect(_db(gw))
        row = json.loads(db.execute("SELECT job FROM cron_jobs_t WHERE "
                                    "id = ?", (jid,)).fetchone()[0])
        row["state"]["nextRunAtMs"] = past
        row["schedule"]["anchorMs"] = past - 60000
        db.execute("UPDATE cron_jobs_t SET job = ?, next_run_at = ? "
                   "WHERE id = ?", (json.dumps(row), past, jid))
        db.commit()
        db.close()
        gw2 = lch.start(state_dir=gw.state_dir, port=gw.port)
        ws = gw2.connect()
        deadline = time.monotonic() + 15
        while True:
            page = ws.call("cron.runs", {"id": jid})
            if page["total"] and page["entries"][0].get("status"):
                break
            assert time.monotonic() < deadline, page
            ws.wait_event("cron", timeout=deadline - time.monotonic(),
                          pred=lambda f: f["payload"].get("action") ==
                          "finished")
        assert page["total"] == 1
        e = page["entries"][0]
        assert e["status"] == "ok" and e["runAtMs"] >= past
        got = ws.call("cron.get", {"id": jid})
        assert got["state"]["nextRunAtMs"] > int(time.time() * 1000)
        assert ws.call("cron.runs", {"id": jid})["total"] == 1
        db = sqlite3.connect("file:%s?mode=ro" % _db(gw2), uri=True)
        trig = db.execute("SELECT trigger FROM cron_runs WHERE job_id = ?",
                          (jid,)).fetchall()
        db.close()
        assert trig == [("startup",)]
    finally:
        lch.cleanup()


def test_concurrency_limit_and_reload(tmp_root, upstream):
    """maxConcurrentRuns bounds the runs; the rest queue. A config edit
    (hot reload) raises the bound and the queued run starts."""
    lch = Launcher(tmp_root)
    try:
        upstream.reset()
        cfg = chat_config(upstream, {"cron": {"maxConcurrentRuns": 1}})
        gw = lch.start(config=cfg)
        ws = gw.connect()
        a = ws.call("cron.add", job_params("[[hang]] a", name="a"))
        b = ws.call("cron.add", job_params("[[hang]] b", name="b"))
        ra = ws.call("cron.run", {"id": a["id"]})["runId"]
        wait_cron(ws, "started", a["id"], ra)
        rb = ws.call("cron.run", {"id": b["id"]})["runId"]
        st = ws.call("cron.status", {})
        assert st["running"] == 1 and st["queued"] == 1
        assert st["maxConcurrentRuns"] == 1
        assert ws.call("cron.run", {"id": b["id"]})["reason"] == \
            "already-running"
        e = ws.call("cron.runs", {"id": b["id"], "runId": rb})["entries"][0]
        assert "status" not in e
        cfg["cron"]["maxConcurrentRuns"] = 2
        with open(gw.config_path, "w") as f:
            json.dump(cfg, f)
        wait_cron(ws, "started", b["id"], rb)
        assert ws.call("cron.status", {})["running"] == 2
    finally:
        lch.cleanup()


def test_control_ui_automations_calls(cgw, up):
    """The calls the Control UI's Automations view makes (params as in its
    bundle), answered in the shapes its page validators accept."""
    ws = cgw.connect()
    job = ws.call("cron.add", job_params("ui job", name="ui"))
    rid = ws.call("cron.run", {"id": job["id"]})["runId"]
    wait_cron(ws, "finished", job["id"], rid)
    for enabled in ("all", "enabled", "disabled"):
        page = ws.call("cron.list", {
            "includeDisabled": enabled == "all",
            "includeDeliveryPreviews": False, "limit": 50, "offset": 0,
            "enabled": enabled, "scheduleKind": "all",
            "lastRunStatus": "all", "sortBy": "nextRunAtMs",
            "sortDir": "asc"})
        n = len(page["jobs"])
        assert isinstance(page["snapshotRevision"], str)
        assert page["offset"] == 0 and 1 <= page["limit"] <= 200
        assert n <= page["limit"] and n <= page["total"]
        if page["hasMore"]:
            assert page["nextOffset"] == n
        else:
            assert page["nextOffset"] is None and n == page["total"]
        for j in page["jobs"]:
            assert j["payload"]["kind"] in ("agentTurn", "systemEvent")
    page = ws.call("cron.list", {"agentId": "main", "enabled": "enabled",
                                 "includeDeliveryPreviews": False,
                                 "limit": 1, "offset": 0,
                                 "sortBy": "nextRunAtMs", "sortDir": "asc"})
    assert page["total"] >= 1 and len(page["jobs"]) == 1
    assert ws.call("cron.status", {})["enabled"] is True
    runs = ws.call("cron.runs", {"scope": "all", "limit": 50, "offset": 0,
                                 "statuses": ["ok", "error"],
                                 "status": "all",
                                 "deliveryStatuses": ["not-requested"],
                                 "sortDir": "desc"})
    assert rid in [e["runId"] for e in runs["entries"]]
    runs = ws.call("cron.runs", {"scope": "job", "id": job["id"],
                                 "limit": 50, "offset": 0,
                                 "sortDir": "desc"})
    assert runs["total"] == 1 and runs["entries"][0]["runId"] == rid
    upd = ws.call("cron.update", {"id": job["id"],
                                  "expectedConfigRevision": "x",
                                  "patch": {"enabled": False}})
    assert upd["enabled"] is False
    ws.call("cron.remove", {"id": job["id"]})


# ---- clawgate cron … (the CLI mirrors openclaw cron) --------------------------

def test_clawgate_cron_cli(cgw, up, tmp_root):
    lch = Launcher(tmp_root)
    cli_dir = lch.prepare()

    def cg(*args):
        rc, out, err = lch.run(["cron"] + list(args) + [
            "--url", cgw.url, "--token", cgw.token], state_dir=cli_dir,
            timeout=60)
        return rc, out, err

    up.reset()
    rc, out, err = cg("add", "*/10 * * * *", "cli says hi", "--name",
                      "cli job", "--tz", "Asia/Tokyo", "--exact",
                      "--no-deliver")
    assert rc == 0, out + err
    job = json.loads(out)
    jid = job["id"]
    assert job["schedule"] == {"kind": "cron", "expr": "*/10 * * * *",
                               "tz": "Asia/Tokyo", "staggerMs": 0}
    assert job["payload"] == {"kind": "agentTurn",
                              "message": "cli says hi"}
    assert job["delivery"] == {"mode": "none"}
    rc, out, err = cg("run", jid, "--wait", "--poll-interval", "50ms")
    assert rc == 0, out + err
    res = json.loads(out)
    assert res["completed"] is True and res["status"] == "ok"
    assert res["run"]["summary"] == "echo: cli says hi"
    assert up.snapshot()["requests"][-1]["messages"][-1]["content"] == \
        "cli says hi"
    rc, out, err = cg("runs", jid)
    assert rc == 0 and json.loads(out)["total"] == 1, out + err
    rc, out, err = cg("list")
    assert rc == 0 and jid in out and "cli job" in out, out + err
    rc, out, err = cg("edit", jid, "--every", "2h", "--model",
                      "fake/fake-model")
    assert rc == 0, out + err
    got = json.loads(out)
    assert got["schedule"]["kind"] == "every"
    assert got["schedule"]["everyMs"] == 7200000
    assert got["payload"]["model"] == "fake/fake-model"
    rc, out, err = cg("disable", jid)
    assert rc == 0 and json.loads(out)["enabled"] is False
    rc, out, err = cg("list")
    assert jid not in out
    rc, out, err = cg("list", "--all", "--json")
    assert jid in [j["id"] for j in json.loads(out)["jobs"]]
    rc, out, err = cg("enable", jid)
    assert rc == 0 and json.loads(out)["enabled"] is True
    rc, out, err = cg("get", jid)
    assert rc == 0 and json.loads(out)["id"] == jid
    rc, out, err = cg("status")
    assert rc == 0 and json.loads(out)["storage"] == "sqlite"
    rc, out, err = cg("add", "--name", "at job", "--at",
                      "2030-01-02T03:04", "--tz", "Europe/Berlin",
                      "--message", "later", "--keep-after-run")
    assert rc == 0, out + err
    at = json.loads(out)
    assert at["schedule"] == {"kind": "at", "at": "2030-01-02T02:04:00.000Z"}
    assert at["deleteAfterRun"] is False
    assert at["delivery"] == {"mode": "announce"}
    rc, out, err = cg("add", "--name", "shell", "--every", "1h",
                      "--command", "echo hi")
    assert rc != 0 and "cron.allowCommandPayload" in err
    for i in (jid, at["id"]):
        rc, out, err = cg("rm", i)
        assert rc == 0 and json.loads(out) == {"ok": True, "removed": True}
    rc, out, err = cg("rm", jid)
    assert rc != 0 and "Automation not found" in err
    rc, out, err = cg("add", "--name", "x", "--message", "m")
    assert rc == 2 and "schedule is required" in err


def test_run_timeout_bounds_a_run(cgw, up):
    """payload.timeoutSeconds bounds the whole run: a hanging upstream
    ends as an error (timed out) instead of holding the slot."""
    ws = cgw.connect()
    job = ws.call("cron.add", job_params(payload={
        "kind": "agentTurn", "message": "[[hang]] forever",
        "timeoutSeconds": 1}))
    rid = ws.call("cron.run", {"id": job["id"]})["runId"]
    fin = wait_cron(ws, "finished", job["id"], rid, timeout=30)
    assert fin["status"] == "error"
    assert "timed out" in fin["error"], fin["error"]
    assert 900 <= fin["durationMs"] < 20000
    assert ws.call("cron.status", {})["running"] == 0


def test_command_payload_when_enabled(tmp_root, upstream):
    """cron.allowCommandPayload: a program runs without a shell (argv,
    cwd, env, stdin, bounded output, exit code, timeout); a shell is
    refused even then."""
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=chat_config(upstream, {"cron": {
            "allowCommandPayload": True, "maxConcurrentRuns": 4}}))
        ws = gw.connect()

        def run(payload):
            job = ws.call("cron.add", job_params(payload=dict(
                {"kind": "command"}, **payload)))
            rid = ws.call("cron.run", {"id": job["id"]})["runId"]
            return wait_cron(ws, "finished", job["id"], rid, timeout=30)

        fin = run({"argv": ["/bin/sh-not-really", "x"]})
        assert fin["status"] == "error" and "cannot run" in fin["error"]
        fin = run({"argv": ["echo", "hello", "$HOME;", "rm"]})
        assert fin["status"] == "ok"
        assert fin["summary"] == "hello $HOME; rm\n"
        fin = run({"argv": ["/bin/pwd"], "cwd": "/"})
        assert fin["summary"] == "/\n"
        fin = run({"argv": ["/usr/bin/env"], "env": {"CRON_X": "42"}})
        assert "CRON_X=42\n" in fin["summary"]
        fin = run({"argv": ["/bin/cat"], "input": "from stdin"})
        assert fin["summary"] == "from stdin"
        fin = run({"argv": ["/bin/false"]})
        assert fin["status"] == "error"
        assert fin["error"] == "command exited with code 1"
        fin = run({"argv": ["/bin/sleep", "30"], "timeoutSeconds": 1})
        assert fin["status"] == "error" and "timed out" in fin["error"]
        fin = run({"argv": ["/usr/bin/yes"], "outputMaxBytes": 100,
                   "timeoutSeconds": 1})
        assert len(fin["summary"]) == 100
        for shell in (["sh", "-c", "echo hi"], ["/bin/bash", "-lc", "x"]):
            res = ws.request("cron.add", job_params(payload={
                "kind": "command", "argv": shell}))
            assert res["ok"] is False
            assert "never runs a command through a shell" in \
                res["error"]["message"]
    finally:
        lch.cleanup()


def test_top_of_hour_stagger_and_main_session(cgw, up):
    """Upstream's default stagger: "0 * * * *" is spread over 5 minutes by
    a stable per-job offset (SHA-256 of the id); staggerMs 0 is exact. A
    main-session job runs in the agent's main session."""
    ws = cgw.connect()
    job = ws.call("cron.add", job_params(schedule={"kind": "cron",
                                                   "expr": "0 * * * *"}))
    off = int.from_bytes(hashlib.sha256(job["id"].encode()).digest()[:4],
                         "big") % 300000
    n = job["state"]["nextRunAtMs"]
    assert n % 3600000 == off
    assert 0 < n - int(time.time() * 1000) <= 3600000 + 300000
    ex = ws.call("cron.add", job_params(schedule={
        "kind": "cron", "expr": "0 * * * *", "staggerMs": 0}))
    assert ex["state"]["nextRunAtMs"] % 3600000 == 0
    up.push(reply="main says hi")
    m = ws.call("cron.add", job_params(
        sessionTarget="main", agentId="helper",
        payload={"kind": "systemEvent", "text": "wake up, helper"}))
    rid = ws.call("cron.run", {"id": m["id"]})["runId"]
    fin = wait_cron(ws, "finished", m["id"], rid)
    assert fin["status"] == "ok" and fin["sessionKey"] == \
        "agent:helper:main"
    hist = ws.call("chat.history", {"sessionKey": "agent:helper:main"})
    texts = json.dumps(hist["messages"])
    assert "wake up, helper" in texts and "main says hi" in texts
    for j in (job, ex, m):
        ws.call("cron.remove", {"id": j["id"]})


def test_session_retention_prunes_isolated_sessions(tmp_root, upstream):
    """cron.sessionRetention: the isolated session of an older run (and its
    transcript) is deleted once it is older than the retention; the run
    history stays."""
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=chat_config(upstream, {"cron": {
            "sessionRetention": "1ms"}}))
        ws = gw.connect()
        ws.call("sessions.subscribe", {})
        job = ws.call("cron.add", job_params("keep me briefly"))
        r1 = ws.call("cron.run", {"id": job["id"]})["runId"]
        k1 = wait_cron(ws, "finished", job["id"], r1)["sessionKey"]
        keys = [s["key"] for s in ws.call("sessions.list", {})["sessions"]]
        assert k1 in keys
        r2 = ws.call("cron.run", {"id": job["id"]})["runId"]
        k2 = wait_cron(ws, "finished", job["id"], r2)["sessionKey"]
        ws.wait_event("sessions.changed", timeout=15, pred=lambda f:
                      f["payload"].get("sessionKey") == k1 and
                      f["payload"].get("reason") == "delete")
        keys = [s["key"] for s in ws.call("sessions.list", {})["sessions"]]
        assert k1 not in keys and k2 in keys
        assert ws.call("cron.runs", {"id": job["id"]})["total"] == 2
        db = sqlite3.connect("file:%s?mode=ro" % _db(gw), uri=True)
        rows = dict(db.execute("SELECT run_id, session_pruned FROM "
                               "cron_runs_t").fetchall())
        db.close()
        assert rows == {r1: 1, r2: 0}
    finally:
        lch.cleanup()


def test_run_history_retention(tmp_root, upstream):
    """Ended runs are kept 7 days (upstream's retention): an older row of
    the job goes when the next run of that job ends."""
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=chat_config(upstream))
        ws = gw.connect()
        job = ws.call("cron.add", job_params("retention"))
        assert gw.stop() == 0
        old = int(time.time() * 1000) - 8 * 86400000
        db = sqlite3.connect(_db(gw))
        db.execute("INSERT INTO cron_runs_t(run_id, job_id, trigger, "
                   "status, run_at, queued_at, started_at, ended_at, "
                   "duration_ms) VALUES ('old-run', ?, 'schedule', 'ok', "
                   "?, ?, ?, ?, 0)", (job["id"], old, old, old, old))
        db.commit()
        db.close()
        gw2 = lch.start(state_dir=gw.state_dir, port=gw.port)
        ws = gw2.connect()
        assert ws.call("cron.runs", {"id": job["id"]})["total"] == 1
        rid = ws.call("cron.run", {"id": job["id"]})["runId"]
        wait_cron(ws, "finished", job["id"], rid)
        page = ws.call("cron.runs", {"id": job["id"]})
        assert [e["runId"] for e in page["entries"]] == [rid]
    finally:
        lch.cleanup()


def test_reload_disables_and_skip_missed(tmp_root, upstream):
    """cron.enabled is hot: after the reload (config.changed) the scheduler
    reports disabled and has no wake time, manual runs still work. With
    cron.skipMissedJobs an overdue recurring job is moved to its next slot
    at start-up instead of running."""
    lch = Launcher(tmp_root)
    try:
        upstream.reset()
        cfg = chat_config(upstream)
        gw = lch.start(config=cfg)
        ws = gw.connect()
        job = ws.call("cron.add", job_params(
            "skip me", schedule={"kind": "every", "everyMs": 60000}))
        jid = job["id"]
        assert ws.call("cron.status", {})["nextWakeAtMs"] is not None
        cfg["cron"] = {"enabled": False}
        with open(gw.config_path, "w") as f:
            json.dump(cfg, f)
        ws.wait_event("config.changed", timeout=20)
        st = ws.call("cron.status", {})
        assert st["enabled"] is False and st["nextWakeAtMs"] is None
        rid = ws.call("cron.run", {"id": jid})["runId"]
        assert wait_cron(ws, "finished", jid, rid)["status"] == "ok"

        cfg["cron"] = {"skipMissedJobs": True}
        with open(gw.config_path, "w") as f:
            json.dump(cfg, f)
        ws.wait_event("config.changed", timeout=20)
        assert ws.call("cron.status", {})["enabled"] is True
        assert gw.stop() == 0
        past = int(time.time() * 1000) - 600000
        db = sqlite3.connect(_db(gw))
        row = json.loads(db.execute("SELECT job FROM cron_jobs_t WHERE "
                                    "id = ?", (jid,)).fetchone()[0])
        row["state"]["nextRunAtMs"] = past
        db.execute("UPDATE cron_jobs_t SET job = ? WHERE id = ?",
                   (json.dumps(row), jid))
        db.commit()
        db.close()
        gw2 = lch.start(state_dir=gw.state_dir, port=gw.port)
        ws = gw2.connect()
        got = ws.call("cron.get", {"id": jid})
        assert got["state"]["nextRunAtMs"] > int(time.time() * 1000)
        assert ws.call("cron.runs", {"id": jid})["total"] == 1
    finally:
        lch.cleanup()


def test_scratch(cgw):
    ws = cgw.connect()
    job = ws.call("cron.add", job_params())
    jid = job["id"]
    assert ws.call("cron.scratch.get", {"id": jid}) == {
        "scratch": None, "currentRevision": 0, "maxBytes": 262144}
    # clearing nothing is a no-op
    assert ws.call("cron.scratch.set", {"id": jid, "content": None}) == {
        "ok": True, "scratch": None, "currentRevision": 0,
        "maxBytes": 262144}
    r = ws.call("cron.scratch.set", {"id": jid, "content": "first"})
    assert r["ok"] is True and r["currentRevision"] == 1
    assert r["scratch"]["content"] == "first"
    assert r["scratch"]["revision"] == 1
    assert ws.call("cron.scratch.set", {"id": jid, "content": "x",
                                        "expectedRevision": 0}) == {
        "ok": False, "reason": "revision-conflict", "currentRevision": 1}
    r = ws.call("cron.scratch.set", {"jobId": jid, "content": "second",
                                     "expectedRevision": 1})
    assert r["currentRevision"] == 2
    g = ws.call("cron.scratch.get", {"jobId": jid})
    assert g["scratch"]["content"] == "second" and g["currentRevision"] == 2
    assert "second" not in json.dumps(ws.call("cron.get", {"id": jid}))
    r = ws.call("cron.scratch.set", {"id": jid, "content": None})
    assert r["scratch"] is None and r["currentRevision"] == 3
    assert ws.call("cron.scratch.get", {"id": jid})["scratch"] is None
    res = ws.request("cron.scratch.set", {"id": jid,
                                          "content": "x" * 262145})
    assert res["ok"] is False and "exceeds" in res["error"]["message"]
    ws.call("cron.remove", {"id": jid})
    res = ws.request("cron.scratch.get", {"id": jid})
    assert res["error"]["details"]["code"] == "CRON_JOB_NOT_FOUND"
    ro = cgw.connect(scopes=["operator.read"])
    assert ro.request("cron.scratch.get", {"id": jid})["error"]["code"] == \
        "FORBIDDEN"


def test_declarative_add(cgw):
    """cron.add with a declarationKey is idempotent: the same declaration
    changes nothing, a changed one updates the job in place."""
    ws = cgw.connect()
    p = job_params("declared v1", name="declared",
                   declarationKey="test:declared")
    first = ws.call("cron.add", p)
    assert first["created"] is True
    jid = first["job"]["id"]
    again = ws.call("cron.add", p)
    assert again == {"created": False, "updated": False,
                     "job": first["job"]}
    p2 = job_params("declared v2", name="declared",
                    declarationKey="test:declared")
    upd = ws.call("cron.add", p2)
    assert upd["created"] is False and upd["updated"] is True
    assert upd["job"]["id"] == jid
    assert upd["job"]["payload"]["message"] == "declared v2"
    jobs = ws.call("cron.list", {"includeDisabled": True,
                                 "limit": 200})["jobs"]
    assert [j["id"] for j in jobs
            if j.get("declarationKey") == "test:declared"] == [jid]
    ws.call("cron.remove", {"id": jid})
