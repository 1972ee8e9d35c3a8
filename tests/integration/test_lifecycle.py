"""Process lifecycle: start-up output and refusals, state dir, shutdown.

Every test starts its own daemon (or runs the binary to completion), so
this module is skipped as a whole with CLAWGATE_TEST_URL.

The refusal messages are SPEC §1 decisions. Run against the real gateway
2026.9.6 (CLAWGATE_BIN=.../openclaw.mjs) they differ, so those tests are
clawgate_only: upstream prints "Refusing to bind gateway to lan without
auth.", reports a second instance on one state dir as a state-database
contention, formats config errors as "openclaw.json:2 — gateway:
Unrecognized key" without "Config invalid", supports TLS, and in a
container binds 0.0.0.0 by default. Shared and checked there: SIGTERM
shutdown (shutdown event, then a close, exit 0), gateway.mode=remote
refusal, and the port closing after stop.
"""

import json
import os
import re
import signal
import socket
import sqlite3

import pytest

from harness import EXT_URL, UPSTREAM, WsClosed, clawgate_only, free_port

pytestmark = pytest.mark.skipif(bool(EXT_URL),
                                reason="needs fresh daemons")

READ = ["operator.read"]


@clawgate_only("upstream logs its URL differently")
def test_prints_url(start_gateway):
    gw = start_gateway()
    assert "ws://127.0.0.1:%d" % gw.port in gw.output()


@clawgate_only("our daemon prints the token it generated")
def test_prints_generated_token(launcher):
    gw = launcher.start(auth=None, token=None)
    out = gw.output()
    m = re.search(r"[Tt]oken\b.*?([A-Za-z0-9_-]{24,})", out)
    assert m, "no generated token in output:\n" + out[-2000:]
    gw.token = m.group(1)
    c = gw.connect(scopes=READ)
    assert c.hello["auth"]["scopes"] == READ


@clawgate_only("our lock file and database layout")
def test_state_dir_lock_and_sqlite(start_gateway):
    gw = start_gateway()
    lock = os.path.join(gw.state_dir, "gateway.lock")
    with open(lock) as f:
        info = json.load(f)
    assert info["pid"] == gw.proc.pid
    assert info["port"] == gw.port
    db = os.path.join(gw.state_dir, "state", "clawgate.sqlite")
    assert os.path.exists(db)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        rows = con.execute("SELECT name FROM sqlite_master").fetchall()
        assert rows, "empty database"
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    logs = os.path.join(gw.state_dir, "logs")
    assert os.path.isdir(logs) and os.listdir(logs)


def test_sigterm_graceful_shutdown(start_gateway):
    gw = start_gateway()
    clients = [gw.connect(scopes=READ), gw.connect(scopes=READ)]
    gw.proc.send_signal(signal.SIGTERM)
    for c in clients:
        ev = c.wait_event("shutdown", timeout=10)
        assert isinstance(ev["payload"]["reason"], str)
        assert ev["payload"]["reason"]
        code, _reason = c.expect_close(timeout=10)
        assert code in ((1000, 1001, 1012) if UPSTREAM else (1000, 1001))
    assert gw.wait_exit() == 0
    if not UPSTREAM:
        # The lock is released: a new daemon starts on the same state dir.
        gw2 = start_gateway(state_dir=gw.state_dir)
        assert gw2.connect(scopes=READ).hello["type"] == "hello-ok"


@clawgate_only("same contract upstream, but its lock lives elsewhere")
def test_identity_stable_across_restart(start_gateway):
    gw = start_gateway()
    first = gw.connect(scopes=READ).call("gateway.identity.get")
    assert gw.stop() == 0
    gw2 = start_gateway(state_dir=gw.state_dir)
    assert gw2.connect(scopes=READ).call("gateway.identity.get") == first


