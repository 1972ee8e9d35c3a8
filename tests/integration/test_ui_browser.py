"""The real OpenClaw Control UI (openclaw@2026.9.6, installed by
contrib/install-ui.sh) in headless Chromium, served from the gateway's own
port (issue 8). Driven by browser/ui.mjs (playwright-core from
browser/install.sh, Debian chromium). Screenshots and the per-view RPC
report go to <build dir>/test-artifacts/ui/.

Set-up (contrib/test.sh does both):
  tests/integration/browser/install.sh          playwright-core into ~/.cache
  contrib/install-ui.sh --dest ~/.cache/clawgate-ui/control-ui
Tests skip, saying which part is missing, when either is not there."""

import json
import os
import shutil
import subprocess
import threading

import pytest

from harness import BIN_ARGV, clawgate_only, free_port
from pairing_util import REMOTE, Device, device_connect

pytestmark = clawgate_only("serves the Control UI from the gateway port")

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
PW_DIR = os.environ.get("CLAWGATE_BROWSER_DIR") or \
    os.path.join(CACHE, "clawgate-browser")
UI_DIR = os.environ.get("CLAWGATE_TEST_UI_DIR") or \
    os.path.join(CACHE, "clawgate-ui", "control-ui")
CHROMIUM = os.environ.get("CLAWGATE_CHROMIUM", "/usr/bin/chromium")
NODE = os.environ.get("CLAWGATE_NODE") or shutil.which("node")
WATCHDOG_S = 600

# Methods the UI calls that clawgate does not implement yet: none. Any
# failing RPC on any view is a regression.
NOT_YET = set()
# Views whose RPCs all succeed, with a method each view must have sent (it
# really loaded): every view.
PASSING = {"automations": "channels.status",
           "sessions": "sessions.list", "logs": "logs.tail",
           "connection": "last-heartbeat", "chat": "chat.startup",
           "settings": "config.schema", "systems": "node.list",
           "usage": "usage.status", "debug": "diagnostics.lanes",
           "devices": "device.pair.list"}


def artifacts(name):
    d = os.path.join(os.path.dirname(os.path.abspath(BIN_ARGV[-1])),
                     "test-artifacts", "ui", name)
    os.makedirs(d, exist_ok=True)
    return d


def need_browser():
    if not NODE:
        pytest.skip("node not found")
    if not os.path.isdir(os.path.join(PW_DIR, "node_modules",
                                      "playwright-core")):
        pytest.skip("playwright-core not installed in %s "
                    "(tests/integration/browser/install.sh)" % PW_DIR)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium not found at %s (apt-get install chromium)"
                    % CHROMIUM)
    if not os.path.isfile(os.path.join(UI_DIR, "index.html")):
        pytest.skip("Control UI not installed in %s (contrib/install-ui.sh "
                    "--dest %s)" % (UI_DIR, UI_DIR))


class Driver:
    """A running `node ui.mjs <scenario>`: JSON lines out, lines in."""

    def __init__(self, scenario, gw, name, **opts):
        opts.update(base=gw.http_base, token=gw.token,
                    shots=artifacts(name), chromium=CHROMIUM)
        env = dict(os.environ, CLAWGATE_BROWSER_DIR=PW_DIR)
        self.stderr_path = os.path.join(artifacts(name), "driver.stderr")
        self.p = subprocess.Popen(
            [NODE, os.path.join(HERE, "browser", "ui.mjs"), scenario,
             json.dumps(opts)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=open(self.stderr_path, "wb"),
            env=env, text=True)
        # The driver bounds each of its waits; this bounds the whole run
        # (a hung browser ends as EOF on stdout, reported by next()).
        self.watchdog = threading.Timer(WATCHDOG_S, self.p.kill)
        self.watchdog.daemon = True
        self.watchdog.start()

    def next(self, timeout=120):
        """The next JSON line (the driver bounds its own waits)."""
        line = self.p.stdout.readline()
        if not line:
            self.p.wait(timeout)
            with open(self.stderr_path) as f:
                err = f.read()
            raise AssertionError("driver exited (%s) without output:\n%s"
                                 % (self.p.returncode, err[-3000:]))
        ev = json.loads(line)
        if ev["event"] == "error":
            raise AssertionError("driver failed: " + ev["message"])
        return ev

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def close(self):
        self.watchdog.cancel()
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)


def run(scenario, gw, name, **opts):
    d = Driver(scenario, gw, name, **opts)
    try:
        ev = d.next()
        assert ev["event"] == "done", ev
        return ev
    finally:
        d.close()


def start(launcher, config=None, port=None):
    return launcher.start(config=config or {}, port=port,
                          env={"CLAWGATE_CONTROL_UI_DIR": UI_DIR})


def test_ui_connects_from_gateway_port(launcher):
    need_browser()
    gw = start(launcher)
    ev = run("connect", gw, "connect")
    assert ev["server"]["controlUiBuildSource"] == "configured"
    # Every file of the page came from the gateway (no 4xx/5xx).
    assert ev["http"] == [], ev["http"]
    text = ev["text"]
    assert "Connected" in text
    assert "Refresh required" not in text and "Server updated" not in text
    paint = ev["paint"]
    assert paint["firstContentfulPaintMs"] is not None
    with open(os.path.join(artifacts("connect"), "paint.json"), "w") as f:
        json.dump(paint, f, indent=1)


def test_ui_under_base_path(launcher):
    need_browser()
    gw = start(launcher, {"gateway": {"controlUi": {"basePath": "/openclaw"}}})
    ev = run("connect", gw, "basepath", path="/openclaw/")
    # Assets, config and the WebSocket all under the prefix, nothing failed.
    assert ev["http"] == [], ev["http"]
    assert ev["location"].startswith("/openclaw/"), ev["location"]
    assert "Connected" in ev["text"]