@clawgate_only("SPEC lock message")
def test_second_instance_same_state_dir_refused(start_gateway, launcher):
    gw = start_gateway()
    rc, out, err = launcher.run(
        ["gateway", "run", "--port", str(free_port()), "--auth", "token",
         "--token", "T", "--allow-unconfigured"], state_dir=gw.state_dir,
        timeout=40)
    assert rc != 0
    assert "gateway already running (pid %d)" % gw.proc.pid in out + err
    # The first one is unharmed.
    assert gw.connect(scopes=READ).hello["type"] == "hello-ok"


@clawgate_only("SPEC message; upstream names 0.0.0.0 in a container")
def test_port_in_use_refused(start_gateway, launcher):
    gw = start_gateway()
    rc, out, err = launcher.run(
        ["gateway", "run", "--port", str(gw.port), "--auth", "token",
         "--token", "T", "--allow-unconfigured"], timeout=40)
    assert rc != 0
    assert ("another gateway instance is already listening on "
            "ws://127.0.0.1:%d" % gw.port) in out + err


@clawgate_only("SPEC message")
def test_port_in_use_by_foreign_listener(launcher):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        rc, out, err = launcher.run(
            ["gateway", "run", "--port", str(port), "--auth", "token",
             "--token", "T", "--allow-unconfigured"], timeout=40)
    finally:
        s.close()
    assert rc != 0
    assert "ws://127.0.0.1:%d" % port in out + err


@clawgate_only("SPEC message (upstream: Refusing to bind gateway to lan without auth.)")
def test_lan_bind_without_auth_refused(launcher):
    port = free_port()
    rc, out, err = launcher.run(
        ["gateway", "run", "--port", str(port), "--bind", "lan",
         "--auth", "none", "--allow-unconfigured"], timeout=30)
    assert rc != 0
    msg = ("refusing to bind gateway to 0.0.0.0:%d without auth (set "
           "gateway.auth.token/password, or set OPENCLAW_GATEWAY_TOKEN/"
           "OPENCLAW_GATEWAY_PASSWORD)" % port)
    assert msg in out + err


def test_mode_not_local_blocked(launcher):
    rc, out, err = launcher.run(
        ["gateway", "run", "--port", str(free_port()), "--auth", "token",
         "--token", "T"], config={"gateway": {"mode": "remote"}},
        timeout=30)
    assert rc != 0
    assert "Gateway start blocked: set gateway.mode=local (current: remote)" \
        in out + err


@clawgate_only("SPEC format")
def test_invalid_config_exit_78(launcher):
    d = launcher.prepare(config={"gateway": {"mode": "local",
                                             "bogusKey": True}})
    path = os.path.join(d, "openclaw.json")
    rc, out, err = launcher.run(
        ["gateway", "run", "--port", str(free_port()), "--auth", "token",
         "--token", "T"], state_dir=d, timeout=30)
    text = out + err
    assert rc == 78, text
    assert "Invalid config at %s:" % path in text
    assert re.search(r"^- gateway(\.bogusKey: |: .*bogusKey)", text,
                     re.M), text
    assert "Config invalid" in text


@clawgate_only("upstream supports TLS")
def test_tls_enabled_refused(launcher):
    rc, out, err = launcher.run(
        ["gateway", "run", "--port", str(free_port()), "--auth", "token",
         "--token", "T", "--allow-unconfigured"],
        config={"gateway": {"tls": {"enabled": True}}}, timeout=30)
    assert rc != 0


@clawgate_only("upstream resolves the port differently at start-up")
def test_port_from_env(launcher):
    port = free_port()
    gw = launcher.start(default_args=False, env={
        "OPENCLAW_GATEWAY_PORT": str(port)},
        args=["--auth", "token", "--token", "T", "--allow-unconfigured"],
        port=port)
    assert gw.connect(scopes=READ).hello["type"] == "hello-ok"


def test_connection_refused_after_stop(start_gateway):
    gw = start_gateway()
    assert gw.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()
    with pytest.raises((OSError, WsClosed)):
        gw.ws()