def test_ui_reconnects_by_itself_after_cli_approve(launcher):
    need_browser()
    # The browser is remote (a trusted proxy in front says so), so its
    # device needs approval while the local CLI is approved silently.
    port = free_port()
    gw = start(launcher, {"gateway": {
        "trustedProxies": ["127.0.0.1", "::1"],
        "controlUi": {"allowedOrigins": ["http://127.0.0.1:%d" % port]}}},
        port=port)
    d = Driver("pairing", gw, "pairing",
               headers={"X-Forwarded-For": "203.0.113.20"})
    try:
        ev = d.next()
        assert ev["event"] == "pending", ev
        det = ev["error"]["details"]
        assert det["recommendedNextStep"] == "wait_then_retry"
        assert det["pauseReconnect"] is False
        rc, out, err = launcher.run(
            ["devices", "approve", det["requestId"], "--url", gw.url,
             "--token", "T"], state_dir=launcher.prepare())
        assert rc == 0, err
        assert "Approved" in out
        d.send("approved")
        ev = d.next()
        assert ev["event"] == "done", ev
        assert "Connected" in ev["text"]
    finally:
        d.close()


def test_ui_approves_pending_device(launcher):
    need_browser()
    gw = start(launcher)
    dev = Device()
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             scopes=["operator.read"])
    assert res["ok"] is False
    rid = res["error"]["details"]["requestId"]
    ev = run("approve", gw, "approve", deviceId=dev.id)
    assert ev["approve"]["ok"] is True, ev
    assert ev["approve"]["params"]["requestId"] == rid
    ws, res = device_connect(gw, dev, headers=REMOTE,
                             scopes=["operator.read"])
    assert res["ok"] is True, res


def test_ui_views_rpcs(launcher):
    """The recorder: every view, its WS req/res frames. Writes the per-view
    report to test-artifacts/ui/views/report.json."""
    need_browser()
    gw = start(launcher)
    ev = run("record", gw, "views")
    views = ev["views"]
    report = {}
    for name, v in views.items():
        failed = sorted(m for m, s in v["methods"].items() if s["failed"])
        report[name] = {"path": v["path"], "sent": sorted(v["methods"]),
                        "failed": failed,
                        "unanswered": sorted(m for m, s in
                                             v["methods"].items()
                                             if s.get("unanswered"))}
    with open(os.path.join(artifacts("views"), "report.json"), "w") as f:
        json.dump({"views": report, "http": ev["http"]}, f, indent=1)
    for name, r in report.items():
        unexpected = set(r["failed"]) - NOT_YET
        assert not unexpected, (name, unexpected, views[name])
    # The shell's start-up RPCs all succeed too (no retried failures).
    assert report["startup"]["failed"] == [], report["startup"]
    for name, method in PASSING.items():
        assert report[name]["failed"] == [], (name, report[name])
        assert report[name]["unanswered"] == [], (name, report[name])
        assert method in report[name]["sent"], (name, report[name])
    assert "cron.list" in report["automations"]["sent"], \
        report["automations"]
    # No error banner on any view (texts of the UI's banners).
    for name, v in views.items():
        text = v.get("text", "")
        for banner in ("Server updated", "Refresh required",
                       "unknown method", "Disconnected"):
            assert banner not in text, (name, banner, text[:2000])
    # The views were really visited (in-app navigation).
    for name, v in views.items():
        if name == "startup":
            continue
        top = "/" + v["path"].split("/")[1]
        assert v["location"].startswith(top), (name, v["location"])


def test_ui_secrets_page(launcher):
    """Settings → Secrets (issue 15): the page lists the store through
    secrets.store.list, adds a protected secret through its Add dialog
    (secrets.store.set), lists it again, and no value of a secret ever
    reaches the page; an env entry set by the CLI shows with its value."""
    need_browser()
    d = launcher.prepare()
    rc, out, err = launcher.run(
        ["secrets", "store", "set", "CLI_API_KEY"], state_dir=d,
        input=b"cli-secret-value-1\n")
    assert rc == 0, err
    rc, out, err = launcher.run(
        ["secrets", "store", "set", "LOG_LEVEL", "--kind", "env",
         "--value", "debug"], state_dir=d)
    assert rc == 0, err
    gw = launcher.start(config={}, state_dir=d,
                        env={"CLAWGATE_CONTROL_UI_DIR": UI_DIR})
    ev = run("secrets", gw, "secrets",
             set={"name": "UI_API_KEY", "value": "ui-secret-value-2"})
    failed = {m: s for m, s in ev["methods"].items() if s["failed"]}
    assert not set(failed) - NOT_YET, failed
    for m in ("secrets.store.list", "secrets.store.set"):
        assert ev["methods"][m]["failed"] == 0, ev["methods"][m]
    assert ev["set"]["ok"] is True, ev["set"]
    assert ev["set"]["params"] == {"name": "UI_API_KEY", "kind": "secret"}
    text = ev["text"]
    for name in ("CLI_API_KEY", "LOG_LEVEL", "UI_API_KEY"):
        assert name in text, text[-3000:]
    assert "debug" in text
    for value in ("cli-secret-value-1", "ui-secret-value-2"):
        assert value not in ev["html"] and value not in text
    # The gateway stored it (listed over RPC too, sealed, no value).
    c = gw.connect()
    ents = {e["name"]: e for e in
            c.call("secrets.store.list", {})["entries"]}
    assert ents["UI_API_KEY"]["kind"] == "secret"
    assert "value" not in ents["UI_API_KEY"]
